/*
 * One atomic batch of nftables messages for the moat tables, the netfilter socket it goes
 * out on, and the kernel's errors mapped back (by sequence number and extended-ACK offset)
 * to the object or set element that caused them. The only code that opens a netfilter
 * socket for the ruleset. Datapath-internal: ruleset.h is the public face.
 */
#ifndef MOAT_DATAPATH_BATCH_H
#define MOAT_DATAPATH_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>

#include "moat/errors.h"
#include "schema.h"

struct nftnl_batch;
struct mnl_socket;

/* What a message of the batch did, to name it when the kernel refuses it. */
struct msgrec {
	uint32_t seq;
	char what[96];
	int set;			/* element messages: the set; else -1 */
	const struct elem *elems;	/* the elements it carries */
	size_t nelems;
	const struct nlmsghdr *nlh;	/* its bytes in the batch, for extack offsets */
};

struct batch {
	struct nftnl_batch *b;
	uint32_t seq0;
	struct msgrec *recs;
	size_t nrecs, cap;
	size_t nacks;			/* messages sent with NLM_F_ACK */
	size_t added, deleted;
	int err;			/* sticky: first failure while building */
	unsigned nrules[T_COUNT];
	uint32_t nsets;			/* sets added */
};

/* A netfilter socket with its own sequence numbers and receive buffer. */
struct nfsock {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char buf[1 << 16];
};

/*
 * nfsock_open - a NETLINK_NETFILTER socket: acks capped, extended ACKs on, a 16 MiB receive
 * buffer; subscribed to group when not 0 (NFNLGRP_NFTABLES for notifications). Needs
 * CAP_NET_ADMIN in the current network namespace, to which it stays bound. 0 and *out
 * (free with nfsock_close), or -errno.
 */
int nfsock_open(unsigned group, struct nfsock **out);

/* nfsock_close - NULL-safe. */
void nfsock_close(struct nfsock *s);

/* nfsock_fd - the socket's descriptor, for the caller's epoll; owned by s. */
int nfsock_fd(const struct nfsock *s);

/*
 * nfsock_send - end bt and send it in one sendmsg, then read every reply (the kernel has
 * processed the batch by the time sendmsg returns, so this never waits). 0 when every
 * message was acknowledged; else each kernel error is in diags naming its object (and set
 * element), and the first one is returned as -errno (-EPROTO if acknowledgements were lost).
 * The batch is atomic: on failure the kernel keeps what it had.
 */
int nfsock_send(struct nfsock *s, struct batch *bt, struct moat_diags *diags);

/*
 * nfsock_dump_count - how many rules table t holds (set NULL), or how many elements set set
 * of table t holds. 0 and *n, -ENOENT when the table or set does not exist, or -errno.
 */
int nfsock_dump_count(struct nfsock *s, enum tbl t, const char *set, size_t *n);

/*
 * nfsock_counter_get - the packets the named counter object of table t counted. 0 and
 * *pkts, -ENOENT when the table or counter does not exist, or -errno.
 */
int nfsock_counter_get(struct nfsock *s, enum tbl t, const char *name, uint64_t *pkts);

/* batch_init - an empty batch whose messages are numbered from seq + 1. 0 or -ENOMEM. */
int batch_init(struct batch *bt, uint32_t seq);

/* batch_free - what bt holds (bt itself is the caller's). */
void batch_free(struct batch *bt);

/*
 * The builders below append one message each (or, for elements, as many as it takes) and
 * never fail themselves: a failure (ENOMEM) is kept in bt->err, and the caller checks it
 * once before sending.
 */

/* batch_hdr - the header of a new message of type for table t (NLM_F_ACK added). */
struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type, enum tbl t, uint16_t flags);

/* batch_commit - account for the message just written at nlh; what names it in errors. */
struct msgrec *batch_commit(struct batch *bt, struct nlmsghdr *nlh, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* batch_table - add (NFT_MSG_NEWTABLE) or delete (NFT_MSG_DELTABLE) table moat of t. */
void batch_table(struct batch *bt, enum tbl t, uint16_t type);

/* batch_set - add (or, del, delete) set id, or for a per_ident set the one of owner. */
void batch_set(struct batch *bt, enum set_id id, uint32_t owner, bool del);

/* batch_counter - add the named counter object name to table t. */
void batch_counter(struct batch *bt, enum tbl t, const char *name);

/* batch_chain - add (or delete, with its rules) a chain; hook < 0 for a regular chain. */
void batch_chain(struct batch *bt, enum tbl t, const char *name, int hook, int prio, bool del);

/*
 * batch_elems - add (or delete) the n elements v of set s, in messages below the nest
 * limit, one owner's per message for per_ident sets (v grouped by owner). v must outlive
 * nfsock_send: errors name its elements.
 */
void batch_elems(struct batch *bt, enum set_id s, const struct elem *v, size_t n, bool del);

#endif
