/*
 * moat policy push: a checked policy set into etcd, for every moatd that takes its
 * policies from there (moatd --etcd without --policy-dir). Checked here with the same
 * library moatd uses; nothing is stored unless every file is valid. etcd is reached
 * directly (as etcdctl would), with --etcd or $MOAT_ETCD, or else with what the local
 * moatd uses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cluster/etcd.h"
#include "cluster/wire.h"

static const char push_help[] =
	"Usage: moat policy push PATH... [--etcd URL[,URL...]] [--etcd-prefix PREFIX]\n"
	"                        [--etcd-cacert FILE --etcd-cert FILE --etcd-key FILE]\n"
	"Checks the policies (files, or directories of *.yaml) as `moat policy check` does and,\n"
	"only when every file is valid, stores the whole set in etcd under PREFIX/policies,\n"
	"where every moatd started with --etcd (and no --policy-dir) takes it and applies it at\n"
	"once, all or nothing, like a reload. Prints the set's revision: `moat status` and\n"
	"`moat nodes` show the revision each node runs.\n"
	"etcd: --etcd, else $MOAT_ETCD, else the local moatd's (its TLS files too).\n"
	"Exit status: 0 stored, 1 invalid or not stored, 2 usage.\n";

struct push_opts {
	const char *etcd, *prefix, *cacert, *cert, *key;
	const char **paths;
	size_t npaths;
};

static const char *json_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* What the local moatd uses, for what the flags and the environment left out. Returns the
 * reply to free (its strings are used), or NULL when moatd has no etcd. */
static json_t *from_moatd(struct push_opts *o)
{
	json_t *reply = NULL, *cl;

	if (cli_ctl_call(json_pack("{s:s}", "cmd", "status"), &reply) < 0 || !reply)
		return NULL;
	cl = json_object_get(reply, "cluster");
	if (!json_is_object(cl)) {
		json_decref(reply);
		return NULL;
	}
	o->etcd = json_str(cl, "etcd");
	o->prefix = o->prefix ? o->prefix : json_str(cl, "prefix");
	o->cacert = o->cacert ? o->cacert : json_str(cl, "cacert");
	o->cert = o->cert ? o->cert : json_str(cl, "cert");
	o->key = o->key ? o->key : json_str(cl, "key");
	return reply;
}

static int args_parse(int argc, char **argv, struct push_opts *o)
{
	static const struct option longs[] = {
		{ "etcd", required_argument, NULL, 'E' },
		{ "etcd-prefix", required_argument, NULL, 'P' },
		{ "etcd-cacert", required_argument, NULL, 'A' },
		{ "etcd-cert", required_argument, NULL, 'C' },
		{ "etcd-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'E': o->etcd = optarg; break;
		case 'P': o->prefix = optarg; break;
		case 'A': o->cacert = optarg; break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'h': fputs(push_help, stdout); return 1;
		default: fputs(push_help, stderr); return 2;
		}
	}
	o->paths = (const char **)argv + optind;
	o->npaths = (size_t)(argc - optind);
	if (!o->npaths) {
		fputs(push_help, stderr);
		return 2;
	}
	return 0;
}

/* The files, checked as moatd will; 0, or 1 after printing why (nothing is stored). */
static int files_check(const struct push_opts *o, struct moat_policy_files *f, size_t *npols)
{
	struct moat_diags d = { 0 };
	struct moat_policy_set *ps = NULL;
	int ret = moat_policy_files_read(o->paths, o->npaths, f, &d);

	if (!ret)
		ret = moat_policy_set_parse_files(f, &ps, &d);
	if (!ret)
		*npols = ps->npols + ps->ncnps;
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	moat_policy_set_free(ps);
	if (ret)
		fprintf(stderr, "moat: the policies are not valid; nothing is stored in etcd\n");
	return ret ? 1 : 0;
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int store(const struct push_opts *o, const struct moat_policy_files *f, size_t npols)
{
	struct etcd_opts eo = { o->etcd, o->cacert, o->cert, o->key };
	struct etcd *c = NULL;
	char err[512] = "", key[1024], *value = wire_policies_encode(f, unix_ms());
	int64_t rev = 0;
	int ret = value ? 0 : -ENOMEM;

	snprintf(key, sizeof(key), "%spolicies", o->prefix ? o->prefix : WIRE_DEFAULT_PREFIX);
	if (!ret && strlen(value) > WIRE_MAX_POLICIES)
		ret = -EFBIG, snprintf(err, sizeof(err), "the set is %zu bytes, more than etcd "
				       "takes in one value (%u)", strlen(value), WIRE_MAX_POLICIES);
	if (!ret)
		ret = etcd_new(&eo, &c, err, sizeof(err));
	if (!ret && (ret = etcd_put(c, key, value, strlen(value), 0, &rev)))
		snprintf(err, sizeof(err), "%s", etcd_last_error(c));
	if (ret)
		fprintf(stderr, "moat: storing %s in etcd failed: %s\n", key, err[0] ? err :
			strerror(-ret));
	else
		printf("pushed %zu policies (%zu files) to %s as revision %lld; every moatd with "
		       "--etcd applies it (moat nodes shows each node's revision)\n", npols, f->n,
		       key, (long long)rev);
	etcd_free(c);
	free(value);
	return ret ? 1 : 0;
}

int push_main(int argc, char **argv)
{
	struct push_opts o = { 0 };
	struct moat_policy_files f = { 0 };
	json_t *status = NULL;
	size_t npols = 0;
	int ret = args_parse(argc, argv, &o);

	if (ret)
		return ret == 1 ? 0 : ret;
	if (!o.etcd && getenv("MOAT_ETCD") && *getenv("MOAT_ETCD"))
		o.etcd = getenv("MOAT_ETCD");
	ret = files_check(&o, &f, &npols);
	if (!ret && !o.etcd && !(status = from_moatd(&o))) {
		fprintf(stderr, "moat: where is etcd? Give --etcd URL (or $MOAT_ETCD), or run this "
			"where moatd runs with --etcd\n");
		ret = 2;
	}
	if (!ret)
		ret = store(&o, &f, npols);
	moat_policy_files_free(&f);
	json_decref(status);
	return ret;
}
