/*
 * Compile benchmark: a generated cluster of S services x R replicas in 20 namespaces and one
 * policy per service (ingress from two other services on a few ports, egress to one service
 * and to the two DNS pods in kube-system), plus namespace-wide and ipBlock rules every 50th policy. Prints compile time,
 * memory, and how the plan grows as replicas, then services, double.
 * Usage: compile_bench [SERVICES REPLICAS]   (default 1000 10)
 */
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "moat/plan.h"

#define NNS 20

struct gen {
	struct moat_policy_set ps;
	struct moat_endpoint_set es;
	char **strs;		/* every string made, to free */
	size_t nstrs, cap;
};

static char *gstr(struct gen *g, const char *fmt, int a)
{
	char buf[64];

	if (g->nstrs == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 1024;
		g->strs = realloc(g->strs, g->cap * sizeof(char *));
	}
	snprintf(buf, sizeof(buf), fmt, a);
	return g->strs[g->nstrs++] = strdup(buf);
}

static struct moat_labels labels1(struct gen *g, const char *k, char *v)
{
	struct moat_label *l = calloc(1, sizeof(*l));

	l->key = gstr(g, k, 0);
	l->value = v;
	return (struct moat_labels){ l, 1 };
}

/* Replica r of service s: app=svcS, team=teamT, tier=...; 10.x.y.z and fd00::x:y:z. */
static void gen_endpoint(struct gen *g, struct moat_endpoint *e, int s, int r, int idx)
{
	static const char *tiers[] = { "web", "api", "db" };
	struct moat_label *l = calloc(3, sizeof(*l));

	l[0] = (struct moat_label){ gstr(g, "app", 0), gstr(g, "svc%d", s) };
	l[1] = (struct moat_label){ gstr(g, "team", 0), gstr(g, "team%d", s % 7) };
	l[2] = (struct moat_label){ gstr(g, "tier", 0), gstr(g, tiers[s % 3], 0) };
	e->name = gstr(g, "r%d", idx);
	e->namespace = gstr(g, "ns%d", s % NNS);
	e->labels = (struct moat_labels){ l, 3 };
	e->nips = 2;
	e->ips = calloc(2, sizeof(*e->ips));
	e->ips[0] = (struct moat_addr){ .family = AF_INET, .a = { 10, idx >> 16, idx >> 8, idx } };
	e->ips[1] = (struct moat_addr){ .family = AF_INET6, .a = { 0xfd, 0, [13] = idx >> 16,
								    [14] = idx >> 8, [15] = idx } };
	e->nports = 1;
	e->ports = calloc(1, sizeof(*e->ports));
	e->ports[0] = (struct moat_named_port){ gstr(g, "http", 0), IPPROTO_TCP, 8000 + s % 5 };
	(void)r;
}

static struct moat_peer svc_peer(struct gen *g, int s, int from_ns)
{
	struct moat_peer p = { .kind = MOAT_PEER_PODS, .has_pod = true };

	p.pod.match = labels1(g, "app", gstr(g, "svc%d", s));
	if (s % NNS != from_ns) {	/* another namespace: name it */
		p.has_ns = true;
		p.ns.match = labels1(g, "kubernetes.io/metadata.name", gstr(g, "ns%d", s % NNS));
	}
	return p;
}

static void gen_ingress(struct gen *g, struct moat_netpol *p, int s, int S)
{
	struct moat_rule *r = calloc(2, sizeof(*r));

	r[0].npeers = 2;
	r[0].peers = calloc(2, sizeof(*r[0].peers));
	r[0].peers[0] = svc_peer(g, (s + 1) % S, s % NNS);
	r[0].peers[1] = svc_peer(g, (s + 7) % S, s % NNS);
	r[0].nports = 3;
	r[0].ports = calloc(3, sizeof(*r[0].ports));
	r[0].ports[0] = (struct moat_port){ .proto = IPPROTO_TCP, .port = 80, .end_port = 80 };
	r[0].ports[1] = (struct moat_port){ .proto = IPPROTO_TCP, .port = 8080, .end_port = 8090 };
	r[0].ports[2] = (struct moat_port){ .proto = IPPROTO_TCP, .name = gstr(g, "http", 0) };
	p->in = r;
	p->nin = 1;
	if (s % 50)
		return;
	/* Every 50th: the whole of team3's namespaces may reach it. */
	r[1].npeers = 1;
	r[1].peers = calloc(1, sizeof(*r[1].peers));
	r[1].peers[0] = (struct moat_peer){ .kind = MOAT_PEER_PODS, .has_ns = true,
					    .ns.match = labels1(g, "team", gstr(g, "team3", 0)) };
	p->nin = 2;
}

static void gen_egress(struct gen *g, struct moat_netpol *p, int s, int S)
{
	struct moat_rule *r = calloc(2, sizeof(*r));

	r[0].npeers = 2;
	r[0].peers = calloc(2, sizeof(*r[0].peers));
	r[0].peers[0] = svc_peer(g, (s + 3) % S, s % NNS);
	r[0].peers[1] = (struct moat_peer){ .kind = MOAT_PEER_PODS, .has_ns = true, .has_pod = true,
		.ns.match = labels1(g, "kubernetes.io/metadata.name", gstr(g, "kube-system", 0)),
		.pod.match = labels1(g, "k8s-app", gstr(g, "kube-dns", 0)) };
	r[0].nports = 1;
	r[0].ports = calloc(1, sizeof(*r[0].ports));
	r[0].ports[0] = (struct moat_port){ .proto = IPPROTO_UDP, .port = 53, .end_port = 53 };
	p->out = r;
	p->nout = 1;
	if (s % 50)
		return;
	/* Every 50th: the internet but not the cluster, and one partner /24. */
	r[1].npeers = 2;
	r[1].peers = calloc(2, sizeof(*r[1].peers));
	r[1].peers[0] = (struct moat_peer){ .kind = MOAT_PEER_IPBLOCK,
		.cidr = { AF_INET, 0 }, .nexcept = 1, .except = calloc(1, sizeof(struct moat_cidr)) };
	r[1].peers[0].except[0] = (struct moat_cidr){ AF_INET, 8, { 10 } };
	r[1].peers[1] = (struct moat_peer){ .kind = MOAT_PEER_IPBLOCK,
		.cidr = { AF_INET, 24, { 192, 168, s / 50 % 256 } } };
	p->nout = 2;
}

/* Two DNS replicas in kube-system, which every policy's egress allows on 53/udp. */
static void gen_dns(struct gen *g, struct moat_endpoint *e, int idx)
{
	struct moat_label *l = calloc(1, sizeof(*l));

	*l = (struct moat_label){ gstr(g, "k8s-app", 0), gstr(g, "kube-dns", 0) };
	e->name = gstr(g, "coredns-%d", idx);
	e->namespace = gstr(g, "kube-system", 0);
	e->labels = (struct moat_labels){ l, 1 };
	e->nips = 1;
	e->ips = calloc(1, sizeof(*e->ips));
	e->ips[0] = (struct moat_addr){ .family = AF_INET, .a = { 10, 255, 255, idx } };
}

static void gen(struct gen *g, int S, int R)
{
	memset(g, 0, sizeof(*g));
	g->es.n = (size_t)S * R + 2;
	g->es.v = calloc(g->es.n, sizeof(*g->es.v));
	for (int i = 0; i < S * R; i++)
		gen_endpoint(g, &g->es.v[i], i % S, i / S, i);
	gen_dns(g, &g->es.v[S * R], 1);
	gen_dns(g, &g->es.v[S * R + 1], 2);
	g->es.nnss = NNS;
	g->es.nss = calloc(NNS, sizeof(*g->es.nss));
	for (int n = 0; n < NNS; n++) {
		g->es.nss[n].name = gstr(g, "ns%d", n);
		g->es.nss[n].labels = labels1(g, "team", gstr(g, "team%d", n % 7));
	}
	g->ps.npols = S;
	g->ps.pols = calloc(S, sizeof(*g->ps.pols));
	for (int s = 0; s < S; s++) {
		struct moat_netpol *p = &g->ps.pols[s];

		p->name = gstr(g, "svc%d", s);
		p->namespace = gstr(g, "ns%d", s % NNS);
		p->target.match = labels1(g, "app", gstr(g, "svc%d", s));
		p->isolates_in = p->isolates_out = true;
		gen_ingress(g, p, s, S);
		gen_egress(g, p, s, S);
	}
}

static void free_rules(struct moat_rule *r, size_t n)
{
	for (size_t i = 0; i < 2; i++) {
		for (size_t k = 0; k < r[i].npeers; k++) {
			free(r[i].peers[k].pod.match.v);
			free(r[i].peers[k].ns.match.v);
			free(r[i].peers[k].except);
		}
		free(r[i].peers);
		free(r[i].ports);
	}
	free(r);
	(void)n;
}

static void gen_free(struct gen *g)
{
	for (size_t i = 0; i < g->es.n; i++) {
		free(g->es.v[i].labels.v);
		free(g->es.v[i].ips);
		free(g->es.v[i].ports);
	}
	for (size_t i = 0; i < g->es.nnss; i++)
		free(g->es.nss[i].labels.v);
	for (size_t i = 0; i < g->ps.npols; i++) {
		free(g->ps.pols[i].target.match.v);
		free_rules(g->ps.pols[i].in, g->ps.pols[i].nin);
		free_rules(g->ps.pols[i].out, g->ps.pols[i].nout);
	}
	for (size_t i = 0; i < g->nstrs; i++)
		free(g->strs[i]);
	free(g->strs), free(g->es.v), free(g->es.nss), free(g->ps.pols);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static size_t elems(const struct moat_plan *p)
{
	return p->nallow[MOAT_ALLOW_IN] + p->nallow[MOAT_ALLOW_IN_ANY] + p->nallow[MOAT_ALLOW_OUT] +
	       p->nallow[MOAT_ALLOW_OUT_ANY];
}

/* One compile of S x R, best of three; prints a row. Returns 0 or a negative errno. */
static int row(int S, int R, bool detail)
{
	struct gen g;
	struct moat_plan *p = NULL, *p2 = NULL;
	double best = 1e9, t;
	int ret = 0;

	gen(&g, S, R);
	long rss0 = maxrss_kib();
	size_t heap0 = mallinfo2().uordblks;

	for (int i = 0; i < 3 && !ret; i++) {
		moat_plan_free(p);
		p = NULL;
		t = now_ms();
		ret = moat_plan_compile(&g.ps, &g.es, MOAT_MODE_ENFORCE, NULL, &p);
		best = (t = now_ms() - t) < best ? t : best;
	}
	if (!ret) {
		size_t heap = mallinfo2().uordblks - heap0;

		printf("%7zu %6d %9.1f %10.1f %8zu %8zu %6zu %9zu\n", g.es.n, S, best, heap / 1048576.0,
		       p->nidents, p->naddrs, p->nnets, elems(p));
		if (detail) {
			t = now_ms();
			ret = moat_plan_compile(&g.ps, &g.es, MOAT_MODE_ENFORCE, p, &p2);
			printf("\nrecompile with prev: %.1f ms\n"
			       "peak RSS growth during compiles: %.1f MiB (process peak %.1f MiB)\n"
			       "sets: allow_in %zu, allow_in_any %zu, allow_out %zu, allow_out_any %zu\n",
			       now_ms() - t, (maxrss_kib() - rss0) / 1024.0, maxrss_kib() / 1024.0,
			       p->nallow[MOAT_ALLOW_IN], p->nallow[MOAT_ALLOW_IN_ANY], p->nallow[MOAT_ALLOW_OUT],
			       p->nallow[MOAT_ALLOW_OUT_ANY]);
		}
	}
	moat_plan_free(p2);
	moat_plan_free(p);
	gen_free(&g);
	return ret;
}

static void header(void)
{
	printf("%7s %6s %9s %10s %8s %8s %6s %9s\n", "endpts", "svcs", "ms", "plan MiB",
	       "idents", "addrs", "nets", "elements");
}

int main(int argc, char **argv)
{
	int S = argc > 2 ? atoi(argv[1]) : 1000, R = argc > 2 ? atoi(argv[2]) : 10;
	int ret;

	printf("compile: %d endpoints (%d services x %d replicas), %d policies\n", S * R, S, R, S);
	header();
	if ((ret = row(S, R, true)))
		goto fail;
	printf("\nreplicas double (label groups fixed): plan grows with addresses only\n");
	header();
	for (int r = R / 4 ? R / 4 : 1; r <= R * 2 && !ret; r *= 2)
		ret = row(S, r, false);
	printf("\nservices double (label groups and policies grow with them)\n");
	header();
	for (int s = S / 4 ? S / 4 : 1; s <= S * 2 && !ret; s *= 2)
		ret = row(s, R, false);
fail:
	if (ret)
		fprintf(stderr, "compile_bench: compile failed: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}
