/*
 * A pull reader of JSON text in memory: the caller walks the document it expects (objects,
 * arrays, strings, integers) and nothing is built that it does not keep, so a document of a
 * million objects is read in the memory of what the caller makes of it. Syntax is checked as
 * strictly as jansson's (RFC 8259: no trailing commas, no control characters or bad UTF-8 in
 * strings, no leading zeros); the first syntax error stops the reader and is reported once
 * as "not valid JSON: WHY" at its line:column, in place of whatever the caller said about
 * the text until then (like jansson, which has nothing to say about text it cannot read).
 */
#ifndef MOAT_POLICY_JREAD_H
#define MOAT_POLICY_JREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/errors.h"

struct jread {
	const char *start, *p, *end;
	const char *file;		/* for diagnostics */
	struct moat_diags *diags;
	size_t diags_base;		/* diags before this text: a syntax error drops the rest */
	bool failed;			/* a syntax error was reported: stop */
	char *buf;			/* the last string read, unescaped (owned) */
	size_t cap;
	int nomem;			/* -ENOMEM happened */
};

enum jread_type { JREAD_END, JREAD_OBJECT, JREAD_ARRAY, JREAD_STRING, JREAD_NUMBER,
		  JREAD_TRUE, JREAD_FALSE, JREAD_NULL };

/* jread_init - read buf[0..len) (not NUL-terminated) of file; errors go to diags. */
void jread_init(struct jread *r, const char *buf, size_t len, const char *file,
		struct moat_diags *diags);

/* jread_fini - frees the scratch string. */
void jread_fini(struct jread *r);

/* jread_peek - the type of the next value, after whitespace (JREAD_END at the end or after
 * a failure; a character that starts no value is a syntax error). */
enum jread_type jread_peek(struct jread *r);

/*
 * jread_members - inside an object: true with the next key in *key (NUL-terminated, valid
 * until the next read; the ':' is consumed) while there is one, false at the closing '}'
 * (consumed) or after a failure. Call with first = true right after the '{', which it
 * consumes. Duplicate keys are the caller's to catch.
 */
bool jread_member(struct jread *r, bool first, const char **key, size_t *keylen);

/* jread_element - inside an array: the same for elements (first consumes the '['). */
bool jread_element(struct jread *r, bool first);

/* jread_string - a string value into *s (as for keys); false (a syntax error) otherwise. */
bool jread_string(struct jread *r, const char **s, size_t *len);

/*
 * jread_int - a number: true with *v when it is an integer that fits int64_t; false when it
 * is another number (not consumed as an error: *is_number says it was a number) or not a
 * number at all (then nothing is consumed).
 */
bool jread_int(struct jread *r, int64_t *v, bool *is_number);

/* jread_skip - consume one value of any type, checking its syntax. */
void jread_skip(struct jread *r);

/* jread_error - reports a syntax error at the current position; the reader stops. */
void jread_error(struct jread *r, const char *why);

/* jread_done - after the top-level value: only whitespace may follow (else an error). */
void jread_done(struct jread *r);

#endif
