/*
 * The container table: what moatd knows of each container (inspect + its interfaces), kept
 * by container id. A container with a network namespace of its own is one endpoint; one that
 * joins another's (--network container:X) adds nothing (the owner's labels decide), unless it
 * is a container of a Podman pod: the pod is one endpoint, its infra container's, with the
 * labels of the pod and of its containers (pods.h). A host-network one is listed with
 * host_network set (never segmented). One whose traffic never crosses the host's hooks (a
 * user-mode network: slirp4netns, pasta; every container of a rootless runtime) is listed
 * with unenforced saying why.
 */
#ifndef MOAT_RUNTIME_CONTAINERS_H
#define MOAT_RUNTIME_CONTAINERS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

#include "docker.h"
#include "moat/endpoint.h"

struct containers;

/*
 * containers_new - empty. nsfrom: the label that names a container's namespace
 * (io.kubernetes.pod.namespace, com.docker.compose.project; a pod's comes from the pod's
 * labels); without it, or with NAMESPACE_FROM_NONE, a container is in "default" and that
 * label is just a label (on a plain Docker node anyone who starts a container can write it).
 * 0 or -ENOMEM.
 */
int containers_new(enum namespace_from nsfrom, struct containers **out);

/*
 * containers_runtime_set - what the runtime is, for the inspects that follow: podman (ask it
 * which joiners are pods'), owner (the uid its socket belongs to: not 0 is a rootless runtime,
 * whose every container is unenforced). Entries already in the table keep what they had
 * until re-inspected (containers_resync). 0 or -ENOMEM.
 */
int containers_runtime_set(struct containers *t, bool podman, uid_t owner);

/* containers_free - NULL-safe. */
void containers_free(struct containers *t);

/*
 * containers_update - re-inspect container id (and its interfaces) and replace its entry;
 * a container that is gone or not running is removed. Returns 1 when the entry changed, 0
 * when not, or -errno (the table is unchanged then).
 */
int containers_update(struct containers *t, struct docker_client *dc, const char *id);

/*
 * containers_resync - list every running container and inspect each; the table becomes
 * exactly that (containers that vanished while we were away are dropped). Returns 1 when
 * anything changed, 0 when not, or -errno (table unchanged).
 */
int containers_resync(struct containers *t, struct docker_client *dc);

/*
 * containers_check - the cheap resync: list the running containers, and inspect only those
 * whose listing differs from the one their entry was last inspected with (docker_id_list's
 * sums), or that are new; drop those no longer listed. An unchanged node costs one listing.
 * What a listing does not show (the host side of a veth) is seen by containers_resync
 * alone. Returns 1 when anything changed, 0 when not, or -errno (the table may be partly
 * checked: each entry is right, or as before).
 */
int containers_check(struct containers *t, struct docker_client *dc);

/* Called with one container's endpoint (borrowed for the call). 0 or -errno (stops). */
typedef int (*containers_fn)(void *data, const struct moat_endpoint *e);

/* containers_each - fn for the endpoint of container id (an id or a prefix; NULL: every
 * container). Returns what the last fn returned, or 0. */
int containers_each(const struct containers *t, const char *id, containers_fn fn, void *data);

/*
 * containers_owner - the id of the container whose endpoint container id's traffic is: its
 * own, or its pod's infra container's; NULL when it joins another's namespace outside a pod
 * (or its pod's infra container is not in the table), or is not in the table itself. Owned by t, valid until it changes.
 */
const char *containers_owner(const struct containers *t, const char *id);

/* containers_dump - per container: id, name, netmode, what it shares and its pod, as JSON. */
json_t *containers_dump(const struct containers *t);

/* containers_size - how many containers the table holds. */
size_t containers_size(const struct containers *t);

#endif
