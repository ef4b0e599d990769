/* revocation_diff: which endpoint changes may take something from a live connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/datapath/revocation.h"
#include "check.h"
#include "moat/plan.h"

#define NS "namespaces: {prod: {team: a}}\nsubnets: [10.64.0.0/16, 'fd00:64::/64']\n"
#define WEB "  - {name: web, namespace: prod, labels: {app: web}, ips: [10.64.0.1], ifaces: [v1]}\n"
#define API "  - {name: api, namespace: prod, labels: {app: api}, ips: [10.64.0.2], ifaces: [v2]}\n"
#define BASE NS "endpoints:\n" WEB API

static struct moat_policy_set no_policies;

struct state {
	struct moat_endpoint_set *es;
	struct moat_plan *plan;
};

static struct state load(const char *yaml, enum moat_mode mode)
{
	struct state s = { 0 };
	struct moat_diags d = { 0 };

	CHECK(!moat_endpoint_set_parse("t.yaml", yaml, strlen(yaml), &s.es, &d));
	CHECK(d.n == 0);
	moat_diags_free(&d);
	if (s.es)
		CHECK(!moat_plan_compile(&no_policies, s.es, mode, NULL, &s.plan));
	return s;
}

static void unload(struct state *s)
{
	moat_plan_free(s->plan);
	moat_endpoint_set_free(s->es);
}

/* The need of going from the old text to the new one, on a fresh revocation. */
static int need_of(const char *old, const char *new, enum moat_mode mode, struct revocation *r)
{
	struct state a = load(old, mode), b = load(new, mode);
	int need = -1;

	if (a.plan && b.es)
		need = revocation_diff(r, a.plan, b.es, a.es->subnets, a.es->nsubnets);
	unload(&a);
	unload(&b);
	return need;
}

static int need(const char *old, const char *new, enum moat_mode mode)
{
	struct revocation r = { 0 };
	int ret = need_of(old, new, mode, &r);

	revocation_free(&r);
	return ret;
}

static void test_additions(void)
{
	CHECK(need(BASE, BASE, MOAT_MODE_ENFORCE) == REVOCATION_NONE);
	/* an unknown address of a managed subnet failed closed: nothing to judge */
	CHECK(need(BASE, BASE "  - {name: db, namespace: prod, labels: {app: db}, ips: [10.64.0.3, "
		   "'fd00:64::3']}\n", MOAT_MODE_ENFORCE) == REVOCATION_NONE);
	CHECK(need(BASE, NS "endpoints:\n" WEB "  - {name: api, namespace: prod, labels: {app: api},"
		   " ips: [10.64.0.2, 10.64.0.9], ifaces: [v2]}\n", MOAT_MODE_ENFORCE) == REVOCATION_NONE);
	/* only an interface changed: anti-spoofing is per frame */
	CHECK(need(BASE, NS "endpoints:\n" WEB "  - {name: api, namespace: prod, labels: {app: api},"
		   " ips: [10.64.0.2], ifaces: [v9]}\n", MOAT_MODE_ENFORCE) == REVOCATION_NONE);
	/* outside the managed subnets an address was outside traffic, maybe allowed */
	CHECK(need(BASE, BASE "  - {name: db, namespace: prod, ips: [10.65.0.3]}\n",
		   MOAT_MODE_ENFORCE) == REVOCATION_NOW);
	/* monitor mode let unknown addresses through */
	CHECK(need(BASE, BASE "  - {name: db, namespace: prod, ips: [10.64.0.3]}\n",
		   MOAT_MODE_MONITOR) == REVOCATION_NOW);
	/* an address moving from one endpoint to another in one change */
	CHECK(need(BASE, NS "endpoints:\n" WEB "  - {name: api2, namespace: prod, labels: "
		   "{app: api}, ips: [10.64.0.2]}\n", MOAT_MODE_ENFORCE) == REVOCATION_NOW);
}

static void test_rights(void)
{
	CHECK(need(BASE, NS "endpoints:\n" WEB "  - {name: api, namespace: prod, labels: "
		   "{app: api, v: '2'}, ips: [10.64.0.2]}\n", MOAT_MODE_ENFORCE) == REVOCATION_NOW);
	CHECK(need(BASE, NS "endpoints:\n" WEB "  - {name: api, namespace: prod, labels: "
		   "{app: api}, ips: [10.64.0.2], ports: {http: 80}}\n", MOAT_MODE_ENFORCE) ==
	      REVOCATION_NOW);
	CHECK(need(BASE, "namespaces: {prod: {team: b}}\nsubnets: [10.64.0.0/16, 'fd00:64::/64']\n"
		   "endpoints:\n" WEB API, MOAT_MODE_ENFORCE) == REVOCATION_NOW);
}

static void test_gone(void)
{
	struct revocation r = { 0 };
	struct state again = load(BASE, MOAT_MODE_ENFORCE), without = load(NS "endpoints:\n" WEB,
									  MOAT_MODE_ENFORCE);
	struct moat_addr api;

	moat_addr_parse("10.64.0.2", &api);
	CHECK(need_of(BASE, NS "endpoints:\n" WEB, MOAT_MODE_ENFORCE, &r) == REVOCATION_LATER);
	CHECK(r.ngone == 1 && !moat_addr_cmp(&r.gone[0], &api));
	/* an address not swept yet may not go to an endpoint without a sweep first */
	CHECK(revocation_diff(&r, without.plan, again.es, again.es->subnets, again.es->nsubnets) ==
	      REVOCATION_NOW);
	revocation_gone(&r, again.plan);	/* an endpoint has it again: the plan judges */
	CHECK(r.ngone == 0);
	CHECK(need_of(NS "endpoints:\n" WEB API "  - {name: db, namespace: prod, ips: [10.64.0.3, "
		      "10.64.0.4]}\n", NS "endpoints:\n" WEB "  - {name: db, namespace: prod, ips: "
		      "[10.64.0.4]}\n", MOAT_MODE_ENFORCE, &r) == REVOCATION_LATER);
	revocation_gone(&r, without.plan);
	CHECK(r.ngone == 2 && r.gone[0].a[3] == 2 && r.gone[1].a[3] == 3);
	revocation_clear(&r);
	CHECK(r.ngone == 0);
	revocation_free(&r);
	unload(&again);
	unload(&without);
}

static void test_no_plan(void)
{
	struct revocation r = { 0 };
	struct state s = load(BASE, MOAT_MODE_ENFORCE);

	CHECK(revocation_diff(&r, NULL, s.es, NULL, 0) == REVOCATION_NOW);
	unload(&s);
	revocation_free(&r);
}

static void test_subnets_errors(void)
{
	const char *bad = "subnets: [10.64.0.1/16, nope]\nendpoints: []\n";
	struct moat_endpoint_set *es = NULL;
	struct moat_diags d = { 0 };

	CHECK(moat_endpoint_set_parse("bad.yaml", bad, strlen(bad), &es, &d) == -EINVAL);
	CHECK(!es && d.n == 2);
	if (d.n == 2) {
		CHECK(d.v[0].line == 1 && d.v[0].col == 11 && strstr(d.v[0].msg, "10.64.0.1/16"));
		CHECK(d.v[1].line == 1 && d.v[1].col == 25 && strstr(d.v[1].msg, "subnets[1]"));
	}
	moat_diags_free(&d);
}

int main(void)
{
	test_additions();
	test_rights();
	test_gone();
	test_no_plan();
	test_subnets_errors();
	return check_done();
}
