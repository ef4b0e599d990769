/*
 * YAML in, a small tree out: mappings, sequences and scalars, each with the line:column it
 * started at. Plus the checked accessors every document parser here uses, so that each
 * error names a file, a position, a field path and what was expected.
 *
 * The tree lives in an arena. Aliases are shared subtrees (so a walker may visit one node
 * twice); their expanded size counts against MOAT_POLICY_MAX_NODES, which keeps a
 * "billion laughs" document from ever being walked.
 */
#ifndef MOAT_POLICY_YAML_H
#define MOAT_POLICY_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/errors.h"

struct arena;

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
	enum ynode_type type;
	unsigned line, col;	/* 1-based */
	bool plain;		/* a scalar without quotes or tag: may read as null, a number, a bool */
	uint32_t size;		/* nodes it stands for with aliases expanded (itself included) */
	const char *str;	/* SCALAR: NUL-terminated; may hold a NUL before len */
	size_t len;
	struct ynode **kids;	/* SEQ: n items. MAP: n pairs, kids[2i] key, kids[2i+1] value */
	size_t n;
};

/*
 * The checking context of one file: where errors go, the arena, and the field path
 * ("spec.ingress[0].from[1]") that prefixes messages. After YCHECK_MAX_ERRORS errors in one
 * file the rest are counted, not recorded, so hostile input cannot flood the caller.
 */
#define YCHECK_MAX_ERRORS 100
struct ycheck {
	struct moat_diags *diags;
	const char *file;
	struct arena *arena;
	unsigned nerr;
	size_t plen;
	char path[256];
};

void ycheck_init(struct ycheck *ck, const char *file, struct arena *a, struct moat_diags *d);

/* yerr - record an error at node at (or at the file when at is NULL), prefixed by the path. */
void yerr(struct ycheck *ck, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* yerr_at - as yerr, at an explicit position and without the path prefix. */
void yerr_at(struct ycheck *ck, unsigned line, unsigned col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Path bookkeeping: push returns the length to restore with ypath_pop. */
size_t ypath_key(struct ycheck *ck, const char *key);
size_t ypath_index(struct ycheck *ck, size_t i);
void ypath_pop(struct ycheck *ck, size_t saved);

/*
 * yaml_parse - parse buf (len bytes, need not be NUL-terminated) into documents in the
 * arena tree (not ck->arena: the tree is scaffolding, freed long before the results).
 * Sets *docs (in tree, ndocs entries; an empty document is a null scalar) and
 * returns 0 when the tree is usable, even if duplicate keys were reported (the later one
 * is dropped). Returns -EINVAL when the input is unusable (syntax error, too big, too many
 * nodes) or -ENOMEM; errors are in ck. JSON, and the plain block YAML programs write, are
 * read by a faster path (yaml_fast.c) into the same tree.
 */
int yaml_parse(struct ycheck *ck, struct arena *tree, const char *buf, size_t len,
	       struct ynode ***docs, size_t *ndocs);
/* yaml_parse_libyaml - yaml_parse always through libyaml: what tests hold the fast path to. */
int yaml_parse_libyaml(struct ycheck *ck, struct arena *tree, const char *buf, size_t len,
		       struct ynode ***docs, size_t *ndocs);

/*
 * yaml_read_file - read path whole into *buf (malloc'd, caller frees) unless it is bigger
 * than MOAT_POLICY_MAX_FILE_BYTES. Returns 0, -EFBIG or -errno; errors go to d under path.
 */
int yaml_read_file(const char *path, char **buf, size_t *len, struct moat_diags *d);

/* Checked accessors. They record an error themselves and return false / NULL on mismatch. */
bool ynull(const struct ynode *n);
bool yexpect(struct ycheck *ck, const struct ynode *n, enum ynode_type t);
const char *ystr(struct ycheck *ck, const struct ynode *n);
bool yis_uint(const struct ynode *n);
bool yuint(struct ycheck *ck, const struct ynode *n, unsigned long lo, unsigned long hi,
	   unsigned long *out);
bool ybool(struct ycheck *ck, const struct ynode *n, bool *out);

/* ymap_get - the value of key in mapping n, or NULL (also when n is not a mapping). */
const struct ynode *ymap_get(const struct ynode *n, const char *key);

/*
 * A field of a mapping. Either fn parses the value into obj, returning 0 (errors, if any,
 * recorded) or -ENOMEM; or keep (see YKEEP) stores the value node into obj for the caller to
 * look at later; or neither (YIGNORE): the field is known and ignored. Null values are
 * skipped (Kubernetes reads "field: null" and "field:" as absent), so a kept node is NULL
 * when the field is absent or null.
 */
struct yfield {
	const char *name;
	int (*fn)(struct ycheck *ck, const struct ynode *val, void *obj);
	size_t keep;		/* offsetof(obj type, member) + 1, or 0 */
};
#define YFN(name, fn) { name, fn, 0 }
#define YKEEP(name, type, member) { name, NULL, offsetof(type, member) + 1 }
#define YIGNORE(name) { name, NULL, 0 }

/*
 * ywalk_map - check that n is a mapping whose keys are all in fields, and call each
 * field's fn with the path extended by the key. Unknown keys are errors naming the allowed
 * ones. Returns 0 or -ENOMEM.
 */
int ywalk_map(struct ycheck *ck, const struct ynode *n, const struct yfield *fields,
	      size_t nfields, void *obj);

/* ywalk_seq - check that n is a sequence; fn(item, index) for each with the path "[i]". */
int ywalk_seq(struct ycheck *ck, const struct ynode *n,
	      int (*fn)(struct ycheck *ck, const struct ynode *item, size_t i, void *obj),
	      void *obj);

/* ywalk_map_at / ywalk_seq_at - the same with the path extended by key first. */
int ywalk_map_at(struct ycheck *ck, const char *key, const struct ynode *n,
		 const struct yfield *fields, size_t nfields, void *obj);
int ywalk_seq_at(struct ycheck *ck, const char *key, const struct ynode *n,
		 int (*fn)(struct ycheck *ck, const struct ynode *item, size_t i, void *obj),
		 void *obj);

/* The kept values of a mapping's mutually exclusive fields (YKEEP into v[i]), for yone. */
struct yone_nodes {
	const struct ynode *v[6];
};

/*
 * yone - of the n fields names[i] whose kept nodes are vals[i] (NULL: absent), exactly one
 * must be present: returns its index, or -1 with "WHAT needs one of ..." or "WHAT has both
 * A and B; ..." recorded at at (the mapping that holds them).
 */
int yone(struct ycheck *ck, const struct ynode *at, const char *what,
	 const struct ynode *const *vals, const char *const *names, size_t n);

/*
 * ycount - sequence n holds from min (0 or 1) to max items, as the API's MinItems/MaxItems
 * say; item is the singular noun for one: true, or false with "needs at least one ITEM" or
 * "has N ITEMs; the API allows at most MAX" recorded at n. A non-sequence passes (ywalk_seq
 * reports it).
 */
bool ycount(struct ycheck *ck, const struct ynode *n, const char *item, size_t min, size_t max);

/* yseq_alloc - zeroed room in ck->arena for the items of sequence n (none when n is not a
 * sequence: ywalk_seq reports that). NULL on ENOMEM. */
void *yseq_alloc(struct ycheck *ck, const struct ynode *n, size_t sz);

#endif
