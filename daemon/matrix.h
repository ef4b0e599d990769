/*
 * The live matrix (the control command "policy.matrix", protocol in include/moat/ctl.h): a
 * snapshot of the plan in force (include/moat/report.h), sent a row at a time as the client
 * reads, so its size bounds neither moatd's memory nor a reply.
 */
#ifndef MOAT_DAEMON_MATRIX_H
#define MOAT_DAEMON_MATRIX_H

#include <jansson.h>

#include "ctl.h"
#include "moat/plan.h"

/* The most ports one request may ask for. */
#define MATRIX_MAX_PORTS 64

/*
 * matrix_ctl - answer req ({"ports": ["80/tcp", ...]}) on conn from plan (NULL before the
 * first commit: an error reply). The snapshot is taken now; the rows follow the returned
 * reply (ctl_conn_feed), then {"end": true}. Returns the reply (new reference).
 */
json_t *matrix_ctl(const struct moat_plan *plan, json_t *req, struct ctl_conn *conn);

#endif
