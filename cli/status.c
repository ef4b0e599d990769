/* moat status and moat mode: the daemon's state at a glance, and the global mode switch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int status_main(int argc, char **argv)
{
	int json = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json");
	json_t *reply;
	const char *k;
	json_t *v;

	if (argc > 1 && !json) {
		int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		fprintf(help ? stdout : stderr,
			"Usage: moat status [-o json]\n\nShows moatd's mode, runtime, counts and "
			"the last apply.\n");
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
		json_object_foreach(reply, k, v) {
			char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

			printf("%-20s %s\n", k, s ? s : json_string_value(v));
			free(s);
		}
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
