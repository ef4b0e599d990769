/*
 * What endpoints resolved (resolved.h): entries in an array, chained per (endpoint, answer)
 * from a power-of-two bucket array; a sweep compacts the array and chains it again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../loop.h"
#include "moat/hash.h"
#include "moat/policy.h"
#include "resolved.h"

#define NONE UINT32_MAX

struct entry {
	struct moat_addr src, dst;
	char *name;
	uint64_t expires_ms;
	uint32_t next;			/* the next entry of the same bucket, or NONE */
};

struct resolved {
	struct entry *v;
	size_t n, max;
	uint32_t *buckets;		/* max rounded up to a power of two, at least 64 */
	size_t nbuckets;
};

/* The family and the bytes of the address it uses (the rest may hold anything). */
static uint64_t addr_hash(uint64_t h, const struct moat_addr *a)
{
	h = moat_hash_bytes(h, &a->family, 1);
	return moat_hash_bytes(h, a->a, a->family == AF_INET ? 4 : 16);
}

static size_t bucket_of(const struct resolved *r, const struct moat_addr *src,
			const struct moat_addr *dst)
{
	return moat_hash_fin(addr_hash(addr_hash(MOAT_HASH_BASIS, src), dst)) & (r->nbuckets - 1);
}

int resolved_new(size_t max, struct resolved **out)
{
	struct resolved *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->max = max ? max : 1;
	for (r->nbuckets = 64; r->nbuckets < r->max; r->nbuckets *= 2)
		;
	r->v = calloc(r->max, sizeof(*r->v));
	r->buckets = malloc(r->nbuckets * sizeof(*r->buckets));
	if (!r->v || !r->buckets) {
		resolved_free(r);
		return -ENOMEM;
	}
	memset(r->buckets, 0xff, r->nbuckets * sizeof(*r->buckets));
	*out = r;
	return 0;
}

void resolved_free(struct resolved *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	free(r->buckets);
	free(r);
}

static bool same(const struct moat_addr *a, const struct moat_addr *b)
{
	return !moat_addr_cmp(a, b);
}

/* Chains every entry again, after the array changed. */
static void rechain(struct resolved *r)
{
	memset(r->buckets, 0xff, r->nbuckets * sizeof(*r->buckets));
	for (size_t i = 0; i < r->n; i++) {
		size_t b = bucket_of(r, &r->v[i].src, &r->v[i].dst);

		r->v[i].next = r->buckets[b];
		r->buckets[b] = (uint32_t)i;
	}
}

/* Drops entry i (the last takes its place). */
static void drop(struct resolved *r, size_t i)
{
	free(r->v[i].name);
	r->v[i] = r->v[--r->n];
	rechain(r);
}

/* Room for one more: what expired goes first, else the entry closest to expiring. */
static void make_room(struct resolved *r, uint64_t now_ms)
{
	size_t soonest = 0;

	resolved_sweep(r, now_ms);
	if (r->n < r->max)
		return;
	for (size_t i = 1; i < r->n; i++)
		if (r->v[i].expires_ms < r->v[soonest].expires_ms)
			soonest = i;
	drop(r, soonest);
}

int resolved_put(struct resolved *r, const struct moat_addr *src, const struct moat_addr *dst,
		 const char *name, uint64_t expires_ms)
{
	size_t b = bucket_of(r, src, dst);
	struct entry *e;

	for (uint32_t i = r->buckets[b]; i != NONE; i = r->v[i].next) {
		e = &r->v[i];
		if (same(&e->src, src) && same(&e->dst, dst) && !strcmp(e->name, name)) {
			if (expires_ms > e->expires_ms)
				e->expires_ms = expires_ms;
			return 0;
		}
	}
	if (r->n == r->max) {
		make_room(r, loop_now_ms());
		b = bucket_of(r, src, dst);
	}
	e = &r->v[r->n];
	*e = (struct entry){ *src, *dst, strdup(name), expires_ms, r->buckets[b] };
	if (!e->name)
		return -ENOMEM;
	r->buckets[b] = (uint32_t)r->n++;
	return 0;
}

bool resolved_has(void *ctx, const struct moat_addr *src, const struct moat_addr *dst,
		  const char *pattern)
{
	const struct resolved *r = ctx;
	uint64_t now = loop_now_ms();

	for (uint32_t i = r->buckets[bucket_of(r, src, dst)]; i != NONE; i = r->v[i].next) {
		const struct entry *e = &r->v[i];

		if (same(&e->src, src) && same(&e->dst, dst) && e->expires_ms > now &&
		    moat_domain_match(pattern, e->name))
			return true;
	}
	return false;
}

void resolved_each(const struct resolved *r, uint64_t now_ms,
		   void (*fn)(void *ctx, const struct moat_addr *src, const struct moat_addr *dst,
			      const char *name, uint64_t expires_ms),
		   void *ctx)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].expires_ms > now_ms)
			fn(ctx, &r->v[i].src, &r->v[i].dst, r->v[i].name, r->v[i].expires_ms);
}

void resolved_sweep(struct resolved *r, uint64_t now_ms)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].expires_ms > now_ms)
			r->v[k++] = r->v[i];
		else
			free(r->v[i].name);
	}
	if (k == r->n)
		return;
	r->n = k;
	rechain(r);
}

size_t resolved_count(const struct resolved *r)
{
	return r->n;
}
