/* The moat CLI's subcommands: each is <group>_main(argc, argv), argv[0] being the group name. */
#ifndef MOAT_CLI_H
#define MOAT_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

int policy_main(int argc, char **argv);
int endpoints_main(int argc, char **argv);
int status_main(int argc, char **argv);
int mode_main(int argc, char **argv);
int flows_main(int argc, char **argv);
int alerts_main(int argc, char **argv);
int learn_main(int argc, char **argv);
int graph_main(int argc, char **argv);
int nodes_main(int argc, char **argv);
int push_main(int argc, char **argv);

/*
 * cli_ctl_call - send request to moatd's control socket (path from --socket, $MOAT_SOCKET or
 * the default) and return its reply in *reply (caller decrefs). Returns 0, or a negative errno
 * when the daemon could not be reached (-ENOENT, -ECONNREFUSED, ...) or answered garbage
 * (-EPROTO). A reply with "ok": false still returns 0.
 */
int cli_ctl_call(json_t *request, json_t **reply);

/*
 * cli_ctl_stream - send request and hand every object moatd answers to fn (the reply first,
 * then what a follow streams; msg is borrowed) until moatd closes the connection or fn
 * returns nonzero. Returns 0, fn's nonzero value, or a negative errno (-EPROTO: garbage).
 */
int cli_ctl_stream(json_t *request, int (*fn)(json_t *msg, void *data), void *data);

/* cli_escape - untrusted text (labels, names) into buf with quotes, backslashes and control
 * characters escaped, so it cannot forge lines; cut with "..." to fit len (>= 4). Returns buf. */
const char *cli_escape(const char *s, char *buf, size_t len);

/* cli_time_local - unix ms as local "MM-DD HH:MM:SS" into buf (32). */
const char *cli_time_local(int64_t ms, char *buf);

/* cli_ctl_socket - the socket path the CLI uses. */
const char *cli_ctl_socket(void);

/* cli_ctl_set_socket - override the path (the global --socket flag). path must outlive calls. */
void cli_ctl_set_socket(const char *path);

/* cli_ctl_print_error - print a failed reply's error and diags to stderr. */
void cli_ctl_print_error(json_t *reply);

/*
 * cli_ctl_request - cli_ctl_call for a command: takes request (NULL: out of memory) and
 * returns an "ok" reply (caller decrefs), or NULL after telling stderr why (moatd not
 * reached, or its error and diags).
 */
json_t *cli_ctl_request(json_t *request);

/* cli_ctl_request_hint - the same, adding hint (what to do instead) when moatd is not reached. */
json_t *cli_ctl_request_hint(json_t *request, const char *hint);

#endif
