/*
 * DNS queue: the DNS replies the ruleset holds in an NFQUEUE (nfnetlink_queue, spoken with
 * libmnl), each handed to a callback and then let through or dropped as it says. moatd
 * learns from a reply before the container sees it, so the addresses are in the sets by the
 * time the container connects.
 *
 * Held packets: the kernel holds each packet until its verdict. With NFQA_CFG_F_FAIL_OPEN a
 * full queue (4096 packets) or a full socket lets packets through unseen: a reply not
 * learned from, so its container's connection is refused, never wrongly allowed. When the
 * socket closes, the packets it still holds are dropped by the kernel (the client asks
 * again); when no socket is bound, the rule decides: `queue ... bypass` lets them through.
 */
#ifndef MOAT_DNS_QUEUE_H
#define MOAT_DNS_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct dnsq;

struct dnsq_packet {
	uint32_t id;		/* the kernel's, for the verdict */
	uint16_t hw_proto;	/* host order: ETH_P_IP, ETH_P_IPV6 */
	uint8_t hook;		/* NF_INET_LOCAL_IN, NF_INET_FORWARD, ... */
	const uint8_t *l3;	/* from the network header; NULL when the kernel sent none */
	size_t len;		/* bytes at l3 (at most the copy range, 65531) */
	size_t wire_len;	/* the packet's length: > len when the copy range cut it */
};

/*
 * What to do with p: NF_ACCEPT or NF_DROP (linux/netfilter.h), sent as it is (the kernel
 * refuses other values: the packet stays held until the socket closes). p and its bytes
 * are valid only during the call.
 */
typedef uint32_t (*dnsq_fn)(void *ctx, const struct dnsq_packet *p);

/* Figures since dnsq_open. Packets the kernel let through unseen (fail-open) are in
 * /proc/net/netfilter/nfnetlink_queue, not here. */
struct dnsq_stats {
	uint64_t packets;		/* handed to fn */
	uint64_t cut;			/* of which longer than the copy range */
	uint64_t malformed;		/* messages with no packet header: no id to answer */
	uint64_t verdict_errors;	/* verdicts not sent (their packets stay held) */
	uint64_t kernel_errors;		/* error answers from the kernel (a refused verdict) */
	uint64_t buffer_bytes;		/* the socket receive buffer granted */
};

/*
 * dnsq_open - bind NFQUEUE queue_num of the calling thread's network namespace: whole
 * packets (copy range 0xffff; the kernel caps it at 65531), at most 4096 held before
 * fail-open, GSO packets unsegmented (their checksums may be unset: they are read, never
 * changed), a receive buffer of 8 MiB (past rmem_max when root), no ENOBUFS errors,
 * non-blocking. Packets queued while binding are accepted unseen. Returns 0 and *out (free
 * with dnsq_free), or -errno: -EPERM without CAP_NET_ADMIN or when another socket holds
 * the queue; -EOPNOTSUPP for a kernel without a flag; -EPROTO when the kernel did not
 * answer.
 *
 * Trap: the ruleset's side is a `queue` statement (nft_queue, CONFIG_NFT_QUEUE), which
 * some kernels lack; the xt NFQUEUE target through nft_compat feeds the same queue.
 */
int dnsq_open(uint16_t queue_num, struct dnsq **out);

/* dnsq_fd - for the event loop (EPOLLIN: packets are held); owned by q. */
int dnsq_fd(const struct dnsq *q);

/*
 * dnsq_read - hand each held packet to fn (NULL: accept them all unseen) and send its
 * verdict, up to budget packets (the rest wait for the next EPOLLIN). Verdicts go out
 * together, in one send per 64, the last ones before return: no packet stays held past
 * the call. Trap: a verdict may leave before fn is called for later packets, so whatever
 * must be in place before a packet passes (its addresses in the sets) fn does before it
 * returns. Never blocks. Returns how many packets were handed over, or -errno when the
 * socket failed (the caller should reopen; the packets it held are dropped).
 */
int dnsq_read(struct dnsq *q, unsigned budget, dnsq_fn fn, void *ctx);

/* dnsq_stats_get - the figures. */
void dnsq_stats_get(const struct dnsq *q, struct dnsq_stats *out);

/* dnsq_free - NULL-safe; accepts what is held, then closes (the queue is unbound). */
void dnsq_free(struct dnsq *q);

#endif
