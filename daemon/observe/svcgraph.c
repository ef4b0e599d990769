/* The service graph: observed flows plus never-seen policy allowances, as graph edges. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow_query.h"
#include "svcgraph.h"
#include "moat/baseline_group.h"
#include "moat/graph.h"

struct port {
	uint8_t proto;
	uint16_t port;
};

/* Edges whose strings live in pool (a JSON array of strings) until the graph is written. */
struct graph {
	struct moat_graph_edge *v;
	size_t n, cap;
	json_t *pool;
	json_t *seen;			/* "from to what kind" of every edge, to add each once */
	struct port ports[SVCGRAPH_MAX_PORTS];
	size_t nports;
};

static const char *keep(struct graph *g, const char *s)
{
	json_t *j = json_string(s);

	if (!j || json_array_append_new(g->pool, j) < 0)
		return NULL;
	return json_string_value(j);
}

static int edge_add(struct graph *g, const char *from, const char *to, const char *what,
		    enum moat_graph_kind kind)
{
	char key[2048];
	struct moat_graph_edge *v;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%d", from, to, what, (int)kind);
	if (json_object_get(g->seen, key))
		return 0;
	json_object_set_new(g->seen, key, json_true());
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		if (!(v = realloc(g->v, g->cap * sizeof(*v))))
			return -ENOMEM;
		g->v = v;
	}
	g->v[g->n] = (struct moat_graph_edge){ keep(g, from), keep(g, to), keep(g, what), kind };
	if (!g->v[g->n].from || !g->v[g->n].to || !g->v[g->n].what)
		return -ENOMEM;
	g->n++;
	return 0;
}

static void what_of(uint8_t proto, uint16_t port, char *buf, size_t len)
{
	char pbuf[8];
	const char *p = flow_proto_name(proto, pbuf);

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP)
		snprintf(buf, len, "%u/%s", port, p);
	else
		snprintf(buf, len, "%s", p);
}

static void port_note(struct graph *g, uint8_t proto, uint16_t port)
{
	if (!port || (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP))
		return;
	for (size_t i = 0; i < g->nports; i++)
		if (g->ports[i].proto == proto && g->ports[i].port == port)
			return;
	if (g->nports < SVCGRAPH_MAX_PORTS)
		g->ports[g->nports++] = (struct port){ proto, port };
}

static void node_of(const struct names *names, const struct flow_peer *p,
		    const struct moat_addr *seen, char *buf, size_t len)
{
	const char *group = json_string_value(json_object_get(names_meta(names, p->name), "group"));

	if (p->name)
		snprintf(buf, len, "%s", group ? group : names_str(names, p->name));
	else
		moat_addr_format(seen, buf, len);
}

static const enum moat_graph_kind kind_of[FLOW_NVERDICTS] = {
	[FLOW_ALLOWED] = MOAT_GRAPH_OBSERVED_ALLOWED,
	[FLOW_DENIED] = MOAT_GRAPH_OBSERVED_DENIED,
	[FLOW_VIOLATION] = MOAT_GRAPH_OBSERVED_VIOLATION,
};

static int observed_add(struct graph *g, const struct flows *t, const struct names *names)
{
	char from[1024], to[1024], what[32];
	int ret = 0;

	for (const struct flow *f = flows_newest(t); f && !ret; f = flows_older(t, f)) {
		node_of(names, &f->key.src, &f->saddr, from, sizeof(from));
		node_of(names, &f->key.dst, &f->daddr, to, sizeof(to));
		what_of(f->key.proto, f->key.port, what, sizeof(what));
		ret = edge_add(g, from, to, what, kind_of[f->verdict < FLOW_NVERDICTS ? f->verdict : 0]);
		port_note(g, f->key.proto, f->key.port);
	}
	return ret;
}

/* Groups of the plan's endpoints: name -> the index of one endpoint of it. */
static json_t *groups_of(const struct moat_plan *plan)
{
	json_t *groups = json_object();
	char name[1024];

	for (size_t i = 0; groups && i < plan->es->n; i++) {
		if (plan->es->v[i].host_network)
			continue;
		moat_baseline_group_name(&plan->es->v[i], name, sizeof(name));
		if (!json_object_get(groups, name))
			json_object_set_new(groups, name, json_integer((json_int_t)i));
	}
	return groups;
}

static void policy_ports(struct graph *g, const struct moat_policy_set *ps)
{
	for (size_t p = 0; p < ps->npols; p++) {
		const struct moat_netpol *pol = &ps->pols[p];

		for (size_t r = 0; r < pol->nin + pol->nout; r++) {
			const struct moat_rule *rule = r < pol->nin ? &pol->in[r] : &pol->out[r - pol->nin];

			for (size_t k = 0; k < rule->nports; k++)
				port_note(g, rule->ports[k].proto, rule->ports[k].port);
		}
	}
}

/* One pair of groups: an edge per port a policy allows (some side isolated) and nobody used. */
static int pair_add(struct graph *g, const struct moat_plan *plan, const char *from, size_t a,
		    const char *to, size_t b)
{
	char what[32], seen[2100];
	struct moat_verdict v;
	int ret = 0;

	for (size_t i = 0; i < g->nports && !ret; i++) {
		moat_plan_decide_endpoints(plan, a, b, g->ports[i].proto, g->ports[i].port, &v);
		if (v.kind != MOAT_ALLOW || v.loopback || (!v.in_iso && !v.out_iso))
			continue;
		what_of(g->ports[i].proto, g->ports[i].port, what, sizeof(what));
		snprintf(seen, sizeof(seen), "%s\x1f%s\x1f%s\x1f%d", from, to, what,
			 (int)MOAT_GRAPH_OBSERVED_ALLOWED);
		if (!json_object_get(g->seen, seen))
			ret = edge_add(g, from, to, what, MOAT_GRAPH_POLICY_ALLOWED);
	}
	return ret;
}

static int policy_add(struct graph *g, const struct moat_plan *plan)
{
	json_t *groups = groups_of(plan), *ja, *jb;
	const char *a, *b;
	int ret = groups ? 0 : -ENOMEM;

	policy_ports(g, plan->ps);
	if (!ret && json_object_size(groups) <= SVCGRAPH_MAX_GROUPS) {
		json_object_foreach(groups, a, ja) {
			json_object_foreach(groups, b, jb) {
				if (!ret && strcmp(a, b))
					ret = pair_add(g, plan, a, (size_t)json_integer_value(ja), b,
						       (size_t)json_integer_value(jb));
			}
		}
	}
	json_decref(groups);
	return ret;
}

static int write_dot(const struct graph *g, char **dot)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	ret = moat_graph_dot(g->v, g->n, f);
	if (fclose(f) != 0 && !ret)
		ret = -EIO;
	if (ret) {
		free(buf);
		return ret;
	}
	*dot = buf;
	return 0;
}

int svcgraph_dot(const struct flows *t, const struct names *names, const struct moat_plan *plan,
		 char **dot)
{
	struct graph g = { .pool = json_array(), .seen = json_object() };
	int ret = g.pool && g.seen ? observed_add(&g, t, names) : -ENOMEM;

	if (!ret && plan)
		ret = policy_add(&g, plan);
	if (!ret)
		ret = write_dot(&g, dot);
	free(g.v);
	json_decref(g.pool);
	json_decref(g.seen);
	return ret;
}
