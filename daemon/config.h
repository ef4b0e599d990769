/* moatd's configuration: one table of options, set from /etc/moat/moatd.conf and flags. */
#ifndef MOAT_CONFIG_H
#define MOAT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "moat/policy.h"

#define MOATD_DEFAULT_CONFIG "/etc/moat/moatd.conf"
/* Where `make install` puts the web UI's files; the Makefile passes its own WEBDIR. */
#ifndef MOAT_WEB_ROOT
#define MOAT_WEB_ROOT "/usr/local/share/moat/web"
#endif

/* Where a container's namespace comes from (--namespace-from). */
enum namespace_from {
	NAMESPACE_FROM_NONE,		/* every container in "default" */
	NAMESPACE_FROM_KUBERNETES,	/* io.kubernetes.pod.namespace (Kubernetes nodes only) */
	NAMESPACE_FROM_COMPOSE,		/* com.docker.compose.project */
};

struct config {
	char *config_file;
	char *runtime;		/* "unix:///var/run/docker.sock", or "none" */
	char *endpoints_file;	/* optional second source of endpoints */
	char *policy_dir;
	char *socket;
	char *state_dir;
	char *log_level, *log_format;
	char *metrics;		/* "ADDR:PORT" to serve /metrics on, or NULL */
	char *web;		/* "ADDR:PORT" to serve the web UI on, or NULL (daemon/web.h) */
	char *web_token_file;	/* the token the web UI requires, or NULL: none */
	char *web_root;		/* the web UI's files */
	enum moat_mode mode;
	bool kubernetes;	/* --kubernetes: namespace_from kubernetes (kept for old configs) */
	enum namespace_from namespace_from;
	bool flush;
	bool help;
	unsigned nflog_group;
	unsigned resync_seconds;
	unsigned flow_cap;	/* flows remembered (daemon/observe/flows.h) */
	unsigned baseline_cap;	/* flows a learned baseline holds (daemon/observe/learn.h) */
	unsigned alert_rate;	/* alerts per second (daemon/observe/alerts.h); 0: unlimited */
};

/*
 * config_load - defaults, then the config file (--config or the default, which may be
 * absent), then argv: flags win. Prints what is wrong to stderr (file:line for the file)
 * and returns -EINVAL; 0 on success. The caller frees with config_free.
 */
int config_load(struct config *cfg, int argc, char **argv);

/* config_usage - the flags and their meaning. */
void config_usage(FILE *f);

/* config_free - frees the strings; cfg itself is the caller's. */
void config_free(struct config *cfg);

#endif
