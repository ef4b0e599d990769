/*
 * Fuzzes the DLT_NFLOG parser (daemon/observe/capture.c: capture_parse) with whatever a netlink
 * socket could hand it: the answer is 0, -EINVAL, -ENOENT or -EMSGSIZE, nothing is read outside the
 * input (ASan), the record is untouched unless the answer is 0, and a record's fields agree
 * with each other (an IPv4 or IPv6 pair of addresses, ports only for port protocols).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/observe/capture.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct capture_record r, sentinel;
	uint8_t *copy = fuzz_copy(data, size);
	int ret;

	if (!copy)
		return 0;
	memset(&sentinel, 0xa5, sizeof(sentinel));
	r = sentinel;
	ret = capture_parse(copy, size, &r);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOENT || ret == -EMSGSIZE);
	if (ret) {
		FUZZ_CHECK(!memcmp(&r, &sentinel, sizeof(r)));
	} else {
		FUZZ_CHECK(r.saddr.family == r.daddr.family);
		FUZZ_CHECK(r.saddr.family == AF_INET || r.saddr.family == AF_INET6);
		FUZZ_CHECK(!r.has_ports || r.proto == IPPROTO_TCP || r.proto == IPPROTO_UDP ||
			   r.proto == IPPROTO_SCTP || r.proto == IPPROTO_UDPLITE);
		FUZZ_CHECK(r.has_ports || (!r.sport && !r.dport));
		/* a port protocol without its ports is only ever a later fragment */
		FUZZ_CHECK(r.has_ports || r.later_fragment || (r.proto != IPPROTO_TCP &&
			   r.proto != IPPROTO_UDP && r.proto != IPPROTO_SCTP &&
			   r.proto != IPPROTO_UDPLITE));
		FUZZ_CHECK(!capture_record_keyed(&r) || !r.later_fragment);
		FUZZ_CHECK((unsigned)r.kind <= CAPTURE_SPOOF);
	}
	free(copy);
	return 0;
}
