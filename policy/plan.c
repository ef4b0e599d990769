/*
 * The plan's lookups (an address, an identity, an atom of an identity) and its end. How a
 * plan is made is in compile.c and plan_delta.c; what it decides is in verdict.c.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "moat/hash.h"
#include "plan_policy.h"
#include "plan_priv.h"

uint32_t plan_ident_index(const struct moat_plan *plan, uint32_t id)
{
	size_t lo = 0, hi = plan->nidents;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (plan->idents[mid].id == id)
			return mid;
		if (plan->idents[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PLAN_NONE;
}

const struct moat_plan_ident *moat_plan_ident_get(const struct moat_plan *plan, uint32_t id)
{
	uint32_t i = plan_ident_index(plan, id);

	return i == PLAN_NONE ? NULL : &plan->idents[i];
}

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

uint64_t plan_addr_hash(const struct moat_addr *a)
{
	uint64_t h = moat_hash_bytes(MOAT_HASH_BASIS ^ moat_hash_seed(), &a->family, 1);

	return moat_hash_fin(moat_hash_bytes(h, a->a, addr_len(a->family)));
}

uint32_t plan_addr_index(const struct moat_plan *plan, const struct moat_addr *a)
{
	const struct plan_priv *pv = plan->priv;
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&pv->addr_by_hash, plan_addr_hash(a), &it)))
		if (plan->addrs[*v].addr.family == a->family &&
		    !memcmp(plan->addrs[*v].addr.a, a->a, addr_len(a->family)))
			return *v;
	return PLAN_NONE;
}

const struct moat_plan_addr *moat_plan_addr_find(const struct moat_plan *plan,
						 const struct moat_addr *a)
{
	uint32_t i = plan_addr_index(plan, a);

	return i == PLAN_NONE ? NULL : &plan->addrs[i];
}

static int addr_cmp(const struct moat_addr *a, const uint8_t *b, uint8_t bfam)
{
	if (a->family != bfam)
		return a->family < bfam ? -1 : 1;
	return memcmp(a->a, b, addr_len(a->family));
}

/* The net holding a: the last one that starts at or before it. */
static uint32_t net_find(const struct moat_plan *plan, const struct moat_addr *a)
{
	size_t lo = 0, hi = plan->nnets;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr_cmp(a, plan->nets[mid].lo, plan->nets[mid].family) >= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? plan->nets[lo - 1].ident : 0;
}

uint32_t moat_plan_ident_of(const struct moat_plan *plan, const struct moat_addr *a)
{
	const struct moat_plan_addr *pa = moat_plan_addr_find(plan, a);

	return pa ? pa->ident : net_find(plan, a);
}

bool plan_atoms_have(const uint32_t *a, uint32_t n, uint32_t atom)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a[mid] == atom)
			return true;
		if (a[mid] < atom)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool plan_ident_has(const struct plan_priv *pv, uint32_t i, uint32_t atom)
{
	return plan_atoms_have(pv->ids[i].atoms, pv->ids[i].natoms, atom);
}

int plan_nport(const struct plan_atom *atoms, const uint32_t *a, uint32_t n, const char *name,
	       uint8_t proto)
{
	for (uint32_t k = n; k-- > 0;) {	/* NPORT atoms come last: interned last */
		const struct plan_atom *at = &atoms[a[k]];

		if (at->kind != ATOM_NPORT)
			break;
		if (at->proto == proto && !strcmp(at->name, name))
			return at->port;
	}
	return -1;
}

int plan_nport_any(const struct plan_atom *atoms, const uint32_t *a, uint32_t n,
		   const char *name, uint8_t *proto)
{
	for (uint32_t k = n; k-- > 0;) {
		const struct plan_atom *at = &atoms[a[k]];

		if (at->kind != ATOM_NPORT)
			break;
		if (!strcmp(at->name, name)) {
			*proto = at->proto;
			return at->port;
		}
	}
	return -1;
}

int plan_ident_nport(const struct plan_priv *pv, uint32_t i, const char *name, uint8_t proto)
{
	return plan_nport(pv->atoms, pv->ids[i].atoms, pv->ids[i].natoms, name, proto);
}

void plan_ident_keys(const struct plan_atom *atoms, struct plan_ident_priv *id)
{
	for (uint32_t k = 0; k < id->natoms; k++)
		id->keys[k] = atoms[id->atoms[k]].key;
	u64_sort(id->keys, id->natoms);
	id->hash = moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS, id->keys, id->natoms * 8ul));
}

bool moat_plan_stale(const struct moat_plan *plan)
{
	const struct plan_priv *pv = plan->priv;
	size_t now = arena_bytes(pv->arena);

	return now > 2 * pv->arena_mark + (1u << 20);
}

void moat_plan_free(struct moat_plan *plan)
{
	struct plan_priv *pv;

	if (!plan)
		return;
	pv = plan->priv;
	for (size_t i = 0; plan->idents && i < plan->nidents; i++)
		for (int l = 0; l < MOAT_ALLOW_LISTS; l++)
			free(plan->idents[i].allow[l]);
	if (pv) {
		plan_policy_unref(pv->policy);
		arena_free(pv->arena);
		for (size_t a = 0; pv->atom_ids && a < pv->atom_ids_cap; a++)
			free(pv->atom_ids[a].v);
		free(pv->atom_ids);
		hmap_free(&pv->kind_by_hash);
		hmap_free(&pv->ident_by_sig);
		hmap_free(&pv->nport_by_canon);
		hmap_free(&pv->addr_by_hash);
		free(pv->atoms), free(pv->ids), free(pv->kinds);
		free(pv);
	}
	free(plan->idents), free(plan->addrs), free(plan->nets), free(plan->endpoint_ident);
	free(plan);
}

size_t moat_plan_domains(const struct moat_plan *plan, const struct moat_addr *src,
			 const char *qname,
			 void (*fn)(void *ctx, enum moat_tier tier, uint32_t j,
				    const struct moat_cnp_rule *rule),
			 void *ctx)
{
	const struct plan_priv *pv = plan->priv;
	const struct plan_policy *st = pv->policy;
	const struct moat_plan_addr *pa = moat_plan_addr_find(plan, src);
	uint32_t i = pa ? plan_ident_index(plan, pa->ident) : PLAN_NONE;
	size_t n = 0;

	for (uint32_t k = 0; i != PLAN_NONE && k < st->ndns_rules; k++) {
		const struct dns_rule *d = &st->dns_rules[k];
		const struct moat_cnp *c = &plan->ps->cnps[d->c];
		const struct moat_cnp_rule *r = &c->out[d->r];
		bool match = false;

		if (c->mode != MOAT_MODE_ENFORCE || plan->mode != MOAT_MODE_ENFORCE ||
		    !plan_ident_has(pv, i, st->cnp_subject[d->c]))
			continue;
		for (size_t p = 0; p < r->npeers && !match; p++)
			match = r->peers[p].kind == MOAT_PEER_DOMAIN &&
				moat_domain_match(r->peers[p].domain, qname);
		if (match) {
			fn(ctx, c->tier, d->j, r);
			n++;
		}
	}
	return n;
}
