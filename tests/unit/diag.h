/*
 * Diagnostics in unit tests: is "file:line:col: msg" among them, and a policy text that must
 * fail with exactly one. Static helpers for the test files that include it (after check.h).
 */
#ifndef MOAT_TEST_DIAG_H
#define MOAT_TEST_DIAG_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "moat/errors.h"
#include "moat/policy.h"

/* Does g read "file:line:col: msg"? */
static inline bool diag_is(const struct moat_diag *g, const char *want)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s:%u:%u: %s", g->file, g->line, g->col, g->msg);
	return !strcmp(buf, want);
}

/* Is "file:line:col: msg" among d? Prints what there was when not. */
static inline bool has_diag(const struct moat_diags *d, const char *want)
{
	for (size_t i = 0; i < d->n; i++)
		if (diag_is(&d->v[i], want))
			return true;
	fprintf(stderr, "missing diagnostic: %s\nhave:\n", want);
	moat_diags_print(d, stderr);
	return false;
}

#define CHECK_DIAG(d, s) CHECK(has_diag(d, s))

/* d holds exactly one diagnostic, want; then frees it. */
static inline void only_diag(struct moat_diags *d, const char *want)
{
	CHECK_DIAG(d, want);
	if (d->n != 1) {
		fprintf(stderr, "for %s: %zu diagnostics\n", want, d->n);
		moat_diags_print(d, stderr);
	}
	CHECK(d->n == 1);
	moat_diags_free(d);
}

/* Prints line of text with a caret under col: where a diagnostic points, for a reader. */
static inline void show_at(const char *text, unsigned line, unsigned col)
{
	const char *p = text, *end;

	for (unsigned i = 1; i < line && p; i++)
		p = (p = strchr(p, '\n')) ? p + 1 : NULL;
	if (!p || !col)
		return;
	end = strchr(p, '\n');
	fprintf(stderr, "  %.*s\n  %*s^\n", (int)(end ? end - p : (long)strlen(p)), p, (int)col - 1, "");
}

/* Parses text as t.yaml; expects failure with exactly one diagnostic, want. */
static inline void expect_one(const char *text, const char *want)
{
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = (void *)0x1;	/* must stay untouched on failure */
	int ret = moat_policy_set_parse("t.yaml", text, strlen(text), &ps, &d);

	CHECK(ret == -EINVAL);
	CHECK(ps == (void *)0x1);
	for (size_t i = 0; i < d.n && !(d.n == 1 && diag_is(&d.v[0], want)); i++)
		show_at(text, d.v[i].line, d.v[i].col);
	only_diag(&d, want);
}

#endif
