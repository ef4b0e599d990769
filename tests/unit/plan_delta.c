/*
 * Deltas against the whole compile: random sequences of endpoints that come, go and change,
 * each applied as a delta (moat_plan_delta_new, moat_endpoint_set_change, _commit), must
 * leave the plan a whole compile of the same set gives (compiled with the delta's plan as
 * prev, so ids must agree too), and the kernel's elements (the parts that went and came,
 * elements_change, on an element multiset) those a whole build gives, published ports'
 * included (whose elements follow their identity's lists). A delta the plan
 * refuses (-ESTALE) is compiled whole, as moatd does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/datapath/elements.h"
#include "../../daemon/datapath/elemset.h"
#include "check.h"
#include "moat/plan.h"

/* Policies that exercise every kind of atom: selectors with expressions, namespace
 * selectors, ipBlocks with excepts, named ports to a peer and to anyone, both directions;
 * and both tiers, with every action, port ranges, a named port of any protocol, networks. */
static const char policies[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: red}}\n---\n"
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {team: blue}}\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a-in, namespace: x}\n"
	"spec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n"
	"    - from: [{podSelector: {matchLabels: {app: b}}}]\n      ports: [{port: http}, {port: 9000, endPort: 9010}]\n"
	"    - from: [{namespaceSelector: {matchLabels: {team: blue}}}]\n      ports: [{port: 53, protocol: UDP}]\n"
	"    - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.0/24]}}]\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b-out, namespace: x}\n"
	"spec:\n  podSelector: {matchExpressions: [{key: app, operator: In, values: [b, c]}]}\n"
	"  policyTypes: [Egress]\n  egress:\n"
	"    - to: [{podSelector: {matchLabels: {app: a}}}]\n      ports: [{port: http}]\n"
	"    - ports: [{port: metrics}]\n"
	"    - to: [{ipBlock: {cidr: 'fd00::/16', except: ['fd00::1:0/112']}}]\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: y-all, namespace: y}\n"
	"spec:\n  podSelector: {matchExpressions: [{key: tier, operator: Exists}]}\n"
	"  policyTypes: [Ingress, Egress]\n"
	"  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [d]}]}}]}]\n"
	"  egress: [{to: [{namespaceSelector: {matchLabels: {team: red}}}]}]\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-d, namespace: y}\n"
	"spec:\n  podSelector: {matchExpressions: [{key: app, operator: DoesNotExist}]}\n---\n"
	"apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
	"metadata: {name: guard}\nspec:\n  tier: Admin\n  priority: 5\n"
	"  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {tier: db}}}}\n"
	"  ingress:\n"
	"    - {action: Pass, from: [{pods: {namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: a}}}}]}\n"
	"    - {action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 9000, end: 9005}}}}, {destinationNamedPort: http}]}\n"
	"    - {action: Accept, from: [{namespaces: {matchLabels: {team: blue}}}]}\n"
	"  egress:\n"
	"    - {action: Deny, to: [{networks: [10.0.0.0/9, 'fd00::/17']}], protocols: [{udp: {destinationPort: {number: 53}}}]}\n"
	"    - {action: Accept, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}]}\n---\n"
	"apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
	"metadata: {name: floor}\nspec:\n  tier: Baseline\n  priority: 1\n"
	"  subject: {namespaces: {matchLabels: {team: blue}}}\n"
	"  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]}]\n"
	"  egress: [{action: Deny, to: [{namespaces: {matchLabels: {team: red}}}]}]\n";

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

/* Endpoint k, randomly made: labels from a small pool (so kinds repeat), sometimes one of
 * its own (a new kind), addresses of its own, named ports, veths. */
struct gen {
	struct moat_endpoint e;
	struct moat_label labels[3];
	struct moat_addr ips[2];
	struct moat_named_port ports[2];
	char *ifaces[1];
	uint8_t macs[1][6];
	struct moat_published pub[2];
	char name[32], uniq[16];
};

static void gen_endpoint(struct gen *g, unsigned k, unsigned addr_of)
{
	static const char *apps[] = { "a", "b", "c", "d" }, *nss[] = { "x", "y", "default" };
	static char iface[64][16];
	size_t nl = 0;

	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "e%u", k);
	snprintf(iface[k % 64], sizeof(iface[0]), "v%u", addr_of);
	g->labels[nl++] = (struct moat_label){ "app", (char *)apps[rnd(4)] };
	if (rnd(3))
		g->labels[nl++] = (struct moat_label){ "tier", rnd(2) ? "web" : "db" };
	if (!rnd(8)) {
		snprintf(g->uniq, sizeof(g->uniq), "u%u", k);
		g->labels[nl++] = (struct moat_label){ "zz", g->uniq };
	}
	g->ips[0] = (struct moat_addr){ .family = AF_INET, .a = { 10, 0, addr_of >> 8, addr_of & 255 } };
	g->ips[1] = (struct moat_addr){ .family = AF_INET6, .a = { 0xfd, 0, [14] = addr_of >> 8,
								      [15] = addr_of & 255 } };
	g->ports[0] = (struct moat_named_port){ "http", IPPROTO_TCP, rnd(2) ? 80 : 8080 };
	g->ports[1] = (struct moat_named_port){ "metrics", IPPROTO_TCP, 9100 };
	g->ifaces[0] = iface[k % 64];
	g->macs[0][0] = 2, g->macs[0][4] = addr_of >> 8, g->macs[0][5] = addr_of & 255;
	/* published ports: on ports a's lists name (http, 9000-9010, 53/udp) or not, host
	 * ports of their own or shared by a few (another host address) */
	g->pub[0] = (struct moat_published){ IPPROTO_TCP, 15000 + (rnd(3) ? k : rnd(4)),
					     rnd(2) ? (rnd(2) ? 80 : 8080) : 9005 };
	g->pub[1] = (struct moat_published){ IPPROTO_UDP, 16000 + k, rnd(2) ? 53 : 54 };
	g->e = (struct moat_endpoint){ .name = g->name, .namespace = (char *)nss[rnd(3)],
		.labels = { g->labels, nl }, .ips = g->ips, .nips = 1 + rnd(2), .ports = g->ports,
		.nports = rnd(3), .ifaces = g->ifaces, .nifaces = rnd(2), .macs = g->macs,
		.published = g->pub, .npublished = rnd(3) };
	moat_labels_sort(&g->e.labels);
}

/* ---- the plans must be the same ---- */

static bool same_allow(const struct moat_plan_allow *x, const struct moat_plan_allow *y)
{
	return x->peer == y->peer && x->proto_lo == y->proto_lo && x->proto_hi == y->proto_hi &&
	       x->port_lo == y->port_lo && x->port_hi == y->port_hi && x->action == y->action;
}

static bool same_ident(const struct moat_plan *a, const struct moat_plan *b, size_t i)
{
	const struct moat_plan_ident *x = &a->idents[i], *y = &b->idents[i];
	const uint32_t *pa, *pb;

	if (x->id != y->id || x->in_iso != y->in_iso || x->out_iso != y->out_iso ||
	    x->in_mode != y->in_mode || x->out_mode != y->out_mode ||
	    memcmp(x->admin, y->admin, sizeof(x->admin)) ||
	    memcmp(x->baseline, y->baseline, sizeof(x->baseline)))
		return false;
	for (int d = 0; d < 2; d++) {
		size_t n = moat_plan_isolating(a, x->id, d, &pa);

		if (n != moat_plan_isolating(b, y->id, d, &pb) || (n && memcmp(pa, pb, n * 4)))
			return false;
	}
	for (int l = 0; l < MOAT_ALLOW_LISTS; l++) {
		if (x->nallow[l] != y->nallow[l])
			return false;
		for (uint32_t k = 0; k < x->nallow[l]; k++)
			if (!same_allow(&x->allow[l][k], &y->allow[l][k]))
				return false;
	}
	return true;
}

static int addr_cmp(const void *p, const void *q)
{
	return moat_addr_cmp(&((const struct moat_plan_addr *)p)->addr,
			     &((const struct moat_plan_addr *)q)->addr);
}

/* The same address records, in any order. */
static bool same_addrs(const struct moat_plan *a, const struct moat_plan *b)
{
	struct moat_plan_addr *x = malloc((a->naddrs + 1) * sizeof(*x));
	struct moat_plan_addr *y = malloc((b->naddrs + 1) * sizeof(*y));
	bool same = x && y && a->naddrs == b->naddrs;

	if (same) {
		memcpy(x, a->addrs, a->naddrs * sizeof(*x));
		memcpy(y, b->addrs, b->naddrs * sizeof(*y));
		qsort(x, a->naddrs, sizeof(*x), addr_cmp);
		qsort(y, b->naddrs, sizeof(*y), addr_cmp);
	}
	for (size_t i = 0; same && i < a->naddrs; i++)
		same = !moat_addr_cmp(&x[i].addr, &y[i].addr) && x[i].ident == y[i].ident &&
		       x[i].endpoint == y[i].endpoint;
	for (size_t i = 0; same && i < a->naddrs; i++)	/* and each is found */
		same = moat_plan_addr_find(a, &x[i].addr) && moat_plan_addr_find(b, &x[i].addr);
	free(x), free(y);
	return same;
}

static bool same_plan(const struct moat_plan *a, const struct moat_plan *b, const char *step)
{
	bool same = a->nidents == b->nidents && a->nnets == b->nnets && same_addrs(a, b);

	for (size_t i = 0; same && i < a->nidents; i++)
		if (!(same = same_ident(a, b, i)))
			fprintf(stderr, "%s: identity %u differs\n", step, a->idents[i].id);
	for (size_t i = 0; same && i < a->es->n; i++)
		same = a->endpoint_ident[i] == b->endpoint_ident[i];
	for (size_t i = 0; same && i < a->nnets; i++)
		same = a->nets[i].ident == b->nets[i].ident;
	for (int l = 0; same && l < MOAT_ALLOW_LISTS; l++)
		same = a->nallow[l] == b->nallow[l];
	if (!same)
		fprintf(stderr, "%s: the delta's plan and the whole compile differ (%zu/%zu identities, "
			"%zu/%zu addresses)\n", step, a->nidents, b->nidents, a->naddrs, b->naddrs);
	return same;
}

/* ---- the kernel's elements must be the same ---- */

static const struct moat_cidr managed[] = { { AF_INET, 16, { 10, 0 } } };

static struct elemset *elems_whole(const struct moat_plan *plan)
{
	struct ruleset_input in = { .plan = plan, .es = plan->es, .managed = managed, .nmanaged = 1,
				    .mode = plan->mode, .nflog_group = 1, .dns_queue = 53 };
	struct elemv v[S_COUNT] = { { 0 } };
	struct elemset *set = NULL;

	CHECK(!elemset_new(&set));
	CHECK(!elements_build(&in, v));
	CHECK(!elemset_add_all(set, v));
	elemvs_free(v);
	return set;
}

/* Every element of x with the same number of parts in y, and the same count per set. */
static bool same_elems(const struct elemset *x, const struct elemset *y, const char *step)
{
	for (int s = 0; s < S_COUNT; s++) {
		struct elemv v = { 0 };
		bool same = elemset_count(x, s, 0) == elemset_count(y, s, 0) && !elemset_list(x, s, &v);

		for (size_t i = 0; same && i < v.n; i++)
			same = elemset_has(y, s, &v.v[i]);
		free(v.v);
		if (!same) {
			fprintf(stderr, "%s: set %s differs (%zu/%zu elements)\n", step, sets[s].name,
				elemset_count(x, s, 0), elemset_count(y, s, 0));
			return false;
		}
	}
	return true;
}

/* The parts of the change leave (minus) and come to (plus) cur. */
static void elems_change(struct elemset *cur, struct elemv *minus, struct elemv *plus)
{
	for (int s = 0; s < S_COUNT; s++) {
		for (size_t i = 0; i < minus[s].n; i++)
			CHECK(elemset_del(cur, s, &minus[s].v[i]) >= 0);
		for (size_t i = 0; i < plus[s].n; i++)
			CHECK(elemset_add(cur, s, &plus[s].v[i]) >= 0);
	}
}

/* ---- the sequences ---- */

struct world {
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
	struct elemset *cur;		/* the kernel's elements, kept by parts */
	struct pubv pubs;		/* its published ports, as ruleset.c keeps them */
	unsigned next, deltas, stale;
};

/* gone (descending) go and come come, as moatd commits a change. */
static void step(struct world *w, size_t *gone, size_t ngone, const struct moat_endpoint *come,
		 size_t ncome, const char *what)
{
	struct moat_endpoint *copies = calloc(ncome + 1, sizeof(*copies));
	struct elemv minus[S_COUNT] = { { 0 } }, plus[S_COUNT] = { { 0 } };
	struct moat_plan_delta *d = NULL;
	struct moat_plan *whole = NULL;
	struct elemset *ref;
	int ret;

	CHECK(copies && !moat_endpoint_set_copy_in(w->es, come, ncome, copies));
	ret = moat_plan_delta_new(w->plan, gone, ngone, copies, ncome, &d);
	CHECK(ret == 0 || ret == -ESTALE);
	if (!ret) {
		struct pubv pubs = { 0 };

		CHECK(!elements_change(w->plan, d, gone, ngone, copies, ncome, &w->pubs, minus,
				       plus));
		CHECK(!pubv_change(&w->pubs, w->plan, d, gone, ngone, copies, ncome, &pubs));
		free(w->pubs.v);
		w->pubs = pubs;
		elems_change(w->cur, minus, plus);
		moat_endpoint_set_change(w->es, gone, ngone, copies, ncome);
		moat_plan_delta_commit(w->plan, d);
		w->deltas++;
	} else {
		struct moat_plan *p = NULL;

		moat_endpoint_set_change(w->es, gone, ngone, copies, ncome);
		CHECK(!moat_plan_compile(w->ps, w->es, MOAT_MODE_ENFORCE, w->plan, &p));
		moat_plan_free(w->plan);
		w->plan = p;
		elemset_free(w->cur);
		w->cur = elems_whole(p);
		free(w->pubs.v);
		w->pubs = (struct pubv){ 0 };
		CHECK(!pubv_build(p, w->es, &w->pubs));
		w->stale++;
	}
	CHECK(!moat_plan_compile(w->ps, w->es, MOAT_MODE_ENFORCE, w->plan, &whole));
	CHECK(whole && same_plan(w->plan, whole, what));
	ref = elems_whole(whole);
	CHECK(same_elems(w->cur, ref, what));
	elemset_free(ref);
	moat_plan_free(whole);
	elemvs_free(minus), elemvs_free(plus);
	free(copies);
}

static int cmp_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x > y ? -1 : x < y;
}

/* A random change: endpoints go, come, or change (one name in both). */
static void random_step(struct world *w)
{
	struct gen g[4];
	struct moat_endpoint come[4];
	size_t gone[4], ngone = 0, ncome = 0;
	unsigned kind = rnd(4);
	char what[64];

	if (kind != 1)	/* go */
		for (unsigned k = rnd(3); k-- > 0 && ngone < w->es->n;) {
			size_t i = rnd(w->es->n);
			bool dup = false;

			for (size_t j = 0; j < ngone; j++)
				dup |= gone[j] == i;
			if (!dup)
				gone[ngone++] = i;
		}
	if (kind != 0)	/* come */
		for (unsigned k = 1 + rnd(2); k-- > 0;) {
			gen_endpoint(&g[ncome], w->next, w->next);
			come[ncome] = g[ncome].e;
			ncome++, w->next++;
		}
	if (kind == 3 && ngone) {	/* the first that goes comes back changed, same name */
		const struct moat_endpoint *old = &w->es->v[gone[0]];

		snprintf(g[0].name, sizeof(g[0].name), "%s", old->name);
		come[0].namespace = old->namespace;
	}
	qsort(gone, ngone, sizeof(*gone), cmp_desc);
	snprintf(what, sizeof(what), "step %u: %zu go, %zu come", w->deltas + w->stale, ngone,
		 ncome);
	step(w, gone, ngone, come, ncome, what);
}

static void sequence(unsigned seed, unsigned steps)
{
	struct moat_diags diags = { 0 };
	struct world w = { 0 };

	rnd_state = seed;
	CHECK(!moat_policy_set_parse("p.yaml", policies, strlen(policies), &w.ps, &diags));
	moat_diags_print(&diags, stderr);
	moat_diags_free(&diags);
	w.es = moat_endpoint_set_new();
	CHECK(w.ps && w.es);
	if (!w.ps || !w.es)
		return;
	for (unsigned k = 0; k < 6; k++) {	/* a start of a few endpoints */
		struct gen g;

		gen_endpoint(&g, w.next, w.next);
		w.next++;
		if (moat_endpoint_set_find(w.es, g.e.namespace ? g.e.namespace : "default",
					   g.e.name) < 0)
			CHECK(!moat_endpoint_set_add(w.es, &g.e));
	}
	CHECK(!moat_plan_compile(w.ps, w.es, MOAT_MODE_ENFORCE, NULL, &w.plan));
	w.cur = elems_whole(w.plan);
	CHECK(!pubv_build(w.plan, w.es, &w.pubs));
	for (unsigned i = 0; i < steps && w.plan; i++)
		random_step(&w);
	CHECK(w.deltas > steps / 2);	/* most changes are deltas, not whole compiles */
	moat_plan_free(w.plan);
	elemset_free(w.cur);
	free(w.pubs.v);
	moat_endpoint_set_free(w.es);
	moat_policy_set_free(w.ps);
}

int main(void)
{
	for (unsigned seed = 1; seed <= 40; seed++)
		sequence(seed, 60);
	return check_done();
}
