/*
 * Fuzzes the DNS reply parser (daemon/dns/message.c: dns_reply_parse) with whatever a
 * resolver could send: the answer is 0 or -EINVAL, nothing is read outside the input
 * (ASan), the reply is untouched unless the answer is 0, a second parse gives the same
 * reply, and a reply agrees with itself: a lowercase name of well-formed labels, distinct
 * addresses of a known family with their unused bytes zero, TTLs under 2^31, a chain
 * within its cap whose TTL is set only when CNAMEs were followed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/dns/message.h"
#include "moat/policy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > 253 || (n && (s[0] == '.' || s[n - 1] == '.')) || strstr(s, ".."))
		return 0;
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 0;
	return 1;
}

static void answers_check(const struct dns_reply *r)
{
	static const uint8_t zero[12];

	FUZZ_CHECK(r->n <= DNS_MAX_ANSWERS && (!r->dropped || r->n == DNS_MAX_ANSWERS));
	for (size_t i = 0; i < r->n; i++) {
		const struct moat_addr *a = &r->v[i].addr;

		FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6);
		FUZZ_CHECK(a->family == AF_INET6 || !memcmp(a->a + 4, zero, 12));
		FUZZ_CHECK(r->v[i].ttl <= 0x7fffffffu);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(moat_addr_cmp(a, &r->v[j].addr) != 0);
	}
}

static void reply_check(const struct dns_reply *r)
{
	char wild[DNS_NAME_MAX + 4];

	FUZZ_CHECK(name_ok(r->qname));
	FUZZ_CHECK(r->nchain >= 1 && r->nchain <= DNS_MAX_CHAIN);
	FUZZ_CHECK((r->nchain == 1) == (r->chain_ttl == UINT32_MAX));
	FUZZ_CHECK(r->rcode <= 15);
	answers_check(r);
	/* the name patterns: a name matches itself, and "*." + parent matches it */
	FUZZ_CHECK(!strncmp(r->qname, "*.", 2) || moat_domain_match(r->qname, r->qname));
	snprintf(wild, sizeof(wild), "*.%s", r->qname);
	FUZZ_CHECK(!moat_domain_match(wild, r->qname));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_reply r, again, sentinel;
	uint8_t *copy = fuzz_copy(data, size);
	int ret;

	if (!copy)
		return 0;
	memset(&sentinel, 0xa5, sizeof(sentinel));
	r = sentinel;
	ret = dns_reply_parse(copy, size, &r);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret) {
		FUZZ_CHECK(!memcmp(&r, &sentinel, sizeof(r)));
	} else {
		reply_check(&r);
		FUZZ_CHECK(dns_reply_parse(copy, size, &again) == 0);
		FUZZ_CHECK(!memcmp(&r, &again, sizeof(r)));
	}
	free(copy);
	return 0;
}
