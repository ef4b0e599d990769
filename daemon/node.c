/*
 * moatd's state and its single way of changing: commit() compiles the new plan beside the old,
 * applies it in one batch, and only then swaps. Events are hints; listings are the truth.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "conntrack.h"
#include "docker.h"
#include "endpoint.h"
#include "latency.h"
#include "log.h"
#include "matrix.h"
#include "metrics.h"
#include "nft.h"
#include "node.h"
#include "observe.h"
#include "revocation.h"
#include "moat/plan.h"
#include "moat/report.h"

struct node {
	const struct config *cfg;
	struct loop *loop;
	struct moat_policy_set *ps;	/* in force */
	struct moat_endpoint_set *es;	/* in force: containers + file */
	struct moat_plan *plan;		/* compiled from ps + es; borrows both */
	enum moat_mode mode;
	struct nft_ctx *nft;
	struct docker_client *docker;	/* NULL with --runtime none */
	struct docker_watch *watch;
	struct endpoint_table *table;
	struct moat_endpoint_set *file;	/* the endpoints file as last read */
	struct timespec file_mtime;
	struct moat_cidr *nets;		/* subnets of the runtime's networks */
	size_t nnets;
	struct moat_cidr *managed;	/* nets + the endpoints file's subnets */
	size_t nmanaged;
	bool managed_changed;		/* since the last apply */
	struct revocation revocation;	/* addresses whose connections are still to sweep */
	int sweep_timer;		/* the sweep timer while it is armed, or 0 */
	bool sweep_due;			/* a departure's sweep has not run yet */
	bool synced;			/* the runtime has been listed at least once */
	bool runtime_up;
	/* figures for status */
	uint64_t started_ms, applies, apply_errors, repairs, revoked, last_apply_ms, last_event_ms;
	uint64_t sweeps[3];		/* changes per enum revocation_need */
	struct latency enforced;	/* from a runtime event or file change to the kernel */
	int inotify;			/* watches the endpoints file's directory, or -1 */
	struct observe *obs;		/* flows, learning and alerts from the NFLOG group */
};

static int policies_load(const struct config *cfg, struct moat_policy_set **out,
			 struct moat_diags *diags)
{
	const char *paths[] = { cfg->policy_dir };

	return moat_policy_set_load(paths, 1, out, diags);
}

static void diags_log(const struct moat_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		log_error("%s:%u:%u: %s", d->v[i].file, d->v[i].line, d->v[i].col, d->v[i].msg);
}

int node_new(const struct config *cfg, struct node **out)
{
	struct moat_diags diags = { 0 };
	struct node *n = calloc(1, sizeof(*n));
	int ret = n ? 0 : -ENOMEM;

	if (!ret) {
		n->cfg = cfg;
		n->mode = cfg->mode;
		n->inotify = -1;
		n->started_ms = loop_now_ms();
		ret = policies_load(cfg, &n->ps, &diags);
	}
	if (ret && n)
		log_error("policies in %s are not valid; refusing to start", cfg->policy_dir);
	diags_log(&diags);
	moat_diags_free(&diags);
	if (!ret)
		ret = nft_ctx_new(&n->nft);
	if (!ret)
		ret = endpoint_table_new(cfg->kubernetes, &n->table);
	if (!ret && strcmp(cfg->runtime, "none"))
		ret = docker_client_new(cfg->runtime, &n->docker);
	if (!ret)
		ret = (n->es = moat_endpoint_set_new()) ? 0 : -ENOMEM;
	if (!ret)
		ret = observe_new(cfg, &n->obs);
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
	docker_watch_stop(n->watch);
	docker_client_free(n->docker);
	endpoint_table_free(n->table);
	moat_plan_free(n->plan);
	moat_endpoint_set_free(n->es);
	moat_endpoint_set_free(n->file);
	moat_policy_set_free(n->ps);
	nft_ctx_free(n->nft);
	free(n->nets);
	free(n->managed);
	revocation_free(&n->revocation);
	if (n->inotify >= 0)
		close(n->inotify);
	free(n);
}

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
 * Right after this turn of the loop (the change it sweeps for is enforced already), once for
 * every departure of the turn.
 */
static void sweep_schedule(struct node *n)
{
	int id;

	n->sweep_due = true;
	if (n->sweep_timer)
		return;
	id = loop_timer_add(n->loop, 0, 0, sweep_tick, n);
	if (id > 0)
		n->sweep_timer = id;
	else
		connections_revoke(n);
}

/* What the change to (ps, es, mode) can take from live connections; see revocation.h. */
static int revocation_need(struct node *n, const struct moat_policy_set *ps,
			   const struct moat_endpoint_set *es, enum moat_mode mode)
{
	int need;

	if (!n->plan || ps != n->ps || mode != n->mode || n->managed_changed)
		return REVOCATION_NOW;
	need = revocation_diff(&n->revocation, n->plan, es, n->managed, n->nmanaged);
	return need < 0 ? REVOCATION_NOW : need;
}

/*
 * Makes (ps, es, mode) the state in force. Takes ownership of ps and es when they are not the
 * ones in force already, also on failure (then they are freed and the old state stays).
 */
static int commit(struct node *n, struct moat_policy_set *ps, struct moat_endpoint_set *es,
		  enum moat_mode mode, bool full, struct moat_diags *diags)
{
	struct moat_plan *plan = NULL;
	struct nft_input in;
	uint64_t t0 = loop_now_ms();
	int need = revocation_need(n, ps, es, mode);
	int ret = moat_plan_compile(ps, es, mode, n->plan, &plan);

	in = (struct nft_input){ plan, es, n->managed, n->nmanaged, mode, n->cfg->nflog_group,
				 n->plan };
	if (!ret)
		ret = nft_ruleset_apply(n->nft, &in, full, diags);
	if (ret && !full && plan) {
		log_warn("incremental apply failed (%s); applying the whole ruleset", strerror(-ret));
		ret = nft_ruleset_apply(n->nft, &in, true, diags);
	}
	n->applies++;
	if (ret) {
		n->apply_errors++;
		moat_plan_free(plan);
		if (ps != n->ps)
			moat_policy_set_free(ps);
		if (es != n->es)
			moat_endpoint_set_free(es);
		return ret;
	}
	moat_plan_free(n->plan);
	if (ps != n->ps)
		moat_policy_set_free(n->ps);
	if (es != n->es)
		moat_endpoint_set_free(n->es);
	n->plan = plan, n->ps = ps, n->es = es, n->mode = mode;
	n->managed_changed = false;
	n->last_apply_ms = loop_now_ms() - t0;
	n->sweeps[need]++;
	if (need == REVOCATION_NOW)
		connections_revoke(n);
	else if (need == REVOCATION_LATER)
		sweep_schedule(n);
	return 0;
}

/* Rebuilds the endpoint set from the table and the file and commits it. */
static int endpoints_commit(struct node *n, bool full)
{
	struct moat_endpoint_set *es = NULL;
	struct moat_diags diags = { 0 };
	int ret = endpoint_table_build(n->table, n->file, &es);

	if (!ret)
		ret = commit(n, n->ps, es, n->mode, full, &diags);
	if (ret)
		log_error("applying endpoints failed: %s", strerror(-ret));
	diags_log(&diags);
	moat_diags_free(&diags);
	return ret;
}

static int managed_load(struct node *n)
{
	struct docker_network_list *nets = NULL;
	struct moat_cidr *v = NULL;
	size_t k = 0, total = 0;
	int ret = docker_network_list(n->docker, &nets);

	for (size_t i = 0; !ret && i < nets->n; i++)
		total += nets->v[i].nsubnets;
	if (!ret && total && !(v = calloc(total, sizeof(*v))))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < nets->n; i++)
		for (size_t j = 0; j < nets->v[i].nsubnets; j++)
			v[k++] = nets->v[i].subnets[j];
	docker_network_list_free(nets);
	if (ret)
		return ret;
	free(n->nets);
	n->nets = v, n->nnets = k;
	return 0;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct moat_cidr *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/*
 * managed = the runtime's networks + the endpoints file's subnets, sorted (the runtime lists
 * its networks in no fixed order); notes when it changed.
 */
static int managed_update(struct node *n)
{
	size_t nf = n->file ? n->file->nsubnets : 0, k = n->nnets + nf;
	struct moat_cidr *v = k ? calloc(k, sizeof(*v)) : NULL;

	if (k && !v)
		return -ENOMEM;
	if (n->nnets)
		memcpy(v, n->nets, n->nnets * sizeof(*v));
	if (nf)
		memcpy(v + n->nnets, n->file->subnets, nf * sizeof(*v));
	if (k > 1)
		qsort(v, k, sizeof(*v), cidr_cmp);
	if (k != n->nmanaged || (k && memcmp(v, n->managed, k * sizeof(*v))))
		n->managed_changed = true;
	free(n->managed);
	n->managed = v, n->nmanaged = k;
	return 0;
}

/* Lists the runtime and makes the table exactly what it says. full: recreate the tables. */
static int runtime_resync(struct node *n, bool full)
{
	int ret = n->docker ? managed_load(n) : 0;

	if (!ret)
		ret = managed_update(n);

	if (!ret && n->docker)
		ret = endpoint_table_resync(n->table, n->docker);
	if (ret < 0) {
		if (n->runtime_up || !n->synced)
			log_warn("cannot list the runtime at %s: %s", n->cfg->runtime, strerror(-ret));
		n->runtime_up = false;
		return ret;
	}
	n->runtime_up = true;
	if (ret == 0 && n->synced && !full)
		return 0;
	n->synced = true;
	return endpoints_commit(n, full);
}

static void event_handle(struct node *n, const struct docker_event *ev)
{
	uint64_t t0 = loop_now_us();
	int ret;

	n->last_event_ms = t0 / 1000;
	if (ev->kind == DOCKER_EVENT_DOWN) {
		log_warn("runtime event stream lost; reconnecting (rules stay in force)");
		n->runtime_up = false;
		return;
	}
	if (ev->kind == DOCKER_EVENT_RESYNC || !n->synced) {
		runtime_resync(n, false);
		return;
	}
	ret = endpoint_table_update(n->table, n->docker, ev->id);
	if (ret < 0) {
		log_warn("inspecting %.12s failed (%s); listing everything", ev->id, strerror(-ret));
		runtime_resync(n, false);
	} else if (ret > 0 && endpoints_commit(n, false) == 0) {
		latency_add(&n->enforced, loop_now_us() - t0);
		log_debug("container %.12s %s: enforced", ev->id, ev->action);
	}
}

static void watch_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct node *n = data;
	struct docker_event ev;

	while (docker_watch_read(n->watch, &ev) == 0)
		event_handle(n, &ev);
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
	ret = nft_ruleset_verify(n->nft, &in_sync, why, sizeof(why));
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
	struct nft_tamper t;

	if (nft_watch_read(n->nft, &t) < 0 || (!t.changed && !t.lost))
		return;
	if (t.changed)
		log_warn("someone else changed Moat's ruleset (%s, pid %d %s); restoring it", t.what,
			 (int)t.pid, t.comm);
	else if (ruleset_in_sync(n, "notifications were lost"))
		return;		/* our own big apply overflowed the socket: a repair would again */
	n->repairs++;
	endpoints_commit(n, true);
}

/* Reads the endpoints file when its mtime changed; a broken file keeps the last good one. */
static int file_refresh(struct node *n)
{
	struct moat_endpoint_set *file = NULL;
	struct moat_diags diags = { 0 };
	struct stat st;
	int ret;

	if (!n->cfg->endpoints_file || stat(n->cfg->endpoints_file, &st) < 0)
		return 0;
	if (n->file && st.st_mtim.tv_sec == n->file_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == n->file_mtime.tv_nsec)
		return 0;
	n->file_mtime = st.st_mtim;
	ret = moat_endpoint_set_load(n->cfg->endpoints_file, &file, &diags);
	diags_log(&diags);
	moat_diags_free(&diags);
	if (ret) {
		log_error("endpoints file %s is not valid; keeping the last good one",
			  n->cfg->endpoints_file);
		return 0;
	}
	moat_endpoint_set_free(n->file);
	n->file = file;
	if (managed_update(n))
		log_warn("out of memory for the endpoints file's subnets; keeping the last ones");
	return 1;
}

static void file_check(struct node *n, uint64_t t0)
{
	if (file_refresh(n) > 0 && (n->synced || !n->docker) && endpoints_commit(n, false) == 0)
		latency_add(&n->enforced, loop_now_us() - t0);
}

/* The safety net under inotify (a file on a file system that does not notify). */
static void file_tick(struct loop *loop, void *data)
{
	file_check(data, loop_now_us());
}

/* Any change in the file's directory (editors and `mv` replace the file): check its mtime. */
static void file_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	uint64_t t0 = loop_now_us();
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	file_check(data, t0);
}

static int file_watch(struct node *n, struct loop *loop)
{
	char dir[4096], *slash;

	snprintf(dir, sizeof(dir), "%s", n->cfg->endpoints_file);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = 0;
	n->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->inotify < 0 || inotify_add_watch(n->inotify, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
						IN_CREATE | IN_DELETE) < 0) {
		log_warn("cannot watch %s (%s); checking it every 5 s", dir, strerror(errno));
		return 0;
	}
	return loop_fd_add(loop, n->inotify, EPOLLIN, file_event, n);
}

static void resync_tick(struct loop *loop, void *data)
{
	struct node *n = data;

	if (n->docker)
		runtime_resync(n, false);
	if (!ruleset_in_sync(n, "periodic check")) {
		n->repairs++;
		endpoints_commit(n, true);
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
	int ret;

	n->loop = loop;
	file_refresh(n);
	if (n->docker) {
		if (runtime_resync(n, true) < 0)
			log_warn("keeping the ruleset in the kernel until the runtime answers");
		ret = docker_watch_start(n->docker, &n->watch);
		if (!ret)
			ret = loop_fd_add(loop, docker_watch_fd(n->watch), EPOLLIN, watch_event, n);
	} else {
		n->synced = true;
		ret = endpoints_commit(n, true);
	}
	if (!ret)
		ret = loop_fd_add(loop, nft_watch_fd(n->nft), EPOLLIN, tamper_event, n);
	if (!ret && n->cfg->endpoints_file)
		ret = file_watch(n, loop);
	if (!ret && n->cfg->endpoints_file)
		ret = loop_timer_add(loop, 5000, 1, file_tick, n) < 0 ? -ENOMEM : 0;
	if (!ret && n->cfg->resync_seconds)
		ret = loop_timer_add(loop, n->cfg->resync_seconds * 1000, 1, resync_tick, n) < 0 ? -ENOMEM : 0;
	if (!ret)
		ret = observe_start(n->obs, loop, capture_event, n);
	return ret;
}

int node_policy_reload(struct node *n, struct moat_diags *diags)
{
	struct moat_policy_set *ps = NULL;
	int ret = policies_load(n->cfg, &ps, diags);

	if (ret) {
		log_error("policy reload refused; the running policy stays in force");
		diags_log(diags);
		return ret;
	}
	ret = commit(n, ps, n->es, n->mode, false, diags);
	if (ret)
		log_error("applying reloaded policies failed: %s", strerror(-ret));
	else
		log_info("policies reloaded: %zu policies", n->ps->npols);
	return ret;
}

static json_t *labels_json(const struct moat_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

static json_t *endpoint_json(const struct node *n, size_t i)
{
	const struct moat_endpoint *e = &n->es->v[i];
	const struct moat_plan_ident *id = NULL;
	json_t *ips = json_array(), *ifaces = json_array(), *o;
	char buf[64], name[512];

	for (size_t k = 0; k < e->nips; k++)
		json_array_append_new(ips, json_string(moat_addr_format(&e->ips[k], buf, sizeof(buf))));
	for (size_t k = 0; k < e->nifaces; k++)
		json_array_append_new(ifaces, json_string(e->ifaces[k]));
	if (n->plan)
		id = moat_plan_ident_get(n->plan, e->nips ? moat_plan_ident_of(n->plan, &e->ips[0])
							  : n->plan->endpoint_ident[i]);
	snprintf(name, sizeof(name), "%s/%s", e->namespace, e->name);
	o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:b,s:{s:b,s:b},s:s}", "name", name, "namespace",
		      e->namespace, "endpoint", e->name, "labels", labels_json(&e->labels), "ips",
		      ips, "ifaces", ifaces, "host_network", e->host_network, "isolated", "ingress",
		      id && id->in_iso, "egress", id && id->out_iso, "mode",
		      id && ((id->in_iso && id->in_mode == MOAT_MODE_MONITOR) ||
			     (id->out_iso && id->out_mode == MOAT_MODE_MONITOR)) ? "monitor"
			 : id && (id->in_iso || id->out_iso) ? "enforce" : "open");
	return o;
}

static json_t *cmd_endpoints(struct node *n, json_t *req)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n->es->n; i++)
		json_array_append_new(arr, endpoint_json(n, i));
	return json_pack("{s:b,s:o,s:o}", "ok", 1, "endpoints", arr, "containers",
			 endpoint_table_dump(n->table));
}

void node_metrics(FILE *out, void *node)
{
	const struct node *n = node;
	const struct moat_plan *p = n->plan;

	metrics_gauge(out, "moat_endpoints", "Endpoints Moat enforces (containers and file)",
		      (double)n->es->n);
	metrics_gauge(out, "moat_policies", "Policies in force", (double)n->ps->npols);
	metrics_gauge(out, "moat_identities", "Identities (equivalence classes of addresses)",
		      p ? (double)p->nidents : 0);
	metrics_gauge(out, "moat_enforce_mode", "1 in enforce mode, 0 in monitor mode",
		      n->mode == MOAT_MODE_ENFORCE);
	metrics_gauge(out, "moat_runtime_up", "1 while the container runtime answers",
		      n->runtime_up);
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
	observe_metrics(out, n->obs);
}

static json_t *enforced_json(const struct latency *l)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "count", (json_int_t)l->count, "p50_us",
			 (json_int_t)latency_quantile(l, 0.5), "p99_us",
			 (json_int_t)latency_quantile(l, 0.99), "max_us", (json_int_t)l->max_us);
}

static json_t *cmd_status(struct node *n, json_t *req)
{
	const struct nft_stats *st = nft_ctx_stats(n->nft);
	const struct moat_plan *p = n->plan;
	json_t *j = json_pack("{s:b,s:s,s:s,s:b,s:s,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:I,s:I,s:I,"
			 "s:{s:b,s:I,s:I,s:I,s:I},s:I,s:I,s:o,s:I}",
			 "ok", 1, "mode", n->mode == MOAT_MODE_ENFORCE ? "enforce" : "monitor",
			 "runtime", n->cfg->runtime, "runtime_up", n->runtime_up, "policy_dir",
			 n->cfg->policy_dir, "policies", (json_int_t)n->ps->npols, "endpoints",
			 (json_int_t)n->es->n, "containers", (json_int_t)endpoint_table_size(n->table),
			 "identities", (json_int_t)(p ? p->nidents : 0), "elements", "addresses",
			 (json_int_t)(p ? p->naddrs : 0), "nets", (json_int_t)(p ? p->nnets : 0),
			 "allow_in", (json_int_t)(p ? p->nallow_in + p->nallow_in_any : 0), "allow_out",
			 (json_int_t)(p ? p->nallow_out + p->nallow_out_any : 0), "managed_subnets",
			 (json_int_t)n->nmanaged, "applies", (json_int_t)n->applies, "apply_errors",
			 (json_int_t)n->apply_errors, "last_apply", "full", st->full, "msgs",
			 (json_int_t)st->msgs, "added", (json_int_t)st->added, "deleted",
			 (json_int_t)st->deleted, "ms", (json_int_t)n->last_apply_ms, "repairs",
			 (json_int_t)n->repairs, "revoked", (json_int_t)n->revoked, "event_to_enforced",
			 enforced_json(&n->enforced), "uptime_s",
			 (json_int_t)((loop_now_ms() - n->started_ms) / 1000));

	/* Changes by what they could take from live connections (revocation.h). */
	if (j)
		json_object_set_new(j, "sweeps", json_pack("{s:I,s:I,s:I}", "none",
			(json_int_t)n->sweeps[REVOCATION_NONE], "later",
			(json_int_t)n->sweeps[REVOCATION_LATER], "now",
			(json_int_t)n->sweeps[REVOCATION_NOW]));
	return j;
}

/* status, with what observe adds: capture, flows, learning, alerts. */
static json_t *cmd_status_all(struct node *n, json_t *req)
{
	json_t *j = cmd_status(n, req);

	if (j)
		observe_status(n->obs, j);
	return j;
}

static json_t *diags_reply(const char *error, const struct moat_diags *d)
{
	json_t *arr = json_array();
	char line[4096];

	for (size_t i = 0; arr && i < d->n; i++) {
		snprintf(line, sizeof(line), "%s:%u:%u: error: %s", d->v[i].file, d->v[i].line,
			 d->v[i].col, d->v[i].msg);
		json_array_append_new(arr, json_string(line));
	}
	return json_pack("{s:b,s:s,s:o}", "ok", 0, "error", error, "diags", arr);
}

static json_t *cmd_reload(struct node *n, json_t *req)
{
	struct moat_diags d = { 0 };
	json_t *reply;
	int ret = node_policy_reload(n, &d);

	if (ret)
		reply = diags_reply("policy reload refused; the running policy stays in force", &d);
	else
		reply = json_pack("{s:b,s:I}", "ok", 1, "policies", (json_int_t)n->ps->npols);
	moat_diags_free(&d);
	return reply;
}

static json_t *cmd_mode(struct node *n, json_t *req)
{
	const char *m = json_string_value(json_object_get(req, "mode"));
	struct moat_diags d = { 0 };
	json_t *reply;
	int ret;

	if (!m || (strcmp(m, "enforce") && strcmp(m, "monitor")))
		return ctl_reply_error("mode must be enforce or monitor");
	ret = commit(n, n->ps, n->es, strcmp(m, "enforce") ? MOAT_MODE_MONITOR : MOAT_MODE_ENFORCE,
		     false, &d);
	reply = ret ? diags_reply("applying the mode failed", &d) : json_pack("{s:b,s:s}", "ok", 1, "mode", m);
	if (!ret)
		log_info("mode: %s", m);
	moat_diags_free(&d);
	return reply;
}

static json_t *cmd_export(struct node *n, json_t *req)
{
	return json_pack("{s:b,s:o}", "ok", 1, "export", moat_report_endpoints(n->es));
}

static json_t *cmd_explain(struct node *n, json_t *req)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *to = json_string_value(json_object_get(req, "to"));
	const char *port = json_string_value(json_object_get(req, "port"));
	struct moat_port_arg p;
	json_t *j = NULL;
	char err[600];

	if (!from || !to || !port || moat_port_arg_parse(port, &p) < 0)
		return ctl_reply_error("explain needs from, to and a port like \"80/tcp\"");
	if (!n->plan)
		return ctl_reply_error("no plan yet: moatd has not synced with the runtime");
	if (moat_report_explain(n->plan, from, to, &p, &j, err, sizeof(err)) < 0)
		return ctl_reply_error(err);
	return json_pack("{s:b,s:o}", "ok", 1, "explain", j);
}

struct command {
	const char *name;
	bool changes;		/* refused to unprivileged peers */
	json_t *(*fn)(struct node *n, json_t *req);
};

static const struct command commands[] = {
	{ "status", false, cmd_status_all },
	{ "endpoints", false, cmd_endpoints },
	{ "endpoints.export", false, cmd_export },
	{ "policy.explain", false, cmd_explain },
	{ "policy.reload", true, cmd_reload },
	{ "mode", true, cmd_mode },
};

json_t *node_ctl(json_t *request, struct ctl_conn *conn, void *node)
{
	const char *cmd = json_string_value(json_object_get(request, "cmd"));
	struct node *n = node;
	json_t *reply;

	if (!strcmp(cmd, "policy.matrix"))	/* answered in parts: daemon/matrix.h */
		return matrix_ctl(n->plan, request, conn);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name))
			continue;
		if (commands[i].changes && !ctl_conn_privileged(conn))
			return ctl_reply_error("permission denied: changes need root or the moat group");
		return commands[i].fn(node, request);
	}
	reply = observe_ctl(n->obs, n->plan, cmd, request, conn);
	return reply ? reply : ctl_reply_error("unknown command");
}
