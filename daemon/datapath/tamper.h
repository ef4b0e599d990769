/* Tamper watch: foreign changes to the moat tables, from the nftables notifications. */
#ifndef MOAT_DATAPATH_TAMPER_H
#define MOAT_DATAPATH_TAMPER_H

#include <stdint.h>

#include "batch.h"
#include "ruleset.h"

/*
 * tamper_read - drain watch (an nfsock subscribed to NFNLGRP_NFTABLES) without blocking and
 * report changes to the moat tables sent by any other netlink port than ours. 0 and *out
 * (zeroed first), or -errno.
 */
int tamper_read(struct nfsock *watch, uint32_t ours, struct ruleset_tamper *out);

#endif
