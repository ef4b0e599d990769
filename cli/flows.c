/* moat flows: the connections moatd has seen, with their verdict and deciding policy. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "moat/duration.h"

static const char help[] =
	"Usage: moat flows [--follow] [--from SEL] [--to SEL] [--port P] [--verdict V]\n"
	"                  [--since D] [--limit N] [-o json]\n\n"
	"Lists the flows moatd has seen (connection starts and drops, from the ruleset's log),\n"
	"oldest first: last seen, source, destination, port, verdict, the deciding policy and\n"
	"how many times. A flow is (source endpoint or address, destination endpoint or\n"
	"address, protocol, destination port).\n\n"
	"  -f, --follow       then print flows as they happen (a known flow at most once a second)\n"
	"      --from SEL     source: a label selector (app=web,tier!=db; see below) or an address/CIDR\n"
	"      --to SEL       destination, likewise\n"
	"      --port P       80, 80/tcp, 53/udp, icmp\n"
	"      --verdict V    allowed, denied or violation (passed in monitor mode, not allowed)\n"
	"      --since D      last seen within D: 90s, 5m, 1h30m, 2d\n"
	"      --limit N      the newest N matching flows (default 1000, at most 5000)\n"
	"  -o json            one JSON object per line\n\n"
	"Selectors: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k (exists), !k (absent),\n"
	"comma-separated, all must hold. The counts of flows the table evicted and of records\n"
	"the kernel dropped are printed at the end (stderr), so nothing disappears silently.\n";

struct opts {
	bool follow, json;
	json_t *req;
};

static const struct option long_opts[] = {
	{ "follow", no_argument, NULL, 'f' },	  { "from", required_argument, NULL, 'F' },
	{ "to", required_argument, NULL, 'T' },	  { "port", required_argument, NULL, 'p' },
	{ "verdict", required_argument, NULL, 'v' }, { "since", required_argument, NULL, 's' },
	{ "limit", required_argument, NULL, 'l' }, { "output", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },	  { NULL, 0, NULL, 0 },
};

static int opt_one(struct opts *o, int c, const char *arg)
{
	static const char *const keys[128] = { ['F'] = "from", ['T'] = "to", ['p'] = "port",
					       ['v'] = "verdict" };
	uint64_t ms;
	char *end;
	long n;

	if (c < 128 && keys[c])
		return json_object_set_new(o->req, keys[c], json_string(arg));
	switch (c) {
	case 'f':
		o->follow = true;
		return json_object_set_new(o->req, "follow", json_true());
	case 's':
		if (moat_duration_parse(arg, &ms) < 0)
			return -EINVAL;
		return json_object_set_new(o->req, "since_ms", json_integer((json_int_t)ms));
	case 'l':
		n = strtol(arg, &end, 10);
		if (*end || n <= 0)
			return -EINVAL;
		return json_object_set_new(o->req, "limit", json_integer(n));
	case 'o':
		o->json = !strcmp(arg, "json");
		return o->json || !strcmp(arg, "text") ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* 0, 1 after --help, 2 after a usage error. */
static int opts_parse(int argc, char **argv, struct opts *o)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fo:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return 1;
		}
		if (c == '?' || opt_one(o, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "moat flows: bad value '%s'\n", optarg);
			fputs(help, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moat flows: unexpected '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* "ns/name[app=web]": the name, and the key labels of its group when they tell more. */
static const char *peer_text(json_t *p, char *buf, size_t len)
{
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *group = json_string_value(json_object_get(p, "group"));
	const char *ip = json_string_value(json_object_get(p, "ip"));
	const char *labels = group && strchr(group, '/') ? strchr(group, '/') + 1 : NULL;
	char raw[1024];

	if (!name)
		return cli_escape(ip ? ip : "?", buf, len);
	if (labels && strchr(labels, '='))
		snprintf(raw, sizeof(raw), "%s[%s]", name, labels);
	else
		snprintf(raw, sizeof(raw), "%s", name);
	return cli_escape(raw, buf, len);
}

static void flow_print(json_t *f, bool json)
{
	char t[32], from[48], to[48], what[24], policy[64];
	const char *proto = json_string_value(json_object_get(f, "proto"));
	json_int_t port = json_integer_value(json_object_get(f, "port"));

	if (json) {
		json_dumpf(f, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
		return;
	}
	if (port)
		snprintf(what, sizeof(what), "%lld/%s", (long long)port, proto ? proto : "?");
	else
		snprintf(what, sizeof(what), "%s", proto ? proto : "?");
	printf("%-14s  %-40s  %-40s  %-9s  %-9s  %-30s  %lld\n",
	       cli_time_local(json_integer_value(json_object_get(f, "last_ms")), t),
	       peer_text(json_object_get(f, "from"), from, sizeof(from)),
	       peer_text(json_object_get(f, "to"), to, sizeof(to)), what,
	       json_string_value(json_object_get(f, "verdict")) ?: "?",
	       cli_escape(json_string_value(json_object_get(f, "policy")) ?: "-", policy, sizeof(policy)),
	       (long long)json_integer_value(json_object_get(f, "count")));
	fflush(stdout);
}

/* What might be missing from the list, on stderr. */
static void summary_print(json_t *reply, bool json)
{
	json_t *flows = json_object_get(reply, "flows"), *table = json_object_get(reply, "table");
	json_t *cap = json_object_get(reply, "capture");
	json_int_t shown = (json_int_t)json_array_size(flows);
	json_int_t matched = json_integer_value(json_object_get(reply, "matched"));
	json_int_t evicted = json_integer_value(json_object_get(table, "evicted"));
	json_int_t drops = json_integer_value(json_object_get(cap, "drops"));
	/* records that could not be flows: no transport header in the record, later fragments */
	json_int_t unflowed = json_integer_value(json_object_get(cap, "truncated")) +
			      json_integer_value(json_object_get(cap, "fragments")) +
			      json_integer_value(json_object_get(cap, "malformed"));
	const char *err = json_string_value(json_object_get(cap, "error"));

	if (json && shown == matched && !evicted && !drops && !unflowed && !err)
		return;
	fprintf(stderr, "# %lld of %lld matching flows shown; table %lld/%lld, %lld evicted; "
			"%lld records dropped by the kernel, %lld without a port to key a flow "
			"(truncated, fragments, malformed: moat status)%s%s\n",
		(long long)shown, (long long)matched,
		(long long)json_integer_value(json_object_get(table, "count")),
		(long long)json_integer_value(json_object_get(table, "cap")), (long long)evicted,
		(long long)drops, (long long)unflowed, err ? "; capture off: " : "", err ? err : "");
}

struct stream {
	bool first, json;
};

static int on_message(json_t *msg, void *data)
{
	struct stream *s = data;
	size_t i;
	json_t *f;

	if (!s->first) {
		flow_print(msg, s->json);
		return 0;
	}
	s->first = false;
	if (!json_is_true(json_object_get(msg, "ok"))) {
		cli_ctl_print_error(msg);
		return 1;
	}
	if (!s->json)
		printf("%-14s  %-40s  %-40s  %-9s  %-9s  %-30s  %s\n", "LAST SEEN", "SOURCE",
		       "DESTINATION", "PORT", "VERDICT", "POLICY", "COUNT");
	json_array_foreach(json_object_get(msg, "flows"), i, f)
		flow_print(f, s->json);
	summary_print(msg, s->json);
	return 0;
}

int flows_main(int argc, char **argv)
{
	struct opts o = { .req = json_pack("{s:s}", "cmd", "flows") };
	struct stream s = { true, false };
	int ret = o.req ? opts_parse(argc, argv, &o) : -ENOMEM;

	if (ret) {
		json_decref(o.req);
		return ret == 1 ? 0 : ret == 2 ? 2 : 1;
	}
	s.json = o.json;
	ret = cli_ctl_stream(o.req, on_message, &s);
	json_decref(o.req);
	if (ret < 0)
		fprintf(stderr, "moat: cannot reach moatd at %s: %s\n", cli_ctl_socket(), strerror(-ret));
	return ret ? 1 : 0;
}
