/* Label selectors from command-line text (kubectl's syntax) into struct moat_selector. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "moat/selector_text.h"

#define MAX_EXPRS 64
#define MAX_VALUES 64

struct scan {
	const char *text, *p;
	struct arena *arena;
	char *err;
	size_t errlen;
	bool failed;
};

static void scan_fail(struct scan *s, const char *why)
{
	if (!s->failed)
		snprintf(s->err, s->errlen, "column %zu: %s", (size_t)(s->p - s->text) + 1, why);
	s->failed = true;
}

static void skip_space(struct scan *s)
{
	while (*s->p == ' ' || *s->p == '\t')
		s->p++;
}

/* A key or a value: a run of characters that are not syntax. May be empty. */
static char *word(struct scan *s)
{
	const char *start;

	skip_space(s);
	start = s->p;
	while (*s->p && !strchr(" \t,=!()", *s->p))
		s->p++;
	return arena_strndup(s->arena, start, (size_t)(s->p - start));
}

static bool eat(struct scan *s, const char *tok)
{
	skip_space(s);
	if (strncmp(s->p, tok, strlen(tok)))
		return false;
	s->p += strlen(tok);
	return true;
}

/* "in" and "notin" are keywords only when a '(' follows. */
static bool keyword(struct scan *s, const char *kw)
{
	const char *save = s->p;

	if (eat(s, kw) && (skip_space(s), *s->p == '('))
		return true;
	s->p = save;
	return false;
}

/* "(v1, v2, ...)" after in/notin. */
static int value_list(struct scan *s, struct moat_sel_expr *e)
{
	e->values = arena_array(s->arena, MAX_VALUES, sizeof(*e->values));
	if (!e->values)
		return -ENOMEM;
	eat(s, "(");
	do {
		if (e->nvalues == MAX_VALUES)
			return scan_fail(s, "too many values"), -EINVAL;
		if (!(e->values[e->nvalues] = word(s)))
			return -ENOMEM;
		if (!*e->values[e->nvalues])
			return scan_fail(s, "expected a value"), -EINVAL;
		e->nvalues++;
	} while (eat(s, ","));
	if (!eat(s, ")"))
		return scan_fail(s, "expected ',' or ')' in a value list"), -EINVAL;
	return 0;
}

static int one_value(struct scan *s, struct moat_sel_expr *e, enum moat_sel_op op)
{
	e->op = op;
	e->nvalues = 1;
	e->values = arena_array(s->arena, 1, sizeof(*e->values));
	if (!e->values || !(e->values[0] = word(s)))
		return -ENOMEM;
	return 0;
}

/* One requirement: "!k", "k", "k=v", "k==v", "k!=v", "k in (..)", "k notin (..)". */
static int requirement(struct scan *s, struct moat_sel_expr *e)
{
	bool negated = eat(s, "!");

	if (!(e->key = word(s)))
		return -ENOMEM;
	if (!*e->key)
		return scan_fail(s, "expected a label key"), -EINVAL;
	e->op = negated ? MOAT_SEL_DOES_NOT_EXIST : MOAT_SEL_EXISTS;
	if (negated)
		return 0;
	if (eat(s, "==") || eat(s, "="))
		return one_value(s, e, MOAT_SEL_IN);
	if (eat(s, "!="))
		return one_value(s, e, MOAT_SEL_NOT_IN);
	if (keyword(s, "notin")) {
		e->op = MOAT_SEL_NOT_IN;
		return value_list(s, e);
	}
	if (keyword(s, "in")) {
		e->op = MOAT_SEL_IN;
		return value_list(s, e);
	}
	return 0;
}

static int requirements(struct scan *s, struct moat_selector *sel)
{
	int ret;

	skip_space(s);
	if (!*s->p)
		return 0;	/* empty: selects everything */
	sel->exprs = arena_array(s->arena, MAX_EXPRS, sizeof(*sel->exprs));
	if (!sel->exprs)
		return -ENOMEM;
	do {
		if (sel->nexprs == MAX_EXPRS)
			return scan_fail(s, "too many requirements"), -EINVAL;
		ret = requirement(s, &sel->exprs[sel->nexprs]);
		if (ret)
			return ret;
		sel->nexprs++;
	} while (eat(s, ","));
	skip_space(s);
	if (*s->p)
		return scan_fail(s, "expected ',' or the end (a label is key, !key, key=value, "
				    "key!=value, key in (a,b) or key notin (a,b))"), -EINVAL;
	return 0;
}

int moat_selector_text_parse(const char *text, struct moat_selector_text **out, char *err,
			     size_t errlen)
{
	struct scan s = { .text = text, .p = text, .err = err, .errlen = errlen };
	struct moat_selector_text *st;
	int ret;

	if (!(s.arena = arena_new()))
		return -ENOMEM;
	st = arena_alloc(s.arena, sizeof(*st));
	ret = st ? requirements(&s, &st->sel) : -ENOMEM;
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (ret) {
		arena_free(s.arena);
		return ret;
	}
	st->priv = s.arena;
	*out = st;
	return 0;
}

void moat_selector_text_free(struct moat_selector_text *st)
{
	if (st)
		arena_free(st->priv);
}
