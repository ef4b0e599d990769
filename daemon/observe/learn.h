/*
 * Learning: a session that records the flows moatd sees into a baseline (include/moat/
 * baseline.h), and the baseline's persistence in the state directory:
 *   baseline.json   the flows learned so far (moat_baseline_save: atomic, fsynced)
 *   learn.json      the session: {"version": 1, "learning": bool, "selector": "app=web",
 *                   "started": T, "until": T or null, "stopped": T or null} (unix seconds)
 * Saves are debounced: at most one per second while flows arrive (further apart when a big
 * baseline takes longer to write), and one on stop and on exit, so a crash (kill -9) loses
 * at most the last interval and the save under way, and never tears a file. They run off
 * the event loop (daemon/baseline_saver.h): the loop only hands over what changed, in time
 * proportional to the change. A restart in the middle of a session goes on learning until
 * the same deadline. The baseline holds at most a cap of flows: past it, new flows are
 * counted (status: not_learned), not stored, and the log says so once a session.
 */

/* For benchmarks built against older trees: saves leave the loop, learn_new takes a cap. */
#define LEARN_SAVES_OFF_LOOP 1
#ifndef MOAT_DAEMON_LEARN_H
#define MOAT_DAEMON_LEARN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "moat/endpoint.h"

struct learn;

/*
 * learn_new - state in dir (created 0750 when missing): the baseline and the session are
 * read back. A baseline file that cannot be read is renamed to baseline.json.bad (logged)
 * and learning starts from nothing. cap: the flows the baseline may hold (a loaded one may
 * hold more; it then learns nothing new). 0 and *out, or -errno when dir cannot be made.
 */
int learn_new(const char *dir, size_t cap, struct learn **out);

/* learn_free - NULL-safe; saves what is not saved yet, and waits for it. */
void learn_free(struct learn *l);

/*
 * learn_start - begin a session at now (unix ms) for flows whose source or destination
 * matches selector ("" or NULL: every flow), for duration_ms (0: until learn_stop). reset
 * forgets the baseline learned before; otherwise the session adds to it. The baseline is
 * saved in the background. Returns 0, -EALREADY when a session runs, -EINVAL for a bad
 * selector (words in err), or -errno from saving the session's state (learn.json).
 */
int learn_start(struct learn *l, const char *selector, uint64_t duration_ms, bool reset,
		int64_t now_ms, char *err, size_t errlen);

/* learn_stop - end the session; its baseline is saved in the background (status: saving,
 * saved). 0, -ENOENT when none runs, or -errno. */
int learn_stop(struct learn *l, int64_t now_ms);

/* learn_active - is a session running? */
bool learn_active(const struct learn *l);

/* learn_has_baseline - has a session ever been run to the end (or a baseline been loaded)
 * and none runs now: the point from which unexpected flows are alerted. */
bool learn_has_baseline(const struct learn *l);

/*
 * learn_record - during a session, add the flow when its source or destination endpoint
 * matches the selector (from/to NULL: an external address). Returns 1 for a new baseline
 * flow, 0 otherwise (not learning, not selected, known, or new past the cap: counted), or
 * -errno.
 */
int learn_record(struct learn *l, const struct moat_endpoint *from,
		 const struct moat_addr *from_addr, const struct moat_endpoint *to,
		 const struct moat_addr *to_addr, uint8_t proto, uint16_t port, int64_t when_ms);

/* learn_known - is the flow in the baseline? (moat_baseline_contains) */
bool learn_known(const struct learn *l, const struct moat_endpoint *from,
		 const struct moat_addr *from_addr, const struct moat_endpoint *to,
		 const struct moat_addr *to_addr, uint8_t proto, uint16_t port);

/* learn_tick - call when learn_tick_due says: hands changes to the saver (at most once a
 * second, not while a save runs), reports its failures, ends a session past its end. */
void learn_tick(struct learn *l, int64_t now_ms);

/*
 * learn_tick_due - in how many ms (unix now_ms) learn_tick has work: unsaved changes, a save
 * handed over whose outcome is unseen, the end of a timed session; -1 when none (nothing
 * learned since, no save under way, no deadline: no tick is needed until learn_record,
 * learn_start or learn_stop). Trap: those three may make work, so ask again after them.
 */
int64_t learn_tick_due(const struct learn *l, int64_t now_ms);

/* learn_status_json - the session, counts (flows, cap, full, not_learned) and save figures
 * (saved, saves, save_errors, saving, save_ms); with_flows adds the baseline's flows. New
 * reference. */
json_t *learn_status_json(const struct learn *l, bool with_flows);

/* learn_suggest - moat_baseline_suggest over es: YAML the caller frees. 0 or -errno. */
int learn_suggest(const struct learn *l, const struct moat_endpoint_set *es, char **yaml);

#endif
