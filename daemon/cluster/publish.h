/*
 * This node's side in etcd: one thread that holds the node's lease (granted, kept alive,
 * granted again when lost), claims the node's name, and makes etcd hold what the event loop
 * says this node has (its record, its endpoints), key by key, in transactions of at most
 * ETCD_MAX_TXN_OPS. The loop only changes a table in memory (publish_put/_del: no I/O, the
 * cost of the change); the thread does every request, so etcd being slow or away never
 * blocks the loop, it only delays publishing. Everything published again after a new
 * lease; keys under the node's endpoints that the table does not hold are deleted once the
 * table is complete (publish_ready), so a restart leaves no stale endpoint behind.
 *
 * The name: alive/NODE, bound to the lease, holds the host id of whoever has the name. A
 * moatd may take the name when alive/NODE is absent or holds its own host id (a restart
 * on the same host); otherwise another host runs that node and the claim is refused.
 */
#ifndef MOAT_CLUSTER_PUBLISH_H
#define MOAT_CLUSTER_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"

/* Keepalives (and heartbeats) per TTL: one every TTL / PUBLISH_KEEPALIVES_PER_TTL. */
#define PUBLISH_KEEPALIVES_PER_TTL 4
#define PUBLISH_BACKOFF_MIN_MS 200
#define PUBLISH_BACKOFF_MAX_MS 5000

struct publish;

struct publish_opts {
	const struct etcd_opts *etcd;
	const char *prefix, *node, *host;	/* host: this host's id (wire.h) */
	int64_t ttl;				/* seconds */
};

/* publish_new - the table and a client; no request yet. 0 and *out, -EINVAL (err says),
 * -ENOMEM. */
int publish_new(const struct publish_opts *o, struct publish **out, char *err, size_t errlen);

/*
 * publish_claim - on the caller's thread, before publish_start: grant a lease and claim the
 * node's name. 0; -EEXIST when another host holds it (err says which, for the operator); or
 * the etcd error when it cannot be reached (the thread tries again once started).
 */
int publish_claim(struct publish *p, char *err, size_t errlen);

/* publish_start - the thread. 0 or -errno. */
int publish_start(struct publish *p);

/* publish_stop - stop and join the thread, free p. NULL-safe. The lease is left to expire
 * (a restart within the TTL takes over the keys; others keep the node's endpoints till then). */
void publish_stop(struct publish *p);

/* publish_fd - readable when the state changed (publish_state); drain with publish_ack. */
int publish_fd(const struct publish *p);
void publish_ack(struct publish *p);

/*
 * publish_put - etcd should hold key = value (value taken, a string); leased: bound to the
 * node's lease (endpoints) or not (the node record). Costs the key alone. -ENOMEM (value
 * freed).
 */
int publish_put(struct publish *p, const char *key, char *value, bool leased);

/* publish_del - etcd should not hold key. -ENOMEM. */
int publish_del(struct publish *p, const char *key);

/* publish_ready - the table holds every key this node has (after the first whole commit):
 * leased keys go out from now on, and stale ones under prefix_stale are deleted. */
void publish_ready(struct publish *p, const char *prefix_stale);

/* publish_heartbeat - what the next heartbeat (alive/NODE) says besides the lease. */
void publish_heartbeat(struct publish *p, int64_t policy_rev, int64_t endpoints);

struct publish_state {
	bool up;			/* the last request got through */
	bool conflict;			/* another host has the name: nothing is published */
	int64_t lease, ttl;		/* the lease and its TTL at the last keepalive */
	uint64_t keepalive_ms;		/* when (loop_now_ms) */
	uint64_t puts, deletes, errors, leases, pending;
	char error[256];		/* the last error, or why the name is refused */
};

/* publish_state - a copy of the thread's state. */
void publish_state(struct publish *p, struct publish_state *st);

#endif
