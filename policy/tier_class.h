/*
 * Tier classes: identities whose tier lists are alike but for the owner (lower_tier_class:
 * the cluster-wide policies they are a subject of, their named ports). A whole compile lowers
 * and merges one identity of each class and copies its elements to the others, so a rule
 * whose subject and peers are every namespace costs the peers once, not once per subject.
 */
#ifndef MOAT_POLICY_TIER_CLASS_H
#define MOAT_POLICY_TIER_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "lower.h"

struct tier_class {
	uint32_t *key;
	size_t nkey;
	struct lelem *v;	/* its merged tier elements, in their order */
	size_t n;
};

/* Zero-initialise; free with tier_classes_free. */
struct tier_classes {
	struct hmap by_key;	/* hash of key -> index in v */
	struct tier_class *v;
	size_t n, cap;
};

/* tier_classes_find - the class of key (nkey entries), or NULL. */
const struct tier_class *tier_classes_find(const struct tier_classes *t, const uint32_t *key,
					   size_t nkey);

/* tier_classes_add - key's class is the tier elements of merged (n elements, one owner:
 * lower_merge's order), copied. 0 or -ENOMEM (t unchanged). */
int tier_classes_add(struct tier_classes *t, const uint32_t *key, size_t nkey,
		     const struct lelem *merged, size_t n);

/* tier_classes_free - NULL-safe; t is empty and usable after. */
void tier_classes_free(struct tier_classes *t);

#endif
