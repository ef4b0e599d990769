/*
 * nft_apply - drive the nftables backend the way moatd does, from policy and endpoints files,
 * one command per line on stdin (so that one process keeps the applied state across
 * incremental applies). Prints one line per command, flushed, for scripts to read.
 *
 *   nft_apply [-g NFLOG_GROUP] [-m MANAGED_CIDR]... [-M]      (-M: global monitor mode)
 *   commands:
 *     apply full|incr POLICY_PATH ENDPOINTS_FILE   compile and apply
 *     flush                                         delete both moat tables
 *     verify                                        compare the kernel with the last apply
 *     watch MS                                      wait up to MS ms for a foreign change
 *     revoke [ADDR...]                              delete conntrack entries the plan denies,
 *                                                   and those of ADDRs (gone endpoints')
 *     quit
 * Replies: "ok ...", "tamper ...", "quiet", "differs ...", "error ..." (diagnostics on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemon/datapath/conntrack.h"
#include "../../daemon/datapath/ruleset.h"

struct state {
	struct ruleset *nft;
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
	struct moat_cidr managed[16];
	size_t nmanaged;
	enum moat_mode mode;
	uint16_t group;
};

static int parse_cidr(const char *s, struct moat_cidr *c)
{
	char buf[64], *slash;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	memset(c, 0, sizeof(*c));
	c->plen = atoi(slash + 1);
	c->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	return inet_pton(c->family, buf, c->addr) == 1 ? 0 : -EINVAL;
}

static int cmd_apply(struct state *st, const char *how, const char *pol, const char *eps)
{
	struct moat_diags diags = {0};
	struct moat_policy_set *ps = NULL;
	struct moat_endpoint_set *es = NULL;
	struct moat_plan *plan = NULL;
	struct ruleset_input in;
	int ret;

	ret = moat_policy_set_load(&pol, 1, &ps, &diags);
	if (!ret)
		ret = moat_endpoint_set_load(eps, &es, &diags);
	if (!ret)
		ret = moat_plan_compile(ps, es, st->mode, st->plan, &plan);
	in = (struct ruleset_input){ .plan = plan, .es = es, .managed = st->managed,
				     .nmanaged = st->nmanaged, .mode = st->mode, .nflog_group = st->group,
				     .dns_queue = NFT_DEFAULT_DNS_QUEUE,
				     .log_rate = NFT_DEFAULT_LOG_RATE };
	if (!ret)
		ret = ruleset_apply(st->nft, &in, !strcmp(how, "full"), &diags);
	moat_diags_print(&diags, stderr);
	moat_diags_free(&diags);
	if (ret) {
		moat_plan_free(plan);
		moat_endpoint_set_free(es);
		moat_policy_set_free(ps);
		printf("error apply: %s\n", strerror(-ret));
		return ret;
	}
	/* the new plan borrowed ps and es; the old plan goes before what it borrowed */
	moat_plan_free(st->plan);
	moat_endpoint_set_free(st->es);
	moat_policy_set_free(st->ps);
	st->plan = plan, st->es = es, st->ps = ps;
	const struct ruleset_stats *s = ruleset_stats(st->nft);
	printf("ok apply %s msgs=%zu added=%zu deleted=%zu\n", s->full ? "full" : "incr", s->msgs,
	       s->added, s->deleted);
	return 0;
}

static void cmd_watch(struct state *st, int ms)
{
	struct pollfd p = { .fd = ruleset_watch_fd(st->nft), .events = POLLIN };
	struct ruleset_tamper t;

	while (poll(&p, 1, ms) > 0) {
		if (ruleset_watch_read(st->nft, &t) < 0) {
			printf("error watch: %s\n", strerror(errno));
			return;
		}
		if (t.changed || t.lost) {
			printf("tamper changed=%d lost=%d pid=%d comm=%s what=%s\n", t.changed,
			       t.lost, (int)t.pid, t.comm, t.what);
			return;
		}
	}
	printf("quiet\n");
}

static void cmd(struct state *st, char *line)
{
	char *argv[8];
	int argc = 0;
	struct moat_diags diags = {0};

	for (char *tok = strtok(line, " \t\n"); tok && argc < 8; tok = strtok(NULL, " \t\n"))
		argv[argc++] = tok;
	if (!argc)
		return;
	if (!strcmp(argv[0], "apply") && argc == 4) {
		cmd_apply(st, argv[1], argv[2], argv[3]);
	} else if (!strcmp(argv[0], "flush")) {
		int ret = ruleset_flush(st->nft, &diags);

		moat_diags_print(&diags, stderr);
		printf(ret ? "error flush: %s\n" : "ok flush%s\n", ret ? strerror(-ret) : "");
	} else if (!strcmp(argv[0], "verify")) {
		char why[256];
		bool ok;
		int ret = ruleset_verify(st->nft, &ok, why, sizeof(why));

		if (ret)
			printf("error verify: %s\n", strerror(-ret));
		else
			printf(ok ? "ok verify in sync%s\n" : "differs %s\n", why);
	} else if (!strcmp(argv[0], "watch") && argc == 2) {
		cmd_watch(st, atoi(argv[1]));
	} else if (!strcmp(argv[0], "revoke") && st->plan) {
		struct moat_addr gone[7];
		int n = 0;

		for (int i = 1; i < argc && !n; i++)
			n = moat_addr_parse(argv[i], &gone[i - 1]);
		qsort(gone, argc - 1, sizeof(gone[0]), moat_addr_cmp);
		if (!n)
			n = conntrack_revoke(st->plan, gone, argc - 1);

		printf(n < 0 ? "error revoke: %d\n" : "ok revoke %d\n", n);
	} else {
		printf("error unknown command %s\n", argv[0]);
	}
	moat_diags_free(&diags);
}

int main(int argc, char **argv)
{
	struct state st = { .group = NFT_DEFAULT_NFLOG_GROUP };
	char line[4096];
	int opt, ret;

	while ((opt = getopt(argc, argv, "g:m:M")) != -1) {
		if (opt == 'g')
			st.group = atoi(optarg);
		else if (opt == 'M')
			st.mode = MOAT_MODE_MONITOR;
		else if (opt == 'm' && st.nmanaged < 16 && !parse_cidr(optarg, &st.managed[st.nmanaged]))
			st.nmanaged++;
		else {
			fprintf(stderr, "usage: %s [-g GROUP] [-m CIDR]... [-M] < commands\n", argv[0]);
			return 2;
		}
	}
	ret = ruleset_new(&st.nft);
	if (ret) {
		fprintf(stderr, "ruleset_new: %s\n", strerror(-ret));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) && strncmp(line, "quit", 4))
		cmd(&st, line);
	moat_plan_free(st.plan);
	moat_endpoint_set_free(st.es);
	moat_policy_set_free(st.ps);
	ruleset_free(st.nft);
	return 0;
}
