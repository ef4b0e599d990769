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
#define CTL_SWEEP_MS 500	/* how late past its deadline a connection may close */

struct ctl_conn {
	struct ctl_server *srv;
	int fd;
	bool privileged;
	bool answered;		/* the request is handled; only output from now on */
	bool streaming;
	bool doomed;		/* close at the next chance (queue overflow) */
	uint64_t deadline;	/* fed: pushed on by every write that makes progress */
	ctl_feed_fn feed;	/* pulls more output while the queue is short; NULL when done */
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
	int sweep_timer;	/* while a connection has a deadline or is doomed, else 0 */
};

static void conn_event(struct loop *loop, int fd, uint32_t events, void *data);
static void sweep_update(struct ctl_server *srv);

json_t *ctl_reply_error(const char *msg)
{
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/*
 * Is gid among the peer's supplementary groups, as they were when it connected
 * (SO_PEERGROUPS)? Not /proc/PID/status: the PID may be another process's by now, or in a
 * PID namespace moatd's /proc does not show (moatd in a container).
 */
static bool peer_has_group(int fd, gid_t gid)
{
	gid_t some[64], *v = some;
	socklen_t len = sizeof(some);
	bool ok = false;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, v, &len) < 0) {
		if (errno != ERANGE || !(v = malloc(len)))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, v, &len) < 0)
			len = 0;
	}
	for (size_t i = 0; i < len / sizeof(*v) && !ok; i++)
		ok = v[i] == gid;
	if (v != some)
		free(v);
	return ok;
}

/* Root, or a member of the moat group (primary or supplementary), as of connect(). */
static bool peer_privileged(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct group *gr;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0)
		return true;
	/* cppcheck-suppress getgrnamCalled ; the control socket lives on the loop thread only */
	gr = getgrnam(MOAT_CTL_GROUP);
	return gr && (cred.gid == gr->gr_gid || peer_has_group(fd, gr->gr_gid));
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

void ctl_conn_feed(struct ctl_conn *c, ctl_feed_fn feed, ctl_close_fn close_fn, void *data)
{
	ctl_conn_stream(c, close_fn, data);
	c->feed = feed;
}

/*
 * Tops a fed connection's queue up to CTL_FEED_LOW bytes, for at most CTL_FEED_BUDGET_US
 * of this turn of the loop (every call queues something, so EPOLLOUT brings the rest). The
 * last call (0) turns the connection one-shot: it closes once written.
 */
static void conn_fill(struct conn *c)
{
	uint64_t t0 = loop_now_us();

	while (c->feed && !c->doomed && c->outlen - c->outoff < CTL_FEED_LOW &&
	       loop_now_us() - t0 < CTL_FEED_BUDGET_US) {
		int ret = c->feed(c, c->close_data);

		if (ret > 0)
			continue;
		c->feed = NULL;
		c->streaming = false;
		c->doomed |= ret < 0;
	}
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

/* Appends one line; 0, or -ENOBUFS when more than max bytes would be queued, -ENOMEM. */
static int conn_queue(struct conn *c, const char *line, size_t len, size_t max)
{
	size_t need;

	if (c->outoff) {	/* slide what is left to the front */
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	need = c->outlen + len + 1;
	if (need > max)
		return -ENOBUFS;
	if (need > c->outcap) {
		size_t cap = c->outlen ? need * 2 : need;	/* a reply alone: its size */
		char *out = realloc(c->out, cap);

		if (!out)
			return -ENOMEM;
		c->out = out;
		c->outcap = cap;
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

/*
 * Queues reply (consumed); one-shot connections close once it is written. A reply over
 * MOAT_CTL_MAX_REPLY bytes is replaced by an error that says so: the peer learns why, where
 * a silent close would read as a protocol error.
 */
static void conn_reply(struct ctl_server *srv, struct conn *c, json_t *reply, const char *cmd)
{
	char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL, big[512];
	const char *oom = "{\"ok\":false,\"error\":\"out of memory\"}", *line = s ? s : oom;
	json_t *err;

	json_decref(reply);
	c->answered = true;
	if (strlen(line) > MOAT_CTL_MAX_REPLY) {
		snprintf(big, sizeof(big), "the reply to %.64s is %zu bytes, over the control "
			 "socket's limit of %u MiB (MOAT_CTL_MAX_REPLY): ask for less", cmd,
			 strlen(line), MOAT_CTL_MAX_REPLY >> 20);
		err = ctl_reply_error(big);
		free(s);
		s = err ? json_dumps(err, JSON_COMPACT) : NULL;
		json_decref(err);
		line = s ? s : oom;
		log_warn("control socket: %s", big);
	}
	if (conn_queue(c, line, strlen(line), MOAT_CTL_MAX_REPLY + 1) < 0)
		c->doomed = true;
	free(s);
	conn_fill(c);
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
	ret = s ? conn_queue(c, s, strlen(s), CTL_STREAM_MAX_QUEUE) : -ENOMEM;

	free(s);
	if (ret == -ENOBUFS)
		c->doomed = true;	/* closed by the sweep, outside the caller's iteration */
	else if (!ret && idle)
		conn_watch(c->srv, c);
	if (c->doomed)
		sweep_update(c->srv);
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
		conn_reply(srv, c, ctl_reply_error(ret == -EMSGSIZE ? "request too large" : msg),
			   "?");
	else
		conn_reply(srv, c, srv->fn(req, c, srv->data),
			   json_string_value(json_object_get(req, "cmd")));
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
	c->deadline = loop_now_ms() + MOAT_CTL_TIMEOUT_MS;
	conn_fill(c);
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
	sweep_update(srv);
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
	sweep_update(srv);
}

/* Has c a deadline (a request or a reply on its way; a fed stream: its peer must read), or
 * is it to be closed? A plain stream (a follower) waits for news as long as its peer stays. */
static bool conn_sweepable(const struct conn *c)
{
	return c->doomed || !c->streaming || c->feed;
}

static bool sweep_needed(const struct ctl_server *srv)
{
	for (const struct conn *c = srv->conns; c; c = c->next)
		if (conn_sweepable(c))
			return true;
	return false;
}

/* Closes connections past their deadline: half-sent requests and peers that never read.
 * Runs only while some connection could be (sweep_update): an idle moatd wakes for nothing. */
static void sweep(struct loop *loop, void *data)
{
	struct ctl_server *srv = data;
	uint64_t now = loop_now_ms();
	struct conn *c = srv->conns, *next;

	for (; c; c = next) {
		next = c->next;
		/* a fed stream whose peer stopped reading: as a one-shot reply nobody reads */
		if (c->doomed || ((!c->streaming || c->feed) &&
				  now > c->deadline + (c->answered ? 10 * MOAT_CTL_TIMEOUT_MS : 0)))
			conn_close(srv, c);
	}
	sweep_update(srv);
}

/* After anything that may give a connection a deadline, doom it or end it: the sweep runs
 * (every CTL_SWEEP_MS) while one is left, and only then. A timer that cannot be made leaves
 * the connection to its peer: it closes when the peer hangs up, as any other. */
static void sweep_update(struct ctl_server *srv)
{
	bool needed = sweep_needed(srv);
	int id;

	if (srv->sweep_timer && !needed) {
		loop_timer_del(srv->loop, srv->sweep_timer);
		srv->sweep_timer = 0;
	}
	if (srv->sweep_timer || !needed)
		return;
	id = loop_timer_add(srv->loop, CTL_SWEEP_MS, 1, sweep, srv);
	if (id > 0)
		srv->sweep_timer = id;
}

/*
 * May dir hold the socket? Its owner must be root (or moatd's own user) and nobody else may
 * write to it, nor to a directory above it unless that one is sticky (as /tmp): whoever can
 * rename or replace an entry on the way could swap the socket, or its directory, for their
 * own. dir is a canonical path (no symlinks). 0, or -EPERM after saying why in the log.
 */
static int dir_check(const char *dir)
{
	char *copy = strdup(dir), *at;
	struct stat st;
	bool own = true;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (at = copy + strlen(copy); !ret && at; own = false) {
		char keep = *at;

		*at = '\0';
		if (stat(*copy ? copy : "/", &st) < 0)
			ret = -errno;
		else if (st.st_uid != 0 && st.st_uid != geteuid())
			ret = -EPERM, log_error("control socket: %s is owned by uid %u, not root: "
						"refusing to serve there", *copy ? copy : "/",
						(unsigned)st.st_uid);
		else if ((st.st_mode & 022) && (own || !(st.st_mode & S_ISVTX)))
			ret = -EPERM, log_error("control socket: %s is writable by %s (mode %04o): "
						"refusing to serve there (chmod go-w it)",
						*copy ? copy : "/", st.st_mode & 02 ? "everyone" :
						"its group", (unsigned)(st.st_mode & 07777));
		*at = keep;
		at = *copy && at > copy ? memrchr(copy, '/', (size_t)(at - copy)) : NULL;
	}
	free(copy);
	return ret;
}

/* The canonical directory of path (created 0755 when missing) and its last component. */
static int path_split(const char *path, char **dir, const char **base)
{
	const char *slash = strrchr(path, '/');
	char *d = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	char *real;

	if (!d)
		return -ENOMEM;
	if (mkdir(d, 0755) < 0 && errno != EEXIST) {
		free(d);
		return -errno;
	}
	real = realpath(d, NULL);
	free(d);
	if (!real)
		return -errno;
	*dir = real;
	*base = slash ? slash + 1 : path;
	return **base ? 0 : (free(real), -EINVAL);
}

/* sa = dir/name; -ENAMETOOLONG when it does not fit. */
static int sun_set(struct sockaddr_un *sa, const char *dir, const char *name)
{
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);

	return n < 0 || (size_t)n >= sizeof(sa->sun_path) ? -ENAMETOOLONG : 0;
}

/*
 * A listening socket at tmp (in a directory only moatd can enter), mode 0660, group moat
 * when that group exists: chmod and chown through that path are safe, as nobody else can
 * swap what it names. Returns the fd or -errno.
 */
static int socket_make(const struct sockaddr_un *tmp)
{
	/* cppcheck-suppress getgrnamCalled ; the control socket lives on the loop thread only */
	struct group *gr = getgrnam(MOAT_CTL_GROUP);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)tmp, sizeof(*tmp)) < 0 ||
	    chmod(tmp->sun_path, 0660) < 0 ||
	    (gr && chown(tmp->sun_path, (uid_t)-1, gr->gr_gid) < 0) ||
	    listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Listens on path. The socket is bound, given its mode and group and set listening in a
 * private directory beside path, then renamed over path: the name appears ready, never for
 * a moment with another mode or group, and replaces a stale socket atomically.
 */
static int listen_on(const char *path, char **real_path)
{
	struct sockaddr_un tmp = { .sun_family = AF_UNIX }, at = { .sun_family = AF_UNIX };
	char *dir = NULL, priv[sizeof(tmp.sun_path)] = "";
	const char *base = NULL;
	int fd = -1, ret = path_split(path, &dir, &base);

	ret = ret ? ret : dir_check(dir);
	ret = ret ? ret : sun_set(&at, dir, base);
	if (!ret && snprintf(priv, sizeof(priv), "%s/.moat-XXXXXX", dir) >= (int)sizeof(priv))
		ret = -ENAMETOOLONG;
	if (!ret && !mkdtemp(priv))
		ret = -errno;
	if (ret)
		priv[0] = '\0';
	ret = ret ? ret : sun_set(&tmp, priv, "s");
	if (!ret && (fd = socket_make(&tmp)) < 0)
		ret = fd;
	if (!ret && rename(tmp.sun_path, at.sun_path) < 0)
		ret = -errno;
	if (!ret && !(*real_path = strdup(at.sun_path)))
		ret = -ENOMEM, unlink(at.sun_path);
	if (ret && fd >= 0)
		close(fd);
	if (ret && tmp.sun_path[0])
		unlink(tmp.sun_path);
	if (priv[0])
		rmdir(priv);
	free(dir);
	return ret ? ret : fd;
}

int ctl_server_new(struct loop *loop, const char *path, ctl_handler_fn fn, void *data,
		   struct ctl_server **out)
{
	struct ctl_server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->fn = fn;
	srv->data = data;
	srv->fd = listen_on(path, &srv->path);
	ret = srv->fd < 0 ? srv->fd : loop_fd_add(loop, srv->fd, EPOLLIN, accept_event, srv);
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
	if (srv->sweep_timer)
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
