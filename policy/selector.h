/* Label selectors and label maps read from YAML, checked the way Kubernetes checks them. */
#ifndef MOAT_POLICY_SELECTOR_H
#define MOAT_POLICY_SELECTOR_H

#include "moat/policy.h"
#include "yaml.h"

/* dns_label_ok - a DNS-1123 label (a namespace's name): 1-63 of [a-z0-9-], alnum at both ends. */
bool dns_label_ok(const char *s);

/* dns_subdomain_ok - a DNS-1123 subdomain of len bytes (a policy's name, a label prefix):
 * at most 253 characters of dot-separated DNS labels. */
bool dns_subdomain_ok(const char *s, size_t len);

/* label_key_problem / label_value_problem - NULL when valid, else what is wrong, in words. */
const char *label_key_problem(const char *key);
const char *label_value_problem(const char *value);

/*
 * labels_parse - a {key: value} mapping into *out (arena), sorted. strict: keys and values
 * must be valid Kubernetes labels (policies); otherwise any non-empty key (endpoint files
 * mirror container labels, which Docker does not restrict). Room for extra more entries is
 * allocated behind out->v[out->n]. Returns 0 (errors recorded) or -ENOMEM.
 */
int labels_parse(struct ycheck *ck, const struct ynode *n, bool strict, size_t extra,
		 struct moat_labels *out);

/*
 * labels_put - set key to value in labels that have room behind v[n] (see labels_parse),
 * replacing a value already there; keeps them sorted. Strings are borrowed.
 */
void labels_put(struct moat_labels *labels, char *key, char *value);

/*
 * selector_parse - a LabelSelector: matchLabels, matchExpressions, and Moat's shorthands
 * composeService / composeProject. Into *sel (arena). Returns 0 (errors recorded) or -ENOMEM.
 */
int selector_parse(struct ycheck *ck, const struct ynode *n, struct moat_selector *sel);

/* selector_parse_at - selector_parse with the path extended by key (for its messages). */
int selector_parse_at(struct ycheck *ck, const char *key, const struct ynode *n,
		      struct moat_selector *sel);

#endif
