/* The matrix and the explanations as JSON, from a compiled plan (include/moat/report.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/proto.h"
#include "moat/report.h"

int moat_port_arg_parse(const char *s, struct moat_port_arg *p)
{
	const char *slash = strchr(s, '/'), *pname = slash ? slash + 1 : "tcp";
	char *end, lower[8] = "";
	int proto;
	long n = strtol(s, &end, 10);

	if (end == s) {		/* no number: a protocol without ports */
		pname = s;
		n = 0;
	} else if (end != (slash ? slash : s + strlen(s)) || n < 0 || n > 65535) {
		return -EINVAL;
	}
	for (size_t i = 0; i + 1 < sizeof(lower) && pname[i]; i++)
		lower[i] = (char)tolower((unsigned char)pname[i]);
	proto = strlen(pname) < sizeof(lower) ? moat_proto_by_name(lower) : -1;
	if (proto < 0)
		return -EINVAL;
	p->proto = (uint8_t)proto;
	p->port = (uint16_t)n;
	if (end == s)
		snprintf(p->text, sizeof(p->text), "%s", lower);
	else
		snprintf(p->text, sizeof(p->text), "%ld/%s", n, lower);
	return 0;
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

/* ---- the matrix ---- */

/*
 * Endpoints that every verdict treats alike form a class: those with the same identity
 * without addresses and the same set of (family, identity) of their addresses (what
 * moat_plan_decide_endpoints decides on). Verdicts are computed once per pair of classes and
 * port, and kept in 2 bits; a row is looked up from them. Replicas are one class, so a set
 * of a thousand endpoints is usually some dozens of classes, and the matrix never holds a
 * cell per pair of endpoints.
 */
struct moat_report_matrix {
	size_t n, nports, nclasses;
	struct moat_port_arg *ports;
	char **names;		/* "namespace/name", in row (sorted) order; one block */
	uint32_t *class_of;	/* per endpoint in row order */
	uint8_t *cells;		/* 2 bits per (port, class, class): enum moat_verdict_kind */
	size_t bytes;
};

/*
 * Endpoint signatures: v[off[i]..off[i + 1]) is endpoint i's address-less identity, then its
 * ((family << 32) | identity) sorted and unique; identities are given as indexes into ids,
 * the sorted identities the signatures use, once the signatures are made.
 */
struct sigs {
	uint64_t *v;
	size_t *off;
	uint32_t *ids;
	size_t nids;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The identities of the len values into sg->ids, and the values' identities made indexes
 * into it (order kept: indexes grow with identities). */
static int sigs_index(struct sigs *sg, size_t len)
{
	size_t n = 0;

	sg->ids = malloc((len ? len : 1) * sizeof(*sg->ids));
	if (!sg->ids)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		sg->ids[i] = (uint32_t)sg->v[i];
	qsort(sg->ids, len, sizeof(*sg->ids), u32_cmp);
	for (size_t i = 0; i < len; i++)
		if (!n || sg->ids[n - 1] != sg->ids[i])
			sg->ids[n++] = sg->ids[i];
	sg->nids = n;
	for (size_t i = 0; i < len; i++) {
		uint32_t id = (uint32_t)sg->v[i];
		size_t lo = 0, hi = n;

		while (hi - lo > 1)
			if (sg->ids[(lo + hi) / 2] <= id)
				lo = (lo + hi) / 2;
			else
				hi = (lo + hi) / 2;
		sg->v[i] = (sg->v[i] & ~(uint64_t)UINT32_MAX) | lo;
	}
	return 0;
}

static int sigs_make(const struct moat_plan *plan, struct sigs *sg)
{
	const struct moat_endpoint_set *es = plan->es;
	size_t total = 0, at = 0;

	for (size_t i = 0; i < es->n; i++)
		total += 1 + es->v[i].nips;
	sg->v = malloc((total ? total : 1) * sizeof(*sg->v));
	sg->off = malloc((es->n + 1) * sizeof(*sg->off));
	if (!sg->v || !sg->off)
		return -ENOMEM;
	for (size_t i = 0; i < es->n; i++) {
		const struct moat_endpoint *e = &es->v[i];
		size_t start = at + 1, k = start;

		sg->off[i] = at;
		sg->v[at] = plan->endpoint_ident[i];
		for (size_t a = 0; a < e->nips; a++)
			sg->v[start + a] = (uint64_t)e->ips[a].family << 32 |
					   moat_plan_ident_of(plan, &e->ips[a]);
		qsort(sg->v + start, e->nips, sizeof(*sg->v), u64_cmp);
		for (size_t a = 0; a < e->nips; a++)
			if (k == start || sg->v[k - 1] != sg->v[start + a])
				sg->v[k++] = sg->v[start + a];
		at = k;
	}
	sg->off[es->n] = at;
	return sigs_index(sg, at);
}

static int sig_cmp(const void *a, const void *b, void *arg)
{
	const struct sigs *sg = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	size_t ni = sg->off[i + 1] - sg->off[i], nj = sg->off[j + 1] - sg->off[j];

	if (ni != nj)
		return ni < nj ? -1 : 1;
	for (size_t k = 0; k < ni; k++)
		if (sg->v[sg->off[i] + k] != sg->v[sg->off[j] + k])
			return sg->v[sg->off[i] + k] < sg->v[sg->off[j] + k] ? -1 : 1;
	return 0;
}

static int severity(enum moat_verdict_kind k)
{
	return k == MOAT_DENY ? 2 : k == MOAT_VIOLATION;
}

/*
 * The verdict between two signatures, as moat_plan_decide_endpoints reaches it: the worst
 * over the pairs of addresses of one family, or without any, on the address-less
 * identities. kinds: the verdicts between the signatures' identities (nids x nids).
 */
static enum moat_verdict_kind sig_verdict(const uint8_t *kinds, size_t nids, const uint64_t *a,
					  size_t na, const uint64_t *b, size_t nb)
{
	enum moat_verdict_kind worst = MOAT_ALLOW, k;
	bool any = false;

	for (size_t i = 1; i < na; i++)
		for (size_t j = 1; j < nb; j++) {
			if (a[i] >> 32 != b[j] >> 32)
				continue;
			k = kinds[(uint32_t)a[i] * nids + (uint32_t)b[j]];
			worst = !any || severity(k) > severity(worst) ? k : worst;
			any = true;
		}
	return any ? worst : kinds[(uint32_t)a[0] * nids + (uint32_t)b[0]];
}

/* Classes of the endpoints (class_of per set index) and one representative of each. */
static int classes_make(struct moat_report_matrix *m, const struct sigs *sg, size_t n,
			uint32_t *class_es, size_t **rep_out)
{
	size_t *by = malloc((n ? n : 1) * sizeof(*by)), *rep = malloc((n ? n : 1) * sizeof(*rep));

	if (!by || !rep) {
		free(by), free(rep);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		by[i] = i;
	qsort_r(by, n, sizeof(*by), sig_cmp, (void *)sg);
	for (size_t i = 0; i < n; i++) {
		if (!i || sig_cmp(&by[i - 1], &by[i], (void *)sg))
			rep[m->nclasses++] = by[i];
		class_es[by[i]] = (uint32_t)(m->nclasses - 1);
	}
	free(by);
	*rep_out = rep;
	return 0;
}

static unsigned cell_get(const struct moat_report_matrix *m, size_t p, size_t a, size_t b)
{
	size_t at = (p * m->nclasses + a) * m->nclasses + b;

	return m->cells[at / 4] >> (at % 4 * 2) & 3;
}

/* A class's signature, found once. */
struct class_sig {
	const uint64_t *v;
	size_t n;
};

/* Row a of port p's cells: class a to every class, from the verdicts between identities. */
static void cells_row(struct moat_report_matrix *m, size_t p, size_t a,
		      const struct class_sig *cs, const uint8_t *kinds, size_t nids)
{
	size_t k = m->nclasses, at = (p * k + a) * k;

	for (size_t b = 0; b < k; b++, at++) {
		enum moat_verdict_kind v;

		/* one address each, of one family (most endpoints): one lookup */
		if (cs[a].n == 2 && cs[b].n == 2 && cs[a].v[1] >> 32 == cs[b].v[1] >> 32)
			v = kinds[(uint32_t)cs[a].v[1] * nids + (uint32_t)cs[b].v[1]];
		else
			v = sig_verdict(kinds, nids, cs[a].v, cs[a].n, cs[b].v, cs[b].n);
		m->cells[at / 4] |= (uint8_t)(v << (at % 4 * 2));
	}
}

/* Every pair of classes on every port, from the verdicts between their identities. */
static int cells_fill(struct moat_report_matrix *m, const struct moat_plan *plan,
		      const struct sigs *sg, const size_t *rep)
{
	size_t k = m->nclasses, len = (m->nports * k * k + 3) / 4, u = sg->nids;
	uint8_t *kinds = malloc(u ? u * u : 1);
	struct class_sig *cs = malloc((k ? k : 1) * sizeof(*cs));
	int ret = 0;

	m->cells = calloc(len ? len : 1, 1);
	if (!m->cells || !kinds || !cs) {
		free(kinds), free(cs);
		return -ENOMEM;
	}
	m->bytes += len;
	for (size_t a = 0; a < k; a++)
		cs[a] = (struct class_sig){ sg->v + sg->off[rep[a]],
					    sg->off[rep[a] + 1] - sg->off[rep[a]] };
	for (size_t p = 0; p < m->nports && !ret; p++) {
		ret = moat_plan_decide_table(plan, sg->ids, u, m->ports[p].proto, m->ports[p].port,
					     kinds);
		for (size_t a = 0; a < k && !ret; a++)
			cells_row(m, p, a, cs, kinds, u);
	}
	free(kinds), free(cs);
	return ret;
}

/* Names in row order, in one block; class_of in row order from class_es. */
static int rows_order(struct moat_report_matrix *m, const struct moat_endpoint_set *es,
		      const uint32_t *class_es)
{
	size_t *order = endpoint_order(es), len = 0, at = 0;
	char *block;

	for (size_t i = 0; i < es->n; i++)
		len += strlen(es->v[i].namespace) + strlen(es->v[i].name) + 2;
	m->names = calloc(es->n + 1, sizeof(*m->names));
	block = malloc(len ? len : 1);
	m->class_of = malloc((es->n ? es->n : 1) * sizeof(*m->class_of));
	if (!order || !m->names || !block || !m->class_of) {
		free(order), free(block);
		return -ENOMEM;
	}
	for (size_t i = 0; i < es->n; i++) {
		m->names[i] = block + at;
		endpoint_name(&es->v[order[i]], block + at, len - at);
		at += strlen(block + at) + 1;
		m->class_of[i] = class_es[order[i]];
	}
	m->bytes += len + (es->n + 1) * sizeof(*m->names) + es->n * sizeof(*m->class_of);
	free(order);
	return 0;
}

int moat_report_matrix_new(const struct moat_plan *plan, const struct moat_port_arg *ports,
			   size_t nports, struct moat_report_matrix **out)
{
	struct moat_report_matrix *m = calloc(1, sizeof(*m));
	size_t n = plan->es->n, *rep = NULL;
	struct sigs sg = { 0 };
	uint32_t *class_es = malloc((n ? n : 1) * sizeof(*class_es));
	int ret = m && class_es ? 0 : -ENOMEM;

	if (!ret) {
		m->n = n, m->nports = nports;
		m->ports = malloc((nports ? nports : 1) * sizeof(*ports));
		ret = m->ports ? 0 : -ENOMEM;
	}
	if (!ret) {
		memcpy(m->ports, ports, nports * sizeof(*ports));
		ret = sigs_make(plan, &sg);
	}
	ret = ret ? ret : classes_make(m, &sg, n, class_es, &rep);
	/* the verdicts between identities, and between classes: quadratic, so bounded */
	if (!ret && (double)sg.nids * sg.nids + nports * (double)m->nclasses * m->nclasses / 4 >
		    MOAT_REPORT_MATRIX_MAX)
		ret = -E2BIG;
	ret = ret ? ret : cells_fill(m, plan, &sg, rep);
	ret = ret ? ret : rows_order(m, plan->es, class_es);
	free(sg.v), free(sg.off), free(sg.ids), free(rep), free(class_es);
	if (ret) {
		moat_report_matrix_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void moat_report_matrix_free(struct moat_report_matrix *m)
{
	if (!m)
		return;
	free(m->names ? m->names[0] : NULL);
	free(m->names);
	free(m->class_of);
	free(m->cells);
	free(m->ports);
	free(m);
}

json_t *moat_report_matrix_head(const struct moat_report_matrix *m)
{
	json_t *ports = json_array(), *names = json_array();

	for (size_t i = 0; ports && i < m->nports; i++)
		json_array_append_new(ports, json_string(m->ports[i].text));
	for (size_t i = 0; names && i < m->n; i++)
		json_array_append_new(names, json_string(m->names[i]));
	return json_pack("{s:o, s:o, s:I}", "ports", ports, "endpoints", names, "rows",
			 (json_int_t)moat_report_matrix_rows(m));
}

size_t moat_report_matrix_rows(const struct moat_report_matrix *m)
{
	return m->n * m->nports;
}

size_t moat_report_matrix_bytes(const struct moat_report_matrix *m)
{
	return sizeof(*m) + m->nports * sizeof(*m->ports) + m->bytes;
}

void moat_report_matrix_row(const struct moat_report_matrix *m, size_t row, char *buf)
{
	static const char chars[] = { [MOAT_ALLOW] = 'a', [MOAT_DENY] = 'd',
				      [MOAT_VIOLATION] = 'v', [3] = '?' };
	size_t p = row / (m->n ? m->n : 1), i = row % (m->n ? m->n : 1);

	for (size_t j = 0; j < m->n; j++)
		buf[j] = j == i ? 'a' : chars[cell_get(m, p, m->class_of[i], m->class_of[j])];
	buf[m->n] = '\0';
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

/* A cluster-wide policy's rule: what it is, where, and whether it only reports (monitor). */
static json_t *cnp_rule_json(const struct moat_plan *plan, const struct moat_cnp_ref *r,
			     bool egress)
{
	const struct moat_cnp *c;
	const struct moat_cnp_rule *rule;
	char label[400];

	if (r->policy >= plan->ps->ncnps)
		return json_null();
	c = &plan->ps->cnps[r->policy];
	rule = &(egress ? c->out : c->in)[r->rule];
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:b, s:s, s:i, s:i}",
			 "label", moat_cnp_rule_format(c, egress, r->rule, label, sizeof(label)),
			 "kind", moat_cnp_kind_name(c->kind), "policy", c->name, "rule", rule->name,
			 "index", (int)r->rule, "action", moat_cnp_action_name(c->kind, rule->action),
			 "tier", moat_tier_name(c->tier), "priority", (int)c->priority, "monitor",
			 c->mode == MOAT_MODE_MONITOR || plan->mode == MOAT_MODE_MONITOR, "file",
			 rule->pos.file ? rule->pos.file : "", "line", (int)rule->pos.line, "col",
			 (int)rule->pos.col);
}

/*
 * {decided_by, isolated, mode, policies, allowed, rule, tier_rule, passed_by} for one
 * direction of verdict v: who decided (Admin, NetworkPolicy, Baseline or none), the
 * NetworkPolicy isolation and allowing rule, the cluster-wide rule that decided, and the
 * Admin Pass that handed it on to NetworkPolicy.
 */
static json_t *side_json(const struct moat_plan *plan, const struct moat_verdict *v, bool egress)
{
	static const char *const by_word[] = { [MOAT_BY_DEFAULT] = "none",
		[MOAT_BY_ADMIN] = "Admin", [MOAT_BY_NETPOL] = "NetworkPolicy",
		[MOAT_BY_BASELINE] = "Baseline" };
	uint32_t id = egress ? v->src_ident : v->dst_ident;
	const struct moat_plan_ident *pi = moat_plan_ident_get(plan, id);
	const uint32_t *pols;
	size_t n = moat_plan_isolating(plan, id, egress, &pols);
	json_t *names = json_array();
	bool iso = egress ? v->out_iso : v->in_iso;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(names, json_pack("s++", plan->ps->pols[pols[i]].namespace, "/",
							plan->ps->pols[pols[i]].name));
	return json_pack("{s:s, s:b, s:s?, s:o, s:b, s:o, s:o, s:o}", "decided_by",
			 by_word[egress ? v->out_by : v->in_by], "isolated", iso, "mode",
			 iso && pi ? mode_word(egress ? pi->out_mode : pi->in_mode) : NULL,
			 "policies", names, "allowed", egress ? v->out_ok : v->in_ok,
			 "rule", rule_json(plan, egress ? &v->out_rule : &v->in_rule),
			 "tier_rule", cnp_rule_json(plan, egress ? &v->out_cnp : &v->in_cnp, egress),
			 "passed_by", cnp_rule_json(plan, egress ? &v->out_pass : &v->in_pass, egress));
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

json_t *moat_labels_json(const struct moat_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		if (json_object_set_new(o, l->v[i].key, json_string(l->v[i].value))) {
			json_decref(o);
			return NULL;
		}
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
		snprintf(buf, sizeof(buf), "%u/%s", e->ports[i].port, moat_proto_name(e->ports[i].proto));
		json_object_set_new(ports, e->ports[i].name, json_string(buf));
	}
	for (size_t i = 0; i < e->nifaces; i++)
		json_array_append_new(ifaces, json_string(e->ifaces[i]));
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", e->name, "namespace", e->namespace,
		      "labels", moat_labels_json(&e->labels), "ips", ips, "ports", ports, "ifaces",
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
		json_object_set_new(nss, es->nss[i].name, moat_labels_json(&es->nss[i].labels));
	for (size_t i = 0; eps && i < es->n; i++)
		if (!es->v[i].host_network)
			json_array_append_new(eps, endpoint_json(&es->v[i]));
	return json_pack("{s:o, s:o}", "namespaces", nss, "endpoints", eps);
}
