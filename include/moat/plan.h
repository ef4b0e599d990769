/*
 * The compiled plan: policies plus endpoints lowered into the sets and maps the daemon
 * programs into nftables. The same plan answers matrix and explain, so what Moat explains
 * is what it enforces.
 *
 * The model. Every address gets an identity: a 32-bit id shared by all addresses that every
 * selector, ipBlock and named port treats alike (an equivalence class, so the plan grows with
 * endpoints plus label groups, never with pairs of endpoints). Endpoint addresses are looked
 * up exactly (addrs); every other address falls in exactly one range of nets, which together
 * cover the whole IPv4 and IPv6 space (the world is an identity too). A new connection from S
 * to D on proto/port passes
 *   ingress: if ident(D) is ingress-isolated, it needs (ident(S), ident(D), proto, port) in
 *            allow_in, or (ident(D), proto, port) in allow_in_any;
 *   egress:  if ident(S) is egress-isolated, it needs (ident(S), ident(D), proto, port) in
 *            allow_out, or (ident(S), proto, port) in allow_out_any.
 * Replies of an allowed connection always pass (conntrack). Elements of one set never
 * overlap: the compiler merges port ranges per key.
 */
#ifndef MOAT_PLAN_H
#define MOAT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"
#include "moat/policy.h"

struct moat_plan_ident {
	uint32_t id;
	bool in_iso, out_iso;
	enum moat_mode in_mode, out_mode;	/* MONITOR: deny is reported, not dropped */
};

struct moat_plan_addr {
	struct moat_addr addr;
	uint32_t ident;
	uint32_t endpoint;		/* index into the endpoint set */
};

/* Inclusive range [lo, hi] of one family. */
struct moat_plan_net {
	uint8_t family;
	uint8_t lo[16], hi[16];
	uint32_t ident;
};

/* One set element. For the *_any sets, src (allow_out_any) or dst (allow_in_any) is unused (0). */
struct moat_plan_elem {
	uint32_t src, dst;
	uint8_t proto_lo, proto_hi;
	uint16_t port_lo, port_hi;
};

/* A rule of the policy set: pols[policy].in[rule] (ingress) or .out[rule]. */
struct moat_rule_ref {
	uint32_t policy;
	bool egress;
	uint32_t rule;
};

struct moat_plan {
	struct moat_plan_ident *idents;	/* sorted by id */
	size_t nidents;
	struct moat_plan_addr *addrs;	/* endpoint addresses, sorted by family then address */
	size_t naddrs;
	struct moat_plan_net *nets;	/* sorted, disjoint, covering both families */
	size_t nnets;
	struct moat_plan_elem *allow_in, *allow_in_any, *allow_out, *allow_out_any;
	size_t nallow_in, nallow_in_any, nallow_out, nallow_out_any;
	uint32_t *endpoint_ident;	/* per endpoint: its identity on labels and named ports
					 * alone (no ipBlock applied), for when it has no address
					 * in the peer's family */
	enum moat_mode mode;		/* the global mode the plan was compiled for */
	const struct moat_policy_set *ps;	/* borrowed: must outlive the plan */
	const struct moat_endpoint_set *es;	/* borrowed: must outlive the plan */
	void *priv;			/* compiler state (id table, reasons); not for callers */
};

/*
 * moat_plan_compile - lower ps and es into a plan.
 * mode: the global mode; MONITOR makes every isolated identity monitor-only, ENFORCE leaves
 * each policy's own mode (an identity is enforced in a direction when any policy isolating
 * it there is in enforce mode).
 * prev: the plan this one replaces, or NULL; identities keep their ids from prev wherever
 * their class is unchanged, so applying the difference touches only what changed.
 * Returns 0 and sets *out, or -ENOMEM. ps and es are borrowed by the plan.
 */
int moat_plan_compile(const struct moat_policy_set *ps, const struct moat_endpoint_set *es,
		      enum moat_mode mode, const struct moat_plan *prev, struct moat_plan **out);

/* moat_plan_free - NULL-safe. */
void moat_plan_free(struct moat_plan *plan);

/* moat_plan_ident_of - identity of an address: exact endpoint address, else its net range. */
uint32_t moat_plan_ident_of(const struct moat_plan *plan, const struct moat_addr *a);

/* moat_plan_addr_find - the endpoint address record for a, or NULL when no endpoint has a. */
const struct moat_plan_addr *moat_plan_addr_find(const struct moat_plan *plan,
						 const struct moat_addr *a);

/* moat_plan_ident_get - the identity record for id, or NULL. */
const struct moat_plan_ident *moat_plan_ident_get(const struct moat_plan *plan, uint32_t id);

enum moat_verdict_kind { MOAT_ALLOW, MOAT_DENY, MOAT_VIOLATION /* denied, but monitor mode */ };

struct moat_verdict {
	enum moat_verdict_kind kind;
	uint32_t src_ident, dst_ident;
	bool in_iso, out_iso;		/* is the destination isolated for ingress, the source for egress */
	bool in_ok, out_ok;		/* did that direction allow it (true when not isolated) */
	struct moat_rule_ref in_rule, out_rule;	/* the first rule that allowed it, when isolated and ok;
						 * policy and rule are UINT32_MAX otherwise */
	bool loopback;			/* an endpoint to itself: never leaves its namespace, so
					 * kind is ALLOW whatever the sets say (the rest tells) */
};

/*
 * moat_plan_decide - the verdict for a new connection, evaluated on the plan's sets exactly
 * as the kernel evaluates them. proto is an IPPROTO_* number; port is ignored for protocols
 * without ports.
 */
void moat_plan_decide(const struct moat_plan *plan, const struct moat_addr *src,
		      const struct moat_addr *dst, uint8_t proto, uint16_t port,
		      struct moat_verdict *out);

/*
 * moat_plan_decide_kind - the kind of verdict alone between identities src_ident and
 * dst_ident (moat_plan_ident_of), as moat_plan_decide gives it, without looking for the
 * rules that allowed it: for tables of many pairs.
 */
enum moat_verdict_kind moat_plan_decide_kind(const struct moat_plan *plan, uint32_t src_ident,
					     uint32_t dst_ident, uint8_t proto, uint16_t port);

/*
 * moat_plan_decide_table - the kind of verdict for every ordered pair of the n identities
 * ids (sorted, distinct): kinds[i * n + j] (an enum moat_verdict_kind) for ids[i] to ids[j],
 * as moat_plan_decide_kind gives each, in time n^2 plus one pass over the plan's sets
 * instead of n^2 lookups. kinds holds n * n bytes. Returns 0, or -ENOMEM (kinds undefined).
 */
int moat_plan_decide_table(const struct moat_plan *plan, const uint32_t *ids, size_t n,
			   uint8_t proto, uint16_t port, uint8_t *kinds);

/*
 * moat_plan_decide_endpoints - the verdict between two endpoints (indexes into the set):
 * every same-family address pair must be allowed; endpoints with no address in common
 * families are decided on their address-less identities.
 */
void moat_plan_decide_endpoints(const struct moat_plan *plan, size_t from, size_t to,
				uint8_t proto, uint16_t port, struct moat_verdict *out);

/*
 * moat_plan_isolating - the policies (indexes into ps->pols) that select identity id for a
 * direction. Returns how many; *pols points into the plan.
 */
size_t moat_plan_isolating(const struct moat_plan *plan, uint32_t id, bool egress,
			   const uint32_t **pols);

#endif
