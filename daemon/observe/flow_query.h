/*
 * Flow queries: which flows `moat flows` asks for (--from, --to, --port, --verdict,
 * --since), and flows as JSON. A side filter is a label selector over the endpoint's labels
 * (moat/selector_text.h) or, when it reads as one, an address or CIDR over the address seen.
 *
 * A flow as JSON:
 *   {"first": ISO, "last": ISO, "first_ms": N, "last_ms": N, "from": PEER, "to": PEER,
 *    "proto": "tcp", "port": 5432, "verdict": "allowed"|"denied"|"violation",
 *    "policy": "ns/name, ns/other" or null, "reason": "pass"|"drop:in"|..., "count": N}
 *   PEER = {"name": "ns/name", "group": "ns/app=db", "labels": {...}, "ip": "10.0.0.5"}
 *          or {"name": null, "ip": "203.0.113.7"} for an address that is no endpoint
 */
#ifndef MOAT_DAEMON_FLOW_QUERY_H
#define MOAT_DAEMON_FLOW_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flows.h"
#include "names.h"
#include "moat/report.h"
#include "moat/selector_text.h"

struct flow_side_filter {
	struct moat_selector_text *sel;	/* NULL: no selector */
	bool is_net;
	struct moat_cidr net;
};

struct flow_query {
	struct flow_side_filter from, to;
	bool has_port;
	struct moat_port_arg port;
	unsigned verdicts;		/* bits 1 << enum flow_verdict; 0: every verdict */
	int64_t since_ms;		/* unix ms: flows last seen at or after; 0: all */
	size_t limit;			/* newest flows returned at most; 0: all */
};

/*
 * flow_query_parse - read {"from", "to", "port", "verdict", "since_ms" (relative to now),
 * "limit"} from a control request. Returns 0, or -EINVAL with words in err. Free with
 * flow_query_fini (also after a failure).
 */
int flow_query_parse(json_t *req, int64_t now_ms, struct flow_query *q, char *err,
		     size_t errlen);

/* flow_query_fini - frees what the query holds; q itself is the caller's. */
void flow_query_fini(struct flow_query *q);

/* flow_query_match - does f pass every filter of q? */
bool flow_query_match(const struct flow_query *q, const struct flow *f,
		      const struct names *names);

/* flow_json - f as JSON (see above). New reference, NULL on ENOMEM. */
json_t *flow_json(const struct flow *f, const struct names *names);

/* flow_peer_json - one side (see PEER above). New reference. */
json_t *flow_peer_json(const struct flow_peer *p, const struct moat_addr *seen,
		       const struct names *names);

/* flow_verdict_name - "allowed", "denied", "violation". */
const char *flow_verdict_name(unsigned verdict);

/* flow_proto_name - "tcp", "udp", "sctp", "icmp", "icmpv6", or the number, into buf (8). */
const char *flow_proto_name(uint8_t proto, char *buf);

/* flow_time_iso - unix ms as "2026-11-23T17:00:00.123Z" into buf (32). */
const char *flow_time_iso(int64_t ms, char *buf);

#endif
