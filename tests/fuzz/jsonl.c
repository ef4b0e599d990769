/*
 * Fuzzes the JSON-lines framer (daemon/observe/jsonl.c) against a model. Input: byte 0 picks
 * max_line (1..128, or up to 4065 with bit 7 set), bytes 1..4 are a cycle of chunk sizes
 * (0..255; 0 is an empty feed), the rest is the stream. The stream is fed in those chunks, so lines split anywhere; what the
 * framer hands out must be exactly what splitting the whole stream at "\n" gives: each
 * complete line once, in order, without "\r\n", empty lines skipped, a line over max_line
 * reported once as dropped with its full length, the unterminated tail kept back. Then a
 * callback that stops the feed, and a reset, must leave the framer usable.
 */
#include <stdint.h>
#include <string.h>

#include "../../daemon/observe/jsonl.h"
#include "fuzz.h"

#define HEADER 5

struct expect {
	const uint8_t *stream;
	size_t len, pos;	/* the model's cursor: start of the next line */
	size_t max;
	size_t got;		/* records seen */
	int stop_at;		/* return 1 from this record on (-1: never) */
};

/* The next record the model expects: 1 and (*line, *n) (line NULL when dropped), or 0. */
static int model_next(struct expect *x, const uint8_t **line, size_t *n)
{
	const uint8_t *nl;
	size_t len;

	while ((nl = memchr(x->stream + x->pos, '\n', x->len - x->pos))) {
		*line = x->stream + x->pos;
		len = (size_t)(nl - *line);
		x->pos += len + 1;
		if (len > x->max) {
			*line = NULL;
			*n = len;
			return 1;
		}
		if (len && (*line)[len - 1] == '\r')
			len--;
		if (len) {
			*n = len;
			return 1;
		}
	}
	return 0;
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct expect *x = arg;
	const uint8_t *want;
	size_t n;

	FUZZ_CHECK(model_next(x, &want, &n));
	FUZZ_CHECK(len == n);
	FUZZ_CHECK((line == NULL) == (want == NULL));
	if (line) {
		FUZZ_CHECK(len <= x->max);
		FUZZ_CHECK(!memcmp(line, want, len));
		FUZZ_CHECK(!memchr(line, '\n', len));
	}
	x->got++;
	return x->stop_at >= 0 && (int)x->got > x->stop_at ? 7 : 0;
}

static void feed_chunks(struct jsonl_framer *f, struct expect *x, const uint8_t *sizes)
{
	size_t off = 0, i = 0, n;

	while (off < x->len) {
		n = sizes[i++ % 4];
		if (i % 4 == 0 && !(sizes[0] | sizes[1] | sizes[2] | sizes[3]))
			n = 1;	/* four empty feeds in a row would never end */
		if (n > x->len - off)
			n = x->len - off;
		FUZZ_CHECK(!jsonl_framer_feed(f, (const char *)x->stream + off, n, on_line, x));
		off += n;
	}
}

/* Reset drops the fuzzed tail; a callback's stop ends the feed; then a fresh line is whole. */
static void stop_and_reset(struct jsonl_framer *f, size_t max)
{
	static const char two[] = "{\"a\":1}\n{\"b\":2}\n";
	struct expect x = { (const uint8_t *)"z\n", 2, 0, max, 0, -1 };
	struct expect y = { (const uint8_t *)two, sizeof(two) - 1, 0, max, 0, 0 };

	jsonl_framer_reset(f);
	FUZZ_CHECK(jsonl_framer_feed(f, two, sizeof(two) - 1, on_line, &y) == 7);
	FUZZ_CHECK(y.got == 1);
	jsonl_framer_reset(f);
	FUZZ_CHECK(!jsonl_framer_feed(f, "z\n", 2, on_line, &x));
	FUZZ_CHECK(x.got == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonl_framer *f = NULL;
	struct expect x = { 0 };
	const uint8_t *rest;
	size_t n;

	if (size < HEADER)
		return 0;
	x.max = data[0] & 0x80 ? (size_t)(data[0] & 0x7f) * 32 + 1 : (size_t)data[0] + 1;
	x.stream = data + HEADER;
	x.len = size - HEADER;
	x.stop_at = -1;
	FUZZ_CHECK(!jsonl_framer_new(x.max, &f));
	feed_chunks(f, &x, data + 1);
	/* Whatever is left unterminated is only handed out once its "\n" arrives. */
	FUZZ_CHECK(!model_next(&x, &rest, &n));
	stop_and_reset(f, x.max);
	jsonl_framer_free(f);
	return 0;
}
