/* DNS replies built by hand into the addresses their question resolves to: A, AAAA, CNAME
 * chains in and out of order, records nobody asked for, TTLs along the chain, compression
 * (good, forward, looping), every way a message can be cut or malformed, case, and the
 * name patterns of domainNames. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/dns/message.h"
#include "moat/policy.h"

struct msg {
	uint8_t b[8192];
	size_t len;
};

static void put8(struct msg *m, uint8_t v)
{
	m->b[m->len++] = v;
}

static void put16(struct msg *m, uint16_t v)
{
	put8(m, (uint8_t)(v >> 8));
	put8(m, (uint8_t)v);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}

/* flags 0x8180: a response, RD and RA, NOERROR. */
static void hdr(struct msg *m, uint16_t flags, uint16_t qd, uint16_t an)
{
	m->len = 0;
	put16(m, 0x1234);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put32(m, 0);		/* nscount, arcount */
}

/* "www.example.com" as labels and a zero; "www@12" ends with a pointer to 12 instead,
 * "@12" is only the pointer. */
static void name(struct msg *m, const char *s)
{
	while (*s && *s != '@') {
		size_t n = strcspn(s, ".@");

		put8(m, (uint8_t)n);
		memcpy(m->b + m->len, s, n);
		m->len += n;
		s += n + (s[n] == '.');
	}
	if (*s == '@')
		put16(m, (uint16_t)(0xc000 | atoi(s + 1)));
	else
		put8(m, 0);
}

static void question(struct msg *m, const char *qname, uint16_t type)
{
	name(m, qname);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
}

static void rr_head(struct msg *m, const char *owner, uint16_t type, uint16_t class,
		    uint32_t ttl, uint16_t rdlen)
{
	name(m, owner);
	put16(m, type);
	put16(m, class);
	put32(m, ttl);
	put16(m, rdlen);
}

static void rr_addr(struct msg *m, const char *owner, uint32_t ttl, const char *addr)
{
	uint8_t a[16];
	int v6 = strchr(addr, ':') != NULL;

	inet_pton(v6 ? AF_INET6 : AF_INET, addr, a);
	rr_head(m, owner, v6 ? DNS_TYPE_AAAA : DNS_TYPE_A, DNS_CLASS_IN, ttl, v6 ? 16 : 4);
	memcpy(m->b + m->len, a, v6 ? 16 : 4);
	m->len += v6 ? 16 : 4;
}

static void rr_cname(struct msg *m, const char *owner, uint32_t ttl, const char *target)
{
	size_t at;

	rr_head(m, owner, DNS_TYPE_CNAME, DNS_CLASS_IN, ttl, 0);
	at = m->len;
	name(m, target);
	m->b[at - 2] = (uint8_t)((m->len - at) >> 8);
	m->b[at - 1] = (uint8_t)(m->len - at);
}

static struct dns_reply r;

static int parse(const struct msg *m)
{
	return dns_reply_parse(m->b, m->len, &r);
}

/* Is addr among the answers, with ttl? */
static int has(const char *addr, uint32_t ttl)
{
	char buf[64];

	for (size_t i = 0; i < r.n; i++)
		if (!strcmp(moat_addr_format(&r.v[i].addr, buf, sizeof(buf)), addr))
			return r.v[i].ttl == ttl;
	return 0;
}

static void test_a_and_aaaa(void)
{
	struct msg m;

	hdr(&m, 0x8180, 1, 2);
	question(&m, "example.com", DNS_TYPE_A);
	rr_addr(&m, "@12", 300, "93.184.216.34");
	rr_addr(&m, "example.com", 60, "2606:2800:220:1::1");
	CHECK(parse(&m) == 0);
	CHECK_STR(r.qname, "example.com");
	CHECK(r.id == 0x1234 && r.qtype == DNS_TYPE_A && r.qclass == DNS_CLASS_IN);
	CHECK(r.rcode == 0 && !r.truncated && r.nchain == 1 && r.chain_ttl == UINT32_MAX);
	CHECK(r.n == 2 && r.dropped == 0);
	CHECK(has("93.184.216.34", 300) && r.v[0].addr.family == AF_INET);
	CHECK(has("2606:2800:220:1::1", 60) && r.v[1].addr.family == AF_INET6);

	/* NXDOMAIN, TC, no answers: parsed, nothing learned */
	hdr(&m, 0x8383, 1, 0);
	question(&m, "nope.example.com", DNS_TYPE_AAAA);
	CHECK(parse(&m) == 0);
	CHECK(r.rcode == 3 && r.truncated && r.n == 0 && r.qtype == DNS_TYPE_AAAA);
}

/* www.example.com -> c1.cdn.net (600) -> c2.cdn.net (60) -> A (300, 30) */
static void test_cname_chain(void)
{
	struct msg m;

	hdr(&m, 0x8180, 1, 4);
	question(&m, "www.example.com", DNS_TYPE_A);
	rr_cname(&m, "@12", 600, "c1.cdn.net");
	rr_cname(&m, "c1.cdn.net", 60, "c2.cdn.net");
	rr_addr(&m, "c2.cdn.net", 300, "192.0.2.1");
	rr_addr(&m, "c2.cdn.net", 30, "192.0.2.2");
	CHECK(parse(&m) == 0);
	CHECK(r.nchain == 3 && r.chain_ttl == 60 && r.n == 2);
	CHECK(has("192.0.2.1", 60));	/* capped by the second CNAME */
	CHECK(has("192.0.2.2", 30));	/* its own TTL is smaller */

	/* the same, records in reverse order: the chain does not depend on it */
	hdr(&m, 0x8180, 1, 4);
	question(&m, "www.example.com", DNS_TYPE_A);
	rr_addr(&m, "c2.cdn.net", 30, "192.0.2.2");
	rr_addr(&m, "c2.cdn.net", 300, "192.0.2.1");
	rr_cname(&m, "c1.cdn.net", 60, "c2.cdn.net");
	rr_cname(&m, "www.example.com", 600, "c1.cdn.net");
	CHECK(parse(&m) == 0);
	CHECK(r.nchain == 3 && r.n == 2 && has("192.0.2.1", 60) && has("192.0.2.2", 30));
	CHECK(r.v[0].addr.a[3] == 2);	/* answer order */

	/* an address of a middle name counts with the TTLs up to it */
	hdr(&m, 0x8180, 1, 3);
	question(&m, "www.example.com", DNS_TYPE_A);
	rr_cname(&m, "www.example.com", 600, "c1.cdn.net");
	rr_addr(&m, "c1.cdn.net", 900, "192.0.2.9");
	rr_cname(&m, "c1.cdn.net", 60, "c2.cdn.net");
	CHECK(parse(&m) == 0);
	CHECK(r.nchain == 3 && r.n == 1 && has("192.0.2.9", 600));
}

static void test_unrelated_ignored(void)
{
	struct msg m;

	hdr(&m, 0x8180, 1, 8);
	question(&m, "a.example.com", DNS_TYPE_A);
	rr_head(&m, "a.example.com", DNS_TYPE_CNAME, 3, 300, 12);	/* a CNAME of class CH */
	name(&m, "ch.example");
	rr_addr(&m, "ch.example", 300, "203.0.113.68");
	rr_addr(&m, "evil.com", 300, "203.0.113.66");			/* another name */
	rr_addr(&m, "b.a.example.com", 300, "203.0.113.67");		/* a name below */
	rr_cname(&m, "evil.com", 300, "a.example.com");			/* a CNAME into the chain */
	rr_cname(&m, "other.example.com", 300, "evil.com");		/* not from the chain */
	rr_head(&m, "a.example.com", DNS_TYPE_A, 3 /* CH */, 300, 4);	/* not class IN */
	put32(&m, 0xcb007144);
	rr_addr(&m, "a.example.com", 300, "198.51.100.1");
	CHECK(parse(&m) == 0);
	CHECK(r.nchain == 1 && r.n == 1 && has("198.51.100.1", 300));
}

static void test_ttls(void)
{
	struct msg m;

	hdr(&m, 0x8180, 1, 4);
	question(&m, "a.example", DNS_TYPE_A);
	rr_addr(&m, "a.example", 0x80000000u, "192.0.2.1");	/* top bit: 0 (RFC 2181) */
	rr_addr(&m, "a.example", 0x7fffffffu, "192.0.2.2");
	rr_addr(&m, "a.example", 10, "192.0.2.3");
	rr_addr(&m, "a.example", 20, "192.0.2.3");		/* repeated: once, largest TTL */
	CHECK(parse(&m) == 0);
	CHECK(r.n == 3 && has("192.0.2.1", 0) && has("192.0.2.2", 0x7fffffffu));
	CHECK(has("192.0.2.3", 20));
}

static void test_compression(void)
{
	struct msg m;

	/* the owner points at the question; the CNAME's target "c.example.com" is "c" and a
	 * pointer to "example.com" inside the question (offset 16, after "\3www") */
	hdr(&m, 0x8180, 1, 2);
	question(&m, "www.example.com", DNS_TYPE_A);	/* example.com at 16 */
	rr_cname(&m, "@12", 5, "c@16");
	rr_addr(&m, "c@16", 7, "192.0.2.7");
	CHECK(parse(&m) == 0);
	CHECK(r.nchain == 2 && r.n == 1 && has("192.0.2.7", 5));

	/* a pointer to a pointer (both backwards) */
	hdr(&m, 0x8180, 1, 2);
	question(&m, "x.example", DNS_TYPE_A);		/* 12..22 */
	rr_cname(&m, "@12", 5, "y@14");			/* its owner: a pointer at 27 */
	rr_addr(&m, "@27", 9, "192.0.2.8");		/* x.example, by way of 27 */
	CHECK(parse(&m) == 0);
	CHECK(r.n == 1 && has("192.0.2.8", 9));

	/* a forward pointer */
	hdr(&m, 0x8180, 1, 1);
	question(&m, "x.example", DNS_TYPE_A);
	rr_addr(&m, "@43", 9, "192.0.2.8");		/* owner at 27 */
	name(&m, "x.example");				/* at 43 */
	CHECK(parse(&m) == -EINVAL);

	/* a pointer to itself, and a name whose pointer goes back into its own labels */
	hdr(&m, 0x8180, 1, 0);
	name(&m, "@12");
	put32(&m, 0x00010001);
	CHECK(parse(&m) == -EINVAL);
	hdr(&m, 0x8180, 1, 0);
	name(&m, "a.b@12");
	put32(&m, 0x00010001);
	CHECK(parse(&m) == -EINVAL);

	/* two pointers to each other: 41 -> 39 -> 41 (the second hop is forward) */
	hdr(&m, 0x8180, 1, 2);
	question(&m, "x.example", DNS_TYPE_A);		/* 12..26 */
	rr_head(&m, "@12", 99, DNS_CLASS_IN, 5, 2);	/* rdata at 39, unread */
	put16(&m, 0xc000 | 41);
	rr_addr(&m, "@39", 9, "192.0.2.8");		/* owner at 41 */
	CHECK(parse(&m) == -EINVAL);
	m.b[40] = 12;					/* 41 -> 39 -> 12: fine */
	CHECK(parse(&m) == 0 && r.n == 1);

	/* the 0x40 and 0x80 label types (extended labels) */
	hdr(&m, 0x8180, 1, 0);
	put8(&m, 0x41);
	put8(&m, 0x00);
	put32(&m, 0x00010001);
	CHECK(parse(&m) == -EINVAL);
}

/* Every prefix of a good message is refused; and the whole one is fine. */
static void test_cut(void)
{
	struct msg m;
	int bad = 0;

	hdr(&m, 0x8180, 1, 2);
	question(&m, "www.example.com", DNS_TYPE_A);
	rr_cname(&m, "@12", 600, "c1.cdn.net");
	rr_addr(&m, "c1.cdn.net", 300, "192.0.2.1");
	for (size_t n = 0; n < m.len; n++)
		bad += dns_reply_parse(m.b, n, &r) != -EINVAL;
	CHECK(bad == 0);
	CHECK(parse(&m) == 0 && r.n == 1);
	/* what follows the answer section is not read */
	m.b[11] = 1;		/* arcount */
	put8(&m, 0xff);
	CHECK(parse(&m) == 0 && r.n == 1);
}

static void test_header_refused(void)
{
	struct msg m;
	struct dns_reply sentinel;

	hdr(&m, 0x0100, 1, 0);			/* a query */
	question(&m, "example.com", DNS_TYPE_A);
	memset(&r, 0x5a, sizeof(r));
	sentinel = r;
	CHECK(parse(&m) == -EINVAL);
	CHECK(!memcmp(&r, &sentinel, sizeof(r)));	/* untouched on error */
	hdr(&m, 0x8180 | 4 << 11, 1, 0);	/* opcode NOTIFY */
	question(&m, "example.com", DNS_TYPE_A);
	CHECK(parse(&m) == -EINVAL);
	hdr(&m, 0x8180, 2, 0);
	question(&m, "example.com", DNS_TYPE_A);
	question(&m, "example.org", DNS_TYPE_A);
	CHECK(parse(&m) == -EINVAL);
	hdr(&m, 0x8180, 0, 0);
	CHECK(parse(&m) == -EINVAL);
	CHECK(dns_reply_parse(m.b, 11, &r) == -EINVAL);
}

static void test_case(void)
{
	struct msg m;

	hdr(&m, 0x8180, 1, 2);
	question(&m, "WWW.Example.COM", DNS_TYPE_A);
	rr_cname(&m, "www.EXAMPLE.com", 60, "CDN.Example.NET");
	rr_addr(&m, "cdn.example.net", 60, "192.0.2.1");
	CHECK(parse(&m) == 0);
	CHECK_STR(r.qname, "www.example.com");
	CHECK(r.nchain == 2 && r.n == 1);
}

/* labels labels of len 'a's, dotted. */
static void long_name(char *s, size_t labels, size_t len)
{
	for (size_t i = 0; i < labels; i++) {
		memset(s, 'a', len);
		s += len;
		*s++ = '.';
	}
	s[-1] = '\0';
}

static void test_malformed(void)
{
	struct msg m;
	char big[512];

	long_name(big, 1, 64);			/* a label of 64 */
	hdr(&m, 0x8180, 1, 0);
	question(&m, big, DNS_TYPE_A);
	CHECK(parse(&m) == -EINVAL);
	long_name(big, 4, 63);			/* 4 * 64 + 1 = 257 bytes */
	hdr(&m, 0x8180, 1, 0);
	question(&m, big, DNS_TYPE_A);
	CHECK(parse(&m) == -EINVAL);
	long_name(big, 4, 62);			/* 4 * 63 + 1 = 253: fine */
	strcat(big, ".a");			/* 255 exactly */
	hdr(&m, 0x8180, 1, 0);
	question(&m, big, DNS_TYPE_A);
	CHECK(parse(&m) == 0 && strlen(r.qname) == 253);

	hdr(&m, 0x8180, 1, 0);			/* a dot inside a label */
	put8(&m, 3);
	memcpy(m.b + m.len, "a.b", 3);
	m.len += 3;
	put8(&m, 0);
	put32(&m, 0x00010001);
	CHECK(parse(&m) == -EINVAL);

	hdr(&m, 0x8180, 1, 1);			/* an A of 5 bytes */
	question(&m, "a.example", DNS_TYPE_A);
	rr_head(&m, "@12", DNS_TYPE_A, DNS_CLASS_IN, 5, 5);
	put32(&m, 0xc0000201);
	put8(&m, 0);
	CHECK(parse(&m) == -EINVAL);

	hdr(&m, 0x8180, 1, 1);			/* a CNAME's name shorter than its data */
	question(&m, "a.example", DNS_TYPE_A);
	rr_head(&m, "@12", DNS_TYPE_CNAME, DNS_CLASS_IN, 5, 5);
	name(&m, "@12");
	put16(&m, 0);
	put8(&m, 0);
	CHECK(parse(&m) == -EINVAL);

	hdr(&m, 0x8180, 1, 1);			/* rdlength past the end */
	question(&m, "a.example", DNS_TYPE_A);
	rr_head(&m, "@12", 99, DNS_CLASS_IN, 5, 8);
	put32(&m, 0);
	CHECK(parse(&m) == -EINVAL);
}

static void test_caps(void)
{
	struct msg m;
	char owner[16], target[16];

	/* a CNAME loop ends the chain */
	hdr(&m, 0x8180, 1, 3);
	question(&m, "a.example", DNS_TYPE_A);
	rr_cname(&m, "a.example", 60, "b.example");
	rr_cname(&m, "b.example", 60, "a.example");
	rr_addr(&m, "b.example", 60, "192.0.2.1");
	CHECK(parse(&m) == 0 && r.nchain == 2 && r.n == 1);

	/* a chain of 20 names: the 16th is the last followed */
	hdr(&m, 0x8180, 1, 21);
	question(&m, "n0.example", DNS_TYPE_A);
	for (int i = 0; i < 19; i++) {
		snprintf(owner, sizeof(owner), "n%d.example", i);
		snprintf(target, sizeof(target), "n%d.example", i + 1);
		rr_cname(&m, owner, 60, target);
	}
	rr_addr(&m, "n15.example", 60, "192.0.2.15");
	rr_addr(&m, "n16.example", 60, "192.0.2.16");
	CHECK(parse(&m) == 0 && r.nchain == DNS_MAX_CHAIN && r.n == 1 && has("192.0.2.15", 60));

	/* 65 CNAME records: refused */
	hdr(&m, 0x8180, 1, DNS_MAX_CNAMES + 1);
	question(&m, "a.example", DNS_TYPE_A);
	for (int i = 0; i <= DNS_MAX_CNAMES; i++)
		rr_cname(&m, "@12", 60, "@12");
	CHECK(parse(&m) == -EINVAL);

	/* 70 addresses: 64 kept, 6 counted */
	hdr(&m, 0x8180, 1, 70);
	question(&m, "a.example", DNS_TYPE_A);
	for (int i = 0; i < 70; i++) {
		snprintf(target, sizeof(target), "10.0.0.%d", i);
		rr_addr(&m, "@12", 60, target);
	}
	CHECK(parse(&m) == 0 && r.n == DNS_MAX_ANSWERS && r.dropped == 6);
}

static void test_name_match(void)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
		{ "example.com", "example.com", true },
		{ "example.com", "www.example.com", false },
		{ "example.com", "xexample.com", false },
		{ "example.com", "example.co", false },
		{ "*.example.com", "a.example.com", true },
		{ "*.example.com", "a.b.example.com", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "aexample.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "a.example.com.evil.net", false },
		{ "*.example.com", "A.Example.COM", true },
		{ "a.*.com", "a.b.com", false },	/* only a leading "*." is a wildcard */
		{ "*", "example.com", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (moat_domain_match(cases[i].pattern, cases[i].name) != cases[i].match)
			fprintf(stderr, "case %zu: %s ~ %s\n", i, cases[i].pattern, cases[i].name);
		CHECK(moat_domain_match(cases[i].pattern, cases[i].name) == cases[i].match);
	}
}

int main(void)
{
	test_a_and_aaaa();
	test_cname_chain();
	test_unrelated_ignored();
	test_ttls();
	test_compression();
	test_cut();
	test_header_refused();
	test_case();
	test_malformed();
	test_caps();
	test_name_match();
	return check_done();
}
