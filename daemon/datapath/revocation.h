/*
 * Which changes may take something from a live connection. Judging connections means dumping
 * the conntrack table, and a dump walks the kernel's whole hash table, every namespace's
 * buckets (262,144 of them on a 24 GiB node: about 3 ms with not one entry of ours), so moatd
 * dumps only when a change can deny a connection that exists:
 *
 *   REVOCATION_NOW    a policy, the mode, the managed subnets, a namespace's labels, an
 *                     endpoint's labels, named ports or host networking changed; or an endpoint
 *                     got an address through which a connection may live: one outside the
 *                     managed subnets, one another endpoint had, one not yet swept, or any in
 *                     monitor mode. Judge every connection on the new plan after the apply.
 *   REVOCATION_LATER  endpoints or addresses went away: their traffic fails closed (or is
 *                     outside traffic) as soon as the new ruleset is in; their connections are
 *                     swept soon after (departures close together share one sweep), and
 *                     always before an endpoint gets one of them again.
 *   REVOCATION_NONE   endpoints came with addresses that failed closed until now (an unknown
 *                     address of a managed subnet in enforce mode: no connection passed to or
 *                     from it, see ruleset.h), or only interfaces changed (checked per frame).
 *
 * The node's own traffic (output hook) is not filtered, so its connections are not counted.
 */
#ifndef MOAT_DAEMON_REVOCATION_H
#define MOAT_DAEMON_REVOCATION_H

#include <stddef.h>

#include "moat/endpoint.h"
#include "moat/plan.h"

enum revocation_need { REVOCATION_NONE, REVOCATION_LATER, REVOCATION_NOW };

/* The addresses endpoints gave up and no sweep has cleared yet. Zero-initialise. */
struct revocation {
	struct moat_addr *gone;
	size_t ngone, cap;
};

/*
 * revocation_diff - what replacing the endpoints of old (the plan in force, or NULL before the
 * first apply: NOW) with es can take, policies, mode and managed subnets unchanged (the caller
 * asks for NOW itself when they change). Adds the addresses that went away to r->gone.
 * Returns the need, or -ENOMEM (r unchanged but for some of the addresses: sweep now).
 */
int revocation_diff(struct revocation *r, const struct moat_plan *old,
		    const struct moat_endpoint_set *es, const struct moat_cidr *managed,
		    size_t nmanaged);

/*
 * revocation_change - the same for a change of a few endpoints, at its cost: the endpoints
 * at old->es indexes gone[] go and come[] come (a name in both is an endpoint that changed),
 * namespaces unchanged. The need, or -ENOMEM.
 */
int revocation_change(struct revocation *r, const struct moat_plan *old, const size_t *gone,
		      size_t ngone, const struct moat_endpoint *come, size_t ncome,
		      const struct moat_cidr *managed, size_t nmanaged);

/*
 * revocation_gone - r->gone made ready for conntrack_revoke before a sweep on plan: the
 * addresses an endpoint of plan has again are dropped (the plan judges those), the rest sorted.
 */
void revocation_gone(struct revocation *r, const struct moat_plan *plan);

/* revocation_clear - a sweep judged every connection: nothing is pending any more. */
void revocation_clear(struct revocation *r);

/* revocation_free - frees what r holds (r itself is the caller's). */
void revocation_free(struct revocation *r);

#endif
