/* Label selectors: Kubernetes' matching rules, label lookup and sorting. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "moat/policy.h"

#define L(k, v) { (char *)(k), (char *)(v) }

static struct moat_label web_v[] = { L("app", "web"), L("env", "prod"), L("tier", "") };
static const struct moat_labels web = { web_v, 3 };
static const struct moat_labels none = { NULL, 0 };

static char *vals_prod[] = { (char *)"prod", (char *)"stage" };
static char *vals_dev[] = { (char *)"dev" };

static void test_match(void)
{
	struct moat_label app_web[] = { L("app", "web") }, app_db[] = { L("app", "db") };
	struct moat_label two[] = { L("app", "web"), L("env", "prod") };
	struct moat_label missing[] = { L("zone", "a") };
	struct moat_label empty_val[] = { L("tier", "") };
	struct moat_sel_expr in = { (char *)"env", MOAT_SEL_IN, vals_prod, 2 };
	struct moat_sel_expr in_dev = { (char *)"env", MOAT_SEL_IN, vals_dev, 1 };
	struct moat_sel_expr notin_dev = { (char *)"env", MOAT_SEL_NOT_IN, vals_dev, 1 };
	struct moat_sel_expr notin_prod = { (char *)"env", MOAT_SEL_NOT_IN, vals_prod, 2 };
	struct moat_sel_expr exists = { (char *)"tier", MOAT_SEL_EXISTS, NULL, 0 };
	struct moat_sel_expr exists_zone = { (char *)"zone", MOAT_SEL_EXISTS, NULL, 0 };
	struct moat_sel_expr dne_zone = { (char *)"zone", MOAT_SEL_DOES_NOT_EXIST, NULL, 0 };
	struct moat_sel_expr dne_app = { (char *)"app", MOAT_SEL_DOES_NOT_EXIST, NULL, 0 };
	struct moat_sel_expr notin_zone = { (char *)"zone", MOAT_SEL_NOT_IN, vals_dev, 1 };
	struct moat_sel_expr in_zone = { (char *)"zone", MOAT_SEL_IN, vals_dev, 1 };
	struct moat_sel_expr both[] = { in, exists };
	struct moat_selector s = { 0 };

	/* empty selects everything, even an endpoint without labels */
	CHECK(moat_selector_match(&s, &web) && moat_selector_match(&s, &none));
	s.match = (struct moat_labels){ app_web, 1 };
	CHECK(moat_selector_match(&s, &web) && !moat_selector_match(&s, &none));
	s.match = (struct moat_labels){ app_db, 1 };
	CHECK(!moat_selector_match(&s, &web));
	s.match = (struct moat_labels){ two, 2 };
	CHECK(moat_selector_match(&s, &web));
	s.match = (struct moat_labels){ missing, 1 };
	CHECK(!moat_selector_match(&s, &web));
	s.match = (struct moat_labels){ empty_val, 1 };
	CHECK(moat_selector_match(&s, &web));	/* "" is a value like any other */
	s.match = none;

	const struct {
		struct moat_sel_expr *e;
		bool web, none;
	} cases[] = {
		{ &in, true, false },
		{ &in_dev, false, false },
		{ &notin_dev, true, true },	/* NotIn matches when the label is absent */
		{ &notin_prod, false, true },
		{ &exists, true, false },
		{ &exists_zone, false, false },
		{ &dne_zone, true, true },
		{ &dne_app, false, true },
		{ &notin_zone, true, true },
		{ &in_zone, false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s.exprs = cases[i].e;
		s.nexprs = 1;
		if (moat_selector_match(&s, &web) != cases[i].web ||
		    moat_selector_match(&s, &none) != cases[i].none)
			fprintf(stderr, "expression case %zu\n", i);
		CHECK(moat_selector_match(&s, &web) == cases[i].web);
		CHECK(moat_selector_match(&s, &none) == cases[i].none);
	}
	/* matchLabels AND every expression */
	s.exprs = both;
	s.nexprs = 2;
	CHECK(moat_selector_match(&s, &web));
	s.match = (struct moat_labels){ app_db, 1 };
	CHECK(!moat_selector_match(&s, &web));
}

static void test_labels(void)
{
	struct moat_label v[] = { L("zone", "a"), L("app", "web"), L("env", "x"), L("b", "1") };
	struct moat_labels l = { v, 4 };
	struct moat_label dup[] = { L("k", "1"), L("j", "0"), L("k", "2") };
	struct moat_labels d = { dup, 3 };

	CHECK(moat_labels_sort(&l) == 0);
	CHECK_STR(l.v[0].key, "app");
	CHECK_STR(l.v[1].key, "b");
	CHECK_STR(l.v[3].key, "zone");
	CHECK_STR(moat_labels_get(&l, "app"), "web");
	CHECK_STR(moat_labels_get(&l, "zone"), "a");
	CHECK_STR(moat_labels_get(&l, "env"), "x");
	CHECK(moat_labels_get(&l, "nope") == NULL);
	CHECK(moat_labels_get(&l, "") == NULL);
	CHECK(moat_labels_get(&none, "app") == NULL);
	CHECK(moat_labels_sort(&d) == -EINVAL);
	CHECK(moat_labels_sort(&(struct moat_labels){ NULL, 0 }) == 0);
}

/* The Compose shorthands, end to end: parsed, then matched against container labels. */
static void test_compose(void)
{
	const char *text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
			   "spec:\n  podSelector: {composeService: db}\n  ingress:\n"
			   "  - from: [{podSelector: {composeService: api, composeProject: shop}}]\n";
	struct moat_label api_v[] = { L("com.docker.compose.project", "shop"),
				      L("com.docker.compose.service", "api") };
	struct moat_label other_v[] = { L("com.docker.compose.project", "blog"),
					L("com.docker.compose.service", "api") };
	struct moat_label db_v[] = { L("com.docker.compose.service", "db") };
	struct moat_labels api = { api_v, 2 }, other = { other_v, 2 }, db = { db_v, 1 };
	struct moat_diags diags = { 0 };
	struct moat_policy_set *ps = NULL;

	CHECK(moat_policy_set_parse("c.yaml", text, strlen(text), &ps, &diags) == 0);
	moat_diags_print(&diags, stderr);
	if (!ps)
		return;
	CHECK(moat_selector_match(&ps->pols[0].target, &db));
	CHECK(!moat_selector_match(&ps->pols[0].target, &api));
	CHECK(moat_selector_match(&ps->pols[0].in[0].peers[0].pod, &api));
	CHECK(!moat_selector_match(&ps->pols[0].in[0].peers[0].pod, &other));
	moat_policy_set_free(ps);
	moat_diags_free(&diags);
}

int main(void)
{
	test_match();
	test_labels();
	test_compose();
	return check_done();
}
