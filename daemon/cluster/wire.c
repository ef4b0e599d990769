/*
 * Moat's keys and values in etcd (wire.h): encoders for what this node publishes, decoders
 * that take nothing another node wrote on trust.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster/wire.h"
#include "moat/proto.h"
#include "moat/report.h"

/* ---- keys ---- */

bool wire_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > WIRE_MAX_NAME || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
			return false;
	return true;
}

/* A segment of a key: some bytes, no '/', no NUL, not too long. */
static bool segment_ok(const char *s, size_t n)
{
	return n && n <= WIRE_MAX_NAME && !memchr(s, '/', n) && !memchr(s, '\0', n);
}

/* Cuts the next segment of [*p, end) into buf; false when there is none that fits. */
static bool segment_take(const char **p, const char *end, char *buf, bool last)
{
	const char *slash = memchr(*p, '/', (size_t)(end - *p));
	const char *stop = slash ? slash : end;
	size_t n = (size_t)(stop - *p);

	if ((last && slash) || (!last && !slash) || !segment_ok(*p, n))
		return false;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = slash ? slash + 1 : end;
	return true;
}

static const struct {
	const char *dir;
	enum wire_key_kind kind;
} dirs[] = {
	{ "nodes/", WIRE_KEY_NODE },
	{ "alive/", WIRE_KEY_ALIVE },
	{ "endpoints/", WIRE_KEY_ENDPOINT },
};

int wire_key_parse(const char *prefix, const char *key, size_t len, struct wire_key *out)
{
	size_t plen = strlen(prefix);
	const char *p = key + plen, *end = key + len;
	struct wire_key k = { 0 };

	if (len < plen || memcmp(key, prefix, plen))
		return -EINVAL;
	if ((size_t)(end - p) == 8 && !memcmp(p, "policies", 8)) {
		*out = (struct wire_key){ .kind = WIRE_KEY_POLICIES };
		return 0;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		size_t dl = strlen(dirs[i].dir);
		bool ep = dirs[i].kind == WIRE_KEY_ENDPOINT;

		if ((size_t)(end - p) < dl || memcmp(p, dirs[i].dir, dl))
			continue;
		p += dl;
		k.kind = dirs[i].kind;
		if (!segment_take(&p, end, k.node, !ep) || !wire_name_ok(k.node))
			return -EINVAL;
		if (ep && (!segment_take(&p, end, k.ns, false) || !segment_take(&p, end, k.name, true)))
			return -EINVAL;
		*out = k;
		return 0;
	}
	return -EINVAL;
}

int wire_key_format(const char *prefix, const struct wire_key *k, char *buf, size_t len)
{
	int n;

	if (k->kind == WIRE_KEY_POLICIES)
		n = snprintf(buf, len, "%spolicies", prefix);
	else if (!wire_name_ok(k->node))
		return -EINVAL;
	else if (k->kind != WIRE_KEY_ENDPOINT)
		n = snprintf(buf, len, "%s%s%s", prefix, dirs[k->kind].dir, k->node);
	else if (!segment_ok(k->ns, strlen(k->ns)) || !segment_ok(k->name, strlen(k->name)))
		return -EINVAL;
	else
		n = snprintf(buf, len, "%sendpoints/%s/%s/%s", prefix, k->node, k->ns, k->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- helpers ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A value as a JSON object: duplicate keys refused, no NUL in strings (jansson's default). */
static json_t *load(const char *val, size_t len, size_t max, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (len > max) {
		fail(err, errlen, "%zu bytes (at most %zu)", len, max);
		return NULL;
	}
	j = json_loadb(val ? val : "", val ? len : 0, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		fail(err, errlen, "not JSON: %s", je.text);
	else if (!json_is_object(j)) {
		fail(err, errlen, "not a JSON object");
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* A number member: JSON integer or string of digits; absent is 0. */
static int num(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char *end;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!s || !*s || strlen(s) > 20)
		return -EINVAL;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* A named port's protocol, or NULL for one without ports. */
static const char *proto_name(uint8_t proto)
{
	return moat_proto_has_ports(proto) ? moat_proto_name(proto) : NULL;
}

/* ---- endpoints ---- */

static json_t *ips_json(const struct moat_endpoint *e)
{
	json_t *a = json_array();
	char buf[64];

	for (size_t i = 0; a && i < e->nips; i++)
		json_array_append_new(a, json_string(moat_addr_format(&e->ips[i], buf, sizeof(buf))));
	return a;
}

static json_t *ports_json(const struct moat_endpoint *e)
{
	json_t *o = json_object();
	char buf[32];

	for (size_t i = 0; o && i < e->nports; i++) {
		const char *p = proto_name(e->ports[i].proto);

		if (!p)
			continue;	/* a named port only TCP, UDP and SCTP can have */
		snprintf(buf, sizeof(buf), "%u/%s", e->ports[i].port, p);
		json_object_set_new(o, e->ports[i].name, json_string(buf));
	}
	return o;
}

char *wire_endpoint_encode(const struct moat_endpoint *e, char *err, size_t errlen)
{
	json_t *j;
	char *s = NULL;

	if (e->labels.n > WIRE_MAX_LABELS || e->nips > WIRE_MAX_IPS || e->nports > WIRE_MAX_PORTS) {
		fail(err, errlen, "%zu labels, %zu addresses, %zu named ports (at most %d, %d, %d)",
		     e->labels.n, e->nips, e->nports, WIRE_MAX_LABELS, WIRE_MAX_IPS, WIRE_MAX_PORTS);
		return NULL;
	}
	j = json_pack("{s:s,s:s,s:o,s:o,s:o}", "name", e->name, "namespace", e->namespace,
		      "labels", moat_labels_json(&e->labels), "ips", ips_json(e), "ports",
		      ports_json(e));
	if (j && e->host_network)
		json_object_set_new(j, "host_network", json_true());
	if (j)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		fail(err, errlen, "out of memory, or labels that are not UTF-8");
	else if (strlen(s) > WIRE_MAX_ENDPOINT) {
		fail(err, errlen, "%zu bytes (at most %u)", strlen(s), WIRE_MAX_ENDPOINT);
		free(s);
		s = NULL;
	}
	return s;
}

void wire_endpoint_free(struct wire_endpoint *w)
{
	struct moat_endpoint *e = &w->e;

	for (size_t i = 0; i < e->labels.n; i++) {
		free(e->labels.v[i].key);
		free(e->labels.v[i].value);
	}
	free(e->labels.v);
	for (size_t i = 0; i < e->nports; i++)
		free(e->ports[i].name);
	free(e->ports);
	free(e->ips);
	free(e->name);
	free(e->namespace);
	free(e->node);
	*w = (struct wire_endpoint){ 0 };
}

static int labels_take(json_t *o, struct moat_labels *l, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return fail(err, errlen, "labels: not an object");
	if (json_object_size(o) > WIRE_MAX_LABELS)
		return fail(err, errlen, "%zu labels (at most %d)", json_object_size(o),
			    WIRE_MAX_LABELS);
	if (!(l->v = calloc(json_object_size(o) + 1, sizeof(*l->v))))
		return -ENOMEM;
	json_object_foreach(o, k, v) {
		if (!json_is_string(v))
			return fail(err, errlen, "label %.64s: not a string", k);
		l->v[l->n].key = strdup(k);
		l->v[l->n].value = strdup(json_string_value(v));
		if (!l->v[l->n].key || !l->v[l->n].value)
			return free(l->v[l->n].key), free(l->v[l->n].value), -ENOMEM;
		l->n++;
	}
	return moat_labels_sort(l) ? fail(err, errlen, "labels: a key repeats") : 0;
}

static int ips_take(json_t *a, struct moat_endpoint *e, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a))
		return fail(err, errlen, "ips: not an array");
	if (json_array_size(a) > WIRE_MAX_IPS)
		return fail(err, errlen, "%zu addresses (at most %d)", json_array_size(a),
			    WIRE_MAX_IPS);
	if (!(e->ips = calloc(json_array_size(a) + 1, sizeof(*e->ips))))
		return -ENOMEM;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);

		if (!s || moat_addr_parse(s, &e->ips[e->nips]))
			return fail(err, errlen, "ips[%zu]: not an address", i);
		for (size_t k = 0; k < e->nips; k++)
			if (!moat_addr_cmp(&e->ips[k], &e->ips[e->nips]))
				return fail(err, errlen, "ips[%zu]: given twice", i);
		e->nips++;
	}
	return 0;
}

static int ports_take(json_t *o, struct moat_endpoint *e, char *err, size_t errlen)
{
	struct moat_port_arg p;
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return fail(err, errlen, "ports: not an object");
	if (json_object_size(o) > WIRE_MAX_PORTS)
		return fail(err, errlen, "%zu named ports (at most %d)", json_object_size(o),
			    WIRE_MAX_PORTS);
	if (!(e->ports = calloc(json_object_size(o) + 1, sizeof(*e->ports))))
		return -ENOMEM;
	json_object_foreach(o, k, v) {
		const char *s = json_string_value(v);

		if (!*k || strlen(k) > 63)
			return fail(err, errlen, "ports: a name of %zu bytes", strlen(k));
		if (!s || moat_port_arg_parse(s, &p) || !p.port || !proto_name(p.proto))
			return fail(err, errlen, "port %.63s: expected PORT/tcp, /udp or /sctp", k);
		if (!(e->ports[e->nports].name = strdup(k)))
			return -ENOMEM;
		e->ports[e->nports].port = p.port;
		e->ports[e->nports++].proto = p.proto;
	}
	return 0;
}

/* The value's name and namespace must say what the key says. */
static int names_check(json_t *j, const struct wire_key *k, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *ns = json_string_value(json_object_get(j, "namespace"));

	if (!name || strcmp(name, k->name))
		return fail(err, errlen, "name: not the key's");
	if (!ns || strcmp(ns, k->ns))
		return fail(err, errlen, "namespace: not the key's");
	return 0;
}

static int endpoint_fill(json_t *j, const struct wire_key *k, struct moat_endpoint *e,
			 char *err, size_t errlen)
{
	json_t *hn = json_object_get(j, "host_network");
	json_t *empty = json_object(), *none = json_array();
	json_t *labels = json_object_get(j, "labels"), *ips = json_object_get(j, "ips");
	json_t *ports = json_object_get(j, "ports");
	int ret = names_check(j, k, err, errlen);

	if (!ret && hn && !json_is_boolean(hn))
		ret = fail(err, errlen, "host_network: not a boolean");
	e->host_network = json_is_true(hn);
	if (!ret)
		ret = labels_take(labels ? labels : empty, &e->labels, err, errlen);
	if (!ret)
		ret = ips_take(ips ? ips : none, e, err, errlen);
	if (!ret)
		ret = ports_take(ports ? ports : empty, e, err, errlen);
	json_decref(empty);
	json_decref(none);
	return ret;
}

int wire_endpoint_decode(const struct wire_key *k, const char *val, size_t len,
			 struct wire_endpoint *out, char *err, size_t errlen)
{
	struct wire_endpoint w = { 0 };
	json_t *j;
	int ret;

	if (k->kind != WIRE_KEY_ENDPOINT)
		return fail(err, errlen, "not an endpoint's key");
	if (!(j = load(val, len, WIRE_MAX_ENDPOINT, err, errlen)))
		return -EINVAL;
	ret = asprintf(&w.e.name, "%s@%s", k->name, k->node) < 0 ? -ENOMEM : 0;
	if (ret)
		w.e.name = NULL;
	if (!ret && (!(w.e.namespace = strdup(k->ns)) || !(w.e.node = strdup(k->node))))
		ret = -ENOMEM;
	if (!ret)
		ret = endpoint_fill(j, k, &w.e, err, errlen);
	json_decref(j);
	if (ret) {
		wire_endpoint_free(&w);
		return ret;
	}
	*out = w;
	return 0;
}

/* ---- node records ---- */

char *wire_node_encode(const char *node, const struct wire_node *n)
{
	json_t *subnets = json_array(), *j;
	char buf[64], *s;

	for (size_t i = 0; subnets && i < n->nsubnets; i++)
		json_array_append_new(subnets,
				      json_string(moat_cidr_format(&n->subnets[i], buf, sizeof(buf))));
	j = json_pack("{s:s,s:s,s:o}", "node", node, "host", n->host, "subnets", subnets);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

void wire_node_free(struct wire_node *n)
{
	free(n->subnets);
	*n = (struct wire_node){ 0 };
}

static int host_take(json_t *j, char *host, char *err, size_t errlen)
{
	const char *h = json_string_value(json_object_get(j, "host"));

	if (!h || !*h || strlen(h) > WIRE_MAX_HOST)
		return fail(err, errlen, "host: not a string of 1 to %d bytes", WIRE_MAX_HOST);
	strcpy(host, h);
	return 0;
}

static int subnets_take(json_t *a, struct wire_node *n, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	if (a && !json_is_array(a))
		return fail(err, errlen, "subnets: not an array");
	if (json_array_size(a) > WIRE_MAX_SUBNETS)
		return fail(err, errlen, "%zu subnets (at most %d)", json_array_size(a),
			    WIRE_MAX_SUBNETS);
	if (!(n->subnets = calloc(json_array_size(a) + 1, sizeof(*n->subnets))))
		return -ENOMEM;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);

		if (!s || moat_cidr_parse(s, &n->subnets[n->nsubnets]))
			return fail(err, errlen, "subnets[%zu]: not a CIDR", i);
		/* a /0 would make the whole address space this node's */
		if (n->subnets[n->nsubnets].plen < (n->subnets[n->nsubnets].family == AF_INET ? 8 : 16))
			return fail(err, errlen, "subnets[%zu]: %s is too wide", i, s);
		n->nsubnets++;
	}
	return 0;
}

int wire_node_decode(const char *node, const char *val, size_t len, struct wire_node *out,
		     char *err, size_t errlen)
{
	struct wire_node n = { 0 };
	json_t *j = load(val, len, WIRE_MAX_ENDPOINT, err, errlen);
	const char *name = json_string_value(json_object_get(j, "node"));
	int ret;

	if (!j)
		return -EINVAL;
	ret = name && !strcmp(name, node) ? 0 : fail(err, errlen, "node: not the key's");
	if (!ret)
		ret = host_take(j, n.host, err, errlen);
	if (!ret)
		ret = subnets_take(json_object_get(j, "subnets"), &n, err, errlen);
	json_decref(j);
	if (ret) {
		wire_node_free(&n);
		return ret;
	}
	*out = n;
	return 0;
}

/* ---- heartbeats ---- */

char *wire_alive_encode(const struct wire_alive *a)
{
	char lease[32];
	json_t *j;
	char *s;

	snprintf(lease, sizeof(lease), "%lld", (long long)a->lease);
	j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "host", a->host, "lease", lease, "ttl",
		      (json_int_t)a->ttl, "heard", (json_int_t)a->heard_ms, "policy_revision",
		      (json_int_t)a->policy_rev, "endpoints", (json_int_t)a->endpoints);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

int wire_alive_decode(const char *val, size_t len, struct wire_alive *out, char *err,
		      size_t errlen)
{
	struct wire_alive a = { 0 };
	json_t *j = load(val, len, WIRE_MAX_ENDPOINT, err, errlen);
	int ret;

	if (!j)
		return -EINVAL;
	ret = host_take(j, a.host, err, errlen);
	if (!ret && (num(j, "lease", &a.lease) || num(j, "ttl", &a.ttl) ||
		     num(j, "heard", &a.heard_ms) || num(j, "policy_revision", &a.policy_rev) ||
		     num(j, "endpoints", &a.endpoints)))
		ret = fail(err, errlen, "lease, ttl, heard, policy_revision, endpoints: numbers");
	if (!ret && (a.ttl < 0 || a.endpoints < 0 || a.policy_rev < 0))
		ret = fail(err, errlen, "a negative count");
	json_decref(j);
	if (!ret)
		*out = a;
	return ret;
}

/* ---- policies ---- */

char *wire_policies_encode(const struct moat_policy_files *f, int64_t pushed_ms)
{
	json_t *files = json_array(), *j;
	char *s;

	for (size_t i = 0; files && i < f->n; i++)
		if (json_array_append_new(files, json_pack("{s:s,s:s%}", "name", f->v[i].name,
							   "text", f->v[i].text, f->v[i].len))) {
			json_decref(files);
			return NULL;
		}
	j = json_pack("{s:o,s:I}", "files", files, "pushed_at", (json_int_t)pushed_ms);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

static int file_take(json_t *o, struct moat_policy_file *f, char *err, size_t errlen, size_t i)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *text = json_object_get(o, "text");

	if (!name || !*name || strlen(name) > 4096 || !json_is_string(text))
		return fail(err, errlen, "files[%zu]: expected {name, text}", i);
	f->len = json_string_length(text);
	if (memchr(json_string_value(text), '\0', f->len))
		return fail(err, errlen, "files[%zu]: a NUL in the text", i);
	f->name = strdup(name);
	f->text = malloc(f->len + 1);
	if (!f->name || !f->text)
		return -ENOMEM;
	memcpy(f->text, json_string_value(text), f->len + 1);
	return 0;
}

int wire_policies_decode(const char *val, size_t len, struct moat_policy_files *out,
			 char *err, size_t errlen)
{
	struct moat_policy_files f = { 0 };
	json_t *j = load(val, len, WIRE_MAX_POLICIES, err, errlen), *files, *it;
	size_t i;
	int ret = 0;

	if (!j)
		return -EINVAL;
	files = json_object_get(j, "files");
	if (!json_is_array(files))
		ret = fail(err, errlen, "files: not an array");
	else if (!(f.v = calloc(json_array_size(files) + 1, sizeof(*f.v))))
		ret = -ENOMEM;
	json_array_foreach(files, i, it) {
		if (ret || (ret = file_take(it, &f.v[f.n++], err, errlen, i)))
			break;
	}
	json_decref(j);
	if (ret) {
		moat_policy_files_free(&f);
		return ret;
	}
	*out = f;
	return 0;
}
