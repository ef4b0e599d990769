/*
 * The ruleset's schema: its two tables, every set and base or regular chain as a row of a
 * table, and the set element as the kernel takes it. Pure data: no socket, no allocation.
 * ruleset.h says what the ruleset does; this says what it is made of.
 */
#ifndef MOAT_DATAPATH_SCHEMA_H
#define MOAT_DATAPATH_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nft's datatype numbers (src/datatype.h): only `nft list` reads them, to print elements. */
enum {
	TYPE_VERDICT = 1, TYPE_INTEGER = 4, TYPE_IPADDR = 7, TYPE_IP6ADDR = 8, TYPE_ETHERADDR = 9,
	TYPE_INET_PROTOCOL = 12, TYPE_INET_SERVICE = 13, TYPE_MARK = 19, TYPE_ICMP6_TYPE = 29,
	TYPE_IFNAME = 41,
};
#define TYPE_BITS 6
#define CAT2(a, b) ((a) << TYPE_BITS | (b))
#define CAT3(a, b, c) (CAT2(CAT2(a, b), c))
#define CAT4(a, b, c, d) (CAT2(CAT3(a, b, c), d))

enum tbl { T_INET, T_BRIDGE, T_COUNT };

enum set_id {
	S_EP4, S_EP6, S_NET4, S_NET6, S_MANAGED4, S_MANAGED6, S_IN_IDS, S_OUT_IDS,
	S_FROM, S_IN_ANY, S_TO, S_OUT_ANY, S_ADMIN_IN, S_ADMIN_OUT, S_BASE_IN, S_BASE_OUT,
	S_DNS4_A, S_DNS6_A, S_DNS4_B, S_DNS6_B, S_SELF4, S_SELF6,
	S_PORTS, S_ISO_PORTS, S_MAC_PORTS, S_MACS, S_SRC4, S_SRC6, S_OWN4, S_OWN6, S_ND_TARGETS,
	S_ND_TYPES,
	S_ETHERS, S_ADDRS4, S_ADDRS6, S_ND_ADDRS, S_NODE4, S_NODE6, S_NODE_ND,
	S_LIMIT4, S_LIMIT6, S_LIMIT_PORTS,
	S_PUBLISHED, S_PUB_OPEN, S_PUB_MON, S_PUB_ANY, S_PUB_FROM, S_PUB_ADMIN, S_PUB_BASE, S_COUNT
};

/* How an element of a set reads in an error message. */
enum fmt {
	F_ADDR_MARK, F_RANGE, F_VMAP, F_PEER, F_ANY, F_ADDR, F_ADDR2, F_IFNAME, F_IF_ADDR, F_MAC,
	F_IF_MAC, F_IF_MAC_ADDR, F_BYTE, F_TIER, F_DNS, F_PORT, F_PEER_PORT
};

#define KEY_MAX 40		/* own6: ifname 16, MAC 6 (+2), IPv6 16 */

/*
 * A set, or (per_ident) a family of sets, one per isolated identity, named by printf-ing
 * the identity into name: these hang off that identity's chain.
 */
struct set_desc {
	const char *name;
	enum tbl t;
	uint32_t flags;			/* NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT */
	uint32_t key_type, key_len;	/* key_len: register-padded, as the kernel wants it */
	uint32_t data_type, data_len;	/* maps only */
	uint8_t fields[4];		/* pipapo: unpadded field lengths of the concatenation */
	uint8_t alen;			/* address length inside the key, for formatting */
	enum fmt fmt;
	const char *jump;		/* verdict maps: element data d goes to chain jump % d;
					 * F_TIER: data TIER_DENY goes to chain jump, TIER_ACCEPT
					 * returns (the direction is allowed) */
	bool per_ident;
	bool egress;			/* per_ident: a set of an identity's egress chain */
	bool per_domain;		/* one per place k of a tier's rules with domain names, named
					 * by printf-ing k: what the node learnt, with timeouts */
	bool meter;			/* filled by the packet path (a log limit per source):
					 * flags dynamic and timeout, METER_SIZE elements at most,
					 * never listed, compared or verified */
};

/*
 * Meters: one token bucket per source (address or port) for the drop log, forgotten
 * METER_TIMEOUT_MS after its last packet. Once METER_SIZE sources are in one, a new source
 * is counted, not logged, until one times out.
 */
#define METER_SIZE 65536
#define METER_TIMEOUT_MS 60000

/* The named counter of each table: drops the meters kept out of the log. */
#define UNLOGGED_COUNTER "unlogged"

enum chain_id {
	C_FORWARD, C_INPUT, C_INGRESS, C_EGRESS, C_PEER_SRC, C_PEER_DST, C_DENY_IN, C_DENY_OUT,
	C_MON_IN, C_MON_OUT, C_UNKNOWN, C_PASSED, C_PREROUTING, C_STRANGER, C_SPOOF, C_BR_FORWARD,
	C_MISDIRECTED, C_PUBLISHED, C_RELATED, C_REOPENED, C_OUTPUT, C_COUNT
};

/*
 * One set element. owner: the identity whose per_ident set holds it (0 elsewhere); first, so
 * that sorted arrays group each identity's elements. key_end is sent for pipapo sets only;
 * flags carries NFT_SET_ELEM_INTERVAL_END for the closing element of an rbtree interval.
 * Elements compare with memcmp over the whole struct (always zero-initialised), so a changed
 * map value is a delete plus an add.
 */
/*
 * A tier map element's data: what it does; for the TIER_DNS_* ones first the learnt
 * addresses of the tier's first k rules with domain names (k = data >> TIER_K_SHIFT): jump
 * dns_a<k> and on (Admin), or go to dns_<t><k>_deny.
 */
enum { TIER_ACCEPT, TIER_DENY, TIER_DNS_ON, TIER_DNS_DENY };
#define TIER_K_SHIFT 8

struct elem {
	uint32_t owner;
	uint8_t key[KEY_MAX];
	uint8_t key_end[KEY_MAX];
	uint32_t data;
	uint32_t flags;
	uint32_t timeout_ms;		/* per_domain sets: how long the element lives */
};


struct table_desc {
	uint16_t family;
	const char *fname;
};

struct chain_desc {
	const char *name;
	enum tbl t;
	int hook;			/* -1: a regular chain */
	int prio;
};

extern const struct table_desc tbls[T_COUNT];
extern const struct set_desc sets[S_COUNT];
extern const struct chain_desc chains[C_COUNT];

/* schema_set_name - set s's name into b; a per_ident set is named after owner. Returns b. */
const char *schema_set_name(enum set_id s, uint32_t owner, char *b, size_t len);

/* schema_elem_format - element e of set s as people read it (error messages), into b. */
void schema_elem_format(enum set_id s, const struct elem *e, char *b, size_t len);

#endif
