/*
 * The baseline: the flows learned between endpoints while Moat watches (learning mode), and
 * the NetworkPolicy YAML that allows exactly them.
 *
 * Flows are keyed by STABLE identity, never by address or container name, so restarts and
 * scale-out keep a baseline valid:
 *   - an endpoint peer is its namespace plus its stable labels: those whose keys are in a
 *     fixed list ("app", "app.kubernetes.io/name", "app.kubernetes.io/component",
 *     "component", "tier", "role", "service", "com.docker.compose.service",
 *     "com.docker.compose.project", "k8s-app", "name"); an endpoint with none of them is
 *     keyed by all of its labels except those that look per-instance or per-build
 *     (container numbers, pod-template-hash, versions, image metadata, CRI bookkeeping);
 *   - an external peer (no endpoint) is its address, as a /32 or /128;
 *   - a flow key is (from peer, to peer, proto, destination port); each key carries first
 *     and last (unix seconds) and count. Protocols without ports (anything but TCP, UDP and
 *     SCTP) are keyed with port 0 whatever port is passed.
 * Replicas (same namespace and stable labels, other names and addresses) share one key.
 */
#ifndef MOAT_BASELINE_H
#define MOAT_BASELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"
#include "moat/errors.h"

/* Opaque: a hashed set of peers and flow keys. Not thread-safe; callers serialise. */
struct moat_baseline;

/* moat_baseline_new - an empty baseline into *out. Returns 0 or -ENOMEM. Free with
 * moat_baseline_free. */
int moat_baseline_new(struct moat_baseline **out);

/* moat_baseline_free - frees b and everything in it; NULL-safe. */
void moat_baseline_free(struct moat_baseline *b);

/*
 * moat_baseline_load - read a baseline file:
 *   {"version": 1, "flows": [{"from": PEER, "to": PEER, "proto": "tcp", "port": 80,
 *                             "first": T, "last": T, "count": N}, ...]}
 *   PEER = {"namespace": NS, "labels": {KEY: VALUE...}} or {"cidr": "10.0.0.5/32"}
 * proto is "tcp", "udp", "sctp", "icmp", "icmpv6" or a protocol number.
 * All or nothing: returns 0 and sets *out only when the whole file is valid. Returns -ENOENT
 * when the file does not exist (nothing in diags: the caller starts a new baseline),
 * -EINVAL with every problem in diags (file name, line:col for JSON syntax, and which flow
 * and field is wrong otherwise), or -errno for other I/O errors (also in diags).
 * A repeated flow key is an error. The file is read a flow at a time, never as a whole tree:
 * memory is that of the baseline made, and time grows with the flows, not with their peers'
 * text (a peer already seen is recognised by its text).
 */
int moat_baseline_load(const char *path, struct moat_baseline **out, struct moat_diags *diags);

/* moat_baseline_parse - as _load, from buf[0..len) named name (tests, fuzzing). */
int moat_baseline_parse(const char *name, const char *buf, size_t len,
			struct moat_baseline **out, struct moat_diags *diags);

/*
 * moat_baseline_save - write b to path atomically: path.tmp is written and fsynced, renamed
 * over path, then the directory is fsynced, so a crash leaves the old file or the new one,
 * never a torn one. Flows are written sorted (stable output for diffs). Returns 0 or -errno
 * (path.tmp is removed on failure).
 */
int moat_baseline_save(const struct moat_baseline *b, const char *path);

/*
 * Saving from another thread. A baseline lists what changes (peers added, flows added or
 * widened); moat_baseline_delta_take hands the changes over as a delta, in time and memory
 * proportional to them, not to the baseline. A replica, fed every delta in order (the first
 * one holds everything: a loaded baseline's flows count as changes too), holds what the
 * baseline held when the delta was taken, in memory of its own: another thread may apply
 * deltas to it and save it while the baseline goes on changing. Not thread-safe themselves:
 * the baseline and the replica each belong to one thread; a delta is handed from one to the
 * other.
 */
struct moat_baseline_delta;
struct moat_baseline_replica;

/* moat_baseline_delta_take - the changes of b since the last take (or since it was made)
 * into *out (free with moat_baseline_delta_free); b starts listing changes afresh. 0 or
 * -ENOMEM (b unchanged). */
int moat_baseline_delta_take(struct moat_baseline *b, struct moat_baseline_delta **out);

/* moat_baseline_delta_take_all - a delta holding all of b, as its first one did: to feed a
 * replica reset after it lost a delta. 0 or -ENOMEM. */
int moat_baseline_delta_take_all(struct moat_baseline *b, struct moat_baseline_delta **out);

/* moat_baseline_delta_flows - how many flows the delta carries. */
size_t moat_baseline_delta_flows(const struct moat_baseline_delta *d);

/* moat_baseline_delta_free - NULL-safe. */
void moat_baseline_delta_free(struct moat_baseline_delta *d);

/* moat_baseline_replica_new - an empty replica into *out. 0 or -ENOMEM. */
int moat_baseline_replica_new(struct moat_baseline_replica **out);

/* moat_baseline_replica_apply - d applied to r. 0, -EINVAL when d is not the next delta of
 * the baseline r follows (r unchanged), or -ENOMEM (r must then be reset and fed from a new
 * baseline's first delta). */
int moat_baseline_replica_apply(struct moat_baseline_replica *r,
				const struct moat_baseline_delta *d);

/* moat_baseline_replica_reset - r empty again, to follow a new baseline. */
void moat_baseline_replica_reset(struct moat_baseline_replica *r);

/* moat_baseline_replica_count - the flows r holds. */
size_t moat_baseline_replica_count(const struct moat_baseline_replica *r);

/* moat_baseline_replica_save - r to path exactly as moat_baseline_save would save the
 * baseline it follows. 0 or -errno. */
int moat_baseline_replica_save(const struct moat_baseline_replica *r, const char *path);

/* moat_baseline_replica_free - NULL-safe. */
void moat_baseline_replica_free(struct moat_baseline_replica *r);

/*
 * moat_baseline_add - record one flow. from/to: the endpoints, or NULL for an external peer,
 * whose address from_addr/to_addr is then used (it is ignored when the endpoint is given).
 * when: unix seconds; first/last widen to include it; count grows by one.
 * Returns 1 when the key is new, 0 when it was already known, -EINVAL when a peer is NULL
 * with a NULL address or both peers are external, or -ENOMEM (b unchanged).
 * The endpoints' strings are copied; the caller keeps ownership of from and to.
 */
int moat_baseline_add(struct moat_baseline *b,
		      const struct moat_endpoint *from, const struct moat_addr *from_addr,
		      const struct moat_endpoint *to, const struct moat_addr *to_addr,
		      uint8_t proto, uint16_t port, int64_t when);

/*
 * moat_baseline_contains - is this flow's key in b? Same arguments as _add, no change.
 * Hashed lookup, no allocation: cheap enough for every new flow. false for invalid
 * arguments.
 */
bool moat_baseline_contains(const struct moat_baseline *b,
			    const struct moat_endpoint *from, const struct moat_addr *from_addr,
			    const struct moat_endpoint *to, const struct moat_addr *to_addr,
			    uint8_t proto, uint16_t port);

/*
 * moat_baseline_reserve - room in b for flows flows (and as many peers) without growing
 * again: the tables are then never copied or rehashed while b fills up to that, which on a
 * big baseline takes a long moment. Memory is reserved, not touched (but for the hash
 * slots). 0 or -ENOMEM (b unchanged but for what fitted).
 */
int moat_baseline_reserve(struct moat_baseline *b, size_t flows);

/* moat_baseline_count - the number of flow keys in b (0 for NULL). */
size_t moat_baseline_count(const struct moat_baseline *b);

/*
 * moat_baseline_json - the flows as a JSON array, sorted, each in the file's shape (see
 * _load). Returns a new reference (the caller decrefs) or NULL on ENOMEM.
 */
json_t *moat_baseline_json(const struct moat_baseline *b);

/*
 * moat_baseline_suggest - NetworkPolicy YAML (networking.k8s.io/v1 documents separated by
 * ---, under a comment saying Moat learned it and over which period) that allows exactly the
 * baseline. *yaml_out is a NUL-terminated string the caller frees. Returns 0, or -ENOMEM.
 *
 * A group is an endpoint peer of the baseline (namespace + key labels). Every group gets two
 * policies, "moat-learned-<group>-ingress" and "...-egress", so every endpoint of a group is
 * isolated in both directions; their rules are the group's learned inbound (outbound) flows,
 * one rule per peer with its ports merged, and no rules (deny all) when it has none. Both
 * sides are needed because a flow between two isolated endpoints must pass the source's
 * egress and the destination's ingress. External peers become ipBlocks (/32, /128). Peers in
 * another namespace add a namespaceSelector on kubernetes.io/metadata.name.
 *
 * What "exactly" means, for the endpoints of today and any that come later: a connection
 * from or to an endpoint of a learned group (to or from another endpoint, of a group or not,
 * or an external address) is allowed if and only if its key is in the baseline, so an
 * endpoint of no learned group reaches none of them; connections that involve no endpoint
 * of a learned group (among unlearned endpoints and the world) are not touched. A group is
 * selected exactly: matchLabels on its stable labels and "DoesNotExist" on every other key
 * of the stable list, so that no container, now or later, with more stable labels (a canary
 * with tier, an admin with role) is taken for one of it.
 * What cannot be said that way is left out and listed in comments in the YAML, and its
 * flows are denied, never allowed wider: a group without stable labels (keyed by other
 * labels, or none: any later container with those labels and more would fall in it; the
 * comment says to label it, app=NAME), a group whose labels or namespace are not valid
 * Kubernetes names, and flows of protocols other than TCP/UDP/SCTP or to port 0. No flow is
 * invented (DNS included: it is allowed only if it was learned). es is not needed for any
 * of this (a moatd without a plan yet suggests the same) and may be empty. Output is
 * deterministic: groups, peers and ports sorted; names sanitised to DNS-1123 and made unique
 * per namespace.
 */
int moat_baseline_suggest(const struct moat_baseline *b, const struct moat_endpoint_set *es,
			  char **yaml_out);

#endif
