/*
 * Newline-delimited JSON framing. A line that arrives whole inside one fed buffer is
 * handed out in place; only the pieces of a line split across feeds are copied.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

struct jsonl_framer {
	size_t max;		/* longest line accepted */
	size_t len;		/* bytes of the current line seen so far (also when dropping) */
	bool dropping;		/* the current line grew past max; skip to its end */
	char buf[];		/* max bytes: the current line while not dropping */
};

int jsonl_framer_new(size_t max_line, struct jsonl_framer **out)
{
	struct jsonl_framer *f;

	if (max_line == 0 || max_line > (1u << 30))
		return -EINVAL;
	f = calloc(1, sizeof(*f) + max_line);
	if (!f)
		return -ENOMEM;
	f->max = max_line;
	*out = f;
	return 0;
}

void jsonl_framer_free(struct jsonl_framer *f)
{
	free(f);
}

void jsonl_framer_reset(struct jsonl_framer *f)
{
	f->len = 0;
	f->dropping = false;
}

/* A line is complete: hand it out (or report it dropped), start the next one. */
static int emit(struct jsonl_framer *f, const char *line, size_t len, jsonl_line_fn fn,
		void *arg)
{
	bool dropped = f->dropping;

	jsonl_framer_reset(f);
	if (dropped)
		return fn(arg, NULL, len);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return 0;
	return fn(arg, line, len);
}

/* Add a piece that does not end the line; start dropping when it would not fit. */
static void append(struct jsonl_framer *f, const char *p, size_t n)
{
	if (!f->dropping && n > f->max - f->len)
		f->dropping = true;
	if (!f->dropping)
		memcpy(f->buf + f->len, p, n);
	/* Saturate: a dropped line's length is only reported, never used as an index. */
	f->len = n > (size_t)-1 - f->len ? (size_t)-1 : f->len + n;
}

int jsonl_framer_feed(struct jsonl_framer *f, const char *buf, size_t len, jsonl_line_fn fn,
		      void *arg)
{
	const char *p = buf, *end = buf + len, *nl;
	int ret;

	while (p < end) {
		nl = memchr(p, '\n', end - p);
		if (!nl) {
			append(f, p, end - p);
			return 0;
		}
		if (f->len == 0 && !f->dropping) {
			/* Whole line in this buffer: no copy. */
			if ((size_t)(nl - p) > f->max)
				f->dropping = true;
			f->len = nl - p;
			ret = emit(f, p, nl - p, fn, arg);
		} else {
			append(f, p, nl - p);
			ret = emit(f, f->buf, f->len, fn, arg);
		}
		if (ret)
			return ret;
		p = nl + 1;
	}
	return 0;
}
