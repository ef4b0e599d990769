/* The ruleset's schema (schema.h): tables, sets and chains, and how their elements read. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nf_tables.h>

#include "schema.h"

const struct table_desc tbls[T_COUNT] = {
	[T_INET] = { NFPROTO_INET, "inet" },
	[T_BRIDGE] = { NFPROTO_BRIDGE, "bridge" },
};

#define MAP NFT_SET_MAP
#define IVL NFT_SET_INTERVAL
#define CAT (NFT_SET_INTERVAL | NFT_SET_CONCAT)
#define METER (NFT_SET_EVAL | NFT_SET_TIMEOUT)
#define PEER_KEY CAT3(TYPE_MARK, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 12
#define ANY_KEY CAT2(TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 8
#define DNS4_KEY CAT4(TYPE_IPADDR, TYPE_IPADDR, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 16
#define DNS6_KEY CAT4(TYPE_IP6ADDR, TYPE_IP6ADDR, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 40


const struct set_desc sets[S_COUNT] = {
	[S_EP4] = { "ep4", T_INET, MAP, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_ADDR_MARK },
	[S_EP6] = { "ep6", T_INET, MAP, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_ADDR_MARK },
	[S_NET4] = { "net4", T_INET, MAP | IVL, TYPE_IPADDR, 4, TYPE_MARK, 4, {0}, 4, F_RANGE },
	[S_NET6] = { "net6", T_INET, MAP | IVL, TYPE_IP6ADDR, 16, TYPE_MARK, 4, {0}, 16, F_RANGE },
	[S_MANAGED4] = { "managed4", T_INET, IVL, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_RANGE },
	[S_MANAGED6] = { "managed6", T_INET, IVL, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_RANGE },
	/* identity -> goto its chain: keyed by identity, not address, so that an address that
	 * comes or goes changes no verdict map (each change of one makes the kernel walk every
	 * verdict map element to check for loops) */
	[S_IN_IDS] = { "in_ids", T_INET, MAP, TYPE_MARK, 4, NFT_DATA_VERDICT, 0, {0}, 0, F_VMAP,
		"in_%u" },
	[S_OUT_IDS] = { "out_ids", T_INET, MAP, TYPE_MARK, 4, NFT_DATA_VERDICT, 0, {0}, 0, F_VMAP,
		"out_%u" },
	[S_FROM] = { "in_%u_from", T_INET, CAT, PEER_KEY, 0, 0, {4, 1, 2}, 0, F_PEER, NULL, true },
	[S_IN_ANY] = { "in_%u_any", T_INET, CAT, ANY_KEY, 0, 0, {1, 2}, 0, F_ANY, NULL, true },
	[S_TO] = { "out_%u_to", T_INET, CAT, PEER_KEY, 0, 0, {4, 1, 2}, 0, F_PEER, NULL, true,
		true },
	[S_OUT_ANY] = { "out_%u_any", T_INET, CAT, ANY_KEY, 0, 0, {1, 2}, 0, F_ANY, NULL, true,
		true },
	/* what sources resolved through a tier's first k rules with domain names, with the ports
	 * those rules allow */
	[S_DNS4_A] = { "dns4_a%u", T_INET, CAT | NFT_SET_TIMEOUT, DNS4_KEY, 0, 0, {4, 4, 1, 2}, 4,
		F_DNS, NULL, false, false, true },
	[S_DNS6_A] = { "dns6_a%u", T_INET, CAT | NFT_SET_TIMEOUT, DNS6_KEY, 0, 0, {16, 16, 1, 2},
		16, F_DNS, NULL, false, false, true },
	[S_DNS4_B] = { "dns4_b%u", T_INET, CAT | NFT_SET_TIMEOUT, DNS4_KEY, 0, 0, {4, 4, 1, 2}, 4,
		F_DNS, NULL, false, false, true },
	[S_DNS6_B] = { "dns6_b%u", T_INET, CAT | NFT_SET_TIMEOUT, DNS6_KEY, 0, 0, {16, 16, 1, 2},
		16, F_DNS, NULL, false, false, true },
	/* an identity's tier lists: what the first matching rule of a tier decides */
	[S_ADMIN_IN] = { "in_%u_admin", T_INET, MAP | CAT, PEER_KEY, NFT_DATA_VERDICT, 0, {4, 1, 2},
		0, F_TIER, "deny_in", true },
	[S_ADMIN_OUT] = { "out_%u_admin", T_INET, MAP | CAT, PEER_KEY, NFT_DATA_VERDICT, 0,
		{4, 1, 2}, 0, F_TIER, "deny_out", true, true },
	[S_BASE_IN] = { "in_%u_base", T_INET, MAP | CAT, PEER_KEY, NFT_DATA_VERDICT, 0, {4, 1, 2},
		0, F_TIER, "deny_in", true },
	[S_BASE_OUT] = { "out_%u_base", T_INET, MAP | CAT, PEER_KEY, NFT_DATA_VERDICT, 0,
		{4, 1, 2}, 0, F_TIER, "deny_out", true, true },
	[S_SELF4] = { "self4", T_INET, 0, CAT2(TYPE_IPADDR, TYPE_IPADDR), 8, 0, 0, {0}, 4,
		F_ADDR2 },
	[S_SELF6] = { "self6", T_INET, 0, CAT2(TYPE_IP6ADDR, TYPE_IP6ADDR), 32, 0, 0, {0}, 16,
		F_ADDR2 },
	[S_PORTS] = { "ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_ISO_PORTS] = { "iso_ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_MAC_PORTS] = { "mac_ports", T_BRIDGE, 0, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0, F_IFNAME },
	[S_MACS] = { "macs", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_ETHERADDR), IFNAMSIZ + 8, 0, 0,
		{0}, 0, F_IF_MAC },
	[S_SRC4] = { "src4", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IPADDR), IFNAMSIZ + 4,
		0, 0, {0}, 4, F_IF_ADDR },
	[S_SRC6] = { "src6", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_IP6ADDR), IFNAMSIZ + 16,
		0, 0, {0}, 16, F_IF_ADDR },
	/* src4 and src6 of the ports whose MAC is known, with the MAC: the one lookup most need */
	[S_OWN4] = { "own4", T_BRIDGE, 0, CAT3(TYPE_IFNAME, TYPE_ETHERADDR, TYPE_IPADDR),
		IFNAMSIZ + 8 + 4, 0, 0, {0}, 4, F_IF_MAC_ADDR },
	[S_OWN6] = { "own6", T_BRIDGE, 0, CAT3(TYPE_IFNAME, TYPE_ETHERADDR, TYPE_IP6ADDR),
		IFNAMSIZ + 8 + 16, 0, 0, {0}, 16, F_IF_MAC_ADDR },
	/* src6 again, keyed as the raw ICMPv6 target field reads (nft 1.0 has no taddr) */
	[S_ND_TARGETS] = { "nd_targets", T_BRIDGE, 0, CAT2(TYPE_IFNAME, TYPE_INTEGER),
		IFNAMSIZ + 16, 0, 0, {0}, 16, F_IF_ADDR },
	[S_ND_TYPES] = { "nd_types", T_BRIDGE, 0, TYPE_ICMP6_TYPE, 1, 0, 0, {0}, 0, F_BYTE },
	/* what any endpoint owns, which a port moatd does not know may not claim */
	[S_ETHERS] = { "ethers", T_BRIDGE, 0, TYPE_ETHERADDR, 6, 0, 0, {0}, 0, F_MAC },
	[S_ADDRS4] = { "addrs4", T_BRIDGE, 0, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_ADDR },
	[S_ADDRS6] = { "addrs6", T_BRIDGE, 0, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_ADDR },
	/* addrs6 again, keyed as the raw ICMPv6 target field reads */
	[S_ND_ADDRS] = { "nd_addrs", T_BRIDGE, 0, TYPE_INTEGER, 16, 0, 0, {0}, 16, F_ADDR },
	/* the node's own addresses (its bridges' gateways among them, link-local included),
	 * which no port may claim */
	[S_NODE4] = { "node4", T_BRIDGE, 0, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_ADDR },
	[S_NODE6] = { "node6", T_BRIDGE, 0, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_ADDR },
	[S_NODE_ND] = { "node_nd", T_BRIDGE, 0, TYPE_INTEGER, 16, 0, 0, {0}, 16, F_ADDR },
	/* the drop log's buckets: per source address, per bridge port */
	[S_LIMIT4] = { "limit4", T_INET, METER, TYPE_IPADDR, 4, 0, 0, {0}, 4, F_ADDR,
		.meter = true },
	[S_LIMIT6] = { "limit6", T_INET, METER, TYPE_IP6ADDR, 16, 0, 0, {0}, 16, F_ADDR,
		.meter = true },
	[S_LIMIT_PORTS] = { "limit_ports", T_BRIDGE, METER, TYPE_IFNAME, IFNAMSIZ, 0, 0, {0}, 0,
		F_IFNAME, .meter = true },
	/* published ports (proto . host port), and what their destinations' ingress lists make
	 * of each: open (not isolated), monitor, anyone on it (any), the peers on it (from),
	 * what the tiers' first matching rules decide for a peer on it (admin, base) */
	[S_PUBLISHED] = { "published", T_INET, 0, ANY_KEY, 0, 0, {0}, 0, F_PORT },
	[S_PUB_OPEN] = { "pub_open", T_INET, 0, ANY_KEY, 0, 0, {0}, 0, F_PORT },
	[S_PUB_MON] = { "pub_monitor", T_INET, 0, ANY_KEY, 0, 0, {0}, 0, F_PORT },
	[S_PUB_ANY] = { "pub_any", T_INET, 0, ANY_KEY, 0, 0, {0}, 0, F_PORT },
	[S_PUB_FROM] = { "pub_from", T_INET, 0, PEER_KEY, 0, 0, {0}, 0, F_PEER_PORT },
	[S_PUB_ADMIN] = { "pub_admin", T_INET, MAP, PEER_KEY, NFT_DATA_VERDICT, 0, {0}, 0, F_TIER,
		"deny_in" },
	[S_PUB_BASE] = { "pub_base", T_INET, MAP, PEER_KEY, NFT_DATA_VERDICT, 0, {0}, 0, F_TIER,
		"deny_in" },
};

const struct chain_desc chains[C_COUNT] = {
	[C_FORWARD] = { "forward", T_INET, NF_INET_FORWARD, -10 },
	[C_INPUT] = { "input", T_INET, NF_INET_LOCAL_IN, -10 },
	[C_INGRESS] = { "ingress", T_INET, -1, 0 },
	[C_EGRESS] = { "egress", T_INET, -1, 0 },
	[C_PEER_SRC] = { "peer_src", T_INET, -1, 0 },
	[C_PEER_DST] = { "peer_dst", T_INET, -1, 0 },
	[C_DENY_IN] = { "deny_in", T_INET, -1, 0 },
	[C_DENY_OUT] = { "deny_out", T_INET, -1, 0 },
	[C_MON_IN] = { "monitor_in", T_INET, -1, 0 },
	[C_MON_OUT] = { "monitor_out", T_INET, -1, 0 },
	[C_UNKNOWN] = { "unknown", T_INET, -1, 0 },
	[C_PASSED] = { "passed", T_INET, -1, 0 },
	[C_PREROUTING] = { "prerouting", T_BRIDGE, NF_BR_PRE_ROUTING, -300 },
	[C_STRANGER] = { "stranger", T_BRIDGE, -1, 0 },
	[C_SPOOF] = { "spoof", T_BRIDGE, -1, 0 },
	[C_BR_FORWARD] = { "forward", T_BRIDGE, NF_BR_FORWARD, -300 },
	[C_MISDIRECTED] = { "misdirected", T_BRIDGE, -1, 0 },
	[C_PUBLISHED] = { "published", T_INET, -1, 0 },
	[C_RELATED] = { "related", T_INET, -1, 0 },
	[C_REOPENED] = { "reopened", T_INET, -1, 0 },
	/* only with the node's own connections under policy (ruleset_input's host_access) */
	[C_OUTPUT] = { "output", T_INET, NF_INET_LOCAL_OUT, -10 },
};

static void fmt_addr(char *b, size_t len, const uint8_t *a, int alen)
{
	inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, b, len);
}

static void fmt_tail(char *b, size_t len, const struct elem *e, int off)
{
	uint16_t lo, hi;

	memcpy(&lo, e->key + off + 4, 2);
	memcpy(&hi, e->key_end + off + 4, 2);
	snprintf(b, len, "proto %u-%u port %u-%u", e->key[off], e->key_end[off], ntohs(lo),
		 ntohs(hi));
}

const char *schema_set_name(enum set_id s, uint32_t owner, char *b, size_t len)
{
	snprintf(b, len, sets[s].name, owner);	/* names without %u ignore owner */
	return b;
}

static void fmt_mac(char *b, size_t len, const uint8_t *m)
{
	snprintf(b, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void schema_elem_format(enum set_id s, const struct elem *e, char *b, size_t len)
{
	const struct set_desc *d = &sets[s];
	char a[INET6_ADDRSTRLEN], t[64], c[INET6_ADDRSTRLEN];
	uint32_t x;

	memcpy(&x, e->key, 4);
	switch (d->fmt) {
	case F_ADDR_MARK:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		snprintf(b, len, "%s : ident %u", a, e->data);
		break;
	case F_RANGE:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		if (e->flags)
			snprintf(b, len, "interval end %s", a);
		else
			snprintf(b, len, "interval start %s : ident %u", a, e->data);
		break;
	case F_VMAP:
		snprintf(c, sizeof(c), d->jump, e->data);
		snprintf(b, len, "ident %u : goto %s", x, c);
		break;
	case F_PEER:
		fmt_tail(t, sizeof(t), e, 4);
		snprintf(b, len, "ident %u %s", ntohl(x), t);
		break;
	case F_ANY:
		fmt_tail(t, sizeof(t), e, 0);
		snprintf(b, len, "%s", t);
		break;
	case F_TIER:
		fmt_tail(t, sizeof(t), e, 4);
		snprintf(b, len, "ident %u %s : %s (domains %u)", ntohl(x), t,
			 (e->data & 0xff) == TIER_ACCEPT ? "return" : "deny",
			 e->data >> TIER_K_SHIFT);
		break;
	case F_DNS:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		fmt_addr(c, sizeof(c), e->key + d->alen, d->alen);
		fmt_tail(t, sizeof(t), e, 2 * d->alen);
		snprintf(b, len, "%s . %s %s", a, c, t);
		break;
	case F_ADDR:
		fmt_addr(b, len, e->key, d->alen);
		break;
	case F_ADDR2:
		fmt_addr(a, sizeof(a), e->key, d->alen);
		snprintf(b, len, "%s . %s", a, a);
		break;
	case F_IFNAME:
		snprintf(b, len, "%.16s", (const char *)e->key);
		break;
	case F_IF_ADDR:
		fmt_addr(a, sizeof(a), e->key + IFNAMSIZ, d->alen);
		snprintf(b, len, "%.16s . %s", (const char *)e->key, a);
		break;
	case F_MAC:
		fmt_mac(b, len, e->key);
		break;
	case F_IF_MAC:
		fmt_mac(a, sizeof(a), e->key + IFNAMSIZ);
		snprintf(b, len, "%.16s . %s", (const char *)e->key, a);
		break;
	case F_IF_MAC_ADDR:
		fmt_mac(a, sizeof(a), e->key + IFNAMSIZ);
		fmt_addr(t, sizeof(t), e->key + IFNAMSIZ + 8, d->alen);
		snprintf(b, len, "%.16s . %s . %s", (const char *)e->key, a, t);
		break;
	case F_BYTE:
		snprintf(b, len, "%u", e->key[0]);
		break;
	case F_PORT:
		snprintf(b, len, "proto %u port %u", e->key[0], (unsigned)(e->key[4] << 8 | e->key[5]));
		break;
	case F_PEER_PORT:
		snprintf(b, len, "ident %u proto %u port %u", ntohl(x), e->key[4],
			 (unsigned)(e->key[8] << 8 | e->key[9]));
		break;
	}
}

