/*
 * A bump allocator: many small allocations, one free. The YAML tree and everything a
 * policy set owns live in one, so a failed load unwinds with a single arena_free.
 */
#ifndef MOAT_POLICY_ARENA_H
#define MOAT_POLICY_ARENA_H

#include <stddef.h>

struct arena;

/* arena_new - an empty arena, or NULL on ENOMEM. Free with arena_free (NULL-safe). */
struct arena *arena_new(void);
void arena_free(struct arena *a);

/* arena_alloc - n zeroed bytes aligned for any type, or NULL on ENOMEM. n == 0 is allowed. */
void *arena_alloc(struct arena *a, size_t n);

/* arena_array - n zeroed elements of size sz (overflow-checked), or NULL. */
void *arena_array(struct arena *a, size_t n, size_t sz);

/* arena_strndup / arena_strdup - NUL-terminated copies, or NULL on ENOMEM. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);

/* arena_bytes - how many bytes the arena has handed out so far (0 for NULL). */
size_t arena_bytes(const struct arena *a);

#endif
