/*
 * The alert budget (daemon/observe/alerts.h): a flood of unexpected flows from one source
 * (here addresses, as flow_json writes them: from.ip, from.name null) takes at most its
 * share of the bucket, and another source's alert right after it
 * is raised; alerts that name no source are held by the whole budget only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../daemon/observe/alerts.h"
#include "check.h"

static json_t *alert_from(const char *addr, int port)
{
	return addr ? json_pack("{s:s,s:{s:n,s:s},s:i}", "kind", "unexpected-flow", "from", "name",
				"ip", addr, "port", port)
		    : json_pack("{s:s,s:i}", "kind", "unexpected-flow", "port", port);
}

/* How many of n alerts from addr (NULL: none named) are raised at now_ms. */
static int raise_n(struct alerts *a, const char *addr, int n, uint64_t now_ms)
{
	int raised = 0;

	for (int i = 0; i < n; i++)
		raised += alerts_raise(a, alert_from(addr, 1000 + i), "moat: test", now_ms) == 1;
	return raised;
}

static void test_share(const char *dir)
{
	struct alerts *a = NULL;
	int flood, rest;

	CHECK(alerts_new(dir, 10, &a) == 0);
	if (!a)
		return;
	flood = raise_n(a, "10.0.0.66", 1000, 5000);
	CHECK(flood == 25);		/* a quarter of the burst of 100 */
	CHECK(raise_n(a, "10.0.0.7", 1, 5001) == 1);	/* the others' budget is left */
	CHECK(raise_n(a, "10.0.0.66", 1, 5002) == 0);	/* the flood's share is spent... */
	CHECK(raise_n(a, "10.0.0.66", 1, 6000) == 1);	/* ...and comes back at 2.5 a second */
	/* the whole budget still bounds them all, sources or not: what is left of 100 */
	rest = raise_n(a, NULL, 1000, 6001);
	CHECK(rest > 70 && rest < 90);
	CHECK(raise_n(a, "10.0.0.8", 1, 6002) == 0);
	alerts_free(a);
}

int main(void)
{
	char dir[] = "/tmp/moat-alerts.XXXXXX", path[64];

	if (!mkdtemp(dir))
		return 1;
	test_share(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, ALERTS_FILE);
	unlink(path);
	rmdir(dir);
	return check_done();
}
