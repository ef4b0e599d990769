/*
 * The control socket protocol between moatd and moat.
 *
 * A client connects to the unix socket and sends one JSON object on one line:
 *   {"cmd": "status"}            {"cmd": "endpoints"}        {"cmd": "policy.reload"}
 *   {"cmd": "mode", "mode": "monitor"}   {"cmd": "plan"}   (the live policy set and endpoints)
 * The daemon answers with one JSON object on one line, {"ok": true, ...} or
 * {"ok": false, "error": "words", "diags": ["file:line:col: ..."]}, and closes.
 * Streams (follow) answer with one object per line until the client closes.
 * {"cmd": "policy.matrix", "ports": ["80/tcp", ...]} answers {"ok": true, "ports": [...],
 * "endpoints": ["ns/name", ...], "rows": N}, then N lines {"port": P, "from": I,
 * "verdicts": "adv..."} (indexes into ports and endpoints; one character per destination in
 * endpoints order: a allow, d deny, v violation), then {"end": true, "rows": N}, and closes;
 * a matrix without its end line is incomplete.
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
/* The largest one-line reply; a larger one is answered with an error that names this limit.
 * Answers that can grow without bound (the matrix) come in parts, one line each. */
#define MOAT_CTL_MAX_REPLY (64u << 20)
#define MOAT_CTL_TIMEOUT_MS 2000

#endif
