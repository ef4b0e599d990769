/*
 * From NFLOG records to flows, learning and alerts; and the control commands about them.
 * Per record: two address lookups in the plan, one decision, two or three name lookups and
 * one flow table lookup (all but the last skipped when the record before had the same
 * addresses, protocol, port and kind: see struct memo); nothing is allocated unless a name,
 * a flow key or a follower's line is new.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "alerts.h"
#include "capture.h"
#include "flow_query.h"
#include "flows.h"
#include "learn.h"
#include "log.h"
#include "metrics.h"
#include "moat/report.h"
#include "names.h"
#include "observe.h"
#include "svcgraph.h"
#include "tally.h"
#include "moat/baseline_group.h"

#define READ_BUDGET 4096		/* records per EPOLLIN before other work gets a turn */
#define CAPTURE_BUFFER (32u << 20)	/* socket buffer: ~100 ms of 100,000 records/s */
#define MAX_FOLLOWERS 64
#define SHOW_EVERY_MS 1000		/* a known flow is streamed again at most this often */
#define FLOWS_LIMIT_DEFAULT 1000
#define FLOWS_LIMIT_MAX 5000		/* a reply stays under the control socket's queue bound */
#define GRAPH_EDGES_MAX 2000		/* likewise for the graph as JSON */
#define TICK_MS 1000			/* alerts held back are reported this often */

/*
 * The last record's sides and decision, for the next record with the same addresses,
 * protocol, port and kind: a client that connects again and again to one service makes most
 * of a busy node's records, and its names and verdict cost more to find than the rest of
 * the record. Valid during one observe_read, whose plan does not change; it holds its
 * names, so that no flow's eviction frees them.
 */
struct memo {
	bool valid;
	enum capture_kind kind;
	uint8_t proto;
	bool has_ports;
	uint16_t dport;
	struct moat_addr saddr, daddr;
	const struct moat_endpoint *se, *de;
	uint32_t sname, dname, policy;
	unsigned verdict;
};

struct follower {
	struct observe *o;
	struct ctl_conn *conn;
	struct flow_query q;
};

struct observe {
	const struct config *cfg;
	struct loop *loop;
	int tick_timer;			/* armed while learning or alerts have work, else 0 */
	uint64_t tick_at;		/* when it fires (loop_now_ms) */
	struct capture *cap;
	char cap_error[256];
	struct flows *flows;
	struct names *names;
	struct tally *tally;		/* per policy and verdict, for the metrics */
	struct learn *learn;		/* NULL: the state directory cannot be used */
	struct alerts *alerts;		/* NULL: likewise */
	struct follower *followers[MAX_FOLLOWERS];
	size_t nfollowers;
	const struct moat_plan *plan;	/* in force, during observe_read */
	struct memo memo;		/* during observe_read */
	uint64_t learn_errors, unexpected;
	uint64_t unkeyed;		/* records that cannot be a flow: later fragments */
};

/* One side of a record: the endpoint with that address (if any) and its held name. */
struct side {
	const struct moat_endpoint *e;
	uint32_t name;
	const struct moat_addr *addr;
};

static void flow_release(const struct flow *f, void *data)
{
	struct names *names = data;

	names_drop(names, f->key.src.name);
	names_drop(names, f->key.dst.name);
	names_drop(names, f->policy);
}

static void state_open(struct observe *o)
{
	int ret = learn_new(o->cfg->state_dir, o->cfg->baseline_cap, &o->learn);

	if (!ret)
		ret = alerts_new(o->cfg->state_dir, o->cfg->alert_rate, &o->alerts);
	if (ret)
		log_warn("state directory %s: %s; learning and alerts are off", o->cfg->state_dir,
			 strerror(-ret));
}

int observe_new(const struct config *cfg, struct observe **out)
{
	struct observe *o = calloc(1, sizeof(*o));
	int ret = o ? names_new(&o->names) : -ENOMEM;

	if (!ret && !cfg->flow_cap) {
		log_error("--flow-cap must be at least 1");
		ret = -EINVAL;
	}
	if (!ret && !cfg->baseline_cap) {
		log_error("--baseline-cap must be at least 1");
		ret = -EINVAL;
	}
	if (!ret)
		ret = flows_new(cfg->flow_cap, flow_release, o->names, &o->flows);
	if (!ret)
		ret = tally_new(o->names, &o->tally);
	if (ret) {
		observe_free(o);
		return ret;
	}
	o->cfg = cfg;
	snprintf(o->cap_error, sizeof(o->cap_error), "not started");
	state_open(o);
	*out = o;
	return 0;
}

void observe_free(struct observe *o)
{
	if (!o)
		return;
	if (o->tick_timer)
		loop_timer_del(o->loop, o->tick_timer);
	capture_free(o->cap);
	flows_free(o->flows);		/* these two drop their names first */
	tally_free(o->tally);
	names_free(o->names);
	learn_free(o->learn);
	alerts_free(o->alerts);
	free(o);
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In how many ms learning or alerts have work (learn_tick_due, alerts_held), -1 for never. */
static int64_t tick_due(const struct observe *o)
{
	int64_t due = o->learn ? learn_tick_due(o->learn, unix_ms()) : -1;

	if (o->alerts && alerts_held(o->alerts) && (due < 0 || due > TICK_MS))
		due = TICK_MS;
	return due;
}

static void tick(struct loop *loop, void *data);

/*
 * The tick is a one-shot timer, armed for when the earliest work is due and only then: an
 * idle moatd (not learning, nothing held back) never wakes for it. Re-armed only when the
 * work is due sooner than the timer, so a stream of records costs no timer calls.
 */
static void tick_arm(struct observe *o)
{
	int64_t due = o->loop ? tick_due(o) : -1;
	uint64_t at = loop_now_ms() + (uint64_t)(due < 0 ? 0 : due);
	int id;

	if (due < 0 || (o->tick_timer && o->tick_at <= at))
		return;
	if (o->tick_timer)
		loop_timer_del(o->loop, o->tick_timer);
	id = loop_timer_add(o->loop, (unsigned)due, 0, tick, o);
	o->tick_timer = id > 0 ? id : 0;
	o->tick_at = at;
}

static void tick(struct loop *loop, void *data)
{
	struct observe *o = data;

	loop_timer_del(loop, o->tick_timer);
	o->tick_timer = 0;
	if (o->learn)
		learn_tick(o->learn, unix_ms());
	if (o->alerts)
		alerts_tick(o->alerts, loop_now_ms());
	tick_arm(o);
}

void observe_kick(struct observe *o)
{
	tick_arm(o);
}

int observe_start(struct observe *o, struct loop *loop, loop_fd_fn fn, void *data)
{
	int ret = capture_open(o->cfg->nflog_group, CAPTURE_BUFFER, &o->cap, o->cap_error,
			       sizeof(o->cap_error));

	if (ret) {
		log_warn("cannot read NFLOG group %u (%s): no flows, learning or alerts",
			 o->cfg->nflog_group, o->cap_error);
		o->cap = NULL;
	} else {
		o->cap_error[0] = '\0';
		ret = loop_fd_add(loop, capture_fd(o->cap), EPOLLIN, fn, data);
	}
	if (ret && o->cap)
		return ret;
	o->loop = loop;
	tick_arm(o);		/* a session that goes on from before a restart */
	return 0;
}

/* ---- per record ---- */

/* The endpoint that has address a in the plan, or NULL. */
static const struct moat_endpoint *endpoint_of(const struct moat_plan *plan,
					       const struct moat_addr *a)
{
	const struct moat_plan_addr *pa = plan ? moat_plan_addr_find(plan, a) : NULL;

	return pa ? &plan->es->v[pa->endpoint] : NULL;
}

static void side_init(struct observe *o, const struct moat_addr *a, struct side *s)
{
	char buf[1024], group[1024];
	int len;

	s->addr = a;
	s->name = 0;
	s->e = endpoint_of(o->plan, a);
	if (!s->e)
		return;
	len = snprintf(buf, sizeof(buf), "%s/%s", s->e->namespace, s->e->name);
	s->name = names_get(o->names, buf, len < (int)sizeof(buf) ? (size_t)len : sizeof(buf) - 1);
	if (!s->name || names_meta(o->names, s->name))
		return;
	moat_baseline_group_name(s->e, group, sizeof(group));
	names_meta_set(o->names, s->name, json_pack("{s:o,s:s}", "labels",
						    moat_labels_json(&s->e->labels), "group", group));
}

/* Appends one name to the comma-separated names in buf unless it is there already. */
static void name_put(char *buf, size_t len, const char *one)
{
	size_t at = strlen(buf);

	if (!strstr(buf, one))
		snprintf(buf + at, len - at, "%s%s", at ? ", " : "", one);
}

/* Appends "ns/name" of policy p. */
static void policy_put(const struct moat_plan *plan, uint32_t p, char *buf, size_t len)
{
	const struct moat_netpol *pol;
	char one[512];

	if (p >= plan->ps->npols)
		return;
	pol = &plan->ps->pols[p];
	snprintf(one, sizeof(one), "%s/%s", pol->namespace, pol->name);
	name_put(buf, len, one);
}

static void isolating_put(const struct moat_plan *plan, const struct moat_addr *a, bool egress,
			  char *buf, size_t len)
{
	const uint32_t *pols;
	size_t n = moat_plan_isolating(plan, moat_plan_ident_of(plan, a), egress, &pols);

	for (size_t i = 0; i < n; i++)
		policy_put(plan, pols[i], buf, len);
}

/* Appends what decided one direction of v: "<tier>/<policy>/<rule>" for a tier's rule, the
 * allowing rule's policy, or (denied by NetworkPolicy) the isolating policies. */
static void decider_put(const struct moat_plan *plan, const struct moat_verdict *v,
			const struct capture_record *r, bool egress, char *buf, size_t len)
{
	enum moat_decider by = egress ? v->out_by : v->in_by;
	const struct moat_cnp_ref *ref = egress ? &v->out_cnp : &v->in_cnp;
	char one[400];

	if ((by == MOAT_BY_ADMIN || by == MOAT_BY_BASELINE) && ref->policy < plan->ps->ncnps)
		name_put(buf, len, moat_cnp_rule_format(&plan->ps->cnps[ref->policy], egress,
							ref->rule, one, sizeof(one)));
	else if (by == MOAT_BY_NETPOL && (egress ? v->out_ok : v->in_ok))
		policy_put(plan, (egress ? v->out_rule : v->in_rule).policy, buf, len);
	else if (by == MOAT_BY_NETPOL)
		isolating_put(plan, egress ? &r->saddr : &r->daddr, egress, buf, len);
}

/* A passed connection: allowed (by which rules' policies) or a violation (of which). */
static unsigned decide_pass(const struct moat_plan *plan, const struct capture_record *r,
			    char *buf, size_t len)
{
	struct moat_verdict v;

	moat_plan_decide(plan, &r->saddr, &r->daddr, r->proto, r->dport, &v);
	for (int egress = 1; egress >= 0; egress--)
		if (v.kind == MOAT_ALLOW || !(egress ? v.out_ok : v.in_ok))
			decider_put(plan, &v, r, egress, buf, len);
	/* not allowed, yet it went through: monitor mode, or a plan newer than the packet */
	return v.kind == MOAT_ALLOW ? FLOW_ALLOWED : FLOW_VIOLATION;
}

/* A dropped connection: what denied the direction that dropped it. */
static void decide_drop(const struct moat_plan *plan, const struct capture_record *r,
			bool egress, char *buf, size_t len)
{
	struct moat_verdict v;

	moat_plan_decide(plan, &r->saddr, &r->daddr, r->proto, r->dport, &v);
	if (egress ? v.out_ok : v.in_ok)	/* a plan newer than the packet: who isolated it */
		isolating_put(plan, egress ? &r->saddr : &r->daddr, egress, buf, len);
	else
		decider_put(plan, &v, r, egress, buf, len);
}

/* The verdict of a record and the deciding policies (a held name, 0 for none). */
static unsigned decide(struct observe *o, const struct capture_record *r, uint32_t *policy)
{
	const struct moat_plan *plan = o->plan;
	char buf[1024] = "";
	unsigned verdict = FLOW_DENIED;

	if (r->kind == CAPTURE_PASS)
		verdict = plan ? decide_pass(plan, r, buf, sizeof(buf)) : FLOW_ALLOWED;
	else if ((r->kind == CAPTURE_DROP_IN || r->kind == CAPTURE_DROP_OUT) && plan)
		decide_drop(plan, r, r->kind == CAPTURE_DROP_OUT, buf, sizeof(buf));
	*policy = buf[0] ? names_get(o->names, buf, strlen(buf)) : 0;
	return verdict;
}

static void memo_clear(struct observe *o)
{
	struct memo *m = &o->memo;

	if (!m->valid)
		return;
	names_drop(o->names, m->sname);
	names_drop(o->names, m->dname);
	names_drop(o->names, m->policy);
	m->valid = false;
}

/* One more hold on each of the memo's names: for the memo itself, or for a caller. */
static void memo_hold(struct observe *o)
{
	const struct memo *m = &o->memo;

	names_hold(o->names, m->sname);
	names_hold(o->names, m->dname);
	names_hold(o->names, m->policy);
}

static bool memo_match(const struct memo *m, const struct capture_record *r)
{
	return m->valid && m->kind == r->kind && m->proto == r->proto &&
	       m->has_ports == r->has_ports && m->dport == r->dport &&
	       !moat_addr_cmp(&m->saddr, &r->saddr) && !moat_addr_cmp(&m->daddr, &r->daddr);
}

/* The memo's sides and decision for r, held once more for the caller as side_init and
 * decide hold theirs. False when r is another record. */
static bool memo_get(struct observe *o, const struct capture_record *r, struct side *s,
		     struct side *d, uint32_t *policy, unsigned *verdict)
{
	const struct memo *m = &o->memo;

	if (!memo_match(m, r))
		return false;
	*s = (struct side){ m->se, m->sname, &r->saddr };
	*d = (struct side){ m->de, m->dname, &r->daddr };
	*policy = m->policy;
	*verdict = m->verdict;
	memo_hold(o);
	return true;
}

static void memo_put(struct observe *o, const struct capture_record *r, const struct side *s,
		     const struct side *d, uint32_t policy, unsigned verdict)
{
	memo_clear(o);
	o->memo = (struct memo){ true, r->kind, r->proto, r->has_ports, r->dport, r->saddr,
				 r->daddr, s->e, d->e, s->name, d->name, policy, verdict };
	memo_hold(o);
}

static void key_make(const struct side *s, const struct side *d, const struct capture_record *r,
		     struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->src.name = s->name;
	if (!s->name)
		k->src.addr = *s->addr;
	k->dst.name = d->name;
	if (!d->name)
		k->dst.addr = *d->addr;
	k->proto = r->proto;
	k->port = r->has_ports ? r->dport : 0;
}

static void flow_update(struct observe *o, struct flow *f, const struct capture_record *r,
			unsigned verdict, uint32_t policy, bool fresh)
{
	if (fresh)
		f->first_ms = r->time_ms;
	if (r->time_ms > f->last_ms)
		f->last_ms = r->time_ms;
	f->count++;
	f->saddr = r->saddr;
	f->daddr = r->daddr;
	f->kind = (uint8_t)r->kind;
	f->verdict = (uint8_t)verdict;
	if (f->policy == policy) {
		names_drop(o->names, policy);
		return;
	}
	names_drop(o->names, f->policy);
	f->policy = policy;
}

static void learn_feed(struct observe *o, const struct side *s, const struct side *d,
		       const struct capture_record *r)
{
	int ret;

	if (!o->learn || r->kind != CAPTURE_PASS || (!s->e && !d->e))
		return;
	ret = learn_record(o->learn, s->e, s->addr, d->e, d->addr, r->proto,
			   r->has_ports ? r->dport : 0, r->time_ms);
	if (ret < 0 && o->learn_errors++ == 0)
		log_warn("learning: cannot record a flow: %s", strerror(-ret));
}

static void peer_text(const struct observe *o, const struct flow_peer *p,
		      const struct moat_addr *a, char *buf, size_t len)
{
	char ip[64];

	moat_addr_format(a, ip, sizeof(ip));
	if (p->name)
		snprintf(buf, len, "%s (%s)", names_str(o->names, p->name), ip);
	else
		snprintf(buf, len, "%s", ip);
}

static void alert_raise(struct observe *o, const struct flow *f)
{
	char from[600], to[600], text[2048], pbuf[8];
	const char *why = f->verdict == FLOW_VIOLATION
		? "not in the baseline and not allowed by policy; it passed (monitor mode)"
		: "not in the baseline and not allowed by policy; dropped";
	json_t *j = flow_json(f, o->names);

	peer_text(o, &f->key.src, &f->saddr, from, sizeof(from));
	peer_text(o, &f->key.dst, &f->daddr, to, sizeof(to));
	snprintf(text, sizeof(text), "moat: unexpected flow %s -> %s %u/%s %s (%s): %s", from, to,
		 f->key.port, flow_proto_name(f->key.proto, pbuf), flow_verdict_name(f->verdict),
		 f->policy ? names_str(o->names, f->policy) : "no policy", why);
	if (!j)
		return;
	json_object_set_new(j, "kind", json_string("unexpected-flow"));
	json_object_set_new(j, "why", json_string(why));
	o->unexpected++;
	alerts_raise(o->alerts, j, text, loop_now_ms());
}

/* Once per flow and verdict, when a baseline exists and the flow is neither in it nor allowed. */
static void alert_check(struct observe *o, struct flow *f, const struct side *s,
			const struct side *d, const struct capture_record *r)
{
	uint8_t bit = (uint8_t)(1u << f->verdict);

	if (f->verdict == FLOW_ALLOWED || (f->alerted & bit) || !o->alerts || !o->learn ||
	    !learn_has_baseline(o->learn) || (!s->e && !d->e))
		return;
	if (learn_known(o->learn, s->e, s->addr, d->e, d->addr, r->proto,
			r->has_ports ? r->dport : 0))
		return;
	f->alerted |= bit;
	alert_raise(o, f);
}

static void followers_show(struct observe *o, struct flow *f, bool news)
{
	json_t *j = NULL;

	if (!o->nfollowers || (!news && f->last_ms - f->shown_ms < SHOW_EVERY_MS))
		return;
	f->shown_ms = f->last_ms;
	for (size_t i = 0; i < o->nfollowers; i++) {
		if (!flow_query_match(&o->followers[i]->q, f, o->names))
			continue;
		if (!j && !(j = flow_json(f, o->names)))
			return;
		ctl_conn_send(o->followers[i]->conn, j);
	}
	json_decref(j);
}

static void on_record(const struct capture_record *r, void *data)
{
	struct observe *o = data;
	struct side s, d;
	struct flow_key k;
	struct flow *f;
	uint32_t policy;
	unsigned verdict;
	bool fresh, news;

	/* A record without the port it would be keyed by is counted, never a flow to port 0. */
	if (!capture_record_keyed(r)) {
		o->unkeyed++;
		return;
	}
	if (!memo_get(o, r, &s, &d, &policy, &verdict)) {
		side_init(o, &r->saddr, &s);
		side_init(o, &r->daddr, &d);
		verdict = decide(o, r, &policy);
		memo_put(o, r, &s, &d, policy, verdict);
	}
	key_make(&s, &d, r, &k);
	f = flows_get(o->flows, &k, &fresh);
	if (!fresh) {		/* the flow holds its names already */
		names_drop(o->names, s.name);
		names_drop(o->names, d.name);
	}
	news = fresh || f->verdict != verdict;
	tally_add(o->tally, policy, verdict, fresh);
	flow_update(o, f, r, verdict, policy, fresh);
	learn_feed(o, &s, &d, r);
	alert_check(o, f, &s, &d, r);
	followers_show(o, f, news);
}

void observe_read(struct observe *o, const struct moat_plan *plan)
{
	int ret;

	if (!o->cap)
		return;
	o->plan = plan;
	ret = capture_read(o->cap, READ_BUDGET, on_record, o);
	memo_clear(o);
	o->plan = NULL;
	if (ret < 0)
		log_warn("reading NFLOG failed: %s", strerror(-ret));
	if (ret > 0)
		tick_arm(o);	/* records may have been learned, or alerts held back */
}

/* ---- status ---- */

json_t *observe_capture_json(struct observe *o)
{
	struct capture_stats st = { 0 };

	if (!o->cap)
		return json_pack("{s:i,s:s}", "group", (int)o->cfg->nflog_group, "error", o->cap_error);
	capture_stats_get(o->cap, &st);
	return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "group",
			 (int)o->cfg->nflog_group, "records", (json_int_t)st.records, "ignored",
			 (json_int_t)st.ignored, "malformed", (json_int_t)st.malformed, "truncated",
			 (json_int_t)st.truncated, "fragments", (json_int_t)o->unkeyed,
			 "read_errors", (json_int_t)st.read_errors, "drops",
			 (json_int_t)st.kernel_drops, "buffer_bytes", (json_int_t)st.buffer_bytes);
}

json_t *observe_table_json(struct observe *o)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)flows_count(o->flows),
			 "cap", (json_int_t)flows_cap(o->flows), "evicted",
			 (json_int_t)flows_evicted(o->flows), "bytes",
			 (json_int_t)flows_bytes(o->flows), "names", (json_int_t)names_count(o->names));
}

void observe_status(struct observe *o, json_t *status)
{
	json_object_set_new(status, "capture", observe_capture_json(o));
	json_object_set_new(status, "flows", observe_table_json(o));
	if (o->learn)
		json_object_set_new(status, "learning", learn_status_json(o->learn, false));
	if (o->alerts) {
		json_t *a = alerts_stats_json(o->alerts);

		json_object_set_new(a, "unexpected", json_integer((json_int_t)o->unexpected));
		json_object_set_new(status, "alerts", a);
	}
}

void observe_metrics(FILE *out, struct observe *o)
{
	struct capture_stats st = { 0 };
	json_t *a = o->alerts ? alerts_stats_json(o->alerts) : NULL;

	tally_metrics(out, o->tally);
	metrics_gauge(out, "moat_flows", "Flows in the flow table", (double)flows_count(o->flows));
	metrics_counter(out, "moat_flows_evicted_total",
			"Flows pushed out of the full table by newer ones (--flow-cap)",
			flows_evicted(o->flows));
	if (o->cap)
		capture_stats_get(o->cap, &st);
	metrics_gauge(out, "moat_capture_up", "1 while moatd reads its NFLOG group", o->cap != NULL);
	metrics_counter(out, "moat_capture_records_total", "NFLOG records read", st.records);
	metrics_counter(out, "moat_capture_drops_total",
			"NFLOG records the kernel could not queue to moatd (lost)", st.kernel_drops);
	metrics_counter(out, "moat_capture_malformed_total", "NFLOG records that did not parse",
			st.malformed);
	metrics_counter(out, "moat_capture_truncated_total",
			"NFLOG records without their whole transport header (not made flows)",
			st.truncated);
	metrics_counter(out, "moat_capture_fragments_total",
			"NFLOG records of later fragments, whose port is unknown (not made flows)",
			o->unkeyed);
	metrics_counter(out, "moat_alerts_total", "Alerts raised (unexpected flows)",
			a ? (uint64_t)json_integer_value(json_object_get(a, "raised")) : 0);
	metrics_counter(out, "moat_alerts_suppressed_total", "Alerts held back by --alert-rate",
			a ? (uint64_t)json_integer_value(json_object_get(a, "suppressed")) : 0);
	json_decref(a);
}

/* ---- for the control commands ---- */

static void follower_closed(struct ctl_conn *conn, void *data)
{
	struct follower *fl = data;
	struct observe *o = fl->o;

	for (size_t i = 0; i < o->nfollowers; i++)
		if (o->followers[i] == fl) {
			o->followers[i] = o->followers[--o->nfollowers];
			break;
		}
	flow_query_fini(&fl->q);
	free(fl);
}

int observe_follow(struct observe *o, struct ctl_conn *conn, struct flow_query *q)
{
	struct follower *fl;

	if (o->nfollowers == MAX_FOLLOWERS || !(fl = calloc(1, sizeof(*fl))))
		return -EBUSY;
	*fl = (struct follower){ o, conn, *q };
	memset(q, 0, sizeof(*q));
	o->followers[o->nfollowers++] = fl;
	ctl_conn_stream(conn, follower_closed, fl);
	return 0;
}

json_t *observe_flows(struct observe *o, const struct flow_query *q, size_t *matched)
{
	size_t limit = q->limit ? q->limit : FLOWS_LIMIT_DEFAULT, n = 0;
	const struct flow **pick;
	json_t *arr = json_array();

	limit = limit > FLOWS_LIMIT_MAX ? FLOWS_LIMIT_MAX : limit;
	pick = calloc(limit, sizeof(*pick));
	*matched = 0;
	for (const struct flow *f = flows_newest(o->flows); pick && f; f = flows_older(o->flows, f)) {
		if (!flow_query_match(q, f, o->names))
			continue;
		if (n < limit)
			pick[n++] = f;
		(*matched)++;
	}
	while (arr && n)
		json_array_append_new(arr, flow_json(pick[--n], o->names));
	free(pick);
	return arr;
}

struct learn *observe_learn(struct observe *o)
{
	return o->learn;
}

struct alerts *observe_alerts(struct observe *o)
{
	return o->alerts;
}

int observe_graph_dot(struct observe *o, const struct moat_plan *plan, char **dot)
{
	return svcgraph_dot(o->flows, o->names, plan, dot);
}

int observe_graph_json(struct observe *o, const struct moat_plan *plan, json_t **out)
{
	return svcgraph_json(o->flows, o->names, plan, GRAPH_EDGES_MAX, out);
}
