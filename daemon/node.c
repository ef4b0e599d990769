/*
 * moatd's state and its two ways of changing (node.h): commit_change, by a delta, for what
 * the sources changed; commit_whole, beside the old state and then swapped in, for the rest
 * and whenever a delta cannot be made or is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "cluster/cluster.h"
#include "datapath/conntrack.h"
#include "datapath/revocation.h"
#include "datapath/ruleset.h"
#include "dns/learner.h"
#include "endpoints/file.h"
#include "endpoints/store.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "runtime/netns.h"
#include "runtime/runtime.h"

#define SWEEP_AFTER_MS 50
#define RESYNC_FULL_EVERY 10		/* resyncs: one in ten inspects all and verifies */

struct node {
	const struct config *cfg;
	struct loop *loop;
	struct moat_policy_set *ps;	/* in force */
	struct moat_plan *plan;		/* in force: compiled from ps and the store's set */
	enum moat_mode mode;
	struct epstore *store;		/* the endpoints' sources and the set in force */
	struct ruleset *rs;
	struct runtime *runtime;	/* NULL with --runtime none */
	struct epfile *file;		/* NULL without --endpoints */
	struct cluster *cluster;	/* NULL without --etcd */
	struct observe *obs;		/* flows, learning and alerts from the NFLOG group */
	struct learner *dns;		/* what endpoints resolve, for domainNames rules */
	struct revocation revocation;	/* addresses whose connections are still to sweep */
	int sweep_timer;		/* the sweep timer while it is armed, or 0 */
	bool sweep_due;			/* a departure's sweep has not run yet */
	int whole_timer;		/* a whole commit is due (stale plan or set), or 0 */
	uint64_t started_ms, applies, apply_errors, repairs, revoked, last_apply_us;
	uint64_t deltas, wholes, sweeps[3];
	uint64_t resyncs;		/* periodic ones */
	struct latency enforced;	/* from a runtime event or file change to the kernel */
	struct moat_addr *node_addrs;	/* the node's own, which no bridge port may claim */
	size_t nnode_addrs;
};

/* The policy directory, all or nothing (with etcd's: none until they arrive). */
static int policies_load(const struct config *cfg, struct moat_policy_set **out,
			 struct moat_diags *diags)
{
	const char *paths[] = { cfg->policy_dir };
	if (cfg->policies_from_etcd)
		return moat_policy_set_parse("", "", 0, out, diags);
	return moat_policy_set_load(paths, 1, out, diags);
}

/* ---- sweeping connections the state no longer allows ---- */

/*
 * Connections the new plan denies stop now, not only new ones; this also keeps an address
 * that a removed container had from handing its connections to the next container with it.
 */
static void connections_revoke(struct node *n)
{
	struct revocation *r = &n->revocation;
	int ret;

	n->sweep_due = false;
	revocation_gone(r, n->plan);
	ret = conntrack_revoke(n->plan, r->gone, r->ngone);
	if (ret >= 0)
		revocation_clear(r);
	if (ret < 0)
		log_warn("revoking connections the policy no longer allows failed: %s", strerror(-ret));
	else if (ret > 0)
		log_info("revoked %d connection%s the policy no longer allows", ret, ret == 1 ? "" : "s");
	if (ret > 0)
		n->revoked += (uint64_t)ret;
}

/* One timer at a time, left to fire even when a sweep ran meanwhile (no dead timer piles up). */
static void sweep_tick(struct loop *loop, void *data)
{
	struct node *n = data;

	loop_timer_del(loop, n->sweep_timer);
	n->sweep_timer = 0;
	if (n->sweep_due)
		connections_revoke(n);
}

/*
 * Soon after the change it sweeps for is enforced: departures within SWEEP_AFTER_MS share one
 * dump of the conntrack table (which walks every bucket of the kernel's: some milliseconds of
 * CPU even when empty). An address that comes back in the meantime is swept first
 * (revocation.h), so the wait gives no connection to anyone new.
 */
static void sweep_schedule(struct node *n)
{
	int id;

	n->sweep_due = true;
	if (n->sweep_timer)
		return;
	id = loop_timer_add(n->loop, SWEEP_AFTER_MS, 0, sweep_tick, n);
	if (id > 0)
		n->sweep_timer = id;
	else
		connections_revoke(n);
}

static void sweep_after(struct node *n, int need)
{
	n->sweeps[need]++;
	if (need == REVOCATION_NOW)
		connections_revoke(n);
	else if (need == REVOCATION_LATER)
		sweep_schedule(n);
}

/* ---- whole commits ---- */

static bool cidrs_equal(const struct moat_endpoint_set *a, const struct moat_endpoint_set *b)
{
	return a->nsubnets == b->nsubnets &&
	       (!a->nsubnets || !memcmp(a->subnets, b->subnets, a->nsubnets * sizeof(*a->subnets)));
}

/* What replacing the state in force with (ps, es, mode) can take from live connections. */
static int whole_need(struct node *n, const struct moat_policy_set *ps,
		      const struct moat_endpoint_set *es, enum moat_mode mode)
{
	int need;

	if (!n->plan || ps != n->ps || mode != n->mode || !cidrs_equal(n->plan->es, es))
		return REVOCATION_NOW;
	need = revocation_diff(&n->revocation, n->plan, es, es->subnets, es->nsubnets);
	return need < 0 ? REVOCATION_NOW : need;
}

/*
 * Makes (ps, the store's whole set, mode) the state in force. Takes ownership of ps when it
 * is not the one in force, also on failure (then it is freed and the old state stays).
 */
static int commit_whole(struct node *n, struct moat_policy_set *ps, enum moat_mode mode,
			bool full, struct moat_diags *diags)
{
	struct moat_endpoint_set *es = NULL, *old;
	struct moat_plan *plan = NULL;
	uint64_t t0 = loop_now_us();
	int need = REVOCATION_NOW, ret = epstore_build(n->store, &es);

	if (!ret)
		ret = moat_plan_compile(ps, es, mode, n->plan, &plan);
	if (!ret) {
		struct ruleset_input in = {
			.plan = plan, .es = es, .managed = es->subnets, .nmanaged = es->nsubnets,
			.mode = mode, .nflog_group = n->cfg->nflog_group,
			.dns_queue = n->cfg->dns_queue, .node = n->node_addrs,
			.nnode = n->nnode_addrs, .log_rate = n->cfg->log_rate,
			.host_access = n->cfg->host_policy ? RULESET_HOST_POLICY : RULESET_HOST_ALLOW,
		};

		need = whole_need(n, ps, es, mode);
		ret = ruleset_apply(n->rs, &in, full, diags);
		if (ret && !full) {
			log_warn("applying the difference failed (%s); applying the whole ruleset",
				 strerror(-ret));
			ret = ruleset_apply(n->rs, &in, true, diags);
		}
	}
	n->applies++;
	if (ret) {
		n->apply_errors++;
		moat_plan_free(plan);
		moat_endpoint_set_free(es);
		if (ps != n->ps)
			moat_policy_set_free(ps);
		return ret;
	}
	learner_plan(n->dns, n->loop, plan);
	if (ruleset_stats(n->rs)->full)
		learner_replay(n->dns);
	moat_plan_free(n->plan);
	old = epstore_install(n->store, es);
	if (n->cluster)
		cluster_publish_whole(n->cluster, old, es);
	moat_endpoint_set_free(old);
	if (ps != n->ps)
		moat_policy_set_free(n->ps);
	n->plan = plan, n->ps = ps, n->mode = mode;
	n->wholes++;
	n->last_apply_us = loop_now_us() - t0;
	sweep_after(n, need);
	return 0;
}

static int commit_whole_logged(struct node *n, bool full)
{
	struct moat_diags diags = { 0 };
	int ret = commit_whole(n, n->ps, n->mode, full, &diags);

	if (ret)
		log_error("applying the ruleset failed: %s", strerror(-ret));
	log_diags(&diags);
	moat_diags_free(&diags);
	return ret;
}

/* A plan or set that many deltas made stale is compiled whole on the next turn of the loop. */
static void whole_tick(struct loop *loop, void *data)
{
	struct node *n = data;

	loop_timer_del(loop, n->whole_timer);
	n->whole_timer = 0;
	commit_whole_logged(n, false);
}

static void whole_schedule(struct node *n)
{
	int id;

	if (n->whole_timer)
		return;
	id = loop_timer_add(n->loop, 0, 0, whole_tick, n);
	if (id > 0)
		n->whole_timer = id;
}

/* ---- the node's own addresses ---- */

/*
 * Reads the node's addresses again (a new network's bridge brings its gateway). Returns 1
 * when they changed (the ruleset must follow), 0 when not, or -errno (the old ones stay).
 */
static int node_addrs_refresh(struct node *n)
{
	struct moat_addr *v = NULL;
	size_t k = 0;
	int ret = netns_self_addrs(&v, &k);

	if (ret < 0) {
		log_warn("reading the node's own addresses: %s", strerror(-ret));
		return ret;
	}
	if (k == n->nnode_addrs && (!k || !memcmp(v, n->node_addrs, k * sizeof(*v)))) {
		free(v);
		return 0;
	}
	free(n->node_addrs);
	n->node_addrs = v, n->nnode_addrs = k;
	return 1;
}

/* ---- changes ---- */

/* commit_change's 1 for a commit that succeeded, or its error. */
static int applied(int ret)
{
	return ret ? ret : 1;
}

/*
 * The change the store's sources made, as a delta of the plan and of the ruleset. Returns 1
 * when something was applied, 0 when nothing changed, or -errno.
 */
static int commit_change(struct node *n)
{
	struct moat_diags diags = { 0 };
	struct moat_plan_delta *d = NULL;
	struct epchange c;
	uint64_t t0 = loop_now_us();
	size_t nm;
	const struct moat_cidr *m = epstore_managed(n->store, &nm);
	int need, ret;

	if (!n->plan)
		return applied(commit_whole_logged(n, true));
	ret = epstore_change(n->store, &c);
	if (!ret && !c.whole && !c.ngone && !c.ncome) {
		epstore_change_free(&c);
		return 0;
	}
	if (!ret && !c.whole)
		ret = moat_plan_delta_new(n->plan, c.gone, c.ngone, c.come, c.ncome, &d);
	if (ret || c.whole) {
		if (ret && ret != -ESTALE)
			log_warn("computing the change failed (%s); applying the whole state",
				 strerror(-ret));
		epstore_change_free(&c);
		return applied(commit_whole_logged(n, false));
	}
	need = revocation_change(&n->revocation, n->plan, c.gone, c.ngone, c.come, c.ncome, m, nm);
	ret = ruleset_apply_change(n->rs, n->plan, d, c.gone, c.ngone, c.come, c.ncome, &diags);
	n->applies++;
	if (ret) {
		n->apply_errors++;
		log_warn("the kernel refused the change (%s); applying the whole ruleset",
			 strerror(-ret));
		log_diags(&diags);
		moat_diags_free(&diags);
		moat_plan_delta_free(d);
		epstore_change_free(&c);
		return applied(commit_whole_logged(n, true));
	}
	size_t c_ngone = c.ngone, c_ncome = c.ncome;

	if (n->cluster)
		cluster_publish_change(n->cluster, epstore_set(n->store), c.gone, c.ngone, c.come,
				       c.ncome);
	epstore_change_apply(n->store, &c);
	moat_plan_delta_commit(n->plan, d);
	epstore_change_free(&c);
	n->deltas++;
	n->last_apply_us = loop_now_us() - t0;
	log_debug("committed a change: %zu endpoints went, %zu came (sweep: %d)", c_ngone, c_ncome,
		  need);
	sweep_after(n, need < 0 ? REVOCATION_NOW : need);
	if (moat_plan_stale(n->plan) || moat_endpoint_set_stale(n->plan->es))
		whole_schedule(n);
	return 1;
}

/* A source changed the store (runtime_changed_fn, epfile_changed_fn). */
static void endpoints_changed(void *data, uint64_t t0)
{
	struct node *n = data;

	if (n->runtime && !runtime_synced(n->runtime))
		return;		/* the first listing commits everything at once */
	if (n->cluster && !n->plan && !cluster_ready(n->cluster))
		return;		/* and waits for etcd's: never a first ruleset without them */
	/* a container's network may be new, and its bridge's gateway with it: one dump of the
	 * node's addresses, whatever the number of endpoints */
	if (n->plan && node_addrs_refresh(n) > 0) {
		if (!commit_whole_logged(n, false))
			latency_add(&n->enforced, loop_now_us() - t0);
		return;
	}
	if (commit_change(n) > 0)
		latency_add(&n->enforced, loop_now_us() - t0);
}

/* A policy set from etcd (cluster_policies_fn): applied whole, like a reload. */
static int cluster_policies(void *data, struct moat_policy_set *ps, int64_t revision)
{
	struct node *n = data;
	struct moat_diags diags = { 0 };
	int ret = 0;

	if (!n->plan) {		/* the first commit takes it */
		moat_policy_set_free(n->ps);
		n->ps = ps;
		cluster_policies_applied(n->cluster, revision);
	} else {
		ret = commit_whole(n, ps, n->mode, false, &diags);
	}
	if (ret) {
		log_error("the policies of etcd's revision %lld are refused (%s); the running "
			  "policy stays in force", (long long)revision, strerror(-ret));
		log_diags(&diags);
	} else if (n->plan && n->ps == ps) {
		cluster_policies_applied(n->cluster, revision);
		log_info("policies of etcd's revision %lld in force: %zu policies",
			 (long long)revision, n->ps->npols);
	}
	moat_diags_free(&diags);
	return ret;
}

/* ---- life ---- */

/* One resolver of dns-resolvers: an address, or a CIDR. 0 or -EINVAL. */
static int resolver_parse(const char *tok, struct moat_cidr *out)
{
	struct moat_addr a;
	char buf[64];

	if (strchr(tok, '/') || moat_addr_parse(tok, &a))
		return moat_cidr_parse(tok, out);
	snprintf(buf, sizeof(buf), "%s/%d", tok, a.family == AF_INET ? 32 : 128);
	return moat_cidr_parse(buf, out);
}

/* The learner, with the resolvers of dns-resolvers (separated by commas or blanks). */
static int dns_new(const struct config *cfg, struct ruleset *rs, struct learner **out)
{
	struct moat_cidr v[64];
	size_t n = 0;
	char *s = cfg->dns_resolvers ? strdup(cfg->dns_resolvers) : NULL, *save = NULL, *tok;
	int ret = cfg->dns_resolvers && !s ? -ENOMEM : 0;

	for (tok = s ? strtok_r(s, ", \t", &save) : NULL; tok && !ret;
	     tok = strtok_r(NULL, ", \t", &save)) {
		ret = n < sizeof(v) / sizeof(v[0]) ? resolver_parse(tok, &v[n++]) : -E2BIG;
		if (ret)
			log_error("dns-resolvers: '%s' is not an address or a CIDR (at most %zu)", tok,
				  sizeof(v) / sizeof(v[0]));
	}
	free(s);
	return ret ? ret : learner_new(cfg->dns_queue, rs, v, n, out);
}

int node_new(const struct config *cfg, struct node **out)
{
	struct moat_diags diags = { 0 };
	struct node *n = calloc(1, sizeof(*n));
	int ret = n ? 0 : -ENOMEM;

	if (!ret) {
		n->cfg = cfg;
		n->mode = cfg->mode;
		n->started_ms = loop_now_ms();
		ret = policies_load(cfg, &n->ps, &diags);
		if (ret)
			log_error("policies in %s are not valid; refusing to start", cfg->policy_dir);
	}
	log_diags(&diags);
	moat_diags_free(&diags);
	if (!ret)
		ret = ruleset_new(&n->rs);
	if (!ret)
		ret = epstore_new(&n->store);
	if (!ret && strcmp(cfg->runtime, "none"))
		ret = runtime_new(cfg, n->store, endpoints_changed, n, &n->runtime);
	if (!ret && cfg->endpoints_file)
		ret = epfile_new(cfg->endpoints_file, n->store, endpoints_changed, n, &n->file);
	if (!ret && cfg->etcd)
		ret = cluster_new(cfg, n->store, endpoints_changed, cluster_policies, n, &n->cluster);
	if (!ret)
		ret = observe_new(cfg, &n->obs);
	if (!ret)
		ret = dns_new(cfg, n->rs, &n->dns);
	if (ret) {
		node_free(n);
		return ret;
	}
	*out = n;
	return 0;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	observe_free(n->obs);
	learner_free(n->dns);
	cluster_free(n->cluster);
	runtime_free(n->runtime);
	epfile_free(n->file);
	moat_plan_free(n->plan);
	epstore_free(n->store);
	moat_policy_set_free(n->ps);
	ruleset_free(n->rs);
	revocation_free(&n->revocation);
	free(n->node_addrs);
	free(n);
}

/*
 * Whether the kernel holds what moatd applied (by counts); when not, or when it cannot be
 * read back, logs why (what: the occasion) and the caller restores it.
 */
static bool ruleset_in_sync(struct node *n, const char *what)
{
	bool in_sync = false;
	char why[256] = "";
	int ret;

	if (!n->plan)
		return true;
	ret = ruleset_verify(n->rs, &in_sync, why, sizeof(why));
	if (!ret && in_sync)
		return true;
	if (ret)
		snprintf(why, sizeof(why), "cannot read it back: %s", strerror(-ret));
	log_warn("%s: the ruleset is not what moatd applied (%s); restoring it", what, why);
	return false;
}

static void tamper_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct node *n = data;
	struct ruleset_tamper t;

	if (ruleset_watch_read(n->rs, &t) < 0 || (!t.changed && !t.lost))
		return;
	if (t.changed)
		log_warn("someone else changed Moat's ruleset (%s, pid %d %s); restoring it", t.what,
			 (int)t.pid, t.comm);
	else if (ruleset_in_sync(n, "notifications were lost"))
		return;		/* our own big apply overflowed the socket: a repair would again */
	n->repairs++;
	commit_whole_logged(n, true);
}

/*
 * The periodic reconciliation. Events and the tamper watch carry every change; this is the
 * safety net for what they might miss. Each time: one listing of the runtime, inspecting
 * only the containers whose listing changed (runtime_check). Every RESYNC_FULL_EVERY-th
 * time: every container inspected again, and the ruleset read back (a dump of every set),
 * which the tamper watch makes a check of the kernel: it reports every change of another
 * process, and lost notifications, which are verified at once.
 */
static void resync_tick(struct loop *loop, void *data)
{
	struct node *n = data;
	bool full = ++n->resyncs % RESYNC_FULL_EVERY == 0;

	if (n->runtime && full)
		runtime_resync(n->runtime);
	else if (n->runtime)
		runtime_check(n->runtime);
	if (node_addrs_refresh(n) > 0 && n->plan)
		commit_whole_logged(n, false);
	if (full && !ruleset_in_sync(n, "periodic check")) {
		n->repairs++;
		commit_whole_logged(n, true);
	}
}

/* Records of the NFLOG group: flows are decided on the plan in force. */
static void capture_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct node *n = data;

	observe_read(n->obs, n->plan);
}

int node_start(struct node *n, struct loop *loop)
{
	int ret = 0;

	n->loop = loop;
	node_addrs_refresh(n);
	if (n->file && epfile_read(n->file) < 0)
		log_warn("out of memory reading %s; reading it again later", n->cfg->endpoints_file);
	if (n->runtime)
		ret = runtime_start(n->runtime, loop);	/* its first listing commits */
	else if (!n->cluster)
		commit_whole_logged(n, true);	/* else etcd's first list does */
	if (!ret && n->cluster)
		ret = cluster_start(n->cluster, loop);
	if (!ret)
		ret = loop_fd_add(loop, ruleset_watch_fd(n->rs), EPOLLIN, tamper_event, n);
	if (!ret && n->file)
		ret = epfile_start(n->file, loop);
	if (!ret && n->cfg->resync_seconds)
		ret = loop_timer_add(loop, n->cfg->resync_seconds * 1000, 1, resync_tick, n) < 0 ?
		      -ENOMEM : 0;
	if (!ret)
		ret = observe_start(n->obs, loop, capture_event, n);
	return ret;
}

int node_policy_reload(struct node *n, struct moat_diags *diags)
{
	struct moat_policy_set *ps = NULL;
	int ret;

	if (n->cfg->policies_from_etcd) {
		moat_diags_add(diags, "", 0, 0, "this node's policies come from etcd: change them "
			       "with moat policy push DIR");
		return -EPERM;
	}
	ret = policies_load(n->cfg, &ps, diags);

	if (ret) {
		log_error("policy reload refused; the running policy stays in force");
		log_diags(diags);
		return ret;
	}
	ret = commit_whole(n, ps, n->mode, false, diags);
	if (ret)
		log_error("applying reloaded policies failed: %s", strerror(-ret));
	else
		log_info("policies reloaded: %zu policies", n->ps->npols);
	return ret;
}

int node_mode_set(struct node *n, enum moat_mode mode, struct moat_diags *diags)
{
	int ret = commit_whole(n, n->ps, mode, false, diags);

	if (!ret)
		log_info("mode: %s", mode == MOAT_MODE_ENFORCE ? "enforce" : "monitor");
	return ret;
}

/* ---- looking at it ---- */

void node_status(const struct node *n, struct node_status *st)
{
	size_t nm;

	epstore_managed(n->store, &nm);
	*st = (struct node_status){
		.mode = n->mode, .plan = n->plan, .ps = n->ps, .es = epstore_set(n->store),
		.containers = n->runtime ? runtime_containers(n->runtime) : 0,
		.managed_subnets = nm, .runtime_up = n->runtime && runtime_up(n->runtime),
		.runtime_name = n->runtime ? runtime_name(n->runtime) : NULL,
		.runtime_version = n->runtime ? runtime_version(n->runtime) : NULL,
		.uptime_ms = loop_now_ms() - n->started_ms, .applies = n->applies,
		.apply_errors = n->apply_errors, .repairs = n->repairs, .revoked = n->revoked,
		.last_apply_us = n->last_apply_us, .deltas = n->deltas, .wholes = n->wholes,
		.enforced = &n->enforced, .last = ruleset_stats(n->rs),
	};
	learner_stats_get(n->dns, &st->dns);
	memcpy(st->sweeps, n->sweeps, sizeof(st->sweeps));
}

struct observe *node_observe(const struct node *n)
{
	return n->obs;
}

struct cluster *node_cluster(const struct node *n)
{
	return n->cluster;
}

json_t *node_containers(const struct node *n)
{
	return n->runtime ? runtime_dump(n->runtime) : json_array();
}

static void node_dns_metrics(FILE *out, const struct node *n)
{
	struct learner_stats d;

	learner_stats_get(n->dns, &d);
	metrics_counter(out, "moat_dns_replies_total", "DNS replies to endpoints read", d.replies);
	metrics_counter(out, "moat_dns_learnt_total",
			"DNS replies whose addresses a domainNames rule learnt", d.learnt);
	metrics_counter(out, "moat_dns_untrusted_total",
			"DNS replies from resolvers not in dns-resolvers", d.untrusted);
	metrics_counter(out, "moat_dns_add_errors_total",
			"Learnt addresses the kernel refused", d.add_errors);
	metrics_gauge(out, "moat_dns_remembered", "Addresses endpoints resolved, remembered",
		      (double)d.remembered);
}

int node_unlogged(const struct node *n, uint64_t *v)
{
	return ruleset_unlogged(n->rs, v);
}

void node_metrics(FILE *out, void *node)
{
	const struct node *n = node;
	uint64_t unlogged;
	const struct moat_plan *p = n->plan;

	metrics_gauge(out, "moat_endpoints", "Endpoints Moat enforces (containers and file)",
		      (double)epstore_set(n->store)->n);
	metrics_gauge(out, "moat_policies", "Policies in force", (double)n->ps->npols);
	metrics_gauge(out, "moat_identities", "Identities (equivalence classes of addresses)",
		      p ? (double)p->nidents : 0);
	metrics_gauge(out, "moat_enforce_mode", "1 in enforce mode, 0 in monitor mode",
		      n->mode == MOAT_MODE_ENFORCE);
	metrics_gauge(out, "moat_runtime_up", "1 while the container runtime answers",
		      n->runtime && runtime_up(n->runtime));
	metrics_counter(out, "moat_applies_total", "Ruleset applies", n->applies);
	metrics_counter(out, "moat_apply_errors_total", "Ruleset applies that failed",
			n->apply_errors);
	metrics_counter(out, "moat_repairs_total", "Ruleset repairs after foreign changes",
			n->repairs);
	metrics_counter(out, "moat_revoked_connections_total",
			"Connections removed because a policy change denied them", n->revoked);
	metrics_histogram(out, "moat_event_to_enforced_seconds",
			  "From a runtime event or endpoints-file change to the kernel's ack",
			  &n->enforced);
	node_dns_metrics(out, n);
	if (!node_unlogged(n, &unlogged))
		metrics_counter(out, "moat_drops_unlogged_total",
				"Dropped packets not logged: their source was over --log-rate",
				unlogged);
	observe_metrics(out, n->obs);
	if (n->cluster)
		cluster_metrics(out, n->cluster);
}
