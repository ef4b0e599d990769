/*
 * The cluster room (cluster.h): on the loop, etcd's keys become the store's cluster source,
 * the nodes table and policy sets; the set in force's local endpoints become keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "cluster/publish.h"
#include "cluster/watch.h"
#include "cluster/wire.h"
#include "log.h"

#define KEY_MAX 1024
/* Refusals logged per second at most (each is counted). */
#define REFUSED_LOG_PER_S 10

/* Another node (or this one), as etcd describes it. */
struct rnode {
	char *name;
	bool record, alive;
	struct wire_node rec;
	struct moat_cidr *ok;		/* its subnets that overlap no local one: managed here */
	size_t nok;
	struct moat_cidr *refused;	/* those that do */
	size_t nrefused;
	struct wire_alive hb;
	uint64_t heard_ms;		/* loop_now_ms when its heartbeat last changed */
	int64_t endpoints;		/* its endpoints in the store's cluster source */
	bool seen;			/* in the snapshot being applied */
};

struct cluster {
	const struct config *cfg;
	struct epstore *store;
	cluster_changed_fn changed;
	cluster_policies_fn policies;
	void *data;
	struct loop *loop;
	struct etcd_opts eo;
	char host[WIRE_MAX_HOST + 1];
	char *stale_prefix;
	struct publish *pub;
	struct watch *watch;
	struct rnode **nodes;		/* sorted by name */
	size_t nnodes;
	bool synced, waited, watch_up, ready_sent;
	uint64_t started_ms;
	int64_t revision;		/* the last revision applied */
	int64_t policy_rev_etcd;	/* the policies key's mod_revision (0: absent) */
	int64_t policy_rev;		/* in force */
	bool policy_refused;		/* etcd's set is not the one in force: it was refused */
	int64_t nlocal;			/* endpoints this node publishes */
	uint64_t refused, snapshots, events;
	char last_refused[320];
	uint64_t log_second, log_count;
};

/* ---- the host id: who runs this node (wire.h: alive/NODE) ---- */

/* <state-dir>/node-id, made once (16 random bytes in hex); a restart keeps it, so the same
 * host may take its name back while its old lease lives. */
static int host_id(const struct config *cfg, char *out, size_t len)
{
	char path[4096], buf[WIRE_MAX_HOST + 1] = "";
	unsigned char rnd[16];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/node-id", cfg->state_dir);
	mkdir(cfg->state_dir, 0700);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n >= 8) {
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(out, len, "%s", buf);
		return 0;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, rnd, sizeof(rnd)) : -1;
	if (fd >= 0)
		close(fd);
	if (n != sizeof(rnd))
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
	snprintf(out, len, "%s", buf);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
		log_warn("cannot keep the host id in %s (%s): a restart of this moatd must wait "
			 "for its old lease to expire", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- nodes ---- */

static long node_pos(const struct cluster *c, const char *name, bool *found)
{
	size_t lo = 0, hi = c->nnodes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(c->nodes[mid]->name, name);

		if (!r)
			return *found = true, (long)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return (long)lo;
}

static struct rnode *node_find(const struct cluster *c, const char *name)
{
	bool found;
	long i = node_pos(c, name, &found);

	return found ? c->nodes[i] : NULL;
}

static struct rnode *node_get(struct cluster *c, const char *name)
{
	bool found;
	long i = node_pos(c, name, &found);
	struct rnode *n, **v;

	if (found)
		return c->nodes[i];
	n = calloc(1, sizeof(*n));
	v = realloc(c->nodes, (c->nnodes + 1) * sizeof(*v));
	if (v)
		c->nodes = v;
	if (!n || !v || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	memmove(&v[i + 1], &v[i], (c->nnodes - (size_t)i) * sizeof(*v));
	v[i] = n;
	c->nnodes++;
	return n;
}

static void node_drop(struct cluster *c, struct rnode *n)
{
	bool found;
	long i = node_pos(c, n->name, &found);

	if (found) {
		memmove(&c->nodes[i], &c->nodes[i + 1], (c->nnodes - (size_t)i - 1) * sizeof(*c->nodes));
		c->nnodes--;
	}
	wire_node_free(&n->rec);
	free(n->ok);
	free(n->refused);
	free(n->name);
	free(n);
}

static bool is_self(const struct cluster *c, const char *node)
{
	return !strcmp(node, c->cfg->node_name);
}

/* Does a overlap any subnet of the local sources (runtime, file)? */
static bool overlaps_local(const struct cluster *c, const struct moat_cidr *a)
{
	for (int src = EPSOURCE_RUNTIME; src <= EPSOURCE_FILE; src++) {
		size_t n;
		const struct moat_cidr *v = epstore_subnets_of(c->store, src, &n);

		for (size_t i = 0; i < n; i++)
			if (moat_cidr_contains(&v[i], a) || moat_cidr_contains(a, &v[i]))
				return true;
	}
	return false;
}

static bool cidr_in(const struct moat_cidr *v, size_t n, const struct moat_cidr *a)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&v[i], a, sizeof(*a)))
			return true;
	return false;
}

/* The node's subnets that it may have: none that overlaps a local one. Each such subnet is
 * logged when it starts to overlap (every Docker node has the same default bridge, which
 * never leaves its node: once, not at every commit). */
static void node_ok_subnets(struct cluster *c, struct rnode *n, struct moat_cidr *refused)
{
	const struct moat_cidr *old = n->refused;
	size_t nold = n->nrefused;
	char buf[64];

	n->refused = refused;
	n->nok = 0, n->nrefused = 0;
	for (size_t i = 0; i < n->rec.nsubnets; i++) {
		const struct moat_cidr *s = &n->rec.subnets[i];

		if (is_self(c, n->name) || !overlaps_local(c, s)) {
			n->ok[n->nok++] = *s;
			continue;
		}
		if (!cidr_in(old, nold, s))
			log_info("etcd: node %s's subnet %s overlaps this node's own: not managed "
				 "here, its addresses refused", n->name,
				 moat_cidr_format(s, buf, sizeof(buf)));
		n->refused[n->nrefused++] = *s;
	}
	free((void *)old);
}

/* Every other node's subnets are the cluster source's managed subnets. */
static int managed_update(struct cluster *c)
{
	size_t total = 0, k = 0;
	struct moat_cidr *v;
	int ret;

	for (size_t i = 0; i < c->nnodes; i++)
		total += is_self(c, c->nodes[i]->name) ? 0 : c->nodes[i]->nok;
	if (!(v = calloc(total + 1, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < c->nnodes; i++)
		for (size_t j = 0; !is_self(c, c->nodes[i]->name) && j < c->nodes[i]->nok; j++)
			v[k++] = c->nodes[i]->ok[j];
	ret = epstore_subnets(c->store, EPSOURCE_CLUSTER, v, k);
	free(v);
	return ret;
}

/* ---- refusals ---- */

static void refuse(struct cluster *c, const struct etcd_kv *kv, const char *why)
{
	uint64_t s = loop_now_ms() / 1000;

	c->refused++;
	snprintf(c->last_refused, sizeof(c->last_refused), "%.*s: %s",
		 (int)(kv->klen > 160 ? 160 : kv->klen), kv->key, why);
	if (s != c->log_second)
		c->log_second = s, c->log_count = 0;
	if (c->log_count++ < REFUSED_LOG_PER_S)
		log_warn("etcd: refused %s (the rest goes on)", c->last_refused);
}

/* ---- endpoints of other nodes ---- */

/* Every address in one of the node's subnets. */
static int endpoint_check(const struct rnode *n, const struct moat_endpoint *e, char *err,
			  size_t errlen)
{
	char buf[64];

	if (!n || !n->record)
		return snprintf(err, errlen, "node %s has no record (nodes/%s)", e->node, e->node),
		       -EINVAL;
	for (size_t i = 0; i < e->nips; i++) {
		struct moat_cidr a = { .family = e->ips[i].family,
				       .plen = e->ips[i].family == AF_INET ? 32 : 128 };
		bool in = false;

		memcpy(a.addr, e->ips[i].a, sizeof(a.addr));
		for (size_t k = 0; k < n->nok && !in; k++)
			in = moat_cidr_contains(&n->ok[k], &a);
		if (!in)
			return snprintf(err, errlen, "address %s is outside node %s's subnets",
					moat_addr_format(&e->ips[i], buf, sizeof(buf)), e->node), -EINVAL;
	}
	return 0;
}

/* Decodes and checks the endpoint of key k; 0 and *w, or -EINVAL (err says why). */
static int endpoint_take(struct cluster *c, const struct wire_key *k, const struct etcd_kv *kv,
			 struct wire_endpoint *w, char *err, size_t errlen)
{
	int ret = wire_endpoint_decode(k, kv->value, kv->vlen, w, err, errlen);

	if (!ret && (ret = endpoint_check(node_find(c, k->node), &w->e, err, errlen)))
		wire_endpoint_free(w);
	return ret;
}

static void qualified(const struct wire_key *k, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%s", k->name, k->node);
}

/* The store loses the endpoint of key k (when it had it). */
static bool endpoint_gone(struct cluster *c, const struct wire_key *k)
{
	char name[2 * WIRE_MAX_NAME + 2];
	struct rnode *n = node_find(c, k->node);

	qualified(k, name, sizeof(name));
	if (!epstore_has(c->store, EPSOURCE_CLUSTER, k->ns, name))
		return false;
	if (epstore_del(c->store, EPSOURCE_CLUSTER, k->ns, name))
		log_error("etcd: out of memory removing %s/%s", k->ns, name);
	if (n)
		n->endpoints--;
	return true;
}

static bool endpoint_put(struct cluster *c, const struct wire_key *k, const struct etcd_kv *kv)
{
	struct wire_endpoint w;
	struct rnode *n;
	char err[256];
	bool had;

	if (is_self(c, k->node))
		return false;	/* ours come from the local sources */
	if (endpoint_take(c, k, kv, &w, err, sizeof(err))) {
		refuse(c, kv, err);
		return endpoint_gone(c, k);
	}
	had = epstore_has(c->store, EPSOURCE_CLUSTER, w.e.namespace, w.e.name);
	if (epstore_put(c->store, EPSOURCE_CLUSTER, &w.e))
		log_error("etcd: out of memory taking %s/%s", w.e.namespace, w.e.name);
	else if (!had && (n = node_find(c, k->node)))
		n->endpoints++;
	wire_endpoint_free(&w);
	return true;
}

/* ---- node records and heartbeats ---- */

static bool cidrs_same(const struct moat_cidr *a, size_t na, const struct moat_cidr *b, size_t nb)
{
	return na == nb && (!na || !memcmp(a, b, na * sizeof(*a)));
}

/* The node's subnets that are managed here, computed again (its record, or the local
 * subnets, changed). Its endpoints may no longer fit: then etcd is listed again. True when
 * the managed subnets changed. */
static bool node_recheck(struct cluster *c, struct rnode *n, bool listing)
{
	struct moat_cidr *old = n->ok;
	size_t nold = n->nok;
	bool same;

	struct moat_cidr *refused = calloc(n->rec.nsubnets + 1, sizeof(*refused));

	n->ok = calloc(n->rec.nsubnets + 1, sizeof(*n->ok));
	if (n->ok && refused) {
		node_ok_subnets(c, n, refused);
	} else {
		free(refused);
		n->nok = 0;
		log_error("etcd: out of memory taking node %s's record", n->name);
	}
	same = cidrs_same(old, nold, n->ok, n->nok);
	free(old);
	if (same)
		return false;
	if (managed_update(c))
		log_error("etcd: out of memory updating the managed subnets");
	if (!listing && n->endpoints) {
		log_info("etcd: node %s's subnets changed; listing its endpoints again", n->name);
		watch_relist(c->watch);
	}
	return true;
}

/* The node's record is rec now (taken; NULL: none). */
static bool record_set(struct cluster *c, struct rnode *n, struct wire_node *rec, bool listing)
{
	wire_node_free(&n->rec);
	n->record = rec != NULL;
	if (rec)
		n->rec = *rec;
	return node_recheck(c, n, listing);
}

static void node_tidy(struct cluster *c, struct rnode *n)
{
	if (!n->record && !n->alive && !n->endpoints)
		node_drop(c, n);
}

static bool record_put(struct cluster *c, const struct wire_key *k, const struct etcd_kv *kv,
		       bool listing)
{
	struct rnode *n = node_get(c, k->node);
	struct wire_node rec;
	char err[256];

	if (!n)
		return false;
	n->seen = true;
	if (wire_node_decode(k->node, kv->value, kv->vlen, &rec, err, sizeof(err))) {
		refuse(c, kv, err);
		return record_set(c, n, NULL, listing);
	}
	if (!n->record)
		log_msg(listing ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "etcd: node %s (%zu subnets)",
			k->node, rec.nsubnets);
	return record_set(c, n, &rec, listing);
}

static void alive_put(struct cluster *c, const struct wire_key *k, const struct etcd_kv *kv)
{
	struct rnode *n = node_get(c, k->node);
	char err[256];

	if (!n)
		return;
	n->seen = true;
	if (wire_alive_decode(kv->value, kv->vlen, &n->hb, err, sizeof(err))) {
		refuse(c, kv, err);
		n->alive = false;
		return;
	}
	if (!n->alive && !is_self(c, k->node))
		log_debug("etcd: node %s is alive (lease %lld)", k->node, (long long)n->hb.lease);
	n->alive = true;
	n->heard_ms = loop_now_ms();
}

static void alive_del(struct cluster *c, const struct wire_key *k)
{
	struct rnode *n = node_find(c, k->node);

	if (!n)
		return;
	if (n->alive && !is_self(c, k->node))
		log_warn("etcd: node %s's lease is gone (stopped, or silent for %llds): its "
			 "endpoints go; its subnets stay closed", k->node, (long long)n->hb.ttl);
	n->alive = false;
	node_tidy(c, n);
}

static bool record_del(struct cluster *c, const struct wire_key *k)
{
	struct rnode *n = node_find(c, k->node);
	bool changed;

	if (!n)
		return false;
	log_info("etcd: node %s's record is deleted: its subnets are no longer managed", k->node);
	changed = record_set(c, n, NULL, false);
	node_tidy(c, n);
	return changed;
}

/* ---- policies ---- */

static void policies_apply(struct cluster *c, const struct etcd_kv *kv)
{
	struct moat_policy_files f = { 0 };
	struct moat_diags diags = { 0 };
	struct moat_policy_set *ps = NULL;
	int64_t rev = kv ? kv->mod_rev : 0;
	char err[256];
	int ret = 0;

	if (rev == c->policy_rev_etcd && (rev || c->policy_rev == 0) && c->synced)
		return;
	c->policy_rev_etcd = rev;
	if (!c->cfg->policies_from_etcd)
		return;
	if (kv && (ret = wire_policies_decode(kv->value, kv->vlen, &f, err, sizeof(err))))
		refuse(c, kv, err);
	if (!ret)
		ret = moat_policy_set_parse_files(&f, &ps, &diags);
	moat_policy_files_free(&f);
	if (ret) {
		log_error("etcd: the policy set of revision %lld is refused; the running policy "
			  "(revision %lld) stays in force", (long long)rev, (long long)c->policy_rev);
		log_diags(&diags);
		c->policy_refused = true;
	}
	moat_diags_free(&diags);
	if (!ret)
		c->policy_refused = c->policies(c->data, ps, rev) != 0;
}

void cluster_policies_applied(struct cluster *c, int64_t revision)
{
	c->policy_rev = revision;
	publish_heartbeat(c->pub, c->policy_rev, c->nlocal);
}

/* ---- what the watch brings ---- */

/* One put; true when the store may have changed. */
static bool kv_put(struct cluster *c, const struct etcd_kv *kv, bool listing)
{
	struct wire_key k;

	if (wire_key_parse(c->cfg->etcd_prefix, kv->key, kv->klen, &k))
		return false;	/* not one of Moat's keys: another program's business */
	switch (k.kind) {
	case WIRE_KEY_NODE:
		return record_put(c, &k, kv, listing);
	case WIRE_KEY_ALIVE:
		alive_put(c, &k, kv);
		return false;
	case WIRE_KEY_ENDPOINT:
		return endpoint_put(c, &k, kv);
	case WIRE_KEY_POLICIES:
		policies_apply(c, kv);
		return false;
	}
	return false;
}

static bool kv_del(struct cluster *c, const struct etcd_kv *kv)
{
	struct wire_key k;

	if (wire_key_parse(c->cfg->etcd_prefix, kv->key, kv->klen, &k))
		return false;
	switch (k.kind) {
	case WIRE_KEY_NODE:
		return record_del(c, &k);
	case WIRE_KEY_ALIVE:
		alive_del(c, &k);
		return false;
	case WIRE_KEY_ENDPOINT:
		return !is_self(c, k.node) && endpoint_gone(c, &k);
	case WIRE_KEY_POLICIES:
		policies_apply(c, NULL);
		return false;
	}
	return false;
}

/* The endpoints of a snapshot that pass, into set; each node's count anew. */
static int snapshot_endpoints(struct cluster *c, const struct etcd_kvs *kvs,
			      struct moat_endpoint_set *set)
{
	int ret = 0;

	for (size_t i = 0; i < c->nnodes; i++)
		c->nodes[i]->endpoints = 0;
	for (size_t i = 0; i < kvs->n && !ret; i++) {
		struct wire_endpoint w;
		struct wire_key k;
		struct rnode *n;
		char err[256];

		if (wire_key_parse(c->cfg->etcd_prefix, kvs->v[i].key, kvs->v[i].klen, &k) ||
		    k.kind != WIRE_KEY_ENDPOINT || is_self(c, k.node))
			continue;
		if (endpoint_take(c, &k, &kvs->v[i], &w, err, sizeof(err))) {
			refuse(c, &kvs->v[i], err);
			continue;
		}
		ret = moat_endpoint_set_add(set, &w.e);
		if (!ret && (n = node_find(c, k.node)))
			n->endpoints++;
		wire_endpoint_free(&w);
	}
	return ret == -EEXIST ? 0 : ret;
}

/* The whole state at one revision: nodes first (endpoints are checked against them). */
static bool snapshot_apply(struct cluster *c, const struct etcd_kvs *kvs)
{
	struct moat_endpoint_set *set = moat_endpoint_set_new();
	const struct etcd_kv *pol = NULL;
	struct wire_key k;
	int ret = set ? 0 : -ENOMEM;

	for (size_t i = 0; i < c->nnodes; i++)
		c->nodes[i]->seen = false;
	for (size_t i = 0; i < kvs->n; i++) {
		if (wire_key_parse(c->cfg->etcd_prefix, kvs->v[i].key, kvs->v[i].klen, &k))
			continue;
		if (k.kind == WIRE_KEY_NODE || k.kind == WIRE_KEY_ALIVE)
			kv_put(c, &kvs->v[i], true);
		else if (k.kind == WIRE_KEY_POLICIES)
			pol = &kvs->v[i];
	}
	for (size_t i = c->nnodes; i-- > 0;)
		if (!c->nodes[i]->seen)
			record_set(c, c->nodes[i], NULL, true), c->nodes[i]->alive = false,
			node_drop(c, c->nodes[i]);
	if (!ret)
		ret = snapshot_endpoints(c, kvs, set);
	if (!ret)
		ret = epstore_replace(c->store, EPSOURCE_CLUSTER, set);
	if (ret)
		log_error("etcd: out of memory taking the list; the next list tries again");
	moat_endpoint_set_free(set);
	c->snapshots++;
	log_info("etcd: listed revision %lld: %zu keys, %zu nodes, %zu endpoints of other "
		 "nodes", (long long)kvs->revision, kvs->n, c->nnodes,
		 epstore_count(c->store, EPSOURCE_CLUSTER));
	policies_apply(c, pol);
	return true;
}

/* One message; true when the store may have changed. */
static bool msg_apply(struct cluster *c, const struct watch_msg *m)
{
	bool changed = false;

	switch (m->kind) {
	case WATCH_SNAPSHOT:
		changed = snapshot_apply(c, &m->kvs);
		c->synced = true;
		break;
	case WATCH_EVENTS:
		c->events += m->nevents;
		for (size_t i = 0; i < m->nevents; i++)
			changed |= m->events[i].kind == ETCD_EVENT_PUT ?
				   kv_put(c, &m->events[i].kv, false) : kv_del(c, &m->events[i].kv);
		break;
	case WATCH_UP:
	case WATCH_DOWN:
		c->watch_up = m->kind == WATCH_UP;
		break;
	}
	if (m->revision > c->revision)
		c->revision = m->revision;
	return changed;
}

static void watch_ready(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct cluster *c = data;
	uint64_t t0 = loop_now_us();
	struct watch_msg *m = watch_take(c->watch);
	bool changed = false;

	for (struct watch_msg *it = m; it; it = it->next)
		changed |= msg_apply(c, it);
	watch_msg_free(m);
	if (changed)
		c->changed(c->data, t0);
}

/* The publisher's state changed: a silent stream may hide the same outage. */
static void publish_ready_fd(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct cluster *c = data;
	struct publish_state st;

	publish_ack(c->pub);
	publish_state(c->pub, &st);
	if (!st.up && c->watch_up)
		watch_kick(c->watch);
}

/* ---- publishing this node's endpoints ---- */

static bool endpoint_key(const struct cluster *c, const struct moat_endpoint *e, char *buf,
			 size_t len)
{
	struct wire_key k = { .kind = WIRE_KEY_ENDPOINT };

	if (strlen(e->namespace) > WIRE_MAX_NAME || strlen(e->name) > WIRE_MAX_NAME)
		return false;
	strcpy(k.node, c->cfg->node_name);
	strcpy(k.ns, e->namespace);
	strcpy(k.name, e->name);
	return !wire_key_format(c->cfg->etcd_prefix, &k, buf, len);
}

static void local_put(struct cluster *c, const struct moat_endpoint *e)
{
	char key[KEY_MAX], err[256];
	char *value;

	if (!endpoint_key(c, e, key, sizeof(key))) {
		log_warn("etcd: %s/%s is not published: its name cannot be a key segment "
			 "(a '/', or over %d bytes)", e->namespace, e->name, WIRE_MAX_NAME);
		return;
	}
	if (!(value = wire_endpoint_encode(e, err, sizeof(err)))) {
		log_warn("etcd: %s/%s is not published: %s", e->namespace, e->name, err);
		publish_del(c->pub, key);
		return;
	}
	if (publish_put(c->pub, key, value, true))
		log_error("etcd: out of memory publishing %s/%s", e->namespace, e->name);
}

static void local_del(struct cluster *c, const struct moat_endpoint *e)
{
	char key[KEY_MAX];

	if (endpoint_key(c, e, key, sizeof(key)) && publish_del(c->pub, key))
		log_error("etcd: out of memory withdrawing %s/%s", e->namespace, e->name);
}

void cluster_publish_change(struct cluster *c, const struct moat_endpoint_set *es,
			    const size_t *gone, size_t ngone, const struct moat_endpoint *come,
			    size_t ncome)
{
	for (size_t i = 0; i < ngone; i++)
		if (!es->v[gone[i]].node)
			local_del(c, &es->v[gone[i]]), c->nlocal--;
	for (size_t i = 0; i < ncome; i++)
		if (!come[i].node)
			local_put(c, &come[i]), c->nlocal++;
	publish_heartbeat(c->pub, c->policy_rev, c->nlocal);
}

static void record_publish(struct cluster *c)
{
	struct wire_node rec = { 0 };
	struct wire_key k = { .kind = WIRE_KEY_NODE };
	size_t nr, nf;
	const struct moat_cidr *r = epstore_subnets_of(c->store, EPSOURCE_RUNTIME, &nr);
	const struct moat_cidr *f = epstore_subnets_of(c->store, EPSOURCE_FILE, &nf);
	char key[KEY_MAX], *value = NULL;

	snprintf(rec.host, sizeof(rec.host), "%s", c->host);
	strcpy(k.node, c->cfg->node_name);
	if ((rec.subnets = calloc(nr + nf + 1, sizeof(*rec.subnets)))) {
		if (nr)
			memcpy(rec.subnets, r, nr * sizeof(*r));
		if (nf)
			memcpy(rec.subnets + nr, f, nf * sizeof(*f));
		rec.nsubnets = nr + nf;
		value = wire_node_encode(c->cfg->node_name, &rec);
	}
	if (!value || wire_key_format(c->cfg->etcd_prefix, &k, key, sizeof(key)) ||
	    publish_put(c->pub, key, value, false))
		log_error("etcd: cannot publish this node's record (out of memory)");
	wire_node_free(&rec);
}

void cluster_publish_whole(struct cluster *c, const struct moat_endpoint_set *old,
			   const struct moat_endpoint_set *es)
{
	c->nlocal = 0;
	for (size_t i = 0; old && i < old->n; i++)
		if (!old->v[i].node &&
		    moat_endpoint_set_find(es, old->v[i].namespace, old->v[i].name) < 0)
			local_del(c, &old->v[i]);
	for (size_t i = 0; i < es->n; i++)
		if (!es->v[i].node)
			local_put(c, &es->v[i]), c->nlocal++;
	record_publish(c);
	publish_heartbeat(c->pub, c->policy_rev, c->nlocal);
	if (!c->ready_sent)
		publish_ready(c->pub, c->stale_prefix);
	c->ready_sent = true;
	/* the local subnets may have changed: other nodes' that overlap them are refused */
	for (size_t i = 0; i < c->nnodes; i++)
		node_recheck(c, c->nodes[i], false);
}

/* ---- life ---- */

/* The node's name, at once: another host's is fatal, etcd away is not (claimed later). */
static int claim(struct cluster *c, char *err, size_t errlen)
{
	int ret = publish_claim(c->pub, err, errlen);

	if (ret == -EEXIST) {
		log_error("etcd: %s", err);
		return ret;
	}
	if (ret)
		log_warn("etcd: %s; enforcing without it until it answers (the node's name is "
			 "claimed then)", err[0] ? err : strerror(-ret));
	else
		log_info("etcd: node %s (host id %s) through %s", c->cfg->node_name, c->host,
			 c->cfg->etcd);
	return 0;
}

int cluster_new(const struct config *cfg, struct epstore *store, cluster_changed_fn changed,
		cluster_policies_fn policies, void *data, struct cluster **out)
{
	struct cluster *c = calloc(1, sizeof(*c));
	struct publish_opts po;
	char err[768] = "";
	int ret = 0;

	if (!c)
		return -ENOMEM;
	*c = (struct cluster){ .cfg = cfg, .store = store, .changed = changed,
			       .policies = policies, .data = data, .started_ms = loop_now_ms() };
	c->eo = (struct etcd_opts){ cfg->etcd, cfg->etcd_cacert, cfg->etcd_cert, cfg->etcd_key };
	ret = host_id(cfg, c->host, sizeof(c->host));
	if (!ret && asprintf(&c->stale_prefix, "%sendpoints/%s/", cfg->etcd_prefix,
			     cfg->node_name) < 0)
		ret = -ENOMEM, c->stale_prefix = NULL;
	po = (struct publish_opts){ &c->eo, cfg->etcd_prefix, cfg->node_name, c->host,
				    cfg->etcd_lease_ttl };
	if (!ret && (ret = publish_new(&po, &c->pub, err, sizeof(err))))
		log_error("--etcd %s: %s", cfg->etcd, err[0] ? err : strerror(-ret));
	if (!ret)
		ret = claim(c, err, sizeof(err));
	if (ret) {
		cluster_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* Without etcd's state for a while: a node whose policies are its own goes on. */
static void start_wait_tick(struct loop *loop, void *data)
{
	struct cluster *c = data;

	if (!c->synced)
		c->changed(c->data, loop_now_us());
}

int cluster_start(struct cluster *c, struct loop *loop)
{
	char err[512] = "";
	int ret = publish_start(c->pub);

	c->loop = loop;
	if (!ret)
		ret = watch_start(&c->eo, c->cfg->etcd_prefix, &c->watch, err, sizeof(err));
	if (!ret)
		ret = loop_fd_add(loop, watch_fd(c->watch), EPOLLIN, watch_ready, c);
	if (!ret)
		ret = loop_fd_add(loop, publish_fd(c->pub), EPOLLIN, publish_ready_fd, c);
	if (!ret && !c->cfg->policies_from_etcd)
		ret = loop_timer_add(loop, CLUSTER_START_WAIT_MS + 10, 0, start_wait_tick, c) < 0 ?
		      -ENOMEM : 0;
	return ret;
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	if (c->loop && c->watch)
		loop_fd_del(c->loop, watch_fd(c->watch));
	if (c->loop && c->pub)
		loop_fd_del(c->loop, publish_fd(c->pub));
	watch_stop(c->watch);
	publish_stop(c->pub);
	while (c->nnodes)
		node_drop(c, c->nodes[c->nnodes - 1]);
	free(c->nodes);
	free(c->stale_prefix);
	free(c);
}

bool cluster_ready(struct cluster *c)
{
	if (c->synced || c->waited)
		return true;
	if (c->cfg->policies_from_etcd || loop_now_ms() - c->started_ms < CLUSTER_START_WAIT_MS)
		return false;
	log_warn("etcd: no answer in %d ms; enforcing without other nodes' endpoints until it "
		 "answers", CLUSTER_START_WAIT_MS);
	c->waited = true;
	return true;
}

/* ---- looking at it ---- */

/* The TTL a node's lease has left: its last heartbeat renewed it (a guess for others). */
static int64_t ttl_left(const struct cluster *c, const struct rnode *n, uint64_t now)
{
	struct publish_state st;
	int64_t left;

	if (is_self(c, n->name)) {
		publish_state(c->pub, &st);
		left = st.lease ? st.ttl - (int64_t)(now - st.keepalive_ms) / 1000 : 0;
	} else {
		left = n->alive ? n->hb.ttl - (int64_t)(now - n->heard_ms) / 1000 : 0;
	}
	return left > 0 ? left : 0;
}

static json_t *subnets_json(const struct wire_node *rec)
{
	json_t *a = json_array();
	char buf[64];

	for (size_t i = 0; a && i < rec->nsubnets; i++)
		json_array_append_new(a, json_string(moat_cidr_format(&rec->subnets[i], buf,
								      sizeof(buf))));
	return a;
}

static json_t *node_json(const struct cluster *c, const struct rnode *n, uint64_t now)
{
	bool self = is_self(c, n->name);

	return json_pack("{s:s,s:b,s:s,s:o,s:I,s:b,s:s,s:I,s:I,s:I,s:I}", "name", n->name,
			 "self", self, "host", n->record ? n->rec.host : n->hb.host, "subnets",
			 subnets_json(&n->rec), "endpoints",
			 (json_int_t)(self ? c->nlocal : n->endpoints), "alive", n->alive, "lease",
			 n->alive ? "held" : "expired", "ttl", (json_int_t)n->hb.ttl, "ttl_left",
			 (json_int_t)ttl_left(c, n, now), "heard_ms_ago",
			 (json_int_t)(n->heard_ms ? (int64_t)(now - n->heard_ms) : -1),
			 "policy_revision", (json_int_t)n->hb.policy_rev);
}

json_t *cluster_nodes(struct cluster *c)
{
	json_t *a = json_array();
	uint64_t now = loop_now_ms();

	for (size_t i = 0; a && i < c->nnodes; i++)
		json_array_append_new(a, node_json(c, c->nodes[i], now));
	return a;
}

json_t *cluster_status(struct cluster *c)
{
	struct publish_state ps;
	struct watch_stats ws;

	publish_state(c->pub, &ps);
	watch_stats(c->watch, &ws);
	return json_pack("{s:s,s:s,s:s,s:s*,s:s*,s:s*,s:s,s:b,s:I,s:I,s:b,s:I,s:I,s:I,s:{s:b,s:b,"
			 "s:I,s:I,s:I,s:I,s:I,s:I,s:s},s:{s:b,s:I,s:I,s:I,s:I},s:{s:I,s:s}}",
			 "node", c->cfg->node_name, "host", c->host, "etcd", c->cfg->etcd,
			 "cacert", c->cfg->etcd_cacert, "cert", c->cfg->etcd_cert, "key",
			 c->cfg->etcd_key,
			 "prefix", c->cfg->etcd_prefix, "synced", c->synced, "revision",
			 (json_int_t)c->revision, "policy_revision", (json_int_t)c->policy_rev,
			 "policy_refused", c->policy_refused, "policy_revision_etcd",
			 (json_int_t)c->policy_rev_etcd, "nodes", (json_int_t)c->nnodes,
			 "remote_endpoints", (json_int_t)epstore_count(c->store, EPSOURCE_CLUSTER),
			 "publish", "up", ps.up, "conflict", ps.conflict, "lease", (json_int_t)ps.lease,
			 "ttl", (json_int_t)ps.ttl, "puts", (json_int_t)ps.puts, "deletes",
			 (json_int_t)ps.deletes, "errors", (json_int_t)ps.errors, "pending",
			 (json_int_t)ps.pending, "error", ps.error, "watch", "up", c->watch_up,
			 "snapshots", (json_int_t)ws.snapshots, "compacted", (json_int_t)ws.compacted,
			 "reconnects", (json_int_t)ws.reconnects, "events", (json_int_t)c->events,
			 "refused", "count", (json_int_t)c->refused, "last", c->last_refused);
}

void cluster_metrics(FILE *out, struct cluster *c)
{
	struct publish_state ps;
	struct watch_stats ws;

	publish_state(c->pub, &ps);
	watch_stats(c->watch, &ws);
	fprintf(out, "# HELP moat_cluster_up 1 while etcd answers this node's watch and requests\n"
		"# TYPE moat_cluster_up gauge\nmoat_cluster_up %d\n", c->watch_up && ps.up);
	fprintf(out, "# HELP moat_cluster_nodes Nodes etcd holds a record or heartbeat of\n"
		"# TYPE moat_cluster_nodes gauge\nmoat_cluster_nodes %zu\n", c->nnodes);
	fprintf(out, "# HELP moat_cluster_remote_endpoints Endpoints of other nodes in force\n"
		"# TYPE moat_cluster_remote_endpoints gauge\nmoat_cluster_remote_endpoints %zu\n",
		epstore_count(c->store, EPSOURCE_CLUSTER));
	fprintf(out, "# HELP moat_cluster_refused_total Keys refused (undecodable or outside "
		"their node's subnets)\n# TYPE moat_cluster_refused_total counter\n"
		"moat_cluster_refused_total %llu\n", (unsigned long long)c->refused);
	fprintf(out, "# HELP moat_cluster_relists_total Full lists of etcd (start, compaction)\n"
		"# TYPE moat_cluster_relists_total counter\nmoat_cluster_relists_total %llu\n",
		(unsigned long long)ws.snapshots);
	fprintf(out, "# HELP moat_cluster_policy_revision The policy set's revision in force\n"
		"# TYPE moat_cluster_policy_revision gauge\nmoat_cluster_policy_revision %lld\n",
		(long long)c->policy_rev);
}
