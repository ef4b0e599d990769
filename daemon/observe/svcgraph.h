/*
 * The node's service graph, for `moat graph`: the flows moatd has seen (allowed, denied,
 * violations) and what the policies allow that was never seen, between endpoints named by
 * their baseline group ("ns/app=web": replicas are one node) or external addresses. Written
 * as DOT by moat_graph_dot (include/moat/graph.h), or as JSON for the web UI:
 *
 *   {"nodes": [{"id": "shop/app=db", "kind": "group"|"external",
 *               "endpoints": ["shop/db", ...]}, ...],
 *    "edges": [{"from": ID, "to": ID, "port": "5432/tcp", "kind": "allowed"|"denied"|
 *               "violation"|"policy", "count": N, "first_ms": N, "last_ms": N,
 *               "policy": "ns/name, ..." or null, "sample": {"from": S, "to": S}}, ...],
 *    "truncated": false, "policy_edges": true, "policy_truncated": false}
 *
 * A node is a group of the plan (all of them, with or without flows) or an address an edge
 * names. One edge per (from, to, port, kind); count, first_ms, last_ms and policy sum up
 * its flows (policy: the newest flow's; a policy edge has count 0 and none of the three);
 * sample is the pair of the newest flow (or, for a policy edge, the endpoints it was
 * decided for), "ns/name" or an address, as `policy.explain` takes them. truncated:
 * observed edges were left out past the bound (the oldest); policy_truncated: policy edges
 * were (they come after every observed one); policy_edges: false when there were too many
 * groups to draw what policies allow.
 */
#ifndef MOAT_DAEMON_SVCGRAPH_H
#define MOAT_DAEMON_SVCGRAPH_H

#include <jansson.h>

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

/*
 * svcgraph_json - the graph as JSON (above) into *out (a new reference). At most max_edges
 * edges (0: no bound), observed first, newest flows first. Work is bounded by the flow
 * table's size and SVCGRAPH_MAX_GROUPS. Returns 0 or -ENOMEM.
 */
int svcgraph_json(const struct flows *t, const struct names *names, const struct moat_plan *plan,
		  size_t max_edges, json_t **out);

#endif
