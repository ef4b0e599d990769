/*
 * Newline-delimited JSON framing: feed bytes as they arrive (chunks may split a line
 * anywhere), get each complete line once. No JSON parsing here, so it can be fuzzed alone.
 * Memory is bounded by max_line and allocated once, in jsonl_framer_new.
 */
#ifndef MOAT_DAEMON_JSONL_H
#define MOAT_DAEMON_JSONL_H

#include <stddef.h>

struct jsonl_framer;

/*
 * Called once per complete line, without its "\n" (and without a "\r" before it); empty
 * lines are skipped. line points into the framer or into the fed buffer and is valid only
 * during the call. An over-long line is reported once, when its "\n" arrives, with
 * line == NULL and len = its length in bytes. Return 0 to go on; anything else stops
 * jsonl_framer_feed, which then returns that value (the rest of that buffer is lost).
 */
typedef int (*jsonl_line_fn)(void *arg, const char *line, size_t len);

/*
 * jsonl_framer_new - a framer for lines of at most max_line bytes (> 0, without the
 * newline). Returns 0 and sets *out, or -EINVAL, -ENOMEM. Free with jsonl_framer_free.
 */
int jsonl_framer_new(size_t max_line, struct jsonl_framer **out);

/* jsonl_framer_free - NULL-safe. */
void jsonl_framer_free(struct jsonl_framer *f);

/*
 * jsonl_framer_feed - consume len bytes of buf, calling fn for every line they complete.
 * A partial last line is kept (up to max_line bytes) for the next feed. Returns 0, or the
 * first nonzero value fn returned. Never allocates.
 */
int jsonl_framer_feed(struct jsonl_framer *f, const char *buf, size_t len, jsonl_line_fn fn,
		      void *arg);

/*
 * jsonl_framer_reset - forget a partial line, e.g. when the stream reconnects; the next
 * byte starts a new line.
 */
void jsonl_framer_reset(struct jsonl_framer *f);

#endif
