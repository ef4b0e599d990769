/*
 * The web UI's requests, without HTTP: which control command an /api/ URL is and how its
 * query becomes that command's request, the static files that may be served, the token,
 * and the Host header. Pure (no sockets, no MHD), so unit tests and fuzzers drive it.
 */
#ifndef MOAT_WEB_REQUEST_H
#define MOAT_WEB_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define WEB_PARAM_MAX 256	/* bytes of one query value */
#define WEB_FLOWS_MAX 1000	/* flows in one answer (limit=) */
#define WEB_FLOWS_DEFAULT 200
#define WEB_TOKEN_MIN 16
#define WEB_TOKEN_MAX 256
#define WEB_FILE_NAME_MAX 64
#define WEB_FILE_SIZE_MAX (4u << 20)

/* Returns the value of query parameter key, or NULL when absent. */
typedef const char *(*web_param_fn)(void *ctx, const char *key);

/*
 * web_api_request - the control request for GET /api/NAME (name without "/api/": "status",
 * "endpoints", "graph", "flows", "explain", "events") with its query read through param:
 *   status, endpoints        {"cmd": NAME}
 *   graph                    {"cmd": "graph", "format": "json"}
 *   flows, events            {"cmd": "flows", "from", "to", "port", "verdict",
 *                            "since_ms" (from since=5m), "limit" (default WEB_FLOWS_DEFAULT,
 *                            at most WEB_FLOWS_MAX)}; events adds "follow": true
 *   explain                  {"cmd": "policy.explain", "from", "to", "port"}
 * Only these parameters are read; others are ignored. Returns 0 and *out (the caller
 * decrefs), -ENOENT for another name, -EINVAL with words in err (a value longer than
 * WEB_PARAM_MAX, a bad since or limit), -ENOMEM.
 */
int web_api_request(const char *name, web_param_fn param, void *ctx, json_t **out, char *err,
		    size_t errlen);

/*
 * web_file_type - the Content-Type of a file the UI may serve, or NULL when name may not
 * be served: names are [a-z0-9_-]{1,} "." one of html, js, css, svg, png, ico, txt, at most
 * WEB_FILE_NAME_MAX bytes; no slash, no dot first, nothing else. This is what keeps every
 * request inside --web-root: no name that passes can leave the directory.
 */
const char *web_file_type(const char *name);

/*
 * web_token_parse - the token in a file's first len bytes (buf need not end in NUL): one
 * line of WEB_TOKEN_MIN to WEB_TOKEN_MAX characters of [A-Za-z0-9._~+/=-] (RFC 6750's
 * b64token, which is also safe in a cookie), trailing whitespace ignored. Copies it into
 * out (WEB_TOKEN_MAX + 1 bytes). 0, or -EINVAL with words in err.
 */
int web_token_parse(const char *buf, size_t len, char *out, char *err, size_t errlen);

/*
 * web_token_equal - given (glen bytes, attacker's) equals token (tlen bytes, secret), in time
 * that depends on tlen only, never on where they differ.
 */
bool web_token_equal(const char *given, size_t glen, const char *token, size_t tlen);

/*
 * web_bearer - the token of an "Authorization: Bearer TOKEN" header value into *tok and
 * *len (pointing into value); false when value is not of that form.
 */
bool web_bearer(const char *value, const char **tok, size_t *len);

/*
 * web_host_local - whether a Host header names the server by address ("127.0.0.1:9641",
 * "[::1]:9641", "10.1.2.3") or as "localhost", with an optional port. Without a token the
 * UI answers only such requests: a page of another site that rebinds its own name to
 * 127.0.0.1 sends that name, and gets nothing (DNS rebinding).
 */
bool web_host_local(const char *host);

/*
 * web_sse_event - one server-sent event "event: NAME\ndata: JSON\n\n" of msg (compact JSON
 * has no newline) into *out (the caller frees) and *len. 0 or -ENOMEM.
 */
int web_sse_event(const char *name, json_t *msg, char **out, size_t *len);

#endif
