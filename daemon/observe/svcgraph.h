/*
 * The node's service graph, for `moat graph`: the flows moatd has seen (allowed, denied,
 * violations) and what the policies allow that was never seen, between endpoints named by
 * their baseline group ("ns/app=web": replicas are one node) or external addresses. Written
 * as DOT by moat_graph_dot (include/moat/graph.h).
 */
#ifndef MOAT_DAEMON_SVCGRAPH_H
#define MOAT_DAEMON_SVCGRAPH_H

#include "flows.h"
#include "names.h"
#include "moat/plan.h"

/* Policy edges are only drawn up to this many groups (each pair is decided per port). */
#define SVCGRAPH_MAX_GROUPS 100
#define SVCGRAPH_MAX_PORTS 32

/*
 * svcgraph_dot - the graph as DOT into *dot (NUL-terminated; the caller frees). plan may be
 * NULL (then only observed flows). Returns 0, -ENOMEM or -EIO.
 */
int svcgraph_dot(const struct flows *t, const struct names *names, const struct moat_plan *plan,
		 char **dot);

#endif
