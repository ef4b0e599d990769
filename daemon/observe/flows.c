/*
 * The flow table: an array of cap entries, chained hash buckets (indexes, not pointers) and a
 * doubly linked list from newest to oldest. Slots are handed out in order until the table is
 * full; from then on a new flow takes the oldest one's slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "flows.h"

#define NONE UINT32_MAX
#define MAX_CAP (16u << 20)

struct flows {
	struct flow *v;
	uint32_t cap, used;
	uint32_t *buckets;
	uint32_t mask;
	uint32_t newest, oldest;
	uint64_t evicted;
	uint64_t seed;
	flows_release_fn release;
	void *data;
};

/* A seeded multiply-mix over the key's bytes (addresses may be chosen by whoever sends). */
static uint64_t key_hash(const struct flows *t, const struct flow_key *k)
{
	uint64_t w[(sizeof(*k) + 7) / 8] = { 0 }, h = t->seed;

	memcpy(w, k, sizeof(*k));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		h ^= w[i];
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 32;
	}
	h *= 0xd6e8feb86659fd93ull;
	return h ^ (h >> 32);
}

static uint32_t bucket_of(const struct flows *t, const struct flow_key *k)
{
	return (uint32_t)key_hash(t, k) & t->mask;
}

int flows_new(size_t cap, flows_release_fn release, void *data, struct flows **out)
{
	struct flows *t;
	uint32_t nb = 1;

	if (!cap || cap > MAX_CAP)
		return -EINVAL;
	while (nb < cap)
		nb <<= 1;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->v = calloc(cap, sizeof(*t->v));
	t->buckets = malloc(nb * sizeof(*t->buckets));
	if (!t->v || !t->buckets) {
		free(t->v);
		free(t->buckets);
		free(t);
		return -ENOMEM;
	}
	memset(t->buckets, 0xff, nb * sizeof(*t->buckets));
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x2545f4914f6cdd1dull;
	t->cap = (uint32_t)cap, t->mask = nb - 1;
	t->newest = t->oldest = NONE;
	t->release = release, t->data = data;
	*out = t;
	return 0;
}

void flows_free(struct flows *t)
{
	if (!t)
		return;
	for (uint32_t i = t->newest; t->release && i != NONE; i = t->v[i].older)
		t->release(&t->v[i], t->data);
	free(t->v);
	free(t->buckets);
	free(t);
}

static void list_unlink(struct flows *t, uint32_t i)
{
	struct flow *f = &t->v[i];

	if (f->newer != NONE)
		t->v[f->newer].older = f->older;
	else
		t->newest = f->older;
	if (f->older != NONE)
		t->v[f->older].newer = f->newer;
	else
		t->oldest = f->newer;
}

static void list_push_newest(struct flows *t, uint32_t i)
{
	t->v[i].newer = NONE;
	t->v[i].older = t->newest;
	if (t->newest != NONE)
		t->v[t->newest].newer = i;
	else
		t->oldest = i;
	t->newest = i;
}

static void bucket_unlink(struct flows *t, uint32_t i)
{
	uint32_t *pp = &t->buckets[bucket_of(t, &t->v[i].key)];

	while (*pp != i)
		pp = &t->v[*pp].hnext;
	*pp = t->v[i].hnext;
}

static uint32_t lookup(const struct flows *t, const struct flow_key *k, uint32_t b)
{
	uint32_t i = t->buckets[b];

	while (i != NONE && memcmp(&t->v[i].key, k, sizeof(*k)))
		i = t->v[i].hnext;
	return i;
}

/* A slot for a new flow: a never used one, else the oldest flow's (evicted). */
static uint32_t slot_take(struct flows *t)
{
	uint32_t i;

	if (t->used < t->cap)
		return t->used++;
	i = t->oldest;
	if (t->release)
		t->release(&t->v[i], t->data);
	list_unlink(t, i);
	bucket_unlink(t, i);
	t->evicted++;
	return i;
}

struct flow *flows_get(struct flows *t, const struct flow_key *key, bool *fresh)
{
	uint32_t b = bucket_of(t, key), i = lookup(t, key, b);

	*fresh = i == NONE;
	if (i != NONE) {
		if (t->newest != i) {
			list_unlink(t, i);
			list_push_newest(t, i);
		}
		return &t->v[i];
	}
	i = slot_take(t);
	memset(&t->v[i], 0, sizeof(t->v[i]));
	memcpy(&t->v[i].key, key, sizeof(*key));
	t->v[i].hnext = t->buckets[b];
	t->buckets[b] = i;
	list_push_newest(t, i);
	return &t->v[i];
}

struct flow *flows_find(const struct flows *t, const struct flow_key *key)
{
	uint32_t i = lookup(t, key, bucket_of(t, key));

	return i == NONE ? NULL : &t->v[i];
}

static struct flow *at(const struct flows *t, uint32_t i)
{
	return i == NONE ? NULL : &t->v[i];
}

struct flow *flows_newest(const struct flows *t)
{
	return at(t, t->newest);
}

struct flow *flows_oldest(const struct flows *t)
{
	return at(t, t->oldest);
}

struct flow *flows_older(const struct flows *t, const struct flow *f)
{
	return at(t, f->older);
}

struct flow *flows_newer(const struct flows *t, const struct flow *f)
{
	return at(t, f->newer);
}

size_t flows_count(const struct flows *t)
{
	return t->used;
}

size_t flows_cap(const struct flows *t)
{
	return t->cap;
}

uint64_t flows_evicted(const struct flows *t)
{
	return t->evicted;
}

size_t flows_bytes(const struct flows *t)
{
	return sizeof(*t) + (size_t)t->cap * sizeof(*t->v) + ((size_t)t->mask + 1) * sizeof(uint32_t);
}
