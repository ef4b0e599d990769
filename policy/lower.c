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
#include "lower.h"
#include "moat/grow.h"
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

static int emit_tier(struct lowering *lw, uint32_t owner, enum moat_allow_list list,
		     uint32_t peer, const struct pspec *s, enum moat_action action, uint64_t prec,
		     uint16_t dom)
{
	if (grow((void **)&lw->out, lw->nout, &lw->cap, sizeof(*lw->out)))
		return -ENOMEM;
	lw->out[lw->nout++] = (struct lelem){ owner, list,
		{ peer, s->plo, s->phi, s->lo, s->hi, action, 0 }, prec, dom };
	return 0;
}

static int emit(struct lowering *lw, uint32_t owner, enum moat_allow_list list, uint32_t peer,
		const struct pspec *s)
{
	return emit_tier(lw, owner, list, peer, s, MOAT_ACTION_ACCEPT, 0, 0);
}

/*
 * One ports entry as a range for destination dst; false when it matches nothing. A named
 * port of proto 0 (cluster-wide policies) takes the protocol of dst's port of that name.
 */
static bool port_spec(const struct lowering *lw, const struct moat_port *mp,
		      const struct plan_ident_priv *dst, bool named_ok, struct pspec *s)
{
	uint8_t proto = mp->proto;
	int v = -1;

	*s = (struct pspec){ mp->proto, mp->proto, mp->port, mp->end_port };
	if (mp->name) {
		if (named_ok && dst)
			v = proto ? plan_nport(lw->atoms, dst->atoms, dst->natoms, mp->name, proto)
				  : plan_nport_any(lw->atoms, dst->atoms, dst->natoms, mp->name,
						   &proto);
		*s = (struct pspec){ proto, proto, v, v };
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

/* ---- cluster-wide policies: the tier lists ---- */

/* Only what drops goes in the tier lists: not a monitor-mode policy, nor global monitor. */
static bool cnp_enforced(const struct lowering *lw, uint32_t c)
{
	return lw->ps->cnps[c].mode == MOAT_MODE_ENFORCE && lw->plan->mode == MOAT_MODE_ENFORCE;
}

static enum moat_allow_list tier_list(const struct moat_cnp *c, bool egress)
{
	if (c->tier == MOAT_TIER_ADMIN)
		return egress ? MOAT_ADMIN_OUT : MOAT_ADMIN_IN;
	return egress ? MOAT_BASELINE_OUT : MOAT_BASELINE_IN;
}

struct tier_ctx {
	const struct lident *x;		/* the owner (lower_owner), or the peer (lower_peer) */
	const struct moat_cnp_rule *r;
	enum moat_allow_list list;
	bool egress;
	uint64_t prec;
	uint16_t dom;			/* the rule's domain names (struct lelem), not its peers */
};

/* Rule tc->r between owner o and peer p; ports resolve against the destination. */
static int tier_pair(struct lowering *lw, const struct tier_ctx *tc, const struct lident *o,
		     const struct lident *p)
{
	const struct moat_cnp_rule *r = tc->r;
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return emit_tier(lw, o->id, tc->list, p->id, &PSPEC_ALL, r->action, tc->prec,
				 tc->dom);
	for (size_t k = 0; k < r->nports && !ret; k++)
		if (port_spec(lw, &r->ports[k], (tc->egress ? p : o)->p, true, &s))
			ret = emit_tier(lw, o->id, tc->list, p->id, &s, r->action, tc->prec,
					tc->dom);
	return ret;
}

/* Calls fn for every identity: the plan's that stay, then the new ones. */
static int every_ident(struct lowering *lw, holder_fn fn, void *arg)
{
	const struct plan_priv *pv = lw->plan->priv;
	int ret = 0;

	for (size_t i = 0; i < lw->plan->nidents && !ret; i++)
		if (!lower_gone(lw, lw->plan->idents[i].id))
			ret = fn(lw, &(struct lident){ lw->plan->idents[i].id, &pv->ids[i] }, arg);
	for (size_t i = 0; i < lw->nextra && !ret; i++)
		ret = fn(lw, &lw->extra[i], arg);
	return ret;
}

static int tier_to_peer(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct tier_ctx *tc = arg;

	return tier_pair(lw, tc, tc->x, h);
}

static int tier_to_owner(struct lowering *lw, const struct lident *h, void *arg)
{
	const struct tier_ctx *tc = arg;

	return tier_pair(lw, tc, h, tc->x);
}

static struct tier_ctx tier_rule(const struct lowering *lw, const struct lident *x, uint32_t c,
				 bool egress, uint32_t r)
{
	const struct moat_cnp *cnp = &lw->ps->cnps[c];

	return (struct tier_ctx){ x, egress ? &cnp->out[r] : &cnp->in[r], tier_list(cnp, egress),
				  egress, (uint64_t)c << 32 | r, 0 };
}

/*
 * Every rule of cluster-wide policy c, whose subject x is, with each peer that holds one of
 * its peer atoms; and its domain names (which no atom stands for: any address may be what a
 * name resolves to) with every identity, for the datapath to ask what x resolved.
 */
static int lower_cnp(struct lowering *lw, const struct lident *x, uint32_t c)
{
	const struct moat_cnp *cnp = &lw->ps->cnps[c];
	const struct plan_policy *st = lw->pol;
	int ret = 0;

	for (int d = 0; d < 2 && !ret; d++)
		for (uint32_t r = 0; r < (d ? cnp->nout : cnp->nin) && !ret; r++) {
			struct tier_ctx tc = tier_rule(lw, x, c, d, r);
			const uint32_t *peers = st->cnp_rule_peers[d][st->cnp_rule_base[d][c] + r];

			for (size_t k = 0; k < tc.r->npeers && !ret; k++)
				if (peers[k] != PLAN_NONE)
					ret = holders(lw, peers[k], false, tier_to_peer, &tc);
		}
	for (uint32_t i = 0; i < st->ndns_rules && !ret; i++) {
		struct tier_ctx tc = tier_rule(lw, x, c, true, st->dns_rules[i].r);

		tc.dom = st->dns_rules[i].j;
		if (st->dns_rules[i].c == c)
			ret = every_ident(lw, tier_to_peer, &tc);
	}
	return ret;
}

/* The NetworkPolicies (tiers false) or the cluster-wide ones (true) whose target x is.
 * Policy atoms come first in an identity's sorted atoms, and only they head tgt_head and
 * cnp_head. */
static int lower_owner_of(struct lowering *lw, const struct lident *x, bool tiers)
{
	const struct plan_policy *st = lw->pol;
	int ret = 0;

	for (uint32_t k = 0; k < x->p->natoms && x->p->atoms[k] < st->natoms && !ret; k++) {
		uint32_t a = x->p->atoms[k];

		for (uint32_t l = st->tgt_head[a]; !tiers && l != PLAN_NONE && !ret;
		     l = st->links[l].next)
			ret = lower_policy(lw, x, st->links[l].atom);
		for (uint32_t l = st->cnp_head[a]; tiers && l != PLAN_NONE && !ret;
		     l = st->links[l].next)
			if (cnp_enforced(lw, st->links[l].atom))
				ret = lower_cnp(lw, x, st->links[l].atom);
	}
	return ret;
}

int lower_owner_policies(struct lowering *lw, const struct lident *x)
{
	return lower_owner_of(lw, x, false);
}

int lower_owner_tiers(struct lowering *lw, const struct lident *x)
{
	return lower_owner_of(lw, x, true);
}

int lower_owner(struct lowering *lw, const struct lident *x)
{
	int ret = lower_owner_policies(lw, x);

	return ret ? ret : lower_owner_tiers(lw, x);
}

size_t lower_tier_class(const struct lowering *lw, const struct lident *x, uint32_t *key,
			size_t max)
{
	size_t n = 0;

	for (uint32_t i = 0; i < x->p->ncnps; i++, n++)
		if (n < max)
			key[n] = x->p->cnps[i];
	if (n < max)
		key[n] = PLAN_NONE;
	n++;
	for (uint32_t k = 0; k < x->p->natoms; k++)
		if (x->p->atoms[k] < lw->natoms && lw->atoms[x->p->atoms[k]].kind == ATOM_NPORT &&
		    n++ < max)
			key[n - 1] = x->p->atoms[k];
	return n;
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

/* The rule of ref names x as a peer: its policy's targets (subjects) that stay get the
 * elements. */
static int peer_rule(struct lowering *lw, const struct lident *x, const struct peer_ref *ref)
{
	const struct moat_netpol *pol;
	struct rule_ctx rc;
	struct tier_ctx tc;

	if (ref->cnp) {
		if (!cnp_enforced(lw, ref->p))
			return 0;
		tc = tier_rule(lw, x, ref->p, ref->egress, ref->r);
		return holders(lw, lw->pol->cnp_subject[ref->p], true, tier_to_owner, &tc);
	}
	pol = &lw->ps->pols[ref->p];
	rc = (struct rule_ctx){ .x = x, .r = ref->egress ? &pol->out[ref->r] : &pol->in[ref->r],
				.egress = ref->egress, .named_ok = ref->pods };
	if (ref->egress ? !pol->isolates_out : !pol->isolates_in)
		return 0;
	return holders(lw, lw->pol->target_atom[ref->p], true, peer_owner, &rc);
}

int lower_peer(struct lowering *lw, const struct lident *x)
{
	const struct plan_policy *st = lw->pol;
	int ret = 0;

	for (uint32_t i = 0; i < st->ndns_rules && !ret; i++) {	/* x as any address */
		const struct dns_rule *d = &st->dns_rules[i];
		struct tier_ctx tc = tier_rule(lw, x, d->c, true, d->r);

		tc.dom = d->j;
		if (cnp_enforced(lw, d->c))
			ret = holders(lw, st->cnp_subject[d->c], true, tier_to_owner, &tc);
	}

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
	uint64_t hi = (uint64_t)e->owner << 32 | (uint64_t)e->list << 29;
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

/* A NetworkPolicy list's group v[0..n) (one key, sorted): an every-protocol element (sorted
 * first: proto_lo 0, widest proto_hi) swallows the rest; otherwise overlapping or adjacent
 * port ranges of one protocol join. Rules only make every-protocol or single-protocol
 * elements. Appends to out. */
static int merge_allow(const struct lelem *v, size_t n, struct lelem **out, size_t *nout,
		       size_t *cap)
{
	for (size_t i = 0; i < n; i++) {
		struct lelem *last = *nout && same_key(&(*out)[*nout - 1], &v[i]) ?
				     &(*out)[*nout - 1] : NULL;

		if (last && last->a.proto_lo == 0 && last->a.proto_hi == 255)
			continue;
		if (last && last->a.proto_lo == v[i].a.proto_lo &&
		    (uint32_t)v[i].a.port_lo <= (uint32_t)last->a.port_hi + 1) {
			if (v[i].a.port_hi > last->a.port_hi)
				last->a.port_hi = v[i].a.port_hi;
			continue;
		}
		if (grow((void **)out, *nout, cap, sizeof(**out)))
			return -ENOMEM;
		(*out)[(*nout)++] = v[i];
	}
	return 0;
}

/* ---- a tier list's group: the first rule decides ---- */

/*
 * The ports of one protocol, cut where rules start and end. A piece is closed by the first
 * rule without domain names that covers it (its action); before that, domains is the last
 * rule with domain names that covered it (rules come in evaluation order).
 */
struct piece {
	uint32_t lo, hi;
	bool closed;
	uint8_t action;
	uint16_t domains;
};

struct canvas {
	struct piece *v;
	size_t n, cap;
};

/* Cuts the piece holding port x so that one starts at x. */
static int cut(struct canvas *c, uint32_t x)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].lo == x || x < c->v[i].lo || x > c->v[i].hi)
			continue;
		if (grow((void **)&c->v, c->n, &c->cap, sizeof(*c->v)))
			return -ENOMEM;
		memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
		c->n++;
		c->v[i].hi = x - 1;
		c->v[i + 1].lo = x;
		return 0;
	}
	return 0;
}

/* One rule's item over [lo, hi]: it decides what no earlier rule closed. */
static int paint(struct canvas *c, const struct lelem *e, uint32_t lo, uint32_t hi)
{
	int ret = cut(c, lo);

	if (!ret && hi < 65535)
		ret = cut(c, hi + 1);
	for (size_t i = 0; i < c->n && !ret; i++) {
		struct piece *p = &c->v[i];

		if (p->closed || p->lo < lo || p->hi > hi)
			continue;
		if (e->dom)
			p->domains = e->dom;
		else
			p->closed = true, p->action = e->a.action;
	}
	return ret;
}

/* Rules in evaluation order; of one rule, its domain names before its other peers. */
static int prec_cmp(const void *a, const void *b)
{
	const struct lelem *x = a, *y = b;

	if (x->prec != y->prec)
		return (x->prec > y->prec) - (x->prec < y->prec);
	return (y->dom > 0) - (x->dom > 0);
}

static int lelem_cmp(const void *a, const void *b)
{
	const struct lelem *x = a, *y = b;

	if (x->a.proto_lo != y->a.proto_lo)
		return x->a.proto_lo - y->a.proto_lo;
	return (x->a.port_lo > y->a.port_lo) - (x->a.port_lo < y->a.port_lo);
}

/*
 * A piece as an element of key's list, appended: what decides it (Accept makes domain names
 * moot; Pass or nothing after domain names is a domain check only, and in the Baseline tier,
 * where nothing else follows, no element at all).
 */
static int put(struct lelem **out, size_t *nout, size_t *cap, const struct lelem *key,
	       uint8_t plo, uint8_t phi, const struct piece *p)
{
	bool base = key->list == MOAT_BASELINE_IN || key->list == MOAT_BASELINE_OUT;
	uint8_t action = p->closed ? p->action : MOAT_ACTION_PASS;
	uint16_t domains = action == MOAT_ACTION_ACCEPT ? 0 : p->domains;

	if (action == MOAT_ACTION_PASS && (!domains || base))
		return 0;
	if (grow((void **)out, *nout, cap, sizeof(**out)))
		return -ENOMEM;
	(*out)[(*nout)++] = (struct lelem){ key->owner, key->list,
		{ key->a.peer, plo, phi, p->lo, p->hi, action, domains }, 0, 0 };
	return 0;
}

static bool same_piece(const struct piece *x, const struct piece *y)
{
	return x->closed == y->closed && x->domains == y->domains &&
	       (!x->closed || x->action == y->action);
}

/* The group's items that cover protocol p (all when p < 0: the protocols none names) painted
 * on the ports, each run of alike pieces put as one element of protocols plo-phi. */
static int paint_proto(const struct lelem *v, size_t n, int p, uint8_t plo, uint8_t phi,
		       struct canvas *c, struct lelem **out, size_t *nout, size_t *cap)
{
	int ret = 0;

	c->n = 1;
	c->v[0] = (struct piece){ 0, 65535, false, 0, 0 };
	for (size_t i = 0; i < n && !ret; i++) {
		bool every = v[i].a.proto_lo != v[i].a.proto_hi;

		if (every || v[i].a.proto_lo == p)
			ret = paint(c, &v[i], every ? 0 : v[i].a.port_lo, every ? 65535 : v[i].a.port_hi);
	}
	for (size_t i = 0, k; i < c->n && !ret; i = k) {
		struct piece run = c->v[i];

		for (k = i + 1; k < c->n && same_piece(&c->v[k], &run); k++)
			run.hi = c->v[k].hi;
		ret = put(out, nout, cap, &v[0], plo, phi, &run);
	}
	return ret;
}

/*
 * A tier list's group v[0..n) (one owner, list and peer) into disjoint elements, appended
 * to out: each port of each protocol gets what the first rule (lowest prec) that covers it
 * decides, after the rules with domain names before it; the protocols no rule names one by
 * one get what the every-protocol rules decide.
 */
static int merge_tier(struct lelem *v, size_t n, struct lelem **out, size_t *nout, size_t *cap)
{
	bool named[256] = { false };
	struct canvas c = { 0 };
	size_t first = *nout;
	int ret = grow((void **)&c.v, 0, &c.cap, sizeof(*c.v));

	qsort(v, n, sizeof(*v), prec_cmp);
	for (size_t i = 0; i < n; i++)
		if (v[i].a.proto_lo == v[i].a.proto_hi)
			named[v[i].a.proto_lo] = true;
	for (int p = 0; p < 256 && !ret; p++)
		if (named[p])
			ret = paint_proto(v, n, p, p, p, &c, out, nout, cap);
	for (int p = 0; p < 256 && !ret; p++) {	/* runs of protocols not named */
		int q = p;

		if (named[p])
			continue;
		while (q < 255 && !named[q + 1])
			q++;
		ret = paint_proto(v, n, -1, p, q, &c, out, nout, cap);
		p = q;
	}
	free(c.v);
	if (!ret && *nout > first)
		qsort(*out + first, *nout - first, sizeof(**out), lelem_cmp);
	return ret;
}

int lower_merge(struct lowering *lw)
{
	struct lelem *v = lw->out, *out = NULL;
	size_t n = lw->nout, nout = 0, cap = 0;
	int ret = 0;

	if (radix_sort(v, n, sizeof(*v), 13, lelem_digits, lelem_digit))
		return -ENOMEM;
	for (size_t i = 0, j; i < n && !ret; i = j) {
		for (j = i + 1; j < n && same_key(&v[i], &v[j]); j++)
			;
		ret = v[i].list < MOAT_ADMIN_IN ? merge_allow(v + i, j - i, &out, &nout, &cap)
						: merge_tier(v + i, j - i, &out, &nout, &cap);
	}
	if (ret) {
		free(out);
		return ret;
	}
	free(lw->out);
	lw->out = out;
	lw->nout = nout;
	lw->cap = cap;
	return 0;
}

/* ---- isolation ---- */

/* The cluster-wide policies x is a subject of, and the tiers its chains consult. */
static int lower_subject(const struct moat_policy_set *ps, const struct plan_policy *pol,
			 enum moat_mode mode, struct arena *ar, struct u32vec *v,
			 struct plan_ident_priv *x, struct moat_plan_ident *pub)
{
	v->n = 0;
	for (uint32_t k = 0; k < x->natoms && x->atoms[k] < pol->natoms; k++)
		for (uint32_t l = pol->cnp_head[x->atoms[k]]; l != PLAN_NONE; l = pol->links[l].next)
			if (u32vec_push(v, pol->links[l].atom))
				return -ENOMEM;
	x->ncnps = u32_sort_uniq(v->v, v->n);
	x->cnps = arena_array(ar, x->ncnps + 1, sizeof(uint32_t));
	if (!x->cnps)
		return -ENOMEM;
	for (uint32_t i = 0; i < x->ncnps; i++) {
		const struct moat_cnp *c = &ps->cnps[x->cnps[i] = v->v[i]];
		bool *tier = c->tier == MOAT_TIER_ADMIN ? pub->admin : pub->baseline;

		if (c->mode != MOAT_MODE_ENFORCE || mode != MOAT_MODE_ENFORCE)
			continue;
		tier[0] |= c->nin > 0;
		tier[1] |= c->nout > 0;
	}
	return 0;
}

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
	if (!ret)
		ret = lower_subject(ps, pol, mode, ar, &v, x, pub);
	free(v.v);
	return ret;
}
