/*
 * What the kernel holds, set by set: each distinct element with how many parts of the state
 * (an endpoint, an address, an identity's list) put it there. A change adds and removes
 * parts; an element reaches the kernel when its first part comes and leaves it with its last
 * (two endpoints may name the same veth or MAC). Lookups and changes cost the same whatever
 * the number of elements. Pure: unit tests hold it without root.
 */
#ifndef MOAT_DATAPATH_ELEMSET_H
#define MOAT_DATAPATH_ELEMSET_H

#include <stdbool.h>
#include <stddef.h>

#include "elements.h"
#include "schema.h"

struct elemset;

/* elemset_new - empty. 0 and *out (free with elemset_free), or -ENOMEM. */
int elemset_new(struct elemset **out);

/* elemset_free - NULL-safe. */
void elemset_free(struct elemset *es);

/* elemset_add - one more part has e in set s. 1 when e is new, 0 when it was there, or
 * -ENOMEM (es unchanged). */
int elemset_add(struct elemset *es, enum set_id s, const struct elem *e);

/* elemset_del - one part less has e. 1 when e is gone now, 0 when others still have it,
 * -ENOENT when e is not there (es unchanged). */
int elemset_del(struct elemset *es, enum set_id s, const struct elem *e);

/* elemset_has - is e in set s? */
bool elemset_has(const struct elemset *es, enum set_id s, const struct elem *e);

/* elemset_count - distinct elements of set s; with owner != 0, those of that owner's set
 * only (costs a walk of the set). */
size_t elemset_count(const struct elemset *es, enum set_id s, uint32_t owner);

/* elemset_list - append the distinct elements of set s to v, sorted (elem_cmp). 0 or -ENOMEM. */
int elemset_list(const struct elemset *es, enum set_id s, struct elemv *v);

/* elemset_add_all - elemset_add every element of v[S_COUNT]. 0 or -ENOMEM (es holds a part). */
int elemset_add_all(struct elemset *es, const struct elemv *v);

#endif
