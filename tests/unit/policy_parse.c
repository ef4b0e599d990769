/*
 * NetworkPolicy semantics as parsed: defaults, peers, ports, namespaces, lists, loading; and
 * the endpoints file's MACs, which the daemon's anti-spoofing takes byte for byte.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "moat/endpoint.h"
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

static const char full[] =
	"# a full policy\n"
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: shop\n"
	"  uid: 1234\n"
	"  labels: {team: a}\n"
	"  annotations: {moat.io/mode: monitor, other: x}\n"
	"spec:\n"
	"  podSelector: {composeService: web, composeProject: shop, matchLabels: {tier: front}}\n"
	"  ingress:\n"
	"  - from:\n"
	"    - podSelector: {matchLabels: {app: api}}\n"
	"      namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod, stage]}]}\n"
	"    - namespaceSelector: {}\n"
	"    - podSelector: {}\n"
	"    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.3.0/24]}\n"
	"    - ipBlock: {cidr: \"fd00::/8\"}\n"
	"    ports:\n"
	"    - port: 80\n"
	"    - {port: http, protocol: UDP}\n"
	"    - {port: 8000, endPort: 8080, protocol: SCTP}\n"
	"    - {protocol: TCP}\n"
	"    - {}\n";

static void test_full(void)
{
	struct moat_policy_set *ps = parse(full);
	const struct moat_netpol *np;
	const struct moat_rule *r;
	const struct moat_peer *p;

	if (!ps)
		return;
	CHECK(ps->npols == 1 && ps->nnss == 0);
	np = &ps->pols[0];
	CHECK_STR(np->name, "web");
	CHECK_STR(np->namespace, "shop");
	CHECK(np->mode == MOAT_MODE_MONITOR);
	CHECK(np->pos.line == 2 && np->pos.col == 1);
	CHECK_STR(np->pos.file, "p.yaml");
	/* the Compose shorthands expand into matchLabels, sorted by key */
	CHECK(np->target.match.n == 3 && np->target.nexprs == 0);
	CHECK_STR(np->target.match.v[0].key, "com.docker.compose.project");
	CHECK_STR(np->target.match.v[0].value, "shop");
	CHECK_STR(np->target.match.v[1].key, "com.docker.compose.service");
	CHECK_STR(np->target.match.v[1].value, "web");
	CHECK_STR(np->target.match.v[2].key, "tier");
	CHECK(np->isolates_in && !np->isolates_out);
	CHECK(np->nin == 1 && np->nout == 0);
	r = &np->in[0];
	CHECK(r->pos.line == 13 && r->pos.col == 5);
	CHECK(r->npeers == 5 && r->nports == 5);

	p = &r->peers[0];
	CHECK(p->kind == MOAT_PEER_PODS && p->has_pod && p->has_ns);
	CHECK(p->pod.match.n == 1 && !strcmp(p->pod.match.v[0].key, "app"));
	CHECK(p->ns.match.n == 0 && p->ns.nexprs == 1);
	CHECK_STR(p->ns.exprs[0].key, "env");
	CHECK(p->ns.exprs[0].op == MOAT_SEL_IN && p->ns.exprs[0].nvalues == 2);
	CHECK_STR(p->ns.exprs[0].values[1], "stage");
	CHECK(p->pos.line == 14 && p->pos.col == 7);
	p = &r->peers[1];
	CHECK(p->kind == MOAT_PEER_PODS && !p->has_pod && p->has_ns);
	p = &r->peers[2];
	CHECK(p->kind == MOAT_PEER_PODS && p->has_pod && !p->has_ns && p->pod.match.n == 0);
	p = &r->peers[3];
	CHECK(p->kind == MOAT_PEER_IPBLOCK && p->nexcept == 2);
	CHECK(p->cidr.family == AF_INET);
	CHECK_STR(cidr_str(&p->cidr), "10.0.0.0/8");
	CHECK_STR(cidr_str(&p->except[1]), "10.2.3.0/24");
	p = &r->peers[4];
	CHECK(p->kind == MOAT_PEER_IPBLOCK && p->cidr.family == AF_INET6 && p->nexcept == 0);
	CHECK_STR(cidr_str(&p->cidr), "fd00::/8");

	CHECK(r->ports[0].proto == IPPROTO_TCP && r->ports[0].port == 80);
	CHECK(r->ports[0].end_port == 80 && !r->ports[0].name);
	CHECK(r->ports[1].proto == IPPROTO_UDP && r->ports[1].port == 0);
	CHECK_STR(r->ports[1].name, "http");
	CHECK(r->ports[2].proto == IPPROTO_SCTP && r->ports[2].port == 8000);
	CHECK(r->ports[2].end_port == 8080);
	CHECK(r->ports[3].proto == IPPROTO_TCP && r->ports[3].port == 0 && !r->ports[3].name);
	CHECK(r->ports[4].proto == IPPROTO_TCP && r->ports[4].port == 0);
	CHECK(r->ports[1].pos.line == 22 && r->ports[1].pos.col == 7);
	moat_policy_set_free(ps);
}

#define HEAD "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"

/* policyTypes as Kubernetes defaults them (SetDefaults_NetworkPolicy). */
static void test_policy_types(void)
{
	static const struct {
		const char *spec;
		bool in, out;
	} cases[] = {
		{ "spec: {podSelector: {}}", true, false },
		{ "spec: {podSelector: {}, ingress: []}", true, false },
		{ "spec: {podSelector: {}, egress: [{}]}", true, true },
		{ "spec: {podSelector: {}, egress: [{to: [{podSelector: {}}]}]}", true, true },
		/* an empty egress list has no rules: Kubernetes then leaves Egress out */
		{ "spec: {podSelector: {}, egress: []}", true, false },
		{ "spec: {podSelector: {}, egress: null}", true, false },
		{ "spec: {podSelector: {}, policyTypes: [Egress]}", false, true },
		{ "spec: {podSelector: {}, policyTypes: [Egress], ingress: [{}]}", false, true },
		{ "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}", true, true },
		{ "spec: {podSelector: {}, policyTypes: [], egress: [{}]}", true, true },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), HEAD "%s\n", cases[i].spec);
		struct moat_policy_set *ps = parse(buf);

		if (!ps)
			continue;
		if (ps->pols[0].isolates_in != cases[i].in || ps->pols[0].isolates_out != cases[i].out)
			fprintf(stderr, "policyTypes case %zu: %s\n", i, cases[i].spec);
		CHECK(ps->pols[0].isolates_in == cases[i].in);
		CHECK(ps->pols[0].isolates_out == cases[i].out);
		moat_policy_set_free(ps);
	}
}

/* Absent or empty from/to/ports mean "all"; ingress: [{}] allows everything. */
static void test_all_shapes(void)
{
	struct moat_policy_set *ps = parse(HEAD "spec:\n  podSelector: {}\n  ingress: [{}, {from: [], ports: []},"
					   " {from: null, ports: null}]\n  egress: []\n");

	if (!ps)
		return;
	CHECK(ps->pols[0].nin == 3 && ps->pols[0].nout == 0);
	for (size_t i = 0; i < ps->pols[0].nin; i++)
		CHECK(ps->pols[0].in[i].npeers == 0 && ps->pols[0].in[i].nports == 0);
	CHECK_STR(ps->pols[0].namespace, "default");
	CHECK(ps->pols[0].mode == MOAT_MODE_ENFORCE);
	CHECK(ps->pols[0].target.match.n == 0 && ps->pols[0].target.nexprs == 0);
	moat_policy_set_free(ps);
}

static void test_namespaces_and_lists(void)
{
	const char *text =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {team: a}}\n"
		"status: {phase: Active}\n"
		"---\n"
		"apiVersion: v1\nkind: Namespace\n"
		"metadata: {name: dev, labels: {kubernetes.io/metadata.name: wrong}}\n"
		"---\n"
		"apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n"
		"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n"
		"  metadata: {name: a, namespace: prod}\n  spec: {podSelector: {}}\n"
		"- apiVersion: v1\n  kind: Namespace\n  metadata: {name: bare}\n"
		"---\n"
		"# a last document of only comments\n";
	struct moat_policy_set *ps = parse(text);

	if (!ps)
		return;
	CHECK(ps->npols == 1 && ps->nnss == 3);
	CHECK_STR(ps->pols[0].namespace, "prod");
	CHECK(ps->pols[0].pos.line == 14 && ps->pols[0].pos.col == 3);
	CHECK_STR(ps->nss[0].name, "prod");
	CHECK(ps->nss[0].labels.n == 2);
	CHECK_STR(moat_labels_get(&ps->nss[0].labels, "kubernetes.io/metadata.name"), "prod");
	CHECK_STR(moat_labels_get(&ps->nss[0].labels, "team"), "a");
	/* the API server overwrites the name label; so does Moat */
	CHECK_STR(moat_labels_get(&ps->nss[1].labels, "kubernetes.io/metadata.name"), "dev");
	CHECK(ps->nss[1].labels.n == 1);
	CHECK_STR(ps->nss[2].name, "bare");
	CHECK_STR(moat_labels_get(&ps->nss[2].labels, "kubernetes.io/metadata.name"), "bare");
	moat_policy_set_free(ps);
}

static void test_empty_inputs(void)
{
	static const char *const texts[] = { "", "# nothing\n# here\n", "---\n---\n", "---\n# x\n...\n" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct moat_policy_set *ps = parse(texts[i]);

		CHECK(ps && ps->npols == 0 && ps->nnss == 0);
		moat_policy_set_free(ps);
	}
	moat_policy_set_free(NULL);
}

/* Anchors and aliases within bounds are fine, and a node reached twice is read twice. */
static void test_aliases(void)
{
	struct moat_policy_set *ps = parse(HEAD "spec:\n  podSelector: &sel {matchLabels: {app: web}}\n"
					   "  ingress: [{from: [{podSelector: *sel}]}]\n");

	if (!ps)
		return;
	CHECK_STR(moat_labels_get(&ps->pols[0].in[0].peers[0].pod.match, "app"), "web");
	moat_policy_set_free(ps);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A directory: *.yaml and *.yml in name order; other files, hidden files and dirs skipped. */
static void test_load_dir(void)
{
	char dir[] = "/tmp/moat-dir-XXXXXX", path[128];
	static const char *const files[] = { "b.yaml", "a.yml", "c.txt", ".hidden.yaml" };
	const char *paths[2] = { dir, NULL };
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	char extra[] = "/tmp/moat-one-XXXXXX";
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < 4; i++) {
		char text[256];

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		snprintf(text, sizeof(text), HEAD "spec: {podSelector: {}}\n");
		text[strlen("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ")] =
			"bach"[i];
		write_file(path, text);
	}
	snprintf(path, sizeof(path), "%s/sub.yaml", dir);
	CHECK(mkdir(path, 0700) == 0);
	fd = mkstemp(extra);
	CHECK(fd >= 0);
	close(fd);
	write_file(extra, "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n");
	paths[1] = extra;
	CHECK(moat_policy_set_load(paths, 2, &ps, &d) == 0);
	moat_diags_print(&d, stderr);
	CHECK(d.n == 0);
	if (ps) {
		CHECK(ps->npols == 2 && ps->nnss == 1);
		CHECK(ps->npols == 2 && !strcmp(ps->pols[0].name, "a") && !strcmp(ps->pols[1].name, "b"));
		snprintf(path, sizeof(path), "%s/a.yml", dir);
		CHECK_STR(ps->pols[0].pos.file, path);
	}
	moat_policy_set_free(ps);
	moat_diags_free(&d);
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub.yaml", dir);
	rmdir(path);
	rmdir(dir);
	unlink(extra);
}

static void test_cidr(void)
{
	struct moat_cidr c = { 0 }, in = { 0 };
	char buf[64];

	CHECK(moat_cidr_parse("10.1.2.0/24", &c) == 0);
	CHECK(c.family == AF_INET && c.plen == 24 && c.addr[2] == 2 && c.addr[3] == 0);
	CHECK(moat_cidr_parse("10.1.2.1/24", &c) == -EINVAL);
	CHECK(c.plen == 24);	/* untouched on failure */
	CHECK(moat_cidr_parse("0.0.0.0/0", &c) == 0 && c.plen == 0);
	CHECK(moat_cidr_parse("10.0.0.1/32", &c) == 0 && c.plen == 32);
	CHECK(moat_cidr_parse("10.0.0.0/33", &c) == -EINVAL);
	CHECK(moat_cidr_parse("10.0.0.0/08", &c) == -EINVAL);
	CHECK(moat_cidr_parse("10.0.0.0/", &c) == -EINVAL);
	CHECK(moat_cidr_parse("10.0.0.0", &c) == -EINVAL);
	CHECK(moat_cidr_parse("010.0.0.0/8", &c) == -EINVAL);
	CHECK(moat_cidr_parse("fd00::/8", &c) == 0 && c.family == AF_INET6 && c.addr[0] == 0xfd);
	CHECK(moat_cidr_parse("fd00::1/64", &c) == -EINVAL);
	CHECK(moat_cidr_parse("::/0", &c) == 0);
	CHECK(moat_cidr_parse("2001:db8::/129", &c) == -EINVAL);
	CHECK(moat_cidr_parse("2001:db8:1:2::/63", &c) == 0);
	CHECK_STR(moat_cidr_format(&c, buf, sizeof(buf)), "2001:db8:1:2::/63");
	CHECK(moat_cidr_parse("2001:db8:1:3::/63", &c) == -EINVAL);

	CHECK(moat_cidr_parse("10.0.0.0/8", &c) == 0 && moat_cidr_parse("10.9.0.0/16", &in) == 0);
	CHECK(moat_cidr_contains(&c, &in) && !moat_cidr_contains(&in, &c));
	CHECK(moat_cidr_contains(&c, &c));
	CHECK(moat_cidr_parse("11.0.0.0/16", &in) == 0 && !moat_cidr_contains(&c, &in));
	CHECK(moat_cidr_parse("::/0", &in) == 0 && !moat_cidr_contains(&in, &c));
}

static struct moat_endpoint_set *parse_endpoints(const char *text)
{
	struct moat_diags d = { 0 };
	struct moat_endpoint_set *es = NULL;
	int ret = moat_endpoint_set_parse("e.yaml", text, strlen(text), &es, &d);

	if (ret) {
		fprintf(stderr, "endpoints parse failed (%d):\n", ret);
		moat_diags_print(&d, stderr);
	}
	CHECK(ret == 0 && d.n == 0);
	moat_diags_free(&d);
	return es;
}

/* Does endpoint name (namespace default) have iface i with MAC want? */
static bool has_mac(const struct moat_endpoint_set *es, const char *name, size_t i,
		    const uint8_t want[6])
{
	long k = moat_endpoint_set_find(es, "default", name);
	const struct moat_endpoint *e = k < 0 ? NULL : &es->v[k];

	return e && e->macs && i < e->nifaces && !memcmp(e->macs[i], want, 6);
}

/* Both separators, either case, quoted or not, flow and block; no macs leaves macs NULL. */
static void test_endpoint_macs(void)
{
	static const uint8_t m1[6] = { 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 },
			     m2[6] = { 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f },
			     m3[6] = { 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54 },
			     m4[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x04 },
			     m5[6] = { 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	struct moat_endpoint_set *es = parse_endpoints(
		"endpoints:\n"
		"  - {name: a, ifaces: [v1, v2, v3],\n"
		"     macs: [\"02:42:AC:11:00:02\", 0a-1b-2c-3d-4e-5f, 'Fe-dC-bA-98-76-54']}\n"
		"  - name: b\n"
		"    ifaces:\n"
		"      - v4\n"
		"      - v5\n"
		"    macs:\n"
		"      - 02:00:00:00:00:04\n"
		"      - AA-bb-CC-dd-EE-ff\n"
		"  - {name: c, ifaces: [v6]}\n"
		"  - {name: d, ifaces: [], macs: []}\n");
	long c;

	if (!es)
		return;
	CHECK(has_mac(es, "a", 0, m1) && has_mac(es, "a", 1, m2) && has_mac(es, "a", 2, m3));
	CHECK(has_mac(es, "b", 0, m4) && has_mac(es, "b", 1, m5));
	CHECK_STR(es->v[moat_endpoint_set_find(es, "default", "b")].ifaces[1], "v5");
	c = moat_endpoint_set_find(es, "default", "c");
	CHECK(c >= 0 && es->v[c].nifaces == 1 && es->v[c].macs == NULL);
	c = moat_endpoint_set_find(es, "default", "d");
	CHECK(c >= 0 && es->v[c].nifaces == 0 && es->v[c].macs == NULL);
	moat_endpoint_set_free(es);
}

/* JSON, and the block YAML programs write, take yaml_fast's path: the same MACs. */
static void test_endpoint_macs_fast(void)
{
	static const uint8_t m1[6] = { 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 };
	struct moat_endpoint_set *js = parse_endpoints(
		"{\"endpoints\": [{\"name\": \"a\", \"ifaces\": [\"v1\"], "
		"\"macs\": [\"02:42:ac:11:00:02\"]}]}");
	struct moat_endpoint_set *bs = parse_endpoints(
		"endpoints:\n  - name: a\n    ifaces:\n      - v1\n    macs:\n"
		"      - 02-42-AC-11-00-02\n");

	CHECK(js && has_mac(js, "a", 0, m1));
	CHECK(bs && has_mac(bs, "a", 0, m1));
	moat_endpoint_set_free(js);
	moat_endpoint_set_free(bs);
}

int main(void)
{
	test_full();
	test_policy_types();
	test_all_shapes();
	test_namespaces_and_lists();
	test_empty_inputs();
	test_aliases();
	test_load_dir();
	test_cidr();
	test_endpoint_macs();
	test_endpoint_macs_fast();
	return check_done();
}
