/*
 * HTTP servers on moatd's own event loop: libmicrohttpd with its epoll descriptor watched by
 * the loop and no thread of its own, so handlers read moatd's state with nothing shared.
 * Used by the metrics (daemon/metrics.h) and the web UI (daemon/web.h); one server may serve
 * both when they are told the same address.
 */
#ifndef MOAT_HTTP_H
#define MOAT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "loop.h"

struct http_server;

/* Bounds of one server: every connection costs at most memory bytes and lives timeout_s
 * seconds without traffic; suspend allows MHD_suspend_connection (streams). */
struct http_limits {
	unsigned connections;
	unsigned timeout_s;
	size_t memory;
	bool suspend;
};

/*
 * http_server_new - listen on "ADDR:PORT" ("127.0.0.1:9640", "[::1]:9640", ":9640" for
 * every address) and answer with fn(fn_data, ...) (MHD's access handler); done, when not
 * NULL, runs when a request ends (MHD's completed callback, with fn_data). 0 and *out, or
 * -EINVAL (bad address), -EADDRINUSE, -errno. Free with http_server_free.
 */
int http_server_new(struct loop *loop, const char *listen, const struct http_limits *lim,
		    MHD_AccessHandlerCallback fn, MHD_RequestCompletedCallback done, void *fn_data,
		    struct http_server **out);

/*
 * http_server_free - NULL-safe; stops serving. Trap: every suspended connection must have
 * been resumed first (MHD's rule), and the server run once after that.
 */
void http_server_free(struct http_server *s);

/*
 * http_server_run - let MHD work now: after MHD_resume_connection, so the resumed stream is
 * written without waiting for its timer. Not from inside a handler of the same server.
 */
void http_server_run(struct http_server *s);

/* http_listen_parse - "ADDR:PORT", "[V6]:PORT" or ":PORT" into ss. 0 or -EINVAL. */
int http_listen_parse(const char *s, struct sockaddr_storage *ss);

/*
 * http_reply - queue body (len bytes; taken over, freed with free(), also on failure) with
 * status and Content-Type type, then the headers of hdrs (pairs of name and value, ending
 * with NULL; may be NULL). Returns MHD's result (MHD_NO closes the connection).
 */
enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, const char *type,
			   char *body, size_t len, const char *const *hdrs);

#endif
