/*
 * Learning from DNS answers (learner.h): queue -> segment -> (TCP: stream) -> reply -> the
 * endpoint's rules with domain names -> the kernel's sets -> verdict.
 */
#include <errno.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "../latency.h"
#include "../log.h"
#include "learner.h"
#include "message.h"
#include "moat/grow.h"
#include "queue.h"
#include "resolved.h"
#include "stream.h"

#define QUEUE_BUDGET 256	/* replies per wakeup: the loop serves others in between */
#define TCP_FLOWS 64
#define ADDS_MAX 512		/* kernel elements one reply may add */

struct learner {
	uint16_t queue;
	struct ruleset *rs;
	struct dnsq *q;
	struct streams *tcp;
	struct resolved *cache;
	struct moat_plan *plan;
	struct moat_cidr *trusted;
	size_t ntrusted;
	struct learner_stats st;
	struct latency lat;
};

/* What one reply adds: built while the endpoint's rules are walked. */
struct adds {
	struct learner *l;
	const struct dns_reply *reply;
	const struct moat_endpoint *ep;	/* the asker */
	struct ruleset_dns v[ADDS_MAX];
	size_t n;
};

int learner_new(uint16_t queue, struct ruleset *rs, const struct moat_cidr *trusted,
		size_t ntrusted, struct learner **out)
{
	struct learner *l = calloc(1, sizeof(*l));
	int ret = l ? 0 : -ENOMEM;

	if (!ret && ntrusted && !(l->trusted = malloc(ntrusted * sizeof(*trusted))))
		ret = -ENOMEM;
	if (!ret)
		ret = streams_new(TCP_FLOWS, &l->tcp);
	if (!ret)
		ret = resolved_new(DNS_RESOLVED_MAX, &l->cache);
	if (ret) {
		learner_free(l);
		return ret;
	}
	if (ntrusted)
		memcpy(l->trusted, trusted, ntrusted * sizeof(*trusted));
	l->ntrusted = ntrusted;
	l->queue = queue;
	l->rs = rs;
	*out = l;
	return 0;
}

void learner_free(struct learner *l)
{
	if (!l)
		return;
	dnsq_free(l->q);
	streams_free(l->tcp);
	resolved_free(l->cache);
	free(l->trusted);
	free(l);
}

static bool trusted(const struct learner *l, const struct moat_addr *a)
{
	struct moat_cidr c = { a->family, a->family == AF_INET ? 32 : 128, { 0 } };

	memcpy(c.addr, a->a, a->family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < l->ntrusted; i++)
		if (moat_cidr_contains(&l->trusted[i], &c))
			return true;
	return !l->ntrusted;
}

static uint32_t ttl_ms(uint32_t ttl)
{
	if (ttl < DNS_TTL_FLOOR_S)
		ttl = DNS_TTL_FLOOR_S;
	return (ttl > DNS_TTL_CAP_S ? DNS_TTL_CAP_S : ttl) * 1000u;
}

/* The asker's address of family f (it asked over one family, it may connect over both). */
static const struct moat_addr *ep_addr(const struct moat_endpoint *ep, uint8_t f)
{
	for (size_t i = 0; i < ep->nips; i++)
		if (ep->ips[i].family == f)
			return &ep->ips[i];
	return NULL;
}

/* One answer address under one rule's ports: an element per ports entry (or every port). */
static void add_answer(struct adds *a, enum moat_tier tier, uint32_t j,
		       const struct moat_cnp_rule *rule, const struct dns_answer *ans)
{
	const struct moat_addr *src = ep_addr(a->ep, ans->addr.family);
	size_t nports = rule->nports ? rule->nports : 1;

	for (size_t k = 0; src && k < nports && a->n < ADDS_MAX; k++) {
		struct ruleset_dns *d = &a->v[a->n++];
		const struct moat_port *p = rule->nports ? &rule->ports[k] : NULL;

		*d = (struct ruleset_dns){ tier, j, *src, ans->addr, 0, 255, 0, 65535,
					   ttl_ms(ans->ttl) };
		if (p) {
			d->proto_lo = d->proto_hi = p->proto;
			d->port_lo = p->port;
			d->port_hi = p->end_port > p->port ? p->end_port : p->port;
			if (!p->port)
				d->port_hi = 65535;
		}
	}
}

static void rule_matched(void *ctx, enum moat_tier tier, uint32_t j,
			 const struct moat_cnp_rule *rule)
{
	struct adds *a = ctx;

	for (size_t i = 0; i < a->reply->n; i++)
		add_answer(a, tier, j, rule, &a->reply->v[i]);
}

/* The names a reply taught, remembered for verdicts and for replaying after a full apply. */
static void remember(struct learner *l, const struct adds *a)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < a->reply->n; i++) {
		const struct moat_addr *src = ep_addr(a->ep, a->reply->v[i].addr.family);

		if (src && resolved_put(l->cache, src, &a->reply->v[i].addr, a->reply->qname,
					now + ttl_ms(a->reply->v[i].ttl)) < 0)
			log_warn("dns: out of memory remembering what %s resolved",
				 a->reply->qname);
	}
}

/* One whole DNS message to the endpoint at dst. */
static void message(struct learner *l, const struct moat_addr *dst, const uint8_t *msg,
		    size_t len)
{
	static struct adds a;	/* big, and one reply at a time on the loop's thread */
	const struct moat_plan_addr *pa = l->plan ? moat_plan_addr_find(l->plan, dst) : NULL;
	struct dns_reply reply;
	struct moat_diags diags = { 0 };
	uint64_t t0 = loop_now_us();

	l->st.replies++;
	if (dns_reply_parse(msg, len, &reply)) {
		l->st.malformed++;
		return;
	}
	if (!pa || !reply.n)
		return;
	a = (struct adds){ l, &reply, &l->plan->es->v[pa->endpoint], { { 0 } }, 0 };
	if (!moat_plan_domains(l->plan, dst, reply.qname, rule_matched, &a) || !a.n)
		return;
	if (ruleset_dns_add(l->rs, a.v, a.n, &diags)) {
		l->st.add_errors++;
		log_diags(&diags);
	} else {
		l->st.learnt++;
		l->st.addresses += a.n;
		remember(l, &a);
	}
	moat_diags_free(&diags);
	latency_add(&l->lat, loop_now_us() - t0);
}

struct msg_ctx {
	struct learner *l;
	const struct moat_addr *dst;
};

static void tcp_message(void *ctx, const uint8_t *msg, size_t len)
{
	struct msg_ctx *m = ctx;

	message(m->l, m->dst, msg, len);
}

/* A queued packet: learn what it says, then let it through. */
static uint32_t packet(void *ctx, const struct dnsq_packet *p)
{
	struct learner *l = ctx;
	struct dns_segment seg;
	struct msg_ctx m = { l, &seg.daddr };

	if (!p->l3 || dns_segment_parse(p->l3, p->len, &seg))
		return NF_ACCEPT;
	if (!trusted(l, &seg.saddr)) {
		l->st.untrusted++;
		return NF_ACCEPT;
	}
	if (seg.proto == IPPROTO_UDP)
		message(l, &seg.daddr, seg.payload, seg.len);
	else if (streams_add(l->tcp, &seg, tcp_message, &m) < 0)
		log_warn("dns: out of memory following a reply over TCP");
	return NF_ACCEPT;
}

static void queue_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct learner *l = data;
	int ret = dnsq_read(l->q, QUEUE_BUDGET, packet, l);

	if (ret >= 0)
		return;
	log_error("dns: reading queue %u failed (%s); DNS replies pass unlearnt", l->queue,
		  strerror(-ret));
	loop_fd_del(loop, fd);
	dnsq_free(l->q);
	l->q = NULL;
}

int learner_plan(struct learner *l, struct loop *loop, struct moat_plan *plan)
{
	int ret;

	l->plan = plan;
	plan->resolved = resolved_has;
	plan->resolved_ctx = l->cache;
	if (l->q || (!plan->ndomains[0] && !plan->ndomains[1]))
		return 0;
	ret = dnsq_open(l->queue, &l->q);
	if (!ret)
		ret = loop_fd_add(loop, dnsq_fd(l->q), EPOLLIN, queue_event, l);
	if (ret) {
		log_error("dns: cannot read queue %u (%s); DNS replies pass unlearnt", l->queue,
			  strerror(-ret));
		dnsq_free(l->q);
		l->q = NULL;
		return ret;
	}
	log_info("dns: learning from DNS replies to endpoints on queue %u", l->queue);
	return 0;
}

/* Replaying: each remembered triple under the rules that match it now, in one batch. */
struct replay {
	struct learner *l;
	uint64_t now;
	struct ruleset_dns *v;
	size_t n, cap;
	bool failed;
};

static void replay_one(void *ctx, const struct moat_addr *src, const struct moat_addr *dst,
		       const char *name, uint64_t expires_ms)
{
	static struct adds a;
	struct replay *r = ctx;
	const struct moat_plan_addr *pa = moat_plan_addr_find(r->l->plan, src);
	struct dns_reply reply = { .n = 1 };

	if (!pa || r->failed)
		return;
	snprintf(reply.qname, sizeof(reply.qname), "%s", name);
	reply.v[0] = (struct dns_answer){ *dst, 0 };
	a = (struct adds){ r->l, &reply, &r->l->plan->es->v[pa->endpoint], { { 0 } }, 0 };
	moat_plan_domains(r->l->plan, src, name, rule_matched, &a);
	for (size_t i = 0; i < a.n && !r->failed; i++) {
		if (grow((void **)&r->v, r->n, &r->cap, sizeof(*r->v))) {
			r->failed = true;
			break;
		}
		r->v[r->n] = a.v[i];
		r->v[r->n++].timeout_ms = (uint32_t)(expires_ms - r->now);	/* what is left */
	}
}

void learner_replay(struct learner *l)
{
	struct replay r = { l, loop_now_ms(), NULL, 0, 0, false };
	struct moat_diags diags = { 0 };

	if (!l->plan)
		return;
	resolved_sweep(l->cache, r.now);
	resolved_each(l->cache, r.now, replay_one, &r);
	if (r.failed)
		log_warn("dns: out of memory putting learnt addresses back; they come back as "
			 "endpoints resolve their names again");
	else if (r.n && ruleset_dns_add(l->rs, r.v, r.n, &diags))
		l->st.add_errors++;
	else if (r.n)
		log_info("dns: %zu learnt addresses put back after a full apply", r.n);
	log_diags(&diags);
	moat_diags_free(&diags);
	free(r.v);
}

void learner_stats_get(const struct learner *l, struct learner_stats *out)
{
	*out = l->st;
	out->remembered = resolved_count(l->cache);
	out->p50_us = latency_quantile(&l->lat, 0.5);
	out->p99_us = latency_quantile(&l->lat, 0.99);
}
