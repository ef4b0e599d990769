/*
 * Fuzzes what another node (or anyone who can write to etcd) puts under Moat's prefix
 * (daemon/cluster/wire.h). Byte 0 picks the decoder (key, endpoint, node record, heartbeat,
 * policy set), the rest is the key or value. Invariants: a refusal says why; an accepted
 * key formats back to itself; an accepted endpoint is named NAME@NODE in the key's
 * namespace, within the bounds, with sorted labels and distinct addresses, and encodes
 * again to a value that decodes to the same endpoint.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/cluster/wire.h"
#include "fuzz.h"

#define P WIRE_DEFAULT_PREFIX

static void key_case(const char *s, size_t n)
{
	struct wire_key k;
	char buf[2048];

	if (wire_key_parse(P, s, n, &k))
		return;
	FUZZ_CHECK(!wire_key_format(P, &k, buf, sizeof(buf)));
	FUZZ_CHECK(strlen(buf) == n && !memcmp(buf, s, n));
}

static void endpoint_case(const char *s, size_t n)
{
	struct wire_key k = { .kind = WIRE_KEY_ENDPOINT, "n2", "default", "x" };
	struct wire_endpoint w, again;
	char err[256] = "", *v;

	if (wire_endpoint_decode(&k, s, n, &w, err, sizeof(err))) {
		FUZZ_CHECK(err[0]);
		return;
	}
	FUZZ_CHECK(!strcmp(w.e.name, "x@n2") && !strcmp(w.e.namespace, "default"));
	FUZZ_CHECK(w.e.labels.n <= WIRE_MAX_LABELS && w.e.nips <= WIRE_MAX_IPS &&
		   w.e.nports <= WIRE_MAX_PORTS);
	for (size_t i = 1; i < w.e.labels.n; i++)
		FUZZ_CHECK(strcmp(w.e.labels.v[i - 1].key, w.e.labels.v[i].key) < 0);
	for (size_t i = 0; i < w.e.nips; i++)
		for (size_t j = i + 1; j < w.e.nips; j++)
			FUZZ_CHECK(moat_addr_cmp(&w.e.ips[i], &w.e.ips[j]));
	free(w.e.name);
	w.e.name = strdup("x");	/* as the publishing node names it */
	v = wire_endpoint_encode(&w.e, err, sizeof(err));
	if (v) {
		FUZZ_CHECK(!wire_endpoint_decode(&k, v, strlen(v), &again, err, sizeof(err)));
		FUZZ_CHECK(again.e.labels.n == w.e.labels.n && again.e.nips == w.e.nips &&
			   again.e.nports == w.e.nports);
		wire_endpoint_free(&again);
	}
	free(v);
	wire_endpoint_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	struct moat_policy_files f;
	struct wire_alive a;
	struct wire_node nd;
	char err[256];

	if (!size)
		return 0;
	switch (data[0] % 5) {
	case 0:
		key_case(s, size - 1);
		break;
	case 1:
		endpoint_case(s, size - 1);
		break;
	case 2:
		if (!wire_node_decode("n1", s, size - 1, &nd, err, sizeof(err)))
			wire_node_free(&nd);
		break;
	case 3:
		wire_alive_decode(s, size - 1, &a, err, sizeof(err));
		break;
	case 4:
		if (!wire_policies_decode(s, size - 1, &f, err, sizeof(err)))
			moat_policy_files_free(&f);
		break;
	}
	return 0;
}
