/*
 * Set elements: what each part of the state (see ruleset.h: the plan, its endpoints, the
 * managed subnets) puts in the ruleset's sets (schema.h). The whole state's elements are the
 * sum of its parts'; a change's are the parts that go and the parts that come. Pure: no
 * socket, so unit tests hold it without root; ruleset.c sends what this computes.
 */
#ifndef MOAT_DATAPATH_ELEMENTS_H
#define MOAT_DATAPATH_ELEMENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "ruleset.h"
#include "schema.h"

/* Elements of one set. Free with elemvs_free (an array of S_COUNT). */
struct elemv {
	struct elem *v;
	size_t n, cap;
};

/*
 * The chain of one isolated identity in one direction ("in_<id>" or "out_<id>"), with its
 * two sets. monitor picks the chain's last rule, so a change of mode is a full apply.
 */
struct owner {
	uint32_t id;
	uint8_t egress, monitor;
};

struct ownerv {
	struct owner *v;
	size_t n, cap;
};

/* elemv_push - append a copy of e. 0 or -ENOMEM. */
int elemv_push(struct elemv *v, const struct elem *e);

/* elem_cmp - the order of sorted element arrays (memcmp over the whole, zeroed, struct). */
int elem_cmp(const void *a, const void *b);

/* elemv_sort - sort and drop duplicates. */
void elemv_sort(struct elemv *v);

/* elemvs_free - free the S_COUNT arrays of v and zero them (v itself is the caller's). */
void elemvs_free(struct elemv *v);

/*
 * Each appends to v[S_COUNT] what one part puts in the sets, 0 or -ENOMEM (v then holds a
 * part of it: elemvs_free it):
 *   elements_shared    nets (from the plan's policies), managed subnets, ND types, the
 *                      node's addresses
 *   elements_ident     an identity's allow lists, in its own sets (none of a direction it is
 *                      not isolated in)
 *   elements_allow     one element of owner's list l
 *   elements_addr      an endpoint address: its identity (ep4/ep6), self4/self6, and the
 *                      verdict maps of id's isolation (id NULL: none)
 *   elements_endpoint  an endpoint's veths, MACs and addresses in the bridge's sets; iso: it
 *                      is ingress-isolated (its veths go in iso_ports)
 */
int elements_shared(const struct ruleset_input *in, struct elemv *v);
int elements_ident(const struct moat_plan_ident *id, struct elemv *v);
int elements_allow(const struct moat_plan_ident *owner, enum moat_allow_list l,
		   const struct moat_plan_allow *a, struct elemv *v);
int elements_addr(const struct moat_plan_addr *a, const struct moat_plan_ident *id,
		  struct elemv *v);
int elements_endpoint(const struct moat_endpoint *ep, bool iso, struct elemv *v);

/* elements_build - the sum of every part of in. 0 or -ENOMEM. */
int elements_build(const struct ruleset_input *in, struct elemv *v);

/*
 * elements_change - the parts plan delta d takes away (into minus: the identities that go,
 * the elements of lists that stay, the addresses and endpoints that go, plan->es[gone[]])
 * and brings (into plus). Call before committing d and changing the endpoint set. Elements
 * of a chain that goes are in minus too: its sets go whole. 0 or -ENOMEM.
 */
int elements_change(const struct moat_plan *plan, const struct moat_plan_delta *d,
		    const size_t *gone, size_t ngone, const struct moat_endpoint *come,
		    size_t ncome, struct elemv *minus, struct elemv *plus);

/* ownerv_push - append one identity chain. 0 or -ENOMEM. */
int ownerv_push(struct ownerv *v, uint32_t id, bool egress, bool monitor);

/* owner_cmp - by direction, then id: the order of sorted owner arrays. */
int owner_cmp(const struct owner *a, const struct owner *b);

/* elements_owners - the identity chains of plan p, sorted (owner_cmp). 0 or -ENOMEM. */
int elements_owners(const struct moat_plan *p, struct ownerv *o);

/* elements_owners_of - the chains of identities v[0..n) (sorted by id), appended sorted. */
int elements_owners_of(const struct moat_plan_ident *v, size_t n, struct ownerv *o);

/*
 * elements_diff_owners - the chains in old only (gone) or new only (added), both sorted.
 * Returns 1 when a chain in both changed its mode (its last rule differs: apply in full),
 * 0, or -ENOMEM.
 */
int elements_diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
			 struct ownerv *added);

#endif
