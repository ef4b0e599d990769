/*
 * Endpoint sets: the builders (deep copies, labels sorted, every namespace present and
 * labelled kubernetes.io/metadata.name) and the offline endpoints file that fills one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "moat/endpoint.h"
#include "moat/grow.h"
#include "moat/hash.h"
#include "ports.h"
#include "selector.h"
#include "yaml.h"

#define NAMESPACE_NAME_LABEL "kubernetes.io/metadata.name"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- addresses ---- */

int moat_addr_parse(const char *s, struct moat_addr *a)
{
	struct moat_addr r = { .family = strchr(s, ':') ? AF_INET6 : AF_INET };

	if (inet_pton(r.family, s, r.a) != 1)
		return -EINVAL;
	*a = r;
	return 0;
}

int moat_addr_cmp(const void *a, const void *b)
{
	const struct moat_addr *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16);
}

char *moat_addr_format(const struct moat_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->a, buf, len) && len)
		buf[0] = '\0';
	return buf;
}

/* ---- the set ---- */

struct moat_endpoint_set *moat_endpoint_set_new(void)
{
	struct moat_endpoint_set *set = calloc(1, sizeof(*set));

	if (set && !(set->mem = arena_new())) {
		free(set);
		set = NULL;
	}
	return set;
}

void moat_endpoint_set_free(struct moat_endpoint_set *set)
{
	if (!set)
		return;
	arena_free(set->mem);
	free(set->v);
	free(set->nss);
	free(set->subnets);
	free(set->index);
	free(set);
}

/* Of namespace and name, seeded: whoever starts containers chooses them. */
static size_t key_hash(const char *ns, const char *name)
{
	return (size_t)moat_hash_fin(moat_hash_str(moat_hash_str(MOAT_HASH_BASIS ^ moat_hash_seed(),
								 ns), name));
}

static bool is_at(const struct moat_endpoint_set *set, size_t i, const char *ns, const char *name)
{
	return !strcmp(set->v[i].name, name) && !strcmp(set->v[i].namespace, ns);
}

long moat_endpoint_set_find(const struct moat_endpoint_set *set, const char *ns,
			    const char *name)
{
	if (!set->index) {
		for (size_t i = 0; i < set->n; i++)
			if (is_at(set, i, ns, name))
				return i;
		return -1;
	}
	for (size_t h = key_hash(ns, name);; h++) {
		uint32_t at = set->index[h & (set->index_cap - 1)];

		if (!at)
			return -1;
		if (is_at(set, at - 1, ns, name))
			return at - 1;
	}
}

static void index_put(struct moat_endpoint_set *set, size_t i)
{
	size_t h = key_hash(set->v[i].namespace, set->v[i].name);

	while (set->index[h & (set->index_cap - 1)])
		h++;
	set->index[h & (set->index_cap - 1)] = (uint32_t)i + 1;
}

/* Room in the index for n + 1 endpoints (at most half full, so probes stay short); the
 * first live endpoints are put again. */
static int index_grow_to(struct moat_endpoint_set *set, size_t live)
{
	size_t cap = set->index_cap ? set->index_cap : 64;
	uint32_t *index;

	if (set->index && 2 * (set->n + 1) <= set->index_cap)
		return 0;
	while (2 * (set->n + 1) > cap)
		cap *= 2;
	index = calloc(cap, sizeof(*index));
	if (!index)
		return -ENOMEM;
	free(set->index);
	set->index = index;
	set->index_cap = cap;
	for (size_t i = 0; i < live; i++)
		index_put(set, i);
	return 0;
}

/* Room in the index for one more endpoint. */
static int index_grow(struct moat_endpoint_set *set)
{
	return index_grow_to(set, set->n);
}

/* Both strings copied into mem; false on ENOMEM. */
static bool label_dup(struct arena *mem, struct moat_label *lb, const char *key,
		      const char *value)
{
	lb->key = arena_strdup(mem, key);
	lb->value = arena_strdup(mem, value ? value : "");
	return lb->key && lb->value;
}

/*
 * A sorted copy of src in the set's memory; with ns_name, the label
 * kubernetes.io/metadata.name=ns_name is set (replacing one already there).
 * -EINVAL for a repeated key, -ENOMEM.
 */
static int labels_copy(struct arena *mem, struct moat_labels *dst, const struct moat_labels *src,
		       const char *ns_name)
{
	struct moat_labels l = { .v = arena_array(mem, src->n + 1, sizeof(*l.v)) };
	int ret;

	if (!l.v)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		if (ns_name && !strcmp(src->v[i].key, NAMESPACE_NAME_LABEL))
			continue;	/* Kubernetes overwrites it; so do we */
		if (!label_dup(mem, &l.v[l.n++], src->v[i].key, src->v[i].value))
			return -ENOMEM;
	}
	if (ns_name && !label_dup(mem, &l.v[l.n++], NAMESPACE_NAME_LABEL, ns_name))
		return -ENOMEM;
	ret = moat_labels_sort(&l);
	if (!ret)
		*dst = l;
	return ret;
}

static long ns_find(const struct moat_endpoint_set *set, const char *name)
{
	for (size_t i = 0; i < set->nnss; i++)
		if (!strcmp(set->nss[i].name, name))
			return i;
	return -1;
}

int moat_endpoint_set_add_namespace(struct moat_endpoint_set *set, const char *name,
				    const struct moat_labels *labels)
{
	static const struct moat_labels none = { 0 };
	struct moat_namespace ns = { 0 };
	long i = ns_find(set, name);
	int ret = labels_copy(set->mem, &ns.labels, labels ? labels : &none, name);

	if (ret)
		return ret;
	if (i >= 0) {
		set->nss[i].labels = ns.labels;	/* the old ones stay in the set's memory */
		return 0;
	}
	ns.name = arena_strdup(set->mem, name);
	ret = ns.name ? grow((void **)&set->nss, set->nnss, &set->nss_cap, sizeof(ns)) : -ENOMEM;
	if (!ret)
		set->nss[set->nnss++] = ns;
	return ret;
}

/* A copy of the n elements of sz bytes at src in the set's memory (never NULL unless ENOMEM). */
static void *mem_dup(struct arena *mem, const void *src, size_t n, size_t sz)
{
	void *v = arena_array(mem, n ? n : 1, sz);

	if (v && n)	/* src may be NULL then, and memcpy from NULL is undefined */
		memcpy(v, src, n * sz);
	return v;
}

static int ports_copy(struct arena *mem, struct moat_endpoint *c, const struct moat_endpoint *e)
{
	c->ports = mem_dup(mem, e->ports, e->nports, sizeof(*c->ports));
	if (!c->ports)
		return -ENOMEM;
	for (size_t i = 0; i < e->nports; i++)
		if (!(c->ports[i].name = arena_strdup(mem, e->ports[i].name)))
			return -ENOMEM;
	c->nports = e->nports;
	return 0;
}

static int ifaces_copy(struct arena *mem, struct moat_endpoint *c, const struct moat_endpoint *e)
{
	c->ifaces = arena_array(mem, e->nifaces ? e->nifaces : 1, sizeof(*c->ifaces));
	if (!c->ifaces)
		return -ENOMEM;
	for (size_t i = 0; i < e->nifaces; i++)
		if (!(c->ifaces[i] = arena_strdup(mem, e->ifaces[i])))
			return -ENOMEM;
	c->nifaces = e->nifaces;
	if (e->macs && e->nifaces && !(c->macs = mem_dup(mem, e->macs, e->nifaces, sizeof(*c->macs))))
		return -ENOMEM;
	return 0;
}

/* Fills c with a deep copy of e in the set's memory. */
static int endpoint_copy(struct arena *mem, struct moat_endpoint *c, const struct moat_endpoint *e,
			 const char *ns)
{
	int ret;

	c->host_network = e->host_network;
	c->node = e->node ? arena_strdup(mem, e->node) : NULL;
	c->unenforced = e->unenforced ? arena_strdup(mem, e->unenforced) : NULL;
	if ((e->node && !c->node) || (e->unenforced && !c->unenforced))
		return -ENOMEM;
	c->name = arena_strdup(mem, e->name);
	c->namespace = arena_strdup(mem, ns);
	c->ips = mem_dup(mem, e->ips, e->nips, sizeof(*c->ips));
	if (!c->name || !c->namespace || !c->ips)
		return -ENOMEM;
	c->nips = e->nips;
	ret = labels_copy(mem, &c->labels, &e->labels, NULL);
	if (!ret)
		ret = ports_copy(mem, c, e);
	if (!ret)
		ret = ifaces_copy(mem, c, e);
	if (!ret && e->npublished &&
	    !(c->published = mem_dup(mem, e->published, e->npublished, sizeof(*c->published))))
		ret = -ENOMEM;
	if (!ret)
		c->npublished = e->npublished;
	return ret;
}

/* On failure the set is as it was, but for memory in its arena that nothing points to. */
int moat_endpoint_set_add(struct moat_endpoint_set *set, const struct moat_endpoint *e)
{
	const char *ns = e->namespace ? e->namespace : MOAT_DEFAULT_NAMESPACE;
	struct moat_endpoint c = { 0 };
	int ret;

	if (!e->name)
		return -EINVAL;
	if (moat_endpoint_set_find(set, ns, e->name) >= 0)
		return -EEXIST;
	ret = index_grow(set);
	if (!ret)
		ret = grow((void **)&set->v, set->n, &set->cap, sizeof(c));
	if (!ret)
		ret = endpoint_copy(set->mem, &c, e, ns);
	if (!ret && ns_find(set, ns) < 0)	/* every endpoint's namespace exists */
		ret = moat_endpoint_set_add_namespace(set, ns, NULL);
	if (ret)
		return ret;
	set->v[set->n] = c;
	index_put(set, set->n++);
	return 0;
}

/* ---- changes in place ---- */

/* The index slot holding position i (whose endpoint is still at i). */
static size_t index_slot(const struct moat_endpoint_set *set, size_t i)
{
	size_t h = key_hash(set->v[i].namespace, set->v[i].name);

	while (set->index[h & (set->index_cap - 1)] != i + 1)
		h++;
	return h & (set->index_cap - 1);
}

/* Empties slot k and moves later entries of its run back where probing finds them. */
static void index_clear(struct moat_endpoint_set *set, size_t k)
{
	size_t mask = set->index_cap - 1, j;

	set->index[k] = 0;
	for (j = (k + 1) & mask; set->index[j]; j = (j + 1) & mask) {
		const struct moat_endpoint *e = &set->v[set->index[j] - 1];
		size_t home = key_hash(e->namespace, e->name) & mask;

		if (k <= j ? home > k && home <= j : home > k || home <= j)
			continue;	/* still reachable from its home */
		set->index[k] = set->index[j];
		set->index[j] = 0;
		k = j;
	}
}

int moat_endpoint_set_copy_in(struct moat_endpoint_set *set, const struct moat_endpoint *e,
			      size_t n, struct moat_endpoint *out)
{
	size_t room = set->n + n;
	int ret = 0;

	if (room > set->cap)
		ret = grow((void **)&set->v, room - 1, &set->cap, sizeof(*set->v));
	for (size_t k = 0; k < n && !ret; k++) {
		const char *ns = e[k].namespace ? e[k].namespace : MOAT_DEFAULT_NAMESPACE;

		out[k] = (struct moat_endpoint){ 0 };
		ret = e[k].name ? endpoint_copy(set->mem, &out[k], &e[k], ns) : -EINVAL;
		if (!ret && ns_find(set, ns) < 0)
			ret = moat_endpoint_set_add_namespace(set, ns, NULL);
	}
	while (!ret && set->index && 2 * room > set->index_cap) {
		size_t n0 = set->n;

		set->n = room - 1;	/* index_grow sizes for n + 1 and re-puts 0..n0 only */
		ret = index_grow_to(set, n0);
		set->n = n0;
	}
	return ret;
}

void moat_endpoint_set_change(struct moat_endpoint_set *set, const size_t *gone, size_t ngone,
			      const struct moat_endpoint *come, size_t ncome)
{
	for (size_t g = 0; g < ngone; g++) {	/* descending */
		size_t i = gone[g], last = set->n - 1;

		if (set->index)
			index_clear(set, index_slot(set, i));
		if (i != last) {
			if (set->index)
				set->index[index_slot(set, last)] = i + 1;
			set->v[i] = set->v[last];
		}
		set->n--;
		set->ndel++;
	}
	for (size_t k = 0; k < ncome; k++) {
		set->v[set->n] = come[k];
		if (set->index)
			index_put(set, set->n);
		set->n++;
	}
}

bool moat_endpoint_set_stale(const struct moat_endpoint_set *set)
{
	return set->ndel > set->n + 1024;
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool moat_endpoint_equal(const struct moat_endpoint *a, const struct moat_endpoint *b)
{
	if (strcmp(a->name, b->name) || strcmp(a->namespace, b->namespace) ||
	    !str_same(a->node, b->node) || !str_same(a->unenforced, b->unenforced) ||
	    a->host_network != b->host_network || a->nips != b->nips || a->nports != b->nports ||
	    a->nifaces != b->nifaces || !a->macs != !b->macs || !moat_labels_equal(&a->labels, &b->labels) ||
	    a->npublished != b->npublished)
		return false;
	for (size_t i = 0; i < a->npublished; i++)
		if (a->published[i].proto != b->published[i].proto ||
		    a->published[i].host_port != b->published[i].host_port ||
		    a->published[i].port != b->published[i].port)
			return false;
	for (size_t i = 0; i < a->nips; i++)
		if (moat_addr_cmp(&a->ips[i], &b->ips[i]))
			return false;
	for (size_t i = 0; i < a->nports; i++)
		if (strcmp(a->ports[i].name, b->ports[i].name) || a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].port != b->ports[i].port)
			return false;
	for (size_t i = 0; i < a->nifaces; i++)
		if (strcmp(a->ifaces[i], b->ifaces[i]) ||
		    (a->macs && memcmp(a->macs[i], b->macs[i], 6)))
			return false;
	return true;
}

/* ---- the endpoints file ---- */

/* One address seen in the file, to find two endpoints claiming it. */
struct addr_use {
	struct moat_addr addr;
	const struct ynode *at;
	size_t i;
};

struct ep_file {
	struct ycheck ck;
	struct moat_endpoint_set *set;
	struct addr_use *addrs;
	size_t naddrs, addrs_cap;
};

struct ep_nodes {
	const struct ynode *name, *ns, *labels, *ips, *ports, *ifaces, *macs;
};

static const struct yfield ep_fields[] = {
	YKEEP("name", struct ep_nodes, name),
	YKEEP("namespace", struct ep_nodes, ns),
	YKEEP("labels", struct ep_nodes, labels),
	YKEEP("ips", struct ep_nodes, ips),
	YKEEP("ports", struct ep_nodes, ports),
	YKEEP("ifaces", struct ep_nodes, ifaces),
	YKEEP("macs", struct ep_nodes, macs),
};

static const char *ns_name(struct ycheck *ck, const struct ynode *n)
{
	const char *s = ystr(ck, n);

	if (s && !dns_label_ok(s)) {
		yerr(ck, n, "invalid namespace name \"%s\": use 1-63 lowercase letters, digits and "
		     "'-', starting and ending with a letter or digit", s);
		return NULL;
	}
	return s;
}

static int ip_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct ep_file *f = (struct ep_file *)ck;
	struct moat_endpoint *e = obj;
	const char *s = ystr(ck, n);
	int ret;

	if (s && moat_addr_parse(s, &e->ips[e->nips]) < 0)
		yerr(ck, n, "\"%s\" is not an IPv4 or IPv6 address", s);
	else if (s) {
		ret = grow((void **)&f->addrs, f->naddrs, &f->addrs_cap, sizeof(*f->addrs));
		if (ret)
			return ret;
		f->addrs[f->naddrs] = (struct addr_use){ e->ips[e->nips++], n, f->naddrs };
		f->naddrs++;
	}
	return 0;
}

/* http: 80/tcp, or http: 80 (TCP). */
static int port_item(struct ycheck *ck, const struct ynode *k, const struct ynode *v,
		     struct moat_named_port *p)
{
	const char *s = ystr(ck, v), *why = port_name_problem(k->str);

	if (why) {
		yerr(ck, k, "invalid port name \"%s\": %s", k->str, why);
		return 0;
	}
	if (s && port_spec_parse(s, &p->port, &p->proto) < 0) {
		yerr(ck, v, "invalid port \"%s\" for %s (want PORT or PORT/PROTO, like 80/tcp)", s,
		     k->str);
		return 0;
	}
	p->name = (char *)k->str;	/* borrowed from the tree; the set copies it */
	return s ? 1 : 0;
}

static int ports_parse(struct ycheck *ck, const struct ynode *n, struct moat_endpoint *e)
{
	if (!yexpect(ck, n, YNODE_MAP))
		return 0;
	e->ports = arena_array(ck->arena, n->n, sizeof(*e->ports));
	if (!e->ports)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++)
		e->nports += port_item(ck, n->kids[2 * i], n->kids[2 * i + 1], &e->ports[e->nports]);
	return 0;
}

/* Host-side interface names: what the kernel takes (IFNAMSIZ - 1 bytes, no '/' or space). */
static int iface_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct moat_endpoint *e = obj;
	const char *s = ystr(ck, n);
	size_t len = s ? strlen(s) : 0;

	if (s && (!len || len > 15 || strpbrk(s, "/: \t\n") || !strcmp(s, ".") || !strcmp(s, "..")))
		yerr(ck, n, "invalid interface name \"%s\": 1-15 characters, no '/', ':' or spaces", s);
	else if (s)
		e->ifaces[e->nifaces++] = (char *)s;
	return 0;
}

static int hex_digit(char c)
{
	char l = (char)(c | 0x20);	/* ASCII lower case; digits keep their value */

	return c >= '0' && c <= '9' ? c - '0' : l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1;
}

/* Six octets of two hex digits, one separator throughout: 02:42:ac:11:00:02, 02-42-AC-11-00-02. */
static bool mac_parse(const char *s, uint8_t mac[6])
{
	char sep = strlen(s) == 17 ? s[2] : '\0';
	uint8_t m[6];

	if (sep != ':' && sep != '-')
		return false;
	for (size_t i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != sep))
			return false;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, m, 6);
	return true;
}

/*
 * The container side's MAC of one iface. moatd drops frames from that iface with any other
 * source, and from a port it does not know with this one. A group MAC is never a frame's
 * source, and all zero means "unknown" to moatd: neither can be what the file promises.
 */
static int mac_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	uint8_t (*macs)[6] = obj;
	const char *s;

	if (n->type == YNODE_MAP) {	/* "- 02: 42", or [02:42:ac:11:00:02] to libyaml < 0.2.1 */
		yerr(ck, n, "expected a MAC address, got a mapping: quote the MAC "
		     "(\"02:42:ac:11:00:02\") or write it with '-' (02-42-ac-11-00-02)");
		return 0;
	}
	s = ystr(ck, n);
	if (s && !mac_parse(s, macs[i]))
		yerr(ck, n, "\"%s\" is not a MAC address (six hex octets, like 02:42:ac:11:00:02 or "
		     "02-42-ac-11-00-02)", s);
	else if (s && (macs[i][0] & 1))
		yerr(ck, n, "\"%s\" is not a unicast MAC address (the low bit of the first octet "
		     "is set: multicast or broadcast)", s);
	else if (s && !memcmp(macs[i], (uint8_t[6]){ 0 }, 6))
		yerr(ck, n, "\"%s\" is not a unicast MAC address (all zero)", s);
	return 0;
}

/*
 * macs: one per entry of ifaces, in its order. Counted on the nodes, so that a bad interface
 * name is not reported twice; e->macs is set only when the counts agree, as ifaces_copy
 * reads nifaces of them.
 */
static int macs_parse(struct ycheck *ck, const struct ep_nodes *x, struct moat_endpoint *e)
{
	uint8_t (*macs)[6] = yseq_alloc(ck, x->macs, sizeof(*macs));
	int ret = macs ? ywalk_seq_at(ck, "macs", x->macs, mac_item, macs) : -ENOMEM;

	if (ret || x->macs->type != YNODE_SEQ)
		return ret;
	if (!x->ifaces)
		yerr(ck, x->macs, "macs without ifaces: each MAC belongs to the interface at the "
		     "same place in ifaces");
	else if (x->ifaces->type == YNODE_SEQ && x->ifaces->n != x->macs->n)
		yerr(ck, x->macs, "macs and ifaces differ in length (%zu and %zu): give one MAC per "
		     "interface, in the same order", x->macs->n, x->ifaces->n);
	else if (x->ifaces->type == YNODE_SEQ)
		e->macs = macs;
	return 0;
}

/* Endpoint names are container names: anything but empty, with no '/' (ns/name is the CLI's). */
static const char *ep_name(struct ycheck *ck, const struct ynode *n)
{
	const char *s = ystr(ck, n);

	if (s && (!s[0] || strpbrk(s, "/ \t\n"))) {
		yerr(ck, n, "invalid endpoint name \"%s\": it must not be empty or hold '/' or spaces",
		     s);
		return NULL;
	}
	return s;
}

/* Reads the list-valued and map-valued fields of one endpoint into e (arena, borrowed). */
static int ep_fields_parse(struct ycheck *ck, const struct ep_nodes *x, struct moat_endpoint *e)
{
	size_t saved;
	int ret = 0;

	if (x->labels) {
		saved = ypath_key(ck, "labels");
		ret = labels_parse(ck, x->labels, false, 0, &e->labels);
		ypath_pop(ck, saved);
	}
	if (!ret && x->ips)
		ret = (e->ips = yseq_alloc(ck, x->ips, sizeof(*e->ips))) ?
			      ywalk_seq_at(ck, "ips", x->ips, ip_item, e) : -ENOMEM;
	if (!ret && x->ports) {
		saved = ypath_key(ck, "ports");
		ret = ports_parse(ck, x->ports, e);
		ypath_pop(ck, saved);
	}
	if (!ret && x->ifaces)
		ret = (e->ifaces = yseq_alloc(ck, x->ifaces, sizeof(char *))) ?
			      ywalk_seq_at(ck, "ifaces", x->ifaces, iface_item, e) : -ENOMEM;
	if (!ret && x->macs)
		ret = macs_parse(ck, x, e);
	return ret;
}

static int ep_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct ep_file *f = (struct ep_file *)ck;
	struct moat_endpoint e = { .namespace = MOAT_DEFAULT_NAMESPACE };
	struct ep_nodes x = { 0 };
	int ret = ywalk_map(ck, n, ep_fields, ARRAY_SIZE(ep_fields), &x);

	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	if (!x.name)
		yerr(ck, n, "name is required");
	else
		e.name = (char *)ep_name(ck, x.name);
	if (x.ns)
		e.namespace = (char *)ns_name(ck, x.ns);
	ret = ep_fields_parse(ck, &x, &e);
	if (ret || !e.name || !e.namespace)
		return ret;
	ret = moat_endpoint_set_add(f->set, &e);
	if (ret == -EEXIST)
		yerr(ck, x.name, "endpoint \"%s\" is defined twice in namespace \"%s\"", e.name,
		     e.namespace);
	return ret == -EEXIST ? 0 : ret;
}

static int namespaces_parse(struct ycheck *ck, const struct ynode *n, struct ep_file *f)
{
	if (!yexpect(ck, n, YNODE_MAP))
		return 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
		struct moat_labels l = { 0 };
		const char *name = ns_name(ck, k);
		size_t saved = ypath_key(ck, k->str);
		int ret = ynull(v) ? 0 : labels_parse(ck, v, true, 0, &l);

		ypath_pop(ck, saved);
		if (!ret && name)
			ret = moat_endpoint_set_add_namespace(f->set, name, &l);
		if (ret)
			return ret;
	}
	return 0;
}

static int addr_cmp(const void *a, const void *b)
{
	const struct addr_use *x = a, *y = b;
	int c = memcmp(&x->addr, &y->addr, sizeof(x->addr));

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Two endpoints with one address would make every verdict about it ambiguous. */
static void addrs_check(struct ep_file *f)
{
	char buf[64];

	if (f->naddrs > 1)
		qsort(f->addrs, f->naddrs, sizeof(*f->addrs), addr_cmp);
	for (size_t i = 1; i < f->naddrs; i++) {
		const struct addr_use *first = &f->addrs[i - 1], *a = &f->addrs[i];

		if (memcmp(&first->addr, &a->addr, sizeof(a->addr)))
			continue;
		yerr_at(&f->ck, a->at->line, a->at->col,
			"address %s is given twice (first at line %u, column %u)",
			moat_addr_format(&a->addr, buf, sizeof(buf)), first->at->line, first->at->col);
		f->addrs[i] = *first;
	}
}

static int subnet_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct moat_endpoint_set *set = obj;
	const char *s = ystr(ck, n);

	if (s && moat_cidr_parse(s, &set->subnets[set->nsubnets]) < 0)
		yerr(ck, n, "\"%s\" is not a subnet (10.64.0.0/16, fd00:64::/64: host bits zero)", s);
	else if (s)
		set->nsubnets++;
	return 0;
}

struct file_nodes {
	const struct ynode *namespaces, *subnets, *endpoints;
};

static const struct yfield file_fields[] = {
	YKEEP("namespaces", struct file_nodes, namespaces),
	YKEEP("subnets", struct file_nodes, subnets),
	YKEEP("endpoints", struct file_nodes, endpoints),
};

static int ep_doc(struct ep_file *f, const struct ynode *doc)
{
	struct file_nodes x = { 0 };
	int ret = ynull(doc) ? 0 : ywalk_map(&f->ck, doc, file_fields, ARRAY_SIZE(file_fields), &x);
	size_t saved;

	if (!ret && x.namespaces) {
		saved = ypath_key(&f->ck, "namespaces");
		ret = namespaces_parse(&f->ck, x.namespaces, f);
		ypath_pop(&f->ck, saved);
	}
	if (!ret && x.subnets && x.subnets->type == YNODE_SEQ && x.subnets->n &&
	    !(f->set->subnets = calloc(x.subnets->n, sizeof(*f->set->subnets))))
		ret = -ENOMEM;
	if (!ret && x.subnets)
		ret = ywalk_seq_at(&f->ck, "subnets", x.subnets, subnet_item, f->set);
	if (!ret && x.endpoints)
		ret = ywalk_seq_at(&f->ck, "endpoints", x.endpoints, ep_item, NULL);
	if (!ret)
		addrs_check(f);
	return ret;
}

int moat_endpoint_set_parse(const char *name, const char *buf, size_t len,
			    struct moat_endpoint_set **out, struct moat_diags *diags)
{
	struct ep_file f = { .set = moat_endpoint_set_new() };
	struct arena *a = arena_new();
	struct ynode **docs;
	size_t ndocs = 0;
	int ret = -ENOMEM;

	if (!f.set || !a)
		goto out;
	ycheck_init(&f.ck, name ? name : "", a, diags);
	ret = yaml_parse(&f.ck, a, buf, len, &docs, &ndocs);
	if (!ret && ndocs > 1)
		yerr(&f.ck, docs[1], "an endpoints file holds one document, this is a second");
	if (!ret && ndocs)
		ret = ep_doc(&f, docs[0]);
	if (!ret && f.ck.nerr)
		ret = -EINVAL;
out:
	arena_free(a);
	free(f.addrs);
	if (ret)
		moat_endpoint_set_free(f.set);
	else
		*out = f.set;
	return ret;
}

int moat_endpoint_set_load(const char *path, struct moat_endpoint_set **out,
			   struct moat_diags *diags)
{
	char *buf;
	size_t len;
	int ret = yaml_read_file(path, &buf, &len, diags);

	if (ret == -EFBIG)
		return -EINVAL;
	if (ret)
		return ret;
	ret = moat_endpoint_set_parse(path, buf, len, out, diags);
	free(buf);
	return ret;
}
