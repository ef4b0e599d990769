/*
 * Lowering (lower.h). An element of owner O's list with peer P comes from a rule of a policy
 * whose podSelector O holds, and a peer atom P holds (or, for a peerless egress rule with a
 * named port, the NPORT atom P holds): so the elements of a pair depend on the pair alone,
 * and lowering an identity as an owner and as a peer finds every element it is part of.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "grow.h"
#include "lower.h"
#include "moat/hash.h"
#include "radix.h"

struct pspec {
	uint8_t plo, phi;
	uint16_t lo, hi;
};

static const struct pspec PSPEC_ALL = { 0, 255, 0, 65535 };

uint64_t gone_key(uint32_t id)
{
	return moat_hash_fin(id + 1ull);
}

bool lower_gone(const struct lowering *lw, uint32_t id)
{
	size_t it = 0;
	uint32_t *v;

	while (lw->gone && (v = hmap_next(lw->gone, gone_key(id), &it)))
		if (*v == id)
			return true;
	return false;
}

static int emit(struct lowering *lw, uint32_t owner, enum moat_allow_list list, uint32_t peer,
		const struct pspec *s)
{
	if (grow((void **)&lw->out, lw->nout, &lw->cap, sizeof(*lw->out)))
		return -ENOMEM;
	lw->out[lw->nout++] = (struct lelem){ owner, list,
		{ peer, s->plo, s->phi, s->lo, s->hi } };
	return 0;
}

/* One ports entry as a range for destination dst; false when it matches nothing. */
static bool port_spec(const struct lowering *lw, const struct moat_port *mp,
		      const struct plan_ident_priv *dst, bool named_ok, struct pspec *s)
{
	int v;

	*s = (struct pspec){ mp->proto, mp->proto, mp->port, mp->end_port };
	if (mp->name) {
		v = named_ok && dst ? plan_nport(lw->atoms, dst->atoms, dst->natoms, mp->name,
						 mp->proto) : -1;
		s->lo = s->hi = v;
		return v >= 0;
	}
	if (!mp->port)
		s->hi = 65535;
	else if (mp->end_port < mp->port)
		s->hi = mp->port;
	return true;
}

/* ---- the identities that hold an atom ---- */

typedef int (*holder_fn)(struct lowering *lw, const struct lident *h, void *arg);

/* Calls fn for each identity holding atom: the plan's that stay, then (all) the new ones. */
static int holders(struct lowering *lw, uint32_t atom, bool plan_only, holder_fn fn, void *arg)
{
	const struct plan_priv *pv = lw->plan->priv;
	int ret = 0;

	for (size_t i = 0; atom < lw->natoms_ids && i < lw->atom_ids[atom].n && !ret; i++) {
		uint32_t id = lw->atom_ids[atom].v[i], k;

		if (lower_gone(lw, id) || (k = plan_ident_index(lw->plan, id)) == PLAN_NONE)
			continue;
		ret = fn(lw, &(struct lident){ id, &pv->ids[k] }, arg);
	}
	for (size_t i = 0; !plan_only && i < lw->nextra && !ret; i++)
		if (plan_atoms_have(lw->extra[i].p->atoms, lw->extra[i].p->natoms, atom))
			ret = fn(lw, &lw->extra[i], arg);
	return ret;
}

/* ---- an identity as the owner ---- */

struct rule_ctx {
	const struct lident *x;		/* the owner (or, for lower_peer, the peer) */
	const struct moat_rule *r;
	const struct pspec *s;		/* ingress: the spec, resolved against the owner */
	bool egress, named_ok;		/* named_ok: named ports apply (a pod peer) */
	const struct plan_atom *nport;	/* named ports to any destination: this value */
};

static int in_peer(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct rule_ctx *rc = arg;

	return emit(lw, rc->x->id, MOAT_ALLOW_IN, h->id, rc->s);
}

static int lower_in_spec(struct lowering *lw, const struct lident *x, const struct moat_rule *r,
			 const uint32_t *peers, const struct pspec *s)
{
	struct rule_ctx rc = { .x = x, .r = r, .s = s };
	int ret = 0;

	if (!r->npeers)
		return emit(lw, x->id, MOAT_ALLOW_IN_ANY, 0, s);
	for (size_t k = 0; k < r->npeers && !ret; k++)
		ret = holders(lw, peers[k], false, in_peer, &rc);
	return ret;
}

/* Ingress rule r for owner x: ports resolve against x. */
static int lower_in(struct lowering *lw, const struct lident *x, const struct moat_rule *r,
		    const uint32_t *peers)
{
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return lower_in_spec(lw, x, r, peers, &PSPEC_ALL);
	for (size_t k = 0; k < r->nports && !ret; k++)
		if (port_spec(lw, &r->ports[k], x->p, true, &s))
			ret = lower_in_spec(lw, x, r, peers, &s);
	return ret;
}

/* Egress to peer h: ports resolve against h (named ones only for a pod peer). */
static int out_peer(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct rule_ctx *rc = arg;
	struct pspec s;
	int ret = 0;

	if (!rc->r->nports)
		return emit(lw, rc->x->id, MOAT_ALLOW_OUT, h->id, &PSPEC_ALL);
	for (size_t k = 0; k < rc->r->nports && !ret; k++)
		if (port_spec(lw, &rc->r->ports[k], h->p, rc->named_ok, &s))
			ret = emit(lw, rc->x->id, MOAT_ALLOW_OUT, h->id, &s);
	return ret;
}

static int out_nport(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct rule_ctx *rc = arg;
	struct pspec s = { rc->nport->proto, rc->nport->proto, rc->nport->port, rc->nport->port };

	return emit(lw, rc->x->id, MOAT_ALLOW_OUT, h->id, &s);
}

/* A named port to any destination: to each identity that gives the name a value. */
static int lower_out_named_any(struct lowering *lw, const struct lident *x,
			       const struct moat_port *mp)
{
	struct rule_ctx rc = { .x = x };
	int ret = 0;

	for (uint32_t a = 0; a < lw->natoms && !ret; a++) {
		const struct plan_atom *at = &lw->atoms[a];

		if (at->kind != ATOM_NPORT || at->proto != mp->proto || strcmp(at->name, mp->name))
			continue;
		rc.nport = at;
		ret = holders(lw, a, false, out_nport, &rc);
	}
	return ret;
}

static int lower_out_any(struct lowering *lw, const struct lident *x, const struct moat_rule *r)
{
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return emit(lw, x->id, MOAT_ALLOW_OUT_ANY, 0, &PSPEC_ALL);
	for (size_t k = 0; k < r->nports && !ret; k++) {
		if (r->ports[k].name)
			ret = lower_out_named_any(lw, x, &r->ports[k]);
		else if (port_spec(lw, &r->ports[k], NULL, false, &s))
			ret = emit(lw, x->id, MOAT_ALLOW_OUT_ANY, 0, &s);
	}
	return ret;
}

/* Egress rule r for owner x; named ports never match an ipBlock peer. */
static int lower_out(struct lowering *lw, const struct lident *x, const struct moat_rule *r,
		     const uint32_t *peers)
{
	int ret = 0;

	if (!r->npeers)
		return lower_out_any(lw, x, r);
	for (size_t k = 0; k < r->npeers && !ret; k++) {
		struct rule_ctx rc = { .x = x, .r = r, .named_ok = r->peers[k].kind == MOAT_PEER_PODS };

		ret = holders(lw, peers[k], false, out_peer, &rc);
	}
	return ret;
}

/* Rules of a direction the policy does not isolate are ignored, as Kubernetes does. */
static int lower_policy(struct lowering *lw, const struct lident *x, uint32_t p)
{
	const struct moat_netpol *pol = &lw->ps->pols[p];
	const struct plan_policy *st = lw->pol;
	uint32_t **rp[2] = { st->rule_peers[0] + st->rule_base[0][p],
			     st->rule_peers[1] + st->rule_base[1][p] };
	int ret = 0;

	for (size_t r = 0; pol->isolates_in && r < pol->nin && !ret; r++)
		ret = lower_in(lw, x, &pol->in[r], rp[0][r]);
	for (size_t r = 0; pol->isolates_out && r < pol->nout && !ret; r++)
		ret = lower_out(lw, x, &pol->out[r], rp[1][r]);
	return ret;
}

/* Policy atoms come first in an identity's sorted atoms, and only they head tgt_head. */
int lower_owner(struct lowering *lw, const struct lident *x)
{
	const struct plan_policy *st = lw->pol;
	int ret = 0;

	for (uint32_t k = 0; k < x->p->natoms && x->p->atoms[k] < st->natoms && !ret; k++)
		for (uint32_t l = st->tgt_head[x->p->atoms[k]]; l != PLAN_NONE && !ret;
		     l = st->links[l].next)
			ret = lower_policy(lw, x, st->links[l].atom);
	return ret;
}

/* ---- an identity as the peer ---- */

/* Owner h (of the plan, staying) gets the elements of rule rc->r with peer rc->x. */
static int peer_owner(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct rule_ctx *rc = arg;
	const struct moat_rule *r = rc->r;
	enum moat_allow_list list = rc->egress ? MOAT_ALLOW_OUT : MOAT_ALLOW_IN;
	struct pspec s;
	int ret = 0;

	if (rc->nport) {
		s = (struct pspec){ rc->nport->proto, rc->nport->proto, rc->nport->port,
				    rc->nport->port };
		return emit(lw, h->id, MOAT_ALLOW_OUT, rc->x->id, &s);
	}
	if (!r->nports)
		return emit(lw, h->id, list, rc->x->id, &PSPEC_ALL);
	/* ingress ports resolve against the owner, egress ones against the peer */
	for (size_t k = 0; k < r->nports && !ret; k++)
		if (port_spec(lw, &r->ports[k], rc->egress ? rc->x->p : h->p,
			      !rc->egress || rc->named_ok, &s))
			ret = emit(lw, h->id, list, rc->x->id, &s);
	return ret;
}

/* The rule of ref names x as a peer: its policy's targets that stay get the elements. */
static int peer_rule(struct lowering *lw, const struct lident *x, const struct peer_ref *ref)
{
	const struct moat_netpol *pol = &lw->ps->pols[ref->p];
	struct rule_ctx rc = { .x = x, .r = ref->egress ? &pol->out[ref->r] : &pol->in[ref->r],
			       .egress = ref->egress, .named_ok = ref->pods };

	if (ref->egress ? !pol->isolates_out : !pol->isolates_in)
		return 0;
	return holders(lw, lw->pol->target_atom[ref->p], true, peer_owner, &rc);
}

int lower_peer(struct lowering *lw, const struct lident *x)
{
	const struct plan_policy *st = lw->pol;
	int ret = 0;

	for (uint32_t k = 0; k < x->p->natoms && !ret; k++) {
		uint32_t a = x->p->atoms[k];
		const struct plan_atom *at = &lw->atoms[a];

		if (a < st->natoms) {
			for (uint32_t i = st->peer_off[a]; i < st->peer_off[a + 1] && !ret; i++)
				ret = peer_rule(lw, x, &st->peer_refs[i]);
			continue;
		}
		if (at->kind != ATOM_NPORT)
			continue;
		size_t it = 0;
		uint32_t *first = hmap_next(&st->nport_uses, nport_key(at->name, at->proto), &it);

		for (uint32_t u = first ? *first : PLAN_NONE; u != PLAN_NONE && !ret;
		     u = st->uses[u].next) {
			const struct nport_use *use = &st->uses[u];
			const struct moat_netpol *pol = &lw->ps->pols[use->p];
			struct rule_ctx rc = { .x = x, .egress = true, .nport = at };
			const struct moat_port *mp = &pol->out[use->r].ports[use->k];

			if (pol->isolates_out && mp->proto == at->proto && !strcmp(mp->name, at->name))
				ret = holders(lw, st->target_atom[use->p], true, peer_owner, &rc);
		}
	}
	return ret;
}

/* ---- merging ---- */

/*
 * The order lower_merge needs as bytes, the least significant first: port_lo, the widest
 * proto_hi first, proto_lo, then peer, list and owner.
 */
static void lelem_digits(const void *p, uint8_t *out)
{
	const struct lelem *e = p;
	uint64_t hi = (uint64_t)e->owner << 32 | (uint64_t)e->list << 30;
	uint64_t lo = (uint64_t)e->a.peer << 32 | (uint32_t)e->a.proto_lo << 24 |
		      (uint32_t)(255 - e->a.proto_hi) << 16 | e->a.port_lo;

	for (int d = 0; d < 8; d++)
		out[d] = lo >> 8 * d;
	for (int d = 0; d < 5; d++)
		out[8 + d] = hi >> (8 * d + 24);
}

static unsigned lelem_digit(const void *p, int d)
{
	uint8_t b[13];

	lelem_digits(p, b);
	return b[d];
}

static bool same_key(const struct lelem *x, const struct lelem *y)
{
	return x->owner == y->owner && x->list == y->list && x->a.peer == y->a.peer;
}

/*
 * Per key, an every-protocol element (sorted first: proto_lo 0, widest proto_hi) swallows
 * the rest; otherwise overlapping or adjacent port ranges of one protocol join. Rules only
 * make every-protocol or single-protocol elements.
 */
int lower_merge(struct lelem *v, size_t *n)
{
	size_t k = 0;

	if (radix_sort(v, *n, sizeof(*v), 13, lelem_digits, lelem_digit))
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		struct lelem *last = k ? &v[k - 1] : NULL;

		if (last && same_key(last, &v[i]) && last->a.proto_lo == 0 && last->a.proto_hi == 255)
			continue;
		if (last && same_key(last, &v[i]) && last->a.proto_lo == v[i].a.proto_lo &&
		    (uint32_t)v[i].a.port_lo <= (uint32_t)last->a.port_hi + 1) {
			if (v[i].a.port_hi > last->a.port_hi)
				last->a.port_hi = v[i].a.port_hi;
			continue;
		}
		v[k++] = v[i];
	}
	*n = k;
	return 0;
}

/* ---- isolation ---- */

int lower_isolation(const struct moat_policy_set *ps, const struct plan_policy *pol,
		    enum moat_mode mode, struct arena *ar, struct plan_ident_priv *x,
		    struct moat_plan_ident *pub)
{
	struct u32vec v = { 0 };
	int ret = 0;

	for (int d = 0; d < 2 && !ret; d++) {
		bool enforce = false;

		v.n = 0;
		for (uint32_t k = 0; k < x->natoms && x->atoms[k] < pol->natoms && !ret; k++)
			for (uint32_t l = pol->tgt_head[x->atoms[k]]; l != PLAN_NONE && !ret;
			     l = pol->links[l].next) {
				const struct moat_netpol *p = &ps->pols[pol->links[l].atom];

				if (!(d ? p->isolates_out : p->isolates_in))
					continue;
				ret = u32vec_push(&v, pol->links[l].atom);
				enforce |= p->mode == MOAT_MODE_ENFORCE;
			}
		x->npols[d] = ret ? 0 : u32_sort_uniq(v.v, v.n);
		x->pols[d] = ret ? NULL : arena_array(ar, x->npols[d] + 1, sizeof(uint32_t));
		if (!ret && !x->pols[d])
			ret = -ENOMEM;
		if (ret)
			break;
		if (x->npols[d])
			memcpy(x->pols[d], v.v, x->npols[d] * sizeof(uint32_t));
		*(d ? &pub->out_iso : &pub->in_iso) = x->npols[d] > 0;
		*(d ? &pub->out_mode : &pub->in_mode) = enforce && mode == MOAT_MODE_ENFORCE ?
			MOAT_MODE_ENFORCE : MOAT_MODE_MONITOR;
	}
	free(v.v);
	return ret;
}
