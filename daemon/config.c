/*
 * Options: each is a line of one table, so the flag, the config-file key and the help text
 * cannot drift apart. A config-file line is "key = value" (the flag's name without "--");
 * "#" starts a comment.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/wire.h"
#include "config.h"
#include "datapath/ruleset.h"
#include "log.h"
#include "moat/ctl.h"

enum opt_kind { OPT_STRING, OPT_BOOL, OPT_UINT, OPT_COUNT, OPT_MODE, OPT_HOST_ACCESS, OPT_NSFROM };

struct option_def {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	const char *help;
};

#define OPT(n, k, field, h) { n, k, offsetof(struct config, field), h }

static const struct option_def options[] = {
	OPT("config", OPT_STRING, config_file, "configuration file (default " MOATD_DEFAULT_CONFIG ")"),
	OPT("runtime", OPT_STRING, runtime, "container runtime socket, or none (default unix:///var/run/docker.sock)"),
	OPT("endpoints", OPT_STRING, endpoints_file, "endpoints file, or directory of such files, to enforce besides containers (watched)"),
	OPT("policy-dir", OPT_STRING, policy_dir, "directory of policy YAML files; with --etcd and none given, the policies pushed to etcd (default /etc/moat/policies)"),
	OPT("socket", OPT_STRING, socket, "control socket (default " MOAT_CTL_DEFAULT_SOCKET ")"),
	OPT("state-dir", OPT_STRING, state_dir, "state directory (default /var/lib/moat)"),
	OPT("mode", OPT_MODE, mode, "enforce (drop what is not allowed) or monitor (report it)"),
	OPT("host-access", OPT_HOST_ACCESS, host_policy, "the node's own connections to containers: allow (default) or policy (an ipBlock must allow the node; containers reach only its published ports)"),
	OPT("namespace-from", OPT_NSFROM, namespace_from, "a container's namespace: none (all in default), kubernetes (io.kubernetes.pod.namespace, Kubernetes nodes only) or compose (its Compose project) (default none)"),
	OPT("kubernetes", OPT_BOOL, kubernetes, "the same as --namespace-from kubernetes"),
	OPT("nflog-group", OPT_UINT, nflog_group, "NFLOG group for denied packets (default 1)"),
	OPT("dns-queue", OPT_UINT, dns_queue, "NFQUEUE moatd reads DNS replies to endpoints from, for domainNames rules (default 53)"),
	OPT("dns-resolvers", OPT_STRING, dns_resolvers, "addresses or CIDRs of the resolvers whose replies domainNames rules learn from, comma-separated (default: any)"),
	OPT("metrics", OPT_STRING, metrics, "serve Prometheus metrics on ADDR:PORT, e.g. 127.0.0.1:9640 (default off)"),
	OPT("web", OPT_STRING, web, "serve the web UI (service map, flows) on ADDR:PORT, e.g. 127.0.0.1:9641 (default off)"),
	OPT("web-token-file", OPT_STRING, web_token_file, "file holding a token the web UI then requires (default off: no token)"),
	OPT("web-root", OPT_STRING, web_root, "the web UI's files (default " MOAT_WEB_ROOT ")"),
	OPT("etcd", OPT_STRING, etcd, "etcd endpoints, http(s)://HOST:2379[,...]: share endpoints and policies with other nodes (default off: one node)"),
	OPT("node-name", OPT_STRING, node_name, "this node's name among the nodes sharing etcd (default: the hostname)"),
	OPT("etcd-prefix", OPT_STRING, etcd_prefix, "prefix of Moat's keys in etcd (default " WIRE_DEFAULT_PREFIX ")"),
	OPT("etcd-cacert", OPT_STRING, etcd_cacert, "CA certificate (PEM) that signed etcd's server certificates"),
	OPT("etcd-cert", OPT_STRING, etcd_cert, "client certificate (PEM) for etcd"),
	OPT("etcd-key", OPT_STRING, etcd_key, "the client certificate's key (PEM)"),
	OPT("etcd-lease-ttl", OPT_UINT, etcd_lease_ttl, "seconds another node keeps this node's endpoints after it goes silent (default 20)"),
	OPT("flow-cap", OPT_COUNT, flow_cap, "flows remembered; the least recently seen go first (default 65536)"),
	OPT("baseline-cap", OPT_COUNT, baseline_cap, "flows the learned baseline holds; past it new flows are counted, not learned (default 100000)"),
	OPT("alert-rate", OPT_COUNT, alert_rate, "alerts per second on average, bursts of 10x (default 10; 0: no limit)"),
	OPT("log-rate", OPT_COUNT, log_rate, "dropped packets logged per second per source address or bridge port; past it, counted (default 20; 0: all)"),
	OPT("resync-interval", OPT_UINT, resync_seconds, "seconds between reconciliations with the runtime, one in ten full (default 30)"),
	OPT("log-level", OPT_STRING, log_level, "debug, info, warn or error (default info)"),
	OPT("log-format", OPT_STRING, log_format, "text or json (default text)"),
	OPT("flush", OPT_BOOL, flush, "remove everything Moat installed and exit"),
	OPT("help", OPT_BOOL, help, "this help"),
};

static const char *const nsfrom_names[] = {
	[NAMESPACE_FROM_NONE] = "none",
	[NAMESPACE_FROM_KUBERNETES] = "kubernetes",
	[NAMESPACE_FROM_COMPOSE] = "compose",
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const struct option_def *option_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len))
			return &options[i];
	return NULL;
}

/* Sets one option from text; returns 0 or -EINVAL with why in *why. */
static int option_set(struct config *cfg, const struct option_def *o, const char *val,
		      const char **why)
{
	void *field = (char *)cfg + o->offset;
	char *end;
	unsigned long n;

	switch (o->kind) {
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = strdup(val);
		return *(char **)field ? 0 : -ENOMEM;
	case OPT_BOOL:
		if (strcmp(val, "true") && strcmp(val, "false") && strcmp(val, "yes") && strcmp(val, "no"))
			return *why = "expected true or false", -EINVAL;
		*(bool *)field = !strcmp(val, "true") || !strcmp(val, "yes");
		return 0;
	case OPT_UINT:
		errno = 0;
		n = strtoul(val, &end, 10);
		if (errno || !*val || *end || n > 65535)
			return *why = "expected a number from 0 to 65535", -EINVAL;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case OPT_COUNT:	/* a size: 0 .. 16M */
		errno = 0;
		n = strtoul(val, &end, 10);
		if (errno || !*val || *end || n > (16ul << 20))
			return *why = "expected a number from 0 to 16777216", -EINVAL;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case OPT_NSFROM:
		for (size_t i = 0; i < sizeof(nsfrom_names) / sizeof(nsfrom_names[0]); i++)
			if (!strcmp(val, nsfrom_names[i]))
				return *(enum namespace_from *)field = i, 0;
		return *why = "expected none, kubernetes or compose", -EINVAL;
	case OPT_MODE:
		if (strcmp(val, "enforce") && strcmp(val, "monitor"))
			return *why = "expected enforce or monitor", -EINVAL;
		*(enum moat_mode *)field = strcmp(val, "enforce") ? MOAT_MODE_MONITOR : MOAT_MODE_ENFORCE;
		return 0;
	case OPT_HOST_ACCESS:
		if (strcmp(val, "allow") && strcmp(val, "policy"))
			return *why = "expected allow or policy", -EINVAL;
		*(bool *)field = !strcmp(val, "policy");
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		*--e = '\0';
	return s;
}

static int config_file_read(struct config *cfg, const char *path, bool must_exist)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	unsigned lineno = 0;
	int ret = 0;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "moatd: %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq;
		const struct option_def *o = NULL;
		const char *why = "expected key = value";

		lineno++;
		line[strcspn(line, "#")] = '\0';
		s = trim(line);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (eq) {
			*eq = '\0';
			s = trim(s);
			o = option_find(s, strlen(s));
			why = "unknown key";
		}
		if (!o || !strcmp(o->name, "config") || option_set(cfg, o, trim(eq + 1), &why) < 0) {
			fprintf(stderr, "moatd: %s:%u: %s: %s\n", path, lineno, s, why);
			ret = -EINVAL;
		}
	}
	fclose(f);
	return ret;
}

static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->runtime = strdup("unix:///var/run/docker.sock");
	cfg->socket = strdup(MOAT_CTL_DEFAULT_SOCKET);
	cfg->state_dir = strdup("/var/lib/moat");
	cfg->web_root = strdup(MOAT_WEB_ROOT);
	cfg->nflog_group = 1;
	cfg->dns_queue = NFT_DEFAULT_DNS_QUEUE;
	cfg->resync_seconds = 30;
	cfg->flow_cap = 65536;
	cfg->baseline_cap = 100000;
	cfg->alert_rate = 10;
	cfg->log_rate = NFT_DEFAULT_LOG_RATE;
	cfg->etcd_prefix = strdup(WIRE_DEFAULT_PREFIX);
	cfg->etcd_lease_ttl = 20;
}

/* What depends on other options: where policies come from, the node's name. */
static int config_settle(struct config *cfg)
{
	char host[256] = "";

	if (cfg->etcd && !*cfg->etcd) {
		free(cfg->etcd);
		cfg->etcd = NULL;
	}
	cfg->policies_from_etcd = cfg->etcd && !cfg->policy_dir;
	if (!cfg->policy_dir && !(cfg->policy_dir = strdup("/etc/moat/policies")))
		return -ENOMEM;
	if (cfg->etcd && !cfg->node_name) {
		gethostname(host, sizeof(host) - 1);
		if (!(cfg->node_name = strdup(host)))
			return -ENOMEM;
	}
	if (cfg->etcd && !wire_name_ok(cfg->node_name)) {
		fprintf(stderr, "moatd: --node-name %s: expected letters, digits, '.', '_' and '-' "
			"(at most %d), not starting with '.' or '-'\n", cfg->node_name, WIRE_MAX_NAME);
		return -EINVAL;
	}
	if (cfg->etcd && (cfg->etcd_lease_ttl < 5 || !*cfg->etcd_prefix ||
			  cfg->etcd_prefix[strlen(cfg->etcd_prefix) - 1] != '/')) {
		fprintf(stderr, "moatd: --etcd-lease-ttl is at least 5 and --etcd-prefix ends with /\n");
		return -EINVAL;
	}
	return 0;
}

/* Applies argv; with only_config, just finds --config. */
static int config_args(struct config *cfg, int argc, char **argv, bool only_config)
{
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct option_def *o = strncmp(arg, "--", 2) ? NULL : option_find(arg + 2, len - 2);
		const char *val = eq ? eq + 1 : NULL, *why = "";

		if (!o) {
			fprintf(stderr, "moatd: unknown option '%s' (see --help)\n", arg);
			return -EINVAL;
		}
		if (!val)
			val = o->kind == OPT_BOOL ? "true" : (i + 1 < argc ? argv[++i] : NULL);
		if (!val) {
			fprintf(stderr, "moatd: --%s needs a value\n", o->name);
			return -EINVAL;
		}
		if ((!only_config || !strcmp(o->name, "config")) && option_set(cfg, o, val, &why) < 0) {
			fprintf(stderr, "moatd: --%s %s: %s\n", o->name, val, why);
			return -EINVAL;
		}
	}
	return 0;
}

/* --kubernetes is --namespace-from kubernetes; with another --namespace-from it is a mistake. */
static int config_kubernetes(struct config *cfg)
{
	if (!cfg->kubernetes)
		return 0;
	if (cfg->namespace_from == NAMESPACE_FROM_COMPOSE) {
		fprintf(stderr, "moatd: --kubernetes and --namespace-from compose disagree\n");
		return -EINVAL;
	}
	cfg->namespace_from = NAMESPACE_FROM_KUBERNETES;
	return 0;
}

int config_load(struct config *cfg, int argc, char **argv)
{
	int ret;

	config_defaults(cfg);
	ret = config_args(cfg, argc, argv, true);
	if (!ret)
		ret = config_file_read(cfg, cfg->config_file ? cfg->config_file : MOATD_DEFAULT_CONFIG,
				       cfg->config_file != NULL);
	if (!ret)
		ret = config_args(cfg, argc, argv, false);
	if (!ret)
		ret = config_kubernetes(cfg);
	if (!ret)
		ret = config_settle(cfg);
	if (!ret && log_setup(cfg->log_level, cfg->log_format) < 0) {
		fprintf(stderr, "moatd: bad --log-level or --log-format\n");
		ret = -EINVAL;
	}
	return ret;
}

void config_usage(FILE *f)
{
	fprintf(f, "Usage: moatd [options]\n\nEnforces Moat's policies on this node's containers.\n"
		   "Every option can also be set in the config file as \"name = value\"; flags win.\n\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		fprintf(f, "  --%-18s %s\n", options[i].name, options[i].help);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].kind == OPT_STRING)
			free(*(char **)((char *)cfg + options[i].offset));
}
