/*
 * The node: moatd's state in force (policies, the endpoints' set, the compiled plan, the
 * mode, the ruleset in the kernel) and the one way to change it. A change of endpoints is
 * committed as a delta (the plan and the ruleset change by what changed); a change of
 * policies, mode or managed subnets, a stale or refused delta, and a repair are committed
 * whole: the new state is built beside the old, applied in one batch, then swapped in. On
 * any failure the old state stays in force.
 */
#ifndef MOAT_NODE_H
#define MOAT_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "datapath/revocation.h"
#include "datapath/ruleset.h"
#include "dns/learner.h"
#include "latency.h"
#include "loop.h"
#include "moat/errors.h"
#include "moat/plan.h"
#include "observe/observe.h"

struct node;

/*
 * node_new - load the policies (a broken policy directory is an error: moatd refuses to start
 * and the kernel keeps whatever ruleset it has) and open the netfilter and runtime clients.
 * Nothing is applied yet. cfg is borrowed for the node's life. 0 and *out, or -errno with
 * the problems logged.
 */
int node_new(const struct config *cfg, struct node **out);

/*
 * node_start - the first whole sync (list the runtime, read the endpoints file, apply the
 * whole ruleset in one batch, replacing any ruleset a previous moatd left, with no open
 * window), then watch the runtime, the endpoints file, the ruleset and the clock on loop. If
 * the runtime cannot be reached the previous ruleset stays until it answers. 0 or -errno.
 */
int node_start(struct node *n, struct loop *loop);

/* node_free - NULL-safe; leaves the ruleset in the kernel (enforcement continues). */
void node_free(struct node *n);

/*
 * node_policy_reload - load the policy directory again; all or nothing. On failure the
 * running policy stays in force and diags say why (file:line:col). 0 or -errno.
 */
int node_policy_reload(struct node *n, struct moat_diags *diags);

/* node_mode_set - the global mode, committed whole. 0 or -errno (diags say why). */
int node_mode_set(struct node *n, enum moat_mode mode, struct moat_diags *diags);

/* What a reader of the node may look at; all of it owned by the node. */
struct node_status {
	enum moat_mode mode;
	const struct moat_plan *plan;		/* NULL before the first commit */
	const struct moat_policy_set *ps;
	const struct moat_endpoint_set *es;	/* the set in force */
	size_t containers, managed_subnets;
	bool runtime_up;
	const char *runtime_name, *runtime_version;	/* NULL until the runtime answered */
	uint64_t uptime_ms, applies, apply_errors, repairs, revoked, last_apply_us;
	uint64_t deltas, wholes;		/* changes committed as a delta, whole */
	uint64_t sweeps[3];			/* changes by enum revocation_need */
	const struct latency *enforced;		/* from an event to the kernel's ack */
	const struct ruleset_stats *last;	/* what the last apply sent */
	struct learner_stats dns;		/* what DNS replies taught */
};

/* node_status - a look at n, valid until the next change. */
void node_status(const struct node *n, struct node_status *st);

/* node_observe - the flows, learning and alerts of n. */
struct observe *node_observe(const struct node *n);

/* node_cluster - the cluster room (daemon/cluster/cluster.h), or NULL without --etcd. */
struct cluster *node_cluster(const struct node *n);

/* node_containers - the runtime's containers as JSON (an empty array without a runtime). */
json_t *node_containers(const struct node *n);

/* node_unlogged - drops the kernel did not log, their source over --log-rate (ruleset_unlogged). */
int node_unlogged(const struct node *n, uint64_t *v);

/* node_metrics - every node metric in the Prometheus text format (metrics_render_fn). */
void node_metrics(FILE *out, void *node);

#endif
