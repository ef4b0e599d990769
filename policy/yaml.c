/*
 * libyaml events -> a tree of ynodes with positions, and the checked accessors over it.
 * The builder keeps an explicit stack (no recursion, so nesting cannot blow the C stack),
 * resolves aliases to shared subtrees and counts their expansion, and drops duplicate keys
 * after reporting them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "arena.h"
#include "moat/grow.h"
#include "moat/policy.h"
#include "ybuild.h"

/* ---- checking context and messages ---- */

void ycheck_init(struct ycheck *ck, const char *file, struct arena *a, struct moat_diags *d)
{
	memset(ck, 0, sizeof(*ck));
	ck->diags = d;
	ck->file = file;
	ck->arena = a;
}

static void yerr_va(struct ycheck *ck, unsigned line, unsigned col, const char *prefix,
		    const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (++ck->nerr > YCHECK_MAX_ERRORS)
		return;
	if (ck->nerr == YCHECK_MAX_ERRORS) {
		moat_diags_add(ck->diags, ck->file, line, col,
			       "too many errors in this file; not showing more");
		return;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	moat_diags_add(ck->diags, ck->file, line, col, "%s%s%s", prefix, prefix[0] ? ": " : "",
		       msg ? msg : "out of memory");
	free(msg);
}

void yerr(struct ycheck *ck, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yerr_va(ck, at ? at->line : 0, at ? at->col : 0, ck->path, fmt, ap);
	va_end(ap);
}

void yerr_at(struct ycheck *ck, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yerr_va(ck, line, col, "", fmt, ap);
	va_end(ap);
}

/*
 * Appends sep (when the path is not empty) and the n bytes of s, or nothing when they do not
 * fit: a path too long for the buffer is cut short; messages stay correct, only less
 * specific. No printf: every item of every document passes here.
 */
static size_t ypath_append(struct ycheck *ck, char sep, const char *s, size_t n)
{
	size_t saved = ck->plen, with = n + (sep && ck->plen);

	if (with < sizeof(ck->path) - ck->plen) {
		if (with > n)
			ck->path[ck->plen++] = sep;
		memcpy(ck->path + ck->plen, s, n);
		ck->plen += n;
	}
	ck->path[ck->plen] = '\0';
	return saved;
}

size_t ypath_key(struct ycheck *ck, const char *key)
{
	return ypath_append(ck, '.', key, strlen(key));
}

size_t ypath_index(struct ycheck *ck, size_t i)
{
	char buf[24], *p = buf + sizeof(buf);

	*--p = ']';
	do
		*--p = (char)('0' + i % 10);
	while (i /= 10);
	*--p = '[';
	return ypath_append(ck, 0, p, buf + sizeof(buf) - p);
}

void ypath_pop(struct ycheck *ck, size_t saved)
{
	ck->plen = saved;
	ck->path[saved] = '\0';
}

/* ---- anchors: an open-addressing table, so many aliases stay linear ---- */

struct anchor {
	const char *name;
	struct ynode *node;
};

struct anchors {
	struct anchor *v;
	size_t n, cap;		/* cap is 0 or a power of two */
};

static size_t anchor_hash(const char *s)
{
	size_t h = 14695981039346656037ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct anchor *anchor_slot(struct anchor *v, size_t cap, const char *name)
{
	size_t i = anchor_hash(name) & (cap - 1);

	while (v[i].name && strcmp(v[i].name, name))
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static int anchors_grow(struct anchors *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	struct anchor *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].name)
			*anchor_slot(v, cap, t->v[i].name) = t->v[i];
	free(t->v);
	t->v = v;
	t->cap = cap;
	return 0;
}

/* A redefined anchor replaces the old one, as YAML says. name must outlive the table. */
static int anchors_put(struct anchors *t, const char *name, struct ynode *node)
{
	struct anchor *a;

	if (2 * (t->n + 1) > t->cap && anchors_grow(t) < 0)
		return -ENOMEM;
	a = anchor_slot(t->v, t->cap, name);
	if (!a->name)
		t->n++;
	a->name = name;
	a->node = node;
	return 0;
}

static struct ynode *anchors_get(const struct anchors *t, const char *name)
{
	return t->cap ? anchor_slot(t->v, t->cap, name)->node : NULL;
}

static void anchors_clear(struct anchors *t)
{
	if (t->n)
		memset(t->v, 0, t->cap * sizeof(*t->v));
	t->n = 0;
}

/* ---- the builder ---- */

/* An open container: its items are b->kids[base..], copied into the arena on close. */
struct frame {
	struct ynode *node;
	size_t base;
	const char *anchor;
};

struct ybuild {
	struct ycheck *ck;
	struct arena *tree;
	struct frame *stack;
	size_t depth;
	struct ynode **kids;	/* the items of every open container, innermost last */
	size_t nkids, kids_cap;
	struct anchors anchors;
	uint64_t nodes;
	struct ynode *root;
	struct ynode **docs;
	size_t ndocs, docs_cap;
};

/* Adds n expanded nodes to the file's count; false (error recorded) past the limit. */
static bool count_nodes(struct ybuild *b, uint64_t n, unsigned line, unsigned col)
{
	b->nodes += n;
	if (b->nodes <= MOAT_POLICY_MAX_NODES)
		return true;
	yerr_at(b->ck, line, col,
		"document is too big: more than %u YAML nodes once aliases are expanded "
		"(an alias bomb?); refusing it", MOAT_POLICY_MAX_NODES);
	return false;
}

static int push_ptr(struct ynode ***v, size_t *n, size_t *cap, struct ynode *x)
{
	if (grow((void **)v, *n, cap, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = x;
	return 0;
}

/* Hangs a finished node (or an alias target) under the open container, or makes it the root. */
static int attach(struct ybuild *b, struct ynode *node, const char *anchor)
{
	if (anchor && anchors_put(&b->anchors, anchor, node) < 0)
		return -ENOMEM;
	if (!b->depth) {
		b->root = node;
		return 0;
	}
	return push_ptr(&b->kids, &b->nkids, &b->kids_cap, node);
}

static struct ynode *node_new(struct ybuild *b, enum ynode_type t, unsigned line, unsigned col)
{
	struct ynode *n = arena_alloc(b->tree, sizeof(*n));

	if (n) {
		n->type = t;
		n->line = line;
		n->col = col;
		n->size = 1;
	}
	return n;
}

int ybuild_scalar(struct ybuild *b, unsigned line, unsigned col, const char *s, size_t len,
		  bool plain, const char *anchor)
{
	struct ynode *n = node_new(b, YNODE_SCALAR, line, col);

	if (!n || !(n->str = arena_strndup(b->tree, s, len)))
		return -ENOMEM;
	n->len = len;
	n->plain = plain;
	if (!count_nodes(b, 1, line, col))
		return -EINVAL;
	return attach(b, n, anchor);
}

int ybuild_open(struct ybuild *b, enum ynode_type t, unsigned line, unsigned col,
		const char *anchor)
{
	struct ynode *n = node_new(b, t, line, col);
	struct frame *stack;

	if (!n)
		return -ENOMEM;
	if (b->depth == YBUILD_MAX_DEPTH) {
		yerr_at(b->ck, n->line, n->col, "nesting deeper than %d levels", YBUILD_MAX_DEPTH);
		return -EINVAL;
	}
	if (!count_nodes(b, 1, line, col))
		return -EINVAL;
	if (!b->stack) {
		stack = calloc(YBUILD_MAX_DEPTH, sizeof(*stack));
		if (!stack)
			return -ENOMEM;
		b->stack = stack;
	}
	b->stack[b->depth++] = (struct frame){ .node = n, .base = b->nkids, .anchor = anchor };
	return 0;
}

struct keyref {
	const struct ynode *key;
	size_t pair;
};

#define MAP_SMALL 16

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->key->str, y->key->str);

	return c ? c : (x->pair > y->pair) - (x->pair < y->pair);
}

/* Almost every map is small: sorted in place, without qsort's call per comparison. */
static void keyrefs_sort(struct keyref *v, size_t n)
{
	if (n > MAP_SMALL) {
		qsort(v, n, sizeof(*v), keyref_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct keyref x = v[i];
		size_t j = i;

		for (; j > 0 && keyref_cmp(&v[j - 1], &x) > 0; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Reports each repeated key at the repeat, drops the repeat; keys that are not scalars too. */
static int map_dedup(struct ybuild *b, struct ynode **kids, size_t *n)
{
	size_t np = *n / 2, m = 0, kept = 0;
	struct keyref small_refs[MAP_SMALL];
	bool small_drop[MAP_SMALL] = { false };
	struct keyref *refs = np <= MAP_SMALL ? small_refs : calloc(np, sizeof(*refs));
	bool *drop = np <= MAP_SMALL ? small_drop : calloc(np, sizeof(*drop));
	int ret = -ENOMEM;

	if (!refs || !drop)
		goto out;
	for (size_t i = 0; i < np; i++) {
		const struct ynode *k = kids[2 * i];

		if (k->type == YNODE_SCALAR) {
			refs[m++] = (struct keyref){ k, i };
			continue;
		}
		yerr_at(b->ck, k->line, k->col, "a mapping key must be a plain value, not a %s",
			k->type == YNODE_MAP ? "mapping" : "sequence");
		drop[i] = true;
	}
	keyrefs_sort(refs, m);
	for (size_t i = 1; i < m; i++) {
		const struct ynode *first = refs[i - 1].key, *k = refs[i].key;

		if (strcmp(first->str, k->str))
			continue;
		yerr_at(b->ck, k->line, k->col, "duplicate key \"%s\" (first at line %u, column %u)",
			k->str, first->line, first->col);
		drop[refs[i].pair] = true;
		refs[i].key = first;	/* a third repeat still points at the first */
	}
	for (size_t i = 0; i < np; i++)
		if (!drop[i]) {
			kids[2 * kept] = kids[2 * i];
			kids[2 * kept++ + 1] = kids[2 * i + 1];
		}
	*n = 2 * kept;
	ret = 0;
out:
	if (refs != small_refs)
		free(refs);
	if (drop != small_drop)
		free(drop);
	return ret;
}

int ybuild_close(struct ybuild *b)
{
	struct frame f = b->stack[--b->depth];
	size_t nkids = b->nkids - f.base;
	struct ynode *n = f.node, **kids = nkids ? b->kids + f.base : NULL;
	int ret = n->type == YNODE_MAP ? map_dedup(b, kids, &nkids) : 0;

	if (ret < 0)
		return ret;
	n->kids = arena_array(b->tree, nkids, sizeof(*n->kids));
	if (!n->kids)
		return -ENOMEM;
	for (size_t i = 0; i < nkids; i++) {
		n->kids[i] = kids[i];
		n->size += kids[i]->size;	/* each was counted, so no overflow */
	}
	n->n = n->type == YNODE_MAP ? nkids / 2 : nkids;
	b->nkids = f.base;
	return attach(b, n, f.anchor);
}

static int on_alias(struct ybuild *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct ynode *target = anchors_get(&b->anchors, name);
	unsigned line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;

	if (!target) {
		yerr_at(b->ck, line, col, "alias *%s refers to no anchor defined before it", name);
		return -EINVAL;
	}
	if (!count_nodes(b, target->size, line, col))
		return -EINVAL;
	return attach(b, target, NULL);
}

int ybuild_doc_end(struct ybuild *b, unsigned line, unsigned col)
{
	struct ynode *root = b->root;

	if (!root) {
		root = node_new(b, YNODE_SCALAR, line, col);
		if (!root)
			return -ENOMEM;
		root->str = "";
		root->plain = true;
	}
	b->root = NULL;
	anchors_clear(&b->anchors);
	return push_ptr(&b->docs, &b->ndocs, &b->docs_cap, root);
}

/* libyaml's anchors are copied into the tree: the event that carries one is freed next. */
static int anchor_dup(struct ybuild *b, const yaml_char_t *anchor, const char **out)
{
	*out = anchor ? arena_strdup(b->tree, (const char *)anchor) : NULL;
	return anchor && !*out ? -ENOMEM : 0;
}

static int on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
	const char *anchor;

	if (anchor_dup(b, ev->data.scalar.anchor, &anchor) < 0)
		return -ENOMEM;
	return ybuild_scalar(b, ev->start_mark.line + 1, ev->start_mark.column + 1,
			     (const char *)ev->data.scalar.value, ev->data.scalar.length,
			     ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag,
			     anchor);
}

static int on_start(struct ybuild *b, const yaml_event_t *ev, enum ynode_type t,
		    const yaml_char_t *anchor)
{
	const char *a;

	if (anchor_dup(b, anchor, &a) < 0)
		return -ENOMEM;
	return ybuild_open(b, t, ev->start_mark.line + 1, ev->start_mark.column + 1, a);
}

static int on_event(struct ybuild *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_END_EVENT:
		return ybuild_doc_end(b, ev->start_mark.line + 1, ev->start_mark.column + 1);
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, YNODE_SEQ, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, YNODE_MAP, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return ybuild_close(b);
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	default:
		return 0;
	}
}

static void syntax_error(struct ycheck *ck, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_MEMORY_ERROR)
		return;
	if (p->error == YAML_READER_ERROR) {
		yerr_at(ck, 0, 0, "cannot read as text at byte %zu: %s", p->problem_offset, problem);
		return;
	}
	if (p->context)
		yerr_at(ck, p->problem_mark.line + 1, p->problem_mark.column + 1,
			"YAML syntax error: %s %s (line %zu, column %zu)", problem, p->context,
			p->context_mark.line + 1, p->context_mark.column + 1);
	else
		yerr_at(ck, p->problem_mark.line + 1, p->problem_mark.column + 1,
			"YAML syntax error: %s", problem);
}

/* Runs the event loop; returns 0, -EINVAL (error recorded) or -ENOMEM. */
static int build(struct ybuild *b, yaml_parser_t *p)
{
	yaml_event_t ev;
	int ret = 0;

	for (bool done = false; !done && !ret;) {
		if (!yaml_parser_parse(p, &ev)) {
			syntax_error(b->ck, p);
			return p->error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ret = on_event(b, &ev);
		yaml_event_delete(&ev);
	}
	return ret;
}

static void builder_free(struct ybuild *b)
{
	free(b->kids);
	free(b->stack);
	free(b->anchors.v);
	free(b->docs);
}

static int libyaml_build(struct ybuild *b, const char *buf, size_t len)
{
	yaml_parser_t p;
	int ret;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	ret = build(b, &p);
	yaml_parser_delete(&p);
	return ret;
}

static int parse(struct ycheck *ck, struct arena *tree, const char *buf, size_t len, bool json,
		 struct ynode ***docs, size_t *ndocs)
{
	struct ybuild b = { .ck = ck, .tree = tree };
	int ret;

	if (len > MOAT_POLICY_MAX_FILE_BYTES) {
		yerr_at(ck, 0, 0, "file is too big: %zu bytes, the limit is %u bytes (4 MiB)", len,
			MOAT_POLICY_MAX_FILE_BYTES);
		return -EINVAL;
	}
	ret = json ? yaml_fast_build(&b, buf, len) : YAML_FAST_NOT;
	if (ret == YAML_FAST_NOT)
		ret = libyaml_build(&b, buf, len);
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	*docs = arena_array(tree, b.ndocs, sizeof(**docs));
	if (!*docs)
		goto out;
	if (b.ndocs)
		memcpy(*docs, b.docs, b.ndocs * sizeof(**docs));
	*ndocs = b.ndocs;
	ret = 0;
out:
	builder_free(&b);
	return ret;
}

int yaml_parse(struct ycheck *ck, struct arena *tree, const char *buf, size_t len,
	       struct ynode ***docs, size_t *ndocs)
{
	return parse(ck, tree, buf, len, true, docs, ndocs);
}

int yaml_parse_libyaml(struct ycheck *ck, struct arena *tree, const char *buf, size_t len,
		       struct ynode ***docs, size_t *ndocs)
{
	return parse(ck, tree, buf, len, false, docs, ndocs);
}

/* ---- files ---- */

/* exact: len is the file's size; else only known to be past the limit (a pipe, say). */
static int too_big(const char *path, size_t len, bool exact, struct moat_diags *d)
{
	moat_diags_add(d, path, 0, 0, "file is too big: %s%zu bytes, the limit is %u bytes (4 MiB)",
		       exact ? "" : "more than ", exact ? len : (size_t)MOAT_POLICY_MAX_FILE_BYTES,
		       MOAT_POLICY_MAX_FILE_BYTES);
	return -EFBIG;
}

/* Reads at most limit + 1 bytes, so a pipe or a growing file cannot make us read forever. */
static int read_all(int fd, char *buf, size_t limit, size_t *len)
{
	size_t n = 0;

	while (n <= limit) {
		ssize_t r = read(fd, buf + n, limit + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return 0;
}

int yaml_read_file(const char *path, char **buf, size_t *len, struct moat_diags *d)
{
	const size_t limit = MOAT_POLICY_MAX_FILE_BYTES;
	char *b = NULL;
	struct stat st;
	size_t n = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto out;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > limit) {
		ret = too_big(path, st.st_size, true, d);
		goto out;
	}
	ret = -ENOMEM;
	b = malloc(limit + 2);
	if (!b)
		goto out;
	ret = read_all(fd, b, limit, &n);
	if (!ret && n > limit)
		ret = too_big(path, n, false, d);
out:
	if (ret == 0) {
		b[n] = '\0';
		*buf = b;
		*len = n;
	} else {
		free(b);
		if (ret != -EFBIG)
			moat_diags_add(d, path, 0, 0, "cannot read the file: %s", strerror(-ret));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- checked accessors ---- */

bool ynull(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!n || n->type != YNODE_SCALAR || !n->plain)
		return n == NULL;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->str, nulls[i]))
			return true;
	return false;
}

/* "a mapping", "a sequence", or the value itself, for "expected X, got Y" messages. */
static const char *ytype_name(const struct ynode *n, char *buf, size_t len)
{
	if (n->type == YNODE_MAP)
		return "a mapping";
	if (n->type == YNODE_SEQ)
		return "a sequence";
	if (ynull(n))
		return "nothing (null)";
	snprintf(buf, len, "the value \"%.40s%s\"", n->str, n->len > 40 ? "..." : "");
	return buf;
}

bool yexpect(struct ycheck *ck, const struct ynode *n, enum ynode_type t)
{
	static const char *const want[] = {
		[YNODE_SCALAR] = "a value", [YNODE_SEQ] = "a sequence", [YNODE_MAP] = "a mapping",
	};
	char buf[64];

	if (n->type == t)
		return true;
	yerr(ck, n, "expected %s, got %s", want[t], ytype_name(n, buf, sizeof(buf)));
	return false;
}

const char *ystr(struct ycheck *ck, const struct ynode *n)
{
	if (n->type != YNODE_SCALAR) {
		yerr(ck, n, "expected a string, got %s",
		     n->type == YNODE_MAP ? "a mapping" : "a sequence");
		return NULL;
	}
	if (strlen(n->str) != n->len) {
		yerr(ck, n, "the string contains a NUL character");
		return NULL;
	}
	return n->str;
}

/* A plain decimal integer without sign or leading zeros: what Kubernetes reads as a number. */
bool yis_uint(const struct ynode *n)
{
	if (n->type != YNODE_SCALAR || !n->plain || !n->len || n->len > 18)
		return false;
	if (n->str[0] == '0' && n->len > 1)
		return false;
	return strspn(n->str, "0123456789") == n->len;
}

bool yuint(struct ycheck *ck, const struct ynode *n, unsigned long lo, unsigned long hi,
	   unsigned long *out)
{
	char buf[64];
	unsigned long v;

	if (!yis_uint(n)) {
		yerr(ck, n, "expected a number from %lu to %lu, got %s", lo, hi,
		     ytype_name(n, buf, sizeof(buf)));
		return false;
	}
	v = strtoul(n->str, NULL, 10);
	if (v < lo || v > hi) {
		yerr(ck, n, "%lu is out of range (%lu to %lu)", v, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

bool ybool(struct ycheck *ck, const struct ynode *n, bool *out)
{
	char buf[64];

	if (n->type == YNODE_SCALAR && n->plain && (!strcmp(n->str, "true") || !strcmp(n->str, "false"))) {
		*out = n->str[0] == 't';
		return true;
	}
	yerr(ck, n, "expected true or false, got %s", ytype_name(n, buf, sizeof(buf)));
	return false;
}

const struct ynode *ymap_get(const struct ynode *n, const char *key)
{
	if (!n || n->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		if (!strcmp(n->kids[2 * i]->str, key))
			return n->kids[2 * i + 1];
	return NULL;
}

static void unknown_field(struct ycheck *ck, const struct ynode *key, const struct yfield *fields,
			  size_t nfields)
{
	char allowed[512];
	size_t len = 0;

	allowed[0] = '\0';
	for (size_t i = 0; i < nfields && len < sizeof(allowed); i++)
		len += snprintf(allowed + len, sizeof(allowed) - len, "%s%s", i ? ", " : "",
				fields[i].name);
	yerr(ck, key, "unknown field \"%s\" (allowed: %s)", key->str, allowed);
}

static const struct yfield *field_find(const struct yfield *fields, size_t nfields, const char *k)
{
	for (size_t i = 0; i < nfields; i++)
		if (!strcmp(fields[i].name, k))
			return &fields[i];
	return NULL;
}

int ywalk_map(struct ycheck *ck, const struct ynode *n, const struct yfield *fields,
	      size_t nfields, void *obj)
{
	if (!yexpect(ck, n, YNODE_MAP))
		return 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *key = n->kids[2 * i], *val = n->kids[2 * i + 1];
		const struct yfield *f = field_find(fields, nfields, key->str);
		size_t saved;
		int ret;

		if (!f) {
			unknown_field(ck, key, fields, nfields);
			continue;
		}
		if (ynull(val) || (!f->fn && !f->keep))
			continue;
		if (f->keep) {
			*(const struct ynode **)((char *)obj + f->keep - 1) = val;
			continue;
		}
		saved = ypath_key(ck, key->str);
		ret = f->fn(ck, val, obj);
		ypath_pop(ck, saved);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int ywalk_seq(struct ycheck *ck, const struct ynode *n,
	      int (*fn)(struct ycheck *ck, const struct ynode *item, size_t i, void *obj),
	      void *obj)
{
	if (!yexpect(ck, n, YNODE_SEQ))
		return 0;
	for (size_t i = 0; i < n->n; i++) {
		size_t saved = ypath_index(ck, i);
		int ret = fn(ck, n->kids[i], i, obj);

		ypath_pop(ck, saved);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int ywalk_map_at(struct ycheck *ck, const char *key, const struct ynode *n,
		 const struct yfield *fields, size_t nfields, void *obj)
{
	size_t saved = ypath_key(ck, key);
	int ret = ywalk_map(ck, n, fields, nfields, obj);

	ypath_pop(ck, saved);
	return ret;
}

int ywalk_seq_at(struct ycheck *ck, const char *key, const struct ynode *n,
		 int (*fn)(struct ycheck *ck, const struct ynode *item, size_t i, void *obj),
		 void *obj)
{
	size_t saved = ypath_key(ck, key);
	int ret = ywalk_seq(ck, n, fn, obj);

	ypath_pop(ck, saved);
	return ret;
}

void *yseq_alloc(struct ycheck *ck, const struct ynode *n, size_t sz)
{
	return arena_array(ck->arena, n->type == YNODE_SEQ ? n->n : 0, sz);
}

int yone(struct ycheck *ck, const struct ynode *at, const char *what,
	 const struct ynode *const *vals, const char *const *names, size_t n)
{
	char list[256];
	size_t len = 0;
	int first = -1;

	list[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
	for (size_t i = 0; i < n; i++) {
		if (!vals[i])
			continue;
		if (first < 0) {
			first = (int)i;
			continue;
		}
		yerr(ck, at, "%s has both %s and %s; it takes exactly one of %s", what,
		     names[first], names[i], list);
		return -1;
	}
	if (first < 0)
		yerr(ck, at, "%s needs one of %s", what, list);
	return first;
}

bool ycount(struct ycheck *ck, const struct ynode *n, const char *item, size_t min, size_t max)
{
	if (n->type != YNODE_SEQ)
		return true;
	if (n->n < min)
		yerr(ck, n, "needs at least one %s", item);
	else if (n->n > max)
		yerr(ck, n, "has %zu %ss; the API allows at most %zu", n->n, item, max);
	return n->n >= min && n->n <= max;
}
