/*
 * The matrix (include/moat/report.h): built once per request over classes of endpoints that
 * every verdict treats alike, it must say for every ordered pair and port exactly what
 * moat_plan_decide_endpoints says (self pairs allow). Endpoints here have one address, two of
 * one family whose identities differ (an ipBlock takes one), both families, one family only,
 * or none; policies isolate both ways, use named ports and ipBlocks, and one is in monitor
 * mode (violations). Also: the head, row order, and a set of many replicas stays small.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "moat/plan.h"
#include "moat/report.h"

static const char eps_yaml[] =
	"namespaces: {prod: {env: prod}, dev: {env: dev}}\n"
	"endpoints:\n"
	"  - {name: web, namespace: prod, labels: {app: web}, ips: [10.0.0.1, 'fd00::1']}\n"
	"  - {name: web2, namespace: prod, labels: {app: web}, ips: [10.0.0.2, 'fd00::2']}\n"
	"  - {name: api, namespace: prod, labels: {app: api}, ips: [10.0.0.3, 10.9.0.1, 'fd00::3'],\n"
	"     ports: {http: 8080/tcp}}\n"
	"  - {name: db, namespace: prod, labels: {app: db}, ips: ['fd00::4']}\n"
	"  - {name: job, namespace: prod, labels: {app: job}}\n"
	"  - {name: tool, namespace: dev, labels: {app: tool}, ips: [10.0.1.1]}\n"
	"  - {name: web, namespace: dev, labels: {app: web}, ips: [10.0.1.2]}\n"
	"  - {name: mon, namespace: dev, labels: {app: mon}, ips: [10.9.0.2, 'fd00::9']}\n"
	/* its IPv4 address is in api's ipBlock, its IPv6 one is not: the worse verdict wins */
	"  - {name: dual, namespace: dev, labels: {app: dual}, ips: [10.0.1.3, 'fd00::13']}\n";

static const char pols_yaml[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: api, namespace: prod}\n"
	"spec:\n  podSelector: {matchLabels: {app: api}}\n  ingress:\n"
	"  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
	"    ports: [{port: 80}, {port: http}]\n"
	"  - from: [{ipBlock: {cidr: 10.0.1.0/24}}]\n"
	"    ports: [{protocol: UDP, port: 53}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: db, namespace: prod, annotations: {moat.io/mode: monitor}}\n"
	"spec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n"
	"  - from: [{podSelector: {matchLabels: {app: api}}}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: web-out, namespace: prod}\n"
	"spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n"
	"  - to: [{podSelector: {matchLabels: {app: api}}}, {ipBlock: {cidr: 10.9.0.1/32}}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: mon, namespace: dev}\n"
	"spec:\n  podSelector: {matchLabels: {app: mon}}\n  ingress:\n"
	"  - from: [{namespaceSelector: {matchLabels: {env: prod}}}]\n"
	"    ports: [{port: 9100}]\n";

static const char *const port_texts[] = { "80/tcp", "8080/tcp", "53/udp", "9100/tcp",
					  "5432/tcp", "icmp" };

#define NPORTS (sizeof(port_texts) / sizeof(port_texts[0]))

static char verdict_char(enum moat_verdict_kind k)
{
	return k == MOAT_DENY ? 'd' : k == MOAT_VIOLATION ? 'v' : 'a';
}

/* Every cell of m against the verdict of the same pair, decided alone. */
static void check_cells(const struct moat_plan *plan, const struct moat_report_matrix *m,
			const struct moat_port_arg *ports, const size_t *order)
{
	size_t n = plan->es->n, wrong = 0, seen[3] = { 0 };
	char *row = malloc(n + 1);

	CHECK(moat_report_matrix_rows(m) == n * NPORTS);
	for (size_t r = 0; row && r < moat_report_matrix_rows(m); r++) {
		size_t p = r / n, i = r % n;

		moat_report_matrix_row(m, r, row);
		CHECK(row[n] == '\0');
		for (size_t j = 0; j < n; j++) {
			struct moat_verdict v;

			moat_plan_decide_endpoints(plan, order[i], order[j], ports[p].proto,
						   ports[p].port, &v);
			seen[v.kind]++;
			if (row[j] != verdict_char(v.kind) && wrong++ < 10)
				fprintf(stderr, "%s: %zu -> %zu: '%c', want '%c'\n", ports[p].text,
					i, j, row[j], verdict_char(v.kind));
		}
	}
	CHECK(wrong == 0);
	CHECK(seen[MOAT_ALLOW] && seen[MOAT_DENY] && seen[MOAT_VIOLATION]);	/* all kinds met */
	free(row);
}

/* Sorted order by namespace/name, as the head lists the endpoints. */
static void check_head(const struct moat_report_matrix *m, size_t *order,
		       const struct moat_endpoint_set *es)
{
	json_t *h = moat_report_matrix_head(m), *names = json_object_get(h, "endpoints");
	char buf[256];

	CHECK(json_array_size(json_object_get(h, "ports")) == NPORTS);
	CHECK_STR(json_string_value(json_array_get(json_object_get(h, "ports"), 5)), "icmp");
	CHECK(json_array_size(names) == es->n);
	CHECK(json_integer_value(json_object_get(h, "rows")) == (json_int_t)(es->n * NPORTS));
	CHECK_STR(json_string_value(json_array_get(names, 0)), "dev/dual");
	CHECK_STR(json_string_value(json_array_get(names, 8)), "prod/web2");
	for (size_t i = 0; i < es->n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		const char *slash = name ? strchr(name, '/') : NULL;

		CHECK(slash != NULL);
		if (!slash)
			continue;
		snprintf(buf, sizeof(buf), "%.*s", (int)(slash - name), name);
		order[i] = (size_t)moat_endpoint_set_find(es, buf, slash + 1);
	}
	json_decref(h);
}

static void test_exact(void)
{
	struct moat_policy_set *ps = NULL;
	struct moat_endpoint_set *es = NULL;
	struct moat_plan *plan = NULL;
	struct moat_report_matrix *m = NULL;
	struct moat_port_arg ports[NPORTS];
	struct moat_diags d = { 0 };
	size_t order[16];

	CHECK(moat_policy_set_parse("p.yaml", pols_yaml, strlen(pols_yaml), &ps, &d) == 0);
	CHECK(moat_endpoint_set_parse("e.yaml", eps_yaml, strlen(eps_yaml), &es, &d) == 0);
	moat_diags_print(&d, stderr);
	for (size_t i = 0; i < NPORTS; i++)
		CHECK(moat_port_arg_parse(port_texts[i], &ports[i]) == 0);
	if (ps && es)
		CHECK(moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan) == 0);
	if (plan)
		CHECK(moat_report_matrix_new(plan, ports, NPORTS, &m) == 0);
	if (m) {
		check_head(m, order, es);
		check_cells(plan, m, ports, order);
	}
	moat_report_matrix_free(m);
	moat_plan_free(plan);
	moat_endpoint_set_free(es);
	moat_policy_set_free(ps);
	moat_diags_free(&d);
}

/* 2,000 replicas of 4 services: the matrix keeps 4 classes, not 4 million cells per port. */
static void test_replicas_stay_small(void)
{
	struct moat_policy_set *ps = NULL;
	struct moat_endpoint_set *es = moat_endpoint_set_new();
	struct moat_plan *plan = NULL;
	struct moat_report_matrix *m = NULL;
	struct moat_port_arg port;
	struct moat_diags d = { 0 };
	char name[32], app[8];

	for (int i = 0; es && i < 2000; i++) {
		struct moat_addr ip = { .family = 2 /* AF_INET */,
					.a = { 10, 1, (uint8_t)(i >> 8), (uint8_t)i } };
		struct moat_label l = { .key = "app", .value = app };
		struct moat_endpoint e = { .name = name, .namespace = "default",
					   .labels = { &l, 1 }, .ips = &ip, .nips = 1 };

		snprintf(name, sizeof(name), "e%d", i);
		snprintf(app, sizeof(app), "s%d", i % 4);
		CHECK(moat_endpoint_set_add(es, &e) == 0);
	}
	CHECK(moat_policy_set_parse("p.yaml", pols_yaml, strlen(pols_yaml), &ps, &d) == 0);
	CHECK(moat_port_arg_parse("80/tcp", &port) == 0);
	if (ps && es)
		CHECK(moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan) == 0);
	if (plan)
		CHECK(moat_report_matrix_new(plan, &port, 1, &m) == 0);
	/* names (~2,000 x 16 bytes) and a class per endpoint dominate; no per-pair storage */
	CHECK(m && moat_report_matrix_bytes(m) < 256 * 1024);
	moat_report_matrix_free(m);
	moat_plan_free(plan);
	moat_endpoint_set_free(es);
	moat_policy_set_free(ps);
	moat_diags_free(&d);
}

int main(void)
{
	test_exact();
	test_replicas_stay_small();
	return check_done();
}
