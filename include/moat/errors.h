/* Diagnostics: errors collected as records with a location, printed once. */
#ifndef MOAT_ERRORS_H
#define MOAT_ERRORS_H

#include <stddef.h>
#include <stdio.h>

struct moat_diag {
	char *file;		/* owned; "" when the input has no name */
	unsigned line, col;	/* 1-based; 0 when unknown */
	char *msg;		/* owned; words for an operator, no trailing newline */
};

/* A growing list of diagnostics. Zero-initialise it ({0}); free with moat_diags_free. */
struct moat_diags {
	struct moat_diag *v;
	size_t n, cap;
};

/*
 * moat_diags_add - record one error at file:line:col.
 * Copies file and the formatted message. Never fails loudly: on ENOMEM the
 * record is dropped but n still grows past zero (a placeholder is kept), so a
 * caller that tests n > 0 still sees that something was wrong.
 */
void moat_diags_add(struct moat_diags *d, const char *file, unsigned line, unsigned col,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* moat_diag_format - "file:line:col: error: msg" (or "file: error: msg" without a line; a
 * lost file or message reads as such, never as NULL) into buf; returns buf. */
char *moat_diag_format(const struct moat_diag *r, char *buf, size_t len);

/* moat_diags_print - one line each, as moat_diag_format writes it. */
void moat_diags_print(const struct moat_diags *d, FILE *f);

/* moat_diags_free - frees the records and resets d to empty; NULL-safe. */
void moat_diags_free(struct moat_diags *d);

#endif
