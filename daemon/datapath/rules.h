/*
 * The rules of the two moat tables (the shape is in ruleset.h): the base chains' rules, and
 * per identity chain its sets and rules. Each call appends to a batch.
 */
#ifndef MOAT_DATAPATH_RULES_H
#define MOAT_DATAPATH_RULES_H

#include "batch.h"
#include "elements.h"
#include "ruleset.h"

/* rules_owner_count - how many rules rules_owner_add writes for o. */
size_t rules_owner_count(const struct owner *o);

/* rules_chain_used - does in's ruleset have chain c (output: only with host_access POLICY)? */
bool rules_chain_used(enum chain_id c, const struct ruleset_input *in);

/* rules_add - every rule of the base and shared chains of both tables, for in's mode and
 * NFLOG group (the tables, sets and chains must be in bt already). */
void rules_add(struct batch *bt, const struct ruleset_input *in);

/* rules_owner_add - an identity chain's sets, chain and rules (its shape says which): the
 * tiers and NetworkPolicy in evaluation order, ending in deny (or, monitor, count) where
 * NetworkPolicy isolates. */
void rules_owner_add(struct batch *bt, const struct owner *o);

/* rules_owner_del - delete an identity's chain (its rules go with it), then its sets. Its
 * verdict map elements must be deleted earlier in the batch. */
void rules_owner_del(struct batch *bt, const struct owner *o);

#endif
