/*
 * What Podman's service says beside its Docker-compatible API, and what a runtime's socket
 * says of the runtime:
 *   - pods: a pod's containers join its infra container's network namespace
 *     ("container:<infra id>", as --network container:X does), and only Podman's own API
 *     (libpod) says which of those joiners are a pod's;
 *   - rootless runtimes (a socket its owner is not root of): their containers' networks live
 *     in the user's namespaces, behind slirp4netns, pasta or rootlessport, past no hook of
 *     this host's that Moat programs.
 */
#ifndef MOAT_RUNTIME_PODMAN_H
#define MOAT_RUNTIME_PODMAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "docker.h"

/* The pod of a container; all zero (id NULL) for one in no pod. */
struct podman_pod {
	char *id;		/* the pod's id */
	char *name;		/* its name ("" when Podman gave none) */
	bool infra;		/* the container is the pod's infra container */
};

/*
 * podman_pod_of - the pod container id (64 hex digits) belongs to: Podman's own list of
 * containers, filtered by id (GET /libpod/containers/json, Podman only; its inspect says no
 * pod name). 0 and *out (free with podman_pod_clear), -ENOENT when no such container, or the
 * errors of docker.h.
 */
int podman_pod_of(struct docker_client *c, const char *id, struct podman_pod *out);

/* podman_pod_parse - that list's answer (len bytes): the pod of its first container, as
 * podman_pod_of (an empty list is -ENOENT). Pure. 0 or -EBADMSG (not a list of objects, or
 * Pod, PodName that are not strings), -ENOENT, -ENOMEM. */
int podman_pod_parse(const char *json, size_t len, struct podman_pod *out);

/*
 * podman_pod_labels - the labels of pod id, the pod's own (GET /libpod/pods/{id}/json): its
 * infra container's are those and its image's. 0 and *out (sorted by key; free with
 * docker_labels_free), -ENOENT when no such pod, or the errors of docker.h.
 */
int podman_pod_labels(struct docker_client *c, const char *id, struct moat_labels *out);

/* podman_pod_labels_parse - that answer (len bytes), as podman_pod_labels. Pure. 0 or
 * -EBADMSG (not an object, Labels not an object), -ENOMEM. */
int podman_pod_labels_parse(const char *json, size_t len, struct moat_labels *out);

/* podman_pod_clear - frees what p holds and zeroes it. */
void podman_pod_clear(struct podman_pod *p);

/*
 * podman_socket_owner - the uid owning the runtime's socket at path: a uid other than 0 is a
 * rootless runtime (Podman's user service, rootless Docker). 0 and *uid, or -errno from stat
 * (the runtime may not be there yet).
 */
int podman_socket_owner(const char *path, uid_t *uid);

#endif
