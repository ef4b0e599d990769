/*
 * Graphs of who talks to whom, as Graphviz DOT: observed flows (allowed, denied, monitor-mode
 * violations) and what policy allows, for `moat ... -o dot | dot -Tsvg`.
 */
#ifndef MOAT_GRAPH_H
#define MOAT_GRAPH_H

#include <stddef.h>
#include <stdio.h>

enum moat_graph_kind {
	MOAT_GRAPH_OBSERVED_ALLOWED,	/* seen and allowed: green */
	MOAT_GRAPH_OBSERVED_DENIED,	/* seen and dropped: red, dashed */
	MOAT_GRAPH_OBSERVED_VIOLATION,	/* seen, denied by policy but passed (monitor): orange */
	MOAT_GRAPH_POLICY_ALLOWED,	/* allowed by policy, never seen: grey, dotted */
};

/* One edge. Strings are borrowed; node names are whatever the caller uses to tell nodes
 * apart ("default/app=web", "203.0.113.7"); what is the edge's label ("80/tcp") or NULL. */
struct moat_graph_edge {
	const char *from, *to;
	const char *what;
	enum moat_graph_kind kind;
};

/*
 * moat_graph_dot - write edges as one DOT digraph to out. Nodes are declared once each (ids
 * n0, n1, ... in name order, the name as label); edges with the same from, to and kind merge
 * into one whose label is their whats, sorted, unique and comma-joined. Output is
 * deterministic whatever the order of edges. Names and whats may be hostile (container
 * labels): quotes, backslashes and control characters are escaped (a newline becomes a line
 * break in the label) and invalid UTF-8 is replaced by '?', so the result always parses.
 * Returns 0, -EINVAL (a NULL from/to or an unknown kind; nothing written), -ENOMEM, or -EIO
 * when writing to out failed.
 */
int moat_graph_dot(const struct moat_graph_edge *edges, size_t n, FILE *out);

#endif
