/*
 * Fuzzes the policy parser (moat_policy_set_parse) and, whenever an input parses, the
 * compiler and the verdicts on it: compile against a small fixed endpoint set (two
 * namespaces, IPv4 and IPv6, named ports, a host-network endpoint), recompile with the first
 * plan as prev, decide every endpoint pair and a few outside addresses, build the matrix (each
 * cell what deciding the pair alone says) and
 * an explanation. Checks the plan's documented invariants: nets sorted, disjoint and covering
 * both families; every identity an address maps to exists; a failed parse has diagnostics.
 * Cluster-wide policies go through the tier model (model.h, tier_check) on the same endpoints.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "model.h"
#include "moat/endpoint.h"
#include "moat/plan.h"
#include "moat/policy.h"
#include "moat/report.h"

static const char endpoints_yaml[] =
	"namespaces:\n"
	"  x: {team: red}\n"
	"  y: {team: blue}\n"
	"endpoints:\n"
	"  - {name: a, namespace: x, labels: {app: a, tier: web}, ips: [10.0.1.1, \"fd00::1:1\"],"
	" ports: {http: 80/tcp, dns: 53/udp}}\n"
	"  - {name: b, namespace: x, labels: {app: b, tier: db}, ips: [10.0.1.2],"
	" ports: {http: 8080/tcp, sc: 9000/sctp}}\n"
	"  - {name: a, namespace: y, labels: {app: a, tier: web}, ips: [10.0.2.1, \"fd00::2:1\"],"
	" ports: {http: 80/tcp}}\n"
	"  - {name: b, namespace: y, labels: {app: b}, ips: [\"fd00::2:2\"]}\n"
	"  - {name: c, labels: {app: c, com.docker.compose.service: c}}\n";

static struct moat_endpoint_set *es;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct moat_diags d = { 0 };

	if (moat_endpoint_set_parse("endpoints", endpoints_yaml, strlen(endpoints_yaml), &es, &d)) {
		moat_diags_print(&d, stderr);
		abort();
	}
	return 0;
}

static int addr_cmp(uint8_t family, const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, family == AF_INET ? 4 : 16);
}

/* One past hi within its family: false when hi is the family's last address. */
static int addr_next(uint8_t family, const uint8_t *hi, uint8_t *out)
{
	int n = family == AF_INET ? 4 : 16;

	memcpy(out, hi, 16);
	for (int i = n - 1; i >= 0; i--)
		if (++out[i] != 0)
			return 1;
	return 0;
}

/* nets: sorted, disjoint, each family covered from all-zeros to all-ones without a gap. */
static void nets_check(const struct moat_plan *p)
{
	static const uint8_t zero[16];
	uint8_t next[16];
	size_t i;

	FUZZ_CHECK(p->nnets >= 2);
	for (i = 0; i < p->nnets; i++) {
		const struct moat_plan_net *n = &p->nets[i];

		FUZZ_CHECK(n->family == AF_INET || n->family == AF_INET6);
		FUZZ_CHECK(addr_cmp(n->family, n->lo, n->hi) <= 0);
		FUZZ_CHECK(moat_plan_ident_get(p, n->ident) != NULL);
		if (i == 0 || p->nets[i - 1].family != n->family) {
			FUZZ_CHECK(!addr_cmp(n->family, n->lo, zero));
			FUZZ_CHECK(i == 0 || !addr_next(p->nets[i - 1].family, p->nets[i - 1].hi, next));
			continue;
		}
		FUZZ_CHECK(addr_next(n->family, p->nets[i - 1].hi, next));
		FUZZ_CHECK(!addr_cmp(n->family, next, n->lo));
	}
	FUZZ_CHECK(!addr_next(p->nets[i - 1].family, p->nets[i - 1].hi, next));
	FUZZ_CHECK(p->nets[0].family == AF_INET && p->nets[p->nnets - 1].family == AF_INET6);
}

static void verdicts_check(const struct moat_plan *p)
{
	model_check(p, 32);
	for (size_t i = 0; i < p->naddrs; i++)
		FUZZ_CHECK(moat_plan_ident_get(p, p->addrs[i].ident) != NULL);
	for (size_t i = 0; i < p->nidents; i++) {
		const uint32_t *pols;
		size_t k = moat_plan_isolating(p, p->idents[i].id, i & 1, &pols);

		while (k--)
			FUZZ_CHECK(pols[k] < p->ps->npols);
	}
}

/* The matrix, built over classes of endpoints, says for every pair what deciding the pair
 * alone says (endpoints in the head's order, which is namespace/name). */
static void matrix_check(const struct moat_plan *p, const struct moat_port_arg *ports)
{
	static const char chars[] = { [MOAT_ALLOW] = 'a', [MOAT_DENY] = 'd', [MOAT_VIOLATION] = 'v' };
	struct moat_report_matrix *m = NULL;
	json_t *head, *names;
	size_t order[64], n = es->n;
	char row[65], ns[256];

	FUZZ_CHECK(n < 64 && !moat_report_matrix_new(p, ports, 2, &m));
	head = moat_report_matrix_head(m);
	names = json_object_get(head, "endpoints");
	FUZZ_CHECK(json_array_size(names) == n && moat_report_matrix_rows(m) == 2 * n);
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		const char *slash = strchr(name, '/');

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - name), name);
		order[i] = (size_t)moat_endpoint_set_find(es, ns, slash + 1);
	}
	for (size_t r = 0; r < 2 * n; r++) {
		moat_report_matrix_row(m, r, row);
		for (size_t j = 0; j < n; j++) {
			struct moat_verdict v;

			moat_plan_decide_endpoints(p, order[r % n], order[j], ports[r / n].proto,
						   ports[r / n].port, &v);
			FUZZ_CHECK(row[j] == chars[v.kind]);
		}
	}
	json_decref(head);
	moat_report_matrix_free(m);
}

static void reports_check(const struct moat_plan *p)
{
	struct moat_port_arg ports[2];
	char err[600];
	json_t *j = NULL;

	FUZZ_CHECK(!moat_port_arg_parse("80/tcp", &ports[0]) && !moat_port_arg_parse("53/udp", &ports[1]));
	matrix_check(p, ports);
	FUZZ_CHECK(!moat_report_explain(p, "x/a", "y/b", &ports[0], &j, err, sizeof(err)));
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_policy_set *ps = NULL;
	struct moat_plan *p1 = NULL, *p2 = NULL;
	struct moat_diags d = { 0 };
	int ret = moat_policy_set_parse("fuzz.yaml", (const char *)data, size, &ps, &d);

	if (ret) {
		FUZZ_CHECK(ret < 0 && ps == NULL);
		FUZZ_CHECK(ret != -EINVAL || d.n > 0);
		moat_diags_free(&d);
		return 0;
	}
	FUZZ_CHECK(d.n == 0);
	FUZZ_CHECK(!moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &p1));
	FUZZ_CHECK(!moat_plan_compile(ps, es, MOAT_MODE_MONITOR, p1, &p2));
	nets_check(p1);
	nets_check(p2);
	verdicts_check(p1);
	verdicts_check(p2);
	reports_check(p1);
	if (ps->ncnps) {	/* the model's own decisions hold together too */
		struct model_env env = { ps, es, MOAT_MODE_ENFORCE };

		tier_check(&env, 32);
		env.mode = MOAT_MODE_MONITOR;
		tier_check(&env, 16);
	}
	moat_plan_free(p2);
	moat_plan_free(p1);
	moat_policy_set_free(ps);
	moat_diags_free(&d);
	return 0;
}
