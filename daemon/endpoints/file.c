/*
 * The endpoints file room (file.h). A directory is a set of parts, one per file: a change to
 * one file reads that file alone and changes, in the store, the names its endpoints had or
 * have; when two files name the same endpoint, the first file (in name order) wins.
 */
#include <dirent.h>
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
#define MAX_PARTS 4096

/* One file: the endpoints it had when last read well. */
struct part {
	char *name;			/* the file's name in the directory (or the path) */
	struct timespec mtime;
	struct moat_endpoint_set *set;	/* NULL: never read well */
};

struct epfile {
	const char *path;
	bool dir;
	struct epstore *store;
	epfile_changed_fn changed;
	void *data;
	struct part *parts;		/* sorted by name */
	size_t nparts;
	int inotify;
};

int epfile_new(const char *path, struct epstore *store, epfile_changed_fn changed, void *data,
	       struct epfile **out)
{
	struct epfile *f = calloc(1, sizeof(*f));
	struct stat st;

	if (!f)
		return -ENOMEM;
	*f = (struct epfile){ .path = path, .dir = !stat(path, &st) && S_ISDIR(st.st_mode),
			      .store = store, .changed = changed, .data = data, .inotify = -1 };
	*out = f;
	return 0;
}

static void part_clear(struct part *p)
{
	free(p->name);
	moat_endpoint_set_free(p->set);
}

void epfile_free(struct epfile *f)
{
	if (!f)
		return;
	if (f->inotify >= 0)
		close(f->inotify);
	for (size_t i = 0; i < f->nparts; i++)
		part_clear(&f->parts[i]);
	free(f->parts);
	free(f);
}

static bool part_named(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".yaml")) ||
				  (n > 4 && !strcmp(name + n - 4, ".yml")) ||
				  (n > 5 && !strcmp(name + n - 5, ".json")));
}

static void part_path(const struct epfile *f, const struct part *p, char *buf, size_t len)
{
	if (f->dir)
		snprintf(buf, len, "%s/%s", f->path, p->name);
	else
		snprintf(buf, len, "%s", f->path);
}

/* The part of that name, added (in order) when absent and add; NULL when absent or ENOMEM. */
static struct part *part_of(struct epfile *f, const char *name, bool add)
{
	size_t lo = 0, hi = f->nparts;
	struct part *v;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(f->parts[mid].name, name);

		if (!c)
			return &f->parts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!add || f->nparts == MAX_PARTS || !(v = realloc(f->parts, (f->nparts + 1) * sizeof(*v))))
		return NULL;
	f->parts = v;
	memmove(&v[lo + 1], &v[lo], (f->nparts - lo) * sizeof(*v));
	v[lo] = (struct part){ .name = strdup(name) };
	f->nparts++;
	return v[lo].name ? &v[lo] : NULL;
}

/* ---- what the parts give the store ---- */

/* The winning endpoint of ns/name: the first part's that has it. */
static const struct moat_endpoint *winner(const struct epfile *f, const char *ns, const char *name)
{
	for (size_t i = 0; i < f->nparts; i++) {
		long k = f->parts[i].set ? moat_endpoint_set_find(f->parts[i].set, ns, name) : -1;

		if (k >= 0)
			return &f->parts[i].set->v[k];
	}
	return NULL;
}

/* The store's file source gets the winner of ns/name, or loses the name. */
static int name_settle(struct epfile *f, const char *ns, const char *name)
{
	const struct moat_endpoint *w = winner(f, ns, name);

	return w ? epstore_put(f->store, EPSOURCE_FILE, w) : epstore_del(f->store, EPSOURCE_FILE, ns, name);
}

/* Every part's namespaces (the first part's labels win) and subnets, merged. */
static int merged(struct epfile *f)
{
	struct moat_endpoint_set *all = moat_endpoint_set_new();
	size_t n = 0;
	int ret = all ? 0 : -ENOMEM;

	for (size_t i = f->nparts; i-- > 0 && !ret;)
		for (size_t k = 0; f->parts[i].set && k < f->parts[i].set->nnss && !ret; k++)
			ret = moat_endpoint_set_add_namespace(all, f->parts[i].set->nss[k].name,
							      &f->parts[i].set->nss[k].labels);
	for (size_t i = 0; i < f->nparts; i++)
		n += f->parts[i].set ? f->parts[i].set->nsubnets : 0;
	if (!ret && n && !(all->subnets = calloc(n, sizeof(*all->subnets))))
		ret = -ENOMEM;
	for (size_t i = 0; i < f->nparts && !ret; i++)
		for (size_t k = 0; f->parts[i].set && k < f->parts[i].set->nsubnets; k++)
			all->subnets[all->nsubnets++] = f->parts[i].set->subnets[k];
	if (!ret)
		ret = epstore_namespaces(f->store, EPSOURCE_FILE, all);
	if (!ret)
		ret = epstore_subnets(f->store, EPSOURCE_FILE, all->subnets, all->nsubnets);
	moat_endpoint_set_free(all);
	return ret;
}

/* Do a and b (either NULL: none) give the same namespaces' labels and subnets? */
static bool same_frame(const struct moat_endpoint_set *a, const struct moat_endpoint_set *b)
{
	size_t na = a ? a->nnss : 0, nb = b ? b->nnss : 0, sa = a ? a->nsubnets : 0;

	if (na != nb || sa != (b ? b->nsubnets : 0) ||
	    (sa && memcmp(a->subnets, b->subnets, sa * sizeof(*a->subnets))))
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a->nss[i].name, b->nss[i].name) ||
		    !moat_labels_equal(&a->nss[i].labels, &b->nss[i].labels))
			return false;
	return true;
}

/*
 * p had old and has p->set now: the names of either settle anew, and when its namespaces or
 * subnets differ, every part's are merged again. Cost: the two sets (a part that changed),
 * times the parts for each name.
 */
static int part_settle(struct epfile *f, const struct part *p, const struct moat_endpoint_set *old)
{
	int ret = 0;

	for (size_t i = 0; old && i < old->n && !ret; i++)
		if (!p->set || moat_endpoint_set_find(p->set, old->v[i].namespace, old->v[i].name) < 0)
			ret = name_settle(f, old->v[i].namespace, old->v[i].name);
	for (size_t i = 0; p->set && i < p->set->n && !ret; i++)
		ret = name_settle(f, p->set->v[i].namespace, p->set->v[i].name);
	if (!ret && !same_frame(old, p->set))
		ret = merged(f);
	return ret;
}

/*
 * Reads part p when its mtime changed (gone: the file was removed). 1 when the store changed,
 * 0 when not (unchanged, or broken: logged, the last good one stays), -ENOMEM.
 */
static int part_read(struct epfile *f, struct part *p)
{
	struct moat_endpoint_set *set = NULL, *old = p->set;
	struct moat_diags diags = { 0 };
	char path[4096];
	struct stat st;
	int ret;

	part_path(f, p, path, sizeof(path));
	if (stat(path, &st) < 0) {
		if (!old)
			return 0;
		p->set = NULL;
		ret = part_settle(f, p, old);
		moat_endpoint_set_free(old);
		return ret ? ret : 1;
	}
	if (old && st.st_mtim.tv_sec == p->mtime.tv_sec && st.st_mtim.tv_nsec == p->mtime.tv_nsec)
		return 0;
	p->mtime = st.st_mtim;
	ret = moat_endpoint_set_load(path, &set, &diags);
	log_diags(&diags);
	moat_diags_free(&diags);
	if (ret) {
		log_error("endpoints file %s is not valid; keeping the last good one", path);
		return 0;
	}
	p->set = set;
	ret = part_settle(f, p, old);
	moat_endpoint_set_free(old);
	if (ret)
		p->mtime = (struct timespec){ 0 };	/* read it whole again next time */
	return ret ? ret : 1;
}

/* Every file of the directory (or the one file): new ones, changed ones, removed ones. */
int epfile_read(struct epfile *f)
{
	DIR *d = f->dir ? opendir(f->path) : NULL;
	struct dirent *de;
	int ret = 0, changed = 0;

	if (!f->dir && !part_of(f, f->path, true))
		return -ENOMEM;
	/* cppcheck-suppress readdirCalled ; readdir_r is deprecated; d is this call's own stream */
	while (d && !ret && (de = readdir(d)))
		if (part_named(de->d_name) && !part_of(f, de->d_name, true))
			ret = -ENOMEM;
	if (d)
		closedir(d);
	for (size_t i = 0; i < f->nparts && ret >= 0; i++) {
		ret = part_read(f, &f->parts[i]);
		changed |= ret > 0;
	}
	return ret < 0 ? ret : changed;
}

static void report(struct epfile *f, int ret, uint64_t t0)
{
	if (ret < 0)
		log_warn("endpoints %s: %s; reading it again later", f->path, strerror(-ret));
	if (ret > 0)
		f->changed(f->data, t0);
}

/* The safety net where inotify cannot watch. */
static void tick(struct loop *loop, void *data)
{
	report(data, epfile_read(data), loop_now_us());
}

/* A change in the directory: the file it names (editors and `mv` replace files). */
static void on_inotify(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct epfile *f = data;
	uint64_t t0 = loop_now_us();
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	ssize_t n;
	int ret = 0, any = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n && ret >= 0;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			struct part *pt = NULL;

			p += sizeof(*ev) + ev->len;
			if (!ev->len || (ev->mask & IN_Q_OVERFLOW))
				ret = epfile_read(f);	/* every file again */
			else if (!f->dir && !strcmp(ev->name, base))
				pt = part_of(f, f->path, true);
			else if (f->dir && part_named(ev->name))
				pt = part_of(f, ev->name, true);
			if (pt)
				ret = part_read(f, pt);
			any |= ret > 0;
		}
	report(f, ret < 0 ? ret : any, t0);
}

int epfile_start(struct epfile *f, struct loop *loop)
{
	char dir[4096], *slash;
	int ret;

	snprintf(dir, sizeof(dir), "%s", f->path);
	slash = f->dir ? NULL : strrchr(dir, '/');
	if (!f->dir && !slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash)
		slash[slash == dir] = 0;
	f->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->inotify < 0 || inotify_add_watch(f->inotify, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
						IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0) {
		log_warn("cannot watch %s (%s); checking it every 5 s", dir, strerror(errno));
		ret = loop_timer_add(loop, CHECK_EVERY_MS, 1, tick, f);
		return ret < 0 ? ret : 0;
	}
	return loop_fd_add(loop, f->inotify, EPOLLIN, on_inotify, f);
}
