/*
 * An NFQUEUE consumer on a plain libmnl socket (libmnl's examples/netfilter/nf-queue.c is
 * the model; no libnetfilter_queue). One socket binds one queue; each packet arrives as
 * one NFQNL_MSG_PACKET message, and each verdict is one NFQNL_MSG_VERDICT, several sent
 * in one datagram (nfnetlink reads every message of it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include "queue.h"

#define COPY_RANGE 0xffff
#define RCVBUF_BYTES (8 << 20)
#define QUEUE_FLAGS (NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO)
/* Packets held before fail-open lets the next ones through unseen (the kernel's default is
 * 1024; a burst of container starts asks more at once). Each held packet is ~2 KiB of the
 * receive buffer. */
#define QUEUE_MAXLEN 4096
#define VERDICT_MSG_LEN (MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)) + \
			 MNL_ATTR_HDRLEN + MNL_ALIGN(sizeof(struct nfqnl_msg_verdict_hdr)))
#define VERDICTS_MAX 64
/* A packet message: the copied packet and its attributes (a few hundred bytes). */
#define RECV_BUF (COPY_RANGE + 8192)

struct dnsq {
	struct mnl_socket *nl;
	uint16_t num;
	uint32_t seq;
	struct dnsq_stats st;
	size_t vlen, nv;		/* verdict messages waiting in vbuf */
	/* netlink headers are written and read in place */
	_Alignas(8) uint8_t vbuf[VERDICTS_MAX * VERDICT_MSG_LEN];
	_Alignas(8) uint8_t rbuf[RECV_BUF];
};

/* A message header for queue q: type, flags, the next sequence number. */
static struct nlmsghdr *msg_start(struct dnsq *q, void *buf, uint8_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++q->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(q->num);
	return nlh;
}

/* Sends the verdicts waiting; if that fails their packets stay held (counted). */
static int verdicts_flush(struct dnsq *q)
{
	int ret = 0;

	if (q->vlen && mnl_socket_sendto(q->nl, q->vbuf, q->vlen) < 0) {
		ret = -errno;
		q->st.verdict_errors += q->nv;
	}
	q->vlen = q->nv = 0;
	return ret;
}

static void verdict_add(struct dnsq *q, uint32_t id, uint32_t verdict)
{
	struct nfqnl_msg_verdict_hdr vh = { htonl(verdict), htonl(id) };
	struct nlmsghdr *nlh;

	if (q->nv == VERDICTS_MAX)
		verdicts_flush(q);
	nlh = msg_start(q, q->vbuf + q->vlen, NFQNL_MSG_VERDICT, 0);
	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
	q->vlen += nlh->nlmsg_len;
	q->nv++;
}

static int attr_keep(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, NFQA_MAX) > 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

/* The packet of message nlh into *p: 0, or -EINVAL without a well-formed packet header. */
static int packet_read(const struct nlmsghdr *nlh, struct dnsq_packet *p)
{
	const struct nlattr *tb[NFQA_MAX + 1] = { 0 };
	const struct nfqnl_msg_packet_hdr *ph;

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_keep, tb) < 0 ||
	    !tb[NFQA_PACKET_HDR] || mnl_attr_get_payload_len(tb[NFQA_PACKET_HDR]) < sizeof(*ph))
		return -EINVAL;
	ph = mnl_attr_get_payload(tb[NFQA_PACKET_HDR]);
	*p = (struct dnsq_packet){ .id = ntohl(ph->packet_id), .hw_proto = ntohs(ph->hw_protocol),
				   .hook = ph->hook };
	if (tb[NFQA_PAYLOAD]) {
		p->l3 = mnl_attr_get_payload(tb[NFQA_PAYLOAD]);
		p->len = p->wire_len = mnl_attr_get_payload_len(tb[NFQA_PAYLOAD]);
	}
	if (tb[NFQA_CAP_LEN] && mnl_attr_get_payload_len(tb[NFQA_CAP_LEN]) >= 4)
		p->wire_len = ntohl(mnl_attr_get_u32(tb[NFQA_CAP_LEN]));
	return 0;
}

static uint32_t accept_all(void *ctx, const struct dnsq_packet *p)
{
	return NF_ACCEPT;
}

/* One message from the kernel: a packet (handed to fn, 1), or an error answer (0). */
static int message_handle(struct dnsq *q, const struct nlmsghdr *nlh, dnsq_fn fn, void *ctx)
{
	struct dnsq_packet p;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		q->st.kernel_errors += nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error;
		return 0;
	}
	if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
		return 0;
	if (packet_read(nlh, &p)) {
		q->st.malformed++;
		return 0;
	}
	q->st.packets++;
	q->st.cut += p.wire_len > p.len;
	verdict_add(q, p.id, (fn ? fn : accept_all)(ctx, &p));
	return 1;
}

/* One datagram: every message in it. How many packets it held. */
static unsigned datagram_handle(struct dnsq *q, size_t n, dnsq_fn fn, void *ctx)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)q->rbuf;
	int len = (int)n;
	unsigned packets = 0;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
		packets += (unsigned)message_handle(q, nlh, fn, ctx);
	return packets;
}

int dnsq_read(struct dnsq *q, unsigned budget, dnsq_fn fn, void *ctx)
{
	unsigned handled = 0;
	int ret = 0, fret;

	while (handled < budget) {
		ssize_t n = mnl_socket_recvfrom(q->nl, q->rbuf, sizeof(q->rbuf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
			break;
		}
		handled += datagram_handle(q, (size_t)n, fn, ctx);
	}
	fret = verdicts_flush(q);
	return ret ? ret : fret ? fret : (int)handled;
}

/* ---- binding ---- */

/* Bind, copy mode and flags in one message, so no packet arrives without its bytes. */
static uint32_t config_send(struct dnsq *q)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = msg_start(q, buf, NFQNL_MSG_CONFIG, NLM_F_ACK);
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	struct nfqnl_msg_config_params params = { htonl(COPY_RANGE), NFQNL_COPY_PACKET };

	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(QUEUE_MAXLEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(QUEUE_FLAGS));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(QUEUE_FLAGS));
	return mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0 ? 0 : nlh->nlmsg_seq;
}

/* The kernel's answer to message seq in *err, 1 when nlh is it. */
static int answer_of(const struct nlmsghdr *nlh, uint32_t seq, int *err)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq != seq ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return 0;
	*err = e->error;
	return 1;
}

/* The answer to message seq among the n bytes read (its error, <= 0), else 1; packets
 * before it are accepted unseen. */
static int answer_find(struct dnsq *q, size_t n, uint32_t seq)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)q->rbuf;
	int len = (int)n, err;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (answer_of(nlh, seq, &err))
			return err;
		message_handle(q, nlh, NULL, NULL);
	}
	return 1;
}

/*
 * The kernel answers while sendto runs, so the answer is queued already (nothing to wait
 * for); packets bound while the message was processed may be ahead of it.
 */
static int config_answer(struct dnsq *q, uint32_t seq)
{
	int err = 1;

	while (err > 0) {
		ssize_t n = mnl_socket_recvfrom(q->nl, q->rbuf, sizeof(q->rbuf));

		if (n < 0 && errno == EINTR)
			continue;
		err = n < 0 ? -EPROTO : answer_find(q, (size_t)n, seq);
	}
	verdicts_flush(q);
	return err;
}

/* Grows the receive buffer past net.core.rmem_max when we may (root: SO_RCVBUFFORCE). */
static void buffer_grow(struct dnsq *q)
{
	int fd = mnl_socket_get_fd(q->nl), want = RCVBUF_BYTES, have = 0;
	socklen_t len = sizeof(have);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (!getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &len))
		q->st.buffer_bytes = (uint64_t)have;
}

static int socket_setup(struct dnsq *q)
{
	int one = 1;
	uint32_t seq;

	q->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!q->nl || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	/* a full buffer loses packets (fail-open lets them through); it is not an error */
	if (mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0)
		return -errno;
	buffer_grow(q);
	if (!(seq = config_send(q)))
		return -errno;
	return config_answer(q, seq);
}

int dnsq_open(uint16_t queue_num, struct dnsq **out)
{
	struct dnsq *q = calloc(1, sizeof(*q));
	int ret;

	if (!q)
		return -ENOMEM;
	q->num = queue_num;
	ret = socket_setup(q);
	if (ret) {
		dnsq_free(q);
		return ret;
	}
	*out = q;
	return 0;
}

int dnsq_fd(const struct dnsq *q)
{
	return mnl_socket_get_fd(q->nl);
}

void dnsq_stats_get(const struct dnsq *q, struct dnsq_stats *out)
{
	*out = q->st;
}

void dnsq_free(struct dnsq *q)
{
	if (!q)
		return;
	if (q->nl) {
		dnsq_read(q, QUEUE_MAXLEN, NULL, NULL);
		mnl_socket_close(q->nl);
	}
	free(q);
}
