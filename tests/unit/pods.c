/*
 * A pod's labels (daemon/runtime/pods.h): the pod's first, then its containers' by name,
 * whatever order they come in; conflicts counted once per key.
 */
#include <stdlib.h>
#include <string.h>

#include "../../daemon/runtime/pods.h"
#include "check.h"

#define L(k, v) { (char *)(k), (char *)(v) }

static const char *get(const struct moat_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].value;
	return NULL;
}

static void test_merge(void)
{
	struct moat_label pod_v[] = { L("app", "shop"), L("tier", "pod") };
	struct moat_label db_v[] = { L("moat.io/port.pg", "5432/tcp"), L("role", "db"),
				     L("tier", "data") };
	struct moat_label cache_v[] = { L("role", "cache"), L("zone", "a") };
	struct moat_labels pod = { pod_v, 2 }, db = { db_v, 3 }, cache = { cache_v, 2 };
	struct pod_member m[2][2] = { { { "shop-db", &db }, { "shop-cache", &cache } },
				      { { "shop-cache", &cache }, { "shop-db", &db } } };

	for (int order = 0; order < 2; order++) {
		struct moat_labels out = { 0 };
		size_t conflicts = 99;

		CHECK(pod_labels_merge(&pod, m[order], 2, &out, &conflicts) == 0);
		CHECK(out.n == 5);
		CHECK_STR(get(&out, "app"), "shop");
		CHECK_STR(get(&out, "tier"), "pod");		/* the pod's wins over shop-db's */
		CHECK_STR(get(&out, "role"), "cache");		/* shop-cache sorts before shop-db */
		CHECK_STR(get(&out, "moat.io/port.pg"), "5432/tcp");
		CHECK_STR(get(&out, "zone"), "a");
		CHECK(conflicts == 2);
		for (size_t i = 1; i < out.n; i++)
			CHECK(strcmp(out.v[i - 1].key, out.v[i].key) < 0);
		free(out.v);
	}
}

static void test_edges(void)
{
	struct moat_label a_v[] = { L("role", "x") }, b_v[] = { L("role", "x") };
	struct moat_labels a = { a_v, 1 }, b = { b_v, 1 }, none = { 0 };
	struct pod_member m[] = { { "b", &b }, { "a", &a }, { "c", &none } };
	struct moat_labels out = { 0 };
	size_t conflicts = 99;

	CHECK(pod_labels_merge(&none, m, 3, &out, &conflicts) == 0);
	CHECK(out.n == 1 && conflicts == 0);		/* the same value twice is no conflict */
	free(out.v);
	CHECK(pod_labels_merge(NULL, NULL, 0, &out, NULL) == 0 && out.n == 0);
	free(out.v);
}

int main(void)
{
	test_merge();
	test_edges();
	return check_done();
}
