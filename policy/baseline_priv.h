/* The baseline's insides, shared by baseline.c (the store and its file) and suggest.c. */
#ifndef MOAT_POLICY_BASELINE_PRIV_H
#define MOAT_POLICY_BASELINE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/baseline.h"
#include "moat/proto.h"

#define BASELINE_VERSION 1	/* of baseline.json */

/* A peer: an endpoint group (ns != NULL, labels = its key labels, sorted) or an external
 * address (ns == NULL). Owns ns and the labels' strings. */
struct bl_peer {
	char *ns;
	struct moat_labels labels;
	struct moat_addr addr;
	uint64_t hash;
};

struct bl_flow {
	uint32_t from, to;	/* indexes into peers */
	uint8_t proto;
	uint8_t changed;	/* in the list of changes since the last delta (in padding) */
	uint16_t port;
	int64_t first, last;
	uint64_t count;
};

/* Open addressing, power-of-two slot counts, BL_EMPTY marks a free slot. */
#define BL_EMPTY UINT32_MAX

struct moat_baseline {
	struct bl_peer *peers;
	size_t npeers, peers_cap;
	uint32_t *peer_slots;
	size_t npeer_slots;
	struct bl_flow *flows;
	size_t nflows, flows_cap;
	uint32_t *flow_slots;
	size_t nflow_slots;
	/* what changed since the last moat_baseline_delta_take: peers from peers_taken on, and
	 * the flows listed (each once: its changed flag is set) */
	size_t peers_taken;
	uint32_t *changes;
	size_t nchanges, changes_cap;
};

/* A baseline's peers and flows as they are saved: a live baseline's, or a replica's. */
struct bl_view {
	const struct bl_peer *peers;
	size_t npeers;
	const struct bl_flow *flows;
	size_t nflows;
};

/* bl_view_of - the view of b (borrowed). */
static inline struct bl_view bl_view_of(const struct moat_baseline *b)
{
	return (struct bl_view){ b->peers, b->npeers, b->flows, b->nflows };
}

/* bl_view_sorted - indexes of v's flows sorted by from, to (bl_peer_cmp), proto, port, into
 * *out (caller frees; NULL when there are none): the peers are ranked once, so the sort
 * compares integers. 0 or -ENOMEM. */
int bl_view_sorted(const struct bl_view *v, uint32_t **out);

/* bl_view_save - v to path as moat_baseline_save does. 0 or -errno. */
int bl_view_save(const struct bl_view *v, const char *path);

/* bl_peer_copy - *dst = a deep copy of src. 0 or -ENOMEM (*dst left empty). */
int bl_peer_copy(struct bl_peer *dst, const struct bl_peer *src);

/* bl_peer_fill - *p = a group: a copy of ns and the key labels of labels (sorted), or of
 * all of them when all_key (labels read from a file). 0 or -ENOMEM (*p left empty). */
int bl_peer_fill(struct bl_peer *p, const char *ns, const struct moat_labels *labels,
		 bool all_key);

/* bl_peer_ext - *p = the external peer a (nothing to free). */
void bl_peer_ext(struct bl_peer *p, const struct moat_addr *a);

/* bl_peer_fini - frees what p owns. */
void bl_peer_fini(struct bl_peer *p);

/* bl_peer_adopt - intern p, taking ownership (freed when an equal peer is there already or
 * on failure); its index into *out. 0 or -ENOMEM. */
int bl_peer_adopt(struct moat_baseline *b, struct bl_peer *p, uint32_t *out);

/* bl_reserve - room for flows flows without growing (a hint: loading a file of known size).
 * 0 or -ENOMEM. */
int bl_reserve(struct moat_baseline *b, size_t flows);

/* bl_flow_put - add f as a new key (*added) or widen the known one with its first, last and
 * count. 0 or -ENOMEM. */
int bl_flow_put(struct moat_baseline *b, const struct bl_flow *f, bool *added);

/* bl_stable_keys - the stable list (see include/moat/baseline.h) into *out; how many. */
size_t bl_stable_keys(const char *const **out);

/* bl_labels_stable - does labels carry at least one key of the stable list? Then the key
 * labels are exactly those; otherwise every label that is not per-instance. */
bool bl_labels_stable(const struct moat_labels *labels);

/* bl_label_is_key - is labels->v[i] one of the key labels (stable: bl_labels_stable)? */
bool bl_label_is_key(const struct moat_labels *labels, size_t i, bool stable);

/* bl_peer_is - is an endpoint in namespace ns with labels a member of group p? */
bool bl_peer_is(const struct bl_peer *p, const char *ns, const struct moat_labels *labels);

/* bl_peer_cmp - total order: groups (namespace, then labels) before externals (family,
 * address). */
int bl_peer_cmp(const struct bl_peer *a, const struct bl_peer *b);

/* bl_flows_sorted - bl_view_sorted of b. */
int bl_flows_sorted(const struct moat_baseline *b, uint32_t **out);

#endif
