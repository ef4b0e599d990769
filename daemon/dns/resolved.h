/*
 * What endpoints resolved: for each (endpoint address, answer address) the names it asked a
 * resolver for that answered with that address, each until its time to live runs out. moatd
 * keeps it beside the kernel's sets (which forget on their own) to name a verdict's rule
 * (moat_plan's resolved), and to put the sets back after a full apply empties them.
 * Bounded: past max entries the one closest to expiring goes.
 */
#ifndef MOAT_DNS_RESOLVED_H
#define MOAT_DNS_RESOLVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"

struct resolved;

/* resolved_new - an empty table of at most max entries. 0 and *out, or -ENOMEM. */
int resolved_new(size_t max, struct resolved **out);

/* resolved_free - NULL-safe. */
void resolved_free(struct resolved *r);

/*
 * resolved_put - src resolved name (lowercase, no final dot) to dst, until expires_ms (the
 * loop's clock); a later expiry of the same triple replaces an earlier one. 0 or -ENOMEM.
 */
int resolved_put(struct resolved *r, const struct moat_addr *src, const struct moat_addr *dst,
		 const char *name, uint64_t expires_ms);

/*
 * resolved_has - did src resolve a name that pattern (a domainNames peer's) matches to dst,
 * unexpired at now_ms? The shape of moat_plan's resolved (ctx: r; now: the loop's clock).
 */
bool resolved_has(void *r, const struct moat_addr *src, const struct moat_addr *dst,
		  const char *pattern);

/* resolved_each - fn for every entry unexpired at now_ms, with its expiry. */
void resolved_each(const struct resolved *r, uint64_t now_ms,
		   void (*fn)(void *ctx, const struct moat_addr *src, const struct moat_addr *dst,
			      const char *name, uint64_t expires_ms),
		   void *ctx);

/* resolved_sweep - forget what expired by now_ms. */
void resolved_sweep(struct resolved *r, uint64_t now_ms);

/* resolved_count - entries held (expired ones until a sweep). */
size_t resolved_count(const struct resolved *r);

#endif
