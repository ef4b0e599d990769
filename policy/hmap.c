/* The hash multimap (hmap.h). */
#include <errno.h>
#include <stdlib.h>

#include "hmap.h"

void hmap_free(struct hmap *m)
{
	free(m->h);
	free(m->v);
	*m = (struct hmap){ 0 };
}

static void put_at(struct hmap *m, uint64_t h, uint32_t v)
{
	size_t i = h & (m->cap - 1);

	while (m->h[i])
		i = (i + 1) & (m->cap - 1);
	m->h[i] = h;
	m->v[i] = v;
	m->n++;
}

/* Rehashes into cap slots, walking from an empty slot so equal hashes keep their order. */
static int rehash(struct hmap *m, size_t cap)
{
	struct hmap n = { calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(uint32_t)), cap, 0 };
	size_t start = 0;

	if (!n.h || !n.v) {
		free(n.h), free(n.v);
		return -ENOMEM;
	}
	while (m->cap && m->h[start])
		start++;	/* a table at most half full has an empty slot */
	for (size_t k = 0; k < m->cap; k++) {
		size_t i = (start + k) & (m->cap - 1);

		if (m->h[i])
			put_at(&n, m->h[i], m->v[i]);
	}
	free(m->h), free(m->v);
	*m = n;
	return 0;
}

int hmap_reserve(struct hmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;

	while (2 * n > cap)
		cap *= 2;
	return cap == m->cap ? 0 : rehash(m, cap);
}

int hmap_put(struct hmap *m, uint64_t h, uint32_t v)
{
	if (hmap_reserve(m, m->n + 1))
		return -ENOMEM;
	put_at(m, h, v);
	return 0;
}

uint32_t *hmap_next(const struct hmap *m, uint64_t h, size_t *it)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = *it ? *it - 1 : h & (m->cap - 1); m->h[i]; i = (i + 1) & (m->cap - 1))
		if (m->h[i] == h) {
			*it = ((i + 1) & (m->cap - 1)) + 1;
			return &m->v[i];
		}
	return NULL;
}

/* Is slot j's entry, whose home is k, still reachable from k with slot i empty? */
static bool reachable(size_t k, size_t i, size_t j)
{
	return i <= j ? k > i && k <= j : k > i || k <= j;
}

bool hmap_del(struct hmap *m, uint64_t h, uint32_t v)
{
	size_t it = 0, i, j, mask = m->cap - 1;
	uint32_t *p;

	while ((p = hmap_next(m, h, &it)) && *p != v)
		;
	if (!p)
		return false;
	i = (size_t)(p - m->v);
	for (j = (i + 1) & mask; m->h[j]; j = (j + 1) & mask) {
		if (reachable(m->h[j] & mask, i, j))
			continue;
		m->h[i] = m->h[j], m->v[i] = m->v[j];
		i = j;
	}
	m->h[i] = 0;
	m->n--;
	return true;
}
