/*
 * Object metadata as every document here writes it: names, labels, annotations (Moat's
 * mode) and the positions that the model keeps. Shared by NetworkPolicy and Namespace
 * (netpol.c) and the cluster-wide policies (cnp.c).
 */
#ifndef MOAT_POLICY_META_H
#define MOAT_POLICY_META_H

#include "moat/policy.h"
#include "yaml.h"

/* The metadata fields a document keeps for later (NULL when absent or null). */
struct meta_nodes {
	const struct ynode *name, *ns, *labels, *annotations;
};

/* Fields the API server fills in: accepted so `kubectl get -o yaml` output loads. */
#define META_SERVER_FIELDS                                                               \
	YIGNORE("uid"), YIGNORE("resourceVersion"), YIGNORE("generation"),                \
	YIGNORE("creationTimestamp"), YIGNORE("managedFields"), YIGNORE("selfLink")

/* meta_pos - where n starts, in ck's file (which the set owns). */
struct moat_pos meta_pos(const struct ycheck *ck, const struct ynode *n);

/*
 * meta_name_parse - a checked object name into *out (ck->arena): subdomain for a policy's
 * name (DNS-1123 subdomain), else a namespace's (DNS-1123 label). Returns 0 (an error is
 * recorded and *out untouched when invalid) or -ENOMEM.
 */
int meta_name_parse(struct ycheck *ck, const struct ynode *n, bool subdomain, char **out);

/*
 * meta_annotations_parse - free-form string annotations; only moat.io/mode is read, into
 * *(enum moat_mode *)mode. A yfield fn: returns 0 (errors recorded).
 */
int meta_annotations_parse(struct ycheck *ck, const struct ynode *n, void *mode);

/* meta_labels_check - an object's own labels, checked and dropped (they select nothing). */
int meta_labels_check(struct ycheck *ck, const struct ynode *n, void *unused);

/*
 * meta_walk - walks metadata (NULL when absent) with fields into x and requires a name
 * (recorded at doc when metadata is absent). Returns 1 when the caller should go on reading
 * x, with the path at "metadata" (the caller must ypath_pop(ck, *saved)); 0 when metadata
 * is not a mapping (recorded); -ENOMEM.
 */
int meta_walk(struct ycheck *ck, const struct ynode *doc, const struct ynode *meta,
	      const struct yfield *fields, size_t nfields, struct meta_nodes *x, size_t *saved);

#endif
