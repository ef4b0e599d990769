/*
 * The endpoint store and the endpoints file room: sources and their priority, a change made
 * of the touched names alone, and a directory of files where one file's change touches only
 * its endpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/endpoints/file.h"
#include "../../daemon/endpoints/store.h"
#include "check.h"

static struct moat_endpoint ep(const char *name, const char *app, struct moat_addr *ip)
{
	static struct moat_label l[8];
	static int k;
	struct moat_label *lab = &l[k++ % 8];

	*lab = (struct moat_label){ "app", (char *)app };
	return (struct moat_endpoint){ .name = (char *)name, .namespace = "default",
				       .labels = { lab, 1 }, .ips = ip, .nips = ip ? 1 : 0 };
}

/* The change since the last commit, made; what went and came into *gone, *come. */
static void commit(struct epstore *s, size_t *gone, size_t *come, bool *whole)
{
	struct epchange c;

	CHECK(!epstore_change(s, &c));
	*gone = c.ngone, *come = c.ncome, *whole = c.whole;
	if (c.whole) {
		struct moat_endpoint_set *es = NULL;

		CHECK(!epstore_build(s, &es));
		moat_endpoint_set_free(epstore_install(s, es));
	} else {
		epstore_change_apply(s, &c);
	}
	epstore_change_free(&c);
}

static const struct moat_endpoint *in_force(const struct epstore *s, const char *name)
{
	const struct moat_endpoint_set *es = epstore_set(s);
	long i = moat_endpoint_set_find(es, "default", name);

	return i < 0 ? NULL : &es->v[i];
}

static void test_sources(void)
{
	struct moat_addr a = { .family = 2, .a = { 10, 0, 0, 1 } }, b = a;
	struct moat_endpoint e;
	struct epstore *s = NULL;
	size_t gone, come;
	bool whole;

	b.a[3] = 2;
	CHECK(!epstore_new(&s));
	e = ep("web", "web", &a);
	CHECK(!epstore_put(s, EPSOURCE_FILE, &e));
	commit(s, &gone, &come, &whole);
	CHECK(!whole && gone == 0 && come == 1 && in_force(s, "web"));
	/* the runtime names the same endpoint: it wins */
	e = ep("web", "api", &b);
	CHECK(!epstore_put(s, EPSOURCE_RUNTIME, &e));
	commit(s, &gone, &come, &whole);
	CHECK(gone == 1 && come == 1 && !strcmp(in_force(s, "web")->labels.v[0].value, "api"));
	/* a put of what a source has already touches nothing */
	CHECK(!epstore_put(s, EPSOURCE_RUNTIME, &e));
	commit(s, &gone, &come, &whole);
	CHECK(gone == 0 && come == 0);
	/* the runtime lets it go: the file's comes back */
	CHECK(!epstore_del(s, EPSOURCE_RUNTIME, "default", "web"));
	commit(s, &gone, &come, &whole);
	CHECK(gone == 1 && come == 1 && !strcmp(in_force(s, "web")->labels.v[0].value, "web"));
	/* new subnets make the next change whole */
	CHECK(!epstore_subnets(s, EPSOURCE_RUNTIME, &(struct moat_cidr){ 2, 8, { 10 } }, 1));
	commit(s, &gone, &come, &whole);
	CHECK(whole && epstore_set(s)->nsubnets == 1);
	CHECK(!epstore_del(s, EPSOURCE_FILE, "default", "web"));
	commit(s, &gone, &come, &whole);
	CHECK(!whole && gone == 1 && come == 0 && !in_force(s, "web"));
	/* many at once: the set in force makes room for all of them (ASan watches) */
	for (int i = 0; i < 300; i++) {
		static char names[300][8];
		static struct moat_addr ips[300];

		snprintf(names[i], sizeof(names[i]), "m%d", i);
		ips[i] = (struct moat_addr){ .family = 2, .a = { 10, 1, i >> 8, i & 255 } };
		e = ep(names[i], "many", &ips[i]);
		CHECK(!epstore_put(s, EPSOURCE_RUNTIME, &e));
	}
	commit(s, &gone, &come, &whole);
	CHECK(!whole && gone == 0 && come == 300 && epstore_set(s)->n == 300 && in_force(s, "m299"));
	epstore_free(s);
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[512], tmp[520];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s", dir, name);
	f = fopen(tmp, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	CHECK(!rename(tmp, path));
}

static void rm_file(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(!unlink(path));
}

static int changes;

static void on_change(void *data, uint64_t t0)
{
	changes++;
}

/* Reading again: the mtime a rewrite in the same tick may keep is forced to differ. */
static void touch_later(const char *dir, const char *name)
{
	char path[512];
	struct timespec ts[2] = { { 0, UTIME_NOW }, { time(NULL) + 100, 0 } };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(!utimensat(AT_FDCWD, path, ts, 0));
}

static void test_directory(void)
{
	char dir[] = "/tmp/moat-epstore.XXXXXX";
	struct epstore *s = NULL;
	struct epfile *f = NULL;
	size_t gone, come;
	bool whole;

	CHECK(mkdtemp(dir) != NULL);
	put_file(dir, "a.yaml", "endpoints:\n  - {name: a1, labels: {app: a}, ips: [10.1.0.1]}\n"
				"  - {name: a2, labels: {app: a}, ips: [10.1.0.2]}\n");
	put_file(dir, "b.yaml", "subnets: [10.1.0.0/16]\nendpoints:\n"
				"  - {name: b1, labels: {app: b}, ips: [10.1.0.3]}\n"
				"  - {name: a1, labels: {app: shadowed}, ips: [10.1.0.9]}\n");
	put_file(dir, "notes.txt", "not endpoints");
	CHECK(!epstore_new(&s));
	CHECK(!epfile_new(dir, s, on_change, NULL, &f));
	CHECK(epfile_read(f) == 1);
	commit(s, &gone, &come, &whole);
	CHECK(whole && epstore_set(s)->n == 3);	/* the first commit has new subnets */
	CHECK(!strcmp(in_force(s, "a1")->labels.v[0].value, "a"));	/* a.yaml comes first */
	/* b.yaml changes one endpoint: one goes and comes */
	put_file(dir, "b.yaml", "subnets: [10.1.0.0/16]\nendpoints:\n"
				"  - {name: b1, labels: {app: b2}, ips: [10.1.0.3]}\n"
				"  - {name: a1, labels: {app: shadowed}, ips: [10.1.0.9]}\n");
	touch_later(dir, "b.yaml");
	CHECK(epfile_read(f) == 1);
	commit(s, &gone, &come, &whole);
	CHECK(!whole && gone == 1 && come == 1);
	/* a.yaml goes: a2 goes, a1 is b.yaml's now */
	rm_file(dir, "a.yaml");
	CHECK(epfile_read(f) == 1);
	commit(s, &gone, &come, &whole);
	CHECK(!whole && gone == 2 && come == 1 && !in_force(s, "a2"));
	CHECK(in_force(s, "a1") && !strcmp(in_force(s, "a1")->labels.v[0].value, "shadowed"));
	/* nothing changed: nothing read */
	CHECK(epfile_read(f) == 0);
	epfile_free(f);
	epstore_free(s);
	rm_file(dir, "b.yaml");
	rm_file(dir, "notes.txt");
	CHECK(!rmdir(dir));
}

int main(void)
{
	test_sources();
	test_directory();
	return check_done();
}
