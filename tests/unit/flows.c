/* The flow table: lookups, order of last sight, eviction of the least recently seen, the cap,
 * counts, release callbacks, no growth; and the interned names flows refer to. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "check.h"
#include "../../daemon/observe/flows.h"
#include "../../daemon/observe/names.h"

static struct flow_key key(uint32_t src, uint16_t port)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.src.name = src;
	k.dst.addr.family = AF_INET;
	k.dst.addr.a[0] = 10, k.dst.addr.a[3] = 9;
	k.proto = 6;
	k.port = port;
	return k;
}

static unsigned released, last_released_port;

static void on_release(const struct flow *f, void *data)
{
	released++;
	last_released_port = f->key.port;
	*(uint64_t *)data += f->count;
}

static void test_basic(void)
{
	struct flows *t = NULL;
	struct flow_key k1 = key(1, 80), k2 = key(1, 443), k3 = key(2, 80);
	struct flow *f;
	bool fresh;
	uint64_t released_count = 0;

	CHECK(flows_new(0, NULL, NULL, &t) == -EINVAL);
	CHECK(flows_new(3, on_release, &released_count, &t) == 0);
	CHECK(flows_count(t) == 0 && flows_cap(t) == 3 && !flows_newest(t) && !flows_oldest(t));
	f = flows_get(t, &k1, &fresh);
	CHECK(fresh && f->count == 0 && f->key.port == 80);
	f->count++;
	f = flows_get(t, &k1, &fresh);
	CHECK(!fresh && f->count == 1);
	f->count++;
	CHECK(flows_find(t, &k2) == NULL);
	flows_get(t, &k2, &fresh)->count = 10;
	flows_get(t, &k3, &fresh)->count = 20;
	CHECK(fresh && flows_count(t) == 3);
	/* order: k3, k2, k1 (newest first); touching k1 makes it newest */
	CHECK(flows_newest(t)->key.port == 80 && flows_newest(t)->key.src.name == 2);
	CHECK(flows_oldest(t)->key.port == 80 && flows_oldest(t)->key.src.name == 1);
	flows_get(t, &k1, &fresh);
	CHECK(flows_oldest(t)->key.port == 443);
	/* full: a fourth evicts the least recently seen (k2), whose release sees its count */
	struct flow_key k4 = key(3, 22);
	f = flows_get(t, &k4, &fresh);
	CHECK(fresh && f->count == 0);
	CHECK(released == 1 && last_released_port == 443 && released_count == 10);
	CHECK(flows_evicted(t) == 1 && flows_count(t) == 3);
	CHECK(flows_find(t, &k2) == NULL);
	CHECK(flows_find(t, &k1) && flows_find(t, &k1)->count == 2);
	CHECK(flows_find(t, &k3) && flows_find(t, &k4));
	/* iteration both ways: k4, k1, k3 */
	uint16_t want[] = { 22, 80, 80 };
	size_t n = 0;
	for (f = flows_newest(t); f; f = flows_older(t, f), n++)
		CHECK(n < 3 && f->key.port == want[n]);
	CHECK(n == 3);
	n = 0;
	for (f = flows_oldest(t); f; f = flows_newer(t, f), n++)
		CHECK(n < 3 && f->key.port == want[2 - n]);
	CHECK(n == 3);
	/* a key that differs only in the external address is another flow */
	struct flow_key k5 = key(3, 22);
	k5.dst.addr.a[3] = 10;
	CHECK(flows_find(t, &k5) == NULL);
	released = 0;
	released_count = 0;
	flows_free(t);
	CHECK(released == 3 && released_count == 2 + 20);
}

/* Many flows through a small table: the survivors are exactly the newest, memory is fixed. */
static void test_churn(void)
{
	struct flows *t = NULL;
	size_t cap = 1000, bytes;
	bool fresh;
	uint64_t sink = 0;

	released = 0;
	CHECK(flows_new(cap, on_release, &sink, &t) == 0);
	bytes = flows_bytes(t);
	for (uint32_t i = 0; i < 100000; i++) {
		struct flow_key k = key(i, (uint16_t)(i % 7));
		struct flow *f = flows_get(t, &k, &fresh);

		CHECK(fresh);
		f->count = 1;
	}
	CHECK(flows_count(t) == cap && flows_evicted(t) == 100000 - cap && released == 100000 - cap);
	CHECK(flows_bytes(t) == bytes);
	for (uint32_t i = 100000 - cap; i < 100000; i++) {
		struct flow_key k = key(i, (uint16_t)(i % 7));

		if (!flows_find(t, &k)) {
			CHECK(!"a recent flow was evicted");
			break;
		}
	}
	struct flow_key old = key(100000 - cap - 1, (uint16_t)((100000 - cap - 1) % 7));
	CHECK(flows_find(t, &old) == NULL);
	/* re-seeing old flows keeps them: touch the oldest half, add new ones, they survive */
	for (uint32_t i = 100000 - cap; i < 100000 - cap / 2; i++) {
		struct flow_key k = key(i, (uint16_t)(i % 7));
		flows_get(t, &k, &fresh);
		CHECK(!fresh);
	}
	for (uint32_t i = 200000; i < 200000 + cap / 2; i++) {
		struct flow_key k = key(i, 1);
		flows_get(t, &k, &fresh);
	}
	struct flow_key touched = key(100000 - cap, (uint16_t)((100000 - cap) % 7));
	struct flow_key untouched = key(100000 - cap / 2, (uint16_t)((100000 - cap / 2) % 7));
	CHECK(flows_find(t, &touched) != NULL);
	CHECK(flows_find(t, &untouched) == NULL);
	flows_free(t);
}

static void test_names(void)
{
	struct names *n = NULL;
	uint32_t a, b, c, a2;

	CHECK(names_new(&n) == 0);
	a = names_get(n, "default/web", 11);
	b = names_get(n, "default/api", 11);
	a2 = names_get(n, "default/webx", 11);	/* only 11 bytes: the same name */
	CHECK(a && b && a != b && a2 == a);
	CHECK_STR(names_str(n, a), "default/web");
	CHECK_STR(names_str(n, 0), "");
	CHECK(names_count(n) == 2);
	names_meta_set(n, a, json_pack("{s:s}", "app", "web"));
	CHECK(json_is_object(names_meta(n, a)));
	names_drop(n, a);
	CHECK(names_count(n) == 2 && names_meta(n, a));	/* still held once */
	names_drop(n, a);
	CHECK(names_count(n) == 1);
	c = names_get(n, "default/db", 10);
	CHECK(c == a);					/* the slot is reused */
	CHECK(names_meta(n, c) == NULL);		/* with no meta of the old name */
	names_hold(n, b);
	names_drop(n, b);
	CHECK_STR(names_str(n, b), "default/api");
	/* many names: growth and rehash keep every id valid */
	uint32_t ids[5000];
	char buf[32];
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(buf, sizeof(buf), "ns/ep-%d", i);
		ids[i] = names_get(n, buf, (size_t)len);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "ns/ep-%d", i);
		if (strcmp(names_str(n, ids[i]), buf)) {
			CHECK(!"name lost after growth");
			break;
		}
	}
	CHECK(names_get(n, "ns/ep-4999", 10) == ids[4999]);
	for (int i = 0; i < 5000; i++)
		names_drop(n, ids[i]);
	names_drop(n, ids[4999]);
	CHECK(names_count(n) == 2);
	names_free(n);
}

int main(void)
{
	test_basic();
	test_churn();
	test_names();
	return check_done();
}
