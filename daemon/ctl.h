/* The control socket server (protocol: include/moat/ctl.h). */
#ifndef MOAT_DAEMON_CTL_H
#define MOAT_DAEMON_CTL_H

#include <jansson.h>
#include <stdbool.h>

#include "loop.h"

struct ctl_server;

/*
 * Answers one request. privileged: the peer is root or in the moat group; handlers refuse
 * changes otherwise. Returns a new reply object (the server sends and frees it); never NULL
 * except on ENOMEM, which the server answers for the handler.
 */
typedef json_t *(*ctl_handler_fn)(json_t *request, bool privileged, void *data);

/*
 * ctl_server_new - listen on path (its directory is created; a stale socket is replaced),
 * mode 0660, group moat when that group exists. Connections are served on loop, each
 * bounded in size and time, so no client can block the daemon or other clients.
 * Returns 0 and *out, or -errno. Free with ctl_server_free (closes and unlinks).
 */
int ctl_server_new(struct loop *loop, const char *path, ctl_handler_fn fn, void *data,
		   struct ctl_server **out);

/* ctl_server_free - NULL-safe; closes every connection. */
void ctl_server_free(struct ctl_server *srv);

/* ctl_reply_error - {"ok": false, "error": msg}; a helper for handlers. */
json_t *ctl_reply_error(const char *msg);

#endif
