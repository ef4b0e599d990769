/*
 * Learning from DNS answers, for egress by name (ClusterNetworkPolicy domainNames): the
 * replies the ruleset queues (UDP and TCP from port 53 to an endpoint) come here before the
 * endpoint reads them. For a reply whose question names a name the endpoint's rules with
 * domain names match, the addresses its CNAME chain leads to go into the kernel's sets (as
 * the endpoint's, of the same family, with the rule's ports) for the record's time to live,
 * at least DNS_TTL_FLOOR_S and at most DNS_TTL_CAP_S seconds; only then is the reply let
 * through, so the endpoint's first connection after it always finds them. Replies whose
 * names no rule has are let through at once. Every reply is let through: learning never
 * blocks DNS.
 *
 * Trusted resolvers: an endpoint that may ask a resolver of its own choosing can make any
 * name resolve to any address. With dns-resolvers set, only replies from those addresses
 * are learnt from; the policies should let endpoints reach no other resolver.
 */
#ifndef MOAT_DNS_LEARNER_H
#define MOAT_DNS_LEARNER_H

#include <stdbool.h>
#include <stdint.h>

#include "../datapath/ruleset.h"
#include "../loop.h"
#include "moat/plan.h"

#define DNS_TTL_FLOOR_S 60		/* clients keep an address a while past its TTL */
#define DNS_TTL_CAP_S 86400
#define DNS_RESOLVED_MAX 65536		/* (endpoint, address, name) triples remembered */

struct learner;

struct learner_stats {
	uint64_t replies;		/* DNS messages read */
	uint64_t learnt;		/* of which one a rule matched: its addresses were added */
	uint64_t untrusted;		/* from a resolver not in dns-resolvers: not learnt */
	uint64_t malformed;		/* not a reply dns_reply_parse reads */
	uint64_t add_errors;		/* the kernel refused the addresses */
	uint64_t addresses;		/* kernel elements added */
	uint64_t remembered;		/* (endpoint, address, name) triples held */
	uint64_t p50_us, p99_us;	/* from reading a learnt reply to its verdict */
};

/*
 * learner_new - a learner that reads NFQUEUE queue (bound at learner_start) and adds what it
 * learns through rs (borrowed). trusted[0..ntrusted): the resolvers to learn from (none: any).
 * 0 and *out, or -ENOMEM.
 */
int learner_new(uint16_t queue, struct ruleset *rs, const struct moat_cidr *trusted,
		size_t ntrusted, struct learner **out);

/* learner_free - NULL-safe; unbinds the queue (held replies are let through). */
void learner_free(struct learner *l);

/*
 * learner_plan - the plan in force, borrowed until the next call: its rules decide what is
 * learnt, and its resolved hook is set to what was. The first plan with rules with domain
 * names binds the queue (and adds its fd to loop); until then nothing is queued. 0, or
 * -errno when the queue cannot be bound (logged; DNS passes unlearnt meanwhile).
 */
int learner_plan(struct learner *l, struct loop *loop, struct moat_plan *plan);

/*
 * learner_replay - after a full apply (which empties the kernel's sets): add again what was
 * learnt and has not expired, for the time it has left.
 */
void learner_replay(struct learner *l);

/* learner_stats_get - the figures. */
void learner_stats_get(const struct learner *l, struct learner_stats *out);

#endif
