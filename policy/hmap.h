/*
 * A hash multimap from 64-bit hashes to 32-bit values: open addressing, linear probing, at
 * most half full. Several values may share a hash: callers check each hit. Deleting keeps
 * every other entry findable (backward shift), and the order of a hash's values unchanged.
 */
#ifndef MOAT_POLICY_HMAP_H
#define MOAT_POLICY_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zero-initialise. Hash 0 is not a key: pass moat_hash_fin's results (never 0). */
struct hmap {
	uint64_t *h;
	uint32_t *v;
	size_t cap, n;
};

/* hmap_free - what m holds (m itself is the caller's); m is empty and usable after. */
void hmap_free(struct hmap *m);

/* hmap_put - add (h, v), after the values h has already. 0 or -ENOMEM (m unchanged). */
int hmap_put(struct hmap *m, uint64_t h, uint32_t v);

/*
 * hmap_next - the next value stored under h, or NULL when none is left. Start with *it = 0.
 * The pointer is valid until the next put or del; a caller may change the value through it.
 */
uint32_t *hmap_next(const struct hmap *m, uint64_t h, size_t *it);

/* hmap_del - remove the entry (h, v); false when there is none. */
bool hmap_del(struct hmap *m, uint64_t h, uint32_t v);

/* hmap_reserve - room for n entries in all, so the puts up to that cannot fail. 0 or -ENOMEM. */
int hmap_reserve(struct hmap *m, size_t n);

#endif
