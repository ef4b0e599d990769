/* A bump allocator of chained chunks; big requests get a chunk of their own. */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define CHUNK_BYTES (64u * 1024)
#define ALIGN alignof(max_align_t)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct chunk *head;
	size_t bytes;
};

struct arena *arena_new(void)
{
	return calloc(1, sizeof(struct arena));
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	for (struct chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* A fresh chunk for at least n bytes; a big one goes behind the head so the head keeps its room. */
static struct chunk *chunk_add(struct arena *a, size_t n)
{
	size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
	struct chunk *c = malloc(sizeof(*c) + cap);

	if (!c)
		return NULL;
	c->used = 0;
	c->cap = cap;
	if (n > CHUNK_BYTES / 4 && a->head) {
		c->next = a->head->next;
		a->head->next = c;
	} else {
		c->next = a->head;
		a->head = c;
	}
	return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct chunk *c = a->head;
	size_t need = (n + ALIGN - 1) & ~(ALIGN - 1);

	if (need < n)
		return NULL;
	if (!c || c->cap - c->used < need) {
		c = chunk_add(a, need);
		if (!c)
			return NULL;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->bytes += need;
	memset(p, 0, need);
	return p;
}

void *arena_array(struct arena *a, size_t n, size_t sz)
{
	if (sz && n > SIZE_MAX / sz)
		return NULL;
	return arena_alloc(a, n * sz);
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	if (p)
		memcpy(p, s, len);	/* arena_alloc zeroed the terminator */
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

size_t arena_bytes(const struct arena *a)
{
	return a ? a->bytes : 0;
}
