/*
 * What Moat keeps in etcd, in one place: the keys and the JSON of each value. Pure (no I/O,
 * no logging), so that every decoder can be fuzzed; what another node wrote is hostile
 * until a decoder here has taken it.
 *
 * Keys, under a prefix (default /moat/v1/):
 *   nodes/NODE                 the node record, kept when the node goes: its host id and
 *                              container subnets (managed by every node, so that addresses
 *                              of a departed node's endpoints fail closed)
 *                              {"node", "host", "subnets": ["10.1.0.0/24", ...]}
 *   alive/NODE                 bound to the node's lease, put again at each keepalive:
 *                              {"host", "lease": "ID", "ttl", "heard": unix ms,
 *                               "policy_revision", "endpoints"}
 *   endpoints/NODE/NS/NAME     one per endpoint, bound to the node's lease:
 *                              {"name", "namespace", "labels": {K: V}, "ips": [ADDR],
 *                               "ports": {NAME: "80/tcp"}, "host_network"?: true}
 *   policies                   the checked policy set, whole (applied atomically; its
 *                              mod_revision is the policy revision):
 *                              {"files": [{"name", "text"}], "pushed_at"?: unix ms}
 * NODE is a DNS-like name ([A-Za-z0-9][A-Za-z0-9._-]*, at most WIRE_MAX_NAME bytes); NS
 * and NAME hold no '/' and are at most WIRE_MAX_NAME bytes. Numbers may be JSON numbers or
 * strings of digits.
 *
 * Each decoder returns 0, -EINVAL with why in err (errlen bytes; for the log and the count
 * of refused keys), or -ENOMEM. Out-parameters are set only on success.
 */
#ifndef MOAT_CLUSTER_WIRE_H
#define MOAT_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"
#include "moat/policy.h"

#define WIRE_DEFAULT_PREFIX "/moat/v1/"
#define WIRE_MAX_NAME 253
#define WIRE_MAX_HOST 64
/* An endpoint's value: bounds that keep one hostile key from costing every node much. */
#define WIRE_MAX_ENDPOINT (64u << 10)
#define WIRE_MAX_LABELS 256
#define WIRE_MAX_IPS 64
#define WIRE_MAX_PORTS 256
#define WIRE_MAX_SUBNETS 256
/* The policy set: etcd's default --max-request-bytes is 1.5 MiB. */
#define WIRE_MAX_POLICIES (1536u << 10)

enum wire_key_kind { WIRE_KEY_NODE, WIRE_KEY_ALIVE, WIRE_KEY_ENDPOINT, WIRE_KEY_POLICIES };

struct wire_key {
	enum wire_key_kind kind;
	char node[WIRE_MAX_NAME + 1];	/* NODE, ALIVE, ENDPOINT */
	char ns[WIRE_MAX_NAME + 1];	/* ENDPOINT */
	char name[WIRE_MAX_NAME + 1];	/* ENDPOINT */
};

/* wire_name_ok - may s be a node name? */
bool wire_name_ok(const char *s);

/*
 * wire_key_parse - key (len bytes) under prefix into *out. -EINVAL when it is not one of
 * ours as above (another program's key under the prefix, or a malformed one).
 */
int wire_key_parse(const char *prefix, const char *key, size_t len, struct wire_key *out);

/* wire_key_format - k's key under prefix into buf. 0, or -ENAMETOOLONG, or -EINVAL (a name
 * that cannot be a segment: empty, '/', too long). */
int wire_key_format(const char *prefix, const struct wire_key *k, char *buf, size_t len);

/*
 * wire_endpoint_encode - e's value (name, namespace, labels, ips, named ports; never its
 * host interfaces or MACs). A new string, or NULL with why in err: over the bounds above
 * (another node would refuse it), or ENOMEM.
 */
char *wire_endpoint_encode(const struct moat_endpoint *e, char *err, size_t errlen);

/* A decoded endpoint of another node; e's arrays and strings are owned by it. */
struct wire_endpoint {
	struct moat_endpoint e;		/* e.name is "NAME@NODE", e.node NODE */
};

/*
 * wire_endpoint_decode - the value of key k (an ENDPOINT key; val len bytes). The value's
 * name and namespace must be the key's; labels must be strings, at most WIRE_MAX_LABELS;
 * ips addresses, at most WIRE_MAX_IPS; ports NAME: "PORT/PROTO". Free with
 * wire_endpoint_free.
 */
int wire_endpoint_decode(const struct wire_key *k, const char *val, size_t len,
			 struct wire_endpoint *out, char *err, size_t errlen);

/* wire_endpoint_free - what w holds. */
void wire_endpoint_free(struct wire_endpoint *w);

/* A node record. */
struct wire_node {
	char host[WIRE_MAX_HOST + 1];
	struct moat_cidr *subnets;	/* owned */
	size_t nsubnets;
};

/* wire_node_encode - the record of node. A new string or NULL (ENOMEM). */
char *wire_node_encode(const char *node, const struct wire_node *n);

/* wire_node_decode - the record under nodes/NODE (val len bytes); its "node" must be NODE.
 * Free with wire_node_free. */
int wire_node_decode(const char *node, const char *val, size_t len, struct wire_node *out,
		     char *err, size_t errlen);

/* wire_node_free - what n holds. */
void wire_node_free(struct wire_node *n);

/* A node's heartbeat, under alive/NODE. */
struct wire_alive {
	char host[WIRE_MAX_HOST + 1];
	int64_t lease, ttl, heard_ms, policy_rev, endpoints;
};

/* wire_alive_encode - a new string or NULL (ENOMEM). */
char *wire_alive_encode(const struct wire_alive *a);

/* wire_alive_decode - val (len bytes) into *out. */
int wire_alive_decode(const char *val, size_t len, struct wire_alive *out, char *err,
		      size_t errlen);

/* wire_policies_encode - the policy set's files as the value of policies; pushed_ms: when.
 * A new string, or NULL (ENOMEM). */
char *wire_policies_encode(const struct moat_policy_files *f, int64_t pushed_ms);

/*
 * wire_policies_decode - the files of the value of policies (val len bytes, at most
 * WIRE_MAX_POLICIES). Whether they hold valid policies is moat_policy_set_parse_files's to
 * say. Free with moat_policy_files_free.
 */
int wire_policies_decode(const char *val, size_t len, struct moat_policy_files *out,
			 char *err, size_t errlen);

#endif
