/*
 * A container's network namespace as seen from moatd: its interfaces (by pid, through
 * /proc/PID/ns/net) and, for each veth, the host-side peer in moatd's own namespace and the
 * bridge that peer is enslaved to. libnl-route does the talking.
 *
 * moatd's own threads never leave its namespace: the container side is read by a short-lived
 * thread that setns()es, dumps, copies into plain structs and exits.
 */
#ifndef MOAT_DAEMON_NETNS_H
#define MOAT_DAEMON_NETNS_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "moat/endpoint.h"

struct netns_iface {
	/* Inside the container's namespace. */
	int ifindex;
	char name[IF_NAMESIZE];
	char kind[16];			/* "veth", "" when unknown (lo has none) */
	uint8_t mac[6];
	bool up;
	int peer_ifindex;		/* IFLA_LINK: the veth peer's index in ITS namespace; 0 */
	struct moat_addr *addrs;	/* every address but link-local v6, in kernel order */
	uint8_t *plens;			/* prefix length of addrs[i] */
	size_t naddrs;
	/*
	 * In moatd's namespace: the peer, when it is there. Set only when the host side agrees:
	 * the host link at peer_ifindex is a veth whose own IFLA_LINK is ifindex and whose peer
	 * is in this container's namespace (by the id the host gives it), because ifindexes
	 * repeat across namespaces and a container with CAP_NET_ADMIN can make up a pair whose
	 * numbers match another's. host_ifindex 0: not found (peer elsewhere, or not a veth).
	 */
	int host_ifindex;
	char host_name[IF_NAMESIZE];
	int master_ifindex;		/* the bridge host_name is enslaved to; 0 for none */
	char master_name[IF_NAMESIZE];
};

struct netns_ifaces {
	struct netns_iface *v;		/* by ifindex; lo included */
	size_t n;
};

/*
 * netns_ifaces_load - the interfaces of pid's network namespace, with their host-side
 * peers. Returns 0 and sets *out (free with netns_ifaces_free); -ESRCH/-ENOENT when the
 * process is gone; -EALREADY when pid shares moatd's own namespace (host network: there is
 * nothing to segment); -EPERM without CAP_SYS_ADMIN; other negative errnos from netlink.
 * Trap: the pid may have been reused by the time this runs; compare the result with what
 * the runtime says (MACs from inspect) before trusting it.
 */
int netns_ifaces_load(pid_t pid, struct netns_ifaces **out);

/* netns_ifaces_free - NULL-safe. */
void netns_ifaces_free(struct netns_ifaces *l);

/*
 * netns_self_addrs - every address of moatd's own namespace (link-local ones included),
 * sorted (moat_addr_cmp) without duplicates: the node's, which includes its bridges'
 * gateways. 0 and *out (free() it; NULL when none) with *n, or -errno.
 */
int netns_self_addrs(struct moat_addr **out, size_t *n);

/* netns_ifaces_find_mac - the interface with this MAC, or NULL. */
const struct netns_iface *netns_ifaces_find_mac(const struct netns_ifaces *l,
						const uint8_t mac[6]);

#endif
