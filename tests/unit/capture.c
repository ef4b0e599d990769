/* NFLOG (DLT_NFLOG) frames, built by hand, into capture records: prefixes, IPv4, IPv6 with
 * extension headers, fragments, ICMP, timestamps, and every way a frame can be short. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/observe/capture.h"

struct frame {
	uint8_t b[1024];
	size_t len;
};

static void frame_start(struct frame *f, uint8_t family)
{
	memset(f, 0, sizeof(*f));
	f->b[0] = family;	/* nflog_hdr: family, version 0, resource id (group) 7 */
	f->b[3] = 7;
	f->len = 4;
}

/* A TLV as the kernel writes it: length and type in host order, padded to 4 bytes. */
static void tlv(struct frame *f, uint16_t type, const void *v, size_t vlen)
{
	uint16_t tlen = (uint16_t)(4 + vlen);

	memcpy(f->b + f->len, &tlen, 2);
	memcpy(f->b + f->len + 2, &type, 2);
	memcpy(f->b + f->len + 4, v, vlen);
	f->len += (4 + vlen + 3) & ~3u;
}

static void prefix(struct frame *f, const char *p)
{
	tlv(f, 10, p, strlen(p) + 1);
}

static size_t ip4_tcp(uint8_t *p, const char *src, const char *dst, uint8_t proto,
		      uint16_t sport, uint16_t dport, uint16_t frag)
{
	memset(p, 0, 40);
	p[0] = 0x45;
	p[6] = (uint8_t)(frag >> 8), p[7] = (uint8_t)frag;
	p[9] = proto;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	p[20] = (uint8_t)(sport >> 8), p[21] = (uint8_t)sport;
	p[22] = (uint8_t)(dport >> 8), p[23] = (uint8_t)dport;
	return 40;
}

static void test_ipv4(void)
{
	struct frame f;
	uint8_t pkt[64];
	struct capture_record r;
	char buf[64];
	uint32_t hook = 0x03000008;	/* PACKET_HDR-ish noise before the prefix */
	uint32_t outdev = htonl(5);

	frame_start(&f, AF_INET);
	tlv(&f, 1, &hook, 4);
	prefix(&f, "moat:pass");
	tlv(&f, 5, &outdev, 4);
	tlv(&f, 9, pkt, ip4_tcp(pkt, "10.1.0.2", "10.1.0.3", IPPROTO_TCP, 40000, 5432, 0x4000));
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.kind == CAPTURE_PASS && r.proto == IPPROTO_TCP && r.has_ports);
	CHECK(r.sport == 40000 && r.dport == 5432);
	CHECK_STR(moat_addr_format(&r.saddr, buf, sizeof(buf)), "10.1.0.2");
	CHECK_STR(moat_addr_format(&r.daddr, buf, sizeof(buf)), "10.1.0.3");
	CHECK(r.time_ms == 0);	/* no timestamp TLV: the reader fills the time */

	/* a later fragment has no ports */
	frame_start(&f, AF_INET);
	prefix(&f, "moat:drop:in");
	tlv(&f, 9, pkt, ip4_tcp(pkt, "10.1.0.2", "10.1.0.3", IPPROTO_UDP, 1, 2, 0x0010));
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.kind == CAPTURE_DROP_IN && r.proto == IPPROTO_UDP && !r.has_ports && !r.dport);
	CHECK(r.later_fragment && !capture_record_keyed(&r));

	/* ICMP echo */
	frame_start(&f, AF_INET);
	prefix(&f, "moat:drop:out");
	ip4_tcp(pkt, "10.1.0.2", "192.0.2.1", IPPROTO_ICMP, 0, 0, 0);
	pkt[20] = 8, pkt[21] = 0;
	tlv(&f, 9, pkt, 28);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.kind == CAPTURE_DROP_OUT && r.proto == IPPROTO_ICMP && r.icmp_type == 8 && !r.has_ports);
}

static void test_timestamp_and_order(void)
{
	struct frame f;
	uint8_t pkt[64];
	struct capture_record r;
	uint64_t ts[2] = { htobe64(1700000000), htobe64(123456) };

	/* payload before prefix, timestamp last, a type with the nested flag set in between */
	frame_start(&f, AF_INET);
	tlv(&f, 9, pkt, ip4_tcp(pkt, "10.0.0.1", "10.0.0.2", IPPROTO_SCTP, 5, 6, 0));
	tlv(&f, 0x8000 | 18, "xxxx", 4);
	prefix(&f, "moat:drop:unknown");
	tlv(&f, 3, ts, sizeof(ts));
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.kind == CAPTURE_DROP_UNKNOWN && r.proto == IPPROTO_SCTP && r.dport == 6);
	CHECK(r.time_ms == 1700000000123LL);
}

static size_t ip6_hdr(uint8_t *p, uint8_t nh, const char *src, const char *dst)
{
	memset(p, 0, 128);
	p[0] = 0x60;
	p[6] = nh;
	inet_pton(AF_INET6, src, p + 8);
	inet_pton(AF_INET6, dst, p + 24);
	return 40;
}

static void test_ipv6(void)
{
	struct frame f;
	uint8_t pkt[128];
	struct capture_record r;
	char buf[64];
	size_t n;

	/* hop-by-hop (8 bytes) -> fragment (first) -> UDP 53 */
	n = ip6_hdr(pkt, IPPROTO_HOPOPTS, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_FRAGMENT, pkt[n + 1] = 0, n += 8;
	pkt[n] = IPPROTO_UDP, pkt[n + 2] = 0, pkt[n + 3] = 1, n += 8;	/* offset 0, M set */
	pkt[n] = 0x9c, pkt[n + 1] = 0x40, pkt[n + 2] = 0, pkt[n + 3] = 53, n += 8;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:pass");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.saddr.family == AF_INET6 && r.proto == IPPROTO_UDP && r.has_ports);
	CHECK(r.sport == 40000 && r.dport == 53);
	CHECK_STR(moat_addr_format(&r.daddr, buf, sizeof(buf)), "fd00::2");

	/* a later fragment: protocol known, ports not */
	n = ip6_hdr(pkt, IPPROTO_FRAGMENT, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_TCP, pkt[n + 2] = 0x05, pkt[n + 3] = 0x00, n += 8;
	n += 8;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:spoof");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.kind == CAPTURE_SPOOF && r.proto == IPPROTO_TCP && !r.has_ports);

	/* ICMPv6 echo request */
	n = ip6_hdr(pkt, IPPROTO_ICMPV6, "fd00::1", "fd00::2");
	pkt[n] = 128, n += 8;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:pass");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.proto == IPPROTO_ICMPV6 && r.icmp_type == 128);

	/* an extension header that runs past the payload: the transport header is not in the
	 * record, so it is no record at all (never a TCP flow to port 0) */
	n = ip6_hdr(pkt, IPPROTO_DSTOPTS, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_TCP, pkt[n + 1] = 20, n += 8;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:pass");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == -EMSGSIZE);
}

/* One record of proto whose transport header has hlen bytes (ports 40000 -> 8080) after an
 * IPv4 header. */
static int parse_ip4_l4(uint8_t proto, size_t hlen, struct capture_record *r)
{
	struct frame f;
	uint8_t pkt[128] = { 0 };

	ip4_tcp(pkt, "10.1.0.2", "10.1.0.3", proto, 40000, 8080, 0);
	frame_start(&f, AF_INET);
	prefix(&f, "moat:drop:in");
	tlv(&f, 9, pkt, 20 + hlen);
	return capture_parse(f.b, f.len, r);
}

/*
 * A record cut inside its transport header (the kernel copies NFT_LOG_SNAPLEN bytes, and a
 * hostile sender can push the header past them, or send a short packet) is -EMSGSIZE, never
 * a record whose port reads 0: a flow to port 0 would be decided, learned and alerted on as
 * one. The fixed headers: TCP 20 bytes, UDP and UDP-Lite 8, SCTP 12.
 */
static void test_truncated(void)
{
	static const struct {
		uint8_t proto;
		size_t hlen;
	} l4[] = { { IPPROTO_TCP, 20 }, { IPPROTO_UDP, 8 }, { IPPROTO_SCTP, 12 },
		   { IPPROTO_UDPLITE, 8 } };
	struct capture_record r;

	for (size_t i = 0; i < sizeof(l4) / sizeof(l4[0]); i++) {
		for (size_t cut = 0; cut < l4[i].hlen; cut++)
			CHECK(parse_ip4_l4(l4[i].proto, cut, &r) == -EMSGSIZE);
		CHECK(parse_ip4_l4(l4[i].proto, l4[i].hlen, &r) == 0);
		CHECK(r.has_ports && r.sport == 40000 && r.dport == 8080);
		CHECK(capture_record_keyed(&r));
	}
	/* ICMP needs no ports: a short echo is still a record */
	CHECK(parse_ip4_l4(IPPROTO_ICMP, 2, &r) == 0 && capture_record_keyed(&r));
}

/* IPv6: the header chain pushed past the 128 bytes the kernel copies, a chain longer than
 * Moat follows, and a later fragment whose data looks like more headers. */
static void test_truncated_ipv6(void)
{
	struct frame f;
	uint8_t pkt[256];
	struct capture_record r;
	size_t n;

	/* destination options of 88 bytes: TCP starts at byte 128, where the copy ends */
	n = ip6_hdr(pkt, IPPROTO_DSTOPTS, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_TCP, pkt[n + 1] = 10, n += 88;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:drop:in");
	tlv(&f, 9, pkt, 128);
	CHECK(n == 128 && capture_parse(f.b, f.len, &r) == -EMSGSIZE);

	/* nine 8-byte extension headers, then TCP: the walk stops on a header, not TCP */
	n = ip6_hdr(pkt, IPPROTO_DSTOPTS, "fd00::1", "fd00::2");
	for (int i = 0; i < 9; i++)
		pkt[n] = i < 8 ? IPPROTO_DSTOPTS : IPPROTO_TCP, pkt[n + 1] = 0, n += 8;
	memset(pkt + n, 0, 20);
	pkt[n + 3] = 80, n += 20;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:pass");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == -EMSGSIZE);

	/* a later fragment of UDP: no ports, whatever its data looks like; not a flow key */
	n = ip6_hdr(pkt, IPPROTO_FRAGMENT, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_DSTOPTS, pkt[n + 2] = 0x05, pkt[n + 3] = 0x00, n += 8;
	pkt[n] = IPPROTO_UDP, pkt[n + 1] = 200, n += 8;	/* data, not a header */
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:drop:out");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.proto == IPPROTO_DSTOPTS && !r.has_ports && r.later_fragment);
	CHECK(!capture_record_keyed(&r));
	n = ip6_hdr(pkt, IPPROTO_FRAGMENT, "fd00::1", "fd00::2");
	pkt[n] = IPPROTO_UDP, pkt[n + 2] = 0x05, pkt[n + 3] = 0x00, n += 8;
	n += 8;
	frame_start(&f, AF_INET6);
	prefix(&f, "moat:drop:out");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == 0);
	CHECK(r.proto == IPPROTO_UDP && !r.has_ports && r.later_fragment);
	CHECK(!capture_record_keyed(&r));
}

static void test_rejects(void)
{
	struct frame f, g;
	uint8_t pkt[64], arp[28] = { 0x00, 0x01, 0x08, 0x00 };
	struct capture_record r = { .sport = 4242 };
	size_t n = ip4_tcp(pkt, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1, 2, 0);

	/* not ours: another prefix, no prefix, a prefix that only starts like ours, ARP */
	frame_start(&f, AF_INET);
	prefix(&f, "docker:drop");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == -ENOENT);
	frame_start(&f, AF_INET);
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == -ENOENT);
	frame_start(&f, AF_INET);
	prefix(&f, "moat:passx");
	tlv(&f, 9, pkt, n);
	CHECK(capture_parse(f.b, f.len, &r) == -ENOENT);
	frame_start(&f, 7);
	prefix(&f, "moat:spoof");
	tlv(&f, 9, arp, sizeof(arp));
	CHECK(capture_parse(f.b, f.len, &r) == -ENOENT);

	/* malformed: no payload, short IP header, bad IHL, zero-length TLV, TLV past the end */
	frame_start(&f, AF_INET);
	prefix(&f, "moat:pass");
	CHECK(capture_parse(f.b, f.len, &r) == -EINVAL);
	g = f;
	tlv(&g, 9, pkt, 19);
	CHECK(capture_parse(g.b, g.len, &r) == -EINVAL);
	g = f;
	pkt[0] = 0x4f;		/* IHL 60 > 40 bytes */
	tlv(&g, 9, pkt, n);
	CHECK(capture_parse(g.b, g.len, &r) == -EINVAL);
	pkt[0] = 0x45;
	g = f;
	memset(g.b + g.len, 0, 4);
	g.len += 4;
	CHECK(capture_parse(g.b, g.len, &r) == -EINVAL);
	g = f;
	tlv(&g, 9, pkt, n);
	CHECK(capture_parse(g.b, g.len, &r) == 0);
	CHECK(capture_parse(g.b, g.len - 4, &r) == -EINVAL);	/* cut inside the payload TLV */
	CHECK(capture_parse(g.b, 3, &r) == -EINVAL);
	CHECK(capture_parse(g.b, 0, &r) == -EINVAL);

	/* every truncation of a good frame either parses or fails cleanly (run under ASan) */
	for (size_t cut = 0; cut <= g.len; cut++) {
		int ret = capture_parse(g.b, cut, &r);

		CHECK(ret == 0 || ret == -EINVAL || ret == -ENOENT || ret == -EMSGSIZE);
	}
	r.sport = 4242;
	CHECK(capture_parse(f.b, f.len, &r) == -EINVAL && r.sport == 4242);	/* untouched on error */
}

static void test_names(void)
{
	CHECK_STR(capture_kind_name(CAPTURE_PASS), "pass");
	CHECK_STR(capture_kind_name(CAPTURE_DROP_UNKNOWN), "drop:unknown");
	CHECK_STR(capture_kind_name((enum capture_kind)99), "?");
}

int main(void)
{
	test_ipv4();
	test_timestamp_and_order();
	test_ipv6();
	test_truncated();
	test_truncated_ipv6();
	test_rejects();
	test_names();
	return check_done();
}
