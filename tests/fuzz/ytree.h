/*
 * Holds yaml_parse's fast path to libyaml: both parse the same text, and the outcome,
 * every node (type, position, plainness, bytes, size) and every message must be the same.
 * Shared by the unit test and the fuzz harness of yaml_fast.c.
 */
#ifndef MOAT_TEST_YTREE_H
#define MOAT_TEST_YTREE_H

#include <stdbool.h>
#include <string.h>

#include "../../policy/arena.h"
#include "../../policy/yaml.h"
#include "moat/errors.h"

static bool ytree_same(const struct ynode *a, const struct ynode *b)
{
	if (a->type != b->type || a->line != b->line || a->col != b->col || a->n != b->n ||
	    a->size != b->size)
		return false;
	if (a->type == YNODE_SCALAR)
		return a->plain == b->plain && a->len == b->len && !memcmp(a->str, b->str, a->len);
	for (size_t i = 0; i < (a->type == YNODE_MAP ? 2 * a->n : a->n); i++)
		if (!ytree_same(a->kids[i], b->kids[i]))
			return false;
	return true;
}

static bool ydiags_same(const struct moat_diags *a, const struct moat_diags *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].line != b->v[i].line || a->v[i].col != b->v[i].col ||
		    strcmp(a->v[i].msg, b->v[i].msg))
			return false;
	return true;
}

/* True when yaml_parse and yaml_parse_libyaml agree on buf in every respect. */
static bool ytree_parse_same(const char *buf, size_t len)
{
	struct moat_diags da = { 0 }, db = { 0 };
	struct arena *ta = arena_new(), *tb = arena_new();
	struct ycheck ca, cb;
	struct ynode **a = NULL, **b = NULL;
	size_t na = 0, nb = 0;
	bool same;
	int ra, rb;

	ycheck_init(&ca, "f", ta, &da);
	ycheck_init(&cb, "f", tb, &db);
	ra = yaml_parse(&ca, ta, buf, len, &a, &na);
	rb = yaml_parse_libyaml(&cb, tb, buf, len, &b, &nb);
	same = ra == rb && ydiags_same(&da, &db) && (ra || na == nb);
	for (size_t i = 0; same && !ra && i < na; i++)
		same = ytree_same(a[i], b[i]);
	moat_diags_free(&da);
	moat_diags_free(&db);
	arena_free(ta);
	arena_free(tb);
	return same;
}

#endif
