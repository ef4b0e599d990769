/*
 * etcd's v3 JSON gateway (etcd.h): requests as JSON built with jansson, POSTed with libcurl,
 * answers parsed back into plain structs. Only this file knows the gateway's JSON.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd.h"
#include "curlio.h"

struct etcd {
	char *urls[ETCD_MAX_ENDPOINTS];
	size_t nurls, cur;
	char *cacert, *cert, *key;
	CURL *curl;		/* kept between requests: one connection, reused */
	char err[256];
};

/* ---- base64 (RFC 4648, with padding): keys and values on the wire ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *p, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	const unsigned char *s = (const unsigned char *)p;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);

		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

/* Decodes s (padded, as Go's encoding/base64 writes it) into a new buffer of *n bytes plus a
 * NUL. -EBADMSG for anything else. */
static int b64_decode(const char *s, char **out, size_t *n)
{
	size_t len = strlen(s), k = 0;
	char *buf;

	if (len % 4)
		return -EBADMSG;
	if (!(buf = malloc(len / 4 * 3 + 1)))
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int a = b64_value(s[i]), b = b64_value(s[i + 1]), c = b64_value(s[i + 2]),
		    d = b64_value(s[i + 3]);
		bool last = i + 4 == len;

		if (a < 0 || b < 0 || (c < 0 && !(last && s[i + 2] == '=' && s[i + 3] == '=')) ||
		    (d < 0 && !(last && s[i + 3] == '='))) {
			free(buf);
			return -EBADMSG;
		}
		buf[k++] = (char)(a << 2 | b >> 4);
		if (c >= 0)
			buf[k++] = (char)((b & 15) << 4 | c >> 2);
		if (c >= 0 && d >= 0)
			buf[k++] = (char)((c & 3) << 6 | d);
	}
	buf[k] = '\0';
	*out = buf;
	*n = k;
	return 0;
}

/* ---- the gateway's JSON ---- */

/* A 64-bit number: a string of digits (how the gateway writes them), or a JSON integer;
 * absent or null is 0. -EBADMSG for anything else. */
static int jnum(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	char *end;
	long long n;

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!(s = json_string_value(v)) || !*s || strlen(s) > 20)
		return -EBADMSG;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return -EBADMSG;
	*out = n;
	return 0;
}

/* A bool that the gateway leaves out when false. */
static int jbool(json_t *o, const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);

	*out = json_is_true(v);
	return !v || json_is_boolean(v) || json_is_null(v) ? 0 : -EBADMSG;
}

/* A base64 member into bytes; absent is empty. */
static int jbytes(json_t *o, const char *key, char **out, size_t *n)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		v = json_string("");
	else if (!json_is_string(v))
		return -EBADMSG;
	else
		json_incref(v);
	int ret = b64_decode(json_string_value(v), out, n);

	json_decref(v);
	return ret;
}

static void kv_clear(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	*kv = (struct etcd_kv){ 0 };
}

static int kv_parse(json_t *o, struct etcd_kv *kv)
{
	int ret = json_is_object(o) ? 0 : -EBADMSG;

	*kv = (struct etcd_kv){ 0 };
	if (!ret)
		ret = jbytes(o, "key", &kv->key, &kv->klen);
	if (!ret)
		ret = jbytes(o, "value", &kv->value, &kv->vlen);
	if (!ret)
		ret = jnum(o, "create_revision", &kv->create_rev);
	if (!ret)
		ret = jnum(o, "mod_revision", &kv->mod_rev);
	if (!ret)
		ret = jnum(o, "version", &kv->version);
	if (!ret)
		ret = jnum(o, "lease", &kv->lease);
	if (!ret && !kv->klen)
		ret = -EBADMSG;
	if (ret)
		kv_clear(kv);
	return ret;
}

void etcd_kvs_free(struct etcd_kvs *k)
{
	for (size_t i = 0; i < k->n; i++)
		kv_clear(&k->v[i]);
	free(k->v);
	*k = (struct etcd_kvs){ 0 };
}

static int kvs_grow(struct etcd_kvs *k, size_t more)
{
	size_t cap = k->cap ? k->cap : 16;
	struct etcd_kv *v;

	if (k->n + more <= k->cap)
		return 0;
	while (cap < k->n + more)
		cap *= 2;
	if (!(v = realloc(k->v, cap * sizeof(*v))))
		return -ENOMEM;
	k->v = v, k->cap = cap;
	return 0;
}

/* The "kvs" of a range answer (r) appended to out, with its count and more. */
static int range_take(json_t *r, struct etcd_kvs *out)
{
	json_t *kvs = json_object_get(r, "kvs"), *it;
	size_t i;
	int ret = 0;

	if (kvs && !json_is_array(kvs) && !json_is_null(kvs))
		return -EBADMSG;
	if (jnum(r, "count", &out->count) || jbool(r, "more", &out->more))
		return -EBADMSG;
	if (kvs_grow(out, json_array_size(kvs)))
		return -ENOMEM;
	json_array_foreach(kvs, i, it) {
		if ((ret = kv_parse(it, &out->v[out->n])))
			return ret;
		out->n++;
	}
	return 0;
}

static int header_revision(json_t *j, int64_t *rev)
{
	json_t *h = json_object_get(j, "header");

	if (h && !json_is_object(h))
		return -EBADMSG;
	return jnum(h, "revision", rev);
}

int etcd_range_parse(const char *body, size_t len, struct etcd_kvs *out)
{
	json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
	int ret = json_is_object(j) ? 0 : -EBADMSG;

	if (!ret)
		ret = header_revision(j, &out->revision);
	if (!ret)
		ret = range_take(j, out);
	json_decref(j);
	return ret;
}

/* gRPC status codes as errno. */
static int grpc_errno(int64_t code)
{
	switch (code) {
	case 3:		/* InvalidArgument */
		return -EINVAL;
	case 4:		/* DeadlineExceeded */
		return -ETIMEDOUT;
	case 5:		/* NotFound: "requested lease not found" */
		return -ENOENT;
	case 7:		/* PermissionDenied */
	case 16:	/* Unauthenticated */
		return -EACCES;
	case 11:	/* OutOfRange: "required revision has been compacted" */
		return -ESTALE;
	default:
		return -EIO;
	}
}

/* ---- the client ---- */

static int urls_split(struct etcd *c, const char *list, char *err, size_t errlen)
{
	char *copy = strdup(list ? list : ""), *save = NULL, *tok;
	int ret = copy ? 0 : -ENOMEM;

	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);

		while (n && tok[n - 1] == '/')
			tok[--n] = '\0';
		if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8))
			ret = -EINVAL, snprintf(err, errlen, "%s: expected http://HOST:PORT or "
						"https://HOST:PORT", tok);
		else if (c->nurls == ETCD_MAX_ENDPOINTS)
			ret = -EINVAL, snprintf(err, errlen, "more than %d endpoints",
						ETCD_MAX_ENDPOINTS);
		else if (!(c->urls[c->nurls++] = strdup(tok)))
			ret = -ENOMEM;
	}
	if (!ret && !c->nurls)
		ret = -EINVAL, snprintf(err, errlen, "no endpoint");
	free(copy);
	return ret;
}

static int opt_dup(const char *s, char **out)
{
	*out = NULL;
	if (!s || !*s)
		return 0;
	return (*out = strdup(s)) ? 0 : -ENOMEM;
}

int etcd_new(const struct etcd_opts *o, struct etcd **out, char *err, size_t errlen)
{
	struct etcd *c;
	int ret = curlio_init();

	if (ret)
		return ret;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	ret = urls_split(c, o->endpoints, err, errlen);
	if (!ret)
		ret = opt_dup(o->cacert, &c->cacert);
	if (!ret)
		ret = opt_dup(o->cert, &c->cert);
	if (!ret)
		ret = opt_dup(o->key, &c->key);
	if (!ret && !(c->curl = curl_easy_init()))
		ret = -ENOMEM;
	if (ret) {
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		etcd_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void etcd_free(struct etcd *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nurls; i++)
		free(c->urls[i]);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c);
}

const char *etcd_endpoint(const struct etcd *c)
{
	return c->urls[c->cur];
}

const char *etcd_last_error(const struct etcd *c)
{
	return c->err;
}

void etcd_rotate(struct etcd *c)
{
	c->cur = (c->cur + 1) % c->nurls;
}

/* What every transfer to etcd has: the URL, TLS, no signals. */
static int easy_setup(struct etcd *c, CURL *e, const char *path, const char *body)
{
	char url[1024];

	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->urls[c->cur], path) >= sizeof(url))
		return -ENAMETOOLONG;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
	if (c->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
	if (c->cert)
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
	return 0;
}

int etcd_stream_setup(struct etcd *c, void *curl,
		      const char *path, const char *body,
		      size_t (*write)(char *p, size_t size, size_t n, void *arg), void *arg)
{
	int ret = easy_setup(c, curl, path, body);

	if (!ret) {
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, arg);
	}
	return ret;
}

/* The gateway's error answer ({"error", "message", "code"}) as errno, with its words kept. */
static int error_answer(struct etcd *c, const struct curlio_body *b, long status)
{
	json_t *j = json_loadb(b->buf ? b->buf : "", b->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));
	int64_t code = 0;
	int ret;

	if (!json_is_object(j) || jnum(j, "code", &code) || !msg) {
		snprintf(c->err, sizeof(c->err), "HTTP status %ld", status);
		ret = -EBADMSG;
	} else {
		snprintf(c->err, sizeof(c->err), "%s", msg);
		ret = grpc_errno(code);
	}
	json_decref(j);
	return ret;
}

/* One POST to the current endpoint; the answer as JSON in *out when etcd said yes. */
static int post_once(struct etcd *c, const char *path, const char *body, json_t **out,
		     bool *transport)
{
	struct curlio_body b = { .max = ETCD_MAX_RESPONSE };
	long status = 0;
	int ret = easy_setup(c, c->curl, path, body);

	*transport = false;
	if (ret)
		return ret;
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS,
			 (long)(ETCD_CONNECT_TIMEOUT_MS + ETCD_REQUEST_TIMEOUT_MS));
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, curlio_body_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	ret = curlio_errno(curl_easy_perform(c->curl));
	if (b.too_big)
		ret = -EFBIG;
	else if (ret)
		*transport = true, snprintf(c->err, sizeof(c->err), "%s: %s", c->urls[c->cur],
					    strerror(-ret));
	if (!ret)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (!ret && status != 200)
		ret = error_answer(c, &b, status);
	if (!ret && !(*out = json_loadb(b.buf ? b.buf : "", b.len, 0, NULL)))
		ret = -EBADMSG;
	if (!ret && !json_is_object(*out)) {
		json_decref(*out);
		ret = -EBADMSG;
	}
	free(b.buf);
	return ret;
}

/* POST body (taken, may be NULL on ENOMEM) to path, trying each endpoint once on transport
 * failures; an etcd that is Unavailable (no leader) counts as one. */
static int post(struct etcd *c, const char *path, json_t *req, json_t **out)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	bool transport = false;
	int ret = body ? 0 : -ENOMEM;

	c->err[0] = '\0';
	for (size_t i = 0; !ret && i < c->nurls; i++) {
		ret = post_once(c, path, body, out, &transport);
		if (!transport && ret != -EIO)
			break;
		if (i + 1 < c->nurls)
			ret = 0;
		etcd_rotate(c);
	}
	free(body);
	json_decref(req);
	return ret;
}

/* A new JSON string of s in base64 (NULL on ENOMEM: json_pack then fails). */
static json_t *jb64(const char *s, size_t n)
{
	char *e = b64_encode(s, n);
	json_t *j = e ? json_string(e) : NULL;

	free(e);
	return j;
}

static json_t *jstr64(const char *s)
{
	return jb64(s, strlen(s));
}

static json_t *jint64(int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_string(buf);
}

/* {key, range_end?} */
static json_t *key_range(const char *key, const char *end)
{
	json_t *j = json_pack("{s:o}", "key", jstr64(key));

	if (j && end)
		json_object_set_new(j, "range_end", *end ? jstr64(end) : jb64("", 1));
	return j;
}

char *etcd_prefix_end(const char *key)
{
	size_t n = strlen(key);
	char *end = strdup(key);

	while (end && n && (unsigned char)end[n - 1] == 0xff)
		end[--n] = '\0';
	if (end && n)
		end[n - 1]++;
	return end;
}

static json_t *range_req(const struct etcd_range_req *r)
{
	json_t *j = key_range(r->key, r->end);

	if (j && r->revision)
		json_object_set_new(j, "revision", jint64(r->revision));
	if (j && r->limit)
		json_object_set_new(j, "limit", jint64(r->limit));
	if (j && r->count_only)
		json_object_set_new(j, "count_only", json_true());
	return j;
}

int etcd_range(struct etcd *c, const struct etcd_range_req *r, struct etcd_kvs *out)
{
	json_t *ans = NULL;
	int ret = post(c, "/v3/kv/range", range_req(r), &ans);

	if (!ret)
		ret = header_revision(ans, &out->revision);
	if (!ret)
		ret = range_take(ans, out);
	json_decref(ans);
	return ret;
}

static json_t *put_req(const char *key, const char *value, size_t vlen, int64_t lease)
{
	json_t *j = json_pack("{s:o,s:o}", "key", jstr64(key), "value", jb64(value, vlen));

	if (j && lease)
		json_object_set_new(j, "lease", jint64(lease));
	return j;
}

int etcd_put(struct etcd *c, const char *key, const char *value, size_t vlen, int64_t lease,
	     int64_t *rev)
{
	json_t *ans = NULL;
	int64_t r = 0;
	int ret = post(c, "/v3/kv/put", put_req(key, value, vlen, lease), &ans);

	if (!ret)
		ret = header_revision(ans, &r);
	if (!ret && rev)
		*rev = r;
	json_decref(ans);
	return ret;
}

int etcd_delete(struct etcd *c, const char *key, const char *end, int64_t *deleted)
{
	json_t *ans = NULL;
	int64_t n = 0;
	int ret = post(c, "/v3/kv/deleterange", key_range(key, end), &ans);

	if (!ret)
		ret = jnum(ans, "deleted", &n);
	if (!ret && deleted)
		*deleted = n;
	json_decref(ans);
	return ret;
}

/* ---- transactions ---- */

static json_t *op_json(const struct etcd_op *op)
{
	switch (op->kind) {
	case ETCD_OP_PUT:
		return json_pack("{s:o}", "request_put",
				 put_req(op->key, op->value, strlen(op->value), op->lease));
	case ETCD_OP_DELETE:
		return json_pack("{s:o}", "request_delete_range", key_range(op->key, op->end));
	case ETCD_OP_GET:
		return json_pack("{s:o}", "request_range", key_range(op->key, op->end));
	}
	return NULL;
}

static json_t *cmp_json(const struct etcd_cmp *c)
{
	static const char *const targets[] = { "CREATE", "MOD", "VERSION", "VALUE" };
	static const char *const fields[] = { "create_revision", "mod_revision", "version",
					      "value" };
	json_t *j = json_pack("{s:o,s:s,s:s}", "key", jstr64(c->key), "target",
			      targets[c->target], "result", "EQUAL");

	if (j)
		json_object_set_new(j, fields[c->target], c->target == ETCD_CMP_VALUE ?
				    jstr64(c->value ? c->value : "") : jint64(c->rev));
	return j;
}

static json_t *ops_json(const struct etcd_op *ops, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, op_json(&ops[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *txn_req(const struct etcd_txn *t)
{
	json_t *cmp = json_array();

	for (size_t i = 0; cmp && i < t->ncmp; i++)
		if (json_array_append_new(cmp, cmp_json(&t->cmp[i]))) {
			json_decref(cmp);
			return NULL;
		}
	return json_pack("{s:o,s:o,s:o}", "compare", cmp, "success", ops_json(t->ok, t->nok),
			 "failure", ops_json(t->fail, t->nfail));
}

/* The GET answers among a transaction's responses, appended to got. */
static int txn_gets(json_t *ans, struct etcd_kvs *got)
{
	json_t *resps = json_object_get(ans, "responses"), *it, *r;
	size_t i;
	int ret = 0;

	if (resps && !json_is_array(resps))
		return -EBADMSG;
	json_array_foreach(resps, i, it) {
		if (!json_is_object(it))
			return -EBADMSG;
		if ((r = json_object_get(it, "response_range")) &&
		    (!json_is_object(r) || (ret = range_take(r, got))))
			return ret ? ret : -EBADMSG;
	}
	return 0;
}

int etcd_txn(struct etcd *c, const struct etcd_txn *t, bool *succeeded, struct etcd_kvs *got)
{
	json_t *ans = NULL;
	bool ok = false;
	int64_t rev = 0;
	int ret;

	if (t->nok > ETCD_MAX_TXN_OPS || t->nfail > ETCD_MAX_TXN_OPS)
		return -EINVAL;
	ret = post(c, "/v3/kv/txn", txn_req(t), &ans);
	if (!ret)
		ret = jbool(ans, "succeeded", &ok);
	if (!ret)
		ret = header_revision(ans, &rev);
	if (!ret && got) {
		got->revision = rev;
		ret = txn_gets(ans, got);
	}
	if (!ret)
		*succeeded = ok;
	json_decref(ans);
	return ret;
}

/* ---- leases ---- */

int etcd_lease_grant(struct etcd *c, int64_t ttl, int64_t *id, int64_t *granted)
{
	json_t *ans = NULL;
	int64_t i = 0, t = 0;
	int ret = post(c, "/v3/lease/grant", json_pack("{s:o}", "TTL", jint64(ttl)), &ans);

	if (!ret && (jnum(ans, "ID", &i) || jnum(ans, "TTL", &t)))
		ret = -EBADMSG;
	if (!ret && (!i || t <= 0))
		ret = -EBADMSG;
	if (!ret)
		*id = i, *granted = t;
	json_decref(ans);
	return ret;
}

/* The keepalive endpoint is a stream: one request gives one {"result": {ID, TTL}}. */
int etcd_lease_keepalive(struct etcd *c, int64_t id, int64_t *ttl)
{
	json_t *ans = NULL, *res;
	int64_t t = 0;
	int ret = post(c, "/v3/lease/keepalive", json_pack("{s:o}", "ID", jint64(id)), &ans);

	res = json_object_get(ans, "result");
	if (!ret && json_object_get(ans, "error"))
		ret = -EIO, snprintf(c->err, sizeof(c->err), "keepalive refused");
	else if (!ret && (!json_is_object(res) || jnum(res, "TTL", &t)))
		ret = -EBADMSG;
	if (!ret && t <= 0)
		ret = -ENOENT;
	if (!ret)
		*ttl = t;
	json_decref(ans);
	return ret;
}

int etcd_lease_revoke(struct etcd *c, int64_t id)
{
	json_t *ans = NULL;
	int ret = post(c, "/v3/lease/revoke", json_pack("{s:o}", "ID", jint64(id)), &ans);

	json_decref(ans);
	return ret;
}

/* ---- watch ---- */

char *etcd_watch_body(const char *key, const char *end, int64_t rev)
{
	json_t *cr = key_range(key, end), *j;
	char *s;

	if (cr && rev)
		json_object_set_new(cr, "start_revision", jint64(rev));
	if (cr)
		json_object_set_new(cr, "progress_notify", json_true());
	j = json_pack("{s:o}", "create_request", cr);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

void etcd_watch_resp_free(struct etcd_watch_resp *r)
{
	for (size_t i = 0; i < r->n; i++)
		kv_clear(&r->v[i].kv);
	free(r->v);
	free(r->error);
	*r = (struct etcd_watch_resp){ 0 };
}

static int event_parse(json_t *o, struct etcd_event *ev)
{
	const char *type;
	json_t *t = json_object_get(o, "type");

	if (!json_is_object(o) || (t && !json_is_string(t)))
		return -EBADMSG;
	type = t ? json_string_value(t) : "PUT";
	if (strcmp(type, "PUT") && strcmp(type, "DELETE"))
		return -EBADMSG;
	ev->kind = strcmp(type, "PUT") ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
	return kv_parse(json_object_get(o, "kv"), &ev->kv);
}

static int watch_result(json_t *res, struct etcd_watch_resp *r)
{
	json_t *evs = json_object_get(res, "events"), *it;
	size_t i;
	int ret = json_is_object(res) ? 0 : -EBADMSG;

	if (!ret)
		ret = header_revision(res, &r->revision);
	if (!ret && (jbool(res, "created", &r->created) || jbool(res, "canceled", &r->canceled) ||
		     jnum(res, "compact_revision", &r->compact_revision)))
		ret = -EBADMSG;
	if (!ret && evs && !json_is_array(evs) && !json_is_null(evs))
		ret = -EBADMSG;
	if (!ret && json_array_size(evs) && !(r->v = calloc(json_array_size(evs), sizeof(*r->v))))
		ret = -ENOMEM;
	json_array_foreach(evs, i, it) {
		if (ret || (ret = event_parse(it, &r->v[r->n])))
			break;
		r->n++;
	}
	return ret;
}

int etcd_watch_parse(const char *line, size_t len, struct etcd_watch_resp *out)
{
	struct etcd_watch_resp r = { 0 };
	json_t *j = json_loadb(line ? line : "", line ? len : 0, 0, NULL), *e;
	int ret = json_is_object(j) ? 0 : -EBADMSG;

	if (!ret && (e = json_object_get(j, "error"))) {
		const char *msg = json_string_value(json_object_get(e, "message"));

		if (!msg)
			msg = json_string_value(e);
		ret = (r.error = strdup(msg ? msg : "unknown error")) ? 0 : -ENOMEM;
	} else if (!ret) {
		ret = watch_result(json_object_get(j, "result"), &r);
	}
	json_decref(j);
	if (ret) {
		etcd_watch_resp_free(&r);
		return ret;
	}
	*out = r;
	return 0;
}
