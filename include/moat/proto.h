/* IP protocol names as Moat writes and reads them everywhere: flows, baselines, ports, etcd. */
#ifndef MOAT_PROTO_H
#define MOAT_PROTO_H

#include <stdbool.h>
#include <stdint.h>

/* moat_proto_name - "tcp", "udp", "sctp", "icmp", "icmpv6" or "udplite"; NULL for another. */
const char *moat_proto_name(uint8_t proto);

/* moat_proto_by_name - the protocol of one of those names (lowercase, exactly), or -1. */
int moat_proto_by_name(const char *name);

/* moat_proto_has_ports - does proto have the ports a policy names (tcp, udp, sctp)? */
bool moat_proto_has_ports(uint8_t proto);

#endif
