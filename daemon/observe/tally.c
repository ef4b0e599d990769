/*
 * An open-addressing table from policy id to counters: a record costs one hash probe. Slots
 * are never removed (the tally only grows, to TALLY_MAX), so probing needs no tombstones.
 */
#include <errno.h>
#include <stdlib.h>

#include "flow_query.h"
#include "flows.h"
#include "metrics.h"
#include "tally.h"

#define SLOTS (2 * TALLY_MAX)		/* a power of two, at most half full */
#define OTHER UINT32_MAX		/* the key under which policies past TALLY_MAX count */
#define NONE (OTHER - 1)		/* the key of "no deciding policy" (0 marks empty slots) */

struct count {
	uint32_t policy;		/* a names id, NONE, OTHER; 0 in an empty slot */
	uint64_t flows[FLOW_NVERDICTS], packets[FLOW_NVERDICTS];
};

struct tally {
	struct names *names;
	size_t n;
	struct count slot[SLOTS];
};

int tally_new(struct names *names, struct tally **out)
{
	struct tally *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->names = names;
	*out = t;
	return 0;
}

void tally_free(struct tally *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < SLOTS; i++)
		if (t->slot[i].policy != NONE && t->slot[i].policy != OTHER)
			names_drop(t->names, t->slot[i].policy);
	free(t);
}

/* The slot of key, or the empty slot where it belongs. */
static struct count *slot_of(struct tally *t, uint32_t key)
{
	size_t i = (key * 2654435761u) & (SLOTS - 1);

	while (t->slot[i].policy && t->slot[i].policy != key)
		i = (i + 1) & (SLOTS - 1);
	return &t->slot[i];
}

void tally_add(struct tally *t, uint32_t policy, unsigned verdict, bool new_flow)
{
	uint32_t key = policy ? policy : NONE;
	struct count *c = slot_of(t, key);

	if (verdict >= FLOW_NVERDICTS)
		return;
	if (!c->policy) {
		if (t->n >= TALLY_MAX - 1)	/* the last entry is OTHER's */
			c = slot_of(t, key = OTHER);
		if (!c->policy) {
			c->policy = key;
			t->n++;
			names_hold(t->names, key == NONE || key == OTHER ? 0 : key);
		}
	}
	c->packets[verdict]++;
	c->flows[verdict] += new_flow;
}

static void family(FILE *out, const struct tally *t, const char *name, const char *help,
		   bool flows)
{
	char esc[1024];

	fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < SLOTS; i++) {
		const struct count *c = &t->slot[i];
		const char *p = c->policy == NONE ? "" : c->policy == OTHER ? "(other)"
			: names_str(t->names, c->policy);

		if (!c->policy)
			continue;
		metrics_escape(p, esc, sizeof(esc));
		for (unsigned v = 0; v < FLOW_NVERDICTS; v++)
			fprintf(out, "%s{verdict=\"%s\",policy=\"%s\"} %llu\n", name,
				flow_verdict_name(v), esc,
				(unsigned long long)(flows ? c->flows[v] : c->packets[v]));
	}
}

void tally_metrics(FILE *out, const struct tally *t)
{
	family(out, t, "moat_flows_total",
	       "Flows first seen (source, destination, protocol, port), by verdict and the "
	       "deciding policies (\"\": none, a stranger or no isolation)", true);
	family(out, t, "moat_packets_total",
	       "Logged packets (a connection's first, or a dropped one), by verdict and the "
	       "deciding policies", false);
}
