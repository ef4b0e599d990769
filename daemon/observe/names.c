/* Interned names: a chained hash of strings, ids are 1 + the slot, freed slots are reused. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "moat/hash.h"
#include "names.h"

#define NONE UINT32_MAX

struct name {
	char *s;		/* NULL: a free slot */
	uint32_t len, refs;
	uint64_t hash;
	uint32_t next;		/* bucket chain, or the free list */
	json_t *meta;
};

struct names {
	struct name *v;
	uint32_t n, cap, live;
	uint32_t free_head;
	uint32_t *buckets;	/* nbuckets is a power of two >= cap */
	uint32_t nbuckets;
};

/* Seeded, so that names chosen by whoever starts containers cannot be made to collide. */
static uint64_t hash(const char *s, size_t len)
{
	return moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS ^ moat_hash_seed(), s, len));
}

int names_new(struct names **out)
{
	struct names *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->free_head = NONE;
	*out = n;
	return 0;
}

void names_free(struct names *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->n; i++) {
		free(n->v[i].s);
		json_decref(n->v[i].meta);
	}
	free(n->v);
	free(n->buckets);
	free(n);
}

static void bucket_insert(struct names *n, uint32_t slot)
{
	uint32_t b = (uint32_t)(n->v[slot].hash & (n->nbuckets - 1));

	n->v[slot].next = n->buckets[b];
	n->buckets[b] = slot;
}

/* Doubles slots and buckets (rehashing every live name). */
static int grow(struct names *n)
{
	uint32_t cap = n->cap ? n->cap * 2 : 64;
	struct name *v = realloc(n->v, cap * sizeof(*v));
	uint32_t *b;

	if (!v)
		return -ENOMEM;
	n->v = v;
	if (!(b = malloc(cap * sizeof(*b))))
		return -ENOMEM;
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = cap;
	n->cap = cap;
	memset(b, 0xff, cap * sizeof(*b));
	for (uint32_t i = 0; i < n->n; i++)
		if (n->v[i].s)
			bucket_insert(n, i);
	return 0;
}

static uint32_t find(const struct names *n, const char *s, size_t len, uint64_t h)
{
	if (!n->nbuckets)
		return NONE;
	for (uint32_t i = n->buckets[h & (n->nbuckets - 1)]; i != NONE; i = n->v[i].next)
		if (n->v[i].hash == h && n->v[i].len == len && !memcmp(n->v[i].s, s, len))
			return i;
	return NONE;
}

static uint32_t slot_take(struct names *n)
{
	uint32_t i = n->free_head;

	if (i != NONE) {
		n->free_head = n->v[i].next;
		return i;
	}
	if (n->n == n->cap && grow(n) < 0)
		return NONE;
	return n->n++;
}

uint32_t names_get(struct names *n, const char *s, size_t len)
{
	uint64_t h = hash(s, len);
	uint32_t i = find(n, s, len, h);
	char *copy;

	if (i != NONE) {
		n->v[i].refs++;
		return i + 1;
	}
	if (len >= UINT32_MAX || !(copy = malloc(len + 1)))
		return 0;
	i = slot_take(n);
	if (i == NONE) {
		free(copy);
		return 0;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	n->v[i] = (struct name){ copy, (uint32_t)len, 1, h, NONE, NULL };
	bucket_insert(n, i);
	n->live++;
	/* cppcheck-suppress memleak ; copy is owned by n->v[i] now (freed by names_drop/_free) */
	return i + 1;
}

void names_hold(struct names *n, uint32_t id)
{
	if (id)
		n->v[id - 1].refs++;
}

static void unlink_bucket(struct names *n, uint32_t slot)
{
	uint32_t *pp = &n->buckets[n->v[slot].hash & (n->nbuckets - 1)];

	while (*pp != slot)
		pp = &n->v[*pp].next;
	*pp = n->v[slot].next;
}

void names_drop(struct names *n, uint32_t id)
{
	struct name *e;

	if (!id)
		return;
	e = &n->v[id - 1];
	if (--e->refs)
		return;
	unlink_bucket(n, id - 1);
	free(e->s);
	json_decref(e->meta);
	*e = (struct name){ .next = n->free_head };
	n->free_head = id - 1;
	n->live--;
}

const char *names_str(const struct names *n, uint32_t id)
{
	return id ? n->v[id - 1].s : "";
}

json_t *names_meta(const struct names *n, uint32_t id)
{
	return id ? n->v[id - 1].meta : NULL;
}

void names_meta_set(struct names *n, uint32_t id, json_t *meta)
{
	if (!id) {
		json_decref(meta);
		return;
	}
	json_decref(n->v[id - 1].meta);
	n->v[id - 1].meta = meta;
}

size_t names_count(const struct names *n)
{
	return n->live;
}
