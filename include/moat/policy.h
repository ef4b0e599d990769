/*
 * The policy model: Kubernetes networking.k8s.io/v1 NetworkPolicy and Namespace documents,
 * and the cluster-wide tiers of policy.networking.k8s.io (ClusterNetworkPolicy,
 * AdminNetworkPolicy, BaselineAdminNetworkPolicy), parsed from YAML with source positions.
 * No sockets, no globals.
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/errors.h"

/* Where a YAML node started. file points into the owning set and lives as long as it. */
struct moat_pos {
	const char *file;
	unsigned line, col;
};

struct moat_label {
	char *key, *value;
};

/* Sorted by key, keys unique. */
struct moat_labels {
	struct moat_label *v;
	size_t n;
};

enum moat_sel_op { MOAT_SEL_IN, MOAT_SEL_NOT_IN, MOAT_SEL_EXISTS, MOAT_SEL_DOES_NOT_EXIST };

struct moat_sel_expr {
	char *key;
	enum moat_sel_op op;
	char **values;
	size_t nvalues;
};

/* matchLabels AND every matchExpression. An empty selector selects everything. */
struct moat_selector {
	struct moat_labels match;
	struct moat_sel_expr *exprs;
	size_t nexprs;
};

/* An address or prefix. AF_INET uses addr[0..3]; host bits beyond plen are zero. */
struct moat_cidr {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t plen;
	uint8_t addr[16];
};

/*
 * One entry of a rule's ports list. name != NULL: a named port, resolved against the
 * destination endpoint's named ports (proto must match too; proto 0, only in cluster-wide
 * policies, whose destinationNamedPort has no protocol: the named port's own protocol).
 * Otherwise port == 0 means every port of proto, and end_port (>= port) closes a range;
 * end_port == port for one port.
 */
struct moat_port {
	uint8_t proto;		/* IPPROTO_TCP (default), IPPROTO_UDP, IPPROTO_SCTP; 0: see above */
	uint16_t port, end_port;
	char *name;
	struct moat_pos pos;
};

enum moat_peer_kind { MOAT_PEER_PODS, MOAT_PEER_IPBLOCK, MOAT_PEER_DOMAIN };

/*
 * A from/to peer. PODS: has_pod/has_ns tell which selectors were written; with only a
 * podSelector the peer is limited to the policy's own namespace; with a namespaceSelector
 * (alone or together with a podSelector) to the namespaces it selects.
 * IPBLOCK: cidr minus every except.
 * DOMAIN (cluster-wide policies only): the addresses domain resolves to, as the endpoint
 * itself resolved it; domain is lowercase without a final dot, "*.example.com" for every
 * name under example.com (not example.com itself).
 * Cluster-wide policies' peers always have has_ns (namespaces: has_ns alone; pods: both),
 * an IPBLOCK without except for each CIDR of networks, a DOMAIN for each of domainNames.
 */
struct moat_peer {
	enum moat_peer_kind kind;
	bool has_pod, has_ns;
	struct moat_selector pod, ns;
	struct moat_cidr cidr;
	struct moat_cidr *except;
	size_t nexcept;
	char *domain;
	struct moat_pos pos;
};

/* npeers == 0: every peer. nports == 0: every port of every protocol. */
struct moat_rule {
	struct moat_peer *peers;
	size_t npeers;
	struct moat_port *ports;
	size_t nports;
	struct moat_pos pos;
};

enum moat_mode { MOAT_MODE_ENFORCE, MOAT_MODE_MONITOR };

/* Annotation that sets a policy's mode ("enforce" or "monitor"). */
#define MOAT_MODE_ANNOTATION "moat.io/mode"
/* Compose's service label, which the composeService selector shorthand expands to. */
#define MOAT_COMPOSE_SERVICE_LABEL "com.docker.compose.service"
#define MOAT_COMPOSE_PROJECT_LABEL "com.docker.compose.project"
/* The label that puts a container in a namespace; "default" without it. */
#define MOAT_NAMESPACE_LABEL "io.kubernetes.pod.namespace"
#define MOAT_DEFAULT_NAMESPACE "default"

struct moat_netpol {
	char *name, *namespace;
	struct moat_selector target;	/* spec.podSelector */
	bool isolates_in, isolates_out;	/* policyTypes, with Kubernetes' defaults applied */
	struct moat_rule *in, *out;
	size_t nin, nout;
	enum moat_mode mode;
	struct moat_pos pos;
};

/*
 * Cluster-wide policies: policy.networking.k8s.io ClusterNetworkPolicy (v1alpha2), and
 * AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1), which mean the same as the
 * ClusterNetworkPolicy they map to. One model for the three; kind says which document a
 * policy came from (for messages and names only).
 *
 * A direction of a connection (the source's egress, the destination's ingress) is decided
 * by the first of: the Admin tier, NetworkPolicy, the Baseline tier, allow. In a tier, the
 * policies whose subject selects the endpoint on that side are taken in moat_policy_set
 * order (priority, then name, then kind) and their rules for that direction in written
 * order; the first rule whose peers and ports match decides: ACCEPT allows and DENY denies
 * the direction, final; PASS (Admin tier only) goes on to NetworkPolicy. NetworkPolicy
 * decides for an endpoint it isolates in that direction, as without tiers; for any other the
 * Baseline tier is next. moat-policy(5) (TIERS) says it all, with the choices the API leaves
 * open; tests/fuzz/model.h (tier_decide) is the reference a compiler is held to.
 */
enum moat_tier { MOAT_TIER_ADMIN, MOAT_TIER_BASELINE };

enum moat_action { MOAT_ACTION_ACCEPT, MOAT_ACTION_DENY, MOAT_ACTION_PASS };

enum moat_cnp_kind {
	MOAT_CNP_CLUSTER,	/* ClusterNetworkPolicy, policy.networking.k8s.io/v1alpha2 */
	MOAT_CNP_ADMIN,		/* AdminNetworkPolicy, v1alpha1: tier Admin, Allow = ACCEPT */
	MOAT_CNP_BASELINE,	/* BaselineAdminNetworkPolicy, v1alpha1: tier Baseline, the
				 * singleton "default", after every Baseline ClusterNetworkPolicy */
};

/* The priority a BaselineAdminNetworkPolicy (which has none) sorts at: after 0-1000. */
#define MOAT_CNP_BANP_PRIORITY 1001u
#define MOAT_CNP_MAX_PRIORITY 1000u

/*
 * A rule. name: "" when not written. npeers >= 1 (the API requires a peer; each CIDR of
 * networks and each domain name is a peer of its own). nports == 0: every port of every
 * protocol (ICMP included); otherwise the ports, as for NetworkPolicy (a named port may have
 * proto 0). A DOMAIN peer appears only in an egress ACCEPT rule without named ports.
 */
struct moat_cnp_rule {
	char *name;
	enum moat_action action;
	struct moat_peer *peers;
	size_t npeers;
	struct moat_port *ports;
	size_t nports;
	struct moat_pos pos;
};

/*
 * subject: the endpoints whose traffic the policy's rules decide, never host-network ones.
 * subject_pods false (subject.namespaces): every endpoint of the namespaces subject_ns
 * selects; true (subject.pods): those of them that subject_pod also selects.
 */
struct moat_cnp {
	char *name;
	enum moat_cnp_kind kind;
	enum moat_tier tier;
	unsigned priority;	/* 0 (first) to 1000; MOAT_CNP_BANP_PRIORITY for a BANP */
	bool subject_pods;
	struct moat_selector subject_ns, subject_pod;
	struct moat_cnp_rule *in, *out;
	size_t nin, nout;
	enum moat_mode mode;	/* moat.io/mode; MONITOR: the policy takes no part in what is
				 * dropped, what it would deny is reported (moat-policy(5)) */
	struct moat_pos pos;
};

struct moat_namespace {
	char *name;
	struct moat_labels labels;
	struct moat_pos pos;
};

/* Everything loaded from a set of files. Owns all memory reachable from it. */
struct moat_policy_set {
	struct moat_netpol *pols;
	size_t npols;
	struct moat_namespace *nss;
	size_t nnss;
	struct moat_cnp *cnps;	/* in evaluation order: the Admin tier, then the Baseline tier;
				 * in each, by priority, then name, then kind (CLUSTER first) */
	size_t ncnps;
	void *priv;		/* allocator state; not for callers */
};

/* Hard limits that keep hostile input bounded. */
#define MOAT_POLICY_MAX_FILE_BYTES (4u << 20)
#define MOAT_POLICY_MAX_NODES 1000000u

/*
 * moat_policy_set_load - parse and check files and directories (*.yaml, *.yml in a
 * directory, not recursive, in name order).
 * All or nothing: returns 0 and sets *out only when every file is valid; otherwise returns
 * -EINVAL (or -errno for I/O) and every problem is in diags with file:line:col. A file of
 * only comments is a valid empty set. The caller frees *out with moat_policy_set_free.
 */
int moat_policy_set_load(const char *const *paths, size_t npaths, struct moat_policy_set **out,
			 struct moat_diags *diags);

/* moat_policy_set_parse - as _load, for one in-memory buffer named name (for fuzzing, tests). */
int moat_policy_set_parse(const char *name, const char *buf, size_t len,
			  struct moat_policy_set **out, struct moat_diags *diags);

/* The files of a policy set as text: what moat_policy_set_load reads, kept to be sent whole
 * (moat policy push) and parsed elsewhere. */
struct moat_policy_file {
	char *name;		/* the path it was read from */
	char *text;		/* len bytes, NUL-terminated */
	size_t len;
};

struct moat_policy_files {
	struct moat_policy_file *v;
	size_t n;
};

/*
 * moat_policy_files_read - read paths as moat_policy_set_load does (a directory's *.yaml and
 * *.yml in name order), without parsing. 0 and *out (free with moat_policy_files_free), or
 * -errno with the problems in diags.
 */
int moat_policy_files_read(const char *const *paths, size_t npaths, struct moat_policy_files *out,
			   struct moat_diags *diags);

/*
 * moat_policy_set_parse_files - as moat_policy_set_load, from files in memory (each named by
 * its name in diags). All or nothing, the same checks.
 */
int moat_policy_set_parse_files(const struct moat_policy_files *f, struct moat_policy_set **out,
				struct moat_diags *diags);

/* moat_policy_files_free - what f holds; f is empty after. */
void moat_policy_files_free(struct moat_policy_files *f);

/* moat_policy_set_free - NULL-safe. */
void moat_policy_set_free(struct moat_policy_set *ps);

/* moat_cnp_kind_name - "ClusterNetworkPolicy", "AdminNetworkPolicy" or
 * "BaselineAdminNetworkPolicy". */
const char *moat_cnp_kind_name(enum moat_cnp_kind kind);

/* moat_cnp_action_name - the action as kind's documents spell it ("Accept" in a
 * ClusterNetworkPolicy, "Allow" in the v1alpha1 kinds; "Deny", "Pass"). */
const char *moat_cnp_action_name(enum moat_cnp_kind kind, enum moat_action action);

/*
 * moat_domain_match - does a domainNames pattern (as struct moat_peer holds it) match name, a
 * name a resolver was asked for (any case, with or without its final dot)? "example.com"
 * matches that name only, "*.example.com" every name under example.com, not example.com.
 */
bool moat_domain_match(const char *pattern, const char *name);

/* moat_tier_name - "Admin" or "Baseline". */
const char *moat_tier_name(enum moat_tier tier);

/*
 * moat_cnp_rule_format - how flows, alerts and metrics name rule (an index into c's in, or
 * out when egress): "<tier>/<policy>/<rule name>", "#<index>" for a rule without a name, into
 * buf (at least 400 bytes for any name). Returns buf.
 */
char *moat_cnp_rule_format(const struct moat_cnp *c, bool egress, uint32_t rule, char *buf,
			   size_t len);

/* moat_selector_match - does sel select labels? An empty selector selects all. */
bool moat_selector_match(const struct moat_selector *sel, const struct moat_labels *labels);

/* moat_labels_get - the value of key, or NULL. labels must be sorted (as everywhere here). */
const char *moat_labels_get(const struct moat_labels *labels, const char *key);

/* moat_labels_equal - the same keys with the same values (both sorted, as everywhere). */
bool moat_labels_equal(const struct moat_labels *a, const struct moat_labels *b);

/* moat_labels_sort - sort labels built by hand by key, as every moat_labels must be.
 * Returns 0, or -EINVAL when a key repeats (the order is then sorted but the set invalid). */
int moat_labels_sort(struct moat_labels *labels);

/* moat_cidr_parse - "10.0.0.0/8" or "fd00::/64" into *out; host bits must be zero.
 * Returns 0 or -EINVAL (*out untouched). */
int moat_cidr_parse(const char *s, struct moat_cidr *out);

/* moat_cidr_parse_masked - the same, with host bits cleared rather than refused (as a runtime
 * may report a subnet: "172.17.0.1/16"); s may be NULL. Returns 0 or -EINVAL. */
int moat_cidr_parse_masked(const char *s, struct moat_cidr *out);

/* moat_cidr_format - "10.0.0.0/8" into buf (at least 50 bytes); returns buf. */
char *moat_cidr_format(const struct moat_cidr *c, char *buf, size_t len);

/* moat_cidr_contains - is inner within outer (same family, inner no wider)? */
bool moat_cidr_contains(const struct moat_cidr *outer, const struct moat_cidr *inner);

#endif
