/*
 * The control socket: non-blocking connections on the event loop. A request is one JSON line
 * of at most MOAT_CTL_MAX_REQUEST bytes that must arrive within MOAT_CTL_TIMEOUT_MS; the reply
 * is queued and written as the peer reads, so a slow or hostile peer only holds its own
 * connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "moat/ctl.h"

#define MAX_CONNS 64

struct ctl_conn {
	struct ctl_server *srv;
	int fd;
	bool privileged;
	bool answered;		/* the request is handled; only output from now on */
	bool streaming;
	bool doomed;		/* close at the next chance (queue overflow) */
	uint64_t deadline;
	char *in;
	size_t inlen;
	char *out;		/* queued output */
	size_t outlen, outoff, outcap;
	ctl_close_fn close_fn;
	void *close_data;
	ctl_local_send_fn local_send;	/* a connection from inside moatd (no fd, no srv) */
	void *local_data;
	struct ctl_conn *next;
};

#define conn ctl_conn

struct ctl_server {
	struct loop *loop;
	int fd;
	char *path;
	ctl_handler_fn fn;
	void *data;
	struct conn *conns;
	int nconns;
	int sweep_timer;
};

static void conn_event(struct loop *loop, int fd, uint32_t events, void *data);

json_t *ctl_reply_error(const char *msg)
{
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/* Root, or a member of the moat group (primary or supplementary, read from /proc). */
static bool peer_privileged(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct group *gr;
	char path[64], line[4096];
	bool ok = false;
	FILE *f;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0)
		return true;
	/* cppcheck-suppress getgrnamCalled ; the control socket lives on the loop thread only */
	gr = getgrnam(MOAT_CTL_GROUP);
	if (!gr)
		return false;
	if (cred.gid == gr->gr_gid)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)cred.pid);
	f = fopen(path, "re");
	while (f && !ok && fgets(line, sizeof(line), f)) {
		char *save = NULL;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (char *tok = strtok_r(line + 7, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save))
			ok |= (gid_t)strtoul(tok, NULL, 10) == gr->gr_gid;
	}
	if (f)
		fclose(f);
	return ok;
}

bool ctl_conn_privileged(const struct ctl_conn *c)
{
	return c->privileged;
}

void ctl_conn_stream(struct ctl_conn *c, ctl_close_fn close_fn, void *data)
{
	c->streaming = true;
	c->close_fn = close_fn;
	c->close_data = data;
}

static void conn_close(struct ctl_server *srv, struct conn *c)
{
	struct conn **pp;

	for (pp = &srv->conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	if (c->close_fn)
		c->close_fn(c, c->close_data);
	loop_fd_del(srv->loop, c->fd);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	srv->nconns--;
}

/* Appends one line; 0, or -ENOBUFS when the peer lets too much pile up, -ENOMEM. */
static int conn_queue(struct conn *c, const char *line, size_t len)
{
	size_t need;

	if (c->outoff) {	/* slide what is left to the front */
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	need = c->outlen + len + 1;
	if (need > CTL_STREAM_MAX_QUEUE)
		return -ENOBUFS;
	if (need > c->outcap) {
		char *out = realloc(c->out, need * 2);

		if (!out)
			return -ENOMEM;
		c->out = out;
		c->outcap = need * 2;
	}
	memcpy(c->out + c->outlen, line, len);
	c->out[c->outlen + len] = '\n';
	c->outlen = need;
	return 0;
}

/* Watches for what the connection waits on next: output to write, or the peer hanging up. */
static void conn_watch(struct ctl_server *srv, struct conn *c)
{
	uint32_t ev = c->outoff < c->outlen ? EPOLLOUT : EPOLLIN;

	loop_fd_del(srv->loop, c->fd);
	if (loop_fd_add(srv->loop, c->fd, ev, conn_event, srv) < 0)
		c->doomed = true;
}

/* Queues reply (consumed); one-shot connections close once it is written. */
static void conn_reply(struct ctl_server *srv, struct conn *c, json_t *reply)
{
	char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	const char *oom = "{\"ok\":false,\"error\":\"out of memory\"}";

	json_decref(reply);
	c->answered = true;
	if (conn_queue(c, s ? s : oom, strlen(s ? s : oom)) < 0)
		c->doomed = true;
	free(s);
	conn_watch(srv, c);
}

int ctl_conn_send(struct ctl_conn *c, json_t *msg)
{
	char *s;
	bool idle = c->outoff == c->outlen;
	int ret;

	if (c->local_send) {
		c->local_send(msg, c->local_data);
		return 0;
	}
	s = json_dumps(msg, JSON_COMPACT);
	ret = s ? conn_queue(c, s, strlen(s)) : -ENOMEM;

	free(s);
	if (ret == -ENOBUFS)
		c->doomed = true;	/* closed by the sweep, outside the caller's iteration */
	else if (!ret && idle)
		conn_watch(c->srv, c);
	return ret;
}

int ctl_request_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	const char *nl = memchr(buf, '\n', len);
	json_error_t jerr;
	json_t *req;

	if (!nl)
		return len > MOAT_CTL_MAX_REQUEST ? -EMSGSIZE : -EAGAIN;
	if ((size_t)(nl - buf) > MOAT_CTL_MAX_REQUEST)
		return -EMSGSIZE;
	req = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
	if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
		snprintf(err, errlen, "bad request: %s",
			 req ? "expected an object with a \"cmd\" string" : jerr.text);
		json_decref(req);
		return -EBADMSG;
	}
	*out = req;
	return 0;
}

static struct conn *conn_find(struct ctl_server *srv, int fd)
{
	struct conn *c;

	for (c = srv->conns; c && c->fd != fd; c = c->next)
		;
	return c;
}

static void conn_read(struct ctl_server *srv, struct conn *c)
{
	json_t *req = NULL;
	char msg[256];
	ssize_t n;
	int ret;

	if (c->answered) {	/* a stream's peer may only hang up */
		char sink[256];

		if (read(c->fd, sink, sizeof(sink)) <= 0 || !c->streaming)
			conn_close(srv, c);
		return;
	}
	n = read(c->fd, c->in + c->inlen, MOAT_CTL_MAX_REQUEST + 1 - c->inlen);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(srv, c);
		return;
	}
	c->inlen += (size_t)n;
	ret = ctl_request_parse(c->in, c->inlen, &req, msg, sizeof(msg));
	if (ret == -EAGAIN)
		return;
	if (ret)
		conn_reply(srv, c, ctl_reply_error(ret == -EMSGSIZE ? "request too large" : msg));
	else
		conn_reply(srv, c, srv->fn(req, c, srv->data));
	json_decref(req);
}

static void conn_write(struct ctl_server *srv, struct conn *c)
{
	ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(srv, c);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen)
		return;
	if (!c->streaming)
		conn_close(srv, c);
	else
		conn_watch(srv, c);
}

static void conn_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct ctl_server *srv = data;
	struct conn *c = conn_find(srv, fd);

	if (!c)
		return;
	if (c->doomed || (events & (EPOLLHUP | EPOLLERR) && c->answered))
		conn_close(srv, c);
	else if (c->outoff < c->outlen)
		conn_write(srv, c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(srv, c);
}

static void accept_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct ctl_server *srv = data;
	/* cppcheck-suppress nullPointer ; accept4 takes NULL addr and addrlen (no peer address) */
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct conn *c = NULL;

	if (cfd < 0)
		return;
	if (srv->nconns >= MAX_CONNS || !(c = calloc(1, sizeof(*c))) ||
	    !(c->in = malloc(MOAT_CTL_MAX_REQUEST + 1))) {
		log_warn("control socket: refusing a connection (%d open)", srv->nconns);
		free(c);
		close(cfd);
		return;
	}
	c->srv = srv;
	c->fd = cfd;
	c->privileged = peer_privileged(cfd);
	c->deadline = loop_now_ms() + MOAT_CTL_TIMEOUT_MS;
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	if (loop_fd_add(loop, cfd, EPOLLIN, conn_event, srv) < 0)
		conn_close(srv, c);
}

/* Closes connections past their deadline: half-sent requests and peers that never read. */
static void sweep(struct loop *loop, void *data)
{
	struct ctl_server *srv = data;
	uint64_t now = loop_now_ms();
	struct conn *c = srv->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->doomed || (!c->streaming &&
				  now > c->deadline + (c->answered ? 10 * MOAT_CTL_TIMEOUT_MS : 0)))
			conn_close(srv, c);
	}
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* cppcheck-suppress getgrnamCalled ; the control socket lives on the loop thread only */
	struct group *gr = getgrnam(MOAT_CTL_GROUP);
	char dir[sizeof(sa.sun_path)];
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = '\0';
		mkdir(dir, 0755);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    (gr && chown(path, 0, gr->gr_gid) < 0) || listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int ctl_server_new(struct loop *loop, const char *path, ctl_handler_fn fn, void *data,
		   struct ctl_server **out)
{
	struct ctl_server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		return -ENOMEM;
	}
	srv->loop = loop;
	srv->fn = fn;
	srv->data = data;
	srv->fd = listen_on(path);
	ret = srv->fd < 0 ? srv->fd : loop_fd_add(loop, srv->fd, EPOLLIN, accept_event, srv);
	if (!ret) {
		srv->sweep_timer = loop_timer_add(loop, 500, 1, sweep, srv);
		ret = srv->sweep_timer < 0 ? srv->sweep_timer : 0;
	}
	if (ret) {
		if (srv->fd >= 0)
			close(srv->fd);
		free(srv->path);
		free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

void ctl_server_free(struct ctl_server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_close(srv, srv->conns);
	loop_timer_del(srv->loop, srv->sweep_timer);
	loop_fd_del(srv->loop, srv->fd);
	close(srv->fd);
	unlink(srv->path);
	free(srv->path);
	free(srv);
}

/* ---- connections from inside moatd ---- */

int ctl_conn_local_new(ctl_local_send_fn send, void *data, struct ctl_conn **out)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->answered = true;
	c->local_send = send;
	c->local_data = data;
	*out = c;
	return 0;
}

void ctl_conn_local_free(struct ctl_conn *c)
{
	if (!c)
		return;
	if (c->close_fn)
		c->close_fn(c, c->close_data);
	free(c);
}
