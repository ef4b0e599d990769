/* A pull reader of JSON text (policy/jread.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jread.h"

#define MAX_DEPTH 2048		/* as jansson's */

void jread_init(struct jread *r, const char *buf, size_t len, const char *file,
		struct moat_diags *diags)
{
	*r = (struct jread){ .start = buf, .p = buf, .end = buf + len, .file = file,
			     .diags = diags, .diags_base = diags->n };
}

void jread_fini(struct jread *r)
{
	free(r->buf);
	r->buf = NULL;
}

void jread_error(struct jread *r, const char *why)
{
	unsigned line = 1;
	const char *bol = r->start;

	if (r->failed)
		return;
	r->failed = true;
	/* the text is no JSON, so what was said about its contents is void: the error alone */
	while (r->diags->n > r->diags_base) {
		struct moat_diag *d = &r->diags->v[--r->diags->n];

		free(d->file);
		free(d->msg);
	}
	for (const char *q = r->start; q < r->p; q++)
		if (*q == '\n')
			line++, bol = q + 1;
	moat_diags_add(r->diags, r->file, line, (unsigned)(r->p - bol) + 1, "not valid JSON: %s",
		       why);
	r->p = r->end;
}

static void ws(struct jread *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
		r->p++;
}

enum jread_type jread_peek(struct jread *r)
{
	ws(r);
	if (r->failed || r->p == r->end)
		return JREAD_END;
	switch (*r->p) {
	case '{':
		return JREAD_OBJECT;
	case '[':
		return JREAD_ARRAY;
	case '"':
		return JREAD_STRING;
	case 't':
		return JREAD_TRUE;
	case 'f':
		return JREAD_FALSE;
	case 'n':
		return JREAD_NULL;
	}
	if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
		return JREAD_NUMBER;
	jread_error(r, "unexpected character, want a value");
	return JREAD_END;
}

static bool take(struct jread *r, char c)
{
	ws(r);
	if (r->p < r->end && *r->p == c) {
		r->p++;
		return true;
	}
	return false;
}

/* ---- strings ---- */

static bool buf_put(struct jread *r, size_t at, const char *s, size_t n)
{
	if (at + n + 1 > r->cap) {
		size_t cap = (at + n + 1) * 2;
		char *b = realloc(r->buf, cap);

		if (!b) {
			r->nomem = -ENOMEM;
			jread_error(r, "out of memory");
			return false;
		}
		r->buf = b, r->cap = cap;
	}
	memcpy(r->buf + at, s, n);
	r->buf[at + n] = '\0';
	return true;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The code point of a \u escape at r->p (after the "\u"), pairs of surrogates joined. */
static long uescape(struct jread *r)
{
	long c = r->end - r->p >= 4 ? hex4(r->p) : -1, lo;

	if (c < 0)
		return -1;
	r->p += 4;
	if (c >= 0xdc00 && c <= 0xdfff)
		return -1;
	if (c < 0xd800 || c > 0xdbff)
		return c;
	if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
		return -1;
	lo = hex4(r->p + 2);
	if (lo < 0xdc00 || lo > 0xdfff)
		return -1;
	r->p += 6;
	return 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
}

static size_t utf8_put(char *out, long c)
{
	if (c < 0x80)
		return out[0] = (char)c, 1;
	if (c < 0x800)
		return out[0] = (char)(0xc0 | c >> 6), out[1] = (char)(0x80 | (c & 0x3f)), 2;
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12), out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18), out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f)), out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = *s < 0x80 ? 1 : *s >= 0xc2 && *s <= 0xdf ? 2 : *s >= 0xe0 && *s <= 0xef ? 3 :
		     *s >= 0xf0 && *s <= 0xf4 ? 4 : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((*s == 0xe0 && s[1] < 0xa0) || (*s == 0xed && s[1] > 0x9f) ||
	    (*s == 0xf0 && s[1] < 0x90) || (*s == 0xf4 && s[1] > 0x8f))
		return 0;	/* overlong, surrogate or past U+10FFFF */
	return len;
}

static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";

/* One escape at r->p (after the '\'), appended at *at. */
static bool escape_read(struct jread *r, size_t *at)
{
	char c = r->p < r->end ? *r->p++ : 0, out[4];
	const char *e = c ? strchr(escapes, c) : NULL;
	long cp;

	if (e && (e - escapes) % 2 == 0)
		return buf_put(r, (*at)++, e + 1, 1);
	if (c != 'u' || (cp = uescape(r)) < 0) {
		jread_error(r, c == 'u' ? "invalid \\u escape" : "invalid escape");
		return false;
	}
	if (!cp) {
		jread_error(r, "\\u0000 is not allowed in a string");
		return false;
	}
	if (!buf_put(r, *at, out, utf8_put(out, cp)))
		return false;
	*at += utf8_put(out, cp);
	return true;
}

bool jread_string(struct jread *r, const char **s, size_t *len)
{
	size_t at = 0;

	if (!take(r, '"')) {
		jread_error(r, "want a string");
		return false;
	}
	if (!buf_put(r, 0, "", 0))
		return false;
	while (r->p < r->end && *r->p != '"') {
		const char *run = r->p;
		size_t n;

		if (*r->p == '\\') {
			r->p++;
			if (!escape_read(r, &at))
				return false;
			continue;
		}
		for (;;) {
			unsigned char c = r->p < r->end ? (unsigned char)*r->p : '"';

			if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
				r->p++;		/* plain ASCII, the common case */
				continue;
			}
			if (c < 0x80 || !(n = utf8_len((const unsigned char *)r->p,
						       (size_t)(r->end - r->p))))
				break;
			r->p += n;
		}
		if (r->p == run) {
			jread_error(r, r->p < r->end && (unsigned char)*r->p < 0x20 ?
				    "control character in a string" : "invalid UTF-8 in a string");
			return false;
		}
		if (!buf_put(r, at, run, (size_t)(r->p - run)))
			return false;
		at += (size_t)(r->p - run);
	}
	if (r->p == r->end) {
		jread_error(r, "unterminated string");
		return false;
	}
	r->p++;
	*s = r->buf;
	*len = at;
	return true;
}

/* ---- numbers, literals ---- */

static size_t digits(const char *p, const char *end)
{
	size_t n = 0;

	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* The integer of the n digits at q into *acc; false when it passes UINT64_MAX. */
static bool digits_value(const char *q, size_t n, uint64_t *acc)
{
	*acc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(q[i] - '0');

		if (*acc > (UINT64_MAX - d) / 10)
			return false;
		*acc = *acc * 10 + d;
	}
	return true;
}

/* Past a fraction and an exponent at *q, if any: true when there was either. */
static bool number_tail(struct jread *r, const char **q)
{
	bool more = false;
	size_t n;

	if (*q < r->end && **q == '.') {
		more = true;
		if (!(n = digits(++*q, r->end)))
			return jread_error(r, "invalid number"), true;
		*q += n;
	}
	if (*q < r->end && (**q == 'e' || **q == 'E')) {
		more = true;
		*q += *q + 1 < r->end && ((*q)[1] == '+' || (*q)[1] == '-') ? 2 : 1;
		if (!(n = digits(*q, r->end)))
			return jread_error(r, "invalid number"), true;
		*q += n;
	}
	return more;
}

/* Is the real number s[0..n) beyond a double (jansson refuses those)? */
static bool real_overflows(const char *s, size_t n)
{
	char small[64], *text = n < sizeof(small) ? small : malloc(n + 1);
	double d;

	if (!text)
		return false;
	memcpy(text, s, n);
	text[n] = '\0';
	errno = 0;
	d = strtod(text, NULL);
	if (text != small)
		free(text);
	return errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
}

bool jread_int(struct jread *r, int64_t *v, bool *is_number)
{
	const char *q;
	bool neg, fits, integer;
	uint64_t acc;
	size_t n;

	*is_number = jread_peek(r) == JREAD_NUMBER;
	if (!*is_number)
		return false;
	neg = *r->p == '-';
	q = r->p + neg;
	n = digits(q, r->end);
	if (!n || (q[0] == '0' && n > 1)) {
		jread_error(r, n ? "leading zero in a number" : "invalid number");
		return false;
	}
	fits = digits_value(q, n, &acc) && acc <= (uint64_t)INT64_MAX + neg;
	q += n;
	integer = !number_tail(r, &q);
	if (r->failed)
		return false;
	if (!integer && real_overflows(r->p, (size_t)(q - r->p))) {
		jread_error(r, "real number overflow");
		return false;
	}
	r->p = q;
	if (integer && !fits) {
		jread_error(r, neg ? "too big negative integer" : "too big integer");
		return false;
	}
	if (integer)
		*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return integer;
}

static void literal(struct jread *r, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		jread_error(r, "invalid literal");
	else
		r->p += n;
}

/* ---- structure ---- */

bool jread_member(struct jread *r, bool first, const char **key, size_t *keylen)
{
	if (r->failed)
		return false;
	if (first && !take(r, '{'))
		return jread_error(r, "want an object"), false;
	if (take(r, '}'))
		return false;
	if (!first && !take(r, ','))
		return jread_error(r, "want ',' or '}'"), false;
	if (!jread_string(r, key, keylen))
		return false;
	if (!take(r, ':'))
		return jread_error(r, "want ':'"), false;
	return true;
}

bool jread_element(struct jread *r, bool first)
{
	if (r->failed)
		return false;
	if (first && !take(r, '['))
		return jread_error(r, "want an array"), false;
	if (take(r, ']'))
		return false;
	if (!first && !take(r, ','))
		return jread_error(r, "want ',' or ']'"), false;
	ws(r);
	if (r->p < r->end && *r->p == ']')
		return jread_error(r, "a value must follow ','"), false;
	return true;
}

static void skip_depth(struct jread *r, int depth)
{
	const char *k;
	size_t kl;
	int64_t v;
	bool num;

	if (depth > MAX_DEPTH)
		return jread_error(r, "maximum parsing depth reached");
	switch (jread_peek(r)) {
	case JREAD_OBJECT:
		for (bool first = true; jread_member(r, first, &k, &kl); first = false)
			skip_depth(r, depth + 1);
		break;
	case JREAD_ARRAY:
		for (bool first = true; jread_element(r, first); first = false)
			skip_depth(r, depth + 1);
		break;
	case JREAD_STRING:
		jread_string(r, &k, &kl);
		break;
	case JREAD_NUMBER:
		jread_int(r, &v, &num);
		break;
	case JREAD_TRUE:
		literal(r, "true");
		break;
	case JREAD_FALSE:
		literal(r, "false");
		break;
	case JREAD_NULL:
		literal(r, "null");
		break;
	case JREAD_END:
		jread_error(r, "want a value");
		break;
	}
}

void jread_skip(struct jread *r)
{
	skip_depth(r, 0);
}

void jread_done(struct jread *r)
{
	ws(r);
	if (!r->failed && r->p != r->end)
		jread_error(r, "end of file expected");
}
