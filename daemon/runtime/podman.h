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

#include <stddef.h>
#include <sys/types.h>

#include "docker.h"

/*
 * podman_pod_of - the pod container id belongs to (GET /libpod/containers/{id}/json, Podman
 * only). 0 and *pod (a pod id the caller frees, or NULL when id is in no pod), -ENOENT when
 * no such container, or the errors of docker.h.
 */
int podman_pod_of(struct docker_client *c, const char *id, char **pod);

/* podman_pod_parse - a libpod inspect answer (len bytes) into *pod, as podman_pod_of. Pure.
 * 0 or -EBADMSG (not an object, or a Pod that is not a string), -ENOMEM. */
int podman_pod_parse(const char *json, size_t len, char **pod);

/*
 * podman_socket_owner - the uid owning the runtime's socket at path: a uid other than 0 is a
 * rootless runtime (Podman's user service, rootless Docker). 0 and *uid, or -errno from stat
 * (the runtime may not be there yet).
 */
int podman_socket_owner(const char *path, uid_t *uid);

#endif
