/*
 * Suggested policies allow exactly the baseline. A three-tier shop (web, api, db, two
 * replicas each of web and api with their own names and addresses), a monitoring pod in
 * another namespace, an outsider and a web canary that match no learned group, and external
 * addresses on both sides. The YAML is parsed back and checked by the policy library,
 * compiled, and every ordered pair of endpoints is decided on every learned port, its
 * neighbours and a few others: allowed exactly when the baseline holds it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "moat/baseline.h"
#include "moat/plan.h"
#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABELS(...) ((struct moat_labels){ (struct moat_label[]){ __VA_ARGS__ }, \
	N(((struct moat_label[]){ __VA_ARGS__ })) })

static struct moat_addr addr(const char *s)
{
	struct moat_addr a = { .family = strchr(s, ':') ? AF_INET6 : AF_INET };

	inet_pton(a.family, s, a.a);
	return a;
}

/* Adds an endpoint with one or two addresses; returns its index. */
static size_t add(struct moat_endpoint_set *es, const char *ns, const char *name,
		  struct moat_labels l, const char *ip, const char *ip6)
{
	struct moat_addr ips[2] = { addr(ip), ip6 ? addr(ip6) : addr(ip) };
	struct moat_endpoint e = { .name = (char *)name, .namespace = (char *)ns, .labels = l,
				   .ips = ips, .nips = ip6 ? 2 : 1 };

	CHECK(moat_endpoint_set_add(es, &e) == 0);
	return es->n - 1;
}

enum { WEB1, WEB2, API1, API2, DB, PROM, OUTSIDER, CANARY, NEPS };

static struct moat_endpoint_set *shop(void)
{
	struct moat_endpoint_set *es = moat_endpoint_set_new();

	add(es, "shop", "web-1", LABELS({ "app", "web" },
	    { "com.docker.compose.container-number", "1" }), "10.0.0.11", "fd00::11");
	add(es, "shop", "web-2", LABELS({ "app", "web" },
	    { "com.docker.compose.container-number", "2" }), "10.0.0.12", NULL);
	add(es, "shop", "api-1", LABELS({ "app", "api" }, { "pod-template-hash", "x1" }),
	    "10.0.0.21", NULL);
	add(es, "shop", "api-2", LABELS({ "app", "api" }, { "pod-template-hash", "x2" }),
	    "10.0.0.22", "fd00::22");
	add(es, "shop", "db-1", LABELS({ "app", "db" }), "10.0.0.31", NULL);
	add(es, "monitoring", "prom", LABELS({ "app", "prometheus" }), "10.0.1.5", NULL);
	add(es, "shop", "outsider", LABELS({ "app", "outsider" }), "10.0.0.41", NULL);
	/* Carries app=web too: the web group's selector must not pick it. */
	add(es, "shop", "web-canary", LABELS({ "app", "web" }, { "tier", "canary" }),
	    "10.0.0.13", NULL);
	return es;
}

static const int64_t T0 = 1700000000;

static void learn(struct moat_baseline *b, const struct moat_endpoint_set *es, int from,
		  const char *from_ip, int to, const char *to_ip, uint8_t proto, uint16_t port)
{
	struct moat_addr fa = from_ip ? addr(from_ip) : addr("0.0.0.0");
	struct moat_addr ta = to_ip ? addr(to_ip) : addr("0.0.0.0");

	CHECK(moat_baseline_add(b, from < 0 ? NULL : &es->v[from], &fa,
				to < 0 ? NULL : &es->v[to], &ta, proto, port, T0) >= 0);
}

static struct moat_baseline *learned(const struct moat_endpoint_set *es)
{
	struct moat_baseline *b = NULL;

	CHECK(moat_baseline_new(&b) == 0);
	learn(b, es, -1, "203.0.113.7", WEB1, NULL, IPPROTO_TCP, 80);
	learn(b, es, -1, "203.0.113.7", WEB2, NULL, IPPROTO_TCP, 80);
	learn(b, es, WEB1, NULL, API1, NULL, IPPROTO_TCP, 8080);
	learn(b, es, WEB2, NULL, API2, NULL, IPPROTO_TCP, 8080);
	learn(b, es, WEB1, NULL, API2, NULL, IPPROTO_TCP, 8081);
	learn(b, es, WEB2, NULL, API1, NULL, IPPROTO_UDP, 53);
	learn(b, es, API1, NULL, DB, NULL, IPPROTO_TCP, 5432);
	learn(b, es, API2, NULL, DB, NULL, IPPROTO_TCP, 5432);
	learn(b, es, API1, NULL, -1, "198.51.100.9", IPPROTO_TCP, 443);
	learn(b, es, API2, NULL, -1, "2001:db8::9", IPPROTO_SCTP, 3868);
	learn(b, es, PROM, NULL, API1, NULL, IPPROTO_TCP, 9090);
	learn(b, es, PROM, NULL, WEB2, NULL, IPPROTO_TCP, 9090);
	learn(b, es, API1, NULL, WEB1, NULL, IPPROTO_ICMP, 0);	/* NetworkPolicy cannot say it */
	CHECK(moat_baseline_count(b) == 10);
	return b;
}

static bool in_group(int i)
{
	return i != OUTSIDER && i != CANARY;
}

static const uint16_t learned_ports[] = { 80, 8080, 8081, 53, 5432, 443, 3868, 9090 };

/* Every pair, every learned port and port+1 on TCP, UDP and SCTP, and 22 and ICMP. */
static void check_pairs(const struct moat_plan *plan, const struct moat_endpoint_set *es,
			const struct moat_baseline *b)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	unsigned allowed = 0, wrong = 0;

	for (int i = 0; i < NEPS; i++)
		for (int j = 0; j < NEPS; j++) {
			for (size_t k = 0; i != j && k < 2 * N(learned_ports) + 2; k++)
				for (size_t p = 0; p < N(protos); p++) {
					uint16_t port = k < N(learned_ports) ? learned_ports[k] :
						k < 2 * N(learned_ports) ?
						learned_ports[k - N(learned_ports)] + 1 : 22;
					uint8_t proto = k == 2 * N(learned_ports) + 1 ? IPPROTO_ICMP :
						protos[p];
					/* ICMP was learned but cannot be said: denied. */
					bool want = (!in_group(i) && !in_group(j)) ||
						(proto != IPPROTO_ICMP &&
						 moat_baseline_contains(b, &es->v[i], NULL, &es->v[j],
									NULL, proto, port));
					struct moat_verdict v;

					moat_plan_decide_endpoints(plan, i, j, proto, port, &v);
					allowed += v.kind == MOAT_ALLOW;
					if ((v.kind == MOAT_ALLOW) != want) {
						wrong++;
						fprintf(stderr, "%s -> %s %u/%u: got %d, want %s\n",
							es->v[i].name, es->v[j].name, port, proto,
							v.kind, want ? "allow" : "deny");
					}
				}
		}
	CHECK(wrong == 0);
	CHECK(allowed > 20);
}

static enum moat_verdict_kind ep_verdict(const struct moat_plan *p, int from, int to,
					 uint8_t proto, uint16_t port)
{
	struct moat_verdict v;

	moat_plan_decide_endpoints(p, from, to, proto, port, &v);
	return v.kind;
}

static enum moat_verdict_kind addr_verdict(const struct moat_plan *p, const char *s,
					   const char *d, uint8_t proto, uint16_t port)
{
	struct moat_verdict v;
	struct moat_addr sa = addr(s), da = addr(d);

	moat_plan_decide(p, &sa, &da, proto, port, &v);
	return v.kind;
}

/* The cases the issue names, spelt out. */
static void check_named(const struct moat_plan *p)
{
	CHECK(ep_verdict(p, WEB1, API2, IPPROTO_TCP, 8080) == MOAT_ALLOW);
	CHECK(ep_verdict(p, WEB2, API1, IPPROTO_TCP, 8081) == MOAT_ALLOW);
	CHECK(ep_verdict(p, API2, DB, IPPROTO_TCP, 5432) == MOAT_ALLOW);
	CHECK(ep_verdict(p, PROM, API2, IPPROTO_TCP, 9090) == MOAT_ALLOW);
	CHECK(ep_verdict(p, OUTSIDER, DB, IPPROTO_TCP, 5432) == MOAT_DENY);
	CHECK(ep_verdict(p, WEB1, DB, IPPROTO_TCP, 5432) == MOAT_DENY);
	CHECK(ep_verdict(p, DB, WEB1, IPPROTO_TCP, 80) == MOAT_DENY);
	CHECK(ep_verdict(p, API1, DB, IPPROTO_TCP, 5433) == MOAT_DENY);
	CHECK(ep_verdict(p, WEB1, API1, IPPROTO_TCP, 8082) == MOAT_DENY);
	CHECK(ep_verdict(p, CANARY, API1, IPPROTO_TCP, 8080) == MOAT_DENY);
	CHECK(ep_verdict(p, WEB1, WEB2, IPPROTO_TCP, 80) == MOAT_DENY);	/* replicas too */
	CHECK(ep_verdict(p, API1, WEB1, IPPROTO_ICMP, 0) == MOAT_DENY);	/* left out */
	CHECK(ep_verdict(p, OUTSIDER, CANARY, IPPROTO_TCP, 1) == MOAT_ALLOW);	/* untouched */
	CHECK(addr_verdict(p, "203.0.113.7", "10.0.0.12", IPPROTO_TCP, 80) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "203.0.113.8", "10.0.0.12", IPPROTO_TCP, 80) == MOAT_DENY);
	CHECK(addr_verdict(p, "203.0.113.7", "10.0.0.12", IPPROTO_TCP, 81) == MOAT_DENY);
	/* The canary is in no learned group: its traffic with the world is not touched. */
	CHECK(addr_verdict(p, "203.0.113.7", "10.0.0.13", IPPROTO_TCP, 80) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "10.0.0.22", "198.51.100.9", IPPROTO_TCP, 443) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "10.0.0.22", "198.51.100.10", IPPROTO_TCP, 443) == MOAT_DENY);
	CHECK(addr_verdict(p, "10.0.0.11", "198.51.100.9", IPPROTO_TCP, 443) == MOAT_DENY);
	CHECK(addr_verdict(p, "fd00::22", "2001:db8::9", IPPROTO_SCTP, 3868) == MOAT_ALLOW);
	CHECK(addr_verdict(p, "fd00::22", "2001:db8::9", IPPROTO_SCTP, 3869) == MOAT_DENY);
	CHECK(addr_verdict(p, "fd00::11", "2001:db8::9", IPPROTO_SCTP, 3868) == MOAT_DENY);
	CHECK(addr_verdict(p, "10.0.0.21", "198.51.100.9", IPPROTO_SCTP, 3868) == MOAT_DENY);
	CHECK(addr_verdict(p, "10.0.0.41", "198.51.100.9", IPPROTO_TCP, 443) == MOAT_ALLOW);
}

static void check_text(const char *y)
{
	CHECK(!strncmp(y, "# NetworkPolicy learned by Moat: 10 flows among 4 groups, seen from "
		       "2023-11-14T22:13:20Z", 88));
	CHECK(strstr(y, "name: moat-learned-app-web-ingress\n"));
	CHECK(strstr(y, "name: moat-learned-app-db-egress\n"));
	CHECK(strstr(y, "- key: \"tier\"\n      operator: DoesNotExist\n"));
	CHECK(strstr(y, "kubernetes.io/metadata.name: \"monitoring\"\n"));
	CHECK(strstr(y, "cidr: 2001:db8::9/128\n"));
	CHECK(strstr(y, "#   shop/app=api -> 10.0.0.11") == NULL);	/* groups, not addresses */
	CHECK(strstr(y, "#   shop/app=api -> shop/app=web icmp\n"));
	/* web -> api: one rule, its ports merged and sorted, contiguous ones as entries. */
	CHECK(strstr(y, "    ports:\n    - protocol: TCP\n      port: 8080\n    - protocol: TCP\n"
		     "      port: 8081\n    - protocol: UDP\n      port: 53\n"));
}

static void test_exact(void)
{
	struct moat_endpoint_set *es = shop();
	struct moat_baseline *b = learned(es);
	struct moat_policy_set *ps = NULL;
	struct moat_plan *plan = NULL;
	struct moat_diags d = { 0 };
	char *y = NULL, *y2 = NULL;

	CHECK(moat_baseline_suggest(b, es, &y) == 0 && y);
	CHECK(moat_baseline_suggest(b, es, &y2) == 0 && y2 && !strcmp(y, y2));	/* deterministic */
	if (!y)
		return;
	check_text(y);
	if (getenv("SUGGEST_PRINT"))
		fputs(y, stdout);
	CHECK(moat_policy_set_parse("suggested.yaml", y, strlen(y), &ps, &d) == 0);
	CHECK(d.n == 0);	/* the checker has nothing to say */
	moat_diags_print(&d, stderr);
	CHECK(ps && ps->npols == 8);
	if (ps)
		CHECK(moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan) == 0);
	if (plan) {
		check_pairs(plan, es, b);
		check_named(plan);
	} else {
		fputs(y, stderr);
	}
	moat_plan_free(plan);
	moat_policy_set_free(ps);
	moat_diags_free(&d);
	free(y);
	free(y2);
	moat_baseline_free(b);
	moat_endpoint_set_free(es);
}

/* Labels Kubernetes selectors cannot carry: the group is left out, in a comment that no
 * label value can break out of. */
static void test_left_out(void)
{
	struct moat_endpoint_set *es = moat_endpoint_set_new();
	struct moat_baseline *b = NULL;
	struct moat_policy_set *ps = NULL;
	struct moat_diags d = { 0 };
	char *y = NULL;

	add(es, "x", "a", LABELS({ "app", "a" }), "10.0.0.1", NULL);
	add(es, "x", "evil", LABELS({ "app", "e\n---\nkind: Namespace\nmetadata: {name: pwn}\n#" }),
	    "10.0.0.2", NULL);
	add(es, "x", "b", LABELS({ "app", "b" }), "10.0.0.3", NULL);
	CHECK(moat_baseline_new(&b) == 0);
	learn(b, es, 1, NULL, 0, NULL, IPPROTO_TCP, 80);
	learn(b, es, 2, NULL, 0, NULL, IPPROTO_TCP, 80);
	CHECK(moat_baseline_suggest(b, es, &y) == 0 && y);
	CHECK(y && strstr(y, "a label key or value is not valid"));
	CHECK(y && strstr(y, "e\\x0a---\\x0akind"));
	CHECK(y && moat_policy_set_parse("s.yaml", y, strlen(y), &ps, &d) == 0 && d.n == 0);
	CHECK(ps && ps->npols == 4 && ps->nnss == 0);	/* a and b, both ways */
	moat_policy_set_free(ps);
	free(y);
	moat_baseline_free(b);
	moat_endpoint_set_free(es);
}

/* Nothing learned: a valid empty set. Names stay unique and DNS-1123. */
static void test_names(void)
{
	struct moat_endpoint_set *es = moat_endpoint_set_new();
	struct moat_baseline *b = NULL;
	struct moat_policy_set *ps = NULL;
	struct moat_diags d = { 0 };
	char *y = NULL;

	CHECK(moat_baseline_new(&b) == 0);
	CHECK(moat_baseline_suggest(b, es, &y) == 0 && y);
	CHECK(y && moat_policy_set_parse("e.yaml", y, strlen(y), &ps, &d) == 0 && ps &&
	      ps->npols == 0);
	moat_policy_set_free(ps);
	free(y);
	/* "app=Web_1" and "app=web.1" sanitise alike. An unlabelled endpoint is a group of the
	 * baseline, but no selector could keep later containers out of it: it gets no policy,
	 * and what it learned with p is denied, never allowed wider. */
	add(es, "x", "p", LABELS({ "app", "Web_1" }), "10.0.0.1", NULL);
	add(es, "x", "q", LABELS({ "app", "web.1" }), "10.0.0.2", NULL);
	add(es, "x", "r", (struct moat_labels){ 0 }, "10.0.0.3", NULL);
	learn(b, es, 0, NULL, 1, NULL, IPPROTO_TCP, 1);
	learn(b, es, 2, NULL, 0, NULL, IPPROTO_UDP, 2);
	CHECK(moat_baseline_suggest(b, es, &y) == 0 && y);
	CHECK(y && strstr(y, "name: moat-learned-app-web-1-ingress\n") &&
	      strstr(y, "name: moat-learned-app-web-1-2-ingress\n") &&
	      !strstr(y, "unlabelled") && strstr(y, "#   group x/(no labels): it has no stable"));
	ps = NULL;
	CHECK(y && moat_policy_set_parse("n.yaml", y, strlen(y), &ps, &d) == 0 && d.n == 0);
	moat_diags_print(&d, stderr);
	CHECK(ps && ps->npols == 4);
	if (ps) {
		struct moat_plan *plan = NULL;

		CHECK(moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan) == 0);
		CHECK(plan && ep_verdict(plan, 0, 1, IPPROTO_TCP, 1) == MOAT_ALLOW);
		CHECK(plan && ep_verdict(plan, 1, 0, IPPROTO_TCP, 1) == MOAT_DENY);
		CHECK(plan && ep_verdict(plan, 2, 0, IPPROTO_UDP, 2) == MOAT_DENY);
		CHECK(plan && ep_verdict(plan, 2, 1, IPPROTO_UDP, 2) == MOAT_DENY);
		CHECK(plan && ep_verdict(plan, 1, 2, IPPROTO_UDP, 2) == MOAT_DENY);
		moat_plan_free(plan);
	}
	moat_policy_set_free(ps);
	moat_diags_free(&d);
	free(y);
	moat_baseline_free(b);
	moat_endpoint_set_free(es);
}

/* ---- endpoints that join later ---- */

enum { L_WEB1, L_WEB2, L_API, L_JOB, L_BARE, L_DB, NLEARNED };

/* What learning saw: web and api by app, db by app and tier, a job known only by a
 * maintainer label (no stable key), and a container without labels. */
static struct moat_endpoint_set *learned_world(void)
{
	struct moat_endpoint_set *es = moat_endpoint_set_new();

	add(es, "shop", "web-1", LABELS({ "app", "web" }), "10.0.2.1", NULL);
	add(es, "shop", "web-2", LABELS({ "app", "web" }, { "pod-template-hash", "a1" }),
	    "10.0.2.2", NULL);
	add(es, "shop", "api-1", LABELS({ "app", "api" }), "10.0.2.3", NULL);
	add(es, "shop", "job", LABELS({ "maintainer", "ops" }), "10.0.2.4", NULL);
	add(es, "shop", "bare", (struct moat_labels){ 0 }, "10.0.2.5", NULL);
	add(es, "shop", "db-1", LABELS({ "app", "db" }, { "tier", "data" }), "10.0.2.6", NULL);
	return es;
}

/* The same, and containers started after the suggestion was made. */
static struct moat_endpoint_set *later_world(void)
{
	struct moat_endpoint_set *es = learned_world();

	add(es, "shop", "new-bare", (struct moat_labels){ 0 }, "10.0.2.10", NULL);
	add(es, "shop", "new-web-admin", LABELS({ "app", "web" }, { "role", "admin" }),
	    "10.0.2.11", NULL);
	add(es, "shop", "new-web-k8s", LABELS({ "app", "web" },
	    { "app.kubernetes.io/component", "x" }), "10.0.2.12", NULL);
	add(es, "shop", "new-job", LABELS({ "maintainer", "ops" }), "10.0.2.13", NULL);
	add(es, "shop", "web-3", LABELS({ "app", "web" }, { "pod-template-hash", "b2" }),
	    "10.0.2.14", NULL);
	add(es, "shop", "new-db", LABELS({ "app", "db" }), "10.0.2.15", NULL);
	add(es, "other", "web", LABELS({ "app", "web" }), "10.0.2.16", NULL);
	return es;
}

static const uint16_t later_ports[] = { 80, 8080, 5432, 9000, 9001 };

static struct moat_baseline *learned_later(const struct moat_endpoint_set *es)
{
	struct moat_baseline *b = NULL;

	CHECK(moat_baseline_new(&b) == 0);
	learn(b, es, L_WEB1, NULL, L_API, NULL, IPPROTO_TCP, 8080);
	learn(b, es, L_WEB2, NULL, L_API, NULL, IPPROTO_TCP, 8080);
	learn(b, es, L_API, NULL, L_DB, NULL, IPPROTO_TCP, 5432);
	learn(b, es, L_JOB, NULL, L_API, NULL, IPPROTO_TCP, 8080);
	learn(b, es, L_BARE, NULL, L_DB, NULL, IPPROTO_TCP, 5432);
	learn(b, es, L_API, NULL, L_BARE, NULL, IPPROTO_TCP, 9000);
	learn(b, es, L_WEB1, NULL, -1, "198.51.100.1", IPPROTO_TCP, 443);
	return b;
}

/* In a group the suggestion can select exactly: stable labels, as web, api and db have. */
static bool in_exact_group(const struct moat_endpoint *e, const struct moat_baseline *b,
			   const struct moat_endpoint_set *learned)
{
	static const char *const stable[] = { "app", "tier", "role",
					      "app.kubernetes.io/component" };
	bool has = false;

	for (size_t k = 0; k < N(stable); k++)
		has |= moat_labels_get(&e->labels, stable[k]) != NULL;
	/* and a group the baseline holds: one of the learned endpoints' */
	for (size_t i = 0; has && i < learned->n; i++)
		if (moat_baseline_contains(b, e, NULL, &learned->v[i], NULL, IPPROTO_TCP, 8080) ||
		    moat_baseline_contains(b, &learned->v[i], NULL, e, NULL, IPPROTO_TCP, 8080) ||
		    moat_baseline_contains(b, e, NULL, &learned->v[i], NULL, IPPROTO_TCP, 5432) ||
		    moat_baseline_contains(b, &learned->v[i], NULL, e, NULL, IPPROTO_TCP, 5432))
			return true;
	return false;
}

/*
 * Every pair of the later world on the learned ports and their neighbours: a pair that
 * touches an exactly selected group passes if and only if both ends are in such groups and
 * the baseline holds it; a pair that touches none is not touched.
 */
static void check_later(const struct moat_plan *plan, const struct moat_endpoint_set *es,
			const struct moat_baseline *b, const struct moat_endpoint_set *learned)
{
	unsigned wrong = 0, allowed = 0;

	for (size_t i = 0; i < es->n; i++)
		for (size_t j = 0; j < es->n; j++) {
			bool gi = in_exact_group(&es->v[i], b, learned);
			bool gj = in_exact_group(&es->v[j], b, learned);

			for (size_t k = 0; i != j && k < N(later_ports); k++) {
				bool want = (!gi && !gj) || (gi && gj &&
					moat_baseline_contains(b, &es->v[i], NULL, &es->v[j], NULL,
							       IPPROTO_TCP, later_ports[k]));
				struct moat_verdict v;

				moat_plan_decide_endpoints(plan, i, j, IPPROTO_TCP, later_ports[k],
							   &v);
				allowed += v.kind == MOAT_ALLOW;
				if ((v.kind == MOAT_ALLOW) == want)
					continue;
				wrong++;
				fprintf(stderr, "%s/%s -> %s/%s %u: %s, want %s\n",
					es->v[i].namespace, es->v[i].name, es->v[j].namespace,
					es->v[j].name, later_ports[k],
					v.kind == MOAT_ALLOW ? "allowed" : "denied",
					want ? "allowed" : "denied");
			}
		}
	CHECK(wrong == 0);
	CHECK(allowed > 10);
}

/*
 * The suggestion, made with moatd's endpoints or with none (no plan yet), compiled over
 * the endpoints that came later: nothing more passes than was learned between the groups it
 * can select exactly; the job (no stable label) and the bare container are reported, with a
 * hint to label them, and get no policy.
 */
static void test_later(bool with_endpoints)
{
	struct moat_endpoint_set *learned = learned_world(), *later = later_world();
	struct moat_endpoint_set *none = moat_endpoint_set_new();
	struct moat_baseline *b = learned_later(learned);
	struct moat_policy_set *ps = NULL;
	struct moat_plan *plan = NULL;
	struct moat_diags d = { 0 };
	char *y = NULL;

	CHECK(moat_baseline_suggest(b, with_endpoints ? learned : none, &y) == 0 && y);
	if (y && getenv("SUGGEST_PRINT"))
		fputs(y, stdout);
	CHECK(y && !strstr(y, "podSelector: {}"));
	CHECK(y && strstr(y, "#   group shop/maintainer=ops: ") && strstr(y, "#   group shop/(no labels): "));
	CHECK(y && strstr(y, "label it"));
	CHECK(y && moat_policy_set_parse("later.yaml", y, strlen(y), &ps, &d) == 0 && d.n == 0);
	moat_diags_print(&d, stderr);
	CHECK(ps && ps->npols == 6);	/* web, api, db; both ways */
	if (ps)
		CHECK(moat_plan_compile(ps, later, MOAT_MODE_ENFORCE, NULL, &plan) == 0);
	if (plan)
		check_later(plan, later, b, learned);
	moat_plan_free(plan);
	moat_policy_set_free(ps);
	moat_diags_free(&d);
	free(y);
	moat_baseline_free(b);
	moat_endpoint_set_free(none);
	moat_endpoint_set_free(later);
	moat_endpoint_set_free(learned);
}

int main(void)
{
	test_later(true);
	test_later(false);
	test_exact();
	test_left_out();
	test_names();
	return check_done();
}
