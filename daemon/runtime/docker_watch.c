/*
 * The event watcher: one thread follows GET /events and turns each event into a fixed-size
 * record on a non-blocking pipe. The daemon's single-threaded core polls the pipe and does
 * every inspect and list itself, so this thread shares no state with it but the pipe.
 *
 * Races this file closes:
 *  - dockerd sends the response headers before it subscribes to its event log, so an event
 *    just after our RESYNC could be missed; we ask for since=<connect time - 2 s>, which makes
 *    dockerd replay what it logged since then (replayed events are harmless hints).
 *  - a full pipe drops records; a RESYNC is then owed and written as soon as there is room.
 *  - the thread blocks every signal, so that signals the loop takes by signalfd (blocked on
 *    the main thread only, perhaps after we start) are never delivered here.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "curlio.h"
#include "docker.h"
#include "observe/jsonl.h"
#include "log.h"

_Static_assert(sizeof(struct docker_event) <= PIPE_BUF, "records must be written atomically");

/* A connection that lived this long was healthy: retry the next one quickly. */
#define WATCH_HEALTHY_MS 5000
/* How often the thread looks at an owed RESYNC (the pipe was full) while the stream is idle.
 * Nothing else needs a look: an idle stream waits for dockerd, or for curl_multi_wakeup. */
#define WATCH_POLL_MS 200
#define WATCH_IDLE_MS (3600 * 1000)

struct docker_watch {
	pthread_t thread;
	int rfd, wfd;
	atomic_bool stop;
	bool resync_owed;
	bool connected;
	CURLM *multi;
	CURL *easy;
	char *socket;
	struct jsonl_framer *framer;
	char filters[256];	/* URL-escaped filters= value */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write one record, or owe a RESYNC when the pipe is full. A RESYNC subsumes the rest. */
static void emit(struct docker_watch *w, const struct docker_event *ev)
{
	const struct docker_event resync = { .kind = DOCKER_EVENT_RESYNC };

	if (w->resync_owed) {
		if (write(w->wfd, &resync, sizeof(resync)) != sizeof(resync))
			return;
		w->resync_owed = false;
		if (ev->kind == DOCKER_EVENT_RESYNC)
			return;
	}
	if (write(w->wfd, ev, sizeof(*ev)) != sizeof(*ev))
		w->resync_owed = true;
}

static void emit_kind(struct docker_watch *w, enum docker_event_kind kind)
{
	struct docker_event ev = { .kind = kind };

	emit(w, &ev);
}

static bool action_followed(const char *action)
{
	static const char *const actions[] = DOCKER_WATCH_ACTIONS;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(action, actions[i]))
			return true;
	return false;
}

/* Actor.ID for container events; for network ones Actor.Attributes.container (Docker: the
 * Actor is the network) or the top-level id (Podman: the Actor is the container). */
static int event_from_json(json_t *j, struct docker_event *ev)
{
	const char *type = json_string_value(json_object_get(j, "Type"));
	const char *action = json_string_value(json_object_get(j, "Action"));
	json_t *actor = json_object_get(j, "Actor");
	const char *id = NULL;

	if (!type || !action || !action_followed(action))
		return -ENOENT;
	if (!strcmp(type, "container")) {
		id = json_string_value(json_object_get(actor, "ID"));
	} else if (!strcmp(type, "network")) {
		id = json_string_value(json_object_get(json_object_get(actor, "Attributes"),
						       "container"));
		if (!id)
			id = json_string_value(json_object_get(j, "id"));
	}
	if (!id || !*id || strlen(id) >= sizeof(ev->id))
		return -ENOENT;
	memset(ev, 0, sizeof(*ev));
	ev->kind = DOCKER_EVENT_CONTAINER;
	strcpy(ev->id, id);
	snprintf(ev->action, sizeof(ev->action), "%s", action);
	return 0;
}

int docker_event_parse(const char *line, size_t len, struct docker_event *out)
{
	struct docker_event ev;
	json_t *j = docker_json_load(line, len);
	int ret;

	if (!j)
		return -EBADMSG;
	ret = event_from_json(j, &ev);
	json_decref(j);
	if (!ret)
		*out = ev;
	return ret;
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct docker_watch *w = arg;
	struct docker_event ev;
	int ret;

	if (!line) {
		/* Lost an event we cannot name: only a full resync is safe. */
		log_warn("docker events: dropped a %zu-byte event (limit %u)", len,
			 DOCKER_WATCH_MAX_LINE);
		emit_kind(w, DOCKER_EVENT_RESYNC);
		return 0;
	}
	ret = docker_event_parse(line, len, &ev);
	if (ret == -EBADMSG) {
		log_warn("docker events: an event that is not JSON");
		emit_kind(w, DOCKER_EVENT_RESYNC);
	} else if (!ret) {
		emit(w, &ev);
	}
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct docker_watch *w = arg;

	if (atomic_load(&w->stop))
		return 0;
	jsonl_framer_feed(w->framer, p, size * n, on_line, w);
	return size * n;
}

/* At the end of the headers of a 200 answer we are subscribed: the daemon must resync. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct docker_watch *w = arg;
	long status = 0;

	if (size * n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200 && !w->connected) {
			w->connected = true;
			emit_kind(w, DOCKER_EVENT_RESYNC);
		}
	}
	return size * n;
}

static void stream_setup(struct docker_watch *w)
{
	char url[512];
	time_t since = time(NULL) - 2;

	snprintf(url, sizeof(url), "http://localhost/%s/events?since=%lld&filters=%s",
		 DOCKER_API_VERSION, (long long)since, w->filters);
	curl_easy_reset(w->easy);
	curl_easy_setopt(w->easy, CURLOPT_UNIX_SOCKET_PATH, w->socket);
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->easy, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(w->easy, CURLOPT_HEADERDATA, w);
}

/* How long to wait for the stream, at most cap: only an owed RESYNC needs the thread to
 * wake by itself (an idle moatd wakes for nothing else). */
static int wait_ms(const struct docker_watch *w, uint64_t cap)
{
	uint64_t ms = w->resync_owed ? WATCH_POLL_MS : WATCH_IDLE_MS;

	return (int)(cap < ms ? cap : ms);
}

/* One connection, until it breaks or we are stopped. Returns whether it got through. */
static bool stream_once(struct docker_watch *w)
{
	int running = 1;
	CURLMsg *msg;
	int left;

	jsonl_framer_reset(w->framer);
	w->connected = false;
	stream_setup(w);
	curl_multi_add_handle(w->multi, w->easy);
	while (running && !atomic_load(&w->stop)) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (w->resync_owed)
			emit_kind(w, DOCKER_EVENT_RESYNC);
		if (running)
			curl_multi_poll(w->multi, NULL, 0, wait_ms(w, WATCH_IDLE_MS), NULL);
	}
	while ((msg = curl_multi_info_read(w->multi, &left)))
		if (msg->msg == CURLMSG_DONE && !atomic_load(&w->stop))
			log_debug("docker events: stream ended: %s",
				  curl_easy_strerror(msg->data.result));
	curl_multi_remove_handle(w->multi, w->easy);
	return w->connected;
}

/* Sleep ms, or less when stopped: curl_multi_poll with no transfer wakes on _wakeup. */
static void backoff_wait(struct docker_watch *w, unsigned ms)
{
	uint64_t end = now_ms() + ms, now;

	while (!atomic_load(&w->stop) && (now = now_ms()) < end) {
		if (w->resync_owed)
			emit_kind(w, DOCKER_EVENT_RESYNC);
		curl_multi_poll(w->multi, NULL, 0, wait_ms(w, end - now), NULL);
	}
}

static void *watch_main(void *arg)
{
	struct docker_watch *w = arg;
	unsigned backoff = DOCKER_WATCH_BACKOFF_MIN_MS;
	uint64_t t0;

	while (!atomic_load(&w->stop)) {
		t0 = now_ms();
		if (stream_once(w)) {
			if (atomic_load(&w->stop))
				break;
			emit_kind(w, DOCKER_EVENT_DOWN);
			log_warn("docker events: lost the connection to %s; reconnecting", w->socket);
			if (now_ms() - t0 >= WATCH_HEALTHY_MS)
				backoff = DOCKER_WATCH_BACKOFF_MIN_MS;
		}
		backoff_wait(w, backoff);
		backoff = backoff * 2 > DOCKER_WATCH_BACKOFF_MAX_MS ? DOCKER_WATCH_BACKOFF_MAX_MS :
			  backoff * 2;
	}
	return NULL;
}

/* filters={"type":["container","network"]} escaped for the query string; the actions are
 * picked from what comes (DOCKER_WATCH_ACTIONS says why). */
static int filters_build(struct docker_watch *w)
{
	json_t *f = json_pack("{s:[s,s]}", "type", "container", "network");
	char *s = NULL, *esc = NULL;
	int ret = -ENOMEM;

	if (!f)
		return -ENOMEM;
	s = json_dumps(f, JSON_COMPACT);
	esc = s ? curl_easy_escape(NULL, s, 0) : NULL;
	if (esc && strlen(esc) < sizeof(w->filters)) {
		strcpy(w->filters, esc);
		ret = 0;
	}
	curl_free(esc);
	free(s);
	json_decref(f);
	return ret;
}

static void watch_free(struct docker_watch *w)
{
	if (w->easy)
		curl_easy_cleanup(w->easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	jsonl_framer_free(w->framer);
	if (w->rfd >= 0)
		close(w->rfd);
	if (w->wfd >= 0)
		close(w->wfd);
	free(w->socket);
	free(w);
}

int docker_watch_start(struct docker_client *c, struct docker_watch **out)
{
	struct docker_watch *w;
	sigset_t all, old;
	int fds[2], ret;

	ret = curlio_init();
	if (ret)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->rfd = w->wfd = -1;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	w->rfd = fds[0];
	w->wfd = fds[1];
	ret = -ENOMEM;
	w->socket = strdup(docker_client_socket(c));
	w->multi = curl_multi_init();
	w->easy = curl_easy_init();
	if (!w->socket || !w->multi || !w->easy || filters_build(w))
		goto fail;
	ret = jsonl_framer_new(DOCKER_WATCH_MAX_LINE, &w->framer);
	if (ret)
		goto fail;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&w->thread, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto fail;
	*out = w;
	return 0;
fail:
	watch_free(w);
	return ret;
}

int docker_watch_fd(const struct docker_watch *w)
{
	return w->rfd;
}

int docker_watch_read(struct docker_watch *w, struct docker_event *ev)
{
	ssize_t n = read(w->rfd, ev, sizeof(*ev));

	if (n < 0)
		return -errno;
	/* Records are written whole (<= PIPE_BUF); a short read means a broken pipe. */
	return n == sizeof(*ev) ? 0 : -EPIPE;
}

void docker_watch_stop(struct docker_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
