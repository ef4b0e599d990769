/*
 * The baseline on disk: JSON, one flow per line (so diffs of a baseline read well), loaded
 * all or nothing with every problem reported, saved atomically.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baseline_priv.h"

#define BASELINE_VERSION 1

/* ---- to JSON ---- */

static json_t *peer_json(const struct bl_peer *p)
{
	struct moat_cidr c = { .family = p->addr.family };
	char buf[64];
	json_t *labels;

	if (!p->ns) {
		c.plen = p->addr.family == AF_INET ? 32 : 128;
		memcpy(c.addr, p->addr.a, sizeof(c.addr));
		return json_pack("{s:s}", "cidr", moat_cidr_format(&c, buf, sizeof(buf)));
	}
	labels = json_object();
	for (size_t i = 0; labels && i < p->labels.n; i++)
		if (json_object_set_new(labels, p->labels.v[i].key,
					json_string(p->labels.v[i].value))) {
			json_decref(labels);
			return NULL;
		}
	return json_pack("{s:s,s:o}", "namespace", p->ns, "labels", labels);
}

static json_t *proto_json(uint8_t proto)
{
	const char *name = bl_proto_name(proto);

	return name ? json_string(name) : json_integer(proto);
}

static json_t *flow_json(const struct moat_baseline *b, const struct bl_flow *f)
{
	json_int_t count = f->count > INT64_MAX ? INT64_MAX : (json_int_t)f->count;

	return json_pack("{s:o,s:o,s:o,s:i,s:I,s:I,s:I}", "from", peer_json(&b->peers[f->from]),
			 "to", peer_json(&b->peers[f->to]), "proto", proto_json(f->proto),
			 "port", (int)f->port, "first", (json_int_t)f->first,
			 "last", (json_int_t)f->last, "count", count);
}

json_t *moat_baseline_json(const struct moat_baseline *b)
{
	json_t *a = json_array();
	uint32_t *order;

	if (!a || bl_flows_sorted(b, &order)) {
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < b->nflows; i++)
		if (json_array_append_new(a, flow_json(b, &b->flows[order[i]]))) {
			json_decref(a);
			a = NULL;
			break;
		}
	free(order);
	return a;
}

/* ---- saving ---- */

/* The document, one flow per line. */
static int baseline_write(const struct moat_baseline *b, FILE *f)
{
	json_t *flows = moat_baseline_json(b), *flow;
	size_t i;
	int ret = 0;

	if (!flows)
		return -ENOMEM;
	fprintf(f, "{\"version\": %d, \"flows\": [", BASELINE_VERSION);
	json_array_foreach(flows, i, flow) {
		fputs(i ? ",\n  " : "\n  ", f);
		if (json_dumpf(flow, f, JSON_COMPACT) < 0) {
			ret = -EIO;
			break;
		}
	}
	fputs("\n]}\n", f);
	json_decref(flows);
	return ret;
}

/* fsyncs the directory path is in, so that the rename is durable. */
static int dir_sync(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

/* Writes and fsyncs tmp; 0 or -errno. */
static int tmp_write(const struct moat_baseline *b, const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	int ret;

	if (!f) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = baseline_write(b, f);
	if (!ret && (fflush(f) || ferror(f) || fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

int moat_baseline_save(const struct moat_baseline *b, const char *path)
{
	char *tmp = NULL;
	int ret;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	errno = 0;
	ret = tmp_write(b, tmp);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	else
		ret = dir_sync(path);
	free(tmp);
	return ret;
}

/* ---- loading ---- */

struct loader {
	const char *path;
	struct moat_diags *diags;
	struct moat_baseline *b;
	char where[48];		/* "flows[3]" */
};

#define bad(ld, ...) moat_diags_add((ld)->diags, (ld)->path, 0, 0, __VA_ARGS__)

/* An integer field of o within [lo, hi] into *v; false (reported) otherwise. */
static bool int_field(struct loader *ld, json_t *o, const char *key, json_int_t lo,
		      json_int_t hi, json_int_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi) {
		bad(ld, "%s.%s: %s an integer from %lld to %lld", ld->where, key,
		    j ? "not" : "missing,", (long long)lo, (long long)hi);
		return false;
	}
	*v = json_integer_value(j);
	return true;
}

static bool keys_known(struct loader *ld, json_t *o, const char *where,
		       const char *const *known, size_t n)
{
	const char *key;
	json_t *v;
	bool ok = true;

	json_object_foreach(o, key, v) {
		size_t i = 0;

		while (i < n && strcmp(key, known[i]))
			i++;
		if (i == n) {
			bad(ld, "%s: unknown field \"%s\"", where, key);
			ok = false;
		}
	}
	return ok;
}

static int cidr_peer(struct loader *ld, const char *where, json_t *j, struct bl_peer *p)
{
	const char *s = json_string_value(j);
	struct moat_cidr c;
	struct moat_addr a = { 0 };

	if (!s || moat_cidr_parse(s, &c) || c.plen != (c.family == AF_INET ? 32 : 128)) {
		bad(ld, "%s.cidr: want one address as a /32 or /128 CIDR, like \"10.0.0.5/32\"",
		    where);
		return -EINVAL;
	}
	a.family = c.family;
	memcpy(a.a, c.addr, sizeof(a.a));
	bl_peer_ext(p, &a);
	return 0;
}

/* The labels of a group peer must be a key as bl_peer_fill makes them, or no endpoint
 * would ever match them. */
static bool labels_are_key(struct loader *ld, const char *where, const struct moat_labels *l)
{
	bool stable = bl_labels_stable(l);

	for (size_t i = 0; i < l->n; i++)
		if (!bl_label_is_key(l, i, stable)) {
			bad(ld, "%s.labels: \"%s\" is not a key label here (%s)", where,
			    l->v[i].key, stable ? "with stable labels such as app or "
			    "com.docker.compose.service present, only they identify a group" :
			    "it looks per-instance");
			return false;
		}
	return true;
}

/* Borrowed, sorted labels from a JSON object of strings into *l (caller frees l->v). */
static int labels_of(struct loader *ld, const char *where, json_t *j, struct moat_labels *l)
{
	const char *key;
	json_t *v;

	*l = (struct moat_labels){ 0 };
	if (!json_is_object(j)) {
		bad(ld, "%s.labels: want an object of strings", where);
		return -EINVAL;
	}
	l->v = calloc(json_object_size(j) + 1, sizeof(*l->v));
	if (!l->v)
		return -ENOMEM;
	json_object_foreach(j, key, v) {
		if (!json_is_string(v) || !key[0]) {
			bad(ld, "%s.labels: \"%s\" is not a label (want a non-empty key and a string "
			    "value)", where, key);
			return -EINVAL;
		}
		l->v[l->n++] = (struct moat_label){ (char *)key, (char *)json_string_value(v) };
	}
	moat_labels_sort(l);	/* keys of a JSON object read with REJECT_DUPLICATES are unique */
	return labels_are_key(ld, where, l) ? 0 : -EINVAL;
}

static int group_peer(struct loader *ld, const char *where, json_t *o, struct bl_peer *p)
{
	const char *ns = json_string_value(json_object_get(o, "namespace"));
	struct moat_labels l;
	int ret;

	if (!ns || !ns[0]) {
		bad(ld, "%s.namespace: want a non-empty string", where);
		return -EINVAL;
	}
	ret = labels_of(ld, where, json_object_get(o, "labels"), &l);
	if (!ret)
		ret = bl_peer_fill(p, ns, &l, true);
	free(l.v);
	return ret;
}

/* Reads the peer o->key ("from"/"to") and interns it into *idx. */
static int peer_read(struct loader *ld, json_t *flow, const char *key, uint32_t *idx)
{
	static const char *const known[] = { "cidr", "namespace", "labels" };
	json_t *o = json_object_get(flow, key), *cidr = json_object_get(o, "cidr");
	char where[64];
	struct bl_peer p;
	int ret;

	snprintf(where, sizeof(where), "%s.%s", ld->where, key);
	if (!json_is_object(o)) {
		bad(ld, "%s: want {\"namespace\": ..., \"labels\": {...}} or {\"cidr\": ...}", where);
		return -EINVAL;
	}
	if (!keys_known(ld, o, where, known, 3))
		return -EINVAL;
	if (cidr && (json_object_get(o, "namespace") || json_object_get(o, "labels"))) {
		bad(ld, "%s: a peer is either a cidr or a namespace with labels, not both", where);
		return -EINVAL;
	}
	ret = cidr ? cidr_peer(ld, where, cidr, &p) : group_peer(ld, where, o, &p);
	return ret ? ret : bl_peer_adopt(ld->b, &p, idx);
}

static bool proto_read(struct loader *ld, json_t *flow, uint8_t *proto)
{
	json_t *j = json_object_get(flow, "proto");
	int p = json_is_string(j) ? bl_proto_by_name(json_string_value(j)) : -1;

	if (json_is_integer(j) && json_integer_value(j) >= 0 && json_integer_value(j) <= 255)
		p = (int)json_integer_value(j);
	if (p < 0) {
		bad(ld, "%s.proto: want \"tcp\", \"udp\", \"sctp\", \"icmp\", \"icmpv6\" or a "
		    "protocol number 0-255", ld->where);
		return false;
	}
	*proto = (uint8_t)p;
	return true;
}

/* The numeric fields of one flow into *f; false when any is wrong (all reported). */
static bool numbers_read(struct loader *ld, json_t *flow, struct bl_flow *f)
{
	json_int_t port = 0, first = 0, last = 0, count = 0;
	bool ok = proto_read(ld, flow, &f->proto);

	ok &= int_field(ld, flow, "port", 0, 65535, &port);
	ok &= int_field(ld, flow, "first", INT64_MIN, INT64_MAX, &first);
	ok &= int_field(ld, flow, "last", INT64_MIN, INT64_MAX, &last);
	ok &= int_field(ld, flow, "count", 1, INT64_MAX, &count);
	if (ok && first > last) {
		bad(ld, "%s: first (%lld) is after last (%lld)", ld->where, (long long)first,
		    (long long)last);
		ok = false;
	}
	if (ok && port && !bl_proto_has_ports(f->proto)) {
		bad(ld, "%s.port: must be 0 for a protocol without ports", ld->where);
		ok = false;
	}
	*f = (struct bl_flow){ .proto = f->proto, .port = (uint16_t)port, .first = first,
			       .last = last, .count = (uint64_t)count };
	return ok;
}

static int flow_read(struct loader *ld, json_t *flow)
{
	static const char *const known[] = { "from", "to", "proto", "port", "first", "last",
					     "count" };
	struct bl_flow f = { 0 };
	bool added, ok = json_is_object(flow);
	int ret = 0, r;

	if (!ok || !keys_known(ld, flow, ld->where, known, 7)) {
		if (!ok)
			bad(ld, "%s: want an object", ld->where);
		return -EINVAL;
	}
	ok = numbers_read(ld, flow, &f);
	r = peer_read(ld, flow, "from", &f.from);
	ret = r ? r : ret;
	r = peer_read(ld, flow, "to", &f.to);
	ret = r ? r : ret;
	if (ret || !ok)
		return ret == -ENOMEM ? ret : -EINVAL;
	if (!ld->b->peers[f.from].ns && !ld->b->peers[f.to].ns) {
		bad(ld, "%s: both peers are addresses; one must be an endpoint group", ld->where);
		return -EINVAL;
	}
	ret = bl_flow_put(ld->b, &f, &added);
	if (!ret && !added) {
		bad(ld, "%s: the same flow (from, to, proto, port) appears twice", ld->where);
		ret = -EINVAL;
	}
	return ret;
}

static int doc_read(struct loader *ld, json_t *doc)
{
	static const char *const known[] = { "version", "flows" };
	json_t *flows = json_object_get(doc, "flows"), *flow;
	json_t *version = json_object_get(doc, "version");
	size_t i;
	int ret = 0;

	if (!json_is_object(doc) || !keys_known(ld, doc, "the document", known, 2) ||
	    !json_is_integer(version) || json_integer_value(version) != BASELINE_VERSION ||
	    !json_is_array(flows)) {
		bad(ld, "want a baseline: {\"version\": %d, \"flows\": [...]}", BASELINE_VERSION);
		return -EINVAL;
	}
	json_array_foreach(flows, i, flow) {
		int r;

		snprintf(ld->where, sizeof(ld->where), "flows[%zu]", i);
		r = flow_read(ld, flow);
		if (r == -ENOMEM)
			return r;
		ret = r ? r : ret;
	}
	return ret;
}

/* Opens path; -ENOENT silently, other errors in diags. */
static int file_open(const char *path, FILE **out, struct moat_diags *diags)
{
	FILE *f = fopen(path, "re");
	int ret = f ? 0 : -errno;

	if (ret && ret != -ENOENT)
		moat_diags_add(diags, path, 0, 0, "cannot open: %s", strerror(-ret));
	*out = f;
	return ret;
}

int moat_baseline_load(const char *path, struct moat_baseline **out, struct moat_diags *diags)
{
	struct loader ld = { .path = path, .diags = diags };
	json_error_t jerr;
	json_t *doc;
	FILE *f;
	int ret = file_open(path, &f, diags);

	if (ret)
		return ret;
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!doc) {
		moat_diags_add(diags, path, jerr.line > 0 ? jerr.line : 0,
			       jerr.column > 0 ? jerr.column : 0, "not valid JSON: %s", jerr.text);
		return -EINVAL;
	}
	ret = moat_baseline_new(&ld.b);
	if (!ret)
		ret = doc_read(&ld, doc);
	json_decref(doc);
	if (ret) {
		moat_baseline_free(ld.b);
		return ret;
	}
	*out = ld.b;
	return 0;
}
