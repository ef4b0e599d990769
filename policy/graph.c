/*
 * DOT output for flow graphs. Every name is printed only as a quoted label behind a
 * generated node id, so hostile names need escaping in one place (dot_str) and can never be
 * read as DOT syntax.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "moat/graph.h"

static const struct {
	const char *attrs;
} kinds[] = {
	[MOAT_GRAPH_OBSERVED_ALLOWED] = { "color=\"#2e7d32\", fontcolor=\"#2e7d32\"" },
	[MOAT_GRAPH_OBSERVED_DENIED] = { "color=\"#c62828\", fontcolor=\"#c62828\", style=dashed" },
	[MOAT_GRAPH_OBSERVED_VIOLATION] = { "color=\"#ef6c00\", fontcolor=\"#ef6c00\", penwidth=2" },
	[MOAT_GRAPH_POLICY_ALLOWED] = { "color=\"#9e9e9e\", fontcolor=\"#757575\", style=dotted" },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* s inside a DOT double-quoted string. */
static void dot_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		size_t len = *s >= 0x80 ? utf8_len(s) : 1;

		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '\t')
			fputc(' ', f);
		else if (*s < 0x20 || *s == 0x7f || !len)
			fputc('?', f);
		else
			fwrite(s, 1, len, f);
		s += len ? len : 1;
	}
}

/* strverscmp: "80/tcp" before "443/tcp". NULL first. */
static int what_cmp(const char *a, const char *b)
{
	return a == b ? 0 : !a ? -1 : !b ? 1 : strverscmp(a, b);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int edge_cmp(const void *x, const void *y, void *arg)
{
	const struct moat_graph_edge *e = arg;
	const struct moat_graph_edge *a = &e[*(const size_t *)x], *b = &e[*(const size_t *)y];
	int c = strcmp(a->from, b->from);

	c = c ? c : strcmp(a->to, b->to);
	c = c ? c : (a->kind > b->kind) - (a->kind < b->kind);
	return c ? c : what_cmp(a->what, b->what);
}

/* Sorted, unique node names (borrowed) into *names / *n. */
static int nodes_collect(const struct moat_graph_edge *e, size_t n, const char ***names,
			 size_t *count)
{
	const char **v = malloc((2 * n + 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[k++] = e[i].from;
		v[k++] = e[i].to;
	}
	qsort(v, k, sizeof(*v), name_cmp);
	*count = 0;
	for (size_t i = 0; i < k; i++)
		if (!*count || strcmp(v[*count - 1], v[i]))
			v[(*count)++] = v[i];
	*names = v;
	return 0;
}

static size_t node_id(const char **names, size_t n, const char *name)
{
	const char **hit = bsearch(&name, names, n, sizeof(*names), name_cmp);

	return (size_t)(hit - names);
}

/* One merged edge: order[lo, hi) share from, to and kind. */
static void edge_write(FILE *f, const struct moat_graph_edge *e, const size_t *order,
		       size_t lo, size_t hi, const char **names, size_t nnames)
{
	const struct moat_graph_edge *first = &e[order[lo]];
	const char *prev = NULL;
	bool any = false;

	fprintf(f, "\tn%zu -> n%zu [", node_id(names, nnames, first->from),
		node_id(names, nnames, first->to));
	for (size_t i = lo; i < hi; i++) {
		const char *w = e[order[i]].what;

		if (!w || (prev && !strcmp(prev, w)))
			continue;
		fputs(any ? ", " : "label=\"", f);
		dot_str(f, w);
		any = true;
		prev = w;
	}
	fprintf(f, "%s%s];\n", any ? "\", " : "", kinds[first->kind].attrs);
}

static bool edges_ok(const struct moat_graph_edge *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!e[i].from || !e[i].to || (unsigned)e[i].kind >= NKINDS)
			return false;
	return true;
}

static void graph_write(FILE *f, const struct moat_graph_edge *e, size_t n, const size_t *order,
			const char **names, size_t nnames)
{
	fputs("digraph moat {\n\trankdir=LR;\n"
	      "\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
	      "\tedge [fontname=\"Helvetica\", fontsize=10];\n", f);
	for (size_t i = 0; i < nnames; i++) {
		fprintf(f, "\tn%zu [label=\"", i);
		dot_str(f, names[i]);
		fputs("\"];\n", f);
	}
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		const struct moat_graph_edge *a = &e[order[lo]];

		for (hi = lo + 1; hi < n; hi++) {
			const struct moat_graph_edge *b = &e[order[hi]];

			if (strcmp(a->from, b->from) || strcmp(a->to, b->to) || a->kind != b->kind)
				break;
		}
		edge_write(f, e, order, lo, hi, names, nnames);
	}
	fputs("}\n", f);
}

int moat_graph_dot(const struct moat_graph_edge *edges, size_t n, FILE *out)
{
	const char **names = NULL;
	size_t nnames = 0, *order;
	int ret;

	if (!edges_ok(edges, n))
		return -EINVAL;
	order = malloc((n + 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), edge_cmp, (void *)edges);
	ret = nodes_collect(edges, n, &names, &nnames);
	if (!ret) {
		graph_write(out, edges, n, order, names, nnames);
		ret = fflush(out) || ferror(out) ? -EIO : 0;
	}
	free(names);
	free(order);
	return ret;
}
