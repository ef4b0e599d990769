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
 *   ingress: if ident(D) is ingress-isolated, it needs (ident(S), proto, port) in D's in list,
 *            or (proto, port) in D's in_any list;
 *   egress:  if ident(S) is egress-isolated, it needs (ident(D), proto, port) in S's out list,
 *            or (proto, port) in S's out_any list.
 * With cluster-wide policies (policy.h) each direction first looks (peer, proto, port) up in
 * its identity's Admin list: ACCEPT allows the direction and DENY denies it, final; else
 * (nothing, or a Pass, matched) NetworkPolicy decides as above where the identity is isolated
 * in that direction; elsewhere its Baseline list: DENY denies; else the direction is allowed.
 * The tier lists hold the enforced policies only: monitor-mode ones change nothing that
 * passes (moat_plan_decide finds what they say from their rules).
 * Replies of an allowed connection always pass (conntrack). The elements of one list never
 * overlap: the compiler merges port ranges per peer.
 *
 * A plan changes in two ways: compiled whole (moat_plan_compile), or updated in place by a
 * delta when endpoints come and go (moat_plan_delta_new, then _commit), at a cost that
 * follows the change, not the number of endpoints. Both give the same plan: identities
 * alike in atoms, addresses, isolation and allow lists (tests/unit/plan_delta.c holds them
 * to that after random changes).
 */
#ifndef MOAT_PLAN_H
#define MOAT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"
#include "moat/policy.h"

/*
 * One element of a list: the peer (0 in the *_any lists), protocols and ports, and what it
 * decides: ACCEPT in the NetworkPolicy lists; ACCEPT or DENY in the tier lists, or with
 * domains set (Admin and Baseline egress), first the tier's rules with domainNames peers up
 * to the domains-th of the tier (their place among such rules, from 1): when the source
 * resolved the destination through one of them (of the owner's, whose ports hold the
 * connection), allowed; else action (DENY; PASS: no decision, the evaluation goes on).
 */
struct moat_plan_allow {
	uint32_t peer;
	uint8_t proto_lo, proto_hi;
	uint16_t port_lo, port_hi;
	uint8_t action;			/* enum moat_action */
	uint16_t domains;
};

/*
 * An identity's lists. The NetworkPolicy ones (IN, IN_ANY, OUT, OUT_ANY) say what it lets in
 * and out when isolated. The tier lists (ADMIN_*, BASELINE_*) hold, per peer, protocol and
 * port, what the first matching rule of the tier's enforced policies that select it decides
 * (the compiler resolves rule order: elements never overlap); where none matches, or a Pass
 * does, there is no element and the evaluation goes on (plan.h, the model).
 */
enum moat_allow_list { MOAT_ALLOW_IN, MOAT_ALLOW_IN_ANY, MOAT_ALLOW_OUT, MOAT_ALLOW_OUT_ANY,
		       MOAT_ADMIN_IN, MOAT_ADMIN_OUT, MOAT_BASELINE_IN, MOAT_BASELINE_OUT,
		       MOAT_ALLOW_LISTS };

/* moat_list_egress - is list l about the owner's egress? */
static inline bool moat_list_egress(enum moat_allow_list l)
{
	return l == MOAT_ALLOW_OUT || l == MOAT_ALLOW_OUT_ANY || l == MOAT_ADMIN_OUT ||
	       l == MOAT_BASELINE_OUT;
}

struct moat_plan_ident {
	uint32_t id;
	bool in_iso, out_iso;
	enum moat_mode in_mode, out_mode;	/* MONITOR: deny is reported, not dropped */
	/* Is it a subject of an enforced policy of the tier with rules of the direction (its
	 * tier list is consulted, even when empty)? [0] ingress, [1] egress. */
	bool admin[2], baseline[2];
	/* What it lets in (from a peer, from anyone) and out (to a peer, to anywhere) when
	 * isolated in that direction, and its tier lists: sorted by peer, then protocol and
	 * port; empty when not isolated, or not a subject. */
	struct moat_plan_allow *allow[MOAT_ALLOW_LISTS];
	uint32_t nallow[MOAT_ALLOW_LISTS];
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

/* A rule of the policy set: pols[policy].in[rule] (ingress) or .out[rule]. */
struct moat_rule_ref {
	uint32_t policy;
	bool egress;
	uint32_t rule;
};

struct moat_plan {
	struct moat_plan_ident *idents;	/* sorted by id */
	size_t nidents;
	struct moat_plan_addr *addrs;	/* endpoint addresses, in no order: find one with
					 * moat_plan_addr_find */
	size_t naddrs;
	struct moat_plan_net *nets;	/* sorted, disjoint, covering both families */
	size_t nnets;
	size_t nallow[MOAT_ALLOW_LISTS];	/* elements of every identity's lists */
	uint32_t *endpoint_ident;	/* per endpoint: its identity on labels and named ports
					 * alone (no ipBlock applied), for when it has no address
					 * in the peer's family */
	enum moat_mode mode;		/* the global mode the plan was compiled for */
	uint32_t ndomains[2];		/* rules with domainNames peers, Admin and Baseline tier */
	/*
	 * What the node learnt from DNS answers, for verdicts on addresses: did the endpoint at
	 * src resolve a name that domain (policy.h: lowercase, "*.example.com" for a wildcard)
	 * matches to dst, unexpired? The caller sets it (moatd does); NULL: never (offline).
	 */
	bool (*resolved)(void *ctx, const struct moat_addr *src, const struct moat_addr *dst,
			 const char *domain);
	void *resolved_ctx;
	const struct moat_policy_set *ps;	/* borrowed: must outlive the plan */
	const struct moat_endpoint_set *es;	/* borrowed: must outlive the plan; a delta
						 * commit follows the changes made to it */
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

/*
 * moat_plan_stale - a plan updated by many deltas has memory only a whole compile gives
 * back (the texts and arrays of identities that went): true when that is more than the
 * compile's own. Compile it whole again at the next quiet moment.
 */
bool moat_plan_stale(const struct moat_plan *plan);

/* moat_plan_free - NULL-safe. */
void moat_plan_free(struct moat_plan *plan);

/*
 * What a delta does, for the datapath to program before it is committed. Identities keep
 * their ids; new ones get ids never used before.
 */
struct moat_plan_owned {
	uint32_t owner;			/* the identity whose list it is */
	enum moat_allow_list list;
	struct moat_plan_allow allow;
};

struct moat_plan_delta {
	const struct moat_plan_ident *idents_new;	/* with their allow lists */
	size_t nidents_new;
	const struct moat_plan_ident *idents_gone;	/* as the plan has them */
	size_t nidents_gone;
	const struct moat_plan_owned *allow_add;	/* to the lists of identities that stay */
	size_t nallow_add;
	const struct moat_plan_owned *allow_del;
	size_t nallow_del;
	const struct moat_plan_addr *addrs_add;		/* endpoint: its index once changed */
	size_t naddrs_add;
	const struct moat_plan_addr *addrs_del;		/* as the plan has them */
	size_t naddrs_del;
	void *priv;
};

/*
 * moat_plan_delta_new - what plan becomes when the endpoints at indexes gone[0..ngone) of
 * plan->es go and come[0..ncome) come, without changing plan. The caller then changes the
 * set (moat_endpoint_set_change) and commits. Cost: the changed endpoints, plus the allow
 * lists of identities that come or go. Returns 0 and *out; -ESTALE when the change needs a
 * whole compile (an endpoint in a namespace the plan was not compiled with, an address that
 * another endpoint has or had, one address twice, a bad index); -ENOMEM. come is borrowed
 * until commit or free.
 */
int moat_plan_delta_new(const struct moat_plan *plan, const size_t *gone, size_t ngone,
			const struct moat_endpoint *come, size_t ncome,
			struct moat_plan_delta **out);

/*
 * moat_plan_delta_commit - apply d to plan, after plan->es was changed by
 * moat_endpoint_set_change(es, gone, ngone, come, ncome) with the same arguments. Cannot fail
 * (delta_new reserved what it needs). Frees d.
 */
void moat_plan_delta_commit(struct moat_plan *plan, struct moat_plan_delta *d);

/* moat_plan_delta_free - drop a delta that is not committed. NULL-safe. */
void moat_plan_delta_free(struct moat_plan_delta *d);

/* moat_plan_delta_ident - identity id as plan will have it after d: plan's or d's new one. */
const struct moat_plan_ident *moat_plan_delta_ident(const struct moat_plan *plan,
						    const struct moat_plan_delta *d, uint32_t id);

/*
 * moat_plan_domains - the rules with domain names that the egress of the endpoint address src
 * consults (of enforced cluster-wide policies whose subject it is) with a name that qname
 * matches (a name a resolver answered for: any case, with or without its final dot), in
 * evaluation order: fn(ctx, tier, j, rule) for each, j the rule's place among its tier's
 * rules with domain names (from 1). Returns how many. For learning from DNS answers.
 */
size_t moat_plan_domains(const struct moat_plan *plan, const struct moat_addr *src,
			 const char *qname,
			 void (*fn)(void *ctx, enum moat_tier tier, uint32_t j,
				    const struct moat_cnp_rule *rule),
			 void *ctx);

/* moat_plan_ident_of - identity of an address: exact endpoint address, else its net range. */
uint32_t moat_plan_ident_of(const struct moat_plan *plan, const struct moat_addr *a);

/* moat_plan_addr_find - the endpoint address record for a, or NULL when no endpoint has a. */
const struct moat_plan_addr *moat_plan_addr_find(const struct moat_plan *plan,
						 const struct moat_addr *a);

/* moat_plan_ident_get - the identity record for id, or NULL. */
const struct moat_plan_ident *moat_plan_ident_get(const struct moat_plan *plan, uint32_t id);

enum moat_verdict_kind { MOAT_ALLOW, MOAT_DENY, MOAT_VIOLATION /* denied, but monitor mode */ };

/* Who decided a direction: nothing (allowed), a tier, or NetworkPolicy isolation. */
enum moat_decider { MOAT_BY_DEFAULT, MOAT_BY_ADMIN, MOAT_BY_NETPOL, MOAT_BY_BASELINE };

/* A rule of a cluster-wide policy: ps->cnps[policy].in[rule] (ingress) or .out[rule]. */
struct moat_cnp_ref {
	uint32_t policy, rule;		/* UINT32_MAX: none */
};

/*
 * A verdict, per direction (the destination's ingress, the source's egress) as the policies
 * say it, every policy counted (monitor-mode ones too); kind also says what passes.
 */
struct moat_verdict {
	enum moat_verdict_kind kind;	/* DENY: dropped; VIOLATION: passes (monitor mode) though
					 * the policies deny it */
	uint32_t src_ident, dst_ident;
	bool in_iso, out_iso;		/* is the destination isolated for ingress, the source for
					 * egress, by NetworkPolicy */
	bool in_ok, out_ok;		/* did that direction allow it */
	enum moat_decider in_by, out_by;	/* who decided */
	struct moat_rule_ref in_rule, out_rule;	/* by NETPOL and ok: the first rule that allowed
						 * it; policy and rule are UINT32_MAX otherwise */
	struct moat_cnp_ref in_cnp, out_cnp;	/* by ADMIN or BASELINE: the deciding rule */
	struct moat_cnp_ref in_pass, out_pass;	/* the Admin Pass rule that handed it on */
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
