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

#include "nft.h"

/* nft's datatype numbers (src/datatype.h): only `nft list` reads them, to print elements. */
enum {
	TYPE_VERDICT = 1, TYPE_IPADDR = 7, TYPE_IP6ADDR = 8, TYPE_INET_PROTOCOL = 12,
	TYPE_INET_SERVICE = 13, TYPE_MARK = 19, TYPE_ICMP6_TYPE = 29, TYPE_IFNAME = 41,
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
	S_EP4, S_EP6, S_NET4, S_NET6, S_MANAGED4, S_MANAGED6, S_ALLOW_IN, S_ALLOW_OUT,
	S_ALLOW_IN_ANY, S_ALLOW_OUT_ANY, S_IN_VERDICT, S_OUT_VERDICT, S_PORTS, S_SRC4, S_SRC6,
	S_ND_TYPES, S_COUNT
};

/* How an element of a set reads in an error message. */
enum fmt { F_ADDR_MARK, F_RANGE, F_ALLOW, F_ANY, F_VERDICT, F_IFNAME, F_IF_ADDR, F_BYTE };

#define KEY_MAX 32

struct set_desc {
	const char *name;
	enum tbl t;
	uint32_t flags;			/* NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT */
	uint32_t key_type, key_len;	/* key_len: register-padded, as the kernel wants it */
	uint32_t data_type, data_len;	/* maps only */
	uint8_t fields[4];		/* pipapo: unpadded field lengths of the concatenation */
	uint8_t alen;			/* address length inside the key, for formatting */
	enum fmt fmt;
	const char *jump[2];		/* verdict maps: element data 0 and 1 jump here */
};

#define MAP NFT_SET_MAP
#define IVL NFT_SET_INTERVAL
#define CAT (NFT_SET_INTERVAL | NFT_SET_CONCAT)

static const struct set_desc sets[S_COUNT] = {
	[S_EP4] = { "ep4", T_INET, MAP, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_ADDR_MARK, {0} },
	[S_EP6] = { "ep6", T_INET, MAP, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_ADDR_MARK, {0} },
	[S_NET4] = { "net4", T_INET, MAP | IVL, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_RANGE, {0} },
	[S_NET6] = { "net6", T_INET, MAP | IVL, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_RANGE, {0} },
	[S_MANAGED4] = { "managed4", T_INET, IVL, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_RANGE, {0} },
	[S_MANAGED6] = { "managed6", T_INET, IVL, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_RANGE, {0} },
	[S_ALLOW_IN] = { "allow_in", T_INET, CAT,
		CAT4(TYPE_MARK, TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 16, 0, 0,
		{4, 4, 1, 2}, 0, F_ALLOW, {0} },
	[S_ALLOW_OUT] = { "allow_out", T_INET, CAT,
		CAT4(TYPE_MARK, TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 16, 0, 0,
		{4, 4, 1, 2}, 0, F_ALLOW, {0} },
	[S_ALLOW_IN_ANY] = { "allow_in_any", T_INET, CAT,
		CAT3(TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 12, 0, 0, {4, 1, 2}, 0,
		F_ANY, {0} },
	[S_ALLOW_OUT_ANY] = { "allow_out_any", T_INET, CAT,
		CAT3(TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 12, 0, 0, {4, 1, 2}, 0,
		F_ANY, {0} },
	[S_IN_VERDICT] = { "in_verdict", T_INET, MAP, TYPE_MARK, 4, NFT_DATA_VERDICT, 0, {0}, 0,
		F_VERDICT, {"deny_in", "monitor_in"} },
	[S_OUT_VERDICT] = { "out_verdict", T_INET, MAP, TYPE_MARK, 4, NFT_DATA_VERDICT, 0, {0}, 0,
		F_VERDICT, {"deny_out", "monitor_out"} },
	[S_PORTS] = { "ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME, {0} },
	[S_SRC4] = { "src4", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IPADDR), IFNAMSIZ + 4,
		0, 0, {0}, 4, F_IF_ADDR, {0} },
	[S_SRC6] = { "src6", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IP6ADDR),
		IFNAMSIZ + 16, 0, 0, {0}, 16, F_IF_ADDR, {0} },
	[S_ND_TYPES] = { "nd_types", T_BRIDGE, 0, TYPE_ICMP6_TYPE, 1, 0, 0, {0}, 0, F_BYTE, {0} },
};

enum chain_id {
	C_FORWARD, C_INPUT, C_INGRESS, C_EGRESS, C_DENY_IN, C_DENY_OUT, C_MON_IN, C_MON_OUT,
	C_UNKNOWN, C_PREROUTING, C_SPOOF, C_COUNT
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
	[C_DENY_IN] = { "deny_in", T_INET, -1, 0 },
	[C_DENY_OUT] = { "deny_out", T_INET, -1, 0 },
	[C_MON_IN] = { "monitor_in", T_INET, -1, 0 },
	[C_MON_OUT] = { "monitor_out", T_INET, -1, 0 },
	[C_UNKNOWN] = { "unknown", T_INET, -1, 0 },
	[C_PREROUTING] = { "prerouting", T_BRIDGE, NF_BR_PRE_ROUTING, -300 },
	[C_SPOOF] = { "spoof", T_BRIDGE, -1, 0 },
};

/*
 * One set element. key_end is sent for pipapo sets only; flags carries
 * NFT_SET_ELEM_INTERVAL_END for the closing element of an rbtree interval. Elements compare
 * with memcmp over the whole struct (always zero-initialised), so a changed map value is a
 * delete plus an add.
 */
struct elem {
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
	unsigned nrules[C_COUNT];
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

/* Sort and drop duplicates (two endpoints may list the same iface). */
static void elemv_sort(struct elemv *v)
{
	size_t i, o = 0;

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

static int build_addrs(const struct moat_plan *p, struct elemv *v)
{
	for (size_t i = 0; i < p->naddrs; i++) {
		const struct moat_plan_addr *a = &p->addrs[i];
		struct elem e = {0};
		int ret;

		memcpy(e.key, a->addr.a, alen_of(a->addr.family));
		e.data = a->ident;
		ret = elemv_push(&v[a->addr.family == AF_INET ? S_EP4 : S_EP6], &e);
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
 * The concatenation as registers hold it: every field starts on a 4-byte boundary; marks
 * in host order (as map data lands in a register), the port in network order.
 */
static void put_tail(uint8_t *k, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);

	k[0] = proto;
	memcpy(k + 4, &be, 2);
}

static int build_allow(const struct moat_plan_elem *pe, size_t n, bool any, bool egress,
		       struct elemv *v)
{
	for (size_t i = 0; i < n; i++) {
		struct elem e = {0};
		uint32_t a = any ? (egress ? pe[i].src : pe[i].dst) : pe[i].src;
		int off = any ? 4 : 8;
		int ret;

		memcpy(e.key, &a, 4);
		memcpy(e.key_end, &a, 4);
		if (!any) {
			memcpy(e.key + 4, &pe[i].dst, 4);
			memcpy(e.key_end + 4, &pe[i].dst, 4);
		}
		put_tail(e.key + off, pe[i].proto_lo, pe[i].port_lo);
		put_tail(e.key_end + off, pe[i].proto_hi, pe[i].port_hi);
		ret = elemv_push(v, &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int build_verdicts(const struct moat_plan *p, struct elemv *v)
{
	for (size_t i = 0; i < p->nidents; i++) {
		const struct moat_plan_ident *id = &p->idents[i];
		struct elem e = {0};
		int ret = 0;

		memcpy(e.key, &id->id, 4);
		e.data = id->in_mode == MOAT_MODE_MONITOR;
		if (id->in_iso)
			ret = elemv_push(&v[S_IN_VERDICT], &e);
		e.data = id->out_mode == MOAT_MODE_MONITOR;
		if (!ret && id->out_iso)
			ret = elemv_push(&v[S_OUT_VERDICT], &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Anti-spoofing: each endpoint's veths, and every (veth, own address) pair. */
static int build_ports(const struct moat_endpoint_set *es, struct elemv *v)
{
	for (size_t i = 0; es && i < es->n; i++) {
		const struct moat_endpoint *ep = &es->v[i];

		for (size_t f = 0; f < ep->nifaces && !ep->host_network; f++) {
			struct elem e = {0};
			int ret;

			strncpy((char *)e.key, ep->ifaces[f], IFNAMSIZ - 1);
			ret = elemv_push(&v[S_PORTS], &e);
			for (size_t a = 0; a < ep->nips && !ret; a++) {
				const struct moat_addr *ad = &ep->ips[a];

				memcpy(e.key + IFNAMSIZ, ad->a, alen_of(ad->family));
				ret = elemv_push(&v[ad->family == AF_INET ? S_SRC4 : S_SRC6], &e);
				memset(e.key + IFNAMSIZ, 0, 16);
			}
			if (ret < 0)
				return ret;
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

static int build_elems(const struct nft_input *in, struct elemv *v)
{
	const struct moat_plan *p = in->plan;
	int ret;

	ret = build_addrs(p, v);
	if (!ret)
		ret = build_nets(p, v);
	if (!ret)
		ret = build_managed(in, v);
	if (!ret)
		ret = build_allow(p->allow_in, p->nallow_in, false, false, &v[S_ALLOW_IN]);
	if (!ret)
		ret = build_allow(p->allow_out, p->nallow_out, false, true, &v[S_ALLOW_OUT]);
	if (!ret)
		ret = build_allow(p->allow_in_any, p->nallow_in_any, true, false,
				  &v[S_ALLOW_IN_ANY]);
	if (!ret)
		ret = build_allow(p->allow_out_any, p->nallow_out_any, true, true,
				  &v[S_ALLOW_OUT_ANY]);
	if (!ret)
		ret = build_verdicts(p, v);
	if (!ret)
		ret = build_ports(in->es, v);
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

static void elem_format(enum set_id s, const struct elem *e, char *b, size_t len)
{
	const struct set_desc *d = &sets[s];
	char a[INET6_ADDRSTRLEN], t[64];
	uint32_t x, y;

	memcpy(&x, e->key, 4);
	memcpy(&y, e->key + 4, 4);
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
	case F_ALLOW:
		fmt_tail(t, sizeof(t), e, 8);
		snprintf(b, len, "ident %u -> ident %u %s", x, y, t);
		break;
	case F_ANY:
		fmt_tail(t, sizeof(t), e, 4);
		snprintf(b, len, "ident %u %s", x, t);
		break;
	case F_VERDICT:
		snprintf(b, len, "ident %u : jump %s", x, d->jump[e->data & 1]);
		break;
	case F_IFNAME:
		snprintf(b, len, "%.16s", (const char *)e->key);
		break;
	case F_IF_ADDR:
		fmt_addr(a, sizeof(a), e->key + IFNAMSIZ, d->alen);
		snprintf(b, len, "%.16s . %s", (const char *)e->key, a);
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
	unsigned nrules[C_COUNT];
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

static void batch_set(struct batch *bt, enum set_id id)
{
	const struct set_desc *d = &sets[id];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, tbls[d->t].family);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id + 1);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	if (d->flags & NFT_SET_MAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
	}
	if (d->fields[0]) {
		uint8_t f[NFT_REG32_COUNT] = {0};

		memcpy(f, d->fields, sizeof(d->fields));
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, f, sizeof(f));
	}
	nlh = batch_hdr(bt, NFT_MSG_NEWSET, d->t, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	batch_commit(bt, nlh, "add set %s moat %s", tbls[d->t].fname, d->name);
}

static void batch_chain(struct batch *bt, enum chain_id id)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, tbls[chains[id].t].family);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chains[id].name);
	if (chains[id].hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, chains[id].hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, chains[id].prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_hdr(bt, NFT_MSG_NEWCHAIN, chains[id].t, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_commit(bt, nlh, "add chain %s moat %s", tbls[chains[id].t].fname, chains[id].name);
}

/* Element data: a mark, or for verdict maps a jump to one of the set's two chains. */
static void put_elem_data(struct nlmsghdr *nlh, enum set_id s, const struct elem *e)
{
	struct nlattr *d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);

	if (sets[s].data_type == NFT_DATA_VERDICT) {
		struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);

		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)NFT_JUMP));
		mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, sets[s].jump[e->data & 1]);
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

/* NEWSETELEM/DELSETELEM messages for elems, split so that each stays below ELEM_MSG_MAX. */
static void batch_elems(struct batch *bt, enum set_id s, const struct elem *v, size_t n, bool del)
{
	const struct set_desc *d = &sets[s];
	uint16_t type = del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM;

	while (n > 0 && !bt->err) {
		struct nlmsghdr *nlh = batch_hdr(bt, type, d->t, del ? 0 : NLM_F_CREATE);
		struct nlattr *list;
		struct msgrec *r;
		size_t i = 0;

		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, d->name);
		list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		while (i < n && nlh->nlmsg_len < ELEM_MSG_MAX)
			put_elem(nlh, s, &v[i++], del);
		mnl_attr_nest_end(nlh, list);
		r = batch_commit(bt, nlh, "%s element %s moat %s", del ? "delete" : "add",
				 tbls[d->t].fname, d->name);
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

/* dreg < 0: a plain membership test (inv: not a member). */
static void x_lookup(struct rb *rb, enum set_id s, uint32_t sreg, int dreg, bool inv)
{
	struct nftnl_expr *e = rb_expr(rb, "lookup");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, sets[s].name);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, s + 1);
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
	}
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

static struct rb rule_start(enum chain_id c)
{
	struct rb rb = { nftnl_rule_alloc(), 0 };

	if (!rb.r) {
		rb.err = -ENOMEM;
		return rb;
	}
	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, tbls[chains[c].t].family);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, chains[c].name);
	return rb;
}

static void rule_end(struct batch *bt, enum chain_id c, struct rb *rb, const char *what)
{
	struct nlmsghdr *nlh;

	if (!rb->err && !bt->err) {
		nlh = batch_hdr(bt, NFT_MSG_NEWRULE, chains[c].t, NLM_F_CREATE | NLM_F_APPEND);
		nftnl_rule_nlmsg_build_payload(nlh, rb->r);
		batch_commit(bt, nlh, "add rule %s moat %s #%u (%s)", tbls[chains[c].t].fname,
			     chains[c].name, bt->nrules[c] + 1, what);
		bt->nrules[c]++;
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

/*
 * Base chain preamble. Neighbour discovery and MLD are untracked by conntrack, so they would
 * meet the policy chains as new packets and break IPv6 between isolated containers; they are
 * link-local by design, and the hop limit proves it (255 for ND, 1 for MLD: a routed packet
 * arrives with at most 254).
 */
static void rules_base(struct batch *bt, enum chain_id c)
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
		rule_end(bt, c, &rb, "the node's own traffic");
	}
	rb = rule_start(c);
	x_ctstate(&rb, CT_ESTABLISHED | CT_RELATED);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, c, &rb, "ct state established,related");
	rb = rule_start(c);
	x_ctstate(&rb, CT_INVALID);
	x_verdict(&rb, NF_DROP, NULL);
	rule_end(bt, c, &rb, "ct state invalid");
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
		rule_end(bt, c, &rb, icmp6[i].what);
	}
	if (c == C_FORWARD) {
		rb = rule_start(c);
		x_verdict(&rb, NFT_JUMP, "ingress");
		rule_end(bt, c, &rb, "jump ingress");
	}
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "egress");
	rule_end(bt, c, &rb, "jump egress");
}

/* Per family: where the addresses are and which maps hold them. */
struct fam {
	uint8_t nfproto, alen;
	uint32_t saddr, daddr;		/* network header offsets */
	enum set_id ep, net, managed;
	const char *name;
};

static const struct fam fams[2] = {
	{ NFPROTO_IPV4, 4, 12, 16, S_EP4, S_NET4, S_MANAGED4, "ip" },
	{ NFPROTO_IPV6, 16, 8, 24, S_EP6, S_NET6, S_MANAGED6, "ip6" },
};

/* Per direction: "self" is the endpoint whose isolation the chain checks. */
struct dir {
	enum chain_id chain;
	bool egress;
	enum set_id allow, any, verdict;
};

static const struct dir dirs[2] = {
	{ C_INGRESS, false, S_ALLOW_IN, S_ALLOW_IN_ANY, S_IN_VERDICT },
	{ C_EGRESS, true, S_ALLOW_OUT, S_ALLOW_OUT_ANY, S_OUT_VERDICT },
};

/*
 * Registers: identities land in 32-bit registers 0 (src) and 1 (dst), the protocol in 2 and
 * the port in 3, which makes them one 16-byte concatenation; addresses are loaded into the
 * scratch registers from 8 (16 bytes for IPv6) so they never overlap.
 */
#define R_SRC NFT_REG32_00
#define R_DST NFT_REG32_01
#define R_PROTO NFT_REG32_02
#define R_PORT NFT_REG32_03
#define R_ADDR NFT_REG32_08

/* ident(addr) into dreg: the endpoint map, or (peer only) the net map when not an endpoint. */
static void x_ident(struct rb *rb, const struct fam *f, uint32_t off, bool net, uint32_t dreg)
{
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, f->alen, R_ADDR);
	if (net) {
		x_lookup(rb, f->ep, R_ADDR, -1, true);
		x_lookup(rb, f->net, R_ADDR, dreg, false);
	} else {
		x_lookup(rb, f->ep, R_ADDR, dreg, false);
	}
}

static void x_proto_port(struct rb *rb, uint32_t preg)
{
	x_meta(rb, NFT_META_L4PROTO, preg);
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, preg + 1);
}

static void rules_dir_fam(struct batch *bt, const struct dir *d, const struct fam *f)
{
	uint32_t self = d->egress ? f->saddr : f->daddr;
	uint32_t peer = d->egress ? f->daddr : f->saddr;
	char what[96];
	struct rb rb;

	/* First, so that an ipBlock allow covering a managed subnet never lets an unknown
	 * address there through. */
	rb = rule_start(d->chain);
	x_nfproto(&rb, f->nfproto);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self, f->alen, R_ADDR);
	x_lookup(&rb, f->managed, R_ADDR, -1, false);
	x_lookup(&rb, f->ep, R_ADDR, -1, true);
	x_verdict(&rb, NFT_JUMP, "unknown");
	snprintf(what, sizeof(what), "%s: unknown address in a managed subnet", f->name);
	rule_end(bt, d->chain, &rb, what);

	for (int net = 0; net < 2; net++) {
		rb = rule_start(d->chain);
		x_nfproto(&rb, f->nfproto);
		x_ident(&rb, f, peer, net, d->egress ? R_DST : R_SRC);
		x_ident(&rb, f, self, false, d->egress ? R_SRC : R_DST);
		x_proto_port(&rb, R_PROTO);
		x_lookup(&rb, d->allow, R_SRC, -1, false);
		x_verdict(&rb, NFT_RETURN, NULL);
		snprintf(what, sizeof(what), "%s: %s peer in %s", f->name,
			 net ? "network" : "endpoint", sets[d->allow].name);
		rule_end(bt, d->chain, &rb, what);
	}

	rb = rule_start(d->chain);
	x_nfproto(&rb, f->nfproto);
	x_ident(&rb, f, self, false, NFT_REG32_00);
	x_proto_port(&rb, NFT_REG32_01);
	x_lookup(&rb, d->any, NFT_REG32_00, -1, false);
	x_verdict(&rb, NFT_RETURN, NULL);
	snprintf(what, sizeof(what), "%s: %s", f->name, sets[d->any].name);
	rule_end(bt, d->chain, &rb, what);

	rb = rule_start(d->chain);
	x_nfproto(&rb, f->nfproto);
	x_ident(&rb, f, self, false, NFT_REG32_00);
	x_lookup(&rb, d->verdict, NFT_REG32_00, NFT_REG_VERDICT, false);
	snprintf(what, sizeof(what), "%s: %s", f->name, sets[d->verdict].name);
	rule_end(bt, d->chain, &rb, what);
}

static void rule_log(struct batch *bt, enum chain_id c, const char *prefix, uint16_t group,
		     int verdict)
{
	struct rb rb = rule_start(c);

	x_counter(&rb);
	x_log(&rb, prefix, group);
	if (verdict != NFT_CONTINUE)
		x_verdict(&rb, verdict, NULL);
	rule_end(bt, c, &rb, prefix);
}

static void rules_inet(struct batch *bt, const struct nft_input *in)
{
	uint16_t g = in->nflog_group;

	rules_base(bt, C_FORWARD);
	rules_base(bt, C_INPUT);
	for (int d = 0; d < 2; d++)
		for (int f = 0; f < 2; f++)
			rules_dir_fam(bt, &dirs[d], &fams[f]);
	rule_log(bt, C_DENY_IN, "moat:deny:in", g, NF_DROP);
	rule_log(bt, C_DENY_OUT, "moat:deny:out", g, NF_DROP);
	rule_log(bt, C_MON_IN, "moat:monitor:in", g, NFT_CONTINUE);
	rule_log(bt, C_MON_OUT, "moat:monitor:out", g, NFT_CONTINUE);
	rule_log(bt, C_UNKNOWN, "moat:unknown", g,
		 in->mode == MOAT_MODE_MONITOR ? NFT_CONTINUE : NF_DROP);
}

/* iifname . <addr at off> in set s: the name fills registers 0-3, the address follows. */
static void x_port_addr(struct rb *rb, uint32_t off, uint32_t len, enum set_id s)
{
	x_meta(rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG32_04);
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
		rule_end(bt, c, &rb, i ? "redirect from a container" : "router advertisement");
	}
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
		rule_end(bt, c, &rb, i ? "ND from ::" : "ND from fe80::/10");
	}
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

	rb = rule_start(c);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_PORTS, NFT_REG_1, -1, true);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, c, &rb, "not a managed port");
	rules_bridge_nd(bt, c);
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_addr(&rb, 12, 4, S_SRC4);
	rule_end(bt, c, &rb, "iifname . ip saddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_port_addr(&rb, 8, 16, S_SRC6);
	rule_end(bt, c, &rb, "iifname . ip6 saddr");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_port_addr(&rb, 14, 4, S_SRC4);
	rule_end(bt, c, &rb, "iifname . arp saddr ip");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG_1);
	x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &zero, 4);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, c, &rb, "ARP probe from 0.0.0.0");
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, c, &rb, "anything else from a managed port");
	rule_log(bt, C_SPOOF, "moat:spoof", in->nflog_group, NF_DROP);
}

/* ---- full and incremental batches --------------------------------------------------- */

static void batch_full(struct batch *bt, const struct nft_input *in, const struct elemv *v)
{
	for (int t = 0; t < T_COUNT; t++) {
		/* add (never fails), delete, add: the batch works whether the table exists or not */
		batch_table(bt, t, NFT_MSG_NEWTABLE);
		batch_table(bt, t, NFT_MSG_DELTABLE);
		batch_table(bt, t, NFT_MSG_NEWTABLE);
	}
	for (int s = 0; s < S_COUNT; s++)
		batch_set(bt, s);
	for (int c = 0; c < C_COUNT; c++)
		batch_chain(bt, c);
	rules_inet(bt, in);
	rules_bridge(bt, in);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, v[s].v, v[s].n, false);
}

/*
 * The elements of one set that differ: in old only (to delete) or in new only (to add),
 * gathered in place as index lists over the two sorted arrays.
 */
static int diff_set(const struct elemv *old, const struct elemv *new, struct elemv *del,
		    struct elemv *add)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (!ret && (i < old->n || j < new->n)) {
		int c = i == old->n ? 1 : j == new->n ? -1 : elem_cmp(&old->v[i], &new->v[j]);

		if (c < 0)
			ret = elemv_push(del, &old->v[i++]);
		else if (c > 0)
			ret = elemv_push(add, &new->v[j++]);
		else
			i++, j++;
	}
	return ret;
}

/* Deletes first: an interval or pipapo range being replaced would otherwise overlap. */
static int batch_incremental(struct batch *bt, const struct elemv *old, const struct elemv *new,
			     struct elemv *del, struct elemv *add)
{
	for (int s = 0; s < S_COUNT; s++) {
		int ret = diff_set(&old[s], &new[s], &del[s], &add[s]);

		if (ret < 0)
			return ret;
	}
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, del[s].v, del[s].n, true);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, add[s].v, add[s].n, false);
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
		       const struct batch *bt, bool full)
{
	elemvs_free(ctx->cur);
	memcpy(ctx->cur, v, sizeof(ctx->cur));
	memset(v, 0, sizeof(ctx->cur));
	if (full)
		memcpy(ctx->nrules, bt->nrules, sizeof(ctx->nrules));
	ctx->applied = true;
	ctx->mode = in->mode;
	ctx->group = in->nflog_group;
	ctx->stats = (struct nft_stats){ full, bt->nrecs, bt->added, bt->deleted };
}

int nft_ruleset_apply(struct nft_ctx *ctx, const struct nft_input *in, bool full,
		      struct moat_diags *diags)
{
	struct elemv v[S_COUNT] = {{0}}, del[S_COUNT] = {{0}}, add[S_COUNT] = {{0}};
	struct batch bt;
	int ret;

	if (!ctx->applied || ctx->mode != in->mode || ctx->group != in->nflog_group)
		full = true;
	ret = build_elems(in, v);
	if (ret < 0)
		goto out_elems;
	ret = batch_init(&bt, ctx->seq);
	if (!ret && full)
		batch_full(&bt, in, v);
	else if (!ret)
		ret = batch_incremental(&bt, ctx->cur, v, del, add);
	if (!ret)
		ret = bt.err;
	if (ret < 0)
		moat_diags_add(diags, "nftables", 0, 0, "building the batch: %s", strerror(-ret));
	else if (bt.nrecs)
		ret = batch_send(ctx, &bt, diags);
	if (!ret)
		state_take(ctx, in, v, &bt, full);
	batch_free(&bt);
out_elems:
	elemvs_free(v);
	elemvs_free(del);
	elemvs_free(add);
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
	if (!out->changed)
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

struct count {
	unsigned nrules[C_COUNT];
	size_t nelems;
};

static int count_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct count *c = data;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_RULE_CHAIN)
			continue;
		for (int i = 0; i < C_COUNT; i++)
			if (!strcmp(mnl_attr_get_str(a), chains[i].name))
				c->nrules[i]++;
	}
	return MNL_CB_OK;
}

static int count_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct count *c = data;
	const struct nlattr *a, *e;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			mnl_attr_for_each_nested(e, a)
				c->nelems++;
	return MNL_CB_OK;
}

/* A dump of one message type; set == NULL dumps rules of the table. */
static int dump(struct nft_ctx *ctx, enum tbl t, const char *set, struct count *c)
{
	uint16_t type = set ? NFT_MSG_GETSETELEM : NFT_MSG_GETRULE;
	struct nlmsghdr *nlh;
	uint32_t seq = ctx->seq++;
	ssize_t n;
	int ret;

	nlh = nftnl_nlmsg_build_hdr(ctx->buf, type, tbls[t].family, NLM_F_DUMP, seq);
	mnl_attr_put_strz(nlh, set ? NFTA_SET_ELEM_LIST_TABLE : NFTA_RULE_TABLE, NFT_TABLE_NAME);
	if (set)
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(ctx->nl, ctx->buf, sizeof(ctx->buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(ctx->buf, n, seq, ctx->portid, set ? count_elem_cb : count_rule_cb, c);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

int nft_ruleset_verify(struct nft_ctx *ctx, bool *in_sync, char *why, size_t whylen)
{
	struct count rc = {{0}, 0};
	int ret = 0;

	if (!ctx->applied)
		return -ENODATA;
	for (int t = 0; t < T_COUNT && !ret; t++)
		ret = dump(ctx, t, NULL, &rc);
	for (int c = 0; c < C_COUNT && !ret; c++)
		if (rc.nrules[c] != ctx->nrules[c]) {
			snprintf(why, whylen, "chain %s %s: %u rules, applied %u",
				 tbls[chains[c].t].fname, chains[c].name, rc.nrules[c], ctx->nrules[c]);
			*in_sync = false;
			return 0;
		}
	for (int s = 0; s < S_COUNT && !ret; s++) {
		struct count ec = {{0}, 0};

		ret = dump(ctx, sets[s].t, sets[s].name, &ec);
		if (!ret && ec.nelems != ctx->cur[s].n) {
			snprintf(why, whylen, "set %s %s: %zu elements, applied %zu",
				 tbls[sets[s].t].fname, sets[s].name, ec.nelems, ctx->cur[s].n);
			*in_sync = false;
			return 0;
		}
	}
	if (ret == -ENOENT) {
		snprintf(why, whylen, "a moat table or set is missing");
		*in_sync = false;
		return 0;
	}
	if (!ret) {
		*in_sync = true;
		if (whylen)
			why[0] = 0;
	}
	return ret;
}
