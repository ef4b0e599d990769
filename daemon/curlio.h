/*
 * What the daemon's two HTTP clients (the runtime's Docker Engine API, etcd's JSON gateway)
 * share about libcurl: the process-wide init, transport errors as errno, and a bounded
 * response body.
 */
#ifndef MOAT_DAEMON_CURLIO_H
#define MOAT_DAEMON_CURLIO_H

#include <stdbool.h>
#include <stddef.h>

/*
 * curlio_init - curl_global_init, once per process (pthread_once): call it before any
 * thread uses curl. 0 or -ENOMEM.
 */
int curlio_init(void);

/*
 * curlio_errno - a CURLcode as a negative errno: 0 for CURLE_OK, -ECONNREFUSED (could not
 * connect or resolve), -ETIMEDOUT, -ENOMEM, -ECANCELED (a callback stopped it), -EACCES
 * (TLS: a certificate or key refused or unreadable), -EIO for the rest.
 */
int curlio_errno(int curl_code);

/* A response body that grows up to max bytes (then too_big is set and the transfer stops);
 * buf is NUL-terminated once anything arrived. Zero-initialise and set max; free buf. */
struct curlio_body {
	char *buf;
	size_t len, cap, max;
	bool too_big;
};

/* curlio_body_write - a CURLOPT_WRITEFUNCTION for a struct curlio_body (CURLOPT_WRITEDATA). */
size_t curlio_body_write(char *p, size_t size, size_t n, void *body);

#endif
