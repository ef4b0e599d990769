/*
 * yaml_parse's fast path (JSON, the block subset): which texts it takes, and that for every
 * text, taken or not, the outcome, tree, positions and messages are libyaml's
 * (tests/fuzz/ytree.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../policy/ybuild.h"
#include "../fuzz/ytree.h"
#include "check.h"

/* JSON and block YAML that libyaml reads the same: the fast path must take each. */
static const char *const taken[] = {
	"a: 1",
	"a: b\nc: [1, x/y, \"q\"]\n",
	"\n\nnamespaces:\n  n0: {team: t0}\n\n  n1: {}\nsubnets: [10.0.0.0/16]\nendpoints:\n"
	"  - {name: a-r0, labels: {app: a, \"k/x\": \"\\u00e9\"}, ips: [10.0.0.1],"
	" ports: {http: 80/tcp}}\n"
	"  -   {name: b}   \n",
	"a:\n- 1\n- [2]\nb:\n    c:\n      - x\n    d: e\n",
	"- a\n- {b: c}\n-  \"d\"",
	"\"quoted key\": v\nk: {\"a\":b, c: [d,e]}\n",
	"dup: 1\ndup: 2\n",
	"{}",
	"[]",
	"  \n{\"a\": 1}\n\n",
	"{\"a\":1,\"b\":[1,2,{}],\"c\":null}",
	"{\"a\" :1}",
	"[1e5, -0.5E+3, 0, -0, 10.25, true, false, null]",
	"[\"x\\u00e9\\n\\t\\/\\\\\\\"\", \"\\u0000nul\", \"\\u2028\", \"\\ufeff\"]",
	"[\"\xc3\xa9\", \"b\", \"\xf0\x9f\x98\x80\", \"\xe4\xb8\xad\"]",
	"{\r\n\t\"a\": [\r\n\t\t1\r\n\t]\r\n}\r\n",
	"{\"a\": 1,\r\"b\": 2}",
	"{\"dup\": 1, \"x\": 2, \"dup\": 3}",
	"{\"a\":\n1}",
	"[\n-1\n]",
	"[[[[{\"deep\": [[]]}]]]]",
	"{\"\": \"\"}",
};

/* What libyaml reads otherwise or refuses, and other YAML: libyaml gets each. */
static const char *const left[] = {
	"",
	"a: 1 # comment",
	"# comment\na: 1",
	"a:\nb: 1",
	"a: b\n  c",
	"a: b c",
	"a: -1",
	"a:b",
	"a: [1,\n 2]",
	"a: &x 1\nb: *x",
	"a: |\n  text\n",
	"a: 'single'",
	"a:\tb",
	"a: b\r\n",
	"a: fd00::1",
	"- a: b",
	"- - a",
	"a:\n  - b\n  c: d",
	"a: 1\n  b: 2",
	"---\na: 1",
	"a: 1\n...\n",
	" a: 1",
	"a: 1\n \n",
	"? a\n: b",
	"{a: 1}",
	"\"scalar\"",
	"1",
	"{a: 1}",
	"{\"a\": 1,}",
	"[1 2]",
	"[01]",
	"[1.]",
	"[-]",
	"[truex]",
	"{\"a\"\n: 1}",
	"[\"\\ud83d\\ude00\"]",
	"[\"\\udc00\"]",
	"[\"\\x41\"]",
	"[\"a\tb\"]",
	"[\"\x7f\"]",
	"[\"\xc2\x85\"]",
	"[\"\xe2\x80\xa8\"]",
	"[\"\xef\xbb\xbf\"]",
	"[\"\xed\xa0\x80\"]",
	"[\"\xc0\xaf\"]",
	"[\"\xff\"]",
	"\xef\xbb\xbf[1]",
	"\t[1]",
	"[1]\n\t",
	"[1]\t",
	"[1] # comment",
	"[1]\n---\n[2]",
	"[&a 1, *a]",
	"{\"a\": 1",
	"[\"unterminated",
};

static void check_all(const char *const *v, size_t n, int want)
{
	for (size_t i = 0; i < n; i++) {
		int took = yaml_fast_build(NULL, v[i], strlen(v[i]));

		if (took != want)
			fprintf(stderr, "case %zu: \"%s\"\n", i, v[i]);
		CHECK(took == want);
		CHECK(ytree_parse_same(v[i], strlen(v[i])));
	}
}

/* Positions as libyaml gives them: columns in characters, CR LF one break. */
static void check_positions(void)
{
	static const char text[] = "[\"\xc3\xa9\", \"b\",\r\n {\"k\": [true]}]";
	struct moat_diags d = { 0 };
	struct arena *a = arena_new();
	struct ycheck ck;
	struct ynode **docs = NULL, *root;
	size_t n = 0;

	ycheck_init(&ck, "f", a, &d);
	CHECK(yaml_parse(&ck, a, text, strlen(text), &docs, &n) == 0 && n == 1);
	root = docs[0];
	CHECK(root->type == YNODE_SEQ && root->n == 3 && root->size == 7);
	CHECK(root->kids[1]->line == 1 && root->kids[1]->col == 7);
	CHECK(root->kids[2]->line == 2 && root->kids[2]->col == 2);
	CHECK(root->kids[2]->kids[1]->kids[0]->plain && !root->kids[0]->plain);
	CHECK(root->kids[0]->len == 2 && !strcmp(root->kids[0]->str, "\xc3\xa9"));
	arena_free(a);
	moat_diags_free(&d);
}

/* Limits: a key past libyaml's 1,024 characters, nesting past 200, both left to libyaml. */
static void check_limits(void)
{
	size_t n = 3000;
	char *s = malloc(2 * n + 16);

	memset(s, 0, 2 * n + 16);
	strcpy(s, "{\"");
	memset(s + 2, 'k', 1100);
	strcpy(s + 1102, "\": 1}");
	CHECK(yaml_fast_build(NULL, s, strlen(s)) == YAML_FAST_NOT);
	CHECK(ytree_parse_same(s, strlen(s)));
	memset(s, '[', 201);
	memset(s + 201, ']', 201);
	s[402] = '\0';
	CHECK(yaml_fast_build(NULL, s, strlen(s)) == YAML_FAST_NOT);
	CHECK(ytree_parse_same(s, strlen(s)));
	memset(s, '[', 200);
	memset(s + 200, ']', 200);
	s[400] = '\0';
	CHECK(yaml_fast_build(NULL, s, strlen(s)) == 0);
	CHECK(ytree_parse_same(s, strlen(s)));
	free(s);
}

int main(void)
{
	check_all(taken, sizeof(taken) / sizeof(taken[0]), 0);
	check_all(left, sizeof(left) / sizeof(left[0]), YAML_FAST_NOT);
	check_positions();
	check_limits();
	return check_done();
}
