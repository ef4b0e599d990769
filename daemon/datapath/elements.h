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

/* The parts of an identity chain (struct owner's shape). */
enum {
	OWNER_ISO = 1,		/* NetworkPolicy isolates it: sets _from and _any, then deny */
	OWNER_MONITOR = 2,	/* with OWNER_ISO, in monitor mode: count instead of deny */
	OWNER_ADMIN = 4,	/* a subject of the Admin tier: verdict map _admin, first */
	OWNER_BASELINE = 8,	/* a subject of the Baseline tier, not isolated: map _base, last */
};

/*
 * The chain of one identity in one direction ("in_<id>" or "out_<id>") with its sets, for an
 * identity isolated or a subject of a tier there. shape (OWNER_*) says which rules and sets
 * it has, so a change of shape is a full apply.
 */
struct owner {
	uint32_t id;
	uint8_t egress, shape;
};

/* owner_sets - the per_ident sets of o's chain into s (room for OWNER_SETS_MAX), in the
 * order its rules consult them; how many. */
#define OWNER_SETS_MAX 4
size_t owner_sets(const struct owner *o, enum set_id *s);

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
 *   elements_ident     an identity's entries in in_ids and out_ids, and its lists in its own
 *                      sets (only those its chains consult)
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

/* elements_dns - a learnt answer's elements: in the sets of places a->j to m of its tier. */
int elements_dns(const struct ruleset_dns *a, uint32_t m, struct elemv *v);
/*
 * Published ports (moat_endpoint.published): connections to the node's host port are
 * decided as the client to the endpoint on its port, with the endpoint's ingress lists. Each
 * binding puts (proto . host port) in published, and per the identity of the address the
 * runtime's proxy connects to (elements_published_addr): in pub_open when that identity is
 * not ingress-isolated, in pub_monitor when it is in monitor mode, in pub_any and
 * (peer . proto . host port) in pub_from for what its in_any and in lists let through.
 */

/* A published port of an endpoint whose destination identity is ident, as the kernel holds it. */
struct pub {
	uint32_t ident;
	struct moat_published b;
};

/* Sorted by identity (pub_cmp): the ports whose elements a change of that identity's lists
 * changes. */
struct pubv {
	struct pub *v;
	size_t n, cap;
};

/* elements_published_addr - the address the runtime's proxy connects to: ep's first IPv4
 * address, else its first; NULL when it has none. */
const struct moat_addr *elements_published_addr(const struct moat_endpoint *ep);

/*
 * elements_published - what ep's published ports put in the sets, id being the identity of
 * its published address (NULL: none, not isolated). d: the change about to be made when ep
 * comes with an identity that stays, whose lists d changes (the elements it deletes are left
 * out, those it adds are in); NULL otherwise. 0 or -ENOMEM.
 */
int elements_published(const struct moat_endpoint *ep, const struct moat_plan_ident *id,
		       const struct moat_plan_delta *d, struct elemv *v);

/* elements_pub_allow - what one element a of list l lets through binding b (nothing for the
 * egress lists, or when it does not cover b's protocol and port). 0 or -ENOMEM. */
int elements_pub_allow(const struct moat_published *b, enum moat_allow_list l,
		       const struct moat_plan_allow *a, struct elemv *v);

/* pubv_build - every published port of es with its identity in p, sorted. 0 or -ENOMEM. */
int pubv_build(const struct moat_plan *p, const struct moat_endpoint_set *es, struct pubv *o);

/*
 * pubv_change - o: cur without the published ports of plan->es[gone[]] and with those of
 * come[] (identities as d makes them), sorted. Call before committing d. 0 or -ENOMEM.
 */
int pubv_change(const struct pubv *cur, const struct moat_plan *plan,
		const struct moat_plan_delta *d, const size_t *gone, size_t ngone,
		const struct moat_endpoint *come, size_t ncome, struct pubv *o);

/* elements_build - the sum of every part of in. 0 or -ENOMEM. */
int elements_build(const struct ruleset_input *in, struct elemv *v);

/*
 * elements_change - the parts plan delta d takes away (into minus: the identities that go,
 * the elements of lists that stay, the addresses and endpoints that go, plan->es[gone[]])
 * and brings (into plus). pubs: the published ports the kernel holds (the published ports
 * of endpoints that stay follow their identity's lists). Call before committing d and
 * changing the endpoint set. Elements of a chain that goes are in minus too: its sets go
 * whole. 0 or -ENOMEM.
 */
int elements_change(const struct moat_plan *plan, const struct moat_plan_delta *d,
		    const size_t *gone, size_t ngone, const struct moat_endpoint *come,
		    size_t ncome, const struct pubv *pubs, struct elemv *minus,
		    struct elemv *plus);

/* ownerv_push - append one identity chain. 0 or -ENOMEM. */
int ownerv_push(struct ownerv *v, uint32_t id, bool egress, uint8_t shape);

/* owner_cmp - by direction, then id: the order of sorted owner arrays. */
int owner_cmp(const struct owner *a, const struct owner *b);

/* elements_owners - the identity chains of plan p, sorted (owner_cmp). 0 or -ENOMEM. */
int elements_owners(const struct moat_plan *p, struct ownerv *o);

/* elements_owners_of - the chains of identities v[0..n) (sorted by id), appended sorted. */
int elements_owners_of(const struct moat_plan_ident *v, size_t n, struct ownerv *o);

/*
 * elements_diff_owners - the chains in old only (gone) or new only (added), both sorted.
 * Returns 1 when a chain in both changed its shape (its rules differ: apply in full),
 * 0, or -ENOMEM.
 */
int elements_diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
			 struct ownerv *added);

#endif
