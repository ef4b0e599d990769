/*
 * Connection revocation: when a policy change denies what an established connection is
 * doing, its conntrack entry is deleted so that the next packet is evaluated as new (TCP with
 * nf_conntrack_tcp_loose picks it up mid-stream) and dropped by the nftables rules.
 * Raw ctnetlink messages over libmnl.
 */
#ifndef MOAT_DAEMON_CONNTRACK_H
#define MOAT_DAEMON_CONNTRACK_H

#include "moat/plan.h"

/*
 * conntrack_revoke - dump the conntrack table of the current network namespace (both
 * families) and delete every entry the plan denies (moat_plan_decide says MOAT_DENY; monitor
 * violations are kept), and every entry with an address of gone (sorted by moat_addr_cmp:
 * addresses no endpoint of the plan has any more, whose connections ended with them). An entry is judged as the forward hook saw its first packet: source
 * from the original tuple, destination address and port from the reply tuple (the address
 * after DNAT). Returns how many entries were deleted (entries that vanished meanwhile are not
 * counted), or -errno. Needs CAP_NET_ADMIN. Costs a dump of the whole table: see
 * revocation.h for when it is needed. Trap: entries of the node's own traffic (output hook) are
 * judged too, though the ruleset does not filter that traffic.
 */
int conntrack_revoke(const struct moat_plan *plan, const struct moat_addr *gone, size_t ngone);

#endif
