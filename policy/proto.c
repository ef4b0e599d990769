/* IP protocol names (moat/proto.h): the one table. */
#include <netinet/in.h>
#include <string.h>

#include "moat/proto.h"

static const struct {
	uint8_t proto;
	const char *name;
} protos[] = {
	{ IPPROTO_TCP, "tcp" }, { IPPROTO_UDP, "udp" }, { IPPROTO_SCTP, "sctp" },
	{ IPPROTO_ICMP, "icmp" }, { IPPROTO_ICMPV6, "icmpv6" }, { IPPROTO_UDPLITE, "udplite" },
};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

const char *moat_proto_name(uint8_t proto)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (protos[i].proto == proto)
			return protos[i].name;
	return NULL;
}

int moat_proto_by_name(const char *name)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (!strcmp(protos[i].name, name))
			return protos[i].proto;
	return -1;
}

bool moat_proto_has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}
