/*
 * Every class of error in the cluster-wide policies, with its exact words and
 * file:line:col: the API's validation (ranges, list sizes, exactly-one-of, its CEL rules),
 * Moat's refusals, the hints for a field of the other version or direction, and
 * all-or-nothing loading with NetworkPolicy beside them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "diag.h"
#include "moat/policy.h"

#define V2 "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
#define V1 "apiVersion: policy.networking.k8s.io/v1alpha1\n"
/* Lines 1-7; the rules start on line 8. */
#define CNP V2 "metadata: {name: p}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n"
#define BASE V2 "metadata: {name: p}\nspec:\n  tier: Baseline\n  priority: 1\n" \
	"  subject: {namespaces: {}}\n"
#define ANP V1 "kind: AdminNetworkPolicy\nmetadata: {name: p}\nspec:\n  priority: 1\n" \
	"  subject: {namespaces: {}}\n"
#define BANP V1 "kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n" \
	"  subject: {namespaces: {}}\n"
#define ALL "[{namespaces: {}}]"

static void test_spec(void)
{
	expect_one(V2 "metadata: {name: p}\n", "t.yaml:1:1: spec is required");
	expect_one(V2 "metadata: {name: p}\nspec: {priority: 1, subject: {namespaces: {}}}\n",
		   "t.yaml:4:7: spec: tier is required (Admin or Baseline)");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: admin, priority: 1, subject: {namespaces: {}}}\n",
		   "t.yaml:4:14: spec.tier: unknown tier \"admin\" (allowed: Admin, Baseline)");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, subject: {namespaces: {}}}\n",
		   "t.yaml:4:7: spec: priority is required (0 to 1000; the lower goes first)");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1001, subject: {namespaces: {}}}\n",
		   "t.yaml:4:31: spec.priority: 1001 is out of range (0 to 1000)");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: -1, subject: {namespaces: {}}}\n",
		   "t.yaml:4:31: spec.priority: expected a number from 0 to 1000, got the value \"-1\"");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1}\n",
		   "t.yaml:4:7: spec: subject is required (namespaces: SELECTOR, or pods: "
		   "{namespaceSelector: SELECTOR, podSelector: SELECTOR})");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1, subject: {}}\n",
		   "t.yaml:4:43: spec.subject: a subject needs one of namespaces, pods");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1, subject: "
		   "{namespaces: {}, pods: {podSelector: {}}}}\n",
		   "t.yaml:4:43: spec.subject: a subject has both namespaces and pods; it takes "
		   "exactly one of namespaces, pods");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1, subject: "
		   "{pods: {namespaceSelector: {}}}}\n",
		   "t.yaml:4:50: spec.subject.pods: podSelector is required (podSelector: {} selects "
		   "every pod)");
	expect_one(V2 "metadata: {name: p}\nspec: {tier: Admin, priority: 1, podSelector: {}, "
		   "subject: {namespaces: {}}}\n",
		   "t.yaml:4:34: spec: a cluster-wide policy selects its pods with subject "
		   "(podSelector is NetworkPolicy's field)");
	expect_one(V2 "metadata: {name: p, namespace: x}\nspec: {tier: Admin, priority: 1, "
		   "subject: {namespaces: {}}}\n",
		   "t.yaml:3:32: metadata: a ClusterNetworkPolicy is cluster-wide: remove its namespace");
	expect_one(V2 "metadata: {name: p, annotations: {moat.io/mode: dry}}\nspec: {tier: Admin, "
		   "priority: 1, subject: {namespaces: {}}}\n",
		   "t.yaml:3:49: metadata: annotation moat.io/mode must be \"enforce\" or \"monitor\", "
		   "got \"dry\"");
	expect_one("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: ClusterNetworkPolicy\n"
		   "metadata: {name: p}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}}\n",
		   "t.yaml:1:13: unknown apiVersion \"policy.networking.k8s.io/v1alpha1\" for kind "
		   "ClusterNetworkPolicy (Moat reads policy.networking.k8s.io/v1alpha2)");
}

static void test_actions(void)
{
	expect_one(BASE "  ingress: [{action: Pass, from: " ALL "}]\n",
		   "t.yaml:8:22: spec.ingress[0].action: Pass is for the Admin tier: in the Baseline "
		   "tier it could only skip to the default, which allows; write Accept");
	expect_one(CNP "  ingress: [{action: Allow, from: " ALL "}]\n",
		   "t.yaml:8:22: spec.ingress[0].action: unknown action \"Allow\": a "
		   "ClusterNetworkPolicy says Accept (allowed: Accept, Deny, Pass)");
	expect_one(ANP "  ingress: [{action: Accept, from: " ALL "}]\n",
		   "t.yaml:7:22: spec.ingress[0].action: unknown action \"Accept\": an "
		   "AdminNetworkPolicy says Allow (allowed: Allow, Deny, Pass)");
	expect_one(BANP "  ingress: [{action: Pass, from: " ALL "}]\n",
		   "t.yaml:6:22: spec.ingress[0].action: unknown action \"Pass\" (allowed: Allow, Deny)");
	expect_one(CNP "  ingress: [{action: deny, from: " ALL "}]\n",
		   "t.yaml:8:22: spec.ingress[0].action: unknown action \"deny\" (allowed: Accept, "
		   "Deny, Pass)");
	expect_one(CNP "  egress: [{to: " ALL "}]\n",
		   "t.yaml:8:12: spec.egress[0]: action is required (Accept, Deny, Pass)");
}

static void test_peers(void)
{
	expect_one(CNP "  ingress: [{action: Deny}]\n",
		   "t.yaml:8:13: spec.ingress[0]: from is required (at least one peer)");
	expect_one(CNP "  egress: [{action: Deny, to: []}]\n",
		   "t.yaml:8:31: spec.egress[0].to: needs at least one peer");
	expect_one(CNP "  ingress: [{action: Deny, from: [{}]}]\n",
		   "t.yaml:8:35: spec.ingress[0].from[0]: a peer needs one of namespaces, pods");
	expect_one(CNP "  egress: [{action: Deny, to: [{}]}]\n",
		   "t.yaml:8:32: spec.egress[0].to[0]: a peer needs one of namespaces, pods, nodes, "
		   "networks, domainNames");
	expect_one(CNP "  egress: [{action: Deny, to: [{namespaces: {}, networks: [10.0.0.0/8]}]}]\n",
		   "t.yaml:8:32: spec.egress[0].to[0]: a peer has both namespaces and networks; it "
		   "takes exactly one of namespaces, pods, nodes, networks, domainNames");
	expect_one(CNP "  ingress: [{action: Accept, from: [{domainNames: [a.io]}]}]\n",
		   "t.yaml:8:38: spec.ingress[0].from[0]: domainNames is for egress peers only: a name "
		   "says where a connection goes, not where it comes from");
	expect_one(CNP "  ingress: [{action: Deny, from: [{networks: [10.0.0.0/8]}]}]\n",
		   "t.yaml:8:36: spec.ingress[0].from[0]: networks is for egress peers only (an "
		   "ingress peer is namespaces or pods)");
	expect_one(BANP "  egress: [{action: Allow, to: [{domainNames: [a.io]}]}]\n",
		   "t.yaml:6:34: spec.egress[0].to[0]: a BaselineAdminNetworkPolicy has no domainNames "
		   "(a ClusterNetworkPolicy of the Baseline tier has)");
	expect_one(CNP "  egress: [{action: Deny, to: [{nodes: {}}]}]\n",
		   "t.yaml:8:40: spec.egress[0].to[0].nodes: nodes peers are not supported: Moat "
		   "enforces on one node, without the cluster's Node objects to select; write the "
		   "nodes' addresses as networks");
	expect_one(ANP "  egress: [{action: Deny, to: [{pods: {podSelector: {}}}]}]\n",
		   "t.yaml:7:39: spec.egress[0].to[0].pods: namespaceSelector is required in v1alpha1 "
		   "(namespaceSelector: {} selects every namespace)");
	expect_one(CNP "  egress: [{action: Deny, to: [{networks: []}]}]\n",
		   "t.yaml:8:43: spec.egress[0].to[0].networks: needs at least one CIDR");
	expect_one(CNP "  egress: [{action: Deny, to: [{networks: [10.0.0.1/8]}]}]\n",
		   "t.yaml:8:44: spec.egress[0].to[0].networks[0]: \"10.0.0.1/8\" has host bits set "
		   "(did you mean 10.0.0.0/8?)");
	expect_one(CNP "  egress: [{action: Deny, to: [{networks: [10.0.0.0/8, \"fd00::/8\", "
		   "10.0.0.0/8]}]}]\n",
		   "t.yaml:8:68: spec.egress[0].to[0].networks[2]: \"10.0.0.0/8\" is listed twice "
		   "(first at line 8, column 44); the list is a set");
}

static void test_domains(void)
{
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [\"*.example.*\"]}]}]\n",
		   "t.yaml:8:49: spec.egress[0].to[0].domainNames[0]: \"*.example.*\" is not a domain "
		   "name the API accepts: '*' may only stand for whole labels at the start, as in "
		   "*.example.com");
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [\"*example.com\"]}]}]\n",
		   "t.yaml:8:49: spec.egress[0].to[0].domainNames[0]: \"*example.com\" is not a domain "
		   "name the API accepts: '*' may only stand for whole labels at the start, as in "
		   "*.example.com");
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [\"*.com\"]}]}]\n",
		   "t.yaml:8:49: spec.egress[0].to[0].domainNames[0]: \"*.com\" is not a domain name "
		   "the API accepts: it needs at least two labels (like example.com; *.example.com "
		   "for the names under it)");
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [a-.io]}]}]\n",
		   "t.yaml:8:49: spec.egress[0].to[0].domainNames[0]: \"a-.io\" is not a domain name "
		   "the API accepts: a label is letters, digits, '-' and '_', starting and ending with "
		   "a letter or digit");
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [a.io, A.IO.]}]}]\n",
		   "t.yaml:8:55: spec.egress[0].to[0].domainNames[1]: \"A.IO.\" is listed twice "
		   "(first at line 8, column 49); the list is a set");
	expect_one(CNP "  egress: [{action: Deny, to: [{domainNames: [a.io]}]}]\n",
		   "t.yaml:8:12: spec.egress[0]: domainNames peers are for Accept rules only; deny "
		   "what else the pods may reach with a later rule");
	expect_one(CNP "  egress: [{action: Accept, to: [{domainNames: [a.io]}],\n"
		   "    protocols: [{destinationNamedPort: https}]}]\n",
		   "t.yaml:8:12: spec.egress[0]: a named port cannot match domainNames peers: they "
		   "have no named ports");
	expect_one(ANP "  egress: [{action: Allow, to: [{networks: [10.0.0.0/8]}],\n"
		   "    ports: [{namedPort: https}]}]\n",
		   "t.yaml:7:12: spec.egress[0]: a named port cannot match networks peers: they have "
		   "no named ports");
}

static void test_ports(void)
{
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ", protocols: []}]\n",
		   "t.yaml:8:65: spec.ingress[0].protocols: needs at least one protocol");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ", protocols: [{tcp: {}}]}]\n",
		   "t.yaml:8:72: spec.ingress[0].protocols[0].tcp: destinationPort is required (every "
		   "port: destinationPort: {range: {start: 1, end: 65535}})");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ", protocols: [{}]}]\n",
		   "t.yaml:8:66: spec.ingress[0].protocols[0]: a protocol needs one of tcp, udp, sctp, "
		   "destinationNamedPort");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    protocols: [{udp: {destinationPort: {number: 0}}}]}]\n",
		   "t.yaml:9:50: spec.ingress[0].protocols[0].udp.destinationPort.number: 0 is out of "
		   "range (1 to 65535)");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    protocols: [{sctp: {destinationPort: {range: {start: 90, end: 80}}}}]}]\n",
		   "t.yaml:9:67: spec.ingress[0].protocols[0].sctp.destinationPort.range: start 90 "
		   "must be less than end 80 (for one port, write a number)");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    protocols: [{tcp: {destinationPort: {number: 1, range: {start: 1, end: 2}}}}]}]\n",
		   "t.yaml:9:41: spec.ingress[0].protocols[0].tcp.destinationPort: destinationPort has "
		   "both number and range; it takes exactly one of number, range");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    protocols: [{destinationNamedPort: Web}]}]\n",
		   "t.yaml:9:40: spec.ingress[0].protocols[0].destinationNamedPort: invalid port name "
		   "\"Web\": a port name is 1-15 lowercase letters, digits and '-', with at least one "
		   "letter and no '-' at either end or twice in a row");
	expect_one(CNP "  ingress: [{action: Deny, from: " ALL ", ports: [{port: 80}]}]\n",
		   "t.yaml:8:54: spec.ingress[0]: a ClusterNetworkPolicy rule matches ports with "
		   "protocols (ports is the v1alpha1 field)");
	expect_one(ANP "  ingress: [{action: Deny, from: " ALL ", protocols: [{tcp: {}}]}]\n",
		   "t.yaml:7:54: spec.ingress[0]: an AdminNetworkPolicy or BaselineAdminNetworkPolicy "
		   "rule matches ports with ports (protocols is ClusterNetworkPolicy's field)");
	expect_one(ANP "  ingress: [{action: Deny, from: " ALL ", ports: [{portNumber: {protocol: TCP}}]}]\n",
		   "t.yaml:7:75: spec.ingress[0].ports[0].portNumber: port is required");
	expect_one(ANP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    ports: [{portRange: {protocol: tcp, start: 1, end: 2}}]}]\n",
		   "t.yaml:8:36: spec.ingress[0].ports[0].portRange.protocol: unknown protocol \"tcp\" "
		   "(allowed: TCP, UDP, SCTP)");
	expect_one(BANP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    ports: [{portRange: {start: 5, end: 5}}]}]\n",
		   "t.yaml:7:41: spec.ingress[0].ports[0].portRange: start 5 must be less than end 5 "
		   "(for one port, write a number)");
	expect_one(BANP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    ports: [{portRange: {start: 1}}]}]\n",
		   "t.yaml:7:25: spec.ingress[0].ports[0].portRange: end is required");
	expect_one(ANP "  ingress: [{action: Deny, from: " ALL ",\n"
		   "    ports: [{namedPort: http, portNumber: {port: 80}}]}]\n",
		   "t.yaml:8:13: spec.ingress[0].ports[0]: a port has both portNumber and namedPort; "
		   "it takes exactly one of portNumber, portRange, namedPort");
}

static void test_rules(void)
{
	char name[160];

	memset(name, 'x', 101);
	name[101] = '\0';
	{
		char text[1024];

		snprintf(text, sizeof(text), CNP "  ingress: [{name: %s, action: Deny, from: " ALL "}]\n",
			 name);
		expect_one(text, "t.yaml:8:20: spec.ingress[0].name: a rule's name is at most 100 "
			   "characters (this one has 101)");
	}
	expect_one(CNP "  ingress: [{acton: Deny, action: Deny, from: " ALL "}]\n",
		   "t.yaml:8:14: spec.ingress[0]: unknown field \"acton\" (allowed: name, action, from, "
		   "protocols)");
	expect_one(CNP "  egress: [{action: Deny, from: " ALL "}]\n",
		   "t.yaml:8:27: spec.egress[0]: an egress rule says to (from is for ingress rules)");
	expect_one(ANP "  ingress: [{action: Deny, to: " ALL "}]\n",
		   "t.yaml:7:28: spec.ingress[0]: an ingress rule says from (to is for egress rules)");
	expect_one(ANP "  tier: Admin\n",
		   "t.yaml:7:3: spec: an AdminNetworkPolicy has no tier: it is the Admin tier");
	expect_one(BANP "  priority: 3\n",
		   "t.yaml:6:3: spec: a BaselineAdminNetworkPolicy has no priority: it comes after "
		   "every ClusterNetworkPolicy of the Baseline tier");
	expect_one(V1 "kind: BaselineAdminNetworkPolicy\nmetadata: {name: base}\nspec:\n"
		   "  subject: {namespaces: {}}\n",
		   "t.yaml:3:18: metadata: a BaselineAdminNetworkPolicy must be named \"default\" "
		   "(one per cluster)");
}

/* Text of a rule list of n items, each from item, into buf. */
static const char *repeat(char *buf, size_t len, const char *head, const char *item, size_t n,
			  const char *tail)
{
	size_t off = snprintf(buf, len, "%s", head);

	for (size_t i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", item);
	snprintf(buf + off, len - off, "%s", tail);
	return buf;
}

/* The API's MaxItems: 25 in a ClusterNetworkPolicy, 100 in v1alpha1; 25 networks always. */
static void test_limits(void)
{
	static char buf[32768];
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	expect_one(repeat(buf, sizeof(buf), CNP "  ingress: [", "{action: Deny, from: " ALL "}", 26,
			  "]\n"), "t.yaml:8:12: spec.ingress: has 26 rules; the API allows at most 25");
	expect_one(repeat(buf, sizeof(buf), CNP "  egress: [{action: Deny, to: [",
			  "{namespaces: {}}", 26, "]}]\n"),
		   "t.yaml:8:31: spec.egress[0].to: has 26 peers; the API allows at most 25");
	expect_one(repeat(buf, sizeof(buf), CNP "  egress: [{action: Deny, to: " ALL ", protocols: [",
			  "{tcp: {destinationPort: {number: 1}}}", 26, "]}]\n"),
		   "t.yaml:8:62: spec.egress[0].protocols: has 26 protocols; the API allows at most 25");
	expect_one(repeat(buf, sizeof(buf), ANP "  ingress: [", "{action: Deny, from: " ALL "}", 101,
			  "]\n"), "t.yaml:7:12: spec.ingress: has 101 rules; the API allows at most 100");
	expect_one(repeat(buf, sizeof(buf), ANP "  ingress: [{action: Deny, from: " ALL ", ports: [",
			  "{portNumber: {port: 1}}", 101, "]}]\n"),
		   "t.yaml:7:61: spec.ingress[0].ports: has 101 ports; the API allows at most 100");
	/* 100 rules and 100 ports are fine in v1alpha1; 25 peers are fine in v1alpha2 */
	repeat(buf, sizeof(buf), ANP "  ingress: [", "{action: Deny, from: " ALL "}", 100, "]\n");
	CHECK(moat_policy_set_parse("t.yaml", buf, strlen(buf), &ps, &d) == 0 && d.n == 0);
	moat_policy_set_free(ps);
	repeat(buf, sizeof(buf), CNP "  egress: [{action: Deny, to: [", "{namespaces: {}}", 25, "]}]\n");
	CHECK(moat_policy_set_parse("t.yaml", buf, strlen(buf), &ps, &d) == 0 && d.n == 0);
	moat_policy_set_free(ps);
	{
		char nets[2048];
		size_t off = 0;

		for (int i = 0; i < 26; i++)
			off += snprintf(nets + off, sizeof(nets) - off, "%s10.%d.0.0/16", i ? ", " : "", i);
		snprintf(buf, sizeof(buf), CNP "  egress: [{action: Deny, to: [{networks: [%s]}]}]\n",
			 nets);
		expect_one(buf, "t.yaml:8:43: spec.egress[0].to[0].networks: has 26 CIDRs; the API "
			   "allows at most 25");
	}
}

/* Names are unique per kind; a bad policy beside good ones and a NetworkPolicy: nothing loads. */
static void test_all_or_nothing(void)
{
	const char *text = CNP "---\n" CNP "---\n" ANP "---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
		"spec: {podSelector: {}}\n---\n" BASE "  ingress: [{action: Pass, from: " ALL "}]\n";
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;

	CHECK(moat_policy_set_parse("m.yaml", text, strlen(text), &ps, &d) == -EINVAL);
	CHECK(ps == NULL);
	CHECK(d.n == 3);
	CHECK_DIAG(&d, "m.yaml:9:1: ClusterNetworkPolicy p is defined twice (first at m.yaml:1:1)");
	CHECK_DIAG(&d, "m.yaml:29:1: ClusterNetworkPolicy p is defined twice (first at m.yaml:1:1)");
	CHECK_DIAG(&d, "m.yaml:36:22: spec.ingress[0].action: Pass is for the Admin tier: in the "
		   "Baseline tier it could only skip to the default, which allows; write Accept");
	moat_diags_free(&d);
	text = BANP "---\n" BANP;
	CHECK(moat_policy_set_parse("m.yaml", text, strlen(text), &ps, &d) == -EINVAL);
	only_diag(&d, "m.yaml:7:1: BaselineAdminNetworkPolicy default is defined twice (first at "
		  "m.yaml:1:1)");
}

int main(void)
{
	test_spec();
	test_actions();
	test_peers();
	test_domains();
	test_ports();
	test_rules();
	test_limits();
	test_all_or_nothing();
	return check_done();
}
