/*
 * Fuzzes the endpoints-file parser (moat_endpoint_set_parse). When an input parses, checks
 * what the set promises (namespace never NULL, labels sorted with unique keys, no duplicate
 * namespace/name, MACs unicast), that moat_report_endpoints' JSON reads back through the
 * same parser to the same endpoints (the header says JSON is YAML), and compiles the set
 * against a fixed policy set so the compiler sees hostile endpoints too: the plan's verdicts
 * must agree with the reference model (model.h), and the tier model (tier_check) must hold
 * together on the set's cluster-wide policies.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "model.h"
#include "moat/endpoint.h"
#include "moat/plan.h"
#include "moat/policy.h"
#include "moat/report.h"

static const char policies_yaml[] =
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: web, namespace: x}\n"
	"spec:\n"
	"  podSelector: {matchLabels: {tier: web}}\n"
	"  ingress:\n"
	"    - from: [{namespaceSelector: {matchLabels: {team: blue}}}, {podSelector: {}}]\n"
	"      ports: [{port: http}, {port: 53, protocol: UDP}]\n"
	"  egress:\n"
	"    - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.9.0/24]}}]\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: deny, namespace: y, annotations: {moat.io/mode: monitor}}\n"
	"spec:\n"
	"  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [b]}]}\n"
	"  policyTypes: [Ingress, Egress]\n"
	"  egress:\n"
	"    - to: [{podSelector: {matchExpressions: [{key: tier, operator: Exists}]}}]\n"
	"      ports: [{port: http}, {port: 8000, endPort: 8100}, {protocol: SCTP}]\n"
	"    - to: [{ipBlock: {cidr: \"fd00::/16\", except: [\"fd00:1::/32\"]}}]\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: db}\n"
	"spec:\n"
	"  podSelector: {composeService: db}\n"
	"  ingress:\n"
	"    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}},\n"
	"              podSelector: {matchLabels: {app: a}}}, {ipBlock: {cidr: 10.0.0.0/16}}]\n"
	"      ports: [{port: db, protocol: TCP}, {port: 5432}]\n"
	"---\n"
	"apiVersion: policy.networking.k8s.io/v1alpha2\n"
	"kind: ClusterNetworkPolicy\n"
	"metadata: {name: guard}\n"
	"spec:\n"
	"  tier: Admin\n"
	"  priority: 5\n"
	"  subject: {namespaces: {matchLabels: {team: red}}}\n"
	"  ingress:\n"
	"    - {action: Pass, from: [{namespaces: {matchLabels: {team: blue}}}],\n"
	"       protocols: [{destinationNamedPort: http}]}\n"
	"    - {action: Deny, from: [{pods: {podSelector: {matchLabels: {app: b}}}}]}\n"
	"  egress:\n"
	"    - {action: Accept, to: [{networks: [10.0.0.0/16, \"fd00::/16\"]}]}\n"
	"---\n"
	"apiVersion: policy.networking.k8s.io/v1alpha1\n"
	"kind: BaselineAdminNetworkPolicy\n"
	"metadata: {name: default}\n"
	"spec:\n"
	"  subject: {namespaces: {}}\n"
	"  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 1, end: 1024}}]}]\n";

static struct moat_policy_set *ps;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct moat_diags d = { 0 };

	if (moat_policy_set_parse("policies", policies_yaml, strlen(policies_yaml), &ps, &d)) {
		moat_diags_print(&d, stderr);
		abort();
	}
	return 0;
}

static void labels_check(const struct moat_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		FUZZ_CHECK(l->v[i].key && l->v[i].value);
		FUZZ_CHECK(i == 0 || strcmp(l->v[i - 1].key, l->v[i].key) < 0);
		FUZZ_CHECK(moat_labels_get(l, l->v[i].key) == l->v[i].value);
	}
}

static void set_check(const struct moat_endpoint_set *es)
{
	for (size_t i = 0; i < es->n; i++) {
		const struct moat_endpoint *e = &es->v[i];

		FUZZ_CHECK(e->name && e->namespace);
		labels_check(&e->labels);
		FUZZ_CHECK(moat_endpoint_set_find(es, e->namespace, e->name) == (long)i);
		for (size_t f = 0; e->macs && f < e->nifaces; f++)	/* unicast, not zero */
			FUZZ_CHECK(!(e->macs[f][0] & 1) && memcmp(e->macs[f], (uint8_t[6]){ 0 }, 6));
	}
	for (size_t i = 0; i < es->nnss; i++)
		labels_check(&es->nss[i].labels);
}

static int labels_equal(const struct moat_labels *a, const struct moat_labels *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return 0;
	return 1;
}

/* The export parses back to the same endpoints: names, labels, addresses, ports, ifaces, MACs. */
static void roundtrip_check(const struct moat_endpoint_set *es)
{
	json_t *j = moat_report_endpoints(es);
	struct moat_endpoint_set *back = NULL;
	struct moat_diags d = { 0 };
	char *s;

	FUZZ_CHECK(j != NULL);
	s = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(s != NULL);
	if (moat_endpoint_set_parse("export", s, strlen(s), &back, &d)) {
		fprintf(stderr, "export does not read back:\n%s\n", s);
		moat_diags_print(&d, stderr);
		abort();
	}
	FUZZ_CHECK(back->n == es->n);
	for (size_t i = 0; i < es->n; i++) {
		const struct moat_endpoint *e = &es->v[i];
		long k = moat_endpoint_set_find(back, e->namespace, e->name);
		const struct moat_endpoint *f = k < 0 ? NULL : &back->v[k];

		FUZZ_CHECK(f != NULL);
		FUZZ_CHECK(labels_equal(&e->labels, &f->labels));
		FUZZ_CHECK(e->nips == f->nips && e->nports == f->nports && e->nifaces == f->nifaces);
		FUZZ_CHECK(!memcmp(e->ips, f->ips, e->nips * sizeof(*e->ips)));
		FUZZ_CHECK(!e->macs == !f->macs);
		FUZZ_CHECK(!e->macs || !memcmp(e->macs, f->macs, e->nifaces * sizeof(*e->macs)));
	}
	moat_endpoint_set_free(back);
	free(s);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_endpoint_set *es = NULL;
	struct moat_plan *plan = NULL;
	struct moat_diags d = { 0 };
	int ret = moat_endpoint_set_parse("fuzz.yaml", (const char *)data, size, &es, &d);

	if (ret) {
		FUZZ_CHECK(ret < 0 && es == NULL && d.n > 0);
		moat_diags_free(&d);
		return 0;
	}
	set_check(es);
	roundtrip_check(es);
	FUZZ_CHECK(!moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan));
	model_check(plan, 24);
	{
		struct model_env env = { ps, es, MOAT_MODE_ENFORCE };

		tier_check(&env, 24);	/* the model's own decisions hold together too */
	}
	moat_plan_free(plan);
	moat_endpoint_set_free(es);
	return 0;
}
