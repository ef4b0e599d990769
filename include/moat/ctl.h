/*
 * The control socket protocol between moatd and moat.
 *
 * A client connects to the unix socket and sends one JSON object on one line:
 *   {"cmd": "status"}            {"cmd": "endpoints"}        {"cmd": "policy.reload"}
 *   {"cmd": "mode", "mode": "monitor"}   {"cmd": "plan"}   (the live policy set and endpoints)
 * The daemon answers with one JSON object on one line, {"ok": true, ...} or
 * {"ok": false, "error": "words", "diags": ["file:line:col: ..."]}, and closes.
 * Streams (follow) answer with one object per line until the client closes.
 * Requests over MOAT_CTL_MAX_REQUEST bytes, or not complete within MOAT_CTL_TIMEOUT_MS, are
 * answered with an error and closed. Commands that change state are refused to peers that
 * are neither root nor members of the group MOAT_CTL_GROUP (checked with SO_PEERCRED and
 * SO_PEERGROUPS: the credentials the peer had when it connected).
 */
#ifndef MOAT_CTL_H
#define MOAT_CTL_H

#define MOAT_CTL_DEFAULT_SOCKET "/run/moat/moat.sock"
#define MOAT_CTL_SOCKET_ENV "MOAT_SOCKET"
#define MOAT_CTL_GROUP "moat"
#define MOAT_CTL_MAX_REQUEST (64 * 1024)
#define MOAT_CTL_TIMEOUT_MS 2000

#endif
