/* CIDR prefixes: parsing (strict: no host bits; or masked), formatting and containment. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

static unsigned family_bits(uint8_t family)
{
	return family == AF_INET ? 32 : 128;
}

/* Clears the bits beyond plen; returns true when some were set. */
static bool cidr_mask(struct moat_cidr *c)
{
	bool dirty = false;

	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = c->plen > 8 * i ? c->plen - 8 * i : 0;
		uint8_t mask = keep >= 8 ? 0xff : (uint8_t)(0xff00 >> keep);

		dirty |= (c->addr[i] & ~mask) != 0;
		c->addr[i] &= mask;
	}
	return dirty;
}

/* Prefix length: 1 to 3 digits, no sign, no leading zero. */
static bool plen_parse(const char *s, unsigned max, uint8_t *out)
{
	unsigned v = 0;
	size_t n = strspn(s, "0123456789");

	if (!n || n > 3 || s[n] || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v > max)
		return false;
	*out = v;
	return true;
}

enum cidr_err cidr_parse(const char *s, struct moat_cidr *out)
{
	const char *slash = strchr(s, '/');
	char addr[INET6_ADDRSTRLEN + 1];
	struct moat_cidr c = { 0 };
	size_t alen;

	if (!slash)
		return CIDR_NO_PREFIX;
	alen = slash - s;
	if (alen >= sizeof(addr))
		return CIDR_BAD_ADDR;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	c.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, addr, c.addr) != 1)
		return CIDR_BAD_ADDR;
	if (!plen_parse(slash + 1, family_bits(c.family), &c.plen))
		return CIDR_BAD_PLEN;
	bool dirty = cidr_mask(&c);
	*out = c;
	return dirty ? CIDR_HOST_BITS : CIDR_OK;
}

const char *cidr_err_str(enum cidr_err e)
{
	static const char *const str[] = {
		[CIDR_OK] = "is fine",
		[CIDR_NO_PREFIX] = "is not a CIDR: it needs a prefix length (like 10.0.0.0/24)",
		[CIDR_BAD_ADDR] = "is not a CIDR: the address is not IPv4 or IPv6",
		[CIDR_BAD_PLEN] = "is not a CIDR: the prefix length must be 0-32 for IPv4, 0-128 for IPv6",
		[CIDR_HOST_BITS] = "has host bits set",
	};
	return str[e];
}

int moat_cidr_parse(const char *s, struct moat_cidr *out)
{
	struct moat_cidr c;

	if (cidr_parse(s, &c) != CIDR_OK)
		return -EINVAL;
	*out = c;
	return 0;
}

int moat_cidr_parse_masked(const char *s, struct moat_cidr *out)
{
	struct moat_cidr c;
	enum cidr_err e = s ? cidr_parse(s, &c) : CIDR_BAD_ADDR;

	if (e != CIDR_OK && e != CIDR_HOST_BITS)
		return -EINVAL;
	*out = c;
	return 0;
}

char *moat_cidr_format(const struct moat_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->plen);
	return buf;
}

bool moat_cidr_contains(const struct moat_cidr *outer, const struct moat_cidr *inner)
{
	struct moat_cidr c = *inner;

	if (outer->family != inner->family || inner->plen < outer->plen)
		return false;
	c.plen = outer->plen;
	cidr_mask(&c);
	return !memcmp(c.addr, outer->addr, sizeof(c.addr));
}

/*
 * Is c inside ::ffff:0:0/96, the IPv4-mapped addresses? A dual-stack socket shows an IPv4
 * peer that way, but the packets are IPv4: the ruleset never sees such an IPv6 address, so
 * a block of them would silently match nothing. *v4 is the IPv4 block it stands for.
 */
static bool cidr_v4_mapped(const struct moat_cidr *c, struct moat_cidr *v4)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (c->family != AF_INET6 || c->plen < 96 || memcmp(c->addr, prefix, 12))
		return false;
	*v4 = (struct moat_cidr){ .family = AF_INET, .plen = (uint8_t)(c->plen - 96) };
	memcpy(v4->addr, c->addr + 12, 4);
	return true;
}

bool cidr_ycheck(struct ycheck *ck, const struct ynode *n, const char *s, struct moat_cidr *out)
{
	enum cidr_err e = cidr_parse(s, out);
	struct moat_cidr v4;
	char buf[64];

	if (e == CIDR_HOST_BITS)
		yerr(ck, n, "\"%s\" has host bits set (did you mean %s?)", s,
		     moat_cidr_format(out, buf, sizeof(buf)));
	else if (e != CIDR_OK)
		yerr(ck, n, "\"%s\" %s", s, cidr_err_str(e));
	else if (cidr_v4_mapped(out, &v4))
		yerr(ck, n, "\"%s\" is an IPv4-mapped IPv6 block, which no packet carries (IPv4 "
		     "traffic has IPv4 addresses): write %s", s,
		     moat_cidr_format(&v4, buf, sizeof(buf)));
	return e == CIDR_OK && !cidr_v4_mapped(out, &v4);
}
