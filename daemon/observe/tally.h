/*
 * Tally: per deciding policy and verdict, how many flows were first seen and how many
 * records were read (each record is one packet: a connection's first, or a dropped one), for
 * the metrics. The policy is a names id (the text "ns/a, ns/b" of the deciding policies, 0
 * for none), held by the tally for as long as it counts it. At most TALLY_MAX distinct
 * policies are counted by name; the rest are counted together as "(other)", so a churn of
 * policies cannot grow the scrape or the memory without bound.
 */
#ifndef MOAT_DAEMON_TALLY_H
#define MOAT_DAEMON_TALLY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "names.h"

#define TALLY_MAX 512

struct tally;

/* tally_new - an empty tally whose policy ids live in names. 0 and *out, or -ENOMEM. */
int tally_new(struct names *names, struct tally **out);

/* tally_free - NULL-safe; drops the names it holds (free it before names). */
void tally_free(struct tally *t);

/*
 * tally_add - one record with verdict (enum flow_verdict) decided by policy; new_flow when
 * it started a flow in the flow table (a flow evicted and seen again counts again). Never
 * allocates after the first record of a policy; never fails.
 */
void tally_add(struct tally *t, uint32_t policy, unsigned verdict, bool new_flow);

/* tally_metrics - moat_flows_total and moat_packets_total by verdict and policy. */
void tally_metrics(FILE *out, const struct tally *t);

#endif
