/*
 * The web UI (moatd --web ADDR:PORT): a live service map, the flows and the status in a
 * browser, served by moatd over HTTP (daemon/http.h) from files of its own directory
 * (--web-root) and read-only JSON endpoints that answer through the control protocol's own
 * commands (an in-process, unprivileged connection: see ctl_conn_local_new), so the page
 * shows exactly what `moat` prints:
 *
 *   GET /api/status      `moat status`          GET /api/endpoints  `moat endpoints`
 *   GET /api/graph       `moat graph -o json`   GET /api/explain    `moat policy explain`
 *   GET /api/flows       `moat flows` (from, to, port, verdict, since, limit)
 *   GET /api/events      the same filters, followed, as server-sent events (web_events.h)
 *   POST /api/login      with "Authorization: Bearer TOKEN": sets the token as a cookie
 *   POST /api/logout     clears it
 *   GET /, /NAME.EXT     index.html and the other files of --web-root (web_file_type)
 *   GET /metrics         only when --metrics names the same address (one listener)
 *
 * Safety: with --web-token-file, every /api/ request needs the token as a bearer header or
 * the cookie (HttpOnly, SameSite=Strict), compared in constant time; without it, only
 * requests whose Host is an address or localhost are answered (no DNS rebinding). Requests
 * have no body; every query value, flow answer, stream and connection is bounded
 * (web_request.h, web_events.h); responses carry a Content-Security-Policy without inline
 * script, nosniff, no referrer and frame-ancestors 'none'.
 */
#ifndef MOAT_WEB_H
#define MOAT_WEB_H

#include "ctl.h"
#include "loop.h"
#include "metrics.h"

#define WEB_CONNECTIONS_MAX 32

struct web;

struct web_opts {
	const char *listen;		/* "ADDR:PORT" */
	const char *root;		/* the directory of the UI's files */
	const char *token_file;		/* NULL: no token */
	ctl_handler_fn ctl;		/* the control handler and its data */
	void *ctl_data;
	metrics_render_fn metrics;	/* non-NULL: also serve /metrics */
	void *metrics_data;
};

/*
 * web_new - serve the UI on o->listen. Fails, and moatd does not start, when the address
 * cannot be used (-EINVAL, -EADDRINUSE), the root is not a directory, or the token file
 * cannot be read or holds no valid token (logged). 0 and *out, or -errno. Free with web_free.
 */
int web_new(struct loop *loop, const struct web_opts *o, struct web **out);

/*
 * web_free - NULL-safe; ends the event streams and stops serving. Trap: call it before the
 * state the control handler reads is freed (streams are followers of the flow table).
 */
void web_free(struct web *w);

#endif
