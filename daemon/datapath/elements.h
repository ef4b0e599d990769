/*
 * Set elements: what a plan, its endpoints and the managed subnets become in the ruleset's
 * sets (schema.h), and the difference between two such sets of elements. Pure: no socket,
 * so unit tests hold it without root; ruleset.c sends what this computes.
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

/* elemv_sort - sort and drop duplicates (two endpoints may list the same iface). */
void elemv_sort(struct elemv *v);

/* elemv_equal - the same elements in the same order. */
bool elemv_equal(const struct elemv *a, const struct elemv *b);

/* elemvs_free - free the S_COUNT arrays of v and zero them (v itself is the caller's). */
void elemvs_free(struct elemv *v);

/* ownerv_push - append one identity chain. 0 or -ENOMEM. */
int ownerv_push(struct ownerv *v, uint32_t id, bool egress, bool monitor);

/* owner_cmp - by direction, then id: the order of sorted owner arrays. */
int owner_cmp(const struct owner *a, const struct owner *b);

/*
 * elements_build - every element of in, per set into v[S_COUNT] (zeroed by the caller),
 * each array sorted without duplicates. applied: the elements the kernel holds (or NULL),
 * whose allow sets are taken as they are when in->prev says they cannot have changed.
 * 0 or -ENOMEM (then v holds a part: elemvs_free it).
 */
int elements_build(const struct ruleset_input *in, const struct elemv *applied, struct elemv *v);

/* elements_owners - the identity chains of plan p, sorted (owner_cmp). 0 or -ENOMEM. */
int elements_owners(const struct moat_plan *p, struct ownerv *o);

/*
 * elements_diff_owners - the chains in old only (gone) or new only (added), both sorted.
 * Returns 1 when a chain in both changed its mode (its last rule differs: apply in full),
 * 0, or -ENOMEM.
 */
int elements_diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
			 struct ownerv *added);

/*
 * elements_diff_set - the elements of set s in old only (appended to del) or new only (add);
 * old and new sorted. Elements of a chain in gone are not listed: its set goes whole.
 * Interval sets change whole (see elements.c). 0 or -ENOMEM.
 */
int elements_diff_set(enum set_id s, const struct elemv *old, const struct elemv *new,
		      const struct ownerv *gone, struct elemv *del, struct elemv *add);

#endif
