/*
 * Reading baseline.json back, all or nothing with every problem reported
 * (moat_baseline_load), in the memory of the baseline it makes: the file is mapped and read
 * once front to back (pages already read are dropped), a flow at a time, with no tree of
 * the document; a peer's text seen before is not parsed again (most flows share peers).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline_priv.h"
#include "jread.h"

#define DROP_BEHIND (4u << 20)	/* mapped bytes already read are let go in steps this big */

/* Peers by their text in the file: its hash, a copy and the peer's index. */
struct peer_text {
	uint64_t hash;
	char *text;
	size_t len;
	uint32_t peer;
};

struct loader {
	const char *path;
	struct moat_diags *diags;
	struct moat_baseline *b;
	struct jread r;
	char where[48];			/* "flows[3]" */
	struct peer_text *texts;	/* open addressing, ntexts_slots a power of two */
	size_t ntexts, ntexts_slots;
	const char *dropped;		/* mapped bytes before this are let go */
};

/* A problem with what the text says; none once the text is known not to be JSON. */
#define bad(ld, ...)                                                                      \
	do {                                                                              \
		if (!(ld)->r.failed)                                                      \
			moat_diags_add((ld)->diags, (ld)->path, 0, 0, __VA_ARGS__);       \
	} while (0)

/* ---- peers by text ---- */

static uint64_t text_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
	return h;
}

static struct peer_text *text_slot(struct loader *ld, const char *s, size_t n, uint64_t h)
{
	size_t mask = ld->ntexts_slots - 1, i = h & mask;

	while (ld->texts[i].text && (ld->texts[i].hash != h || ld->texts[i].len != n ||
				     memcmp(ld->texts[i].text, s, n)))
		i = (i + 1) & mask;
	return &ld->texts[i];
}

static int texts_grow(struct loader *ld)
{
	size_t n = ld->ntexts_slots ? ld->ntexts_slots * 2 : 256;
	struct peer_text *old = ld->texts, *v = calloc(n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	ld->texts = v;
	ld->ntexts_slots = n;
	for (size_t i = 0; old && i < n / 2; i++)
		if (old[i].text)
			*text_slot(ld, old[i].text, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

/* The peer whose text is s[0..n), or -1. */
static long text_find(struct loader *ld, const char *s, size_t n)
{
	struct peer_text *t;

	if (!ld->ntexts_slots)
		return -1;
	t = text_slot(ld, s, n, text_hash(s, n));
	return t->text ? (long)t->peer : -1;
}

static int text_add(struct loader *ld, const char *s, size_t n, uint32_t peer)
{
	struct peer_text *t;
	char *copy;

	if (2 * (ld->ntexts + 1) > ld->ntexts_slots && texts_grow(ld))
		return -ENOMEM;
	if (!(copy = malloc(n)))
		return -ENOMEM;
	memcpy(copy, s, n);
	t = text_slot(ld, s, n, text_hash(s, n));
	t->hash = text_hash(s, n);
	t->text = copy;		/* the table owns it: texts_free */
	t->len = n;
	t->peer = peer;
	ld->ntexts++;
	return 0;
}

static void texts_free(struct loader *ld)
{
	for (size_t i = 0; i < ld->ntexts_slots; i++)
		free(ld->texts[i].text);
	free(ld->texts);
}

/* ---- one peer ---- */

/* A peer's fields, as read. */
struct peer_in {
	char *cidr, *ns;
	bool has_cidr, has_ns, has_labels;
	bool labels_object;		/* labels is an object ... */
	bool labels_ok;			/* ... of non-empty keys and string values */
	bool unknown;			/* a field that is none of these */
	struct moat_labels labels;	/* owned strings */
	const char *labels_at;		/* where the labels object starts, for a duplicate key */
};

static void peer_in_fini(struct peer_in *p)
{
	for (size_t i = 0; i < p->labels.n; i++) {
		free(p->labels.v[i].key);
		free(p->labels.v[i].value);
	}
	free(p->labels.v);
	free(p->cidr);
	free(p->ns);
}

/* A string field's value, copied into *out; left NULL (the value skipped) when not one. */
static int string_dup(struct jread *r, char **out)
{
	const char *s;
	size_t len;

	if (jread_peek(r) != JREAD_STRING) {
		jread_skip(r);
		return 0;
	}
	if (!jread_string(r, &s, &len))
		return 0;
	free(*out);
	*out = strndup(s, len);
	return *out ? 0 : -ENOMEM;
}

/* One member of the labels object (its key in k, taken over). */
static int label_read(struct loader *ld, struct peer_in *p, const char *where, char *k)
{
	struct moat_label *v = realloc(p->labels.v, (p->labels.n + 1) * sizeof(*v));
	const char *val;
	size_t vlen;

	if (!v) {
		free(k);
		return -ENOMEM;
	}
	p->labels.v = v;
	if (jread_peek(&ld->r) != JREAD_STRING || !*k) {
		if (!ld->r.failed)
			bad(ld, "%s.labels: \"%s\" is not a label (want a non-empty key and a string "
			    "value)", where, k);
		p->labels_ok = false;
		free(k);
		jread_skip(&ld->r);
		return 0;
	}
	if (!jread_string(&ld->r, &val, &vlen)) {
		free(k);
		return 0;
	}
	v[p->labels.n] = (struct moat_label){ k, strndup(val, vlen) };
	if (!v[p->labels.n].value) {
		free(k);
		return -ENOMEM;
	}
	p->labels.n++;
	return 0;
}

/* The labels object: strings only, non-empty keys. labels_ok says whether all were. */
static int labels_read(struct loader *ld, struct peer_in *p, const char *where)
{
	const char *key;
	size_t klen;
	int ret = 0;

	p->labels_at = ld->r.p;
	if (jread_peek(&ld->r) != JREAD_OBJECT) {
		jread_skip(&ld->r);
		return 0;
	}
	p->labels_object = p->labels_ok = true;
	for (bool first = true; !ret && jread_member(&ld->r, first, &key, &klen); first = false) {
		char *k = strndup(key, klen);

		ret = k ? label_read(ld, p, where, k) : -ENOMEM;
	}
	return ret;
}

/* The fields of a peer object (at its '{'): cidr, namespace, labels. */
static int peer_fields(struct loader *ld, struct peer_in *p, const char *where)
{
	const char *key;
	size_t klen;
	int ret = 0;

	for (bool first = true; !ret && jread_member(&ld->r, first, &key, &klen); first = false) {
		bool *seen = !strcmp(key, "cidr") ? &p->has_cidr : !strcmp(key, "namespace") ?
			     &p->has_ns : !strcmp(key, "labels") ? &p->has_labels : NULL;

		if (!seen) {
			bad(ld, "%s: unknown field \"%.*s\"", where, (int)klen, key);
			p->unknown = true;
			jread_skip(&ld->r);
		} else if (*seen) {
			jread_error(&ld->r, "duplicate object key");
		} else if ((*seen = true) && seen == &p->has_labels) {
			ret = labels_read(ld, p, where);
		} else {
			ret = string_dup(&ld->r, seen == &p->has_cidr ? &p->cidr : &p->ns);
		}
	}
	return ret;
}

static int cidr_peer(struct loader *ld, const char *where, const char *s, struct bl_peer *p)
{
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

/* Sorted labels with a key twice are a JSON object with a key twice. */
static bool labels_unique(struct loader *ld, struct peer_in *p)
{
	moat_labels_sort(&p->labels);
	for (size_t i = 1; i < p->labels.n; i++)
		if (!strcmp(p->labels.v[i - 1].key, p->labels.v[i].key)) {
			ld->r.p = p->labels_at;
			jread_error(&ld->r, "duplicate object key");
			return false;
		}
	return true;
}

/* What was read into a bl_peer, with every problem reported. */
static int peer_make(struct loader *ld, struct peer_in *in, const char *where,
		     struct bl_peer *p)
{
	if (in->unknown)
		return -EINVAL;
	if (in->has_cidr && (in->has_ns || in->has_labels)) {
		bad(ld, "%s: a peer is either a cidr or a namespace with labels, not both", where);
		return -EINVAL;
	}
	if (in->has_cidr)
		return cidr_peer(ld, where, in->cidr, p);
	if (!in->ns || !in->ns[0]) {
		bad(ld, "%s.namespace: want a non-empty string", where);
		return -EINVAL;
	}
	if (!in->labels_object) {
		bad(ld, "%s.labels: want an object of strings", where);
		return -EINVAL;
	}
	if (!in->labels_ok)
		return -EINVAL;		/* said, label by label */
	if (!labels_unique(ld, in) || !labels_are_key(ld, where, &in->labels))
		return -EINVAL;
	return bl_peer_fill(p, in->ns, &in->labels, true);
}

/* Reads a peer object that is not known by its text yet, and interns it. */
static int peer_parse(struct loader *ld, const char *where, uint32_t *idx)
{
	struct peer_in in = { 0 };
	struct bl_peer p;
	int ret = peer_fields(ld, &in, where);

	if (!ret && !ld->r.failed)
		ret = peer_make(ld, &in, where, &p);
	if (!ret && !ld->r.failed)
		ret = bl_peer_adopt(ld->b, &p, idx);
	peer_in_fini(&in);
	return ld->r.failed ? -EINVAL : ret;
}

/* The peer that is the next value ("from" or "to" of the current flow) into *idx. */
static int peer_read(struct loader *ld, const char *key, uint32_t *idx)
{
	const char *start;
	char where[64];
	long known;
	int ret;

	snprintf(where, sizeof(where), "%s.%s", ld->where, key);
	if (jread_peek(&ld->r) != JREAD_OBJECT) {
		bad(ld, "%s: want {\"namespace\": ..., \"labels\": {...}} or {\"cidr\": ...}",
		    where);
		jread_skip(&ld->r);
		return -EINVAL;
	}
	start = ld->r.p;
	jread_skip(&ld->r);
	if (ld->r.failed)
		return -EINVAL;
	known = text_find(ld, start, (size_t)(ld->r.p - start));
	if (known >= 0) {
		*idx = (uint32_t)known;
		return 0;
	}
	ld->r.p = start;	/* again, this time keeping what it says */
	ret = peer_parse(ld, where, idx);
	return ret ? ret : text_add(ld, start, (size_t)(ld->r.p - start), *idx);
}

/* ---- one flow ---- */

enum flow_field { F_FROM, F_TO, F_PROTO, F_PORT, F_FIRST, F_LAST, F_COUNT, F_N };

static const char *const flow_fields[F_N] = { "from", "to", "proto", "port", "first", "last",
					      "count" };

static const struct {
	int64_t lo, hi;
} flow_ranges[F_N] = {
	[F_PORT] = { 0, 65535 }, [F_FIRST] = { INT64_MIN, INT64_MAX },
	[F_LAST] = { INT64_MIN, INT64_MAX }, [F_COUNT] = { 1, INT64_MAX },
};

struct flow_in {
	bool seen[F_N], ok[F_N];
	int64_t num[F_N];
	uint8_t proto;
	uint32_t from, to;
};

static void int_read(struct loader *ld, struct flow_in *f, enum flow_field k)
{
	bool is_number;
	int64_t v = 0;

	if (jread_int(&ld->r, &v, &is_number) && v >= flow_ranges[k].lo && v <= flow_ranges[k].hi) {
		f->num[k] = v;
		f->ok[k] = true;
		return;
	}
	if (!is_number)
		jread_skip(&ld->r);
	if (!ld->r.failed)
		bad(ld, "%s.%s: not an integer from %lld to %lld", ld->where, flow_fields[k],
		    (long long)flow_ranges[k].lo, (long long)flow_ranges[k].hi);
}

static void proto_read(struct loader *ld, struct flow_in *f)
{
	const char *s;
	size_t len;
	int64_t v;
	bool is_number;
	int p = -1;

	if (jread_peek(&ld->r) == JREAD_STRING) {
		if (jread_string(&ld->r, &s, &len))
			p = moat_proto_by_name(s);
	} else if (jread_int(&ld->r, &v, &is_number)) {
		p = v >= 0 && v <= 255 ? (int)v : -1;
	} else if (!is_number) {
		jread_skip(&ld->r);
	}
	if (p >= 0) {
		f->proto = (uint8_t)p;
		f->ok[F_PROTO] = true;
	} else if (!ld->r.failed) {
		bad(ld, "%s.proto: want \"tcp\", \"udp\", \"sctp\", \"icmp\", \"icmpv6\" or a "
		    "protocol number 0-255", ld->where);
	}
}

/* One field of a flow, by its key; unknown keys are reported. */
static int field_read(struct loader *ld, struct flow_in *f, const char *key, size_t klen)
{
	int k = 0, ret = 0;

	while (k < F_N && strcmp(key, flow_fields[k]))
		k++;
	if (k == F_N) {
		bad(ld, "%s: unknown field \"%.*s\"", ld->where, (int)klen, key);
		jread_skip(&ld->r);
		return -EINVAL;
	}
	if (f->seen[k]) {
		jread_error(&ld->r, "duplicate object key");
		return -EINVAL;
	}
	f->seen[k] = true;
	if (k == F_FROM || k == F_TO) {
		ret = peer_read(ld, flow_fields[k], k == F_FROM ? &f->from : &f->to);
		f->ok[k] = !ret;
	} else if (k == F_PROTO) {
		proto_read(ld, f);
	} else {
		int_read(ld, f, (enum flow_field)k);
	}
	return ret;
}

/* Fields that never came, and the checks across fields; true when the flow is whole. */
static bool flow_check(struct loader *ld, const struct flow_in *f)
{
	bool ok = true;

	for (int k = 0; k < F_N; k++) {
		if (f->seen[k]) {
			ok &= f->ok[k];
			continue;
		}
		ok = false;
		if (k == F_FROM || k == F_TO)
			bad(ld, "%s.%s: want {\"namespace\": ..., \"labels\": {...}} or {\"cidr\": "
			    "...}", ld->where, flow_fields[k]);
		else if (k == F_PROTO)
			bad(ld, "%s.proto: want \"tcp\", \"udp\", \"sctp\", \"icmp\", \"icmpv6\" or "
			    "a protocol number 0-255", ld->where);
		else
			bad(ld, "%s.%s: missing, an integer from %lld to %lld", ld->where,
			    flow_fields[k], (long long)flow_ranges[k].lo,
			    (long long)flow_ranges[k].hi);
	}
	if (f->ok[F_FIRST] && f->ok[F_LAST] && f->num[F_FIRST] > f->num[F_LAST]) {
		bad(ld, "%s: first (%lld) is after last (%lld)", ld->where,
		    (long long)f->num[F_FIRST], (long long)f->num[F_LAST]);
		ok = false;
	}
	if (f->ok[F_PORT] && f->ok[F_PROTO] && f->num[F_PORT] && !moat_proto_has_ports(f->proto)) {
		bad(ld, "%s.port: must be 0 for a protocol without ports", ld->where);
		ok = false;
	}
	if (f->ok[F_FROM] && f->ok[F_TO] && !ld->b->peers[f->from].ns && !ld->b->peers[f->to].ns) {
		bad(ld, "%s: both peers are addresses; one must be an endpoint group", ld->where);
		ok = false;
	}
	return ok;
}

static int flow_read(struct loader *ld)
{
	struct flow_in f = { 0 };
	struct bl_flow fl;
	const char *key;
	size_t klen;
	bool added, fine = true;
	int ret;

	for (bool first = true; jread_member(&ld->r, first, &key, &klen); first = false) {
		ret = field_read(ld, &f, key, klen);
		if (ret == -ENOMEM)
			return ret;
		fine &= !ret;
	}
	if (ld->r.failed || !flow_check(ld, &f) || !fine)
		return -EINVAL;
	fl = (struct bl_flow){ .from = f.from, .to = f.to, .proto = f.proto,
			       .port = (uint16_t)f.num[F_PORT], .first = f.num[F_FIRST],
			       .last = f.num[F_LAST], .count = (uint64_t)f.num[F_COUNT] };
	ret = bl_flow_put(ld->b, &fl, &added);
	if (!ret && !added) {
		bad(ld, "%s: the same flow (from, to, proto, port) appears twice", ld->where);
		ret = -EINVAL;
	}
	return ret;
}

/* ---- the document ---- */

/* Lets the mapped pages already read go (the reader never looks back further than a flow). */
static void drop_behind(struct loader *ld)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t to = ((uintptr_t)ld->r.p - DROP_BEHIND) & ~(uintptr_t)(page - 1);

	if (ld->r.p - ld->dropped < 2 * (long)DROP_BEHIND)
		return;
	madvise((void *)ld->dropped, to - (uintptr_t)ld->dropped, MADV_DONTNEED);
	ld->dropped = (const char *)to;
}

static int flows_read(struct loader *ld)
{
	int ret = 0;

	if (jread_peek(&ld->r) != JREAD_ARRAY) {
		jread_skip(&ld->r);
		return -EINVAL;
	}
	for (size_t i = 0; jread_element(&ld->r, i == 0); i++) {
		int r;

		snprintf(ld->where, sizeof(ld->where), "flows[%zu]", i);
		if (jread_peek(&ld->r) != JREAD_OBJECT) {
			if (!ld->r.failed)
				bad(ld, "%s: want an object", ld->where);
			jread_skip(&ld->r);
			ret = -EINVAL;
			continue;
		}
		r = flow_read(ld);
		if (r == -ENOMEM)
			return r;
		ret = r ? r : ret;
		if (ld->dropped && !(i & 4095))
			drop_behind(ld);
	}
	return ret;
}

/* One member of the document: version, flows, or one too many. */
static int member_read(struct loader *ld, const char *key, size_t klen, bool *has_version,
		       bool *version_ok, bool *has_flows)
{
	bool is_number;
	int64_t v;

	if (!strcmp(key, "version") && !*has_version) {
		*has_version = true;
		*version_ok = jread_int(&ld->r, &v, &is_number) && v == BASELINE_VERSION;
		if (!is_number)
			jread_skip(&ld->r);
		return 0;
	}
	if (!strcmp(key, "flows") && !*has_flows) {
		*has_flows = jread_peek(&ld->r) == JREAD_ARRAY;
		return flows_read(ld);
	}
	if (!strcmp(key, "version") || !strcmp(key, "flows")) {
		jread_error(&ld->r, "duplicate object key");
		return -EINVAL;
	}
	bad(ld, "the document: unknown field \"%.*s\"", (int)klen, key);
	jread_skip(&ld->r);
	return -EINVAL;
}

static int doc_read(struct loader *ld)
{
	bool is_doc = jread_peek(&ld->r) == JREAD_OBJECT;
	bool has_version = false, version_ok = false, has_flows = false;
	const char *key;
	size_t klen;
	int ret = 0;

	if (!is_doc && jread_peek(&ld->r) != JREAD_ARRAY)
		jread_error(&ld->r, "want '[' or '{'");	/* as jansson: a document is one of these */
	else if (!is_doc)
		jread_skip(&ld->r);
	for (bool first = true; is_doc && jread_member(&ld->r, first, &key, &klen); first = false) {
		int r = member_read(ld, key, klen, &has_version, &version_ok, &has_flows);

		if (r == -ENOMEM)
			return r;
		ret = r ? r : ret;
	}
	jread_done(&ld->r);
	if (ld->r.failed)
		return ld->r.nomem ? ld->r.nomem : -EINVAL;
	if (!is_doc || !version_ok || !has_flows) {
		bad(ld, "want a baseline: {\"version\": %d, \"flows\": [...]}", BASELINE_VERSION);
		return -EINVAL;
	}
	return ret;
}

/* ---- the file ---- */

/* Maps path read-only into *buf; -ENOENT silently, other errors in diags. */
static int file_map(const char *path, const char **buf, size_t *len, struct moat_diags *diags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	void *m = NULL;

	if (fd < 0 || fstat(fd, &st) < 0)
		ret = -errno;
	if (!ret && st.st_size && (m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
					    0)) == MAP_FAILED)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret && ret != -ENOENT)
		moat_diags_add(diags, path, 0, 0, "cannot open: %s", strerror(-ret));
	if (ret)
		return ret;
	if (m)
		madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
	*buf = m ? m : "";
	*len = m ? (size_t)st.st_size : 0;
	return 0;
}

/* The document in buf[0..len) into *out; drop_behind: buf is a private mapping whose pages
 * already read may be let go. */
static int parse(const char *name, const char *buf, size_t len, bool drop,
		 struct moat_baseline **out, struct moat_diags *diags)
{
	struct loader ld = { .path = name, .diags = diags, .dropped = drop ? buf : NULL };
	int ret = moat_baseline_new(&ld.b);

	jread_init(&ld.r, buf, len, name, diags);
	/* a saved flow takes some 200 bytes: room for them all at once saves regrowing */
	if (!ret && len > 1 << 20)
		ret = bl_reserve(ld.b, len / 200);
	if (!ret)
		ret = doc_read(&ld);
	jread_fini(&ld.r);
	texts_free(&ld);
	if (ret) {
		moat_baseline_free(ld.b);
		return ret;
	}
	*out = ld.b;
	return 0;
}

int moat_baseline_parse(const char *name, const char *buf, size_t len,
			struct moat_baseline **out, struct moat_diags *diags)
{
	return parse(name, buf, len, false, out, diags);
}

int moat_baseline_load(const char *path, struct moat_baseline **out, struct moat_diags *diags)
{
	const char *buf;
	size_t len;
	int ret = file_map(path, &buf, &len, diags);

	if (ret)
		return ret;
	ret = parse(path, buf, len, len > 0, out, diags);
	if (len)
		munmap((void *)buf, len);
	return ret;
}
