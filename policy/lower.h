/*
 * Lowering: rules into allow list elements, one identity at a time, and an identity's
 * isolation. The whole compile lowers every identity as an owner; a delta lowers its new
 * identities as owners and as peers of the owners that stay. Both go through here, so they
 * cannot drift apart.
 */
#ifndef MOAT_POLICY_LOWER_H
#define MOAT_POLICY_LOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan_policy.h"
#include "plan_priv.h"

/* An identity as lowering sees it. */
struct lident {
	uint32_t id;
	const struct plan_ident_priv *p;
};

/* An element before merging: in the list of owner; prec: a tier rule's place in evaluation
 * order (its policy, then its index), 0 in the NetworkPolicy lists; dom: for an item of a
 * rule's domain names, the rule's place among its tier's rules with domain names (from 1). */
struct lelem {
	uint32_t owner;
	uint32_t list;			/* enum moat_allow_list */
	struct moat_plan_allow a;
	uint64_t prec;
	uint16_t dom;
};

struct lowering {
	const struct moat_policy_set *ps;
	const struct plan_policy *pol;
	const struct moat_plan *plan;	/* its identities (sorted by id) and priv */
	const struct plan_atom *atoms;	/* the plan's atoms, and a delta's new NPORT atoms */
	uint32_t natoms;
	const struct u32vec *atom_ids;	/* per atom below natoms_ids: the plan's holders */
	uint32_t natoms_ids;
	const struct hmap *gone;	/* a delta's identities that go (id -> id), or NULL */
	const struct lident *extra;	/* a delta's new identities (also holders), by id */
	size_t nextra;
	struct lelem *out;		/* what lowering emitted; the caller frees it */
	size_t nout, cap;
};

/* lower_owner - append every element of x's own lists. 0 or -ENOMEM. */
int lower_owner(struct lowering *lw, const struct lident *x);

/* lower_owner_policies, lower_owner_tiers - the same for its NetworkPolicy lists alone, or
 * its tier lists alone (lower_owner is both). 0 or -ENOMEM. */
int lower_owner_policies(struct lowering *lw, const struct lident *x);
int lower_owner_tiers(struct lowering *lw, const struct lident *x);

/*
 * lower_tier_class - what x's tier lists depend on besides x itself: the cluster-wide
 * policies it is a subject of, PLAN_NONE, its named ports' atoms (ingress ports resolve
 * against the owner). Identities with the same class have the same tier elements but for the
 * owner. Writes at most max into key; returns the class's length (more than max: call again
 * with room).
 */
size_t lower_tier_class(const struct lowering *lw, const struct lident *x, uint32_t *key,
			size_t max);

/*
 * lower_peer - append the elements that name x as the peer in the lists of the plan's
 * identities that stay (not gone, not new: those lower themselves). 0 or -ENOMEM.
 */
int lower_peer(struct lowering *lw, const struct lident *x);

/*
 * lower_merge - sort what lowering emitted (lw->out) by owner, list, peer, protocol and port;
 * in a NetworkPolicy list merge what overlaps or touches, and in a tier list let each rule
 * decide only what no earlier rule (prec) decided, so that no two elements of a list
 * overlap (pipapo refuses that). 0 or -ENOMEM.
 */
int lower_merge(struct lowering *lw);

/* lower_holder - is id one of the identities lowering counts (not gone)? */
bool lower_gone(const struct lowering *lw, uint32_t id);

/*
 * lower_isolation - the policies isolating identity x (atoms of x) in each direction into
 * x->pols, the cluster-wide policies it is a subject of into x->cnps (arena ar), and its
 * isolation, modes and tiers into pub; mode: the plan's global mode. 0 or -ENOMEM.
 */
int lower_isolation(const struct moat_policy_set *ps, const struct plan_policy *pol,
		    enum moat_mode mode, struct arena *ar, struct plan_ident_priv *x,
		    struct moat_plan_ident *pub);

/* gone_key - how the gone map hashes an id. */
uint64_t gone_key(uint32_t id);

#endif
