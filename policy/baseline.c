/*
 * The baseline store: peers interned by stable identity, flow keys over peer indexes, both in
 * open-addressing hash tables so that contains() (run for every new flow) hashes the
 * endpoint's key labels in place and allocates nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "baseline_priv.h"
#include "moat/grow.h"
#include "moat/hash.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- which labels identify an endpoint ---- */

static const char *const stable_keys[] = {
	"app", "app.kubernetes.io/name", "app.kubernetes.io/component", "component", "tier",
	"role", "service", "com.docker.compose.service", "com.docker.compose.project", "k8s-app",
	"name",
};

/* Last components (after the last '/' and '.') of keys that differ between replicas or builds. */
static const char *const instance_names[] = {
	"container-number", "oneoff", "version", "pod-template-hash", "controller-revision-hash",
	"config-hash", "pod-name", "pod-index", "uid", "controller-uid", "image", "replace",
	"depends_on", "created", "revision", "build-date", "sandbox", "id",
};

/* Prefixes of keys that are image metadata or container runtime bookkeeping. */
static const char *const instance_prefixes[] = {
	"org.opencontainers.image.", "org.label-schema.", "io.kubernetes.", "io.cri-containerd.",
	"annotation.",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static bool is_per_instance(const char *key)
{
	const char *slash = strrchr(key, '/'), *last = slash ? slash + 1 : key;
	const char *dot = strrchr(last, '.');
	size_t len;

	last = dot ? dot + 1 : last;
	len = strlen(last);
	for (size_t i = 0; i < ARRAY_SIZE(instance_prefixes); i++)
		if (!strncmp(key, instance_prefixes[i], strlen(instance_prefixes[i])))
			return true;
	return in_list(last, instance_names, ARRAY_SIZE(instance_names)) ||
	       (len >= 4 && !strcmp(last + len - 4, "hash"));
}

size_t bl_stable_keys(const char *const **out)
{
	*out = stable_keys;
	return ARRAY_SIZE(stable_keys);
}

bool bl_labels_stable(const struct moat_labels *labels)
{
	for (size_t i = 0; i < labels->n; i++)
		if (in_list(labels->v[i].key, stable_keys, ARRAY_SIZE(stable_keys)))
			return true;
	return false;
}

bool bl_label_is_key(const struct moat_labels *labels, size_t i, bool stable)
{
	const char *key = labels->v[i].key;

	return stable ? in_list(key, stable_keys, ARRAY_SIZE(stable_keys)) : !is_per_instance(key);
}

/* ---- hashing ---- */

static size_t addr_len(const struct moat_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

static bool addr_ok(const struct moat_addr *a)
{
	return a && (a->family == AF_INET || a->family == AF_INET6);
}

/* The hash of an endpoint group, over its key labels only, computed without copying them;
 * seeded, as the labels are whoever started the containers'. */
static uint64_t group_hash(const char *ns, const struct moat_labels *labels, bool all_key)
{
	bool stable = all_key || bl_labels_stable(labels);
	uint64_t h = moat_hash_str(MOAT_HASH_BASIS ^ moat_hash_seed(), ns);

	for (size_t i = 0; i < labels->n; i++) {
		if (!all_key && !bl_label_is_key(labels, i, stable))
			continue;
		h = moat_hash_str(h, labels->v[i].key);
		h = moat_hash_str(h, labels->v[i].value);
	}
	return moat_hash_fin(h);
}

static uint64_t ext_hash(const struct moat_addr *a)
{
	uint64_t h = moat_hash_bytes(MOAT_HASH_BASIS ^ moat_hash_seed() ^ 0xff, &a->family, 1);

	return moat_hash_fin(moat_hash_bytes(h, a->a, addr_len(a)));
}

/* Of four small integers: mixed (murmur3's finaliser), so that the low bits the table
 * uses spread (FNV alone left long probe runs on a million flows). */
static uint64_t flow_hash(uint32_t from, uint32_t to, uint8_t proto, uint16_t port)
{
	uint64_t h = (uint64_t)from << 32 | to;

	h ^= ((uint64_t)proto << 16 | port) * 0x9e3779b97f4a7c15ULL;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* ---- peers ---- */

static const char *ns_of(const struct moat_endpoint *e)
{
	return e->namespace ? e->namespace : MOAT_DEFAULT_NAMESPACE;
}

bool bl_peer_is(const struct bl_peer *p, const char *ns, const struct moat_labels *labels)
{
	bool stable = bl_labels_stable(labels);
	size_t j = 0;

	if (!p->ns || strcmp(p->ns, ns))
		return false;
	for (size_t i = 0; i < labels->n; i++) {
		if (!bl_label_is_key(labels, i, stable))
			continue;
		if (j == p->labels.n || strcmp(p->labels.v[j].key, labels->v[i].key) ||
		    strcmp(p->labels.v[j].value, labels->v[i].value))
			return false;
		j++;
	}
	return j == p->labels.n;
}

static bool peer_is_addr(const struct bl_peer *p, const struct moat_addr *a)
{
	return !p->ns && p->addr.family == a->family && !memcmp(p->addr.a, a->a, addr_len(a));
}

/* What a lookup is for: an endpoint's group or an external address. */
struct peer_q {
	const struct moat_endpoint *e;
	const struct moat_addr *a;
	uint64_t hash;
};

static int peer_q_init(struct peer_q *q, const struct moat_endpoint *e, const struct moat_addr *a)
{
	*q = (struct peer_q){ .e = e, .a = e ? NULL : a };
	if (e)
		q->hash = group_hash(ns_of(e), &e->labels, false);
	else if (addr_ok(a))
		q->hash = ext_hash(a);
	else
		return -EINVAL;
	return 0;
}

static bool peer_q_match(const struct peer_q *q, const struct bl_peer *p)
{
	if (p->hash != q->hash)
		return false;
	return q->e ? bl_peer_is(p, ns_of(q->e), &q->e->labels) : peer_is_addr(p, q->a);
}

/* The slot where q's peer is, or the free slot where it would go. */
static size_t peer_slot(const struct moat_baseline *b, const struct peer_q *q)
{
	size_t mask = b->npeer_slots - 1, s = q->hash & mask;

	while (b->peer_slots[s] != BL_EMPTY && !peer_q_match(q, &b->peers[b->peer_slots[s]]))
		s = (s + 1) & mask;
	return s;
}

static long peer_find(const struct moat_baseline *b, const struct peer_q *q)
{
	uint32_t i;

	if (!b->npeer_slots)
		return -1;
	i = b->peer_slots[peer_slot(b, q)];
	return i == BL_EMPTY ? -1 : (long)i;
}

/* Rebuilds a slot table of n slots (a power of two) for count items hashed by hash_of. */
static int slots_rebuild(uint32_t **slots, size_t *nslots, size_t count,
			 uint64_t (*hash_of)(const struct moat_baseline *, size_t),
			 const struct moat_baseline *b)
{
	size_t n = *nslots ? *nslots * 2 : 64;
	uint32_t *v = malloc(n * sizeof(*v));

	if (!v)
		return -ENOMEM;
	memset(v, 0xff, n * sizeof(*v));
	for (size_t i = 0; i < count; i++) {
		size_t s = hash_of(b, i) & (n - 1);

		while (v[s] != BL_EMPTY)
			s = (s + 1) & (n - 1);
		v[s] = (uint32_t)i;
	}
	free(*slots);
	*slots = v;
	*nslots = n;
	return 0;
}

static uint64_t peer_hash_at(const struct moat_baseline *b, size_t i)
{
	return b->peers[i].hash;
}

static uint64_t flow_hash_at(const struct moat_baseline *b, size_t i)
{
	const struct bl_flow *f = &b->flows[i];

	return flow_hash(f->from, f->to, f->proto, f->port);
}

static int peers_room(struct moat_baseline *b)
{
	if (grow((void **)&b->peers, b->npeers, &b->peers_cap, sizeof(*b->peers)))
		return -ENOMEM;
	if (2 * (b->npeers + 1) <= b->npeer_slots)
		return 0;
	return slots_rebuild(&b->peer_slots, &b->npeer_slots, b->npeers, peer_hash_at, b);
}

/* *v (of *cap elements of size sz) made to hold n. 0 or -ENOMEM. */
static int array_reserve(void **v, size_t *cap, size_t n, size_t sz)
{
	void *nv;

	if (n <= *cap)
		return 0;
	if (!(nv = realloc(*v, n * sz)))
		return -ENOMEM;
	*v = nv;
	*cap = n;
	return 0;
}

/* A slot table for n items at half load, when it has fewer slots. */
static int slots_reserve(uint32_t **slots, size_t *nslots, size_t count, size_t n,
			 uint64_t (*hash_of)(const struct moat_baseline *, size_t),
			 const struct moat_baseline *b)
{
	size_t want = *nslots ? *nslots : 64;

	while (want < 2 * n)
		want *= 2;
	if (want == *nslots)
		return 0;
	*nslots = want / 2;	/* slots_rebuild doubles it */
	return slots_rebuild(slots, nslots, count, hash_of, b);
}

int bl_reserve(struct moat_baseline *b, size_t flows)
{
	if (array_reserve((void **)&b->flows, &b->flows_cap, flows, sizeof(*b->flows)) ||
	    array_reserve((void **)&b->changes, &b->changes_cap, flows, sizeof(*b->changes)))
		return -ENOMEM;
	return slots_reserve(&b->flow_slots, &b->nflow_slots, b->nflows, flows, flow_hash_at, b);
}

int moat_baseline_reserve(struct moat_baseline *b, size_t flows)
{
	/* a flow may bring a peer of its own (an outside address): as many peers as flows */
	int ret = bl_reserve(b, flows);

	if (!ret)
		ret = array_reserve((void **)&b->peers, &b->peers_cap, flows, sizeof(*b->peers));
	return ret ? ret : slots_reserve(&b->peer_slots, &b->npeer_slots, b->npeers, flows,
					 peer_hash_at, b);
}

static int flows_room(struct moat_baseline *b)
{
	if (grow((void **)&b->flows, b->nflows, &b->flows_cap, sizeof(*b->flows)))
		return -ENOMEM;
	if (2 * (b->nflows + 1) <= b->nflow_slots)
		return 0;
	return slots_rebuild(&b->flow_slots, &b->nflow_slots, b->nflows, flow_hash_at, b);
}

void bl_peer_fini(struct bl_peer *p)
{
	for (size_t i = 0; i < p->labels.n; i++) {
		free(p->labels.v[i].key);
		free(p->labels.v[i].value);
	}
	free(p->labels.v);
	free(p->ns);
}

/* A deep copy of ns and the key labels of labels (all of them when all_key) into *p. */
int bl_peer_fill(struct bl_peer *p, const char *ns, const struct moat_labels *labels,
		     bool all_key)
{
	bool stable = all_key || bl_labels_stable(labels);

	*p = (struct bl_peer){ .ns = strdup(ns) };
	p->labels.v = calloc(labels->n ? labels->n : 1, sizeof(*p->labels.v));
	if (!p->ns || !p->labels.v)
		goto oom;
	for (size_t i = 0; i < labels->n; i++) {
		struct moat_label *l = &p->labels.v[p->labels.n];

		if (!all_key && !bl_label_is_key(labels, i, stable))
			continue;
		l->key = strdup(labels->v[i].key);
		l->value = strdup(labels->v[i].value);
		p->labels.n++;
		if (!l->key || !l->value)
			goto oom;
	}
	p->hash = group_hash(ns, labels, all_key);
	return 0;
oom:
	bl_peer_fini(p);
	return -ENOMEM;
}

/* Appends p (taking ownership) in the free slot s found by peer_slot. */
static uint32_t peer_append(struct moat_baseline *b, struct bl_peer *p, size_t s)
{
	b->peers[b->npeers] = *p;
	b->peer_slots[s] = (uint32_t)b->npeers;
	return (uint32_t)b->npeers++;
}

/* The index of q's peer, interned if new. 0 or -ENOMEM. */
static int peer_intern(struct moat_baseline *b, const struct peer_q *q, uint32_t *out)
{
	long i = peer_find(b, q);
	struct bl_peer p;

	if (i >= 0) {
		*out = (uint32_t)i;
		return 0;
	}
	if (peers_room(b))
		return -ENOMEM;
	if (q->e && bl_peer_fill(&p, ns_of(q->e), &q->e->labels, false))
		return -ENOMEM;
	if (!q->e)
		bl_peer_ext(&p, q->a);
	*out = peer_append(b, &p, peer_slot(b, q));
	return 0;
}

void bl_peer_ext(struct bl_peer *p, const struct moat_addr *a)
{
	*p = (struct bl_peer){ .addr = *a, .hash = ext_hash(a) };
}

int bl_peer_copy(struct bl_peer *dst, const struct bl_peer *src)
{
	if (!src->ns) {
		bl_peer_ext(dst, &src->addr);
		return 0;
	}
	return bl_peer_fill(dst, src->ns, &src->labels, true);
}

/* The slot of a peer equal to p, or the free slot where it would go. */
static size_t peer_slot_of(const struct moat_baseline *b, const struct bl_peer *p)
{
	size_t mask = b->npeer_slots - 1, s = p->hash & mask;

	while (b->peer_slots[s] != BL_EMPTY && bl_peer_cmp(p, &b->peers[b->peer_slots[s]]))
		s = (s + 1) & mask;
	return s;
}

int bl_peer_adopt(struct moat_baseline *b, struct bl_peer *p, uint32_t *out)
{
	uint32_t i = b->npeer_slots ? b->peer_slots[peer_slot_of(b, p)] : BL_EMPTY;

	if (i != BL_EMPTY) {
		bl_peer_fini(p);
		*out = i;
		return 0;
	}
	if (peers_room(b)) {
		bl_peer_fini(p);
		return -ENOMEM;
	}
	*out = peer_append(b, p, peer_slot_of(b, p));
	return 0;
}

static int labels_cmp(const struct moat_labels *a, const struct moat_labels *b)
{
	for (size_t i = 0; i < a->n && i < b->n; i++) {
		int c = strcmp(a->v[i].key, b->v[i].key);

		c = c ? c : strcmp(a->v[i].value, b->v[i].value);
		if (c)
			return c;
	}
	return (a->n > b->n) - (a->n < b->n);
}

int bl_peer_cmp(const struct bl_peer *a, const struct bl_peer *b)
{
	int c;

	if (!a->ns != !b->ns)
		return a->ns ? -1 : 1;
	if (a->ns) {
		c = strcmp(a->ns, b->ns);
		return c ? c : labels_cmp(&a->labels, &b->labels);
	}
	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	return memcmp(a->addr.a, b->addr.a, addr_len(&a->addr));
}

static int peer_idx_cmp(const void *x, const void *y, void *arg)
{
	const struct bl_peer *peers = arg;

	return bl_peer_cmp(&peers[*(const uint32_t *)x], &peers[*(const uint32_t *)y]);
}

/* rank[p]: the place of peer p in bl_peer_cmp order (peers are interned: no ties). */
static uint32_t *peer_ranks(const struct bl_view *v)
{
	uint32_t *by = malloc((v->npeers ? v->npeers : 1) * sizeof(*by));
	uint32_t *rank = malloc((v->npeers ? v->npeers : 1) * sizeof(*rank));

	if (!by || !rank) {
		free(by);
		free(rank);
		return NULL;
	}
	for (size_t i = 0; i < v->npeers; i++)
		by[i] = (uint32_t)i;
	qsort_r(by, v->npeers, sizeof(*by), peer_idx_cmp, (void *)v->peers);
	for (size_t i = 0; i < v->npeers; i++)
		rank[by[i]] = (uint32_t)i;
	free(by);
	return rank;
}

/* A flow's sort key: ranks of from and to, proto and port in one integer each. */
struct flow_key {
	uint64_t peers;
	uint32_t rest;
	uint32_t idx;
};

static int flow_key_cmp(const void *x, const void *y)
{
	const struct flow_key *a = x, *b = y;

	if (a->peers != b->peers)
		return a->peers < b->peers ? -1 : 1;
	return (a->rest > b->rest) - (a->rest < b->rest);
}

int bl_view_sorted(const struct bl_view *v, uint32_t **out)
{
	struct flow_key *keys = NULL;
	uint32_t *rank = NULL, *order = NULL;

	if (!v->nflows) {
		*out = NULL;
		return 0;
	}
	keys = malloc(v->nflows * sizeof(*keys));
	order = malloc(v->nflows * sizeof(*order));
	rank = keys && order ? peer_ranks(v) : NULL;
	if (!rank) {
		free(keys), free(order);
		return -ENOMEM;
	}
	for (size_t i = 0; i < v->nflows; i++) {
		const struct bl_flow *f = &v->flows[i];

		keys[i] = (struct flow_key){ (uint64_t)rank[f->from] << 32 | rank[f->to],
					     (uint32_t)f->proto << 16 | f->port, (uint32_t)i };
	}
	qsort(keys, v->nflows, sizeof(*keys), flow_key_cmp);
	for (size_t i = 0; i < v->nflows; i++)
		order[i] = keys[i].idx;
	free(keys), free(rank);
	*out = order;
	return 0;
}

int bl_flows_sorted(const struct moat_baseline *b, uint32_t **out)
{
	struct bl_view v = bl_view_of(b);

	return bl_view_sorted(&v, out);
}

/* ---- flows ---- */

static size_t flow_slot(const struct moat_baseline *b, uint32_t from, uint32_t to,
			uint8_t proto, uint16_t port)
{
	size_t mask = b->nflow_slots - 1, s = flow_hash(from, to, proto, port) & mask;

	for (; b->flow_slots[s] != BL_EMPTY; s = (s + 1) & mask) {
		const struct bl_flow *f = &b->flows[b->flow_slots[s]];

		if (f->from == from && f->to == to && f->proto == proto && f->port == port)
			break;
	}
	return s;
}

static struct bl_flow *flow_find(const struct moat_baseline *b, uint32_t from, uint32_t to,
				 uint8_t proto, uint16_t port)
{
	uint32_t i;

	if (!b->nflow_slots)
		return NULL;
	i = b->flow_slots[flow_slot(b, from, to, proto, port)];
	return i == BL_EMPTY ? NULL : &b->flows[i];
}

/* Room to list one more change (the list holds each flow at most once). */
static int changes_room(struct moat_baseline *b)
{
	return grow((void **)&b->changes, b->nchanges, &b->changes_cap, sizeof(*b->changes))
		       ? -ENOMEM : 0;
}

static void change_note(struct moat_baseline *b, struct bl_flow *f)
{
	if (f->changed)
		return;
	f->changed = 1;
	b->changes[b->nchanges++] = (uint32_t)(f - b->flows);
}

int bl_flow_put(struct moat_baseline *b, const struct bl_flow *f, bool *added)
{
	struct bl_flow *old = flow_find(b, f->from, f->to, f->proto, f->port);

	*added = !old;
	if (changes_room(b))
		return -ENOMEM;
	if (old) {
		old->first = f->first < old->first ? f->first : old->first;
		old->last = f->last > old->last ? f->last : old->last;
		old->count += f->count;
		change_note(b, old);
		return 0;
	}
	if (flows_room(b))
		return -ENOMEM;
	b->flow_slots[flow_slot(b, f->from, f->to, f->proto, f->port)] = (uint32_t)b->nflows;
	b->flows[b->nflows] = *f;
	b->flows[b->nflows].changed = 0;
	change_note(b, &b->flows[b->nflows++]);
	return 0;
}

/* ---- the API ---- */

int moat_baseline_new(struct moat_baseline **out)
{
	struct moat_baseline *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	*out = b;
	return 0;
}

void moat_baseline_free(struct moat_baseline *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->npeers; i++)
		bl_peer_fini(&b->peers[i]);
	free(b->peers);
	free(b->peer_slots);
	free(b->flows);
	free(b->flow_slots);
	free(b->changes);
	free(b);
}

static int queries(struct peer_q *qf, struct peer_q *qt,
		   const struct moat_endpoint *from, const struct moat_addr *from_addr,
		   const struct moat_endpoint *to, const struct moat_addr *to_addr)
{
	if (!from && !to)
		return -EINVAL;
	if (peer_q_init(qf, from, from_addr) || peer_q_init(qt, to, to_addr))
		return -EINVAL;
	return 0;
}

int moat_baseline_add(struct moat_baseline *b,
		      const struct moat_endpoint *from, const struct moat_addr *from_addr,
		      const struct moat_endpoint *to, const struct moat_addr *to_addr,
		      uint8_t proto, uint16_t port, int64_t when)
{
	struct bl_flow f = { .proto = proto, .port = moat_proto_has_ports(proto) ? port : 0,
			     .first = when, .last = when, .count = 1 };
	struct peer_q qf, qt;
	bool added;
	int ret = queries(&qf, &qt, from, from_addr, to, to_addr);

	/* Interning a peer and then failing on the flow leaves an unused peer: harmless, as
	 * peers are only written through the flows that use them. */
	if (!ret)
		ret = peer_intern(b, &qf, &f.from);
	if (!ret)
		ret = peer_intern(b, &qt, &f.to);
	if (!ret)
		ret = bl_flow_put(b, &f, &added);
	return ret ? ret : added;
}

bool moat_baseline_contains(const struct moat_baseline *b,
			    const struct moat_endpoint *from, const struct moat_addr *from_addr,
			    const struct moat_endpoint *to, const struct moat_addr *to_addr,
			    uint8_t proto, uint16_t port)
{
	struct peer_q qf, qt;
	long f, t;

	if (queries(&qf, &qt, from, from_addr, to, to_addr))
		return false;
	f = peer_find(b, &qf);
	t = f < 0 ? -1 : peer_find(b, &qt);
	if (t < 0)
		return false;
	return flow_find(b, (uint32_t)f, (uint32_t)t, proto,
			 moat_proto_has_ports(proto) ? port : 0) != NULL;
}

size_t moat_baseline_count(const struct moat_baseline *b)
{
	return b ? b->nflows : 0;
}

