/*
 * etcd's v3 API through its JSON gateway (the grpc-gateway on the client port: POST
 * /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn, /v3/lease/grant,
 * /v3/lease/keepalive, /v3/lease/revoke, /v3/watch), with libcurl and jansson. Nothing here
 * knows Moat.
 *
 * The gateway's JSON, and the traps this file closes for its callers:
 *   - keys and values are base64 (any bytes); we hand out bytes with their length, plus a
 *     NUL after them so that text can be used as a C string (check for inner NULs);
 *   - 64-bit numbers (revisions, lease ids, TTLs, counts) come as strings; we also take JSON
 *     integers, and refuse anything else;
 *   - fields with their default value are left out ("succeeded": false, "TTL": 0, a PUT
 *     event's "type", watch_id 0, an empty "kvs"): absent means the default, never an error;
 *   - an error is {"error", "message", "code"} (a gRPC code) with an HTTP status of 400 or
 *     more, also on the watch stream ({"error": {...}} there).
 *
 * A client is for one thread at a time. Requests block their caller for at most
 * ETCD_CONNECT_TIMEOUT_MS + ETCD_REQUEST_TIMEOUT_MS per endpoint tried: an endpoint that
 * cannot be reached makes the client try the next (the one that answered is kept).
 *
 * Every function returns 0 or a negative errno:
 *   -ECONNREFUSED, -ETIMEDOUT, -EIO   no endpoint answered (transport)
 *   -EACCES        TLS refused (certificate, key) or etcd denied the request (auth)
 *   -EBADMSG       the answer is not the gateway's JSON as documented above
 *   -EFBIG         the answer is larger than ETCD_MAX_RESPONSE
 *   -ESTALE        the revision asked for is compacted (gRPC OutOfRange)
 *   -ENOENT        the lease is not found (expired or revoked)
 *   -EINVAL        etcd refused the request as invalid (gRPC InvalidArgument, and others)
 *   -ENOMEM
 */
#ifndef MOAT_CLUSTER_ETCD_H
#define MOAT_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_CONNECT_TIMEOUT_MS 1000
#define ETCD_REQUEST_TIMEOUT_MS 3000
#define ETCD_MAX_RESPONSE (256u << 20)
/* Operations in one transaction: etcd's default --max-txn-ops. */
#define ETCD_MAX_TXN_OPS 128
#define ETCD_MAX_ENDPOINTS 16

struct etcd;

/* Where and how to reach etcd. Strings are copied by etcd_new. */
struct etcd_opts {
	const char *endpoints;	/* "http://10.0.0.1:2379,https://10.0.0.2:2379" */
	const char *cacert;	/* PEM file of the CA that signed the servers' certificates */
	const char *cert, *key;	/* PEM files of the client certificate and its key */
};

/*
 * etcd_new - a client for o's endpoints (http:// or https://, at most ETCD_MAX_ENDPOINTS).
 * Connects nothing yet. 0 and *out, -EINVAL with why in err (errlen bytes), -ENOMEM.
 */
int etcd_new(const struct etcd_opts *o, struct etcd **out, char *err, size_t errlen);

/* etcd_free - NULL-safe. */
void etcd_free(struct etcd *c);

/* etcd_endpoint - the endpoint the next request goes to first; owned by c. */
const char *etcd_endpoint(const struct etcd *c);

/* etcd_last_error - what etcd or the transport said about the last failed request ("" if
 * nothing); owned by c, overwritten by the next request. */
const char *etcd_last_error(const struct etcd *c);

/* One key-value (bytes; each followed by a NUL not counted in its length). */
struct etcd_kv {
	char *key, *value;
	size_t klen, vlen;
	int64_t create_rev, mod_rev, version, lease;
};

/* Key-values, and the store's revision when they were read. */
struct etcd_kvs {
	struct etcd_kv *v;
	size_t n, cap;
	int64_t revision;
	bool more;		/* a range with a limit left keys out */
	int64_t count;		/* keys in the range, limit or not */
};

/* etcd_kvs_free - what k holds; k is empty and usable after. */
void etcd_kvs_free(struct etcd_kvs *k);

/* etcd_prefix_end - the range_end that makes key a prefix (every key that starts with it):
 * key with its last byte below 0xff incremented and the rest cut. A new string, or NULL. */
char *etcd_prefix_end(const char *key);

/*
 * etcd_range - keys in [key, end) (end NULL: key alone; "\0" as end: every key from key on)
 * at revision rev (0: the newest), at most limit (0: all) in key order. count_only: only
 * out->count and out->revision. Appends to out (zero it first; free with etcd_kvs_free).
 * -ESTALE when rev is compacted.
 */
struct etcd_range_req {
	const char *key, *end;
	int64_t revision, limit;
	bool count_only;
};

int etcd_range(struct etcd *c, const struct etcd_range_req *r, struct etcd_kvs *out);

/* etcd_put - key = value (vlen bytes), bound to lease (0: none). *rev (may be NULL): the
 * revision of the put. -ENOENT when the lease does not exist. */
int etcd_put(struct etcd *c, const char *key, const char *value, size_t vlen, int64_t lease,
	     int64_t *rev);

/* etcd_delete - keys in [key, end) (end NULL: key alone). *deleted (may be NULL): how many. */
int etcd_delete(struct etcd *c, const char *key, const char *end, int64_t *deleted);

enum etcd_op_kind { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_GET };

/* One operation of a transaction; strings borrowed for the call. */
struct etcd_op {
	enum etcd_op_kind kind;
	const char *key;
	const char *end;	/* DELETE and GET: a range end, or NULL */
	const char *value;	/* PUT: the value (a string) */
	int64_t lease;		/* PUT: 0 for none */
};

enum etcd_cmp_target { ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VERSION, ETCD_CMP_VALUE };

/* A comparison, always EQUAL: key's target equals rev (or value, a string, for VALUE).
 * create_revision 0 means the key does not exist. */
struct etcd_cmp {
	const char *key;
	enum etcd_cmp_target target;
	int64_t rev;
	const char *value;
};

struct etcd_txn {
	const struct etcd_cmp *cmp;
	size_t ncmp;
	const struct etcd_op *ok, *fail;	/* when every comparison holds; when not */
	size_t nok, nfail;			/* each at most ETCD_MAX_TXN_OPS */
};

/*
 * etcd_txn - one transaction. *succeeded: whether the comparisons held; the key-values of
 * the GET operations of the branch taken are appended to got (may be NULL), with the
 * transaction's revision in got->revision.
 */
int etcd_txn(struct etcd *c, const struct etcd_txn *t, bool *succeeded, struct etcd_kvs *got);

/* etcd_lease_grant - a lease of ttl seconds: *id, and the TTL etcd granted in *granted. */
int etcd_lease_grant(struct etcd *c, int64_t ttl, int64_t *id, int64_t *granted);

/* etcd_lease_keepalive - one keepalive of lease id: *ttl the TTL it has again. -ENOENT when
 * the lease is gone (etcd answers a TTL of 0, left out). */
int etcd_lease_keepalive(struct etcd *c, int64_t id, int64_t *ttl);

/* etcd_lease_revoke - revoke lease id, deleting every key bound to it. -ENOENT if gone. */
int etcd_lease_revoke(struct etcd *c, int64_t id);

/* ---- the watch stream: the caller runs the transfer (etcd_watch_setup), this parses ---- */

enum etcd_event_kind { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_kind kind;
	struct etcd_kv kv;	/* a DELETE's has the key and mod_rev (the deletion's) only */
};

/* One message of a watch stream. */
struct etcd_watch_resp {
	int64_t revision;		/* the header's revision (0 when left out) */
	bool created, canceled;
	int64_t compact_revision;	/* canceled because the start revision is compacted:
					 * re-list, then watch from the list's revision + 1 */
	char *error;			/* the stream's error ({"error": ...}), or NULL */
	struct etcd_event *v;
	size_t n;
};

/*
 * etcd_watch_parse - one line of a watch stream (len bytes, not NUL-terminated). Pure, so it
 * can be fuzzed. 0 and *out (free with etcd_watch_resp_free), -EBADMSG, -ENOMEM.
 */
int etcd_watch_parse(const char *line, size_t len, struct etcd_watch_resp *out);

/* etcd_watch_resp_free - what r holds. */
void etcd_watch_resp_free(struct etcd_watch_resp *r);

/*
 * etcd_watch_body - the request that starts a watch of [key, end) from revision rev (0: from
 * now), with progress notifications. A new string, or NULL.
 */
char *etcd_watch_body(const char *key, const char *end, int64_t rev);

/*
 * etcd_stream_setup - prepare curl (a CURL *, reset first) to POST body to path on c's
 * current endpoint with c's TLS settings, without a total timeout (a stream), handing what
 * arrives to write(p, size, n, arg). The caller runs it (curl multi) and calls etcd_rotate
 * when it could not connect. 0 or -ENOMEM.
 */
int etcd_stream_setup(struct etcd *c, void *curl, const char *path, const char *body,
		      size_t (*write)(char *p, size_t size, size_t n, void *arg), void *arg);

/* etcd_rotate - the next request or stream goes to the next endpoint first. */
void etcd_rotate(struct etcd *c);

/*
 * etcd_range_parse - a range answer (len bytes) into out, as etcd_range. Pure, for fuzzing.
 * 0, -EBADMSG, -ENOMEM.
 */
int etcd_range_parse(const char *body, size_t len, struct etcd_kvs *out);

#endif
