/* The endpoints file room (file.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "moat/errors.h"

#define CHECK_EVERY_MS 5000

struct epfile {
	const char *path;
	struct epstore *store;
	epfile_changed_fn changed;
	void *data;
	struct timespec mtime;
	bool read;			/* a good file was read */
	int inotify;
};

int epfile_new(const char *path, struct epstore *store, epfile_changed_fn changed, void *data,
	       struct epfile **out)
{
	struct epfile *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	*f = (struct epfile){ path, store, changed, data, .inotify = -1 };
	*out = f;
	return 0;
}

void epfile_free(struct epfile *f)
{
	if (!f)
		return;
	if (f->inotify >= 0)
		close(f->inotify);
	free(f);
}

int epfile_read(struct epfile *f)
{
	struct moat_endpoint_set *set = NULL;
	struct moat_diags diags = { 0 };
	struct stat st;
	int ret;

	if (stat(f->path, &st) < 0)
		return 0;
	if (f->read && st.st_mtim.tv_sec == f->mtime.tv_sec && st.st_mtim.tv_nsec == f->mtime.tv_nsec)
		return 0;
	f->mtime = st.st_mtim;
	ret = moat_endpoint_set_load(f->path, &set, &diags);
	log_diags(&diags);
	moat_diags_free(&diags);
	if (ret) {
		log_error("endpoints file %s is not valid; keeping the last good one", f->path);
		return 0;
	}
	ret = epstore_replace(f->store, EPSOURCE_FILE, set);
	if (!ret)
		ret = epstore_subnets(f->store, EPSOURCE_FILE, set->subnets, set->nsubnets);
	moat_endpoint_set_free(set);
	if (ret)
		return ret;
	f->read = true;
	return 1;
}

static void check(struct epfile *f, uint64_t t0)
{
	int ret = epfile_read(f);

	if (ret < 0)
		log_warn("endpoints file %s: %s; reading it again later", f->path, strerror(-ret));
	if (ret < 0)
		f->read = false;	/* the store holds part of it: read it whole again */
	if (ret > 0)
		f->changed(f->data, t0);
}

/* The safety net under inotify (a file on a file system that does not notify). */
static void tick(struct loop *loop, void *data)
{
	check(data, loop_now_us());
}

/* Any change in the file's directory (editors and `mv` replace the file): check its mtime. */
static void on_inotify(struct loop *loop, int fd, uint32_t events, void *data)
{
	uint64_t t0 = loop_now_us();
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	check(data, t0);
}

int epfile_start(struct epfile *f, struct loop *loop)
{
	char dir[4096], *slash;
	int ret;

	snprintf(dir, sizeof(dir), "%s", f->path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = 0;
	f->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->inotify < 0 || inotify_add_watch(f->inotify, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
						IN_CREATE | IN_DELETE) < 0) {
		log_warn("cannot watch %s (%s); checking it every 5 s", dir, strerror(errno));
		ret = loop_timer_add(loop, CHECK_EVERY_MS, 1, tick, f);
		return ret < 0 ? ret : 0;
	}
	return loop_fd_add(loop, f->inotify, EPOLLIN, on_inotify, f);
}
