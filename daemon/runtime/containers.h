/*
 * The container table: what moatd knows of each container (inspect + its interfaces), kept
 * by container id. A container with a network namespace of its own is one endpoint; one that
 * joins another's (--network container:X) adds nothing (the owner's labels decide); a
 * host-network one is listed with host_network set (never segmented).
 */
#ifndef MOAT_RUNTIME_CONTAINERS_H
#define MOAT_RUNTIME_CONTAINERS_H

#include <jansson.h>
#include <stdbool.h>

#include "docker.h"
#include "moat/endpoint.h"

struct containers;

/*
 * containers_new - empty. kubernetes: trust io.kubernetes.pod.namespace labels for a
 * container's namespace; otherwise every container is in "default" and that label is just a
 * label (on a plain Docker node anyone who starts a container can write it). 0 or -ENOMEM.
 */
int containers_new(bool kubernetes, struct containers **out);

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

/* containers_dump - per container: id, name, netmode and what it shares, as JSON. */
json_t *containers_dump(const struct containers *t);

/* containers_size - how many containers the table holds. */
size_t containers_size(const struct containers *t);

#endif
