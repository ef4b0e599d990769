/* Prometheus metrics over libmicrohttpd, driven by moatd's loop (see metrics.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "metrics.h"

struct metrics {
	struct MHD_Daemon *d;
	struct loop *loop;
	int epfd, timer;
	metrics_render_fn render;
	void *data;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return MHD_NO;		/* closes the connection */
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	if (!strcmp(url, "/metrics")) {
		m->render(f, m->data);
	} else {
		fputs("moatd: metrics are at /metrics\n", f);
		status = MHD_HTTP_NOT_FOUND;
	}
	fclose(f);
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK ? "text/plain; version=0.0.4" : "text/plain");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_ready(struct loop *loop, int fd, uint32_t events, void *data)
{
	MHD_run(((struct metrics *)data)->d);
}

/* Idle connections time out only when MHD runs: give it a tick. */
static void on_tick(struct loop *loop, void *data)
{
	MHD_run(((struct metrics *)data)->d);
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" into an address. */
static int listen_parse(const char *s, struct sockaddr_storage *ss)
{
	char host[256], *port;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	const char *h;

	snprintf(host, sizeof(host), "%s", s);
	port = strrchr(host, ':');
	if (!port || !port[1])
		return -EINVAL;
	*port++ = 0;
	h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		host[strlen(host) - 1] = 0;
		h++;
	}
	if (getaddrinfo(*h ? h : NULL, port, &hints, &ai))
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int metrics_new(struct loop *loop, const char *listen, metrics_render_fn render, void *data,
		struct metrics **out)
{
	struct sockaddr_storage ss = { 0 };
	struct metrics *m;
	const union MHD_DaemonInfo *info;
	int ret = listen_parse(listen, &ss);

	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop, m->render = render, m->data = data, m->timer = -1;
	m->d = MHD_start_daemon(MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, &ss,
				MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 5u,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
	if (!m->d) {
		ret = errno ? -errno : -EADDRINUSE;
		free(m);
		return ret;
	}
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	m->epfd = info ? info->epoll_fd : -1;
	ret = m->epfd < 0 ? -EINVAL : loop_fd_add(loop, m->epfd, EPOLLIN, on_ready, m);
	if (!ret) {
		m->timer = loop_timer_add(loop, 1000, 1, on_tick, m);
		ret = m->timer < 0 ? m->timer : 0;
	}
	if (ret) {
		metrics_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->timer > 0)
		loop_timer_del(m->loop, m->timer);
	if (m->epfd >= 0)
		loop_fd_del(m->loop, m->epfd);
	MHD_stop_daemon(m->d);
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
