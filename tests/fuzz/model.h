/*
 * A reference model of NetworkPolicy semantics, as moat-policy(5) states them, evaluated
 * directly on parsed policies and endpoints with none of the compiler's atoms, identities or
 * sets; model_check compares a compiled plan's verdicts with it. For the fuzz harnesses only
 * (static functions, one includer per harness).
 */
#ifndef MOAT_FUZZ_MODEL_H
#define MOAT_FUZZ_MODEL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "moat/endpoint.h"
#include "moat/plan.h"
#include "moat/policy.h"

/* One side of a connection: an endpoint (NULL for an address outside) and/or an address
 * (NULL when deciding on an endpoint's labels alone). */
struct side {
	const struct moat_endpoint *e;
	const struct moat_addr *a;
};

static int label_cmp(const void *x, const void *y)
{
	return strcmp(((const struct moat_label *)x)->key, ((const struct moat_label *)y)->key);
}

static void label_put(struct moat_labels *l, const struct moat_label *lb)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, lb->key)) {
			l->v[i].value = lb->value;
			return;
		}
	l->v[l->n++] = *lb;
}

/* A namespace's labels: the endpoint set's, a Namespace document's over them, and its name. */
static bool ns_selected(const struct moat_policy_set *ps, const struct moat_endpoint_set *es,
			const struct moat_selector *sel, const char *ns)
{
	const struct moat_label name = { "kubernetes.io/metadata.name", (char *)ns };
	struct moat_labels l = { 0 };
	size_t max = 1;
	bool ok;

	for (size_t i = 0; i < es->nnss; i++)
		max += !strcmp(es->nss[i].name, ns) ? es->nss[i].labels.n : 0;
	for (size_t i = 0; i < ps->nnss; i++)
		max += !strcmp(ps->nss[i].name, ns) ? ps->nss[i].labels.n : 0;
	l.v = calloc(max, sizeof(*l.v));
	FUZZ_CHECK(l.v != NULL);
	for (size_t i = 0; i < es->nnss; i++)
		for (size_t k = 0; !strcmp(es->nss[i].name, ns) && k < es->nss[i].labels.n; k++)
			label_put(&l, &es->nss[i].labels.v[k]);
	for (size_t i = 0; i < ps->nnss; i++)
		for (size_t k = 0; !strcmp(ps->nss[i].name, ns) && k < ps->nss[i].labels.n; k++)
			label_put(&l, &ps->nss[i].labels.v[k]);
	label_put(&l, &name);
	qsort(l.v, l.n, sizeof(*l.v), label_cmp);
	ok = moat_selector_match(sel, &l);
	free(l.v);
	return ok;
}

static bool in_cidr(const struct moat_cidr *c, const struct moat_addr *a)
{
	if (!a || a->family != c->family)
		return false;
	for (unsigned i = 0; i < c->plen; i++)
		if ((a->a[i / 8] ^ c->addr[i / 8]) & (0x80 >> (i % 8)))
			return false;
	return true;
}

static const char *pol_ns(const struct moat_netpol *p)
{
	return p->namespace ? p->namespace : MOAT_DEFAULT_NAMESPACE;
}

static bool peer_ok(const struct moat_plan *plan, const struct moat_netpol *p,
		    const struct moat_peer *peer, const struct side *x)
{
	if (peer->kind == MOAT_PEER_IPBLOCK) {
		if (!in_cidr(&peer->cidr, x->a))
			return false;
		for (size_t i = 0; i < peer->nexcept; i++)
			if (in_cidr(&peer->except[i], x->a))
				return false;
		return true;
	}
	if (!x->e)
		return false;
	if (peer->has_ns ? !ns_selected(plan->ps, plan->es, &peer->ns, x->e->namespace)
			 : strcmp(x->e->namespace, pol_ns(p)))
		return false;
	return !peer->has_pod || moat_selector_match(&peer->pod, &x->e->labels);
}

/* A ports entry; a named one resolves against the destination endpoint, if named_ok. */
static bool port_ok(const struct moat_port *q, const struct side *dst, bool named_ok,
		    uint8_t proto, uint16_t port)
{
	if (q->proto != proto)
		return false;
	if (q->name) {
		for (size_t i = 0; named_ok && dst->e && i < dst->e->nports; i++)
			if (!strcmp(dst->e->ports[i].name, q->name) && dst->e->ports[i].proto == proto)
				return dst->e->ports[i].port == port;
		return false;
	}
	return q->port == 0 || (port >= q->port && port <= q->end_port);
}

static bool ports_ok(const struct moat_rule *r, const struct side *dst, bool named_ok,
		     uint8_t proto, uint16_t port)
{
	if (r->nports == 0)
		return true;
	for (size_t i = 0; i < r->nports; i++)
		if (port_ok(&r->ports[i], dst, named_ok, proto, port))
			return true;
	return false;
}

/* Does rule r (egress: of src's policy p; else of dst's) allow the connection? */
static bool rule_ok(const struct moat_plan *plan, const struct moat_netpol *p,
		    const struct moat_rule *r, bool egress, const struct side *src,
		    const struct side *dst, uint8_t proto, uint16_t port)
{
	const struct side *other = egress ? dst : src;

	if (r->npeers == 0)
		return ports_ok(r, dst, true, proto, port);
	for (size_t i = 0; i < r->npeers; i++)
		if (peer_ok(plan, p, &r->peers[i], other) &&
		    ports_ok(r, dst, !egress || r->peers[i].kind == MOAT_PEER_PODS, proto, port))
			return true;
	return false;
}

struct dir_model {
	bool iso, ok, enforced;
};

/* One direction: the policies selecting its endpoint, whether one allows, their modes. */
static struct dir_model dir_decide(const struct moat_plan *plan, bool egress,
				   const struct side *src, const struct side *dst, uint8_t proto,
				   uint16_t port)
{
	const struct moat_policy_set *ps = plan->ps;
	const struct side *self = egress ? src : dst;
	struct dir_model d = { false, true, false };

	for (size_t i = 0; self->e && i < ps->npols; i++) {
		const struct moat_netpol *p = &ps->pols[i];

		if (!(egress ? p->isolates_out : p->isolates_in) ||
		    strcmp(pol_ns(p), self->e->namespace) ||
		    !moat_selector_match(&p->target, &self->e->labels))
			continue;
		if (!d.iso)
			d.ok = false;
		d.iso = true;
		d.enforced |= plan->mode == MOAT_MODE_ENFORCE && p->mode == MOAT_MODE_ENFORCE;
		for (size_t k = 0; !d.ok && k < (egress ? p->nout : p->nin); k++)
			d.ok = rule_ok(plan, p, egress ? &p->out[k] : &p->in[k], egress, src, dst,
				       proto, port);
	}
	return d;
}

static bool proto_has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static const char *side_name(const struct side *s, char *buf, size_t len)
{
	char a[64] = "-";

	if (s->a)
		moat_addr_format(s->a, a, sizeof(a));
	snprintf(buf, len, "%s/%s@%s", s->e ? s->e->namespace : "", s->e ? s->e->name : "", a);
	return buf;
}

/* The plan's verdict v must be the model's; the rules it names must allow the connection. */
static void verdict_compare(const struct moat_plan *plan, const struct side *src,
			    const struct side *dst, uint8_t proto, uint16_t port,
			    const struct moat_verdict *v)
{
	const struct moat_policy_set *ps = plan->ps;
	uint16_t mport = proto_has_ports(proto) ? port : 0;
	struct dir_model in = dir_decide(plan, false, src, dst, proto, mport);
	struct dir_model out = dir_decide(plan, true, src, dst, proto, mport);
	enum moat_verdict_kind kind = in.ok && out.ok ? MOAT_ALLOW
		: (!in.ok && in.enforced) || (!out.ok && out.enforced) ? MOAT_DENY : MOAT_VIOLATION;
	char a[256], b[256];

	if (v->in_iso != in.iso || v->in_ok != in.ok || v->out_iso != out.iso ||
	    v->out_ok != out.ok || v->kind != kind) {
		fprintf(stderr, "%s -> %s proto %u port %u: plan in %d/%d out %d/%d kind %d, "
			"model in %d/%d out %d/%d kind %d\n", side_name(src, a, sizeof(a)),
			side_name(dst, b, sizeof(b)), proto, port, v->in_iso, v->in_ok,
			v->out_iso, v->out_ok, v->kind, in.iso, in.ok, out.iso, out.ok, kind);
		abort();
	}
	if (v->in_iso && v->in_ok) {
		const struct moat_netpol *p = &ps->pols[v->in_rule.policy];

		FUZZ_CHECK(v->in_rule.policy < ps->npols && !v->in_rule.egress);
		FUZZ_CHECK(v->in_rule.rule < p->nin);
		FUZZ_CHECK(rule_ok(plan, p, &p->in[v->in_rule.rule], false, src, dst, proto, mport));
	}
	if (v->out_iso && v->out_ok) {
		const struct moat_netpol *p = &ps->pols[v->out_rule.policy];

		FUZZ_CHECK(v->out_rule.policy < ps->npols && v->out_rule.egress);
		FUZZ_CHECK(v->out_rule.rule < p->nout);
		FUZZ_CHECK(rule_ok(plan, p, &p->out[v->out_rule.rule], true, src, dst, proto, mport));
	}
}

/* ---- what to ask: every address pair of a family, endpoints and outside addresses ---- */

#define MAX_PROBES 24

struct probe {
	uint8_t proto;
	uint16_t port;
};

/* Fixed probes, then the edges of every port range the policies write (where merging errs). */
static size_t probes_make(const struct moat_policy_set *ps, bool v6, struct probe *pr)
{
	static const struct probe fixed[] = { { IPPROTO_TCP, 80 }, { IPPROTO_TCP, 8080 },
					      { IPPROTO_UDP, 53 }, { IPPROTO_SCTP, 9000 },
					      { IPPROTO_TCP, 1 }, { IPPROTO_UDP, 65535 } };
	size_t n = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		pr[n++] = fixed[i];
	pr[n++] = (struct probe){ v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, 0 };
	for (size_t i = 0; i < ps->npols && n + 4 <= MAX_PROBES; i++)
		for (size_t r = 0; r < ps->pols[i].nin + ps->pols[i].nout && n + 4 <= MAX_PROBES; r++) {
			const struct moat_rule *rl = r < ps->pols[i].nin ? &ps->pols[i].in[r]
							: &ps->pols[i].out[r - ps->pols[i].nin];

			for (size_t k = 0; k < rl->nports && n + 4 <= MAX_PROBES; k++) {
				const struct moat_port *q = &rl->ports[k];
				uint16_t hi = q->end_port > q->port ? q->end_port : q->port;

				if (q->name || !q->port)
					continue;
				pr[n++] = (struct probe){ q->proto, q->port };
				pr[n++] = (struct probe){ q->proto, (uint16_t)(q->port - 1) };
				pr[n++] = (struct probe){ q->proto, hi };
				pr[n++] = (struct probe){ q->proto, (uint16_t)(hi + 1) };
			}
		}
	return n;
}

static const char *const outside[] = { "8.8.8.8", "10.0.1.9", "10.0.3.7", "192.168.1.1",
				       "fd00::1:9", "2001:db8::1", "::" };
#define NOUTSIDE (sizeof(outside) / sizeof(outside[0]))

static bool is_endpoint_addr(const struct moat_endpoint_set *es, const struct moat_addr *a)
{
	for (size_t i = 0; i < es->n; i++)
		for (size_t k = 0; k < es->v[i].nips; k++)
			if (!memcmp(&es->v[i].ips[k], a, sizeof(*a)))
				return true;
	return false;
}

/*
 * Up to max addresses the model knows: endpoint addresses, then the outside ones (but those
 * an endpoint has: the input may give an endpoint one of them, and then it is not outside).
 */
static size_t sides_make(const struct moat_endpoint_set *es, struct side *v, size_t max,
			 struct moat_addr *out)
{
	size_t n = 0;

	for (size_t i = 0; i < es->n; i++)
		for (size_t k = 0; k < es->v[i].nips && n + NOUTSIDE < max; k++)
			v[n++] = (struct side){ &es->v[i], &es->v[i].ips[k] };
	for (size_t i = 0; i < NOUTSIDE; i++) {
		FUZZ_CHECK(!moat_addr_parse(outside[i], &out[i]));
		if (!is_endpoint_addr(es, &out[i]))
			v[n++] = (struct side){ NULL, &out[i] };
	}
	return n;
}

static void model_check_pair(const struct moat_plan *p, const struct side *a,
			     const struct side *b, const struct probe *pr, size_t npr)
{
	struct moat_verdict v;

	for (size_t k = 0; k < npr; k++) {
		moat_plan_decide(p, a->a, b->a, pr[k].proto, pr[k].port, &v);
		verdict_compare(p, a, b, pr[k].proto, pr[k].port, &v);
	}
}

/* Endpoints without a family in common are decided on labels alone (no ipBlock applies). */
static void model_check_labels(const struct moat_plan *p, size_t i, size_t j,
			       const struct probe *pr, size_t npr)
{
	const struct moat_endpoint_set *es = p->es;
	struct side a = { &es->v[i], NULL }, b = { &es->v[j], NULL };
	struct moat_verdict v;

	for (size_t x = 0; x < a.e->nips; x++)
		for (size_t y = 0; y < b.e->nips; y++)
			if (a.e->ips[x].family == b.e->ips[y].family)
				return;
	for (size_t k = 0; k < npr; k++) {
		moat_plan_decide_endpoints(p, i, j, pr[k].proto, pr[k].port, &v);
		FUZZ_CHECK(v.loopback == (i == j));
		FUZZ_CHECK(!v.loopback || v.kind == MOAT_ALLOW);
		if (i != j)
			verdict_compare(p, &a, &b, pr[k].proto, pr[k].port, &v);
	}
}

/*
 * model_check - every verdict of plan for pairs of up to max_sides addresses (endpoint
 * addresses first, then a few outside ones), and for the first 16 endpoints' pairs decided on
 * labels, must be the model's. Aborts with the pair on the first disagreement.
 */
static void model_check(const struct moat_plan *p, size_t max_sides)
{
	struct side sides[64];
	struct moat_addr outs[NOUTSIDE];
	struct probe pr[2][MAX_PROBES];
	size_t npr[2] = { probes_make(p->ps, false, pr[0]), probes_make(p->ps, true, pr[1]) };
	size_t n = sides_make(p->es, sides, max_sides < 64 ? max_sides : 64, outs);

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (sides[i].a->family == sides[j].a->family)
				model_check_pair(p, &sides[i], &sides[j],
						 pr[sides[i].a->family == AF_INET6],
						 npr[sides[i].a->family == AF_INET6]);
	for (size_t i = 0; i < p->es->n && i < 16; i++)
		for (size_t j = 0; j < p->es->n && j < 16; j++)
			model_check_labels(p, i, j, pr[0], npr[0]);
}

#endif
