/*
 * DNS segment: the DNS bytes of one IP packet from port 53, found under its IPv4 or IPv6
 * header and its UDP or TCP header. Pure (the queue hands it packets, tests and fuzzers
 * hand it bytes).
 *
 * Over UDP the payload is one whole DNS message. Over TCP it is a piece of a stream in
 * which each message has a 2-byte length in front (RFC 1035 4.2.2) and may span segments:
 * the caller reassembles, by seq, or learns nothing from it.
 */
#ifndef MOAT_DNS_SEGMENT_H
#define MOAT_DNS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"

#define DNS_PORT 53

struct dns_segment {
	struct moat_addr saddr, daddr;	/* the resolver, the asker; same family */
	uint8_t proto;			/* IPPROTO_UDP or IPPROTO_TCP */
	uint16_t sport, dport;		/* host order; sport is DNS_PORT */
	uint32_t tcp_seq;		/* TCP: the payload's first sequence number */
	uint8_t tcp_flags;		/* TCP: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10 */
	const uint8_t *payload;		/* inside the packet given (no copy) */
	size_t len;
};

/*
 * dns_segment_parse - the DNS payload of the IPv4 or IPv6 packet l3[0..len) (from its
 * network header, as NFQUEUE hands it), when it is UDP or TCP from port 53. The packet's
 * own lengths (IPv4 total length, IPv6 payload length, UDP length, TCP data offset) decide
 * where things end; bytes past the IP packet (link padding) are not payload.
 *
 * Returns 0; -ENOENT for a packet that is not UDP or TCP from port 53 (another transport,
 * ESP, no next header); -EMSGSIZE when the payload is not all there: a fragment (IPv4 MF or
 * offset, an IPv6 fragment header: conntrack's defragmentation normally hands the whole
 * datagram) or a packet longer than len (cut by the queue's copy range); -EINVAL for a
 * malformed packet (wrong version, IHL under 5, lengths that disagree, an IPv6 header
 * chain over 8 extension headers or past the end, a jumbogram). Never reads outside
 * l3[0..len). *out is written only on 0.
 */
int dns_segment_parse(const uint8_t *l3, size_t len, struct dns_segment *out);

#endif
