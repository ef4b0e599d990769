/*
 * The policy model: Kubernetes networking.k8s.io/v1 NetworkPolicy and Namespace documents,
 * parsed from YAML with source positions. No sockets, no globals.
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
 * destination endpoint's named ports (proto must match too). Otherwise port == 0 means
 * every port of proto, and end_port (>= port) closes a range; end_port == port for one port.
 */
struct moat_port {
	uint8_t proto;		/* IPPROTO_TCP (default), IPPROTO_UDP, IPPROTO_SCTP */
	uint16_t port, end_port;
	char *name;
	struct moat_pos pos;
};

enum moat_peer_kind { MOAT_PEER_PODS, MOAT_PEER_IPBLOCK };

/*
 * A from/to peer. PODS: has_pod/has_ns tell which selectors were written; with only a
 * podSelector the peer is limited to the policy's own namespace; with a namespaceSelector
 * (alone or together with a podSelector) to the namespaces it selects.
 * IPBLOCK: cidr minus every except.
 */
struct moat_peer {
	enum moat_peer_kind kind;
	bool has_pod, has_ns;
	struct moat_selector pod, ns;
	struct moat_cidr cidr;
	struct moat_cidr *except;
	size_t nexcept;
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

/* moat_policy_set_free - NULL-safe. */
void moat_policy_set_free(struct moat_policy_set *ps);

/* moat_selector_match - does sel select labels? An empty selector selects all. */
bool moat_selector_match(const struct moat_selector *sel, const struct moat_labels *labels);

/* moat_labels_get - the value of key, or NULL. labels must be sorted (as everywhere here). */
const char *moat_labels_get(const struct moat_labels *labels, const char *key);

/* moat_labels_sort - sort labels built by hand by key, as every moat_labels must be.
 * Returns 0, or -EINVAL when a key repeats (the order is then sorted but the set invalid). */
int moat_labels_sort(struct moat_labels *labels);

/* moat_cidr_parse - "10.0.0.0/8" or "fd00::/64" into *out; host bits must be zero.
 * Returns 0 or -EINVAL (*out untouched). */
int moat_cidr_parse(const char *s, struct moat_cidr *out);

/* moat_cidr_format - "10.0.0.0/8" into buf (at least 50 bytes); returns buf. */
char *moat_cidr_format(const struct moat_cidr *c, char *buf, size_t len);

/* moat_cidr_contains - is inner within outer (same family, inner no wider)? */
bool moat_cidr_contains(const struct moat_cidr *outer, const struct moat_cidr *inner);

#endif
