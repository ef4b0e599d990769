/*
 * The elements each part of the state puts in the ruleset's sets: the shared ones (nets,
 * managed subnets, neighbour discovery types), an identity's lists, an address, an
 * endpoint's veths; the whole state is the sum of its parts, a change the parts that come
 * and go. Pure (no socket), so unit tests hold it without root. elements.h has contracts.
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


/* A tier list element's data (schema.h, TIER_*); 0 in the NetworkPolicy lists. */
static uint32_t tier_data(const struct moat_plan_allow *a)
{
	if (a->action == MOAT_ACTION_ACCEPT)
		return TIER_ACCEPT;
	if (!a->domains)
		return TIER_DENY;
	return (a->action == MOAT_ACTION_DENY ? TIER_DNS_DENY : TIER_DNS_ON) |
	       (uint32_t)a->domains << TIER_K_SHIFT;
}

int elements_dns(const struct ruleset_dns *a, uint32_t m, struct elemv *v)
{
	static const enum set_id set[2][2] = { { S_DNS4_A, S_DNS6_A }, { S_DNS4_B, S_DNS6_B } };
	int alen = alen_of(a->src.family), ret = 0;
	enum set_id s = set[a->tier][a->src.family == AF_INET6];
	struct elem e = { .timeout_ms = a->timeout_ms };

	if (a->dst.family != a->src.family)
		return 0;
	memcpy(e.key, a->src.a, alen);
	memcpy(e.key + alen, a->dst.a, alen);
	memcpy(e.key_end, e.key, 2 * alen);
	put_tail(e.key + 2 * alen, a->proto_lo, a->port_lo);
	put_tail(e.key_end + 2 * alen, a->proto_hi, a->port_hi);
	for (uint32_t k = a->j; k <= m && !ret; k++) {
		e.owner = k;
		ret = elemv_push(&v[s], &e);
	}
	return ret;
}

/* One element of an identity's list, in its owner's set (in_<id>_from, out_<id>_any...). */
static int allow_elem(uint32_t owner, enum moat_allow_list l, const struct moat_plan_allow *a,
		      struct elemv *v)
{
	static const enum set_id set_of[MOAT_ALLOW_LISTS] = {
		[MOAT_ALLOW_IN] = S_FROM, [MOAT_ALLOW_IN_ANY] = S_IN_ANY,
		[MOAT_ALLOW_OUT] = S_TO, [MOAT_ALLOW_OUT_ANY] = S_OUT_ANY,
		[MOAT_ADMIN_IN] = S_ADMIN_IN, [MOAT_ADMIN_OUT] = S_ADMIN_OUT,
		[MOAT_BASELINE_IN] = S_BASE_IN, [MOAT_BASELINE_OUT] = S_BASE_OUT,
	};
	bool any = l == MOAT_ALLOW_IN_ANY || l == MOAT_ALLOW_OUT_ANY;
	uint32_t peer = htonl(a->peer);	/* x_allow turns the mark to network order, as nft does */
	struct elem e = { .owner = owner, .data = tier_data(a) };
	int off = any ? 0 : 4;

	if (!any) {
		memcpy(e.key, &peer, 4);
		memcpy(e.key_end, &peer, 4);
	}
	put_tail(e.key + off, a->proto_lo, a->port_lo);
	put_tail(e.key_end + off, a->proto_hi, a->port_hi);
	return elemv_push(&v[set_of[l]], &e);
}

/* Which of an identity's lists its chains consult: the NetworkPolicy ones where it is
 * isolated, the Admin one where it is a subject, the Baseline one where it is a subject and
 * not isolated (NetworkPolicy decides before). */
static bool list_used(const struct moat_plan_ident *id, enum moat_allow_list l)
{
	bool egress = moat_list_egress(l), iso = egress ? id->out_iso : id->in_iso;

	if (l == MOAT_ADMIN_IN || l == MOAT_ADMIN_OUT)
		return id->admin[egress];
	if (l == MOAT_BASELINE_IN || l == MOAT_BASELINE_OUT)
		return id->baseline[egress] && !iso;
	return iso;
}

/* Does identity id have a chain for a direction? Its shape (OWNER_*) when it does, else 0. */
static uint8_t chain_shape(const struct moat_plan_ident *id, bool egress)
{
	bool iso = egress ? id->out_iso : id->in_iso;
	enum moat_mode m = egress ? id->out_mode : id->in_mode;
	uint8_t shape = (iso ? OWNER_ISO : 0) | (id->admin[egress] ? OWNER_ADMIN : 0) |
			(id->baseline[egress] && !iso ? OWNER_BASELINE : 0);

	return shape && iso && m == MOAT_MODE_MONITOR ? shape | OWNER_MONITOR : shape;
}

int elements_allow(const struct moat_plan_ident *owner, enum moat_allow_list l,
		   const struct moat_plan_allow *a, struct elemv *v)
{
	return list_used(owner, l) ? allow_elem(owner->id, l, a, v) : 0;
}

/* An isolated identity's entry in in_ids (or out_ids): its id, to its chain. */
static int chain_elem(const struct moat_plan_ident *id, enum set_id s, struct elemv *v)
{
	struct elem e = { .data = id->id };

	memcpy(e.key, &id->id, 4);	/* host order, as ep4's data lands in a register */
	return elemv_push(&v[s], &e);
}

int elements_ident(const struct moat_plan_ident *id, struct elemv *v)
{
	int ret = 0;

	if (chain_shape(id, false))
		ret = chain_elem(id, S_IN_IDS, v);
	if (!ret && chain_shape(id, true))
		ret = chain_elem(id, S_OUT_IDS, v);
	for (int l = 0; l < MOAT_ALLOW_LISTS && !ret; l++)
		for (uint32_t k = 0; list_used(id, l) && k < id->nallow[l] && !ret; k++)
			ret = allow_elem(id->id, l, &id->allow[l][k], v);
	return ret;
}

int elements_addr(const struct moat_plan_addr *a, const struct moat_plan_ident *id,
		  struct elemv *v)
{
	int alen = alen_of(a->addr.family);
	bool v4 = a->addr.family == AF_INET;
	struct elem e = { .data = a->ident }, self = { 0 };
	int ret;

	memcpy(e.key, a->addr.a, alen);
	memcpy(self.key, a->addr.a, alen);
	memcpy(self.key + alen, a->addr.a, alen);
	ret = elemv_push(&v[v4 ? S_EP4 : S_EP6], &e);
	if (!ret)
		ret = elemv_push(&v[v4 ? S_SELF4 : S_SELF6], &self);
	return ret;
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

/* The veths of an endpoint that is ingress-isolated (by any of its addresses). */
static int iso_ports(const struct moat_endpoint *ep, struct elemv *v)
{
	for (size_t f = 0; f < ep->nifaces; f++) {
		struct elem e = { 0 };

		strncpy((char *)e.key, ep->ifaces[f], IFNAMSIZ - 1);
		if (elemv_push(&v[S_ISO_PORTS], &e) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Anti-spoofing: the endpoint's veths, and every (veth, own address) pair. */
int elements_endpoint(const struct moat_endpoint *ep, bool iso, struct elemv *v)
{
	static const uint8_t unknown[6];
	int ret = 0;

	if (ep->host_network || !ep->nifaces)
		return 0;
	for (size_t f = 0; f < ep->nifaces && !ret; f++) {
		const uint8_t *mac = ep->macs ? ep->macs[f] : NULL;
		struct elem e = { 0 };

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
	if (!ret && iso)
		ret = iso_ports(ep, v);
	return ret;
}

/* ---- published ports ---- */

const struct moat_addr *elements_published_addr(const struct moat_endpoint *ep)
{
	for (size_t i = 0; i < ep->nips; i++)
		if (ep->ips[i].family == AF_INET)
			return &ep->ips[i];
	return ep->nips ? &ep->ips[0] : NULL;
}

/* proto . host port, at off of e's key (registers: the protocol, then the port). */
static void pub_put(struct elem *e, int off, const struct moat_published *b)
{
	put_tail(e->key + off, b->proto, b->host_port);
}

static int pub_push(struct elemv *v, enum set_id s, const struct moat_published *b)
{
	struct elem e = { 0 };

	pub_put(&e, 0, b);
	return elemv_push(&v[s], &e);
}

int elements_pub_allow(const struct moat_published *b, enum moat_allow_list l,
		       const struct moat_plan_allow *a, struct elemv *v)
{
	/* the ingress lists' sets for published ports; the egress lists have none (0) */
	static const enum set_id pub_set[MOAT_ALLOW_LISTS] = {
		[MOAT_ALLOW_IN] = S_PUB_FROM, [MOAT_ALLOW_IN_ANY] = S_PUB_ANY,
		[MOAT_ADMIN_IN] = S_PUB_ADMIN, [MOAT_BASELINE_IN] = S_PUB_BASE,
	};
	enum set_id s = pub_set[l];
	uint32_t peer = htonl(a->peer);	/* as x_allow turns the mark */
	struct elem e = { 0 };

	if (!s || b->proto < a->proto_lo || b->proto > a->proto_hi || b->port < a->port_lo ||
	    b->port > a->port_hi)
		return 0;
	if (s == S_PUB_ANY)
		return pub_push(v, S_PUB_ANY, b);
	memcpy(e.key, &peer, 4);
	pub_put(&e, 4, b);
	if (s != S_PUB_FROM) {		/* a tier's verdict map */
		e.data = tier_data(a);
		memcpy(e.key_end, e.key, sizeof(e.key));	/* read as a range in messages */
	}
	return elemv_push(&v[s], &e);
}

static bool allow_same(const struct moat_plan_allow *a, const struct moat_plan_allow *b)
{
	return a->peer == b->peer && a->proto_lo == b->proto_lo && a->proto_hi == b->proto_hi &&
	       a->port_lo == b->port_lo && a->port_hi == b->port_hi;
}

/* Does d delete element a of owner's list l? */
static bool allow_deleted(const struct moat_plan_delta *d, uint32_t owner,
			  enum moat_allow_list l, const struct moat_plan_allow *a)
{
	for (size_t i = 0; d && i < d->nallow_del; i++)
		if (d->allow_del[i].owner == owner && d->allow_del[i].list == l &&
		    allow_same(&d->allow_del[i].allow, a))
			return true;
	return false;
}

/* What id's list l, as d leaves it (d: only what it deletes), makes of binding b. */
static int pub_list(const struct moat_published *b, const struct moat_plan_ident *id,
		    const struct moat_plan_delta *d, enum moat_allow_list l, struct elemv *v)
{
	int ret = 0;

	for (uint32_t k = 0; k < id->nallow[l] && !ret; k++)
		if (!allow_deleted(d, id->id, l, &id->allow[l][k]))
			ret = elements_pub_allow(b, l, &id->allow[l][k], v);
	return ret;
}

/*
 * One binding: its own elements, then what id's ingress lists (as d leaves them) make of it:
 * the tiers' always (chain published consults Baseline's only where no NetworkPolicy
 * isolates), NetworkPolicy's where one isolates.
 */
static int pub_binding(const struct moat_published *b, const struct moat_plan_ident *id,
		       const struct moat_plan_delta *d, struct elemv *v)
{
	int ret = pub_push(v, S_PUBLISHED, b);

	if (!ret && id)
		ret = pub_list(b, id, d, MOAT_ADMIN_IN, v);
	if (!ret && id)
		ret = pub_list(b, id, d, MOAT_BASELINE_IN, v);
	if (!ret && (!id || !id->in_iso))
		ret = pub_push(v, S_PUB_OPEN, b);
	else if (!ret && id->in_mode == MOAT_MODE_MONITOR)
		ret = pub_push(v, S_PUB_MON, b);
	for (int l = MOAT_ALLOW_IN; l <= MOAT_ALLOW_IN_ANY && !ret && id && id->in_iso; l++)
		ret = pub_list(b, id, d, l, v);
	for (size_t i = 0; d && id && i < d->nallow_add && !ret; i++)
		if (d->allow_add[i].owner == id->id &&
		    (id->in_iso || d->allow_add[i].list >= MOAT_ADMIN_IN))
			ret = elements_pub_allow(b, d->allow_add[i].list, &d->allow_add[i].allow, v);
	return ret;
}

int elements_published(const struct moat_endpoint *ep, const struct moat_plan_ident *id,
		       const struct moat_plan_delta *d, struct elemv *v)
{
	int ret = 0;

	for (size_t i = 0; i < ep->npublished && !ret; i++)
		ret = pub_binding(&ep->published[i], id, d, v);
	return ret;
}

static int pub_cmp(const void *a, const void *b)
{
	const struct pub *x = a, *y = b;

	if (x->ident != y->ident)
		return x->ident < y->ident ? -1 : 1;
	if (x->b.proto != y->b.proto)
		return x->b.proto - y->b.proto;
	if (x->b.host_port != y->b.host_port)
		return x->b.host_port - y->b.host_port;
	return x->b.port - y->b.port;
}

static int pubv_push(struct pubv *v, uint32_t ident, const struct moat_published *b)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct pub *n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = (struct pub){ ident, *b };
	return 0;
}

/* ep's ports, its published address's identity found by ident_of (0: none). */
static int pubv_add(struct pubv *o, const struct moat_endpoint *ep,
		    const struct moat_plan_ident *(*ident_of)(const void *, const struct moat_addr *),
		    const void *ctx)
{
	const struct moat_addr *a = ep->npublished ? elements_published_addr(ep) : NULL;
	const struct moat_plan_ident *id = a ? ident_of(ctx, a) : NULL;
	int ret = 0;

	for (size_t i = 0; i < ep->npublished && !ret; i++)
		ret = pubv_push(o, id ? id->id : 0, &ep->published[i]);
	return ret;
}

/* Is endpoint ep ingress-isolated, its identities looked up by ident_of? */
static bool endpoint_iso(const struct moat_endpoint *ep,
			 const struct moat_plan_ident *(*ident_of)(const void *, const struct moat_addr *),
			 const void *ctx)
{
	for (size_t k = 0; k < ep->nips; k++) {
		const struct moat_plan_ident *id = ident_of(ctx, &ep->ips[k]);

		if (id && id->in_iso)
			return true;
	}
	return false;
}

static const struct moat_plan_ident *plan_ident_of(const void *ctx, const struct moat_addr *a)
{
	const struct moat_plan *p = ctx;
	const struct moat_plan_addr *pa = moat_plan_addr_find(p, a);

	return pa ? moat_plan_ident_get(p, pa->ident) : NULL;
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

/* The node's own addresses, which no port may claim (the ND one keyed as the target reads). */
static int build_node(const struct ruleset_input *in, struct elemv *v)
{
	int ret = 0;

	for (size_t i = 0; i < in->nnode && !ret; i++) {
		const struct moat_addr *a = &in->node[i];
		struct elem e = {0};

		if (a->family != AF_INET && a->family != AF_INET6)
			continue;
		memcpy(e.key, a->a, alen_of(a->family));
		ret = elemv_push(&v[a->family == AF_INET ? S_NODE4 : S_NODE6], &e);
		if (!ret && a->family == AF_INET6)
			ret = elemv_push(&v[S_NODE_ND], &e);
	}
	return ret;
}

int elements_shared(const struct ruleset_input *in, struct elemv *v)
{
	int ret = build_nets(in->plan, v);

	if (!ret)
		ret = build_managed(in, v);
	if (!ret)
		ret = build_nd(v);
	if (!ret)
		ret = build_node(in, v);
	return ret;
}

/* The published ports' elements of ep, its identities looked up by ident_of. */
static int endpoint_published(const struct moat_endpoint *ep,
			      const struct moat_plan_ident *(*ident_of)(const void *,
									const struct moat_addr *),
			      const void *ctx, const struct moat_plan_delta *d, struct elemv *v)
{
	const struct moat_addr *a = ep->npublished ? elements_published_addr(ep) : NULL;

	return ep->npublished ? elements_published(ep, a ? ident_of(ctx, a) : NULL, d, v) : 0;
}

int elements_build(const struct ruleset_input *in, struct elemv *v)
{
	const struct moat_plan *p = in->plan;
	int ret = elements_shared(in, v);

	for (size_t i = 0; i < p->nidents && !ret; i++)
		ret = elements_ident(&p->idents[i], v);
	for (size_t i = 0; i < p->naddrs && !ret; i++)
		ret = elements_addr(&p->addrs[i], moat_plan_ident_get(p, p->addrs[i].ident), v);
	for (size_t i = 0; in->es && i < in->es->n && !ret; i++)
		ret = elements_endpoint(&in->es->v[i],
					endpoint_iso(&in->es->v[i], plan_ident_of, p), v);
	for (size_t i = 0; in->es && i < in->es->n && !ret; i++)
		ret = endpoint_published(&in->es->v[i], plan_ident_of, p, NULL, v);
	return ret;
}

int pubv_build(const struct moat_plan *p, const struct moat_endpoint_set *es, struct pubv *o)
{
	int ret = 0;

	for (size_t i = 0; es && i < es->n && !ret; i++)
		ret = pubv_add(o, &es->v[i], plan_ident_of, p);
	if (o->n > 1)
		qsort(o->v, o->n, sizeof(*o->v), pub_cmp);
	return ret;
}

/* ---- a change ---- */

struct delta_view {
	const struct moat_plan *plan;
	const struct moat_plan_delta *d;
	const struct moat_endpoint *come;	/* whose addresses are in d->addrs_add */
	size_t ncome;
};

/* An address of a come endpoint: its identity as the plan will have it. */
static const struct moat_plan_ident *delta_ident_of(const void *ctx, const struct moat_addr *a)
{
	const struct delta_view *dv = ctx;

	for (size_t i = 0; i < dv->d->naddrs_add; i++)
		if (!moat_addr_cmp(&dv->d->addrs_add[i].addr, a))
			return moat_plan_delta_ident(dv->plan, dv->d, dv->d->addrs_add[i].ident);
	return NULL;
}

/* The published ports of the endpoints that go (pubs.h order), to tell them from those that stay. */
static int pubs_gone(const struct moat_plan *plan, const size_t *gone, size_t ngone,
		     struct pubv *o)
{
	int ret = 0;

	for (size_t i = 0; i < ngone && !ret; i++)
		ret = pubv_add(o, &plan->es->v[gone[i]], plan_ident_of, plan);
	if (o->n > 1)
		qsort(o->v, o->n, sizeof(*o->v), pub_cmp);
	return ret;
}

/* The first of pubs with identity ident (binary search), or pubs->n. */
static size_t pubs_first(const struct pubv *pubs, uint32_t ident)
{
	size_t lo = 0, hi = pubs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (pubs->v[mid].ident < ident)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * A change o makes to the list of an identity that stays, for its published ports that stay
 * (those of pubs not in gone: both sorted, so each port that goes is passed over once).
 */
static int pubs_follow(const struct pubv *pubs, const struct pubv *gone,
		       const struct moat_plan_owned *o, struct elemv *v)
{
	size_t g = pubs_first(gone, o->owner);
	int ret = 0;

	for (size_t i = pubs_first(pubs, o->owner); i < pubs->n && !ret &&
	     pubs->v[i].ident == o->owner; i++) {
		if (g < gone->n && !pub_cmp(&gone->v[g], &pubs->v[i])) {
			g++;
			continue;
		}
		ret = elements_pub_allow(&pubs->v[i].b, o->list, &o->allow, v);
	}
	return ret;
}

/* What the change does to published ports: those that go and come, and those that stay. */
static int published_change(const struct delta_view *dv, const size_t *gone, size_t ngone,
			    const struct pubv *pubs, struct elemv *minus, struct elemv *plus)
{
	const struct moat_plan *plan = dv->plan;
	const struct moat_plan_delta *d = dv->d;
	struct pubv pg = { 0 };
	int ret = pubs_gone(plan, gone, ngone, &pg);

	for (size_t i = 0; i < ngone && !ret; i++)
		ret = endpoint_published(&plan->es->v[gone[i]], plan_ident_of, plan, NULL, minus);
	for (size_t i = 0; pubs && i < d->nallow_del && !ret; i++)
		ret = pubs_follow(pubs, &pg, &d->allow_del[i], minus);
	for (size_t i = 0; pubs && i < d->nallow_add && !ret; i++)
		ret = pubs_follow(pubs, &pg, &d->allow_add[i], plus);
	for (size_t i = 0; i < dv->ncome && !ret; i++)
		ret = endpoint_published(&dv->come[i], delta_ident_of, dv, d, plus);
	free(pg.v);
	return ret;
}

int pubv_change(const struct pubv *cur, const struct moat_plan *plan,
		const struct moat_plan_delta *d, const size_t *gone, size_t ngone,
		const struct moat_endpoint *come, size_t ncome, struct pubv *o)
{
	struct delta_view dv = { plan, d, come, ncome };
	struct pubv pg = { 0 };
	size_t g = 0;
	int ret = pubs_gone(plan, gone, ngone, &pg);

	for (size_t i = 0; cur && i < cur->n && !ret; i++) {
		while (g < pg.n && pub_cmp(&pg.v[g], &cur->v[i]) < 0)
			g++;
		if (g < pg.n && !pub_cmp(&pg.v[g], &cur->v[i]))
			g++;
		else
			ret = pubv_push(o, cur->v[i].ident, &cur->v[i].b);
	}
	for (size_t i = 0; i < ncome && !ret; i++)
		ret = pubv_add(o, &come[i], delta_ident_of, &dv);
	if (!ret && o->n > 1)
		qsort(o->v, o->n, sizeof(*o->v), pub_cmp);
	free(pg.v);
	return ret;
}

int elements_change(const struct moat_plan *plan, const struct moat_plan_delta *d,
		    const size_t *gone, size_t ngone, const struct moat_endpoint *come,
		    size_t ncome, const struct pubv *pubs, struct elemv *minus,
		    struct elemv *plus)
{
	struct delta_view dv = { plan, d, come, ncome };
	int ret = 0;

	for (size_t i = 0; i < d->nidents_gone && !ret; i++)
		ret = elements_ident(&d->idents_gone[i], minus);
	for (size_t i = 0; i < d->nallow_del && !ret; i++)
		ret = elements_allow(moat_plan_ident_get(plan, d->allow_del[i].owner),
				     d->allow_del[i].list, &d->allow_del[i].allow, minus);
	for (size_t i = 0; i < d->naddrs_del && !ret; i++)
		ret = elements_addr(&d->addrs_del[i],
				    moat_plan_ident_get(plan, d->addrs_del[i].ident), minus);
	for (size_t i = 0; i < ngone && !ret; i++)
		ret = elements_endpoint(&plan->es->v[gone[i]],
					endpoint_iso(&plan->es->v[gone[i]], plan_ident_of, plan),
					minus);
	for (size_t i = 0; i < d->nidents_new && !ret; i++)
		ret = elements_ident(&d->idents_new[i], plus);
	for (size_t i = 0; i < d->nallow_add && !ret; i++)
		ret = elements_allow(moat_plan_ident_get(plan, d->allow_add[i].owner),
				     d->allow_add[i].list, &d->allow_add[i].allow, plus);
	for (size_t i = 0; i < d->naddrs_add && !ret; i++)
		ret = elements_addr(&d->addrs_add[i],
				    moat_plan_delta_ident(plan, d, d->addrs_add[i].ident), plus);
	for (size_t i = 0; i < ncome && !ret; i++)
		ret = elements_endpoint(&come[i], endpoint_iso(&come[i], delta_ident_of, &dv), plus);
	if (!ret)
		ret = published_change(&dv, gone, ngone, pubs, minus, plus);
	return ret;
}

/* ---- identity chains ---- */

int ownerv_push(struct ownerv *v, uint32_t id, bool egress, uint8_t shape)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct owner *n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = (struct owner){ id, egress, shape };
	return 0;
}

size_t owner_sets(const struct owner *o, enum set_id *s)
{
	size_t n = 0;

	if (o->shape & OWNER_ADMIN)
		s[n++] = o->egress ? S_ADMIN_OUT : S_ADMIN_IN;
	if (o->shape & OWNER_ISO) {
		s[n++] = o->egress ? S_TO : S_FROM;
		s[n++] = o->egress ? S_OUT_ANY : S_IN_ANY;
	}
	if (o->shape & OWNER_BASELINE)
		s[n++] = o->egress ? S_BASE_OUT : S_BASE_IN;
	return n;
}

/* Sorted by direction, then id (the plan's idents are sorted by id). */
int elements_owners_of(const struct moat_plan_ident *v, size_t n, struct ownerv *o)
{
	for (int egress = 0; egress < 2; egress++)
		for (size_t i = 0; i < n; i++) {
			uint8_t shape = chain_shape(&v[i], egress);

			if (shape && ownerv_push(o, v[i].id, egress, shape) < 0)
				return -ENOMEM;
		}
	return 0;
}

int owner_cmp(const struct owner *a, const struct owner *b)
{
	if (a->egress != b->egress)
		return a->egress - b->egress;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Identity chains in old only (gone) or new only (added). A chain whose shape changed needs
 * its rules replaced: returns 1 then, and the caller applies in full.
 */
int elements_diff_owners(const struct ownerv *old, const struct ownerv *new, struct ownerv *gone,
		       struct ownerv *added)
{
	size_t i = 0, j = 0;
	int ret = 0;

	while (!ret && (i < old->n || j < new->n)) {
		int c = i == old->n ? 1 : j == new->n ? -1 : owner_cmp(&old->v[i], &new->v[j]);
		const struct owner *x = c < 0 ? &old->v[i] : &new->v[j];

		if (c == 0 && old->v[i].shape != new->v[j].shape)
			return 1;
		if (c < 0)
			ret = ownerv_push(gone, x->id, x->egress, x->shape);
		else if (c > 0)
			ret = ownerv_push(added, x->id, x->egress, x->shape);
		i += c <= 0;
		j += c >= 0;
	}
	return ret;
}


int elements_owners(const struct moat_plan *p, struct ownerv *o)
{
	return elements_owners_of(p->idents, p->nidents, o);
}
