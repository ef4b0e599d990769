/*
 * The control socket's place (daemon/ctl.c): a directory another user could write to is
 * refused, and so is one under a directory they could write to (unless sticky); the socket
 * appears under its name already 0660 (bound elsewhere and renamed in: the name is never
 * created in place), replacing a stale one, and leaves nothing behind.
 * Its replies: one over 4 MiB arrives whole; one over MOAT_CTL_MAX_REPLY is an error that
 * names the limit, never a silent close; an answer fed in parts arrives whole and in order
 * while the server queues little of it at a time.
 * Its sweep: a request that never ends is closed after MOAT_CTL_TIMEOUT_MS, and only then
 * does the server wake by itself: an idle server, or one with only a follower, never does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../daemon/ctl.h"
#include "../../daemon/log.h"
#include "check.h"
#include "moat/ctl.h"

static json_t *answer(json_t *req, struct ctl_conn *conn, void *data)
{
	return json_pack("{s:b}", "ok", 1);
}

/* ctl_server_new on dir/moat.sock; the server is freed at once. */
static int serve(struct loop *loop, const char *dir)
{
	struct ctl_server *srv = NULL;
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/moat.sock", dir);
	ret = ctl_server_new(loop, path, answer, NULL, &srv);
	ctl_server_free(srv);
	return ret;
}

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* Directories others may write to: refused, nothing created. */
static void test_refused(struct loop *loop, const char *top)
{
	char dir[256], sub[320];

	snprintf(dir, sizeof(dir), "%s/open", top);
	CHECK(mkdir(dir, 0700) == 0 && chmod(dir, 0777) == 0);
	CHECK(serve(loop, dir) == -EPERM);
	CHECK(!exists(dir, "moat.sock"));
	CHECK(chmod(dir, 0775) == 0);		/* group-writable is as bad */
	CHECK(serve(loop, dir) == -EPERM);
	CHECK(chmod(dir, 01777) == 0);		/* sticky does not help the socket's own dir */
	CHECK(serve(loop, dir) == -EPERM);
	/* a parent others may write to could have the directory renamed away and replaced */
	CHECK(chmod(dir, 0777) == 0);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	CHECK(mkdir(sub, 0755) == 0);
	CHECK(serve(loop, sub) == -EPERM);
	CHECK(!exists(sub, "moat.sock"));
	CHECK(chmod(dir, 01777) == 0);		/* ... unless it is sticky, as /tmp */
	CHECK(serve(loop, sub) == 0);
	if (geteuid() == 0) {	/* owned by another user */
		CHECK(chown(sub, 65534, 65534) == 0 && chmod(sub, 0755) == 0);
		CHECK(serve(loop, sub) == -EPERM);
	} else {
		printf("not root: the other-owner case is left to tests/e2e/52-control-socket.sh\n");
	}
}

/* The name appears by a rename, already 0660; a stale socket is replaced; nothing is left. */
static void test_appears_ready(struct loop *loop, const char *top)
{
	struct ctl_server *srv = NULL;
	char dir[256], path[320], ev[4096];
	bool created = false, moved = false;
	struct stat st;
	int in;
	ssize_t n;

	snprintf(dir, sizeof(dir), "%s/run", top);
	snprintf(path, sizeof(path), "%s/moat.sock", dir);
	CHECK(mkdir(dir, 0755) == 0);
	CHECK(close(open(path, O_CREAT | O_WRONLY, 0666)) == 0);	/* stale */
	in = inotify_init1(IN_NONBLOCK);
	CHECK(in >= 0 && inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) >= 0);
	CHECK(ctl_server_new(loop, path, answer, NULL, &srv) == 0);
	while ((n = read(in, ev, sizeof(ev))) > 0)
		for (char *p = ev; p < ev + n; p += sizeof(struct inotify_event) +
		     ((struct inotify_event *)p)->len) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (!e->len || strcmp(e->name, "moat.sock"))
				continue;
			created |= (e->mask & IN_CREATE) != 0;
			moved |= (e->mask & IN_MOVED_TO) != 0;
		}
	CHECK(!created && moved);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0660);
	CHECK(st.st_uid == geteuid());
	ctl_server_free(srv);
	CHECK(!exists(dir, "moat.sock"));
	/* only what the test made is left in the directory */
	CHECK(rmdir(dir) == 0);
	close(in);
}

/* ---- replies, served by a child process ---- */

#define FEED_LINES 20000

struct feed {
	size_t next;
	size_t most_queued;	/* reported back on the last line */
};

static int feed_one(struct ctl_conn *conn, void *data)
{
	struct feed *f = data;
	char pad[200];
	json_t *line;
	int ret;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	line = f->next == FEED_LINES ? json_pack("{s:b}", "end", 1)
				     : json_pack("{s:I,s:s}", "n", (json_int_t)f->next, "pad", pad);
	ret = ctl_conn_send(conn, line);
	json_decref(line);
	return ret < 0 ? ret : f->next++ < FEED_LINES;
}

static void feed_closed(struct ctl_conn *conn, void *data)
{
	free(data);
}

/* "big N": a reply with a string of N bytes; "feed": FEED_LINES lines after the reply. */
static json_t *replies(json_t *req, struct ctl_conn *conn, void *data)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	size_t n = (size_t)json_integer_value(json_object_get(req, "n"));
	json_t *reply;
	char *s;

	if (!strcmp(cmd, "feed")) {
		ctl_conn_feed(conn, feed_one, feed_closed, calloc(1, sizeof(struct feed)));
		return json_pack("{s:b}", "ok", 1);
	}
	s = malloc(n + 1);
	if (!s)
		return NULL;
	memset(s, 'y', n);
	s[n] = '\0';
	reply = json_pack("{s:b,s:s}", "ok", 1, "big", s);
	free(s);
	return reply;
}

/* Sends req on a new connection to path and reads until the server closes; the bytes. */
static char *ask(const char *path, const char *req, size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	ssize_t n;

	*len = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || !buf || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + *len, cap - *len - 1)) > 0) {
		*len += (size_t)n;
		if (cap - *len < 2 && !(buf = realloc(buf, cap *= 2)))
			break;
	}
	close(fd);
	if (buf)
		buf[*len] = '\0';
	return buf;
}

/* Every line of a fed answer, in order, then its end. */
static void check_fed(const char *text)
{
	size_t want = 0, lines = 0;
	bool head = false, end = false;

	for (const char *at = text, *nl; (nl = strchr(at, '\n')); at = nl + 1, lines++) {
		json_t *j = json_loadb(at, (size_t)(nl - at), 0, NULL);

		if (!lines)
			head = json_is_true(json_object_get(j, "ok"));
		else if (json_is_true(json_object_get(j, "end")))
			end = true;
		else if (json_integer_value(json_object_get(j, "n")) == (json_int_t)want)
			want++;
		json_decref(j);
	}
	CHECK(head && end && want == FEED_LINES && lines == FEED_LINES + 2);
}

static void test_replies(const char *top)
{
	struct loop *loop = NULL;
	struct ctl_server *srv = NULL;
	char dir[256], path[320], req[128], *got;
	size_t len;
	json_t *j;
	pid_t child;
	int status;

	snprintf(dir, sizeof(dir), "%s/replies", top);
	snprintf(path, sizeof(path), "%s/moat.sock", dir);
	CHECK(mkdir(dir, 0755) == 0);
	child = fork();
	if (child == 0) {	/* the server, until killed */
		if (loop_new(&loop) || ctl_server_new(loop, path, replies, NULL, &srv))
			_exit(1);
		loop_run(loop);
		_exit(0);
	}
	for (int i = 0; i < 100 && access(path, F_OK); i++)
		usleep(20000);
	/* 5 MiB: over the old 4 MiB queue bound, which closed the connection silently */
	snprintf(req, sizeof(req), "{\"cmd\":\"big\",\"n\":%u}\n", 5u << 20);
	got = ask(path, req, &len);
	j = got ? json_loads(got, 0, NULL) : NULL;
	CHECK(json_is_true(json_object_get(j, "ok")));
	CHECK(json_string_length(json_object_get(j, "big")) == 5u << 20);
	json_decref(j);
	free(got);
	/* over the limit: an error that names it */
	snprintf(req, sizeof(req), "{\"cmd\":\"big\",\"n\":%u}\n", MOAT_CTL_MAX_REPLY);
	got = ask(path, req, &len);
	j = got ? json_loads(got, 0, NULL) : NULL;
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK(got && strstr(got, "the reply to big is ") && strstr(got, " bytes, over the control "
	      "socket's limit of 64 MiB (MOAT_CTL_MAX_REPLY): ask for less"));
	json_decref(j);
	free(got);
	got = ask(path, "{\"cmd\":\"feed\"}\n", &len);
	CHECK(got && len > (size_t)FEED_LINES * 200);	/* more than any queue holds at once */
	if (got)
		check_fed(got);
	free(got);
	kill(child, SIGKILL);
	CHECK(waitpid(child, &status, 0) == child);
}

/* "follow": a stream that waits for news, as a follower of flows. */
static json_t *follows(json_t *req, struct ctl_conn *conn, void *data)
{
	ctl_conn_stream(conn, NULL, NULL);
	return json_pack("{s:b}", "ok", 1);
}

static void stop(struct loop *loop, void *data)
{
	loop_stop(loop);
}

/* Runs loop for ms; how often it woke, the stopping timer included. */
static uint64_t run_for(struct loop *loop, unsigned ms)
{
	uint64_t w0 = loop_wakeups(loop);

	loop_timer_add(loop, ms, 0, stop, NULL);
	loop_run(loop);
	return loop_wakeups(loop) - w0;
}

static int client(const char *path, const char *text)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			write(fd, text, strlen(text)) != (ssize_t)strlen(text))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Has the server closed fd (EOF after whatever it sent)? */
static bool closed_by_server(int fd)
{
	char buf[256];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	return n == 0;
}

static void test_sweep(const char *top)
{
	struct loop *loop = NULL;
	struct ctl_server *srv = NULL;
	char dir[256], path[320];
	int half, fol;

	snprintf(dir, sizeof(dir), "%s/sweep", top);
	snprintf(path, sizeof(path), "%s/moat.sock", dir);
	CHECK(mkdir(dir, 0755) == 0);
	CHECK(loop_new(&loop) == 0);
	if (!loop || ctl_server_new(loop, path, follows, NULL, &srv) < 0) {
		CHECK(!"server");
		loop_free(loop);
		return;
	}
	CHECK(run_for(loop, 1200) == 1);		/* idle: only the stopping timer */
	half = client(path, "{\"cmd\":");		/* never ends its line */
	CHECK(half >= 0);
	run_for(loop, MOAT_CTL_TIMEOUT_MS + 1200);
	CHECK(half >= 0 && closed_by_server(half));	/* the sweep closed it */
	fol = client(path, "{\"cmd\":\"follow\"}\n");
	CHECK(fol >= 0);
	run_for(loop, 300);				/* accepted, answered */
	CHECK(run_for(loop, 1200) == 1);		/* a follower has no deadline */
	CHECK(fol >= 0 && !closed_by_server(fol));	/* and stays */
	if (half >= 0)
		close(half);
	if (fol >= 0)
		close(fol);
	ctl_server_free(srv);
	loop_free(loop);
}

int main(void)
{
	char top[] = "/tmp/moat-ctl-unit.XXXXXX";
	struct loop *loop = NULL;
	char cmd[PATH_MAX + 16];

	log_setup("error", "text");
	CHECK(mkdtemp(top) != NULL);
	CHECK(loop_new(&loop) == 0);
	if (loop) {
		test_refused(loop, top);
		test_appears_ready(loop, top);
		test_replies(top);
		test_sweep(top);
	}
	loop_free(loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	CHECK(system(cmd) == 0);
	return check_done();
}
