/*
 * What the compiler keeps behind moat_plan.priv: the atoms an identity is made of and, per
 * identity, which atoms it holds. verdict.c reads it to name the rule behind a verdict;
 * nothing outside policy/ may.
 *
 * An atom is one thing a rule can test about an address: a pod selector within a namespace
 * condition (SEL: targets and pod peers), an ipBlock minus its excepts (BLOCK), or the value
 * of a named port some rule refers to (NPORT). An identity is the sorted set of atoms its
 * addresses hold; its id is kept across compiles by the atoms' content keys.
 */
#ifndef MOAT_POLICY_PLAN_PRIV_H
#define MOAT_POLICY_PLAN_PRIV_H

#include <stdint.h>

#include "moat/plan.h"

enum plan_atom_kind { ATOM_SEL, ATOM_BLOCK, ATOM_NPORT };

#define PLAN_NONE UINT32_MAX

struct plan_atom {
	uint8_t kind;
	uint8_t proto;			/* NPORT */
	uint16_t port;			/* NPORT: the value an endpoint gives the name */
	uint32_t nscond;		/* SEL: index of its namespace condition */
	uint64_t key;			/* hash of canon: the same in every compile */
	const char *canon;		/* text that tells atoms apart (NPORT: in the plan's
					 * arena; else in the policy state's) */
	const struct moat_selector *pod;	/* SEL: NULL selects every pod (borrowed from ps) */
	const struct moat_peer *block;	/* BLOCK (borrowed from ps) */
	const char *name;		/* NPORT (plan arena) */
};

struct plan_ident_priv {
	uint32_t *atoms;		/* sorted atom indexes */
	uint64_t *keys;			/* the same atoms' content keys, sorted */
	uint32_t natoms;
	uint64_t hash;			/* of keys: how the next compile finds this identity */
	uint64_t sig;			/* of atoms: how the next compile finds the same atoms */
	uint32_t *pols[2];		/* isolating policies, ascending: [0] ingress, [1] egress */
	uint32_t npols[2];
};

struct plan_policy;

struct plan_priv {
	struct arena *arena;		/* owns the identities' arrays and NPORT atoms' texts */
	struct plan_policy *policy;	/* a reference to what the plan shares with other plans
					 * compiled from the same policies and namespaces (see
					 * compile.c): it owns the SEL and BLOCK atoms' texts and
					 * what target_atom and rule_* point at */
	struct plan_atom *atoms;	/* SEL and BLOCK atoms first, then NPORT */
	uint32_t natoms;
	struct plan_ident_priv *ids;	/* parallel to plan->idents */
	uint32_t *target_atom;		/* per policy: the SEL atom of its podSelector */
	uint32_t *rule_base[2];		/* per policy: index of its first rule in rule_peers */
	uint32_t **rule_peers[2];	/* per rule: the atom of each peer */
	uint32_t next_id;		/* first id never handed out */
};

/* plan_ident_index - index of identity id in plan->idents (and priv->ids), or PLAN_NONE. */
uint32_t plan_ident_index(const struct moat_plan *plan, uint32_t id);

/* plan_ident_has - does identity index i hold atom? */
bool plan_ident_has(const struct plan_priv *pv, uint32_t i, uint32_t atom);

/*
 * plan_ident_nport - the port identity index i gives name/proto, or -1 when it has none
 * (every address that is not an endpoint's, and endpoints without that name).
 */
int plan_ident_nport(const struct plan_priv *pv, uint32_t i, const char *name, uint8_t proto);

#endif
