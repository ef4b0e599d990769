/* The control socket server (protocol: include/moat/ctl.h). */
#ifndef MOAT_DAEMON_CTL_H
#define MOAT_DAEMON_CTL_H

#include <jansson.h>
#include <stdbool.h>

#include "loop.h"

struct ctl_server;
struct ctl_conn;

/*
 * Answers one request on conn. Returns a new reply object (the server sends and frees it);
 * NULL only on ENOMEM, which the server answers for the handler. A reply over
 * MOAT_CTL_MAX_REPLY bytes is answered with an error naming the limit instead. To follow a
 * stream, call ctl_conn_stream (or ctl_conn_feed) before returning; the reply goes first,
 * then what ctl_conn_send queues.
 */
typedef json_t *(*ctl_handler_fn)(json_t *request, struct ctl_conn *conn, void *data);

/* Called once when a streaming connection closes (peer gone, too slow, or server freed). */
typedef void (*ctl_close_fn)(struct ctl_conn *conn, void *data);

/*
 * ctl_server_new - listen on path, mode 0660, group moat when that group exists. The
 * directory is created (0755) when missing; it must be owned by root (or moatd's own user)
 * and writable by nobody else, and so must every directory above it unless sticky (/tmp):
 * otherwise -EPERM, with why in the log. The socket is bound in a private directory beside
 * path, given its mode and group there and renamed over path, so the name never appears
 * with other permissions and a stale socket is replaced atomically. Connections are served
 * on loop, each bounded in size and time, so no client can block the daemon or other
 * clients. Returns 0 and *out, or -errno. Free with ctl_server_free (closes and unlinks).
 */
int ctl_server_new(struct loop *loop, const char *path, ctl_handler_fn fn, void *data,
		   struct ctl_server **out);

/* ctl_server_free - NULL-safe; closes every connection (streams get their close_fn). */
void ctl_server_free(struct ctl_server *srv);

/* ctl_conn_privileged - was the peer root or in the moat group, primary or supplementary,
 * when it connected (SO_PEERCRED, SO_PEERGROUPS)? */
bool ctl_conn_privileged(const struct ctl_conn *conn);

/*
 * ctl_conn_stream - keep conn open after the reply, for ctl_conn_send. close_fn(conn, data)
 * runs when it closes; conn is invalid after that. Only from inside the handler.
 */
void ctl_conn_stream(struct ctl_conn *conn, ctl_close_fn close_fn, void *data);

/*
 * Pulls the next part of a long answer: queue it with ctl_conn_send (at least one line) and
 * return 1 while more is to come, 0 after the last (the connection closes once it is
 * written), or -errno (it closes at once).
 */
typedef int (*ctl_feed_fn)(struct ctl_conn *conn, void *data);

/*
 * ctl_conn_feed - answer in parts after the reply, as fast as the peer reads: feed(conn,
 * data) is called whenever fewer than CTL_FEED_LOW bytes are queued, for at most
 * CTL_FEED_BUDGET_US per turn of the loop, so an answer of any size takes bounded memory
 * and never stalls the daemon. A peer that reads nothing for 10 x MOAT_CTL_TIMEOUT_MS is
 * disconnected. close_fn(conn, data) runs once when the connection closes, however (free
 * data there). Only from inside the handler.
 */
void ctl_conn_feed(struct ctl_conn *conn, ctl_feed_fn feed, ctl_close_fn close_fn, void *data);

#define CTL_FEED_LOW (256u << 10)
#define CTL_FEED_BUDGET_US 5000

/*
 * ctl_conn_send - queue msg (borrowed) as one line on a streaming connection. A peer that
 * lets more than CTL_STREAM_MAX_QUEUE bytes pile up is disconnected (its close_fn runs
 * later, from the loop, never inside this call): a slow reader never slows the daemon.
 * Returns 0 or -errno.
 */
int ctl_conn_send(struct ctl_conn *conn, json_t *msg);

#define CTL_STREAM_MAX_QUEUE (4u << 20)

/* Receives what a streaming local connection is sent (msg borrowed), on the loop's thread. */
typedef void (*ctl_local_send_fn)(json_t *msg, void *data);

/*
 * ctl_conn_local_new - a connection from inside moatd, for its other front ends (the web
 * UI): hand it to the control handler with a request and the answer is what a peer of the
 * socket would get; it is never privileged, so commands that change state are refused.
 * When the handler makes it a stream, ctl_conn_send calls send(msg, data) instead of
 * writing to a socket. 0 and *out, or -ENOMEM. Free with ctl_conn_local_free.
 * Trap: send runs inside whatever called ctl_conn_send (a follower's walk): it must not
 * free the connection there, only note that it should go.
 */
int ctl_conn_local_new(ctl_local_send_fn send, void *data, struct ctl_conn **out);

/* ctl_conn_local_free - NULL-safe; a stream's close_fn runs first, as when a peer hangs up. */
void ctl_conn_local_free(struct ctl_conn *conn);

/*
 * ctl_request_parse - the request in the first len bytes a peer has sent so far (buf need not
 * be NUL-terminated). Pure, so it can be fuzzed. Returns
 *   0          a whole line arrived and is a JSON object with a "cmd" string: *out (the
 *              caller decrefs); bytes after the newline are ignored (one request a connection);
 *   -EAGAIN    no newline yet and at most MOAT_CTL_MAX_REQUEST bytes: read more;
 *   -EMSGSIZE  the line is (or already grew) longer than MOAT_CTL_MAX_REQUEST bytes;
 *   -EBADMSG   the line is not such an object; err (errlen bytes) says why, for the reply.
 */
int ctl_request_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen);

/* ctl_reply_error - {"ok": false, "error": msg}; a helper for handlers. */
json_t *ctl_reply_error(const char *msg);

#endif
