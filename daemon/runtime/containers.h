/*
 * The endpoint table: what moatd knows of each container (inspect + its interfaces), kept by
 * container id, and the endpoint set built from it and from the optional endpoints file.
 */
#ifndef MOAT_DAEMON_ENDPOINT_H
#define MOAT_DAEMON_ENDPOINT_H

#include <jansson.h>
#include <stdbool.h>

#include "docker.h"
#include "moat/endpoint.h"

struct endpoint_table;

/*
 * endpoint_table_new - empty. kubernetes: trust io.kubernetes.pod.namespace labels for a
 * container's namespace; otherwise every container is in "default" and that label is just a
 * label (on a plain Docker node anyone who starts a container can write it). 0 or -ENOMEM.
 */
int endpoint_table_new(bool kubernetes, struct endpoint_table **out);

/* endpoint_table_free - NULL-safe. */
void endpoint_table_free(struct endpoint_table *t);

/*
 * endpoint_table_update - re-inspect container id (and its interfaces) and replace its entry;
 * a container that is gone or not running is removed. Returns 1 when the entry changed, 0
 * when not, or -errno (the table is unchanged then).
 */
int endpoint_table_update(struct endpoint_table *t, struct docker_client *dc, const char *id);

/*
 * endpoint_table_resync - list every running container and inspect each; the table becomes
 * exactly that (containers that vanished while we were away are dropped). Returns 1 when
 * anything changed, 0 when not, or -errno (table unchanged).
 */
int endpoint_table_resync(struct endpoint_table *t, struct docker_client *dc);

/*
 * endpoint_table_build - a new endpoint set: one endpoint per container with its own network
 * namespace (containers joining another's namespace add nothing: the owner's labels decide),
 * host-network containers listed with host_network set, then every endpoint of file (when
 * not NULL) whose namespace/name is not taken. The caller frees *out.
 */
int endpoint_table_build(const struct endpoint_table *t, const struct moat_endpoint_set *file,
			 struct moat_endpoint_set **out);

/* endpoint_table_dump - per container: id, name, netmode and what it shares, as JSON. */
json_t *endpoint_table_dump(const struct endpoint_table *t);

/* endpoint_table_size - how many containers the table holds. */
size_t endpoint_table_size(const struct endpoint_table *t);

#endif
