/* Group names: key labels only, sorted as labels are, the endpoint's own name without them. */
#include "check.h"
#include "moat/baseline_group.h"

#define L(k, v) { (char *)(k), (char *)(v) }

int main(void)
{
	struct moat_label web_v[] = { L("app", "web"), L("com.docker.compose.container-number", "1"),
				      L("tier", "front") };
	struct moat_label plain_v[] = { L("owner", "ops"), L("pod-template-hash", "abc") };
	struct moat_endpoint web = { .name = (char *)"web-1", .namespace = (char *)"shop",
				     .labels = { web_v, 3 } };
	struct moat_endpoint plain = { .name = (char *)"x", .namespace = (char *)"default",
				       .labels = { plain_v, 2 } };
	struct moat_endpoint bare = { .name = (char *)"lonely", .namespace = (char *)"default" };
	char buf[128], small[8];

	CHECK(moat_baseline_group_name(&web, buf, sizeof(buf)) == strlen("shop/app=web,tier=front"));
	CHECK_STR(buf, "shop/app=web,tier=front");
	moat_baseline_group_name(&plain, buf, sizeof(buf));
	CHECK_STR(buf, "default/owner=ops");		/* no stable keys: all but per-instance */
	moat_baseline_group_name(&bare, buf, sizeof(buf));
	CHECK_STR(buf, "default/lonely");
	CHECK(moat_baseline_group_name(&web, small, sizeof(small)) == 23);
	CHECK_STR(small, "shop/ap");
	CHECK(moat_baseline_group_name(&web, NULL, 0) == 23);
	return check_done();
}
