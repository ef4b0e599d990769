/*
 * The whole compile: policies plus endpoints -> plan (see plan.h for the model).
 *
 * Steps: gather namespaces and their labels; take the policy state (plan_policy.c: atoms,
 * the selector index, address segments), shared with prev when built from the same input;
 * give every segment, every endpoint (on its labels and named ports alone) and every
 * endpoint address the set of atoms it holds, and intern those sets as identities, replicas
 * sharing their kind's work; keep prev's ids; isolation; lower each identity's rules into
 * its allow lists (lower.c); the address map and nets. It leaves behind what a delta
 * updates the plan with (plan_priv.h), so the two paths end in the same plan.
 * Cost: endpoints x (their labels' candidate selectors) + blocks x segments + elements.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "lower.h"
#include "moat/grow.h"
#include "moat/hash.h"
#include "plan_policy.h"
#include "plan_priv.h"
#include "radix.h"
#include "tier_class.h"

struct cc {
	const struct moat_policy_set *ps;
	const struct moat_endpoint_set *es;
	const struct moat_plan *prev;
	struct moat_plan *plan;
	struct plan_priv *pv;
	struct plan_policy *pol;	/* the plan's reference (pv->policy) */
	struct arena *ar;		/* the plan's */
	struct pb_ns *nss;
	size_t nns, nss_cap;
	struct hmap ns_by_name;
	struct hmap ident_by_sig;	/* while compiling: sig -> identity index */
	struct moat_plan_ident *pub;	/* by identity index, until idents_sort */
	size_t nidents;
	uint32_t *seg_ident[2];		/* per segment of pol: its identity index */
	uint32_t *id_of;		/* identity index -> id */
	struct u32vec scratch, base;
};

/* ---- namespaces ---- */

static long ns_find(const struct cc *c, const char *name)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&c->ns_by_name, moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, name)),
			      &it)))
		if (!strcmp(c->nss[*v].name, name))
			return *v;
	return -1;
}

/* Adds name with no labels yet, unless present. */
static int ns_add(struct cc *c, const char *name)
{
	if (ns_find(c, name) >= 0)
		return 0;
	if (grow((void **)&c->nss, c->nns, &c->nss_cap, sizeof(*c->nss)))
		return -ENOMEM;
	c->nss[c->nns] = (struct pb_ns){ .name = name };
	return hmap_put(&c->ns_by_name, moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, name)),
			c->nns++);
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct moat_label *)a)->key, ((const struct moat_label *)b)->key);
}

/* Sets key=value in l (an arena array with room), replacing an earlier value. */
static void label_set(struct moat_labels *l, const char *key, const char *value)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key)) {
			l->v[i].value = (char *)value;
			return;
		}
	l->v[l->n++] = (struct moat_label){ (char *)key, (char *)value };
}

/* Labels of a namespace: the endpoint set's, then the policy set's Namespace doc over them. */
static int ns_labels(struct cc *c, struct pb_ns *ns)
{
	const struct moat_labels *from[2] = { NULL, NULL };
	size_t max = 1;

	for (size_t i = 0; i < c->es->nnss; i++)
		if (!strcmp(c->es->nss[i].name, ns->name))
			from[0] = &c->es->nss[i].labels;
	for (size_t i = 0; i < c->ps->nnss; i++)
		if (!strcmp(c->ps->nss[i].name, ns->name))
			from[1] = &c->ps->nss[i].labels;
	for (int k = 0; k < 2; k++)
		max += from[k] ? from[k]->n : 0;
	ns->labels.v = arena_array(c->ar, max, sizeof(struct moat_label));
	if (!ns->labels.v)
		return -ENOMEM;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; from[k] && i < from[k]->n; i++)
			label_set(&ns->labels, from[k]->v[i].key, from[k]->v[i].value);
	label_set(&ns->labels, "kubernetes.io/metadata.name", ns->name);
	qsort(ns->labels.v, ns->labels.n, sizeof(struct moat_label), cmp_label);
	return 0;
}

static const char *pol_ns(const struct moat_netpol *p)
{
	return p->namespace ? p->namespace : MOAT_DEFAULT_NAMESPACE;
}

static int ns_gather(struct cc *c)
{
	int ret = 0;

	for (size_t i = 0; i < c->es->nnss && !ret; i++)
		ret = ns_add(c, c->es->nss[i].name);
	for (size_t i = 0; i < c->ps->nnss && !ret; i++)
		ret = ns_add(c, c->ps->nss[i].name);
	for (size_t i = 0; i < c->es->n && !ret; i++)
		ret = ns_add(c, c->es->v[i].namespace);
	for (size_t i = 0; i < c->ps->npols && !ret; i++)
		ret = ns_add(c, pol_ns(&c->ps->pols[i]));
	for (size_t i = 0; i < c->nns && !ret; i++)
		ret = ns_labels(c, &c->nss[i]);
	return ret;
}

/* ---- the policy state ---- */

/*
 * The plan starts its atoms with a copy of the state's: NPORT atoms, from endpoints, go
 * after them, and are found among themselves alone (nport_by_canon).
 */
static int policy_take(struct cc *c)
{
	const struct plan_priv *pp = c->prev ? c->prev->priv : NULL;
	struct plan_policy *pol;
	int ret = plan_policy_take(c->ps, c->nss, c->nns, pp ? pp->policy : NULL, &pol);

	if (ret)
		return ret;
	c->pv->policy = c->pol = pol;
	c->pv->atoms = malloc((pol->natoms + 16) * sizeof(*pol->atoms));
	if (!c->pv->atoms)
		return -ENOMEM;
	if (pol->natoms)	/* none without policies: atoms is NULL then */
		memcpy(c->pv->atoms, pol->atoms, pol->natoms * sizeof(*pol->atoms));
	c->pv->natoms = pol->natoms;
	c->pv->atoms_cap = pol->natoms + 16;
	c->pv->target_atom = pol->target_atom;
	memcpy(c->pv->rule_base, pol->rule_base, sizeof(pol->rule_base));
	memcpy(c->pv->rule_peers, pol->rule_peers, sizeof(pol->rule_peers));
	memcpy(c->plan->ndomains, pol->ndns, sizeof(pol->ndns));
	return 0;
}

/* ---- identities ---- */

/* A word at a time: an endpoint's identity has as many atoms as selectors pick it. */
static uint64_t sig_hash(const uint32_t *a, size_t n)
{
	return moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS, a, n * sizeof(*a)));
}

/* Interns the sorted atom set a[0..n) as an identity; *out is its index. */
static int ident_intern(struct cc *c, const uint32_t *a, size_t n, uint32_t *out)
{
	struct plan_priv *pv = c->pv;
	uint64_t h = sig_hash(a, n);
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&c->ident_by_sig, h, &it)))
		if (pv->ids[*v].natoms == n && (!n || !memcmp(pv->ids[*v].atoms, a, n * 4))) {
			*out = *v;
			return 0;
		}
	if (grow((void **)&pv->ids, c->nidents, &pv->ids_cap, sizeof(*pv->ids)))
		return -ENOMEM;
	struct plan_ident_priv *id = &pv->ids[c->nidents];

	*id = (struct plan_ident_priv){ .atoms = arena_array(c->ar, n + 1, 4), .natoms = n,
					.sig = h };
	if (!id->atoms)
		return -ENOMEM;
	if (n)
		memcpy(id->atoms, a, n * 4);
	*out = c->nidents++;
	return hmap_put(&c->ident_by_sig, h, *out);
}

/* Interns base[0..nbase) plus extra[0..n) (a scratch copy, sorted). */
static int ident_of_union(struct cc *c, const uint32_t *base, size_t nbase, const uint32_t *extra,
			  size_t n, uint32_t *out)
{
	c->scratch.n = 0;
	for (size_t i = 0; i < nbase; i++)
		if (u32vec_push(&c->scratch, base[i]))
			return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (u32vec_push(&c->scratch, extra[i]))
			return -ENOMEM;
	c->scratch.n = u32_sort_uniq(c->scratch.v, c->scratch.n);
	return ident_intern(c, c->scratch.v, c->scratch.n, out);
}

/* The segments' identities, interned before any other so their indexes never vary. */
static int segs_intern(struct cc *c)
{
	int ret = 0;

	for (int f = 0; f < 2 && !ret; f++) {
		const struct seg *v = c->pol->segs[f];

		c->seg_ident[f] = malloc((c->pol->nsegs[f] + 1) * 4);
		if (!c->seg_ident[f])
			return -ENOMEM;
		for (size_t i = 0; i < c->pol->nsegs[f] && !ret; i++) {
			ret = ident_intern(c, v[i].atoms, v[i].natoms, &c->seg_ident[f][i]);
			if (!ret)
				c->pv->ids[c->seg_ident[f][i]].refs++;
		}
	}
	return ret;
}

/* ---- kinds ---- */

/* kind_nport_fn of the whole compile: the NPORT atom, interned in the plan. */
static int nport_intern(void *ctx, const struct moat_named_port *np, uint32_t *out)
{
	struct cc *c = ctx;
	struct plan_priv *pv = c->pv;
	char canon[96];
	uint64_t h;
	size_t it = 0;
	uint32_t *v;

	nport_canon(canon, sizeof(canon), np->name, np->proto, np->port);
	h = moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, canon));
	while ((v = hmap_next(&pv->nport_by_canon, h, &it)))
		if (!strcmp(pv->atoms[*v].canon, canon)) {
			*out = *v;
			return 0;
		}
	if (pv->natoms == pv->atoms_cap) {
		struct plan_atom *a = realloc(pv->atoms, 2 * pv->atoms_cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		pv->atoms = a, pv->atoms_cap *= 2;
	}
	pv->atoms[pv->natoms] = (struct plan_atom){ .kind = ATOM_NPORT, .proto = np->proto,
		.port = np->port, .key = h, .canon = arena_strdup(c->ar, canon),
		.name = arena_strdup(c->ar, np->name) };
	if (!pv->atoms[pv->natoms].canon || !pv->atoms[pv->natoms].name)
		return -ENOMEM;
	*out = pv->natoms++;
	return hmap_put(&pv->nport_by_canon, h, *out);
}

/* A new kind, e its first: its atoms, then its address-less identity (an index for now). */
static int kind_add(struct cc *c, const struct moat_endpoint *e, uint64_t h, uint32_t *out)
{
	struct plan_priv *pv = c->pv;
	struct plan_kind *k;
	int ret;

	if (pv->nkinds == pv->kinds_cap) {
		size_t cap = pv->kinds_cap;

		if (grow((void **)&pv->kinds, pv->nkinds, &cap, sizeof(*pv->kinds)))
			return -ENOMEM;
		pv->kinds_cap = cap;
	}
	k = &pv->kinds[pv->nkinds];
	ret = kind_copy(c->ar, e, h, k);
	if (!ret)
		ret = kind_atoms(c->pol, pv->atoms, ns_find(c, e->namespace), e, nport_intern, c,
				 &c->base);
	k = &pv->kinds[pv->nkinds];	/* nport_intern does not move kinds, but be plain */
	k->ns_index = ns_find(c, e->namespace);
	k->natoms = c->base.n;
	k->atoms = ret ? NULL : arena_array(c->ar, c->base.n + 1, 4);
	if (!ret && !k->atoms)
		ret = -ENOMEM;
	if (ret)
		return ret;
	if (c->base.n)
		memcpy(k->atoms, c->base.v, c->base.n * 4);
	ret = ident_intern(c, k->atoms, k->natoms, &k->ident);
	*out = pv->nkinds;
	return ret ? ret : hmap_put(&pv->kind_by_hash, h, pv->nkinds++);
}

/*
 * Identities of endpoint i: on its labels alone, then per address with ipBlocks applied
 * (replicas mostly share a segment: the last one's identity is remembered). out[j] gets
 * address j.
 */
static int endpoint_idents(struct cc *c, size_t i, struct moat_plan_addr *out,
			   const struct seg **seg, uint32_t *seg_ident, uint32_t *last_kind)
{
	const struct moat_endpoint *e = &c->es->v[i];
	uint64_t h = kind_hash(e);
	long k = kind_find(c->pv, e, h);
	uint32_t ki = k >= 0 ? (uint32_t)k : 0;
	int ret = k >= 0 ? 0 : kind_add(c, e, h, &ki);
	const struct plan_kind *kind;

	if (ret)
		return ret;
	kind = &c->pv->kinds[ki];
	c->pv->kinds[ki].refs++;
	c->plan->endpoint_ident[i] = kind->ident;
	if (ki != *last_kind)
		*seg = NULL, *last_kind = ki;
	for (size_t j = 0; j < e->nips && !ret; j++) {
		const struct moat_addr *a = &e->ips[j];
		const struct seg *s = plan_policy_seg(c->pol, fam_index(a->family),
						      addr_u128(a->a, a->family));

		if (s != *seg)
			ret = ident_of_union(c, kind->atoms, kind->natoms, s->atoms, s->natoms,
					     seg_ident);
		*seg = ret ? NULL : s;
		out[j] = (struct moat_plan_addr){ *a, *seg_ident, i };
	}
	return ret;
}

static int addrs_build(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	const struct seg *seg = NULL;
	uint32_t seg_ident = 0, last_kind = PLAN_NONE;
	size_t n = 0, k = 0;
	int ret = 0;

	for (size_t i = 0; i < c->es->n; i++)
		n += c->es->v[i].nips;
	pl->addrs = calloc(n + 1, sizeof(*pl->addrs));
	pl->endpoint_ident = calloc(c->es->n + 1, 4);
	if (!pl->addrs || !pl->endpoint_ident)
		return -ENOMEM;
	c->pv->addrs_cap = n + 1, c->pv->eident_cap = c->es->n + 1;
	for (size_t i = 0; i < c->es->n && !ret; i++) {
		ret = endpoint_idents(c, i, &pl->addrs[k], &seg, &seg_ident, &last_kind);
		k += c->es->v[i].nips;
	}
	pl->naddrs = n;
	return ret;
}

/* ---- identity ids, kept across compiles ---- */

/*
 * prev's identity with the same atom indexes, each of them an atom with the same key in
 * both plans (so its sorted keys are this one's), or NULL. When the policy state is shared
 * most identities have one, which spares sorting their keys.
 */
static const struct plan_ident_priv *prev_same(const struct cc *c, const struct hmap *sigs,
					       const struct plan_ident_priv *id)
{
	const struct plan_priv *pp = c->prev ? c->prev->priv : NULL;
	size_t it = 0;
	uint32_t *v, k = 0;

	while (pp && (v = hmap_next(sigs, id->sig, &it))) {
		const struct plan_ident_priv *p = &pp->ids[*v];

		if (p->natoms != id->natoms || memcmp(p->atoms, id->atoms, id->natoms * 4ul))
			continue;
		while (k < id->natoms && id->atoms[k] < pp->natoms &&
		       pp->atoms[id->atoms[k]].key == c->pv->atoms[id->atoms[k]].key)
			k++;
		return k == id->natoms ? p : NULL;	/* atom sets are unique within a plan */
	}
	return NULL;
}

/* The content keys of identity i, and their hash: what the next compile matches on. */
static int ident_keys(struct cc *c, uint32_t i, const struct hmap *sigs)
{
	struct plan_ident_priv *id = &c->pv->ids[i];
	const struct plan_ident_priv *same = prev_same(c, sigs, id);

	id->keys = arena_array(c->ar, id->natoms + 1, 8);
	if (!id->keys)
		return -ENOMEM;
	if (same) {
		if (id->natoms)
			memcpy(id->keys, same->keys, id->natoms * 8ul);
		id->hash = same->hash;
		return 0;
	}
	plan_ident_keys(c->pv->atoms, id);
	return 0;
}

/* prev's id for an identity with these keys, or 0. */
static uint32_t prev_id(const struct hmap *m, const struct moat_plan *prev,
			const struct plan_ident_priv *id)
{
	const struct plan_priv *pp = prev ? prev->priv : NULL;
	size_t it = 0;
	uint32_t *v;

	while (pp && (v = hmap_next(m, id->hash, &it)))
		if (pp->ids[*v].natoms == id->natoms &&
		    (!id->natoms || !memcmp(pp->ids[*v].keys, id->keys, id->natoms * 8ul)))
			return prev->idents[*v].id;
	return 0;
}

static int ids_assign(struct cc *c)
{
	const struct plan_priv *pp = c->prev ? c->prev->priv : NULL;
	struct hmap m = { 0 }, sigs = { 0 };	/* prev's identities by keys, by atoms */
	int ret = 0;

	c->pv->next_id = pp ? pp->next_id : 1;	/* 0 is "no identity" in the *_any lists */
	for (size_t i = 0; pp && i < c->prev->nidents && !ret; i++)
		ret = hmap_put(&m, pp->ids[i].hash, i) || hmap_put(&sigs, pp->ids[i].sig, i) ?
		      -ENOMEM : 0;
	c->id_of = malloc((c->nidents + 1) * 4);
	if (!c->id_of)
		ret = -ENOMEM;
	for (uint32_t i = 0; i < c->nidents && !ret; i++) {
		ret = ident_keys(c, i, &sigs);
		c->id_of[i] = ret ? 0 : prev_id(&m, c->prev, &c->pv->ids[i]);
		if (!ret && !c->id_of[i])
			c->id_of[i] = c->pv->next_id++;
	}
	hmap_free(&m);
	hmap_free(&sigs);
	return ret;
}

static int isolation(struct cc *c)
{
	int ret = 0;

	c->pub = calloc(c->nidents + 1, sizeof(*c->pub));
	if (!c->pub)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nidents && !ret; i++) {
		c->pub[i].id = c->id_of[i];
		ret = lower_isolation(c->ps, c->pol, c->plan->mode, c->ar, &c->pv->ids[i],
				      &c->pub[i]);
	}
	return ret;
}

/*
 * Identity indexes in addrs and endpoint_ident become ids; an address two endpoints claim
 * keeps the first of them (a map has one value per key; the kernel sees the same). Counts
 * what has each identity.
 */
static int addrs_finish(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	struct plan_priv *pv = c->pv;
	size_t k = 0;

	if (hmap_reserve(&pv->addr_by_hash, pl->naddrs))
		return -ENOMEM;
	for (size_t i = 0; i < c->es->n; i++) {
		pv->ids[pl->endpoint_ident[i]].refs++;
		pl->endpoint_ident[i] = c->id_of[pl->endpoint_ident[i]];
	}
	for (size_t i = 0; i < pl->naddrs; i++) {
		struct moat_plan_addr a = pl->addrs[i];

		if (plan_addr_index(pl, &a.addr) != PLAN_NONE)
			continue;
		pv->ids[a.ident].refs++;
		a.ident = c->id_of[a.ident];
		pl->addrs[k] = a;
		hmap_put(&pv->addr_by_hash, plan_addr_hash(&a.addr), k++);	/* reserved */
	}
	pl->naddrs = k;
	for (uint32_t i = 0; i < pv->nkinds; i++)
		pv->kinds[i].ident = c->id_of[pv->kinds[i].ident];
	return 0;
}

/* Orders identities by id, as plan.h promises, and indexes them by atoms. */
static int idents_sort(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	struct plan_priv *pv = c->pv;
	size_t n = c->nidents;
	struct plan_ident_priv *b = malloc((n + 1) * sizeof(*b));
	uint64_t *p = malloc((n + 1) * sizeof(*p));	/* (id, index) */

	pl->idents = malloc((n + 1) * sizeof(*pl->idents));
	if (!pl->idents || !b || !p || hmap_reserve(&pv->ident_by_sig, n)) {
		free(b), free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (uint64_t)c->id_of[i] << 32 | i;
	u64_sort(p, n);
	for (size_t i = 0; i < n; i++) {
		pl->idents[i] = c->pub[(uint32_t)p[i]];
		b[i] = pv->ids[(uint32_t)p[i]];
		hmap_put(&pv->ident_by_sig, b[i].sig, pl->idents[i].id);	/* reserved */
	}
	free(pv->ids), free(p);
	pv->ids = b;
	pv->ids_cap = n + 1;
	pl->nidents = n;
	return 0;
}

/* Per atom, the ids of the identities that hold it. */
static int atom_ids(struct cc *c)
{
	struct plan_priv *pv = c->pv;

	pv->atom_ids = calloc(pv->atoms_cap, sizeof(*pv->atom_ids));
	if (!pv->atom_ids)
		return -ENOMEM;
	pv->atom_ids_cap = pv->atoms_cap;
	for (size_t i = 0; i < c->plan->nidents; i++)
		for (uint32_t k = 0; k < pv->ids[i].natoms; k++)
			if (u32vec_push(&pv->atom_ids[pv->ids[i].atoms[k]], c->plan->idents[i].id))
				return -ENOMEM;
	return 0;
}

/* ---- allow lists ---- */

/* Hands the merged elements v (sorted by owner) to their owners' lists. */
static int allow_give(struct moat_plan *pl, struct plan_priv *pv, const struct lelem *v, size_t n)
{
	for (size_t i = 0, j; i < n; i = j) {
		uint32_t o = plan_ident_index(pl, v[i].owner), l = v[i].list;
		struct moat_plan_allow *a;

		for (j = i; j < n && v[j].owner == v[i].owner && v[j].list == l; j++)
			;
		a = malloc((j - i) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		for (size_t k = i; k < j; k++)
			a[k - i] = v[k].a;
		pl->idents[o].allow[l] = a;
		pl->idents[o].nallow[l] = pv->ids[o].allow_cap[l] = j - i;
		pl->nallow[l] += j - i;
	}
	return 0;
}

/* Appends class cl's tier elements to lw's, as owner's. 0 or -ENOMEM. */
static int tier_copy(struct lowering *lw, const struct tier_class *cl, uint32_t owner)
{
	for (size_t k = 0; k < cl->n; k++) {
		if (grow((void **)&lw->out, lw->nout, &lw->cap, sizeof(*lw->out)))
			return -ENOMEM;
		lw->out[lw->nout] = cl->v[k];
		lw->out[lw->nout++].owner = owner;
	}
	return 0;
}

#define TIER_KEY_MAX 256

/*
 * One identity's lists: lowered and merged on their own (what lowering emits for one owner
 * is bounded by its peers, not by every pair), the tier lists copied from an identity of the
 * same class when one was lowered before.
 */
static int elements_of(struct cc *c, struct lowering *lw, struct tier_classes *tcs, size_t i)
{
	struct lident x = { c->plan->idents[i].id, &c->pv->ids[i] };
	uint32_t key[TIER_KEY_MAX];
	size_t nkey = lower_tier_class(lw, &x, key, TIER_KEY_MAX);
	const struct tier_class *cl = nkey <= TIER_KEY_MAX ? tier_classes_find(tcs, key, nkey)
							   : NULL;
	int ret = lower_owner_policies(lw, &x);

	if (!ret && !cl)
		ret = lower_owner_tiers(lw, &x);
	if (!ret)
		ret = lower_merge(lw);
	if (!ret && cl)
		ret = tier_copy(lw, cl, x.id);
	else if (!ret && nkey <= TIER_KEY_MAX)
		ret = tier_classes_add(tcs, key, nkey, lw->out, lw->nout);
	if (!ret)
		ret = allow_give(c->plan, c->pv, lw->out, lw->nout);
	lw->nout = 0;
	return ret;
}

static int elements(struct cc *c)
{
	struct plan_priv *pv = c->pv;
	struct lowering lw = { .ps = c->ps, .pol = c->pol, .plan = c->plan, .atoms = pv->atoms,
			       .natoms = pv->natoms, .atom_ids = pv->atom_ids,
			       .natoms_ids = pv->natoms };
	struct tier_classes tcs = { 0 };
	int ret = 0;

	for (size_t i = 0; i < c->plan->nidents && !ret; i++)
		ret = elements_of(c, &lw, &tcs, i);
	tier_classes_free(&tcs);
	free(lw.out);
	return ret;
}

/* ---- nets ---- */

static void u128_bytes(u128 x, int f, uint8_t *out)
{
	int n = f ? 16 : 4;

	memset(out, 0, 16);
	for (int i = n; i-- > 0; x >>= 8)
		out[i] = (uint8_t)x;
}

/* Segments with the same identity side by side join into one net. */
static int nets_build(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	const struct plan_policy *pol = c->pol;

	pl->nets = calloc(pol->nsegs[0] + pol->nsegs[1] + 1, sizeof(*pl->nets));
	if (!pl->nets)
		return -ENOMEM;
	for (int f = 0; f < 2; f++)
		for (size_t i = 0; i < pol->nsegs[f]; i++) {
			const struct seg *s = &pol->segs[f][i];
			uint32_t id = c->id_of[c->seg_ident[f][i]];
			struct moat_plan_net *last = pl->nnets ? &pl->nets[pl->nnets - 1] : NULL;
			u128 hi = i + 1 < pol->nsegs[f] ? s[1].lo - 1 : (f ? ~(u128)0 : 0xffffffffu);

			if (!last || last->family != (f ? AF_INET6 : AF_INET) || last->ident != id) {
				last = &pl->nets[pl->nnets++];
				last->family = f ? AF_INET6 : AF_INET;
				last->ident = id;
				u128_bytes(s->lo, f, last->lo);
			}
			u128_bytes(hi, f, last->hi);
		}
	return 0;
}

/* ---- entry point ---- */

static void cc_free(struct cc *c)
{
	hmap_free(&c->ns_by_name);
	hmap_free(&c->ident_by_sig);
	free(c->nss), free(c->seg_ident[0]), free(c->seg_ident[1]), free(c->pub);
	free(c->scratch.v), free(c->base.v), free(c->id_of);
}

static int compile_steps(struct cc *c)
{
	int (*const steps[])(struct cc *) = {
		ns_gather, policy_take, segs_intern, addrs_build, ids_assign, isolation,
		nets_build, addrs_finish, idents_sort, atom_ids, elements,
	};
	int ret = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !ret; i++)
		ret = steps[i](c);
	c->pv->arena_mark = arena_bytes(c->ar);
	return ret;
}

int moat_plan_compile(const struct moat_policy_set *ps, const struct moat_endpoint_set *es,
		      enum moat_mode mode, const struct moat_plan *prev, struct moat_plan **out)
{
	struct moat_plan *plan = calloc(1, sizeof(*plan));
	struct plan_priv *pv = calloc(1, sizeof(*pv));
	struct cc c = { .ps = ps, .es = es, .prev = prev, .plan = plan, .pv = pv };
	int ret = -ENOMEM;

	if (!plan || !pv || !(pv->arena = arena_new()))
		goto out;
	plan->priv = pv;
	plan->mode = mode;
	plan->ps = ps;
	plan->es = es;
	c.ar = pv->arena;
	ret = compile_steps(&c);
out:
	cc_free(&c);
	if (ret) {
		if (!plan || !plan->priv)
			free(pv);
		moat_plan_free(plan);
		return ret;
	}
	*out = plan;
	return 0;
}
