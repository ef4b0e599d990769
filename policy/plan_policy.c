/*
 * The policy state (plan_policy.h): turn every target and peer into an atom (deduplicated by
 * its text); index pod selectors by one label they require, so an endpoint is tested only
 * against selectors that can match it; cut each address family into segments at every
 * ipBlock edge; and index atoms and named ports back to the rules that name them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "moat/grow.h"
#include "moat/hash.h"
#include "plan_policy.h"

/* What building one needs on the way; pb->pol is the result. */
struct pb {
	const struct moat_policy_set *ps;
	const struct pb_ns *nss;
	size_t nns;
	struct plan_policy *pol;
	struct arena *ar;		/* pol's */
	size_t conds_cap, links_cap, nlinks, atoms_cap;
	struct hmap cond_by_canon, atom_by_canon;
	struct u32vec base;
};

/* ---- namespaces ---- */

long plan_policy_ns(const struct plan_policy *pol, const char *name)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&pol->ns_by_name, moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, name)),
			      &it)))
		if (!strcmp(pol->ns_names[*v], name))
			return *v;
	return -1;
}

static int ns_table(struct pb *b)
{
	struct plan_policy *pol = b->pol;

	pol->ns_names = arena_array(b->ar, b->nns + 1, sizeof(char *));
	if (!pol->ns_names)
		return -ENOMEM;
	for (size_t i = 0; i < b->nns; i++) {
		pol->ns_names[i] = arena_strdup(b->ar, b->nss[i].name);
		if (!pol->ns_names[i] ||
		    hmap_put(&pol->ns_by_name, moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS,
							  b->nss[i].name)), i))
			return -ENOMEM;
	}
	pol->nns = b->nns;
	return 0;
}

/* ---- canonical text of selectors, conditions and atoms ---- */

struct sbuf {
	char *s;
	size_t n, cap;
	int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (grow((void **)&b->s, b->n + n, &b->cap, 1)) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

/* Appends s and a 0x1f separator (a byte no label, name or value may hold). */
static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s ? s : "", s ? strlen(s) : 0);
	sb_add(b, "\x1f", 1);
}

static bool sel_empty(const struct moat_selector *s)
{
	return !s || (!s->match.n && !s->nexprs);
}

static void sel_canon(struct sbuf *b, const struct moat_selector *s)
{
	char op[2] = { 0, 0 };

	if (sel_empty(s)) {
		sb_str(b, "*");
		return;
	}
	for (size_t i = 0; i < s->match.n; i++) {
		sb_str(b, s->match.v[i].key);
		sb_str(b, s->match.v[i].value);
	}
	for (size_t i = 0; i < s->nexprs; i++) {
		op[0] = '0' + s->exprs[i].op;
		sb_str(b, op);
		sb_str(b, s->exprs[i].key);
		for (size_t k = 0; k < s->exprs[i].nvalues; k++)
			sb_str(b, s->exprs[i].values[k]);
		sb_str(b, ")");
	}
}

/* Looks canon up among strings[] via m; returns its index or PLAN_NONE. */
static uint32_t canon_find(const struct hmap *m, uint64_t h, const char *canon,
			   const void *base, size_t stride, size_t off)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(m, h, &it)))
		if (!strcmp(*(const char *const *)((const char *)base + *v * stride + off), canon))
			return *v;
	return PLAN_NONE;
}

static long ns_index(const struct pb *b, const char *name)
{
	for (size_t i = 0; i < b->nns; i++)
		if (!strcmp(b->nss[i].name, name))
			return i;
	return -1;
}

static int cond_add(struct pb *b, int32_t ns, const struct moat_selector *sel, const char *canon,
		    uint64_t h)
{
	struct plan_policy *pol = b->pol;
	struct nscond *k;

	if (grow((void **)&pol->conds, pol->nconds, &b->conds_cap, sizeof(*pol->conds)))
		return -ENOMEM;
	k = &pol->conds[pol->nconds];
	*k = (struct nscond){ .ns = ns, .canon = arena_strdup(b->ar, canon) };
	if (!k->canon)
		return -ENOMEM;
	if (sel) {
		k->admits = arena_alloc(b->ar, b->nns);
		if (!k->admits)
			return -ENOMEM;
		for (size_t i = 0; i < b->nns; i++)
			k->admits[i] = moat_selector_match(sel, &b->nss[i].labels);
	}
	return hmap_put(&b->cond_by_canon, h, pol->nconds++);
}

/* Interns a namespace condition: namespace ns (sel NULL) or a namespaceSelector. */
static int cond_intern(struct pb *b, const char *ns, const struct moat_selector *sel,
		       uint32_t *out)
{
	struct sbuf s = { 0 };
	uint64_t h;
	int ret = 0;

	sb_str(&s, sel ? "s" : "n");
	if (sel)
		sel_canon(&s, sel);
	else
		sb_str(&s, ns);
	if (s.err)
		return s.err;
	h = moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, s.s));
	*out = canon_find(&b->cond_by_canon, h, s.s, b->pol->conds, sizeof(*b->pol->conds),
			  offsetof(struct nscond, canon));
	if (*out == PLAN_NONE) {
		ret = cond_add(b, sel ? -1 : (int32_t)ns_index(b, ns), sel, s.s, h);
		*out = b->pol->nconds - 1;
	}
	free(s.s);
	return ret;
}

/* Interns atom a (canon in s) into the policy state's atoms; *out is its index. */
static int atom_intern(struct pb *b, struct plan_atom *a, struct sbuf *s, uint32_t *out)
{
	struct plan_policy *pol = b->pol;

	if (s->err)
		return s->err;
	a->key = moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, s->s));
	*out = canon_find(&b->atom_by_canon, a->key, s->s, pol->atoms, sizeof(*pol->atoms),
			  offsetof(struct plan_atom, canon));
	if (*out != PLAN_NONE)
		return 0;
	if (grow((void **)&pol->atoms, pol->natoms, &b->atoms_cap, sizeof(*pol->atoms)))
		return -ENOMEM;
	a->canon = arena_strdup(b->ar, s->s);
	if (!a->canon)
		return -ENOMEM;
	pol->atoms[pol->natoms] = *a;
	*out = pol->natoms++;
	return hmap_put(&b->atom_by_canon, a->key, *out);
}

/* The SEL atom for pods matching pod (NULL: all) in namespaces matching cond. */
static int sel_atom(struct pb *b, const char *ns, const struct moat_selector *nssel,
		    const struct moat_selector *pod, uint32_t *out)
{
	struct plan_atom a = { .kind = ATOM_SEL, .pod = sel_empty(pod) ? NULL : pod };
	struct sbuf s = { 0 };
	int ret = cond_intern(b, ns, nssel, &a.nscond);

	if (ret)
		return ret;
	sb_str(&s, "S");
	sb_str(&s, b->pol->conds[a.nscond].canon);
	sel_canon(&s, a.pod);
	ret = atom_intern(b, &a, &s, out);
	free(s.s);
	return ret;
}

static void cidr_canon(struct sbuf *b, const struct moat_cidr *k)
{
	char s[64];
	int n = snprintf(s, sizeof(s), "%u/%u/", k->family, k->plen);

	for (int i = 0; i < 16; i++)
		n += snprintf(s + n, sizeof(s) - n, "%02x", k->addr[i]);
	sb_str(b, s);
}

static int block_atom(struct pb *b, const struct moat_peer *p, uint32_t *out)
{
	struct plan_atom a = { .kind = ATOM_BLOCK, .block = p };
	struct sbuf s = { 0 };
	int ret;

	sb_str(&s, "B");
	cidr_canon(&s, &p->cidr);
	for (size_t i = 0; i < p->nexcept; i++)
		cidr_canon(&s, &p->except[i]);
	ret = atom_intern(b, &a, &s, out);
	free(s.s);
	return ret;
}

uint64_t nport_key(const char *name, uint8_t proto)
{
	return moat_hash_fin(moat_hash_bytes(moat_hash_str(MOAT_HASH_BASIS, name), &proto, 1));
}

/* ---- policies -> atoms ---- */

static const char *pol_ns(const struct moat_netpol *p)
{
	return p->namespace ? p->namespace : MOAT_DEFAULT_NAMESPACE;
}

static int peer_atom(struct pb *b, const struct moat_netpol *p, const struct moat_peer *peer,
		     uint32_t *out)
{
	if (peer->kind == MOAT_PEER_IPBLOCK)
		return block_atom(b, peer, out);
	/* With no selector written, the peer is the policy's own namespace (as podSelector {}). */
	return sel_atom(b, pol_ns(p), peer->has_ns ? &peer->ns : NULL,
			peer->has_pod ? &peer->pod : NULL, out);
}

/* Records the named ports rule r refers to, so endpoints carry their values as atoms. */
static int rule_nports(struct pb *b, const struct moat_rule *r)
{
	const struct moat_port *v = r->ports;

	for (size_t i = 0; i < r->nports; i++)
		if (v[i].name && hmap_put(&b->pol->nport_ref, nport_key(v[i].name, v[i].proto), 0))
			return -ENOMEM;
	return 0;
}

static int rule_atoms(struct pb *b, uint32_t p, int dir, size_t r)
{
	const struct moat_netpol *pol = &b->ps->pols[p];
	const struct moat_rule *rule = dir ? &pol->out[r] : &pol->in[r];
	uint32_t *v = arena_array(b->ar, rule->npeers + 1, 4);
	int ret = v ? rule_nports(b, rule) : -ENOMEM;

	for (size_t k = 0; k < rule->npeers && !ret; k++)
		ret = peer_atom(b, pol, &rule->peers[k], &v[k]);
	b->pol->rule_peers[dir][b->pol->rule_base[dir][p] + r] = v;
	return ret;
}

static int policy_atoms(struct pb *b)
{
	struct plan_policy *pol = b->pol;
	size_t nrules[2] = { 0, 0 };
	int ret = 0;

	pol->target_atom = arena_array(b->ar, b->ps->npols + 1, 4);
	for (int d = 0; d < 2; d++)
		pol->rule_base[d] = arena_array(b->ar, b->ps->npols + 1, 4);
	if (!pol->target_atom || !pol->rule_base[0] || !pol->rule_base[1])
		return -ENOMEM;
	for (size_t p = 0; p < b->ps->npols; p++) {
		pol->rule_base[0][p] = nrules[0];
		pol->rule_base[1][p] = nrules[1];
		nrules[0] += b->ps->pols[p].nin;
		nrules[1] += b->ps->pols[p].nout;
	}
	for (int d = 0; d < 2; d++)
		if (!(pol->rule_peers[d] = arena_array(b->ar, nrules[d] + 1, sizeof(uint32_t *))))
			return -ENOMEM;
	for (size_t p = 0; p < b->ps->npols && !ret; p++) {
		const struct moat_netpol *np = &b->ps->pols[p];

		ret = sel_atom(b, pol_ns(np), NULL, &np->target, &pol->target_atom[p]);
		for (size_t r = 0; r < np->nin && !ret; r++)
			ret = rule_atoms(b, p, 0, r);
		for (size_t r = 0; r < np->nout && !ret; r++)
			ret = rule_atoms(b, p, 1, r);
	}
	return ret;
}

/* ---- cluster-wide policies -> atoms ---- */

/* Its peers always name their namespaces (policy.h): no policy namespace to fall back on. */
static int cnp_peer_atom(struct pb *b, const struct moat_peer *peer, uint32_t *out)
{
	if (peer->kind == MOAT_PEER_IPBLOCK)
		return block_atom(b, peer, out);
	if (peer->kind == MOAT_PEER_DOMAIN) {
		*out = PLAN_NONE;
		return 0;
	}
	return sel_atom(b, NULL, &peer->ns, peer->has_pod ? &peer->pod : NULL, out);
}

/* Numbers an egress rule with domainNames peers in its tier (cnp_atoms goes in order). */
static int dns_rule_add(struct pb *b, uint32_t c, uint32_t r, size_t *cap)
{
	struct plan_policy *pol = b->pol;
	enum moat_tier t = b->ps->cnps[c].tier;

	if (grow((void **)&pol->dns_rules, pol->ndns_rules, cap, sizeof(*pol->dns_rules)))
		return -ENOMEM;
	pol->dns_rules[pol->ndns_rules++] = (struct dns_rule){ c, r, ++pol->ndns[t] };
	return 0;
}

static int cnp_rule_atoms(struct pb *b, uint32_t c, int dir, size_t r)
{
	const struct moat_cnp *cnp = &b->ps->cnps[c];
	const struct moat_cnp_rule *rule = dir ? &cnp->out[r] : &cnp->in[r];
	uint32_t *v = arena_array(b->ar, rule->npeers + 1, 4);
	int ret = v ? 0 : -ENOMEM;

	for (size_t i = 0; i < rule->nports && !ret; i++)
		if (rule->ports[i].name &&
		    hmap_put(&b->pol->nport_ref, nport_key(rule->ports[i].name, rule->ports[i].proto), 0))
			ret = -ENOMEM;
	for (size_t k = 0; k < rule->npeers && !ret; k++)
		ret = cnp_peer_atom(b, &rule->peers[k], &v[k]);
	b->pol->cnp_rule_peers[dir][b->pol->cnp_rule_base[dir][c] + r] = v;
	return ret;
}

/* The egress rules with domainNames peers, in evaluation order (cnps is in it). */
static int dns_rules(struct pb *b)
{
	size_t cap = 0;
	int ret = 0;

	for (uint32_t c = 0; c < b->ps->ncnps && !ret; c++)
		for (uint32_t r = 0; r < b->ps->cnps[c].nout && !ret; r++) {
			const struct moat_cnp_rule *rule = &b->ps->cnps[c].out[r];
			bool dns = false;

			for (size_t k = 0; k < rule->npeers; k++)
				dns |= rule->peers[k].kind == MOAT_PEER_DOMAIN;
			if (dns)
				ret = dns_rule_add(b, c, r, &cap);
		}
	return ret;
}

static int cnp_atoms(struct pb *b)
{
	struct plan_policy *pol = b->pol;
	size_t nrules[2] = { 0, 0 };
	int ret = 0;

	pol->cnp_subject = arena_array(b->ar, b->ps->ncnps + 1, 4);
	for (int d = 0; d < 2; d++)
		pol->cnp_rule_base[d] = arena_array(b->ar, b->ps->ncnps + 1, 4);
	if (!pol->cnp_subject || !pol->cnp_rule_base[0] || !pol->cnp_rule_base[1])
		return -ENOMEM;
	for (size_t c = 0; c < b->ps->ncnps; c++) {
		pol->cnp_rule_base[0][c] = nrules[0];
		pol->cnp_rule_base[1][c] = nrules[1];
		nrules[0] += b->ps->cnps[c].nin;
		nrules[1] += b->ps->cnps[c].nout;
	}
	for (int d = 0; d < 2; d++)
		if (!(pol->cnp_rule_peers[d] = arena_array(b->ar, nrules[d] + 1, sizeof(uint32_t *))))
			return -ENOMEM;
	for (size_t c = 0; c < b->ps->ncnps && !ret; c++) {
		const struct moat_cnp *cnp = &b->ps->cnps[c];

		ret = sel_atom(b, NULL, &cnp->subject_ns, cnp->subject_pods ? &cnp->subject_pod : NULL,
			       &pol->cnp_subject[c]);
		for (size_t r = 0; r < cnp->nin && !ret; r++)
			ret = cnp_rule_atoms(b, c, 0, r);
		for (size_t r = 0; r < cnp->nout && !ret; r++)
			ret = cnp_rule_atoms(b, c, 1, r);
	}
	return ret ? ret : dns_rules(b);
}


/* ---- atoms and named ports back to their rules ---- */

/* Calls fn(b, atom, ref) for every peer of every rule; counting, then filling. */
static void peers_each(struct pb *b, void (*fn)(struct pb *, uint32_t, const struct peer_ref *))
{
	const struct plan_policy *pol = b->pol;

	for (uint32_t p = 0; p < b->ps->npols; p++)
		for (int d = 0; d < 2; d++) {
			const struct moat_netpol *np = &b->ps->pols[p];
			size_t n = d ? np->nout : np->nin;

			for (uint32_t r = 0; r < n; r++) {
				const struct moat_rule *rule = d ? &np->out[r] : &np->in[r];
				const uint32_t *peers = pol->rule_peers[d][pol->rule_base[d][p] + r];

				for (size_t k = 0; k < rule->npeers; k++) {
					struct peer_ref ref = { p, r, d,
						rule->peers[k].kind == MOAT_PEER_PODS, 0 };

					fn(b, peers[k], &ref);
				}
			}
		}
}

/* The same for the cluster-wide policies' peers (a domain name has no atom). */
static void cnp_peers_each(struct pb *b,
			   void (*fn)(struct pb *, uint32_t, const struct peer_ref *))
{
	const struct plan_policy *pol = b->pol;

	for (uint32_t c = 0; c < b->ps->ncnps; c++)
		for (int d = 0; d < 2; d++) {
			const struct moat_cnp *cnp = &b->ps->cnps[c];
			size_t n = d ? cnp->nout : cnp->nin;

			for (uint32_t r = 0; r < n; r++) {
				const struct moat_cnp_rule *rule = d ? &cnp->out[r] : &cnp->in[r];
				const uint32_t *peers = pol->cnp_rule_peers[d][pol->cnp_rule_base[d][c] + r];

				for (size_t k = 0; k < rule->npeers; k++) {
					struct peer_ref ref = { c, r, d,
						rule->peers[k].kind == MOAT_PEER_PODS, 1 };

					if (peers[k] != PLAN_NONE)
						fn(b, peers[k], &ref);
				}
			}
		}
}

static void peer_count(struct pb *b, uint32_t atom, const struct peer_ref *ref)
{
	b->pol->peer_off[atom + 2]++;
}

static void peer_fill(struct pb *b, uint32_t atom, const struct peer_ref *ref)
{
	b->pol->peer_refs[b->pol->peer_off[atom + 1]++] = *ref;
}

/* peer_refs[peer_off[a] .. peer_off[a + 1]): the rules naming atom a as a peer. */
static int peer_index(struct pb *b)
{
	struct plan_policy *pol = b->pol;

	pol->peer_off = arena_array(b->ar, pol->natoms + 2, sizeof(uint32_t));
	if (!pol->peer_off)
		return -ENOMEM;
	peers_each(b, peer_count);
	cnp_peers_each(b, peer_count);
	for (uint32_t a = 0; a < pol->natoms; a++)
		pol->peer_off[a + 2] += pol->peer_off[a + 1];
	pol->peer_refs = arena_array(b->ar, pol->peer_off[pol->natoms + 1] + 1,
				     sizeof(*pol->peer_refs));
	if (!pol->peer_refs)
		return -ENOMEM;
	peers_each(b, peer_fill);
	cnp_peers_each(b, peer_fill);
	return 0;
}

/* Named ports of peerless egress rules, chained by name and protocol. */
static int nport_index(struct pb *b)
{
	struct plan_policy *pol = b->pol;
	size_t cap = 0;

	for (uint32_t p = 0; p < b->ps->npols; p++)
		for (uint32_t r = 0; r < b->ps->pols[p].nout; r++) {
			const struct moat_rule *rule = &b->ps->pols[p].out[r];

			for (uint32_t k = 0; !rule->npeers && k < rule->nports; k++) {
				const struct moat_port *mp = &rule->ports[k];
				uint64_t h = mp->name ? nport_key(mp->name, mp->proto) : 0;
				size_t it = 0;
				uint32_t *first = h ? hmap_next(&pol->nport_uses, h, &it) : NULL;

				if (!mp->name)
					continue;
				if (grow((void **)&pol->uses, pol->nuses, &cap, sizeof(*pol->uses)))
					return -ENOMEM;
				pol->uses[pol->nuses] = (struct nport_use){ p, r, k,
					first ? *first : PLAN_NONE };
				if (first)
					*first = pol->nuses;
				else if (hmap_put(&pol->nport_uses, h, pol->nuses))
					return -ENOMEM;
				pol->nuses++;
			}
		}
	return 0;
}

/* ---- selector index ---- */

static uint64_t label_key(const char *k, const char *v)
{
	uint64_t h = moat_hash_str(MOAT_HASH_BASIS, k);

	return moat_hash_fin(v ? moat_hash_str(h, v) : h);
}

static uint32_t link_add(struct pb *b, uint32_t atom, uint32_t next)
{
	if (grow((void **)&b->pol->links, b->nlinks, &b->links_cap, sizeof(*b->pol->links)))
		return PLAN_NONE - 1;	/* callers test with link_failed */
	b->pol->links[b->nlinks] = (struct link){ atom, next };
	return b->nlinks++;
}

static bool link_failed(uint32_t l)
{
	return l == PLAN_NONE - 1;
}

static int index_label(struct pb *b, uint64_t key, uint32_t atom)
{
	size_t it = 0;
	uint32_t *head = hmap_next(&b->pol->label_idx, key, &it);
	uint32_t l = link_add(b, atom, head ? *head : PLAN_NONE);

	if (link_failed(l))
		return -ENOMEM;
	if (head) {
		*head = l;
		return 0;
	}
	return hmap_put(&b->pol->label_idx, key, l);
}

static int index_ns(struct pb *b, uint32_t ns, uint32_t atom)
{
	uint32_t l = link_add(b, atom, b->pol->ns_head[ns]);

	if (link_failed(l))
		return -ENOMEM;
	b->pol->ns_head[ns] = l;
	return 0;
}

/* A selector without a label to hang on is indexed under each namespace it admits. */
static int index_unanchored(struct pb *b, uint32_t atom)
{
	const struct nscond *k = &b->pol->conds[b->pol->atoms[atom].nscond];
	int ret = 0;

	if (k->ns >= 0)
		return index_ns(b, k->ns, atom);
	for (size_t i = 0; i < b->nns && !ret; i++)
		if (k->admits[i])
			ret = index_ns(b, i, atom);
	return ret;
}

/*
 * Index a SEL atom under one requirement every match must meet: a matchLabels pair, each
 * value of an In expression, or an Exists key. In with no value matches nothing: unindexed.
 */
static int index_sel(struct pb *b, uint32_t atom)
{
	const struct moat_selector *s = b->pol->atoms[atom].pod;
	int ret = 0;

	if (!s)
		return index_unanchored(b, atom);
	if (s->match.n)
		return index_label(b, label_key(s->match.v[0].key, s->match.v[0].value), atom);
	for (size_t i = 0; i < s->nexprs; i++) {
		const struct moat_sel_expr *e = &s->exprs[i];

		if (e->op == MOAT_SEL_EXISTS)
			return index_label(b, label_key(e->key, NULL), atom);
		if (e->op != MOAT_SEL_IN)
			continue;
		for (size_t k = 0; k < e->nvalues && !ret; k++)
			ret = index_label(b, label_key(e->key, e->values[k]), atom);
		return ret;
	}
	return index_unanchored(b, atom);
}

static int index_build(struct pb *b)
{
	struct plan_policy *pol = b->pol;
	int ret = 0;

	pol->ns_head = malloc((b->nns + 1) * 4);
	pol->tgt_head = malloc((pol->natoms + 1) * 4);
	pol->cnp_head = malloc((pol->natoms + 1) * 4);
	if (!pol->ns_head || !pol->tgt_head || !pol->cnp_head)
		return -ENOMEM;
	memset(pol->ns_head, 0xff, (b->nns + 1) * 4);
	memset(pol->tgt_head, 0xff, (pol->natoms + 1) * 4);
	memset(pol->cnp_head, 0xff, (pol->natoms + 1) * 4);
	for (uint32_t a = 0; a < pol->natoms && !ret; a++)
		if (pol->atoms[a].kind == ATOM_SEL)
			ret = index_sel(b, a);
	/* Later policies first in each chain; isolation sorts its lists anyway. */
	for (uint32_t p = 0; p < b->ps->npols && !ret; p++) {
		uint32_t a = pol->target_atom[p], l = link_add(b, p, pol->tgt_head[a]);

		if (link_failed(l))
			return -ENOMEM;
		pol->tgt_head[a] = l;
	}
	/* The last first, so that each chain is in evaluation order. */
	for (size_t c = b->ps->ncnps; c-- > 0 && !ret;) {
		uint32_t a = pol->cnp_subject[c], l = link_add(b, c, pol->cnp_head[a]);

		if (link_failed(l))
			return -ENOMEM;
		pol->cnp_head[a] = l;
	}
	return ret;
}

/* ---- endpoints against the index ---- */

static bool sel_atom_match(const struct plan_policy *pol, const struct plan_atom *atoms,
			   uint32_t atom, uint32_t ns, const struct moat_labels *l)
{
	const struct plan_atom *a = &atoms[atom];
	const struct nscond *k = &pol->conds[a->nscond];

	if (k->ns >= 0 ? (uint32_t)k->ns != ns : !k->admits[ns])
		return false;
	return !a->pod || moat_selector_match(a->pod, l);
}

static int chain_match(const struct plan_policy *pol, const struct plan_atom *atoms, uint32_t l,
		       uint32_t ns, const struct moat_labels *lab, struct u32vec *out)
{
	for (; l != PLAN_NONE; l = pol->links[l].next)
		if (sel_atom_match(pol, atoms, pol->links[l].atom, ns, lab) &&
		    u32vec_push(out, pol->links[l].atom))
			return -ENOMEM;
	return 0;
}

int plan_policy_sels(const struct plan_policy *pol, const struct plan_atom *atoms, uint32_t ns,
		     const struct moat_labels *l, struct u32vec *out)
{
	int ret = chain_match(pol, atoms, pol->ns_head[ns], ns, l, out);

	for (size_t i = 0; i < l->n && !ret; i++) {
		uint64_t keys[2] = { label_key(l->v[i].key, l->v[i].value),
				     label_key(l->v[i].key, NULL) };

		for (int k = 0; k < 2 && !ret; k++) {
			size_t it = 0;
			uint32_t *head;

			while (!ret && (head = hmap_next(&pol->label_idx, keys[k], &it)))
				ret = chain_match(pol, atoms, *head, ns, l, out);
		}
	}
	return ret;
}

/* ---- address space segments ---- */

int fam_index(uint8_t family)
{
	return family == AF_INET6;
}

u128 addr_u128(const uint8_t *a, uint8_t family)
{
	u128 x = 0;

	for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
		x = x << 8 | a[i];
	return x;
}

static u128 fam_max(int f)
{
	return f ? ~(u128)0 : 0xffffffffu;
}

static void cidr_range(const struct moat_cidr *k, u128 *lo, u128 *hi)
{
	int host = (k->family == AF_INET ? 32 : 128) - k->plen;
	u128 mask = host >= 128 ? ~(u128)0 : ((u128)1 << host) - 1;

	*lo = addr_u128(k->addr, k->family) & ~mask;
	*hi = *lo | mask;
}

static bool cidr_has(const struct moat_cidr *k, u128 x)
{
	u128 lo, hi;

	cidr_range(k, &lo, &hi);
	return x >= lo && x <= hi;
}

/* Does block b hold address x of family fam: inside its cidr and outside every except? */
static bool block_has(const struct moat_peer *b, int fam, u128 x)
{
	if (fam_index(b->cidr.family) != fam || !cidr_has(&b->cidr, x))
		return false;
	for (size_t i = 0; i < b->nexcept; i++)
		if (b->except[i].family == b->cidr.family && cidr_has(&b->except[i], x))
			return false;
	return true;
}

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;

	return x < y ? -1 : x > y;
}

static int edge_add(u128 **v, size_t *n, size_t *cap, const struct moat_cidr *k, int f)
{
	u128 lo, hi;

	if (fam_index(k->family) != f)
		return 0;
	if (grow((void **)v, *n + 1, cap, sizeof(u128)))
		return -ENOMEM;
	cidr_range(k, &lo, &hi);
	(*v)[(*n)++] = lo;
	if (hi < fam_max(f))
		(*v)[(*n)++] = hi + 1;
	return 0;
}

/* Every edge of every ipBlock and except of family f, sorted, starting with 0. */
static int seg_edges(const struct plan_policy *pol, int f, u128 **out, size_t *nout)
{
	u128 *v = NULL;
	size_t n = 0, cap = 0, k = 0;
	int ret = grow((void **)&v, 0, &cap, sizeof(u128));

	if (!ret)
		v[n++] = 0;
	for (uint32_t a = 0; a < pol->natoms && !ret; a++) {
		const struct moat_peer *b = pol->atoms[a].block;

		if (pol->atoms[a].kind != ATOM_BLOCK)
			continue;
		ret = edge_add(&v, &n, &cap, &b->cidr, f);
		for (size_t i = 0; i < b->nexcept && !ret; i++)
			ret = edge_add(&v, &n, &cap, &b->except[i], f);
	}
	if (ret) {
		free(v);
		return ret;
	}
	qsort(v, n, sizeof(u128), cmp_u128);
	for (size_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	*out = v;
	*nout = k;
	return 0;
}

/* One segment: the blocks that hold it (edges align, so its first address tells). */
static int seg_fill(struct pb *b, int f, struct seg *s)
{
	const struct plan_policy *pol = b->pol;

	b->base.n = 0;
	for (uint32_t a = 0; a < pol->natoms; a++)
		if (pol->atoms[a].kind == ATOM_BLOCK && block_has(pol->atoms[a].block, f, s->lo) &&
		    u32vec_push(&b->base, a))
			return -ENOMEM;
	s->atoms = arena_array(b->ar, b->base.n + 1, 4);
	if (!s->atoms)
		return -ENOMEM;
	if (b->base.n)
		memcpy(s->atoms, b->base.v, b->base.n * 4);
	s->natoms = b->base.n;
	return 0;
}

static int segs_build(struct pb *b)
{
	struct plan_policy *pol = b->pol;

	for (int f = 0; f < 2; f++) {
		u128 *edges;
		size_t n;
		int ret = seg_edges(pol, f, &edges, &n);

		if (ret)
			return ret;
		pol->segs[f] = calloc(n, sizeof(struct seg));
		pol->nsegs[f] = n;
		for (size_t i = 0; i < n && pol->segs[f] && !ret; i++) {
			pol->segs[f][i].lo = edges[i];
			ret = seg_fill(b, f, &pol->segs[f][i]);
		}
		free(edges);
		if (ret || !pol->segs[f])
			return ret ? ret : -ENOMEM;
	}
	return 0;
}

const struct seg *plan_policy_seg(const struct plan_policy *pol, int f, u128 x)
{
	const struct seg *v = pol->segs[f];
	size_t lo = 0, hi = pol->nsegs[f];

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].lo <= x)
			lo = mid;
		else
			hi = mid;
	}
	return &v[lo];
}

/* ---- the key: what building one reads ---- */

/*
 * A writer (cmp NULL) appends it to buf; a checker compares it with cmp as it goes, which
 * reads what a build would but spares the texts, hashing and allocation (it runs on every
 * compile: hence the inline compares). Counts come before their items and strings are
 * NUL-terminated after a byte that tells NULL apart, so two inputs with the same key are the
 * same input.
 */
struct kw {
	uint8_t *buf;
	size_t n, cap;
	const uint8_t *cmp;
	size_t ncmp;
	int err;			/* writer: -ENOMEM; checker: 1 at the first difference */
};

static void kw_put(struct kw *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->cmp) {
		if (n > w->ncmp - w->n || memcmp(w->cmp + w->n, p, n))
			w->err = 1;
		w->n += n;
		return;
	}
	if (!n)
		return;
	if (grow((void **)&w->buf, w->n + n - 1, &w->cap, 1)) {
		w->err = -ENOMEM;
		return;
	}
	memcpy(w->buf + w->n, p, n);
	w->n += n;
}

static void kw_u64(struct kw *w, uint64_t x)
{
	uint64_t y;

	if (!w->cmp || w->err || w->ncmp - w->n < sizeof(y)) {
		kw_put(w, &x, sizeof(x));
		return;
	}
	memcpy(&y, w->cmp + w->n, sizeof(y));
	w->err = y != x;
	w->n += sizeof(y);
}

static void kw_str(struct kw *w, const char *s)
{
	const uint8_t *k, *end;

	if (!w->cmp || w->err || !s) {
		kw_put(w, s ? "s" : "", 1);
		if (s)
			kw_put(w, s, strlen(s) + 1);
		return;
	}
	k = w->cmp + w->n;
	end = w->cmp + w->ncmp;
	if (k == end || *k++ != 's') {
		w->err = 1;
		return;
	}
	for (; k < end && *k == (uint8_t)*s; k++, s++)
		if (!*s) {
			w->n = k + 1 - w->cmp;
			return;
		}
	w->err = 1;
}

static void kw_labels(struct kw *w, const struct moat_labels *l)
{
	kw_u64(w, l->n);
	for (size_t i = 0; i < l->n; i++) {
		kw_str(w, l->v[i].key);
		kw_str(w, l->v[i].value);
	}
}

static void kw_sel(struct kw *w, const struct moat_selector *s)
{
	kw_labels(w, &s->match);
	kw_u64(w, s->nexprs);
	for (size_t i = 0; i < s->nexprs; i++) {
		kw_u64(w, s->exprs[i].op);
		kw_str(w, s->exprs[i].key);
		kw_u64(w, s->exprs[i].nvalues);
		for (size_t k = 0; k < s->exprs[i].nvalues; k++)
			kw_str(w, s->exprs[i].values[k]);
	}
}

static void kw_cidr(struct kw *w, const struct moat_cidr *k)
{
	kw_u64(w, (uint64_t)k->family << 8 | k->plen);
	kw_put(w, k->addr, sizeof(k->addr));
}

/* What peer_atom reads of a peer. */
static void kw_peer(struct kw *w, const struct moat_peer *p)
{
	kw_u64(w, (uint64_t)p->kind << 2 | p->has_ns << 1 | p->has_pod);
	if (p->kind == MOAT_PEER_IPBLOCK) {
		kw_cidr(w, &p->cidr);
		kw_u64(w, p->nexcept);
		for (size_t i = 0; i < p->nexcept; i++)
			kw_cidr(w, &p->except[i]);
		return;
	}
	if (p->kind == MOAT_PEER_DOMAIN) {
		kw_str(w, p->domain);
		return;
	}
	if (p->has_ns)
		kw_sel(w, &p->ns);
	if (p->has_pod)
		kw_sel(w, &p->pod);
}

static void kw_peers_ports(struct kw *w, const struct moat_peer *peers, size_t npeers,
			   const struct moat_port *ports, size_t nports)
{
	kw_u64(w, (uintptr_t)peers);	/* atoms point at the peers */
	kw_u64(w, npeers);
	for (size_t k = 0; k < npeers; k++)
		kw_peer(w, &peers[k]);
	kw_u64(w, nports);
	for (size_t k = 0; k < nports; k++) {
		kw_str(w, ports[k].name);
		kw_u64(w, ports[k].proto);
	}
}

static void kw_rule(struct kw *w, const struct moat_rule *r)
{
	kw_peers_ports(w, r->peers, r->npeers, r->ports, r->nports);
}

/* What cnp_atoms reads of a cluster-wide policy. */
static void kw_cnp(struct kw *w, const struct moat_cnp *c)
{
	kw_u64(w, c->subject_pods);
	kw_sel(w, &c->subject_ns);
	if (c->subject_pods)
		kw_sel(w, &c->subject_pod);
	kw_u64(w, c->nin);
	kw_u64(w, c->nout);
	for (size_t r = 0; r < c->nin; r++)
		kw_peers_ports(w, c->in[r].peers, c->in[r].npeers, c->in[r].ports, c->in[r].nports);
	for (size_t r = 0; r < c->nout; r++)
		kw_peers_ports(w, c->out[r].peers, c->out[r].npeers, c->out[r].ports,
			       c->out[r].nports);
}

/*
 * The policies as policy_atoms and cnp_atoms read them, where what the atoms point at lives
 * (a state is shared only by compiles whose policies are at the same addresses), and the
 * namespaces with their labels in gathering order (conditions and the index are per
 * namespace index). Isolation, modes, actions and port numbers are read afresh by every
 * compile: not in the key.
 */
static void policy_key(const struct moat_policy_set *ps, const struct pb_ns *nss, size_t nns,
		       struct kw *w)
{
	kw_u64(w, (uintptr_t)ps->pols);	/* atoms point at the targets */
	kw_u64(w, ps->npols);
	for (size_t p = 0; p < ps->npols; p++) {
		const struct moat_netpol *pol = &ps->pols[p];

		kw_str(w, pol_ns(pol));
		kw_sel(w, &pol->target);
		kw_u64(w, pol->nin);
		kw_u64(w, pol->nout);
		for (size_t r = 0; r < pol->nin; r++)
			kw_rule(w, &pol->in[r]);
		for (size_t r = 0; r < pol->nout; r++)
			kw_rule(w, &pol->out[r]);
	}
	kw_u64(w, (uintptr_t)ps->cnps);	/* atoms point at the subjects */
	kw_u64(w, ps->ncnps);
	for (size_t c = 0; c < ps->ncnps; c++)
		kw_cnp(w, &ps->cnps[c]);
	kw_u64(w, nns);
	for (size_t i = 0; i < nns; i++) {
		kw_str(w, nss[i].name);
		kw_labels(w, &nss[i].labels);
	}
}

/* ---- entry points ---- */

void plan_policy_unref(struct plan_policy *pol)
{
	if (!pol || atomic_fetch_sub(&pol->refs, 1) != 1)
		return;
	arena_free(pol->arena);
	hmap_free(&pol->label_idx);
	hmap_free(&pol->nport_ref);
	hmap_free(&pol->ns_by_name);
	hmap_free(&pol->nport_uses);
	free(pol->key), free(pol->atoms), free(pol->conds), free(pol->links), free(pol->uses);
	free(pol->dns_rules);
	free(pol->ns_head), free(pol->tgt_head), free(pol->cnp_head);
	free(pol->segs[0]), free(pol->segs[1]);
	free(pol);
}

static int build(struct pb *b)
{
	int (*const steps[])(struct pb *) = { ns_table, policy_atoms, cnp_atoms, index_build,
					      segs_build, peer_index, nport_index };
	struct kw w = { 0 };
	int ret = 0;

	b->pol->arena = b->ar = arena_new();
	policy_key(b->ps, b->nss, b->nns, &w);
	b->pol->key = w.buf;
	b->pol->nkey = w.n;
	if (!b->ar || w.err)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !ret; i++)
		ret = steps[i](b);
	return ret;
}

int plan_policy_take(const struct moat_policy_set *ps, const struct pb_ns *nss, size_t nns,
		     struct plan_policy *prev, struct plan_policy **out)
{
	struct kw w = { .cmp = prev ? prev->key : NULL, .ncmp = prev ? prev->nkey : 0 };
	struct pb b = { .ps = ps, .nss = nss, .nns = nns };
	int ret;

	if (prev) {
		policy_key(ps, nss, nns, &w);
		if (!w.err && w.n == prev->nkey) {
			atomic_fetch_add(&prev->refs, 1);
			*out = prev;
			return 0;
		}
	}
	b.pol = calloc(1, sizeof(*b.pol));
	if (!b.pol)
		return -ENOMEM;
	atomic_init(&b.pol->refs, 1);
	ret = build(&b);
	hmap_free(&b.cond_by_canon);
	hmap_free(&b.atom_by_canon);
	free(b.base.v);
	if (ret) {
		plan_policy_unref(b.pol);
		return ret;
	}
	*out = b.pol;
	return 0;
}
