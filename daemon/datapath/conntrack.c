/*
 * ctnetlink revocation: dump, judge each entry against the plan, delete the denied ones.
 * Deletes go out after the dump has finished, on the same socket (a dump in progress owns it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "conntrack.h"

/* The original tuple as the kernel sent it (resent verbatim to delete), and the CTA_ID. */
struct ct_victim {
	uint8_t family;
	uint8_t tuple[256];
	uint16_t tuple_len;
	uint32_t id;			/* network order, 0 when absent */
	uint16_t zone;			/* network order */
	bool has_zone;
};

struct ct_dump {
	const struct moat_plan *plan;
	const struct moat_addr *gone;
	size_t ngone;
	struct ct_victim *v;
	size_t n, cap;
	int err;
};

struct ct_addrs {
	struct moat_addr src, dst;
	uint8_t proto;
	uint16_t sport;			/* host order */
	bool ok;
};

static void parse_ip(const struct nlattr *nest, struct ct_addrs *t)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		uint16_t type = mnl_attr_get_type(a);
		bool v4 = type == CTA_IP_V4_SRC || type == CTA_IP_V4_DST;
		bool src = type == CTA_IP_V4_SRC || type == CTA_IP_V6_SRC;
		struct moat_addr *m = src ? &t->src : &t->dst;

		if (type < CTA_IP_V4_SRC || type > CTA_IP_V6_DST ||
		    mnl_attr_get_payload_len(a) != (v4 ? 4u : 16u))
			continue;
		m->family = v4 ? AF_INET : AF_INET6;
		memcpy(m->a, mnl_attr_get_payload(a), v4 ? 4 : 16);
	}
}

static void parse_proto(const struct nlattr *nest, struct ct_addrs *t)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == CTA_PROTO_NUM && mnl_attr_get_payload_len(a) >= 1)
			t->proto = mnl_attr_get_u8(a), t->ok = true;
		if (mnl_attr_get_type(a) == CTA_PROTO_SRC_PORT && mnl_attr_get_payload_len(a) >= 2)
			t->sport = ntohs(mnl_attr_get_u16(a));
	}
}

static void parse_tuple(const struct nlattr *nest, struct ct_addrs *t)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == CTA_TUPLE_IP)
			parse_ip(a, t);
		if (mnl_attr_get_type(a) == CTA_TUPLE_PROTO)
			parse_proto(a, t);
	}
}

static int victim_add(struct ct_dump *d, const struct ct_victim *v)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct ct_victim *n = realloc(d->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->v = n;
		d->cap = cap;
	}
	d->v[d->n++] = *v;
	return 0;
}

static bool is_gone(const struct ct_dump *d, const struct moat_addr *a)
{
	return d->ngone && bsearch(a, d->gone, d->ngone, sizeof(*a), moat_addr_cmp);
}

/*
 * The forward hook saw the connection after DNAT and before SNAT: the source of the original
 * tuple, the destination (and port) the reply comes from.
 */
static bool denied(const struct ct_dump *d, const struct ct_addrs *orig,
		   const struct ct_addrs *reply)
{
	struct moat_verdict v;

	if (!orig->ok || !reply->ok || orig->src.family != reply->src.family ||
	    (orig->src.family != AF_INET && orig->src.family != AF_INET6))
		return false;
	if (is_gone(d, &orig->src) || is_gone(d, &reply->src))
		return true;
	moat_plan_decide(d->plan, &orig->src, &reply->src, orig->proto, reply->sport, &v);
	return v.kind == MOAT_DENY;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct_dump *d = data;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	struct ct_addrs orig = {0}, reply = {0};
	struct ct_victim v = { .family = g->nfgen_family };
	const struct nlattr *a, *tuple = NULL;

	mnl_attr_for_each(a, nlh, sizeof(*g)) {
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG:
			tuple = a;
			parse_tuple(a, &orig);
			break;
		case CTA_TUPLE_REPLY:
			parse_tuple(a, &reply);
			break;
		case CTA_ID:
			v.id = mnl_attr_get_u32(a);
			break;
		case CTA_ZONE:
			v.zone = mnl_attr_get_u16(a);
			v.has_zone = true;
			break;
		}
	}
	if (!tuple || tuple->nla_len > sizeof(v.tuple) || !denied(d, &orig, &reply))
		return MNL_CB_OK;
	memcpy(v.tuple, tuple, tuple->nla_len);
	v.tuple_len = tuple->nla_len;
	d->err = victim_add(d, &v);
	return d->err ? MNL_CB_ERROR : MNL_CB_OK;
}

static struct nlmsghdr *ct_msg(char *buf, uint16_t type, uint16_t flags, uint8_t family,
			       uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	return nlh;
}

static int ct_dump(struct mnl_socket *nl, struct ct_dump *d, char *buf, size_t len)
{
	uint32_t seq = time(NULL), portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh = ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC, seq);
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, len);

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, seq, portid, dump_cb, d);
	} while (ret > 0);
	if (d->err)
		return d->err;
	return ret < 0 ? -errno : 0;
}

/* 1 deleted, 0 already gone, -errno. */
static int ct_delete(struct mnl_socket *nl, const struct ct_victim *v, uint32_t seq, char *buf,
		     size_t len)
{
	struct nlmsghdr *nlh = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, v->family, seq);
	void *p = mnl_nlmsg_get_payload_tail(nlh);
	ssize_t n;

	memcpy(p, v->tuple, v->tuple_len);
	nlh->nlmsg_len += MNL_ALIGN(v->tuple_len);
	if (v->id)
		mnl_attr_put_u32(nlh, CTA_ID, v->id);
	if (v->has_zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, v->zone);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, len);
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, n, seq, mnl_socket_get_portid(nl), NULL, NULL) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

int conntrack_revoke(const struct moat_plan *plan, const struct moat_addr *gone, size_t ngone)
{
	struct ct_dump d = { .plan = plan, .gone = gone, .ngone = ngone };
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	size_t len = MNL_SOCKET_BUFFER_SIZE * 4;
	char *buf = malloc(len);
	int ret = 0, count = 0;

	if (!nl || !buf) {
		ret = nl ? -ENOMEM : -errno;
		goto out;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	ret = ct_dump(nl, &d, buf, len);
	for (size_t i = 0; !ret && i < d.n; i++) {
		int r = ct_delete(nl, &d.v[i], time(NULL) + i + 1, buf, len);

		if (r < 0)
			ret = r;
		else
			count += r;
	}
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	free(d.v);
	return ret < 0 ? ret : count;
}
