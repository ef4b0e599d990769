/*
 * The compiler and verdicts on models built in C: isolation, union, ports and ranges,
 * ipBlocks with excepts, named ports, modes, stable ids, disjoint sets and nets, that the
 * plan grows with label groups, not with replicas, and that a recompile sharing prev's
 * policy state gives the plan a compile that cannot share it does.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "moat/plan.h"
#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABELS(...) ((struct moat_labels){ (struct moat_label[]){ __VA_ARGS__ }, \
	N(((struct moat_label[]){ __VA_ARGS__ })) })
#define SEL(...) ((struct moat_selector){ .match = LABELS(__VA_ARGS__) })

static struct moat_addr addr(const char *s)
{
	struct moat_addr a = { .family = strchr(s, ':') ? AF_INET6 : AF_INET };

	inet_pton(a.family, s, a.a);
	return a;
}

static struct moat_cidr cidr(const char *s, int plen)
{
	struct moat_addr a = addr(s);
	struct moat_cidr c = { .family = a.family, .plen = plen };

	memcpy(c.addr, a.a, 16);
	return c;
}

/* Three endpoints: x/a (app=a), x/b (app=b), y/c (app=c); a has http=8080/tcp. */
static struct moat_addr ips[3][2];
static struct moat_named_port a_ports[] = { { "http", IPPROTO_TCP, 8080 } };
static struct moat_endpoint eps[3];
static struct moat_endpoint_set es3 = { .v = eps, .n = 3 };

static void endpoints_init(void)
{
	const char *v4[] = { "10.0.0.1", "10.0.0.2", "10.0.1.3" };
	const char *v6[] = { "fd00::1", "fd00::2", "fd00::1:3" };
	static struct moat_label labs[3] = { { "app", "a" }, { "app", "b" }, { "app", "c" } };

	for (int i = 0; i < 3; i++) {
		ips[i][0] = addr(v4[i]);
		ips[i][1] = addr(v6[i]);
		eps[i] = (struct moat_endpoint){ .name = (char *[]){ "a", "b", "c" }[i],
			.namespace = i < 2 ? "x" : "y", .labels = { &labs[i], 1 },
			.ips = ips[i], .nips = 2 };
	}
	eps[0].ports = a_ports;
	eps[0].nports = 1;
}

static struct moat_plan *compile(struct moat_netpol *pols, size_t n, enum moat_mode mode,
				 const struct moat_plan *prev)
{
	static struct moat_policy_set ps;
	struct moat_plan *plan = NULL;

	ps = (struct moat_policy_set){ .pols = pols, .npols = n };
	CHECK(moat_plan_compile(&ps, &es3, mode, prev, &plan) == 0);
	return plan;
}

static enum moat_verdict_kind ep_verdict(const struct moat_plan *p, int from, int to,
					 uint8_t proto, uint16_t port)
{
	struct moat_verdict v;

	moat_plan_decide_endpoints(p, from, to, proto, port, &v);
	return v.kind;
}

static enum moat_verdict_kind addr_verdict(const struct moat_plan *p, const char *s,
					   const char *d, uint16_t port)
{
	struct moat_verdict v;
	struct moat_addr sa = addr(s), da = addr(d);

	moat_plan_decide(p, &sa, &da, IPPROTO_TCP, port, &v);
	return v.kind;
}

static int cmp_bytes(const uint8_t *a, const uint8_t *b, int n)
{
	return memcmp(a, b, n);
}

/* Nets: sorted, disjoint, gapless, covering both families from 0 to the top. */
static void check_nets(const struct moat_plan *p)
{
	uint8_t zero[16] = { 0 }, ones[16];
	int f = -1;

	memset(ones, 0xff, 16);
	for (size_t i = 0; i < p->nnets; i++) {
		const struct moat_plan_net *n = &p->nets[i];
		int len = n->family == AF_INET ? 4 : 16;

		CHECK(cmp_bytes(n->lo, n->hi, len) <= 0);
		if (n->family != f) {
			CHECK(!cmp_bytes(n->lo, zero, len));
			CHECK(i == 0 || !cmp_bytes(p->nets[i - 1].hi, ones, 4));
			f = n->family;
			continue;
		}
		uint8_t next[16];

		memcpy(next, p->nets[i - 1].hi, 16);
		for (int k = len; k-- > 0 && ++next[k] == 0;)
			;
		CHECK(!cmp_bytes(next, n->lo, len));
	}
	CHECK(p->nnets >= 2 && !cmp_bytes(p->nets[p->nnets - 1].hi, ones, 16));
}

/* No two elements of one list overlap, and each list is sorted by peer. */
static void check_disjoint(const struct moat_plan_allow *v, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		const struct moat_plan_allow *a = &v[i], *b = &v[i + 1];

		CHECK(a->peer <= b->peer);
		for (size_t k = i + 1; k < n && v[k].peer == a->peer; k++)
			CHECK(v[k].proto_lo > a->proto_hi || v[k].proto_hi < a->proto_lo ||
			      v[k].port_lo > a->port_hi || v[k].port_hi < a->port_lo);
	}
}

static void check_plan(const struct moat_plan *p)
{
	check_nets(p);
	for (size_t i = 0; i < p->nidents; i++)
		for (int l = 0; l < MOAT_ALLOW_LISTS; l++)
			check_disjoint(p->idents[i].allow[l], p->idents[i].nallow[l]);
	for (size_t i = 0; i + 1 < p->nidents; i++)
		CHECK(p->idents[i].id < p->idents[i + 1].id);
	/* Whenever a set allowed an isolated side, the rule search names a rule. */
	for (size_t a = 0; a < 3; a++)
		for (size_t b = 0; b < 3; b++) {
			struct moat_verdict v;

			moat_plan_decide_endpoints(p, a, b, IPPROTO_TCP, 8080, &v);
			CHECK(!(v.in_iso && v.in_ok) || v.in_rule.policy != UINT32_MAX);
			CHECK(!(v.out_iso && v.out_ok) || v.out_rule.policy != UINT32_MAX);
		}
}

static void test_no_policies(void)
{
	struct moat_plan *p = compile(NULL, 0, MOAT_MODE_ENFORCE, NULL);

	CHECK(p && p->nidents == 1);	/* nothing tells any address apart */
	CHECK(ep_verdict(p, 0, 1, IPPROTO_TCP, 80) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "1.2.3.4", "10.0.0.1", 80) == MOAT_ALLOW);
	check_plan(p);
	moat_plan_free(p);
}

/* x: deny all ingress; then allow app=b on 80-90 and 85-100 (merged) and all of udp. */
static void test_ingress(void)
{
	struct moat_peer from_b = { .kind = MOAT_PEER_PODS, .has_pod = true, .pod = SEL({ "app", "b" }) };
	struct moat_port ports[] = { { .proto = IPPROTO_TCP, .port = 80, .end_port = 90 },
		{ .proto = IPPROTO_TCP, .port = 85, .end_port = 100 }, { .proto = IPPROTO_UDP } };
	struct moat_rule rule = { .peers = &from_b, .npeers = 1, .ports = ports, .nports = 3 };
	struct moat_netpol pols[] = {
		{ .name = "deny", .namespace = "x", .isolates_in = true },
		{ .name = "web", .namespace = "x", .target = SEL({ "app", "a" }), .isolates_in = true,
		  .in = &rule, .nin = 1 },
	};
	struct moat_plan *p = compile(pols, 2, MOAT_MODE_ENFORCE, NULL);
	struct moat_verdict v;

	CHECK(ep_verdict(p, 1, 0, IPPROTO_TCP, 95) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 1, 0, IPPROTO_TCP, 101) == MOAT_DENY);
	CHECK(ep_verdict(p, 1, 0, IPPROTO_UDP, 5353) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 1, 0, IPPROTO_ICMP, 0) == MOAT_DENY);
	CHECK(ep_verdict(p, 2, 0, IPPROTO_TCP, 80) == MOAT_DENY);	/* c is in y */
	CHECK(ep_verdict(p, 0, 1, IPPROTO_TCP, 80) == MOAT_DENY);	/* b: deny-all only */
	CHECK(ep_verdict(p, 0, 2, IPPROTO_TCP, 80) == MOAT_ALLOW);	/* y not isolated */
	CHECK(ep_verdict(p, 0, 0, IPPROTO_TCP, 80) == MOAT_ALLOW);	/* loopback */
	moat_plan_decide_endpoints(p, 1, 0, IPPROTO_TCP, 80, &v);
	CHECK(v.in_iso && v.in_ok && v.in_rule.policy == 1 && v.in_rule.rule == 0 && !v.out_iso);
	CHECK(p->nallow[MOAT_ALLOW_IN] == 2);	/* (b, a): tcp 80-100 merged, and udp */
	check_plan(p);
	moat_plan_free(p);
}

/* Egress of x/a to 10.0.0.0/8 except 10.0.1.0/24, and to fd00::/16 except fd00::1:0/112. */
static void test_ipblock(void)
{
	struct moat_cidr ex4 = cidr("10.0.1.0", 24), ex6 = cidr("fd00::1:0", 112);
	struct moat_peer to[] = {
		{ .kind = MOAT_PEER_IPBLOCK, .cidr = cidr("10.0.0.0", 8), .except = &ex4, .nexcept = 1 },
		{ .kind = MOAT_PEER_IPBLOCK, .cidr = cidr("fd00::", 16), .except = &ex6, .nexcept = 1 },
	};
	struct moat_rule rule = { .peers = to, .npeers = 2 };
	struct moat_netpol pol = { .name = "out", .namespace = "x", .target = SEL({ "app", "a" }),
				   .isolates_out = true, .out = &rule, .nout = 1 };
	struct moat_plan *p = compile(&pol, 1, MOAT_MODE_ENFORCE, NULL);

	CHECK(addr_verdict(p, "10.0.0.1", "10.200.0.9", 443) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "10.0.0.1", "10.0.1.77", 443) == MOAT_DENY);
	CHECK(addr_verdict(p, "10.0.0.1", "11.0.0.1", 443) == MOAT_DENY);
	CHECK(addr_verdict(p, "fd00::1", "fd00::9", 443) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "fd00::1", "fd00::1:9", 443) == MOAT_DENY);
	CHECK(addr_verdict(p, "10.0.0.2", "11.0.0.1", 443) == MOAT_ALLOW);	/* b not isolated */
	CHECK(ep_verdict(p, 0, 1, IPPROTO_TCP, 1) == MOAT_ALLOW);	/* 10.0.0.2 is in the block */
	CHECK(ep_verdict(p, 0, 2, IPPROTO_TCP, 1) == MOAT_DENY);	/* 10.0.1.3 is excepted */
	check_plan(p);
	moat_plan_free(p);
}

/* Named ports: ingress resolves on the selected endpoint, egress on the peer endpoint. */
static void test_named_ports(void)
{
	struct moat_port http = { .proto = IPPROTO_TCP, .name = "http" };
	struct moat_rule in = { .ports = &http, .nports = 1 };
	struct moat_peer to_a = { .kind = MOAT_PEER_PODS, .has_pod = true, .pod = SEL({ "app", "a" }) };
	struct moat_rule out = { .peers = &to_a, .npeers = 1, .ports = &http, .nports = 1 };
	struct moat_rule out_any = { .ports = &http, .nports = 1 };
	struct moat_netpol pols[] = {
		{ .name = "in", .namespace = "x", .isolates_in = true, .in = &in, .nin = 1 },
		{ .name = "out", .namespace = "x", .target = SEL({ "app", "b" }), .isolates_out = true,
		  .out = &out, .nout = 1 },
		{ .name = "any", .namespace = "y", .isolates_out = true, .out = &out_any, .nout = 1 },
	};
	struct moat_plan *p = compile(pols, 3, MOAT_MODE_ENFORCE, NULL);

	CHECK(ep_verdict(p, 1, 0, IPPROTO_TCP, 8080) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 1, 0, IPPROTO_TCP, 80) == MOAT_DENY);
	CHECK(ep_verdict(p, 2, 0, IPPROTO_TCP, 8080) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 2, 1, IPPROTO_TCP, 8080) == MOAT_DENY);	/* b has no "http" */
	CHECK(addr_verdict(p, "10.0.1.3", "8.8.8.8", 8080) == MOAT_DENY);
	check_plan(p);
	moat_plan_free(p);
}

/* A policy in monitor mode, and the global monitor mode, make denials violations. */
static void test_modes(void)
{
	struct moat_netpol pol = { .name = "deny", .namespace = "x", .isolates_in = true,
				   .mode = MOAT_MODE_MONITOR };
	struct moat_plan *p = compile(&pol, 1, MOAT_MODE_ENFORCE, NULL);

	CHECK(ep_verdict(p, 2, 0, IPPROTO_TCP, 80) == MOAT_VIOLATION);
	moat_plan_free(p);
	pol.mode = MOAT_MODE_ENFORCE;
	p = compile(&pol, 1, MOAT_MODE_ENFORCE, NULL);
	CHECK(ep_verdict(p, 2, 0, IPPROTO_TCP, 80) == MOAT_DENY);
	moat_plan_free(p);
	p = compile(&pol, 1, MOAT_MODE_MONITOR, NULL);
	CHECK(ep_verdict(p, 2, 0, IPPROTO_TCP, 80) == MOAT_VIOLATION);
	moat_plan_free(p);
}

static uint32_t ident_of(const struct moat_plan *p, int ep)
{
	return moat_plan_ident_of(p, &ips[ep][0]);
}

/* Recompiling with prev keeps the id of every identity whose class did not change. */
static void test_stable_ids(void)
{
	struct moat_netpol pols[] = {
		{ .name = "a", .namespace = "x", .target = SEL({ "app", "a" }), .isolates_in = true },
		{ .name = "c", .namespace = "y", .target = SEL({ "app", "c" }), .isolates_in = true },
	};
	struct moat_plan *p1 = compile(pols, 1, MOAT_MODE_ENFORCE, NULL);
	struct moat_plan *p2 = compile(pols, 2, MOAT_MODE_ENFORCE, p1);
	struct moat_plan *p3 = compile(pols, 1, MOAT_MODE_ENFORCE, p2);
	uint8_t world[4] = { 8, 8, 8, 8 };
	struct moat_addr w = { .family = AF_INET };

	memcpy(w.a, world, 4);
	CHECK(ident_of(p1, 0) == ident_of(p2, 0) && ident_of(p2, 0) == ident_of(p3, 0));
	CHECK(ident_of(p1, 2) != ident_of(p2, 2));
	CHECK(ident_of(p1, 2) == ident_of(p3, 2));	/* back to b's class, which p2 kept */
	CHECK(moat_plan_ident_of(p1, &w) == moat_plan_ident_of(p3, &w));
	CHECK(moat_plan_ident_get(p2, ident_of(p2, 2))->in_iso);
	moat_plan_free(p1);
	moat_plan_free(p2);
	moat_plan_free(p3);
}

/* Replicas share identities: doubling them leaves the sets' sizes alone. */
static void test_growth(void)
{
	size_t sizes[2];

	for (int round = 0; round < 2; round++) {
		size_t n = 10 << round;
		struct moat_endpoint *v = calloc(n, sizeof(*v));
		struct moat_addr *a = calloc(n, sizeof(*a));
		static struct moat_label l[2] = { { "app", "a" }, { "app", "b" } };
		struct moat_endpoint_set es = { .v = v, .n = n };
		struct moat_peer from_b = { .kind = MOAT_PEER_PODS, .has_pod = true, .pod = SEL({ "app", "b" }) };
		struct moat_rule r = { .peers = &from_b, .npeers = 1 };
		struct moat_netpol pol = { .namespace = "x", .target = SEL({ "app", "a" }),
					   .isolates_in = true, .in = &r, .nin = 1 };
		struct moat_policy_set ps = { .pols = &pol, .npols = 1 };
		struct moat_plan *p = NULL;

		for (size_t i = 0; i < n; i++) {
			a[i] = (struct moat_addr){ .family = AF_INET, .a = { 10, 9, 0, i } };
			v[i] = (struct moat_endpoint){ .name = "e", .namespace = "x",
						       .labels = { &l[i % 2], 1 }, .ips = &a[i], .nips = 1 };
		}
		CHECK(moat_plan_compile(&ps, &es, MOAT_MODE_ENFORCE, NULL, &p) == 0);
		sizes[round] = p ? p->nidents + p->nallow[MOAT_ALLOW_IN] + p->nnets : 0;
		CHECK(p && p->naddrs == n);
		moat_plan_free(p);
		free(v);
		free(a);
	}
	CHECK(sizes[0] == sizes[1]);
}

/*
 * Endpoints alike in labels share identities only when alike in all else that makes them:
 * namespace, host network, named port values; and each address still gets its segment.
 */
static void test_alike(void)
{
	static struct moat_label app = { "app", "a" };
	static struct moat_named_port http80 = { "http", IPPROTO_TCP, 80 },
				      http8080 = { "http", IPPROTO_TCP, 8080 };
	struct moat_peer from = { .kind = MOAT_PEER_IPBLOCK, .cidr = cidr("10.2.0.0", 16) };
	struct moat_port http = { .proto = IPPROTO_TCP, .name = "http" };
	struct moat_rule in = { .peers = &from, .npeers = 1, .ports = &http, .nports = 1 };
	struct moat_netpol pol = { .name = "web", .namespace = "x", .target = { .match = { &app, 1 } },
				   .isolates_in = true, .in = &in, .nin = 1 };
	struct moat_policy_set ps = { .pols = &pol, .npols = 1 };
	const char *ip[6] = { "10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.2.0.1" };
	struct moat_addr a[6];
	struct moat_endpoint v[6];
	struct moat_endpoint_set es = { .v = v, .n = 6 };
	struct moat_plan *p = NULL;

	for (int i = 0; i < 6; i++) {
		a[i] = addr(ip[i]);
		v[i] = (struct moat_endpoint){ .name = "e", .namespace = "x", .labels = { &app, 1 },
					       .ips = &a[i], .nips = 1, .ports = &http80, .nports = 1 };
	}
	v[2].host_network = true;
	v[3].namespace = "y";
	v[4].ports = &http8080;
	CHECK(moat_plan_compile(&ps, &es, MOAT_MODE_ENFORCE, NULL, &p) == 0);
	if (!p)
		return;
	CHECK(p->endpoint_ident[1] == p->endpoint_ident[0]);	/* a replica */
	CHECK(p->endpoint_ident[5] == p->endpoint_ident[0]);
	for (int i = 2; i < 5; i++)
		CHECK(p->endpoint_ident[i] != p->endpoint_ident[0]);
	CHECK(moat_plan_ident_of(p, &a[5]) != moat_plan_ident_of(p, &a[0]));	/* in the block */
	CHECK(moat_plan_ident_of(p, &a[1]) == moat_plan_ident_of(p, &a[0]));
	CHECK(ep_verdict(p, 5, 0, IPPROTO_TCP, 80) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 5, 0, IPPROTO_TCP, 8080) == MOAT_DENY);
	CHECK(ep_verdict(p, 5, 4, IPPROTO_TCP, 8080) == MOAT_ALLOW);
	CHECK(ep_verdict(p, 5, 4, IPPROTO_TCP, 80) == MOAT_DENY);
	CHECK(ep_verdict(p, 0, 2, IPPROTO_TCP, 1) == MOAT_ALLOW);	/* host network: not selected */
	CHECK(ep_verdict(p, 0, 3, IPPROTO_TCP, 1) == MOAT_ALLOW);	/* y: not selected */
	CHECK(ep_verdict(p, 0, 1, IPPROTO_TCP, 80) == MOAT_DENY);
	moat_plan_free(p);
}

/* ---- sharing the policy state with prev: never a different plan ---- */

static bool same_idents(const struct moat_plan *a, const struct moat_plan *b)
{
	const uint32_t *pa, *pb;

	if (a->nidents != b->nidents)
		return false;
	for (size_t i = 0; i < a->nidents; i++) {
		const struct moat_plan_ident *x = &a->idents[i], *y = &b->idents[i];

		if (x->id != y->id || x->in_iso != y->in_iso || x->out_iso != y->out_iso ||
		    x->in_mode != y->in_mode || x->out_mode != y->out_mode)
			return false;
		for (int d = 0; d < 2; d++) {
			size_t n = moat_plan_isolating(a, x->id, d, &pa);

			if (n != moat_plan_isolating(b, y->id, d, &pb) || (n && memcmp(pa, pb, n * 4)))
				return false;
		}
	}
	return true;
}

static bool same_allow(const struct moat_plan_allow *x, const struct moat_plan_allow *y)
{
	return x->peer == y->peer && x->proto_lo == y->proto_lo && x->proto_hi == y->proto_hi &&
	       x->port_lo == y->port_lo && x->port_hi == y->port_hi;
}

/* The same allow lists, identity by identity (same_idents holds them in the same order). */
static bool same_lists(const struct moat_plan *a, const struct moat_plan *b)
{
	for (size_t i = 0; a->nidents == b->nidents && i < a->nidents; i++)
		for (int l = 0; l < MOAT_ALLOW_LISTS; l++) {
			if (a->idents[i].nallow[l] != b->idents[i].nallow[l])
				return false;
			for (uint32_t k = 0; k < a->idents[i].nallow[l]; k++)
				if (!same_allow(&a->idents[i].allow[l][k], &b->idents[i].allow[l][k]))
					return false;
		}
	return a->nidents == b->nidents;
}

static bool same_maps(const struct moat_plan *a, const struct moat_plan *b)
{
	if (a->naddrs != b->naddrs || a->nnets != b->nnets || a->es->n != b->es->n)
		return false;
	for (size_t i = 0; i < a->naddrs; i++)
		if (moat_addr_cmp(&a->addrs[i].addr, &b->addrs[i].addr) ||
		    a->addrs[i].ident != b->addrs[i].ident || a->addrs[i].endpoint != b->addrs[i].endpoint)
			return false;
	for (size_t i = 0; i < a->nnets; i++)
		if (a->nets[i].family != b->nets[i].family || a->nets[i].ident != b->nets[i].ident ||
		    memcmp(a->nets[i].lo, b->nets[i].lo, 16) || memcmp(a->nets[i].hi, b->nets[i].hi, 16))
			return false;
	for (size_t i = 0; i < a->es->n; i++)
		if (a->endpoint_ident[i] != b->endpoint_ident[i])
			return false;
	return true;
}

static bool same_rule(const struct moat_rule_ref *x, const struct moat_rule_ref *y)
{
	return x->policy == y->policy && x->egress == y->egress && x->rule == y->rule;
}

static bool same_verdict(const struct moat_verdict *x, const struct moat_verdict *y)
{
	return x->kind == y->kind && x->src_ident == y->src_ident && x->dst_ident == y->dst_ident &&
	       x->in_iso == y->in_iso && x->out_iso == y->out_iso && x->in_ok == y->in_ok &&
	       x->out_ok == y->out_ok && x->loopback == y->loopback &&
	       same_rule(&x->in_rule, &y->in_rule) && same_rule(&x->out_rule, &y->out_rule);
}

/* Every endpoint pair, and a few outside addresses, on the ports the model uses. */
static bool same_verdicts(const struct moat_plan *a, const struct moat_plan *b)
{
	const char *outside[] = { "10.0.0.1", "10.0.1.9", "10.0.2.9", "10.9.0.1", "8.8.8.8" };
	const uint16_t ports[] = { 80, 8080, 9090 };
	struct moat_verdict x, y;
	bool same = true;

	for (size_t p = 0; p < N(ports); p++) {
		for (size_t i = 0; i < a->es->n; i++)
			for (size_t j = 0; j < a->es->n; j++) {
				moat_plan_decide_endpoints(a, i, j, IPPROTO_TCP, ports[p], &x);
				moat_plan_decide_endpoints(b, i, j, IPPROTO_TCP, ports[p], &y);
				same = same && same_verdict(&x, &y);
			}
		for (size_t i = 0; i < N(outside); i++)
			for (size_t j = 0; j < N(outside); j++) {
				struct moat_addr s = addr(outside[i]), d = addr(outside[j]);

				moat_plan_decide(a, &s, &d, IPPROTO_TCP, ports[p], &x);
				moat_plan_decide(b, &s, &d, IPPROTO_TCP, ports[p], &y);
				same = same && same_verdict(&x, &y);
			}
	}
	return same;
}

/* The model test_reuse changes step by step, in place as a caller might. */
struct reuse {
	struct moat_policy_set ps;
	struct moat_endpoint_set es;
	enum moat_mode mode;
	struct moat_plan *prev;
};

/*
 * Compiles r's model with prev twice: as it is, where prev's policy state may be shared,
 * and from a copy of the policies at another address, where it cannot be; the plans must
 * be the same. The first becomes prev, and prev is freed at once, as the daemon does.
 */
static void reuse_step(struct reuse *r, const char *what)
{
	struct moat_netpol copy[4];
	struct moat_policy_set fresh = r->ps;
	struct moat_plan *a = NULL, *b = NULL;
	bool same;

	memcpy(copy, r->ps.pols, r->ps.npols * sizeof(*copy));
	fresh.pols = copy;
	CHECK(moat_plan_compile(&r->ps, &r->es, r->mode, r->prev, &a) == 0);
	CHECK(moat_plan_compile(&fresh, &r->es, r->mode, r->prev, &b) == 0);
	same = a && b && same_idents(a, b) && same_maps(a, b) && same_verdicts(a, b) &&
	       same_lists(a, b);
	if (!same)
		fprintf(stderr, "step \"%s\": the plans differ\n", what);
	CHECK(same);
	if (a && r->es.n == 3)	/* check_plan decides between the three endpoints */
		check_plan(a);
	moat_plan_free(b);
	moat_plan_free(r->prev);
	r->prev = a;
}

/*
 * x/a: ingress from app=b in team=t namespaces on named port http, egress to 10.0.0.0/8
 * except 10.0.1.0/24; everything in y: ingress from any namespace. Each step changes one
 * thing the policy state is built from (or nothing, or the endpoints alone).
 */
static void test_reuse(void)
{
	static char value[] = "a";
	static struct moat_label tgt = { "app", value }, team[2] = { { "team", "t" }, { "team", "u" } };
	static struct moat_named_port ports[] = { { "http", IPPROTO_TCP, 8080 },
						  { "web", IPPROTO_TCP, 9090 } };
	struct moat_peer from = { .kind = MOAT_PEER_PODS, .has_ns = true, .ns = SEL({ "team", "t" }),
				  .has_pod = true, .pod = SEL({ "app", "b" }) };
	struct moat_port http = { .proto = IPPROTO_TCP, .name = "http" };
	struct moat_rule in = { .peers = &from, .npeers = 1, .ports = &http, .nports = 1 };
	struct moat_cidr ex = cidr("10.0.1.0", 24);
	struct moat_peer to = { .kind = MOAT_PEER_IPBLOCK, .cidr = cidr("10.0.0.0", 8), .except = &ex,
				.nexcept = 1 };
	struct moat_rule out = { .peers = &to, .npeers = 1 };
	struct moat_peer any_ns = { .kind = MOAT_PEER_PODS, .has_ns = true };
	struct moat_rule in_all = { .peers = &any_ns, .npeers = 1 };
	struct moat_netpol pols[] = {
		{ .name = "web", .namespace = "x", .target = { .match = { &tgt, 1 } },
		  .isolates_in = true, .isolates_out = true, .in = &in, .nin = 1, .out = &out, .nout = 1 },
		{ .name = "all", .namespace = "y", .isolates_in = true, .in = &in_all, .nin = 1 },
	};
	struct moat_namespace nss[2] = { { .name = "x", .labels = { &team[0], 1 } },
					 { .name = "y", .labels = { &team[1], 1 } } };
	struct moat_endpoint v[3];
	struct reuse r = { .ps = { .pols = pols, .npols = 2 }, .es = { .v = v, .n = 3, .nss = nss,
		.nnss = 2 } };
	struct moat_plan *p = NULL;

	memcpy(v, eps, sizeof(v));
	v[0].ports = ports;
	v[0].nports = 2;
	reuse_step(&r, "first compile");
	reuse_step(&r, "same input");
	r.es.n = 2;
	reuse_step(&r, "an endpoint gone");
	r.es.n = 3;
	reuse_step(&r, "the endpoint back");
	r.mode = MOAT_MODE_MONITOR;
	reuse_step(&r, "monitor mode");
	r.mode = MOAT_MODE_ENFORCE;
	value[0] = 'b';
	reuse_step(&r, "target label value changed in place");
	nss[0].labels.v = &team[1];
	reuse_step(&r, "namespace labels changed");
	nss[0].labels.v = &team[0];
	reuse_step(&r, "namespace labels back");
	ex.addr[2] = 2;
	reuse_step(&r, "except changed in place");
	http.name = "web";
	reuse_step(&r, "named port renamed");
	v[2].namespace = "z";
	reuse_step(&r, "a namespace added");
	nss[0] = nss[1], nss[1] = (struct moat_namespace){ .name = "x", .labels = { &team[0], 1 } };
	reuse_step(&r, "namespaces reordered");
	from.has_pod = false;
	reuse_step(&r, "a peer's podSelector dropped");
	r.ps.npols = 1;
	reuse_step(&r, "a policy dropped");
	r.ps.npols = 2;
	reuse_step(&r, "the policy back");
	/* A plan sharing prev's state outlives it, and prev outlives it: either order frees. */
	CHECK(moat_plan_compile(&r.ps, &r.es, r.mode, r.prev, &p) == 0);
	moat_plan_free(p);
	reuse_step(&r, "after a sharing plan was freed");
	moat_plan_free(r.prev);
}

int main(void)
{
	endpoints_init();
	test_no_policies();
	test_ingress();
	test_ipblock();
	test_named_ports();
	test_modes();
	test_stable_ids();
	test_growth();
	test_alike();
	test_reuse();
	return check_done();
}
