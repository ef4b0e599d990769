/*
 * The endpoint store: the endpoints every source reports (the runtime's containers, the
 * endpoints file, other nodes), and the one set in force that the plan is compiled from.
 * Sources change their own endpoints at will; the store notes which names they touched, and
 * a commit turns those names alone into what goes from and comes to the set in force (so a
 * container start costs one endpoint, whatever the number of others). When two sources name
 * the same namespace/name, the first source wins (EPSOURCE_RUNTIME over _FILE over _CLUSTER).
 */
#ifndef MOAT_ENDPOINTS_STORE_H
#define MOAT_ENDPOINTS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "moat/endpoint.h"
#include "moat/policy.h"

enum epsource { EPSOURCE_RUNTIME, EPSOURCE_FILE, EPSOURCE_CLUSTER, EPSOURCE_COUNT };

struct epstore;

/* epstore_new - empty sources, an empty set in force. 0 and *out, or -ENOMEM. */
int epstore_new(struct epstore **out);

/* epstore_free - NULL-safe; frees the set in force too (free the plan compiled from it first). */
void epstore_free(struct epstore *s);

/* epstore_put - source src now has e (a deep copy; replaces its endpoint of that name). 0 or
 * -ENOMEM, -EINVAL for an endpoint without a name. */
int epstore_put(struct epstore *s, enum epsource src, const struct moat_endpoint *e);

/* epstore_del - source src no longer has namespace/name (fine when it did not). 0 or -ENOMEM. */
int epstore_del(struct epstore *s, enum epsource src, const char *ns, const char *name);

/*
 * epstore_replace - source src has exactly set's endpoints now, and its namespaces' labels
 * (set is borrowed for the call; its subnets are epstore_subnets'). Touches only the names whose endpoint differs.
 * 0 or -ENOMEM (the source is then partly replaced: commit the whole set).
 */
int epstore_replace(struct epstore *s, enum epsource src, const struct moat_endpoint_set *set);

/* epstore_namespaces - source src gives namespaces the labels of set's (a change of labels
 * makes the next change whole). 0 or -ENOMEM. */
int epstore_namespaces(struct epstore *s, enum epsource src, const struct moat_endpoint_set *set);

/* epstore_subnets - source src manages these subnets now (copied). 0 or -ENOMEM. */
int epstore_subnets(struct epstore *s, enum epsource src, const struct moat_cidr *v, size_t n);

/* epstore_subnets_of - the subnets source src manages, as epstore_subnets last gave them
 * (*n their number); owned by the store. */
const struct moat_cidr *epstore_subnets_of(const struct epstore *s, enum epsource src, size_t *n);

/* epstore_has - does source src have namespace/name? */
bool epstore_has(const struct epstore *s, enum epsource src, const char *ns, const char *name);

/* epstore_set - the set in force; owned by the store, changed only by the calls below. */
const struct moat_endpoint_set *epstore_set(const struct epstore *s);

/* epstore_managed - every source's subnets, sorted, without repeats; *n their number. */
const struct moat_cidr *epstore_managed(const struct epstore *s, size_t *n);

/* What the touched names change in the set in force. */
struct epchange {
	size_t *gone;			/* indexes into the set in force, descending */
	size_t ngone;
	struct moat_endpoint *come;	/* copies in the set's memory (moat_endpoint_set_copy_in) */
	size_t ncome;
	bool whole;			/* namespaces' labels or subnets changed, or the set is
					 * stale: build it whole (epstore_build) instead */
	bool managed;			/* the subnets changed */
};

/*
 * epstore_change - what the names touched since the last change or install change. Free c
 * with epstore_change_free, after epstore_change_apply if the change is made. 0 or -ENOMEM.
 */
int epstore_change(struct epstore *s, struct epchange *c);

/* epstore_change_apply - make c the set in force (moat_endpoint_set_change); forgets the
 * touched names. Cannot fail. */
void epstore_change_apply(struct epstore *s, const struct epchange *c);

/* epstore_change_free - what c holds (c itself is the caller's). */
void epstore_change_free(struct epchange *c);

/*
 * epstore_build - a new whole set from every source (namespaces, subnets, endpoints), not
 * yet in force. 0 and *out (give it to epstore_install, or free it), or -ENOMEM.
 */
int epstore_build(struct epstore *s, struct moat_endpoint_set **out);

/*
 * epstore_install - es (from epstore_build) is the set in force; forgets the touched names.
 * Returns the set that was in force: free it once nothing compiled from it is left.
 */
struct moat_endpoint_set *epstore_install(struct epstore *s, struct moat_endpoint_set *es);

/* epstore_count - endpoints source src has. */
size_t epstore_count(const struct epstore *s, enum epsource src);

#endif
