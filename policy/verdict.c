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

#include "plan_priv.h"

uint32_t plan_ident_index(const struct moat_plan *plan, uint32_t id)
{
	size_t lo = 0, hi = plan->nidents;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (plan->idents[mid].id == id)
			return mid;
		if (plan->idents[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PLAN_NONE;
}

const struct moat_plan_ident *moat_plan_ident_get(const struct moat_plan *plan, uint32_t id)
{
	uint32_t i = plan_ident_index(plan, id);

	return i == PLAN_NONE ? NULL : &plan->idents[i];
}

static int addr_cmp(const struct moat_addr *a, const uint8_t *b, uint8_t bfam)
{
	if (a->family != bfam)
		return a->family < bfam ? -1 : 1;
	return memcmp(a->a, b, a->family == AF_INET ? 4 : 16);
}

const struct moat_plan_addr *moat_plan_addr_find(const struct moat_plan *plan,
						 const struct moat_addr *a)
{
	size_t lo = 0, hi = plan->naddrs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = addr_cmp(a, plan->addrs[mid].addr.a, plan->addrs[mid].addr.family);

		if (!r)
			return &plan->addrs[mid];
		if (r > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The net holding a: the last one that starts at or before it. */
static uint32_t net_find(const struct moat_plan *plan, const struct moat_addr *a)
{
	size_t lo = 0, hi = plan->nnets;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr_cmp(a, plan->nets[mid].lo, plan->nets[mid].family) >= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? plan->nets[lo - 1].ident : 0;
}

uint32_t moat_plan_ident_of(const struct moat_plan *plan, const struct moat_addr *a)
{
	const struct moat_plan_addr *pa = moat_plan_addr_find(plan, a);

	return pa ? pa->ident : net_find(plan, a);
}

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

/* ---- set lookups, as the kernel does them ---- */

static bool elem_key_less(const struct moat_plan_elem *e, uint32_t src, uint32_t dst)
{
	return e->src < src || (e->src == src && e->dst < dst);
}

static bool set_has(const struct moat_plan_elem *v, size_t n, uint32_t src, uint32_t dst,
		    uint8_t proto, uint16_t port)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (elem_key_less(&v[mid], src, dst))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && v[lo].src == src && v[lo].dst == dst; lo++)
		if (proto >= v[lo].proto_lo && proto <= v[lo].proto_hi && port >= v[lo].port_lo &&
		    port <= v[lo].port_hi)
			return true;
	return false;
}

static bool proto_has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* ---- the reason: which rule allowed it ---- */

static bool port_match(const struct plan_priv *pv, const struct moat_rule *r, uint32_t dst,
		       bool named_ok, uint8_t proto, uint16_t port)
{
	if (!r->nports)
		return true;
	for (size_t k = 0; k < r->nports; k++) {
		const struct moat_port *p = &r->ports[k];
		uint16_t hi = p->end_port > p->port ? p->end_port : p->port;

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
		return port_match(pv, rule, dst, true, proto, port);
	for (size_t k = 0; k < rule->npeers; k++) {
		bool named_ok = !egress || rule->peers[k].kind == MOAT_PEER_PODS;

		if (plan_ident_has(pv, egress ? dst : src, peers[k]) &&
		    port_match(pv, rule, dst, named_ok, proto, port))
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

/* ---- decisions ---- */

/* The verdict from the sets alone: kind, isolation and which side allowed; no rules. */
static void decide_sets(const struct moat_plan *plan, uint32_t s, uint32_t d, uint8_t proto,
			uint16_t port, struct moat_verdict *v)
{
	const struct moat_plan_ident *si = moat_plan_ident_get(plan, s);
	const struct moat_plan_ident *di = moat_plan_ident_get(plan, d);
	bool viol = true;

	*v = (struct moat_verdict){ .src_ident = s, .dst_ident = d, .in_ok = true, .out_ok = true };
	v->in_rule = v->out_rule = (struct moat_rule_ref){ PLAN_NONE, false, PLAN_NONE };
	port = proto_has_ports(proto) ? port : 0;
	v->in_iso = di && di->in_iso;
	v->out_iso = si && si->out_iso;
	if (v->in_iso)
		v->in_ok = set_has(plan->allow_in, plan->nallow_in, s, d, proto, port) ||
			   set_has(plan->allow_in_any, plan->nallow_in_any, 0, d, proto, port);
	if (v->out_iso)
		v->out_ok = set_has(plan->allow_out, plan->nallow_out, s, d, proto, port) ||
			    set_has(plan->allow_out_any, plan->nallow_out_any, s, 0, proto, port);
	if (!v->in_ok)
		viol = di->in_mode == MOAT_MODE_MONITOR;
	if (!v->out_ok)
		viol = viol && si->out_mode == MOAT_MODE_MONITOR;
	v->kind = v->in_ok && v->out_ok ? MOAT_ALLOW : viol ? MOAT_VIOLATION : MOAT_DENY;
}

static void decide_idents(const struct moat_plan *plan, uint32_t s, uint32_t d, uint8_t proto,
			  uint16_t port, struct moat_verdict *v)
{
	decide_sets(plan, s, d, proto, port, v);
	port = proto_has_ports(proto) ? port : 0;
	if (v->in_iso && v->in_ok)
		v->in_rule = find_rule(plan, false, plan_ident_index(plan, s),
				       plan_ident_index(plan, d), proto, port);
	if (v->out_iso && v->out_ok)
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

static bool elem_covers(const struct moat_plan_elem *e, uint8_t proto, uint16_t port)
{
	return proto >= e->proto_lo && proto <= e->proto_hi && port >= e->port_lo &&
	       port <= e->port_hi;
}

/* Sets bit in ok[src * n + dst] for every element of v naming two of ids and covering
 * proto/port (the element's src or dst, for *_any sets, is taken from the base). */
static void table_mark(uint8_t *ok, const uint32_t *ids, size_t n, const struct moat_plan_elem *v,
		       size_t nv, uint8_t proto, uint16_t port, uint8_t bit)
{
	for (size_t k = 0; k < nv; k++) {
		uint32_t i, j;

		if (!elem_covers(&v[k], proto, port))
			continue;
		i = id_index(ids, n, v[k].src);
		j = i == PLAN_NONE ? PLAN_NONE : id_index(ids, n, v[k].dst);
		if (j != PLAN_NONE)
			ok[(size_t)i * n + j] |= bit;
	}
}

#define TABLE_IN_OK 1
#define TABLE_OUT_OK 2

/* Each side's verdict without the pair sets: not isolated, or allowed by an *_any set. */
static void table_base(const struct moat_plan *plan, const uint32_t *ids, size_t n,
		       uint8_t proto, uint16_t port, uint8_t *ok)
{
	for (size_t j = 0; j < n; j++) {
		const struct moat_plan_ident *p = moat_plan_ident_get(plan, ids[j]);
		bool in = !p || !p->in_iso ||
			  set_has(plan->allow_in_any, plan->nallow_in_any, 0, ids[j], proto, port);
		bool out = !p || !p->out_iso || set_has(plan->allow_out_any, plan->nallow_out_any,
							      ids[j], 0, proto, port);

		for (size_t i = 0; i < n; i++) {
			ok[i * n + j] |= in ? TABLE_IN_OK : 0;
			ok[j * n + i] |= out ? TABLE_OUT_OK : 0;
		}
	}
}

int moat_plan_decide_table(const struct moat_plan *plan, const uint32_t *ids, size_t n,
			   uint8_t proto, uint16_t port, uint8_t *kinds)
{
	const struct moat_plan_ident **pi = malloc((n ? n : 1) * sizeof(*pi));

	if (!pi)
		return -ENOMEM;
	port = proto_has_ports(proto) ? port : 0;
	memset(kinds, 0, n * n);
	for (size_t i = 0; i < n; i++)
		pi[i] = moat_plan_ident_get(plan, ids[i]);
	table_base(plan, ids, n, proto, port, kinds);
	table_mark(kinds, ids, n, plan->allow_in, plan->nallow_in, proto, port, TABLE_IN_OK);
	table_mark(kinds, ids, n, plan->allow_out, plan->nallow_out, proto, port, TABLE_OUT_OK);
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

	decide_sets(plan, src_ident, dst_ident, proto, port, &v);
	return v.kind;
}

void moat_plan_decide(const struct moat_plan *plan, const struct moat_addr *src,
		      const struct moat_addr *dst, uint8_t proto, uint16_t port,
		      struct moat_verdict *out)
{
	decide_idents(plan, moat_plan_ident_of(plan, src), moat_plan_ident_of(plan, dst), proto,
		      port, out);
}

static int severity(enum moat_verdict_kind k)
{
	return k == MOAT_DENY ? 2 : k == MOAT_VIOLATION;
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
		decide_idents(plan, plan->endpoint_ident[from], plan->endpoint_ident[to], proto,
			      port, out);
	out->loopback = from == to;
	if (out->loopback)
		out->kind = MOAT_ALLOW;
}
