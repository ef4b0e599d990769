/*
 * moat policy: check, matrix, explain. Offline: policies and an endpoints file in, the same
 * compiler and verdict code the daemon enforces with, text or JSON out. Glue only.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "moat/plan.h"

#define MAX_PORTS 64

struct port_arg {
	uint8_t proto;
	uint16_t port;
	char text[24];
};

struct opts {
	const char **paths;
	size_t npaths;
	const char *endpoints, *from, *to;
	struct port_arg ports[MAX_PORTS];
	size_t nports;
	bool json;
	enum moat_mode mode;
};

/* What a run loads and compiles; freed by ctx_free. */
struct ctx {
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
	size_t *order;		/* endpoint indexes sorted by namespace/name */
};

static const struct {
	const char *name;
	uint8_t proto;
} protos[] = {
	{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "sctp", IPPROTO_SCTP },
	{ "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 },
};

/* "80/tcp", "53/udp", "80" (tcp), "icmp": 0 or -EINVAL. */
static int port_parse(const char *s, struct port_arg *p)
{
	const char *slash = strchr(s, '/'), *pname = slash ? slash + 1 : "tcp";
	char *end;
	long n = strtol(s, &end, 10);

	if (end == s) {		/* no number: a protocol without ports */
		pname = s;
		n = 0;
	} else if (end != (slash ? slash : s + strlen(s)) || n < 0 || n > 65535) {
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!strcasecmp(pname, protos[i].name)) {
			p->proto = protos[i].proto;
			p->port = n;
			if (end == s)
				snprintf(p->text, sizeof(p->text), "%s", protos[i].name);
			else
				snprintf(p->text, sizeof(p->text), "%ld/%s", n, protos[i].name);
			return 0;
		}
	return -EINVAL;
}

/* ---- help ---- */

static const char check_help[] =
	"Usage: moat policy check PATH... [-e ENDPOINTS]\n"
	"Parses and checks NetworkPolicy and Namespace YAML (files, or directories of *.yaml),\n"
	"and an endpoints file when given. Prints every problem as file:line:col.\n"
	"Exit status: 0 valid, 1 invalid, 2 usage.\n";

static const char matrix_help[] =
	"Usage: moat policy matrix -p PATH... -e ENDPOINTS [--port 80/tcp]... [-o json]\n"
	"                          [--mode enforce|monitor]\n"
	"Prints who may open connections to whom: one grid per port, rows are sources, columns\n"
	"destinations (namespace/name). --port may repeat (PORT/tcp|udp|sctp, or icmp); default\n"
	"80/tcp. A flow denied only by policies in monitor mode passes, so it shows as allow\n"
	"(marked allow* in the table); `explain` names it a violation. An endpoint reaching\n"
	"itself always passes (it never leaves its network namespace).\n"
	"-o json: {\"ports\": [...], \"verdicts\": [{\"from\", \"to\", \"port\", \"verdict\"}, ...]}.\n";

static const char explain_help[] =
	"Usage: moat policy explain -p PATH... -e ENDPOINTS --from NS/NAME --to NS/NAME\n"
	"                           [--port 80/tcp] [-o json] [--mode enforce|monitor]\n"
	"Tells the verdict for one connection and why: the policies that isolate the source\n"
	"for egress and the destination for ingress, and the rule (policy, direction, index,\n"
	"file:line) that allowed each side, or that none did. --from/--to also take an address.\n"
	"Verdicts: allow, deny, violation (denied, but only by monitor-mode isolation: passes).\n";

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
		return o->nports < MAX_PORTS ? port_parse(arg, &o->ports[o->nports++]) : -E2BIG;
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
		port_parse("80/tcp", &o->ports[o->nports++]);
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
	free(c->order);
}

static const struct moat_endpoint_set *sort_set;

static int cmp_endpoint(const void *a, const void *b)
{
	const struct moat_endpoint *x = &sort_set->v[*(const size_t *)a];
	const struct moat_endpoint *y = &sort_set->v[*(const size_t *)b];
	int r = strcmp(x->namespace, y->namespace);

	return r ? r : strcmp(x->name, y->name);
}

static int order_build(struct ctx *c)
{
	c->order = calloc(c->es->n + 1, sizeof(size_t));
	if (!c->order)
		return -ENOMEM;
	for (size_t i = 0; i < c->es->n; i++)
		c->order[i] = i;
	sort_set = c->es;	/* qsort has no context argument; single-threaded CLI */
	qsort(c->order, c->es->n, sizeof(size_t), cmp_endpoint);
	return 0;
}

/* Loads what o names and compiles it; prints diagnostics. Returns 0 or a negative errno. */
static int ctx_load(const struct opts *o, struct ctx *c, bool need_endpoints)
{
	struct moat_diags d = { 0 };
	int ret = moat_policy_set_load(o->paths, o->npaths, &c->ps, &d);

	if (!ret && o->endpoints)
		ret = moat_endpoint_set_load(o->endpoints, &c->es, &d);
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	if (ret || !need_endpoints)
		return ret;
	if (!c->es) {
		fprintf(stderr, "moat policy: -e ENDPOINTS is required\n");
		return -EINVAL;
	}
	ret = moat_plan_compile(c->ps, c->es, o->mode, NULL, &c->plan);
	if (ret)
		fprintf(stderr, "moat policy: compile: %s\n", strerror(-ret));
	return ret ? ret : order_build(c);
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
		printf("ok: %zu policies, %zu namespaces%s\n", c.ps->npols, c.ps->nnss,
		       c.es ? ", endpoints valid" : "");
	ctx_free(&c);
	free(o.paths);
	return exit_code(ret);
}

/* ---- matrix ---- */

static void endpoint_name(const struct moat_endpoint *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", e->namespace, e->name);
}

static const char *matrix_word(enum moat_verdict_kind k, bool json)
{
	return k == MOAT_DENY ? "deny" : k == MOAT_VIOLATION && !json ? "allow*" : "allow";
}

static json_t *matrix_json(const struct ctx *c, const struct opts *o)
{
	json_t *root = json_object(), *ports = json_array(), *vs = json_array();
	char from[512], to[512];
	struct moat_verdict v;

	json_object_set_new(root, "ports", ports);
	json_object_set_new(root, "verdicts", vs);
	for (size_t k = 0; k < o->nports; k++) {
		json_array_append_new(ports, json_string(o->ports[k].text));
		for (size_t i = 0; i < c->es->n; i++)
			for (size_t j = 0; j < c->es->n; j++) {
				moat_plan_decide_endpoints(c->plan, c->order[i], c->order[j],
							   o->ports[k].proto, o->ports[k].port, &v);
				endpoint_name(&c->es->v[c->order[i]], from, sizeof(from));
				endpoint_name(&c->es->v[c->order[j]], to, sizeof(to));
				json_array_append_new(vs, json_pack("{s:s, s:s, s:s, s:s}", "from", from,
					"to", to, "port", o->ports[k].text, "verdict",
					matrix_word(v.kind, true)));
			}
	}
	return root;
}

static int name_width(const struct ctx *c)
{
	int w = 7;	/* "allow* " */
	char buf[512];

	for (size_t i = 0; i < c->es->n; i++) {
		endpoint_name(&c->es->v[i], buf, sizeof(buf));
		if ((int)strlen(buf) + 1 > w)
			w = strlen(buf) + 1;
	}
	return w;
}

static void matrix_grid(const struct ctx *c, const struct port_arg *p, int w, bool *viol)
{
	char buf[512];
	struct moat_verdict v;

	printf("%-*s", w, p->text);
	for (size_t j = 0; j < c->es->n; j++) {
		endpoint_name(&c->es->v[c->order[j]], buf, sizeof(buf));
		printf(" %-*s", w, buf);
	}
	for (size_t i = 0; i < c->es->n; i++) {
		endpoint_name(&c->es->v[c->order[i]], buf, sizeof(buf));
		printf("\n%-*s", w, buf);
		for (size_t j = 0; j < c->es->n; j++) {
			moat_plan_decide_endpoints(c->plan, c->order[i], c->order[j], p->proto, p->port,
						   &v);
			*viol |= v.kind == MOAT_VIOLATION;
			printf(" %-*s", w, matrix_word(v.kind, false));
		}
	}
	printf("\n\n");
}

static int matrix_main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct ctx c = { 0 };
	bool viol = false;
	int ret = opts_parse(argc, argv, matrix_help, &o);

	if (!ret)
		ret = ctx_load(&o, &c, true);
	if (!ret && o.json) {
		json_t *j = matrix_json(&c, &o);

		ret = json_dumpf(j, stdout, JSON_INDENT(1)) ? -EIO : 0;
		putchar('\n');
		json_decref(j);
	}
	for (size_t k = 0; !ret && !o.json && k < o.nports; k++)
		matrix_grid(&c, &o.ports[k], name_width(&c), &viol);
	if (viol)
		printf("allow*: passes only because the isolating policies are in monitor mode\n");
	ctx_free(&c);
	free(o.paths);
	return exit_code(ret);
}

/* ---- explain ---- */

/* One side of the connection: an endpoint (index) or, failing that, an address. */
struct side {
	long ep;
	struct moat_addr addr;
	char name[512];
};

static int side_parse(const struct ctx *c, const char *s, struct side *out)
{
	const char *slash = strchr(s, '/');
	char ns[256];

	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - s) : 0, s);
	out->ep = moat_endpoint_set_find(c->es, slash ? ns : MOAT_DEFAULT_NAMESPACE,
					 slash ? slash + 1 : s);
	if (out->ep >= 0) {
		endpoint_name(&c->es->v[out->ep], out->name, sizeof(out->name));
		return 0;
	}
	snprintf(out->name, sizeof(out->name), "%s", s);
	if (!moat_addr_parse(s, &out->addr))
		return 0;
	fprintf(stderr, "moat policy explain: '%s' is neither an endpoint (namespace/name) "
		"nor an address\n", s);
	return 2;
}

static const char *verdict_word(const struct moat_verdict *v)
{
	static const char *const words[] = { "allow", "deny", "violation" };

	return words[v->kind];
}

static const char *mode_word(enum moat_mode m)
{
	return m == MOAT_MODE_MONITOR ? "monitor" : "enforce";
}

static json_t *rule_json(const struct ctx *c, const struct moat_rule_ref *r)
{
	const struct moat_netpol *p;
	const struct moat_rule *rule;

	if (r->policy == UINT32_MAX)
		return json_null();
	p = &c->ps->pols[r->policy];
	rule = r->egress ? &p->out[r->rule] : &p->in[r->rule];
	return json_pack("{s:s++, s:s, s:i, s:s, s:i, s:i}", "policy", p->namespace, "/", p->name,
			 "direction", r->egress ? "egress" : "ingress", "index", (int)r->rule,
			 "file", rule->pos.file ? rule->pos.file : "", "line", (int)rule->pos.line,
			 "col", (int)rule->pos.col);
}

/* {isolated, mode, policies, allowed, rule} for one direction of verdict v. */
static json_t *side_json(const struct ctx *c, const struct moat_verdict *v, bool egress)
{
	uint32_t id = egress ? v->src_ident : v->dst_ident;
	const struct moat_plan_ident *pi = moat_plan_ident_get(c->plan, id);
	const uint32_t *pols;
	size_t n = moat_plan_isolating(c->plan, id, egress, &pols);
	json_t *names = json_array();
	bool iso = egress ? v->out_iso : v->in_iso;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(names, json_pack("s++", c->ps->pols[pols[i]].namespace, "/",
							c->ps->pols[pols[i]].name));
	return json_pack("{s:b, s:s?, s:o, s:b, s:o}", "isolated", iso, "mode",
			 iso && pi ? mode_word(egress ? pi->out_mode : pi->in_mode) : NULL,
			 "policies", names, "allowed", egress ? v->out_ok : v->in_ok,
			 "rule", rule_json(c, egress ? &v->out_rule : &v->in_rule));
}

static json_t *explain_json(const struct ctx *c, const struct side *f, const struct side *t,
			    const struct port_arg *p, const struct moat_verdict *v)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o}", "from", f->name, "to", t->name,
			 "port", p->text, "verdict", verdict_word(v), "loopback", v->loopback,
			 "egress", side_json(c, v, true), "ingress", side_json(c, v, false));
}

/* Prints one direction of the JSON explanation in words. */
static void side_print(json_t *s, const char *dir, const char *who)
{
	json_t *rule = json_object_get(s, "rule"), *pols = json_object_get(s, "policies");
	size_t i;
	json_t *p;

	printf("  %s of %s: ", dir, who);
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

static void explain_decide(const struct ctx *c, const struct side *f, const struct side *t,
			   const struct port_arg *p, struct moat_verdict *v)
{
	const struct moat_plan *pl = c->plan;
	struct moat_addr a = f->ep >= 0 && c->es->v[f->ep].nips ? c->es->v[f->ep].ips[0] : f->addr;
	struct moat_addr b = t->ep >= 0 && c->es->v[t->ep].nips ? c->es->v[t->ep].ips[0] : t->addr;

	if (f->ep >= 0 && t->ep >= 0)
		moat_plan_decide_endpoints(pl, f->ep, t->ep, p->proto, p->port, v);
	else
		moat_plan_decide(pl, &a, &b, p->proto, p->port, v);
}

static int explain_main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct ctx c = { 0 };
	struct side f, t;
	struct moat_verdict v;
	int ret = opts_parse(argc, argv, explain_help, &o);

	if (!ret && (!o.from || !o.to)) {
		fputs(explain_help, stderr);
		ret = 2;
	}
	if (!ret)
		ret = ctx_load(&o, &c, true);
	if (!ret)
		ret = side_parse(&c, o.from, &f);
	if (!ret)
		ret = side_parse(&c, o.to, &t);
	if (!ret) {
		explain_decide(&c, &f, &t, &o.ports[0], &v);
		json_t *j = explain_json(&c, &f, &t, &o.ports[0], &v);

		if (o.json) {
			json_dumpf(j, stdout, JSON_INDENT(2));
			putchar('\n');
		} else {
			explain_print(j);
		}
		json_decref(j);
	}
	ctx_free(&c);
	free(o.paths);
	return exit_code(ret);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "check", check_main, "Parses and checks policies (and an endpoints file)" },
	{ "matrix", matrix_main, "Prints the allow/deny matrix between endpoints, per port" },
	{ "explain", explain_main, "Tells the verdict for one connection and which rule decided" },
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
