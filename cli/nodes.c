/* moat nodes: the nodes that share endpoints and policies through etcd, as moatd sees them. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: moat nodes [-o json]\n\n"
		   "Lists the nodes whose moatd share endpoints and policies through etcd (moatd\n"
		   "--etcd): name (* this one), endpoints published, lease (held, or expired: the\n"
		   "node is gone and its endpoints with it), the lease's TTL left, when it was last\n"
		   "heard of, the policy revision it runs, and its subnets.\n");
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void put_row(json_t *n)
{
	char name[300], heard[32], sub[64];
	long long ago = num(n, "heard_ms_ago");
	json_t *v;
	size_t i;

	cli_escape(json_string_value(json_object_get(n, "name")) ?: "?", name, sizeof(name));
	if (ago < 0)
		snprintf(heard, sizeof(heard), "never");
	else
		snprintf(heard, sizeof(heard), "%.1fs ago", ago / 1000.0);
	printf("%s%s\t%lld\t%s\t%llds\t%s\t%lld\t", name,
	       json_is_true(json_object_get(n, "self")) ? "*" : "", num(n, "endpoints"),
	       json_is_true(json_object_get(n, "alive")) ? "held" : "expired",
	       num(n, "ttl_left"), heard, num(n, "policy_revision"));
	json_array_foreach(json_object_get(n, "subnets"), i, v)
		printf("%s%s", i ? "," : "", cli_escape(json_string_value(v) ?: "?", sub, sizeof(sub)));
	if (!json_array_size(json_object_get(n, "subnets")))
		printf("-");
	putchar('\n');
}

int nodes_main(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json");
	json_t *reply, *n;
	size_t i;

	if (argc > 1 && !json) {
		bool help = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));

		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	reply = cli_ctl_request(json_pack("{s:s}", "cmd", "nodes"));
	if (!reply)
		return 1;
	if (json) {
		json_dumpf(json_object_get(reply, "nodes"), stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("NODE\tENDPOINTS\tLEASE\tTTL LEFT\tLAST HEARD\tPOLICY REV\tSUBNETS\n");
		json_array_foreach(json_object_get(reply, "nodes"), i, n)
			put_row(n);
	}
	json_decref(reply);
	return 0;
}
