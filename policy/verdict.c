/*
 * Verdicts from a compiled plan: the allow decision is read from the plan's sets exactly as
 * the kernel reads them; the rule named as the reason is found by testing each isolating
 * policy's rules against the two identities' atoms (the compiler's other half of the truth,
 * so a unit test can hold the two against each other).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "moat/proto.h"
#include "plan_policy.h"
#include "plan_priv.h"

size_t moat_plan_isolating(const struct moat_plan *plan, uint32_t id, bool egress,
			   const uint32_t **pols)
{
	const struct plan_priv *pv = plan->priv;
	uint32_t i = plan_ident_index(plan, id);

	if (i == PLAN_NONE) {
		*pols = NULL;
		return 0;
	}
	*pols = pv->ids[i].pols[egress];
	return pv->ids[i].npols[egress];
}

/* ---- list lookups, as the kernel does them ---- */

/* The element of list l of identity o (the list's owner) that holds (peer, proto, port). */
static const struct moat_plan_allow *list_find(const struct moat_plan_ident *o,
					       enum moat_allow_list l, uint32_t peer,
					       uint8_t proto, uint16_t port)
{
	const struct moat_plan_allow *v = o ? o->allow[l] : NULL;
	size_t lo = 0, hi = o ? o->nallow[l] : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].peer < peer)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; v && lo < o->nallow[l] && v[lo].peer == peer; lo++)
		if (proto >= v[lo].proto_lo && proto <= v[lo].proto_hi && port >= v[lo].port_lo &&
		    port <= v[lo].port_hi)
			return &v[lo];
	return NULL;
}

/* Is (peer, proto, port) in the list l of identity id (the list's owner)? */
static bool list_has(const struct moat_plan *plan, uint32_t id, enum moat_allow_list l,
		     uint32_t peer, uint8_t proto, uint16_t port)
{
	return list_find(moat_plan_ident_get(plan, id), l, peer, proto, port) != NULL;
}

/* ---- the reason: which rule allowed it ---- */

/* Does a named port of proto 0 (a cluster-wide policy's) name dst's port proto/port? */
static bool nport_any_is(const struct plan_priv *pv, uint32_t dst, const char *name,
			 uint8_t proto, uint16_t port)
{
	uint8_t p;
	int v = plan_nport_any(pv->atoms, pv->ids[dst].atoms, pv->ids[dst].natoms, name, &p);

	return v >= 0 && p == proto && v == port;
}

static bool port_match(const struct plan_priv *pv, const struct moat_port *ports, size_t nports,
		       uint32_t dst, bool named_ok, uint8_t proto, uint16_t port)
{
	if (!nports)
		return true;
	for (size_t k = 0; k < nports; k++) {
		const struct moat_port *p = &ports[k];
		uint16_t hi = p->end_port > p->port ? p->end_port : p->port;

		if (p->name && !p->proto && named_ok && nport_any_is(pv, dst, p->name, proto, port))
			return true;
		if (p->proto != proto)
			continue;
		if (p->name ? named_ok && plan_ident_nport(pv, dst, p->name, proto) == port
			    : !p->port || (port >= p->port && port <= hi))
			return true;
	}
	return false;
}

/* Does rule r (of policy p, direction egress) allow src -> dst (identity indexes)? */
static bool rule_allows(const struct moat_plan *plan, uint32_t p, bool egress, uint32_t r,
			uint32_t src, uint32_t dst, uint8_t proto, uint16_t port)
{
	const struct plan_priv *pv = plan->priv;
	const struct moat_netpol *pol = &plan->ps->pols[p];
	const struct moat_rule *rule = egress ? &pol->out[r] : &pol->in[r];
	const uint32_t *peers = pv->rule_peers[egress][pv->rule_base[egress][p] + r];

	if (!rule->npeers)
		return port_match(pv, rule->ports, rule->nports, dst, true, proto, port);
	for (size_t k = 0; k < rule->npeers; k++) {
		bool named_ok = !egress || rule->peers[k].kind == MOAT_PEER_PODS;

		if (plan_ident_has(pv, egress ? dst : src, peers[k]) &&
		    port_match(pv, rule->ports, rule->nports, dst, named_ok, proto, port))
			return true;
	}
	return false;
}

/* The first rule, in policy then rule order, of the policies isolating one side. */
static struct moat_rule_ref find_rule(const struct moat_plan *plan, bool egress, uint32_t src,
				      uint32_t dst, uint8_t proto, uint16_t port)
{
	const struct plan_priv *pv = plan->priv;
	const struct plan_ident_priv *side = &pv->ids[egress ? src : dst];

	for (uint32_t i = 0; i < side->npols[egress]; i++) {
		uint32_t p = side->pols[egress][i];
		size_t n = egress ? plan->ps->pols[p].nout : plan->ps->pols[p].nin;

		for (uint32_t r = 0; r < n; r++)
			if (rule_allows(plan, p, egress, r, src, dst, proto, port))
				return (struct moat_rule_ref){ p, egress, r };
	}
	return (struct moat_rule_ref){ PLAN_NONE, egress, PLAN_NONE };
}

/* ---- the tiers: what is enforced from the lists, what the policies say from the rules ---- */

/* The connection a verdict is about: identity indexes, and the addresses when known (a
 * domain name peer holds an address only as the source resolved it). */
struct conn {
	uint32_t src_id, dst_id;
	uint32_t src, dst;		/* indexes in plan->idents */
	const struct moat_addr *sa, *da;
	uint8_t proto;
	uint16_t port;
};

static bool domain_resolved(const struct moat_plan *plan, const struct conn *k,
			    const struct moat_peer *peer)
{
	return peer->kind == MOAT_PEER_DOMAIN && k->sa && k->da && plan->resolved &&
	       plan->resolved(plan->resolved_ctx, k->sa, k->da, peer->domain);
}

/* Does rule r of cluster-wide policy c (direction egress) match connection k? */
static bool cnp_rule_matches(const struct moat_plan *plan, uint32_t c, bool egress, uint32_t r,
			     const struct conn *k)
{
	const struct plan_priv *pv = plan->priv;
	const struct plan_policy *st = pv->policy;
	const struct moat_cnp *cnp = &plan->ps->cnps[c];
	const struct moat_cnp_rule *rule = egress ? &cnp->out[r] : &cnp->in[r];
	const uint32_t *peers = st->cnp_rule_peers[egress][st->cnp_rule_base[egress][c] + r];

	for (size_t i = 0; i < rule->npeers; i++)
		if (peers[i] != PLAN_NONE ? plan_ident_has(pv, egress ? k->dst : k->src, peers[i])
					  : egress && domain_resolved(plan, k, &rule->peers[i]))
			return port_match(pv, rule->ports, rule->nports, k->dst, true, k->proto,
					  k->port);
	return false;
}

/*
 * An element with domains: did the source resolve the destination through one of the
 * owner's (enforced) rules of the tier with domain names up to the domains-th, whose ports
 * hold the connection? Then the element's action does not apply: allowed.
 */
static bool domains_allow(const struct moat_plan *plan, enum moat_tier tier, uint16_t domains,
			  const struct conn *k)
{
	const struct plan_priv *pv = plan->priv;
	const struct plan_policy *st = pv->policy;

	for (uint32_t i = 0; i < st->ndns_rules; i++) {
		const struct dns_rule *d = &st->dns_rules[i];
		const struct moat_cnp *c = &plan->ps->cnps[d->c];

		if (c->tier != tier || d->j > domains || c->mode != MOAT_MODE_ENFORCE ||
		    !plan_atoms_have(pv->ids[k->src].atoms, pv->ids[k->src].natoms,
				     st->cnp_subject[d->c]))
			continue;
		for (size_t p = 0; p < c->out[d->r].npeers; p++)
			if (domain_resolved(plan, k, &c->out[d->r].peers[p]) &&
			    port_match(pv, c->out[d->r].ports, c->out[d->r].nports, k->dst, true,
				       k->proto, k->port))
				return true;
	}
	return false;
}

/* The first matching rule of tier's policies selecting the owner of the direction (every
 * one, monitor mode too), in evaluation order; false when none matches. */
static bool tier_first(const struct moat_plan *plan, enum moat_tier tier, bool egress,
		       const struct conn *k, struct moat_cnp_ref *ref)
{
	const struct plan_priv *pv = plan->priv;
	const struct plan_ident_priv *o = &pv->ids[egress ? k->src : k->dst];

	for (uint32_t i = 0; i < o->ncnps; i++) {
		const struct moat_cnp *c = &plan->ps->cnps[o->cnps[i]];

		for (uint32_t r = 0; c->tier == tier && r < (egress ? c->nout : c->nin); r++)
			if (cnp_rule_matches(plan, o->cnps[i], egress, r, k)) {
				*ref = (struct moat_cnp_ref){ o->cnps[i], r };
				return true;
			}
	}
	return false;
}

static enum moat_action cnp_action(const struct moat_plan *plan, bool egress,
				   const struct moat_cnp_ref *ref)
{
	const struct moat_cnp *c = &plan->ps->cnps[ref->policy];

	return (egress ? c->out : c->in)[ref->rule].action;
}

/* What a tier's element decides: 1 allowed, 0 denied, -1 nothing (the evaluation goes on). */
static int tier_says(const struct moat_plan *plan, const struct moat_plan_ident *o,
		     enum moat_tier tier, bool egress, const struct conn *k)
{
	enum moat_allow_list l = tier == MOAT_TIER_ADMIN ? (egress ? MOAT_ADMIN_OUT : MOAT_ADMIN_IN)
						       : (egress ? MOAT_BASELINE_OUT : MOAT_BASELINE_IN);
	const struct moat_plan_allow *a = list_find(o, l, egress ? k->dst_id : k->src_id, k->proto,
						    k->port);

	if (!a)
		return -1;
	if (a->domains && domains_allow(plan, tier, a->domains, k))
		return 1;
	return a->action == MOAT_ACTION_PASS ? -1 : a->action == MOAT_ACTION_ACCEPT;
}

/* One direction as the kernel decides it: does what is enforced let it through? */
static bool dir_passes(const struct moat_plan *plan, const struct moat_plan_ident *o,
		       bool egress, const struct conn *k, bool np_ok)
{
	int t = o && o->admin[egress] ? tier_says(plan, o, MOAT_TIER_ADMIN, egress, k) : -1;

	if (!o || t >= 0)
		return !o || t;
	if (egress ? o->out_iso : o->in_iso)
		return np_ok || (egress ? o->out_mode : o->in_mode) == MOAT_MODE_MONITOR;
	t = o->baseline[egress] ? tier_says(plan, o, MOAT_TIER_BASELINE, egress, k) : -1;
	return t != 0;
}

struct dir_say {
	enum moat_decider by;
	bool ok;
	struct moat_cnp_ref cnp, pass;
};

/* One direction as the policies say it: Admin, NetworkPolicy where isolated, Baseline. */
static struct dir_say dir_says(const struct moat_plan *plan, bool egress, const struct conn *k,
			       bool iso, bool np_ok)
{
	struct dir_say y = { MOAT_BY_DEFAULT, true, { PLAN_NONE, PLAN_NONE },
			     { PLAN_NONE, PLAN_NONE } };
	const struct plan_priv *pv = plan->priv;
	uint32_t o = egress ? k->src : k->dst;
	bool tiers = o != PLAN_NONE && pv->ids[o].ncnps > 0;
	struct moat_cnp_ref ref;

	if (tiers && tier_first(plan, MOAT_TIER_ADMIN, egress, k, &ref)) {
		if (cnp_action(plan, egress, &ref) != MOAT_ACTION_PASS)
			return (struct dir_say){ MOAT_BY_ADMIN,
				cnp_action(plan, egress, &ref) == MOAT_ACTION_ACCEPT, ref, y.pass };
		y.pass = ref;
	}
	if (iso) {
		y.by = MOAT_BY_NETPOL;
		y.ok = np_ok;
	} else if (tiers && tier_first(plan, MOAT_TIER_BASELINE, egress, k, &ref)) {
		y.by = MOAT_BY_BASELINE;
		y.ok = cnp_action(plan, egress, &ref) == MOAT_ACTION_ACCEPT;
		y.cnp = ref;
	}
	return y;
}

static int severity(enum moat_verdict_kind k)
{
	return k == MOAT_DENY ? 2 : k == MOAT_VIOLATION;
}

static enum moat_verdict_kind dir_kind(bool passes, bool ok)
{
	return !passes ? MOAT_DENY : !ok ? MOAT_VIOLATION : MOAT_ALLOW;
}

/* ---- decisions ---- */

/* The verdict from the lists and the tiers' rules; no NetworkPolicy rule named. sa, da: the
 * addresses, or NULL when deciding on identities alone. */
static void decide_sets(const struct moat_plan *plan, uint32_t s, uint32_t d,
			const struct moat_addr *sa, const struct moat_addr *da, uint8_t proto,
			uint16_t port, struct moat_verdict *v)
{
	const struct moat_plan_ident *si = moat_plan_ident_get(plan, s);
	const struct moat_plan_ident *di = moat_plan_ident_get(plan, d);
	struct conn k = { s, d, plan_ident_index(plan, s), plan_ident_index(plan, d), sa, da,
			  proto, moat_proto_has_ports(proto) ? port : 0 };
	bool np_in = true, np_out = true;
	struct dir_say in, out;
	enum moat_verdict_kind kin, kout;

	*v = (struct moat_verdict){ .src_ident = s, .dst_ident = d };
	v->in_rule = v->out_rule = (struct moat_rule_ref){ PLAN_NONE, false, PLAN_NONE };
	v->in_iso = di && di->in_iso;
	v->out_iso = si && si->out_iso;
	if (v->in_iso)
		np_in = list_has(plan, d, MOAT_ALLOW_IN, s, proto, k.port) ||
			list_has(plan, d, MOAT_ALLOW_IN_ANY, 0, proto, k.port);
	if (v->out_iso)
		np_out = list_has(plan, s, MOAT_ALLOW_OUT, d, proto, k.port) ||
			 list_has(plan, s, MOAT_ALLOW_OUT_ANY, 0, proto, k.port);
	in = dir_says(plan, false, &k, v->in_iso, np_in);
	out = dir_says(plan, true, &k, v->out_iso, np_out);
	v->in_ok = in.ok, v->out_ok = out.ok;
	v->in_by = in.by, v->out_by = out.by;
	v->in_cnp = in.cnp, v->out_cnp = out.cnp;
	v->in_pass = in.pass, v->out_pass = out.pass;
	kin = dir_kind(dir_passes(plan, di, false, &k, np_in), in.ok);
	kout = dir_kind(dir_passes(plan, si, true, &k, np_out), out.ok);
	v->kind = severity(kin) >= severity(kout) ? kin : kout;
}

static void decide_idents(const struct moat_plan *plan, uint32_t s, uint32_t d,
			  const struct moat_addr *sa, const struct moat_addr *da, uint8_t proto,
			  uint16_t port, struct moat_verdict *v)
{
	decide_sets(plan, s, d, sa, da, proto, port, v);
	port = moat_proto_has_ports(proto) ? port : 0;
	if (v->in_by == MOAT_BY_NETPOL && v->in_ok)
		v->in_rule = find_rule(plan, false, plan_ident_index(plan, s),
				       plan_ident_index(plan, d), proto, port);
	if (v->out_by == MOAT_BY_NETPOL && v->out_ok)
		v->out_rule = find_rule(plan, true, plan_ident_index(plan, s),
					plan_ident_index(plan, d), proto, port);
}

/* ---- many pairs at once ---- */

/* The index of id in the sorted ids, or PLAN_NONE. */
static uint32_t id_index(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ids[mid] == id)
			return (uint32_t)mid;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PLAN_NONE;
}

static bool allow_covers(const struct moat_plan_allow *e, uint8_t proto, uint16_t port)
{
	return proto >= e->proto_lo && proto <= e->proto_hi && port >= e->port_lo &&
	       port <= e->port_hi;
}

#define TABLE_IN_OK 1
#define TABLE_OUT_OK 2

/*
 * Sets the bit in ok[src * n + dst] for every element of the pair lists (in, out) of the
 * identities ids that names another of ids and covers proto/port.
 */
static void table_mark(const struct moat_plan_ident **pi, const uint32_t *ids, size_t n,
		       uint8_t proto, uint16_t port, uint8_t *ok)
{
	for (size_t o = 0; o < n; o++)
		for (int egress = 0; pi[o] && egress < 2; egress++) {
			enum moat_allow_list l = egress ? MOAT_ALLOW_OUT : MOAT_ALLOW_IN;

			for (uint32_t k = 0; k < pi[o]->nallow[l]; k++) {
				const struct moat_plan_allow *e = &pi[o]->allow[l][k];
				uint32_t peer = allow_covers(e, proto, port) ? id_index(ids, n, e->peer)
									      : PLAN_NONE;

				if (peer == PLAN_NONE)
					continue;
				if (egress)
					ok[o * n + peer] |= TABLE_OUT_OK;
				else
					ok[(size_t)peer * n + o] |= TABLE_IN_OK;
			}
		}
}

/* Each side's verdict without the pair lists: not isolated, or allowed by an *_any list. */
static void table_base(const struct moat_plan *plan, const uint32_t *ids, size_t n,
		       uint8_t proto, uint16_t port, uint8_t *ok)
{
	for (size_t j = 0; j < n; j++) {
		const struct moat_plan_ident *p = moat_plan_ident_get(plan, ids[j]);
		bool in = !p || !p->in_iso || list_has(plan, ids[j], MOAT_ALLOW_IN_ANY, 0, proto, port);
		bool out = !p || !p->out_iso ||
			   list_has(plan, ids[j], MOAT_ALLOW_OUT_ANY, 0, proto, port);

		for (size_t i = 0; i < n; i++) {
			ok[i * n + j] |= in ? TABLE_IN_OK : 0;
			ok[j * n + i] |= out ? TABLE_OUT_OK : 0;
		}
	}
}

int moat_plan_decide_table(const struct moat_plan *plan, const uint32_t *ids, size_t n,
			   uint8_t proto, uint16_t port, uint8_t *kinds)
{
	const struct moat_plan_ident **pi;

	if (plan->ps->ncnps) {	/* the tiers' rules are walked pair by pair */
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n; j++)
				kinds[i * n + j] = moat_plan_decide_kind(plan, ids[i], ids[j], proto,
									 port);
		return 0;
	}
	pi = malloc((n ? n : 1) * sizeof(*pi));
	if (!pi)
		return -ENOMEM;
	port = moat_proto_has_ports(proto) ? port : 0;
	memset(kinds, 0, n * n);
	for (size_t i = 0; i < n; i++)
		pi[i] = moat_plan_ident_get(plan, ids[i]);
	table_base(plan, ids, n, proto, port, kinds);
	table_mark(pi, ids, n, proto, port, kinds);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			uint8_t ok = kinds[i * n + j];
			bool viol = (ok & TABLE_IN_OK || pi[j]->in_mode == MOAT_MODE_MONITOR) &&
				    (ok & TABLE_OUT_OK || pi[i]->out_mode == MOAT_MODE_MONITOR);

			kinds[i * n + j] = ok == (TABLE_IN_OK | TABLE_OUT_OK) ? MOAT_ALLOW :
					   viol ? MOAT_VIOLATION : MOAT_DENY;
		}
	free(pi);
	return 0;
}

enum moat_verdict_kind moat_plan_decide_kind(const struct moat_plan *plan, uint32_t src_ident,
					     uint32_t dst_ident, uint8_t proto, uint16_t port)
{
	struct moat_verdict v;

	decide_sets(plan, src_ident, dst_ident, NULL, NULL, proto, port, &v);
	return v.kind;
}

void moat_plan_decide(const struct moat_plan *plan, const struct moat_addr *src,
		      const struct moat_addr *dst, uint8_t proto, uint16_t port,
		      struct moat_verdict *out)
{
	decide_idents(plan, moat_plan_ident_of(plan, src), moat_plan_ident_of(plan, dst), src, dst,
		      proto, port, out);
}

/*
 * A container reaching its own address never leaves its network namespace, so no veth rule
 * sees it: loopback always passes (Kubernetes' own conformance tests assume the same).
 */
void moat_plan_decide_endpoints(const struct moat_plan *plan, size_t from, size_t to,
				uint8_t proto, uint16_t port, struct moat_verdict *out)
{
	const struct moat_endpoint *a = &plan->es->v[from], *b = &plan->es->v[to];
	struct moat_verdict v;
	bool any = false;

	for (size_t i = 0; i < a->nips; i++)
		for (size_t k = 0; k < b->nips; k++) {
			if (a->ips[i].family != b->ips[k].family)
				continue;
			moat_plan_decide(plan, &a->ips[i], &b->ips[k], proto, port, &v);
			if (!any || severity(v.kind) > severity(out->kind))
				*out = v;
			any = true;
		}
	if (!any)
		decide_idents(plan, plan->endpoint_ident[from], plan->endpoint_ident[to], NULL, NULL,
			      proto, port, out);
	out->loopback = from == to;
	if (out->loopback)
		out->kind = MOAT_ALLOW;
}
