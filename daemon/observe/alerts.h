/*
 * Alerts: unexpected flows told to people. Each alert is one JSON object, appended as one
 * line to <state-dir>/alerts.jsonl (O_APPEND, one write per line, rotated to alerts.jsonl.1
 * past ALERTS_FILE_MAX), sent to syslog (LOG_WARNING, facility daemon), kept in a ring of
 * the last ALERTS_RING for `moat alerts` and streamed to followers. A token bucket bounds
 * the rate, and no source (endpoint or address) takes more than a quarter of it, so one
 * container's flood cannot use up the others' alerts; what they hold back is counted and
 * reported in a summary alert once tokens return, so nothing disappears without a trace. Deciding WHAT is unexpected (and deduping)
 * is the caller's business.
 */
#ifndef MOAT_DAEMON_ALERTS_H
#define MOAT_DAEMON_ALERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"

#define ALERTS_RING 1024
#define ALERTS_FILE_MAX (64u << 20)
#define ALERTS_FILE "alerts.jsonl"

struct alerts;

/*
 * alerts_new - alerts into dir/alerts.jsonl (dir must exist; the file is created 0640), at
 * most rate per second on average with bursts of 10 * rate (rate 0: unlimited), a quarter
 * of that per source (the alert's from.name, else from.ip). The tail of
 * an existing file fills the ring, so `moat alerts` survives a restart. 0 and *out, or
 * -errno (the file cannot be opened).
 */
int alerts_new(const char *dir, unsigned rate, struct alerts **out);

/* alerts_free - NULL-safe; followers are closed by the control server, not here. */
void alerts_free(struct alerts *a);

/*
 * alerts_raise - raise alert (stolen; a JSON object, "time" added when missing) at now_ms
 * (monotonic, for the bucket). text is the syslog line. Returns 1 when raised, 0 when the
 * rate limit held it back (counted), -errno when the file write failed (the alert still
 * went to syslog, the ring and followers).
 */
int alerts_raise(struct alerts *a, json_t *alert, const char *text, uint64_t now_ms);

/* alerts_tick - call about once a second while alerts_held: reports what the rate limit
 * held back. */
void alerts_tick(struct alerts *a, uint64_t now_ms);

/* alerts_held - has the rate limit held back alerts not reported yet (alerts_tick's work)? */
bool alerts_held(const struct alerts *a);

/* alerts_recent - the last limit alerts (0: all in the ring), oldest first. New reference. */
json_t *alerts_recent(const struct alerts *a, size_t limit);

/* alerts_follow - stream every new alert to conn (from inside a ctl handler). 0 or -ENOMEM. */
int alerts_follow(struct alerts *a, struct ctl_conn *conn);

/* alerts_stats_json - {"raised", "suppressed", "write_errors", "file"}. New reference. */
json_t *alerts_stats_json(const struct alerts *a);

#endif
