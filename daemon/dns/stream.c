/* DNS over TCP (stream.h): a small table of flows, each with its pending bytes. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define MSG_MAX (2 + 65535)	/* a length and the longest message */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

struct flow {
	struct moat_addr saddr, daddr;
	uint16_t sport, dport;
	bool used;
	bool lost;			/* a gap: where its messages start is unknown */
	uint32_t next_seq;		/* the sequence number of the next byte expected */
	uint64_t last;			/* the table's clock when it was last seen */
	uint8_t *buf;			/* MSG_MAX bytes, allocated on first data */
	size_t len;
};

struct streams {
	struct flow *v;
	size_t n;
	uint64_t clock;
};

int streams_new(size_t nflows, struct streams **out)
{
	struct streams *s = calloc(1, sizeof(*s));

	if (!s || !(s->v = calloc(nflows ? nflows : 1, sizeof(*s->v)))) {
		free(s);
		return -ENOMEM;
	}
	s->n = nflows ? nflows : 1;
	*out = s;
	return 0;
}

void streams_free(struct streams *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].buf);
	free(s->v);
	free(s);
}

static bool flow_is(const struct flow *f, const struct dns_segment *seg)
{
	return f->used && f->sport == seg->sport && f->dport == seg->dport &&
	       !moat_addr_cmp(&f->saddr, &seg->saddr) && !moat_addr_cmp(&f->daddr, &seg->daddr);
}

/* The flow of seg, or a fresh one in place of the least recently used. */
static struct flow *flow_get(struct streams *s, const struct dns_segment *seg, bool *fresh)
{
	struct flow *lru = &s->v[0];

	for (size_t i = 0; i < s->n; i++) {
		if (flow_is(&s->v[i], seg)) {
			*fresh = false;
			return &s->v[i];
		}
		if (!s->v[i].used || (lru->used && s->v[i].last < lru->last))
			lru = &s->v[i];
	}
	*fresh = true;
	lru->used = true;
	lru->saddr = seg->saddr, lru->daddr = seg->daddr;
	lru->sport = seg->sport, lru->dport = seg->dport;
	lru->len = 0;
	lru->lost = false;
	return lru;
}

static void flow_forget(struct flow *f)
{
	f->used = false;
	f->len = 0;
}

/* Hands over every whole message at the front of f's bytes, keeping the rest. */
static void messages(struct flow *f, void (*fn)(void *, const uint8_t *, size_t), void *ctx)
{
	size_t at = 0;

	while (f->len - at >= 2) {
		size_t n = (size_t)f->buf[at] << 8 | f->buf[at + 1];

		if (f->len - at - 2 < n)
			break;
		fn(ctx, f->buf + at + 2, n);
		at += 2 + n;
	}
	memmove(f->buf, f->buf + at, f->len - at);
	f->len -= at;
}

int streams_add(struct streams *s, const struct dns_segment *seg,
		void (*fn)(void *ctx, const uint8_t *msg, size_t len), void *ctx)
{
	bool fresh;
	struct flow *f = flow_get(s, seg, &fresh);
	uint32_t seq = seg->tcp_seq + !!(seg->tcp_flags & TCP_SYN);

	f->last = ++s->clock;
	if (!fresh && seq != f->next_seq && (int32_t)(seq - f->next_seq) < 0)
		return 0;			/* seen before */
	if (!fresh && seq != f->next_seq)
		f->lost = true;			/* a gap: its messages are lost to us */
	f->next_seq = seq + (uint32_t)seg->len;
	if (f->lost || seg->tcp_flags & TCP_RST) {
		if (seg->tcp_flags & (TCP_FIN | TCP_RST))
			flow_forget(f);
		return 0;
	}
	if (seg->len && !f->buf && !(f->buf = malloc(MSG_MAX))) {
		flow_forget(f);
		return -ENOMEM;
	}
	if (seg->len > MSG_MAX - f->len)	/* no message is that long: out of step */
		f->lost = true;
	else if (seg->len) {
		memcpy(f->buf + f->len, seg->payload, seg->len);
		f->len += seg->len;
		messages(f, fn, ctx);
	}
	if (seg->tcp_flags & (TCP_FIN | TCP_RST))
		flow_forget(f);
	return 0;
}
