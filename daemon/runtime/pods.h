/*
 * Pods: containers that share one network namespace as one endpoint. The infra container of
 * a Podman pod owns the namespace; the pod's other containers join it. Its endpoint carries
 * the pod's labels (Podman puts them on the infra container) and those of every container of
 * the pod, named ports (moat.io/port.NAME labels) included.
 *
 * When two say different things for one key: the pod's own label wins; between containers,
 * the one whose name sorts first (strcmp) wins. A container of the pod cannot take a label
 * from the pod away or change it, and which one wins does not depend on the order they
 * started in.
 */
#ifndef MOAT_RUNTIME_PODS_H
#define MOAT_RUNTIME_PODS_H

#include <stddef.h>

#include "moat/policy.h"

/* One container of a pod, other than its infra container. */
struct pod_member {
	const char *name;
	const struct moat_labels *labels;
};

/*
 * pod_labels_merge - the pod's endpoint's labels, sorted by key, into *out: owner's (the
 * infra container's), then those of members[0..n) by the rule above (members in any order).
 * The strings are borrowed from the inputs: free out->v alone, and use out while the inputs
 * live. *conflicts (may be NULL) counts the keys set to different values. 0 or -ENOMEM.
 */
int pod_labels_merge(const struct moat_labels *owner, const struct pod_member *members,
		     size_t n, struct moat_labels *out, size_t *conflicts);

#endif
