/* The web UI's HTTP side: routing, the token, security headers, files and the JSON API. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "web.h"
#include "web_events.h"
#include "web_request.h"

#define COOKIE "moat_token"
#define GRAPH_CACHE_MS 1000	/* /api/graph is computed at most once a second, unless news */

struct web {
	struct loop *loop;
	struct http_server *http;
	struct web_events *events;
	ctl_handler_fn ctl;
	void *ctl_data;
	struct ctl_conn *oneshot;	/* the unprivileged connection API requests go through */
	metrics_render_fn metrics;
	void *metrics_data;
	int root;			/* --web-root, open */
	char token[WEB_TOKEN_MAX + 1];
	size_t token_len;		/* 0: no token */
	char *graph;			/* the last /api/graph body */
	size_t graph_len;
	uint64_t graph_ms, graph_gen;
};

static const struct http_limits limits = {
	.connections = WEB_CONNECTIONS_MAX, .timeout_s = 10, .memory = 65536, .suspend = true,
};

/* ---- responses ---- */

/* On every answer: no inline script or style, no framing, no sniffing, no referrer. */
#define SECURITY_HEADERS                                                                  \
	"Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "   \
	"frame-ancestors 'none'",                                                        \
	"X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer",             \
	"X-Frame-Options", "DENY", "Cross-Origin-Opener-Policy", "same-origin",           \
	"Cross-Origin-Resource-Policy", "same-origin"

static const char *const api_headers[] = { SECURITY_HEADERS, "Cache-Control", "no-store", NULL };
static const char *const file_headers[] = { SECURITY_HEADERS, "Cache-Control", "no-cache", NULL };
static const char *const unauthorized_headers[] = {
	SECURITY_HEADERS, "Cache-Control", "no-store", "WWW-Authenticate", "Bearer realm=\"moat\"",
	NULL,
};

static enum MHD_Result json_reply(struct MHD_Connection *c, unsigned status, json_t *j,
				  const char *const *hdrs)
{
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!body)
		return MHD_NO;
	return http_reply(c, status, "application/json", body, strlen(body), hdrs);
}

static enum MHD_Result error_reply(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return json_reply(c, status, json_pack("{s:b,s:s}", "ok", 0, "error", msg),
			  status == MHD_HTTP_UNAUTHORIZED ? unauthorized_headers : api_headers);
}

/* ---- files ---- */

static enum MHD_Result file_reply(struct web *w, struct MHD_Connection *c, const char *name)
{
	const char *type = web_file_type(*name ? name : "index.html");
	int fd = type ? openat(w->root, *name ? name : "index.html",
			       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) : -1;
	struct MHD_Response *r = NULL;
	enum MHD_Result ret;
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
			st.st_size > WEB_FILE_SIZE_MAX ||
			!(r = MHD_create_response_from_fd((uint64_t)st.st_size, fd)))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		return error_reply(c, MHD_HTTP_NOT_FOUND, "no such file");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	for (size_t i = 0; file_headers[i]; i += 2)
		MHD_add_response_header(r, file_headers[i], file_headers[i + 1]);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- the token ---- */

static bool authorized(const struct web *w, struct MHD_Connection *c)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
	const char *tok;
	size_t len;

	if (!w->token_len)
		return true;
	if (web_bearer(auth, &tok, &len))
		return web_token_equal(tok, len, w->token, w->token_len);
	return cookie && web_token_equal(cookie, strlen(cookie), w->token, w->token_len);
}

/* POST /api/login (the bearer header checked already) and /api/logout. */
static enum MHD_Result cookie_reply(struct web *w, struct MHD_Connection *c, bool set)
{
	char cookie[WEB_TOKEN_MAX + 96];
	const char *hdrs[] = { SECURITY_HEADERS, "Cache-Control", "no-store", "Set-Cookie",
			       cookie, NULL };

	snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s",
		 set ? w->token : "", set ? "" : "; Max-Age=0");
	return json_reply(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1),
			  w->token_len ? hdrs : api_headers);
}

/* ---- the API ---- */

static const char *param(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result events_reply(struct web *w, struct MHD_Connection *c, json_t *req)
{
	const char *status = param(c, "status");
	const char *hdrs[] = { SECURITY_HEADERS, "Cache-Control", "no-store", NULL };
	struct MHD_Response *r = NULL;
	json_t *error = NULL;
	enum MHD_Result ret;
	int err = web_events_open(w->events, c, req, status && !strcmp(status, "1"), &r, &error);

	if (err)
		return error ? json_reply(c, err == -EBUSY ? MHD_HTTP_SERVICE_UNAVAILABLE
						     : MHD_HTTP_BAD_REQUEST, error, api_headers)
			     : MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	for (size_t i = 0; hdrs[i]; i += 2)
		MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* The graph is the costly answer: one computation serves every request of a second. */
static enum MHD_Result graph_reply(struct web *w, struct MHD_Connection *c, json_t *req)
{
	uint64_t now = loop_now_ms(), gen = web_events_generation(w->events);
	json_t *reply;
	char *body;

	if (!w->graph || now - w->graph_ms >= GRAPH_CACHE_MS || gen != w->graph_gen) {
		reply = w->ctl(req, w->oneshot, w->ctl_data);
		json_decref(req);
		if (!json_is_true(json_object_get(reply, "ok")))	/* not kept */
			return reply ? json_reply(c, MHD_HTTP_BAD_REQUEST, reply, api_headers) : MHD_NO;
		body = json_dumps(reply, JSON_COMPACT);
		json_decref(reply);
		if (!body)
			return MHD_NO;
		free(w->graph);
		w->graph = body, w->graph_len = strlen(body);
		w->graph_ms = now, w->graph_gen = gen;
	} else {
		json_decref(req);
	}
	if (!(body = malloc(w->graph_len)))
		return MHD_NO;
	memcpy(body, w->graph, w->graph_len);
	return http_reply(c, MHD_HTTP_OK, "application/json", body, w->graph_len, api_headers);
}

static enum MHD_Result api_reply(struct web *w, struct MHD_Connection *c, const char *name,
				 const char *method)
{
	char err[512] = "";
	json_t *req = NULL, *reply;
	int ret = web_api_request(name, param, c, &req, err, sizeof(err));

	if (ret == -ENOENT)
		return error_reply(c, MHD_HTTP_NOT_FOUND, "no such API");
	if (ret)
		return error_reply(c, MHD_HTTP_BAD_REQUEST, err[0] ? err : strerror(-ret));
	if (!strcmp(name, "events") && strcmp(method, "GET")) {	/* HEAD: no stream */
		json_decref(req);
		return error_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "event streams are for GET");
	}
	if (!strcmp(name, "events"))
		return events_reply(w, c, req);
	if (!strcmp(name, "graph"))
		return graph_reply(w, c, req);
	reply = w->ctl(req, w->oneshot, w->ctl_data);
	json_decref(req);
	if (!reply)
		return MHD_NO;
	return json_reply(c, json_is_true(json_object_get(reply, "ok")) ? MHD_HTTP_OK
									: MHD_HTTP_BAD_REQUEST,
			  reply, api_headers);
}

static enum MHD_Result api(struct web *w, struct MHD_Connection *c, const char *name,
			   const char *method)
{
	bool post = !strcmp(method, "POST");
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	bool session = !strcmp(name, "login") || !strcmp(name, "logout");

	if ((session && !post) || (!session && !get))
		return error_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (!strcmp(name, "logout"))
		return cookie_reply(w, c, false);
	if (!authorized(w, c))
		return error_reply(c, MHD_HTTP_UNAUTHORIZED,
				   "a token is required (moatd --web-token-file)");
	if (session)
		return cookie_reply(w, c, true);
	return api_reply(w, c, name, method);
}

/* ---- routing ---- */

static bool has_body(struct MHD_Connection *c)
{
	const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");

	return (len && strcmp(len, "0")) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **con_cls)
{
	struct web *w = cls;

	if (w->metrics && !strcmp(url, "/metrics"))
		return metrics_reply(c, method, w->metrics, w->metrics_data);
	if (has_body(c))
		return error_reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "requests have no body");
	if (!w->token_len &&
	    !web_host_local(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
		return error_reply(c, MHD_HTTP_MISDIRECTED_REQUEST,
				   "without a token, moatd answers only requests for its address "
				   "or localhost");
	if (!strncmp(url, "/api/", 5))
		return api(w, c, url + 5, method);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return error_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	return file_reply(w, c, url + 1);
}

/* ---- setup ---- */

static int token_load(struct web *w, const char *path)
{
	char buf[WEB_TOKEN_MAX + 64], err[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	struct stat st;
	int ret = n < 0 ? -errno : 0;

	if (!ret && !fstat(fd, &st) && (st.st_mode & 0077))
		log_warn("--web-token-file %s can be read by others than its owner", path);
	if (fd >= 0)
		close(fd);
	if (ret) {
		log_error("--web-token-file %s: %s", path, strerror(-ret));
		return ret;
	}
	if (web_token_parse(buf, (size_t)n, w->token, err, sizeof(err)) < 0) {
		log_error("--web-token-file %s: %s", path, err);
		return -EINVAL;
	}
	w->token_len = strlen(w->token);
	return 0;
}

static int web_open(struct web *w, struct loop *loop, const struct web_opts *o)
{
	int ret = 0;

	w->root = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->root < 0) {
		ret = -errno;
		log_error("--web-root %s: %s", o->root, strerror(-ret));
	}
	if (!ret && o->token_file)
		ret = token_load(w, o->token_file);
	if (!ret)
		ret = ctl_conn_local_new(NULL, NULL, &w->oneshot);
	if (!ret)
		ret = web_events_new(loop, o->ctl, o->ctl_data, &w->events);
	if (!ret && (ret = http_server_new(loop, o->listen, &limits, answer, NULL, w, &w->http)))
		log_error("web UI on %s: %s", o->listen, strerror(-ret));
	if (!ret)
		web_events_set_server(w->events, w->http);
	return ret;
}

int web_new(struct loop *loop, const struct web_opts *o, struct web **out)
{
	struct web *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	*w = (struct web){ .loop = loop, .ctl = o->ctl, .ctl_data = o->ctl_data,
			   .metrics = o->metrics, .metrics_data = o->metrics_data, .root = -1 };
	ret = web_open(w, loop, o);
	if (ret) {
		web_free(w);
		return ret;
	}
	log_info("web UI on http://%s/ (files from %s; %s)", o->listen, o->root,
		 w->token_len ? "a token is required" : "no token");
	*out = w;
	return 0;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	web_events_close_all(w->events);
	http_server_free(w->http);	/* ends the streams' connections */
	web_events_free(w->events);
	ctl_conn_local_free(w->oneshot);
	if (w->root >= 0)
		close(w->root);
	explicit_bzero(w->token, sizeof(w->token));
	free(w->graph);
	free(w);
}
