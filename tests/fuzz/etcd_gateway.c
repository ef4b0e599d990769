/*
 * Fuzzes what etcd's JSON gateway answers (daemon/cluster/etcd.h): the input is a range
 * answer and, the same bytes, a line of the watch stream. Invariants: either refused
 * (-EBADMSG) or parsed into key-values whose lengths match their NUL-terminated bytes'
 * bounds, with events of the two kinds only; a canceled watch with a compact revision is
 * never also a creation with events.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../daemon/cluster/etcd.h"
#include "fuzz.h"

static void kv_check(const struct etcd_kv *kv)
{
	FUZZ_CHECK(kv->key && kv->value && kv->klen > 0);
	FUZZ_CHECK(kv->key[kv->klen] == '\0' && kv->value[kv->vlen] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etcd_kvs kvs = { 0 };
	struct etcd_watch_resp r;
	int ret = etcd_range_parse((const char *)data, size, &kvs);

	FUZZ_CHECK(!ret || ret == -EBADMSG || ret == -ENOMEM);
	for (size_t i = 0; i < kvs.n; i++)
		kv_check(&kvs.v[i]);
	etcd_kvs_free(&kvs);
	ret = etcd_watch_parse((const char *)data, size, &r);
	FUZZ_CHECK(!ret || ret == -EBADMSG || ret == -ENOMEM);
	if (ret)
		return 0;
	for (size_t i = 0; i < r.n; i++) {
		FUZZ_CHECK(r.v[i].kind == ETCD_EVENT_PUT || r.v[i].kind == ETCD_EVENT_DELETE);
		kv_check(&r.v[i].kv);
	}
	FUZZ_CHECK(!r.error || !r.n);
	etcd_watch_resp_free(&r);
	return 0;
}
