/*
 * Plan -> set elements, and the difference between two sets of elements: pure (no socket),
 * so unit tests hold it without root. elements.h has the contracts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter/nf_tables.h>

#include "elements.h"

int elemv_push(struct elemv *v, const struct elem *e)
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

int elem_cmp(const void *a, const void *b)
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
void elemv_sort(struct elemv *v)
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

void elemvs_free(struct elemv *v)
{
	for (size_t s = 0; s < S_COUNT; s++) {
		free(v[s].v);
		v[s] = (struct elemv){0};
	}
}

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
static int build_managed(const struct ruleset_input *in, struct elemv *v)
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

int ownerv_push(struct ownerv *v, uint32_t id, bool egress, bool monitor)
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
int elements_owners(const struct moat_plan *p, struct ownerv *o)
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
static int build_iso_ports(const struct ruleset_input *in, struct elemv *v)
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

static int build_allows(const struct ruleset_input *in, const struct elemv *applied, struct elemv *v)
{
	static const enum set_id ids[] = { S_FROM, S_TO, S_IN_ANY, S_OUT_ANY };
	const struct moat_plan *p = in->plan;
	int ret = 0;

	if (applied && allow_unchanged(p, in->prev)) {
		for (size_t i = 0; !ret && i < sizeof(ids) / sizeof(ids[0]); i++)
			ret = elemv_copy(&v[ids[i]], &applied[ids[i]]);
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

int elements_build(const struct ruleset_input *in, const struct elemv *applied, struct elemv *v)
{
	const struct moat_plan *p = in->plan;
	int ret;

	ret = build_addrs(p, v);
	if (!ret)
		ret = build_nets(p, v);
	if (!ret)
		ret = build_managed(in, v);
	if (!ret)
		ret = build_allows(in, applied, v);
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

int owner_cmp(const struct owner *a, const struct owner *b)
{
	if (a->egress != b->egress)
		return a->egress - b->egress;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Identity chains in old only (gone) or new only (added). A chain whose mode changed needs
 * its last rule replaced: returns 1 then, and the caller applies in full.
 */
int elements_diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
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

bool elemv_equal(const struct elemv *a, const struct elemv *b)
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
int elements_diff_set(enum set_id s, const struct elemv *old, const struct elemv *new,
		    const struct ownerv *gone, struct elemv *del, struct elemv *add)
{
	bool egress = s == S_TO || s == S_OUT_ANY;
	size_t i = 0, j = 0;
	int ret = 0;

	if (sets[s].flags & NFT_SET_INTERVAL && !(sets[s].flags & NFT_SET_CONCAT))
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

