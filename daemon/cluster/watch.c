/*
 * The watch thread (watch.h). It lists with its own client, streams with curl multi (so
 * that it can look at stop and kick between reads), frames the stream's lines with the
 * JSONL framer and parses each with etcd_watch_parse.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster/watch.h"
#include "log.h"
#include "loop.h"
#include "observe/jsonl.h"

#define POLL_MS 200

struct watch {
	struct etcd *etcd;
	char *prefix, *end;
	pthread_t thread;
	bool started;
	atomic_bool stop, kick, relist;
	int efd;
	CURLM *multi;
	CURL *easy;
	struct jsonl_framer *framer;
	/* the thread's own */
	int64_t next;		/* the revision to watch from; 0: list first */
	bool connected, ended;	/* this stream: answered; canceled or failed */
	bool up, down;		/* what the last UP or DOWN posted said */
	char why[256];
	/* under mu */
	pthread_mutex_t mu;
	pthread_cond_t taken;
	struct watch_msg *head, *tail;
	size_t queued;
	struct watch_stats st;
};

/* ---- the queue ---- */

void watch_msg_free(struct watch_msg *m)
{
	while (m) {
		struct watch_msg *next = m->next;

		etcd_kvs_free(&m->kvs);
		for (size_t i = 0; i < m->nevents; i++) {
			free(m->events[i].kv.key);
			free(m->events[i].kv.value);
		}
		free(m->events);
		free(m);
		m = next;
	}
}

/* Queues m (taken), waiting while too much is queued; false when stopped meanwhile. */
static bool post(struct watch *w, struct watch_msg *m)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	while (w->queued > WATCH_MAX_QUEUED && !atomic_load(&w->stop)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec++;
		pthread_cond_timedwait(&w->taken, &w->mu, &ts);
	}
	if (atomic_load(&w->stop)) {
		pthread_mutex_unlock(&w->mu);
		watch_msg_free(m);
		return false;
	}
	if (w->tail)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	w->queued += m->bytes;
	if (m->kind == WATCH_UP || m->kind == WATCH_DOWN)
		w->st.up = m->kind == WATCH_UP;
	pthread_mutex_unlock(&w->mu);
	if (write(w->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: the loop has a wakeup pending anyway */
	}
	return true;
}

static void post_kind(struct watch *w, enum watch_msg_kind kind, const char *why)
{
	struct watch_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->kind = kind;
	m->revision = w->next - 1;
	snprintf(m->why, sizeof(m->why), "%s", why ? why : "");
	post(w, m);
}

struct watch_msg *watch_take(struct watch *w)
{
	struct watch_msg *m;
	uint64_t n;

	if (read(w->efd, &n, sizeof(n)) < 0) {
		/* nothing signalled: look anyway */
	}
	pthread_mutex_lock(&w->mu);
	m = w->head;
	w->head = w->tail = NULL;
	w->queued = 0;
	pthread_cond_broadcast(&w->taken);
	pthread_mutex_unlock(&w->mu);
	return m;
}

int watch_fd(const struct watch *w)
{
	return w->efd;
}

void watch_stats(struct watch *w, struct watch_stats *st)
{
	pthread_mutex_lock(&w->mu);
	*st = w->st;
	pthread_mutex_unlock(&w->mu);
}

void watch_kick(struct watch *w)
{
	atomic_store(&w->kick, true);
	curl_multi_wakeup(w->multi);
}

void watch_relist(struct watch *w)
{
	atomic_store(&w->relist, true);
	watch_kick(w);
}

static void stat_add(struct watch *w, uint64_t *counter, uint64_t n)
{
	pthread_mutex_lock(&w->mu);
	*counter += n;
	w->st.revision = w->next - 1;
	pthread_mutex_unlock(&w->mu);
}

/* ---- the list ---- */

/* Every key under the prefix at one revision, in pages; a SNAPSHOT message. */
static int list(struct watch *w, struct watch_msg **out)
{
	struct watch_msg *m = calloc(1, sizeof(*m));
	struct etcd_range_req r = { .key = w->prefix, .end = w->end, .limit = WATCH_PAGE };
	char *from = NULL;
	int ret = m ? 0 : -ENOMEM;

	while (!ret && !atomic_load(&w->stop)) {
		size_t n0 = m->kvs.n;

		m->kvs.more = false;
		ret = etcd_range(w->etcd, &r, &m->kvs);
		if (ret || !m->kvs.more || m->kvs.n == n0)
			break;
		/* the next page: after the last key, at the first page's revision */
		r.revision = m->kvs.revision;
		free(from);
		if (!(from = malloc(m->kvs.v[m->kvs.n - 1].klen + 2))) {
			ret = -ENOMEM;
			break;
		}
		/* key + "\x01" (the successor would be key + "\0": keys of ours hold no NUL) */
		memcpy(from, m->kvs.v[m->kvs.n - 1].key, m->kvs.v[m->kvs.n - 1].klen);
		from[m->kvs.v[m->kvs.n - 1].klen] = '\x01';
		from[m->kvs.v[m->kvs.n - 1].klen + 1] = '\0';
		r.key = from;
	}
	free(from);
	if (!ret && atomic_load(&w->stop))
		ret = -ECANCELED;
	if (ret) {
		watch_msg_free(m);
		return ret;
	}
	m->kind = WATCH_SNAPSHOT;
	m->revision = m->kvs.revision;
	for (size_t i = 0; i < m->kvs.n; i++)
		m->bytes += m->kvs.v[i].klen + m->kvs.v[i].vlen + sizeof(m->kvs.v[i]);
	*out = m;
	return 0;
}

/* ---- the stream ---- */

static void events_post(struct watch *w, struct etcd_watch_resp *r)
{
	struct watch_msg *m = calloc(1, sizeof(*m));

	if (!m) {
		w->next = 0;		/* lost events we cannot name: list again */
		w->ended = true;
		return;
	}
	m->kind = WATCH_EVENTS;
	m->events = r->v, m->nevents = r->n;
	r->v = NULL, r->n = 0;
	for (size_t i = 0; i < m->nevents; i++) {
		m->bytes += m->events[i].kv.klen + m->events[i].kv.vlen + sizeof(m->events[i]);
		if (m->events[i].kv.mod_rev >= w->next)
			w->next = m->events[i].kv.mod_rev + 1;
	}
	m->revision = w->next - 1;
	stat_add(w, &w->st.events, m->nevents);
	post(w, m);
}

static void resp_handle(struct watch *w, struct etcd_watch_resp *r)
{
	if (r->error) {
		snprintf(w->why, sizeof(w->why), "watch: %s", r->error);
		w->ended = true;
	} else if (r->canceled && r->compact_revision) {
		log_warn("etcd: revision %lld is compacted (etcd keeps from %lld); listing every "
			 "key again", (long long)w->next, (long long)r->compact_revision);
		stat_add(w, &w->st.compacted, 1);
		snprintf(w->why, sizeof(w->why), "revision %lld is compacted", (long long)w->next);
		w->next = 0;
		w->ended = true;
	} else if (r->canceled) {
		snprintf(w->why, sizeof(w->why), "etcd canceled the watch");
		w->ended = true;
	} else if (r->created) {
		w->connected = true;
		if (w->down)
			log_info("etcd: watching again from revision %lld", (long long)w->next);
		w->up = true, w->down = false;
		post_kind(w, WATCH_UP, NULL);
	} else if (r->n) {
		events_post(w, r);
	} else if (r->revision >= w->next) {
		w->next = r->revision + 1;	/* a progress notification */
	}
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct watch *w = arg;
	struct etcd_watch_resp r;
	int ret;

	if (!line || (ret = etcd_watch_parse(line, len, &r))) {
		/* an event we cannot read is an event we would miss: list again */
		log_warn("etcd: a watch message of %zu bytes that cannot be read; listing every "
			 "key again", len);
		stat_add(w, &w->st.lines_refused, 1);
		w->next = 0;
		w->ended = true;
		return 1;
	}
	resp_handle(w, &r);
	etcd_watch_resp_free(&r);
	return w->ended;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct watch *w = arg;

	if (atomic_load(&w->stop) || w->ended)
		return 0;
	jsonl_framer_feed(w->framer, p, size * n, on_line, w);
	return w->ended ? 0 : size * n;
}

/* One stream from w->next until it ends, fails, or is kicked or stopped. */
static void stream(struct watch *w)
{
	char *body = etcd_watch_body(w->prefix, w->end, w->next);
	int running = 1, left;
	CURLMsg *msg;

	w->connected = w->ended = false;
	w->why[0] = '\0';
	atomic_store(&w->kick, false);
	jsonl_framer_reset(w->framer);
	if (!body || etcd_stream_setup(w->etcd, w->easy, "/v3/watch", body, on_body, w)) {
		free(body);
		snprintf(w->why, sizeof(w->why), "out of memory");
		return;
	}
	curl_multi_add_handle(w->multi, w->easy);
	while (running && !w->ended && !atomic_load(&w->stop) && !atomic_exchange(&w->kick, false)) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (running && !w->ended)
			curl_multi_poll(w->multi, NULL, 0, POLL_MS, NULL);
	}
	while ((msg = curl_multi_info_read(w->multi, &left)))
		if (msg->msg == CURLMSG_DONE && !w->why[0] && msg->data.result != CURLE_OK)
			snprintf(w->why, sizeof(w->why), "watch stream: %s",
				 curl_easy_strerror(msg->data.result));
	if (!w->why[0])
		snprintf(w->why, sizeof(w->why), "etcd ended the watch stream");
	curl_multi_remove_handle(w->multi, w->easy);
	free(body);
}

/* Sleep ms, or less when stopped. */
static void pause_ms(struct watch *w, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms, now;

	while (!atomic_load(&w->stop) && (now = loop_now_ms()) < end)
		curl_multi_poll(w->multi, NULL, 0, end - now < POLL_MS ? end - now : POLL_MS, NULL);
}

/* A list when one is due; false when it failed (why in w->why). */
static bool list_if_due(struct watch *w)
{
	struct watch_msg *m = NULL;
	int ret;

	if (atomic_exchange(&w->relist, false))
		w->next = 0;
	if (w->next)
		return true;
	ret = list(w, &m);
	if (ret) {
		snprintf(w->why, sizeof(w->why), "listing: %s", *etcd_last_error(w->etcd) ?
			 etcd_last_error(w->etcd) : strerror(-ret));
		return false;
	}
	w->next = m->revision + 1;
	stat_add(w, &w->st.snapshots, 1);
	return post(w, m);
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	unsigned backoff = WATCH_BACKOFF_MIN_MS;

	while (!atomic_load(&w->stop)) {
		uint64_t t0 = loop_now_ms();

		if (list_if_due(w))
			stream(w);
		if (atomic_load(&w->stop))
			break;
		if (atomic_load(&w->relist))
			continue;	/* asked for: list again at once, the stream was fine */
		if (w->up || !w->down) {
			log_warn("etcd: %s; the last known endpoints and policies stay in force, "
				 "watching again from revision %lld", w->why, (long long)w->next);
			post_kind(w, WATCH_DOWN, w->why);
			w->up = false, w->down = true;
		}
		if (w->connected && loop_now_ms() - t0 > 5000)
			backoff = WATCH_BACKOFF_MIN_MS;
		if (!w->connected)
			etcd_rotate(w->etcd);
		stat_add(w, &w->st.reconnects, 1);
		pause_ms(w, backoff);
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

int watch_start(const struct etcd_opts *o, const char *prefix, struct watch **out, char *err,
		size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int ret = 0;

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->taken, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->prefix = strdup(prefix);
	w->end = etcd_prefix_end(prefix);
	w->multi = curl_multi_init();
	w->easy = curl_easy_init();
	if (w->efd < 0 || !w->prefix || !w->end || !w->multi || !w->easy)
		ret = -ENOMEM;
	if (!ret)
		ret = jsonl_framer_new(WATCH_MAX_LINE, &w->framer);
	if (!ret)
		ret = etcd_new(o, &w->etcd, err, errlen);
	if (!ret) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&w->thread, NULL, watch_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		w->started = !ret;
	}
	if (ret) {
		watch_stop(w);
		return ret;
	}
	*out = w;
	return 0;
}

void watch_stop(struct watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->taken);
		pthread_mutex_unlock(&w->mu);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
	}
	watch_msg_free(w->head);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	jsonl_framer_free(w->framer);
	etcd_free(w->etcd);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->taken);
	free(w->prefix);
	free(w->end);
	free(w);
}
