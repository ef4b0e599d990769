/*
 * The control socket's place (daemon/ctl.c): a directory another user could write to is
 * refused, and so is one under a directory they could write to (unless sticky); the socket
 * appears under its name already 0660 (bound elsewhere and renamed in: the name is never
 * created in place), replacing a stale one, and leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../daemon/ctl.h"
#include "../../daemon/log.h"
#include "check.h"

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
	}
	loop_free(loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	CHECK(system(cmd) == 0);
	return check_done();
}
