/*
 * The policy state of a plan: what a compile derives from the policy set and the namespaces
 * alone (atoms, namespace conditions, the selector index, the address segments, and the
 * indexes from atoms back to the rules that name them). Immutable once built and shared:
 * each plan compiled from it holds a reference, so it lives until the last of them is freed,
 * in whatever order and on whatever thread (refs is atomic). compile.c builds it; lower.c
 * and plan_delta.c read it.
 */
#ifndef MOAT_POLICY_PLAN_POLICY_H
#define MOAT_POLICY_PLAN_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "plan_priv.h"

typedef unsigned __int128 u128;

struct nscond {
	int32_t ns;		/* the one namespace it admits, or -1: see admits */
	uint8_t *admits;	/* per namespace, for a namespaceSelector */
	const char *canon;
};

struct link {
	uint32_t atom, next;
};

/* A range of one family's addresses that every ipBlock and except holds or not as a whole. */
struct seg {
	u128 lo;
	uint32_t *atoms, natoms;	/* the BLOCK atoms that hold it */
};

/* A rule that names an atom as a peer: policy p's rule r of a direction; cnp: p indexes the
 * cluster-wide policies. */
struct peer_ref {
	uint32_t p, r;
	uint8_t egress, pods;		/* pods: a pod peer (named ports apply to it) */
	uint8_t cnp;
};

/* An egress rule of cluster-wide policy c with domainNames peers: its place j (from 1) among
 * the rules of its tier that have them, in evaluation order. */
struct dns_rule {
	uint32_t c, r, j;
};

/* A peerless egress rule with a named port: policy p, rule r, its port k. */
struct nport_use {
	uint32_t p, r, k;
	uint32_t next;			/* the next use of the same name and protocol, or PLAN_NONE */
};

struct plan_policy {
	atomic_uint refs;
	struct arena *arena;		/* conditions, atoms' texts, rule peers, segments' atoms */
	uint8_t *key;
	size_t nkey;
	struct plan_atom *atoms;	/* SEL and BLOCK atoms: each plan starts with a copy */
	uint32_t natoms;
	struct nscond *conds;
	size_t nconds;
	uint32_t *target_atom, *rule_base[2], **rule_peers[2];	/* as in plan_priv */
	/* the same for the cluster-wide policies: per policy the SEL atom of its subject, per
	 * rule the atom of each peer (PLAN_NONE for a domain name: no address holds one) */
	uint32_t *cnp_subject, *cnp_rule_base[2], **cnp_rule_peers[2];
	struct dns_rule *dns_rules;	/* egress rules with domainNames peers, in evaluation order */
	uint32_t ndns_rules, ndns[2];	/* ndns: per tier (Admin, Baseline), how many */
	struct hmap label_idx;		/* label key -> a chain of SEL atoms (links) */
	struct hmap nport_ref;		/* the named ports some rule refers to */
	struct link *links;
	uint32_t *ns_head;		/* per namespace: unanchored selector atoms (links) */
	uint32_t *tgt_head;		/* per atom: policies whose target it is (links) */
	uint32_t *cnp_head;		/* per atom: cluster-wide policies whose subject it is,
					 * in evaluation order (links) */
	struct seg *segs[2];		/* per family, sorted, the first starting at 0 */
	size_t nsegs[2];
	const char **ns_names;		/* the namespaces it was built for, in gathering order */
	uint32_t nns;
	struct hmap ns_by_name;		/* name hash -> index in ns_names */
	uint32_t *peer_off;		/* per atom a: peer_refs[peer_off[a] .. peer_off[a + 1]) */
	struct peer_ref *peer_refs;
	struct hmap nport_uses;		/* nport_key -> index of the first nport_use */
	struct nport_use *uses;
	uint32_t nuses;
};

/* A namespace as the policy state is built for it: its name and labels. */
struct pb_ns {
	const char *name;
	struct moat_labels labels;
};

/*
 * plan_policy_take - the policy state of ps and the namespaces nss[0..nns) (the order
 * matters): prev with one more reference when it was built from the same input, else a new
 * one. ps and the policies' selectors must outlive it; the namespaces are copied. 0 and
 * *out, or -ENOMEM.
 */
int plan_policy_take(const struct moat_policy_set *ps, const struct pb_ns *nss, size_t nns,
		     struct plan_policy *prev, struct plan_policy **out);

/* plan_policy_unref - drop a reference; the last frees it. NULL-safe. */
void plan_policy_unref(struct plan_policy *pol);

/* The key of a named port in nport_ref and nport_uses; proto 0 for a cluster-wide policy's
 * named port, which takes the endpoint's protocol. */
uint64_t nport_key(const char *name, uint8_t proto);

/* plan_policy_ns - index of namespace name in pol, or -1. */
long plan_policy_ns(const struct plan_policy *pol, const char *name);

/*
 * plan_policy_sels - the SEL atoms an endpoint with labels l in namespace ns (an index)
 * holds, appended to out (unsorted, maybe repeated); only its labels' candidate selectors
 * are tested. atoms: the plan's (SEL atoms are the policy state's). 0 or -ENOMEM.
 */
int plan_policy_sels(const struct plan_policy *pol, const struct plan_atom *atoms, uint32_t ns,
		     const struct moat_labels *l, struct u32vec *out);

/* plan_policy_seg - the segment of family index f (0: IPv4) that holds address x. */
const struct seg *plan_policy_seg(const struct plan_policy *pol, int f, u128 x);

/* addr_u128 - an address as a number (IPv4 in the low 32 bits). */
u128 addr_u128(const uint8_t *a, uint8_t family);

/* fam_index - 0 for AF_INET, 1 for AF_INET6. */
int fam_index(uint8_t family);

#endif
