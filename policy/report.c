/* The matrix and the explanations as JSON, from a compiled plan (include/moat/report.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "moat/report.h"

static const struct {
	const char *name;
	uint8_t proto;
} protos[] = {
	{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "sctp", IPPROTO_SCTP },
	{ "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 },
};

static const char *proto_name(uint8_t proto)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (protos[i].proto == proto)
			return protos[i].name;
	return "tcp";
}

int moat_port_arg_parse(const char *s, struct moat_port_arg *p)
{
	const char *slash = strchr(s, '/'), *pname = slash ? slash + 1 : "tcp";
	char *end;
	long n = strtol(s, &end, 10);

	if (end == s) {		/* no number: a protocol without ports */
		pname = s;
		n = 0;
	} else if (end != (slash ? slash : s + strlen(s)) || n < 0 || n > 65535) {
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (strcasecmp(pname, protos[i].name))
			continue;
		p->proto = protos[i].proto;
		p->port = (uint16_t)n;
		if (end == s)
			snprintf(p->text, sizeof(p->text), "%s", protos[i].name);
		else
			snprintf(p->text, sizeof(p->text), "%ld/%s", n, protos[i].name);
		return 0;
	}
	return -EINVAL;
}

static void endpoint_name(const struct moat_endpoint *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", e->namespace, e->name);
}

static int cmp_endpoint(const void *a, const void *b, void *set)
{
	const struct moat_endpoint_set *es = set;
	const struct moat_endpoint *x = &es->v[*(const size_t *)a];
	const struct moat_endpoint *y = &es->v[*(const size_t *)b];
	int r = strcmp(x->namespace, y->namespace);

	return r ? r : strcmp(x->name, y->name);
}

/* Endpoint indexes sorted by namespace/name; the caller frees. */
static size_t *endpoint_order(const struct moat_endpoint_set *es)
{
	size_t *order = calloc(es->n + 1, sizeof(size_t));

	for (size_t i = 0; order && i < es->n; i++)
		order[i] = i;
	if (order)
		qsort_r(order, es->n, sizeof(size_t), cmp_endpoint, (void *)es);
	return order;
}

static const char *matrix_word(enum moat_verdict_kind k, bool marks)
{
	return k == MOAT_DENY ? "deny" : k == MOAT_VIOLATION && marks ? "allow*" : "allow";
}

json_t *moat_report_matrix(const struct moat_plan *plan, const struct moat_port_arg *ports,
			   size_t nports, bool mark_violations)
{
	const struct moat_endpoint_set *es = plan->es;
	json_t *root = json_object(), *jports = json_array(), *vs = json_array();
	size_t *order = endpoint_order(es);
	char from[512], to[512];
	struct moat_verdict v;

	if (!root || !jports || !vs || !order) {
		json_decref(root), json_decref(jports), json_decref(vs), free(order);
		return NULL;
	}
	json_object_set_new(root, "ports", jports);
	json_object_set_new(root, "verdicts", vs);
	for (size_t k = 0; k < nports; k++) {
		json_array_append_new(jports, json_string(ports[k].text));
		for (size_t i = 0; i < es->n; i++) {
			endpoint_name(&es->v[order[i]], from, sizeof(from));
			for (size_t j = 0; j < es->n; j++) {
				moat_plan_decide_endpoints(plan, order[i], order[j], ports[k].proto,
							   ports[k].port, &v);
				endpoint_name(&es->v[order[j]], to, sizeof(to));
				json_array_append_new(vs, json_pack("{s:s, s:s, s:s, s:s}", "from", from,
					"to", to, "port", ports[k].text, "verdict",
					matrix_word(v.kind, mark_violations)));
			}
		}
	}
	free(order);
	return root;
}

/* One side of a connection: an endpoint (index) or, failing that, an address. */
struct side {
	long ep;
	struct moat_addr addr;
	char name[512];
};

static int side_parse(const struct moat_endpoint_set *es, const char *s, struct side *out)
{
	const char *slash = strchr(s, '/');
	char ns[256];

	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - s) : 0, s);
	out->ep = moat_endpoint_set_find(es, slash ? ns : MOAT_DEFAULT_NAMESPACE,
					 slash ? slash + 1 : s);
	if (out->ep >= 0) {
		endpoint_name(&es->v[out->ep], out->name, sizeof(out->name));
		return 0;
	}
	snprintf(out->name, sizeof(out->name), "%s", s);
	return moat_addr_parse(s, &out->addr) ? -ENOENT : 0;
}

static const char *mode_word(enum moat_mode m)
{
	return m == MOAT_MODE_MONITOR ? "monitor" : "enforce";
}

static json_t *rule_json(const struct moat_plan *plan, const struct moat_rule_ref *r)
{
	const struct moat_netpol *p;
	const struct moat_rule *rule;

	if (r->policy == UINT32_MAX)
		return json_null();
	p = &plan->ps->pols[r->policy];
	rule = r->egress ? &p->out[r->rule] : &p->in[r->rule];
	return json_pack("{s:s++, s:s, s:i, s:s, s:i, s:i}", "policy", p->namespace, "/", p->name,
			 "direction", r->egress ? "egress" : "ingress", "index", (int)r->rule,
			 "file", rule->pos.file ? rule->pos.file : "", "line", (int)rule->pos.line,
			 "col", (int)rule->pos.col);
}

/* {isolated, mode, policies, allowed, rule} for one direction of verdict v. */
static json_t *side_json(const struct moat_plan *plan, const struct moat_verdict *v, bool egress)
{
	uint32_t id = egress ? v->src_ident : v->dst_ident;
	const struct moat_plan_ident *pi = moat_plan_ident_get(plan, id);
	const uint32_t *pols;
	size_t n = moat_plan_isolating(plan, id, egress, &pols);
	json_t *names = json_array();
	bool iso = egress ? v->out_iso : v->in_iso;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(names, json_pack("s++", plan->ps->pols[pols[i]].namespace, "/",
							plan->ps->pols[pols[i]].name));
	return json_pack("{s:b, s:s?, s:o, s:b, s:o}", "isolated", iso, "mode",
			 iso && pi ? mode_word(egress ? pi->out_mode : pi->in_mode) : NULL,
			 "policies", names, "allowed", egress ? v->out_ok : v->in_ok,
			 "rule", rule_json(plan, egress ? &v->out_rule : &v->in_rule));
}

static void explain_decide(const struct moat_plan *plan, const struct side *f,
			   const struct side *t, const struct moat_port_arg *p,
			   struct moat_verdict *v)
{
	const struct moat_endpoint_set *es = plan->es;
	struct moat_addr a = f->ep >= 0 && es->v[f->ep].nips ? es->v[f->ep].ips[0] : f->addr;
	struct moat_addr b = t->ep >= 0 && es->v[t->ep].nips ? es->v[t->ep].ips[0] : t->addr;

	if (f->ep >= 0 && t->ep >= 0)
		moat_plan_decide_endpoints(plan, (size_t)f->ep, (size_t)t->ep, p->proto, p->port, v);
	else
		moat_plan_decide(plan, &a, &b, p->proto, p->port, v);
}

int moat_report_explain(const struct moat_plan *plan, const char *from, const char *to,
			const struct moat_port_arg *port, json_t **out, char *err, size_t errlen)
{
	static const char *const words[] = { "allow", "deny", "violation" };
	struct side f, t;
	struct moat_verdict v;
	json_t *j;

	if (side_parse(plan->es, from, &f) || side_parse(plan->es, to, &t)) {
		snprintf(err, errlen, "'%s' is neither an endpoint (namespace/name) nor an address",
			 side_parse(plan->es, from, &f) ? from : to);
		return -ENOENT;
	}
	explain_decide(plan, &f, &t, port, &v);
	j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o}", "from", f.name, "to", t.name, "port",
		      port->text, "verdict", words[v.kind], "loopback", v.loopback, "egress",
		      side_json(plan, &v, true), "ingress", side_json(plan, &v, false));
	if (!j)
		return -ENOMEM;
	*out = j;
	return 0;
}

static json_t *labels_json(const struct moat_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

/*
 * The MACs as the endpoints file takes them back, or NULL: only when every iface's is known
 * and unicast (a Docker endpoint's may be unknown, all zero, which the file cannot say).
 */
static json_t *macs_json(const struct moat_endpoint *e)
{
	json_t *a;
	char buf[18];

	for (size_t i = 0; i < e->nifaces; i++)
		if (!e->macs || (e->macs[i][0] & 1) || !memcmp(e->macs[i], (uint8_t[6]){ 0 }, 6))
			return NULL;
	a = e->nifaces ? json_array() : NULL;
	for (size_t i = 0; a && i < e->nifaces; i++) {
		const uint8_t *m = e->macs[i];

		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

static json_t *endpoint_json(const struct moat_endpoint *e)
{
	json_t *ips = json_array(), *ports = json_object(), *ifaces = json_array();
	json_t *macs = macs_json(e), *o;
	char buf[64];

	for (size_t i = 0; i < e->nips; i++)
		json_array_append_new(ips, json_string(moat_addr_format(&e->ips[i], buf, sizeof(buf))));
	for (size_t i = 0; i < e->nports; i++) {
		snprintf(buf, sizeof(buf), "%u/%s", e->ports[i].port, proto_name(e->ports[i].proto));
		json_object_set_new(ports, e->ports[i].name, json_string(buf));
	}
	for (size_t i = 0; i < e->nifaces; i++)
		json_array_append_new(ifaces, json_string(e->ifaces[i]));
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", e->name, "namespace", e->namespace,
		      "labels", labels_json(&e->labels), "ips", ips, "ports", ports, "ifaces",
		      ifaces);
	if (o && macs)
		json_object_set_new(o, "macs", macs);
	else
		json_decref(macs);
	return o;
}

json_t *moat_report_endpoints(const struct moat_endpoint_set *es)
{
	json_t *nss = json_object(), *eps = json_array();

	for (size_t i = 0; nss && i < es->nnss; i++)
		json_object_set_new(nss, es->nss[i].name, labels_json(&es->nss[i].labels));
	for (size_t i = 0; eps && i < es->n; i++)
		if (!es->v[i].host_network)
			json_array_append_new(eps, endpoint_json(&es->v[i]));
	return json_pack("{s:o, s:o}", "namespaces", nss, "endpoints", eps);
}
