/* IP packets built by hand into the DNS payload they carry from port 53: IPv4 with options,
 * IPv6 through extension headers, UDP and TCP; fragments, cut packets, link padding, other
 * ports and transports, and lengths that disagree. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/dns/segment.h"

struct pkt {
	uint8_t b[512];
	size_t len;
};

static const uint8_t dns[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* UDP from sport to 40000 carrying dns, at p->b + off. */
static void udp(struct pkt *p, size_t off, uint16_t sport)
{
	put16(p->b + off, sport);
	put16(p->b + off + 2, 40000);
	put16(p->b + off + 4, 8 + sizeof(dns));
	memcpy(p->b + off + 8, dns, sizeof(dns));
	p->len = off + 8 + sizeof(dns);
}

/* TCP from 53, data offset doff words (options zero), flags PSH|ACK, then dns. */
static void tcp(struct pkt *p, size_t off, unsigned doff)
{
	put16(p->b + off, 53);
	put16(p->b + off + 2, 40000);
	memcpy(p->b + off + 4, "\x01\x02\x03\x04", 4);
	p->b[off + 12] = (uint8_t)(doff << 4);
	p->b[off + 13] = 0x18;
	memcpy(p->b + off + doff * 4, dns, sizeof(dns));
	p->len = off + doff * 4 + sizeof(dns);
}

/* IPv4 header of ihl words; the transport is written after it by the caller, then
 * ip4_done sets the total length. */
static size_t ip4(struct pkt *p, unsigned ihl, uint8_t proto)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = (uint8_t)(0x40 | ihl);
	p->b[6] = 0x40;		/* DF */
	p->b[8] = 64;
	p->b[9] = proto;
	inet_pton(AF_INET, "10.0.0.53", p->b + 12);
	inet_pton(AF_INET, "10.1.0.7", p->b + 16);
	return ihl * 4;
}

static void ip4_done(struct pkt *p)
{
	put16(p->b + 2, p->len);
}

/* IPv6 header with next header nh; ip6_done sets the payload length. */
static size_t ip6(struct pkt *p, uint8_t nh)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = 0x60;
	p->b[6] = nh;
	p->b[7] = 64;
	inet_pton(AF_INET6, "fd00::53", p->b + 8);
	inet_pton(AF_INET6, "fd00:1::7", p->b + 24);
	return 40;
}

static void ip6_done(struct pkt *p)
{
	put16(p->b + 4, p->len - 40);
}

/* An extension header at off: next header nh, length byte hlen, bytes total. */
static size_t ext(struct pkt *p, size_t off, uint8_t nh, uint8_t hlen, size_t bytes)
{
	p->b[off] = nh;
	p->b[off + 1] = hlen;
	return off + bytes;
}

static struct dns_segment s;

static int parse(const struct pkt *p)
{
	return dns_segment_parse(p->b, p->len, &s);
}

static int payload_is_dns(void)
{
	return s.len == sizeof(dns) && !memcmp(s.payload, dns, sizeof(dns));
}

static void test_ipv4(void)
{
	struct pkt p;
	char buf[64];

	udp(&p, ip4(&p, 5, IPPROTO_UDP), 53);
	ip4_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns());
	CHECK(s.proto == IPPROTO_UDP && s.sport == 53 && s.dport == 40000);
	CHECK(s.saddr.family == AF_INET && s.daddr.family == AF_INET);
	CHECK_STR(moat_addr_format(&s.saddr, buf, sizeof(buf)), "10.0.0.53");
	CHECK_STR(moat_addr_format(&s.daddr, buf, sizeof(buf)), "10.1.0.7");
	CHECK(s.payload == p.b + 28);

	/* options: IHL 7, the payload after them */
	udp(&p, ip4(&p, 7, IPPROTO_UDP), 53);
	ip4_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns() && s.payload == p.b + 36);

	/* link padding after the packet is not payload */
	udp(&p, ip4(&p, 5, IPPROTO_UDP), 53);
	ip4_done(&p);
	p.len += 10;
	CHECK(parse(&p) == 0 && payload_is_dns());
	tcp(&p, ip4(&p, 5, IPPROTO_TCP), 5);
	ip4_done(&p);
	p.len += 6;
	CHECK(parse(&p) == 0 && payload_is_dns());

	/* TCP with options: seq, flags, payload */
	tcp(&p, ip4(&p, 5, IPPROTO_TCP), 8);
	ip4_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns() && s.proto == IPPROTO_TCP);
	CHECK(s.tcp_seq == 0x01020304 && s.tcp_flags == 0x18 && s.payload == p.b + 52);
}

static void test_ipv4_refused(void)
{
	struct pkt p;
	struct dns_segment sentinel;

	udp(&p, ip4(&p, 5, IPPROTO_UDP), 53);
	ip4_done(&p);
	p.b[6] = 0x20;		/* MF: the first fragment */
	memset(&s, 0x5a, sizeof(s));
	sentinel = s;
	CHECK(parse(&p) == -EMSGSIZE);
	CHECK(!memcmp(&s, &sentinel, sizeof(s)));	/* untouched on error */
	p.b[6] = 0, p.b[7] = 3;	/* a later fragment */
	CHECK(parse(&p) == -EMSGSIZE);
	p.b[7] = 0;
	CHECK(parse(&p) == 0);
	p.len -= 1;		/* cut by the copy range */
	CHECK(parse(&p) == -EMSGSIZE);
	p.len += 1;
	p.b[0] = 0x44;		/* IHL 4, where what follows reads as a UDP header from 53 */
	p.b[16] = 0, p.b[17] = 53;
	put16(p.b + 20, 16);
	CHECK(parse(&p) == -EINVAL);
	p.b[0] = 0x4f;		/* IHL 15: past the total length */
	put16(p.b + 2, 40);
	CHECK(parse(&p) == -EINVAL);
	p.b[0] = 0x55;		/* version 5 */
	CHECK(parse(&p) == -EINVAL);

	udp(&p, ip4(&p, 5, IPPROTO_UDP), 5353);		/* not from 53 */
	ip4_done(&p);
	CHECK(parse(&p) == -ENOENT);
	udp(&p, ip4(&p, 5, IPPROTO_ICMP), 53);		/* not UDP or TCP */
	ip4_done(&p);
	CHECK(parse(&p) == -ENOENT);

	udp(&p, ip4(&p, 5, IPPROTO_UDP), 53);
	ip4_done(&p);
	put16(p.b + 24, 7);	/* UDP length under its header */
	CHECK(parse(&p) == -EINVAL);
	put16(p.b + 24, 8 + sizeof(dns) + 1);	/* past the IP packet */
	CHECK(parse(&p) == -EINVAL);

	tcp(&p, ip4(&p, 5, IPPROTO_TCP), 5);
	ip4_done(&p);
	p.b[32] = 4 << 4;	/* data offset 4 */
	CHECK(parse(&p) == -EINVAL);
	p.b[32] = 15 << 4;	/* past the packet */
	CHECK(parse(&p) == -EINVAL);
	CHECK(dns_segment_parse(p.b, 0, &s) == -EINVAL);
}

static void test_ipv6(void)
{
	struct pkt p;
	size_t off;
	char buf[64];

	udp(&p, ip6(&p, IPPROTO_UDP), 53);
	ip6_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns() && s.payload == p.b + 48);
	CHECK(s.saddr.family == AF_INET6 && s.daddr.family == AF_INET6);
	CHECK_STR(moat_addr_format(&s.saddr, buf, sizeof(buf)), "fd00::53");
	CHECK_STR(moat_addr_format(&s.daddr, buf, sizeof(buf)), "fd00:1::7");

	/* hop-by-hop (8), destination options (24), AH (16: length byte 2), then TCP */
	off = ext(&p, ip6(&p, IPPROTO_HOPOPTS), IPPROTO_DSTOPTS, 0, 8);
	off = ext(&p, off, IPPROTO_AH, 2, 24);
	off = ext(&p, off, IPPROTO_TCP, 2, 16);
	tcp(&p, off, 5);
	ip6_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns() && s.proto == IPPROTO_TCP);
	CHECK(s.payload == p.b + 40 + 48 + 20);

	/* an atomic fragment holds it all; a real one does not */
	off = ext(&p, ip6(&p, IPPROTO_FRAGMENT), IPPROTO_UDP, 0, 8);
	udp(&p, off, 53);
	ip6_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns());
	p.b[43] = 1;		/* M */
	CHECK(parse(&p) == -EMSGSIZE);
	p.b[43] = 0, p.b[42] = 1;	/* offset 32 */
	CHECK(parse(&p) == -EMSGSIZE);
}

static void test_ipv6_refused(void)
{
	struct pkt p;
	size_t off;

	/* 8 extension headers are fine, 9 are not */
	off = ip6(&p, IPPROTO_DSTOPTS);
	for (int i = 0; i < 8; i++)
		off = ext(&p, off, i < 7 ? IPPROTO_DSTOPTS : IPPROTO_UDP, 0, 8);
	udp(&p, off, 53);
	ip6_done(&p);
	CHECK(parse(&p) == 0 && payload_is_dns());
	off = ip6(&p, IPPROTO_DSTOPTS);
	for (int i = 0; i < 9; i++)
		off = ext(&p, off, i < 8 ? IPPROTO_DSTOPTS : IPPROTO_UDP, 0, 8);
	udp(&p, off, 53);
	ip6_done(&p);
	CHECK(parse(&p) == -EINVAL);

	/* an extension header longer than the packet (with a UDP header where it ends) */
	ext(&p, ip6(&p, IPPROTO_HOPOPTS), IPPROTO_UDP, 9, 8);
	udp(&p, 120, 53);
	p.len = 48 + 8 + sizeof(dns);
	ip6_done(&p);
	CHECK(parse(&p) == -EINVAL);

	/* ESP, no next header: nothing to read */
	udp(&p, ip6(&p, IPPROTO_ESP), 53);
	ip6_done(&p);
	CHECK(parse(&p) == -ENOENT);
	udp(&p, ip6(&p, IPPROTO_NONE), 53);
	ip6_done(&p);
	CHECK(parse(&p) == -ENOENT);

	/* a jumbogram (payload length 0: nothing fits), a payload length past the bytes */
	udp(&p, ip6(&p, IPPROTO_UDP), 53);
	CHECK(parse(&p) == -EINVAL);
	ip6_done(&p);
	p.len--;
	CHECK(parse(&p) == -EMSGSIZE);
}

/* No prefix of a good packet gives a payload. */
static void test_prefixes(void)
{
	struct pkt p4, p6;
	size_t off;
	int bad = 0;

	tcp(&p4, ip4(&p4, 6, IPPROTO_TCP), 6);
	ip4_done(&p4);
	off = ext(&p6, ip6(&p6, IPPROTO_HOPOPTS), IPPROTO_UDP, 1, 16);
	udp(&p6, off, 53);
	ip6_done(&p6);
	CHECK(parse(&p4) == 0 && parse(&p6) == 0);
	for (size_t n = 0; n < p4.len; n++)
		bad += dns_segment_parse(p4.b, n, &s) == 0;
	for (size_t n = 0; n < p6.len; n++)
		bad += dns_segment_parse(p6.b, n, &s) == 0;
	CHECK(bad == 0);
}

int main(void)
{
	test_ipv4();
	test_ipv4_refused();
	test_ipv6();
	test_ipv6_refused();
	test_prefixes();
	return check_done();
}
