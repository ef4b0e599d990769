/*
 * The cluster-wide policies' documents: ClusterNetworkPolicy (policy.networking.k8s.io/
 * v1alpha2), AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1), into the one
 * model of struct moat_cnp. netpol.c's kind dispatch calls cnp_parse and keeps the set.
 */
#ifndef MOAT_POLICY_CNP_H
#define MOAT_POLICY_CNP_H

#include "moat/policy.h"
#include "yaml.h"

/* The API's group, and its two versions. */
#define CNP_API_V1ALPHA2 "policy.networking.k8s.io/v1alpha2"
#define CNP_API_V1ALPHA1 "policy.networking.k8s.io/v1alpha1"

/*
 * cnp_parse - one document of kind (its kind and apiVersion already checked) into *out
 * (strings and arrays in ck->arena), with the API's validation (ranges, list sizes, exactly
 * one of, CEL rules) and Moat's refusals (nodes peers, Pass in the Baseline tier, see
 * moat-policy(5)). Returns 0 (errors recorded: *out is then only good for being dropped)
 * or -ENOMEM.
 */
int cnp_parse(struct ycheck *ck, const struct ynode *doc, enum moat_cnp_kind kind,
	      struct moat_cnp *out);

/*
 * cnp_sort - v into evaluation order: the Admin tier, then the Baseline tier; in a tier by
 * priority, then name, then kind (names are unique per kind, so the order is total).
 */
void cnp_sort(struct moat_cnp *v, size_t n);

#endif
