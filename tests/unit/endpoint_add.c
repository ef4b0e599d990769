/*
 * moat_endpoint_set_add with the bare minimum: an endpoint with no addresses, ports or
 * interfaces (a container on --network none) must copy cleanly. The sanitizer build caught
 * memcpy from a NULL ips array here (found by tests/fuzz/endpoints).
 */
#include <errno.h>

#include "check.h"
#include "moat/endpoint.h"

int main(void)
{
	struct moat_endpoint_set *set = moat_endpoint_set_new();
	struct moat_endpoint bare = { .name = "lonely" };
	struct moat_addr a;
	struct moat_endpoint one = { .name = "web", .namespace = "shop", .ips = &a, .nips = 1 };
	long i;

	CHECK(set != NULL);
	CHECK(!moat_addr_parse("10.0.0.1", &a));
	CHECK(moat_endpoint_set_add(set, &bare) == 0);
	CHECK(moat_endpoint_set_add(set, &one) == 0);
	CHECK(moat_endpoint_set_add(set, &bare) == -EEXIST);
	i = moat_endpoint_set_find(set, "default", "lonely");
	CHECK(i >= 0 && set->v[i].nips == 0 && set->v[i].nports == 0 && set->v[i].nifaces == 0);
	i = moat_endpoint_set_find(set, "shop", "web");
	CHECK(i >= 0 && set->v[i].nips == 1 && set->v[i].ips[0].family == a.family);
	moat_endpoint_set_free(set);
	return check_done();
}
