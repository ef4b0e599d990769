/*
 * Reports: the matrix and the explanation of verdicts as JSON, computed from a compiled plan.
 * moat prints them offline; moatd answers them live from the plan it enforces. One code path,
 * so the two can never disagree.
 */
#ifndef MOAT_REPORT_H
#define MOAT_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "moat/plan.h"

/* A port as people write it: "80/tcp", "53/udp", "80" (tcp), "icmp". */
struct moat_port_arg {
	uint8_t proto;
	uint16_t port;
	char text[24];		/* canonical: "80/tcp", "icmp" */
};

/* moat_port_arg_parse - 0, or -EINVAL for anything else. */
int moat_port_arg_parse(const char *s, struct moat_port_arg *p);

/*
 * The matrix: for each port, each source endpoint (a row) and each destination, the
 * verdict. Endpoints are sorted by namespace/name; rows go port by port, sources within.
 * A verdict is a character: 'a' allow, 'd' deny, 'v' a violation (denied only by monitor-mode
 * isolation, so it passes: people read "allow*", JSON "allow"). An endpoint reaching itself
 * is always 'a' (it never leaves its network namespace).
 *
 * Built once from a plan and independent of it afterwards, so rows can be handed out while
 * the plan in force changes. It holds verdicts per pair of classes of endpoints that every
 * verdict treats alike (replicas are one class), 2 bits each, never a cell per pair of
 * endpoints: memory grows with the names, the classes squared and the ports.
 */
struct moat_report_matrix;

/* What a matrix may hold at most (a thousand endpoints that no two verdicts treat alike, at
 * 64 ports, take some 20 MiB). */
#define MOAT_REPORT_MATRIX_MAX (256u << 20)

/*
 * moat_report_matrix_new - the verdicts of plan for ports (nports may be 0). Takes the time
 * of identities^2 + classes^2 x nports table lookups, and memory to match, up to
 * MOAT_REPORT_MATRIX_MAX bytes: past that -E2BIG (fewer ports may fit). Returns 0 and *out
 * (free with moat_report_matrix_free), -E2BIG or -ENOMEM.
 */
int moat_report_matrix_new(const struct moat_plan *plan, const struct moat_port_arg *ports,
			   size_t nports, struct moat_report_matrix **out);

/* moat_report_matrix_free - NULL-safe. */
void moat_report_matrix_free(struct moat_report_matrix *m);

/* moat_report_matrix_head - {"ports": ["80/tcp", ...], "endpoints": ["ns/name", ...] (row
 * and column order), "rows": N}. New reference, or NULL on ENOMEM. */
json_t *moat_report_matrix_head(const struct moat_report_matrix *m);

/* moat_report_matrix_rows - how many rows: ports x endpoints. */
size_t moat_report_matrix_rows(const struct moat_report_matrix *m);

/*
 * moat_report_matrix_row - row (0 .. rows-1: port row / endpoints, source row % endpoints)
 * as one verdict character per destination, NUL-terminated, into buf, which must hold
 * endpoints + 1 bytes (json_array_size of the head's "endpoints", plus one).
 */
void moat_report_matrix_row(const struct moat_report_matrix *m, size_t row, char *buf);

/* moat_report_matrix_bytes - the memory m holds, for benchmarks and tests. */
size_t moat_report_matrix_bytes(const struct moat_report_matrix *m);

/*
 * moat_report_explain - the verdict for from -> to on port and why: {from, to, port, verdict
 * (allow, deny, violation), loopback, egress: SIDE, ingress: SIDE}, SIDE = {isolated, mode,
 * policies: ["ns/name"...], allowed, rule: {policy, direction, index, file, line, col} or
 * null}. from and to are "namespace/name", "name" (namespace default) or an address.
 * Returns 0 and *out (a new reference), -ENOENT when from or to is neither (the message is
 * in err), or -ENOMEM.
 */
int moat_report_explain(const struct moat_plan *plan, const char *from, const char *to,
			const struct moat_port_arg *port, json_t **out, char *err, size_t errlen);

/*
 * moat_report_endpoints - es in the endpoints-file shape ({"namespaces": {...},
 * "endpoints": [...]}); JSON is YAML, so moat_endpoint_set_parse reads it back. New
 * reference or NULL.
 */
json_t *moat_report_endpoints(const struct moat_endpoint_set *es);

/* moat_labels_json - labels as one JSON object {key: value}; NULL when out of memory. */
json_t *moat_labels_json(const struct moat_labels *l);

#endif
