/*
 * The tier conformance cases against the reference model: every case of
 * tests/conformance/tiers/ (NAME/policies.yaml, NAME/expected.txt, and NAME/endpoints.yaml
 * or tests/conformance/endpoints.yaml; the format of tests/conformance/run.sh) must load,
 * hold cluster-wide policies, and have the truth table the model (tests/fuzz/model.h,
 * tier_decide_endpoints) gives, and the compiled plan must decide every address pair of the
 * case as the model does (model_check: the verdict, who decided and with which rule);
 * run.sh checks the same cases through `moat policy matrix`.
 * The examples of policy/examples/ are held to what their comments say the same way.
 * Usage: tiers_model [DIR] (default tests/conformance/tiers, from the top of the tree).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* model.h holds static helpers for the fuzz harnesses too; this test uses some of them. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../fuzz/model.h"
#include "check.h"
#include "moat/report.h"

#define MIN_CASES 40

static const char *const by_name[] = {
	[MODEL_BY_ADMIN] = "Admin", [MODEL_BY_NETPOL] = "NetworkPolicy",
	[MODEL_BY_BASELINE] = "Baseline", [MODEL_BY_DEFAULT] = "default",
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ep_cmp(const void *a, const void *b, void *arg)
{
	const struct moat_endpoint_set *es = arg;
	const struct moat_endpoint *x = &es->v[*(const size_t *)a], *y = &es->v[*(const size_t *)b];
	int c = strcmp(x->namespace, y->namespace);

	return c ? c : strcmp(x->name, y->name);
}

/* One case loaded: its policies, its endpoints sorted as the matrix lists them. */
struct kase {
	const char *name;
	struct moat_policy_set *ps;
	struct moat_endpoint_set *es;
	size_t order[64];
};

static void kase_free(struct kase *k)
{
	moat_policy_set_free(k->ps);
	moat_endpoint_set_free(k->es);
}

static int kase_load(struct kase *k, const char *dir, const char *name)
{
	char pol[512], eps[512];
	const char *paths[] = { pol };
	struct moat_diags d = { 0 };
	int ret;

	k->name = name;
	snprintf(pol, sizeof(pol), "%s/%s/policies.yaml", dir, name);
	snprintf(eps, sizeof(eps), "%s/%s/endpoints.yaml", dir, name);
	if (access(eps, R_OK))
		snprintf(eps, sizeof(eps), "%s/../endpoints.yaml", dir);
	ret = moat_policy_set_load(paths, 1, &k->ps, &d);
	if (!ret)
		ret = moat_endpoint_set_load(eps, &k->es, &d);
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	if (ret || k->es->n > 64)
		return ret ? ret : -E2BIG;
	for (size_t i = 0; i < k->es->n; i++)
		k->order[i] = i;
	qsort_r(k->order, k->es->n, sizeof(size_t), ep_cmp, k->es);
	return 0;
}

/* Says which tier, policy and rule decided one direction, for a failing cell. */
static void dir_print(const struct kase *k, const char *what, const struct tier_dir *d)
{
	const char *pol = "-";

	if ((d->by == MODEL_BY_ADMIN || d->by == MODEL_BY_BASELINE) && d->policy != SIZE_MAX)
		pol = k->ps->cnps[d->policy].name;
	else if (d->by == MODEL_BY_NETPOL && d->policy != SIZE_MAX)
		pol = k->ps->pols[d->policy].name;
	fprintf(stderr, "      %s: %s by %s, policy %s rule %zd%s\n", what, d->ok ? "allowed" : "denied",
		by_name[d->by], pol, d->rule == SIZE_MAX ? (ssize_t)-1 : (ssize_t)d->rule,
		d->pass_policy != SIZE_MAX ? " (after an Admin Pass)" : "");
}

/* One row of expected.txt ("ns/name c c c") against the model; false when it differs. */
static bool row_check(const struct kase *k, const struct model_env *env, const char *port,
		      const struct moat_port_arg *pa, size_t row, char *line)
{
	const struct moat_endpoint *e = &k->es->v[k->order[row]];
	char want[160], *tok, *save = NULL;
	size_t col = 0;
	bool ok = true;

	snprintf(want, sizeof(want), "%s/%s", e->namespace, e->name);
	tok = strtok_r(line, " \t\n", &save);
	if (!tok || strcmp(tok, want)) {
		fprintf(stderr, "%s: port %s: row %zu is %s, the endpoints say %s\n", k->name, port,
			row, tok ? tok : "(none)", want);
		return false;
	}
	for (; (tok = strtok_r(NULL, " \t\n", &save)) && col < k->es->n; col++) {
		struct tier_verdict v = tier_decide_endpoints(env, k->order[row], k->order[col],
							      pa->proto, pa->port);
		const char *got = v.kind == MOAT_DENY ? "X" : ".";

		if (!strcmp(tok, got))
			continue;
		ok = false;
		fprintf(stderr, "%s: port %s: %s -> %s/%s: expected %s, the model says %s\n", k->name,
			port, want, k->es->v[k->order[col]].namespace, k->es->v[k->order[col]].name,
			tok, got);
		dir_print(k, "egress of the source", &v.out);
		dir_print(k, "ingress of the destination", &v.in);
	}
	if (col != k->es->n || tok) {
		fprintf(stderr, "%s: port %s: row %s has %s cells than endpoints\n", k->name, port,
			want, col < k->es->n ? "fewer" : "more");
		return false;
	}
	return ok;
}

/* expected.txt: per "port P" line, one row per endpoint in order. Returns the ports seen. */
static int expected_check(const struct kase *k, const char *dir, bool *ok)
{
	char path[512], port[32] = "", line[4096];
	struct model_env env = { k->ps, k->es, MOAT_MODE_ENFORCE };
	struct moat_port_arg pa;
	size_t row = 0;
	int nports = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/expected.txt", dir, k->name);
	if (!(f = fopen(path, "r")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (line[strspn(line, " \t")] == '#' || line[strspn(line, " \t\n")] == '\0')
			continue;
		if (sscanf(line, "port %31s", port) == 1) {
			*ok &= row == k->es->n || !nports;
			*ok &= moat_port_arg_parse(port, &pa) == 0;
			row = 0;
			nports++;
			continue;
		}
		*ok &= nports && row < k->es->n && row_check(k, &env, port, &pa, row, line);
		row++;
	}
	*ok &= nports > 0 && row == k->es->n;
	fclose(f);
	return nports;
}

/* The compiled plan, in either global mode, decides every pair as the model does (model_check
 * aborts on the first disagreement, naming it). */
static void plans_check(const struct kase *k)
{
	for (int m = 0; m < 2; m++) {
		struct moat_plan *plan = NULL;

		CHECK(moat_plan_compile(k->ps, k->es, m ? MOAT_MODE_MONITOR : MOAT_MODE_ENFORCE, NULL,
					&plan) == 0);
		if (plan)
			model_check(plan, 64);
		moat_plan_free(plan);
	}
}

static bool case_check(const char *dir, const char *name)
{
	struct kase k = { 0 };
	bool ok = true;
	int ret = kase_load(&k, dir, name);

	if (ret) {
		fprintf(stderr, "%s: cannot load (%s)\n", name, strerror(-ret));
		kase_free(&k);
		return false;
	}
	if (!k.ps->ncnps) {
		fprintf(stderr, "%s: no cluster-wide policy: not a tier case\n", name);
		ok = false;
	}
	ret = expected_check(&k, dir, &ok);
	plans_check(&k);
	if (ret <= 0 || !ok)
		fprintf(stderr, "%s: FAIL%s\n", name, ret < 0 ? ": no expected.txt" : "");
	kase_free(&k);
	return ret > 0 && ok;
}

/* The case directories of dir, sorted; *n of them (stat: d_type may be DT_UNKNOWN). */
static char **cases_list(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char **v = NULL, path[512];

	*n = 0;
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || stat(path, &st) || !S_ISDIR(st.st_mode))
			continue;
		v = realloc(v, (*n + 1) * sizeof(*v));
		if (!v || !(v[*n] = strdup(e->d_name)))
			abort();	/* a test out of memory */
		(*n)++;
	}
	if (d)
		closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

/* ---- the examples do what their comments say ---- */

#define EX "policy/examples/"

static const struct example {
	const char *file, *from, *to, *port, *want;
} examples[] = {
	/* an Admin Deny over three-tier's "web is open to anyone on 8080" */
	{ "cluster-guardrails", "default/blog-frontend-1", "shop/web", "8080/tcp", "deny" },
	{ "cluster-guardrails", "default/blog-frontend-1", "shop/web", "9100/tcp", "deny" },
	{ "cluster-guardrails", "monitoring/prometheus", "shop/web", "9100/tcp", "allow" },
	{ "cluster-guardrails", "monitoring/prometheus", "shop/db", "9100/tcp", "allow" },
	{ "cluster-guardrails", "monitoring/prometheus", "shop/db", "5432/tcp", "deny" },
	{ "cluster-guardrails", "shop/web", "shop/api", "9000/tcp", "allow" },
	{ "cluster-guardrails", "shop/web", "shop/db", "5432/tcp", "deny" },
	/* the Baseline default, and three-tier overriding it for shop */
	{ "baseline-default-deny", "default/blog-frontend-1", "default/blog-redis-1", "6379/tcp",
	  "deny" },
	{ "baseline-default-deny", "default/blog-frontend-1", "monitoring/prometheus", "9090/tcp",
	  "deny" },
	{ "baseline-default-deny", "default/blog-frontend-1", "kube-system/coredns", "53/udp",
	  "allow" },
	{ "baseline-default-deny", "default/blog-frontend-1", "shop/web", "8080/tcp", "allow" },
	{ "baseline-default-deny", "monitoring/prometheus", "shop/web", "9100/tcp", "allow" },
	{ "baseline-default-deny", "shop/web", "kube-system/coredns", "53/udp", "allow" },
	/* endpoints pass on to NetworkPolicy; the world is denied (no name resolved offline) */
	{ "egress-domains", "shop/api", "shop/db", "5432/tcp", "allow" },
	{ "egress-domains", "shop/api", "kube-system/coredns", "53/udp", "allow" },
	{ "egress-domains", "shop/api", "93.184.216.34", "443/tcp", "deny" },
	{ "egress-domains", "shop/web", "93.184.216.34", "443/tcp", "deny" },	/* three-tier */
	{ "egress-domains", "shop/db", "93.184.216.34", "443/tcp", "deny" },
	{ "v1alpha1", "default/blog-frontend-1", "shop/web", "8080/tcp", "deny" },
	{ "v1alpha1", "default/blog-frontend-1", "default/blog-backend-1", "8000/tcp", "deny" },
	{ "v1alpha1", "default/blog-frontend-1", "kube-system/coredns", "53/udp", "allow" },
	{ "v1alpha1", "default/blog-frontend-1", "kube-system/coredns", "53/tcp", "allow" },
	{ "v1alpha1", "monitoring/prometheus", "shop/web", "9100/tcp", "allow" },
};

static long endpoint_find(const struct moat_endpoint_set *es, const char *nsname)
{
	char ns[128];
	const char *slash = strchr(nsname, '/');

	if (!slash || (size_t)(slash - nsname) >= sizeof(ns))
		return -1;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - nsname), nsname);
	return moat_endpoint_set_find(es, ns, slash + 1);
}

/* from (an endpoint) to to (an endpoint, or an address outside): the model's verdict. */
static enum moat_verdict_kind example_decide(const struct model_env *env, long from,
					     const char *to, const struct moat_port_arg *pa)
{
	const struct moat_endpoint *a = &env->es->v[from];
	long t = endpoint_find(env->es, to);
	struct moat_addr addr;
	enum moat_verdict_kind k = MOAT_ALLOW;

	if (t >= 0)
		return tier_decide_endpoints(env, from, t, pa->proto, pa->port).kind;
	CHECK(moat_addr_parse(to, &addr) == 0);
	for (size_t i = 0; i < a->nips; i++) {
		struct side s = { a, &a->ips[i] }, d = { NULL, &addr };

		if (a->ips[i].family == addr.family &&
		    tier_decide(env, &s, &d, pa->proto, pa->port).kind == MOAT_DENY)
			k = MOAT_DENY;
	}
	return k;
}

static void example_check(const struct example *x, const struct moat_endpoint_set *es)
{
	char file[256];
	const char *paths[] = { file, EX "three-tier.yaml" };
	struct moat_policy_set *ps = NULL;
	struct moat_diags d = { 0 };
	struct moat_port_arg pa;
	long from = endpoint_find(es, x->from);

	snprintf(file, sizeof(file), EX "%s.yaml", x->file);
	CHECK(moat_policy_set_load(paths, 2, &ps, &d) == 0 && ps->ncnps > 0);
	CHECK(from >= 0 && moat_port_arg_parse(x->port, &pa) == 0);
	if (ps && from >= 0) {
		struct model_env env = { ps, es, MOAT_MODE_ENFORCE };
		const char *got = example_decide(&env, from, x->to, &pa) == MOAT_DENY ? "deny" : "allow";

		if (strcmp(got, x->want))
			fprintf(stderr, "%s: %s -> %s %s: the comments say %s, the model %s\n",
				x->file, x->from, x->to, x->port, x->want, got);
		CHECK_STR(got, x->want);
	}
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	moat_policy_set_free(ps);
}

static void examples_check(void)
{
	struct moat_endpoint_set *es = NULL;
	struct moat_diags d = { 0 };

	CHECK(moat_endpoint_set_load(EX "endpoints.yaml", &es, &d) == 0);
	moat_diags_print(&d, stderr);
	moat_diags_free(&d);
	for (size_t i = 0; es && i < sizeof(examples) / sizeof(examples[0]); i++)
		example_check(&examples[i], es);
	moat_endpoint_set_free(es);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/conformance/tiers";
	size_t n, passed = 0;
	char **names = cases_list(dir, &n);

	for (size_t i = 0; i < n; i++) {
		bool ok = case_check(dir, names[i]);

		CHECK(ok);
		passed += ok;
		free(names[i]);
	}
	free(names);
	printf("tier cases: %zu of %zu agree with the model\n", passed, n);
	CHECK(n >= MIN_CASES);
	examples_check();
	return check_done();
}
