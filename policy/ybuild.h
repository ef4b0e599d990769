/*
 * The tree builder under yaml_parse (yaml.c), fed by libyaml's events or by the fast reader
 * (yaml_fast.c), so both give the same tree and the same checks: duplicate keys reported
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
 * yaml_fast_build - when buf is JSON or in the block subset (see yaml_fast.c) and libyaml
 * would read it as the same tree, feed it to b and return 0 (or -EINVAL / -ENOMEM from the
 * builder). Returns YAML_FAST_NOT, having fed nothing, for anything else (other YAML, or
 * text where libyaml differs: a surrogate escape, a key over 1,000 characters or not on its
 * ':''s line, a tab outside a flow collection, ...): the caller then reads buf with libyaml. With b NULL it only
 * tells (0 or YAML_FAST_NOT) whether it would take buf.
 */
#define YAML_FAST_NOT 1
int yaml_fast_build(struct ybuild *b, const char *buf, size_t len);

#endif
