/*
 * Element multisets (elemset.h): per set, a dense array of (element, parts) and an open
 * addressing table of positions in it, at most half full. A removal moves the last element
 * into the hole, so the array stays dense and a walk costs what the set holds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elemset.h"
#include "moat/hash.h"

struct eent {
	struct elem e;
	uint32_t parts;
};

struct eset {
	struct eent *v;
	size_t n, cap;
	uint32_t *pos;			/* 1 + index into v; 0: empty */
	size_t npos;			/* a power of two */
};

struct elemset {
	struct eset s[S_COUNT];
};

int elemset_new(struct elemset **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void elemset_free(struct elemset *es)
{
	if (!es)
		return;
	for (int s = 0; s < S_COUNT; s++) {
		free(es->s[s].v);
		free(es->s[s].pos);
	}
	free(es);
}

/* Seeded: elements hold addresses and names that containers choose. */
static size_t elem_hash(const struct elem *e)
{
	uint64_t w[(sizeof(*e) + 7) / 8] = { 0 }, h = moat_hash_seed();

	memcpy(w, e, sizeof(*e));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		h ^= w[i];
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 32;
	}
	return (size_t)moat_hash_fin(h);
}

/* The slot of pos that holds e, or the empty slot where it would go. */
static size_t slot_of(const struct eset *t, const struct elem *e)
{
	size_t mask = t->npos - 1, i = elem_hash(e) & mask;

	while (t->pos[i] && memcmp(&t->v[t->pos[i] - 1].e, e, sizeof(*e)))
		i = (i + 1) & mask;
	return i;
}

static int rehash(struct eset *t, size_t npos)
{
	uint32_t *pos = calloc(npos, sizeof(*pos));

	if (!pos)
		return -ENOMEM;
	free(t->pos);
	t->pos = pos, t->npos = npos;
	for (size_t k = 0; k < t->n; k++)
		t->pos[slot_of(t, &t->v[k].e)] = k + 1;
	return 0;
}

/* Room for one more element in v and in pos. */
static int room(struct eset *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct eent *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v, t->cap = cap;
	}
	if (2 * (t->n + 1) <= t->npos)
		return 0;
	return rehash(t, t->npos ? 2 * t->npos : 128);
}

int elemset_add(struct elemset *es, enum set_id s, const struct elem *e)
{
	struct eset *t = &es->s[s];
	size_t i;

	if (room(t))
		return -ENOMEM;
	i = slot_of(t, e);
	if (t->pos[i]) {
		t->v[t->pos[i] - 1].parts++;
		return 0;
	}
	t->v[t->n] = (struct eent){ *e, 1 };
	t->pos[i] = ++t->n;
	return 1;
}

/* Empties slot i and moves later entries of its run back where probing finds them. */
static void slot_clear(struct eset *t, size_t i)
{
	size_t mask = t->npos - 1, j = i;

	t->pos[i] = 0;
	for (j = (j + 1) & mask; t->pos[j]; j = (j + 1) & mask) {
		size_t home = elem_hash(&t->v[t->pos[j] - 1].e) & mask;

		if (i <= j ? home > i && home <= j : home > i || home <= j)
			continue;	/* still reachable from its home */
		t->pos[i] = t->pos[j];
		t->pos[j] = 0;
		i = j;
	}
}

int elemset_del(struct elemset *es, enum set_id s, const struct elem *e)
{
	struct eset *t = &es->s[s];
	size_t i, k, last;

	if (!t->npos || !t->pos[i = slot_of(t, e)])
		return -ENOENT;
	k = t->pos[i] - 1;
	if (--t->v[k].parts)
		return 0;
	slot_clear(t, i);
	last = --t->n;
	if (k != last) {	/* the last element fills the hole */
		t->pos[slot_of(t, &t->v[last].e)] = k + 1;
		t->v[k] = t->v[last];
	}
	return 1;
}

bool elemset_has(const struct elemset *es, enum set_id s, const struct elem *e)
{
	const struct eset *t = &es->s[s];

	return t->npos && t->pos[slot_of(t, e)];
}

size_t elemset_count(const struct elemset *es, enum set_id s, uint32_t owner)
{
	const struct eset *t = &es->s[s];
	size_t n = 0;

	if (!owner)
		return t->n;
	for (size_t k = 0; k < t->n; k++)
		n += t->v[k].e.owner == owner;
	return n;
}

int elemset_list(const struct elemset *es, enum set_id s, struct elemv *v)
{
	const struct eset *t = &es->s[s];
	size_t from = v->n;

	for (size_t k = 0; k < t->n; k++)
		if (elemv_push(v, &t->v[k].e))
			return -ENOMEM;
	if (v->n - from > 1)
		qsort(v->v + from, v->n - from, sizeof(*v->v), elem_cmp);
	return 0;
}

int elemset_add_all(struct elemset *es, const struct elemv *v)
{
	for (int s = 0; s < S_COUNT; s++)
		for (size_t i = 0; i < v[s].n; i++)
			if (elemset_add(es, s, &v[s].v[i]) < 0)
				return -ENOMEM;
	return 0;
}
