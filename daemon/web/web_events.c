/*
 * Server-sent events on suspended MHD connections (see web_events.h). Data for a stream is
 * queued here; the connection is resumed on a zero-delay timer (never from inside the
 * follower's walk that produced it) and MHD writes it from the content reader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "web_events.h"
#include "web_request.h"

#define TICK_MS 1000
#define PING_MS 5000
#define STATUS_MS 2000
#define BLOCK 16384		/* bytes MHD asks for at a time */

struct stream {
	struct web_events *ev;
	struct MHD_Connection *conn;
	struct ctl_conn *ctl;		/* the follower's connection */
	char *buf;			/* queued bytes: [off, len) */
	size_t len, off, cap;
	bool suspended, doomed, status;
	uint64_t last_ms;		/* last queued */
};

struct web_events {
	struct loop *loop;
	struct http_server *http;
	ctl_handler_fn ctl;
	void *ctl_data;
	struct ctl_conn *oneshot;	/* for status requests */
	struct stream *streams[WEB_STREAMS_MAX];
	size_t n;
	int kick_timer;
	int tick_timer;			/* while a stream is open, else 0 */
	uint64_t status_ms, generation;
	char *status;			/* the last status sent, compact JSON */
};

/* ---- queueing ---- */

static void kick(struct loop *loop, void *data)
{
	struct web_events *ev = data;

	loop_timer_del(loop, ev->kick_timer);
	ev->kick_timer = 0;
	for (size_t i = 0; i < ev->n; i++) {
		struct stream *st = ev->streams[i];

		if (st->suspended && (st->off < st->len || st->doomed)) {
			st->suspended = false;
			MHD_resume_connection(st->conn);
		}
	}
	if (ev->http)
		http_server_run(ev->http);	/* may free streams: nothing touched after */
}

static void wake(struct stream *st)
{
	struct web_events *ev = st->ev;
	int id;

	if (!st->suspended || ev->kick_timer)
		return;
	id = loop_timer_add(ev->loop, 0, 0, kick, ev);
	if (id > 0)
		ev->kick_timer = id;
	/* else: the next tick resumes it */
}

/* Appends n bytes; a peer that lets too much pile up is closed instead. */
static void queue(struct stream *st, const char *text, size_t n)
{
	if (st->doomed)
		return;
	if (st->off) {
		memmove(st->buf, st->buf + st->off, st->len - st->off);
		st->len -= st->off;
		st->off = 0;
	}
	if (st->len + n > WEB_STREAM_QUEUE_MAX) {
		st->doomed = true;
	} else if (st->len + n > st->cap) {
		size_t cap = (st->len + n) * 2;
		char *buf = realloc(st->buf, cap);

		if (!buf)
			st->doomed = true;
		else
			st->buf = buf, st->cap = cap;
	}
	if (!st->doomed) {
		memcpy(st->buf + st->len, text, n);
		st->len += n;
	}
	st->last_ms = loop_now_ms();
	wake(st);
}

static void queue_event(struct stream *st, const char *name, json_t *msg)
{
	char *text;
	size_t n;

	if (web_sse_event(name, msg, &text, &n) < 0) {
		st->doomed = true;
		wake(st);
		return;
	}
	queue(st, text, n);
	free(text);
}

/* A flow from the follower (inside observe's walk: queue only). */
static void on_flow(json_t *msg, void *data)
{
	struct stream *st = data;

	st->ev->generation++;
	queue_event(st, "flow", msg);
}

/* ---- MHD's side ---- */

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t n = st->len - st->off;

	if (n) {
		n = n < max ? n : max;
		memcpy(buf, st->buf + st->off, n);
		st->off += n;
		return (ssize_t)n;
	}
	if (st->doomed)
		return MHD_CONTENT_READER_END_OF_STREAM;
	MHD_suspend_connection(st->conn);
	st->suspended = true;
	return 0;
}

/* The response is gone (its connection closed): the follower goes with it. */
static void stream_free(void *cls)
{
	struct stream *st = cls;
	struct web_events *ev = st->ev;

	for (size_t i = 0; i < ev->n; i++)
		if (ev->streams[i] == st) {
			ev->streams[i] = ev->streams[--ev->n];
			break;
		}
	if (!ev->n && ev->tick_timer) {	/* nothing to ping or to look after */
		loop_timer_del(ev->loop, ev->tick_timer);
		ev->tick_timer = 0;
	}
	ctl_conn_local_free(st->ctl);
	free(st->buf);
	free(st);
}

/* ---- status ---- */

/* The status as compact JSON without what changes every second; NULL on failure. */
static char *status_text(struct web_events *ev)
{
	json_t *req = json_pack("{s:s}", "cmd", "status");
	json_t *reply = req ? ev->ctl(req, ev->oneshot, ev->ctl_data) : NULL;
	char *s = NULL;

	json_decref(req);
	if (json_is_true(json_object_get(reply, "ok"))) {
		json_object_del(reply, "uptime_s");
		s = json_dumps(reply, JSON_COMPACT | JSON_SORT_KEYS);
	}
	json_decref(reply);
	return s;
}

static void status_queue(struct stream *st, const char *s)
{
	static const char head[] = "event: status\ndata: ";
	size_t n = strlen(s);
	char *text = malloc(sizeof(head) - 1 + n + 3);

	if (!text)
		return;
	memcpy(text, head, sizeof(head) - 1);
	memcpy(text + sizeof(head) - 1, s, n);
	memcpy(text + sizeof(head) - 1 + n, "\n\n", 3);
	queue(st, text, sizeof(head) - 1 + n + 2);
	free(text);
}

static void status_send(struct web_events *ev)
{
	char *s = status_text(ev);

	ev->status_ms = loop_now_ms();
	if (!s || (ev->status && !strcmp(s, ev->status))) {
		free(s);
		return;
	}
	free(ev->status);
	ev->status = s;
	ev->generation++;
	for (size_t i = 0; i < ev->n; i++)
		if (ev->streams[i]->status)
			status_queue(ev->streams[i], s);
}

/* ---- the tick: hang-ups, pings, status ---- */

static bool hung_up(struct stream *st)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd p = { .fd = ci ? ci->connect_fd : -1, .events = POLLRDHUP };

	return p.fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void tick(struct loop *loop, void *data)
{
	struct web_events *ev = data;
	uint64_t now = loop_now_ms();
	bool status = false;

	for (size_t i = 0; i < ev->n; i++) {
		struct stream *st = ev->streams[i];

		if (st->suspended && hung_up(st)) {
			st->doomed = true;
			wake(st);
		} else if (now - st->last_ms >= PING_MS) {
			queue(st, ": ping\n\n", 8);
		}
		status |= st->status;
	}
	if (status && now - ev->status_ms >= STATUS_MS)
		status_send(ev);
}

/* ---- opening and closing ---- */

/* The tick runs while a stream is open: an idle moatd wakes for nothing. A tick that cannot
 * be armed leaves pings and hang-up checks to the stream's own traffic. */
static void tick_arm(struct web_events *ev)
{
	int id = loop_timer_add(ev->loop, TICK_MS, 1, tick, ev);

	ev->tick_timer = id > 0 ? id : 0;
}

int web_events_new(struct loop *loop, ctl_handler_fn ctl, void *ctl_data,
		   struct web_events **out)
{
	struct web_events *ev = calloc(1, sizeof(*ev));
	int ret = ev ? ctl_conn_local_new(NULL, NULL, &ev->oneshot) : -ENOMEM;

	if (!ret)
		ev->loop = loop, ev->ctl = ctl, ev->ctl_data = ctl_data;
	if (ret) {
		web_events_free(ev);
		return ret;
	}
	*out = ev;
	return 0;
}

void web_events_set_server(struct web_events *ev, struct http_server *http)
{
	ev->http = http;
}

uint64_t web_events_generation(const struct web_events *ev)
{
	return ev->generation;
}

/* The follow request's reply, or an error for the caller (*error). */
static int follow(struct web_events *ev, struct stream *st, json_t *req, json_t **error)
{
	json_t *reply = ev->ctl(req, st->ctl, ev->ctl_data);

	if (!reply) {
		*error = json_pack("{s:b,s:s}", "ok", 0, "error", "out of memory");
		return -ENOMEM;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		*error = reply;
		return -EINVAL;
	}
	queue(st, "retry: 2000\n\n", 13);
	queue_event(st, "flows", reply);
	json_decref(reply);
	return 0;
}

static struct stream *stream_new(struct web_events *ev, struct MHD_Connection *c, bool status)
{
	struct stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	*st = (struct stream){ .ev = ev, .conn = c, .status = status, .last_ms = loop_now_ms() };
	if (ctl_conn_local_new(on_flow, st, &st->ctl) < 0) {
		free(st);
		return NULL;
	}
	return st;
}

int web_events_open(struct web_events *ev, struct MHD_Connection *c, json_t *req, bool status,
		    struct MHD_Response **resp, json_t **error)
{
	struct stream *st = ev->n < WEB_STREAMS_MAX ? stream_new(ev, c, status) : NULL;
	int ret;

	*error = NULL;
	ret = st ? follow(ev, st, req, error) : -EBUSY;
	json_decref(req);
	if (ret == -EBUSY)
		*error = json_pack("{s:b,s:s}", "ok", 0, "error", "too many event streams");
	/* a status older than the tick's would be stale: the streams open get a new one too */
	if (!ret && status && (!ev->status || loop_now_ms() - ev->status_ms >= STATUS_MS))
		status_send(ev);
	if (!ret && status && ev->status)
		status_queue(st, ev->status);
	if (!ret && !(*resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK, reader,
								st, stream_free)))
		ret = -ENOMEM;
	if (ret && st) {
		ctl_conn_local_free(st->ctl);
		free(st->buf);
		free(st);
		return ret;
	}
	if (!ret)
		ev->streams[ev->n++] = st;
	if (!ret && !ev->tick_timer)
		tick_arm(ev);
	return ret;
}

void web_events_close_all(struct web_events *ev)
{
	for (size_t i = 0; ev && i < ev->n; i++) {
		ev->streams[i]->doomed = true;
		if (ev->streams[i]->suspended) {
			ev->streams[i]->suspended = false;
			MHD_resume_connection(ev->streams[i]->conn);
		}
	}
}

void web_events_free(struct web_events *ev)
{
	if (!ev)
		return;
	while (ev->n)
		stream_free(ev->streams[ev->n - 1]);
	if (ev->kick_timer)
		loop_timer_del(ev->loop, ev->kick_timer);
	if (ev->tick_timer)
		loop_timer_del(ev->loop, ev->tick_timer);
	ctl_conn_local_free(ev->oneshot);
	free(ev->status);
	free(ev);
}
