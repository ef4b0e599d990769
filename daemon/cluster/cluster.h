/*
 * The cluster room: moatd beside other moatd, through etcd (--etcd). It publishes this
 * node's endpoints and record (publish.h) and follows every other node's, and the policy
 * set (watch.h), on threads of their own; on the loop it turns what they bring into the
 * store's cluster source (EPSOURCE_CLUSTER) and into policy sets for the node.
 *
 * Another node's endpoint is an endpoint like a local one, named NAME@NODE in its
 * namespace (so it never collides with a local name) with node set; its addresses must lie
 * in the subnets of its node's record, which are managed here too (an address there that no
 * endpoint has fails closed, so a departed node's addresses stay closed). A value that does
 * not decode, or an address outside its node's subnets, is refused for that key alone:
 * logged, counted, and any earlier value of that key removed.
 *
 * etcd away: what was last known stays in force (the store keeps it); local changes go on
 * being committed; publishing and watching resume when etcd answers.
 */
#ifndef MOAT_CLUSTER_CLUSTER_H
#define MOAT_CLUSTER_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "endpoints/store.h"
#include "loop.h"
#include "moat/policy.h"

/* How long the first commit waits for etcd's state, when policies do not come from etcd. */
#define CLUSTER_START_WAIT_MS 5000

struct cluster;

/* The store's cluster source changed (t0_us: when etcd's event arrived). */
typedef void (*cluster_changed_fn)(void *data, uint64_t t0_us);

/*
 * A policy set from etcd (ps taken, revision: its mod_revision; an absent key is the empty
 * set at revision 0). The node applies it whole and says so with cluster_policies_applied;
 * 0, or -errno when it refused it (the running policy stays; the node logged why).
 */
typedef int (*cluster_policies_fn)(void *data, struct moat_policy_set *ps, int64_t revision);

/*
 * cluster_new - the room for cfg (cfg->etcd set) and store (both borrowed for its life).
 * Claims the node's name at once: -EEXIST when another host holds it (logged, with what to
 * do); etcd unreachable is not an error (claimed later). 0 and *out, or -errno.
 */
int cluster_new(const struct config *cfg, struct epstore *store, cluster_changed_fn changed,
		cluster_policies_fn policies, void *data, struct cluster **out);

/* cluster_start - the threads, and their fds on loop. 0 or -errno. */
int cluster_start(struct cluster *c, struct loop *loop);

/* cluster_free - NULL-safe; stops the threads (the lease is left to expire). */
void cluster_free(struct cluster *c);

/*
 * cluster_ready - may the node make its first commit? Once etcd's state arrived; or, when
 * policies come from a directory, after CLUSTER_START_WAIT_MS without etcd (logged).
 */
bool cluster_ready(struct cluster *c);

/*
 * cluster_publish_change - the set in force es is about to lose gone[0..ngone) (indexes,
 * descending) and gain come[0..ncome): this node's endpoints among them (node NULL) are
 * published or withdrawn. Costs the change.
 */
void cluster_publish_change(struct cluster *c, const struct moat_endpoint_set *es,
			    const size_t *gone, size_t ngone, const struct moat_endpoint *come,
			    size_t ncome);

/*
 * cluster_publish_whole - es replaced old (NULL: none) as the set in force: this node's
 * endpoints and record (its own sources' subnets) are published; the first call makes the
 * table complete (stale keys of an earlier run go). Costs both sets; a whole commit's.
 */
void cluster_publish_whole(struct cluster *c, const struct moat_endpoint_set *old,
			   const struct moat_endpoint_set *es);

/* cluster_policies_applied - the policy set of revision is in force. */
void cluster_policies_applied(struct cluster *c, int64_t revision);

/* cluster_status - {node, etcd, prefix, policies: "etcd"|"directory", policy_revision, ...}
 * for moat status. */
json_t *cluster_status(struct cluster *c);

/* cluster_nodes - every node etcd holds a record or heartbeat of, for moat nodes. */
json_t *cluster_nodes(struct cluster *c);

/* cluster_metrics - its Prometheus lines. */
void cluster_metrics(FILE *out, struct cluster *c);

#endif
