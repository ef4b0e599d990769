/*
 * DNS over TCP, as replies flow to endpoints: each message after a 2-byte length, and a
 * message may span segments (RFC 7766). Per flow (resolver, endpoint and their ports) the
 * bytes of the message not yet whole, in sequence order. A segment seen before (a
 * retransmission) adds nothing; one after a gap forgets the flow, whose next messages are
 * then not learnt from (the endpoint's connection to what they name is refused, never
 * wrongly allowed). Bounded: a few flows (the least recently used goes), 64 KiB each.
 */
#ifndef MOAT_DNS_STREAM_H
#define MOAT_DNS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

struct streams;

/* streams_new - room for nflows flows at once. 0 and *out, or -ENOMEM. */
int streams_new(size_t nflows, struct streams **out);

/* streams_free - NULL-safe. */
void streams_free(struct streams *s);

/*
 * streams_add - segment seg (TCP, from port 53) of its flow: fn(ctx, msg, len) for each
 * message it completes, in order, before it returns. 0, or -ENOMEM (the flow is forgotten).
 */
int streams_add(struct streams *s, const struct dns_segment *seg,
		void (*fn)(void *ctx, const uint8_t *msg, size_t len), void *ctx);

#endif
