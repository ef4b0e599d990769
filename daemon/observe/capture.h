/*
 * Capture: the packets the ruleset logs to its NFLOG group, read with libpcap's "nflog:G"
 * device (DLT_NFLOG) and turned into records. The ruleset logs only connection starts (ct
 * state new) and drops, so this costs per new connection, never per byte.
 *
 * A DLT_NFLOG frame is a 4-byte header (family, version, resource id in network order) and
 * TLVs {length, type} in HOST byte order, 4-byte aligned, whose length includes the 4-byte
 * TLV header; their values are in network byte order (kernel: nfnetlink_log). Moat reads
 * NFULA_PREFIX (what the rule said: "moat:pass", "moat:drop:in", ...), NFULA_PAYLOAD (the
 * packet from its network header) and NFULA_TIMESTAMP when the kernel stamped the packet.
 */
#ifndef MOAT_DAEMON_CAPTURE_H
#define MOAT_DAEMON_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"

/* What the logging rule said, from its prefix. */
enum capture_kind {
	CAPTURE_PASS,		/* "moat:pass": a new connection went through */
	CAPTURE_DROP_IN,	/* "moat:drop:in": the destination's ingress policy dropped it */
	CAPTURE_DROP_OUT,	/* "moat:drop:out": the source's egress policy dropped it */
	CAPTURE_DROP_UNKNOWN,	/* "moat:drop:unknown": an address of a managed subnet nobody has */
	CAPTURE_SPOOF,		/* "moat:spoof": a container sent with an address not its own */
};

struct capture_record {
	enum capture_kind kind;
	uint8_t proto;			/* IPPROTO_* of the transport (after IPv6 extension headers) */
	bool has_ports;			/* TCP, UDP, SCTP, UDP-Lite and not a later fragment */
	bool later_fragment;		/* a fragment after the first: no transport header */
	uint16_t sport, dport;		/* host order; 0 without ports */
	uint8_t icmp_type, icmp_code;	/* ICMP and ICMPv6 */
	struct moat_addr saddr, daddr;
	int64_t time_ms;		/* unix ms: the kernel's stamp, else 0 (the reader fills it) */
};

/*
 * capture_parse - one DLT_NFLOG frame into *rec. Returns 0; -ENOENT for a frame Moat did
 * not log (no "moat:" prefix, or not IPv4/IPv6: ARP in the bridge table); -EMSGSIZE when
 * the transport header is not all in the record (a TCP, UDP, SCTP or UDP-Lite header cut
 * short, an IPv6 header chain longer than 8 or past the end: the kernel copies only
 * NFT_LOG_SNAPLEN bytes, and a hostile sender can push the header past them); -EINVAL for a
 * truncated or malformed frame otherwise. Never reads outside buf[0..len). *rec is written
 * only on 0.
 */
int capture_parse(const uint8_t *buf, size_t len, struct capture_record *rec);

/*
 * capture_record_keyed - can rec be a flow: does it carry what a flow is keyed by? False
 * for a later fragment (its transport and port are unknown) and for a port protocol (TCP,
 * UDP, SCTP, UDP-Lite) without its ports: a flow to "port 0" would be decided, learned and
 * alerted on as one.
 */
bool capture_record_keyed(const struct capture_record *rec);

/* capture_kind_name - "pass", "drop:in", "drop:out", "drop:unknown", "spoof". */
const char *capture_kind_name(enum capture_kind kind);

struct capture;

/* Figures since capture_open; kernel_drops from pcap_stats (socket overruns, ENOBUFS). */
struct capture_stats {
	uint64_t records;	/* handed to the callback */
	uint64_t ignored;	/* -ENOENT frames */
	uint64_t malformed;	/* -EINVAL frames */
	uint64_t truncated;	/* -EMSGSIZE frames: no transport header, so no flow */
	uint64_t read_errors;	/* pcap read errors other than "nothing queued" */
	uint64_t kernel_drops;	/* messages the kernel could not queue: lost records */
	uint64_t buffer_bytes;	/* the socket receive buffer actually granted */
};

typedef void (*capture_fn)(const struct capture_record *rec, void *data);

/*
 * capture_open - listen on NFLOG group (0-65535) of the calling thread's network namespace,
 * non-blocking, with a receive buffer of buffer_bytes (forced past rmem_max when root).
 * Only one socket can hold a group: a second moatd in the same namespace gets -EBUSY.
 * Returns 0 and *out, or -errno with libpcap's words in err.
 */
int capture_open(unsigned group, size_t buffer_bytes, struct capture **out, char *err,
		 size_t errlen);

/* capture_fd - for the event loop (EPOLLIN: records are queued). */
int capture_fd(const struct capture *c);

/*
 * capture_read - hand every queued record to fn, up to budget records (the rest stays for
 * the next EPOLLIN, so other work is not starved). Returns how many were handed over, or
 * -errno when the socket failed (then the caller should reopen).
 */
int capture_read(struct capture *c, unsigned budget, capture_fn fn, void *data);

/* capture_stats_get - the figures, kernel drops included. */
void capture_stats_get(struct capture *c, struct capture_stats *out);

/* capture_free - NULL-safe; closes the socket (the group is free again). */
void capture_free(struct capture *c);

#endif
