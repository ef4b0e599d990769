/*
 * The cluster-wide policies as parsed: ClusterNetworkPolicy, AdminNetworkPolicy and
 * BaselineAdminNetworkPolicy into the one model (tiers, priorities, subjects, actions,
 * peers, ports, positions, modes), the evaluation order of the set, and domain names.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "../../policy/domain.h"
#include "check.h"
#include "moat/policy.h"

static struct moat_policy_set *parse(const char *text)
{
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	int ret = moat_policy_set_parse("p.yaml", text, strlen(text), &ps, &d);

	if (ret) {
		fprintf(stderr, "parse failed (%d):\n", ret);
		moat_diags_print(&d, stderr);
	}
	CHECK(ret == 0 && d.n == 0);
	moat_diags_free(&d);
	return ps;
}

static const char *cidr_str(const struct moat_cidr *c)
{
	static char buf[64];	/* test helper only */

	return moat_cidr_format(c, buf, sizeof(buf));
}

static const char cnp_full[] =
	"apiVersion: policy.networking.k8s.io/v1alpha2\n"
	"kind: ClusterNetworkPolicy\n"
	"metadata:\n"
	"  name: guard\n"
	"  labels: {team: sec}\n"
	"  annotations: {moat.io/mode: monitor}\n"
	"spec:\n"
	"  tier: Admin\n"
	"  priority: 7\n"
	"  subject:\n"
	"    namespaces: {matchLabels: {env: prod}}\n"
	"  ingress:\n"
	"    - name: no-dev\n"
	"      action: Deny\n"
	"      from:\n"
	"        - namespaces: {matchLabels: {env: dev}}\n"
	"        - pods:\n"
	"            namespaceSelector: {}\n"
	"            podSelector: {matchLabels: {app: scanner}}\n"
	"      protocols:\n"
	"        - tcp: {destinationPort: {number: 80}}\n"
	"        - udp: {destinationPort: {range: {start: 5000, end: 5100}}}\n"
	"        - sctp: {destinationPort: {number: 9}}\n"
	"        - destinationNamedPort: http\n"
	"    - action: Pass\n"
	"      from: [{pods: {podSelector: {}}}]\n"
	"  egress:\n"
	"    - action: Accept\n"
	"      to:\n"
	"        - networks: [10.0.0.0/8, \"fd00::/8\"]\n"
	"        - domainNames: [\"*.Example.COM\", kubernetes.io.]\n"
	"status: {conditions: []}\n";

static void test_cnp_full(void)
{
	struct moat_policy_set *ps = parse(cnp_full);
	const struct moat_cnp *c;
	const struct moat_cnp_rule *r;

	if (!ps)
		return;
	CHECK(ps->ncnps == 1 && ps->npols == 0);
	c = &ps->cnps[0];
	CHECK_STR(c->name, "guard");
	CHECK(c->kind == MOAT_CNP_CLUSTER && c->tier == MOAT_TIER_ADMIN && c->priority == 7);
	CHECK(c->mode == MOAT_MODE_MONITOR);
	CHECK(c->pos.line == 1 && c->pos.col == 1);
	CHECK(!c->subject_pods && c->subject_ns.match.n == 1);
	CHECK_STR(c->subject_ns.match.v[0].value, "prod");
	CHECK(c->nin == 2 && c->nout == 1);

	r = &c->in[0];
	CHECK_STR(r->name, "no-dev");
	CHECK(r->action == MOAT_ACTION_DENY && r->pos.line == 13 && r->pos.col == 7);
	CHECK(r->npeers == 2);
	CHECK(r->peers[0].kind == MOAT_PEER_PODS && r->peers[0].has_ns && !r->peers[0].has_pod);
	CHECK(r->peers[0].pos.line == 16 && r->peers[0].pos.col == 11);
	CHECK(r->peers[1].kind == MOAT_PEER_PODS && r->peers[1].has_ns && r->peers[1].has_pod);
	CHECK(r->peers[1].ns.match.n == 0 && r->peers[1].pod.match.n == 1);
	CHECK(r->nports == 4);
	CHECK(r->ports[0].proto == IPPROTO_TCP && r->ports[0].port == 80 && r->ports[0].end_port == 80);
	CHECK(r->ports[1].proto == IPPROTO_UDP && r->ports[1].port == 5000);
	CHECK(r->ports[1].end_port == 5100);
	CHECK(r->ports[2].proto == IPPROTO_SCTP && r->ports[2].port == 9);
	CHECK(r->ports[3].proto == 0 && r->ports[3].port == 0);
	CHECK_STR(r->ports[3].name, "http");
	CHECK(r->ports[3].pos.line == 24);

	r = &c->in[1];
	CHECK_STR(r->name, "");
	CHECK(r->action == MOAT_ACTION_PASS && r->nports == 0 && r->npeers == 1);
	CHECK(r->peers[0].has_ns && r->peers[0].has_pod && r->peers[0].ns.match.n == 0);

	/* each CIDR and each name is a peer of its own, at its own place */
	r = &c->out[0];
	CHECK(r->action == MOAT_ACTION_ACCEPT && r->npeers == 4);
	CHECK(r->peers[0].kind == MOAT_PEER_IPBLOCK && r->peers[0].nexcept == 0);
	CHECK_STR(cidr_str(&r->peers[0].cidr), "10.0.0.0/8");
	CHECK(r->peers[1].kind == MOAT_PEER_IPBLOCK && r->peers[1].cidr.family == AF_INET6);
	CHECK(r->peers[1].pos.line == 30 && r->peers[1].pos.col == 34);
	CHECK(r->peers[2].kind == MOAT_PEER_DOMAIN && !r->peers[2].has_ns);
	CHECK_STR(r->peers[2].domain, "*.example.com");
	CHECK_STR(r->peers[3].domain, "kubernetes.io");
	moat_policy_set_free(ps);
}

/* subject.pods; namespaceSelector may be left out in v1alpha2 (every namespace). */
static void test_cnp_pods_subject(void)
{
	struct moat_policy_set *ps = parse(
		"apiVersion: policy.networking.k8s.io/v1alpha2\n"
		"kind: ClusterNetworkPolicy\n"
		"metadata: {name: b}\n"
		"spec:\n"
		"  tier: Baseline\n"
		"  priority: 0\n"
		"  subject: {pods: {podSelector: {matchLabels: {app: db}}}}\n"
		"  egress: []\n");

	if (!ps)
		return;
	CHECK(ps->ncnps == 1);
	CHECK(ps->cnps[0].tier == MOAT_TIER_BASELINE && ps->cnps[0].priority == 0);
	CHECK(ps->cnps[0].subject_pods && ps->cnps[0].subject_ns.match.n == 0);
	CHECK_STR(ps->cnps[0].subject_pod.match.v[0].key, "app");
	CHECK(ps->cnps[0].nin == 0 && ps->cnps[0].nout == 0);
	CHECK(ps->cnps[0].mode == MOAT_MODE_ENFORCE);
	moat_policy_set_free(ps);
}

static const char anp_banp[] =
	"apiVersion: policy.networking.k8s.io/v1alpha1\n"
	"kind: AdminNetworkPolicy\n"
	"metadata: {name: a}\n"
	"spec:\n"
	"  priority: 1000\n"
	"  subject: {pods: {namespaceSelector: {}, podSelector: {}}}\n"
	"  ingress:\n"
	"    - action: Allow\n"
	"      from: [{namespaces: {}}]\n"
	"      ports:\n"
	"        - portNumber: {port: 53}\n"
	"        - portNumber: {protocol: UDP, port: 53}\n"
	"        - portRange: {protocol: SCTP, start: 10, end: 20}\n"
	"        - namedPort: dns\n"
	"  egress:\n"
	"    - {action: Pass, to: [{networks: [192.168.0.0/16]}, {namespaces: {}}], "
	"ports: [{portRange: {start: 1, end: 2}}]}\n"
	"    - {action: Allow, to: [{domainNames: [a.io]}]}\n"
	"---\n"
	"apiVersion: policy.networking.k8s.io/v1alpha1\n"
	"kind: BaselineAdminNetworkPolicy\n"
	"metadata: {name: default}\n"
	"spec:\n"
	"  subject: {namespaces: {}}\n"
	"  egress: [{action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {}}}]}]\n";

/* v1alpha1: Allow is ACCEPT, ports default to TCP, a BANP is Baseline after 0-1000. */
static void test_v1alpha1(void)
{
	struct moat_policy_set *ps = parse(anp_banp);
	const struct moat_cnp *a, *b;

	if (!ps)
		return;
	CHECK(ps->ncnps == 2);
	a = &ps->cnps[0];
	b = &ps->cnps[1];
	CHECK(a->kind == MOAT_CNP_ADMIN && a->tier == MOAT_TIER_ADMIN && a->priority == 1000);
	CHECK(a->subject_pods);
	CHECK(a->in[0].action == MOAT_ACTION_ACCEPT && a->in[0].nports == 4);
	CHECK(a->in[0].ports[0].proto == IPPROTO_TCP && a->in[0].ports[0].port == 53);
	CHECK(a->in[0].ports[1].proto == IPPROTO_UDP);
	CHECK(a->in[0].ports[2].proto == IPPROTO_SCTP && a->in[0].ports[2].end_port == 20);
	CHECK(a->in[0].ports[3].proto == 0);
	CHECK_STR(a->in[0].ports[3].name, "dns");
	CHECK(a->out[0].action == MOAT_ACTION_PASS && a->out[0].npeers == 2);
	CHECK(a->out[0].ports[0].proto == IPPROTO_TCP && a->out[0].ports[0].end_port == 2);
	CHECK(a->nout == 2 && a->out[1].peers[0].kind == MOAT_PEER_DOMAIN);
	CHECK(b->kind == MOAT_CNP_BASELINE && b->tier == MOAT_TIER_BASELINE);
	CHECK(b->priority == MOAT_CNP_BANP_PRIORITY);
	CHECK_STR(b->name, "default");
	CHECK(b->out[0].action == MOAT_ACTION_DENY);
	moat_policy_set_free(ps);
}

#define CNP(name, tier, prio)                                                              \
	"---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"  \
	"metadata: {name: " name "}\nspec: {tier: " tier ", priority: " prio              \
	", subject: {namespaces: {}}}\n"
#define ANP(name, prio)                                                                    \
	"---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\n"    \
	"metadata: {name: " name "}\nspec: {priority: " prio ", subject: {namespaces: {}}}\n"

/* The set is in evaluation order: Admin by priority, then name, then kind; then Baseline. */
static void test_order(void)
{
	static const char *const want[] = { "b", "a", "b", "c", "y", "z", "default" };
	static const enum moat_cnp_kind kinds[] = { MOAT_CNP_CLUSTER, MOAT_CNP_CLUSTER,
		MOAT_CNP_ADMIN, MOAT_CNP_CLUSTER, MOAT_CNP_CLUSTER, MOAT_CNP_CLUSTER,
		MOAT_CNP_BASELINE };
	struct moat_policy_set *ps = parse(
		"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\n"
		"metadata: {name: default}\nspec: {subject: {namespaces: {}}}\n"
		CNP("z", "Baseline", "1000") CNP("y", "Baseline", "3") CNP("c", "Admin", "5")
		ANP("b", "5") CNP("a", "Admin", "5") CNP("b", "Admin", "2"));

	if (!ps)
		return;
	CHECK(ps->ncnps == 7);
	for (size_t i = 0; i < ps->ncnps && i < 7; i++) {
		CHECK_STR(ps->cnps[i].name, want[i]);
		CHECK(ps->cnps[i].kind == kinds[i]);
	}
	moat_policy_set_free(ps);
}

/* In a List; and a CNP and an ANP may share a name (two resources). */
static void test_list(void)
{
	struct moat_policy_set *ps = parse(
		"apiVersion: v1\nkind: List\nitems:\n"
		"- {apiVersion: policy.networking.k8s.io/v1alpha2, kind: ClusterNetworkPolicy, "
		"metadata: {name: x}, spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}}\n"
		"- {apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, "
		"metadata: {name: x}, spec: {priority: 1, subject: {namespaces: {}}}}\n");

	if (!ps)
		return;
	CHECK(ps->ncnps == 2);
	CHECK(ps->ncnps == 2 && ps->cnps[0].kind == MOAT_CNP_CLUSTER);
	moat_policy_set_free(ps);
}

static void test_names(void)
{
	CHECK_STR(moat_cnp_kind_name(MOAT_CNP_CLUSTER), "ClusterNetworkPolicy");
	CHECK_STR(moat_cnp_kind_name(MOAT_CNP_ADMIN), "AdminNetworkPolicy");
	CHECK_STR(moat_cnp_kind_name(MOAT_CNP_BASELINE), "BaselineAdminNetworkPolicy");
	CHECK_STR(moat_cnp_action_name(MOAT_CNP_CLUSTER, MOAT_ACTION_ACCEPT), "Accept");
	CHECK_STR(moat_cnp_action_name(MOAT_CNP_ADMIN, MOAT_ACTION_ACCEPT), "Allow");
	CHECK_STR(moat_cnp_action_name(MOAT_CNP_BASELINE, MOAT_ACTION_DENY), "Deny");
	CHECK_STR(moat_cnp_action_name(MOAT_CNP_CLUSTER, MOAT_ACTION_PASS), "Pass");
	CHECK_STR(moat_tier_name(MOAT_TIER_ADMIN), "Admin");
	CHECK_STR(moat_tier_name(MOAT_TIER_BASELINE), "Baseline");
}

/* The API's DomainName pattern, and what its comment says a wildcard matches. */
static void test_domains(void)
{
	static const char *const ok[] = { "kubernetes.io", "*.kubernetes.io", "a.b.c.", "x_y.io",
					  "A-1.example.COM", "1.2" };
	static const char *const bad[] = { "", "localhost", "*", "*.", "*.io", "a.*.io", "*a.io",
					   "-a.io", "a-.io", "a..io", ".a.io", "a.io..", "_a.io",
					   "a.io_", "a b.io", "a/b.io" };
	static const struct {
		const char *pattern, *name;
		bool match;
	} m[] = {
		{ "kubernetes.io", "kubernetes.io", true }, { "kubernetes.io", "KUBERNETES.io.", true },
		{ "kubernetes.io", "www.kubernetes.io", false },
		{ "kubernetes.io", "my-kubernetes.io", false },
		{ "blog.kubernetes.io", "kubernetes.io", false },
		{ "*.kubernetes.io", "www.kubernetes.io", true },
		{ "*.kubernetes.io", "latest.blog.kubernetes.io", true },
		{ "*.kubernetes.io", "kubernetes.io", false },
		{ "*.kubernetes.io", "xkubernetes.io", false },
		{ "*.kubernetes.io", "wikipedia.org", false },
		{ "*.kubernetes.io", ".kubernetes.io", false },	/* no label before it */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(domain_problem(ok[i]) == NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(domain_problem(bad[i]) != NULL);
		if (!domain_problem(bad[i]))
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
	}
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		CHECK(domain_match(m[i].pattern, m[i].name) == m[i].match);
		if (domain_match(m[i].pattern, m[i].name) != m[i].match)
			fprintf(stderr, "%s ~ %s\n", m[i].pattern, m[i].name);
	}
}

int main(void)
{
	test_cnp_full();
	test_cnp_pods_subject();
	test_v1alpha1();
	test_order();
	test_list();
	test_names();
	test_domains();
	return check_done();
}
