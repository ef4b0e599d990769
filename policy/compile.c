/*
 * The compiler: policies plus endpoints -> plan (see plan.h for the model).
 *
 * Steps: gather namespaces and their labels; turn every target and peer into an atom
 * (deduplicated by its text); index pod selectors by one label they require, so an endpoint
 * is tested only against selectors that can match it; cut each address family into segments
 * at every ipBlock edge; give every endpoint address, every address-less endpoint and every
 * segment the set of atoms it holds, and intern those sets as identities; then lower each
 * rule into set elements over identities and merge port ranges per key.
 * Cost: endpoints x (their labels' candidate selectors) + blocks x segments + elements.
 *
 * The atoms, conditions, index and segments depend on the policies and namespaces alone
 * (struct plan_policy). The daemon recompiles the same policies each time an endpoint comes
 * or goes, so a compile shares prev's when they were built from the same input, and only
 * the per-endpoint steps run again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "plan_priv.h"

typedef unsigned __int128 u128;

/* ---- hashing and a hash multimap (u64 hash -> u32 value; callers verify hits) ---- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;	/* 0 marks an empty slot */
}

static uint64_t hash_str(const char *s)
{
	return hash_fin(hash_bytes(0xcbf29ce484222325ull, s, strlen(s)));
}

struct hmap {
	uint64_t *h;
	uint32_t *v;
	size_t cap, n;
};

static void hmap_free(struct hmap *m)
{
	free(m->h);
	free(m->v);
}

static int hmap_put(struct hmap *m, uint64_t h, uint32_t v);

/* Doubles the table; keeps the order of equal hashes so multimap chains stay intact. */
static int hmap_grow(struct hmap *m)
{
	struct hmap n = { calloc(m->cap ? m->cap * 2 : 64, 8), NULL, m->cap ? m->cap * 2 : 64, 0 };

	n.v = calloc(n.cap, 4);
	if (!n.h || !n.v) {
		hmap_free(&n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->h[i])
			hmap_put(&n, m->h[i], m->v[i]);
	hmap_free(m);
	*m = n;
	return 0;
}

static int hmap_put(struct hmap *m, uint64_t h, uint32_t v)
{
	if ((m->n + 1) * 2 > m->cap && hmap_grow(m))
		return -ENOMEM;
	size_t i = h & (m->cap - 1);

	while (m->h[i])
		i = (i + 1) & (m->cap - 1);
	m->h[i] = h;
	m->v[i] = v;
	m->n++;
	return 0;
}

/* The next value stored under h at or after slot *it, or NULL; start with *it = 0. */
static uint32_t *hmap_next(const struct hmap *m, uint64_t h, size_t *it)
{
	if (!m->cap)
		return NULL;
	size_t i = *it ? *it : (h & (m->cap - 1)) + 1;

	for (i--; m->h[i]; i = (i + 1) & (m->cap - 1))
		if (m->h[i] == h) {
			*it = ((i + 1) & (m->cap - 1)) + 1;
			return &m->v[i];
		}
	return NULL;
}

/* ---- growable arrays and strings ---- */

static int grow(void **v, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;

	while (n < need)
		n *= 2;
	void *p = realloc(*v, n * sz);

	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

static int u32_push(struct u32vec *a, uint32_t x)
{
	if (grow((void **)&a->v, &a->cap, a->n + 1, 4))
		return -ENOMEM;
	a->v[a->n++] = x;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Short arrays (an endpoint's atoms, an identity's keys) are sorted by insertion: cheaper
 * than qsort's indirect compares at these sizes.
 */
#define SORT_SHORT 64

static void u32_sort(uint32_t *v, size_t n)
{
	if (n > SORT_SHORT) {
		qsort(v, n, sizeof(*v), cmp_u32);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint32_t x = v[i];
		size_t j = i;

		for (; j && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static void u64_sort(uint64_t *v, size_t n)
{
	if (n > SORT_SHORT) {
		qsort(v, n, sizeof(*v), cmp_u64);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;

		for (; j && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Sorts v[0..n) and drops repeats; returns the new length. */
static size_t u32_sort_uniq(uint32_t *v, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	u32_sort(v, n);
	for (size_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

/* Counts per byte value -> where the first record with that value goes. */
static void radix_offsets(size_t *pos)
{
	for (size_t b = 0, sum = 0; b < 256; b++) {
		size_t k = pos[b];

		pos[b] = sum;
		sum += k;
	}
}

/*
 * A stable radix sort of n records of size bytes on nd (<= 32) key bytes, the least
 * significant first: digits(r, out) gives all of record r's, digit(r, d) one. Passes over a
 * byte every record shares are skipped (ids and addresses have many). For the big arrays (set
 * elements, endpoint addresses) it is several times faster than qsort's indirect compares.
 * Always inlined, so that each caller's functions and record size are constants.
 */
static inline __attribute__((always_inline)) int
radix_sort(void *v, size_t n, size_t size, int nd, void (*digits)(const void *, uint8_t *),
	   unsigned (*digit)(const void *, int))
{
	size_t (*cnt)[256];
	unsigned char *tmp, *from = v, *to, *t;
	uint8_t b[32];

	if (n < 2)
		return 0;
	cnt = calloc(nd, sizeof(*cnt));
	to = tmp = malloc(n * size);
	if (!cnt || !tmp) {
		free(cnt), free(tmp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		digits(from + i * size, b);
		for (int d = 0; d < nd; d++)
			cnt[d][b[d]]++;
	}
	for (int d = 0; d < nd; d++) {
		if (cnt[d][digit(v, d)] == n)
			continue;	/* one value: the pass would change nothing */
		radix_offsets(cnt[d]);
		for (size_t i = 0; i < n; i++)
			memcpy(to + cnt[d][digit(from + i * size, d)]++ * size, from + i * size, size);
		t = from, from = to, to = t;
	}
	if (from != v)
		memcpy(v, from, n * size);
	free(cnt), free(tmp);
	return 0;
}

struct sbuf {
	char *s;
	size_t n, cap;
	int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err || grow((void **)&b->s, &b->cap, b->n + n + 1, 1)) {
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

/* ---- compile context ---- */

struct cns {
	const char *name;
	struct moat_labels labels;
};

struct nscond {
	int32_t ns;		/* the one namespace it admits, or -1: see admits */
	uint8_t *admits;	/* per namespace, for a namespaceSelector */
	const char *canon;
};

struct link {
	uint32_t atom, next;
};

struct evec {
	struct moat_plan_elem *v;
	size_t n, cap;
};

enum { E_IN, E_IN_ANY, E_OUT, E_OUT_ANY };

/* A range of one family's addresses that every ipBlock and except holds or not as a whole. */
struct seg {
	u128 lo;
	uint32_t *atoms, natoms;	/* the BLOCK atoms that hold it */
};

/*
 * What a compile derives from the policy set and the namespaces alone. Immutable once built
 * and shared: each plan compiled from it holds a reference (plan_priv.policy), so it lives
 * until the last of them is freed, in whatever order and on whatever thread (refs is
 * atomic). key tells what it was built from (see policy_key); a compile with the same key
 * takes a reference instead of building its own.
 */
struct plan_policy {
	atomic_uint refs;
	struct arena *arena;		/* conditions, atoms' texts, rule peers, segments' atoms */
	uint8_t *key;
	size_t nkey;
	struct plan_atom *atoms;	/* SEL and BLOCK atoms: each plan starts with a copy */
	uint32_t natoms;
	struct nscond *conds;
	size_t nconds;
	uint32_t *target_atom, *rule_base[2], **rule_peers[2];	/* as in plan_priv */
	struct hmap label_idx;		/* label key -> a chain of SEL atoms (links) */
	struct hmap nport_ref;		/* the named ports some rule refers to */
	struct link *links;
	uint32_t *ns_head;		/* per namespace: unanchored selector atoms (links) */
	uint32_t *tgt_head;		/* per atom: policies whose target it is (links) */
	struct seg *segs[2];		/* per family, sorted, the first starting at 0 */
	size_t nsegs[2];
};

/*
 * Endpoints alike in all their identities are made of (namespace, labels, named ports, host
 * network) are one kind: replicas. The first of a kind finds its atoms and interns its
 * identities; the others take them from here, which is what interning again would return.
 */
struct epkind {
	const struct moat_endpoint *e;	/* the first of the kind */
	uint32_t off, n;		/* its atoms, sorted: cc.kind_atoms.v[off .. off + n) */
	uint32_t ident;			/* its address-less identity */
	const struct seg *seg;		/* the segment of the kind's last address looked up, */
	uint32_t seg_ident;		/* and that address's identity */
};

struct cc {
	const struct moat_policy_set *ps;
	const struct moat_endpoint_set *es;
	const struct moat_plan *prev;
	struct moat_plan *plan;
	struct plan_priv *pv;
	struct plan_policy *pol;	/* the plan's reference (pv->policy) */
	struct arena *ar;		/* the plan's */
	struct arena *par;		/* pol's, while this compile builds it */
	struct cns *nss;
	size_t nns, nss_cap;
	struct hmap ns_by_name;
	size_t conds_cap, links_cap, nlinks;
	struct hmap cond_by_canon, atom_by_canon, ident_by_sig;
	size_t atoms_cap, ids_cap;
	uint32_t *seg_ident[2];		/* per segment of pol: its identity index */
	struct epkind *kinds;
	size_t nkinds, kinds_cap;
	struct hmap kind_by_hash;
	struct u32vec kind_atoms;	/* each kind's atoms, one after the other */
	struct u32vec scratch, base;
	uint32_t *id_of;	/* identity index -> id */
	uint32_t *ai_off, *ai;	/* atom -> identity indexes (CSR) */
	struct evec ev[4];
	size_t nidents;
};

static uint32_t link_add(struct cc *c, uint32_t atom, uint32_t next)
{
	if (grow((void **)&c->pol->links, &c->links_cap, c->nlinks + 1, sizeof(*c->pol->links)))
		return PLAN_NONE - 1;	/* callers test with link_failed */
	c->pol->links[c->nlinks] = (struct link){ atom, next };
	return c->nlinks++;
}

static bool link_failed(uint32_t l)
{
	return l == PLAN_NONE - 1;
}

/* ---- namespaces ---- */

static long ns_find(const struct cc *c, const char *name)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&c->ns_by_name, hash_str(name), &it)))
		if (!strcmp(c->nss[*v].name, name))
			return *v;
	return -1;
}

/* Adds name with no labels yet, unless present. */
static int ns_add(struct cc *c, const char *name)
{
	if (ns_find(c, name) >= 0)
		return 0;
	if (grow((void **)&c->nss, &c->nss_cap, c->nns + 1, sizeof(*c->nss)))
		return -ENOMEM;
	c->nss[c->nns] = (struct cns){ .name = name };
	return hmap_put(&c->ns_by_name, hash_str(name), c->nns++);
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
static int ns_labels(struct cc *c, struct cns *ns)
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

/* ---- canonical text of selectors, conditions and atoms ---- */

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

static int cond_add(struct cc *c, int32_t ns, const struct moat_selector *sel, const char *canon,
		    uint64_t h)
{
	struct plan_policy *pol = c->pol;
	struct nscond *k;

	if (grow((void **)&pol->conds, &c->conds_cap, pol->nconds + 1, sizeof(*pol->conds)))
		return -ENOMEM;
	k = &pol->conds[pol->nconds];
	*k = (struct nscond){ .ns = ns, .canon = arena_strdup(c->par, canon) };
	if (!k->canon)
		return -ENOMEM;
	if (sel) {
		k->admits = arena_alloc(c->par, c->nns);
		if (!k->admits)
			return -ENOMEM;
		for (size_t i = 0; i < c->nns; i++)
			k->admits[i] = moat_selector_match(sel, &c->nss[i].labels);
	}
	return hmap_put(&c->cond_by_canon, h, pol->nconds++);
}

/* Interns a namespace condition: namespace ns (sel NULL) or a namespaceSelector. */
static int cond_intern(struct cc *c, const char *ns, const struct moat_selector *sel,
		       uint32_t *out)
{
	struct sbuf b = { 0 };
	int ret;

	sb_str(&b, sel ? "s" : "n");
	if (sel)
		sel_canon(&b, sel);
	else
		sb_str(&b, ns);
	if (b.err)
		return b.err;
	uint64_t h = hash_str(b.s);

	*out = canon_find(&c->cond_by_canon, h, b.s, c->pol->conds, sizeof(*c->pol->conds),
			  offsetof(struct nscond, canon));
	ret = 0;
	if (*out == PLAN_NONE) {
		ret = cond_add(c, sel ? -1 : (int32_t)ns_find(c, ns), sel, b.s, h);
		*out = c->pol->nconds - 1;
	}
	free(b.s);
	return ret;
}

/*
 * Interns atom a (canon in b) into the plan's atoms; *out is its index. A new atom's canon
 * is copied into ar: the policy state's arena for SEL and BLOCK atoms, the plan's for NPORT.
 */
static int atom_intern(struct cc *c, struct arena *ar, struct plan_atom *a, struct sbuf *b,
		       uint32_t *out)
{
	struct plan_priv *pv = c->pv;

	if (b->err)
		return b->err;
	a->key = hash_str(b->s);
	*out = canon_find(&c->atom_by_canon, a->key, b->s, pv->atoms, sizeof(*pv->atoms),
			  offsetof(struct plan_atom, canon));
	if (*out != PLAN_NONE)
		return 0;
	if (grow((void **)&pv->atoms, &c->atoms_cap, pv->natoms + 1, sizeof(*pv->atoms)))
		return -ENOMEM;
	a->canon = arena_strdup(ar, b->s);
	if (!a->canon)
		return -ENOMEM;
	pv->atoms[pv->natoms] = *a;
	*out = pv->natoms++;
	return hmap_put(&c->atom_by_canon, a->key, *out);
}

/* The SEL atom for pods matching pod (NULL: all) in namespaces matching cond. */
static int sel_atom(struct cc *c, const char *ns, const struct moat_selector *nssel,
		    const struct moat_selector *pod, uint32_t *out)
{
	struct plan_atom a = { .kind = ATOM_SEL, .pod = sel_empty(pod) ? NULL : pod };
	struct sbuf b = { 0 };
	int ret = cond_intern(c, ns, nssel, &a.nscond);

	if (ret)
		return ret;
	sb_str(&b, "S");
	sb_str(&b, c->pol->conds[a.nscond].canon);
	sel_canon(&b, a.pod);
	ret = atom_intern(c, c->par, &a, &b, out);
	free(b.s);
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

static int block_atom(struct cc *c, const struct moat_peer *p, uint32_t *out)
{
	struct plan_atom a = { .kind = ATOM_BLOCK, .block = p };
	struct sbuf b = { 0 };
	int ret;

	sb_str(&b, "B");
	cidr_canon(&b, &p->cidr);
	for (size_t i = 0; i < p->nexcept; i++)
		cidr_canon(&b, &p->except[i]);
	ret = atom_intern(c, c->par, &a, &b, out);
	free(b.s);
	return ret;
}

static uint64_t nport_ref_key(const char *name, uint8_t proto)
{
	return hash_fin(hash_bytes(hash_bytes(0xcbf29ce484222325ull, name, strlen(name)),
				   &proto, 1));
}

static int nport_atom(struct cc *c, const char *name, uint8_t proto, uint16_t port,
		      uint32_t *out)
{
	struct plan_atom a = { .kind = ATOM_NPORT, .proto = proto, .port = port };
	struct sbuf b = { 0 };
	char s[32];
	int ret;

	snprintf(s, sizeof(s), "%u/%u", proto, port);
	sb_str(&b, "N");
	sb_str(&b, name);
	sb_str(&b, s);
	ret = atom_intern(c, c->ar, &a, &b, out);
	if (!ret && !c->pv->atoms[*out].name) {
		c->pv->atoms[*out].name = arena_strdup(c->ar, name);
		ret = c->pv->atoms[*out].name ? 0 : -ENOMEM;
	}
	free(b.s);
	return ret;
}

/* ---- policies -> atoms ---- */

static int peer_atom(struct cc *c, const struct moat_netpol *p, const struct moat_peer *peer,
		     uint32_t *out)
{
	if (peer->kind == MOAT_PEER_IPBLOCK)
		return block_atom(c, peer, out);
	/* With no selector written, the peer is the policy's own namespace (as podSelector {}). */
	return sel_atom(c, pol_ns(p), peer->has_ns ? &peer->ns : NULL,
			peer->has_pod ? &peer->pod : NULL, out);
}

/* Records the named ports rule r refers to, so endpoints carry their values as atoms. */
static int rule_nports(struct cc *c, const struct moat_rule *r)
{
	const struct moat_port *v = r->ports;

	for (size_t i = 0; i < r->nports; i++)
		if (v[i].name && hmap_put(&c->pol->nport_ref, nport_ref_key(v[i].name, v[i].proto), 0))
			return -ENOMEM;
	return 0;
}

static int rule_atoms(struct cc *c, uint32_t p, int dir, size_t r)
{
	const struct moat_netpol *pol = &c->ps->pols[p];
	const struct moat_rule *rule = dir ? &pol->out[r] : &pol->in[r];
	uint32_t *v = arena_array(c->par, rule->npeers + 1, 4);
	int ret = v ? rule_nports(c, rule) : -ENOMEM;

	for (size_t k = 0; k < rule->npeers && !ret; k++)
		ret = peer_atom(c, pol, &rule->peers[k], &v[k]);
	c->pol->rule_peers[dir][c->pol->rule_base[dir][p] + r] = v;
	return ret;
}

static int policy_atoms(struct cc *c)
{
	struct plan_policy *pol = c->pol;
	size_t nrules[2] = { 0, 0 };
	int ret = 0;

	pol->target_atom = arena_array(c->par, c->ps->npols + 1, 4);
	for (int d = 0; d < 2; d++)
		pol->rule_base[d] = arena_array(c->par, c->ps->npols + 1, 4);
	if (!pol->target_atom || !pol->rule_base[0] || !pol->rule_base[1])
		return -ENOMEM;
	for (size_t p = 0; p < c->ps->npols; p++) {
		pol->rule_base[0][p] = nrules[0];
		pol->rule_base[1][p] = nrules[1];
		nrules[0] += c->ps->pols[p].nin;
		nrules[1] += c->ps->pols[p].nout;
	}
	for (int d = 0; d < 2; d++)
		if (!(pol->rule_peers[d] = arena_array(c->par, nrules[d] + 1, sizeof(uint32_t *))))
			return -ENOMEM;
	for (size_t p = 0; p < c->ps->npols && !ret; p++) {
		const struct moat_netpol *np = &c->ps->pols[p];

		ret = sel_atom(c, pol_ns(np), NULL, &np->target, &pol->target_atom[p]);
		for (size_t r = 0; r < np->nin && !ret; r++)
			ret = rule_atoms(c, p, 0, r);
		for (size_t r = 0; r < np->nout && !ret; r++)
			ret = rule_atoms(c, p, 1, r);
	}
	return ret;
}

/* ---- selector index ---- */

static uint64_t label_key(const char *k, const char *v)
{
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, k, strlen(k) + 1);

	return hash_fin(v ? hash_bytes(h, v, strlen(v) + 1) : h);
}

static int index_label(struct cc *c, uint64_t key, uint32_t atom)
{
	size_t it = 0;
	uint32_t *head = hmap_next(&c->pol->label_idx, key, &it);
	uint32_t l = link_add(c, atom, head ? *head : PLAN_NONE);

	if (link_failed(l))
		return -ENOMEM;
	if (head) {
		*head = l;
		return 0;
	}
	return hmap_put(&c->pol->label_idx, key, l);
}

static int index_ns(struct cc *c, uint32_t ns, uint32_t atom)
{
	uint32_t l = link_add(c, atom, c->pol->ns_head[ns]);

	if (link_failed(l))
		return -ENOMEM;
	c->pol->ns_head[ns] = l;
	return 0;
}

/* A selector without a label to hang on is indexed under each namespace it admits. */
static int index_unanchored(struct cc *c, uint32_t atom)
{
	const struct nscond *k = &c->pol->conds[c->pv->atoms[atom].nscond];
	int ret = 0;

	if (k->ns >= 0)
		return index_ns(c, k->ns, atom);
	for (size_t i = 0; i < c->nns && !ret; i++)
		if (k->admits[i])
			ret = index_ns(c, i, atom);
	return ret;
}

/*
 * Index a SEL atom under one requirement every match must meet: a matchLabels pair, each
 * value of an In expression, or an Exists key. In with no value matches nothing: unindexed.
 */
static int index_sel(struct cc *c, uint32_t atom)
{
	const struct moat_selector *s = c->pv->atoms[atom].pod;
	int ret = 0;

	if (!s)
		return index_unanchored(c, atom);
	if (s->match.n)
		return index_label(c, label_key(s->match.v[0].key, s->match.v[0].value), atom);
	for (size_t i = 0; i < s->nexprs; i++) {
		const struct moat_sel_expr *e = &s->exprs[i];

		if (e->op == MOAT_SEL_EXISTS)
			return index_label(c, label_key(e->key, NULL), atom);
		if (e->op != MOAT_SEL_IN)
			continue;
		for (size_t k = 0; k < e->nvalues && !ret; k++)
			ret = index_label(c, label_key(e->key, e->values[k]), atom);
		return ret;
	}
	return index_unanchored(c, atom);
}

/* tgt_head covers the policy atoms alone: NPORT atoms, made later, are never targets. */
static int index_build(struct cc *c)
{
	struct plan_policy *pol = c->pol;
	int ret = 0;

	pol->ns_head = malloc((c->nns + 1) * 4);
	pol->tgt_head = malloc((c->pv->natoms + 1) * 4);
	if (!pol->ns_head || !pol->tgt_head)
		return -ENOMEM;
	memset(pol->ns_head, 0xff, (c->nns + 1) * 4);
	memset(pol->tgt_head, 0xff, (c->pv->natoms + 1) * 4);
	for (uint32_t a = 0; a < c->pv->natoms && !ret; a++)
		if (c->pv->atoms[a].kind == ATOM_SEL)
			ret = index_sel(c, a);
	/* Later policies first in each chain; isolation sorts its lists anyway. */
	for (uint32_t p = 0; p < c->ps->npols && !ret; p++) {
		uint32_t a = pol->target_atom[p], l = link_add(c, p, pol->tgt_head[a]);

		if (link_failed(l))
			return -ENOMEM;
		pol->tgt_head[a] = l;
	}
	return ret;
}

/* ---- identities ---- */

/* A word at a time: an endpoint's identity has as many atoms as selectors pick it. */
static uint64_t sig_hash(const uint32_t *a, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ a[i]) * 0x100000001b3ull;
	return hash_fin(h);
}

/* Interns the sorted atom set a[0..n) as an identity; *out is its index. */
static int ident_intern(struct cc *c, const uint32_t *a, size_t n, uint32_t *out)
{
	struct plan_priv *pv = c->pv;
	uint64_t h = sig_hash(a, n);
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&c->ident_by_sig, h, &it)))
		if (pv->ids[*v].natoms == n && !memcmp(pv->ids[*v].atoms, a, n * 4)) {
			*out = *v;
			return 0;
		}
	if (grow((void **)&pv->ids, &c->ids_cap, c->nidents + 1, sizeof(*pv->ids)))
		return -ENOMEM;
	struct plan_ident_priv *id = &pv->ids[c->nidents];

	*id = (struct plan_ident_priv){ .atoms = arena_array(c->ar, n + 1, 4), .natoms = n,
					.sig = h };
	if (!id->atoms)
		return -ENOMEM;
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
		if (u32_push(&c->scratch, base[i]))
			return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (u32_push(&c->scratch, extra[i]))
			return -ENOMEM;
	c->scratch.n = u32_sort_uniq(c->scratch.v, c->scratch.n);
	return ident_intern(c, c->scratch.v, c->scratch.n, out);
}

static bool sel_atom_match(const struct cc *c, uint32_t atom, uint32_t ns,
			   const struct moat_labels *l)
{
	const struct plan_atom *a = &c->pv->atoms[atom];
	const struct nscond *k = &c->pol->conds[a->nscond];

	if (k->ns >= 0 ? (uint32_t)k->ns != ns : !k->admits[ns])
		return false;
	return !a->pod || moat_selector_match(a->pod, l);
}

static int chain_match(struct cc *c, uint32_t l, uint32_t ns, const struct moat_labels *lab)
{
	const struct link *links = c->pol->links;

	for (; l != PLAN_NONE; l = links[l].next)
		if (sel_atom_match(c, links[l].atom, ns, lab) && u32_push(&c->base, links[l].atom))
			return -ENOMEM;
	return 0;
}

/* The SEL atoms endpoint e holds, into c->base: only its labels' candidates are tested. */
static int endpoint_sels(struct cc *c, const struct moat_endpoint *e, uint32_t ns)
{
	int ret = chain_match(c, c->pol->ns_head[ns], ns, &e->labels);

	for (size_t i = 0; i < e->labels.n && !ret; i++) {
		const struct moat_label *l = &e->labels.v[i];
		uint64_t keys[2] = { label_key(l->key, l->value), label_key(l->key, NULL) };

		for (int k = 0; k < 2 && !ret; k++) {
			size_t it = 0;
			uint32_t *head;

			while (!ret && (head = hmap_next(&c->pol->label_idx, keys[k], &it)))
				ret = chain_match(c, *head, ns, &e->labels);
		}
	}
	return ret;
}

/* Named ports some rule refers to, as NPORT atoms, into c->base. */
static int endpoint_nports(struct cc *c, const struct moat_endpoint *e)
{
	for (size_t i = 0; i < e->nports; i++) {
		const struct moat_named_port *np = &e->ports[i];
		size_t it = 0;
		uint32_t a;

		if (!np->name ||
		    !hmap_next(&c->pol->nport_ref, nport_ref_key(np->name, np->proto), &it))
			continue;
		if (nport_atom(c, np->name, np->proto, np->port, &a) || u32_push(&c->base, a))
			return -ENOMEM;
	}
	return 0;
}

static int fam_index(uint8_t family)
{
	return family == AF_INET6;
}

static u128 addr_u128(const uint8_t *a, uint8_t family)
{
	u128 x = 0;

	for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
		x = x << 8 | a[i];
	return x;
}

/* The segment of family f that holds x (segments start at 0 and are sorted). */
static const struct seg *seg_find(const struct cc *c, int f, u128 x)
{
	const struct seg *v = c->pol->segs[f];
	size_t lo = 0, hi = c->pol->nsegs[f];

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].lo <= x)
			lo = mid;
		else
			hi = mid;
	}
	return &v[lo];
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static uint64_t hash_opt(uint64_t h, const char *s)
{
	return s ? hash_bytes(h, s, strlen(s) + 1) : h;
}

static uint64_t kind_hash(const struct moat_endpoint *e)
{
	uint64_t h = hash_opt(0xcbf29ce484222325ull, e->namespace);

	h = hash_bytes(h, &e->host_network, sizeof(e->host_network));
	for (size_t i = 0; i < e->labels.n; i++)
		h = hash_opt(hash_opt(h, e->labels.v[i].key), e->labels.v[i].value);
	for (size_t i = 0; i < e->nports; i++)
		h = hash_bytes(hash_opt(h, e->ports[i].name), &e->ports[i].port, 2);
	return hash_fin(h);
}

/* Alike in what endpoint_sels and endpoint_nports read, in order. */
static bool kind_alike(const struct moat_endpoint *a, const struct moat_endpoint *b)
{
	if (strcmp(a->namespace, b->namespace) || a->host_network != b->host_network ||
	    a->labels.n != b->labels.n || a->nports != b->nports)
		return false;
	for (size_t i = 0; i < a->labels.n; i++)
		if (!str_eq(a->labels.v[i].key, b->labels.v[i].key) ||
		    !str_eq(a->labels.v[i].value, b->labels.v[i].value))
			return false;
	for (size_t i = 0; i < a->nports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

/* A new kind, e its first: its atoms, then its address-less identity. */
static int kind_add(struct cc *c, const struct moat_endpoint *e, uint64_t h)
{
	struct epkind *k;
	int ret = 0;

	c->base.n = 0;
	if (!e->host_network)	/* never segmented */
		ret = endpoint_sels(c, e, ns_find(c, e->namespace));
	if (!ret)
		ret = endpoint_nports(c, e);
	if (ret || grow((void **)&c->kinds, &c->kinds_cap, c->nkinds + 1, sizeof(*c->kinds)))
		return ret ? ret : -ENOMEM;
	c->base.n = u32_sort_uniq(c->base.v, c->base.n);
	k = &c->kinds[c->nkinds];
	*k = (struct epkind){ .e = e, .off = c->kind_atoms.n, .n = c->base.n };
	for (size_t i = 0; i < c->base.n && !ret; i++)
		ret = u32_push(&c->kind_atoms, c->base.v[i]);
	if (!ret)
		ret = ident_intern(c, c->base.v, c->base.n, &k->ident);
	return ret ? ret : hmap_put(&c->kind_by_hash, h, c->nkinds++);
}

/* The kind of e, found or added. The pointer lasts until the next call. */
static int endpoint_kind(struct cc *c, const struct moat_endpoint *e, struct epkind **out)
{
	uint64_t h = kind_hash(e);
	size_t it = 0;
	uint32_t *v;
	int ret;

	while ((v = hmap_next(&c->kind_by_hash, h, &it)))
		if (kind_alike(c->kinds[*v].e, e)) {
			*out = &c->kinds[*v];
			return 0;
		}
	ret = kind_add(c, e, h);
	*out = ret ? NULL : &c->kinds[c->nkinds - 1];
	return ret;
}

/*
 * Identities of endpoint i: on its labels alone, then per address with ipBlocks applied.
 * out[j] gets address j.
 */
static int endpoint_idents(struct cc *c, size_t i, struct moat_plan_addr *out)
{
	const struct moat_endpoint *e = &c->es->v[i];
	struct epkind *k;
	int ret = endpoint_kind(c, e, &k);

	if (!ret)
		c->plan->endpoint_ident[i] = k->ident;
	for (size_t j = 0; j < e->nips && !ret; j++) {
		const struct moat_addr *a = &e->ips[j];
		const struct seg *s = seg_find(c, fam_index(a->family), addr_u128(a->a, a->family));

		if (s != k->seg)	/* replicas mostly share a segment */
			ret = ident_of_union(c, c->kind_atoms.v + k->off, k->n, s->atoms, s->natoms,
					     &k->seg_ident);
		k->seg = ret ? NULL : s;
		out[j] = (struct moat_plan_addr){ *a, k->seg_ident, i };
	}
	return ret;
}

bool plan_ident_has(const struct plan_priv *pv, uint32_t i, uint32_t atom)
{
	const struct plan_ident_priv *id = &pv->ids[i];

	return id->natoms && bsearch(&atom, id->atoms, id->natoms, 4, cmp_u32);
}

int plan_ident_nport(const struct plan_priv *pv, uint32_t i, const char *name, uint8_t proto)
{
	const struct plan_ident_priv *id = &pv->ids[i];

	for (uint32_t k = id->natoms; k-- > 0;) {	/* NPORT atoms come last: interned last */
		const struct plan_atom *a = &pv->atoms[id->atoms[k]];

		if (a->kind != ATOM_NPORT)
			break;
		if (a->proto == proto && !strcmp(a->name, name))
			return a->port;
	}
	return -1;
}

/* ---- address space segments ---- */

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

	if (fam_index(k->family) != f || grow((void **)v, cap, *n + 2, sizeof(u128)))
		return fam_index(k->family) != f ? 0 : -ENOMEM;
	cidr_range(k, &lo, &hi);
	(*v)[(*n)++] = lo;
	if (hi < fam_max(f))
		(*v)[(*n)++] = hi + 1;
	return 0;
}

/* Every edge of every ipBlock and except of family f, sorted, starting with 0. */
static int seg_edges(struct cc *c, int f, u128 **out, size_t *nout)
{
	u128 *v = NULL;
	size_t n = 0, cap = 0, k = 0;
	int ret = grow((void **)&v, &cap, 1, sizeof(u128));

	if (!ret)
		v[n++] = 0;
	for (uint32_t a = 0; a < c->pv->natoms && !ret; a++) {
		const struct moat_peer *b = c->pv->atoms[a].block;

		if (c->pv->atoms[a].kind != ATOM_BLOCK)
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
static int seg_fill(struct cc *c, int f, struct seg *s)
{
	c->base.n = 0;
	for (uint32_t a = 0; a < c->pv->natoms; a++)
		if (c->pv->atoms[a].kind == ATOM_BLOCK && block_has(c->pv->atoms[a].block, f, s->lo) &&
		    u32_push(&c->base, a))
			return -ENOMEM;
	s->atoms = arena_array(c->par, c->base.n + 1, 4);
	if (!s->atoms)
		return -ENOMEM;
	memcpy(s->atoms, c->base.v, c->base.n * 4);
	s->natoms = c->base.n;
	return 0;
}

static int segs_build(struct cc *c)
{
	struct plan_policy *pol = c->pol;

	for (int f = 0; f < 2; f++) {
		u128 *edges;
		size_t n;
		int ret = seg_edges(c, f, &edges, &n);

		if (ret)
			return ret;
		pol->segs[f] = calloc(n, sizeof(struct seg));
		pol->nsegs[f] = n;
		for (size_t i = 0; i < n && pol->segs[f] && !ret; i++) {
			pol->segs[f][i].lo = edges[i];
			ret = seg_fill(c, f, &pol->segs[f][i]);
		}
		free(edges);
		if (ret || !pol->segs[f])
			return ret ? ret : -ENOMEM;
	}
	return 0;
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
		for (size_t i = 0; i < c->pol->nsegs[f] && !ret; i++)
			ret = ident_intern(c, v[i].atoms, v[i].natoms, &c->seg_ident[f][i]);
	}
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
		memcpy(id->keys, same->keys, id->natoms * 8ul);
		id->hash = same->hash;
		return 0;
	}
	for (uint32_t k = 0; k < id->natoms; k++)
		id->keys[k] = c->pv->atoms[id->atoms[k]].key;
	u64_sort(id->keys, id->natoms);
	id->hash = hash_fin(hash_bytes(0xcbf29ce484222325ull, id->keys, id->natoms * 8ul));
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
		    !memcmp(pp->ids[*v].keys, id->keys, id->natoms * 8ul))
			return prev->idents[*v].id;
	return 0;
}

static int ids_assign(struct cc *c)
{
	const struct plan_priv *pp = c->prev ? c->prev->priv : NULL;
	struct hmap m = { 0 }, sigs = { 0 };	/* prev's identities by keys, by atoms */
	int ret = 0;

	c->pv->next_id = pp ? pp->next_id : 1;	/* 0 is "no identity" in the *_any sets */
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

/* ---- isolation ---- */

/* Policy atoms come first in an identity's sorted atoms, and only they head tgt_head. */
static int ident_isolation(struct cc *c, uint32_t i, int d)
{
	struct plan_ident_priv *id = &c->pv->ids[i];
	struct moat_plan_ident *pi = &c->plan->idents[i];
	const struct plan_policy *pol = c->pol;
	const struct link *links = pol->links;
	bool enforce = false;

	c->scratch.n = 0;
	for (uint32_t k = 0; k < id->natoms && id->atoms[k] < pol->natoms; k++)
		for (uint32_t l = pol->tgt_head[id->atoms[k]]; l != PLAN_NONE; l = links[l].next) {
			const struct moat_netpol *p = &c->ps->pols[links[l].atom];

			if ((d ? p->isolates_out : p->isolates_in) && u32_push(&c->scratch, links[l].atom))
				return -ENOMEM;
			enforce |= (d ? p->isolates_out : p->isolates_in) && p->mode == MOAT_MODE_ENFORCE;
		}
	id->npols[d] = u32_sort_uniq(c->scratch.v, c->scratch.n);
	id->pols[d] = arena_array(c->ar, id->npols[d] + 1, 4);
	if (!id->pols[d])
		return -ENOMEM;
	memcpy(id->pols[d], c->scratch.v, id->npols[d] * 4);
	enforce = enforce && c->plan->mode == MOAT_MODE_ENFORCE;
	*(d ? &pi->out_iso : &pi->in_iso) = id->npols[d] > 0;
	*(d ? &pi->out_mode : &pi->in_mode) = enforce ? MOAT_MODE_ENFORCE : MOAT_MODE_MONITOR;
	return 0;
}

static int isolation(struct cc *c)
{
	int ret = 0;

	c->plan->idents = calloc(c->nidents + 1, sizeof(*c->plan->idents));
	if (!c->plan->idents)
		return -ENOMEM;
	c->plan->nidents = c->nidents;
	for (uint32_t i = 0; i < c->nidents && !ret; i++) {
		c->plan->idents[i].id = c->id_of[i];
		ret = ident_isolation(c, i, 0);
		if (!ret)
			ret = ident_isolation(c, i, 1);
	}
	return ret;
}

/* atom -> the identities that hold it, as offsets into one array. */
static int atom_idents(struct cc *c)
{
	uint32_t na = c->pv->natoms;
	size_t total = 0;

	c->ai_off = calloc(na + 2, 4);
	for (uint32_t i = 0; c->ai_off && i < c->nidents; i++)
		for (uint32_t k = 0; k < c->pv->ids[i].natoms; k++, total++)
			c->ai_off[c->pv->ids[i].atoms[k] + 2]++;
	c->ai = malloc((total + 1) * 4);
	if (!c->ai_off || !c->ai)
		return -ENOMEM;
	for (uint32_t a = 0; a < na; a++)
		c->ai_off[a + 2] += c->ai_off[a + 1];
	for (uint32_t i = 0; i < c->nidents; i++)
		for (uint32_t k = 0; k < c->pv->ids[i].natoms; k++)
			c->ai[c->ai_off[c->pv->ids[i].atoms[k] + 1]++] = i;
	return 0;	/* now ai[ai_off[a] .. ai_off[a + 1]) lists atom a's identities */
}

/* ---- rules -> set elements ---- */

struct pspec {
	uint8_t plo, phi;
	uint16_t lo, hi;
};

static const struct pspec PSPEC_ALL = { 0, 255, 0, 65535 };

static int emit(struct cc *c, int set, uint32_t src, uint32_t dst, const struct pspec *s)
{
	struct evec *e = &c->ev[set];

	if (grow((void **)&e->v, &e->cap, e->n + 1, sizeof(*e->v)))
		return -ENOMEM;
	e->v[e->n++] = (struct moat_plan_elem){ .src = src, .dst = dst, .proto_lo = s->plo,
						.proto_hi = s->phi, .port_lo = s->lo, .port_hi = s->hi };
	return 0;
}

/* One ports entry as a range for destination identity dst; false when it matches nothing. */
static bool port_spec(const struct cc *c, const struct moat_port *mp, uint32_t dst, bool named_ok,
		      struct pspec *s)
{
	int v;

	*s = (struct pspec){ mp->proto, mp->proto, mp->port, mp->end_port };
	if (mp->name) {
		v = named_ok ? plan_ident_nport(c->pv, dst, mp->name, mp->proto) : -1;
		s->lo = s->hi = v;
		return v >= 0;
	}
	if (!mp->port)
		s->hi = 65535;
	else if (mp->end_port < mp->port)
		s->hi = mp->port;
	return true;
}

static int lower_in_spec(struct cc *c, const struct moat_rule *r, const uint32_t *peers,
			 uint32_t dst, const struct pspec *s)
{
	int ret = 0;

	if (!r->npeers)
		return emit(c, E_IN_ANY, 0, c->id_of[dst], s);
	for (size_t k = 0; k < r->npeers; k++)
		for (uint32_t j = c->ai_off[peers[k]]; j < c->ai_off[peers[k] + 1] && !ret; j++)
			ret = emit(c, E_IN, c->id_of[c->ai[j]], c->id_of[dst], s);
	return ret;
}

/* Ingress rule r of a policy, for one selected identity: ports resolve against it. */
static int lower_in(struct cc *c, const struct moat_rule *r, const uint32_t *peers, uint32_t dst)
{
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return lower_in_spec(c, r, peers, dst, &PSPEC_ALL);
	for (size_t k = 0; k < r->nports && !ret; k++)
		if (port_spec(c, &r->ports[k], dst, true, &s))
			ret = lower_in_spec(c, r, peers, dst, &s);
	return ret;
}

static int lower_out_pair(struct cc *c, const struct moat_rule *r, uint32_t src, uint32_t dst,
			  bool named_ok)
{
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return emit(c, E_OUT, c->id_of[src], c->id_of[dst], &PSPEC_ALL);
	for (size_t k = 0; k < r->nports && !ret; k++)
		if (port_spec(c, &r->ports[k], dst, named_ok, &s))
			ret = emit(c, E_OUT, c->id_of[src], c->id_of[dst], &s);
	return ret;
}

/* A named port to any destination: to each endpoint identity that gives the name a value. */
static int lower_out_named_any(struct cc *c, const struct moat_port *mp, uint32_t src)
{
	int ret = 0;

	for (uint32_t a = 0; a < c->pv->natoms && !ret; a++) {
		const struct plan_atom *at = &c->pv->atoms[a];
		struct pspec s = { mp->proto, mp->proto, at->port, at->port };

		if (at->kind != ATOM_NPORT || at->proto != mp->proto || strcmp(at->name, mp->name))
			continue;
		for (uint32_t j = c->ai_off[a]; j < c->ai_off[a + 1] && !ret; j++)
			ret = emit(c, E_OUT, c->id_of[src], c->id_of[c->ai[j]], &s);
	}
	return ret;
}

static int lower_out_any(struct cc *c, const struct moat_rule *r, uint32_t src)
{
	struct pspec s;
	int ret = 0;

	if (!r->nports)
		return emit(c, E_OUT_ANY, c->id_of[src], 0, &PSPEC_ALL);
	for (size_t k = 0; k < r->nports && !ret; k++) {
		if (r->ports[k].name)
			ret = lower_out_named_any(c, &r->ports[k], src);
		else if (port_spec(c, &r->ports[k], 0, false, &s))
			ret = emit(c, E_OUT_ANY, c->id_of[src], 0, &s);
	}
	return ret;
}

/* Egress rule r for one selected identity; named ports never match an ipBlock peer. */
static int lower_out(struct cc *c, const struct moat_rule *r, const uint32_t *peers, uint32_t src)
{
	int ret = 0;

	if (!r->npeers)
		return lower_out_any(c, r, src);
	for (size_t k = 0; k < r->npeers; k++) {
		bool named_ok = r->peers[k].kind == MOAT_PEER_PODS;

		for (uint32_t j = c->ai_off[peers[k]]; j < c->ai_off[peers[k] + 1] && !ret; j++)
			ret = lower_out_pair(c, r, src, c->ai[j], named_ok);
	}
	return ret;
}

/* Rules of a direction the policy does not isolate are ignored, as Kubernetes does. */
static int lower_policy(struct cc *c, uint32_t p)
{
	const struct moat_netpol *pol = &c->ps->pols[p];
	uint32_t t = c->pv->target_atom[p], **rp[2];
	int ret = 0;

	rp[0] = c->pv->rule_peers[0] + c->pv->rule_base[0][p];
	rp[1] = c->pv->rule_peers[1] + c->pv->rule_base[1][p];
	for (uint32_t j = c->ai_off[t]; j < c->ai_off[t + 1] && !ret; j++) {
		for (size_t r = 0; pol->isolates_in && r < pol->nin && !ret; r++)
			ret = lower_in(c, &pol->in[r], rp[0][r], c->ai[j]);
		for (size_t r = 0; pol->isolates_out && r < pol->nout && !ret; r++)
			ret = lower_out(c, &pol->out[r], rp[1][r], c->ai[j]);
	}
	return ret;
}

static bool same_key(const struct moat_plan_elem *x, const struct moat_plan_elem *y)
{
	return x->src == y->src && x->dst == y->dst;
}

/*
 * The order elems_merge needs as two unsigned keys: (src, dst), then (proto_lo, the widest
 * proto_hi first, port_lo).
 */
static uint64_t elem_key_hi(const struct moat_plan_elem *e)
{
	return (uint64_t)e->src << 32 | e->dst;
}

static uint32_t elem_key_lo(const struct moat_plan_elem *e)
{
	return (uint32_t)e->proto_lo << 24 | (uint32_t)(255 - e->proto_hi) << 16 | e->port_lo;
}

/* Byte d of the whole key, the least significant first: 0..3 of key_lo, 4..11 of key_hi. */
static unsigned elem_digit(const void *p, int d)
{
	const struct moat_plan_elem *e = p;

	return (d < 4 ? elem_key_lo(e) >> 8 * d : elem_key_hi(e) >> 8 * (d - 4)) & 255;
}

static void elem_digits(const void *p, uint8_t *out)
{
	uint32_t lo = elem_key_lo(p);
	uint64_t hi = elem_key_hi(p);

	for (int d = 0; d < 4; d++)
		out[d] = lo >> 8 * d;
	for (int d = 0; d < 8; d++)
		out[4 + d] = hi >> 8 * d;
}

/* Elements equal in both keys differ in port_hi alone, and merge alike in any order. */
static int elems_sort(struct moat_plan_elem *v, size_t n)
{
	return radix_sort(v, n, sizeof(*v), 12, elem_digits, elem_digit);
}

/*
 * Merges sorted elements so no two overlap (pipapo refuses that): per key, an
 * every-protocol element swallows the rest; otherwise overlapping or adjacent port ranges
 * of one protocol join. Rules only make every-protocol or single-protocol elements.
 */
static size_t elems_merge(struct moat_plan_elem *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct moat_plan_elem *last = k ? &v[k - 1] : NULL;

		if (last && same_key(last, &v[i]) && last->proto_lo == 0 && last->proto_hi == 255)
			continue;	/* sorted first in its key: proto_lo 0, widest proto_hi */
		if (last && same_key(last, &v[i]) && last->proto_lo == v[i].proto_lo &&
		    (uint32_t)v[i].port_lo <= (uint32_t)last->port_hi + 1) {
			if (v[i].port_hi > last->port_hi)
				last->port_hi = v[i].port_hi;
			continue;
		}
		v[k++] = v[i];
	}
	return k;
}

static int elements(struct cc *c)
{
	int ret = 0;

	for (uint32_t p = 0; p < c->ps->npols && !ret; p++)
		ret = lower_policy(c, p);
	if (ret)
		return ret;
	struct moat_plan_elem **dst[4] = { &c->plan->allow_in, &c->plan->allow_in_any,
					   &c->plan->allow_out, &c->plan->allow_out_any };
	size_t *ndst[4] = { &c->plan->nallow_in, &c->plan->nallow_in_any, &c->plan->nallow_out,
			    &c->plan->nallow_out_any };

	for (int s = 0; s < 4; s++) {
		if (elems_sort(c->ev[s].v, c->ev[s].n))
			return -ENOMEM;
		*ndst[s] = elems_merge(c->ev[s].v, c->ev[s].n);
		*dst[s] = c->ev[s].v;	/* handed to the plan */
		c->ev[s].v = NULL;
	}
	return 0;
}

/* ---- the plan's address map, nets and identity table ---- */

/* Byte d of an address record's key (family, then address), the least significant first. */
static unsigned addr_digit(const void *p, int d)
{
	const struct moat_addr *a = &((const struct moat_plan_addr *)p)->addr;

	return d < 16 ? a->a[15 - d] : a->family;
}

static void addr_digits(const void *p, uint8_t *out)
{
	const struct moat_addr *a = &((const struct moat_plan_addr *)p)->addr;

	for (int d = 0; d < 16; d++)
		out[d] = a->a[15 - d];
	out[16] = a->family;
}

/*
 * Every endpoint address with its identity, sorted. An address two endpoints claim maps to
 * the first of them (a map has one value per key; the kernel sees the same).
 */
static int addrs_build(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	size_t n = 0, k = 0;
	int ret = 0;

	for (size_t i = 0; i < c->es->n; i++)
		n += c->es->v[i].nips;
	pl->addrs = calloc(n + 1, sizeof(*pl->addrs));
	pl->endpoint_ident = calloc(c->es->n + 1, 4);
	if (!pl->addrs || !pl->endpoint_ident)
		return -ENOMEM;
	for (size_t i = 0; i < c->es->n && !ret; i++) {
		ret = endpoint_idents(c, i, &pl->addrs[k]);
		k += c->es->v[i].nips;
	}
	pl->naddrs = n;
	return ret;
}

/*
 * After ids are known: identity indexes in addrs and endpoint_ident become ids; sort, dedupe.
 * addrs_build made them in endpoint order, which the stable sort keeps among equal addresses.
 */
static int addrs_finish(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	size_t k = 0;

	for (size_t i = 0; i < c->es->n; i++)
		pl->endpoint_ident[i] = c->id_of[pl->endpoint_ident[i]];
	for (size_t i = 0; i < pl->naddrs; i++)
		pl->addrs[i].ident = c->id_of[pl->addrs[i].ident];
	if (radix_sort(pl->addrs, pl->naddrs, sizeof(*pl->addrs), 17, addr_digits, addr_digit))
		return -ENOMEM;
	for (size_t i = 0; i < pl->naddrs; i++)
		if (!k || pl->addrs[k - 1].addr.family != pl->addrs[i].addr.family ||
		    memcmp(pl->addrs[k - 1].addr.a, pl->addrs[i].addr.a, 16))
			pl->addrs[k++] = pl->addrs[i];
	pl->naddrs = k;
	return 0;
}

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
			u128 hi = i + 1 < pol->nsegs[f] ? s[1].lo - 1 : fam_max(f);

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

/* Orders plan->idents (and priv->ids beside it) by id, as plan.h promises. */
static int idents_sort(struct cc *c)
{
	struct moat_plan *pl = c->plan;
	size_t n = pl->nidents;
	struct moat_plan_ident *a = malloc((n + 1) * sizeof(*a));
	struct plan_ident_priv *b = malloc((n + 1) * sizeof(*b));
	uint32_t *perm = malloc((n + 1) * 8);	/* (id, index) pairs as u64 */

	if (!a || !b || !perm) {
		free(a), free(b), free(perm);
		return -ENOMEM;
	}
	uint64_t *p = (uint64_t *)perm;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint64_t)pl->idents[i].id << 32 | i;
	if (n > 1)
		qsort(p, n, 8, cmp_u64);
	for (size_t i = 0; i < n; i++) {
		a[i] = pl->idents[(uint32_t)p[i]];
		b[i] = c->pv->ids[(uint32_t)p[i]];
	}
	free(pl->idents), free(c->pv->ids), free(perm);
	pl->idents = a;
	c->pv->ids = b;
	return 0;
}

/* ---- the policy state, shared by compiles of the same input ---- */

/*
 * The key of a policy state: what building it reads. A writer (cmp NULL) appends it to buf;
 * a checker compares it with cmp as it goes, which reads what a build would but spares the
 * texts, hashing and allocation (it runs on every compile: hence the inline compares).
 * Counts come before their items and strings are NUL-terminated after a byte that tells
 * NULL apart, so two inputs with the same key are the same input.
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
	if (grow((void **)&w->buf, &w->cap, w->n + n, 1)) {
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
	if (p->has_ns)
		kw_sel(w, &p->ns);
	if (p->has_pod)
		kw_sel(w, &p->pod);
}

static void kw_rule(struct kw *w, const struct moat_rule *r)
{
	kw_u64(w, (uintptr_t)r->peers);	/* atoms point at the peers */
	kw_u64(w, r->npeers);
	for (size_t k = 0; k < r->npeers; k++)
		kw_peer(w, &r->peers[k]);
	kw_u64(w, r->nports);
	for (size_t k = 0; k < r->nports; k++) {
		kw_str(w, r->ports[k].name);
		kw_u64(w, r->ports[k].proto);
	}
}

/*
 * The policies as policy_atoms reads them, where what the atoms point at lives (a state is
 * shared only by compiles whose policies are at the same addresses), and the namespaces
 * with their labels in gathering order (conditions and the index are per namespace index).
 * Isolation, modes and port numbers are read afresh by every compile: not in the key.
 */
static void policy_key(const struct cc *c, struct kw *w)
{
	kw_u64(w, (uintptr_t)c->ps->pols);	/* atoms point at the targets */
	kw_u64(w, c->ps->npols);
	for (size_t p = 0; p < c->ps->npols; p++) {
		const struct moat_netpol *pol = &c->ps->pols[p];

		kw_str(w, pol_ns(pol));
		kw_sel(w, &pol->target);
		kw_u64(w, pol->nin);
		kw_u64(w, pol->nout);
		for (size_t r = 0; r < pol->nin; r++)
			kw_rule(w, &pol->in[r]);
		for (size_t r = 0; r < pol->nout; r++)
			kw_rule(w, &pol->out[r]);
	}
	kw_u64(w, c->nns);
	for (size_t i = 0; i < c->nns; i++) {
		kw_str(w, c->nss[i].name);
		kw_labels(w, &c->nss[i].labels);
	}
}

static bool policy_fits(const struct cc *c, const struct plan_policy *pol)
{
	struct kw w = { .cmp = pol->key, .ncmp = pol->nkey };

	policy_key(c, &w);
	return !w.err && w.n == pol->nkey;
}

static void policy_unref(struct plan_policy *pol)
{
	if (!pol || atomic_fetch_sub(&pol->refs, 1) != 1)
		return;
	arena_free(pol->arena);
	hmap_free(&pol->label_idx);
	hmap_free(&pol->nport_ref);
	free(pol->key), free(pol->atoms), free(pol->conds), free(pol->links);
	free(pol->ns_head), free(pol->tgt_head), free(pol->segs[0]), free(pol->segs[1]);
	free(pol);
}

/*
 * Builds the policy state, the plan holding the first reference (moat_plan_free drops it,
 * so a failure here needs no unwinding). Its atoms are interned into the plan's, as ever,
 * then moved to it.
 */
static int policy_build(struct cc *c)
{
	int (*const steps[])(struct cc *) = { policy_atoms, index_build, segs_build };
	struct plan_policy *pol = calloc(1, sizeof(*pol));
	struct kw w = { 0 };
	int ret = 0;

	if (!pol)
		return -ENOMEM;
	atomic_init(&pol->refs, 1);
	c->pv->policy = c->pol = pol;
	pol->arena = c->par = arena_new();
	policy_key(c, &w);
	pol->key = w.buf;
	pol->nkey = w.n;
	if (!pol->arena || w.err)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !ret; i++)
		ret = steps[i](c);
	pol->atoms = c->pv->atoms;
	pol->natoms = c->pv->natoms;
	c->pv->atoms = NULL;
	c->pv->natoms = 0;
	c->atoms_cap = 0;
	return ret;
}

/*
 * The plan starts its atoms with a copy of the state's: NPORT atoms, from endpoints, go
 * after them, and are looked up among themselves alone (their texts start with "N", never
 * equal to a SEL or BLOCK text).
 */
static int policy_adopt(struct cc *c)
{
	const struct plan_policy *pol = c->pol;

	hmap_free(&c->atom_by_canon);
	c->atom_by_canon = (struct hmap){ 0 };
	c->pv->atoms = malloc((pol->natoms + 1) * sizeof(*pol->atoms));
	if (!c->pv->atoms)
		return -ENOMEM;
	if (pol->natoms)	/* none without policies: atoms is NULL then */
		memcpy(c->pv->atoms, pol->atoms, pol->natoms * sizeof(*pol->atoms));
	c->pv->natoms = pol->natoms;
	c->atoms_cap = pol->natoms + 1;
	c->pv->target_atom = pol->target_atom;
	memcpy(c->pv->rule_base, pol->rule_base, sizeof(pol->rule_base));
	memcpy(c->pv->rule_peers, pol->rule_peers, sizeof(pol->rule_peers));
	return 0;
}

/* The policy state: prev's when it was built from the same input, else a new one. */
static int policy_take(struct cc *c)
{
	const struct plan_priv *pp = c->prev ? c->prev->priv : NULL;
	struct plan_policy *pol = pp ? pp->policy : NULL;
	int ret;

	if (pol && policy_fits(c, pol)) {
		atomic_fetch_add(&pol->refs, 1);
		c->pv->policy = c->pol = pol;
	} else if ((ret = policy_build(c))) {
		return ret;
	}
	return policy_adopt(c);
}

/* ---- entry points ---- */

static void cc_free(struct cc *c)
{
	hmap_free(&c->ns_by_name);
	hmap_free(&c->cond_by_canon);
	hmap_free(&c->atom_by_canon);
	hmap_free(&c->ident_by_sig);
	hmap_free(&c->kind_by_hash);
	free(c->nss), free(c->seg_ident[0]), free(c->seg_ident[1]);
	free(c->kinds), free(c->kind_atoms.v);
	free(c->scratch.v), free(c->base.v);
	free(c->id_of), free(c->ai_off), free(c->ai);
	for (int s = 0; s < 4; s++)
		free(c->ev[s].v);
}

static int compile_steps(struct cc *c)
{
	int (*const steps[])(struct cc *) = {
		ns_gather, policy_take, segs_intern, addrs_build,
		ids_assign, isolation, atom_idents, elements, nets_build,
	};
	/* Never NULL, so copies of zero atoms from them stay defined. */
	int ret = u32_push(&c->scratch, 0) || u32_push(&c->base, 0) ||
		  u32_push(&c->kind_atoms, 0) ? -ENOMEM : 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !ret; i++)
		ret = steps[i](c);
	if (!ret)
		ret = addrs_finish(c);
	if (!ret)
		ret = idents_sort(c);
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

void moat_plan_free(struct moat_plan *plan)
{
	struct plan_priv *pv;

	if (!plan)
		return;
	pv = plan->priv;
	if (pv) {
		policy_unref(pv->policy);
		arena_free(pv->arena);
		free(pv->atoms);
		free(pv->ids);
		free(pv);
	}
	free(plan->idents), free(plan->addrs), free(plan->nets), free(plan->endpoint_ident);
	free(plan->allow_in), free(plan->allow_in_any), free(plan->allow_out);
	free(plan->allow_out_any);
	free(plan);
}
