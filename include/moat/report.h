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
 * moat_report_matrix - {"ports": [...], "verdicts": [{"from", "to", "port", "verdict"}, ...]}:
 * one entry per ordered pair of endpoints (self pairs included) per port, endpoints sorted by
 * namespace/name, rows (from) outermost. verdict is "allow" or "deny"; a monitor-mode
 * violation passes, so it is "allow" — or "allow*" when mark_violations is set (for tables
 * people read). Returns a new reference, or NULL on ENOMEM.
 */
json_t *moat_report_matrix(const struct moat_plan *plan, const struct moat_port_arg *ports,
			   size_t nports, bool mark_violations);

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

#endif
