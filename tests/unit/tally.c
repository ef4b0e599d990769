/* Per-policy tallies for the metrics: counts by verdict, flows versus packets, label
 * escaping, the name held while counted, and the bound (policies past it count as "(other)"). */
#include <stdlib.h>

#include "check.h"
#include "../../daemon/observe/flows.h"
#include "../../daemon/observe/names.h"
#include "../../daemon/observe/tally.h"

/* The rendered metrics, in a buffer the caller frees. */
static char *render(const struct tally *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	tally_metrics(f, t);
	fclose(f);
	return buf;
}

static void test_counts(void)
{
	struct names *n = NULL;
	struct tally *t = NULL;
	uint32_t web, odd;
	char *out;

	CHECK(names_new(&n) == 0);
	CHECK(tally_new(n, &t) == 0);
	web = names_get(n, "shop/web", 8);
	odd = names_get(n, "x/\"q\"\n", 6);
	tally_add(t, web, FLOW_ALLOWED, true);
	tally_add(t, web, FLOW_ALLOWED, false);
	tally_add(t, web, FLOW_DENIED, true);
	tally_add(t, 0, FLOW_DENIED, true);
	tally_add(t, odd, FLOW_VIOLATION, true);
	tally_add(t, web, 7, true);		/* no such verdict: ignored */
	names_drop(n, web);
	names_drop(n, odd);
	CHECK(names_count(n) == 2);		/* the tally holds both */
	out = render(t);
	CHECK(strstr(out, "# TYPE moat_flows_total counter\n") != NULL);
	CHECK(strstr(out, "moat_flows_total{verdict=\"allowed\",policy=\"shop/web\"} 1\n") != NULL);
	CHECK(strstr(out, "moat_packets_total{verdict=\"allowed\",policy=\"shop/web\"} 2\n") != NULL);
	CHECK(strstr(out, "moat_packets_total{verdict=\"denied\",policy=\"shop/web\"} 1\n") != NULL);
	CHECK(strstr(out, "moat_packets_total{verdict=\"violation\",policy=\"shop/web\"} 0\n") != NULL);
	CHECK(strstr(out, "moat_flows_total{verdict=\"denied\",policy=\"\"} 1\n") != NULL);
	CHECK(strstr(out, "moat_flows_total{verdict=\"violation\",policy=\"x/\\\"q\\\"\\n\"} 1\n")
	      != NULL);
	free(out);
	tally_free(t);
	CHECK(names_count(n) == 0);
	names_free(n);
}

static void test_bound(void)
{
	struct names *n = NULL;
	struct tally *t = NULL;
	char buf[32], *out, *p;
	unsigned series = 0;

	CHECK(names_new(&n) == 0);
	CHECK(tally_new(n, &t) == 0);
	for (int i = 0; i < 3 * TALLY_MAX; i++) {
		int len = snprintf(buf, sizeof(buf), "ns/p%d", i);
		uint32_t id = names_get(n, buf, (size_t)len);

		tally_add(t, id, FLOW_DENIED, true);
		names_drop(n, id);
	}
	CHECK(names_count(n) == TALLY_MAX - 1);
	out = render(t);
	for (p = out; (p = strstr(p, "moat_packets_total{verdict=\"denied\"")); p++)
		series++;
	CHECK(series == TALLY_MAX);
	snprintf(buf, sizeof(buf), "} %d\n", 2 * TALLY_MAX + 1);
	p = strstr(out, "moat_packets_total{verdict=\"denied\",policy=\"(other)\"");
	CHECK(p && !strncmp(strchr(p, '}'), buf, strlen(buf)));
	CHECK(strstr(out, "policy=\"ns/p0\"") && !strstr(out, "policy=\"ns/p1000\""));
	free(out);
	tally_free(t);
	CHECK(names_count(n) == 0);
	names_free(n);
}

int main(void)
{
	test_counts();
	test_bound();
	return check_done();
}
