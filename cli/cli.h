/* The moat CLI's subcommands: each is <group>_main(argc, argv), argv[0] being the group name. */
#ifndef MOAT_CLI_H
#define MOAT_CLI_H

#include <jansson.h>

int policy_main(int argc, char **argv);
int endpoints_main(int argc, char **argv);
int status_main(int argc, char **argv);
int mode_main(int argc, char **argv);

/*
 * cli_ctl_call - send request to moatd's control socket (path from --socket, $MOAT_SOCKET or
 * the default) and return its reply in *reply (caller decrefs). Returns 0, or a negative errno
 * when the daemon could not be reached (-ENOENT, -ECONNREFUSED, ...) or answered garbage
 * (-EPROTO). A reply with "ok": false still returns 0.
 */
int cli_ctl_call(json_t *request, json_t **reply);

/* cli_ctl_socket - the socket path the CLI uses. */
const char *cli_ctl_socket(void);

/* cli_ctl_set_socket - override the path (the global --socket flag). path must outlive calls. */
void cli_ctl_set_socket(const char *path);

/* cli_ctl_print_error - print a failed reply's error and diags to stderr. */
void cli_ctl_print_error(json_t *reply);

#endif
