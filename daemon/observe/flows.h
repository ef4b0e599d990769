/*
 * The flow table: what moatd has seen, one entry per (source, destination, protocol,
 * destination port), bounded. A side is an endpoint (by name, so its v4 and v6 addresses
 * and all its networks are one flow) or an external address. Entries live in one array
 * allocated up front; a hash finds them and a list keeps them in order of last sight, so a
 * record costs O(1) and, in steady state, no allocation. When the table is full the least
 * recently seen flow is evicted (and counted), never a newer one.
 */
#ifndef MOAT_DAEMON_FLOWS_H
#define MOAT_DAEMON_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"

/* One side: an endpoint (name: an id from struct names, addr zero) or an address (name 0). */
struct flow_peer {
	uint32_t name;
	struct moat_addr addr;
};

/* Build keys from a zeroed struct (memset): keys are hashed and compared as bytes. */
struct flow_key {
	struct flow_peer src, dst;
	uint8_t proto;
	uint16_t port;		/* destination port; 0 for protocols without ports */
};

enum flow_verdict { FLOW_ALLOWED, FLOW_DENIED, FLOW_VIOLATION, FLOW_NVERDICTS };

struct flow {
	struct flow_key key;
	struct moat_addr saddr, daddr;	/* the addresses of the last record */
	int64_t first_ms, last_ms;	/* unix ms */
	int64_t shown_ms;		/* last streamed to followers */
	uint64_t count;			/* records (connection starts and drops) */
	uint32_t policy;		/* names id of the deciding policies; 0: none */
	uint8_t verdict;		/* enum flow_verdict of the last record */
	uint8_t kind;			/* enum capture_kind of the last record */
	uint8_t alerted;		/* bit (1 << verdict) once alerted for that verdict */
	uint32_t hnext, newer, older;	/* the table's links */
};

struct flows;

/* Called with a flow about to be evicted (or freed), so its owner releases what it holds. */
typedef void (*flows_release_fn)(const struct flow *f, void *data);

/*
 * flows_new - a table of at most cap flows (1 .. 16M); memory for all of them is reserved
 * now (pages are touched as flows arrive). release may be NULL. 0 and *out, -EINVAL, -ENOMEM.
 */
int flows_new(size_t cap, flows_release_fn release, void *data, struct flows **out);

/* flows_free - NULL-safe; release runs for every flow still in the table. */
void flows_free(struct flows *t);

/*
 * flows_get - the flow of key, now the most recently seen. When there is none it is
 * created: *fresh is set and every field but key is zero; a full table first evicts its
 * least recently seen flow (release runs for it). Never fails, never allocates.
 */
struct flow *flows_get(struct flows *t, const struct flow_key *key, bool *fresh);

/* flows_find - the flow of key or NULL; the order is not changed. */
struct flow *flows_find(const struct flows *t, const struct flow_key *key);

/* Iteration by last sight: flows_newest then flows_older until NULL (or the reverse). */
struct flow *flows_newest(const struct flows *t);
struct flow *flows_oldest(const struct flows *t);
struct flow *flows_older(const struct flows *t, const struct flow *f);
struct flow *flows_newer(const struct flows *t, const struct flow *f);

size_t flows_count(const struct flows *t);
size_t flows_cap(const struct flows *t);
/* flows_evicted - flows pushed out by newer ones since flows_new. */
uint64_t flows_evicted(const struct flows *t);
/* flows_bytes - memory the table reserved (entries and buckets). */
size_t flows_bytes(const struct flows *t);

#endif
