/*
 * A reference model of NetworkPolicy semantics, and of the cluster-wide tiers around it
 * (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy), as moat-policy(5)
 * states them, evaluated directly on parsed policies and endpoints with none of the
 * compiler's atoms, identities or sets. tier_decide is the whole evaluation; model_check
 * compares a compiled plan's verdicts with it, and tests/unit/tiers_model.c holds the tier
 * conformance cases to both. For the fuzz harnesses and tests (static functions, one includer
 * per program).
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

/* What the model reads: the policies, the endpoints, moatd's global mode. */
struct model_env {
	const struct moat_policy_set *ps;
	const struct moat_endpoint_set *es;
	enum moat_mode mode;
};

static struct model_env model_env_of(const struct moat_plan *plan)
{
	return (struct model_env){ plan->ps, plan->es, plan->mode };
}

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

static bool peer_ok(const struct model_env *env, const struct moat_netpol *p,
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
	if (peer->has_ns ? !ns_selected(env->ps, env->es, &peer->ns, x->e->namespace)
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
static bool rule_ok(const struct model_env *env, const struct moat_netpol *p,
		    const struct moat_rule *r, bool egress, const struct side *src,
		    const struct side *dst, uint8_t proto, uint16_t port)
{
	const struct side *other = egress ? dst : src;

	if (r->npeers == 0)
		return ports_ok(r, dst, true, proto, port);
	for (size_t i = 0; i < r->npeers; i++)
		if (peer_ok(env, p, &r->peers[i], other) &&
		    ports_ok(r, dst, !egress || r->peers[i].kind == MOAT_PEER_PODS, proto, port))
			return true;
	return false;
}

/* policy, rule: the first rule that allows (in policy, then rule order); SIZE_MAX if none. */
struct dir_model {
	bool iso, ok, enforced;
	size_t policy, rule;
};

/* One direction: the policies selecting its endpoint, whether one allows, their modes. */
static struct dir_model dir_decide(const struct model_env *env, bool egress,
				   const struct side *src, const struct side *dst, uint8_t proto,
				   uint16_t port)
{
	const struct moat_policy_set *ps = env->ps;
	const struct side *self = egress ? src : dst;
	struct dir_model d = { false, true, false, SIZE_MAX, SIZE_MAX };

	for (size_t i = 0; self->e && i < ps->npols; i++) {
		const struct moat_netpol *p = &ps->pols[i];

		if (!(egress ? p->isolates_out : p->isolates_in) ||
		    strcmp(pol_ns(p), self->e->namespace) ||
		    !moat_selector_match(&p->target, &self->e->labels))
			continue;
		if (!d.iso)
			d.ok = false;
		d.iso = true;
		d.enforced |= env->mode == MOAT_MODE_ENFORCE && p->mode == MOAT_MODE_ENFORCE;
		for (size_t k = 0; !d.ok && k < (egress ? p->nout : p->nin); k++)
			if ((d.ok = rule_ok(env, p, egress ? &p->out[k] : &p->in[k], egress, src,
					    dst, proto, port))) {
				d.policy = i;
				d.rule = k;
			}
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

/* ---- the tiers: Admin, NetworkPolicy, Baseline, allow (moat-policy(5), TIERS) ---- */

/* Who decided a direction. */
enum model_by { MODEL_BY_ADMIN, MODEL_BY_NETPOL, MODEL_BY_BASELINE, MODEL_BY_DEFAULT };

/*
 * One direction's decision, with every policy as written (what the policies say): ok, and
 * who decided. by ADMIN or BASELINE: ps->cnps[policy], its in or out [rule]. by NETPOL: the
 * endpoint is isolated there; policy/rule name the first NetworkPolicy rule that allows
 * (ps->pols[policy]), SIZE_MAX when none does. by DEFAULT: nothing decided, allowed.
 * pass_policy/pass_rule: the Admin Pass rule that sent the direction on, SIZE_MAX if none.
 * passes: what is enforced lets it through: the same evaluation without the cluster-wide
 * policies in monitor mode (all of them in global monitor mode), a NetworkPolicy denial
 * dropping only where an enforce-mode policy isolates. Monitor mode never changes what
 * passes: ok && !passes (a monitor Accept, an enforced denial after it) is possible.
 */
struct tier_dir {
	enum model_by by;
	bool ok, passes;
	size_t policy, rule;
	size_t pass_policy, pass_rule;
};

struct tier_verdict {
	enum moat_verdict_kind kind;
	struct tier_dir in, out;	/* the destination's ingress, the source's egress */
	bool loopback;
};

/* Host-network endpoints are neither subjects nor pods peers (the API says so). */
static bool cnp_selects(const struct model_env *env, const struct moat_cnp *c,
			const struct moat_endpoint *e)
{
	if (!e || e->host_network || !ns_selected(env->ps, env->es, &c->subject_ns, e->namespace))
		return false;
	return !c->subject_pods || moat_selector_match(&c->subject_pod, &e->labels);
}

/* A domain name peer matches no address here: offline, no endpoint resolved anything. */
static bool cnp_peer_ok(const struct model_env *env, const struct moat_peer *p,
			const struct side *x)
{
	if (p->kind == MOAT_PEER_IPBLOCK)
		return in_cidr(&p->cidr, x->a);
	if (p->kind == MOAT_PEER_DOMAIN || !x->e || x->e->host_network)
		return false;
	return ns_selected(env->ps, env->es, &p->ns, x->e->namespace) &&
	       (!p->has_pod || moat_selector_match(&p->pod, &x->e->labels));
}

/* A named port of proto 0 is the destination's port of that name, whatever its protocol. */
static bool cnp_port_ok(const struct moat_port *q, const struct side *dst, uint8_t proto,
			uint16_t port)
{
	if (!q->name || q->proto)
		return port_ok(q, dst, true, proto, port);
	for (size_t i = 0; dst->e && i < dst->e->nports; i++)
		if (!strcmp(dst->e->ports[i].name, q->name))
			return dst->e->ports[i].proto == proto && dst->e->ports[i].port == port;
	return false;
}

static bool cnp_rule_ok(const struct model_env *env, const struct moat_cnp_rule *r, bool egress,
			const struct side *src, const struct side *dst, uint8_t proto,
			uint16_t port)
{
	bool peer = false;

	for (size_t i = 0; !peer && i < r->npeers; i++)
		peer = cnp_peer_ok(env, &r->peers[i], egress ? dst : src);
	if (!peer || !r->nports)
		return peer;
	for (size_t i = 0; i < r->nports; i++)
		if (cnp_port_ok(&r->ports[i], dst, proto, port))
			return true;
	return false;
}

/*
 * The first matching rule of the tier's policies selecting the direction's own endpoint,
 * in set order (priority, name, kind) then rule order; false when none matches. enforced:
 * the policies that drop only (not in monitor mode, nor under global monitor mode).
 */
static bool tier_first(const struct model_env *env, enum moat_tier tier, bool enforced,
		       bool egress, const struct side *src, const struct side *dst, uint8_t proto,
		       uint16_t port, size_t *pol, size_t *rule)
{
	const struct moat_policy_set *ps = env->ps;

	for (size_t i = 0; i < ps->ncnps; i++) {
		const struct moat_cnp *c = &ps->cnps[i];
		size_t n = egress ? c->nout : c->nin;

		if (c->tier != tier || !cnp_selects(env, c, (egress ? src : dst)->e))
			continue;
		if (enforced && (c->mode == MOAT_MODE_MONITOR || env->mode == MOAT_MODE_MONITOR))
			continue;
		for (size_t k = 0; k < n; k++)
			if (cnp_rule_ok(env, egress ? &c->out[k] : &c->in[k], egress, src, dst, proto,
					port)) {
				*pol = i;
				*rule = k;
				return true;
			}
	}
	return false;
}

static enum moat_action cnp_action(const struct model_env *env, bool egress, size_t pol,
				   size_t rule)
{
	const struct moat_cnp *c = &env->ps->cnps[pol];

	return (egress ? c->out : c->in)[rule].action;
}

/* d decided by ACCEPT or DENY of cnps[pol] rule. */
static void tier_set(const struct model_env *env, struct tier_dir *d, enum model_by by,
		     bool egress, size_t pol, size_t rule)
{
	d->by = by;
	d->policy = pol;
	d->rule = rule;
	d->ok = cnp_action(env, egress, pol, rule) == MOAT_ACTION_ACCEPT;
}

/*
 * One direction through the tiers (port 0 for protocols without ports): with every policy
 * (enforced false), or with those that drop only (true: then ok is what passes, and a
 * NetworkPolicy denial without an enforce-mode policy isolating passes).
 */
static struct tier_dir tier_walk(const struct model_env *env, bool enforced, bool egress,
				 const struct side *src, const struct side *dst, uint8_t proto,
				 uint16_t port)
{
	struct tier_dir d = { MODEL_BY_DEFAULT, true, true, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX };
	struct dir_model np;
	size_t pol, rule;

	if (tier_first(env, MOAT_TIER_ADMIN, enforced, egress, src, dst, proto, port, &pol, &rule)) {
		if (cnp_action(env, egress, pol, rule) != MOAT_ACTION_PASS) {
			tier_set(env, &d, MODEL_BY_ADMIN, egress, pol, rule);
			return d;
		}
		d.pass_policy = pol;
		d.pass_rule = rule;
	}
	np = dir_decide(env, egress, src, dst, proto, port);
	if (np.iso) {
		d.by = MODEL_BY_NETPOL;
		d.ok = np.ok || (enforced && !np.enforced);
		d.policy = np.policy;
		d.rule = np.rule;
	} else if (tier_first(env, MOAT_TIER_BASELINE, enforced, egress, src, dst, proto, port,
			      &pol, &rule)) {
		tier_set(env, &d, MODEL_BY_BASELINE, egress, pol, rule);
	}
	return d;
}

/* One direction: what the policies say, and whether what is enforced lets it through. */
static struct tier_dir tier_dir_decide(const struct model_env *env, bool egress,
				       const struct side *src, const struct side *dst,
				       uint8_t proto, uint16_t port)
{
	struct tier_dir d = tier_walk(env, false, egress, src, dst, proto, port);

	d.passes = tier_walk(env, true, egress, src, dst, proto, port).ok;
	return d;
}

static int tier_severity(enum moat_verdict_kind k)
{
	return k == MOAT_DENY ? 2 : k == MOAT_VIOLATION;
}

/* A direction dropped is a denial; one let through against what the policies say, a
 * violation. */
static enum moat_verdict_kind tier_dir_kind(const struct tier_dir *d)
{
	return !d->passes ? MOAT_DENY : !d->ok ? MOAT_VIOLATION : MOAT_ALLOW;
}

static enum moat_verdict_kind tier_kind(const struct tier_dir *in, const struct tier_dir *out)
{
	enum moat_verdict_kind a = tier_dir_kind(in), b = tier_dir_kind(out);

	return tier_severity(a) >= tier_severity(b) ? a : b;
}

/*
 * tier_decide - the verdict for a new connection src -> dst: the source's egress and the
 * destination's ingress, each through the tiers; both must allow.
 */
static struct tier_verdict tier_decide(const struct model_env *env, const struct side *src,
				       const struct side *dst, uint8_t proto, uint16_t port)
{
	uint16_t mport = proto_has_ports(proto) ? port : 0;
	struct tier_verdict v = { .loopback = false };

	v.in = tier_dir_decide(env, false, src, dst, proto, mport);
	v.out = tier_dir_decide(env, true, src, dst, proto, mport);
	v.kind = tier_kind(&v.in, &v.out);
	return v;
}

/*
 * tier_decide_endpoints - between endpoints i and j of env->es, as moat_plan_decide_endpoints
 * decides: the worst verdict of every same-family address pair; on labels alone when they
 * have no family in common; an endpoint reaching itself always passes (loopback).
 */
static struct tier_verdict tier_decide_endpoints(const struct model_env *env, size_t i, size_t j,
						 uint8_t proto, uint16_t port)
{
	const struct moat_endpoint *a = &env->es->v[i], *b = &env->es->v[j];
	struct tier_verdict v, worst = { .kind = MOAT_ALLOW };
	bool any = false;

	for (size_t x = 0; x < a->nips; x++)
		for (size_t y = 0; y < b->nips; y++) {
			struct side s = { a, &a->ips[x] }, d = { b, &b->ips[y] };

			if (a->ips[x].family != b->ips[y].family)
				continue;
			v = tier_decide(env, &s, &d, proto, port);
			if (!any || tier_severity(v.kind) > tier_severity(worst.kind))
				worst = v;
			any = true;
		}
	if (!any) {
		struct side s = { a, NULL }, d = { b, NULL };

		worst = tier_decide(env, &s, &d, proto, port);
	}
	worst.loopback = i == j;
	if (worst.loopback)
		worst.kind = MOAT_ALLOW;
	return worst;
}

/* The plan's decider for one of the model's. */
static enum moat_decider model_decider(enum model_by by)
{
	static const enum moat_decider of[] = { [MODEL_BY_ADMIN] = MOAT_BY_ADMIN,
		[MODEL_BY_NETPOL] = MOAT_BY_NETPOL, [MODEL_BY_BASELINE] = MOAT_BY_BASELINE,
		[MODEL_BY_DEFAULT] = MOAT_BY_DEFAULT };

	return of[by];
}

static bool same_ref(const struct moat_cnp_ref *r, size_t policy, size_t rule)
{
	return policy == SIZE_MAX ? r->policy == UINT32_MAX
				  : r->policy == policy && r->rule == rule;
}

/* One direction of the plan's verdict against the model's: who decided, with which rule. */
static bool dir_same(bool iso, bool ok, enum moat_decider by, const struct moat_cnp_ref *cnp,
		     const struct moat_cnp_ref *pass, const struct dir_model *np,
		     const struct tier_dir *t)
{
	bool tier = t->by == MODEL_BY_ADMIN || t->by == MODEL_BY_BASELINE;

	return iso == np->iso && ok == t->ok && by == model_decider(t->by) &&
	       same_ref(cnp, tier ? t->policy : SIZE_MAX, t->rule) &&
	       same_ref(pass, t->pass_policy, t->pass_rule);
}

/*
 * The plan's verdict v must be the model's (tier_decide: NetworkPolicy alone when there are
 * no cluster-wide policies): its kind, and per direction who decided, with which cluster-wide
 * rule; a NetworkPolicy rule it names must allow the connection.
 */
static void verdict_compare(const struct moat_plan *plan, const struct side *src,
			    const struct side *dst, uint8_t proto, uint16_t port,
			    const struct moat_verdict *v)
{
	const struct moat_policy_set *ps = plan->ps;
	const struct model_env env = model_env_of(plan);
	uint16_t mport = proto_has_ports(proto) ? port : 0;
	struct dir_model in = dir_decide(&env, false, src, dst, proto, mport);
	struct dir_model out = dir_decide(&env, true, src, dst, proto, mport);
	struct tier_verdict t = tier_decide(&env, src, dst, proto, port);
	char a[256], b[256];

	if (!dir_same(v->in_iso, v->in_ok, v->in_by, &v->in_cnp, &v->in_pass, &in, &t.in) ||
	    !dir_same(v->out_iso, v->out_ok, v->out_by, &v->out_cnp, &v->out_pass, &out, &t.out) ||
	    v->kind != t.kind) {
		fprintf(stderr, "%s -> %s proto %u port %u: plan in %d/%d by %d (%u.%u) out %d/%d "
			"by %d (%u.%u) kind %d, model in %d/%d by %d (%zd.%zd) out %d/%d by %d "
			"(%zd.%zd) kind %d\n", side_name(src, a, sizeof(a)),
			side_name(dst, b, sizeof(b)), proto, port, v->in_iso, v->in_ok, v->in_by,
			v->in_cnp.policy, v->in_cnp.rule, v->out_iso, v->out_ok, v->out_by,
			v->out_cnp.policy, v->out_cnp.rule, v->kind, in.iso, t.in.ok,
			model_decider(t.in.by), (ssize_t)t.in.policy, (ssize_t)t.in.rule, out.iso,
			t.out.ok, model_decider(t.out.by), (ssize_t)t.out.policy,
			(ssize_t)t.out.rule, t.kind);
		abort();
	}
	if (v->in_by == MOAT_BY_NETPOL && v->in_ok) {
		const struct moat_netpol *p = &ps->pols[v->in_rule.policy];

		FUZZ_CHECK(v->in_rule.policy < ps->npols && !v->in_rule.egress);
		FUZZ_CHECK(v->in_rule.rule < p->nin);
		FUZZ_CHECK(rule_ok(&env, p, &p->in[v->in_rule.rule], false, src, dst, proto, mport));
	}
	if (v->out_by == MOAT_BY_NETPOL && v->out_ok) {
		const struct moat_netpol *p = &ps->pols[v->out_rule.policy];

		FUZZ_CHECK(v->out_rule.policy < ps->npols && v->out_rule.egress);
		FUZZ_CHECK(v->out_rule.rule < p->nout);
		FUZZ_CHECK(rule_ok(&env, p, &p->out[v->out_rule.rule], true, src, dst, proto, mport));
	}
}

/* ---- what to ask: every address pair of a family, endpoints and outside addresses ---- */

#define MAX_PROBES 24

struct probe {
	uint8_t proto;
	uint16_t port;
};

/* The edges of each numbered port range of ports into pr[*n...] while there is room. */
static void probe_edges(struct probe *pr, size_t *n, const struct moat_port *ports, size_t nports)
{
	for (size_t k = 0; k < nports && *n + 4 <= MAX_PROBES; k++) {
		const struct moat_port *q = &ports[k];
		uint16_t hi = q->end_port > q->port ? q->end_port : q->port;

		if (q->name || !q->port)
			continue;
		pr[(*n)++] = (struct probe){ q->proto, q->port };
		pr[(*n)++] = (struct probe){ q->proto, (uint16_t)(q->port - 1) };
		pr[(*n)++] = (struct probe){ q->proto, hi };
		pr[(*n)++] = (struct probe){ q->proto, (uint16_t)(hi + 1) };
	}
}

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
	for (size_t i = 0; i < ps->npols; i++) {
		for (size_t r = 0; r < ps->pols[i].nin; r++)
			probe_edges(pr, &n, ps->pols[i].in[r].ports, ps->pols[i].in[r].nports);
		for (size_t r = 0; r < ps->pols[i].nout; r++)
			probe_edges(pr, &n, ps->pols[i].out[r].ports, ps->pols[i].out[r].nports);
	}
	for (size_t i = 0; i < ps->ncnps; i++) {
		for (size_t r = 0; r < ps->cnps[i].nin; r++)
			probe_edges(pr, &n, ps->cnps[i].in[r].ports, ps->cnps[i].in[r].nports);
		for (size_t r = 0; r < ps->cnps[i].nout; r++)
			probe_edges(pr, &n, ps->cnps[i].out[r].ports, ps->cnps[i].out[r].nports);
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

/* A decision names a rule that exists, matches, selects the right side and says so. */
static void tier_dir_check(const struct model_env *env, const struct tier_dir *d, bool egress,
			   const struct side *src, const struct side *dst, uint8_t proto,
			   uint16_t port)
{
	const struct moat_policy_set *ps = env->ps;
	const struct moat_cnp *c;

	if (d->pass_policy != SIZE_MAX) {
		FUZZ_CHECK(d->pass_policy < ps->ncnps && d->by != MODEL_BY_ADMIN);
		FUZZ_CHECK(cnp_action(env, egress, d->pass_policy, d->pass_rule) == MOAT_ACTION_PASS);
	}
	if (d->by == MODEL_BY_DEFAULT)
		FUZZ_CHECK(d->ok && d->policy == SIZE_MAX);
	if (d->by == MODEL_BY_NETPOL && d->ok)
		FUZZ_CHECK(d->policy < ps->npols);
	if (d->by != MODEL_BY_ADMIN && d->by != MODEL_BY_BASELINE)
		return;
	FUZZ_CHECK(d->policy < ps->ncnps);
	c = &ps->cnps[d->policy];
	FUZZ_CHECK(c->tier == (d->by == MODEL_BY_ADMIN ? MOAT_TIER_ADMIN : MOAT_TIER_BASELINE));
	FUZZ_CHECK(d->rule < (egress ? c->nout : c->nin));
	FUZZ_CHECK(cnp_selects(env, c, (egress ? src : dst)->e));
	FUZZ_CHECK(cnp_rule_ok(env, egress ? &c->out[d->rule] : &c->in[d->rule], egress, src, dst,
			       proto, proto_has_ports(proto) ? port : 0));
	FUZZ_CHECK(d->ok == (cnp_action(env, egress, d->policy, d->rule) == MOAT_ACTION_ACCEPT));
}

/* Where no cluster-wide rule decided, the tiers must say what NetworkPolicy alone says. */
static void tier_check_one(const struct model_env *env, const struct side *src,
			   const struct side *dst, uint8_t proto, uint16_t port)
{
	struct tier_verdict v = tier_decide(env, src, dst, proto, port);
	uint16_t mport = proto_has_ports(proto) ? port : 0;
	struct dir_model in, out;

	tier_dir_check(env, &v.in, false, src, dst, proto, port);
	tier_dir_check(env, &v.out, true, src, dst, proto, port);
	if (v.in.by == MODEL_BY_ADMIN || v.in.by == MODEL_BY_BASELINE || v.in.pass_policy != SIZE_MAX ||
	    v.out.by == MODEL_BY_ADMIN || v.out.by == MODEL_BY_BASELINE || v.out.pass_policy != SIZE_MAX)
		return;
	in = dir_decide(env, false, src, dst, proto, mport);
	out = dir_decide(env, true, src, dst, proto, mport);
	FUZZ_CHECK(v.in.ok == in.ok && v.out.ok == out.ok);
	FUZZ_CHECK(v.kind == (in.ok && out.ok ? MOAT_ALLOW : (!in.ok && in.enforced) ||
			      (!out.ok && out.enforced) ? MOAT_DENY : MOAT_VIOLATION));
}

/*
 * tier_check - the tier model on every pair of up to max_sides addresses (endpoints', then a
 * few outside ones) for every probe: each decision self-consistent (tier_dir_check), and the
 * NetworkPolicy model's wherever no cluster-wide rule decided. For the fuzz harnesses.
 */
static void tier_check(const struct model_env *env, size_t max_sides)
{
	struct side sides[64];
	struct moat_addr outs[NOUTSIDE];
	struct probe pr[2][MAX_PROBES];
	size_t npr[2] = { probes_make(env->ps, false, pr[0]), probes_make(env->ps, true, pr[1]) };
	size_t n = sides_make(env->es, sides, max_sides < 64 ? max_sides : 64, outs);

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			bool v6 = sides[i].a->family == AF_INET6;

			for (size_t k = 0; sides[i].a->family == sides[j].a->family && k < npr[v6]; k++)
				tier_check_one(env, &sides[i], &sides[j], pr[v6][k].proto,
					       pr[v6][k].port);
		}
	for (size_t i = 0; i < env->es->n && i < 16; i++)	/* an endpoint to itself passes */
		for (size_t k = 0; k < npr[0]; k++)
			FUZZ_CHECK(tier_decide_endpoints(env, i, i, pr[0][k].proto, pr[0][k].port).kind ==
				   MOAT_ALLOW);
}

#endif
