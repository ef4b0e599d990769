/*
 * Names: interned strings with holders, so that every flow can name its endpoints and its
 * deciding policies with a 32-bit id, and an endpoint that is gone keeps its name (and the
 * labels attached to it) for as long as a flow remembers it. A name is freed when its last
 * holder drops it; a busy daemon allocates only when a name it has never held appears.
 */
#ifndef MOAT_DAEMON_NAMES_H
#define MOAT_DAEMON_NAMES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct names;

/* names_new - an empty pool. 0 and *out, or -ENOMEM. */
int names_new(struct names **out);

/* names_free - NULL-safe; frees every name whoever holds it (ids become invalid). */
void names_free(struct names *n);

/*
 * names_get - the id (never 0) of the len bytes at s, held once more for the caller, who
 * must names_drop it. A new name has no meta. 0 on ENOMEM.
 */
uint32_t names_get(struct names *n, const char *s, size_t len);

/* names_hold - one more holder of id (0 is ignored). */
void names_hold(struct names *n, uint32_t id);

/* names_drop - one holder less; the last one frees the name and its meta. 0 is ignored. */
void names_drop(struct names *n, uint32_t id);

/* names_str - the NUL-terminated string of a held id; "" for 0. */
const char *names_str(const struct names *n, uint32_t id);

/* names_meta - what names_meta_set attached (borrowed), or NULL. */
json_t *names_meta(const struct names *n, uint32_t id);

/* names_meta_set - attach meta to id, replacing (and releasing) any before; steals meta. */
void names_meta_set(struct names *n, uint32_t id, json_t *meta);

/* names_count - names alive (held at least once). */
size_t names_count(const struct names *n);

#endif
