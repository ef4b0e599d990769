/* moat: the command line for Moat. A table of subcommands dispatched by exact name. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MOAT_VERSION "0.1.0"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
};

static const struct subcommand subcommands[] = {
	{ "status", status_main, "Shows whether moatd runs, its mode and what it enforces" },
	{ "endpoints", endpoints_main, "Lists the endpoints moatd knows, with labels, IPs and veths" },
	{ "nodes", nodes_main, "Lists the nodes sharing endpoints and policies through etcd" },
	{ "policy", policy_main, "Checks policies, prints the matrix, explains verdicts, reloads" },
	{ "mode", mode_main, "Sets the global mode: enforce or monitor" },
	{ "flows", flows_main, "Lists the flows moatd has seen, with verdict and policy; --follow" },
	{ "alerts", alerts_main, "Lists unexpected flows (neither learned nor allowed); --follow" },
	{ "learn", learn_main, "Learns the flows of a running app and suggests policies for them" },
	{ "graph", graph_main, "Prints the service graph (observed and allowed flows) as DOT" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: moat [--socket PATH] <command> [<args>]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\nThe socket is --socket, else $MOAT_SOCKET, else /run/moat/moat.sock.\n"
		   "`moat <command> --help` tells more.\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			cli_ctl_set_socket(argv[i + 1]);
			i += 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("moat %s\n", MOAT_VERSION);
			return 0;
		} else {
			fprintf(stderr, "moat: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++)
		if (!strcmp(argv[i], subcommands[k].name))
			return subcommands[k].fn(argc - i, argv + i);
	fprintf(stderr, "moat: '%s' is not a command. See 'moat --help'.\n", argv[i]);
	return 2;
}
