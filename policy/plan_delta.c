/*
 * Deltas (plan.h): what endpoints that come and go change in a plan, computed beside it and
 * then committed in place. Endpoints that come find their kind and identities among the
 * plan's (a replica: nothing but addresses changes) or make new ones; identities whose last
 * address or endpoint goes, go; new identities are lowered as owners and as peers of the
 * owners that stay (lower.c), and the elements naming an identity that goes leave the lists
 * of the owners that stay. Nothing here walks every endpoint, address or identity.
 *
 * delta_new only reads the plan, but it reserves room in the plan's arrays and tables and
 * writes new NPORT atoms into its atoms' spare room: invisible to readers (counts are
 * unchanged), and what lets commit finish without allocating, so it cannot fail half-way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "lower.h"
#include "moat/grow.h"
#include "moat/hash.h"
#include "plan_policy.h"
#include "plan_priv.h"

/* A refcount change of one of the plan's identities or kinds. */
struct adj {
	uint32_t key;			/* identity id, or kind index */
	int32_t by;
};

struct adjs {
	struct adj *v;
	size_t n, cap;
	struct hmap at;			/* key -> index in v */
};

struct dpriv {
	struct moat_plan_delta pub;
	const struct moat_plan *plan;
	struct plan_priv *pv;
	size_t *gone;			/* sorted, descending */
	size_t ngone;
	const struct moat_endpoint *come;
	size_t ncome;
	struct plan_kind *kinds;	/* new kinds */
	size_t nkinds, kinds_cap;
	struct hmap kind_by_hash;	/* -> index in kinds */
	uint32_t *come_kind;		/* per come: plan kind index, or PLAN_NONE - 1 - new index */
	uint32_t nnew_atoms;
	struct hmap nport_by_canon;	/* new NPORT atoms: -> atom index */
	struct plan_ident_priv *idp;	/* new identities, ids from next_id on */
	struct moat_plan_ident *idpub;	/* the same, as the plan shows them */
	size_t nids, ids_cap;
	struct hmap ident_by_sig;	/* -> index in ids */
	struct adjs idents, kinds_adj;
	struct hmap gone_set;		/* identities that go: id -> id */
	struct moat_plan_ident *gone_ids;
	size_t ngone_ids, gone_cap;
	uint32_t *gone_kinds;		/* kind indexes, descending */
	size_t ngone_kinds, gone_kinds_cap;
	struct moat_plan_addr *add, *del;
	size_t nadd, add_cap, ndel, del_cap;
	struct hmap come_addrs;		/* address hash -> index in add */
	struct moat_plan_owned *allow_add, *allow_del;
	size_t nallow_add, allow_add_cap, nallow_del, allow_del_cap;
	struct u32vec scratch;
};

#define PUSH(v, n, cap, x) \
	(grow((void **)&(v), (n), &(cap), sizeof(*(v))) ? -ENOMEM : ((v)[(n)++] = (x), 0))

static int cmp_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x > y ? -1 : x < y;
}

static bool bsearch_desc(const size_t *v, size_t n, size_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid] == x)
			return true;
		if (v[mid] > x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* ---- refcount changes ---- */

static int adj_add(struct adjs *a, uint32_t key, int32_t by)
{
	uint64_t h = gone_key(key);
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&a->at, h, &it)))
		if (a->v[*v].key == key) {
			a->v[*v].by += by;
			return 0;
		}
	if (PUSH(a->v, a->n, a->cap, ((struct adj){ key, by })))
		return -ENOMEM;
	return hmap_put(&a->at, h, a->n - 1);
}

static void adjs_free(struct adjs *a)
{
	free(a->v);
	hmap_free(&a->at);
}

/* ---- identities ---- */

/* The delta's new identity with these atoms, or -1. */
static long dident_find(const struct dpriv *d, const uint32_t *a, size_t n, uint64_t sig)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&d->ident_by_sig, sig, &it)))
		if (d->idp[*v].natoms == n && (!n || !memcmp(d->idp[*v].atoms, a, n * 4)))
			return *v;
	return -1;
}

/* The plan's identity with these atoms: its id, or 0. */
static uint32_t plan_ident_find(const struct plan_priv *pv, const struct moat_plan *plan,
				const uint32_t *a, size_t n, uint64_t sig)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&pv->ident_by_sig, sig, &it))) {
		uint32_t i = plan_ident_index(plan, *v);

		if (i != PLAN_NONE && pv->ids[i].natoms == n &&
		    (!n || !memcmp(pv->ids[i].atoms, a, n * 4)))
			return *v;
	}
	return 0;
}

/* The id of the identity with sorted atoms a[0..n), found or made; one more reference. */
static int ident_ref(struct dpriv *d, const uint32_t *a, size_t n, uint32_t *out)
{
	uint64_t sig = moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS, a, n * sizeof(*a)));
	uint32_t id = plan_ident_find(d->pv, d->plan, a, n, sig);
	long k = id ? -1 : dident_find(d, a, n, sig);
	if (id) {
		*out = id;
		return adj_add(&d->idents, id, 1);
	}
	if (k < 0) {
		size_t cap = d->ids_cap;
		struct plan_ident_priv *x;

		if (grow((void **)&d->idp, d->nids, &cap, sizeof(*d->idp)) ||
		    grow((void **)&d->idpub, d->nids, &d->ids_cap, sizeof(*d->idpub)))
			return -ENOMEM;
		x = &d->idp[d->nids];
		*x = (struct plan_ident_priv){ .atoms = arena_array(d->pv->arena, n + 1, 4),
					       .keys = arena_array(d->pv->arena, n + 1, 8),
					       .natoms = n, .sig = sig };
		if (!x->atoms || !x->keys)
			return -ENOMEM;
		if (n)
			memcpy(x->atoms, a, n * 4);
		d->idpub[d->nids] = (struct moat_plan_ident){ .id = d->pv->next_id + d->nids };
		k = d->nids++;
		if (hmap_put(&d->ident_by_sig, sig, k))
			return -ENOMEM;
	}
	d->idp[k].refs++;
	*out = d->idpub[k].id;
	return 0;
}

/* ---- kinds ---- */

/* kind_nport_fn of a delta: the plan's NPORT atom, or a new one in the atoms' spare room. */
static int delta_nport(void *ctx, const struct moat_named_port *np, uint32_t *out)
{
	struct dpriv *d = ctx;
	struct plan_priv *pv = d->pv;
	char canon[96];
	uint64_t h;
	uint32_t *v, a;
	size_t it = 0;

	nport_canon(canon, sizeof(canon), np->name, np->proto, np->port);
	h = moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, canon));
	while ((v = hmap_next(&pv->nport_by_canon, h, &it)))
		if (!strcmp(pv->atoms[*v].canon, canon))
			return *out = *v, 0;
	it = 0;
	while ((v = hmap_next(&d->nport_by_canon, h, &it)))
		if (!strcmp(pv->atoms[*v].canon, canon))
			return *out = *v, 0;
	a = pv->natoms + d->nnew_atoms;
	if (a >= pv->atoms_cap) {
		struct plan_atom *na = realloc(pv->atoms, 2 * pv->atoms_cap * sizeof(*na));

		if (!na)
			return -ENOMEM;
		pv->atoms = na, pv->atoms_cap *= 2;
	}
	pv->atoms[a] = (struct plan_atom){ .kind = ATOM_NPORT, .proto = np->proto,
		.port = np->port, .key = h, .canon = arena_strdup(pv->arena, canon),
		.name = arena_strdup(pv->arena, np->name) };
	if (!pv->atoms[a].canon || !pv->atoms[a].name)
		return -ENOMEM;
	d->nnew_atoms++;
	*out = a;
	return hmap_put(&d->nport_by_canon, h, a);
}

/* A kind the delta makes for e: copies, atoms, its address-less identity. */
static int dkind_make(struct dpriv *d, const struct moat_endpoint *e, uint64_t h, uint32_t ns,
		      long *out)
{
	struct plan_kind k;
	int ret = kind_copy(d->pv->arena, e, h, &k);

	if (!ret)
		ret = kind_atoms(d->pv->policy, d->pv->atoms, ns, e, delta_nport, d, &d->scratch);
	k.ns_index = ns;
	k.natoms = d->scratch.n;
	k.atoms = ret ? NULL : arena_array(d->pv->arena, k.natoms + 1, 4);
	if (!ret && !k.atoms)
		ret = -ENOMEM;
	if (!ret && k.natoms)
		memcpy(k.atoms, d->scratch.v, k.natoms * 4);
	k.ident = 0;	/* ident_ref of the caller sets it */
	if (!ret)
		ret = PUSH(d->kinds, d->nkinds, d->kinds_cap, k);
	if (!ret)
		ret = hmap_put(&d->kind_by_hash, h, d->nkinds - 1);
	*out = d->nkinds - 1;
	return ret;
}

/* The kind of come endpoint e: the plan's or the delta's; one more endpoint of it. */
static int kind_ref(struct dpriv *d, const struct moat_endpoint *e, uint32_t ns,
		    const struct plan_kind **out, uint32_t *tag)
{
	uint64_t h = kind_hash(e);
	long k = kind_find(d->pv, e, h), n = -1;
	size_t it = 0;
	uint32_t *v;
	int ret;

	if (k >= 0) {
		*out = &d->pv->kinds[k];
		*tag = k;
		return adj_add(&d->kinds_adj, k, 1);
	}
	while (n < 0 && (v = hmap_next(&d->kind_by_hash, h, &it)))
		if (kind_is(&d->kinds[*v], e, h))
			n = *v;
	if (n < 0 && (ret = dkind_make(d, e, h, ns, &n)))
		return ret;
	d->kinds[n].refs++;
	*out = &d->kinds[n];
	*tag = PLAN_NONE - 1 - n;
	return 0;
}

/* ---- endpoints that come ---- */

static int addr_come(struct dpriv *d, const struct moat_addr *a, uint32_t ident, uint32_t ep)
{
	uint32_t i = plan_addr_index(d->plan, a);
	uint64_t h = plan_addr_hash(a);
	size_t it = 0;
	uint32_t *v;

	/* another endpoint has it, unless that one goes now */
	if (i != PLAN_NONE && !bsearch_desc(d->gone, d->ngone, d->plan->addrs[i].endpoint))
		return -ESTALE;
	while ((v = hmap_next(&d->come_addrs, h, &it)))
		if (!moat_addr_cmp(&d->add[*v].addr, a))
			return -ESTALE;	/* twice in what comes */
	if (PUSH(d->add, d->nadd, d->add_cap, ((struct moat_plan_addr){ *a, ident, ep })))
		return -ENOMEM;
	return hmap_put(&d->come_addrs, h, d->nadd - 1);
}

static int endpoint_come(struct dpriv *d, size_t j)
{
	const struct moat_endpoint *e = &d->come[j];
	const struct plan_policy *pol = d->pv->policy;
	long ns = plan_policy_ns(pol, e->namespace);
	uint32_t ep = d->plan->es->n - d->ngone + j, kid, id;
	const struct plan_kind *k;
	int ret;

	if (ns < 0)
		return -ESTALE;	/* the policy state was built for other namespaces */
	ret = kind_ref(d, e, ns, &k, &d->come_kind[j]);
	if (!ret)
		ret = ident_ref(d, k->atoms, k->natoms, &kid);
	if (!ret && d->come_kind[j] >= PLAN_NONE - d->nkinds)
		d->kinds[PLAN_NONE - 1 - d->come_kind[j]].ident = kid;
	for (size_t i = 0; i < e->nips && !ret; i++) {
		const struct moat_addr *a = &e->ips[i];
		const struct seg *s = plan_policy_seg(pol, fam_index(a->family),
						      addr_u128(a->a, a->family));

		d->scratch.n = 0;
		for (uint32_t m = 0; m < k->natoms && !ret; m++)
			ret = u32vec_push(&d->scratch, k->atoms[m]);
		for (uint32_t m = 0; m < s->natoms && !ret; m++)
			ret = u32vec_push(&d->scratch, s->atoms[m]);
		if (ret)
			break;
		d->scratch.n = u32_sort_uniq(d->scratch.v, d->scratch.n);
		ret = ident_ref(d, d->scratch.v, d->scratch.n, &id);
		if (!ret)
			ret = addr_come(d, a, id, ep);
	}
	return ret;
}

/* ---- endpoints that go ---- */

static int endpoint_go(struct dpriv *d, size_t i)
{
	const struct moat_endpoint *e = &d->plan->es->v[i];
	long k = kind_find(d->pv, e, kind_hash(e));
	int ret;

	if (k < 0)
		return -ESTALE;	/* not the plan's endpoint */
	ret = adj_add(&d->kinds_adj, k, -1);
	if (!ret)
		ret = adj_add(&d->idents, d->pv->kinds[k].ident, -1);
	for (size_t j = 0; j < e->nips && !ret; j++) {
		uint32_t a = plan_addr_index(d->plan, &e->ips[j]);
		const struct moat_plan_addr *pa = a == PLAN_NONE ? NULL : &d->plan->addrs[a];

		if (!pa || pa->endpoint != i)
			return -ESTALE;	/* another endpoint claims it too */
		ret = adj_add(&d->idents, pa->ident, -1);
		if (!ret)
			ret = PUSH(d->del, d->ndel, d->del_cap, *pa);
	}
	return ret;
}

/* Identities and kinds whose last reference goes. */
static int gone_find(struct dpriv *d)
{
	const struct moat_plan *plan = d->plan;
	int ret = 0;

	for (size_t i = 0; i < d->idents.n && !ret; i++) {
		const struct adj *a = &d->idents.v[i];
		uint32_t x = plan_ident_index(plan, a->key);

		if (x == PLAN_NONE || (int64_t)d->pv->ids[x].refs + a->by < 0)
			return -ESTALE;
		if (d->pv->ids[x].refs + a->by > 0)
			continue;
		ret = PUSH(d->gone_ids, d->ngone_ids, d->gone_cap, plan->idents[x]);
		if (!ret)
			ret = hmap_put(&d->gone_set, gone_key(a->key), a->key);
	}
	for (size_t i = 0; i < d->kinds_adj.n && !ret; i++) {
		const struct adj *a = &d->kinds_adj.v[i];

		if (d->pv->kinds[a->key].refs + a->by == 0)
			ret = PUSH(d->gone_kinds, d->ngone_kinds, d->gone_kinds_cap, a->key);
	}
	return ret;
}

/* ---- allow lists ---- */

static const struct plan_ident_priv *ident_priv(const struct dpriv *d, uint32_t id)
{
	uint32_t i = plan_ident_index(d->plan, id);

	return i == PLAN_NONE ? NULL : &d->pv->ids[i];
}

static void lowering_init(struct dpriv *d, struct lowering *lw, struct lident *extra)
{
	for (size_t i = 0; i < d->nids; i++)
		extra[i] = (struct lident){ d->idpub[i].id, &d->idp[i] };
	*lw = (struct lowering){ .ps = d->plan->ps, .pol = d->pv->policy, .plan = d->plan,
		.atoms = d->pv->atoms, .natoms = d->pv->natoms + d->nnew_atoms,
		.atom_ids = d->pv->atom_ids, .natoms_ids = d->pv->natoms, .gone = &d->gone_set,
		.extra = extra, .nextra = d->nids };
}

/* Merged elements of new identities go to their own lists, the rest to allow_add. */
static int allow_split(struct dpriv *d, const struct lelem *v, size_t n)
{
	for (size_t i = 0, j; i < n; i = j) {
		uint32_t o = v[i].owner, l = v[i].list;
		struct moat_plan_ident *pub = o >= d->pv->next_id ? &d->idpub[o - d->pv->next_id]
								  : NULL;

		for (j = i; j < n && v[j].owner == o && v[j].list == l; j++)
			if (!pub && PUSH(d->allow_add, d->nallow_add, d->allow_add_cap,
					 ((struct moat_plan_owned){ o, l, v[j].a })))
				return -ENOMEM;
		if (!pub)
			continue;
		pub->allow[l] = malloc((j - i) * sizeof(*pub->allow[l]));
		if (!pub->allow[l])
			return -ENOMEM;
		for (size_t k = i; k < j; k++)
			pub->allow[l][k - i] = v[k].a;
		pub->nallow[l] = d->idp[o - d->pv->next_id].allow_cap[l] = j - i;
	}
	return 0;
}

/* The elements of the lists of owners that stay whose peer is a gone identity. */
static int allow_gone(struct dpriv *d, const struct lelem *v, size_t n)
{
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		const struct moat_plan_ident *o;
		size_t lo = 0, hi;

		if (i && v[i].owner == v[i - 1].owner && v[i].list == v[i - 1].list &&
		    v[i].a.peer == v[i - 1].a.peer)
			continue;	/* one pass per (owner, list, peer) */
		o = moat_plan_ident_get(d->plan, v[i].owner);
		hi = o ? o->nallow[v[i].list] : 0;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (o->allow[v[i].list][mid].peer < v[i].a.peer)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; o && lo < o->nallow[v[i].list] && o->allow[v[i].list][lo].peer == v[i].a.peer &&
		       !ret; lo++)
			ret = PUSH(d->allow_del, d->nallow_del, d->allow_del_cap,
				   ((struct moat_plan_owned){ v[i].owner, v[i].list,
							      o->allow[v[i].list][lo] }));
	}
	return ret;
}

static int lists(struct dpriv *d)
{
	struct lident *extra = calloc(d->nids + 1, sizeof(*extra));
	struct lowering lw, gw;
	int ret = 0;

	if (!extra)
		return -ENOMEM;
	lowering_init(d, &lw, extra);
	for (size_t i = 0; i < d->nids && !ret; i++) {
		ret = lower_isolation(d->plan->ps, d->pv->policy, d->plan->mode, d->pv->arena,
				      &d->idp[i], &d->idpub[i]);
		if (!ret)
			plan_ident_keys(d->pv->atoms, &d->idp[i]);
	}
	for (size_t i = 0; i < d->nids && !ret; i++)
		ret = lower_owner(&lw, &extra[i]);
	for (size_t i = 0; i < d->nids && !ret; i++)
		ret = lower_peer(&lw, &extra[i]);
	if (!ret)
		ret = lower_merge(&lw);
	if (!ret)
		ret = allow_split(d, lw.out, lw.nout);
	gw = lw;
	gw.out = NULL, gw.nout = gw.cap = 0;
	for (size_t i = 0; i < d->ngone_ids && !ret; i++)
		ret = lower_peer(&gw, &(struct lident){ d->gone_ids[i].id,
						     ident_priv(d, d->gone_ids[i].id) });
	if (!ret)
		ret = lower_merge(&gw);
	if (!ret)
		ret = allow_gone(d, gw.out, gw.nout);
	free(lw.out), free(gw.out), free(extra);
	return ret;
}

/* ---- room for the commit ---- */

/* v (of *cap elements of sz) holds at least n. 0 or -ENOMEM (v kept). */
static int reserve(void **v, size_t *cap, size_t n, size_t sz)
{
	return n ? grow(v, n - 1, cap, sz) : 0;
}

/* plan->idents and priv->ids share one capacity. */
static int room_idents(struct dpriv *d)
{
	struct plan_priv *pv = d->pv;
	struct moat_plan *plan = (struct moat_plan *)d->plan;
	size_t need = plan->nidents + d->nids, cap = pv->ids_cap, cap2 = pv->ids_cap;
	int ret = reserve((void **)&plan->idents, &cap, need, sizeof(*plan->idents));

	if (!ret)
		ret = reserve((void **)&pv->ids, &cap2, need, sizeof(*pv->ids));
	if (!ret)
		pv->ids_cap = cap < cap2 ? cap : cap2;
	return ret;
}

/* Per atom, room for the new identities that hold it; and a vector for each new atom. */
static int room_atom_ids(struct dpriv *d)
{
	struct plan_priv *pv = d->pv;
	size_t need = pv->natoms + d->nnew_atoms;

	if (need > pv->atom_ids_cap) {
		struct u32vec *v = realloc(pv->atom_ids, need * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memset(v + pv->atom_ids_cap, 0, (need - pv->atom_ids_cap) * sizeof(*v));
		pv->atom_ids = v, pv->atom_ids_cap = need;
	}
	for (size_t i = 0; i < d->nids; i++)
		for (uint32_t k = 0; k < d->idp[i].natoms; k++) {
			struct u32vec *a = &pv->atom_ids[d->idp[i].atoms[k]];

			if (reserve((void **)&a->v, &a->cap, a->n + d->nids, sizeof(*a->v)))
				return -ENOMEM;
		}
	return 0;
}

/* The lists of owners that stay, for what allow_add (sorted by owner, list) gives them. */
static int room_lists(struct dpriv *d)
{
	for (size_t i = 0, j; i < d->nallow_add; i = j) {
		const struct moat_plan_owned *o = &d->allow_add[i];
		uint32_t x = plan_ident_index(d->plan, o->owner);
		struct moat_plan_ident *pub = &d->plan->idents[x];
		size_t cap = d->pv->ids[x].allow_cap[o->list];

		for (j = i; j < d->nallow_add && d->allow_add[j].owner == o->owner &&
			    d->allow_add[j].list == o->list; j++)
			;
		if (reserve((void **)&pub->allow[o->list], &cap, pub->nallow[o->list] + j - i,
			    sizeof(*pub->allow[o->list])))
			return -ENOMEM;
		d->pv->ids[x].allow_cap[o->list] = cap;
	}
	return 0;
}

/* Everything commit adds to, made big enough now: commit then cannot fail. */
static int room(struct dpriv *d)
{
	struct plan_priv *pv = d->pv;
	struct moat_plan *plan = (struct moat_plan *)d->plan;
	size_t kcap = pv->kinds_cap;
	int ret = room_idents(d);

	if (!ret)
		ret = reserve((void **)&pv->kinds, &kcap, pv->nkinds + d->nkinds, sizeof(*pv->kinds));
	pv->kinds_cap = kcap;
	if (!ret)
		ret = reserve((void **)&plan->addrs, &pv->addrs_cap, plan->naddrs + d->nadd,
			      sizeof(*plan->addrs));
	if (!ret)
		ret = reserve((void **)&plan->endpoint_ident, &pv->eident_cap,
			      plan->es->n + d->ncome, sizeof(*plan->endpoint_ident));
	if (!ret && (hmap_reserve(&pv->ident_by_sig, pv->ident_by_sig.n + d->nids) ||
		     hmap_reserve(&pv->kind_by_hash, pv->kind_by_hash.n + d->nkinds) ||
		     hmap_reserve(&pv->nport_by_canon, pv->nport_by_canon.n + d->nnew_atoms) ||
		     hmap_reserve(&pv->addr_by_hash, pv->addr_by_hash.n + d->nadd)))
		ret = -ENOMEM;
	if (!ret)
		ret = room_atom_ids(d);
	if (!ret)
		ret = room_lists(d);
	return ret;
}

/* ---- commit ---- */

/* Swap-removes plan->addrs[i], keeping the address index right. */
static void addr_remove(struct moat_plan *plan, struct plan_priv *pv, uint32_t i)
{
	uint32_t last = plan->naddrs - 1;

	hmap_del(&pv->addr_by_hash, plan_addr_hash(&plan->addrs[i].addr), i);
	if (i != last) {
		hmap_del(&pv->addr_by_hash, plan_addr_hash(&plan->addrs[last].addr), last);
		plan->addrs[i] = plan->addrs[last];
		hmap_put(&pv->addr_by_hash, plan_addr_hash(&plan->addrs[i].addr), i);	/* room */
	}
	plan->naddrs--;
}

/* Endpoints moved in the set as moat_endpoint_set_change moves them; addresses follow. */
static void commit_endpoints(struct dpriv *d, struct moat_plan *plan)
{
	struct plan_priv *pv = d->pv;
	size_t n = plan->es->n + d->ngone - d->ncome;	/* the set's size before the change */

	for (size_t i = 0; i < d->ndel; i++)
		addr_remove(plan, pv, plan_addr_index(plan, &d->del[i].addr));
	for (size_t g = 0; g < d->ngone; g++) {	/* descending */
		plan->endpoint_ident[d->gone[g]] = plan->endpoint_ident[--n];
	}
	for (size_t g = 0; g < d->ngone; g++) {
		size_t i = d->gone[g];
		const struct moat_endpoint *e = i < n ? &plan->es->v[i] : NULL;

		for (size_t k = 0; e && k < e->nips; k++) {	/* moved into the hole */
			uint32_t a = plan_addr_index(plan, &e->ips[k]);

			if (a != PLAN_NONE && plan->addrs[a].endpoint != i)
				plan->addrs[a].endpoint = i;
		}
	}
	for (size_t j = 0; j < d->ncome; j++) {
		uint32_t t = d->come_kind[j];
		const struct plan_kind *k = t < PLAN_NONE - d->nkinds ? &pv->kinds[t]
					    : &d->kinds[PLAN_NONE - 1 - t];

		plan->endpoint_ident[n + j] = k->ident;
	}
	for (size_t i = 0; i < d->nadd; i++) {
		plan->addrs[plan->naddrs] = d->add[i];
		hmap_put(&pv->addr_by_hash, plan_addr_hash(&d->add[i].addr), plan->naddrs++);
	}
}

/* Removes the identity at index x: its lists, its index entries, its row. */
static void ident_remove(struct moat_plan *plan, struct plan_priv *pv, uint32_t x)
{
	struct moat_plan_ident *pub = &plan->idents[x];
	const struct plan_ident_priv *p = &pv->ids[x];

	for (int l = 0; l < MOAT_ALLOW_LISTS; l++) {
		plan->nallow[l] -= pub->nallow[l];
		free(pub->allow[l]);
	}
	hmap_del(&pv->ident_by_sig, p->sig, pub->id);
	for (uint32_t k = 0; k < p->natoms; k++) {
		struct u32vec *a = &pv->atom_ids[p->atoms[k]];

		for (size_t m = 0; m < a->n; m++)
			if (a->v[m] == pub->id) {
				a->v[m] = a->v[--a->n];
				break;
			}
	}
	memmove(&plan->idents[x], &plan->idents[x + 1], (plan->nidents - x - 1) * sizeof(*pub));
	memmove(&pv->ids[x], &pv->ids[x + 1], (plan->nidents - x - 1) * sizeof(*p));
	plan->nidents--;
}

static void commit_idents(struct dpriv *d, struct moat_plan *plan)
{
	struct plan_priv *pv = d->pv;

	for (size_t i = 0; i < d->idents.n; i++) {
		uint32_t x = plan_ident_index(plan, d->idents.v[i].key);

		pv->ids[x].refs += d->idents.v[i].by;
	}
	for (size_t i = 0; i < d->ngone_ids; i++)
		ident_remove(plan, pv, plan_ident_index(plan, d->gone_ids[i].id));
	for (size_t i = 0; i < d->nids; i++) {	/* their ids are above every other */
		const struct plan_ident_priv *x = &d->idp[i];
		const struct moat_plan_ident *pub = &d->idpub[i];

		plan->idents[plan->nidents] = *pub;
		pv->ids[plan->nidents++] = *x;
		hmap_put(&pv->ident_by_sig, x->sig, pub->id);
		for (uint32_t k = 0; k < x->natoms; k++) {
			struct u32vec *a = &pv->atom_ids[x->atoms[k]];

			a->v[a->n++] = pub->id;
		}
		for (int l = 0; l < MOAT_ALLOW_LISTS; l++)
			plan->nallow[l] += pub->nallow[l];
	}
	pv->next_id += d->nids;
}

/* An element that goes, from the list of an owner that stays. */
static void allow_remove(struct moat_plan *plan, const struct moat_plan_owned *o)
{
	struct moat_plan_ident *pub = &plan->idents[plan_ident_index(plan, o->owner)];
	struct moat_plan_allow *v = pub->allow[o->list];
	uint32_t n = pub->nallow[o->list];

	for (uint32_t i = 0; i < n; i++)
		if (v[i].peer == o->allow.peer && v[i].proto_lo == o->allow.proto_lo &&
		    v[i].proto_hi == o->allow.proto_hi && v[i].port_lo == o->allow.port_lo &&
		    v[i].port_hi == o->allow.port_hi) {
			memmove(&v[i], &v[i + 1], (n - i - 1) * sizeof(*v));
			pub->nallow[o->list]--;
			plan->nallow[o->list]--;
			return;
		}
}

static void commit_lists(struct dpriv *d, struct moat_plan *plan)
{
	for (size_t i = 0; i < d->nallow_del; i++)
		allow_remove(plan, &d->allow_del[i]);
	for (size_t i = 0; i < d->nallow_add; i++) {	/* peers above every other: appended */
		const struct moat_plan_owned *o = &d->allow_add[i];
		struct moat_plan_ident *pub = &plan->idents[plan_ident_index(plan, o->owner)];

		pub->allow[o->list][pub->nallow[o->list]++] = o->allow;
		plan->nallow[o->list]++;
	}
}

static void commit_kinds(struct dpriv *d)
{
	struct plan_priv *pv = d->pv;

	for (size_t i = 0; i < d->kinds_adj.n; i++)
		pv->kinds[d->kinds_adj.v[i].key].refs += d->kinds_adj.v[i].by;
	for (size_t g = 0; g < d->ngone_kinds; g++) {	/* descending */
		uint32_t k = d->gone_kinds[g], last = pv->nkinds - 1;

		hmap_del(&pv->kind_by_hash, pv->kinds[k].hash, k);
		if (k != last) {
			hmap_del(&pv->kind_by_hash, pv->kinds[last].hash, last);
			pv->kinds[k] = pv->kinds[last];
			hmap_put(&pv->kind_by_hash, pv->kinds[k].hash, k);	/* room */
		}
		pv->nkinds--;
	}
	for (size_t i = 0; i < d->nkinds; i++) {
		pv->kinds[pv->nkinds] = d->kinds[i];
		hmap_put(&pv->kind_by_hash, d->kinds[i].hash, pv->nkinds++);
	}
	for (uint32_t a = pv->natoms; a < pv->natoms + d->nnew_atoms; a++)
		hmap_put(&pv->nport_by_canon, pv->atoms[a].key, a);
	pv->natoms += d->nnew_atoms;
}

/* ---- entry points ---- */

static int steps(struct dpriv *d)
{
	int ret = 0;

	qsort(d->gone, d->ngone, sizeof(*d->gone), cmp_desc);
	for (size_t g = 0; g < d->ngone && !ret; g++)
		if (d->gone[g] >= d->plan->es->n || (g && d->gone[g] == d->gone[g - 1]))
			ret = -ESTALE;
	for (size_t j = 0; j < d->ncome && !ret; j++)
		ret = endpoint_come(d, j);
	for (size_t g = 0; g < d->ngone && !ret; g++)
		ret = endpoint_go(d, d->gone[g]);
	if (!ret)
		ret = gone_find(d);
	if (!ret)
		ret = lists(d);
	if (!ret)
		ret = room(d);
	return ret;
}

int moat_plan_delta_new(const struct moat_plan *plan, const size_t *gone, size_t ngone,
			const struct moat_endpoint *come, size_t ncome,
			struct moat_plan_delta **out)
{
	struct dpriv *d = calloc(1, sizeof(*d));
	int ret = d ? 0 : -ENOMEM;

	if (!ret) {
		*d = (struct dpriv){ .plan = plan, .pv = plan->priv, .come = come, .ncome = ncome,
				     .ngone = ngone };
		d->pub.priv = d;
		d->gone = malloc((ngone + 1) * sizeof(*d->gone));
		d->come_kind = malloc((ncome + 1) * sizeof(*d->come_kind));
		ret = d->gone && d->come_kind ? 0 : -ENOMEM;
	}
	if (!ret) {
		if (ngone)
			memcpy(d->gone, gone, ngone * sizeof(*gone));
		ret = steps(d);
	}
	if (ret) {
		moat_plan_delta_free(d ? &d->pub : NULL);
		return ret;
	}
	d->pub = (struct moat_plan_delta){ .idents_new = d->idpub, .nidents_new = d->nids,
		.idents_gone = d->gone_ids,
		.nidents_gone = d->ngone_ids, .allow_add = d->allow_add,
		.nallow_add = d->nallow_add, .allow_del = d->allow_del, .nallow_del = d->nallow_del,
		.addrs_add = d->add, .naddrs_add = d->nadd, .addrs_del = d->del,
		.naddrs_del = d->ndel, .priv = d };
	*out = &d->pub;
	return 0;
}

const struct moat_plan_ident *moat_plan_delta_ident(const struct moat_plan *plan,
						    const struct moat_plan_delta *delta,
						    uint32_t id)
{
	const struct dpriv *d = delta ? delta->priv : NULL;
	const struct plan_priv *pv = plan->priv;

	if (d && id >= pv->next_id && id - pv->next_id < d->nids)
		return &d->idpub[id - pv->next_id];
	return moat_plan_ident_get(plan, id);
}

void moat_plan_delta_commit(struct moat_plan *plan, struct moat_plan_delta *delta)
{
	struct dpriv *d = delta->priv;

	commit_endpoints(d, plan);
	commit_lists(d, plan);		/* before identities move: owners are found by id */
	commit_idents(d, plan);
	commit_kinds(d);
	d->nids = 0;			/* their lists are the plan's now */
	moat_plan_delta_free(delta);
}

void moat_plan_delta_free(struct moat_plan_delta *delta)
{
	struct dpriv *d = delta ? delta->priv : NULL;

	if (!d)
		return;
	for (size_t i = 0; i < d->nids; i++)
		for (int l = 0; l < MOAT_ALLOW_LISTS; l++)
			free(d->idpub[i].allow[l]);
	hmap_free(&d->kind_by_hash), hmap_free(&d->nport_by_canon), hmap_free(&d->ident_by_sig);
	hmap_free(&d->gone_set), hmap_free(&d->come_addrs);
	adjs_free(&d->idents), adjs_free(&d->kinds_adj);
	free(d->gone), free(d->come_kind), free(d->kinds), free(d->idp), free(d->idpub), free(d->gone_ids);
	free(d->gone_kinds), free(d->add), free(d->del), free(d->allow_add), free(d->allow_del);
	free(d->scratch.v);
	free(d);
}
