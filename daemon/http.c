/* HTTP on moatd's loop (see http.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http.h"

struct http_server {
	struct MHD_Daemon *d;
	struct loop *loop;
	int epfd;
	int timer;			/* the one-shot timer of run(), or 0 */
	uint64_t timer_at;		/* when it fires (loop_now_ms) */
};

static void run(struct http_server *s);

static void on_timer(struct loop *loop, void *data)
{
	struct http_server *s = data;

	loop_timer_del(loop, s->timer);
	s->timer = 0;
	run(s);
}

/*
 * MHD runs when its descriptor says so, and when its timeout says: work left that no
 * descriptor will announce again (its epoll is edge-triggered: the rest of a file being
 * sent, a resumed stream), and idle connections to close. One one-shot timer for that,
 * armed only while MHD has a timeout: without connections nothing wakes moatd for MHD.
 */
static void run(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;
	uint64_t at;
	int id;

	MHD_run(s->d);
	if (MHD_get_timeout(s->d, &ms) != MHD_YES)
		return;
	ms = ms > 3600 * 1000 ? 3600 * 1000 : ms;
	at = loop_now_ms() + ms;
	if (s->timer && s->timer_at <= at)
		return;
	if (s->timer)
		loop_timer_del(s->loop, s->timer);
	id = loop_timer_add(s->loop, (unsigned)ms, 0, on_timer, s);
	s->timer = id > 0 ? id : 0;
	s->timer_at = at;
}

static void on_ready(struct loop *loop, int fd, uint32_t events, void *data)
{
	run(data);
}

void http_server_run(struct http_server *s)
{
	run(s);
}

int http_listen_parse(const char *s, struct sockaddr_storage *ss)
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

static struct MHD_Daemon *daemon_start(const struct sockaddr_storage *ss,
				       const struct http_limits *lim,
				       MHD_AccessHandlerCallback fn,
				       MHD_RequestCompletedCallback done, void *data)
{
	unsigned flags = MHD_USE_EPOLL | (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
			 (lim->suspend ? MHD_ALLOW_SUSPEND_RESUME : 0);

	return MHD_start_daemon(flags, 0, NULL, NULL, fn, data, MHD_OPTION_SOCK_ADDR, ss,
				MHD_OPTION_CONNECTION_LIMIT, lim->connections,
				MHD_OPTION_CONNECTION_TIMEOUT, lim->timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, lim->memory,
				MHD_OPTION_NOTIFY_COMPLETED, done, data, MHD_OPTION_END);
}

int http_server_new(struct loop *loop, const char *listen, const struct http_limits *lim,
		    MHD_AccessHandlerCallback fn, MHD_RequestCompletedCallback done, void *fn_data,
		    struct http_server **out)
{
	struct sockaddr_storage ss = { 0 };
	const union MHD_DaemonInfo *info;
	struct http_server *s;
	int ret = http_listen_parse(listen, &ss);

	if (ret)
		return ret;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->loop = loop, s->epfd = -1;
	errno = 0;
	s->d = daemon_start(&ss, lim, fn, done, fn_data);
	if (!s->d) {
		ret = errno ? -errno : -EADDRINUSE;
		free(s);
		return ret;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
	s->epfd = info ? info->epoll_fd : -1;
	ret = s->epfd < 0 ? -EINVAL : loop_fd_add(loop, s->epfd, EPOLLIN, on_ready, s);
	if (ret) {
		http_server_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	if (s->timer)
		loop_timer_del(s->loop, s->timer);
	if (s->epfd >= 0)
		loop_fd_del(s->loop, s->epfd);
	MHD_stop_daemon(s->d);
	free(s);
}

enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, const char *type,
			   char *body, size_t len, const char *const *hdrs)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	for (size_t i = 0; hdrs && hdrs[i]; i += 2)
		MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}
