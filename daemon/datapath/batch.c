/*
 * Batches of nftables messages, sent on the netfilter socket (the only code that opens one
 * for the ruleset), and the kernel's answers mapped back to what caused them.
 *
 * Tables, sets and chains are built with libnftnl; set elements are written with libmnl
 * straight into the batch (no object per element: a container start stays cheap) and each
 * message remembers which elements it carries, so that a kernel error, found by sequence
 * number and by the extended-ACK attribute offset, names the element that caused it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "batch.h"
#include "ruleset.h"

#define BATCH_PAGE (32u * 4096u)
#define BATCH_OVERRUN (65536u + 4096u)
/* Element messages stay well below the 64 KiB nest limit and the page overrun. */
#define ELEM_MSG_MAX 32768u

int batch_init(struct batch *bt, uint32_t seq)
{
	memset(bt, 0, sizeof(*bt));
	bt->b = nftnl_batch_alloc(BATCH_PAGE, BATCH_OVERRUN);
	if (!bt->b)
		return -ENOMEM;
	bt->seq0 = seq;
	nftnl_batch_begin(nftnl_batch_buffer(bt->b), seq);
	if (nftnl_batch_update(bt->b) < 0)
		return -ENOMEM;
	return 0;
}

void batch_free(struct batch *bt)
{
	if (bt->b)
		nftnl_batch_free(bt->b);
	free(bt->recs);
}

static uint32_t batch_seq(const struct batch *bt)
{
	return bt->seq0 + 1 + bt->nrecs;
}

static char *batch_buf(struct batch *bt)
{
	return nftnl_batch_buffer(bt->b);
}

struct msgrec *batch_commit(struct batch *bt, struct nlmsghdr *nlh, const char *fmt, ...)
{
	struct msgrec *r;
	va_list ap;

	if (bt->nrecs == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		struct msgrec *n = realloc(bt->recs, cap * sizeof(*n));

		if (!n) {
			bt->err = -ENOMEM;
			return NULL;
		}
		bt->recs = n;
		bt->cap = cap;
	}
	r = &bt->recs[bt->nrecs++];
	memset(r, 0, sizeof(*r));
	r->seq = nlh->nlmsg_seq;
	r->set = -1;
	r->nlh = nlh;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	if (nlh->nlmsg_flags & NLM_F_ACK)
		bt->nacks++;
	/* A message that overflows the page is copied to a new one; the old bytes stay. */
	if (nftnl_batch_update(bt->b) < 0)
		bt->err = -ENOMEM;
	return r;
}

struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type, enum tbl t, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(batch_buf(bt), type, tbls[t].family, flags | NLM_F_ACK,
				     batch_seq(bt));
}

void batch_table(struct batch *bt, enum tbl t, uint16_t type)
{
	struct nftnl_table *tb = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!tb) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_set_u32(tb, NFTNL_TABLE_FAMILY, tbls[t].family);
	nftnl_table_set_str(tb, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	nlh = batch_hdr(bt, type, t, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	nftnl_table_nlmsg_build_payload(nlh, tb);
	nftnl_table_free(tb);
	batch_commit(bt, nlh, "%s table %s %s", type == NFT_MSG_NEWTABLE ? "add" : "delete",
		     tbls[t].fname, NFT_TABLE_NAME);
}

/*
 * Notes for `nft list` (the kernel ignores them): marks in map data and interface names in
 * keys are host-order, which nft cannot tell from the type alone; without them it shows map
 * data byte-swapped and names as "" (nft's own BYTEORDER_HOST_ENDIAN is 1).
 */
/* One expression of a typeof description: nft's expression id and its u32 attributes. */
static bool udata_typeof_expr(struct nftnl_udata_buf *u, uint8_t index, uint32_t expr,
			      const uint32_t *attrs, size_t nattrs)
{
	struct nftnl_udata *el = nftnl_udata_nest_start(u, index), *data;
	bool ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, expr);

	data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	for (size_t i = 0; i < nattrs && ok; i++)
		ok = nftnl_udata_put_u32(u, i, attrs[i]);
	nftnl_udata_nest_end(u, data);
	nftnl_udata_nest_end(u, el);
	return ok;
}

/*
 * "typeof iifname . @th,64,128" (nd_targets) or "typeof @th,64,128" (nd_addrs, node_nd), the way
 * nft 1.0 writes it (expression ids: concat 13, meta 9 with its key, payload 7 with
 * protocol 0, template 0, base 3 (transport), offset and length in bits), so that
 * `nft list` prints a set that `nft -f` takes back.
 */
static bool udata_nd_targets(struct nftnl_udata_buf *u, bool port)
{
	static const uint32_t meta[] = { NFT_META_IIFNAME }, raw[] = { 0, 0, 3, 64, 128 };
	struct nftnl_udata *top, *data;
	bool ok;

	ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 0);
	if (!port)
		return ok && udata_typeof_expr(u, NFTNL_UDATA_SET_KEY_TYPEOF, 7, raw, 5);
	top = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF);
	ok = ok && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, 13);
	data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	ok = ok && udata_typeof_expr(u, 0, 9, meta, 1) && udata_typeof_expr(u, 1, 7, raw, 5);
	nftnl_udata_nest_end(u, data);
	nftnl_udata_nest_end(u, top);
	return ok;
}

static void set_udata(struct nftnl_set *s, enum set_id id)
{
	const struct set_desc *d = &sets[id];
	bool key = d->key_type == TYPE_IFNAME || d->key_type == TYPE_MARK;
	bool data = d->data_type == TYPE_MARK;
	bool nd = id == S_ND_TARGETS || id == S_ND_ADDRS || id == S_NODE_ND;
	struct nftnl_udata_buf *u;
	bool ok;

	if (!key && !data && !nd)
		return;
	u = nftnl_udata_buf_alloc(128);
	if (!u)
		return;
	if (nd)
		ok = udata_nd_targets(u, id == S_ND_TARGETS);
	else
		ok = (!key || nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1)) &&
		     (!data || nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 1));
	if (ok)
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* What a new set is: its id in the batch, flags, key, data, timeouts, concatenation. */
static void set_describe(struct batch *bt, struct nftnl_set *s, enum set_id id)
{
	const struct set_desc *d = &sets[id];

	/* the kernel wants an id, unique in the batch, on every new set */
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++bt->nsets);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	if (d->flags & NFT_SET_MAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
	}
	set_udata(s, id);
	if (d->meter) {
		nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, METER_TIMEOUT_MS);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, METER_SIZE);
	}
	if (d->fields[0]) {
		uint8_t f[NFT_REG32_COUNT] = {0};

		memcpy(f, d->fields, sizeof(d->fields));
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, f, sizeof(f));
	}
}

/* Add (or, del, delete) set id, or for a per_ident set the one of identity owner (per_domain:
 * of place owner). */
void batch_set(struct batch *bt, enum set_id id, uint32_t owner, bool del)
{
	const struct set_desc *d = &sets[id];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	char name[32];

	if (!s) {
		bt->err = -ENOMEM;
		return;
	}
	schema_set_name(id, owner, name, sizeof(name));
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, tbls[d->t].family);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (!del)
		set_describe(bt, s, id);
	nlh = batch_hdr(bt, del ? NFT_MSG_DELSET : NFT_MSG_NEWSET, d->t, del ? 0 : NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	batch_commit(bt, nlh, "%s set %s moat %s", del ? "delete" : "add", tbls[d->t].fname, name);
}

void batch_counter(struct batch *bt, enum tbl t, const char *name)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (!o) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, tbls[t].family);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, NFT_TABLE_NAME);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nlh = batch_hdr(bt, NFT_MSG_NEWOBJ, t, NLM_F_CREATE);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	batch_commit(bt, nlh, "add counter %s moat %s", tbls[t].fname, name);
}

/* Add (or delete, with its rules) a chain; hook < 0 for a regular chain. */
void batch_chain(struct batch *bt, enum tbl t, const char *name, int hook, int prio,
			bool del)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, tbls[t].family);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_hdr(bt, del ? NFT_MSG_DELCHAIN : NFT_MSG_NEWCHAIN, t, del ? 0 : NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_commit(bt, nlh, "%s chain %s moat %s", del ? "delete" : "add", tbls[t].fname, name);
}

/* A tier map element's verdict (schema.h, TIER_*), and the chain it names into chain. */
static int tier_verdict(enum set_id s, uint32_t data, char *chain, size_t len)
{
	char t = s == S_BASE_IN || s == S_BASE_OUT ? 'b' : 'a';
	uint32_t k = data >> TIER_K_SHIFT;

	switch (data & 0xff) {
	case TIER_DENY:
		snprintf(chain, len, "%s", sets[s].jump);
		return NFT_GOTO;
	case TIER_DNS_ON:
		snprintf(chain, len, "dns_%c%u", t, k);
		return NFT_JUMP;
	case TIER_DNS_DENY:
		snprintf(chain, len, "dns_%c%u_deny", t, k);
		return NFT_GOTO;
	}
	return NFT_RETURN;
}

/* Element data: a mark; for verdict maps a goto to the identity's chain, or (tier maps) what
 * tier_verdict says. */
static void put_elem_data(struct nlmsghdr *nlh, enum set_id s, const struct elem *e)
{
	struct nlattr *d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);

	if (sets[s].data_type == NFT_DATA_VERDICT) {
		struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
		char chain[32];
		int code = sets[s].fmt == F_TIER ? tier_verdict(s, e->data, chain, sizeof(chain))
						 : NFT_GOTO;

		if (sets[s].fmt != F_TIER)
			snprintf(chain, sizeof(chain), sets[s].jump, e->data);
		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)code));
		if (code != NFT_RETURN)
			mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, chain);
		mnl_attr_nest_end(nlh, v);
	} else {
		mnl_attr_put(nlh, NFTA_DATA_VALUE, sets[s].data_len, &e->data);
	}
	mnl_attr_nest_end(nlh, d);
}

static void put_elem(struct nlmsghdr *nlh, enum set_id s, const struct elem *e, bool del)
{
	const struct set_desc *d = &sets[s];
	struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	struct nlattr *k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);

	mnl_attr_put(nlh, NFTA_DATA_VALUE, d->key_len, e->key);
	mnl_attr_nest_end(nlh, k);
	if (d->fields[0]) {
		k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY_END);
		mnl_attr_put(nlh, NFTA_DATA_VALUE, d->key_len, e->key_end);
		mnl_attr_nest_end(nlh, k);
	}
	if (e->timeout_ms && !del)
		mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64((uint64_t)e->timeout_ms));
	if (e->flags)
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(e->flags));
	else if (!del && (d->flags & NFT_SET_MAP))
		put_elem_data(nlh, s, e);
	mnl_attr_nest_end(nlh, el);
}

/*
 * NEWSETELEM/DELSETELEM messages for elems, split so that each stays below ELEM_MSG_MAX and,
 * for per_ident sets, so that each carries one owner's elements (its set's name).
 */
void batch_elems(struct batch *bt, enum set_id s, const struct elem *v, size_t n, bool del)
{
	const struct set_desc *d = &sets[s];
	uint16_t type = del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM;

	while (n > 0 && !bt->err) {
		struct nlmsghdr *nlh = batch_hdr(bt, type, d->t, del ? 0 : NLM_F_CREATE);
		struct nlattr *list;
		struct msgrec *r;
		char name[32];
		size_t i = 0;

		schema_set_name(s, v[0].owner, name, sizeof(name));
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, name);
		list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		while (i < n && nlh->nlmsg_len < ELEM_MSG_MAX && v[i].owner == v[0].owner)
			put_elem(nlh, s, &v[i++], del);
		mnl_attr_nest_end(nlh, list);
		r = batch_commit(bt, nlh, "%s element %s moat %s", del ? "delete" : "add",
				 tbls[d->t].fname, name);
		if (r) {
			r->set = s;
			r->elems = v;
			r->nelems = i;
		}
		*(del ? &bt->deleted : &bt->added) += i;
		v += i;
		n -= i;
	}
}

static const struct msgrec *rec_find(const struct batch *bt, uint32_t seq)
{
	if (seq <= bt->seq0 || seq - bt->seq0 - 1 >= bt->nrecs)
		return NULL;
	return &bt->recs[seq - bt->seq0 - 1];
}

/* Which element of an element message starts at byte offset off (extended ACK), or -1. */
static long elem_at(const struct msgrec *r, uint32_t off)
{
	const struct nlattr *a, *e;
	long i = 0;

	mnl_attr_for_each(a, r->nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a) {
			if ((const char *)e - (const char *)r->nlh == (long)off)
				return i;
			i++;
		}
	}
	return -1;
}

static void report_error(const struct batch *bt, const struct nlmsghdr *nlh, int err,
			 struct moat_diags *diags)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct msgrec *r = rec_find(bt, e->msg.nlmsg_seq);
	const char *kmsg = NULL;
	uint32_t off = 0;
	bool has_off = false;
	char el[160] = "";
	const struct nlattr *a;

	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t hlen = sizeof(*e) + (nlh->nlmsg_flags & NLM_F_CAPPED ? 0 :
				mnl_nlmsg_get_payload_len(&e->msg));

		mnl_attr_for_each(a, nlh, hlen) {
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
				kmsg = mnl_attr_get_str(a);
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_OFFS) {
				off = mnl_attr_get_u32(a);
				has_off = true;
			}
		}
	}
	if (r && r->set >= 0) {
		long i = has_off ? elem_at(r, off) : -1;

		if (i >= 0 && (size_t)i < r->nelems) {
			strcpy(el, ": ");
			schema_elem_format(r->set, &r->elems[i], el + 2, sizeof(el) - 2);
		} else {
			snprintf(el, sizeof(el), " (one of %zu in this message)", r->nelems);
		}
	}
	moat_diags_add(diags, "nftables", 0, 0, "%s%s: %s%s%s", r ? r->what : "batch", el,
		       strerror(err), kmsg ? ": " : "", kmsg ? kmsg : "");
}

/*
 * Read every reply to the batch. Batches are processed while sendmsg runs, so the replies
 * are queued by the time it returns; reading until EAGAIN never waits on the kernel.
 */
static int batch_replies(struct nfsock *ctx, const struct batch *bt, struct moat_diags *diags)
{
	size_t acks = 0;
	int first = 0;

	for (;;) {
		int n = recv(mnl_socket_get_fd(ctx->nl), ctx->buf, sizeof(ctx->buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ctx->buf;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			moat_diags_add(diags, "nftables", 0, 0, "reading the batch replies: %s",
				       strerror(errno));
			return -errno;
		}
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			if (!e->error) {
				acks++;
				continue;
			}
			report_error(bt, nlh, -e->error, diags);
			if (!first)
				first = e->error;
		}
	}
	if (first)
		return first;
	if (acks != bt->nacks) {
		moat_diags_add(diags, "nftables", 0, 0,
			       "the kernel acknowledged %zu of %zu messages", acks, bt->nacks);
		return -EPROTO;
	}
	return 0;
}

int nfsock_send(struct nfsock *ctx, struct batch *bt, struct moat_diags *diags)
{
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &snl, .msg_namelen = sizeof(snl) };
	int n, size = 0;

	nftnl_batch_end(batch_buf(bt), batch_seq(bt));
	if (nftnl_batch_update(bt->b) < 0)
		return -ENOMEM;
	n = nftnl_batch_iovec_len(bt->b);
	struct iovec iov[n];

	nftnl_batch_iovec(bt->b, iov, n);
	for (int i = 0; i < n; i++)
		size += iov[i].iov_len;
	/* One skb carries the whole batch: the send buffer must hold it. */
	setsockopt(mnl_socket_get_fd(ctx->nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	msg.msg_iov = iov;
	msg.msg_iovlen = n;
	ctx->seq = batch_seq(bt) + 1;
	if (sendmsg(mnl_socket_get_fd(ctx->nl), &msg, 0) < 0) {
		int err = -errno;

		moat_diags_add(diags, "nftables", 0, 0, "sending a batch of %d bytes: %s", size,
			       strerror(errno));
		return err;
	}
	return batch_replies(ctx, bt, diags);
}

/* ---- the socket ----------------------------------------------------------------------- */

static int sock_open(struct mnl_socket **out, unsigned group)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int one = 1, rcv = 16 << 20;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	if (group && mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
		goto err;
	/* Acks without the original message, errors with the offending attribute's offset. */
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	*out = nl;
	return 0;
err:
	one = -errno;
	mnl_socket_close(nl);
	return one;
}

int nfsock_open(unsigned group, struct nfsock **out)
{
	struct nfsock *s = calloc(1, sizeof(*s));
	int ret = s ? sock_open(&s->nl, group) : -ENOMEM;

	if (ret) {
		free(s);
		return ret;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = time(NULL);
	*out = s;
	return 0;
}

void nfsock_close(struct nfsock *s)
{
	if (!s)
		return;
	mnl_socket_close(s->nl);
	free(s);
}

int nfsock_fd(const struct nfsock *s)
{
	return mnl_socket_get_fd(s->nl);
}

static int count_cb(const struct nlmsghdr *nlh, void *data)
{
	size_t *n = data;
	const struct nlattr *a, *e;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWRULE) {
		(*n)++;
		return MNL_CB_OK;
	}
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			mnl_attr_for_each_nested(e, a)
				(*n)++;
	return MNL_CB_OK;
}

/* Count the rules of a table (set == NULL) or the elements of one set. */
int nfsock_dump_count(struct nfsock *ctx, enum tbl t, const char *set, size_t *n)
{
	uint16_t type = set ? NFT_MSG_GETSETELEM : NFT_MSG_GETRULE;
	struct nlmsghdr *nlh;
	uint32_t seq = ctx->seq++;
	ssize_t len;
	int ret;

	*n = 0;
	nlh = nftnl_nlmsg_build_hdr(ctx->buf, type, tbls[t].family, NLM_F_DUMP, seq);
	mnl_attr_put_strz(nlh, set ? NFTA_SET_ELEM_LIST_TABLE : NFTA_RULE_TABLE, NFT_TABLE_NAME);
	if (set)
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = mnl_socket_recvfrom(ctx->nl, ctx->buf, sizeof(ctx->buf));
		if (len < 0)
			return -errno;
		ret = mnl_cb_run(ctx->buf, len, seq, ctx->portid, count_cb, n);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}


static int counter_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_obj *o = nftnl_obj_alloc();

	if (!o)
		return MNL_CB_ERROR;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 && nftnl_obj_is_set(o, NFTNL_OBJ_CTR_PKTS))
		*(uint64_t *)data = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

int nfsock_counter_get(struct nfsock *ctx, enum tbl t, const char *name, uint64_t *pkts)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;
	uint32_t seq = ctx->seq++;
	ssize_t len;
	int ret;

	if (!o)
		return -ENOMEM;
	*pkts = 0;
	nlh = nftnl_nlmsg_build_hdr(ctx->buf, NFT_MSG_GETOBJ, tbls[t].family, NLM_F_ACK, seq);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, NFT_TABLE_NAME);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = mnl_socket_recvfrom(ctx->nl, ctx->buf, sizeof(ctx->buf));
		if (len < 0)
			return -errno;
		ret = mnl_cb_run(ctx->buf, len, seq, ctx->portid, counter_cb, pkts);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}
