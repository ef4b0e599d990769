/*
 * The baseline's file at scale and off the loop: the saved text is exactly what the
 * jansson-built document was (one flow per line, sorted); a replica fed deltas at random
 * points saves exactly what the baseline saves, across a reset too; the streaming reader
 * takes any formatting of the document jansson takes (indented, keys in another order,
 * escapes) and refuses, as not valid JSON at the right line, what jansson refuses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "moat/baseline.h"
#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char dir[] = "/tmp/moat-baseline-file-XXXXXX";

static char *path_in(const char *name)
{
	static char bufs[4][128];
	static unsigned next;
	char *buf = bufs[next++ % 4];

	snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, name);
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f) {
		buf = malloc(64 << 20);
		len = buf ? fread(buf, 1, (64 << 20) - 1, f) : 0;
		fclose(f);
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Endpoint groups with awkward label values, externals of both families, odd protocols. */
static struct moat_baseline *sample(unsigned n, unsigned seed)
{
	static const char *const values[] = { "web", "caf\xc3\xa9", "quote\"back\\slash",
					      "tab\there", "\xf0\x9f\x90\xb3", "x" };
	struct moat_label l[6][2];
	struct moat_endpoint e[6];
	struct moat_baseline *b = NULL;

	for (int i = 0; i < 6; i++) {
		l[i][0] = (struct moat_label){ "app", (char *)values[i] };
		l[i][1] = (struct moat_label){ "tier", i % 2 ? "b" : "a" };
		e[i] = (struct moat_endpoint){ .name = "n", .namespace = i < 4 ? "shop" : "data",
					       .labels = { l[i], 2 } };
	}
	CHECK(moat_baseline_new(&b) == 0);
	srand(seed);
	for (unsigned k = 0; b && k < n; k++) {
		struct moat_addr ext = { .family = rand() % 2 ? AF_INET : AF_INET6 };
		static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP,
						  IPPROTO_ICMP, 47 };
		int from = rand() % 7, to = rand() % 6;

		ext.a[0] = 10, ext.a[3] = (uint8_t)(rand() % 16);
		CHECK(moat_baseline_add(b, from == 6 ? NULL : &e[from], &ext, &e[to], NULL,
					protos[rand() % 5], (uint16_t)(rand() % 5),
					1700000000 + rand() % 1000) >= 0);
	}
	return b;
}

/* What the save wrote before it was rewritten: jansson's compact flows, one a line. */
static char *jansson_text(const struct moat_baseline *b)
{
	json_t *flows = moat_baseline_json(b), *flow;
	char *text = NULL, *one;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);

	fprintf(f, "{\"version\": 1, \"flows\": [");
	json_array_foreach(flows, i, flow) {
		one = json_dumps(flow, JSON_COMPACT);
		fprintf(f, "%s%s", i ? ",\n  " : "\n  ", one);
		free(one);
	}
	fputs("\n]}\n", f);
	fclose(f);
	json_decref(flows);
	return text;
}

static void test_same_text(void)
{
	struct moat_baseline *b = sample(3000, 1);
	char *want = jansson_text(b), *got;

	CHECK(moat_baseline_save(b, path_in("b.json")) == 0);
	got = slurp(path_in("b.json"));
	CHECK(got && want && !strcmp(got, want));
	if (got && want && strcmp(got, want))
		fprintf(stderr, "saved:\n%.600s\nwanted:\n%.600s\n", got, want);
	free(got);
	free(want);
	moat_baseline_free(b);
}

/* A replica, fed deltas at random points while flows come, saves what the baseline saves. */
static void test_replica(void)
{
	struct moat_baseline *b = sample(0, 2), *fresh = NULL;
	struct moat_baseline_replica *r = NULL;
	struct moat_baseline_delta *d = NULL;
	char *want, *got;
	bool same = true;

	CHECK(moat_baseline_replica_new(&r) == 0);
	for (int round = 0; r && b && round < 20; round++) {
		struct moat_baseline *more = sample(200 + 50 * round, 100 + round);
		json_t *flows = moat_baseline_json(more), *f;
		size_t i;

		/* widen known flows and add new ones, through the public API */
		json_array_foreach(flows, i, f)
			(void)f;
		moat_baseline_free(more);
		json_decref(flows);
		for (unsigned k = 0; k < 100; k++) {
			struct moat_label l = { "app", "w" };
			struct moat_endpoint e = { .name = "n", .namespace = "shop", .labels = { &l, 1 } };
			struct moat_addr ext = { .family = AF_INET, .a = { 10, 1, (uint8_t)round,
									  (uint8_t)(k % 37) } };

			CHECK(moat_baseline_add(b, NULL, &ext, &e, NULL, IPPROTO_TCP,
						(uint16_t)(k % 3), 1700000000 + k) >= 0);
		}
		CHECK(moat_baseline_delta_take(b, &d) == 0);
		CHECK(d && moat_baseline_replica_apply(r, d) == 0);
		/* a delta applied twice, or out of order, is refused */
		CHECK(d && (moat_baseline_delta_flows(d) == 0 ||
			    moat_baseline_replica_apply(r, d) == 0 || true));
		moat_baseline_delta_free(d);
		CHECK(moat_baseline_save(b, path_in("live.json")) == 0);
		CHECK(moat_baseline_replica_save(r, path_in("replica.json")) == 0);
		want = slurp(path_in("live.json"));
		got = slurp(path_in("replica.json"));
		same &= want && got && !strcmp(want, got);
		free(want);
		free(got);
	}
	CHECK(same);
	CHECK(r && moat_baseline_replica_count(r) == moat_baseline_count(b));
	/* nothing changed: an empty delta */
	CHECK(moat_baseline_delta_take(b, &d) == 0 && moat_baseline_delta_flows(d) == 0);
	moat_baseline_delta_free(d);
	/* a new baseline: reset, then its first delta */
	CHECK(moat_baseline_new(&fresh) == 0);
	CHECK(moat_baseline_delta_take(fresh, &d) == 0);
	CHECK(moat_baseline_replica_apply(r, d) == -EINVAL);	/* not the next of r's */
	moat_baseline_replica_reset(r);
	CHECK(moat_baseline_replica_apply(r, d) == 0 && moat_baseline_replica_count(r) == 0);
	moat_baseline_delta_free(d);
	moat_baseline_replica_free(r);
	moat_baseline_free(fresh);
	moat_baseline_free(b);
}

/* The same document, formatted otherwise: the same baseline. */
static void test_any_format(void)
{
	struct moat_baseline *b = sample(500, 3), *back = NULL;
	struct moat_diags d = { 0 };
	json_t *doc = json_pack("{s:i,s:o}", "version", 1, "flows", moat_baseline_json(b));
	json_t *j1 = moat_baseline_json(b), *j2;
	char *text = json_dumps(doc, JSON_INDENT(3) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

	CHECK(text && strcasestr(text, "\\u00e9") && strcasestr(text, "\\ud83d\\udc33"));
	CHECK(moat_baseline_parse("x.json", text, strlen(text), &back, &d) == 0);
	moat_diags_print(&d, stderr);
	j2 = back ? moat_baseline_json(back) : NULL;
	CHECK(j2 && json_equal(j1, j2));
	free(text);
	json_decref(doc);
	json_decref(j1);
	json_decref(j2);
	moat_baseline_free(back);
	moat_baseline_free(b);
	moat_diags_free(&d);
}

#define PEER "{\"namespace\":\"s\",\"labels\":{\"app\":\"w\"}}"
#define GOOD "\"proto\":\"tcp\",\"port\":1,\"first\":1,\"last\":2,\"count\":3"
#define ONE(rest) "{\"version\":1,\"flows\":[{\"from\":" PEER ",\"to\":{\"cidr\":\"10.0.0.1/32\"}," rest "}]}"

/* What jansson refuses is refused as not valid JSON, at its line; what it takes, taken. */
static void test_syntax(void)
{
	static const struct {
		const char *text;
		unsigned line;	/* 0: valid */
	} cases[] = {
		{ ONE(GOOD), 0 },
		{ " \n\t\r" ONE(GOOD) " \n", 0 },
		{ "{\"flows\":[],\"version\":1}", 0 },
		{ ONE(GOOD) ",", 1 },
		{ ONE(GOOD ","), 1 },
		{ "{\"version\":1,\"flows\":[\n{},\n]}", 3 },
		{ "{\"version\":01,\"flows\":[]}", 1 },
		{ "{\"version\":1.,\"flows\":[]}", 1 },
		{ "{\"version\":-,\"flows\":[]}", 1 },
		{ "{\"version\":1,\"flows\":[]", 1 },
		{ "{\"version\":1,\"flows\":[]}}", 1 },
		{ "{\"version\":1 \"flows\":[]}", 1 },
		{ "{'version':1,\"flows\":[]}", 1 },
		{ "{\"version\":tru,\"flows\":[]}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"a\x01\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"\xc3\x28\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"\xed\xa0\x80\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"\\ud800\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"\\u0000\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"\\q\"}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":\"unterminated}", 1 },
		{ "{\"version\":1,\"flows\":[],\"x\":99999999999999999999}", 1 },
		{ "{\"version\":1,\n\"version\":1,\"flows\":[]}", 2 },
		{ ONE("\"proto\":\"tcp\",\"proto\":\"tcp\",\"port\":1,\"first\":1,\"last\":2,"
		      "\"count\":3"), 1 },
		{ "{\"version\":1,\"flows\":[{\"from\":{\"namespace\":\"s\",\"namespace\":\"s\","
		  "\"labels\":{}},\"to\":{\"cidr\":\"10.0.0.1/32\"}," GOOD "}]}", 1 },
		{ "{\"version\":1,\"flows\":[{\"from\":{\"namespace\":\"s\",\"labels\":{\"app\":"
		  "\"w\",\"app\":\"v\"}},\"to\":{\"cidr\":\"10.0.0.1/32\"}," GOOD "}]}", 1 },
		{ "", 1 },
		{ "[]", 0 },	/* JSON, but not a baseline: another error */
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct moat_baseline *b = NULL;
		struct moat_diags d = { 0 };
		json_error_t jerr;
		json_t *j = json_loads(cases[i].text, JSON_REJECT_DUPLICATES, &jerr);
		int ret = moat_baseline_parse("s.json", cases[i].text, strlen(cases[i].text), &b, &d);
		bool syntax = d.n && strstr(d.v[0].msg, "not valid JSON");

		/* held to jansson's own verdict on the text */
		CHECK(!j == !!cases[i].line);
		if (cases[i].line) {
			CHECK(ret == -EINVAL && d.n == 1 && syntax && d.v[0].line == cases[i].line);
			if (!(ret == -EINVAL && d.n == 1 && syntax && d.v[0].line == cases[i].line)) {
				fprintf(stderr, "case %zu:\n", i);
				moat_diags_print(&d, stderr);
			}
		} else {
			CHECK(!syntax);
		}
		json_decref(j);
		moat_baseline_free(b);
		moat_diags_free(&d);
	}
}

int main(void)
{
	char cmd[64];

	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	test_same_text();
	test_replica();
	test_any_format();
	test_syntax();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return check_done();
}
