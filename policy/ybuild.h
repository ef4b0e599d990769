/*
 * The tree builder under yaml_parse (yaml.c), fed by libyaml's events or by the JSON reader
 * (yaml_json.c), so both give the same tree and the same checks: duplicate keys reported
 * and dropped, nesting and node limits, aliases counted. Positions are 1-based; anchor, when
 * not NULL, is a string in the tree's arena.
 */
#ifndef MOAT_POLICY_YBUILD_H
#define MOAT_POLICY_YBUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "yaml.h"

#define YBUILD_MAX_DEPTH 200

struct ybuild;

/* Each returns 0, -EINVAL (an error recorded: the input is unusable) or -ENOMEM. */
int ybuild_scalar(struct ybuild *b, unsigned line, unsigned col, const char *s, size_t len,
		  bool plain, const char *anchor);
int ybuild_open(struct ybuild *b, enum ynode_type t, unsigned line, unsigned col,
		const char *anchor);
int ybuild_close(struct ybuild *b);
/* ybuild_doc_end - the document is complete; an empty one is a null scalar at line:col. */
int ybuild_doc_end(struct ybuild *b, unsigned line, unsigned col);

/*
 * yaml_json_build - when buf is one JSON object or array that libyaml would read as the same
 * tree, feed it to b and return 0 (or -EINVAL / -ENOMEM from the builder). Returns
 * YAML_JSON_NOT, having fed nothing, for anything else (not JSON, or JSON where libyaml
 * differs: a surrogate escape, a key over 1,000 characters or not on its ':''s line, a tab
 * outside the collection, ...): the caller then reads buf with libyaml. With b NULL it only
 * tells (0 or YAML_JSON_NOT) whether it would take buf.
 */
#define YAML_JSON_NOT 1
int yaml_json_build(struct ybuild *b, const char *buf, size_t len);

#endif
