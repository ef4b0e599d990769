/*
 * Bridged traffic through the IP hooks. Containers on one bridge talk through it without
 * routing: their packets reach the inet table's forward chain (where policies are decided)
 * only when br_netfilter is loaded and net.bridge.bridge-nf-call-iptables and -ip6tables are
 * 1 in moatd's network namespace (the kernel keeps them per namespace). Otherwise every
 * policy between two containers of one bridge is silently void; so moatd makes sure of both
 * before it enforces anything, and refuses to run when it cannot.
 */
#ifndef MOAT_BRNF_H
#define MOAT_BRNF_H

#include <stddef.h>

/*
 * brnf_ensure - load br_netfilter (modprobe) when its sysctls are missing, then set each of
 * the two to 1 when it is not, logging what it changed. 0 when both read 1 at the end, or
 * -errno with why (for people, NUL-terminated, at most whylen): the module would not load
 * (no CAP_SYS_MODULE, a container without it), or a sysctl cannot be written (/proc/sys
 * read-only, as in a container or under systemd's ProtectKernelTunables).
 */
int brnf_ensure(char *why, size_t whylen);

#endif
