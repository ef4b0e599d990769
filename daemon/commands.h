/*
 * The control commands (include/moat/ctl.h has every request and reply): one table, one
 * privilege check, served by the control socket (ctl.h) through commands_handle.
 */
#ifndef MOAT_COMMANDS_H
#define MOAT_COMMANDS_H

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "node.h"

/* What the commands answer from; both borrowed. */
struct commands {
	struct node *node;
	const struct config *cfg;
};

/* commands_handle - the control socket's handler (ctl_handler_fn); data: struct commands. */
json_t *commands_handle(json_t *request, struct ctl_conn *conn, void *data);

#endif
