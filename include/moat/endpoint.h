/*
 * Endpoints: the containers (or plain namespaces) policies select, as the daemon sees them
 * live or as an endpoints file describes them offline. Same shape either way.
 */
#ifndef MOAT_ENDPOINT_H
#define MOAT_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/errors.h"
#include "moat/policy.h"

/* One address. AF_INET uses a[0..3]. */
struct moat_addr {
	uint8_t family;
	uint8_t a[16];
};

struct moat_named_port {
	char *name;
	uint8_t proto;
	uint16_t port;
};

/*
 * A port the node publishes for an endpoint (docker run -p): a connection to host_port of
 * the node reaches port of the endpoint, by the runtime's NAT or through its proxy.
 */
struct moat_published {
	uint8_t proto;		/* IPPROTO_TCP, _UDP or _SCTP */
	uint16_t host_port, port;
};

struct moat_endpoint {
	char *name;		/* unique within its namespace */
	char *namespace;	/* never NULL; "default" when not given */
	struct moat_labels labels;
	struct moat_addr *ips;
	size_t nips;
	struct moat_named_port *ports;
	size_t nports;
	char **ifaces;		/* host-side interfaces (veths) its traffic enters by */
	size_t nifaces;
	uint8_t (*macs)[6];	/* NULL, or per iface the MAC of the container's side (all
				 * zero: unknown); frames from that iface must carry it */
	bool host_network;	/* shares the node's namespace: listed, never segmented */
	char *node;		/* the node it runs on when that is another node's (NULL: here) */
	char *unenforced;	/* why Moat cannot enforce its own traffic here (a network whose
				 * traffic never crosses the host's hooks), or NULL; it is still
				 * selected and its addresses still tell peers apart */
	struct moat_published *published;	/* ports the node publishes for it, sorted */
	size_t npublished;
};

struct arena;

/* Owns every endpoint and namespace in it. */
struct moat_endpoint_set {
	struct moat_endpoint *v;
	size_t n, cap;
	struct moat_namespace *nss;
	size_t nnss, nss_cap;
	struct moat_cidr *subnets;	/* the endpoints file's subnets: Moat manages them (in moatd
					 * an address there that no endpoint has fails closed) */
	size_t nsubnets;
	size_t ndel;		/* endpoints removed so far: their memory stays in mem */
	uint32_t *index;	/* private to moat_endpoint_set_add/_find: (namespace, name) ->
				 * 1 + position, open addressing; NULL in a set built by hand */
	size_t index_cap;
	struct arena *mem;	/* private: what the endpoints and namespaces hold, freed at once
				 * (a set of 1,000 endpoints is some 10,000 small objects) */
};

/*
 * moat_endpoint_set_load - read an endpoints file:
 *   namespaces: {NAME: {LABEL: VALUE}}            optional
 *   subnets: [CIDR]                               optional: where the endpoints live
 *   endpoints: [{name, namespace, labels, ips, ports: {NAME: PORT/PROTO}, ifaces, macs}]
 * macs (optional) gives, per entry of ifaces and in its order, the unicast MAC of the
 * container's side ("02:42:ac:11:00:02" or 02-42-ac-11-00-02; quote it in [...]); it sets
 * e->macs, which stays NULL without it.
 * Returns 0 and sets *out, or -EINVAL/-errno with problems in diags (file:line:col).
 * Duplicate namespace/name pairs are an error. Free with moat_endpoint_set_free.
 */
int moat_endpoint_set_load(const char *path, struct moat_endpoint_set **out,
			   struct moat_diags *diags);

/* moat_endpoint_set_parse - as _load, from memory. */
int moat_endpoint_set_parse(const char *name, const char *buf, size_t len,
			    struct moat_endpoint_set **out, struct moat_diags *diags);

/* moat_endpoint_set_new - an empty set, or NULL on ENOMEM. */
struct moat_endpoint_set *moat_endpoint_set_new(void);

/*
 * moat_endpoint_set_add - append a deep copy of e (labels are sorted on the way in; a NULL
 * namespace becomes "default"). Returns 0 or -ENOMEM, -EEXIST for a duplicate name.
 */
int moat_endpoint_set_add(struct moat_endpoint_set *set, const struct moat_endpoint *e);

/* moat_endpoint_set_add_namespace - add or replace a namespace's labels (deep copy). */
int moat_endpoint_set_add_namespace(struct moat_endpoint_set *set, const char *name,
				    const struct moat_labels *labels);

/* moat_endpoint_set_find - index of namespace/name, or -1. */
long moat_endpoint_set_find(const struct moat_endpoint_set *set, const char *ns,
			    const char *name);

/*
 * moat_endpoint_set_copy_in - deep copies of e[0..n) in the set's memory, into out (the
 * caller's array), for moat_endpoint_set_change; a namespace the set does not have yet is
 * added. Makes the room that change needs, so it cannot fail. 0, -EINVAL (an endpoint
 * without a name) or -ENOMEM. Names are not checked for duplicates: the caller knows.
 */
int moat_endpoint_set_copy_in(struct moat_endpoint_set *set, const struct moat_endpoint *e,
			      size_t n, struct moat_endpoint *out);

/*
 * moat_endpoint_set_change - remove the endpoints at gone[0..ngone) (indexes in descending
 * order: each hole is filled by the last endpoint), then append come[0..ncome) (copies from
 * moat_endpoint_set_copy_in). A plan compiled from the set follows with
 * moat_plan_delta_commit. Cannot fail.
 */
void moat_endpoint_set_change(struct moat_endpoint_set *set, const size_t *gone, size_t ngone,
			      const struct moat_endpoint *come, size_t ncome);

/* moat_endpoint_set_stale - removed endpoints hold more memory than the set is worth keeping:
 * build it anew at the next quiet moment. */
bool moat_endpoint_set_stale(const struct moat_endpoint_set *set);

/* moat_endpoint_equal - the same in every field (both with labels sorted). */
bool moat_endpoint_equal(const struct moat_endpoint *a, const struct moat_endpoint *b);

/* moat_endpoint_set_free - NULL-safe. */
void moat_endpoint_set_free(struct moat_endpoint_set *set);

/* moat_addr_parse - "10.1.0.5" or "fd00::5" into a; 0 or -EINVAL. */
int moat_addr_parse(const char *s, struct moat_addr *a);

/* moat_addr_cmp - the qsort/bsearch order of struct moat_addr: family, then address. */
int moat_addr_cmp(const void *a, const void *b);

/* moat_addr_format - into buf (at least 46 bytes); returns buf. */
char *moat_addr_format(const struct moat_addr *a, char *buf, size_t len);

#endif
