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
#include "moat/proto.h"

struct port {
	uint8_t proto;
	uint16_t port;
};

/* What the JSON graph tells of an edge besides its ends; strings live in the pool. */
struct edge_stat {
	uint64_t count;			/* records of its flows; 0 for a policy edge */
	int64_t first_ms, last_ms;
	const char *sample_from, *sample_to;	/* the newest flow's sides, as explain takes them */
	const char *policy;		/* the newest flow's deciding policies, or NULL */
};

/* Edges whose strings live in pool (a JSON array of strings) until the graph is written. */
struct graph {
	struct moat_graph_edge *v;
	struct edge_stat *st;		/* one per edge of v */
	size_t n, cap, max;		/* max: edges kept at most (0: no bound) */
	bool truncated;			/* an observed edge was left out for max */
	bool policy_truncated;		/* a policy edge was */
	bool policy_phase;		/* adding policy edges now */
	json_t *pool;
	json_t *seen;			/* "from to what kind" -> the edge's index */
	struct port ports[SVCGRAPH_MAX_PORTS];
	size_t nports;
	size_t ngroups;			/* of the plan, for policy edges */
};

static const char *keep(struct graph *g, const char *s)
{
	json_t *j = json_string(s);

	if (!j || json_array_append_new(g->pool, j) < 0)
		return NULL;
	return json_string_value(j);
}

static int grow(struct graph *g)
{
	size_t cap = g->cap ? g->cap * 2 : 64;
	struct moat_graph_edge *v = realloc(g->v, cap * sizeof(*v));
	struct edge_stat *st = v ? realloc(g->st, cap * sizeof(*st)) : NULL;

	if (v)
		g->v = v;
	if (!st)
		return -ENOMEM;
	g->st = st;
	g->cap = cap;
	return 0;
}

/* The index of the edge (added unless it is there), -ENOSPC past g->max, or -ENOMEM. */
static int edge_add(struct graph *g, const char *from, const char *to, const char *what,
		    enum moat_graph_kind kind)
{
	char key[2048];
	json_t *at;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%d", from, to, what, (int)kind);
	if ((at = json_object_get(g->seen, key)))
		return (int)json_integer_value(at);
	if (g->max && g->n == g->max) {
		*(g->policy_phase ? &g->policy_truncated : &g->truncated) = true;
		return -ENOSPC;
	}
	if (g->n == g->cap && grow(g) < 0)
		return -ENOMEM;
	g->v[g->n] = (struct moat_graph_edge){ keep(g, from), keep(g, to), keep(g, what), kind };
	g->st[g->n] = (struct edge_stat){ 0 };
	if (!g->v[g->n].from || !g->v[g->n].to || !g->v[g->n].what ||
	    json_object_set_new(g->seen, key, json_integer((json_int_t)g->n)) < 0)
		return -ENOMEM;
	return (int)g->n++;
}

static void what_of(uint8_t proto, uint16_t port, char *buf, size_t len)
{
	char pbuf[8];
	const char *p = flow_proto_name(proto, pbuf);

	if (moat_proto_has_ports(proto))
		snprintf(buf, len, "%u/%s", port, p);
	else
		snprintf(buf, len, "%s", p);
}

static void port_note(struct graph *g, uint8_t proto, uint16_t port)
{
	if (!port || !moat_proto_has_ports(proto))
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

/* A side as explain takes it: the endpoint's "ns/name", else the address seen. */
static const char *sample_of(struct graph *g, const struct names *names,
			     const struct flow_peer *p, const struct moat_addr *seen)
{
	char ip[64];

	if (p->name)
		return keep(g, names_str(names, p->name));
	return keep(g, moat_addr_format(seen, ip, sizeof(ip)));
}

/* Flows come newest first: the first of an edge names its sample and policy. */
static void stat_add(struct graph *g, struct edge_stat *st, const struct flow *f,
		     const struct names *names)
{
	if (!st->count) {
		st->sample_from = sample_of(g, names, &f->key.src, &f->saddr);
		st->sample_to = sample_of(g, names, &f->key.dst, &f->daddr);
		st->policy = f->policy ? keep(g, names_str(names, f->policy)) : NULL;
		st->first_ms = f->first_ms;
		st->last_ms = f->last_ms;
	}
	st->count += f->count ? f->count : 1;
	if (f->first_ms < st->first_ms)
		st->first_ms = f->first_ms;
	if (f->last_ms > st->last_ms)
		st->last_ms = f->last_ms;
}

static int observed_add(struct graph *g, const struct flows *t, const struct names *names)
{
	char from[1024], to[1024], what[32];
	int ret = 0, at;

	for (const struct flow *f = flows_newest(t); f && !ret; f = flows_older(t, f)) {
		node_of(names, &f->key.src, &f->saddr, from, sizeof(from));
		node_of(names, &f->key.dst, &f->daddr, to, sizeof(to));
		what_of(f->key.proto, f->key.port, what, sizeof(what));
		port_note(g, f->key.proto, f->key.port);
		at = edge_add(g, from, to, what, kind_of[f->verdict < FLOW_NVERDICTS ? f->verdict : 0]);
		if (at >= 0)
			stat_add(g, &g->st[at], f, names);
		ret = at == -ENOSPC ? 0 : at < 0 ? at : 0;
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

static const char *endpoint_name(struct graph *g, const struct moat_endpoint *e)
{
	char name[1024];

	snprintf(name, sizeof(name), "%s/%s", e->namespace, e->name);
	return keep(g, name);
}

/* A policy edge's sample: the endpoints its pair of groups was decided on. */
static void sample_set(struct graph *g, struct edge_stat *st, const struct moat_plan *plan,
		       size_t a, size_t b)
{
	st->sample_from = endpoint_name(g, &plan->es->v[a]);
	st->sample_to = endpoint_name(g, &plan->es->v[b]);
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
		if (json_object_get(g->seen, seen))
			continue;
		ret = edge_add(g, from, to, what, MOAT_GRAPH_POLICY_ALLOWED);
		if (ret >= 0)
			sample_set(g, &g->st[ret], plan, a, b);
		ret = ret == -ENOSPC ? 0 : ret < 0 ? ret : 0;
	}
	return ret;
}

static int policy_add(struct graph *g, const struct moat_plan *plan)
{
	json_t *groups = groups_of(plan), *ja, *jb;
	const char *a, *b;
	int ret = groups ? 0 : -ENOMEM;

	policy_ports(g, plan->ps);
	g->policy_phase = true;
	g->ngroups = json_object_size(groups);
	if (!ret && g->ngroups <= SVCGRAPH_MAX_GROUPS) {
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

/* Observed edges, then policy edges; g is freed with graph_fini, also on failure. */
static int graph_build(struct graph *g, const struct flows *t, const struct names *names,
		       const struct moat_plan *plan)
{
	int ret;

	g->pool = json_array();
	g->seen = json_object();
	ret = g->pool && g->seen ? observed_add(g, t, names) : -ENOMEM;
	if (!ret && plan)
		ret = policy_add(g, plan);
	return ret;
}

static void graph_fini(struct graph *g)
{
	free(g->v);
	free(g->st);
	json_decref(g->pool);
	json_decref(g->seen);
}

int svcgraph_dot(const struct flows *t, const struct names *names, const struct moat_plan *plan,
		 char **dot)
{
	struct graph g = { 0 };
	int ret = graph_build(&g, t, names, plan);

	if (!ret)
		ret = write_dot(&g, dot);
	graph_fini(&g);
	return ret;
}

/* ---- as JSON ---- */

static const char *const kind_names[] = {
	[MOAT_GRAPH_OBSERVED_ALLOWED] = "allowed",
	[MOAT_GRAPH_OBSERVED_DENIED] = "denied",
	[MOAT_GRAPH_OBSERVED_VIOLATION] = "violation",
	[MOAT_GRAPH_POLICY_ALLOWED] = "policy",
};

static json_t *edge_json(const struct moat_graph_edge *e, const struct edge_stat *st)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:{s:s?,s:s?}}", "from", e->from, "to", e->to,
			      "port", e->what, "kind", kind_names[e->kind], "count",
			      (json_int_t)st->count, "sample", "from", st->sample_from, "to",
			      st->sample_to);

	if (j && st->count) {
		json_object_set_new(j, "first_ms", json_integer(st->first_ms));
		json_object_set_new(j, "last_ms", json_integer(st->last_ms));
		json_object_set_new(j, "policy",
				    st->policy ? json_string(st->policy) : json_null());
	}
	return j;
}

/* The node named id, created ({"id", "kind", "endpoints": []}) when it is new. */
static json_t *node_get(json_t *nodes, const char *id, bool group)
{
	json_t *n = json_object_get(nodes, id);

	if (n)
		return n;
	n = json_pack("{s:s,s:s,s:[]}", "id", id, "kind", group ? "group" : "external",
		      "endpoints");
	if (json_object_set_new(nodes, id, n) < 0)
		return NULL;
	return n;
}

/* Every group of the plan's endpoints, with its endpoints' names. */
static int groups_put(json_t *nodes, const struct moat_plan *plan)
{
	char group[1024], name[1024];

	for (size_t i = 0; plan && i < plan->es->n; i++) {
		const struct moat_endpoint *e = &plan->es->v[i];
		json_t *n;

		moat_baseline_group_name(e, group, sizeof(group));
		snprintf(name, sizeof(name), "%s/%s", e->namespace, e->name);
		n = node_get(nodes, group, true);
		if (!n || json_array_append_new(json_object_get(n, "endpoints"),
						json_string(name)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Nodes: the groups, then every other name an edge has (addresses: external). */
static json_t *nodes_json(const struct graph *g, const struct moat_plan *plan)
{
	json_t *nodes = json_object(), *arr = json_array(), *n;
	const char *id;
	int ret = nodes && arr ? groups_put(nodes, plan) : -ENOMEM;

	for (size_t i = 0; !ret && i < g->n; i++) {
		struct moat_addr a;
		const char *ends[2] = { g->v[i].from, g->v[i].to };

		for (int k = 0; k < 2 && !ret; k++) {
			bool group = moat_addr_parse(ends[k], &a) < 0;

			ret = node_get(nodes, ends[k], group) ? 0 : -ENOMEM;
		}
	}
	json_object_foreach(nodes, id, n)
		if (!ret && json_array_append(arr, n) < 0)
			ret = -ENOMEM;
	json_decref(nodes);
	if (ret) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static json_t *graph_json(const struct graph *g, const struct moat_plan *plan)
{
	json_t *edges = json_array(), *e;
	bool policy = plan && g->ngroups <= SVCGRAPH_MAX_GROUPS;

	for (size_t i = 0; edges && i < g->n; i++)
		if (!(e = edge_json(&g->v[i], &g->st[i])) || json_array_append_new(edges, e) < 0) {
			json_decref(edges);
			return NULL;
		}
	return json_pack("{s:o*,s:o*,s:b,s:b,s:b}", "nodes", nodes_json(g, plan), "edges", edges,
			 "truncated", g->truncated, "policy_edges", policy, "policy_truncated",
			 g->policy_truncated);
}

int svcgraph_json(const struct flows *t, const struct names *names, const struct moat_plan *plan,
		  size_t max_edges, json_t **out)
{
	struct graph g = { .max = max_edges };
	int ret = graph_build(&g, t, names, plan);
	json_t *j = NULL;

	if (!ret && !(j = graph_json(&g, plan)))
		ret = -ENOMEM;
	graph_fini(&g);
	if (!ret)
		*out = j;
	return ret;
}
