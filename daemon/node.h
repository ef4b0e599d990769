/*
 * The node: moatd's whole state (policies in force, endpoints, the compiled plan, the
 * nftables backend, the runtime watcher) and the one path that changes it: build the new
 * state beside the old, apply it to the kernel in one batch, then swap and free the old. On
 * any failure the old state stays in force.
 */
#ifndef MOAT_NODE_H
#define MOAT_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "ctl.h"
#include "loop.h"
#include "moat/errors.h"

struct node;

/*
 * node_new - load the policies (a broken policy directory is an error: moatd refuses to start
 * and the kernel keeps whatever ruleset it has) and open the netfilter and runtime clients.
 * Nothing is applied yet. cfg is borrowed for the node's life. 0 and *out, or -errno with
 * the problems logged.
 */
int node_new(const struct config *cfg, struct node **out);

/*
 * node_start - the first full sync (list the runtime, apply the whole ruleset in one batch,
 * replacing any ruleset a previous moatd left, with no open window), then watch the runtime,
 * the endpoints file, the ruleset and the clock on loop. If the runtime cannot be reached
 * the previous ruleset stays until the first successful listing. 0 or -errno.
 */
int node_start(struct node *n, struct loop *loop);

/* node_free - NULL-safe; leaves the ruleset in the kernel (enforcement continues). */
void node_free(struct node *n);

/*
 * node_policy_reload - load the policy directory again; all or nothing. On failure the
 * running policy stays in force and diags say why (file:line:col). 0 or -errno.
 */
int node_policy_reload(struct node *n, struct moat_diags *diags);

/* node_metrics - every node metric in the Prometheus text format (metrics_render_fn). */
void node_metrics(FILE *out, void *node);

/* node_ctl - the control socket's handler (ctl_handler_fn). */
json_t *node_ctl(json_t *request, struct ctl_conn *conn, void *node);

#endif
