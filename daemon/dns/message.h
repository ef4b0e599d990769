/*
 * DNS message: what a reply says the question's name resolves to. A pure parser of one
 * message (RFC 1035 section 4) for the egress-by-name feature: moatd learns the addresses
 * of the names a policy allows from the replies going to containers. No sockets, no
 * allocation, fixed caps.
 *
 * Trap: the parser believes whoever sent the reply. A container that may talk to a resolver
 * of its own choosing can make any name resolve to any address; only replies from the
 * resolvers Moat trusts may be learned from (the ruleset queues only those).
 */
#ifndef MOAT_DNS_MESSAGE_H
#define MOAT_DNS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"

#define DNS_MAX_ANSWERS 64	/* addresses kept per reply; the rest are counted, not kept */
#define DNS_MAX_CHAIN 16	/* names of a CNAME chain, the question's included */
#define DNS_MAX_CNAMES 64	/* CNAME records an answer section may hold */
#define DNS_NAME_MAX 256	/* a name as text, with its NUL (the wire allows 255 bytes) */

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

struct dns_answer {
	struct moat_addr addr;	/* AF_INET (4 bytes of a) or AF_INET6 */
	uint32_t ttl;		/* seconds: min of its record's and of the CNAMEs leading to it */
};

struct dns_reply {
	char qname[DNS_NAME_MAX];	/* lowercase, no final dot; "" is the root */
	uint16_t id;			/* the transaction id, as sent */
	uint16_t qtype, qclass;
	uint8_t rcode;			/* 0 NOERROR, 3 NXDOMAIN, ... (header only, no EDNS bits) */
	bool truncated;			/* TC: the resolver had more to say; retry over TCP */
	uint8_t nchain;			/* names of the CNAME chain followed, qname included */
	uint32_t chain_ttl;		/* min TTL of the CNAMEs followed; UINT32_MAX without */
	struct dns_answer v[DNS_MAX_ANSWERS];	/* distinct addresses, in answer order */
	size_t n;
	size_t dropped;			/* addresses of the chain beyond DNS_MAX_ANSWERS */
};

/*
 * dns_reply_parse - the addresses the question's name resolves to, from one DNS message.
 * The message must be a standard query's response (QR set, opcode 0) with exactly one
 * question. From the question's name the CNAME records (class IN) of the answer section
 * are followed (in any order, at most DNS_MAX_CHAIN names, a loop ends the chain); the A
 * and AAAA records of class IN owned by a name of that chain are collected, each with the
 * smallest TTL on its way (a TTL above 2^31-1 counts as 0, RFC 2181). Records owned by any
 * other name are ignored: a resolver may add what nobody asked, and that is never learned.
 * A repeated address is kept once, with its largest TTL. The authority and additional
 * sections, and anything after the answer section, are not read. The rcode is only
 * reported: an NXDOMAIN's answer section is read like any other.
 *
 * Names are compared and returned lowercase (ASCII), without the final dot. Compression
 * pointers must point before the start of the labels they are read from (so never forward,
 * never in a loop). Returns 0, or -EINVAL for anything else: a query, another opcode, a
 * qdcount other than 1, a message cut short, a record overrunning it, a label over 63
 * bytes, a name over 255, a label holding '.' or NUL (its text would read as another
 * name), an A or AAAA of the wrong size, a CNAME whose name does not fill its data, more
 * than DNS_MAX_CNAMES CNAME records. Never reads outside msg[0..len). *out is written only
 * on 0.
 */
int dns_reply_parse(const uint8_t *msg, size_t len, struct dns_reply *out);

#endif
