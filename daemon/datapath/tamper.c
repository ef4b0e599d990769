/*
 * Tamper watch: the nftables notifications of the namespace, read for changes to the moat
 * tables that did not come from our own batches (told apart by the sender's netlink port).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "tamper.h"

static const char *const msg_verbs[NFT_MSG_MAX] = {
	[NFT_MSG_NEWTABLE] = "add table", [NFT_MSG_DELTABLE] = "delete table",
	[NFT_MSG_NEWCHAIN] = "add chain", [NFT_MSG_DELCHAIN] = "delete chain",
	[NFT_MSG_NEWRULE] = "add rule", [NFT_MSG_DELRULE] = "delete rule",
	[NFT_MSG_NEWSET] = "add set", [NFT_MSG_DELSET] = "delete set",
	[NFT_MSG_NEWSETELEM] = "add element", [NFT_MSG_DELSETELEM] = "delete element",
	[NFT_MSG_NEWOBJ] = "add object", [NFT_MSG_DELOBJ] = "delete object",
	[NFT_MSG_NEWFLOWTABLE] = "add flowtable", [NFT_MSG_DELFLOWTABLE] = "delete flowtable",
};

/* Every object message carries its table's name as attribute 1 (NFTA_*_TABLE / _NAME). */
static const char *msg_table(const struct nlmsghdr *nlh)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == 1 && !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
			return mnl_attr_get_str(a);
	return NULL;
}

static void watch_gen(const struct nlmsghdr *nlh, struct ruleset_tamper *out)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID)
			out->pid = ntohl(mnl_attr_get_u32(a));
		if (mnl_attr_get_type(a) == NFTA_GEN_PROC_NAME)
			snprintf(out->comm, sizeof(out->comm), "%s", mnl_attr_get_str(a));
	}
}

/* One notification. *foreign: a foreign change since the last NEWGEN. */
static void watch_msg(uint32_t ours, const struct nlmsghdr *nlh, bool *foreign,
		      struct ruleset_tamper *out)
{
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	const char *table;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
		return;
	if (type == NFT_MSG_NEWGEN) {
		if (*foreign)
			watch_gen(nlh, out);
		*foreign = false;
		return;
	}
	if (type >= NFT_MSG_MAX || !msg_verbs[type] || nlh->nlmsg_pid == ours)
		return;
	if (g->nfgen_family != NFPROTO_INET && g->nfgen_family != NFPROTO_BRIDGE)
		return;
	table = msg_table(nlh);
	if (!table || strcmp(table, NFT_TABLE_NAME))
		return;
	/* a deleted table announces its rules, chains and sets first: name the table */
	if (!out->changed || type == NFT_MSG_DELTABLE)
		snprintf(out->what, sizeof(out->what), "%s %s %s", msg_verbs[type],
			 g->nfgen_family == NFPROTO_INET ? "inet" : "bridge", table);
	out->changed = true;
	*foreign = true;
}

int tamper_read(struct nfsock *watch, uint32_t ours, struct ruleset_tamper *out)
{
	bool foreign = false;

	memset(out, 0, sizeof(*out));
	for (;;) {
		int n = recv(nfsock_fd(watch), watch->buf, sizeof(watch->buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)watch->buf;

		if (n < 0 && errno == ENOBUFS) {
			out->lost = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n))
			watch_msg(ours, nlh, &foreign, out);
	}
}

