/* Diagnostics: records with a location, collected while parsing and printed once. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/errors.h"

/*
 * Stands in when not even the first record could be stored, so that n > 0 still tells the
 * caller something went wrong. Never written (cap stays 0) nor freed; moat_diags_free
 * recognises it.
 */
static const struct moat_diag oom_placeholder;
#define OOM_PLACEHOLDER ((struct moat_diag *)&oom_placeholder)

static int diags_grow(struct moat_diags *d)
{
	size_t cap = d->cap ? d->cap * 2 : 8;
	struct moat_diag *v;

	if (d->n < d->cap)
		return 0;
	if (d->v == OOM_PLACEHOLDER)
		return -1;
	v = realloc(d->v, cap * sizeof(*v));
	if (!v)
		return -1;
	d->v = v;
	d->cap = cap;
	return 0;
}

void moat_diags_add(struct moat_diags *d, const char *file, unsigned line, unsigned col,
		    const char *fmt, ...)
{
	struct moat_diag *r;
	va_list ap;

	if (diags_grow(d) < 0) {
		if (d->n == 0) {
			d->v = OOM_PLACEHOLDER;
			d->n = 1;
		}
		return;
	}
	r = &d->v[d->n++];
	r->file = strdup(file ? file : "");
	r->line = line;
	r->col = col;
	va_start(ap, fmt);
	if (vasprintf(&r->msg, fmt, ap) < 0)
		r->msg = NULL;
	va_end(ap);
}

char *moat_diag_format(const struct moat_diag *r, char *buf, size_t len)
{
	const char *file = r->file && r->file[0] ? r->file : "<input>";
	const char *msg = r->msg ? r->msg : "out of memory (message lost)";

	if (r->line)
		snprintf(buf, len, "%s:%u:%u: error: %s", file, r->line, r->col, msg);
	else
		snprintf(buf, len, "%s: error: %s", file, msg);
	return buf;
}

void moat_diags_print(const struct moat_diags *d, FILE *f)
{
	char line[4096];

	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%s\n", moat_diag_format(&d->v[i], line, sizeof(line)));
}

void moat_diags_free(struct moat_diags *d)
{
	if (!d)
		return;
	if (d->v != OOM_PLACEHOLDER) {
		for (size_t i = 0; i < d->n; i++) {
			free(d->v[i].file);
			free(d->v[i].msg);
		}
		free(d->v);
	}
	d->v = NULL;
	d->n = d->cap = 0;
}
