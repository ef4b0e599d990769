/*
 * The name of an endpoint's baseline group, for people and graphs: "namespace/k=v,k2=v2" over
 * the key labels the baseline keys it by (include/moat/baseline.h), so replicas and restarts
 * of one service are one name. An endpoint without key labels is named by itself
 * ("namespace/name").
 */
#ifndef MOAT_BASELINE_GROUP_H
#define MOAT_BASELINE_GROUP_H

#include <stddef.h>

#include "moat/endpoint.h"

/*
 * moat_baseline_group_name - the group name of e into buf (always NUL-terminated; cut short
 * when len is too small). Returns the length the whole name needs, like snprintf.
 */
size_t moat_baseline_group_name(const struct moat_endpoint *e, char *buf, size_t len);

#endif
