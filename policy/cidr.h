/* CIDR prefixes with the reason a string is not one, for messages. */
#ifndef MOAT_POLICY_CIDR_H
#define MOAT_POLICY_CIDR_H

#include "moat/policy.h"
#include "yaml.h"

enum cidr_err { CIDR_OK, CIDR_NO_PREFIX, CIDR_BAD_ADDR, CIDR_BAD_PLEN, CIDR_HOST_BITS };

/*
 * cidr_parse - "10.0.0.0/8" or "fd00::/8" into *out. With CIDR_HOST_BITS, *out is still
 * set, to the network with the host bits cleared, so the caller can suggest it.
 */
enum cidr_err cidr_parse(const char *s, struct moat_cidr *out);

/* cidr_err_str - words for an operator, e.g. "has host bits set". */
const char *cidr_err_str(enum cidr_err e);

/*
 * cidr_ycheck - s (the string of node n) as a CIDR into *out; false with the error recorded
 * at n (host bits set: with the network the writer probably meant).
 */
bool cidr_ycheck(struct ycheck *ck, const struct ynode *n, const char *s, struct moat_cidr *out);

#endif
