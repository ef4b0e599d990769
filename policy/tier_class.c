/* Tier classes (tier_class.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "moat/grow.h"
#include "moat/hash.h"
#include "tier_class.h"

static uint64_t key_hash(const uint32_t *key, size_t nkey)
{
	return moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS, key, nkey * sizeof(*key)));
}

const struct tier_class *tier_classes_find(const struct tier_classes *t, const uint32_t *key,
					   size_t nkey)
{
	size_t it = 0;
	uint32_t *i;

	while ((i = hmap_next(&t->by_key, key_hash(key, nkey), &it)))
		if (t->v[*i].nkey == nkey && !memcmp(t->v[*i].key, key, nkey * sizeof(*key)))
			return &t->v[*i];
	return NULL;
}

/* Is e an element of a tier list? */
static bool tier_elem(const struct lelem *e)
{
	return e->list >= MOAT_ADMIN_IN;
}

int tier_classes_add(struct tier_classes *t, const uint32_t *key, size_t nkey,
		     const struct lelem *merged, size_t n)
{
	struct tier_class c = { 0 };
	size_t first = 0;

	while (first < n && !tier_elem(&merged[first]))
		first++;		/* the NetworkPolicy lists sort first */
	c.nkey = nkey, c.n = n - first;
	c.key = malloc(nkey * sizeof(*key));
	c.v = malloc((c.n + 1) * sizeof(*c.v));
	if (!c.key || !c.v || grow((void **)&t->v, t->n, &t->cap, sizeof(*t->v)) ||
	    hmap_put(&t->by_key, key_hash(key, nkey), (uint32_t)t->n)) {
		free(c.key), free(c.v);
		return -ENOMEM;
	}
	memcpy(c.key, key, nkey * sizeof(*key));
	if (c.n)
		memcpy(c.v, merged + first, c.n * sizeof(*c.v));
	t->v[t->n++] = c;
	return 0;
}

void tier_classes_free(struct tier_classes *t)
{
	for (size_t i = 0; t && i < t->n; i++)
		free(t->v[i].key), free(t->v[i].v);
	if (t) {
		hmap_free(&t->by_key);
		free(t->v);
		*t = (struct tier_classes){ 0 };
	}
}
