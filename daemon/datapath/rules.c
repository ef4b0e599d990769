/*
 * The ruleset's rules, built with libnftnl expression by expression, the way nft itself
 * writes them so that `nft list ruleset` reads them back. rules.h says what each adds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "batch.h"
#include "rules.h"

/* A rule under construction; helpers do nothing once err is set. */
struct rb {
	struct nftnl_rule *r;
	int err;
	enum tbl t;
	char chain[32];
};

static struct nftnl_expr *rb_expr(struct rb *rb, const char *name)
{
	struct nftnl_expr *e;

	if (rb->err)
		return NULL;
	e = nftnl_expr_alloc(name);
	if (!e) {
		rb->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(rb->r, e);
	return e;
}

static void x_meta(struct rb *rb, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
}

static void x_payload(struct rb *rb, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
}

static void x_cmp(struct rb *rb, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = rb_expr(rb, "cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

static void x_cmp8(struct rb *rb, uint32_t sreg, uint32_t op, uint8_t v)
{
	x_cmp(rb, sreg, op, &v, 1);
}

static void x_bitwise(struct rb *rb, uint32_t reg, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = rb_expr(rb, "bitwise");
	static const uint8_t zero[16];

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
}

/*
 * dreg < 0: a plain membership test (inv: not a member). The set is found by name, also
 * when the same batch creates it.
 */
static void x_lookup_named(struct rb *rb, const char *set, uint32_t sreg, int dreg, bool inv)
{
	struct nftnl_expr *e = rb_expr(rb, "lookup");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
		if (dreg >= 0)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
		if (inv)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	}
}

static void x_verdict(struct rb *rb, int verdict, const char *chain)
{
	struct nftnl_expr *e = rb_expr(rb, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
}

static void x_counter(struct rb *rb)
{
	rb_expr(rb, "counter");
}

static void x_log(struct rb *rb, const char *prefix, uint16_t group)
{
	struct nftnl_expr *e = rb_expr(rb, "log");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
		nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, group);
		/* headers are all the flow table reads: IPv6 with options, and the ports */
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, NFT_LOG_SNAPLEN);
	}
}

static void x_lookup(struct rb *rb, enum set_id s, uint32_t sreg, int dreg, bool inv)
{
	x_lookup_named(rb, sets[s].name, sreg, dreg, inv);
}

/* ct state & mask != 0 */
static void x_ctstate(struct rb *rb, uint32_t mask)
{
	struct nftnl_expr *e = rb_expr(rb, "ct");
	uint32_t zero = 0;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	x_bitwise(rb, NFT_REG_1, &mask, 4);
	x_cmp(rb, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

/* ct mark set <reg> */
static void x_ctmark_set(struct rb *rb, uint32_t sreg)
{
	struct nftnl_expr *e = rb_expr(rb, "ct");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, sreg);
	}
}

/* ct mark into <reg> */
static void x_ctmark_get(struct rb *rb, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "ct");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	}
}

static void x_nfproto(struct rb *rb, uint8_t nfproto)
{
	x_meta(rb, NFT_META_NFPROTO, NFT_REG_1);
	x_cmp8(rb, NFT_REG_1, NFT_CMP_EQ, nfproto);
}

static void x_ethertype(struct rb *rb, uint16_t type)
{
	uint16_t be = htons(type);

	x_payload(rb, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
	x_cmp(rb, NFT_REG_1, NFT_CMP_EQ, &be, 2);
}

static void x_l4proto(struct rb *rb, uint8_t proto)
{
	x_meta(rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp8(rb, NFT_REG_1, NFT_CMP_EQ, proto);
}

static struct rb rule_start_in(enum tbl t, const char *chain)
{
	struct rb rb = { nftnl_rule_alloc(), 0, t, "" };

	snprintf(rb.chain, sizeof(rb.chain), "%s", chain);
	if (!rb.r) {
		rb.err = -ENOMEM;
		return rb;
	}
	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, tbls[t].family);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, chain);
	return rb;
}

static struct rb rule_start(enum chain_id c)
{
	return rule_start_in(chains[c].t, chains[c].name);
}

static void rule_end(struct batch *bt, struct rb *rb, const char *what)
{
	struct nlmsghdr *nlh;

	if (!rb->err && !bt->err) {
		nlh = batch_hdr(bt, NFT_MSG_NEWRULE, rb->t, NLM_F_CREATE | NLM_F_APPEND);
		nftnl_rule_nlmsg_build_payload(nlh, rb->r);
		batch_commit(bt, nlh, "add rule %s moat %s (%s)", tbls[rb->t].fname, rb->chain,
			     what);
		bt->nrules[rb->t]++;
	}
	if (rb->err && !bt->err)
		bt->err = rb->err;
	if (rb->r)
		nftnl_rule_free(rb->r);
}

/* The conntrack bits of `ct state` (NF_CT_STATE_BIT). */
#define CT_INVALID 1u
#define CT_ESTABLISHED 2u
#define CT_RELATED 4u
#define CT_NEW 8u

/* Per family: where the addresses are and which maps hold them. */
struct fam {
	uint8_t nfproto, alen;
	uint32_t saddr, daddr;		/* network header offsets */
	enum set_id ep, net, managed;
	const char *name;
};

static const struct fam fams[2] = {
	{ NFPROTO_IPV4, 4, 12, 16, S_EP4, S_NET4, S_MANAGED4, "ip" },
	{ NFPROTO_IPV6, 16, 8, 24, S_EP6, S_NET6, S_MANAGED6, "ip6" },
};

static void x_allow(struct rb *rb, enum set_id s, uint32_t owner, bool from, bool vmap);

/* "Self" is the endpoint whose isolation a direction checks; the peer is the other end. */
static uint32_t self_off(const struct fam *f, bool egress)
{
	return egress ? f->saddr : f->daddr;
}

/*
 * The connection-start log: one NFLOG record per connection start that passed, a packet in
 * conntrack state `state` (NEW; ESTABLISHED in chain reopened), when one end is an endpoint
 * (so the node's own traffic is not logged). Accept ends this chain only.
 */
static void rules_pass_log(struct batch *bt, enum chain_id c, uint16_t group, uint32_t state)
{
	for (int f = 0; f < 2; f++)
		for (int egress = 0; egress < 2; egress++) {
			struct rb rb = rule_start(c);
			char what[32];

			x_nfproto(&rb, fams[f].nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(&fams[f], egress),
				  fams[f].alen, NFT_REG_1);
			x_lookup(&rb, fams[f].ep, NFT_REG_1, -1, false);
			x_ctstate(&rb, state);
			x_log(&rb, NFT_PREFIX_PASS, group);
			x_verdict(&rb, NF_ACCEPT, NULL);
			snprintf(what, sizeof(what), "log %s %s", fams[f].name,
				 egress ? "saddr" : "daddr");
			rule_end(bt, &rb, what);
		}
}

/*
 * Established packets pass, first. A TCP SYN that conntrack calls established reuses the
 * addresses and ports of a connection it still tracks, one that was not seen to close or
 * whose last packet came from the other end: conntrack then lets the new connection ride on
 * the old entry, never NEW. It is a new connection all the same, and chain reopened records
 * it (a SYN sent again after the SYN-ACK was lost is recorded twice). The common packet
 * pays one look at byte 13 of its transport header, TCP's flags: another protocol's byte
 * there is read too, and when its SYN bit happens to be set the last rule passes it (the
 * reopened rule asks for TCP).
 */
static void rules_established(struct batch *bt, enum chain_id c)
{
	static const uint8_t syn = 0x02, syn_ack = 0x12, zero = 0;
	struct rb rb = rule_start(c);

	x_ctstate(&rb, CT_ESTABLISHED);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
	x_bitwise(&rb, NFT_REG_1, &syn, 1);
	x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &zero, 1);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, &rb, "ct state established, no SYN bit at th byte 13");
	rb = rule_start(c);
	x_ctstate(&rb, CT_ESTABLISHED);
	x_l4proto(&rb, IPPROTO_TCP);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
	x_bitwise(&rb, NFT_REG_1, &syn_ack, 1);
	x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &syn, 1);
	x_verdict(&rb, NFT_GOTO, chains[C_REOPENED].name);
	rule_end(bt, &rb, "ct state established, tcp flags syn / syn,ack");
	rb = rule_start(c);
	x_ctstate(&rb, CT_ESTABLISHED);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, &rb, "ct state established");
}

/*
 * Chain related, where the base chains send RELATED packets (one rule there, so that a new
 * connection's first packet, the one that costs most, meets one rule for RELATED before the
 * policy, not seven). ICMP errors are RELATED to the connection they quote, and conntrack
 * does not ask who sent them: an endpoint that learnt another connection's addresses and
 * ports could make its ends give up (or shrink their MTU). From an endpoint, an error passes
 * only when the sender is one end of the connection it quotes: (saddr . ct original saddr or
 * daddr) in self4/6, which holds (a . a) for every endpoint address. Routers (not endpoints)
 * still report. The rest of what is related passes.
 */
static void rules_related(struct batch *bt)
{
	const enum chain_id c = C_RELATED;
	static const uint32_t ct_keys[2][2] = {
		{ NFT_CT_SRC_IP, NFT_CT_DST_IP }, { NFT_CT_SRC_IP6, NFT_CT_DST_IP6 },
	};
	struct rb rb;

	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		enum set_id self = i ? S_SELF6 : S_SELF4;

		for (int k = 0; k < 2; k++) {
			struct nftnl_expr *e;

			rb = rule_start(c);
			x_nfproto(&rb, f->nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr, f->alen, NFT_REG32_00);
			e = rb_expr(&rb, "ct");
			if (e) {
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, ct_keys[i][k]);
				nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
				nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG32_00 + f->alen / 4);
			}
			x_lookup(&rb, self, NFT_REG32_00, -1, false);
			x_verdict(&rb, NF_ACCEPT, NULL);
			rule_end(bt, &rb, k ? "related, from the connection's destination"
					    : "related, from the connection's source");
		}
		rb = rule_start(c);
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr, f->alen, NFT_REG_1);
		x_lookup(&rb, f->ep, NFT_REG_1, -1, false);
		x_counter(&rb);
		x_verdict(&rb, NF_DROP, NULL);
		rule_end(bt, &rb, "related, from an endpoint not party to the connection");
	}
	rb = rule_start(c);
	x_verdict(&rb, NF_ACCEPT, NULL);
	rule_end(bt, &rb, "related, the rest");
}

/* meta l4proto . th dport into registers 0 and 1, looked up in s (inv: not in it). */
static void x_port_in(struct rb *rb, enum set_id s, bool inv)
{
	x_meta(rb, NFT_META_L4PROTO, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
	x_lookup(rb, s, NFT_REG32_00, -1, inv);
}

/*
 * A new connection to the node: to a port it publishes for an endpoint, it is decided in
 * chain published as the client to that endpoint; under host_policy, an endpoint reaches
 * nothing else of the node (its services: sshd, metrics, the runtime's API over TCP).
 */
static void rules_input_node(struct batch *bt, bool host_policy)
{
	struct rb rb = rule_start(C_INPUT);

	x_port_in(&rb, S_PUBLISHED, false);
	x_verdict(&rb, NFT_JUMP, chains[C_PUBLISHED].name);
	rule_end(bt, &rb, "meta l4proto . th dport @published jump published");
	for (int f = 0; host_policy && f < 2; f++) {
		rb = rule_start(C_INPUT);
		x_nfproto(&rb, fams[f].nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, fams[f].saddr, fams[f].alen, NFT_REG_1);
		x_lookup(&rb, fams[f].ep, NFT_REG_1, -1, false);
		x_port_in(&rb, S_PUBLISHED, true);
		x_verdict(&rb, NFT_JUMP, chains[C_DENY_IN].name);
		rule_end(bt, &rb, "an endpoint to the node, not a published port");
	}
}

/*
 * Chain published: a connection to a port the node publishes for an endpoint is decided as
 * the client (its identity, as for any ingress) to that endpoint on its own port: what the
 * Admin tier's first matching rule says; where no NetworkPolicy isolates the endpoint, what
 * the Baseline tier's says, else it passes; where one does, its lists, monitor mode counts
 * and passes, or deny. One lookup per step, whatever the number of ports and endpoints
 * (elements.h: published ports).
 */
static void rules_published(struct batch *bt)
{
	static const struct { enum set_id s; const char *what; } pass[] = {
		{ S_PUB_OPEN, "to an endpoint not isolated" },
		{ S_PUB_ANY, "what the endpoint lets in from anyone" },
	};
	enum chain_id c = C_PUBLISHED;
	struct rb rb = rule_start(c);

	x_verdict(&rb, NFT_JUMP, chains[C_PEER_SRC].name);
	rule_end(bt, &rb, "the client's identity");
	rb = rule_start(c);
	x_allow(&rb, S_PUB_ADMIN, 0, true, true);
	rule_end(bt, &rb, "ct mark . meta l4proto . th dport vmap @pub_admin");
	rb = rule_start(c);
	x_port_in(&rb, S_PUB_OPEN, false);
	x_allow(&rb, S_PUB_BASE, 0, true, true);
	rule_end(bt, &rb, "meta l4proto . th dport @pub_open ct mark . meta l4proto . th dport "
			  "vmap @pub_base");
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		rb = rule_start(c);
		x_port_in(&rb, pass[i].s, false);
		x_verdict(&rb, NFT_RETURN, NULL);
		rule_end(bt, &rb, pass[i].what);
	}
	rb = rule_start(c);
	x_allow(&rb, S_PUB_FROM, 0, true, false);
	rule_end(bt, &rb, "ct mark . meta l4proto . th dport @pub_from");
	rb = rule_start(c);
	x_port_in(&rb, S_PUB_MON, false);
	x_counter(&rb);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "monitor");
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, chains[C_DENY_IN].name);
	rule_end(bt, &rb, "deny");
}

/*
 * Base chain preamble. Neighbour discovery and MLD are untracked by conntrack, so they would
 * meet the policy chains as new packets and break IPv6 between isolated containers; they are
 * link-local by design, and the hop limit proves it (255 for ND, 1 for MLD: a routed packet
 * arrives with at most 254).
 */
static void rules_base(struct batch *bt, enum chain_id c, uint16_t group, bool host_policy)
{
	static const struct { uint8_t lo, hi, hoplimit; const char *what; } icmp6[] = {
		{ 133, 137, 255, "neighbour discovery" },
		{ 130, 132, 1, "MLD" },
		{ 143, 143, 1, "MLDv2 report" },
	};
	struct rb rb;

	if (c == C_INPUT || c == C_OUTPUT) {
		uint32_t lo = 1;	/* loopback is ifindex 1 in every namespace */

		rb = rule_start(c);
		x_meta(&rb, c == C_INPUT ? NFT_META_IIF : NFT_META_OIF, NFT_REG_1);
		x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &lo, 4);
		x_verdict(&rb, NF_ACCEPT, NULL);
		rule_end(bt, &rb, "the node's own traffic");
	}
	rules_established(bt, c);
	rb = rule_start(c);
	x_ctstate(&rb, CT_RELATED);
	x_verdict(&rb, NFT_GOTO, chains[C_RELATED].name);
	rule_end(bt, &rb, "ct state related");
	if (c != C_OUTPUT) {	/* what the node sends is the node's business */
		rb = rule_start(c);
		x_ctstate(&rb, CT_INVALID);
		x_verdict(&rb, NF_DROP, NULL);
		rule_end(bt, &rb, "ct state invalid");
	}
	for (size_t i = 0; i < sizeof(icmp6) / sizeof(icmp6[0]); i++) {
		rb = rule_start(c);
		x_nfproto(&rb, NFPROTO_IPV6);
		x_l4proto(&rb, IPPROTO_ICMPV6);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_GTE, icmp6[i].lo);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_LTE, icmp6[i].hi);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 7, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, icmp6[i].hoplimit);
		x_verdict(&rb, NF_ACCEPT, NULL);
		rule_end(bt, &rb, icmp6[i].what);
	}
	if (c == C_FORWARD || c == C_OUTPUT) {
		rb = rule_start(c);
		x_verdict(&rb, NFT_JUMP, "ingress");
		rule_end(bt, &rb, "jump ingress");
	}
	if (c != C_OUTPUT) {	/* the node is no endpoint: no egress of its own */
		rb = rule_start(c);
		x_verdict(&rb, NFT_JUMP, "egress");
		rule_end(bt, &rb, "jump egress");
	}
	if (c == C_INPUT)
		rules_input_node(bt, host_policy);
	rules_pass_log(bt, c, group, CT_NEW);
}

/*
 * Chains ingress and egress: the address of the endpoint whose isolation this direction
 * checks goes to its identity's chain when isolated, and returns when not; what is left of
 * a managed subnet is an unknown address and fails closed, before any ipBlock allow that
 * covers the subnet could let it through. Endpoints first, so that a new connection between
 * endpoints costs two lookups of their own maps here, not an interval lookup besides.
 */
static void rules_dir(struct batch *bt, enum chain_id c, bool egress)
{
	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		char what[64];
		struct rb rb = rule_start(c);

		/* the identity through the connection's mark, as nft can list it (it cannot
		 * list a map lookup that keys a verdict map directly) */
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(f, egress), f->alen, NFT_REG_1);
		x_lookup(&rb, f->ep, NFT_REG_1, NFT_REG_1, false);
		x_ctmark_set(&rb, NFT_REG_1);
		x_ctmark_get(&rb, NFT_REG_1);
		x_lookup(&rb, egress ? S_OUT_IDS : S_IN_IDS, NFT_REG_1, NFT_REG_VERDICT, false);
		snprintf(what, sizeof(what), "%s: ct mark set map @%s, ct mark vmap @%s", f->name,
			 sets[f->ep].name, sets[egress ? S_OUT_IDS : S_IN_IDS].name);
		rule_end(bt, &rb, what);

		rb = rule_start(c);
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(f, egress), f->alen, NFT_REG_1);
		x_lookup(&rb, f->ep, NFT_REG_1, -1, false);
		x_verdict(&rb, NFT_RETURN, NULL);
		snprintf(what, sizeof(what), "%s: an endpoint not isolated", f->name);
		rule_end(bt, &rb, what);

		rb = rule_start(c);
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, self_off(f, egress), f->alen, NFT_REG_1);
		x_lookup(&rb, f->managed, NFT_REG_1, -1, false);
		x_verdict(&rb, NFT_JUMP, "unknown");
		snprintf(what, sizeof(what), "%s: unknown address in a managed subnet", f->name);
		rule_end(bt, &rb, what);
	}
}

/*
 * Chains peer_src and peer_dst: the peer's identity into the connection's mark, the one
 * scratch register that `nft list` can show in a concatenation (a lookup result cannot be).
 * An endpoint's exact address first (and done); the net map covers every other address.
 */
static void rules_peer(struct batch *bt, enum chain_id c, bool src)
{
	for (int i = 0; i < 2; i++)
		for (int net = 0; net < 2; net++) {
			const struct fam *f = &fams[i];
			struct rb rb = rule_start(c);
			char what[64];

			x_nfproto(&rb, f->nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, src ? f->saddr : f->daddr,
				  f->alen, NFT_REG_1);
			x_lookup(&rb, net ? f->net : f->ep, NFT_REG_1, NFT_REG_1, false);
			x_ctmark_set(&rb, NFT_REG_1);
			if (!net)
				x_verdict(&rb, NFT_RETURN, NULL);
			snprintf(what, sizeof(what), "ct mark set %s map @%s%s", f->name,
				 sets[net ? f->net : f->ep].name, net ? "" : ", return");
			rule_end(bt, &rb, what);
		}
}

static void rule_log(struct batch *bt, enum chain_id c, const char *prefix, uint16_t group,
		     int verdict)
{
	struct rb rb = rule_start(c);

	x_counter(&rb);
	if (prefix)
		x_log(&rb, prefix, group);
	if (verdict != NFT_CONTINUE)
		x_verdict(&rb, verdict, NULL);
	rule_end(bt, &rb, prefix ? prefix : "counter");
}

/* ---- egress by DNS name (ruleset.h) ---- */

/*
 * queue num N bypass, through x_tables' NFQUEUE target (revision 3): kernels without
 * nft_queue (CONFIG_NFT_QUEUE) have it through nft_compat, as iptables-nft writes it; nft
 * lists it as the native statement. libnftnl keeps the info it is given (and frees it).
 */
static void x_queue(struct rb *rb, uint16_t num)
{
	struct nftnl_expr *e = rb_expr(rb, "target");
	struct xt_NFQ_info_v3 *info = e ? calloc(1, sizeof(*info)) : NULL;

	if (e && !info)
		rb->err = -ENOMEM;
	if (!info)
		return;
	*info = (struct xt_NFQ_info_v3){ .queuenum = num, .queues_total = 1,
					 .flags = NFQ_FLAG_BYPASS };
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, sizeof(*info));
}

/*
 * DNS replies (UDP or TCP from port 53) to an endpoint go to moatd's queue first, so that it
 * learns an answer before the endpoint reads it; established, so before chain forward lets
 * them through. bypass: while no moatd reads the queue they pass, unlearnt.
 */
static void rules_dns_queue(struct batch *bt, const struct ruleset_input *in)
{
	static const uint8_t protos[] = { IPPROTO_UDP, IPPROTO_TCP };
	uint16_t sport = htons(53);

	for (int i = 0; i < 2; i++)
		for (int p = 0; p < 2; p++) {
			const struct fam *f = &fams[i];
			struct rb rb = rule_start(C_FORWARD);
			char what[64];

			x_nfproto(&rb, f->nfproto);
			x_l4proto(&rb, protos[p]);
			x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, NFT_REG_1);
			x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &sport, 2);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->daddr, f->alen, NFT_REG_1);
			x_lookup(&rb, f->ep, NFT_REG_1, -1, false);
			x_queue(&rb, in->dns_queue);
			snprintf(what, sizeof(what), "%s: DNS replies to endpoints to queue %u", f->name,
				 in->dns_queue);
			rule_end(bt, &rb, what);
		}
}

/*
 * Chain dns_<t><k> (dns_a<k>, or with deny dns_<t><k>_deny): a connection whose (source .
 * destination . protocol . port) the source resolved through one of its tier's first k rules
 * with domain names is allowed (chain passed); else back to the identity chain (Admin: on to
 * NetworkPolicy), or deny.
 */
static void rules_dns_chain(struct batch *bt, int tier, uint32_t k, bool deny)
{
	static const enum set_id set[2][2] = { { S_DNS4_A, S_DNS6_A }, { S_DNS4_B, S_DNS6_B } };
	char chain[32], name[32];
	struct rb rb;

	snprintf(chain, sizeof(chain), "dns_%c%u%s", tier ? 'b' : 'a', k, deny ? "_deny" : "");
	batch_chain(bt, T_INET, chain, -1, 0, false);
	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		uint32_t r = NFT_REG32_00 + 2 * f->alen / 4;

		rb = rule_start_in(T_INET, chain);
		x_nfproto(&rb, f->nfproto);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr, f->alen, NFT_REG32_00);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, f->daddr, f->alen,
			  NFT_REG32_00 + f->alen / 4);
		x_meta(&rb, NFT_META_L4PROTO, r);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r + 1);
		x_lookup_named(&rb, schema_set_name(set[tier][i], k, name, sizeof(name)),
			       NFT_REG32_00, -1, false);
		x_verdict(&rb, NFT_GOTO, chains[C_PASSED].name);
		rule_end(bt, &rb, "saddr . daddr . meta l4proto . th dport, learnt");
	}
	if (!deny)
		return;
	rb = rule_start_in(T_INET, chain);
	x_verdict(&rb, NFT_GOTO, chains[C_DENY_OUT].name);
	rule_end(bt, &rb, "deny");
}

/* The sets and chains of each place k of each tier's rules with domain names. */
static void rules_dns(struct batch *bt, const struct ruleset_input *in)
{
	static const enum set_id set[2][2] = { { S_DNS4_A, S_DNS6_A }, { S_DNS4_B, S_DNS6_B } };

	for (int t = 0; t < 2; t++)
		for (uint32_t k = 1; k <= in->plan->ndomains[t]; k++) {
			batch_set(bt, set[t][0], k, false);
			batch_set(bt, set[t][1], k, false);
			if (t == 0)	/* in the Baseline tier nothing follows: no chain goes on */
				rules_dns_chain(bt, t, k, false);
			rules_dns_chain(bt, t, k, true);
		}
}

/* The drop log's limit: rate records a second, bursts of twice that. */
static struct nftnl_expr *limit_expr(uint32_t rate)
{
	struct nftnl_expr *e = nftnl_expr_alloc("limit");

	if (e) {
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, rate);
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, 1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, 2 * rate);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
	}
	return e;
}

/* limit rate RATE/second burst 2*RATE packets: the rule goes on while under it. */
static void x_limit(struct rb *rb, uint32_t rate)
{
	struct nftnl_expr *e;

	if (rb->err)
		return;
	e = limit_expr(rate);
	if (!e)
		rb->err = -ENOMEM;
	else
		nftnl_rule_add_expr(rb->r, e);
}

/* update @s { <reg> limit rate ... }: the same, with a bucket per key (a meter). */
static void x_meter(struct rb *rb, enum set_id s, uint32_t sreg, uint32_t rate)
{
	struct nftnl_expr *e = rb_expr(rb, "dynset"), *lim;

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, sets[s].name);
	lim = limit_expr(rate);
	if (!lim)
		rb->err = -ENOMEM;
	else
		nftnl_expr_set(e, NFTNL_EXPR_DYNSET_EXPR, lim, 0);
}

/* counter name "unlogged" */
static void x_unlogged(struct rb *rb)
{
	struct nftnl_expr *e = rb_expr(rb, "objref");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
		nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, UNLOGGED_COUNTER);
	}
}

/* Whose bucket a drop takes its log record from. */
enum log_key { LOG_BY_SADDR, LOG_BY_PORT, LOG_BY_NONE };

/*
 * A drop chain: counted, logged and dropped while the source's bucket lasts (its address in
 * limit4/limit6, its port in limit_ports, or one bucket for all), else counted in
 * "unlogged" and dropped. So a flood from one container costs the log rate, never the
 * records, flows or alerts of the others. rate 0: every drop is logged.
 */
static void rule_drop(struct batch *bt, enum chain_id c, const char *prefix, uint16_t group,
		      uint32_t rate, enum log_key key)
{
	for (int f = 0; rate && f < (key == LOG_BY_SADDR ? 2 : 1); f++) {
		struct rb rb = rule_start(c);

		if (key == LOG_BY_SADDR) {
			x_nfproto(&rb, fams[f].nfproto);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, fams[f].saddr, fams[f].alen,
				  NFT_REG_1);
			x_meter(&rb, f ? S_LIMIT6 : S_LIMIT4, NFT_REG_1, rate);
		} else if (key == LOG_BY_PORT) {
			x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
			x_meter(&rb, S_LIMIT_PORTS, NFT_REG_1, rate);
		} else {
			x_limit(&rb, rate);
		}
		x_counter(&rb);
		x_log(&rb, prefix, group);
		x_verdict(&rb, NF_DROP, NULL);
		rule_end(bt, &rb, prefix);
	}
	if (!rate) {
		rule_log(bt, c, prefix, group, NF_DROP);
		return;
	}
	struct rb rb = rule_start(c);

	x_unlogged(&rb);
	x_verdict(&rb, NF_DROP, NULL);
	rule_end(bt, &rb, "unlogged");
}

static void rules_inet(struct batch *bt, const struct ruleset_input *in)
{
	uint16_t g = in->nflog_group;

	bool host_policy = in->host_access == RULESET_HOST_POLICY;

	if (in->plan->ndomains[0] || in->plan->ndomains[1])
		rules_dns_queue(bt, in);
	rules_base(bt, C_FORWARD, g, host_policy);
	rules_base(bt, C_INPUT, g, host_policy);
	if (host_policy)
		rules_base(bt, C_OUTPUT, g, host_policy);
	rules_related(bt);
	rules_published(bt);
	rules_dir(bt, C_INGRESS, false);
	rules_dir(bt, C_EGRESS, true);
	rules_peer(bt, C_PEER_SRC, true);
	rules_peer(bt, C_PEER_DST, false);
	rule_drop(bt, C_DENY_IN, NFT_PREFIX_DROP_IN, g, in->log_rate, LOG_BY_SADDR);
	rule_drop(bt, C_DENY_OUT, NFT_PREFIX_DROP_OUT, g, in->log_rate, LOG_BY_SADDR);
	/* Violations pass: the connection-start log reports them (userspace tells them apart). */
	rule_log(bt, C_MON_IN, NULL, g, NFT_CONTINUE);
	rule_log(bt, C_MON_OUT, NULL, g, NFT_CONTINUE);
	if (in->mode == MOAT_MODE_MONITOR)
		rule_log(bt, C_UNKNOWN, NULL, g, NFT_CONTINUE);
	else	/* no endpoint's address: one bucket, which no endpoint's drops share */
		rule_drop(bt, C_UNKNOWN, NFT_PREFIX_DROP_UNKNOWN, g, in->log_rate, LOG_BY_NONE);
	/* an egress chain's way to allow from a chain it jumped to: what the base chains do */
	rules_pass_log(bt, C_PASSED, g, CT_NEW);
	rule_log(bt, C_PASSED, NULL, g, NF_ACCEPT);
	rules_pass_log(bt, C_REOPENED, g, CT_ESTABLISHED);
	rule_log(bt, C_REOPENED, NULL, g, NF_ACCEPT);
	rules_dns(bt, in);
}

/*
 * ct mark . meta l4proto . th dport (from = 1) or meta l4proto . th dport, looked up in a
 * per_ident set (then return: the direction is allowed) or, vmap, its verdict map.
 */
static void x_allow(struct rb *rb, enum set_id s, uint32_t owner, bool from, bool vmap)
{
	uint32_t r = NFT_REG32_00;
	char name[32];

	if (from) {
		struct nftnl_expr *e = rb_expr(rb, "ct");

		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, r);
		}
		e = rb_expr(rb, "byteorder");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, r);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, r);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, 4);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, 4);
		}
		r++;
	}
	x_meta(rb, NFT_META_L4PROTO, r);
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r + 1);
	x_lookup_named(rb, schema_set_name(s, owner, name, sizeof(name)), NFT_REG32_00,
		       vmap ? NFT_REG_VERDICT : -1, false);
	if (!vmap)
		x_verdict(rb, NFT_RETURN, NULL);
}

/*
 * An identity chain, in the order of the tiers (include/moat/plan.h): the peer's identity
 * into the mark; the Admin tier's verdict map (return: allowed; goto deny; no element: on);
 * where NetworkPolicy isolates, its two sets, else deny (or, monitor, count and pass); where
 * it does not, the Baseline tier's verdict map. The chain's end returns: allowed.
 */
void rules_owner_add(struct batch *bt, const struct owner *o)
{
	enum set_id v[OWNER_SETS_MAX];
	size_t n = owner_sets(o, v);
	char chain[32];
	struct rb rb;

	snprintf(chain, sizeof(chain), o->egress ? "out_%u" : "in_%u", o->id);
	for (size_t k = 0; k < n; k++)
		batch_set(bt, v[k], o->id, false);
	batch_chain(bt, T_INET, chain, -1, 0, false);
	rb = rule_start_in(T_INET, chain);
	x_verdict(&rb, NFT_JUMP, chains[o->egress ? C_PEER_DST : C_PEER_SRC].name);
	rule_end(bt, &rb, "the peer's identity");
	for (size_t k = 0; k < n; k++) {
		bool any = v[k] == S_IN_ANY || v[k] == S_OUT_ANY;

		rb = rule_start_in(T_INET, chain);
		x_allow(&rb, v[k], o->id, !any, sets[v[k]].fmt == F_TIER);
		rule_end(bt, &rb, any ? "meta l4proto . th dport" : "ct mark . meta l4proto . th dport");
	}
	if (!(o->shape & OWNER_ISO))
		return;
	rb = rule_start_in(T_INET, chain);
	x_verdict(&rb, NFT_JUMP, chains[o->shape & OWNER_MONITOR ?
					(o->egress ? C_MON_OUT : C_MON_IN) :
					(o->egress ? C_DENY_OUT : C_DENY_IN)].name);
	rule_end(bt, &rb, o->shape & OWNER_MONITOR ? "monitor" : "deny");
}

size_t rules_owner_count(const struct owner *o)
{
	enum set_id v[OWNER_SETS_MAX];

	return 1 + owner_sets(o, v) + !!(o->shape & OWNER_ISO);
}

void rules_owner_del(struct batch *bt, const struct owner *o)
{
	enum set_id v[OWNER_SETS_MAX];
	size_t n = owner_sets(o, v);
	char chain[32];

	snprintf(chain, sizeof(chain), o->egress ? "out_%u" : "in_%u", o->id);
	batch_chain(bt, T_INET, chain, -1, 0, true);
	for (size_t k = 0; k < n; k++)
		batch_set(bt, v[k], o->id, true);
}

/*
 * iifname (or oifname: port is NFT_META_OIFNAME) . <addr at off> in set s, then return: the
 * name fills registers 0-3, the address follows.
 */
static void x_port_addr_in(struct rb *rb, uint32_t port, uint32_t off, uint32_t len,
			   enum set_id s)
{
	x_meta(rb, port, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG32_04);
	x_lookup(rb, s, NFT_REG32_00, -1, false);
	x_verdict(rb, NFT_RETURN, NULL);
}

static void x_port_addr(struct rb *rb, uint32_t off, uint32_t len, enum set_id s)
{
	x_port_addr_in(rb, NFT_META_IIFNAME, off, len, s);
}

/* iifname . ether saddr . <addr at off> in set s, then return (registers 0-3, 4-5, 6-). */
static void x_port_mac_addr(struct rb *rb, uint32_t off, uint32_t len, enum set_id s)
{
	x_meta(rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG32_04);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG32_06);
	x_lookup(rb, s, NFT_REG32_00, -1, false);
	x_verdict(rb, NFT_RETURN, NULL);
}

/* ARP for Ethernet and IPv4: htype 1, ptype 0x0800, hlen 6, plen 4. */
static void x_arp_ether_ip(struct rb *rb)
{
	static const uint8_t hdr[6] = { 0, 1, 8, 0, 6, 4 };

	x_ethertype(rb, 0x0806);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, 0, 6, NFT_REG_1);
	x_cmp(rb, NFT_REG_1, NFT_CMP_EQ, hdr, 6);
}

static void rules_bridge_nd(struct batch *bt, enum chain_id c)
{
	static const uint8_t ll_mask[16] = { 0xff, 0xc0 }, ll[16] = { 0xfe, 0x80 }, any[16];
	struct rb rb;

	/*
	 * A neighbour advertisement may announce only the sender's own addresses, or else one
	 * container could make another send it a third's traffic. Link-local targets cannot be
	 * checked (runtimes do not report them); the destination check in chain forward stops
	 * what such a lie would divert.
	 */
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, 136);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_2);
	x_bitwise(&rb, NFT_REG_2, ll_mask, 16);
	x_cmp(&rb, NFT_REG_2, NFT_CMP_NEQ, ll, 16);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG32_04);
	x_lookup(&rb, S_ND_TARGETS, NFT_REG32_00, -1, true);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "neighbour advertisement for an address not the sender's");
	for (int i = 0; i < 2; i++) {
		rb = rule_start(c);
		x_ethertype(&rb, 0x86dd);
		x_l4proto(&rb, IPPROTO_ICMPV6);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_1);
		if (!i)
			x_bitwise(&rb, NFT_REG_1, ll_mask, 16);
		x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, i ? any : ll, 16);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_2);
		x_lookup(&rb, S_ND_TYPES, NFT_REG_2, -1, false);
		x_verdict(&rb, NFT_RETURN, NULL);
		rule_end(bt, &rb, i ? "ND from ::" : "ND from fe80::/10");
	}
}

/*
 * The mirror of anti-spoofing, for frames the bridge forwards to a container's veth: the IP
 * destination must be that container's own address. So a bridge whose forwarding database
 * was taught another's MAC, or a neighbour cache poisoned with a link-local lie, delivers
 * nothing to the wrong container; and an ingress-isolated container gets no broadcast,
 * multicast or link-local traffic, which its policies (about its addresses) never allow.
 * ARP, neighbour discovery and MLD pass: the prerouting chain vetted them.
 */
static void rules_bridge_forward(struct batch *bt, const struct ruleset_input *in)
{
	static const uint8_t group[6] = { 1 }, ll_mask[16] = { 0xff, 0xc0 }, ll[16] = { 0xfe, 0x80 };
	enum chain_id c = C_BR_FORWARD;
	struct rb rb;

	/* First, as most frames are that: the rules before them would return for none of these. */
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_addr_in(&rb, NFT_META_OIFNAME, 16, 4, S_SRC4);
	rule_end(bt, &rb, "oifname . ip daddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_port_addr_in(&rb, NFT_META_OIFNAME, 24, 16, S_SRC6);
	rule_end(bt, &rb, "oifname . ip6 daddr");
	rb = rule_start(c);
	x_meta(&rb, NFT_META_OIFNAME, NFT_REG_1);
	x_lookup(&rb, S_PORTS, NFT_REG_1, -1, true);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "not to a managed port");
	rb = rule_start(c);
	x_ethertype(&rb, 0x0806);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "ARP");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_2);
	x_lookup(&rb, S_ND_TYPES, NFT_REG_2, -1, false);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "neighbour discovery and MLD");
	for (int i = 0; i < 2; i++) {
		rb = rule_start(c);
		x_meta(&rb, NFT_META_OIFNAME, NFT_REG_1);
		x_lookup(&rb, S_ISO_PORTS, NFT_REG_1, -1, true);
		if (i) {
			x_ethertype(&rb, 0x86dd);
			x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, NFT_REG_2);
			x_bitwise(&rb, NFT_REG_2, ll_mask, 16);
			x_cmp(&rb, NFT_REG_2, NFT_CMP_EQ, ll, 16);
		} else {
			x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 0, 6, NFT_REG_2);
			x_bitwise(&rb, NFT_REG_2, group, 6);
			x_cmp(&rb, NFT_REG_2, NFT_CMP_EQ, group, 6);
		}
		x_verdict(&rb, NFT_RETURN, NULL);
		rule_end(bt, &rb, i ? "link-local to an open container" : "group address to an open container");
	}
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "misdirected");
	rule_end(bt, &rb, "not the container's own address");
	rule_drop(bt, C_MISDIRECTED, NFT_PREFIX_DROP_IN, in->nflog_group, in->log_rate,
		  LOG_BY_PORT);
}

/* The sets of one owner's addresses: IPv4, IPv6, IPv6 as the raw ND target field reads. */
struct claim_sets {
	enum set_id v4, v6, nd;
	const char *whose;		/* "an endpoint", "the node": for error messages */
};

/* In chain c, jump spoof for a frame that claims one of cs's addresses: as IPv4 or IPv6
 * source, as ARP sender, as a neighbour advertisement's target. */
static void rules_claims(struct batch *bt, enum chain_id c, const struct claim_sets *cs)
{
	const struct { uint16_t ethertype; uint32_t off, len; enum set_id s; const char *what; }
	claims[] = {
		{ 0x0800, 12, 4, cs->v4, "ip saddr of" },
		{ 0x86dd, 8, 16, cs->v6, "ip6 saddr of" },
		{ 0x0806, 14, 4, cs->v4, "arp saddr ip of" },
	};
	char what[96];
	struct rb rb;

	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		rb = rule_start(c);
		if (claims[i].ethertype == 0x0806)
			x_arp_ether_ip(&rb);
		else
			x_ethertype(&rb, claims[i].ethertype);
		x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, claims[i].off, claims[i].len, NFT_REG_1);
		x_lookup(&rb, claims[i].s, NFT_REG_1, -1, false);
		x_verdict(&rb, NFT_JUMP, "spoof");
		snprintf(what, sizeof(what), "%s %s", claims[i].what, cs->whose);
		rule_end(bt, &rb, what);
	}
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_l4proto(&rb, IPPROTO_ICMPV6);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, 136);
	x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_1);
	x_lookup(&rb, cs->nd, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	snprintf(what, sizeof(what), "neighbour advertisement for %s's address", cs->whose);
	rule_end(bt, &rb, what);
}

/*
 * A port moatd does not know (a container started while moatd was down or before its event
 * was handled, or no container at all) may not claim what a known endpoint owns: its MAC,
 * its addresses as source, in ARP or in a neighbour advertisement. Else a container that
 * Docker gave a departed endpoint's address would inherit that endpoint's identity and
 * policies, or poison the bridge and the neighbours to intercept a known endpoint's traffic.
 * Anything else passes: frames of bridges that are not Docker's are none of moatd's business,
 * and the inet table drops a stranger's traffic on a managed subnet (chain unknown).
 */
static void rules_bridge_stranger(struct batch *bt)
{
	static const struct claim_sets endpoints = { S_ADDRS4, S_ADDRS6, S_ND_ADDRS, "an endpoint" };
	struct rb rb = rule_start(C_STRANGER);

	x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_1);
	x_lookup(&rb, S_ETHERS, NFT_REG_1, -1, false);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "ether saddr of an endpoint");
	rules_claims(bt, C_STRANGER, &endpoints);
}

/*
 * What no port may do, known or not (a stranger too): speak for the node, whose addresses
 * are the bridges' gateways (as source, so no ICMP error or redirect comes "from the
 * gateway"; in ARP, gratuitous or not; as a neighbour advertisement's target, link-local
 * included), or advertise routes and redirect. Else any container could make its neighbours
 * send it what they send to the gateway.
 */
static void rules_bridge_claims(struct batch *bt)
{
	static const struct { uint16_t ethertype; uint8_t proto, type; const char *what; } icmp[] = {
		{ 0x86dd, IPPROTO_ICMPV6, 134, "router advertisement" },
		{ 0x86dd, IPPROTO_ICMPV6, 137, "ICMPv6 redirect" },
		{ 0x0800, IPPROTO_ICMP, 5, "ICMP redirect" },
	};
	static const struct claim_sets node = { S_NODE4, S_NODE6, S_NODE_ND, "the node" };

	for (size_t i = 0; i < sizeof(icmp) / sizeof(icmp[0]); i++) {
		struct rb rb = rule_start(C_PREROUTING);

		x_ethertype(&rb, icmp[i].ethertype);
		x_l4proto(&rb, icmp[i].proto);
		x_payload(&rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		x_cmp8(&rb, NFT_REG_1, NFT_CMP_EQ, icmp[i].type);
		x_verdict(&rb, NFT_JUMP, "spoof");
		rule_end(bt, &rb, icmp[i].what);
	}
	rules_claims(bt, C_PREROUTING, &node);
}

/*
 * Anti-spoofing at the bridge, where iifname is still the container's veth. Frames of any
 * other ethertype (VLAN tags included) from a managed port are dropped: they could carry
 * addresses this chain does not check.
 */
static void rules_bridge(struct batch *bt, const struct ruleset_input *in)
{
	enum chain_id c = C_PREROUTING;
	uint32_t zero = 0;
	struct rb rb;

	/*
	 * First, one lookup for what most frames are: IP from a known port with its own MAC and
	 * address, which every rule below would let through. ICMPv6 takes the long way, past the
	 * neighbour discovery checks.
	 */
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_mac_addr(&rb, 12, 4, S_OWN4);
	rule_end(bt, &rb, "iifname . ether saddr . ip saddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_meta(&rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp8(&rb, NFT_REG_1, NFT_CMP_NEQ, IPPROTO_ICMPV6);
	x_port_mac_addr(&rb, 8, 16, S_OWN6);
	rule_end(bt, &rb, "iifname . ether saddr . ip6 saddr, not ICMPv6");
	rules_bridge_claims(bt);
	rb = rule_start(c);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_PORTS, NFT_REG_1, -1, true);
	x_verdict(&rb, NFT_GOTO, "stranger");
	rule_end(bt, &rb, "not a managed port");
	rules_bridge_stranger(bt);
	/* another's MAC would teach the bridge to send that container's frames here */
	rb = rule_start(c);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_MAC_PORTS, NFT_REG_1, -1, false);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(&rb, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG32_04);
	x_lookup(&rb, S_MACS, NFT_REG32_00, -1, true);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "iifname . ether saddr");
	/* and ARP's own copy of it: a reply naming another's MAC diverts traffic as well */
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(&rb, S_MAC_PORTS, NFT_REG_1, -1, false);
	x_meta(&rb, NFT_META_IIFNAME, NFT_REG32_00);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 8, 6, NFT_REG32_04);
	x_lookup(&rb, S_MACS, NFT_REG32_00, -1, true);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "iifname . arp saddr ether");
	rules_bridge_nd(bt, c);
	rb = rule_start(c);
	x_ethertype(&rb, 0x0800);
	x_port_addr(&rb, 12, 4, S_SRC4);
	rule_end(bt, &rb, "iifname . ip saddr");
	rb = rule_start(c);
	x_ethertype(&rb, 0x86dd);
	x_port_addr(&rb, 8, 16, S_SRC6);
	rule_end(bt, &rb, "iifname . ip6 saddr");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_port_addr(&rb, 14, 4, S_SRC4);
	rule_end(bt, &rb, "iifname . arp saddr ip");
	rb = rule_start(c);
	x_arp_ether_ip(&rb);
	x_payload(&rb, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG_1);
	x_cmp(&rb, NFT_REG_1, NFT_CMP_EQ, &zero, 4);
	x_verdict(&rb, NFT_RETURN, NULL);
	rule_end(bt, &rb, "ARP probe from 0.0.0.0");
	rb = rule_start(c);
	x_verdict(&rb, NFT_JUMP, "spoof");
	rule_end(bt, &rb, "anything else from a managed port");
	rule_drop(bt, C_SPOOF, NFT_PREFIX_SPOOF, in->nflog_group, in->log_rate, LOG_BY_PORT);
	rules_bridge_forward(bt, in);
}


bool rules_chain_used(enum chain_id c, const struct ruleset_input *in)
{
	return c != C_OUTPUT || in->host_access == RULESET_HOST_POLICY;
}

void rules_add(struct batch *bt, const struct ruleset_input *in)
{
	rules_inet(bt, in);
	rules_bridge(bt, in);
}
