/* moat status and moat mode: the daemon's state at a glance, and the global mode switch. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "?";
}

/* Names and paths come from moatd's configuration and the runtime: print them escaped. */
static const char *esc(json_t *o, const char *key, char *buf, size_t len)
{
	return cli_escape(str(o, key), buf, len);
}

static const char *bytes(long long n, char *buf, size_t len)
{
	if (n >= 1ll << 20)
		snprintf(buf, len, "%.1f MiB", n / 1048576.0);
	else if (n >= 1ll << 10)
		snprintf(buf, len, "%.1f KiB", n / 1024.0);
	else
		snprintf(buf, len, "%lld bytes", n);
	return buf;
}

static const char *micros(long long us, char *buf, size_t len)
{
	if (us >= 10000)
		snprintf(buf, len, "%.0f ms", us / 1000.0);
	else
		snprintf(buf, len, "%.1f ms", us / 1000.0);
	return buf;
}

/* A unix time in seconds (or null) as local time. */
static const char *when(json_t *t, char *buf)
{
	if (!json_is_integer(t))
		return "never";
	return cli_time_local(json_integer_value(t) * 1000, buf);
}

/* ---- one printer per field; v is the field's value, s the whole status ---- */

static void p_runtime(json_t *v, json_t *s)
{
	char b[512];

	printf("%s (%s)", cli_escape(json_string_value(v), b, sizeof(b)),
	       !strcmp(json_string_value(v) ?: "", "none") ? "endpoints file only"
	       : json_is_true(json_object_get(s, "runtime_up")) ? "up" : "DOWN");
	if (json_is_string(json_object_get(s, "runtime_name")))
		printf(": %s", esc(s, "runtime_name", b, sizeof(b)));
	if (json_is_string(json_object_get(s, "runtime_version")))
		printf(" %s", esc(s, "runtime_version", b, sizeof(b)));
}

static void p_policies(json_t *v, json_t *s)
{
	json_t *cl = json_object_get(s, "cluster");
	char b[512];

	if (!strcmp(str(s, "policy_source"), "etcd")) {
		printf("%lld from etcd, revision %lld", (long long)json_integer_value(v),
		       num(cl, "policy_revision"));
		if (json_is_true(json_object_get(cl, "policy_refused")))
			printf(" (etcd's revision %lld is REFUSED: see moatd's log)",
			       num(cl, "policy_revision_etcd"));
		return;
	}
	printf("%lld from %s", (long long)json_integer_value(v),
	       esc(s, "policy_dir", b, sizeof(b)));
}

static void p_cluster(json_t *v, json_t *s)
{
	json_t *pub = json_object_get(v, "publish"), *w = json_object_get(v, "watch");
	json_t *ref = json_object_get(v, "refused");
	char b[512], e[300];

	printf("node %s, etcd %s %s; %lld nodes, %lld endpoints of others; %lld keys refused",
	       esc(v, "node", b, sizeof(b)), cli_escape(str(v, "etcd"), e, sizeof(e)),
	       json_is_true(json_object_get(pub, "up")) && json_is_true(json_object_get(w, "up")) ?
	       "up" : "DOWN (the last known state stays in force)", num(v, "nodes"),
	       num(v, "remote_endpoints"), num(ref, "count"));
	if (json_is_true(json_object_get(pub, "conflict")))
		printf("; NOT PUBLISHING: %s", esc(pub, "error", e, sizeof(e)));
}

static void p_endpoints(json_t *v, json_t *s)
{
	printf("%lld (%lld containers), %lld identities", (long long)json_integer_value(v),
	       num(s, "containers"), num(s, "identities"));
}

static void p_elements(json_t *v, json_t *s)
{
	printf("%lld addresses, %lld networks, %lld ingress and %lld egress allowances; "
	       "%lld managed subnets", num(v, "addresses"), num(v, "nets"), num(v, "allow_in"),
	       num(v, "allow_out"), num(s, "managed_subnets"));
	if (num(v, "admin") || num(v, "baseline"))
		printf("; tiers: %lld Admin and %lld Baseline elements", num(v, "admin"),
		       num(v, "baseline"));
}

static void p_applies(json_t *v, json_t *s)
{
	json_t *last = json_object_get(s, "last_apply");
	bool full = json_is_true(json_object_get(last, "full"));

	json_t *ch = json_object_get(s, "changes");

	printf("%lld (%lld failed), %lld repairs; %lld by the change alone, %lld whole; last: %s, "
	       "%.3f ms, %lld messages, +%lld -%lld elements", (long long)json_integer_value(v),
	       num(s, "apply_errors"), num(s, "repairs"), num(ch, "delta"), num(ch, "whole"),
	       full ? "full" : "incremental", num(last, "us") / 1000.0, num(last, "msgs"),
	       num(last, "added"), num(last, "deleted"));
}

static void p_revoked(json_t *v, json_t *s)
{
	json_t *sw = json_object_get(s, "sweeps");

	printf("%lld connections cut; of the changes, %lld swept conntrack at once, %lld right "
	       "after, %lld needed no sweep", (long long)json_integer_value(v), num(sw, "now"),
	       num(sw, "later"), num(sw, "none"));
}

static void p_enforced(json_t *v, json_t *s)
{
	char a[32], b[32], c[32];

	if (!num(v, "count")) {
		printf("no runtime event or file change yet");
		return;
	}
	printf("%lld changes: p50 %s, p99 %s, max %s", num(v, "count"),
	       micros(num(v, "p50_us"), a, sizeof(a)), micros(num(v, "p99_us"), b, sizeof(b)),
	       micros(num(v, "max_us"), c, sizeof(c)));
}

static void p_capture(json_t *v, json_t *s)
{
	char b[512], sz[32];

	if (json_object_get(v, "error")) {
		printf("NFLOG group %lld NOT read: %s (no flows, learning or alerts)",
		       num(v, "group"), esc(v, "error", b, sizeof(b)));
		return;
	}
	printf("NFLOG group %lld: %lld records, %lld dropped by the kernel, %lld malformed, "
	       "%lld ignored, %lld read errors (buffer %s)", num(v, "group"), num(v, "records"),
	       num(v, "drops"), num(v, "malformed"), num(v, "ignored"), num(v, "read_errors"),
	       bytes(num(v, "buffer_bytes"), sz, sizeof(sz)));
}

static void p_flows(json_t *v, json_t *s)
{
	char sz[32];

	printf("%lld of at most %lld (%lld evicted), %lld names, %s reserved", num(v, "count"),
	       num(v, "cap"), num(v, "evicted"), num(v, "names"),
	       bytes(num(v, "bytes"), sz, sizeof(sz)));
}

static void p_learning(json_t *v, json_t *s)
{
	char sel[256], path[512], t1[32], t2[32];
	const char *state = str(v, "state");

	printf("%s", state);
	if (!strcmp(state, "learning"))
		printf(" since %s (%s)", when(json_object_get(v, "started"), t1),
		       *str(v, "selector") ? esc(v, "selector", sel, sizeof(sel)) : "every flow");
	else if (!strcmp(state, "stopped"))
		printf(" at %s", when(json_object_get(v, "stopped"), t1));
	printf("; %lld flows in the baseline, saved %s to %s (%lld failed saves); alerts %s",
	       num(v, "flows"), when(json_object_get(v, "saved"), t2), esc(v, "baseline", path,
	       sizeof(path)), num(v, "save_errors"), str(v, "alerting"));
}

static void p_alerts(json_t *v, json_t *s)
{
	char path[512];

	printf("%lld raised (%lld unexpected flows), %lld held back by the rate of %lld/s, %lld "
	       "write errors; in %s", num(v, "raised"), num(v, "unexpected"), num(v, "suppressed"),
	       num(v, "rate"), num(v, "write_errors"), esc(v, "file", path, sizeof(path)));
}

/* Endpoints Moat lists but cannot enforce, each with why; the first few by name. */
static void p_not_enforced(json_t *v, json_t *s)
{
	char n[512], r[512];
	size_t i, shown = 8;
	json_t *e;

	if (!json_array_size(v)) {
		printf("none: every endpoint's traffic crosses this node's hooks");
		return;
	}
	printf("%zu endpoints:", json_array_size(v));
	json_array_foreach(v, i, e) {
		if (i == shown) {
			printf(" and %zu more (moat endpoints)", json_array_size(v) - shown);
			break;
		}
		printf("%s %s (%s)", i ? ";" : "", esc(e, "name", n, sizeof(n)),
		       esc(e, "reason", r, sizeof(r)));
	}
}

static void p_drop_log(json_t *v, json_t *s)
{
	json_t *u = json_object_get(v, "unlogged");

	if (!num(v, "rate"))
		printf("every drop logged (no --log-rate)");
	else if (json_is_integer(u))
		printf("at most %lld a second per source; %lld drops over it counted, not logged",
		       num(v, "rate"), (long long)json_integer_value(u));
	else
		printf("at most %lld a second per source", num(v, "rate"));
}

static void p_host_access(json_t *v, json_t *s)
{
	char b[1024];

	printf("%s, %lld published ports: %s", str(v, "mode"), num(v, "published"),
	       esc(v, "note", b, sizeof(b)));
}

static void p_uptime(json_t *v, json_t *s)
{
	long long t = (long long)json_integer_value(v);

	if (t >= 86400)
		printf("%lldd %lldh %lldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
	else if (t >= 3600)
		printf("%lldh %lldm", t / 3600, t % 3600 / 60);
	else
		printf("%lldm %llds", t / 60, t % 60);
}

static void p_dns(json_t *v, json_t *s)
{
	printf("%lld replies read, %lld learnt from (%lld addresses), %lld remembered; "
	       "%lld untrusted, %lld malformed, %lld refused; learning took p50 %lld us, p99 %lld us",
	       num(v, "replies"), num(v, "learnt"), num(v, "addresses"), num(v, "remembered"),
	       num(v, "untrusted"), num(v, "malformed"), num(v, "add_errors"), num(v, "p50_us"),
	       num(v, "p99_us"));
}

/* Fields with a printer, in this order; the others they print are listed in also. */
static const struct field {
	const char *key, *label;
	void (*print)(json_t *v, json_t *s);
	const char *also;
} fields[] = {
	{ "mode", "mode", NULL, NULL },
	{ "runtime", "runtime", p_runtime, "runtime_up runtime_name runtime_version" },
	{ "policies", "policies", p_policies, "policy_dir policy_source" },
	{ "cluster", "cluster", p_cluster, NULL },
	{ "endpoints", "endpoints", p_endpoints, "containers identities" },
	{ "not_enforced", "not enforced", p_not_enforced, NULL },
	{ "elements", "ruleset", p_elements, "managed_subnets" },
	{ "applies", "applies", p_applies, "apply_errors repairs last_apply changes" },
	{ "event_to_enforced", "event to enforced", p_enforced, NULL },
	{ "revoked", "revoked", p_revoked, "sweeps" },
	{ "dns", "dns", p_dns, NULL },
	{ "capture", "capture", p_capture, NULL },
	{ "drop_log", "drop log", p_drop_log, NULL },
	{ "host_access", "host access", p_host_access, NULL },
	{ "flows", "flows", p_flows, NULL },
	{ "learning", "learning", p_learning, NULL },
	{ "alerts", "alerts", p_alerts, NULL },
	{ "uptime_s", "uptime", p_uptime, NULL },
};

static bool printed(const char *key)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *also = fields[i].also;
		size_t n = strlen(key);

		if (!strcmp(key, fields[i].key))
			return true;
		for (const char *p = also ? strstr(also, key) : NULL; p; p = strstr(p + 1, key))
			if ((p == also || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
				return true;
	}
	return false;
}

/* One line a field; a field this moat does not know yet (a newer moatd) as JSON. */
static void status_print(json_t *reply)
{
	char b[512];
	const char *k;
	json_t *v;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!(v = json_object_get(reply, fields[i].key)))
			continue;
		printf("%-18s ", fields[i].label);
		if (fields[i].print)
			fields[i].print(v, reply);
		else if (json_is_string(v))
			printf("%s", cli_escape(json_string_value(v), b, sizeof(b)));
		putchar('\n');
	}
	json_object_foreach(reply, k, v) {
		char *s;

		if (printed(k))
			continue;
		s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("%-18s %s\n", k, s ? s : "?");
		free(s);
	}
}

int status_main(int argc, char **argv)
{
	int json = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json");
	json_t *reply;

	if (argc > 1 && !json) {
		int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		fprintf(help ? stdout : stderr,
			"Usage: moat status [-o json]\n\nShows moatd's mode, runtime, counts, "
			"the last apply, the capture,\nflows, learning and alerts, one line each; "
			"-o json prints the whole reply\nas moatd gives it.\n");
		return help ? 0 : 2;
	}
	reply = cli_ctl_request(json_pack("{s:s}", "cmd", "status"));
	if (!reply)
		return 1;
	json_object_del(reply, "ok");
	if (json) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		status_print(reply);
	}
	json_decref(reply);
	return 0;
}

int mode_main(int argc, char **argv)
{
	json_t *reply;

	if (argc != 2 || (strcmp(argv[1], "enforce") && strcmp(argv[1], "monitor"))) {
		int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		fprintf(help ? stdout : stderr,
			"Usage: moat mode enforce|monitor\n\nenforce drops what policies do not allow; "
			"monitor lets it pass and reports it as a violation.\n");
		return help ? 0 : 2;
	}
	reply = cli_ctl_request(json_pack("{s:s,s:s}", "cmd", "mode", "mode", argv[1]));
	if (!reply)
		return 1;
	printf("mode: %s\n", argv[1]);
	json_decref(reply);
	return 0;
}
