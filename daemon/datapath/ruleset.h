/*
 * The datapath's ruleset: a compiled plan (include/moat/plan.h) programmed into two nftables
 * tables with libnftnl + libmnl, one atomic batch per change (schema.h lists its sets and
 * chains, elements.h computes their elements, rules.h writes the rules, batch.h sends and
 * maps errors back, tamper.h watches for foreign changes):
 *
 *   table inet moat     maps ep4/ep6 (endpoint address -> identity) and net4/net6 (every other
 *                       address -> identity, intervals); sets managed4/managed6 (subnets where
 *                       an unknown address fails closed); verdict maps in_ids and out_ids
 *                       (isolated identity -> goto its chain), reached through ep4/ep6, so
 *                       that an endpoint address that comes or goes changes no verdict map
 *                       (the kernel checks every verdict map for loops at each change of one).
 *                       Base chains forward and input (priority -10) pass established flows,
 *                       jump ingress and egress, and log each new connection that passed.
 *                       Per isolated identity and direction: chain in_<id> (or out_<id>) with
 *                       sets in_<id>_from (peer identity . proto . port ranges) and in_<id>_any
 *                       (proto . port), ending in deny_in (or monitor_in when that identity is
 *                       in monitor mode). Chains peer_src/peer_dst put the peer's identity in
 *                       the connection's mark; unknown drops (or, in monitor mode, counts).
 *   table bridge moat   anti-spoofing on the containers' veths: sets ports, src4, src6,
 *                       nd_types; base chain prerouting (priority -300), chain spoof. On
 *                       every port, known or not: no router advertisement or redirect, and
 *                       nothing that claims an address of the node (sets node4, node6,
 *                       node_nd: the gateways) as its source, in ARP or in a neighbour
 *                       advertisement.
 *
 * Each packet of a new connection costs a constant number of lookups whatever the number of
 * endpoints and policies: per direction an identity map and a verdict map, two identity maps,
 * two allow sets. Everything is expressed the way nft itself does, so `nft list ruleset`
 * reads it back.
 *
 * The conntrack mark of a new connection to or from an endpoint is Moat's scratch register
 * (it carries an endpoint's identity to its verdict map, and the peer's identity while the
 * identity chain decides); it is left holding an identity. Other software on the node must
 * not rely on ct mark of those connections.
 *
 * Drops are logged to an NFLOG group with the NFT_PREFIX_* prefixes below, at most log_rate
 * a second per source (meters limit4, limit6, limit_ports; counter "unlogged" for the rest),
 * and so is the first packet of every connection that passed with an endpoint at either end.
 *
 * Foreign tables are never touched: every message names table "moat" of family inet or bridge.
 */
#ifndef MOAT_DATAPATH_RULESET_H
#define MOAT_DATAPATH_RULESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "moat/endpoint.h"
#include "moat/errors.h"
#include "moat/plan.h"
#include "moat/policy.h"

#define NFT_TABLE_NAME "moat"
#define NFT_DEFAULT_NFLOG_GROUP 1
#define NFT_DEFAULT_DNS_QUEUE 53
#define NFT_DEFAULT_LOG_RATE 20		/* drop records a second per source (log_rate) */

/* NFLOG prefixes (the flow reader's contract) and how much of each packet is copied. */
#define NFT_PREFIX_PASS "moat:pass"		/* a new connection passed (allowed, or monitor) */
#define NFT_PREFIX_DROP_IN "moat:drop:in"	/* the destination's ingress policy dropped it */
#define NFT_PREFIX_DROP_OUT "moat:drop:out"	/* the source's egress policy dropped it */
#define NFT_PREFIX_DROP_UNKNOWN "moat:drop:unknown"	/* managed subnet, not an endpoint yet */
#define NFT_PREFIX_SPOOF "moat:spoof"		/* bridge: not the container's own address */
#define NFT_LOG_SNAPLEN 128

struct ruleset;

/*
 * What the node's own connections to endpoints may do. ALLOW: everything (Kubernetes' rule:
 * the node reaches its own pods; no output hook). POLICY: they are a peer like any other
 * address (an ipBlock must allow the node's), and endpoints reach the node only on ports it
 * publishes for endpoints (their egress decides the rest of their traffic to it as before).
 */
enum ruleset_host { RULESET_HOST_ALLOW, RULESET_HOST_POLICY };

/* What one apply programs. Everything is borrowed for the duration of the call only. */
struct ruleset_input {
	const struct moat_plan *plan;
	const struct moat_endpoint_set *es;	/* ifaces and addresses for anti-spoofing */
	const struct moat_cidr *managed;	/* subnets Moat manages: unknown addresses there fail closed */
	size_t nmanaged;
	enum moat_mode mode;		/* global: MONITOR makes chain unknown log and return */
	uint16_t nflog_group;		/* NFLOG group of every log rule (NFT_DEFAULT_NFLOG_GROUP) */
	uint16_t dns_queue;		/* NFQUEUE of DNS replies to endpoints, when the plan has
					 * rules with domain names (NFT_DEFAULT_DNS_QUEUE) */
	const struct moat_addr *node;	/* the node's own addresses in moatd's namespace (its
					 * bridges' gateways among them): no bridge port may claim
					 * them (source, ARP, neighbour advertisement) */
	size_t nnode;
	uint32_t log_rate;		/* drop records a second per source (address, or bridge
					 * port), bursts of twice that; past it drops are counted,
					 * not logged (ruleset_unlogged). 0: every drop logged */
	enum ruleset_host host_access;
};

/*
 * What the node learnt from a DNS answer: the endpoint at src resolved dst through a rule
 * with domain names, the j-th (from 1) of its tier's; the protocols and ports that rule
 * allows (one range of each; a rule with several gives several); how long it holds.
 */
struct ruleset_dns {
	enum moat_tier tier;
	uint32_t j;
	struct moat_addr src, dst;
	uint8_t proto_lo, proto_hi;
	uint16_t port_lo, port_hi;
	uint32_t timeout_ms;
};

/* What the last successful ruleset_apply or ruleset_flush sent. */
struct ruleset_stats {
	bool full;			/* the tables were recreated */
	size_t msgs;			/* netlink messages in the batch (0: nothing to do) */
	size_t added, deleted;		/* set elements added and deleted */
};

/*
 * ruleset_new - open the netlink sockets: one for batches, one subscribed to
 * NFNLGRP_NFTABLES for tamper detection. Needs CAP_NET_ADMIN in the current network
 * namespace (the sockets stay bound to it). Returns 0 and *out, or -errno. Nothing is sent
 * to the kernel yet. Free with ruleset_free.
 */
int ruleset_new(struct ruleset **out);

/* ruleset_free - close the sockets and forget the applied state; the kernel keeps the tables. NULL-safe. */
void ruleset_free(struct ruleset *rs);

/* ruleset_stats - counters of the last successful apply or flush; points into rs. */
const struct ruleset_stats *ruleset_stats(const struct ruleset *rs);

/*
 * ruleset_apply - program in into the kernel in one atomic batch.
 * full: recreate both tables (add table, delete table, create everything with every element),
 * so packets see either the old or the new ruleset, never a mix and never an empty window.
 * !full: send only what differs from what this ruleset applied last: identity chains that came
 * or went, and set elements (deletes before adds); it builds every element of in to compare
 * (the resync path: ruleset_apply_change is the one per event). It falls back to full when
 * rs has applied nothing yet, when mode or nflog_group changed, or when an identity's mode
 * changed (they live in the chains).
 * Returns 0 on success; the kernel acknowledged every message and rs now remembers in.
 * On failure the kernel keeps its previous ruleset (the batch is atomic), rs keeps its
 * previous state, and each kernel error is in diags naming the object (table, set, chain,
 * rule or set element) that caused it; returns -errno (the first kernel error, -ENOBUFS if
 * acknowledgements were lost, -ENOMEM). Trap: after a failed incremental apply the kernel
 * may differ from what rs believes (someone tampered): follow with a full apply.
 */
int ruleset_apply(struct ruleset *rs, const struct ruleset_input *in, bool full,
		      struct moat_diags *diags);

/*
 * ruleset_apply_change - program the change a plan delta d makes (see moat_plan_delta_new:
 * the endpoints at plan->es indexes gone[] go and come[] come) from the parts that come and
 * go alone, at a cost that follows the change: identity chains that come or go, and the
 * elements of the parts (elements.h) that the kernel gains or loses. Call before committing
 * d. The mode, NFLOG group and managed subnets are those of the last apply (a change of
 * those is a ruleset_apply). On failure (-ENODATA: nothing applied yet) the kernel and rs
 * keep what they had and each kernel error is in diags; follow with ruleset_apply.
 */
int ruleset_apply_change(struct ruleset *rs, const struct moat_plan *plan,
			 const struct moat_plan_delta *d, const size_t *gone, size_t ngone,
			 const struct moat_endpoint *come, size_t ncome, struct moat_diags *diags);

/*
 * ruleset_dns_add - put what the node learnt, v[0..n), in the kernel's sets (for each, the
 * sets of its tier's places j and after: dns4_<t><k> or dns6_<t><k>), each element for its
 * timeout (an element there already gets the new one), in one batch; returns when the kernel
 * has them, so a connection the answer lets through is allowed from then on. -ENODATA when
 * nothing was applied yet (a full apply empties those sets: the caller adds what it knows
 * again after one). Errors in diags.
 */
int ruleset_dns_add(struct ruleset *rs, const struct ruleset_dns *v, size_t n,
		    struct moat_diags *diags);

/*
 * ruleset_flush - delete table inet moat and table bridge moat in one batch (absent tables
 * are fine) and forget the applied state. Other tables are untouched. 0 or -errno, errors in
 * diags.
 */
int ruleset_flush(struct ruleset *rs, struct moat_diags *diags);

/*
 * ruleset_unlogged - drops the log limit kept out of the NFLOG group since ruleset_new (the
 * named counters "unlogged" of both tables, plus what they held before each full apply
 * recreated them). 0 and *n, or -errno (-ENODATA: nothing applied yet).
 */
int ruleset_unlogged(struct ruleset *rs, uint64_t *n);

/* ruleset_watch_fd - the notification socket, for the caller's epoll (EPOLLIN). Owned by rs. */
int ruleset_watch_fd(const struct ruleset *rs);

/* What ruleset_watch_read saw. */
struct ruleset_tamper {
	bool changed;			/* someone other than rs changed or deleted a moat table */
	bool lost;			/* notifications were lost (ENOBUFS): run ruleset_verify */
	pid_t pid;			/* process of the last foreign change (from NEWGEN), 0 unknown */
	char comm[32];			/* its name, "" unknown */
	char what[128];			/* the first foreign change, e.g. "delete table inet moat" */
};

/*
 * ruleset_watch_read - drain the notification socket without blocking and report changes to the
 * moat tables that did not come from rs's own batches (told apart by the sender's netlink
 * port id, so threads and other sockets of this process count as foreign). Our own applies
 * produce notifications too (one per set element): call this after each apply as well, or
 * the socket may overflow and report lost. Returns 0 and fills *out (zeroed first), or -errno.
 */
int ruleset_watch_read(struct ruleset *rs, struct ruleset_tamper *out);

/*
 * ruleset_verify - dump both moat tables and compare, per table, the number of rules and,
 * per set, the number of elements with what rs applied last. Costs a dump of every set:
 * for periodic checks, not per event. Returns 0 and sets *in_sync (when false, why says what
 * differs, NUL-terminated, truncated to whylen), or -errno. -ENODATA when rs has applied
 * nothing.
 */
int ruleset_verify(struct ruleset *rs, bool *in_sync, char *why, size_t whylen);

#endif
