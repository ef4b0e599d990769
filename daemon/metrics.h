/*
 * Metrics in the Prometheus text format, served over HTTP (daemon/http.h) on moatd's own
 * event loop (no server thread: the renderer reads moatd's state with nothing shared).
 */
#ifndef MOAT_METRICS_H
#define MOAT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include <microhttpd.h>

#include "latency.h"
#include "loop.h"

struct metrics;

/* Writes every metric to out (a memory stream); called per scrape on the loop's thread. */
typedef void (*metrics_render_fn)(FILE *out, void *data);

/*
 * metrics_new - listen on "ADDR:PORT" ("127.0.0.1:9640", "[::1]:9640", ":9640" for every
 * address) and answer GET /metrics with render's output. Connections are bounded in number
 * and time. 0 and *out, or -EINVAL (bad address), -EADDRINUSE, -errno. Free with
 * metrics_free.
 */
int metrics_new(struct loop *loop, const char *listen, metrics_render_fn render, void *data,
		struct metrics **out);

/* metrics_free - NULL-safe; stops serving. */
void metrics_free(struct metrics *m);

/*
 * metrics_reply - answer a request for /metrics on c with render's output (GET and HEAD;
 * another method closes the connection), for a server that serves more than metrics.
 */
enum MHD_Result metrics_reply(struct MHD_Connection *c, const char *method,
			      metrics_render_fn render, void *data);

/* Helpers for renderers: one metric with its HELP and TYPE lines. */
void metrics_gauge(FILE *out, const char *name, const char *help, double v);
void metrics_counter(FILE *out, const char *name, const char *help, uint64_t v);
/* A histogram in seconds from a latency record. */
void metrics_histogram(FILE *out, const char *name, const char *help, const struct latency *l);
/* A label value escaped for the text format (backslash, quote, newline), into buf. */
const char *metrics_escape(const char *v, char *buf, size_t len);

#endif
