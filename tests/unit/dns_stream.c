/* DNS over TCP as moatd follows it (daemon/dns/stream.h): messages split across segments,
 * several in one, retransmissions, gaps, FIN and RST, flows side by side, and the bound. */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/dns/stream.h"

#define SYN 0x02
#define FIN 0x01
#define RST 0x04

/* What the callback was handed: each message's length and first byte, in order. */
struct got {
	size_t n;
	size_t len[16];
	uint8_t first[16];
};

static void on_msg(void *ctx, const uint8_t *msg, size_t len)
{
	struct got *g = ctx;

	if (g->n < 16) {
		g->len[g->n] = len;
		g->first[g->n] = len ? msg[0] : 0;
	}
	g->n++;
}

/* A segment of the flow resolver:53 -> 10.0.0.<host>:dport with seq and flags. */
static struct dns_segment seg(uint8_t host, uint16_t dport, uint32_t seq, uint8_t flags,
			      const uint8_t *p, size_t len)
{
	struct dns_segment s = { .proto = IPPROTO_TCP, .sport = 53, .dport = dport,
				 .tcp_seq = seq, .tcp_flags = flags, .payload = p, .len = len };

	s.saddr.family = s.daddr.family = AF_INET;
	memcpy(s.saddr.a, (uint8_t[]){ 192, 0, 2, 53 }, 4);
	memcpy(s.daddr.a, (uint8_t[]){ 10, 0, 0, host }, 4);
	return s;
}

/* Two messages: 5 bytes starting 0xa1, 3 bytes starting 0xb2, each after its length. */
static const uint8_t two[] = { 0, 5, 0xa1, 1, 2, 3, 4, 0, 3, 0xb2, 5, 6 };

static int add(struct streams *s, struct dns_segment sg, struct got *g)
{
	return streams_add(s, &sg, on_msg, g);
}

static void test_split_and_joined(struct streams *s)
{
	struct got g = { 0 };

	/* SYN-ACK (no data, seq 1000: data starts at 1001), then the messages in pieces */
	CHECK(add(s, seg(1, 40001, 1000, SYN, NULL, 0), &g) == 0 && g.n == 0);
	CHECK(add(s, seg(1, 40001, 1001, 0, two, 1), &g) == 0 && g.n == 0);	/* half a length */
	CHECK(add(s, seg(1, 40001, 1002, 0, two + 1, 4), &g) == 0 && g.n == 0);
	CHECK(add(s, seg(1, 40001, 1006, 0, two + 5, 4), &g) == 0);		/* first whole */
	CHECK(g.n == 1 && g.len[0] == 5 && g.first[0] == 0xa1);
	CHECK(add(s, seg(1, 40001, 1010, 0, two + 9, 3), &g) == 0);
	CHECK(g.n == 2 && g.len[1] == 3 && g.first[1] == 0xb2);
	/* both in one segment, on a new connection */
	g = (struct got){ 0 };
	CHECK(add(s, seg(2, 40002, 5000, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(2, 40002, 5001, 0, two, sizeof(two)), &g) == 0);
	CHECK(g.n == 2 && g.first[0] == 0xa1 && g.first[1] == 0xb2);
}

static void test_retransmission_and_gap(struct streams *s)
{
	struct got g = { 0 };

	CHECK(add(s, seg(3, 40003, 0, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(3, 40003, 1, 0, two, 7), &g) == 0 && g.n == 1);
	CHECK(add(s, seg(3, 40003, 1, 0, two, 7), &g) == 0 && g.n == 1);	/* again: nothing */
	CHECK(add(s, seg(3, 40003, 8, 0, two + 7, 5), &g) == 0 && g.n == 2);
	/* a gap: what follows it is not learnt from, whatever it looks like */
	CHECK(add(s, seg(3, 40003, 20, 0, two, sizeof(two)), &g) == 0 && g.n == 2);
	CHECK(add(s, seg(3, 40003, 32, 0, two, sizeof(two)), &g) == 0 && g.n == 2);
	/* FIN forgets the flow: the next connection on the same ports starts afresh */
	CHECK(add(s, seg(3, 40003, 44, FIN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(3, 40003, 9000, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(3, 40003, 9001, 0, two, sizeof(two)), &g) == 0 && g.n == 4);
}

static void test_rst_and_side_by_side(struct streams *s)
{
	struct got a = { 0 }, b = { 0 };

	/* two flows to one endpoint (other ports), interleaved, each whole in the end */
	CHECK(add(s, seg(4, 40004, 100, SYN, NULL, 0), &a) == 0);
	CHECK(add(s, seg(4, 40005, 700, SYN, NULL, 0), &b) == 0);
	CHECK(add(s, seg(4, 40004, 101, 0, two, 3), &a) == 0);
	CHECK(add(s, seg(4, 40005, 701, 0, two, 8), &b) == 0 && b.n == 1);
	CHECK(add(s, seg(4, 40004, 104, 0, two + 3, 9), &a) == 0 && a.n == 2);
	/* RST: the message half sent is dropped, nothing handed over */
	CHECK(add(s, seg(4, 40005, 709, RST, two + 8, 2), &b) == 0 && b.n == 1);
}

static void test_bound(void)
{
	struct streams *s = NULL;
	struct got g = { 0 };
	uint8_t big[2] = { 0xff, 0xff };	/* a length of 65535: never whole here */

	CHECK(streams_new(2, &s) == 0);
	if (!s)
		return;
	CHECK(add(s, seg(5, 1, 0, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(5, 1, 1, 0, big, 2), &g) == 0);
	/* a third flow takes the place of the least recently seen; none is confused */
	CHECK(add(s, seg(5, 2, 0, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(5, 3, 0, SYN, NULL, 0), &g) == 0);
	CHECK(add(s, seg(5, 3, 1, 0, two, sizeof(two)), &g) == 0 && g.n == 2);
	CHECK(add(s, seg(5, 2, 1, 0, two, sizeof(two)), &g) == 0 && g.n == 4);
	streams_free(s);
}

int main(void)
{
	struct streams *s = NULL;

	CHECK(streams_new(8, &s) == 0);
	if (s) {
		test_split_and_joined(s);
		test_retransmission_and_gap(s);
		test_rst_and_side_by_side(s);
	}
	streams_free(s);
	test_bound();
	return check_done();
}
