/*
 * What the compiler keeps behind moat_plan.priv: the atoms identities are made of and, per
 * identity, which atoms it holds; and the indexes that let a delta update the plan at the
 * cost of the change (kinds, identities by atoms, atoms' identities, addresses). verdict.c
 * reads it to name the rule behind a verdict; nothing outside policy/ may.
 *
 * An atom is one thing a rule can test about an address: a pod selector within a namespace
 * condition (SEL: targets and pod peers), an ipBlock minus its excepts (BLOCK), or the value
 * of a named port some rule refers to (NPORT). An identity is the sorted set of atoms its
 * addresses hold; its id is kept across compiles by the atoms' content keys, and by a delta.
 */
#ifndef MOAT_POLICY_PLAN_PRIV_H
#define MOAT_POLICY_PLAN_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
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

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

/* u32vec_push - append x. 0 or -ENOMEM. */
int u32vec_push(struct u32vec *a, uint32_t x);

/* u32_sort / u64_sort - ascending, in place. */
void u32_sort(uint32_t *v, size_t n);
void u64_sort(uint64_t *v, size_t n);

/* u32_sort_uniq - sort v[0..n) and drop repeats; the new length. */
size_t u32_sort_uniq(uint32_t *v, size_t n);

struct plan_ident_priv {
	uint32_t *atoms;		/* sorted atom indexes */
	uint64_t *keys;			/* the same atoms' content keys, sorted */
	uint32_t natoms;
	uint64_t hash;			/* of keys: how the next compile finds this identity */
	uint64_t sig;			/* of atoms: how the next compile finds the same atoms */
	uint32_t *pols[2];		/* isolating policies, ascending: [0] ingress, [1] egress */
	uint32_t npols[2];
	uint32_t *cnps;			/* cluster-wide policies it is a subject of, in evaluation
					 * order, monitor-mode ones too */
	uint32_t ncnps;
	uint32_t refs;			/* addresses, endpoints and segments that have it */
	uint32_t allow_cap[MOAT_ALLOW_LISTS];	/* room in the public allow lists */
};

/*
 * Endpoints alike in all their identities are made of (namespace, labels, named ports, host
 * network) are one kind: replicas. A kind's atoms are found once; the rest of its endpoints
 * take them from here. Its defining fields are copies (the endpoint set may move).
 */
struct plan_kind {
	uint64_t hash;			/* kind_hash */
	const char *ns;
	struct moat_labels labels;
	struct moat_named_port *ports;
	uint32_t nports;
	bool host_network;
	uint32_t ns_index;		/* in the policy state's namespaces */
	uint32_t *atoms, natoms;	/* sorted */
	uint32_t ident;			/* id of its address-less identity */
	uint32_t refs;			/* endpoints of this kind */
};

struct plan_policy;

struct plan_priv {
	struct arena *arena;		/* owns the identities' and kinds' arrays and NPORT atoms'
					 * texts; a delta adds to it (see moat_plan_stale) */
	size_t arena_mark;		/* its size after the whole compile */
	struct plan_policy *policy;	/* a reference to what the plan shares with other plans
					 * compiled from the same policies and namespaces (see
					 * compile.c): it owns the SEL and BLOCK atoms' texts and
					 * what target_atom and rule_* point at */
	struct plan_atom *atoms;	/* SEL and BLOCK atoms first, then NPORT */
	uint32_t natoms, atoms_cap;
	struct plan_ident_priv *ids;	/* parallel to plan->idents */
	size_t ids_cap;			/* of ids and plan->idents */
	uint32_t *target_atom;		/* per policy: the SEL atom of its podSelector */
	uint32_t *rule_base[2];		/* per policy: index of its first rule in rule_peers */
	uint32_t **rule_peers[2];	/* per rule: the atom of each peer */
	uint32_t next_id;		/* first id never handed out */
	/* what a delta finds things by */
	struct plan_kind *kinds;
	uint32_t nkinds, kinds_cap;
	struct hmap kind_by_hash;	/* kind hash -> index in kinds */
	struct hmap ident_by_sig;	/* sig -> identity id */
	struct hmap nport_by_canon;	/* canon hash -> NPORT atom index */
	struct u32vec *atom_ids;	/* per atom: ids of the identities that hold it */
	size_t atom_ids_cap;
	struct hmap addr_by_hash;	/* address hash -> index in plan->addrs */
	size_t addrs_cap, eident_cap;	/* room in plan->addrs and plan->endpoint_ident */
};

/* plan_ident_index - index of identity id in plan->idents (and priv->ids), or PLAN_NONE. */
uint32_t plan_ident_index(const struct moat_plan *plan, uint32_t id);

/* plan_ident_has - does identity index i hold atom? */
bool plan_ident_has(const struct plan_priv *pv, uint32_t i, uint32_t atom);

/* plan_atoms_have - is atom in the sorted atoms a[0..n)? */
bool plan_atoms_have(const uint32_t *a, uint32_t n, uint32_t atom);

/*
 * plan_nport - the port an identity with atoms a[0..n) (sorted indexes into atoms) gives
 * name/proto, or -1 when it has none (every address that is not an endpoint's, endpoints
 * without the name).
 */
int plan_nport(const struct plan_atom *atoms, const uint32_t *a, uint32_t n, const char *name,
	       uint8_t proto);

/*
 * plan_nport_any - the port an identity with atoms a[0..n) gives name, of whatever protocol
 * (a cluster-wide policy's named port), and that protocol into *proto; -1 when none.
 */
int plan_nport_any(const struct plan_atom *atoms, const uint32_t *a, uint32_t n,
		   const char *name, uint8_t *proto);

/* plan_ident_nport - plan_nport for identity index i. */
int plan_ident_nport(const struct plan_priv *pv, uint32_t i, const char *name, uint8_t proto);

/* plan_ident_keys - id's content keys (in an arena array of natoms already) from its atoms,
 * sorted, and their hash. */
void plan_ident_keys(const struct plan_atom *atoms, struct plan_ident_priv *id);

/* plan_addr_hash - the seeded hash of an address, as addr_by_hash keys it. */
uint64_t plan_addr_hash(const struct moat_addr *a);

/* plan_addr_index - index in plan->addrs of a, or PLAN_NONE. */
uint32_t plan_addr_index(const struct moat_plan *plan, const struct moat_addr *a);

/* ---- kinds (kind.c) ---- */

/* kind_hash - the seeded hash of what makes e's kind (see struct plan_kind). */
uint64_t kind_hash(const struct moat_endpoint *e);

/* kind_find - index in pv->kinds of e's kind (h: kind_hash(e)), or -1. */
long kind_find(const struct plan_priv *pv, const struct moat_endpoint *e, uint64_t h);

/* kind_is - is e of kind k (h: kind_hash(e))? */
bool kind_is(const struct plan_kind *k, const struct moat_endpoint *e, uint64_t h);

/* kind_copy - k's defining fields: copies of e's in ar. 0 or -ENOMEM. */
int kind_copy(struct arena *ar, const struct moat_endpoint *e, uint64_t h, struct plan_kind *k);

/*
 * A kind's NPORT atom for named port np of an endpoint (one some rule refers to): the
 * caller's way of finding or making it (the whole compile interns it in the plan, a delta
 * finds it there or makes it its own). 0 and *atom, or -ENOMEM.
 */
typedef int (*kind_nport_fn)(void *ctx, const struct moat_named_port *np, uint32_t *atom);

struct plan_policy;

/*
 * kind_atoms - the atoms every endpoint of e's kind holds, sorted without repeats, into out
 * (emptied first): the SEL atoms of pol (none for a host-network endpoint: never segmented),
 * then the NPORT atoms nport gives. atoms: the plan's. ns: e's namespace index in pol.
 * 0 or -ENOMEM.
 */
int kind_atoms(const struct plan_policy *pol, const struct plan_atom *atoms, uint32_t ns,
	       const struct moat_endpoint *e, kind_nport_fn nport, void *ctx, struct u32vec *out);

/* nport_canon - the canonical text of an NPORT atom into buf (at least 64 + name bytes). */
void nport_canon(char *buf, size_t len, const char *name, uint8_t proto, uint16_t port);

#endif
