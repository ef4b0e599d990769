/*
 * Fuzzes the DNS segment parser (daemon/dns/segment.c: dns_segment_parse) with whatever
 * NFQUEUE could hand it, then the reply parser with the payload found: the answer is 0,
 * -EINVAL, -ENOENT or -EMSGSIZE, nothing is read outside the input (ASan), the segment is
 * untouched unless the answer is 0, and a segment agrees with itself: UDP or TCP from port
 * 53, a pair of addresses of one family, a payload inside the packet.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/dns/message.h"
#include "../../daemon/dns/segment.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void segment_check(const struct dns_segment *s, const uint8_t *pkt, size_t size)
{
	FUZZ_CHECK(s->proto == IPPROTO_UDP || s->proto == IPPROTO_TCP);
	FUZZ_CHECK(s->sport == DNS_PORT);
	FUZZ_CHECK(s->saddr.family == s->daddr.family);
	FUZZ_CHECK(s->saddr.family == AF_INET || s->saddr.family == AF_INET6);
	FUZZ_CHECK(s->payload >= pkt && s->payload <= pkt + size);
	FUZZ_CHECK(s->len <= (size_t)(pkt + size - s->payload));
	FUZZ_CHECK(s->proto == IPPROTO_TCP || (!s->tcp_seq && !s->tcp_flags));
}

/* The DNS message alone (over TCP, after its 2-byte length), in a buffer of its exact
 * size, through the reply parser. */
static void payload_parse(const struct dns_segment *s)
{
	static struct dns_reply r;
	const uint8_t *m = s->payload;
	size_t n = s->len;
	uint8_t *copy;
	int ret;

	if (s->proto == IPPROTO_TCP && n >= 2) {
		size_t want = (size_t)(m[0] << 8 | m[1]);

		m += 2;
		n = want < n - 2 ? want : n - 2;
	}
	if (!(copy = fuzz_copy(m, n)))
		return;
	ret = dns_reply_parse(copy, n, &r);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	FUZZ_CHECK(ret || r.n <= DNS_MAX_ANSWERS);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_segment s, sentinel;
	uint8_t *copy = fuzz_copy(data, size);
	int ret;

	if (!copy)
		return 0;
	memset(&sentinel, 0xa5, sizeof(sentinel));
	s = sentinel;
	ret = dns_segment_parse(copy, size, &s);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOENT || ret == -EMSGSIZE);
	if (ret) {
		FUZZ_CHECK(!memcmp(&s, &sentinel, sizeof(s)));
	} else {
		segment_check(&s, copy, size);
		payload_parse(&s);
	}
	free(copy);
	return 0;
}
