/*
 * Every class of policy error, with its exact words and file:line:col; all-or-nothing
 * loading; hostile input (alias bombs, oversized files) refused quickly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "diag.h"
#include "moat/endpoint.h"
#include "moat/policy.h"

/* What the kind messages list. */
#define KINDS "NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy, " \
	      "BaselineAdminNetworkPolicy, Namespace and List"

#define NP "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
#define NQ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: q}\n"

static void test_classes(void)
{
	expect_one(NP "spec:\n  podSelector: {}\n  ingres: []\n",
		   "t.yaml:6:3: spec: unknown field \"ingres\" "
		   "(allowed: podSelector, policyTypes, ingress, egress)");
	expect_one(NP "spec:\n  podSelector: []\n",
		   "t.yaml:5:16: spec.podSelector: expected a mapping, got a sequence");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress: {from: []}\n",
		   "t.yaml:6:12: spec.ingress: expected a sequence, got a mapping");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0}\n",
		   "t.yaml:8:23: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.0\" is not a CIDR: "
		   "it needs a prefix length (like 10.0.0.0/24)");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.1/8}\n",
		   "t.yaml:8:23: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.1/8\" has host bits "
		   "set (did you mean 10.0.0.0/8?)");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.300/8}\n",
		   "t.yaml:8:23: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.300/8\" is not a CIDR: "
		   "the address is not IPv4 or IPv6");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: \"fd00::/129\"}\n",
		   "t.yaml:8:23: spec.ingress[0].from[0].ipBlock.cidr: \"fd00::/129\" is not a CIDR: "
		   "the prefix length must be 0-32 for IPv4, 0-128 for IPv6");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		      "    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}\n",
		   "t.yaml:8:45: spec.ingress[0].from[0].ipBlock.except[0]: except 10.1.0.0/24 is not "
		   "inside cidr 10.0.0.0/16 (it must be a strictly smaller part of it)");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		      "    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
		   "t.yaml:8:16: spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector "
		   "or namespaceSelector in one peer; write them as separate peers");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from: [{}]\n",
		   "t.yaml:7:12: spec.ingress[0].from[0]: a peer needs a podSelector, a "
		   "namespaceSelector or an ipBlock");
}

static void test_ports(void)
{
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 70000}]\n",
		   "t.yaml:7:20: spec.ingress[0].ports[0].port: 70000 is out of range (1 to 65535)");
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 0}]\n",
		   "t.yaml:7:20: spec.ingress[0].ports[0].port: 0 is out of range (1 to 65535)");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: 80, endPort: 79}]\n",
		   "t.yaml:7:33: spec.egress[0].ports[0].endPort: endPort 79 is below port 80");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: dns, endPort: 79}]\n",
		   "t.yaml:7:34: spec.egress[0].ports[0].endPort: endPort needs a numeric port, not "
		   "the port name \"dns\"");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{endPort: 79}]\n",
		   "t.yaml:7:23: spec.egress[0].ports[0].endPort: endPort needs a numeric port to "
		   "start the range");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: \"80\"}]\n",
		   "t.yaml:7:20: spec.egress[0].ports[0].port: invalid port name \"80\": a port name "
		   "is 1-15 lowercase letters, digits and '-', with at least one letter and no '-' at "
		   "either end or twice in a row");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: averyverylongname}]\n",
		   "t.yaml:7:20: spec.egress[0].ports[0].port: invalid port name \"averyverylongname\": "
		   "a port name is 1-15 lowercase letters, digits and '-', with at least one letter "
		   "and no '-' at either end or twice in a row");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{protocol: tcp}]\n",
		   "t.yaml:7:24: spec.egress[0].ports[0].protocol: unknown protocol \"tcp\" "
		   "(allowed: TCP, UDP, SCTP)");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - ports: [{prot: TCP}]\n",
		   "t.yaml:7:14: spec.egress[0].ports[0]: unknown field \"prot\" "
		   "(allowed: protocol, port, endPort)");
}

/* A policy whose port is X, in flow style: the value is at 7:20. */
#define PORT_IS(x) NP "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: " x "}]\n"
#define AT_PORT "t.yaml:7:20: spec.ingress[0].ports[0].port: "

static void expect_ok(const char *text)
{
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	CHECK(moat_policy_set_parse("t.yaml", text, strlen(text), &ps, &d) == 0 && d.n == 0);
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	moat_policy_set_free(ps);
}

/*
 * kubectl turns YAML into JSON with go-yaml v2 (YAML 1.1) before IntOrString reads it: a plain
 * 0x50, 0o17, 017, 8e1, +80, 8_0 or 80.0 is the number 80 (or 15) to it, yes/on/true a
 * boolean. Moat would have read them as port names; they are errors, so that no policy
 * means one port to Moat and another to kubectl (or is refused by it).
 */
static void test_kubectl_numbers(void)
{
	static const struct {
		const char *value, *what;
	} numbers[] = {
		{ "0x50", "the number 80" }, { "0X50", "the number 80" },
		{ "0o17", "the number 15" }, { "0O17", "the number 15" },
		{ "017", "the number 15" }, { "08", "the number 8" },
		{ "0b1010000", "the number 80" }, { "8e1", "the number 80" },
		{ "8E1", "the number 80" }, { "80.0", "the number 80" }, { "80.", "the number 80" },
		{ ".8e2", "the number 80" }, { "+80", "the number 80" }, { "8_0", "the number 80" },
		{ "-0x50", "the number -80" }, { "8.5", "the number 8.5" },
		{ "1e10", "the number 10000000000" }, { ".inf", "the number inf" },
		{ ".NaN", "the number nan" },
	};
	static const char *const bools[] = { "yes", "No", "ON", "off", "y", "n", "true", "False" };
	static const char *const nulls[] = { "null", "~", "NULL" };
	char text[512], want[512];

	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		snprintf(text, sizeof(text), PORT_IS("%s"), numbers[i].value);
		snprintf(want, sizeof(want), AT_PORT "kubectl reads %s as %s, not as a port name: "
			 "write the port in decimal, or quote a port name", numbers[i].value,
			 numbers[i].what);
		expect_one(text, want);
	}
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		snprintf(text, sizeof(text), PORT_IS("%s"), bools[i]);
		snprintf(want, sizeof(want), AT_PORT "kubectl reads %s as a boolean, not as a port "
			 "name: write the port in decimal, or quote a port name", bools[i]);
		expect_one(text, want);
	}
	/* A null port is no port, to Moat as to kubectl: every port. */
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		snprintf(text, sizeof(text), PORT_IS("%s"), nulls[i]);
		expect_ok(text);
	}
	/* Positive controls: names kubectl reads as strings, and quoted forms. */
	expect_ok(PORT_IS("dns"));
	expect_ok(PORT_IS("onion"));
	expect_ok(PORT_IS("x80"));
	expect_ok(PORT_IS("\"0x50\""));
	expect_ok(PORT_IS("'yes'"));
	expect_ok(PORT_IS("80"));
}

/* ::ffff:a.b.c.d is how a dual-stack socket names an IPv4 peer; no packet the ruleset sees
 * carries it, so a block of them would silently match nothing. */
static void test_ipv4_mapped(void)
{
	expect_one(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		      "    - ipBlock: {cidr: \"::ffff:10.0.0.0/104\"}\n",
		   "t.yaml:8:23: spec.ingress[0].from[0].ipBlock.cidr: \"::ffff:10.0.0.0/104\" is "
		   "an IPv4-mapped IPv6 block, which no packet carries (IPv4 traffic has IPv4 "
		   "addresses): write 10.0.0.0/8");
	expect_one(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n"
		      "    - ipBlock: {cidr: \"::/0\", except: [\"::ffff:192.0.2.1/128\"]}\n",
		   "t.yaml:8:40: spec.egress[0].to[0].ipBlock.except[0]: \"::ffff:192.0.2.1/128\" "
		   "is an IPv4-mapped IPv6 block, which no packet carries (IPv4 traffic has IPv4 "
		   "addresses): write 192.0.2.1/32");
	expect_ok(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		     "    - ipBlock: {cidr: \"::/0\", except: [\"64:ff9b::/96\", \"::fffe:0:0/96\"]}\n");
}

static void test_selectors(void)
{
	expect_one(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {key: a, operator: in, values: [x]}\n",
		   "t.yaml:7:26: spec.podSelector.matchExpressions[0]: unknown operator \"in\" "
		   "(allowed: In, NotIn, Exists, DoesNotExist)");
	expect_one(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {key: a, operator: NotIn, values: []}\n",
		   "t.yaml:7:41: spec.podSelector.matchExpressions[0]: operator NotIn needs at least "
		   "one value");
	expect_one(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {key: a, operator: In}\n",
		   "t.yaml:7:26: spec.podSelector.matchExpressions[0]: operator In needs at least "
		   "one value");
	expect_one(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {key: a, operator: Exists, values: [x]}\n",
		   "t.yaml:7:42: spec.podSelector.matchExpressions[0]: operator Exists takes no values");
	expect_one(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {operator: Exists}\n",
		   "t.yaml:7:7: spec.podSelector.matchExpressions[0]: a match expression needs a key "
		   "and an operator");
	expect_one(NP "spec:\n  podSelector: {matchLabels: {\"bad key\": x}}\n",
		   "t.yaml:5:31: spec.podSelector.matchLabels: invalid label key \"bad key\": the name "
		   "must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending "
		   "with a letter or digit");
	expect_one(NP "spec:\n  podSelector: {matchLabels: {app: -x}}\n",
		   "t.yaml:5:31: spec.podSelector.matchLabels: invalid value \"-x\" for label \"app\": "
		   "a label value must be empty or at most 63 characters of letters, digits, '-', '_' "
		   "or '.', starting and ending with a letter or digit");
	expect_one(NP "spec:\n  podSelector: {matchLabels: {com.docker.compose.service: a}, composeService: b}\n",
		   "t.yaml:5:79: spec.podSelector.composeService: matchLabels already sets "
		   "com.docker.compose.service");
	expect_one(NP "spec:\n  podSelector: {composeServic: b}\n",
		   "t.yaml:5:17: spec.podSelector: unknown field \"composeServic\" (allowed: "
		   "matchLabels, matchExpressions, composeService, composeProject)");
	expect_one(NP "spec:\n  podSelector: {}\n  policyTypes: [ingress]\n",
		   "t.yaml:6:17: spec.policyTypes[0]: unknown policy type \"ingress\" "
		   "(allowed: Ingress, Egress)");
}

static void test_documents(void)
{
	expect_one("apiVersion: apps/v1\nkind: Deployment\n",
		   "t.yaml:2:7: unknown kind \"Deployment\" (Moat reads " KINDS ")");
	expect_one("apiVersion: v1\nmetadata: {name: x}\n",
		   "t.yaml:1:1: kind is missing (Moat reads " KINDS ")");
	expect_one("apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
		   "spec: {podSelector: {}}\n",
		   "t.yaml:1:13: unknown apiVersion \"extensions/v1beta1\" for kind NetworkPolicy "
		   "(Moat reads networking.k8s.io/v1)");
	expect_one("kind: Namespace\nmetadata: {name: x}\n",
		   "t.yaml:1:1: apiVersion is missing (kind Namespace is v1)");
	expect_one("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nspec: {podSelector: {}}\n",
		   "t.yaml:1:1: metadata: name is required");
	expect_one("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Web}\n"
		   "spec: {podSelector: {}}\n",
		   "t.yaml:3:18: metadata: invalid name \"Web\": use lowercase letters, digits and '-' "
		   "(and '.'), starting and ending with a letter or digit, at most 253 characters");
	expect_one(NP "spec: {}\n",
		   "t.yaml:4:7: spec: podSelector is required (podSelector: {} selects every pod of "
		   "the namespace)");
	expect_one("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		   "metadata: {name: p, annotations: {moat.io/mode: audit}}\nspec: {podSelector: {}}\n",
		   "t.yaml:3:49: metadata: annotation moat.io/mode must be \"enforce\" or \"monitor\", "
		   "got \"audit\"");
	expect_one(NP "spec:\n  podSelector: {}\n  podSelector: {}\n",
		   "t.yaml:6:3: duplicate key \"podSelector\" (first at line 5, column 3)");
	expect_one("a: b\n c: d\n", "t.yaml:2:3: YAML syntax error: mapping values are not allowed "
		   "in this context");
	expect_one("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n",
		   "t.yaml:4:3: items[0]: a List inside a List is not supported");
	expect_one("apiVersion: v1\nkind: Namespace\nmetadata: {name: x, namespace: y}\n",
		   "t.yaml:3:21: metadata: unknown field \"namespace\" (allowed: name, labels, "
		   "annotations, uid, resourceVersion, generation, creationTimestamp, managedFields, "
		   "selfLink)");
	expect_one("- a\n", "t.yaml:1:1: expected a mapping, got a sequence");
}

/* Many errors in one file are all reported, and nothing is loaded. */
static void test_collects_all(void)
{
	const char *text = NP "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 0}, {port: 70000}]\n"
			   "---\n" NQ "spec:\n  podSelector: []\n---\nkind: Foo\n";
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	CHECK(moat_policy_set_parse("m.yaml", text, strlen(text), &ps, &d) == -EINVAL);
	CHECK(ps == NULL);
	CHECK(d.n == 4);
	CHECK_DIAG(&d, "m.yaml:7:20: spec.ingress[0].ports[0].port: 0 is out of range (1 to 65535)");
	CHECK_DIAG(&d, "m.yaml:7:31: spec.ingress[0].ports[1].port: 70000 is out of range (1 to 65535)");
	CHECK_DIAG(&d, "m.yaml:13:16: spec.podSelector: expected a mapping, got a sequence");
	CHECK_DIAG(&d, "m.yaml:15:7: unknown kind \"Foo\" (Moat reads " KINDS ")");
	moat_diags_free(&d);
}

/* Past YCHECK_MAX_ERRORS (100) a file stops adding records, with one closing line. */
static void test_error_cap(void)
{
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap);
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	len += snprintf(text + len, cap - len, NP "spec:\n  podSelector: {}\n");
	for (int i = 0; i < 500; i++)
		len += snprintf(text + len, cap - len, "  bogus%d: 1\n", i);
	CHECK(moat_policy_set_parse("cap.yaml", text, len, &ps, &d) == -EINVAL);
	CHECK(d.n == 100);
	CHECK(d.n && !strcmp(d.v[d.n - 1].msg, "too many errors in this file; not showing more"));
	moat_diags_free(&d);
	free(text);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Nine levels of nine aliases: a billion "lol"s if expanded. Refused at once. */
static void test_billion_laughs(void)
{
	char text[4096];
	size_t len = snprintf(text, sizeof(text), "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	double t0 = now();

	for (char c = 'b'; c <= 'j'; c++)
		len += snprintf(text + len, sizeof(text) - len,
				"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c - 1,
				c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
	CHECK(moat_policy_set_parse("lol.yaml", text, len, &ps, &d) == -EINVAL);
	CHECK(now() - t0 < 1.0);
	CHECK(ps == NULL);
	CHECK(d.n == 1);
	CHECK_DIAG(&d, "lol.yaml:7:8: document is too big: more than 1000000 YAML nodes once "
		   "aliases are expanded (an alias bomb?); refusing it");
	moat_diags_free(&d);
}

static void test_undefined_alias(void)
{
	expect_one(NP "spec: *nope\n", "t.yaml:4:7: alias *nope refers to no anchor defined before it");
}

/* Over MOAT_POLICY_MAX_FILE_BYTES: refused from a file before reading, and from memory. */
static void test_oversized(void)
{
	size_t len = MOAT_POLICY_MAX_FILE_BYTES + 1;
	char *big = malloc(len), path[] = "/tmp/moat-big-XXXXXX";
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	const char *paths[] = { path };
	char want[256];
	int fd = mkstemp(path);

	memset(big, '#', len);
	CHECK(fd >= 0 && write(fd, big, len) == (ssize_t)len);
	close(fd);
	CHECK(moat_policy_set_load(paths, 1, &ps, &d) == -EINVAL);
	CHECK(ps == NULL && d.n == 1);
	snprintf(want, sizeof(want), "%s:0:0: file is too big: 4194305 bytes, the limit is 4194304 "
		 "bytes (4 MiB)", path);
	CHECK_DIAG(&d, want);
	moat_diags_free(&d);
	CHECK(moat_policy_set_parse("mem.yaml", big, len, &ps, &d) == -EINVAL);
	CHECK_DIAG(&d, "mem.yaml:0:0: file is too big: 4194305 bytes, the limit is 4194304 bytes (4 MiB)");
	moat_diags_free(&d);
	unlink(path);
	free(big);
}

/* A policy defined twice across files: the repeat is reported, naming the first. */
static void test_duplicates_across_files(void)
{
	char dir[] = "/tmp/moat-dup-XXXXXX", a[64], b[64], want[256];
	const char *text = "# one\n" NP "spec: {podSelector: {}}\n";
	const char *paths[] = { dir };
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a.yaml", dir);
	snprintf(b, sizeof(b), "%s/b.yml", dir);
	f = fopen(a, "w");
	fputs(text, f);
	fclose(f);
	f = fopen(b, "w");
	fputs(text + 6, f);
	fclose(f);
	CHECK(moat_policy_set_load(paths, 1, &ps, &d) == -EINVAL);
	snprintf(want, sizeof(want), "%s:1:1: NetworkPolicy default/p is defined twice (first at %s:2:1)",
		 b, a);
	CHECK_DIAG(&d, want);
	CHECK(d.n == 1);
	moat_diags_free(&d);
	unlink(a);
	unlink(b);
	rmdir(dir);
}

static void test_missing_file(void)
{
	const char *paths[] = { "/nonexistent/moat.yaml" };
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	CHECK(moat_policy_set_load(paths, 1, &ps, &d) == -ENOENT);
	CHECK_DIAG(&d, "/nonexistent/moat.yaml:0:0: cannot read the file: No such file or directory");
	moat_diags_free(&d);
}

/* The printed form is "file:line:col: error: msg". */
static void test_print(void)
{
	struct moat_diags d = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	moat_diags_add(&d, "x.yaml", 3, 7, "bad %s", "thing");
	moat_diags_add(&d, "x.yaml", 0, 0, "whole file");
	moat_diags_print(&d, f);
	fclose(f);
	CHECK_STR(buf, "x.yaml:3:7: error: bad thing\nx.yaml: error: whole file\n");
	free(buf);
	moat_diags_free(&d);
	CHECK(d.n == 0 && d.v == NULL);
	moat_diags_free(NULL);
}

/* JSON takes yaml_parse's fast path (libyaml's when malformed): the same words and places. */
static void test_json(void)
{
	static const char bad_ip[] =
		"{\"endpoints\": [\n  {\"name\": \"a\", \"ips\": [\"10.0.0.300\"]}\n]}";
	struct moat_endpoint_set *es = NULL;
	struct moat_diags d = { 0 };

	expect_one("{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"NetworkPolicy\",\n"
		   " \"metadata\": {\"name\": \"p\"},\n \"spec\": {\"podSelector\": {}, \"ingres\": []}}",
		   "t.yaml:3:30: spec: unknown field \"ingres\" "
		   "(allowed: podSelector, policyTypes, ingress, egress)");
	expect_one("{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"NetworkPolicy\",\n"
		   " \"metadata\": {\"name\": \"p\", \"name\": \"q\"}, \"spec\": {\"podSelector\": {}}}",
		   "t.yaml:2:28: duplicate key \"name\" (first at line 2, column 15)");
	expect_one("{\"apiVersion\": \"networking.k8s.io/v1\",\n \"kind\": [\"NetworkPolicy\"}",
		   "t.yaml:2:26: YAML syntax error: did not find expected ',' or ']' while parsing a "
		   "flow sequence (line 2, column 10)");
	CHECK(moat_endpoint_set_parse("e.json", bad_ip, strlen(bad_ip), &es, &d) == -EINVAL);
	CHECK_DIAG(&d, "e.json:2:25: endpoints[0].ips[0]: \"10.0.0.300\" "
		       "is not an IPv4 or IPv6 address");
	moat_diags_free(&d);
}

/* Parses text as e.yaml, an endpoints file; expects failure with exactly one diagnostic. */
static void expect_ep(const char *text, const char *want)
{
	struct moat_diags d = { 0 };
	struct moat_endpoint_set *es = (void *)0x1;	/* must stay untouched on failure */

	CHECK(moat_endpoint_set_parse("e.yaml", text, strlen(text), &es, &d) == -EINVAL);
	CHECK(es == (void *)0x1);
	only_diag(&d, want);
}

#define EP "endpoints:\n  - {name: a, ifaces: [v1], macs: "
#define NOT_MAC " is not a MAC address (six hex octets, like 02:42:ac:11:00:02 or " \
		"02-42-ac-11-00-02)"
#define GROUP " is not a unicast MAC address (the low bit of the first octet is set: " \
	      "multicast or broadcast)"
#define MAPPING "expected a MAC address, got a mapping: quote the MAC (\"02:42:ac:11:00:02\") " \
		"or write it with '-' (02-42-ac-11-00-02)"

/*
 * Each MAC that cannot be a container's, whatever node it comes as. MACs with ':' in [...]
 * are quoted: libyaml before 0.2.1 reads them as mappings (the MAPPING case).
 */
static void test_endpoint_macs(void)
{
	expect_ep(EP "[\"02:42:ac:11:00\"]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"02:42:ac:11:00\"" NOT_MAC);
	expect_ep(EP "[\"02:42-ac:11:00:02\"]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"02:42-ac:11:00:02\"" NOT_MAC);
	expect_ep(EP "[\"2:42:ac:11:0:2\"]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"2:42:ac:11:0:2\"" NOT_MAC);
	expect_ep(EP "[\"02:42:ag:11:00:02\"]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"02:42:ag:11:00:02\"" NOT_MAC);
	expect_ep(EP "[\"01:00:5e:00:00:01\"]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"01:00:5e:00:00:01\"" GROUP);
	expect_ep(EP "[FF-FF-FF-FF-FF-FF]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: \"FF-FF-FF-FF-FF-FF\"" GROUP);
	expect_ep(EP "[\"00:00:00:00:00:00\"]}\n", "e.yaml:2:36: endpoints[0].macs[0]: "
		  "\"00:00:00:00:00:00\" is not a unicast MAC address (all zero)");
	expect_ep(EP "[02: 42]}\n", "e.yaml:2:36: endpoints[0].macs[0]: " MAPPING);
	expect_ep("endpoints:\n  - name: a\n    ifaces: [v1]\n    macs:\n      - 02: 42\n",
		  "e.yaml:5:9: endpoints[0].macs[0]: " MAPPING);
	expect_ep(EP "[[02-42-ac-11-00-02]]}\n",
		  "e.yaml:2:36: endpoints[0].macs[0]: expected a string, got a sequence");
	expect_ep(EP "\"02:42:ac:11:00:02\"}\n", "e.yaml:2:35: endpoints[0].macs: "
		  "expected a sequence, got the value \"02:42:ac:11:00:02\"");
}

/* macs pairs with ifaces: none without them, one each; a bad ifaces is reported once. */
static void test_endpoint_macs_count(void)
{
	expect_ep("endpoints:\n  - {name: a, macs: [02-42-ac-11-00-02]}\n",
		  "e.yaml:2:21: endpoints[0]: macs without ifaces: each MAC belongs to the "
		  "interface at the same place in ifaces");
	expect_ep(EP "[02-42-ac-11-00-02, 02-42-ac-11-00-03]}\n",
		  "e.yaml:2:35: endpoints[0]: macs and ifaces differ in length (2 and 1): "
		  "give one MAC per interface, in the same order");
	expect_ep("endpoints:\n  - name: a\n    ifaces: [v1, v2, v3]\n    macs:\n"
		  "      - 02-42-ac-11-00-02\n",
		  "e.yaml:5:7: endpoints[0]: macs and ifaces differ in length (1 and 3): give one "
		  "MAC per interface, in the same order");
	expect_ep("endpoints:\n  - {name: a, ifaces: v1, macs: [02-42-ac-11-00-02]}\n",
		  "e.yaml:2:23: endpoints[0].ifaces: expected a sequence, got the value \"v1\"");
	expect_ep("endpoints:\n  - {name: a, ifaces: [v/1], macs: [02-42-ac-11-00-02]}\n",
		  "e.yaml:2:24: endpoints[0].ifaces[0]: invalid interface name \"v/1\": 1-15 "
		  "characters, no '/', ':' or spaces");
}

int main(void)
{
	test_classes();
	test_ports();
	test_kubectl_numbers();
	test_ipv4_mapped();
	test_selectors();
	test_documents();
	test_collects_all();
	test_error_cap();
	test_billion_laughs();
	test_undefined_alias();
	test_oversized();
	test_duplicates_across_files();
	test_missing_file();
	test_print();
	test_json();
	test_endpoint_macs();
	test_endpoint_macs_count();
	return check_done();
}
