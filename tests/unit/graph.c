/*
 * DOT output: merged parallel edges per kind, one declaration per node, styles per kind,
 * hostile names escaped, deterministic; and, where Graphviz is installed (tests/deps.sh puts
 * it there), `dot -Tsvg` accepts the output.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moat/graph.h"
#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define WEB "default/app=web"
#define API "default/app=api"
#define DB "default/app=db"
#define EVIL "x\"] ; n0 -> n1 [label=\"pwn\\\n}\x01\xff\xc3\xa9"

static const struct moat_graph_edge edges[] = {
	{ WEB, API, "8080/tcp", MOAT_GRAPH_OBSERVED_ALLOWED },
	{ WEB, API, "53/udp", MOAT_GRAPH_OBSERVED_ALLOWED },
	{ WEB, API, "8080/tcp", MOAT_GRAPH_OBSERVED_ALLOWED },	/* repeated: once */
	{ WEB, API, "22/tcp", MOAT_GRAPH_OBSERVED_DENIED },
	{ API, DB, "5432/tcp", MOAT_GRAPH_OBSERVED_VIOLATION },
	{ WEB, DB, "5432/tcp", MOAT_GRAPH_POLICY_ALLOWED },
	{ EVIL, DB, "1/tcp", MOAT_GRAPH_OBSERVED_DENIED },
	{ "203.0.113.7", WEB, NULL, MOAT_GRAPH_OBSERVED_ALLOWED },
};

/* The graph of e as a string (caller frees), or NULL with *ret set. */
static char *dot_of(const struct moat_graph_edge *e, size_t n, int *ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	*ret = moat_graph_dot(e, n, f);
	fclose(f);
	if (*ret) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Lines of the form "\tnA -> nB [" (an edge statement, not text inside a label). */
static size_t edge_lines(const char *g)
{
	size_t count = 0;

	for (const char *line = g; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		unsigned a, b;
		int end = 0;

		if (sscanf(line, "\tn%u -> n%u [%n", &a, &b, &end) == 2 && end)
			count++;
	}
	return count;
}

/* Node ids are in name order: 203.0.113.7, api, db, web, then EVIL ('x' sorts last). */
static void test_text(void)
{
	int ret;
	char *g = dot_of(edges, N(edges), &ret);

	CHECK(ret == 0 && g);
	if (!g)
		return;
	CHECK(!strncmp(g, "digraph moat {\n", 15));
	CHECK(strstr(g, "\tn0 [label=\"203.0.113.7\"];\n"));
	CHECK(strstr(g, "\tn3 [label=\"default/app=web\"];\n"));
	CHECK(strstr(g, "\tn4 [label=\"x\\\"] ; n0 -> n1 [label=\\\"pwn\\\\\\n}??\xc3\xa9\"];\n"));
	CHECK(strstr(g, "\tn3 -> n1 [label=\"53/udp, 8080/tcp\", color=\"#2e7d32\""));
	CHECK(strstr(g, "\tn3 -> n1 [label=\"22/tcp\", color=\"#c62828\", fontcolor=\"#c62828\", "
		     "style=dashed];\n"));
	CHECK(strstr(g, "\tn1 -> n2 [label=\"5432/tcp\", color=\"#ef6c00\""));
	CHECK(strstr(g, "\tn3 -> n2 [label=\"5432/tcp\", color=\"#9e9e9e\", fontcolor=\"#757575\", "
		     "style=dotted];\n"));
	CHECK(strstr(g, "\tn0 -> n3 [color=\"#2e7d32\""));
	CHECK(strstr(g, "\tn4 -> n2 [label=\"1/tcp\""));
	CHECK(edge_lines(g) == 6);	/* 8 edges in: the two web -> api allowed and a repeat merged */
	free(g);
}

/* The same edges in reverse give the same text. */
static void test_deterministic(void)
{
	struct moat_graph_edge rev[N(edges)];
	int r1, r2;

	for (size_t i = 0; i < N(edges); i++)
		rev[i] = edges[N(edges) - 1 - i];
	char *a = dot_of(edges, N(edges), &r1), *b = dot_of(rev, N(rev), &r2);

	CHECK(a && b && !strcmp(a, b));
	free(a);
	free(b);
}

static void test_errors(void)
{
	struct moat_graph_edge bad[] = { { WEB, NULL, "x", MOAT_GRAPH_OBSERVED_ALLOWED } };
	struct moat_graph_edge bad_kind[] = { { WEB, API, "x", (enum moat_graph_kind)9 } };
	int ret;
	char *g;

	CHECK(dot_of(bad, 1, &ret) == NULL && ret == -EINVAL);
	CHECK(dot_of(bad_kind, 1, &ret) == NULL && ret == -EINVAL);
	g = dot_of(NULL, 0, &ret);
	CHECK(ret == 0 && g && strstr(g, "digraph moat {") && strstr(g, "}\n"));
	free(g);
}

/* Runs dot -Tsvg on text; true when it exits 0 and the SVG mentions want. */
static bool dot_accepts(const char *text, const char *want)
{
	char in[] = "/tmp/moat-graph-XXXXXX", cmd[128], svg[64], *buf = NULL;
	int fd = mkstemp(in), st;
	size_t len = 0;
	FILE *f;
	bool ok;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return false;
	close(fd);
	snprintf(svg, sizeof(svg), "%s.svg", in);
	snprintf(cmd, sizeof(cmd), "/usr/bin/dot -Tsvg -o %s %s 2>/dev/null", svg, in);
	st = system(cmd);
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	f = ok ? fopen(svg, "r") : NULL;
	if (f) {
		len = fread(buf = calloc(1, 1 << 20), 1, (1 << 20) - 1, f);
		fclose(f);
	}
	ok = ok && len && strstr(buf, "<svg") && (!want || strstr(buf, want));
	free(buf);
	unlink(in);
	unlink(svg);
	return ok;
}

static void test_graphviz(void)
{
	int ret;
	char *g;

	if (access("/usr/bin/dot", X_OK)) {
		printf("graphviz not installed: dot -Tsvg not tried (tests/deps.sh installs it)\n");
		return;
	}
	CHECK(!dot_accepts("digraph { a -> ", NULL));	/* the check can fail */
	g = dot_of(edges, N(edges), &ret);
	CHECK(g && dot_accepts(g, "53/udp, 8080/tcp"));
	free(g);
}

int main(void)
{
	test_text();
	test_deterministic();
	test_errors();
	test_graphviz();
	return check_done();
}
