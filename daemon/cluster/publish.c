/*
 * This node's side in etcd (publish.h). The loop and the thread share the table under one
 * mutex; the thread copies what it sends and never holds the mutex across a request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster/publish.h"
#include "cluster/wire.h"
#include "log.h"
#include "loop.h"
#include "moat/hash.h"

#define NBUCKETS_MIN 256

/* One key this node should (value) or should not (NULL) have in etcd. */
struct entry {
	char *key;
	char *value;
	bool leased, queued;
	uint64_t gen;		/* bumped by every change, so a send that raced one is redone */
	struct entry *next;	/* in its bucket */
};

struct publish {
	struct etcd *etcd;
	char *prefix, *node, *host, *alive_key, *stale;
	int64_t want_ttl;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	/* under mu */
	bool stop, ready, swept;
	struct entry **buckets;
	size_t nbuckets, nentries;
	struct entry **queue;	/* entries to send, in no order */
	size_t nqueue, qcap;
	int64_t policy_rev, endpoints, old_lease;
	struct publish_state st;
	/* the thread's own */
	uint64_t keepalive_at, retry_at;
	unsigned backoff;
};

/* ---- the table (under mu) ---- */

static uint64_t key_hash(const char *key)
{
	return moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS, key));
}

static struct entry **entry_slot(struct publish *p, const char *key)
{
	struct entry **e = &p->buckets[key_hash(key) & (p->nbuckets - 1)];

	while (*e && strcmp((*e)->key, key))
		e = &(*e)->next;
	return e;
}

static int table_grow(struct publish *p)
{
	size_t n = p->nbuckets ? p->nbuckets * 2 : NBUCKETS_MIN;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct entry *e = p->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[key_hash(e->key) & (n - 1)];
			b[key_hash(e->key) & (n - 1)] = e;
		}
	free(p->buckets);
	p->buckets = b, p->nbuckets = n;
	return 0;
}

static int queue_add(struct publish *p, struct entry *e)
{
	if (e->queued)
		return 0;
	if (p->nqueue == p->qcap) {
		size_t cap = p->qcap ? p->qcap * 2 : 256;
		struct entry **q = realloc(p->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		p->queue = q, p->qcap = cap;
	}
	p->queue[p->nqueue++] = e;
	e->queued = true;
	return 0;
}

/* The entry of key, made when absent. */
static struct entry *entry_get(struct publish *p, const char *key)
{
	struct entry **slot, *e;

	if (p->nentries >= p->nbuckets && table_grow(p))
		return NULL;
	slot = entry_slot(p, key);
	e = *slot;
	if (e)
		return e;
	if (!(e = calloc(1, sizeof(*e))) || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	*slot = e;
	p->nentries++;
	return e;
}

static void entry_remove(struct publish *p, struct entry *e)
{
	struct entry **slot = entry_slot(p, e->key);

	*slot = e->next;
	p->nentries--;
	free(e->key);
	free(e->value);
	free(e);
}

static void wake(struct publish *p)
{
	pthread_cond_signal(&p->cv);
}

/* Tells the loop the state changed (under mu). */
static void notify(struct publish *p)
{
	uint64_t one = 1;

	if (write(p->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: the loop has a wakeup pending anyway */
	}
}

int publish_put(struct publish *p, const char *key, char *value, bool leased)
{
	struct entry *e;
	int ret = 0;

	pthread_mutex_lock(&p->mu);
	e = entry_get(p, key);
	if (e && e->value && !strcmp(e->value, value) && e->leased == leased) {
		free(value);
	} else if (e && !(ret = queue_add(p, e))) {
		free(e->value);
		e->value = value, e->leased = leased;
		e->gen++;
		wake(p);
	} else {
		free(value);
		ret = ret ? ret : -ENOMEM;
	}
	pthread_mutex_unlock(&p->mu);
	return ret;
}

int publish_del(struct publish *p, const char *key)
{
	struct entry *e;
	int ret = 0;

	pthread_mutex_lock(&p->mu);
	e = p->buckets ? *entry_slot(p, key) : NULL;
	if (e && e->value && !(ret = queue_add(p, e))) {
		free(e->value);
		e->value = NULL;
		e->gen++;
		wake(p);
	}
	pthread_mutex_unlock(&p->mu);
	return ret;
}

void publish_ready(struct publish *p, const char *prefix_stale)
{
	pthread_mutex_lock(&p->mu);
	if (!p->ready && !p->stale)
		p->stale = strdup(prefix_stale);
	p->ready = true;
	wake(p);
	pthread_mutex_unlock(&p->mu);
}

void publish_heartbeat(struct publish *p, int64_t policy_rev, int64_t endpoints)
{
	pthread_mutex_lock(&p->mu);
	p->policy_rev = policy_rev, p->endpoints = endpoints;
	pthread_mutex_unlock(&p->mu);
}

void publish_state(struct publish *p, struct publish_state *st)
{
	pthread_mutex_lock(&p->mu);
	*st = p->st;
	st->pending = p->nqueue;
	pthread_mutex_unlock(&p->mu);
}

int publish_fd(const struct publish *p)
{
	return p->efd;
}

void publish_ack(struct publish *p)
{
	uint64_t n;

	if (read(p->efd, &n, sizeof(n)) < 0) {
		/* nothing to drain */
	}
}

/* ---- the lease and the name (the thread, or the caller of publish_claim) ---- */

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *alive_value(struct publish *p, int64_t lease, int64_t ttl)
{
	struct wire_alive a = { .lease = lease, .ttl = ttl, .heard_ms = unix_ms() };

	pthread_mutex_lock(&p->mu);
	a.policy_rev = p->policy_rev, a.endpoints = p->endpoints;
	pthread_mutex_unlock(&p->mu);
	snprintf(a.host, sizeof(a.host), "%s", p->host);
	return wire_alive_encode(&a);
}

/*
 * alive/NODE as it is (got one key-value): ours (a restart on this host) is taken over
 * with lease when it still holds what we read; another host's is -EEXIST. 0 when taken,
 * -EAGAIN when it changed meanwhile.
 */
static int take_over(struct publish *p, const struct etcd_kv *kv, int64_t lease, char *value,
		     char *err, size_t errlen)
{
	struct etcd_cmp cmp = { .key = p->alive_key, .target = ETCD_CMP_MOD, .rev = kv->mod_rev };
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = p->alive_key, .value = value,
			       .lease = lease };
	struct etcd_txn t = { &cmp, 1, &put, NULL, 1, 0 };
	struct wire_alive a;
	char why[200];
	bool ok = false;
	int ret;

	if (wire_alive_decode(kv->value, kv->vlen, &a, why, sizeof(why))) {
		snprintf(err, errlen, "%s%s holds a value that is not a moatd's (%s): refusing "
			 "the node name %s", p->prefix, "alive/...", why, p->node);
		return -EEXIST;
	}
	if (strcmp(a.host, p->host)) {
		snprintf(err, errlen, "the node name %s is in use by another host (host id %s, "
			 "lease %lld, heard %lld ms ago): give this moatd another --node-name, or "
			 "stop the other one (its name is free once its lease of %llds expires)",
			 p->node, a.host, (long long)a.lease, (long long)(unix_ms() - a.heard_ms),
			 (long long)a.ttl);
		return -EEXIST;
	}
	ret = etcd_txn(p->etcd, &t, &ok, NULL);
	if (!ret && !ok)
		return -EAGAIN;
	if (!ret && a.lease != lease) {
		pthread_mutex_lock(&p->mu);
		p->old_lease = a.lease;
		pthread_mutex_unlock(&p->mu);
	}
	return ret;
}

/* Creates alive/NODE bound to lease, or takes it over (take_over). */
static int claim(struct publish *p, int64_t lease, int64_t ttl, char *err, size_t errlen)
{
	char *value = alive_value(p, lease, ttl);
	int ret = value ? -EAGAIN : -ENOMEM;

	for (int tries = 0; ret == -EAGAIN && tries < 5; tries++) {
		struct etcd_cmp cmp = { .key = p->alive_key, .target = ETCD_CMP_CREATE, .rev = 0 };
		struct etcd_op put = { .kind = ETCD_OP_PUT, .key = p->alive_key, .value = value,
				       .lease = lease };
		struct etcd_op get = { .kind = ETCD_OP_GET, .key = p->alive_key };
		struct etcd_txn t = { &cmp, 1, &put, &get, 1, 1 };
		struct etcd_kvs got = { 0 };
		bool ok = false;

		ret = etcd_txn(p->etcd, &t, &ok, &got);
		if (!ret && !ok)
			ret = got.n ? take_over(p, &got.v[0], lease, value, err, errlen) : -EAGAIN;
		etcd_kvs_free(&got);
	}
	if (ret == -EAGAIN)
		snprintf(err, errlen, "%s keeps changing: cannot claim the node name", p->alive_key);
	free(value);
	return ret;
}

static uint64_t keepalive_every_ms(int64_t ttl)
{
	return (uint64_t)(ttl > 0 ? ttl : 1) * 1000 / PUBLISH_KEEPALIVES_PER_TTL;
}

/* Every key goes out again (a new lease). Under mu. */
static void requeue_all(struct publish *p)
{
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct entry *e = p->buckets[i]; e; e = e->next)
			if (queue_add(p, e))
				return;
}

static int acquire(struct publish *p, char *err, size_t errlen)
{
	int64_t id = 0, ttl = 0;
	int ret = etcd_lease_grant(p->etcd, p->want_ttl, &id, &ttl);

	if (ret) {
		snprintf(err, errlen, "granting a lease: %s", *etcd_last_error(p->etcd) ?
			 etcd_last_error(p->etcd) : strerror(-ret));
		return ret;
	}
	ret = claim(p, id, ttl, err, errlen);
	if (ret) {
		etcd_lease_revoke(p->etcd, id);
		if (ret != -EEXIST && !*err)
			snprintf(err, errlen, "claiming the node name: %s", strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&p->mu);
	p->st.lease = id, p->st.ttl = ttl, p->st.leases++, p->st.up = true;
	p->st.keepalive_ms = loop_now_ms();
	p->keepalive_at = loop_now_ms() + keepalive_every_ms(ttl);
	requeue_all(p);
	notify(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int publish_claim(struct publish *p, char *err, size_t errlen)
{
	int ret;

	err[0] = '\0';
	ret = acquire(p, err, errlen);
	pthread_mutex_lock(&p->mu);
	if (ret == -EEXIST)
		p->st.conflict = true;
	if (ret)
		snprintf(p->st.error, sizeof(p->st.error), "%s", err);
	pthread_mutex_unlock(&p->mu);
	return ret;
}

/* ---- the thread ---- */

/* A failed request: back off (under mu). lost: the lease is gone. */
static void failed(struct publish *p, int ret, const char *what, bool lost)
{
	bool was_up = p->st.up;

	p->st.errors++;
	p->st.up = ret == -ENOENT;	/* etcd answered: the lease is gone */
	snprintf(p->st.error, sizeof(p->st.error), "%s: %s", what, *etcd_last_error(p->etcd) ?
		 etcd_last_error(p->etcd) : strerror(-ret));
	if (lost || ret == -ENOENT) {
		log_warn("etcd: the lease of node %s is gone (%s); granting a new one and "
			 "publishing again", p->node, p->st.error);
		p->st.lease = 0;
	} else if (was_up) {
		log_warn("etcd: %s; publishing waits for etcd (enforcement goes on)", p->st.error);
	}
	p->retry_at = loop_now_ms() + p->backoff;
	p->backoff = p->backoff * 2 > PUBLISH_BACKOFF_MAX_MS ? PUBLISH_BACKOFF_MAX_MS : p->backoff * 2;
	notify(p);
}

static void succeeded(struct publish *p)
{
	if (!p->st.up) {
		log_info("etcd: node %s publishes again through %s", p->node,
			 etcd_endpoint(p->etcd));
		notify(p);
	}
	p->st.up = true;
	p->backoff = PUBLISH_BACKOFF_MIN_MS;
}

/* Keepalive, then the heartbeat; under mu on entry and exit. */
static void keepalive(struct publish *p)
{
	int64_t lease = p->st.lease, ttl = 0;
	char *value = NULL;
	int ret;

	pthread_mutex_unlock(&p->mu);
	ret = etcd_lease_keepalive(p->etcd, lease, &ttl);
	if (!ret && !(value = alive_value(p, lease, ttl)))
		ret = -ENOMEM;
	if (!ret)
		ret = etcd_put(p->etcd, p->alive_key, value, strlen(value), lease, NULL);
	free(value);
	pthread_mutex_lock(&p->mu);
	if (ret) {
		failed(p, ret, "keepalive", false);
		return;
	}
	succeeded(p);
	p->st.ttl = ttl;
	p->st.keepalive_ms = loop_now_ms();
	p->keepalive_at = loop_now_ms() + keepalive_every_ms(ttl);
}

struct sent {
	struct entry *e;
	uint64_t gen;
};

/* Up to ETCD_MAX_TXN_OPS queued entries as operations (copies); under mu. */
static size_t batch_take(struct publish *p, struct etcd_op *ops, struct sent *sent)
{
	size_t n = 0;

	while (p->nqueue && n < ETCD_MAX_TXN_OPS) {
		struct entry *e = p->queue[--p->nqueue];
		char *key = strdup(e->key), *value = e->value ? strdup(e->value) : NULL;

		e->queued = false;
		if (!key || (e->value && !value)) {
			free(key);
			free(value);
			queue_add(p, e);
			break;
		}
		ops[n] = (struct etcd_op){ .kind = value ? ETCD_OP_PUT : ETCD_OP_DELETE, .key = key,
					   .value = value, .lease = e->leased ? p->st.lease : 0 };
		sent[n++] = (struct sent){ e, e->gen };
	}
	return n;
}

/* One transaction of queued changes; under mu on entry and exit. */
static void sync_batch(struct publish *p)
{
	struct etcd_op ops[ETCD_MAX_TXN_OPS];
	struct sent sent[ETCD_MAX_TXN_OPS];
	size_t n = batch_take(p, ops, sent), puts = 0;
	struct etcd_txn t = { .ok = ops, .nok = n };
	bool ok = false;
	int ret;

	pthread_mutex_unlock(&p->mu);
	ret = n ? etcd_txn(p->etcd, &t, &ok, NULL) : 0;
	for (size_t i = 0; i < n; i++) {
		puts += ops[i].kind == ETCD_OP_PUT;
		free((char *)ops[i].key);
		free((char *)ops[i].value);
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		struct entry *e = sent[i].e;

		if (ret)
			queue_add(p, e);
		else if (e->gen == sent[i].gen && !e->value && !e->queued)
			entry_remove(p, e);
	}
	if (ret) {
		failed(p, ret, "publishing", false);
		return;
	}
	succeeded(p);
	p->st.puts += puts, p->st.deletes += n - puts;
}

/* Keys under the node's endpoints that the table does not hold; then the old lease goes.
 * Under mu on entry and exit. */
static void sweep(struct publish *p)
{
	char *end = etcd_prefix_end(p->stale);
	struct etcd_range_req r = { .key = p->stale, .end = end };
	struct etcd_kvs kvs = { 0 };
	int64_t old = p->old_lease;
	size_t n = 0;
	int ret;

	pthread_mutex_unlock(&p->mu);
	ret = end ? etcd_range(p->etcd, &r, &kvs) : -ENOMEM;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; !ret && i < kvs.n; i++) {
		struct entry *e = *entry_slot(p, kvs.v[i].key);

		if (!e && (e = entry_get(p, kvs.v[i].key)) && !queue_add(p, e))
			n++;	/* an entry without a value: a delete to send */
	}
	etcd_kvs_free(&kvs);
	free(end);
	if (ret) {
		failed(p, ret, "listing this node's keys", false);
		return;
	}
	if (n)
		log_info("etcd: deleting %zu stale endpoint%s of node %s", n, n == 1 ? "" : "s",
			 p->node);
	p->swept = true;
	p->old_lease = 0;
	pthread_mutex_unlock(&p->mu);
	if (old)
		etcd_lease_revoke(p->etcd, old);	/* best effort: it expires anyway */
	pthread_mutex_lock(&p->mu);
}

/* A new lease when there is none; under mu on entry and exit. */
static void reacquire(struct publish *p)
{
	char err[512] = "";
	int ret;

	pthread_mutex_unlock(&p->mu);
	ret = acquire(p, err, sizeof(err));
	pthread_mutex_lock(&p->mu);
	if (ret == -EEXIST) {
		p->st.conflict = true;
		snprintf(p->st.error, sizeof(p->st.error), "%s", err);
		log_error("etcd: %s; this node publishes nothing (enforcement goes on)", err);
		notify(p);
	} else if (ret) {
		failed(p, ret, "lease", false);
		snprintf(p->st.error, sizeof(p->st.error), "%s", err);
	} else {
		succeeded(p);
		p->swept = false;	/* keys of the old lease may linger: look again */
	}
}

static void wait_until(struct publish *p, uint64_t at)
{
	struct timespec ts;
	uint64_t now = loop_now_ms(), ms = at > now ? at - now : 0;

	if (ms > 1000)
		ms = 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

/* One step of the thread's work, the most urgent first; under mu. */
static void step(struct publish *p)
{
	uint64_t now = loop_now_ms();

	if (p->st.conflict)
		wait_until(p, now + 1000);
	else if (now < p->retry_at)
		wait_until(p, p->retry_at);
	else if (!p->st.lease)
		reacquire(p);
	else if (now >= p->keepalive_at)
		keepalive(p);
	else if (p->ready && p->nqueue)
		sync_batch(p);
	else if (p->ready && !p->swept && p->stale)
		sweep(p);
	else
		wait_until(p, p->keepalive_at);
}

static void *publish_main(void *arg)
{
	struct publish *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stop)
		step(p);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int publish_new(const struct publish_opts *o, struct publish **out, char *err, size_t errlen)
{
	struct publish *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->want_ttl = o->ttl;
	p->backoff = PUBLISH_BACKOFF_MIN_MS;
	p->prefix = strdup(o->prefix);
	p->node = strdup(o->node);
	p->host = strdup(o->host);
	if (asprintf(&p->alive_key, "%salive/%s", o->prefix, o->node) < 0)
		p->alive_key = NULL;
	if (p->efd < 0 || !p->prefix || !p->node || !p->host || !p->alive_key)
		ret = -ENOMEM;
	if (!ret)
		ret = etcd_new(o->etcd, &p->etcd, err, errlen);
	if (ret) {
		publish_stop(p);
		return ret;
	}
	*out = p;
	return 0;
}

int publish_start(struct publish *p)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&p->thread, NULL, publish_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->started = !ret;
	return ret;
}

void publish_stop(struct publish *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		wake(p);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; i < p->nbuckets; i++)
		while (p->buckets[i])
			entry_remove(p, p->buckets[i]);
	free(p->buckets);
	free(p->queue);
	etcd_free(p->etcd);
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->prefix);
	free(p->node);
	free(p->host);
	free(p->alive_key);
	free(p->stale);
	free(p);
}
