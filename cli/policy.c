/*
 * moat policy: check, matrix, explain. Offline: policies and an endpoints file in, the same
 * compiler and verdict code the daemon enforces with, text or JSON out. Glue only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "moat/ctl.h"
#include "moat/plan.h"
#include "moat/report.h"

#define MAX_PORTS 64

struct opts {
	const char **paths;
	size_t npaths;
	const char *endpoints, *from, *to;
	struct moat_port_arg ports[MAX_PORTS];
	size_t nports;
	bool json;
	enum moat_mode mode;
};

/* What an offline run loads and compiles; freed by ctx_free. */
struct ctx {
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
};

/* ---- help ---- */

static const char check_help[] =
	"Usage: moat policy check PATH... [-e ENDPOINTS]\n"
	"Parses and checks NetworkPolicy, ClusterNetworkPolicy (and its v1alpha1 Admin and\n"
	"BaselineAdminNetworkPolicy) and Namespace YAML (files, or directories of *.yaml),\n"
	"and an endpoints file when given. Prints every problem as file:line:col.\n"
	"Exit status: 0 valid, 1 invalid, 2 usage.\n";

static const char matrix_help[] =
	"Usage: moat policy matrix [-p PATH...] [-e ENDPOINTS] [--port 80/tcp]... [-o json]\n"
	"                          [--mode enforce|monitor]\n"
	"With neither -p nor -e, moatd answers from the policies and endpoints it enforces;\n"
	"with -p only, those policies are tried on moatd's live endpoints; with both, offline.\n"
	"Prints who may open connections to whom: one grid per port, rows are sources, columns\n"
	"destinations (namespace/name). --port may repeat (PORT/tcp|udp|sctp, or icmp); default\n"
	"80/tcp. A flow denied only by policies in monitor mode passes, so it shows as allow\n"
	"(marked allow* in the table); `explain` names it a violation. An endpoint reaching\n"
	"itself always passes (it never leaves its network namespace).\n"
	"-o json: {\"ports\": [...], \"verdicts\": [{\"from\", \"to\", \"port\", \"verdict\"}, ...]}.\n";

static const char explain_help[] =
	"Usage: moat policy explain [-p PATH...] [-e ENDPOINTS] --from NS/NAME --to NS/NAME\n"
	"                           [--port 80/tcp] [-o json] [--mode enforce|monitor]\n"
	"Live from moatd without -p and -e, as for matrix.\n"
	"Tells the verdict for one connection and why, per direction (the source's egress,\n"
	"the destination's ingress): the cluster-wide rule that decided it (kind, policy, rule,\n"
	"tier, priority, file:line:col) and an Admin Pass that handed it on, or the policies that\n"
	"isolate it and the rule that allowed it, or that none did. --from/--to also take an\n"
	"address.\n"
	"Verdicts: allow, deny, violation (denied, but only by policies in monitor mode: passes).\n";

/* ---- options ---- */

static const struct option long_opts[] = {
	{ "policies", required_argument, NULL, 'p' }, { "endpoints", required_argument, NULL, 'e' },
	{ "port", required_argument, NULL, 'P' }, { "output", required_argument, NULL, 'o' },
	{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' },
	{ "mode", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int opt_one(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'p':
		o->paths[o->npaths++] = arg;
		return 0;
	case 'e':
		o->endpoints = arg;
		return 0;
	case 'P':
		return o->nports < MAX_PORTS ? moat_port_arg_parse(arg, &o->ports[o->nports++]) : -E2BIG;
	case 'o':
		o->json = !strcmp(arg, "json");
		return o->json || !strcmp(arg, "text") ? 0 : -EINVAL;
	case 'f':
		o->from = arg;
		return 0;
	case 't':
		o->to = arg;
		return 0;
	case 'm':
		o->mode = strcmp(arg, "monitor") ? MOAT_MODE_ENFORCE : MOAT_MODE_MONITOR;
		return strcmp(arg, "monitor") && strcmp(arg, "enforce") ? -EINVAL : 0;
	}
	return -EINVAL;
}

/* Parses argv (argv[0] the subcommand); positional arguments are policy paths too.
 * Returns 0, 1 when --help was printed, 2 after saying what is wrong, or -ENOMEM. */
static int opts_parse(int argc, char **argv, const char *help, struct opts *o)
{
	int c;

	o->paths = calloc(argc + 1, sizeof(char *));
	if (!o->paths)
		return -ENOMEM;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:e:o:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return 1;
		}
		if (c == '?' || opt_one(o, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "moat policy %s: bad value '%s'\n", argv[0], optarg);
			fputs(help, stderr);
			return 2;
		}
	}
	while (optind < argc)
		o->paths[o->npaths++] = argv[optind++];
	if (!o->nports)
		moat_port_arg_parse("80/tcp", &o->ports[o->nports++]);
	return 0;
}

/* 1 (help printed) -> 0, 2 (usage) -> 2, any failure -> 1. */
static int exit_code(int ret)
{
	return ret == 1 ? 0 : ret == 2 ? 2 : ret ? 1 : 0;
}

/* ---- loading ---- */

static void ctx_free(struct ctx *c)
{
	moat_plan_free(c->plan);
	moat_endpoint_set_free(c->es);
	moat_policy_set_free(c->ps);
}

/* Sends req (consumed) to moatd; the reply or NULL after saying what went wrong. */
static json_t *live_call(json_t *req)
{
	return cli_ctl_request_hint(req, "give -e ENDPOINTS to work offline");
}

/* The live endpoints, as moatd sees them, into c->es. */
static int live_endpoints(struct ctx *c, struct moat_diags *d)
{
	json_t *reply = live_call(json_pack("{s:s}", "cmd", "endpoints.export"));
	char *text = reply ? json_dumps(json_object_get(reply, "export"), JSON_COMPACT) : NULL;
	int ret = text ? moat_endpoint_set_parse("moatd", text, strlen(text), &c->es, d) : -EIO;

	free(text);
	json_decref(reply);
	return ret;
}

/* Loads what o names (or the live endpoints) and compiles it; prints diagnostics. */
static int ctx_load(const struct opts *o, struct ctx *c, bool need_endpoints)
{
	struct moat_diags d = { 0 };
	int ret = moat_policy_set_load(o->paths, o->npaths, &c->ps, &d);

	if (!ret && o->endpoints)
		ret = moat_endpoint_set_load(o->endpoints, &c->es, &d);
	else if (!ret && need_endpoints)
		ret = live_endpoints(c, &d);
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	if (ret || !need_endpoints)
		return ret;
	ret = moat_plan_compile(c->ps, c->es, o->mode, NULL, &c->plan);
	if (ret)
		fprintf(stderr, "moat policy: compile: %s\n", strerror(-ret));
	return ret;
}

/* Without -p and -e: moatd answers from the plan it enforces. */
static bool is_live(const struct opts *o)
{
	return !o->npaths && !o->endpoints;
}

static json_t *ports_json(const struct opts *o)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < o->nports; i++)
		json_array_append_new(a, json_string(o->ports[i].text));
	return a;
}

/* The summary line of check; cluster-wide policies are counted when there are any. */
static void check_print(const struct ctx *c)
{
	printf("ok: %zu policies, %zu namespaces", c->ps->npols, c->ps->nnss);
	if (c->ps->ncnps)
		printf(", %zu cluster-wide polic%s", c->ps->ncnps, c->ps->ncnps == 1 ? "y" : "ies");
	printf("%s\n", c->es ? ", endpoints valid" : "");
}

static int check_main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct ctx c = { 0 };
	int ret = opts_parse(argc, argv, check_help, &o);

	if (!ret && !o.npaths) {
		fputs(check_help, stderr);
		ret = 2;
	}
	if (!ret)
		ret = ctx_load(&o, &c, false);
	if (!ret)
		check_print(&c);
	ctx_free(&c);
	free(o.paths);
	return exit_code(ret);
}

/* ---- matrix ---- */

/*
 * Prints a matrix as its rows arrive (from moatd, or built here), never holding more than a
 * row: one grid per port in text, or the JSON list of verdicts, written as it goes.
 */
struct grid {
	bool json;
	size_t nports, n, rows, seen;
	char **ports;		/* port texts */
	char **names;		/* endpoint names; escaped JSON strings with json */
	int w;			/* text column width */
	char *words[3];		/* allow, deny, allow*, each padded to a column */
	bool viol, ended;
};

static void grid_fini(struct grid *g)
{
	for (size_t i = 0; i < 3; i++)
		free(g->words[i]);
	for (size_t i = 0; g->ports && i < g->nports; i++)
		free(g->ports[i]);
	for (size_t i = 0; g->names && i < g->n; i++)
		free(g->names[i]);
	free(g->ports);
	free(g->names);
}

/* A string of a JSON array as text (escaped JSON for print_json), or NULL. */
static char *item_dup(json_t *a, size_t i, bool as_json)
{
	json_t *v = json_array_get(a, i);

	if (!json_is_string(v))
		return NULL;
	return as_json ? json_dumps(v, JSON_ENCODE_ANY) : strdup(json_string_value(v));
}

/* Takes the head {"ports", "endpoints", "rows"}; -EPROTO when it is not one. */
static int grid_head(struct grid *g, json_t *head)
{
	json_t *ports = json_object_get(head, "ports"), *names = json_object_get(head, "endpoints");

	g->nports = json_array_size(ports), g->n = json_array_size(names);
	g->rows = (size_t)json_integer_value(json_object_get(head, "rows"));
	g->ports = calloc(g->nports + 1, sizeof(*g->ports));
	g->names = calloc(g->n + 1, sizeof(*g->names));
	if (!g->ports || !g->names || g->rows != g->n * g->nports)
		return -EPROTO;
	g->w = 7;	/* "allow* " */
	for (size_t i = 0; i < g->nports; i++)
		if (!(g->ports[i] = item_dup(ports, i, g->json)))
			return -EPROTO;
	for (size_t i = 0; i < g->n; i++) {
		if (!(g->names[i] = item_dup(names, i, g->json)))
			return -EPROTO;
		g->w = (int)strlen(g->names[i]) + 1 > g->w ? (int)strlen(g->names[i]) + 1 : g->w;
	}
	for (size_t i = 0; i < 3; i++)
		if (asprintf(&g->words[i], " %-*s", g->w, (const char *[]){ "allow", "deny",
			     "allow*" }[i]) < 0)
			return -ENOMEM;
	if (g->json)
		printf("{\"ports\": [%s", g->nports ? "\n" : "");
	for (size_t i = 0; g->json && i < g->nports; i++)
		printf("  %s%s\n", g->ports[i], i + 1 < g->nports ? "," : "");
	if (g->json)
		printf("], \"verdicts\": [");
	return 0;
}

static const char *verdict_word(char c, bool json)
{
	return c == 'd' ? "deny" : c == 'v' && !json ? "allow*" : "allow";
}

static void grid_row_text(struct grid *g, size_t port, size_t from, const char *v)
{
	if (!from) {
		printf("%s%-*s", port ? "\n\n" : "", g->w, g->ports[port]);
		for (size_t j = 0; j < g->n; j++)
			printf(" %-*s", g->w, g->names[j]);
	}
	printf("\n%-*s", g->w, g->names[from]);
	for (size_t j = 0; j < g->n; j++) {
		fputs(g->words[v[j] == 'd' ? 1 : v[j] == 'v' ? 2 : 0], stdout);
		g->viol |= v[j] == 'v';
	}
}

static void grid_row_json(struct grid *g, size_t port, size_t from, const char *v)
{
	for (size_t j = 0; j < g->n; j++)
		printf("%s\n  {\"from\": %s, \"to\": %s, \"port\": %s, \"verdict\": \"%s\"}",
		       g->seen || j ? "," : "", g->names[from], g->names[j], g->ports[port],
		       verdict_word(v[j], true));
}

/* One row, which must be the next one; -EPROTO otherwise. */
static int grid_row(struct grid *g, size_t port, size_t from, const char *v)
{
	if (g->ended || !v || port * g->n + from != g->seen || port >= g->nports ||
	    from >= g->n || strlen(v) != g->n || v[strspn(v, "adv")])
		return -EPROTO;
	if (g->json)
		grid_row_json(g, port, from, v);
	else
		grid_row_text(g, port, from, v);
	g->seen++;
	return 0;
}

/* After the last row: closes the JSON or the last grid; -EPROTO when rows are missing. */
static int grid_end(struct grid *g)
{
	if (!g->ended || g->seen != g->rows) {
		fflush(stdout);
		fprintf(stderr, "moat policy matrix: the matrix ended after %zu of its %zu rows\n",
			g->seen, g->rows);
		g->ended = true;	/* said */
		return -EPROTO;
	}
	if (g->json)
		printf("%s]}\n", g->seen ? "\n" : "");
	else
		printf("\n");
	if (g->viol)
		printf("\nallow*: passes only because the policies that deny it are in monitor mode\n");
	return 0;
}

/* A message from moatd: the reply (head), a row, or the end. */
static int grid_msg(json_t *msg, void *data)
{
	struct grid *g = data;
	json_t *port = json_object_get(msg, "port"), *from = json_object_get(msg, "from");

	if (!g->ports) {
		if (!json_is_true(json_object_get(msg, "ok"))) {
			cli_ctl_print_error(msg);
			return 1;
		}
		return grid_head(g, msg);
	}
	if (json_is_true(json_object_get(msg, "end"))) {
		g->ended = true;
		return 0;
	}
	if (!json_is_integer(port) || !json_is_integer(from) || json_integer_value(port) < 0 ||
	    json_integer_value(from) < 0)
		return -EPROTO;
	return grid_row(g, (size_t)json_integer_value(port), (size_t)json_integer_value(from),
			json_string_value(json_object_get(msg, "verdicts")));
}

/* The live matrix, printed as moatd sends it. */
static int matrix_live(const struct opts *o, struct grid *g)
{
	json_t *req = json_pack("{s:s,s:o}", "cmd", "policy.matrix", "ports", ports_json(o));
	int ret = req ? cli_ctl_stream(req, grid_msg, g) : -ENOMEM;

	json_decref(req);
	if (ret == 1)		/* moatd said no, and why: printed */
		return -ECANCELED;
	if (ret < 0 && !g->ports) {
		fprintf(stderr, "moat: cannot reach moatd at %s: %s (give -e ENDPOINTS to work "
			"offline)\n", cli_ctl_socket(), strerror(-ret));
		return ret;
	}
	return ret ? ret : grid_end(g);
}

/* The matrix of o's files (or of moatd's endpoints with o's policies), printed here. */
static int matrix_offline(const struct opts *o, struct grid *g)
{
	struct moat_report_matrix *m = NULL;
	struct ctx c = { 0 };
	json_t *head = NULL;
	char *row = NULL;
	int ret = ctx_load(o, &c, true);

	ret = ret ? ret : moat_report_matrix_new(c.plan, o->ports, o->nports, &m);
	if (ret == -E2BIG)
		fprintf(stderr, "moat policy matrix: the matrix of %zu endpoints x %zu ports is over "
			"the limit of %u MiB (MOAT_REPORT_MATRIX_MAX): ask for fewer ports\n",
			c.es->n, o->nports, MOAT_REPORT_MATRIX_MAX >> 20);
	if (!ret && (!(head = moat_report_matrix_head(m)) || !(row = malloc(c.es->n + 1))))
		ret = -ENOMEM;
	ret = ret ? ret : grid_head(g, head);
	for (size_t r = 0; !ret && r < moat_report_matrix_rows(m); r++) {
		moat_report_matrix_row(m, r, row);
		ret = grid_row(g, r / c.es->n, r % c.es->n, row);
	}
	g->ended = true;
	ret = ret ? ret : grid_end(g);
	free(row);
	json_decref(head);
	moat_report_matrix_free(m);
	ctx_free(&c);
	return ret;
}

static int matrix_main(int argc, char **argv)
{
	struct opts o = { 0 };
	int ret = opts_parse(argc, argv, matrix_help, &o);
	struct grid g = { 0 };

	g.json = o.json;
	if (!ret)
		ret = is_live(&o) ? matrix_live(&o, &g) : matrix_offline(&o, &g);
	if (ret == -EPROTO && !g.ended)
		fprintf(stderr, "moat policy matrix: moatd's answer is not a matrix (%zu of %zu "
			"rows)\n", g.seen, g.rows);
	fflush(stdout);
	grid_fini(&g);
	free(o.paths);
	return exit_code(ret);
}

/* ---- explain ---- */

/* "ClusterNetworkPolicy global-deny, rule no-db (Admin, priority 5) at FILE:LINE:COL". */
static void tier_rule_print(json_t *r)
{
	const char *name = json_string_value(json_object_get(r, "rule"));

	printf("%s %s, rule ", json_string_value(json_object_get(r, "kind")),
	       json_string_value(json_object_get(r, "policy")));
	if (name && *name)
		printf("%s", name);
	else
		printf("#%d", (int)json_integer_value(json_object_get(r, "index")));
	printf(" (%s, priority %d%s) at %s:%d:%d", json_string_value(json_object_get(r, "tier")),
	       (int)json_integer_value(json_object_get(r, "priority")),
	       json_is_true(json_object_get(r, "monitor")) ? ", monitor mode" : "",
	       json_string_value(json_object_get(r, "file")),
	       (int)json_integer_value(json_object_get(r, "line")),
	       (int)json_integer_value(json_object_get(r, "col")));
}

/* Prints one direction of the JSON explanation in words. */
static void side_print(json_t *s, const char *dir, const char *who)
{
	json_t *rule = json_object_get(s, "rule"), *pols = json_object_get(s, "policies");
	json_t *tier = json_object_get(s, "tier_rule"), *pass = json_object_get(s, "passed_by");
	size_t i;
	json_t *p;

	printf("  %s of %s: ", dir, who);
	if (json_is_object(pass)) {
		printf("passed on by ");
		tier_rule_print(pass);
		printf("; ");
	}
	if (json_is_object(tier)) {
		printf("%s by ", json_is_true(json_object_get(s, "allowed")) ? "allowed" : "denied");
		tier_rule_print(tier);
		printf("\n");
		return;
	}
	if (!json_is_true(json_object_get(s, "isolated"))) {
		printf("not isolated: allowed\n");
		return;
	}
	printf("isolated (%s) by", json_string_value(json_object_get(s, "mode")));
	json_array_foreach(pols, i, p)
		printf("%s %s", i ? "," : "", json_string_value(p));
	if (json_is_null(rule)) {
		printf("; no rule allows it\n");
		return;
	}
	printf("; allowed by %s %s rule %d at %s:%d:%d\n",
	       json_string_value(json_object_get(rule, "policy")), dir,
	       (int)json_integer_value(json_object_get(rule, "index")),
	       json_string_value(json_object_get(rule, "file")),
	       (int)json_integer_value(json_object_get(rule, "line")),
	       (int)json_integer_value(json_object_get(rule, "col")));
}

static void explain_print(json_t *j)
{
	const char *from = json_string_value(json_object_get(j, "from"));
	const char *to = json_string_value(json_object_get(j, "to"));

	printf("%s -> %s %s: %s\n", from, to, json_string_value(json_object_get(j, "port")),
	       json_string_value(json_object_get(j, "verdict")));
	if (json_is_true(json_object_get(j, "loopback")))
		printf("  loopback: an endpoint reaching itself never leaves its network namespace\n");
	side_print(json_object_get(j, "egress"), "egress", from);
	side_print(json_object_get(j, "ingress"), "ingress", to);
}

static json_t *explain_compute(const struct opts *o)
{
	struct ctx c = { 0 };
	json_t *j = NULL, *reply;
	char err[600];

	if (is_live(o)) {
		reply = live_call(json_pack("{s:s,s:s,s:s,s:s}", "cmd", "policy.explain", "from",
					    o->from, "to", o->to, "port", o->ports[0].text));
		j = json_incref(json_object_get(reply, "explain"));
		json_decref(reply);
		return j;
	}
	if (ctx_load(o, &c, true) == 0 &&
	    moat_report_explain(c.plan, o->from, o->to, &o->ports[0], &j, err, sizeof(err)) < 0)
		fprintf(stderr, "moat policy explain: %s\n", err);
	ctx_free(&c);
	return j;
}

static int explain_main(int argc, char **argv)
{
	struct opts o = { 0 };
	int ret = opts_parse(argc, argv, explain_help, &o);
	json_t *j;

	if (!ret && (!o.from || !o.to)) {
		fputs(explain_help, stderr);
		ret = 2;
	}
	j = ret ? NULL : explain_compute(&o);
	if (!ret && !j)
		ret = -EINVAL;
	if (j && o.json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (j) {
		explain_print(j);
	}
	json_decref(j);
	free(o.paths);
	return exit_code(ret);
}

/* ---- reload ---- */

static int reload_main(int argc, char **argv)
{
	json_t *reply;

	if (argc > 1) {
		int help = !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help");

		fprintf(help ? stdout : stderr, "Usage: moat policy reload\n"
			"Asks moatd to load its policy directory again, all or nothing: a broken file\n"
			"is refused with its file:line:col and the running policy stays in force.\n");
		return help ? 0 : 2;
	}
	reply = live_call(json_pack("{s:s}", "cmd", "policy.reload"));
	if (!reply)
		return 1;
	printf("reloaded: %lld policies in force\n",
	       (long long)json_integer_value(json_object_get(reply, "policies")));
	json_decref(reply);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "check", check_main, "Parses and checks policies (and an endpoints file)" },
	{ "matrix", matrix_main, "Prints the allow/deny matrix between endpoints, per port" },
	{ "explain", explain_main, "Tells the verdict for one connection and which rule decided" },
	{ "reload", reload_main, "Asks moatd to reload its policies (all or nothing)" },
	{ "push", push_main, "Stores checked policies in etcd for every node (moatd --etcd)" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: moat policy <command> [<args>]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\n`moat policy <command> --help` tells more.\n");
}

int policy_main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "moat policy: '%s' is not a command. See 'moat policy --help'.\n", argv[1]);
	return 2;
}
