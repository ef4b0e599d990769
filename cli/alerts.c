/* moat alerts: unexpected flows (neither learned nor allowed), as moatd raised them. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: moat alerts [--follow] [--limit N] [-o json]\n\n"
	"Lists the alerts moatd raised: flows that are neither in the learned baseline nor\n"
	"allowed by policy (denied, or passed in monitor mode), once per flow and verdict.\n"
	"Alerts start once a baseline exists and learning is stopped (moat learn). They are\n"
	"also appended to <state-dir>/alerts.jsonl and sent to syslog; a rate limit holds\n"
	"bursts back and reports how many it held.\n\n"
	"  -f, --follow     then print alerts as they are raised\n"
	"      --limit N    only the last N (moatd keeps the last 1024)\n"
	"  -o json          one JSON object per line\n";

static const struct option long_opts[] = {
	{ "follow", no_argument, NULL, 'f' },	   { "limit", required_argument, NULL, 'l' },
	{ "output", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *peer_text(json_t *p, char *buf, size_t len)
{
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *ip = json_string_value(json_object_get(p, "ip"));
	char raw[600];

	snprintf(raw, sizeof(raw), "%s%s%s%s", name ? name : "", name ? " (" : "", ip ? ip : "?",
		 name ? ")" : "");
	return cli_escape(raw, buf, len);
}

static void alert_print(json_t *a, bool json)
{
	char from[80], to[80], policy[80], why[160], what[24];
	const char *kind = json_string_value(json_object_get(a, "kind"));
	const char *proto = json_string_value(json_object_get(a, "proto"));
	json_int_t port = json_integer_value(json_object_get(a, "port"));
	const char *time = json_string_value(json_object_get(a, "time"));

	if (json) {
		json_dumpf(a, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (kind && !strcmp(kind, "suppressed")) {
		printf("%s  %s\n", time ? time : "?",
		       cli_escape(json_string_value(json_object_get(a, "reason")), why, sizeof(why)));
	} else {
		if (port)
			snprintf(what, sizeof(what), "%lld/%s", (long long)port, proto ? proto : "?");
		else
			snprintf(what, sizeof(what), "%s", proto ? proto : "?");
		printf("%s  %s -> %s  %s  %s  %s  %s\n", time ? time : "?",
		       peer_text(json_object_get(a, "from"), from, sizeof(from)),
		       peer_text(json_object_get(a, "to"), to, sizeof(to)), what,
		       json_string_value(json_object_get(a, "verdict")) ?: "?",
		       cli_escape(json_string_value(json_object_get(a, "policy")) ?: "-", policy, sizeof(policy)),
		       cli_escape(json_string_value(json_object_get(a, "why")) ?: "", why, sizeof(why)));
	}
	fflush(stdout);
}

struct stream {
	bool first, json;
};

static int on_message(json_t *msg, void *data)
{
	struct stream *s = data;
	json_t *stats, *a;
	size_t i;

	if (!s->first) {
		alert_print(msg, s->json);
		return 0;
	}
	s->first = false;
	if (!json_is_true(json_object_get(msg, "ok"))) {
		cli_ctl_print_error(msg);
		return 1;
	}
	json_array_foreach(json_object_get(msg, "alerts"), i, a)
		alert_print(a, s->json);
	stats = json_object_get(msg, "stats");
	if (json_is_false(json_object_get(msg, "alerting")))
		fprintf(stderr, "# no baseline yet: alerts start after `moat learn start` ... `moat learn stop`\n");
	if (json_integer_value(json_object_get(stats, "suppressed")))
		fprintf(stderr, "# %lld alerts held back by the rate limit since moatd started\n",
			(long long)json_integer_value(json_object_get(stats, "suppressed")));
	return 0;
}

int alerts_main(int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", "alerts");
	struct stream s = { true, false };
	int c, ret;
	long n;
	char *end;

	optind = 1;
	while (req && (c = getopt_long(argc, argv, "fo:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			json_decref(req);
			return 0;
		}
		if (c == 'f')
			json_object_set_new(req, "follow", json_true());
		else if (c == 'o' && (!strcmp(optarg, "json") || !strcmp(optarg, "text")))
			s.json = !strcmp(optarg, "json");
		else if (c == 'l' && (n = strtol(optarg, &end, 10)) > 0 && !*end)
			json_object_set_new(req, "limit", json_integer(n));
		else {
			fputs(help, stderr);
			json_decref(req);
			return 2;
		}
	}
	if (!req)
		return 1;
	ret = cli_ctl_stream(req, on_message, &s);
	json_decref(req);
	if (ret < 0)
		fprintf(stderr, "moat: cannot reach moatd at %s: %s\n", cli_ctl_socket(), strerror(-ret));
	return ret ? 1 : 0;
}
