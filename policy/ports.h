/* Ports and protocols as NetworkPolicy and endpoint files write them. */
#ifndef MOAT_POLICY_PORTS_H
#define MOAT_POLICY_PORTS_H

#include <stdint.h>

#include "moat/policy.h"
#include "yaml.h"

/* port_name_problem - NULL when name is a valid IANA service name, else what is wrong. */
const char *port_name_problem(const char *name);

/* proto_lookup - "TCP", "UDP", "SCTP" (exact case unless nocase) to IPPROTO_*, or 0. */
uint8_t proto_lookup(const char *s, bool nocase);

/* port_parse - one entry of a rule's ports list into *out (strings in ck->arena).
 * Returns 0 (errors recorded; *out then unspecified) or -ENOMEM. */
int port_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out);

/*
 * port_protocol_parse - one item of a ClusterNetworkPolicy rule's protocols (v1alpha2):
 * exactly one of tcp/udp/sctp: {destinationPort: {number: N} | {range: {start, end}}}, or
 * destinationNamedPort: NAME (proto 0: the named port's own protocol). Into *out (strings in
 * ck->arena). Returns 0 (errors recorded; *out then unspecified) or -ENOMEM.
 */
int port_protocol_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out);

/*
 * port_v1alpha1_parse - one item of an Admin/BaselineAdminNetworkPolicy rule's ports:
 * exactly one of portNumber: {protocol, port}, portRange: {protocol, start, end} (protocol
 * TCP by default) or namedPort: NAME (proto 0). As port_protocol_parse otherwise.
 */
int port_v1alpha1_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out);

/* port_spec_parse - "80", "80/tcp", "53/UDP" (an endpoint's named port); 0 or -EINVAL. */
int port_spec_parse(const char *s, uint16_t *port, uint8_t *proto);

#endif
