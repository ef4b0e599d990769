/*
 * The web UI's event stream (GET /api/events): server-sent events fed by the control
 * protocol's own flow follower (a `moat flows --follow` over an in-process connection, see
 * ctl_conn_local_new), so the page sees what the CLI sees, with the same filters:
 *
 *   event: flows    the follow request's reply: {"ok", "flows": [...], "matched", "table",
 *                   "capture"} (the newest flows that match, as `moat flows`)
 *   event: flow     one flow (daemon/flow_query.h) when it is new, changes verdict, or at
 *                   most once a second while it is seen again
 *   event: status   the status reply (without uptime_s) when it changed, at most every 2 s,
 *                   on streams opened with status=1
 *   : ping          a comment every 5 s of silence (finds peers that are gone)
 *
 * Bounds: WEB_STREAMS_MAX streams at once (more are refused with 503); a stream whose peer
 * lets WEB_STREAM_QUEUE_MAX bytes pile up is closed (EventSource reconnects and gets a fresh
 * "flows"). A stream waiting for news is suspended (no CPU); a peer that hangs up meanwhile
 * is noticed within a second.
 */
#ifndef MOAT_WEB_EVENTS_H
#define MOAT_WEB_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "ctl.h"
#include "http.h"
#include "loop.h"

#define WEB_STREAMS_MAX 16
#define WEB_STREAM_QUEUE_MAX (1u << 20)

struct web_events;

/*
 * web_events_new - streams answered by ctl(request, conn, ctl_data) (the control handler).
 * 0 and *out, or -ENOMEM. Set the server with web_events_set_server before the first open.
 */
int web_events_new(struct loop *loop, ctl_handler_fn ctl, void *ctl_data,
		   struct web_events **out);

/* web_events_set_server - the server whose connections the streams are (borrowed). */
void web_events_set_server(struct web_events *ev, struct http_server *http);

/*
 * web_events_open - start a stream on c for req (a follow request from web_api_request,
 * taken over); status: also send status events. Returns 0 and *resp (an MHD response the
 * caller queues, with its own headers, and destroys), or a negative errno and *error (a
 * reply to send as JSON: -EBUSY too many streams, -EINVAL the request was refused).
 */
int web_events_open(struct web_events *ev, struct MHD_Connection *c, json_t *req, bool status,
		    struct MHD_Response **resp, json_t **error);

/*
 * web_events_generation - changes whenever a stream was sent a flow or a status: a cached
 * answer made at another generation may be stale.
 */
uint64_t web_events_generation(const struct web_events *ev);

/*
 * web_events_close_all - end every stream and resume the suspended ones, as MHD requires
 * before its server stops. Then free the server (its connections' ends free the streams),
 * then web_events_free.
 */
void web_events_close_all(struct web_events *ev);

/* web_events_free - NULL-safe; frees what is left (call after the server is gone). */
void web_events_free(struct web_events *ev);

#endif
