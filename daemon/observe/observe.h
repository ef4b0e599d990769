/*
 * Observing: what the ruleset logs (capture.h) becomes flows (flows.h) with
 * a verdict and the policy that decided it, feeds a learning session (learn.h), and
 * raises an alert (alerts.h) for a flow that is neither in the baseline nor allowed
 * once a baseline exists; and gives the control commands (daemon/commands.c) what they show.
 *
 * Verdicts are computed from the plan in force when the record is read, the same plan the
 * kernel runs: "moat:pass" is allowed, or a violation when the plan denies it (monitor
 * mode); "moat:drop:*" and "moat:spoof" are denied. The deciding policy is the rule's
 * policy for an allowed flow, else the policies isolating the side that denied it.
 *
 * Alerts are deduplicated per flow and verdict: a flow alerts once as denied and once more
 * if it later passes as a violation (monitor mode), since that is news to an operator. A
 * flow evicted from the table, or a restart, may alert again (rate-limited).
 */
#ifndef MOAT_DAEMON_OBSERVE_H
#define MOAT_DAEMON_OBSERVE_H

#include <jansson.h>
#include <stdio.h>

#include "config.h"
#include "flow_query.h"
#include "ctl.h"
#include "loop.h"
#include "moat/plan.h"

struct observe;

/*
 * observe_new - the flow table (cfg->flow_cap), learning (cfg->baseline_cap) and alerts in
 * cfg->state_dir. A state directory that cannot be used only disables learning and alerts
 * (logged). 0 and *out, or -errno (-EINVAL for a zero --flow-cap or --baseline-cap,
 * -ENOMEM).
 */
int observe_new(const struct config *cfg, struct observe **out);

/* observe_free - NULL-safe; saves the baseline. */
void observe_free(struct observe *o);

/*
 * observe_start - open the NFLOG group and watch it on loop: fn(loop, fd, events, data) is
 * called when records are queued and must call observe_read with the plan in force. Also a
 * timer for baseline saves and rate-limit reports, armed only while they have work. A group
 * that cannot be opened is logged and reported in status (flows stay empty; enforcement is
 * not affected). 0 or -errno.
 */
int observe_start(struct observe *o, struct loop *loop, loop_fd_fn fn, void *data);

/*
 * observe_kick - after a change of learning from outside (learn_start, learn_stop on
 * observe_learn's object): arms the timer for the saves and the session's end it made due.
 * Trap: without it, a session started by a command is saved only when records come.
 */
void observe_kick(struct observe *o);

/* observe_read - handle the queued records against plan (NULL before the first commit). */
void observe_read(struct observe *o, const struct moat_plan *plan);

/* observe_status - add "capture", "flows", "learning" and "alerts" to a status reply. */
void observe_status(struct observe *o, json_t *status);

/*
 * observe_metrics - flows and packets by verdict and policy, the flow table, the NFLOG
 * capture (records, kernel drops) and alerts, in the Prometheus text format.
 */
void observe_metrics(FILE *out, struct observe *o);

/* observe_capture_json / observe_table_json - the NFLOG capture's and the flow table's
 * figures, as status and flows replies show them. */
json_t *observe_capture_json(struct observe *o);
json_t *observe_table_json(struct observe *o);

/*
 * observe_flows - the newest q->limit flows matching q (at most FLOWS_LIMIT_MAX), oldest
 * first; *matched counts every match.
 */
json_t *observe_flows(struct observe *o, const struct flow_query *q, size_t *matched);

/* observe_follow - stream the flows matching q (taken over) to conn from now on. 0, or -EBUSY
 * when MAX_FOLLOWERS follow already. */
int observe_follow(struct observe *o, struct ctl_conn *conn, struct flow_query *q);

/* observe_learn / observe_alerts - NULL when the state directory cannot be used. */
struct learn *observe_learn(struct observe *o);
struct alerts *observe_alerts(struct observe *o);

/* observe_graph_dot - the service graph of the flows seen, as DOT (*dot: the caller frees). */
int observe_graph_dot(struct observe *o, const struct moat_plan *plan, char **dot);

/* observe_graph_json - the same as JSON (svcgraph.h), at most GRAPH_EDGES_MAX edges. */
int observe_graph_json(struct observe *o, const struct moat_plan *plan, json_t **out);

#endif
