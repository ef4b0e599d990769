/* moat learn start|stop|status|suggest: learning mode, and the policies it suggests. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "moat/duration.h"

static const char help[] =
	"Usage: moat learn start [--selector SEL] [--duration D] [--reset]\n"
	"       moat learn stop\n"
	"       moat learn status [--flows] [-o json]\n"
	"       moat learn suggest\n\n"
	"Learning mode records the flows moatd sees into a baseline, keyed by the endpoints'\n"
	"stable labels (replicas and restarts are one group), kept in <state-dir>/baseline.json\n"
	"across restarts of moatd. Once learning is stopped, flows that are neither in the\n"
	"baseline nor allowed by policy raise alerts (moat alerts).\n\n"
	"  start     begin learning flows whose source or destination matches SEL (a label\n"
	"            selector: app=web,tier!=db; default every flow), for D (90s, 5m, 2h;\n"
	"            default until stopped); --reset forgets what was learned before\n"
	"  stop      stop learning and save the baseline\n"
	"  status    the session and the baseline's size; --flows lists the learned flows\n"
	"  suggest   print NetworkPolicy YAML that allows exactly the baseline, over the live\n"
	"            endpoints: check it (moat policy check), put it in the policy directory\n"
	"            and reload (moat policy reload)\n";

static const char *when(json_t *t, char *buf)
{
	if (!json_is_integer(t))
		return "-";
	return cli_time_local(json_integer_value(t) * 1000, buf);
}

static void status_print(json_t *l)
{
	char a[32], b[32], c[32], sel[256];
	const char *s = json_string_value(json_object_get(l, "selector"));

	printf("state      %s\n", json_string_value(json_object_get(l, "state")) ?: "?");
	printf("selector   %s\n", s && *s ? cli_escape(s, sel, sizeof(sel)) : "(every flow)");
	printf("started    %s\n", when(json_object_get(l, "started"), a));
	printf("until      %s\n", json_is_integer(json_object_get(l, "until"))
					  ? when(json_object_get(l, "until"), b) : "stopped by hand");
	printf("stopped    %s\n", when(json_object_get(l, "stopped"), c));
	printf("flows      %lld in the baseline (%lld new in this session, from %lld records)\n",
	       (long long)json_integer_value(json_object_get(l, "flows")),
	       (long long)json_integer_value(json_object_get(l, "learned")),
	       (long long)json_integer_value(json_object_get(l, "records")));
	if (json_is_true(json_object_get(l, "full")))
		printf("cap        FULL: the baseline holds its cap of %lld flows; %lld new flows "
		       "were counted, not learned (moatd --baseline-cap)\n",
		       (long long)json_integer_value(json_object_get(l, "cap")),
		       (long long)json_integer_value(json_object_get(l, "not_learned")));
	else
		printf("cap        %lld flows\n",
		       (long long)json_integer_value(json_object_get(l, "cap")));
	printf("saved      %s (%lld saves, %lld failed%s) to %s\n",
	       when(json_object_get(l, "saved"), a),
	       (long long)json_integer_value(json_object_get(l, "saves")),
	       (long long)json_integer_value(json_object_get(l, "save_errors")),
	       json_is_true(json_object_get(l, "saving")) ? "; saving now" : "",
	       json_string_value(json_object_get(l, "baseline")) ?: "?");
	printf("alerts     %s\n", json_string_value(json_object_get(l, "alerting")) ?: "?");
}

static int start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "selector", required_argument, NULL, 's' }, { "duration", required_argument, NULL, 'd' },
		{ "reset", no_argument, NULL, 'r' },	      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *req = json_pack("{s:s}", "cmd", "learn.start"), *reply;
	uint64_t ms;
	int c;

	optind = 1;
	while (req && (c = getopt_long(argc, argv, "s:d:rh", opts, NULL)) != -1) {
		if (c == 's')
			json_object_set_new(req, "selector", json_string(optarg));
		else if (c == 'd' && moat_duration_parse(optarg, &ms) == 0 && ms)
			json_object_set_new(req, "duration_ms", json_integer((json_int_t)ms));
		else if (c == 'r')
			json_object_set_new(req, "reset", json_true());
		else {
			fputs(help, c == 'h' ? stdout : stderr);
			json_decref(req);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!(reply = cli_ctl_request(req)))
		return 1;
	status_print(json_object_get(reply, "learning"));
	json_decref(reply);
	return 0;
}

static int stop(void)
{
	json_t *reply = cli_ctl_request(json_pack("{s:s}", "cmd", "learn.stop"));

	if (!reply)
		return 1;
	status_print(json_object_get(reply, "learning"));
	json_decref(reply);
	return 0;
}

static int status(int argc, char **argv)
{
	bool json = false, flows = false;
	json_t *reply;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--flows"))
			flows = true;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = true, i++;
		else
			return fputs(help, stderr), 2;
	}
	reply = cli_ctl_request(json_pack("{s:s,s:b}", "cmd", "learn.status", "flows", flows));
	if (!reply)
		return 1;
	if (json) {
		json_dumpf(json_object_get(reply, "learning"), stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		status_print(json_object_get(reply, "learning"));
		if (flows)
			json_dumpf(json_object_get(json_object_get(reply, "learning"), "baseline_flows"),
				   stdout, JSON_INDENT(2)), putchar('\n');
	}
	json_decref(reply);
	return 0;
}

static int suggest(void)
{
	json_t *reply = cli_ctl_request(json_pack("{s:s}", "cmd", "learn.suggest"));

	if (!reply)
		return 1;
	fputs(json_string_value(json_object_get(reply, "yaml")) ?: "", stdout);
	json_decref(reply);
	return 0;
}

int learn_main(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";

	/* `moat learn VERB --help`, like every other command. */
	if (argc == 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help")))
		return fputs(help, stdout), 0;
	if (!strcmp(verb, "start"))
		return start(argc - 1, argv + 1);
	if (!strcmp(verb, "stop") && argc == 2)
		return stop();
	if (!strcmp(verb, "status"))
		return status(argc - 1, argv + 1);
	if (!strcmp(verb, "suggest") && argc == 2)
		return suggest();
	if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
		fputs(help, stdout);
		return 0;
	}
	fputs(help, stderr);
	return 2;
}
