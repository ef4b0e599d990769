/* moat graph: the service graph of observed flows and of what the policies allow, as DOT. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: moat graph [-o dot|json]\n\n"
	"Prints the service graph as Graphviz DOT: nodes are endpoint groups by their stable\n"
	"labels (\"shop/app=web\": replicas are one node) or external addresses; edges are the\n"
	"flows moatd has seen (green allowed, red denied, orange violations passed in monitor\n"
	"mode) and what policies allow that nobody used yet (grey, dotted).\n\n"
	"  moat graph | dot -Tsvg >graph.svg\n\n"
	"-o json prints the graph the web UI draws: nodes with their endpoints, and one edge\n"
	"per source, destination, port and kind, with counts, first and last seen (moatd(8)).\n";

int graph_main(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json");
	bool dot = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "dot");
	json_t *reply;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(help, stdout);
		return 0;
	}
	if (argc != 1 && !json && !dot) {
		fputs(help, stderr);
		return 2;
	}
	reply = cli_ctl_request(json_pack("{s:s,s:s}", "cmd", "graph", "format",
					  json ? "json" : "dot"));
	if (!reply)
		return 1;
	if (json) {
		json_dumpf(json_object_get(reply, "graph"), stdout, JSON_INDENT(2));
		putchar('\n');
	} else
		fputs(json_string_value(json_object_get(reply, "dot")) ?: "", stdout);
	json_decref(reply);
	return 0;
}
