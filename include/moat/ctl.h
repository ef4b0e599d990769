/*
 * The control socket protocol between moatd and moat.
 *
 * A client connects to the unix socket and sends one JSON object on one line with a "cmd"
 * string; the daemon answers with one JSON object on one line and closes, or (follow) keeps
 * sending one object per line until the client closes. Every reply is {"ok": true, ...} or
 * {"ok": false, "error": "words"[, "diags": ["file:line:col: error: ..."]]}.
 * Requests over MOAT_CTL_MAX_REQUEST bytes, or not complete within MOAT_CTL_TIMEOUT_MS, are
 * answered with an error and closed. A follower that lets more than 4 MiB pile up is
 * disconnected; a one-line reply over MOAT_CTL_MAX_REPLY is an error naming the limit.
 * Commands marked [changes] are refused to peers that are neither root nor members of the
 * group MOAT_CTL_GROUP (SO_PEERCRED and SO_PEERGROUPS: the credentials the peer had when it
 * connected). daemon/commands.c is the one table of commands.
 *
 * status
 *   -> {mode: "enforce"|"monitor", runtime, runtime_up, runtime_name?: "Docker Engine"|
 *       "Podman Engine"|.., runtime_version?: the engine's (both once it answered /version),
 *       policy_dir, policies, endpoints,
 *       containers, identities, elements: {addresses, nets, allow_in, allow_out, admin,
 *       baseline},
 *       managed_subnets, applies, apply_errors,
 *       last_apply: {full, msgs, added, deleted, ms, us}, changes: {delta, whole},
 *       repairs, revoked, event_to_enforced: {count, p50_us, p99_us, max_us}, uptime_s,
 *       dns: {replies, learnt, addresses, remembered, untrusted, malformed, add_errors,
 *             p50_us, p99_us},
 *       sweeps: {none, later, now},
 *       not_enforced: [{name: "ns/name", reason}] (endpoints whose own traffic never
 *                crosses this node's hooks: macvlan, ipvlan, overlay, none),
 *       capture: {group, records, ignored, malformed, read_errors, drops, buffer_bytes}
 *                (or {group, error}),
 *       drop_log: {rate: dropped packets logged a second per source (0: all), unlogged:
 *                those over it, counted in the kernel, not logged (null before an apply)},
 *       host_access: {mode: "allow"|"policy", published: ports the node publishes for
 *                endpoints, note: what the mode means (and the userland proxy under policy)},
 *       flows: {count, cap, evicted, bytes, names},
 *       learning: LEARNING (when the state directory is usable),
 *       alerts: {raised, suppressed, write_errors, file, rate, unexpected} (likewise),
 *       policy_source: "directory"|"etcd",
 *       cluster: CLUSTER (with --etcd)}
 *      CLUSTER = {node, host, etcd, cacert?, cert?, key? (paths), prefix, synced,
 *                 revision (the last seen),
 *                 policy_revision (in force: the policies key's mod_revision, 0 for none),
 *                 policy_revision_etcd, policy_refused, nodes, remote_endpoints,
 *                 publish: {up, conflict, lease, ttl, puts, deletes, errors, pending, error},
 *                 watch: {up, snapshots, compacted, reconnects, events},
 *                 refused: {count, last}}
 * endpoints
 *   -> {endpoints: [{name: "ns/name", namespace, endpoint, labels: {k: v}, ips: [..],
 *       ifaces: [..], host_network, isolated: {ingress, egress},
 *       mode: "enforce"|"monitor"|"open"|"not-enforced", node?: another node's name,
 *       unenforced?: why Moat cannot enforce it}], containers: [{id, name,
 *       netmode: "bridge"|"host"|"container"|"none"|"user", shares?, pod?}]}
 * nodes
 *   -> {self: this node's name, nodes: [{name, self, host, subnets: [CIDR], endpoints,
 *       alive, lease: "held"|"expired", ttl, ttl_left (seconds; another node's is reckoned
 *       from its last heartbeat), heard_ms_ago (-1: never), policy_revision}]}
 *      | {ok: false, error} without --etcd
 * endpoints.export
 *   -> {export: {namespaces: {ns: {k: v}}, endpoints: [..]}}  (an endpoints file, as JSON)
 * policy.matrix {ports: ["80/tcp", ..] (1 to 64)}
 *   -> {ports: [..], endpoints: ["ns/name", ..], rows: N}, then N lines {port: P, from: I,
 *      verdicts: "adv..."} (indexes into ports and endpoints; one character per destination
 *      in endpoints order: a allow, d deny, v violation), then {end: true, rows: N}; a
 *      matrix without its end line is incomplete (streamed as the client reads: its size
 *      bounds neither moatd's memory nor a reply)
 * policy.explain {from: "ns/name"|ADDR, to: ..., port: "80/tcp"}
 *   -> {explain: {from, to, port, verdict: "allow"|"deny"|"violation", loopback,
 *       egress: SIDE, ingress: SIDE}}
 *      SIDE = {isolated, mode?, policies: ["ns/name"], allowed,
 *              rule: {policy, direction, index, file, line, col} | null}
 * policy.reload [changes]
 *   -> {policies: N} | {ok: false, error, diags}   (all or nothing: the running policy stays)
 * mode {mode: "enforce"|"monitor"} [changes]
 *   -> {mode}
 * flows {from?, to?: SELECTOR|ADDR|CIDR, port?: "80"|"80/tcp"|"icmp",
 *        verdict?: "allowed"|"denied"|"violation", since_ms?: N, limit?: N (<= 5000),
 *        follow?: bool}
 *   -> {flows: [FLOW], matched, table: {..as in status}, capture: {..}}, oldest first;
 *      with follow, then one FLOW per line as flows come or change
 *      FLOW = {first, last (ISO 8601), first_ms, last_ms, from: PEER, to: PEER,
 *              proto: "tcp"|"udp"|.., port, verdict, policy: "ns/name, .." | null,
 *              reason: the NFLOG prefix's kind, count}
 *      PEER = {name?: "ns/name", addr, labels?, group?}
 * alerts {limit?: N, follow?: bool}
 *   -> {alerts: [ALERT], stats: {..as in status}, alerting?: bool}; with follow, then one
 *      ALERT per line. ALERT = FLOW + {kind: "unexpected-flow", why} or {kind: "suppressed",
 *      count, ...}
 * graph {format?: "dot"|"json"}
 *   -> {dot: "digraph ..."} or {graph: {nodes: [..], edges: [..]}} (the service graph of the
 *      flows seen; svcgraph.h has the JSON's shape)
 * learn.start {selector?, duration_ms?, reset?: bool} [changes]
 *   -> {learning: LEARNING}
 * learn.stop [changes]
 *   -> {learning: LEARNING} | {ok: false, error: "not learning"}
 * learn.status {flows?: bool}
 *   -> {learning: LEARNING (+ baseline_flows: [..] with flows)}
 *      LEARNING = {state: "none"|"learning"|"stopped", learning, selector, started, until,
 *                  stopped, flows, records, learned, saved, saves, save_errors, baseline,
 *                  alerting: "on"|"off"}
 * learn.suggest
 *   -> {yaml: "..."}   (NetworkPolicy documents for exactly the learned baseline)
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
