/*
 * Domain names as the cluster-wide policies' domainNames peers write them: an exact name
 * (example.com) or "*." and a name for every name under it (*.example.com matches
 * www.example.com and a.b.example.com, not example.com). Checking, normalising, matching.
 */
#ifndef MOAT_POLICY_DOMAIN_H
#define MOAT_POLICY_DOMAIN_H

#include <stdbool.h>

struct arena;

/*
 * domain_problem - NULL when s has the API's form (its DomainName pattern: an optional
 * leading "*.", then two or more dot-separated labels of letters, digits, '-' and '_' that
 * start and end with a letter or digit, and an optional final dot), else what is wrong.
 */
const char *domain_problem(const char *s);

/* domain_normalize - s lowercased without its final dot, in a; NULL on ENOMEM. */
char *domain_normalize(struct arena *a, const char *s);

/*
 * domain_match - does pattern (normalised: see domain_normalize) match the name a resolver
 * was asked for? name in any case, with or without its final dot.
 */
bool domain_match(const char *pattern, const char *name);

#endif
