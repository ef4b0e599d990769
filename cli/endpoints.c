/* moat endpoints: what moatd knows of each endpoint, as a table for people or JSON. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: moat endpoints [-o json]\n\n"
		   "Lists the endpoints moatd enforces: namespace/name, labels, addresses, host\n"
		   "interfaces, which directions policies isolate, the mode of each, and the node\n"
		   "it runs on (- for this one; another node's, with moatd --etcd, is NAME@NODE).\n");
}

/* Prints s with anything unprintable escaped, so a label cannot forge table lines. */
static void put_escaped(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s && n < max; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	if (*s)
		printf("...");
}

static void put_joined(json_t *arr)
{
	size_t i;
	json_t *v;

	if (!json_array_size(arr))
		printf("-");
	json_array_foreach(arr, i, v) {
		printf("%s", i ? "," : "");
		put_escaped(json_string_value(v) ? json_string_value(v) : "", 64);
	}
}

static void put_labels(json_t *labels)
{
	const char *k;
	json_t *v;
	int first = 1;

	json_object_foreach(labels, k, v) {
		printf("%s", first ? "" : ",");
		put_escaped(k, 64);
		putchar('=');
		put_escaped(json_string_value(v) ? json_string_value(v) : "", 64);
		first = 0;
	}
	if (first)
		printf("-");
}

static void put_row(json_t *e)
{
	json_t *iso = json_object_get(e, "isolated");
	const char *mode = json_string_value(json_object_get(e, "mode"));
	bool in = json_is_true(json_object_get(iso, "ingress"));
	bool out = json_is_true(json_object_get(iso, "egress"));

	put_escaped(json_string_value(json_object_get(e, "name")) ?: "?", 48);
	printf("\t");
	put_labels(json_object_get(e, "labels"));
	printf("\t");
	put_joined(json_object_get(e, "ips"));
	printf("\t");
	put_joined(json_object_get(e, "ifaces"));
	printf("\t%s\t%s\t", in && out ? "in+out" : in ? "in" : out ? "out" : "-",
	       json_is_true(json_object_get(e, "host_network")) ? "host-network" : mode ?: "-");
	put_escaped(json_string_value(json_object_get(e, "node")) ?: "-", 64);
	putchar('\n');
}

int endpoints_main(int argc, char **argv)
{
	json_t *reply, *e;
	int json = 0;
	size_t i;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = 1, i++;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	reply = cli_ctl_request(json_pack("{s:s}", "cmd", "endpoints"));
	if (!reply)
		return 1;
	if (json)
		json_dumpf(json_object_get(reply, "endpoints"), stdout, JSON_INDENT(2)), putchar('\n');
	else {
		printf("ENDPOINT\tLABELS\tIPS\tIFACES\tISOLATED\tMODE\tNODE\n");
		json_array_foreach(json_object_get(reply, "endpoints"), i, e)
			put_row(e);
	}
	json_decref(reply);
	return 0;
}
