/*
 * The baseline store: keys by stable labels (replicas share one), externals by address,
 * add/contains/count, and the file: save/load round trip, every kind of bad file refused
 * with a message naming the file and the fault, all or nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "moat/baseline.h"
#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABELS(...) ((struct moat_labels){ (struct moat_label[]){ __VA_ARGS__ }, \
	N(((struct moat_label[]){ __VA_ARGS__ })) })

static struct moat_addr addr(const char *s)
{
	struct moat_addr a = { .family = strchr(s, ':') ? AF_INET6 : AF_INET };

	inet_pton(a.family, s, a.a);
	return a;
}

static struct moat_endpoint ep(const char *ns, const char *name, struct moat_labels l)
{
	return (struct moat_endpoint){ .name = (char *)name, .namespace = (char *)ns,
				       .labels = l };
}

/* Labels must be sorted, as everywhere (endpoint sets sort them on the way in). */
static struct moat_endpoint ep_sorted(const char *ns, const char *name, struct moat_labels l)
{
	moat_labels_sort(&l);
	return ep(ns, name, l);
}

static const int64_t T0 = 1700000000;

static void test_keys(void)
{
	struct moat_baseline *b = NULL;
	struct moat_endpoint web1 = ep_sorted("shop", "web-1", LABELS({ "app", "web" },
		{ "com.docker.compose.container-number", "1" }, { "pod-template-hash", "abc" }));
	struct moat_endpoint web2 = ep_sorted("shop", "web-2", LABELS({ "app", "web" },
		{ "com.docker.compose.container-number", "2" }, { "pod-template-hash", "def" }));
	struct moat_endpoint canary = ep_sorted("shop", "web-c", LABELS({ "app", "web" },
		{ "tier", "canary" }));
	struct moat_endpoint other_ns = ep("prod", "web-1", LABELS({ "app", "web" }));
	struct moat_endpoint api = ep("shop", "api-1", LABELS({ "app", "api" }));
	/* No stable label: keyed by the labels that are not per-instance. */
	struct moat_endpoint plain1 = ep_sorted("shop", "p1", LABELS({ "maintainer", "ops" },
		{ "org.opencontainers.image.version", "1.2" }, { "com.docker.compose.oneoff", "False" }));
	struct moat_endpoint plain2 = ep_sorted("shop", "p2", LABELS({ "maintainer", "ops" },
		{ "org.opencontainers.image.version", "1.3" }));
	struct moat_endpoint plain3 = ep("shop", "p3", LABELS({ "maintainer", "dev" }));
	struct moat_addr ext = addr("203.0.113.7"), ext6 = addr("2001:db8::7");
	struct moat_addr ext_other = addr("203.0.113.8");

	CHECK(moat_baseline_new(&b) == 0);
	CHECK(moat_baseline_count(b) == 0);
	CHECK(!moat_baseline_contains(b, &web1, NULL, &api, NULL, IPPROTO_TCP, 8080));
	CHECK(moat_baseline_add(b, &web1, NULL, &api, NULL, IPPROTO_TCP, 8080, T0) == 1);
	CHECK(moat_baseline_add(b, &web2, NULL, &api, NULL, IPPROTO_TCP, 8080, T0 + 5) == 0);
	CHECK(moat_baseline_count(b) == 1);
	CHECK(moat_baseline_contains(b, &web2, NULL, &api, NULL, IPPROTO_TCP, 8080));
	CHECK(!moat_baseline_contains(b, &web1, NULL, &api, NULL, IPPROTO_TCP, 8081));
	CHECK(!moat_baseline_contains(b, &web1, NULL, &api, NULL, IPPROTO_UDP, 8080));
	CHECK(!moat_baseline_contains(b, &api, NULL, &web1, NULL, IPPROTO_TCP, 8080));
	CHECK(!moat_baseline_contains(b, &canary, NULL, &api, NULL, IPPROTO_TCP, 8080));
	CHECK(!moat_baseline_contains(b, &other_ns, NULL, &api, NULL, IPPROTO_TCP, 8080));

	/* Externals by address; the address is ignored when the endpoint is given. */
	CHECK(moat_baseline_add(b, NULL, &ext, &web1, &ext_other, IPPROTO_TCP, 80, T0) == 1);
	CHECK(moat_baseline_contains(b, NULL, &ext, &web2, NULL, IPPROTO_TCP, 80));
	CHECK(!moat_baseline_contains(b, NULL, &ext_other, &web2, NULL, IPPROTO_TCP, 80));
	CHECK(moat_baseline_add(b, &api, NULL, NULL, &ext6, IPPROTO_TCP, 443, T0) == 1);
	CHECK(moat_baseline_contains(b, &api, NULL, NULL, &ext6, IPPROTO_TCP, 443));

	/* Protocols without ports are keyed without them. */
	CHECK(moat_baseline_add(b, &api, NULL, &web1, NULL, IPPROTO_ICMP, 7, T0) == 1);
	CHECK(moat_baseline_contains(b, &api, NULL, &web2, NULL, IPPROTO_ICMP, 0));

	CHECK(moat_baseline_add(b, &plain1, NULL, &api, NULL, IPPROTO_TCP, 8080, T0) == 1);
	CHECK(moat_baseline_add(b, &plain2, NULL, &api, NULL, IPPROTO_TCP, 8080, T0) == 0);
	CHECK(!moat_baseline_contains(b, &plain3, NULL, &api, NULL, IPPROTO_TCP, 8080));
	CHECK(moat_baseline_count(b) == 5);

	/* Refused: a missing address, two externals. */
	CHECK(moat_baseline_add(b, NULL, NULL, &api, NULL, IPPROTO_TCP, 1, T0) == -EINVAL);
	CHECK(moat_baseline_add(b, NULL, &ext, NULL, &ext6, IPPROTO_TCP, 1, T0) == -EINVAL);
	CHECK(!moat_baseline_contains(b, NULL, NULL, &api, NULL, IPPROTO_TCP, 8080));
	CHECK(moat_baseline_count(b) == 5);
	moat_baseline_free(b);
	moat_baseline_free(NULL);
}

/* Many keys: the tables grow and every key is still found. */
static void test_growth(void)
{
	struct moat_baseline *b = NULL;
	struct moat_endpoint a = ep("x", "a", LABELS({ "app", "a" }));
	bool all = true;

	CHECK(moat_baseline_new(&b) == 0);
	for (unsigned i = 0; i < 5000; i++) {
		struct moat_addr ext = addr("10.9.0.0");

		ext.a[2] = (uint8_t)(i >> 8);
		ext.a[3] = (uint8_t)i;
		all &= moat_baseline_add(b, &a, NULL, NULL, &ext, IPPROTO_UDP, 1000 + i % 7, T0) == 1;
	}
	for (unsigned i = 0; i < 5000; i++) {
		struct moat_addr ext = addr("10.9.0.0");

		ext.a[2] = (uint8_t)(i >> 8);
		ext.a[3] = (uint8_t)i;
		all &= moat_baseline_contains(b, &a, NULL, NULL, &ext, IPPROTO_UDP, 1000 + i % 7);
		all &= !moat_baseline_contains(b, &a, NULL, NULL, &ext, IPPROTO_UDP, 999);
	}
	CHECK(all);
	CHECK(moat_baseline_count(b) == 5000);
	moat_baseline_free(b);
}

static char dir[] = "/tmp/moat-baseline-XXXXXX";

/* dir/name; each call gets its own buffer (four in turn). */
static char *path_in_dir(const char *name)
{
	static char bufs[4][128];
	static unsigned next;
	char *buf = bufs[next++ % 4];

	snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, name);
	return buf;
}

static void test_round_trip(void)
{
	struct moat_baseline *b = NULL, *back = NULL;
	struct moat_endpoint web = ep("shop", "web-1", LABELS({ "app", "web" }, { "tier", "front" }));
	struct moat_endpoint db = ep("data", "db-1", LABELS({ "app", "db" }));
	struct moat_addr ext = addr("2001:db8::7");
	struct moat_diags d = { 0 };
	const char *p = path_in_dir("baseline.json");
	json_t *j1, *j2;

	CHECK(moat_baseline_new(&b) == 0);
	CHECK(moat_baseline_add(b, &web, NULL, &db, NULL, IPPROTO_TCP, 5432, T0) == 1);
	CHECK(moat_baseline_add(b, &web, NULL, &db, NULL, IPPROTO_TCP, 5432, T0 + 60) == 0);
	CHECK(moat_baseline_add(b, &web, NULL, &db, NULL, IPPROTO_TCP, 5432, T0 - 60) == 0);
	CHECK(moat_baseline_add(b, NULL, &ext, &web, NULL, IPPROTO_SCTP, 9, T0) == 1);
	CHECK(moat_baseline_add(b, &db, NULL, &web, NULL, 250, 0, T0) == 1);
	CHECK(moat_baseline_save(b, p) == 0);
	CHECK(access(path_in_dir("baseline.json.tmp"), F_OK) != 0);
	CHECK(moat_baseline_load(p, &back, &d) == 0);
	CHECK(d.n == 0);
	CHECK(back && moat_baseline_count(back) == 3);
	j1 = moat_baseline_json(b);
	j2 = back ? moat_baseline_json(back) : NULL;
	CHECK(j1 && j2 && json_equal(j1, j2));
	/* first/last/count as recorded. */
	CHECK(json_integer_value(json_object_get(json_array_get(j1, 1), "count")) == 3);
	CHECK(json_integer_value(json_object_get(json_array_get(j1, 1), "first")) == T0 - 60);
	CHECK(json_integer_value(json_object_get(json_array_get(j1, 1), "last")) == T0 + 60);
	/* A loaded baseline answers for live endpoints (same hashing). */
	CHECK(back && moat_baseline_contains(back, &web, NULL, &db, NULL, IPPROTO_TCP, 5432));
	CHECK(back && moat_baseline_contains(back, NULL, &ext, &web, NULL, IPPROTO_SCTP, 9));
	CHECK(back && moat_baseline_add(back, &web, NULL, &db, NULL, IPPROTO_TCP, 5432, T0) == 0);
	/* Saving again over the file. */
	CHECK(back && moat_baseline_save(back, p) == 0);
	json_decref(j1);
	json_decref(j2);
	moat_baseline_free(b);
	moat_baseline_free(back);
	moat_diags_free(&d);
	/* An empty baseline round-trips too. */
	CHECK(moat_baseline_new(&b) == 0);
	CHECK(moat_baseline_save(b, p) == 0);
	back = NULL;
	CHECK(moat_baseline_load(p, &back, &d) == 0 && back && moat_baseline_count(back) == 0);
	CHECK(moat_baseline_save(b, "/nonexistent-moat-dir/x.json") == -ENOENT);
	moat_baseline_free(b);
	moat_baseline_free(back);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	fputs(text, f);
	fclose(f);
}

#define FLOW(from, to, rest) "{\"from\":" from ",\"to\":" to "," rest "}"
#define WEB "{\"namespace\":\"shop\",\"labels\":{\"app\":\"web\"}}"
#define DB "{\"namespace\":\"shop\",\"labels\":{\"app\":\"db\"}}"
#define GOOD "\"proto\":\"tcp\",\"port\":5432,\"first\":1,\"last\":2,\"count\":3"
#define DOC(flows) "{\"version\":1,\"flows\":[" flows "]}"

static const struct {
	const char *text, *expect;
	unsigned line;
} bad_files[] = {
	{ "{\"version\":1,\n \"flows\": [,]}", "not valid JSON", 2 },
	{ "", "not valid JSON", 0 },
	{ "{\"version\":2,\"flows\":[]}", "want a baseline", 0 },
	{ "{\"flows\":[]}", "want a baseline", 0 },
	{ "{\"version\":1,\"flows\":[],\"extra\":1}", "unknown field \"extra\"", 0 },
	{ DOC(FLOW(WEB, DB, "\"proto\":\"tcp\",\"port\":70000,\"first\":1,\"last\":2,\"count\":3")),
	  "flows[0].port: not an integer from 0 to 65535", 0 },
	{ DOC(FLOW(WEB, DB, "\"proto\":\"tcp\",\"port\":1,\"first\":1,\"last\":2")),
	  "flows[0].count: missing", 0 },
	{ DOC(FLOW(WEB, DB, "\"proto\":\"tcp\",\"port\":1,\"first\":3,\"last\":2,\"count\":1")),
	  "first (3) is after last (2)", 0 },
	{ DOC(FLOW(WEB, DB, "\"proto\":\"tpc\",\"port\":1,\"first\":1,\"last\":2,\"count\":1")),
	  "flows[0].proto", 0 },
	{ DOC(FLOW(WEB, DB, "\"proto\":\"icmp\",\"port\":1,\"first\":1,\"last\":2,\"count\":1")),
	  "must be 0 for a protocol without ports", 0 },
	{ DOC(FLOW("{\"cidr\":\"10.0.0.0/24\"}", DB, GOOD)), "flows[0].from.cidr", 0 },
	{ DOC(FLOW("{\"cidr\":\"10.0.0.1/32\"}", "{\"cidr\":\"10.0.0.2/32\"}", GOOD)),
	  "both peers are addresses", 0 },
	{ DOC(FLOW("{\"cidr\":\"10.0.0.1/32\",\"namespace\":\"x\"}", DB, GOOD)), "not both", 0 },
	{ DOC(FLOW("{\"namespace\":\"\",\"labels\":{}}", DB, GOOD)), "flows[0].from.namespace", 0 },
	{ DOC(FLOW(WEB, "{\"namespace\":\"shop\",\"labels\":{\"app\":1}}", GOOD)),
	  "flows[0].to.labels", 0 },
	{ DOC(FLOW(WEB, "{\"namespace\":\"shop\",\"labels\":{\"app\":\"db\",\"pod-template-hash\":\"x\"}}",
		   GOOD)), "\"pod-template-hash\" is not a key label", 0 },
	{ DOC(FLOW(WEB, "[]", GOOD)), "flows[0].to: want", 0 },
	{ DOC(FLOW(WEB, DB, GOOD) "," FLOW(WEB, DB, GOOD)), "flows[1]: the same flow", 0 },
	{ DOC(FLOW(WEB, DB, GOOD) ",3"), "flows[1]: want an object", 0 },
	{ DOC(FLOW(WEB, DB, GOOD ",\"colour\":1")), "unknown field \"colour\"", 0 },
	{ "{\"version\":1,\"version\":1,\"flows\":[]}", "not valid JSON", 1 },
};

static bool diags_say(const struct moat_diags *d, const char *file, const char *what,
		      unsigned line)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].msg && strstr(d->v[i].msg, what) && !strcmp(d->v[i].file, file) &&
		    (!line || d->v[i].line == line))
			return true;
	return false;
}

static void test_bad_files(void)
{
	const char *p = path_in_dir("bad.json");
	struct moat_baseline *sentinel = (struct moat_baseline *)&sentinel, *out;
	struct moat_diags d = { 0 };

	for (size_t i = 0; i < N(bad_files); i++) {
		out = sentinel;
		write_file(p, bad_files[i].text);
		CHECK(moat_baseline_load(p, &out, &d) == -EINVAL);
		CHECK(out == sentinel);
		if (!diags_say(&d, p, bad_files[i].expect, bad_files[i].line)) {
			fprintf(stderr, "bad file %zu: no diag \"%s\"; got:\n", i, bad_files[i].expect);
			moat_diags_print(&d, stderr);
			CHECK(!"diag");
		}
		moat_diags_free(&d);
	}
	/* Several faults: all reported. */
	write_file(p, DOC(FLOW("{\"cidr\":\"x\"}", DB, GOOD) "," FLOW(WEB, DB,
		"\"proto\":\"tcp\",\"port\":-1,\"first\":1,\"last\":2,\"count\":0")));
	CHECK(moat_baseline_load(p, &out, &d) == -EINVAL);
	CHECK(diags_say(&d, p, "flows[0].from.cidr", 0) && diags_say(&d, p, "flows[1].port", 0) &&
	      diags_say(&d, p, "flows[1].count", 0));
	moat_diags_free(&d);
	/* Missing: -ENOENT and nothing to report. */
	out = sentinel;
	CHECK(moat_baseline_load(path_in_dir("missing.json"), &out, &d) == -ENOENT);
	CHECK(d.n == 0 && out == sentinel);
	/* A good hand-written file with a protocol by number. */
	write_file(p, DOC(FLOW(WEB, DB, GOOD) "," FLOW(WEB, DB,
		"\"proto\":47,\"port\":0,\"first\":1,\"last\":2,\"count\":1")));
	CHECK(moat_baseline_load(p, &out, &d) == 0 && out != sentinel);
	CHECK(d.n == 0 && moat_baseline_count(out) == 2);
	if (out != sentinel)
		moat_baseline_free(out);
}

static void cleanup(void)
{
	const char *names[] = { "baseline.json", "baseline.json.tmp", "bad.json" };

	for (size_t i = 0; i < N(names); i++)
		unlink(path_in_dir(names[i]));
	rmdir(dir);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_keys();
	test_growth();
	test_round_trip();
	test_bad_files();
	cleanup();
	return check_done();
}
