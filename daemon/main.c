/* moatd: parse the configuration, build the node, serve the control socket, run the loop. */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brnf.h"
#include "commands.h"
#include "config.h"
#include "ctl.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "datapath/ruleset.h"
#include "node.h"
#include "web/web.h"

static void on_stop(struct loop *loop, int signo, void *data)
{
	log_info("%s: stopping; the ruleset stays in force", strsignal(signo));
	loop_stop(loop);
}

static void on_reload(struct loop *loop, int signo, void *data)
{
	struct moat_diags diags = { 0 };

	node_policy_reload(data, &diags);
	moat_diags_free(&diags);
}

static int flush(void)
{
	struct moat_diags diags = { 0 };
	struct ruleset *nft = NULL;
	int ret = ruleset_new(&nft);

	if (!ret)
		ret = ruleset_flush(nft, &diags);
	moat_diags_print(&diags, stderr);
	moat_diags_free(&diags);
	ruleset_free(nft);
	if (ret)
		log_error("flush failed: %s", strerror(-ret));
	else
		log_info("removed Moat's tables");
	return ret;
}

/* --metrics and --web: a server each, or one for both when they name the same address. */
static int http_start(struct loop *loop, const struct config *cfg, struct commands *cmds,
		      struct metrics **metrics, struct web **web)
{
	struct node *node = cmds->node;
	bool web_on = cfg->web && *cfg->web;
	bool shared = web_on && cfg->metrics && !strcmp(cfg->metrics, cfg->web);
	const char *token = cfg->web_token_file;
	struct web_opts o = {
		.listen = cfg->web, .root = cfg->web_root, .ctl = commands_handle, .ctl_data = cmds,
		.token_file = token && *token ? token : NULL,
		.metrics = shared ? node_metrics : NULL, .metrics_data = node,
	};
	int ret = 0;

	if (cfg->metrics && *cfg->metrics && !shared &&
	    (ret = metrics_new(loop, cfg->metrics, node_metrics, node, metrics)) < 0)
		log_error("metrics on %s: %s", cfg->metrics, strerror(-ret));
	if (!ret && web_on)
		ret = web_new(loop, &o, web);
	return ret;
}

/* The state directory's lock, first: a second moatd stops before it touches anything. */
static int lock_or_refuse(const struct config *cfg)
{
	char why[1024];
	int fd = lock_take(cfg->state_dir, cfg->socket, why, sizeof(why));

	if (fd < 0)
		log_error("%s; not starting", why);
	return fd;
}

/* Bridged traffic must reach the policies before any policy is said to be enforced. */
static int bridge_hooks(void)
{
	char why[512];
	int ret = brnf_ensure(why, sizeof(why));

	if (ret)
		log_error("%s; not starting", why);
	return ret;
}

static int run(const struct config *cfg)
{
	int lock = lock_or_refuse(cfg);
	struct loop *loop = NULL;
	struct node *node = NULL;
	struct ctl_server *ctl = NULL;
	struct metrics *metrics = NULL;
	struct commands cmds = { .cfg = cfg };
	struct web *web = NULL;
	int ret = lock < 0 ? lock : bridge_hooks();

	if (!ret)
		ret = loop_new(&loop);
	if (!ret)
		ret = node_new(cfg, &node);
	if (!ret)
		ret = loop_signal_add(loop, SIGTERM, on_stop, NULL);
	if (!ret)
		ret = loop_signal_add(loop, SIGINT, on_stop, NULL);
	if (!ret)
		ret = loop_signal_add(loop, SIGHUP, on_reload, node);
	cmds.node = node;
	if (!ret && (ret = ctl_server_new(loop, cfg->socket, commands_handle, &cmds, &ctl)) < 0)
		log_error("control socket %s: %s", cfg->socket, strerror(-ret));
	if (!ret)
		ret = node_start(node, loop);
	if (!ret)
		ret = http_start(loop, cfg, &cmds, &metrics, &web);
	if (!ret) {
		log_info("running: mode %s, runtime %s, policies from %s, socket %s",
			 cfg->mode == MOAT_MODE_ENFORCE ? "enforce" : "monitor", cfg->runtime,
			 cfg->policies_from_etcd ? "etcd" : cfg->policy_dir, cfg->socket);
		log_info("host access %s: %s", cfg->host_policy ? "policy" : "allow",
			 cfg->host_policy ? HOST_POLICY_NOTE : HOST_ALLOW_NOTE);
		ret = loop_run(loop);
	}
	metrics_free(metrics);
	web_free(web);		/* before the node: its streams follow the flow table */
	ctl_server_free(ctl);
	node_free(node);
	loop_free(loop);
	if (lock >= 0)
		close(lock);
	return ret;
}

int main(int argc, char **argv)
{
	struct config cfg;
	int ret = config_load(&cfg, argc, argv);

	signal(SIGPIPE, SIG_IGN);
	if (ret == 0 && cfg.help)
		config_usage(stdout);
	else if (ret == 0)
		ret = cfg.flush ? flush() : run(&cfg);
	if (ret && ret != -EINVAL)
		log_error("exiting: %s", strerror(-ret));
	config_free(&cfg);
	return ret ? 1 : 0;
}
