/*
 * The NFLOG reader: libpcap's "nflog:G" device, non-blocking on the event loop, and a
 * parser of DLT_NFLOG frames into records (pure, so unit tests and fuzzers feed it bytes).
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "capture.h"
#include "datapath/ruleset.h"

#define TLV_TYPE_MASK 0x7fff		/* the top bits flag nested and byte-order attributes */
#define NFLOG_HDR_LEN 4

/* libpcap sizes its read buffer as 128 + snaplen; the kernel caps the copy at 0xffff. At the
 * maximum snaplen any NFLOG message fits, so a large first packet is never a read error. */
#define SNAPLEN 262144

static const struct {
	const char *prefix;
	enum capture_kind kind;
} prefixes[] = {
	{ NFT_PREFIX_PASS, CAPTURE_PASS },
	{ NFT_PREFIX_DROP_IN, CAPTURE_DROP_IN },
	{ NFT_PREFIX_DROP_OUT, CAPTURE_DROP_OUT },
	{ NFT_PREFIX_DROP_UNKNOWN, CAPTURE_DROP_UNKNOWN },
	{ NFT_PREFIX_SPOOF, CAPTURE_SPOOF },
};

static const char *const kind_names[] = {
	[CAPTURE_PASS] = "pass",
	[CAPTURE_DROP_IN] = "drop:in",
	[CAPTURE_DROP_OUT] = "drop:out",
	[CAPTURE_DROP_UNKNOWN] = "drop:unknown",
	[CAPTURE_SPOOF] = "spoof",
};

const char *capture_kind_name(enum capture_kind kind)
{
	return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

static int prefix_kind(const uint8_t *v, size_t len, enum capture_kind *kind)
{
	size_t n = strnlen((const char *)v, len);

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strlen(prefixes[i].prefix) == n && !memcmp(v, prefixes[i].prefix, n)) {
			*kind = prefixes[i].kind;
			return 0;
		}
	return -ENOENT;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* The fixed transport header of a port protocol (what must be in a record to key a flow by
 * its port), or 0 for a protocol without ports. */
static size_t ports_header_len(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 20;
	case IPPROTO_SCTP:
		return 12;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return 8;
	}
	return 0;
}

bool capture_record_keyed(const struct capture_record *rec)
{
	return !rec->later_fragment && (rec->has_ports || !ports_header_len(rec->proto));
}

/*
 * Ports or ICMP type of the transport header at l4 (len bytes of it are in the record).
 * -EMSGSIZE when a port protocol's header is not all there: the kernel copies only
 * NFT_LOG_SNAPLEN bytes, a sender can push the header past them, and a short packet reads
 * the same; its port is unknown, and never 0.
 */
static int transport(struct capture_record *r, const uint8_t *l4, size_t len, bool later_frag)
{
	size_t need = ports_header_len(r->proto);

	r->later_fragment = later_frag;
	if (later_frag)
		return 0;
	if (need && len < need)
		return -EMSGSIZE;
	if (need) {
		r->has_ports = true;
		r->sport = get16(l4);
		r->dport = get16(l4 + 2);
	} else if ((r->proto == IPPROTO_ICMP || r->proto == IPPROTO_ICMPV6) && len >= 2) {
		r->icmp_type = l4[0];
		r->icmp_code = l4[1];
	}
	return 0;
}

static int ipv4(struct capture_record *r, const uint8_t *p, size_t len)
{
	size_t ihl = (size_t)(p[0] & 0xf) * 4;

	if (len < 20 || ihl < 20 || ihl > len)
		return -EINVAL;
	r->proto = p[9];
	r->saddr.family = r->daddr.family = AF_INET;
	memcpy(r->saddr.a, p + 12, 4);
	memcpy(r->daddr.a, p + 16, 4);
	return transport(r, p + ihl, len - ihl, (get16(p + 6) & 0x1fff) != 0);
}

static bool ipv6_ext(uint8_t nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/*
 * Walks the extension headers to the transport. A chain longer than 8, or one that runs past
 * the record, hides the transport: -EMSGSIZE, never a record of the extension header's
 * number. After a later fragment's header comes data, not headers: the walk stops there.
 */
static int ipv6(struct capture_record *r, const uint8_t *p, size_t len)
{
	size_t off = 40;
	uint8_t nh;
	bool later_frag = false;

	if (len < 40)
		return -EINVAL;
	nh = p[6];
	r->saddr.family = r->daddr.family = AF_INET6;
	memcpy(r->saddr.a, p + 8, 16);
	memcpy(r->daddr.a, p + 24, 16);
	for (int i = 0; i < 8 && ipv6_ext(nh) && !later_frag && off + 8 <= len; i++) {
		uint8_t next = p[off];

		if (nh == IPPROTO_FRAGMENT)
			later_frag = (get16(p + off + 2) & 0xfff8) != 0;
		off += nh == IPPROTO_FRAGMENT ? 8 : nh == IPPROTO_AH ?
		       ((size_t)p[off + 1] + 2) * 4 : ((size_t)p[off + 1] + 1) * 8;
		nh = next;
	}
	r->proto = nh;
	if (ipv6_ext(nh) && !later_frag)
		return -EMSGSIZE;
	return transport(r, p + (off < len ? off : len), off < len ? len - off : 0, later_frag);
}

static int payload(struct capture_record *r, const uint8_t *p, size_t len)
{
	if (!len)
		return -EINVAL;
	switch (p[0] >> 4) {
	case 4:
		return ipv4(r, p, len);
	case 6:
		return ipv6(r, p, len);
	}
	return -ENOENT;		/* ARP and friends, logged by the bridge table */
}

int capture_parse(const uint8_t *buf, size_t len, struct capture_record *rec)
{
	struct capture_record r = { 0 };
	const uint8_t *pl = NULL;
	size_t pllen = 0, off = NFLOG_HDR_LEN;
	int have_prefix = -ENOENT, ret;

	if (len < NFLOG_HDR_LEN)
		return -EINVAL;
	while (off + 4 <= len) {
		uint16_t tlen, type;

		memcpy(&tlen, buf + off, 2);	/* host order, unaligned-safe */
		memcpy(&type, buf + off + 2, 2);
		type &= TLV_TYPE_MASK;
		if (tlen < 4 || tlen > len - off)
			return -EINVAL;
		if (type == NFULA_PREFIX)
			have_prefix = prefix_kind(buf + off + 4, tlen - 4u, &r.kind);
		else if (type == NFULA_PAYLOAD)
			pl = buf + off + 4, pllen = tlen - 4u;
		else if (type == NFULA_TIMESTAMP && tlen >= 20)
			r.time_ms = (int64_t)(get64(buf + off + 4) * 1000 + get64(buf + off + 12) / 1000);
		off += (tlen + 3u) & ~3u;
	}
	if (have_prefix)
		return have_prefix;
	if (!pl)
		return -EINVAL;
	ret = payload(&r, pl, pllen);
	if (!ret)
		*rec = r;
	return ret;
}

/* ---- the reader ---- */

struct capture {
	pcap_t *pcap;
	int fd;
	struct capture_stats st;
	capture_fn fn;		/* for the duration of capture_read */
	void *data;
	unsigned handled;
};

static void on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct capture *c = (struct capture *)user;
	struct capture_record r;
	int ret = capture_parse(bytes, h->caplen, &r);

	if (ret == -ENOENT) {
		c->st.ignored++;
		return;
	}
	if (ret == -EMSGSIZE) {
		c->st.truncated++;
		return;
	}
	if (ret) {
		c->st.malformed++;
		return;
	}
	if (!r.time_ms)
		r.time_ms = (int64_t)h->ts.tv_sec * 1000 + h->ts.tv_usec / 1000;
	c->st.records++;
	c->handled++;
	c->fn(&r, c->data);
}

/*
 * The kernel queues up to 100 messages per group, or one second, before it sends them
 * (NFULNL_QTHRESH_DEFAULT, NFULNL_TIMEOUT_DEFAULT), and libpcap leaves that alone: an alert
 * could wait a second. Batches are flushed after 20 ms and hold up to 200 records (some
 * 300 bytes each with snaplen 128: within NLBUFSIZ, which flushes a fuller batch anyway):
 * each wakeup has a cost of its own (seen here at 5,000 to 8,000 connections/s: batches of
 * up to 200 rather than 64 halved moatd's CPU per connection, from 1.0-1.3 us to 0.6-0.7).
 * One config message on libpcap's socket, without ACK: the kernel answers only on error,
 * and libpcap skips such answers. A rule's own queue-threshold still wins.
 */
static void batching_tune(struct capture *c, unsigned group)
{
	struct {
		struct nlmsghdr nlh;
		struct nfgenmsg nfg;
		struct { struct nlattr a; uint32_t v; } attrs[3];
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_flags = NLM_F_REQUEST,
			 .nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG },
		.nfg = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0, .res_id = htons(group) },
		.attrs = {
			{ { 8, NFULA_CFG_QTHRESH }, htonl(200) },
			{ { 8, NFULA_CFG_TIMEOUT }, htonl(2) },		/* 1/100 s */
			{ { 8, NFULA_CFG_NLBUFSIZ }, htonl(64 * 1024) },	/* < libpcap's buffer */
		},
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	sendto(c->fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel));
}

/* Grows the socket buffer past net.core.rmem_max when we may (root: SO_RCVBUFFORCE). */
static void buffer_force(struct capture *c, size_t bytes)
{
	int want = bytes > (1u << 30) ? 1 << 30 : (int)bytes, have = 0;
	socklen_t len = sizeof(have);

	if (getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &have, &len) == 0 && have < want)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want));
	len = sizeof(have);
	if (getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &have, &len) == 0)
		c->st.buffer_bytes = (uint64_t)have;
}

static int pcap_setup(struct capture *c, size_t buffer_bytes, char *err, size_t errlen)
{
	int ret;

	pcap_set_snaplen(c->pcap, SNAPLEN);
	pcap_set_buffer_size(c->pcap, buffer_bytes > (1u << 30) ? 1 << 30 : (int)buffer_bytes);
	errno = 0;
	ret = pcap_activate(c->pcap);
	if (ret < 0) {
		ret = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s", pcap_geterr(c->pcap));
		return ret;
	}
	if (pcap_datalink(c->pcap) != DLT_NFLOG) {
		snprintf(err, errlen, "not an NFLOG device (link type %d)", pcap_datalink(c->pcap));
		return -EPROTO;
	}
	if (pcap_setnonblock(c->pcap, 1, err) < 0)
		return -EIO;
	c->fd = pcap_get_selectable_fd(c->pcap);
	if (c->fd < 0) {
		snprintf(err, errlen, "no selectable descriptor");
		return -EIO;
	}
	buffer_force(c, buffer_bytes);
	return 0;
}



int capture_open(unsigned group, size_t buffer_bytes, struct capture **out, char *err,
		 size_t errlen)
{
	char dev[32], ebuf[PCAP_ERRBUF_SIZE] = "";
	struct capture *c;
	int ret;

	if (group > 65535)
		return snprintf(err, errlen, "NFLOG group %u is out of range", group), -EINVAL;
	if (!(c = calloc(1, sizeof(*c))))
		return snprintf(err, errlen, "out of memory"), -ENOMEM;
	snprintf(dev, sizeof(dev), "nflog:%u", group);
	c->pcap = pcap_create(dev, ebuf);
	ret = c->pcap ? pcap_setup(c, buffer_bytes, err, errlen) : -EIO;
	if (!ret)
		batching_tune(c, group);
	if (!c->pcap)
		snprintf(err, errlen, "%s", ebuf);
	if (ret) {
		capture_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int capture_fd(const struct capture *c)
{
	return c->fd;
}

/*
 * One pcap_dispatch reads one socket buffer and hands over every frame in it: asking for
 * fewer would leave frames inside libpcap that no EPOLLIN announces. So the budget counts
 * whole reads, and reads stop at EAGAIN. errno is cleared first: libpcap tests it after a
 * successful recv too (and so would count a stale ENOBUFS as a drop).
 */
int capture_read(struct capture *c, unsigned budget, capture_fn fn, void *data)
{
	c->fn = fn, c->data = data, c->handled = 0;
	for (unsigned rounds = 0; c->handled < budget && rounds < budget; rounds++) {
		int n;

		errno = 0;
		n = pcap_dispatch(c->pcap, -1, on_frame, (u_char *)c);
		if (n >= 0)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno == EBADF || errno == ENOTSOCK)
			return -errno;
		c->st.read_errors++;	/* one message lost (truncated); the socket is fine */
	}
	return (int)c->handled;
}

void capture_stats_get(struct capture *c, struct capture_stats *out)
{
	struct pcap_stat ps;

	if (pcap_stats(c->pcap, &ps) == 0)
		c->st.kernel_drops = ps.ps_drop;
	*out = c->st;
}

void capture_free(struct capture *c)
{
	if (!c)
		return;
	if (c->pcap)
		pcap_close(c->pcap);
	free(c);
}
