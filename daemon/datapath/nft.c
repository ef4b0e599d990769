/*
 * nftables backend: plan -> set elements -> one atomic batch. The only file that talks to the
 * netfilter socket (see nft.h for the ruleset's shape).
 *
 * Tables, sets, chains and rules are built with libnftnl; set elements are written with libmnl
 * straight into the batch (no object per element: a container start stays cheap) and each
 * message remembers which elements it carries, so that a kernel error, found by sequence
 * number and by the extended-ACK attribute offset, names the element that caused it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "nft.h"

/* nft's datatype numbers (src/datatype.h): only `nft list` reads them, to print elements. */
enum {
	TYPE_VERDICT = 1, TYPE_INTEGER = 4, TYPE_IPADDR = 7, TYPE_IP6ADDR = 8, TYPE_ETHERADDR = 9,
	TYPE_INET_PROTOCOL = 12, TYPE_INET_SERVICE = 13, TYPE_MARK = 19, TYPE_ICMP6_TYPE = 29,
	TYPE_IFNAME = 41,
};
#define TYPE_BITS 6
#define CAT2(a, b) ((a) << TYPE_BITS | (b))
#define CAT3(a, b, c) (CAT2(CAT2(a, b), c))
#define CAT4(a, b, c, d) (CAT2(CAT3(a, b, c), d))

enum tbl { T_INET, T_BRIDGE, T_COUNT };

static const struct {
	uint16_t family;
	const char *fname;
} tbls[T_COUNT] = {
	[T_INET] = { NFPROTO_INET, "inet" },
	[T_BRIDGE] = { NFPROTO_BRIDGE, "bridge" },
};

enum set_id {
	S_EP4, S_EP6, S_NET4, S_NET6, S_MANAGED4, S_MANAGED6, S_IN4, S_IN6, S_OUT4, S_OUT6,
	S_FROM, S_IN_ANY, S_TO, S_OUT_ANY, S_SELF4, S_SELF6,
	S_PORTS, S_ISO_PORTS, S_MAC_PORTS, S_MACS, S_SRC4, S_SRC6, S_OWN4, S_OWN6, S_ND_TARGETS,
	S_ND_TYPES,
	S_ETHERS, S_ADDRS4, S_ADDRS6, S_ND_ADDRS, S_COUNT
};

/* How an element of a set reads in an error message. */
enum fmt {
	F_ADDR_MARK, F_RANGE, F_VMAP, F_PEER, F_ANY, F_ADDR, F_ADDR2, F_IFNAME, F_IF_ADDR, F_MAC,
	F_IF_MAC, F_IF_MAC_ADDR, F_BYTE
};

#define KEY_MAX 40		/* own6: ifname 16, MAC 6 (+2), IPv6 16 */

/*
 * A set, or (per_ident) a family of sets, one per isolated identity, named by printf-ing
 * the identity into name: these hang off that identity's chain.
 */
struct set_desc {
	const char *name;
	enum tbl t;
	uint32_t flags;			/* NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT */
	uint32_t key_type, key_len;	/* key_len: register-padded, as the kernel wants it */
	uint32_t data_type, data_len;	/* maps only */
	uint8_t fields[4];		/* pipapo: unpadded field lengths of the concatenation */
	uint8_t alen;			/* address length inside the key, for formatting */
	enum fmt fmt;
	const char *jump;		/* verdict maps: element data d goes to chain jump % d */
	bool per_ident;
};

#define MAP NFT_SET_MAP
#define IVL NFT_SET_INTERVAL
#define CAT (NFT_SET_INTERVAL | NFT_SET_CONCAT)
#define PEER_KEY CAT3(TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 12
#define ANY_KEY CAT2(TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 8

static const struct set_desc sets[S_COUNT] = {
	[S_EP4] = { "ep4", T_INET, MAP, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_ADDR_MARK },
	[S_EP6] = { "ep6", T_INET, MAP, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_ADDR_MARK },
	[S_NET4] = { "net4", T_INET, MAP | IVL, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_RANGE },
	[S_NET6] = { "net6", T_INET, MAP | IVL, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_RANGE },
	[S_MANAGED4] = { "managed4", T_INET, IVL, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_RANGE },
	[S_MANAGED6] = { "managed6", T_INET, IVL, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_RANGE },
	[S_IN4] = { "in4", T_INET, MAP, TYPE_IPADDR, 4, NFT_DATA_VERDICT, 0, {0}, 4, F_VMAP,
		"in_%u" },
	[S_IN6] = { "in6", T_INET, MAP, TYPE_IP6ADDR, 16, NFT_DATA_VERDICT, 0, {0}, 16, F_VMAP,
		"in_%u" },
	[S_OUT4] = { "out4", T_INET, MAP, TYPE_IPADDR, 4, NFT_DATA_VERDICT, 0, {0}, 4, F_VMAP,
		"out_%u" },
	[S_OUT6] = { "out6", T_INET, MAP, TYPE_IP6ADDR, 16, NFT_DATA_VERDICT, 0, {0}, 16, F_VMAP,
		"out_%u" },
	[S_FROM] = { "in_%u_from", T_INET, CAT, PEER_KEY, 0, 0, {4, 1, 2}, 0, F_PEER, NULL, true },
	[S_IN_ANY] = { "in_%u_any", T_INET, CAT, ANY_KEY, 0, 0, {1, 2}, 0, F_ANY, NULL, true },
	[S_TO] = { "out_%u_to", T_INET, CAT, PEER_KEY, 0, 0, {4, 1, 2}, 0, F_PEER, NULL, true },
	[S_OUT_ANY] = { "out_%u_any", T_INET, CAT, ANY_KEY, 0, 0, {1, 2}, 0, F_ANY, NULL, true },
	[S_SELF4] = { "self4", T_INET, 0, CAT2(TYPE_IPADDR, TYPE_IPADDR), 8, 0, 0, {0}, 4,
		F_ADDR2 },
	[S_SELF6] = { "self6", T_INET, 0, CAT2(TYPE_IP6ADDR, TYPE_IP6ADDR), 32, 0, 0, {0}, 16,
		F_ADDR2 },
	[S_PORTS] = { "ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_ISO_PORTS] = { "iso_ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_MAC_PORTS] = { "mac_ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_MACS] = { "macs", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_ETHERADDR), IFNAMSIZ + 8, 0, 0,
		{0}, 0, F_IF_MAC },
	[S_SRC4] = { "src4", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IPADDR), IFNAMSIZ + 4,
		0, 0, {0}, 4, F_IF_ADDR },
	[S_SRC6] = { "src6", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IP6ADDR), IFNAMSIZ + 16,
		0, 0, {0}, 16, F_IF_ADDR },
	/* src4 and src6 of the ports whose MAC is known, with the MAC: the one lookup most need */
	[S_OWN4] = { "own4", T_BRIDGE, 0, CAT3(TYPE_IFNAME, TYPE_ETHERADDR, TYPE_IPADDR),
		IFNAMSIZ + 8 + 4, 0, 0, {0}, 4, F_IF_MAC_ADDR },
	[S_OWN6] = { "own6", T_BRIDGE, 0, CAT3(TYPE_IFNAME, TYPE_ETHERADDR, TYPE_IP6ADDR),
		IFNAMSIZ + 8 + 16, 0, 0, {0}, 16, F_IF_MAC_ADDR },
	/* src6 again, keyed as the raw ICMPv6 target field reads (nft 1.0 has no taddr) */
	[S_ND_TARGETS] = { "nd_targets", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_INTEGER),
		IFNAMSIZ + 16, 0, 0, {0}, 16, F_IF_ADDR },
	[S_ND_TYPES] = { "nd_types", T_BRIDGE, 0, TYPE_ICMP6_TYPE, 1, 0, 0, {0}, 0, F_BYTE },
	/* what any endpoint owns, which a port moatd does not know may not claim */
	[S_ETHERS] = { "ethers", T_BRIDGE, 0, TYPE_ETHERADDR, 6, 0, 0, {0}, 0, F_MAC },
	[S_ADDRS4] = { "addrs4", T_BRIDGE, 0, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_ADDR },
	[S_ADDRS6] = { "addrs6", T_BRIDGE, 0, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_ADDR },
	/* addrs6 again, keyed as the raw ICMPv6 target field reads */
	[S_ND_ADDRS] = { "nd_addrs", T_BRIDGE, 0, TYPE_INTEGER, 16, 0, 0, {0}, 16, F_ADDR },
};

enum chain_id {
	C_FORWARD, C_INPUT, C_INGRESS, C_EGRESS, C_PEER_SRC, C_PEER_DST, C_DENY_IN, C_DENY_OUT,
	C_MON_IN, C_MON_OUT, C_UNKNOWN, C_PREROUTING, C_STRANGER, C_SPOOF, C_BR_FORWARD,
	C_MISDIRECTED, C_COUNT
};

static const struct {
	const char *name;
	enum tbl t;
	int hook;			/* -1: a regular chain */
	int prio;
} chains[C_COUNT] = {
	[C_FORWARD] = { "forward", T_INET, NF_INET_FORWARD, -10 },
	[C_INPUT] = { "input", T_INET, NF_INET_LOCAL_IN, -10 },
	[C_INGRESS] = { "ingress", T_INET, -1, 0 },
	[C_EGRESS] = { "egress", T_INET, -1, 0 },
	[C_PEER_SRC] = { "peer_src", T_INET, -1, 0 },
	[C_PEER_DST] = { "peer_dst", T_INET, -1, 0 },
	[C_DENY_IN] = { "deny_in", T_INET, -1, 0 },
	[C_DENY_OUT] = { "deny_out", T_INET, -1, 0 },
	[C_MON_IN] = { "monitor_in", T_INET, -1, 0 },
	[C_MON_OUT] = { "monitor_out", T_INET, -1, 0 },
	[C_UNKNOWN] = { "unknown", T_INET, -1, 0 },
	[C_PREROUTING] = { "prerouting", T_BRIDGE, NF_BR_PRE_ROUTING, -300 },
	[C_STRANGER] = { "stranger", T_BRIDGE, -1, 0 },
	[C_SPOOF] = { "spoof", T_BRIDGE, -1, 0 },
	[C_BR_FORWARD] = { "forward", T_BRIDGE, NF_BR_FORWARD, -300 },
	[C_MISDIRECTED] = { "misdirected", T_BRIDGE, -1, 0 },
};

/*
 * The chain of one isolated identity in one direction ("in_<id>" or "out_<id>"), with its
 * two sets. monitor picks the chain's last rule, so a change of mode is a full apply.
 */
struct owner {
	uint32_t id;
	uint8_t egress, monitor;
};

struct ownerv {
	struct owner *v;
	size_t n, cap;
};

/*
 * One set element. owner: the identity whose per_ident set holds it (0 elsewhere); first, so
 * that sorted arrays group each identity's elements. key_end is sent for pipapo sets only;
 * flags carries NFT_SET_ELEM_INTERVAL_END for the closing element of an rbtree interval.
 * Elements compare with memcmp over the whole struct (always zero-initialised), so a changed
 * map value is a delete plus an add.
 */
struct elem {
	uint32_t owner;
	uint8_t key[KEY_MAX];
	uint8_t key_end[KEY_MAX];
	uint32_t data;
	uint32_t flags;
};

struct elemv {
	struct elem *v;
	size_t n, cap;
};

struct nft_ctx {
	struct mnl_socket *nl, *watch;
	uint32_t portid, seq;
	bool applied;
	enum moat_mode mode;
	uint16_t group;
	struct elemv cur[S_COUNT];	/* what the kernel holds, sorted */
	struct ownerv owners;		/* the identity chains the kernel holds, sorted */
	unsigned nrules[T_COUNT];
	struct nft_stats stats;
	char buf[1 << 16];
};

/* ---- element arrays ------------------------------------------------------------------ */

static int elemv_push(struct elemv *v, const struct elem *e)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct elem *n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = *e;
	return 0;
}

static int elem_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct elem));
}

static bool elemv_sorted(const struct elemv *v)
{
	for (size_t i = 1; i < v->n; i++)
		if (elem_cmp(&v->v[i - 1], &v->v[i]) >= 0)
			return false;
	return true;
}

/* Sort and drop duplicates (two endpoints may list the same iface). */
static void elemv_sort(struct elemv *v)
{
	size_t i, o = 0;

	if (elemv_sorted(v))
		return;		/* reused from the kernel's, or built in order */
	qsort(v->v, v->n, sizeof(*v->v), elem_cmp);
	for (i = 0; i < v->n; i++)
		if (!o || elem_cmp(&v->v[o - 1], &v->v[i]))
			v->v[o++] = v->v[i];
	v->n = o;
}

static void elemvs_free(struct elemv *v)
{
	for (size_t s = 0; s < S_COUNT; s++) {
		free(v[s].v);
		v[s] = (struct elemv){0};
	}
}

/* ---- plan -> elements ---------------------------------------------------------------- */

static int alen_of(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

/* a + 1 in big-endian; false when a was all ones (the interval reaches the top). */
static bool addr_inc(uint8_t *a, int len)
{
	for (int i = len - 1; i >= 0; i--)
		if (++a[i])
			return true;
	return false;
}

/*
 * An rbtree interval [lo, hi]: a start element carrying the value and an end element at
 * hi + 1, flagged INTERVAL_END; none when hi is the last address (as nft does).
 */
static int push_interval(struct elemv *v, const uint8_t *lo, const uint8_t *hi, int alen,
			 uint32_t data)
{
	struct elem e = {0};
	int ret;

	memcpy(e.key, lo, alen);
	e.data = data;
	ret = elemv_push(v, &e);
	if (ret < 0)
		return ret;
	memset(&e, 0, sizeof(e));
	memcpy(e.key, hi, alen);
	e.flags = NFT_SET_ELEM_INTERVAL_END;
	return addr_inc(e.key, alen) ? elemv_push(v, &e) : 0;
}

/* ep4/ep6 (address -> identity) and self4/self6 (address . the same address). */
static int build_addrs(const struct moat_plan *p, struct elemv *v)
{
	for (size_t i = 0; i < p->naddrs; i++) {
		const struct moat_plan_addr *a = &p->addrs[i];
		int alen = alen_of(a->addr.family);
		bool v4 = a->addr.family == AF_INET;
		struct elem e = {0}, self = {0};
		int ret;

		memcpy(e.key, a->addr.a, alen);
		e.data = a->ident;
		memcpy(self.key, a->addr.a, alen);
		memcpy(self.key + alen, a->addr.a, alen);
		ret = elemv_push(&v[v4 ? S_EP4 : S_EP6], &e);
		if (!ret)
			ret = elemv_push(&v[v4 ? S_SELF4 : S_SELF6], &self);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int build_nets(const struct moat_plan *p, struct elemv *v)
{
	for (size_t i = 0; i < p->nnets; i++) {
		const struct moat_plan_net *n = &p->nets[i];
		int ret = push_interval(&v[n->family == AF_INET ? S_NET4 : S_NET6], n->lo, n->hi,
					alen_of(n->family), n->ident);
		if (ret < 0)
			return ret;
	}
	return 0;
}

struct range {
	uint8_t family;
	uint8_t lo[16], hi[16];
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->family != y->family)
		return x->family - y->family;
	return memcmp(x->lo, y->lo, 16);
}

static void cidr_range(const struct moat_cidr *c, struct range *r)
{
	int alen = alen_of(c->family);

	memset(r, 0, sizeof(*r));
	r->family = c->family;
	memcpy(r->lo, c->addr, alen);
	memcpy(r->hi, c->addr, alen);
	for (int bit = c->plen; bit < alen * 8; bit++) {
		r->lo[bit / 8] &= ~(0x80 >> bit % 8);
		r->hi[bit / 8] |= 0x80 >> bit % 8;
	}
}

/* Does r start inside last or right after it? */
static bool range_joins(const struct range *last, const struct range *r)
{
	uint8_t next[16];

	if (last->family != r->family)
		return false;
	memcpy(next, last->hi, 16);
	if (!addr_inc(next, alen_of(r->family)))
		return true;
	return memcmp(r->lo, next, 16) <= 0;
}

/* Managed subnets come from configuration and may overlap: merge them (rbtree refuses overlaps). */
static int build_managed(const struct nft_input *in, struct elemv *v)
{
	struct range *r = calloc(in->nmanaged + 1, sizeof(*r));
	size_t i, n = 0;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	for (i = 0; i < in->nmanaged; i++)
		cidr_range(&in->managed[i], &r[i]);
	qsort(r, in->nmanaged, sizeof(*r), range_cmp);
	for (i = 0; i < in->nmanaged; i++) {
		if (n && range_joins(&r[n - 1], &r[i])) {
			if (memcmp(r[i].hi, r[n - 1].hi, 16) > 0)
				memcpy(r[n - 1].hi, r[i].hi, 16);
			continue;
		}
		r[n++] = r[i];
	}
	for (i = 0; i < n && !ret; i++)
		ret = push_interval(&v[r[i].family == AF_INET ? S_MANAGED4 : S_MANAGED6], r[i].lo,
				    r[i].hi, alen_of(r[i].family), 0);
	free(r);
	return ret;
}

/*
 * The concatenation as registers hold it: every field starts on a 4-byte boundary; the mark
 * in host order (as map data lands in a register), the port in network order.
 */
static void put_tail(uint8_t *k, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);

	k[0] = proto;
	memcpy(k + 4, &be, 2);
}

/*
 * Elements of the isolated identity's own sets: allow_in (src . proto . port in in_<dst>_from),
 * allow_out (dst . proto . port in out_<src>_to), and the *_any sets (proto . port).
 */
static int build_allow(const struct moat_plan *p, const struct moat_plan_elem *pe, size_t n,
		       bool any, bool egress, struct elemv *v)
{
	for (size_t i = 0; i < n; i++) {
		struct elem e = {0};
		uint32_t peer = egress ? pe[i].dst : pe[i].src;
		const struct moat_plan_ident *id;
		int off = any ? 0 : 4;

		e.owner = egress ? pe[i].src : pe[i].dst;
		id = moat_plan_ident_get(p, e.owner);
		if (!id || !(egress ? id->out_iso : id->in_iso))
			continue;	/* not isolated: no chain, nothing to check */
		peer = htonl(peer);	/* x_allow turns the mark to network order, as nft does */
		if (!any) {
			memcpy(e.key, &peer, 4);
			memcpy(e.key_end, &peer, 4);
		}
		put_tail(e.key + off, pe[i].proto_lo, pe[i].port_lo);
		put_tail(e.key_end + off, pe[i].proto_hi, pe[i].port_hi);
		if (elemv_push(v, &e) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* in4/in6/out4/out6: each address of an isolated identity goes to that identity's chain. */
static int build_vmaps(const struct moat_plan *p, struct elemv *v)
{
	for (size_t i = 0; i < p->naddrs; i++) {
		const struct moat_plan_addr *a = &p->addrs[i];
		const struct moat_plan_ident *id = moat_plan_ident_get(p, a->ident);
		bool v4 = a->addr.family == AF_INET;
		struct elem e = {0};
		int ret = 0;

		if (!id)
			continue;
		memcpy(e.key, a->addr.a, alen_of(a->addr.family));
		e.data = a->ident;
		if (id->in_iso)
			ret = elemv_push(&v[v4 ? S_IN4 : S_IN6], &e);
		if (!ret && id->out_iso)
			ret = elemv_push(&v[v4 ? S_OUT4 : S_OUT6], &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int ownerv_push(struct ownerv *v, uint32_t id, bool egress, bool monitor)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct owner *n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = (struct owner){ id, egress, monitor };
	return 0;
}

/* Sorted by direction, then id (the plan's idents are sorted by id). */
static int build_owners(const struct moat_plan *p, struct ownerv *o)
{
	for (int egress = 0; egress < 2; egress++)
		for (size_t i = 0; i < p->nidents; i++) {
			const struct moat_plan_ident *id = &p->idents[i];
			bool iso = egress ? id->out_iso : id->in_iso;
			enum moat_mode m = egress ? id->out_mode : id->in_mode;

			if (iso && ownerv_push(o, id->id, egress, m == MOAT_MODE_MONITOR) < 0)
				return -ENOMEM;
		}
	return 0;
}

/* A port whose container side's MAC is known, and (port . MAC). e holds the port's name. */
static int port_mac(struct elemv *v, const struct elem *port, const uint8_t mac[6])
{
	struct elem e = *port;

	if (elemv_push(&v[S_MAC_PORTS], &e) < 0)
		return -ENOMEM;
	memcpy(e.key + IFNAMSIZ, mac, 6);
	return elemv_push(&v[S_MACS], &e);
}

/* What an endpoint with a veth owns, for ports moatd does not know: MACs and addresses. */
static int build_owned(const struct moat_endpoint *ep, struct elemv *v)
{
	int ret = 0;

	for (size_t f = 0; ep->macs && f < ep->nifaces && !ret; f++) {
		struct elem e = {0};

		memcpy(e.key, ep->macs[f], 6);
		if (memcmp(e.key, (uint8_t[6]){0}, 6))
			ret = elemv_push(&v[S_ETHERS], &e);
	}
	for (size_t a = 0; a < ep->nips && !ret; a++) {
		const struct moat_addr *ad = &ep->ips[a];
		struct elem e = {0};

		memcpy(e.key, ad->a, alen_of(ad->family));
		ret = elemv_push(&v[ad->family == AF_INET ? S_ADDRS4 : S_ADDRS6], &e);
		if (!ret && ad->family == AF_INET6)
			ret = elemv_push(&v[S_ND_ADDRS], &e);
	}
	return ret;
}

/*
 * (port . address) for each of the endpoint's addresses; when the port's MAC is known, also
 * (port . MAC . address). port holds the port's name.
 */
static int port_addrs(struct elemv *v, const struct elem *port, const uint8_t *mac,
		      const struct moat_endpoint *ep)
{
	int ret = 0;

	for (size_t a = 0; a < ep->nips && !ret; a++) {
		const struct moat_addr *ad = &ep->ips[a];
		bool v4 = ad->family == AF_INET;
		struct elem e = *port;

		memcpy(e.key + IFNAMSIZ, ad->a, alen_of(ad->family));
		ret = elemv_push(&v[v4 ? S_SRC4 : S_SRC6], &e);
		if (!ret && !v4)
			ret = elemv_push(&v[S_ND_TARGETS], &e);
		if (!ret && mac) {
			e = *port;
			memcpy(e.key + IFNAMSIZ, mac, 6);
			memcpy(e.key + IFNAMSIZ + 8, ad->a, alen_of(ad->family));
			ret = elemv_push(&v[v4 ? S_OWN4 : S_OWN6], &e);
		}
	}
	return ret;
}

/* Anti-spoofing: each endpoint's veths, and every (veth, own address) pair. */
static int build_ports(const struct moat_endpoint_set *es, struct elemv *v)
{
	static const uint8_t unknown[6];

	for (size_t i = 0; es && i < es->n; i++) {
		const struct moat_endpoint *ep = &es->v[i];
		int ret = 0;

		if (ep->host_network || !ep->nifaces)
			continue;
		for (size_t f = 0; f < ep->nifaces && !ret; f++) {
			const uint8_t *mac = ep->macs ? ep->macs[f] : NULL;
			struct elem e = {0};

			if (mac && !memcmp(mac, unknown, 6))
				mac = NULL;
			strncpy((char *)e.key, ep->ifaces[f], IFNAMSIZ - 1);
			ret = elemv_push(&v[S_PORTS], &e);
			if (!ret && mac)
				ret = port_mac(v, &e, mac);
			if (!ret)
				ret = port_addrs(v, &e, mac, ep);
		}
		if (!ret)
			ret = build_owned(ep, v);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The veths of endpoints that are ingress-isolated (by any of their addresses). */
static int build_iso_ports(const struct nft_input *in, struct elemv *v)
{
	const struct moat_plan *p = in->plan;

	for (size_t i = 0; i < p->naddrs; i++) {
		const struct moat_plan_ident *id = moat_plan_ident_get(p, p->addrs[i].ident);
		const struct moat_endpoint *ep;

		if (!id || !id->in_iso || !in->es || p->addrs[i].endpoint >= in->es->n)
			continue;
		ep = &in->es->v[p->addrs[i].endpoint];
		for (size_t f = 0; f < ep->nifaces && !ep->host_network; f++) {
			struct elem e = {0};

			strncpy((char *)e.key, ep->ifaces[f], IFNAMSIZ - 1);
			if (elemv_push(&v[S_ISO_PORTS], &e) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* ICMPv6 a container may send from fe80::/10 or ::: MLD (130-132, 143), RS, NS, NA. */
static const uint8_t nd_types[] = { 130, 131, 132, 133, 135, 136, 143 };

static int build_nd(struct elemv *v)
{
	for (size_t i = 0; i < sizeof(nd_types); i++) {
		struct elem e = {0};
		int ret;

		e.key[0] = nd_types[i];
		ret = elemv_push(&v[S_ND_TYPES], &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Field by field: plan structs have padding that nobody initialises. */
static bool idents_equal(const struct moat_plan *p, const struct moat_plan *q)
{
	if (p->nidents != q->nidents)
		return false;
	for (size_t i = 0; i < p->nidents; i++) {
		const struct moat_plan_ident *a = &p->idents[i], *b = &q->idents[i];

		if (a->id != b->id || a->in_iso != b->in_iso || a->out_iso != b->out_iso ||
		    a->in_mode != b->in_mode || a->out_mode != b->out_mode)
			return false;
	}
	return true;
}

static bool allows_equal(const struct moat_plan_elem *a, size_t na,
			 const struct moat_plan_elem *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].src != b[i].src || a[i].dst != b[i].dst ||
		    a[i].proto_lo != b[i].proto_lo || a[i].proto_hi != b[i].proto_hi ||
		    a[i].port_lo != b[i].port_lo || a[i].port_hi != b[i].port_hi)
			return false;
	return true;
}

/*
 * The allow sets are most of the elements (14,100 of 15,500 at 1,000 endpoints and 1,000
 * policies) and follow from the allow lists and the identities' isolation alone: when those
 * are the previous plan's, the kernel's elements are the new ones (no build, sort or diff).
 */
static bool allow_unchanged(const struct moat_plan *p, const struct moat_plan *q)
{
	return q && idents_equal(p, q) &&
	       allows_equal(p->allow_in, p->nallow_in, q->allow_in, q->nallow_in) &&
	       allows_equal(p->allow_out, p->nallow_out, q->allow_out, q->nallow_out) &&
	       allows_equal(p->allow_in_any, p->nallow_in_any, q->allow_in_any, q->nallow_in_any) &&
	       allows_equal(p->allow_out_any, p->nallow_out_any, q->allow_out_any,
			    q->nallow_out_any);
}

static int elemv_copy(struct elemv *dst, const struct elemv *src)
{
	if (!src->n)
		return 0;
	dst->v = malloc(src->n * sizeof(*src->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	dst->n = dst->cap = src->n;
	return 0;
}

static int build_allows(const struct nft_ctx *ctx, const struct nft_input *in, struct elemv *v)
{
	static const enum set_id ids[] = { S_FROM, S_TO, S_IN_ANY, S_OUT_ANY };
	const struct moat_plan *p = in->plan;
	int ret = 0;

	if (ctx->applied && allow_unchanged(p, in->prev)) {
		for (size_t i = 0; !ret && i < sizeof(ids) / sizeof(ids[0]); i++)
			ret = elemv_copy(&v[ids[i]], &ctx->cur[ids[i]]);
		return ret;
	}
	ret = build_allow(p, p->allow_in, p->nallow_in, false, false, &v[S_FROM]);
	if (!ret)
		ret = build_allow(p, p->allow_out, p->nallow_out, false, true, &v[S_TO]);
	if (!ret)
		ret = build_allow(p, p->allow_in_any, p->nallow_in_any, true, false,
				  &v[S_IN_ANY]);
	if (!ret)
		ret = build_allow(p, p->allow_out_any, p->nallow_out_any, true, true,
				  &v[S_OUT_ANY]);
	return ret;
}

static int build_elems(const struct nft_ctx *ctx, const struct nft_input *in, struct elemv *v)
{
	const struct moat_plan *p = in->plan;
	int ret;

	ret = build_addrs(p, v);
	if (!ret)
		ret = build_nets(p, v);
	if (!ret)
		ret = build_managed(in, v);
	if (!ret)
		ret = build_allows(ctx, in, v);
	if (!ret)
		ret = build_vmaps(p, v);
	if (!ret)
		ret = build_ports(in->es, v);
	if (!ret)
		ret = build_iso_ports(in, v);
	if (!ret)
		ret = build_nd(v);
	for (size_t s = 0; s < S_COUNT; s++)
		elemv_sort(&v[s]);
	return ret;
}

/* ---- element formatting (error messages) ---------------------------------------------- */

static void fmt_addr(char *b, size_t len, const uint8_t *a, int alen)
{
	inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, b, len);
}

static void fmt_tail(char *b, size_t len, const struct elem *e, int off)
{
	uint16_t lo, hi;

	memcpy(&lo, e->key + off + 4, 2);
	memcpy(&hi, e->key_end + off + 4, 2);
	snprintf(b, len, "proto %u-%u port %u-%u", e->key[off], e->key_end[off], ntohs(lo),
		 ntohs(hi));
}

/* The set's name; per_ident sets are named after the identity that owns them. */
static const char *set_name(enum set_id s, uint32_t owner, char *b, size_t len)
{
	snprintf(b, len, sets[s].name, owner);	/* names without %u ignore owner */
	return b;
}

static void fmt_mac(char *b, size_t len, const uint8_t *m)
{
	snprintf(b, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void elem_format(enum set_id s, const struct elem *e, char *b, size_t len)
{
	const struct set_desc *d = &sets[s];
	char a[INET6_ADDRSTRLEN], t[64], c[32];
	uint32_t x;

	memcpy(&x, e->key, 4);
	switch (d->fmt) {
	case F_ADDR_MARK:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		snprintf(b, len, "%s : ident %u", a, e->data);
		break;
	case F_RANGE:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		if (e->flags)
			snprintf(b, len, "interval end %s", a);
		else
			snprintf(b, len, "interval start %s : ident %u", a, e->data);
		break;
	case F_VMAP:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		snprintf(c, sizeof(c), d->jump, e->data);
		snprintf(b, len, "%s : goto %s", a, c);
		break;
	case F_PEER:
		fmt_tail(t, sizeof(t), e, 4);
		snprintf(b, len, "ident %u %s", ntohl(x), t);
		break;
	case F_ANY:
		fmt_tail(t, sizeof(t), e, 0);
		snprintf(b, len, "%s", t);
		break;
	case F_ADDR:
		fmt_addr(b, len, e->key, d->alen);
		break;
	case F_ADDR2:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		snprintf(b, len, "%s . %s", a, a);
		break;
	case F_IFNAME:
		snprintf(b, len, "%.16s", (const char *)e->key);
		break;
	case F_IF_ADDR:
		fmt_addr(a, sizeof(a), e->key + IFNAMSIZ, d->alen);
		snprintf(b, len, "%.16s . %s", (const char *)e->key, a);
		break;
	case F_MAC:
		fmt_mac(b, len, e->key);
		break;
	case F_IF_MAC:
		fmt_mac(a, sizeof(a), e->key + IFNAMSIZ);
		snprintf(b, len, "%.16s . %s", (const char *)e->key, a);
		break;
	case F_IF_MAC_ADDR:
		fmt_mac(a, sizeof(a), e->key + IFNAMSIZ);
		fmt_addr(t, sizeof(t), e->key + IFNAMSIZ + 8, d->alen);
		snprintf(b, len, "%.16s . %s . %s", (const char *)e->key, a, t);
		break;
	case F_BYTE:
		snprintf(b, len, "%u", e->key[0]);
		break;
	}
}

/* ---- batch ----------------------------------------------------------------------------- */

/* What a message of the batch did, to name it when the kernel refuses it. */
struct msgrec {
	uint32_t seq;
	char what[96];
	int set;			/* element messages: the set; else -1 */
	const struct elem *elems;	/* the elements it carries */
	size_t nelems;
	const struct nlmsghdr *nlh;	/* its bytes in the batch, for extack offsets */
};

struct batch {
	struct nftnl_batch *b;
	uint32_t seq0;
	struct msgrec *recs;
	size_t nrecs, cap;
	size_t nacks;			/* messages sent with NLM_F_ACK */
	size_t added, deleted;
	int err;			/* sticky: first failure while building */
	unsigned nrules[T_COUNT];
	uint32_t nsets;			/* sets added */
};

#define BATCH_PAGE (32u * 4096u)
#define BATCH_OVERRUN (65536u + 4096u)
/* Element messages stay well below the 64 KiB nest limit and the page overrun. */
#define ELEM_MSG_MAX 32768u

static int batch_init(struct batch *bt, uint32_t seq)
{
	memset(bt, 0, sizeof(*bt));
	bt->b = nftnl_batch_alloc(BATCH_PAGE, BATCH_OVERRUN);
	if (!bt->b)
		return -ENOMEM;
	bt->seq0 = seq;
	nftnl_batch_begin(nftnl_batch_buffer(bt->b), seq);
	if (nftnl_batch_update(bt->b) < 0)
		return -ENOMEM;
	return 0;
}

static void batch_free(struct batch *bt)
{
	if (bt->b)
		nftnl_batch_free(bt->b);
	free(bt->recs);
}

static uint32_t batch_seq(const struct batch *bt)
{
	return bt->seq0 + 1 + bt->nrecs;
}

static char *batch_buf(struct batch *bt)
{
	return nftnl_batch_buffer(bt->b);
}

/* Account for the message just written at nlh and remember what it was. */
static struct msgrec *batch_commit(struct batch *bt, struct nlmsghdr *nlh, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct msgrec *batch_commit(struct batch *bt, struct nlmsghdr *nlh, const char *fmt, ...)
{
	struct msgrec *r;
	va_list ap;

	if (bt->nrecs == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		struct msgrec *n = realloc(bt->recs, cap * sizeof(*n));

		if (!n) {
			bt->err = -ENOMEM;
			return NULL;
		}
		bt->recs = n;
		bt->cap = cap;
	}
	r = &bt->recs[bt->nrecs++];
	memset(r, 0, sizeof(*r));
	r->seq = nlh->nlmsg_seq;
	r->set = -1;
	r->nlh = nlh;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	if (nlh->nlmsg_flags & NLM_F_ACK)
		bt->nacks++;
	/* A message that overflows the page is copied to a new one; the old bytes stay. */
	if (nftnl_batch_update(bt->b) < 0)
		bt->err = -ENOMEM;
	return r;
}

static struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type, enum tbl t, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(batch_buf(bt), type, tbls[t].family, flags | NLM_F_ACK,
				     batch_seq(bt));
}

static void batch_table(struct batch *bt, enum tbl t, uint16_t type)
{
	struct nftnl_table *tb = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!tb) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_set_u32(tb, NFTNL_TABLE_FAMILY, tbls[t].family);
	nftnl_table_set_str(tb, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	nlh = batch_hdr(bt, type, t, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	nftnl_table_nlmsg_build_payload(nlh, tb);
	nftnl_table_free(tb);
	batch_commit(bt, nlh, "%s table %s %s", type == NFT_MSG_NEWTABLE ? "add" : "delete",
		     tbls[t].fname, NFT_TABLE_NAME);
}

/*
 * Notes for `nft list` (the kernel ignores them): marks in map data and interface names in
 * keys are host-order, which nft cannot tell from the type alone; without them it shows map
 * data byte-swapped and names as "" (nft's own BYTEORDER_HOST_ENDIAN is 1).
 */
/* One expression of a typeof description: nft's expression id and its u32 attributes. */
static bool udata_typeof_expr(struct nftnl_udata_buf *u, uint8_t index, uint32_t expr,
			      const uint32_t *attrs, size_t nattrs)
{
	struct nftnl_udata *el = nftnl_udata_nest_start(u, index), *data;
	bool ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, expr);

	data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	for (size_t i = 0; i < nattrs && ok; i++)
		ok = nftnl_udata_put_u32(u, i, attrs[i]);
	nftnl_udata_nest_end(u, data);
	nftnl_udata_nest_end(u, el);
	return ok;
}

/*
 * "typeof iifname . @th,64,128" (nd_targets) or "typeof @th,64,128" (nd_addrs), the way
 * nft 1.0 writes it (expression ids: concat 13, meta 9 with its key, payload 7 with
 * protocol 0, template 0, base 3 (transport), offset and length in bits), so that
 * `nft list` prints a set that `nft -f` takes back.
 */
static bool udata_nd_targets(struct nftnl_udata_buf *u, bool port)
{
	static const uint32_t meta[] = { NFT_META_IIFNAME }, raw[] = { 0, 0, 3, 64, 128 };
	struct nftnl_udata *top, *data;
	bool ok;

	ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 0);
	if (!port)
		return ok && udata_typeof_expr(u, NFTNL_UDATA_SET_KEY_TYPEOF, 7, raw, 5);
	top = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF);
	ok = ok && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, 13);
	data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	ok = ok && udata_typeof_expr(u, 0, 9, meta, 1) && udata_typeof_expr(u, 1, 7, raw, 5);
	nftnl_udata_nest_end(u, data);
	nftnl_udata_nest_end(u, top);
	return ok;
}

static void set_udata(struct nftnl_set *s, enum set_id id)
{
	const struct set_desc *d = &sets[id];
	bool key = d->key_type == TYPE_IFNAME, data = d->data_type == TYPE_MARK;
	bool nd = id == S_ND_TARGETS || id == S_ND_ADDRS;
	struct nftnl_udata_buf *u;
	bool ok;

	if (!key && !data && !nd)
		return;
	u = nftnl_udata_buf_alloc(128);
	if (!u)
		return;
	if (nd)
		ok = udata_nd_targets(u, id == S_ND_TARGETS);
	else
		ok = (!key || nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1)) &&
		     (!data || nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 1));
	if (ok)
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* Add (or, del, delete) set id, or for a per_ident set the one of identity owner. */
static void batch_set(struct batch *bt, enum set_id id, uint32_t owner, bool del)
{
	const struct set_desc *d = &sets[id];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	char name[32];

	if (!s) {
		bt->err = -ENOMEM;
		return;
	}
	set_name(id, owner, name, sizeof(name));
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, tbls[d->t].family);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (!del) {
		/* the kernel wants an id, unique in the batch, on every new set */
		nftnl_set_set_u32(s, NFTNL_SET_ID, ++bt->nsets);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	}
	if (!del && (d->flags & NFT_SET_MAP)) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
	}
	if (!del)
		set_udata(s, id);
	if (!del && d->fields[0]) {
		uint8_t f[NFT_REG32_COUNT] = {0};

		memcpy(f, d->fields, sizeof(d->fields));
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, f, sizeof(f));
	}
	nlh = batch_hdr(bt, del ? NFT_MSG_DELSET : NFT_MSG_NEWSET, d->t, del ? 0 : NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	batch_commit(bt, nlh, "%s set %s moat %s", del ? "delete" : "add", tbls[d->t].fname, name);
}

/* Add (or delete, with its rules) a chain; hook < 0 for a regular chain. */
static void batch_chain(struct batch *bt, enum tbl t, const char *name, int hook, int prio,
			bool del)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, tbls[t].family);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_hdr(bt, del ? NFT_MSG_DELCHAIN : NFT_MSG_NEWCHAIN, t, del ? 0 : NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_commit(bt, nlh, "%s chain %s moat %s", del ? "delete" : "add", tbls[t].fname, name);
}

/* Element data: a mark, or for verdict maps a goto to the identity's chain. */
static void put_elem_data(struct nlmsghdr *nlh, enum set_id s, const struct elem *e)
{
	struct nlattr *d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);

	if (sets[s].data_type == NFT_DATA_VERDICT) {
		struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
		char chain[32];

		snprintf(chain, sizeof(chain), sets[s].jump, e->data);
		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)NFT_GOTO));
		mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, chain);
		mnl_attr_nest_end(nlh, v);
	} else {
		mnl_attr_put(nlh, NFTA_DATA_VALUE, sets[s].data_len, &e->data);
	}
	mnl_attr_nest_end(nlh, d);
}

static void put_elem(struct nlmsghdr *nlh, enum set_id s, const struct elem *e, bool del)
{
	const struct set_desc *d = &sets[s];
	struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	struct nlattr *k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);

	mnl_attr_put(nlh, NFTA_DATA_VALUE, d->key_len, e->key);
	mnl_attr_nest_end(nlh, k);
	if (d->fields[0]) {
		k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY_END);
		mnl_attr_put(nlh, NFTA_DATA_VALUE, d->key_len, e->key_end);
		mnl_attr_nest_end(nlh, k);
	}
	if (e->flags)
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(e->flags));
	else if (!del && (d->flags & NFT_SET_MAP))
		put_elem_data(nlh, s, e);
	mnl_attr_nest_end(nlh, el);
}

/*
 * NEWSETELEM/DELSETELEM messages for elems, split so that each stays below ELEM_MSG_MAX and,
 * for per_ident sets, so that each carries one owner's elements (its set's name).
 */
static void batch_elems(struct batch *bt, enum set_id s, const struct elem *v, size_t n, bool del)
{
	const struct set_desc *d = &sets[s];
	uint16_t type = del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM;

	while (n > 0 && !bt->err) {
		struct nlmsghdr *nlh = batch_hdr(bt, type, d->t, del ? 0 : NLM_F_CREATE);
		struct nlattr *list;
		struct msgrec *r;
		char name[32];
		size_t i = 0;

		set_name(s, v[0].owner, name, sizeof(name));
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, name);
		list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		while (i < n && nlh->nlmsg_len < ELEM_MSG_MAX && v[i].owner == v[0].owner)
			put_elem(nlh, s, &v[i++], del);
		mnl_attr_nest_end(nlh, list);
		r = batch_commit(bt, nlh, "%s element %s moat %s", del ? "delete" : "add",
				 tbls[d->t].fname, name);
		if (r) {
			r->set = s;
			r->elems = v;
			r->nelems = i;
		}
		*(del ? &bt->deleted : &bt->added) += i;
		v += i;
		n -= i;
	}
}

/* ---- rules ----------------------------------------------------------------------------- */

/* A rule under construction; helpers do nothing once err is set. */
struct rb {
	struct nftnl_rule *r;
	int err;
	enum tbl t;
	char chain[32];
};

static struct nftnl_expr *rb_expr(struct rb *rb, const char *name)
{
	struct nftnl_expr *e;

	if (rb->err)
		return NULL;
	e = nftnl_expr_alloc(name);
	if (!e) {
		rb->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(rb->r, e);
	return e;
}

static void x_meta(struct rb *rb, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
}

static void x_payload(struct rb *rb, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
}

static void x_cmp(struct rb *rb, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = rb_expr(rb, "cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

static void x_cmp8(struct rb *rb, uint32_t sreg, uint32_t op, uint8_t v)
{
	x_cmp(rb, sreg, op, &v, 1);
}

static void x_bitwise(struct rb *rb, uint32_t reg, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = rb_expr(rb, "bitwise");
	static const uint8_t zero[16];

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
}

/*
 * dreg < 0: a plain membership test (inv: not a member). The set is found by name, also
 * when the same batch creates it.
 */
static void x_lookup_named(struct rb *rb, const char *set, uint32_t sreg, int dreg, bool inv)
{
	struct nftnl_expr *e = rb_expr(rb, "lookup");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
		if (dreg >= 0)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
		if (inv)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	}
}

static void x_verdict(struct rb *rb, int verdict, const char *chain)
{
	struct nftnl_expr *e = rb_expr(rb, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
}

static void x_counter(struct rb *rb)
{
	rb_expr(rb, "counter");
}

static void x_log(struct rb *rb, const char *prefix, uint16_t group)
{
	struct nftnl_expr *e = rb_expr(rb, "log");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
		nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, group);
		/* headers are all the flow table reads: IPv6 with options, and the ports */
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, NFT_LOG_SNAPLEN);
	}
}

static void x_lookup(struct rb *rb, enum set_id s, uint32_t sreg, int dreg, bool inv)
{
	x_lookup_named(rb, sets[s].name, sreg, dreg, inv);
}

/* ct state & mask != 0 */
static void x_ctstate(struct rb *rb, uint32_t mask)
{
	struct nftnl_expr *e = rb_expr(rb, "ct");
	uint32_t zero = 0;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	x_bitwise(rb, NFT_REG_1, &mask, 4);
	x_cmp(rb, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

static void x_nfproto(struct rb *rb, uint8_t nfproto)
{
	x_meta(rb, NFT_META_NFPROTO, NFT_REG_1);
	x_cmp8(rb, NFT_REG_1, NFT_CMP_EQ, nfproto);
}

static void x_ethertype(struct rb *rb, uint16_t type)
{
	uint16_t be = htons(type);

	x_payload(rb, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
	x_cmp(rb, NFT_REG_1, NFT_CMP_EQ, &be, 2);
}

static void x_l4proto(struct rb *rb, uint8_t proto)
{
	x_meta(rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp8(rb, NFT_REG_1, NFT_CMP_EQ, proto);
}

static struct rb rule_start_in(enum tbl t, const char *chain)
{
	struct rb rb = { nftnl_rule_alloc(), 0, t, "" };

	snprintf(rb.chain, sizeof(rb.chain), "%s", chain);
	if (!rb.r) {
		rb.err = -ENOMEM;
		return rb;
	}
	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, tbls[t].family);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, chain);
	return rb;
}

static struct rb rule_start(enum chain_id c)
{
	return rule_start_in(chains[c].t, chains[c].name);
}

static void rule_end(struct batch *bt, struct rb *rb, const char *what)
{
	struct nlmsghdr *nlh;

	if (!rb->err && !bt->err) {
		nlh = batch_hdr(bt, NFT_MSG_NEWRULE, rb->t, NLM_F_CREATE | NLM_F_APPEND);
		nftnl_rule_nlmsg_build_payload(nlh, rb->r);
		batch_commit(bt, nlh, "add rule %s moat %s (%s)", tbls[rb->t].fname, rb->chain,
			     what);
		bt->nrules[rb->t]++;
	}
	if (rb->err && !bt->err)
		bt->err = rb->err;
	if (rb->r)
		nftnl_rule_free(rb->r);
}

/* The conntrack bits of `ct state` (NF_CT_STATE_BIT). */
#define CT_INVALID 1u
#define CT_ESTABLISHED 2u
#define CT_RELATED 4u
#define CT_NEW 8u

/* Per family: where the addresses are and which maps hold them. */
struct fam {
	uint8_t nfproto, alen;
	uint32_t saddr, daddr;		/* network header offsets */
	enum set_id ep, net, managed, in, out;
	const char *name;
};

static const struct fam fams[2] = {
	{ NFPROTO_IPV4, 4, 12, 16, S_EP4, S_NET4, S_MANAGED4, S_IN4, S_OUT4, "ip" },
	{ NFPROTO_IPV6, 16, 8, 24, S_EP6, S_NET6, S_MANAGED6, S_IN6, S_OUT6, "ip6" },
};

/* "Self" is the endpoint whose isolation a direction checks; the peer is the other end. */
static uint32_t self_off(const struct fam *f, bool egress)
{
	return egress ? f->saddr : f->daddr;
}

/*
 * The connection-start log: one NFLOG record per new connection that passed, when one end
 * is an endpoint (so the node's own traffic is not logged). Accept ends this chain only.
 */
static void rules_pass_log(struct batch *bt, enum chain_id c, uint16_t group)
{
	for (int f = 0; f < 2; f++)
		for (int egress = 0; egress < 2; egress++) {
			struct rb rb = rule_start(c);
			char what[32];

			x_nfproto(&rb, fams[f].nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(&fams[f], egress),
				  fams[f].alen, NFT_REG_1);
			x_lookup(&rb, fams[f].ep, NFT_REG_1, -1, false);
			x_ctstate(&rb, CT_NEW);
			x_log(&rb, NFT_PREFIX_PASS, group);
			x_verdict(&rb, NF_ACCEPT, NULL);
			snprintf(what, sizeof(what), "log %s %s", fams[f].name,
				 egress ? "saddr" : "daddr");
			rule_end(bt, &rb, what);
		}
}

/*
 * ICMP errors are RELATED to the connection they quote, and conntrack does not ask who sent
 * them: an endpoint that learnt another connection's addresses and ports could make its
 * ends give up (or shrink their MTU). From an endpoint, an error passes only when the sender
 * is one end of the connection it quotes: (saddr . ct original saddr or daddr) in self4/6,
 * which holds (a . a) for every endpoint address. Routers (not endpoints) still report.
 */
static void rules_related(struct batch *bt, enum chain_id c)
{
	static const uint32_t ct_keys[2][2] = {
		{ NFT_CT_SRC_IP, NFT_CT_DST_IP }, { NFT_CT_SRC_IP6, NFT_CT_DST_IP6 },
	};

	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		enum set_id self = i ? S_SELF6 : S_SELF4;
		struct rb rb;

		for (int k = 0; k < 2; k++) {
			struct nftnl_expr *e;

			rb = rule_start(c);
			x_nfproto(&rb, f->nfproto);
			x_ctstate(&rb, CT_RELATED);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr, f->alen, NFT_REG32_00);
			e = rb_expr(&rb, "ct");
			if (e) {
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, ct_keys[i][k]);
				nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG32_00 + f->alen / 4);
			}
			x_lookup(&rb, self, NFT_REG32_00, -1, false);
			x_verdict(&rb, NF_ACCEPT, NULL);
			rule_end(bt, &rb, k ? "related, from the connection's destination"
					    : "related, from the connection's source");
		}
		rb = rule_start(c);
		x_nfproto(&rb, f->nfproto);
		x_ctstate(&rb, CT_RELATED);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr, f->alen, NFT_REG_1);
		x_lookup(&rb, f->ep, NFT_REG_1, -1, false);
		x_counter(&rb);
		x_verdict(&rb, NF_DROP, NULL);
		rule_end(bt, &rb, "related, from an endpoint not party to the connection");
	}
}

/*
 * Base chain preamble. Neighbour discovery and MLD are untracked by conntrack, so they would
 * meet the policy chains as new packets and break IPv6 between isolated containers; they are
 * link-local by design, and the hop limit proves it (255 for ND, 1 for MLD: a routed packet
 * arrives with at most 254).
 */
static void rules_base(struct batch *bt, enum chain_id c, uint16_t group)
{
	static const struct { uint8_t lo, hi, hoplimit; const char *what; } icmp6[] = {
		{ 133, 137, 255, "neighbour discovery" },
		{ 130, 132, 1, "MLD" },
		{ 143, 143, 1, "MLDv2 report" },
	};
	struct rb rb;

	if (c == C_INPUT) {
		uint32_t lo = 1;	/* loopback is ifindex 1 in every namespace */

		rb = rule_start(c);
		x_meta(&rb, NFT_META_IIF, NFT_REG_1);
		x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &lo, 4);
		x_verdict(&rb, NF_ACCEPT, NULL);
		rule_end(bt, &rb, "the node's own traffic");
	}
	rb = rule_start(c);
	x_ctstate(&rb, CT_ESTABLISHED);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, &rb, "ct state established");
	rules_related(bt, c);
	rb = rule_start(c);
	x_ctstate(&rb, CT_RELATED);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, &rb, "ct state related");
	rb = rule_start(c);
	x_ctstate(&rb, CT_INVALID);
	x_verdict(&rb, NF_DROP, NULL);
	rule_end(bt, &rb, "ct state invalid");
	for (size_t i = 0; i < sizeof(icmp6) / sizeof(icmp6[0]); i++) {
		rb = rule_start(c);
		x_nfproto(&rb, NFPROTO_IPV6);
		x_l4proto(&rb, IPPROTO_ICMPV6);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_GTE, icmp6[i].lo);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_LTE, icmp6[i].hi);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 7, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, icmp6[i].hoplimit);
		x_verdict(&rb, NF_ACCEPT, NULL);
		rule_end(bt, &rb, icmp6[i].what);
	}
	if (c == C_FORWARD) {
		rb = rule_start(c);
		x_verdict(&rb, NFT_JUMP, "ingress");
		rule_end(bt, &rb, "jump ingress");
	}
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "egress");
	rule_end(bt, &rb, "jump egress");
	rules_pass_log(bt, c, group);
}

/*
 * Chains ingress and egress: an unknown address in a managed subnet fails closed (first, so
 * that an ipBlock allow covering a managed subnet never lets it through), then the address
 * of the endpoint whose isolation this direction checks goes to its identity's chain.
 */
static void rules_dir(struct batch *bt, enum chain_id c, bool egress)
{
	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		char what[64];
		struct rb rb = rule_start(c);

		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(f, egress), f->alen, NFT_REG_1);
		x_lookup(&rb, f->managed, NFT_REG_1, -1, false);
		x_lookup(&rb, f->ep, NFT_REG_1, -1, true);
		x_verdict(&rb, NFT_JUMP, "unknown");
		snprintf(what, sizeof(what), "%s: unknown address in a managed subnet", f->name);
		rule_end(bt, &rb, what);

		rb = rule_start(c);
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(f, egress), f->alen, NFT_REG_1);
		x_lookup(&rb, egress ? f->out : f->in, NFT_REG_1, NFT_REG_VERDICT, false);
		snprintf(what, sizeof(what), "%s: vmap @%s", f->name, sets[egress ? f->out : f->in].name);
		rule_end(bt, &rb, what);
	}
}

/*
 * Chains peer_src and peer_dst: the peer's identity into the connection's mark, the one
 * scratch register that `nft list` can show in a concatenation (a lookup result cannot be).
 * The net map covers every address; an endpoint's exact address overrides it.
 */
static void rules_peer(struct batch *bt, enum chain_id c, bool src)
{
	for (int i = 0; i < 2; i++)
		for (int ep = 0; ep < 2; ep++) {
			const struct fam *f = &fams[i];
			struct rb rb = rule_start(c);
			struct nftnl_expr *e;
			char what[64];

			x_nfproto(&rb, f->nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, src ? f->saddr : f->daddr,
				  f->alen, NFT_REG_1);
			x_lookup(&rb, ep ? f->ep : f->net, NFT_REG_1, NFT_REG_1, false);
			e = rb_expr(&rb, "ct");
			if (e) {
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
			}
			snprintf(what, sizeof(what), "ct mark set %s map @%s", f->name,
				 sets[ep ? f->ep : f->net].name);
			rule_end(bt, &rb, what);
		}
}

static void rule_log(struct batch *bt, enum chain_id c, const char *prefix, uint16_t group,
		     int verdict)
{
	struct rb rb = rule_start(c);

	x_counter(&rb);
	if (prefix)
		x_log(&rb, prefix, group);
	if (verdict != NFT_CONTINUE)
		x_verdict(&rb, verdict, NULL);
	rule_end(bt, &rb, prefix ? prefix : "counter");
}

static void rules_inet(struct batch *bt, const struct nft_input *in)
{
	uint16_t g = in->nflog_group;

	rules_base(bt, C_FORWARD, g);
	rules_base(bt, C_INPUT, g);
	rules_dir(bt, C_INGRESS, false);
	rules_dir(bt, C_EGRESS, true);
	rules_peer(bt, C_PEER_SRC, true);
	rules_peer(bt, C_PEER_DST, false);
	rule_log(bt, C_DENY_IN, NFT_PREFIX_DROP_IN, g, NF_DROP);
	rule_log(bt, C_DENY_OUT, NFT_PREFIX_DROP_OUT, g, NF_DROP);
	/* Violations pass: the connection-start log reports them (userspace tells them apart). */
	rule_log(bt, C_MON_IN, NULL, g, NFT_CONTINUE);
	rule_log(bt, C_MON_OUT, NULL, g, NFT_CONTINUE);
	if (in->mode == MOAT_MODE_MONITOR)
		rule_log(bt, C_UNKNOWN, NULL, g, NFT_CONTINUE);
	else
		rule_log(bt, C_UNKNOWN, NFT_PREFIX_DROP_UNKNOWN, g, NF_DROP);
}

/* ct mark . meta l4proto . th dport (from = 1) or meta l4proto . th dport in a per_ident set. */
static void x_allow(struct rb *rb, enum set_id s, uint32_t owner, bool from)
{
	uint32_t r = NFT_REG32_00;
	char name[32];

	if (from) {
		struct nftnl_expr *e = rb_expr(rb, "ct");

		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, r);
		}
		e = rb_expr(rb, "byteorder");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, r);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, r);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, 4);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, 4);
		}
		r++;
	}
	x_meta(rb, NFT_META_L4PROTO, r);
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r + 1);
	x_lookup_named(rb, set_name(s, owner, name, sizeof(name)), NFT_REG32_00, -1, false);
	x_verdict(rb, NFT_RETURN, NULL);
}

/* An isolated identity's sets, chain and rules: what it lets in (or out), else deny. */
static void batch_owner(struct batch *bt, const struct owner *o)
{
	enum set_id peer = o->egress ? S_TO : S_FROM, any = o->egress ? S_OUT_ANY : S_IN_ANY;
	char chain[32];
	struct rb rb;

	snprintf(chain, sizeof(chain), o->egress ? "out_%u" : "in_%u", o->id);
	batch_set(bt, peer, o->id, false);
	batch_set(bt, any, o->id, false);
	batch_chain(bt, T_INET, chain, -1, 0, false);
	rb = rule_start_in(T_INET, chain);
	x_verdict(&rb, NFT_JUMP, chains[o->egress ? C_PEER_DST : C_PEER_SRC].name);
	rule_end(bt, &rb, "the peer's identity");
	rb = rule_start_in(T_INET, chain);
	x_allow(&rb, peer, o->id, true);
	rule_end(bt, &rb, "ct mark . meta l4proto . th dport");
	rb = rule_start_in(T_INET, chain);
	x_allow(&rb, any, o->id, false);
	rule_end(bt, &rb, "meta l4proto . th dport");
	rb = rule_start_in(T_INET, chain);
	x_verdict(&rb, NFT_JUMP, chains[o->monitor ? (o->egress ? C_MON_OUT : C_MON_IN)
					       : (o->egress ? C_DENY_OUT : C_DENY_IN)].name);
	rule_end(bt, &rb, o->monitor ? "monitor" : "deny");
}

/* Delete an identity's chain (its rules go with it), then its sets. */
static void batch_owner_del(struct batch *bt, const struct owner *o)
{
	char chain[32];

	snprintf(chain, sizeof(chain), o->egress ? "out_%u" : "in_%u", o->id);
	batch_chain(bt, T_INET, chain, -1, 0, true);
	batch_set(bt, o->egress ? S_TO : S_FROM, o->id, true);
	batch_set(bt, o->egress ? S_OUT_ANY : S_IN_ANY, o->id, true);
}

/*
 * iifname (or oifname: port is NFT_META_OIFNAME) . <addr at off> in set s, then return: the
 * name fills registers 0-3, the address follows.
 */
static void x_port_addr_in(struct rb *rb, uint32_t port, uint32_t off, uint32_t len,
			   enum set_id s)
{
	x_meta(rb, port, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG32_04);
	x_lookup(rb, s, NFT_REG32_00, -1, false);
	x_verdict(rb, NFT_RETURN, NULL);
}

static void x_port_addr(struct rb *rb, uint32_t off, uint32_t len, enum set_id s)
{
	x_port_addr_in(rb, NFT_META_IIFNAME, off, len, s);
}

/* iifname . ether saddr . <addr at off> in set s, then return (registers 0-3, 4-5, 6-). */
static void x_port_mac_addr(struct rb *rb, uint32_t off, uint32_t len, enum set_id s)
{
	x_meta(rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG32_04);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG32_06);
	x_lookup(rb, s, NFT_REG32_00, -1, false);
	x_verdict(rb, NFT_RETURN, NULL);
}

/* ARP for Ethernet and IPv4: htype 1, ptype 0x0800, hlen 6, plen 4. */
static void x_arp_ether_ip(struct rb *rb)
{
	static const uint8_t hdr[6] = { 0, 1, 8, 0, 6, 4 };

	x_ethertype(rb, 0x0806);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, 0, 6, NFT_REG_1);
	x_cmp(rb, NFT_REG_1, NFT_CMP_EQ, hdr, 6);
}

static void rules_bridge_nd(struct batch *bt, enum chain_id c)
{
	static const uint8_t ll_mask[16] = { 0xff, 0xc0 }, ll[16] = { 0xfe, 0x80 }, any[16];
	struct rb rb;

	for (int i = 0; i < 2; i++) {
		rb = rule_start(c);
		x_ethertype(&rb, 0x86dd);
		x_l4proto(&rb, IPPROTO_ICMPV6);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, i ? 137 : 134);
		x_verdict(&rb, NFT_JUMP, "spoof");
		rule_end(bt, &rb, i ? "redirect from a container" : "router advertisement");
	}
	/*
	 * A neighbour advertisement may announce only the sender's own addresses, or else one
	 * container could make another send it a third's traffic. Link-local targets cannot be
	 * checked (runtimes do not report them); the destination check in chain forward stops
	 * what such a lie would divert.
	 */
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, 136);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_2);
	x_bitwise(&rb, NFT_REG_2, ll_mask, 16);
	x_cmp(&rb, NFT_REG_2, NFT_CMP_NEQ, ll, 16);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG32_04);
	x_lookup(&rb, S_ND_TARGETS, NFT_REG32_00, -1, true);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "neighbour advertisement for an address not the sender's");
	for (int i = 0; i < 2; i++) {
		rb = rule_start(c);
		x_ethertype(&rb, 0x86dd);
		x_l4proto(&rb, IPPROTO_ICMPV6);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
		if (!i)
			x_bitwise(&rb, NFT_REG_1, ll_mask, 16);
		x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, i ? any : ll, 16);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_2);
		x_lookup(&rb, S_ND_TYPES, NFT_REG_2, -1, false);
		x_verdict(&rb, NFT_RETURN, NULL);
		rule_end(bt, &rb, i ? "ND from ::" : "ND from fe80::/10");
	}
}

/*
 * The mirror of anti-spoofing, for frames the bridge forwards to a container's veth: the IP
 * destination must be that container's own address. So a bridge whose forwarding database
 * was taught another's MAC, or a neighbour cache poisoned with a link-local lie, delivers
 * nothing to the wrong container; and an ingress-isolated container gets no broadcast,
 * multicast or link-local traffic, which its policies (about its addresses) never allow.
 * ARP, neighbour discovery and MLD pass: the prerouting chain vetted them.
 */
static void rules_bridge_forward(struct batch *bt, const struct nft_input *in)
{
	static const uint8_t group[6] = { 1 }, ll_mask[16] = { 0xff, 0xc0 }, ll[16] = { 0xfe, 0x80 };
	enum chain_id c = C_BR_FORWARD;
	struct rb rb;

	/* First, as most frames are that: the rules before them would return for none of these. */
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_addr_in(&rb, NFT_META_OIFNAME, 16, 4, S_SRC4);
	rule_end(bt, &rb, "oifname . ip daddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_port_addr_in(&rb, NFT_META_OIFNAME, 24, 16, S_SRC6);
	rule_end(bt, &rb, "oifname . ip6 daddr");
	rb = rule_start(c);
	x_meta(&rb, NFT_META_OIFNAME, NFT_REG_1);
	x_lookup(&rb, S_PORTS, NFT_REG_1, -1, true);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "not to a managed port");
	rb = rule_start(c);
	x_ethertype(&rb, 0x0806);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "ARP");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_2);
	x_lookup(&rb, S_ND_TYPES, NFT_REG_2, -1, false);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "neighbour discovery and MLD");
	for (int i = 0; i < 2; i++) {
		rb = rule_start(c);
		x_meta(&rb, NFT_META_OIFNAME, NFT_REG_1);
		x_lookup(&rb, S_ISO_PORTS, NFT_REG_1, -1, true);
		if (i) {
			x_ethertype(&rb, 0x86dd);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, NFT_REG_2);
			x_bitwise(&rb, NFT_REG_2, ll_mask, 16);
			x_cmp(&rb, NFT_REG_2, NFT_CMP_EQ, ll, 16);
		} else {
			x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 0, 6, NFT_REG_2);
			x_bitwise(&rb, NFT_REG_2, group, 6);
			x_cmp(&rb, NFT_REG_2, NFT_CMP_EQ, group, 6);
		}
		x_verdict(&rb, NFT_RETURN, NULL);
		rule_end(bt, &rb, i ? "link-local to an open container" : "group address to an open container");
	}
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "misdirected");
	rule_end(bt, &rb, "not the container's own address");
	rule_log(bt, C_MISDIRECTED, NFT_PREFIX_DROP_IN, in->nflog_group, NF_DROP);
}

/*
 * A port moatd does not know (a container started while moatd was down or before its event
 * was handled, or no container at all) may not claim what a known endpoint owns: its MAC,
 * its addresses as source, in ARP or in a neighbour advertisement. Else a container that
 * Docker gave a departed endpoint's address would inherit that endpoint's identity and
 * policies, or poison the bridge and the neighbours to intercept a known endpoint's traffic.
 * Anything else passes: frames of bridges that are not Docker's are none of moatd's business,
 * and the inet table drops a stranger's traffic on a managed subnet (chain unknown).
 */
static void rules_bridge_stranger(struct batch *bt)
{
	enum chain_id c = C_STRANGER;
	struct rb rb;

	rb = rule_start(c);
	x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_1);
	x_lookup(&rb, S_ETHERS, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "ether saddr of an endpoint");
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
	x_lookup(&rb, S_ADDRS4, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "ip saddr of an endpoint");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
	x_lookup(&rb, S_ADDRS6, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "ip6 saddr of an endpoint");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG_1);
	x_lookup(&rb, S_ADDRS4, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "arp saddr ip of an endpoint");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, 136);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_1);
	x_lookup(&rb, S_ND_ADDRS, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "neighbour advertisement for an endpoint's address");
}

/*
 * Anti-spoofing at the bridge, where iifname is still the container's veth. Frames of any
 * other ethertype (VLAN tags included) from a managed port are dropped: they could carry
 * addresses this chain does not check.
 */
static void rules_bridge(struct batch *bt, const struct nft_input *in)
{
	enum chain_id c = C_PREROUTING;
	uint32_t zero = 0;
	struct rb rb;

	/*
	 * First, one lookup for what most frames are: IP from a known port with its own MAC and
	 * address, which every rule below would let through. ICMPv6 takes the long way, past the
	 * neighbour discovery checks.
	 */
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_mac_addr(&rb, 12, 4, S_OWN4);
	rule_end(bt, &rb, "iifname . ether saddr . ip saddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_meta(&rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_NEQ, IPPROTO_ICMPV6);
	x_port_mac_addr(&rb, 8, 16, S_OWN6);
	rule_end(bt, &rb, "iifname . ether saddr . ip6 saddr, not ICMPv6");
	rb = rule_start(c);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_PORTS, NFT_REG_1, -1, true);
	x_verdict(&rb, NFT_GOTO, "stranger");
	rule_end(bt, &rb, "not a managed port");
	rules_bridge_stranger(bt);
	/* another's MAC would teach the bridge to send that container's frames here */
	rb = rule_start(c);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_MAC_PORTS, NFT_REG_1, -1, false);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG32_04);
	x_lookup(&rb, S_MACS, NFT_REG32_00, -1, true);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "iifname . ether saddr");
	rules_bridge_nd(bt, c);
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_addr(&rb, 12, 4, S_SRC4);
	rule_end(bt, &rb, "iifname . ip saddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_port_addr(&rb, 8, 16, S_SRC6);
	rule_end(bt, &rb, "iifname . ip6 saddr");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_port_addr(&rb, 14, 4, S_SRC4);
	rule_end(bt, &rb, "iifname . arp saddr ip");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG_1);
	x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &zero, 4);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "ARP probe from 0.0.0.0");
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "anything else from a managed port");
	rule_log(bt, C_SPOOF, NFT_PREFIX_SPOOF, in->nflog_group, NF_DROP);
	rules_bridge_forward(bt, in);
}

/* ---- full and incremental batches --------------------------------------------------- */

static void batch_full(struct batch *bt, const struct nft_input *in, const struct elemv *v,
		       const struct ownerv *o)
{
	for (int t = 0; t < T_COUNT; t++) {
		/* add (never fails), delete, add: the batch works whether the table exists or not */
		batch_table(bt, t, NFT_MSG_NEWTABLE);
		batch_table(bt, t, NFT_MSG_DELTABLE);
		batch_table(bt, t, NFT_MSG_NEWTABLE);
	}
	for (int s = 0; s < S_COUNT; s++)
		if (!sets[s].per_ident)
			batch_set(bt, s, 0, false);
	for (int c = 0; c < C_COUNT; c++)
		batch_chain(bt, chains[c].t, chains[c].name, chains[c].hook, chains[c].prio, false);
	rules_inet(bt, in);
	rules_bridge(bt, in);
	for (size_t i = 0; i < o->n; i++)
		batch_owner(bt, &o->v[i]);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, v[s].v, v[s].n, false);
}

static int owner_cmp(const struct owner *a, const struct owner *b)
{
	if (a->egress != b->egress)
		return a->egress - b->egress;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Identity chains in old only (gone) or new only (added). A chain whose mode changed needs
 * its last rule replaced: returns 1 then, and the caller applies in full.
 */
static int diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
		       struct ownerv *added)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (!ret && (i < old->n || j < new->n)) {
		int c = i == old->n ? 1 : j == new->n ? -1 : owner_cmp(&old->v[i], &new->v[j]);
		const struct owner *x = c < 0 ? &old->v[i] : &new->v[j];

		if (c == 0 && old->v[i].monitor != new->v[j].monitor)
			return 1;
		if (c < 0)
			ret = ownerv_push(gone, x->id, x->egress, x->monitor);
		else if (c > 0)
			ret = ownerv_push(added, x->id, x->egress, x->monitor);
		i += c <= 0;
		j += c >= 0;
	}
	return ret;
}

static bool owner_in(const struct ownerv *o, uint32_t id, bool egress)
{
	for (size_t lo = 0, hi = o->n; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		struct owner k = { id, egress, 0 };
		int c = owner_cmp(&k, &o->v[mid]);

		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static bool elemv_equal(const struct elemv *a, const struct elemv *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof(*a->v)));
}

/*
 * rbtree interval sets change whole: an end element can be the same bytes in the old and
 * new sets while closing a different interval in each, and keeping it would make the kernel
 * see two ends in a row (a partial overlap, EEXIST). The batch deletes every old element and
 * adds every new one; the kernel checks overlaps against the next generation only. These
 * sets are small (ipBlock boundaries, managed subnets), and unchanged ones send nothing.
 */
static int diff_intervals(const struct elemv *old, const struct elemv *new, struct elemv *del,
			  struct elemv *add)
{
	int ret = 0;

	if (elemv_equal(old, new))
		return 0;
	for (size_t i = 0; i < old->n && !ret; i++)
		ret = elemv_push(del, &old->v[i]);
	for (size_t i = 0; i < new->n && !ret; i++)
		ret = elemv_push(add, &new->v[i]);
	return ret;
}

/*
 * The elements of one set that differ: in old only (to delete) or in new only (to add).
 * Elements of an identity whose chain goes are not deleted one by one: its set goes whole.
 */
static int diff_set(enum set_id s, const struct elemv *old, const struct elemv *new,
		    const struct ownerv *gone, struct elemv *del, struct elemv *add)
{
	bool egress = s == S_TO || s == S_OUT_ANY;
	size_t i = 0, j = 0;
	int ret = 0;

	if (sets[s].flags == IVL || sets[s].flags == (MAP | IVL))
		return diff_intervals(old, new, del, add);
	if (elemv_equal(old, new))
		return 0;
	while (!ret && (i < old->n || j < new->n)) {
		int c = i == old->n ? 1 : j == new->n ? -1 : elem_cmp(&old->v[i], &new->v[j]);

		if (c < 0 && !(sets[s].per_ident && owner_in(gone, old->v[i].owner, egress)))
			ret = elemv_push(del, &old->v[i]);
		else if (c > 0)
			ret = elemv_push(add, &new->v[j]);
		i += c <= 0;
		j += c >= 0;
	}
	return ret;
}

/*
 * Order matters within the one batch: new identity chains (and their sets) exist before
 * the verdict map elements that go to them; element deletes come before adds (an interval
 * or pipapo range being replaced would otherwise overlap); a chain goes only after the
 * elements that go to it.
 */
static int batch_incremental(struct batch *bt, const struct elemv *old, const struct elemv *new,
			     const struct ownerv *gone, const struct ownerv *added,
			     struct elemv *del, struct elemv *add)
{
	for (int s = 0; s < S_COUNT; s++) {
		int ret = diff_set(s, &old[s], &new[s], gone, &del[s], &add[s]);

		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < added->n; i++)
		batch_owner(bt, &added->v[i]);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, del[s].v, del[s].n, true);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, add[s].v, add[s].n, false);
	for (size_t i = 0; i < gone->n; i++)
		batch_owner_del(bt, &gone->v[i]);
	return 0;
}

/* ---- talking to the kernel --------------------------------------------------------------- */

static const struct msgrec *rec_find(const struct batch *bt, uint32_t seq)
{
	if (seq <= bt->seq0 || seq - bt->seq0 - 1 >= bt->nrecs)
		return NULL;
	return &bt->recs[seq - bt->seq0 - 1];
}

/* Which element of an element message starts at byte offset off (extended ACK), or -1. */
static long elem_at(const struct msgrec *r, uint32_t off)
{
	const struct nlattr *a, *e;
	long i = 0;

	mnl_attr_for_each(a, r->nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a) {
			if ((const char *)e - (const char *)r->nlh == (long)off)
				return i;
			i++;
		}
	}
	return -1;
}

static void report_error(const struct batch *bt, const struct nlmsghdr *nlh, int err,
			 struct moat_diags *diags)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct msgrec *r = rec_find(bt, e->msg.nlmsg_seq);
	const char *kmsg = NULL;
	uint32_t off = 0;
	bool has_off = false;
	char el[160] = "";
	const struct nlattr *a;

	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t hlen = sizeof(*e) + (nlh->nlmsg_flags & NLM_F_CAPPED ? 0 :
				mnl_nlmsg_get_payload_len(&e->msg));

		mnl_attr_for_each(a, nlh, hlen) {
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
				kmsg = mnl_attr_get_str(a);
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_OFFS) {
				off = mnl_attr_get_u32(a);
				has_off = true;
			}
		}
	}
	if (r && r->set >= 0) {
		long i = has_off ? elem_at(r, off) : -1;

		if (i >= 0 && (size_t)i < r->nelems) {
			strcpy(el, ": ");
			elem_format(r->set, &r->elems[i], el + 2, sizeof(el) - 2);
		} else {
			snprintf(el, sizeof(el), " (one of %zu in this message)", r->nelems);
		}
	}
	moat_diags_add(diags, "nftables", 0, 0, "%s%s: %s%s%s", r ? r->what : "batch", el,
		       strerror(err), kmsg ? ": " : "", kmsg ? kmsg : "");
}

/*
 * Read every reply to the batch. Batches are processed while sendmsg runs, so the replies
 * are queued by the time it returns; reading until EAGAIN never waits on the kernel.
 */
static int batch_replies(struct nft_ctx *ctx, const struct batch *bt, struct moat_diags *diags)
{
	size_t acks = 0;
	int first = 0;

	for (;;) {
		int n = recv(mnl_socket_get_fd(ctx->nl), ctx->buf, sizeof(ctx->buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ctx->buf;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			moat_diags_add(diags, "nftables", 0, 0, "reading the batch replies: %s",
				       strerror(errno));
			return -errno;
		}
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			if (!e->error) {
				acks++;
				continue;
			}
			report_error(bt, nlh, -e->error, diags);
			if (!first)
				first = e->error;
		}
	}
	if (first)
		return first;
	if (acks != bt->nacks) {
		moat_diags_add(diags, "nftables", 0, 0,
			       "the kernel acknowledged %zu of %zu messages", acks, bt->nacks);
		return -EPROTO;
	}
	return 0;
}

static int batch_send(struct nft_ctx *ctx, struct batch *bt, struct moat_diags *diags)
{
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &snl, .msg_namelen = sizeof(snl) };
	int n, size = 0;

	nftnl_batch_end(batch_buf(bt), batch_seq(bt));
	if (nftnl_batch_update(bt->b) < 0)
		return -ENOMEM;
	n = nftnl_batch_iovec_len(bt->b);
	struct iovec iov[n];

	nftnl_batch_iovec(bt->b, iov, n);
	for (int i = 0; i < n; i++)
		size += iov[i].iov_len;
	/* One skb carries the whole batch: the send buffer must hold it. */
	setsockopt(mnl_socket_get_fd(ctx->nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	msg.msg_iov = iov;
	msg.msg_iovlen = n;
	ctx->seq = batch_seq(bt) + 1;
	if (sendmsg(mnl_socket_get_fd(ctx->nl), &msg, 0) < 0) {
		int err = -errno;

		moat_diags_add(diags, "nftables", 0, 0, "sending a batch of %d bytes: %s", size,
			       strerror(errno));
		return err;
	}
	return batch_replies(ctx, bt, diags);
}

/* ---- public ---------------------------------------------------------------------------- */

static int sock_open(struct mnl_socket **out, unsigned group)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int one = 1, rcv = 16 << 20;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	if (group && mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
		goto err;
	/* Acks without the original message, errors with the offending attribute's offset. */
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	*out = nl;
	return 0;
err:
	one = -errno;
	mnl_socket_close(nl);
	return one;
}

int nft_ctx_new(struct nft_ctx **out)
{
	struct nft_ctx *ctx = calloc(1, sizeof(*ctx));
	int ret;

	if (!ctx)
		return -ENOMEM;
	ret = sock_open(&ctx->nl, 0);
	if (!ret)
		ret = sock_open(&ctx->watch, NFNLGRP_NFTABLES);
	if (ret < 0) {
		nft_ctx_free(ctx);
		return ret;
	}
	ctx->portid = mnl_socket_get_portid(ctx->nl);
	ctx->seq = time(NULL);
	*out = ctx;
	return 0;
}

void nft_ctx_free(struct nft_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->nl)
		mnl_socket_close(ctx->nl);
	if (ctx->watch)
		mnl_socket_close(ctx->watch);
	elemvs_free(ctx->cur);
	free(ctx->owners.v);
	free(ctx);
}

const struct nft_stats *nft_ctx_stats(const struct nft_ctx *ctx)
{
	return &ctx->stats;
}

int nft_watch_fd(const struct nft_ctx *ctx)
{
	return mnl_socket_get_fd(ctx->watch);
}

static void state_take(struct nft_ctx *ctx, const struct nft_input *in, struct elemv *v,
		       struct ownerv *o, const struct batch *bt, bool full)
{
	elemvs_free(ctx->cur);
	memcpy(ctx->cur, v, sizeof(ctx->cur));
	memset(v, 0, sizeof(ctx->cur));
	free(ctx->owners.v);
	ctx->owners = *o;
	*o = (struct ownerv){0};
	for (int t = 0; t < T_COUNT; t++)
		ctx->nrules[t] = (full ? 0 : ctx->nrules[t]) + bt->nrules[t];
	ctx->applied = true;
	ctx->mode = in->mode;
	ctx->group = in->nflog_group;
	ctx->stats = (struct nft_stats){ full, bt->nrecs, bt->added, bt->deleted };
}

/* Rules of the identity chains: batch_owner writes this many per chain. */
#define OWNER_RULES 4

int nft_ruleset_apply(struct nft_ctx *ctx, const struct nft_input *in, bool full,
		      struct moat_diags *diags)
{
	struct elemv v[S_COUNT] = {{0}}, del[S_COUNT] = {{0}}, add[S_COUNT] = {{0}};
	struct ownerv o = {0}, gone = {0}, added = {0};
	struct batch bt;
	int ret;

	if (!ctx->applied || ctx->mode != in->mode || ctx->group != in->nflog_group)
		full = true;
	ret = build_elems(ctx, in, v);
	if (!ret)
		ret = build_owners(in->plan, &o);
	if (!ret && !full)
		ret = diff_owners(&ctx->owners, &o, &gone, &added);
	if (ret > 0)
		full = true, ret = 0;
	if (ret < 0)
		goto out_elems;
	ret = batch_init(&bt, ctx->seq);
	if (!ret && full)
		batch_full(&bt, in, v, &o);
	else if (!ret)
		ret = batch_incremental(&bt, ctx->cur, v, &gone, &added, del, add);
	if (!ret)
		ret = bt.err;
	if (ret < 0)
		moat_diags_add(diags, "nftables", 0, 0, "building the batch: %s", strerror(-ret));
	else if (bt.nrecs)
		ret = batch_send(ctx, &bt, diags);
	if (!ret) {
		/* rules of deleted chains went with them */
		ctx->nrules[T_INET] -= full ? 0 : gone.n * OWNER_RULES;
		state_take(ctx, in, v, &o, &bt, full);
	}
	batch_free(&bt);
out_elems:
	elemvs_free(v);
	elemvs_free(del);
	elemvs_free(add);
	free(o.v);
	free(gone.v);
	free(added.v);
	return ret;
}

int nft_ruleset_flush(struct nft_ctx *ctx, struct moat_diags *diags)
{
	struct batch bt;
	int ret = batch_init(&bt, ctx->seq);

	for (int t = 0; !ret && t < T_COUNT; t++) {
		batch_table(&bt, t, NFT_MSG_NEWTABLE);
		batch_table(&bt, t, NFT_MSG_DELTABLE);
	}
	if (!ret)
		ret = bt.err;
	if (!ret)
		ret = batch_send(ctx, &bt, diags);
	if (!ret) {
		elemvs_free(ctx->cur);
		free(ctx->owners.v);
		ctx->owners = (struct ownerv){0};
		memset(ctx->nrules, 0, sizeof(ctx->nrules));
		ctx->applied = false;
		ctx->stats = (struct nft_stats){ true, bt.nrecs, 0, 0 };
	}
	batch_free(&bt);
	return ret;
}

/* ---- tamper detection ------------------------------------------------------------------ */

static const char *const msg_verbs[NFT_MSG_MAX] = {
	[NFT_MSG_NEWTABLE] = "add table", [NFT_MSG_DELTABLE] = "delete table",
	[NFT_MSG_NEWCHAIN] = "add chain", [NFT_MSG_DELCHAIN] = "delete chain",
	[NFT_MSG_NEWRULE] = "add rule", [NFT_MSG_DELRULE] = "delete rule",
	[NFT_MSG_NEWSET] = "add set", [NFT_MSG_DELSET] = "delete set",
	[NFT_MSG_NEWSETELEM] = "add element", [NFT_MSG_DELSETELEM] = "delete element",
	[NFT_MSG_NEWOBJ] = "add object", [NFT_MSG_DELOBJ] = "delete object",
	[NFT_MSG_NEWFLOWTABLE] = "add flowtable", [NFT_MSG_DELFLOWTABLE] = "delete flowtable",
};

/* Every object message carries its table's name as attribute 1 (NFTA_*_TABLE / _NAME). */
static const char *msg_table(const struct nlmsghdr *nlh)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == 1 && !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
			return mnl_attr_get_str(a);
	return NULL;
}

static void watch_gen(const struct nlmsghdr *nlh, struct nft_tamper *out)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID)
			out->pid = ntohl(mnl_attr_get_u32(a));
		if (mnl_attr_get_type(a) == NFTA_GEN_PROC_NAME)
			snprintf(out->comm, sizeof(out->comm), "%s", mnl_attr_get_str(a));
	}
}

/* One notification. *foreign: a foreign change since the last NEWGEN. */
static void watch_msg(const struct nft_ctx *ctx, const struct nlmsghdr *nlh, bool *foreign,
		      struct nft_tamper *out)
{
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	const char *table;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
		return;
	if (type == NFT_MSG_NEWGEN) {
		if (*foreign)
			watch_gen(nlh, out);
		*foreign = false;
		return;
	}
	if (type >= NFT_MSG_MAX || !msg_verbs[type] || nlh->nlmsg_pid == ctx->portid)
		return;
	if (g->nfgen_family != NFPROTO_INET && g->nfgen_family != NFPROTO_BRIDGE)
		return;
	table = msg_table(nlh);
	if (!table || strcmp(table, NFT_TABLE_NAME))
		return;
	/* a deleted table announces its rules, chains and sets first: name the table */
	if (!out->changed || type == NFT_MSG_DELTABLE)
		snprintf(out->what, sizeof(out->what), "%s %s %s", msg_verbs[type],
			 g->nfgen_family == NFPROTO_INET ? "inet" : "bridge", table);
	out->changed = true;
	*foreign = true;
}

int nft_watch_read(struct nft_ctx *ctx, struct nft_tamper *out)
{
	bool foreign = false;

	memset(out, 0, sizeof(*out));
	for (;;) {
		int n = recv(nft_watch_fd(ctx), ctx->buf, sizeof(ctx->buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ctx->buf;

		if (n < 0 && errno == ENOBUFS) {
			out->lost = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n))
			watch_msg(ctx, nlh, &foreign, out);
	}
}

/* ---- verify ---------------------------------------------------------------------------- */

static int count_cb(const struct nlmsghdr *nlh, void *data)
{
	size_t *n = data;
	const struct nlattr *a, *e;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWRULE) {
		(*n)++;
		return MNL_CB_OK;
	}
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			mnl_attr_for_each_nested(e, a)
				(*n)++;
	return MNL_CB_OK;
}

/* Count the rules of a table (set == NULL) or the elements of one set. */
static int dump_count(struct nft_ctx *ctx, enum tbl t, const char *set, size_t *n)
{
	uint16_t type = set ? NFT_MSG_GETSETELEM : NFT_MSG_GETRULE;
	struct nlmsghdr *nlh;
	uint32_t seq = ctx->seq++;
	ssize_t len;
	int ret;

	*n = 0;
	nlh = nftnl_nlmsg_build_hdr(ctx->buf, type, tbls[t].family, NLM_F_DUMP, seq);
	mnl_attr_put_strz(nlh, set ? NFTA_SET_ELEM_LIST_TABLE : NFTA_RULE_TABLE, NFT_TABLE_NAME);
	if (set)
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = mnl_socket_recvfrom(ctx->nl, ctx->buf, sizeof(ctx->buf));
		if (len < 0)
			return -errno;
		ret = mnl_cb_run(ctx->buf, len, seq, ctx->portid, count_cb, n);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

/* Elements of set s that ctx applied, for one owner (per_ident sets) or all. */
static size_t applied_count(const struct nft_ctx *ctx, enum set_id s, uint32_t owner)
{
	size_t n = 0;

	if (!sets[s].per_ident)
		return ctx->cur[s].n;
	for (size_t i = 0; i < ctx->cur[s].n; i++)
		n += ctx->cur[s].v[i].owner == owner;
	return n;
}

static int verify_set(struct nft_ctx *ctx, enum set_id s, uint32_t owner, char *why,
		      size_t whylen)
{
	char name[32];
	size_t n;
	int ret = dump_count(ctx, sets[s].t, set_name(s, owner, name, sizeof(name)), &n);

	if (!ret && n != applied_count(ctx, s, owner)) {
		snprintf(why, whylen, "set %s moat %s: %zu elements, applied %zu",
			 tbls[sets[s].t].fname, name, n, applied_count(ctx, s, owner));
		return 1;
	}
	return ret;
}

static int verify(struct nft_ctx *ctx, char *why, size_t whylen)
{
	int ret = 0;

	for (int t = 0; t < T_COUNT && !ret; t++) {
		size_t n;

		ret = dump_count(ctx, t, NULL, &n);
		if (!ret && n != ctx->nrules[t]) {
			snprintf(why, whylen, "table %s moat: %zu rules, applied %u", tbls[t].fname,
				 n, ctx->nrules[t]);
			return 1;
		}
	}
	for (int s = 0; s < S_COUNT && !ret; s++)
		if (!sets[s].per_ident)
			ret = verify_set(ctx, s, 0, why, whylen);
	for (size_t i = 0; i < ctx->owners.n && !ret; i++) {
		const struct owner *o = &ctx->owners.v[i];

		ret = verify_set(ctx, o->egress ? S_TO : S_FROM, o->id, why, whylen);
		if (!ret)
			ret = verify_set(ctx, o->egress ? S_OUT_ANY : S_IN_ANY, o->id, why, whylen);
	}
	return ret;
}

int nft_ruleset_verify(struct nft_ctx *ctx, bool *in_sync, char *why, size_t whylen)
{
	int ret;

	if (!ctx->applied)
		return -ENODATA;
	if (whylen)
		why[0] = 0;
	ret = verify(ctx, why, whylen);
	if (ret == -ENOENT) {
		snprintf(why, whylen, "a moat table or set is missing");
		ret = 1;
	}
	if (ret >= 0)
		*in_sync = !ret;
	return ret < 0 ? ret : 0;
}
