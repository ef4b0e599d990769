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

/* What --host-access means, for the log at start and moat status. */
#define HOST_ALLOW_NOTE "the node reaches its containers; containers reach the node as their " \
	"egress policy allows; published ports as the container's ingress policy allows"
#define HOST_POLICY_NOTE "the node reaches a container only when its policy allows the " \
	"node's addresses (ipBlock); containers reach only the node's published ports. Docker's " \
	"userland proxy connects to containers from the node: with it, a published port reaches " \
	"only containers whose policy allows the node; run dockerd with --userland-proxy=false"

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
	char *etcd;		/* "http://HOST:2379[,...]": share endpoints and policies through
				 * etcd (daemon/cluster/); NULL: a single node */
	char *node_name;	/* this node's name among the cluster's (default: the hostname) */
	char *etcd_prefix;	/* where Moat's keys live in etcd */
	char *etcd_cacert, *etcd_cert, *etcd_key;	/* TLS with a client certificate */
	unsigned etcd_lease_ttl;	/* seconds */
	bool policies_from_etcd;	/* with --etcd and no --policy-dir: the policy set is
					 * etcd's (moat policy push); else the directory's */
	enum moat_mode mode;
	bool kubernetes;	/* --kubernetes: namespace_from kubernetes (kept for old configs) */
	enum namespace_from namespace_from;
	bool host_policy;	/* --host-access policy: the node's own connections to
				 * endpoints are policed, endpoints reach only its published
				 * ports (datapath/ruleset.h, RULESET_HOST_POLICY); else allow */
	bool flush;
	bool help;
	unsigned nflog_group;
	unsigned dns_queue;		/* NFQUEUE of DNS replies, for domainNames rules */
	char *dns_resolvers;		/* "ADDR[/LEN],..." learnt from, or NULL: any */
	unsigned resync_seconds;
	unsigned flow_cap;	/* flows remembered (daemon/observe/flows.h) */
	unsigned baseline_cap;	/* flows a learned baseline holds (daemon/observe/learn.h) */
	unsigned alert_rate;	/* alerts per second (daemon/observe/alerts.h); 0: unlimited */
	unsigned log_rate;	/* drop records per second per source the kernel logs; 0: all */
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
