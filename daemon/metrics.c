/* Prometheus metrics over libmicrohttpd, driven by moatd's loop (see metrics.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"

struct metrics {
	struct http_server *http;
	metrics_render_fn render;
	void *data;
};

static const struct http_limits limits = { .connections = 16, .timeout_s = 5, .memory = 65536 };

enum MHD_Result metrics_reply(struct MHD_Connection *c, const char *method,
			      metrics_render_fn render, void *data)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return MHD_NO;		/* closes the connection */
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	render(f, data);
	fclose(f);
	return http_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", buf, len, NULL);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	static const char nf[] = "moatd: metrics are at /metrics\n";
	char *body;

	if (!strcmp(url, "/metrics"))
		return metrics_reply(c, method, m->render, m->data);
	if (!(body = strdup(nf)))
		return MHD_NO;
	return http_reply(c, MHD_HTTP_NOT_FOUND, "text/plain", body, sizeof(nf) - 1, NULL);
}

int metrics_new(struct loop *loop, const char *listen, metrics_render_fn render, void *data,
		struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	m->render = render, m->data = data;
	ret = http_server_new(loop, listen, &limits, answer, NULL, m, &m->http);
	if (ret) {
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	http_server_free(m->http);
	free(m);
}

void metrics_gauge(FILE *out, const char *name, const char *help, double v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v);
}

void metrics_counter(FILE *out, const char *name, const char *help, uint64_t v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

void metrics_histogram(FILE *out, const char *name, const char *help, const struct latency *l)
{
	uint64_t cum = 0;

	fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
		cum += l->bucket[b];
		if (b < LATENCY_BUCKETS - 1)
			fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
				(double)latency_bounds_us[b] / 1e6, (unsigned long long)cum);
		else
			fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	fprintf(out, "%s_sum %g\n%s_count %llu\n", name, (double)l->sum_us / 1e6, name,
		(unsigned long long)l->count);
}

const char *metrics_escape(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	for (; *v && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"')
			buf[o++] = '\\', buf[o++] = *v;
		else if (*v == '\n')
			buf[o++] = '\\', buf[o++] = 'n';
		else
			buf[o++] = *v;
	}
	buf[o] = 0;
	return buf;
}
