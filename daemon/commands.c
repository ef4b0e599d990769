/*
 * The control protocol's one home: every command (include/moat/ctl.h documents each request
 * and reply), one table of them, and one place that refuses changes to peers without the
 * privilege. Handlers parse the request, ask the node or its rooms, and build the reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "commands.h"
#include "log.h"
#include "matrix.h"
#include "moat/ctl.h"
#include "moat/report.h"
#include "observe/alerts.h"
#include "observe/flow_query.h"
#include "observe/learn.h"

/* ---- replies ---- */

static json_t *diags_reply(const char *error, const struct moat_diags *d)
{
	json_t *arr = json_array();
	char line[4096];

	for (size_t i = 0; arr && i < d->n; i++)
		json_array_append_new(arr, json_string(moat_diag_format(&d->v[i], line, sizeof(line))));
	return json_pack("{s:b,s:s,s:o}", "ok", 0, "error", error, "diags", arr);
}

static json_t *ok_with(const char *key, json_t *v)
{
	return json_pack("{s:b,s:o}", "ok", 1, key, v);
}

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- status ---- */

static json_t *enforced_json(const struct latency *l)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "count", (json_int_t)l->count, "p50_us",
			 (json_int_t)latency_quantile(l, 0.5), "p99_us",
			 (json_int_t)latency_quantile(l, 0.99), "max_us", (json_int_t)l->max_us);
}

static json_int_t lists(const struct moat_plan *p, enum moat_allow_list a,
		       enum moat_allow_list b)
{
	return p ? (json_int_t)(p->nallow[a] + p->nallow[b]) : 0;
}

static json_t *elements_json(const struct moat_plan *p)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "addresses", (json_int_t)(p ? p->naddrs : 0),
			 "nets", (json_int_t)(p ? p->nnets : 0), "allow_in",
			 lists(p, MOAT_ALLOW_IN, MOAT_ALLOW_IN_ANY), "allow_out",
			 lists(p, MOAT_ALLOW_OUT, MOAT_ALLOW_OUT_ANY), "admin",
			 lists(p, MOAT_ADMIN_IN, MOAT_ADMIN_OUT), "baseline",
			 lists(p, MOAT_BASELINE_IN, MOAT_BASELINE_OUT));
}

/* Endpoints whose own traffic never crosses the node's hooks, with why: never "enforce". */
static json_t *not_enforced_json(const struct moat_endpoint_set *es)
{
	json_t *arr = json_array();
	char name[512];

	for (size_t i = 0; arr && i < es->n; i++) {
		if (!es->v[i].unenforced)
			continue;
		snprintf(name, sizeof(name), "%s/%s", es->v[i].namespace, es->v[i].name);
		json_array_append_new(arr, json_pack("{s:s,s:s}", "name", name, "reason",
						     es->v[i].unenforced));
	}
	return arr;
}

/* The drop log's limit, and what it kept out (null before the first apply). */
static json_t *drop_log_json(struct commands *c)
{
	uint64_t n;
	int ret = node_unlogged(c->node, &n);

	return json_pack("{s:I,s:o}", "rate", (json_int_t)c->cfg->log_rate, "unlogged",
			 ret ? json_null() : json_integer((json_int_t)n));
}

/* What the node's own connections may do, the ports it publishes, and what that means. */
static json_t *host_access_json(struct commands *c, const struct moat_endpoint_set *es)
{
	size_t n = 0;

	for (size_t i = 0; i < es->n; i++)
		n += es->v[i].npublished;
	return json_pack("{s:s,s:I,s:s}", "mode", c->cfg->host_policy ? "policy" : "allow",
			 "published", (json_int_t)n, "note", c->cfg->host_policy ? HOST_POLICY_NOTE
			 : HOST_ALLOW_NOTE);
}

static json_t *cmd_status(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct node_status st;
	json_t *j;

	node_status(c->node, &st);
	j = json_pack("{s:b,s:s,s:s,s:b,s:s,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,"
		      "s:{s:b,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I},s:I,s:I,s:o,s:I,s:{s:I,s:I,s:I}}",
		      "ok", 1, "mode", st.mode == MOAT_MODE_ENFORCE ? "enforce" : "monitor",
		      "runtime", c->cfg->runtime, "runtime_up", st.runtime_up, "policy_dir",
		      c->cfg->policy_dir, "policies", (json_int_t)st.ps->npols, "endpoints",
		      (json_int_t)st.es->n, "containers", (json_int_t)st.containers, "identities",
		      (json_int_t)(st.plan ? st.plan->nidents : 0), "elements", elements_json(st.plan),
		      "managed_subnets", (json_int_t)st.managed_subnets, "applies",
		      (json_int_t)st.applies, "apply_errors", (json_int_t)st.apply_errors,
		      "last_apply", "full", st.last->full, "msgs", (json_int_t)st.last->msgs,
		      "added", (json_int_t)st.last->added, "deleted", (json_int_t)st.last->deleted,
		      "ms", (json_int_t)(st.last_apply_us / 1000), "us", (json_int_t)st.last_apply_us,
		      "changes", "delta", (json_int_t)st.deltas, "whole", (json_int_t)st.wholes,
		      "repairs", (json_int_t)st.repairs, "revoked", (json_int_t)st.revoked,
		      "event_to_enforced", enforced_json(st.enforced), "uptime_s",
		      (json_int_t)(st.uptime_ms / 1000), "sweeps", "none",
		      (json_int_t)st.sweeps[REVOCATION_NONE], "later",
		      (json_int_t)st.sweeps[REVOCATION_LATER], "now",
		      (json_int_t)st.sweeps[REVOCATION_NOW]);
	if (j && st.runtime_name)
		json_object_set_new(j, "runtime_name", json_string(st.runtime_name));
	if (j && st.runtime_version)
		json_object_set_new(j, "runtime_version", json_string(st.runtime_version));
	if (j)
		json_object_set_new(j, "dns", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			"replies", (json_int_t)st.dns.replies, "learnt", (json_int_t)st.dns.learnt,
			"addresses", (json_int_t)st.dns.addresses, "remembered",
			(json_int_t)st.dns.remembered, "untrusted", (json_int_t)st.dns.untrusted,
			"malformed", (json_int_t)st.dns.malformed, "add_errors",
			(json_int_t)st.dns.add_errors, "p50_us", (json_int_t)st.dns.p50_us,
			"p99_us", (json_int_t)st.dns.p99_us));
	if (j)
		observe_status(node_observe(c->node), j);
	if (j)
		json_object_set_new(j, "not_enforced", not_enforced_json(st.es));
	if (j)
		json_object_set_new(j, "drop_log", drop_log_json(c));
	if (j)
		json_object_set_new(j, "host_access", host_access_json(c, st.es));
	if (j && node_cluster(c->node))
		json_object_set_new(j, "cluster", cluster_status(node_cluster(c->node)));
	if (j)
		json_object_set_new(j, "policy_source", json_string(c->cfg->policies_from_etcd ?
								    "etcd" : "directory"));
	return j;
}

/* ---- nodes ---- */

static json_t *cmd_nodes(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct cluster *cl = node_cluster(c->node);

	if (!cl)
		return ctl_reply_error("this moatd runs alone: start it with --etcd to share "
				       "endpoints and policies with other nodes");
	return json_pack("{s:b,s:s,s:o}", "ok", 1, "self", c->cfg->node_name, "nodes",
			 cluster_nodes(cl));
}

/* ---- endpoints ---- */

static const char *endpoint_mode(const struct moat_plan_ident *id)
{
	if (!id || (!id->in_iso && !id->out_iso))
		return "open";
	if ((id->in_iso && id->in_mode == MOAT_MODE_MONITOR) ||
	    (id->out_iso && id->out_mode == MOAT_MODE_MONITOR))
		return "monitor";
	return "enforce";
}

static json_t *endpoint_json(const struct moat_plan *plan, const struct moat_endpoint_set *es,
			     size_t i)
{
	const struct moat_endpoint *e = &es->v[i];
	const struct moat_plan_ident *id = NULL;
	json_t *ips = json_array(), *ifaces = json_array();
	char buf[64], name[512];

	for (size_t k = 0; k < e->nips; k++)
		json_array_append_new(ips, json_string(moat_addr_format(&e->ips[k], buf, sizeof(buf))));
	for (size_t k = 0; k < e->nifaces; k++)
		json_array_append_new(ifaces, json_string(e->ifaces[k]));
	if (plan)
		id = moat_plan_ident_get(plan, e->nips ? moat_plan_ident_of(plan, &e->ips[0])
						       : plan->endpoint_ident[i]);
	snprintf(name, sizeof(name), "%s/%s", e->namespace, e->name);
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:b,s:{s:b,s:b},s:s,s:s?,s:s?}", "name", name,
			 "namespace", e->namespace, "endpoint", e->name, "labels",
			 moat_labels_json(&e->labels), "ips", ips, "ifaces", ifaces, "host_network",
			 e->host_network, "isolated", "ingress", id && id->in_iso, "egress",
			 id && id->out_iso, "mode", e->unenforced ? "not-enforced" : endpoint_mode(id),
			 "node", e->node, "unenforced", e->unenforced);
}

static json_t *cmd_endpoints(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct node_status st;
	json_t *arr = json_array();

	node_status(c->node, &st);
	for (size_t i = 0; arr && i < st.es->n; i++)
		json_array_append_new(arr, endpoint_json(st.plan, st.es, i));
	return json_pack("{s:b,s:o,s:o}", "ok", 1, "endpoints", arr, "containers",
			 node_containers(c->node));
}

static json_t *cmd_export(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct node_status st;

	node_status(c->node, &st);
	return ok_with("export", moat_report_endpoints(st.es));
}

/* ---- policies ---- */

static const struct moat_plan *plan_or_null(struct commands *c)
{
	struct node_status st;

	node_status(c->node, &st);
	return st.plan;
}

/* Streamed a row at a time (daemon/matrix.h): its size bounds neither memory nor a reply. */
static json_t *cmd_matrix(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	return matrix_ctl(plan_or_null(c), req, conn);
}

static json_t *cmd_explain(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *to = json_string_value(json_object_get(req, "to"));
	const char *port = json_string_value(json_object_get(req, "port"));
	const struct moat_plan *plan = plan_or_null(c);
	struct moat_port_arg p;
	json_t *j = NULL;
	char err[600];

	if (!from || !to || !port || moat_port_arg_parse(port, &p) < 0)
		return ctl_reply_error("explain needs from, to and a port like \"80/tcp\"");
	if (!plan)
		return ctl_reply_error("no plan yet: moatd has not synced with the runtime");
	if (moat_report_explain(plan, from, to, &p, &j, err, sizeof(err)) < 0)
		return ctl_reply_error(err);
	return ok_with("explain", j);
}

static json_t *cmd_reload(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct moat_diags d = { 0 };
	struct node_status st;
	json_t *reply;
	int ret = node_policy_reload(c->node, &d);

	node_status(c->node, &st);
	if (ret)
		reply = diags_reply("policy reload refused; the running policy stays in force", &d);
	else
		reply = json_pack("{s:b,s:I}", "ok", 1, "policies", (json_int_t)st.ps->npols);
	moat_diags_free(&d);
	return reply;
}

static json_t *cmd_mode(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	const char *m = json_string_value(json_object_get(req, "mode"));
	struct moat_diags d = { 0 };
	json_t *reply;
	int ret;

	if (!m || (strcmp(m, "enforce") && strcmp(m, "monitor")))
		return ctl_reply_error("mode must be enforce or monitor");
	ret = node_mode_set(c->node, strcmp(m, "enforce") ? MOAT_MODE_MONITOR : MOAT_MODE_ENFORCE,
			    &d);
	reply = ret ? diags_reply("applying the mode failed", &d)
		    : json_pack("{s:b,s:s}", "ok", 1, "mode", m);
	moat_diags_free(&d);
	return reply;
}

/* ---- flows, alerts, the graph ---- */

static json_t *cmd_flows(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct observe *o = node_observe(c->node);
	struct flow_query q;
	char err[512] = "";
	size_t matched;
	json_t *reply, *list;

	if (flow_query_parse(req, now_unix_ms(), &q, err, sizeof(err)) < 0) {
		flow_query_fini(&q);
		return ctl_reply_error(err);
	}
	list = observe_flows(o, &q, &matched);
	reply = json_pack("{s:b,s:o,s:I,s:o,s:o}", "ok", 1, "flows", list, "matched",
			  (json_int_t)matched, "table", observe_table_json(o), "capture",
			  observe_capture_json(o));
	if (json_is_true(json_object_get(req, "follow")) && observe_follow(o, conn, &q) < 0) {
		json_decref(reply);
		reply = ctl_reply_error("too many followers");
	}
	flow_query_fini(&q);
	return reply;
}

static json_t *no_state(struct commands *c)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "learning and alerts are off: the state directory %s cannot be "
		 "used (see moatd's log)", c->cfg->state_dir);
	return ctl_reply_error(msg);
}

static json_t *cmd_alerts(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct alerts *a = observe_alerts(node_observe(c->node));
	struct learn *l = observe_learn(node_observe(c->node));
	json_t *limit = json_object_get(req, "limit");
	json_t *reply;

	if (!a)
		return no_state(c);
	reply = json_pack("{s:b,s:o,s:o}", "ok", 1, "alerts",
			  alerts_recent(a, json_is_integer(limit) ? (size_t)json_integer_value(limit) : 0),
			  "stats", alerts_stats_json(a));
	if (json_is_true(json_object_get(req, "follow")) && alerts_follow(a, conn) < 0) {
		json_decref(reply);
		reply = ctl_reply_error("too many followers");
	}
	if (reply && l)
		json_object_set_new(reply, "alerting", json_boolean(learn_has_baseline(l)));
	return reply;
}

static json_t *cmd_graph(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	const char *format = json_string_value(json_object_get(req, "format"));
	json_t *reply, *g = NULL;
	char *dot = NULL;
	int ret;

	if (format && !strcmp(format, "json")) {
		ret = observe_graph_json(node_observe(c->node), plan_or_null(c), &g);
		return ret ? ctl_reply_error(strerror(-ret)) : ok_with("graph", g);
	}
	ret = observe_graph_dot(node_observe(c->node), plan_or_null(c), &dot);
	if (ret)
		return ctl_reply_error(strerror(-ret));
	reply = json_pack("{s:b,s:s}", "ok", 1, "dot", dot);
	free(dot);
	return reply;
}

/* ---- learning ---- */

static json_t *cmd_learn_start(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct learn *l = observe_learn(node_observe(c->node));
	json_t *dur = json_object_get(req, "duration_ms");
	char err[512] = "";
	int ret;

	if (!l)
		return no_state(c);
	ret = learn_start(l, json_string_value(json_object_get(req, "selector")),
			  json_is_integer(dur) && json_integer_value(dur) > 0 ?
			  (uint64_t)json_integer_value(dur) : 0,
			  json_is_true(json_object_get(req, "reset")), now_unix_ms(), err, sizeof(err));
	observe_kick(node_observe(c->node));	/* saves and the deadline are due from now */
	if (ret)
		return ctl_reply_error(err[0] ? err : strerror(-ret));
	return ok_with("learning", learn_status_json(l, false));
}

static json_t *cmd_learn_stop(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct learn *l = observe_learn(node_observe(c->node));
	int ret;

	if (!l)
		return no_state(c);
	ret = learn_stop(l, now_unix_ms());
	observe_kick(node_observe(c->node));	/* to look at the save it handed over */
	if (ret == -ENOENT)
		return ctl_reply_error("not learning");
	if (ret)
		return ctl_reply_error("stopped, but saving the baseline failed (see moatd's log)");
	return ok_with("learning", learn_status_json(l, false));
}

static json_t *cmd_learn_status(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct learn *l = observe_learn(node_observe(c->node));

	if (!l)
		return no_state(c);
	return ok_with("learning", learn_status_json(l, json_is_true(json_object_get(req, "flows"))));
}

static json_t *cmd_learn_suggest(struct commands *c, json_t *req, struct ctl_conn *conn)
{
	struct learn *l = observe_learn(node_observe(c->node));
	struct node_status st;
	char *yaml = NULL;
	json_t *reply;
	int ret;

	if (!l)
		return no_state(c);
	node_status(c->node, &st);
	ret = learn_suggest(l, st.es, &yaml);
	if (ret)
		return ctl_reply_error(strerror(-ret));
	reply = json_pack("{s:b,s:s}", "ok", 1, "yaml", yaml);
	free(yaml);
	return reply;
}

/* ---- the table ---- */

struct command {
	const char *name;
	bool privileged;		/* changes state: root or the moat group only */
	json_t *(*fn)(struct commands *c, json_t *req, struct ctl_conn *conn);
};

static const struct command commands[] = {
	{ "status", false, cmd_status },
	{ "endpoints", false, cmd_endpoints },
	{ "nodes", false, cmd_nodes },
	{ "endpoints.export", false, cmd_export },
	{ "policy.matrix", false, cmd_matrix },
	{ "policy.explain", false, cmd_explain },
	{ "policy.reload", true, cmd_reload },
	{ "mode", true, cmd_mode },
	{ "flows", false, cmd_flows },
	{ "alerts", false, cmd_alerts },
	{ "graph", false, cmd_graph },
	{ "learn.start", true, cmd_learn_start },
	{ "learn.stop", true, cmd_learn_stop },
	{ "learn.status", false, cmd_learn_status },
	{ "learn.suggest", false, cmd_learn_suggest },
};

json_t *commands_handle(json_t *request, struct ctl_conn *conn, void *data)
{
	const char *cmd = json_string_value(json_object_get(request, "cmd"));

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name))
			continue;
		if (commands[i].privileged && !ctl_conn_privileged(conn))
			return ctl_reply_error("permission denied: changes need root or the moat group");
		return commands[i].fn(data, request, conn);
	}
	return ctl_reply_error("unknown command");
}
