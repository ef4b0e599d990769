/*
 * The DNS bytes of an IP packet from port 53: IPv4 or IPv6 (through its extension headers),
 * then UDP or TCP. Each layer is bounded by the length the layer below says it has.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "segment.h"

#define IP4_HDR_MIN 20
#define IP6_HDR_LEN 40
#define IP6_EXT_MAX 8		/* longer header chains are not DNS replies we wait for */
#define UDP_HDR_LEN 8
#define TCP_HDR_MIN 20

/* IPv6 extension headers: their length is (hdr[1] + add) * unit bytes (AH counts in
 * 4-byte words, RFC 4302; the others in 8-byte ones, RFC 8200). */
static const struct {
	uint8_t nh;
	uint8_t unit, add;
} ip6_exts[] = {
	{ IPPROTO_HOPOPTS, 8, 1 },
	{ IPPROTO_ROUTING, 8, 1 },
	{ IPPROTO_DSTOPTS, 8, 1 },
	{ IPPROTO_FRAGMENT, 8, 1 },	/* hdr[1] is reserved (0): 8 bytes */
	{ IPPROTO_AH, 4, 2 },
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What the network layer leaves: the transport's protocol and bytes. */
struct l4 {
	uint8_t proto;
	const uint8_t *p;
	size_t len;
};

static void addrs_set(struct dns_segment *s, uint8_t family, const uint8_t *src, size_t n)
{
	s->saddr.family = s->daddr.family = family;
	memcpy(s->saddr.a, src, n);
	memcpy(s->daddr.a, src + n, n);
}

static int ipv4(const uint8_t *p, size_t len, struct dns_segment *s, struct l4 *t)
{
	size_t ihl, tot;

	if (len < IP4_HDR_MIN)
		return -EINVAL;
	ihl = (size_t)(p[0] & 0xf) * 4;
	tot = get16(p + 2);
	if (ihl < IP4_HDR_MIN || tot < ihl)
		return -EINVAL;
	if (tot > len || (get16(p + 6) & 0x3fff))	/* cut, or MF or a fragment offset */
		return -EMSGSIZE;
	addrs_set(s, AF_INET, p + 12, 4);
	*t = (struct l4){ p[9], p + ihl, tot - ihl };
	return 0;
}

/* Where nh is in ip6_exts, or -1: not an extension header (a transport, ESP, none). */
static int ip6_ext_find(uint8_t nh)
{
	for (size_t i = 0; i < sizeof(ip6_exts) / sizeof(ip6_exts[0]); i++)
		if (ip6_exts[i].nh == nh)
			return (int)i;
	return -1;
}

/* Only an atomic fragment (offset 0, no more fragments: RFC 6946) holds a whole datagram. */
static bool ip6_frag_whole(const uint8_t *h)
{
	return !(get16(h + 2) & 0xfff9);
}

static int ipv6(const uint8_t *p, size_t len, struct dns_segment *s, struct l4 *t)
{
	size_t end, off = IP6_HDR_LEN, hl;
	uint8_t nh;
	int x;

	if (len < IP6_HDR_LEN)
		return -EINVAL;
	end = IP6_HDR_LEN + get16(p + 4);
	if (end > len)
		return -EMSGSIZE;
	nh = p[6];
	/* a jumbogram (payload length 0) leaves no room for a header: -EINVAL below */
	for (int i = 0; (x = ip6_ext_find(nh)) >= 0; i++) {
		if (i == IP6_EXT_MAX || end - off < 8)
			return -EINVAL;
		hl = ((size_t)p[off + 1] + ip6_exts[x].add) * ip6_exts[x].unit;
		if (hl > end - off)
			return -EINVAL;
		if (nh == IPPROTO_FRAGMENT && !ip6_frag_whole(p + off))
			return -EMSGSIZE;
		nh = p[off];
		off += hl;
	}
	addrs_set(s, AF_INET6, p + 8, 16);
	*t = (struct l4){ nh, p + off, end - off };
	return 0;
}

static int udp(const struct l4 *t, struct dns_segment *s)
{
	size_t ulen;

	if (t->len < UDP_HDR_LEN)
		return -EINVAL;
	ulen = get16(t->p + 4);
	if (ulen < UDP_HDR_LEN || ulen > t->len)
		return -EINVAL;
	s->payload = t->p + UDP_HDR_LEN;
	s->len = ulen - UDP_HDR_LEN;
	return 0;
}

static int tcp(const struct l4 *t, struct dns_segment *s)
{
	size_t doff;

	if (t->len < TCP_HDR_MIN)
		return -EINVAL;
	doff = (size_t)(t->p[12] >> 4) * 4;
	if (doff < TCP_HDR_MIN || doff > t->len)
		return -EINVAL;
	s->tcp_seq = get32(t->p + 4);
	s->tcp_flags = t->p[13];
	s->payload = t->p + doff;
	s->len = t->len - doff;
	return 0;
}

static const struct {
	uint8_t proto;
	int (*parse)(const struct l4 *t, struct dns_segment *s);
} transports[] = {
	{ IPPROTO_UDP, udp },
	{ IPPROTO_TCP, tcp },
};

static int transport(const struct l4 *t, struct dns_segment *s)
{
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
		if (transports[i].proto != t->proto)
			continue;
		s->proto = t->proto;
		if (transports[i].parse(t, s))
			return -EINVAL;
		s->sport = get16(t->p);
		s->dport = get16(t->p + 2);
		return s->sport == DNS_PORT ? 0 : -ENOENT;
	}
	return -ENOENT;
}

int dns_segment_parse(const uint8_t *l3, size_t len, struct dns_segment *out)
{
	struct dns_segment s;
	struct l4 t;
	int ret;

	memset(&s, 0, sizeof(s));
	if (!len)
		return -EINVAL;
	switch (l3[0] >> 4) {
	case 4:
		ret = ipv4(l3, len, &s, &t);
		break;
	case 6:
		ret = ipv6(l3, len, &s, &t);
		break;
	default:
		return -EINVAL;
	}
	if (!ret)
		ret = transport(&t, &s);
	if (!ret)
		*out = s;
	return ret;
}
