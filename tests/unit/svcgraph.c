/*
 * The service graph as JSON (daemon/svcgraph.h), what the web UI draws: every group of the
 * plan is a node (also one without flows), replicas are one node, an address is an external
 * node; one edge per (from, to, port, kind) summing its flows (count, first and last seen),
 * named by its newest flow (sample, policy); what policies allow and nobody used is a
 * policy edge with the endpoints it was decided for; the bound keeps the newest edges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/observe/flows.h"
#include "../../daemon/observe/names.h"
#include "../../daemon/observe/svcgraph.h"
#include "moat/baseline_group.h"
#include "moat/plan.h"
#include "moat/policy.h"

static const char endpoints[] =
	"endpoints:\n"
	"  - {name: web-1, labels: {app: web}, ips: [10.0.0.1]}\n"
	"  - {name: web-2, labels: {app: web}, ips: [10.0.0.2]}\n"
	"  - {name: api, labels: {app: api}, ips: [10.0.0.3]}\n"
	"  - {name: db, labels: {app: db}, ips: [10.0.0.4]}\n"
	"  - {name: lonely, labels: {app: lonely}, ips: [10.0.0.5]}\n";

static const char policies[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db}\n"
	"spec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n"
	"    - from: [{podSelector: {matchLabels: {app: api}}}]\n      ports: [{port: 5432}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: lonely}\n"
	"spec:\n  podSelector: {matchLabels: {app: lonely}}\n  ingress:\n"
	"    - from: [{podSelector: {matchLabels: {app: web}}}]\n      ports: [{port: 9090}]\n";

struct world {
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
	struct names *names;
	struct flows *flows;
};

/* The name of endpoint "default/NAME" with its labels and group, as observe makes it. */
static uint32_t name_of(struct world *w, const char *name)
{
	char full[128], group[256];
	uint32_t id;

	snprintf(full, sizeof(full), "default/%s", name);
	id = names_get(w->names, full, strlen(full));
	for (size_t i = 0; i < w->es->n; i++)
		if (!strcmp(w->es->v[i].name, name)) {
			moat_baseline_group_name(&w->es->v[i], group, sizeof(group));
			names_meta_set(w->names, id,
				       json_pack("{s:{},s:s}", "labels", "group", group));
		}
	return id;
}

static void addr(struct moat_addr *a, int last)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->a[0] = 10, a->a[3] = (uint8_t)last;
}

/* One flow; those added later are newer. from or to NULL: the address 203.0.113.7. */
static void flow(struct world *w, const char *from, const char *to, uint16_t port,
		 unsigned verdict, uint64_t count, int64_t first, int64_t last, const char *policy)
{
	struct flow_key k;
	struct flow *f;
	bool fresh;

	memset(&k, 0, sizeof(k));
	if (from)
		k.src.name = name_of(w, from);
	else
		k.src.addr = (struct moat_addr){ .family = AF_INET, .a = { 203, 0, 113, 7 } };
	k.dst.name = name_of(w, to);
	k.proto = 6;
	k.port = port;
	f = flows_get(w->flows, &k, &fresh);
	f->saddr = k.src.addr;
	if (from)
		addr(&f->saddr, 1);
	addr(&f->daddr, 4);
	f->count = count, f->first_ms = first, f->last_ms = last, f->verdict = (uint8_t)verdict;
	f->policy = policy ? names_get(w->names, policy, strlen(policy)) : 0;
}

static int world_new(struct world *w)
{
	struct moat_diags d = { 0 };
	int ret = moat_policy_set_parse("p.yaml", policies, strlen(policies), &w->ps, &d);

	if (!ret)
		ret = moat_endpoint_set_parse("e.yaml", endpoints, strlen(endpoints), &w->es, &d);
	if (!ret)
		ret = moat_plan_compile(w->ps, w->es, MOAT_MODE_ENFORCE, NULL, &w->plan);
	if (!ret)
		ret = names_new(&w->names);
	if (!ret)
		ret = flows_new(64, NULL, NULL, &w->flows);
	moat_diags_free(&d);
	if (ret)
		return ret;
	flow(w, "web-1", "api", 8080, FLOW_ALLOWED, 2, 1000, 2000, NULL);
	flow(w, "api", "db", 5432, FLOW_ALLOWED, 7, 1500, 2500, "default/db");
	flow(w, "web-1", "db", 5432, FLOW_DENIED, 1, 2600, 2600, "default/db");
	flow(w, NULL, "web-1", 80, FLOW_ALLOWED, 4, 100, 2700, NULL);
	flow(w, "web-2", "api", 8080, FLOW_ALLOWED, 3, 500, 3000, NULL);	/* newest */
	return 0;
}

static void world_free(struct world *w)
{
	flows_free(w->flows);
	names_free(w->names);
	moat_plan_free(w->plan);
	moat_endpoint_set_free(w->es);
	moat_policy_set_free(w->ps);
}

static json_t *find(json_t *arr, const char *k1, const char *v1, const char *k2, const char *v2,
		    const char *k3, const char *v3)
{
	size_t i;
	json_t *x;

	json_array_foreach(arr, i, x) {
		if (strcmp(json_string_value(json_object_get(x, k1)) ?: "", v1))
			continue;
		if (k2 && strcmp(json_string_value(json_object_get(x, k2)) ?: "", v2))
			continue;
		if (k3 && strcmp(json_string_value(json_object_get(x, k3)) ?: "", v3))
			continue;
		return x;
	}
	return NULL;
}

static json_int_t num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static const char *sample(json_t *e, const char *side)
{
	return json_string_value(json_object_get(json_object_get(e, "sample"), side));
}

static void test_nodes(json_t *g)
{
	json_t *nodes = json_object_get(g, "nodes"), *web, *lonely, *ext;

	CHECK(json_array_size(nodes) == 5);
	web = find(nodes, "id", "default/app=web", NULL, NULL, NULL, NULL);
	CHECK(web && !strcmp(json_string_value(json_object_get(web, "kind")), "group"));
	CHECK(json_array_size(json_object_get(web, "endpoints")) == 2);
	lonely = find(nodes, "id", "default/app=lonely", NULL, NULL, NULL, NULL);
	CHECK(lonely && json_array_size(json_object_get(lonely, "endpoints")) == 1);
	ext = find(nodes, "id", "203.0.113.7", NULL, NULL, NULL, NULL);
	CHECK(ext && !strcmp(json_string_value(json_object_get(ext, "kind")), "external"));
	CHECK(ext && json_array_size(json_object_get(ext, "endpoints")) == 0);
}

static void test_edges(json_t *g)
{
	json_t *edges = json_object_get(g, "edges"), *e;

	CHECK(json_array_size(edges) == 5);
	/* two replicas' flows are one edge, named by the newest */
	e = find(edges, "from", "default/app=web", "to", "default/app=api", "kind", "allowed");
	CHECK(e && num(e, "count") == 5 && num(e, "first_ms") == 500 && num(e, "last_ms") == 3000);
	CHECK_STR(json_string_value(json_object_get(e, "port")), "8080/tcp");
	CHECK_STR(sample(e, "from"), "default/web-2");
	CHECK_STR(sample(e, "to"), "default/api");
	CHECK(e && json_is_null(json_object_get(e, "policy")));
	e = find(edges, "from", "default/app=web", "to", "default/app=db", "kind", "denied");
	CHECK(e && num(e, "count") == 1);
	CHECK_STR(json_string_value(json_object_get(e, "policy")), "default/db");
	e = find(edges, "from", "203.0.113.7", "to", "default/app=web", "kind", "allowed");
	CHECK_STR(sample(e, "from"), "203.0.113.7");
	/* allowed by policy, never seen: web -> lonely 9090; api -> db 5432 was seen: no edge */
	e = find(edges, "from", "default/app=web", "to", "default/app=lonely", "kind", "policy");
	CHECK(e && num(e, "count") == 0 && !json_object_get(e, "last_ms"));
	CHECK_STR(json_string_value(json_object_get(e, "port")), "9090/tcp");
	CHECK_STR(sample(e, "from"), "default/web-1");
	CHECK_STR(sample(e, "to"), "default/lonely");
	CHECK(!find(edges, "from", "default/app=api", "to", "default/app=db", "kind", "policy"));
	CHECK(json_is_false(json_object_get(g, "truncated")));
	CHECK(json_is_false(json_object_get(g, "policy_truncated")));
	CHECK(json_is_true(json_object_get(g, "policy_edges")));
}

/* At most 2 edges: the newest flows' (web -> api, then 203.0.113.7 -> web). */
static void test_bound(struct world *w)
{
	json_t *g = NULL, *edges;

	CHECK(svcgraph_json(w->flows, w->names, w->plan, 2, &g) == 0);
	edges = json_object_get(g, "edges");
	CHECK(json_array_size(edges) == 2 && json_is_true(json_object_get(g, "truncated")));
	CHECK(json_is_true(json_object_get(g, "policy_truncated")));
	CHECK(find(edges, "from", "default/app=web", "to", "default/app=api", NULL, NULL));
	CHECK(find(edges, "from", "203.0.113.7", NULL, NULL, NULL, NULL));
	/* the nodes are still every group, plus the addresses of the edges kept */
	CHECK(json_array_size(json_object_get(g, "nodes")) == 5);
	json_decref(g);
	/* room for the observed edges, not for the policy edge */
	CHECK(svcgraph_json(w->flows, w->names, w->plan, 4, &g) == 0);
	CHECK(json_is_false(json_object_get(g, "truncated")));
	CHECK(json_is_true(json_object_get(g, "policy_truncated")));
	json_decref(g);
	/* without a plan: observed edges only, no groups without flows */
	CHECK(svcgraph_json(w->flows, w->names, NULL, 0, &g) == 0);
	CHECK(json_array_size(json_object_get(g, "edges")) == 4);
	CHECK(!find(json_object_get(g, "nodes"), "id", "default/app=lonely", NULL, NULL, NULL,
		    NULL));
	json_decref(g);
}

int main(void)
{
	struct world w = { 0 };
	json_t *g = NULL;

	CHECK(world_new(&w) == 0);
	if (!w.flows)
		return check_done();
	CHECK(svcgraph_json(w.flows, w.names, w.plan, 0, &g) == 0);
	if (g) {
		test_nodes(g);
		test_edges(g);
	}
	json_decref(g);
	test_bound(&w);
	world_free(&w);
	return check_done();
}
