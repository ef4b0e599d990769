/*
 * The fast path of yaml_parse: the YAML that programs write, read without libyaml, about
 * three times faster, into the same tree. Two forms:
 *   - JSON (generators, `kubectl -o json`);
 *   - the block subset: block mappings and sequences of one value a line, each value a
 *     one-line flow collection, a double-quoted string or a plain scalar of letters, digits
 *     and "_./-" (the endpoints files Moat's tools and benchmarks write, the examples).
 *
 * libyaml does not read every JSON text as JSON does: it refuses surrogate escapes and some
 * characters, wants a key and its ':' on one line and at most 1,024 characters apart, takes
 * U+2028 in a string as a line break, and counts columns in characters. This reader takes
 * only what libyaml reads exactly so, with the same positions, and leaves everything else to
 * libyaml (YAML_FAST_NOT: comments, anchors, block scalars, empty values, multi-line plain
 * scalars, tabs, CR...), which also words the errors. A first pass only checks (nothing is
 * built, no error recorded, so a late surprise costs nothing); the second builds. Recursion
 * is bounded by YBUILD_MAX_DEPTH.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ybuild.h"

#define KEY_MAX_CHARS 1000	/* libyaml's limit is 1,024; nearer is not worth the care */

struct jr {
	const unsigned char *p, *end;
	unsigned line, col;	/* of p: 1-based, columns in characters */
	size_t idx;		/* characters before p */
	struct ybuild *b;	/* NULL on the checking pass */
	bool block;		/* reading the block subset: flow collections stay on their line */
	unsigned depth;
	char *scratch;		/* an unescaped string */
	size_t scratch_cap;
};

/* Past n ASCII characters of the current line. */
static void step(struct jr *r, size_t n)
{
	r->p += n;
	r->col += n;
	r->idx += n;
}

static void skip_ws(struct jr *r)
{
	for (; r->p < r->end; r->p++, r->idx++) {
		if (*r->p == ' ' || (*r->p == '\t' && !r->block)) {
			r->col++;
			continue;
		}
		if (r->block || (*r->p != '\n' && *r->p != '\r'))
			return;
		if (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n')
			r->p++;		/* CR LF is one line break, as libyaml counts lines */
		r->line++;
		r->col = 1;
	}
}

/* Spaces and breaks only: libyaml refuses a tab outside a flow collection. */
static bool skip_outside(struct jr *r)
{
	const unsigned char *p = r->p;

	while (p < r->end && (*p == ' ' || *p == '\n' || *p == '\r'))
		p++;
	if (p < r->end && *p == '\t')
		return false;
	skip_ws(r);
	return true;
}

/*
 * The length of the UTF-8 character at p if libyaml takes it in a double-quoted scalar as one
 * plain character, else 0: invalid or overlong UTF-8, C1 controls, surrogates, non-characters
 * U+FFFE/U+FFFF, the BOM, and the line breaks U+0085, U+2028, U+2029.
 */
static size_t utf8_ok(const unsigned char *p, const unsigned char *end)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 0;
	uint32_t cp;

	if (!n || *p >= 0xf8 || (size_t)(end - p) < n)
		return 0;
	cp = *p & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min[n] || cp > 0x10ffff || cp < 0xa0 || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp == 0xfeff || cp == 0xfffe || cp == 0xffff || cp == 0x2028 || cp == 0x2029)
		return 0;
	return n;
}

static int scratch_fit(struct jr *r, size_t n)
{
	char *s;

	if (n <= r->scratch_cap)
		return 0;
	s = realloc(r->scratch, n);
	if (!s)
		return -ENOMEM;
	r->scratch = s;
	r->scratch_cap = n;
	return 0;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];

		if (c >= '0' && c <= '9')
			c -= '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			c = (c | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | c;
	}
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80)
		return o[0] = (char)cp, 1;
	if (cp < 0x800)
		return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
	o[0] = (char)(0xe0 | cp >> 12);
	o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* The escape at s (a backslash): sets *cp, returns the bytes it spans, or 0. */
static size_t escape(const unsigned char *s, const unsigned char *end, uint32_t *cp)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *at;

	if (end - s < 2)
		return 0;
	if (s[1] && (at = strchr(from, s[1]))) {
		*cp = (unsigned char)to[at - from];
		return 2;
	}
	/* libyaml refuses surrogates even in a valid pair; it gets the file and says so */
	if (s[1] != 'u' || end - s < 6 || hex4(s + 2, cp) < 0 || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return 6;
}

/*
 * Checks the string whose text starts at s: sets *close to its closing '"', *chars to the
 * characters up to there and *escaped. 0 or YAML_FAST_NOT.
 */
static int string_scan(const struct jr *r, const unsigned char *s, const unsigned char **close,
		       size_t *chars, bool *escaped)
{
	const unsigned char *q = s;
	uint32_t cp;
	size_t n;

	for (*chars = 0, *escaped = false; q < r->end && *q != '"'; q += n, ++*chars) {
		if (*q == '\\') {
			n = escape(q, r->end, &cp);
			*chars += n - 1;
			*escaped = true;
		} else {
			n = *q < 0x20 || *q == 0x7f ? 0 : *q < 0x80 ? 1 : utf8_ok(q, r->end);
		}
		if (!n)
			return YAML_FAST_NOT;
	}
	*close = q;
	return q < r->end ? 0 : YAML_FAST_NOT;
}

/* The text of a checked string with its escapes decoded, into r->scratch. */
static int unescape(struct jr *r, const unsigned char *s, const unsigned char *close,
		    size_t *len)
{
	size_t o = 0;
	uint32_t cp;

	if (scratch_fit(r, close - s + 1) < 0)	/* an escape is never shorter than its text */
		return -ENOMEM;
	while (s < close) {
		if (*s != '\\') {
			r->scratch[o++] = (char)*s++;
			continue;
		}
		s += escape(s, close, &cp);
		o += utf8_put(r->scratch + o, cp);
	}
	*len = o;
	return 0;
}

/* The string at r->p (its '"'). 0, YAML_FAST_NOT or a builder error. */
static int string(struct jr *r)
{
	const unsigned char *s = r->p + 1, *close;
	unsigned line = r->line, col = r->col;
	size_t chars, len = 0;
	bool escaped;
	int ret = string_scan(r, s, &close, &chars, &escaped);

	if (ret)
		return ret;
	r->p = close + 1;
	r->col += chars + 2;
	r->idx += chars + 2;
	if (!r->b)
		return 0;
	if (!escaped)
		return ybuild_scalar(r->b, line, col, (const char *)s, close - s, false, NULL);
	ret = unescape(r, s, close, &len);
	return ret ? ret : ybuild_scalar(r->b, line, col, r->scratch, len, false, NULL);
}

static bool is_digit(const struct jr *r, const unsigned char *p)
{
	return p < r->end && *p >= '0' && *p <= '9';
}

static const unsigned char *digits(const struct jr *r, const unsigned char *p)
{
	while (is_digit(r, p))
		p++;
	return p;
}

/* What may follow a number or a literal in JSON; libyaml ends a plain scalar there too. */
static bool at_delim(const struct jr *r, const unsigned char *p)
{
	return p == r->end || (*p && strchr(" \t\r\n,]}", *p));
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? up to a delimiter, else NULL. */
static const unsigned char *number_end(const struct jr *r, const unsigned char *p)
{
	p += *p == '-';
	if (!is_digit(r, p))
		return NULL;
	p = *p == '0' ? p + 1 : digits(r, p);
	if (p < r->end && *p == '.') {
		if (!is_digit(r, ++p))
			return NULL;
		p = digits(r, p);
	}
	if (p < r->end && (*p | 0x20) == 'e') {
		p++;
		p += p < r->end && (*p == '+' || *p == '-');
		if (!is_digit(r, p))
			return NULL;
		p = digits(r, p);
	}
	return at_delim(r, p) ? p : NULL;
}

static const unsigned char *literal_end(const struct jr *r, const unsigned char *p)
{
	static const char *const words[] = { "true", "false", "null" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i]);

		if ((size_t)(r->end - p) >= n && !memcmp(p, words[i], n) && at_delim(r, p + n))
			return p + n;
	}
	return NULL;
}

static bool safe_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/*
 * Block subset: a plain scalar of letters, digits and "_./-", starting with a letter, digit
 * or '_' (names, addresses, 8080/tcp: what libyaml reads as one plain scalar wherever it
 * stands), up to what can end one; the caller checks what follows.
 */
static const unsigned char *safe_end(const struct jr *r, const unsigned char *p)
{
	if (!safe_start(*p))
		return NULL;
	while (++p < r->end && (safe_start(*p) || *p == '.' || *p == '/' || *p == '-'))
		;
	return p == r->end || (*p && strchr(" \n,]}:", *p)) ? p : NULL;
}

/* A plain scalar, as libyaml reads it: JSON's numbers and literals, or the block subset's. */
static int plain(struct jr *r)
{
	const unsigned char *s = r->p;
	const unsigned char *e = r->block ? safe_end(r, s)
			       : *s == '-' || (*s >= '0' && *s <= '9') ? number_end(r, s)
								       : literal_end(r, s);
	unsigned col = r->col;

	if (!e)
		return YAML_FAST_NOT;
	step(r, e - s);
	return r->b ? ybuild_scalar(r->b, r->line, col, (const char *)s, e - s, true, NULL) : 0;
}

static int value(struct jr *r);

/*
 * A key, ':' on its line within KEY_MAX_CHARS, then white space: a string (spaces may come
 * before its ':'), or in the block subset a plain scalar, its ':' right after it and a space.
 */
static int key(struct jr *r)
{
	bool quoted = r->p < r->end && *r->p == '"';
	size_t at = r->idx;
	int ret;

	if (r->p == r->end || (!quoted && !r->block))
		return YAML_FAST_NOT;
	ret = quoted ? string(r) : plain(r);
	if (ret)
		return ret;
	for (; quoted && r->p < r->end && *r->p == ' '; r->p++)
		r->col++, r->idx++;
	if (r->p == r->end || *r->p != ':' || r->idx - at > KEY_MAX_CHARS ||
	    (!quoted && (r->p + 1 == r->end || r->p[1] != ' ')))
		return YAML_FAST_NOT;
	step(r, 1);
	skip_ws(r);
	return 0;
}

/* An object or an array at r->p, up to its closing bracket. */
static int collection(struct jr *r)
{
	bool map = *r->p == '{';
	unsigned char close = map ? '}' : ']';
	int ret = 0;

	if (++r->depth > YBUILD_MAX_DEPTH)
		return YAML_FAST_NOT;	/* libyaml's path words the error */
	if (r->b)
		ret = ybuild_open(r->b, map ? YNODE_MAP : YNODE_SEQ, r->line, r->col, NULL);
	step(r, 1);
	skip_ws(r);
	for (bool first = true; !ret && (r->p == r->end || *r->p != close); first = false) {
		if (r->p == r->end || (!first && *r->p != ','))
			return YAML_FAST_NOT;
		if (!first)
			step(r, 1), skip_ws(r);
		ret = map ? key(r) : 0;
		if (!ret)
			ret = value(r);
		if (!ret)
			skip_ws(r);
	}
	if (ret)
		return ret;
	step(r, 1);
	r->depth--;
	return r->b ? ybuild_close(r->b) : 0;
}

static int value(struct jr *r)
{
	if (r->p == r->end)
		return YAML_FAST_NOT;
	if (*r->p == '{' || *r->p == '[')
		return collection(r);
	if (*r->p == '"')
		return string(r);
	return plain(r);
}

/* ---- the block subset ---- */

/* Block subset: spaces, then the end of the line (consumed) or of the text. */
static bool line_end(struct jr *r)
{
	skip_ws(r);
	if (r->p < r->end && *r->p != '\n')
		return false;
	if (r->p < r->end)
		r->p++, r->idx++, r->line++, r->col = 1;
	return true;
}

/*
 * Skips empty lines; returns the indentation of the next line, -1 at the end of the text, or
 * -2 for a line libyaml might read otherwise (spaces only, a tab or CR in the indentation);
 * r->p stays at the line's start.
 */
static int next_indent(struct jr *r)
{
	const unsigned char *p;

	while (r->p < r->end && *r->p == '\n')
		r->p++, r->idx++, r->line++;
	if (r->p == r->end)
		return -1;
	for (p = r->p; p < r->end && *p == ' '; p++)
		;
	return p == r->end || *p == '\n' || *p == '\t' || *p == '\r' || p - r->p > 1000 ?
		       -2 : (int)(p - r->p);
}

static bool at_entry(const struct jr *r, int indent)
{
	const unsigned char *p = r->p + indent;

	return r->end - p >= 2 && p[0] == '-' && p[1] == ' ';
}

/* A value on its line (a one-line flow collection, a string or a plain scalar), its end. */
static int inline_value(struct jr *r)
{
	int ret;

	skip_ws(r);
	ret = value(r);
	return ret ? ret : line_end(r) ? 0 : YAML_FAST_NOT;
}

static int block_seq(struct jr *r, int indent);
static int block_map(struct jr *r, int indent);

/* The block under "key:" at indentation parent: a mapping or a sequence, never empty. */
static int nested(struct jr *r, int parent)
{
	int at = next_indent(r);

	if (at > parent && !at_entry(r, at))
		return block_map(r, at);
	if (at >= parent && at_entry(r, at))
		return block_seq(r, at);	/* at the same indentation: libyaml allows it */
	return YAML_FAST_NOT;	/* an empty value, or what libyaml might read otherwise */
}

/* "key: VALUE" or "key:" and a nested block; r->p ends at the start of the next line. */
static int block_entry(struct jr *r, int indent)
{
	bool quoted = *r->p == '"';
	size_t at = r->idx;
	int ret = quoted ? string(r) : plain(r);

	if (ret)
		return ret;
	if (r->p == r->end || *r->p != ':' || r->idx - at > KEY_MAX_CHARS)
		return YAML_FAST_NOT;
	step(r, 1);
	if (r->p < r->end && *r->p == ' ') {
		skip_ws(r);
		if (r->p < r->end && *r->p != '\n')
			return inline_value(r);
	}
	return line_end(r) ? nested(r, indent) : YAML_FAST_NOT;
}

/* Opens a block collection at the line's indentation (r->p at the line's start). */
static int block_open(struct jr *r, int indent, enum ynode_type t)
{
	if (++r->depth > YBUILD_MAX_DEPTH)
		return YAML_FAST_NOT;
	step(r, indent);
	return r->b ? ybuild_open(r->b, t, r->line, r->col, NULL) : 0;
}

static int block_close(struct jr *r)
{
	r->depth--;
	return r->b ? ybuild_close(r->b) : 0;
}

/* Entries "- VALUE" at indent, up to a line that is not one. */
static int block_seq(struct jr *r, int indent)
{
	int ret = block_open(r, indent, YNODE_SEQ);

	while (!ret) {
		step(r, 2);	/* "- " */
		ret = inline_value(r);
		if (ret || next_indent(r) != indent || !at_entry(r, indent))
			break;
		step(r, indent);
	}
	return ret ? ret : block_close(r);
}

/* Entries "key: ..." at indent, up to a line indented less. */
static int block_map(struct jr *r, int indent)
{
	int ret = block_open(r, indent, YNODE_MAP), at;

	while (!ret) {
		ret = block_entry(r, indent);
		at = ret ? 0 : next_indent(r);
		if (!ret && (at > indent || at == -2 || (at == indent && at_entry(r, at))))
			ret = YAML_FAST_NOT;
		if (ret || at != indent)
			break;
		step(r, indent);
	}
	return ret ? ret : block_close(r);
}

/* The block subset: a mapping or a sequence at column 1, nothing after it. */
static int block_doc(struct jr *r)
{
	int ret;

	r->block = true;
	if (next_indent(r) != 0)
		return YAML_FAST_NOT;
	ret = at_entry(r, 0) ? block_seq(r, 0) : block_map(r, 0);
	if (!ret && next_indent(r) != -1)
		ret = YAML_FAST_NOT;
	return ret || !r->b ? ret : ybuild_doc_end(r->b, r->line, r->col);
}

/* One pass over the whole text, as JSON or as the block subset; b NULL only checks. */
static int pass(struct jr *r, const char *buf, size_t len, struct ybuild *b)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;
	int ret;

	*r = (struct jr){ .p = p, .end = end, .line = 1, .col = 1, .b = b,
			  .scratch = r->scratch, .scratch_cap = r->scratch_cap };
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r'))
		p++;
	if (p == end || (*p != '{' && *p != '['))
		return block_doc(r);
	if (!skip_outside(r))
		return YAML_FAST_NOT;
	ret = collection(r);
	if (ret)
		return ret;
	if (!skip_outside(r) || r->p != r->end)
		return YAML_FAST_NOT;
	return b ? ybuild_doc_end(b, r->line, r->col) : 0;
}

int yaml_fast_build(struct ybuild *b, const char *buf, size_t len)
{
	struct jr r = { 0 };
	int ret = pass(&r, buf, len, NULL);

	if (!ret && b)
		ret = pass(&r, buf, len, b);
	free(r.scratch);
	return ret;
}
