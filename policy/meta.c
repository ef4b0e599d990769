/* Object metadata: names, labels, annotations (Moat's mode), positions. */
#include <errno.h>
#include <string.h>

#include "arena.h"
#include "meta.h"
#include "selector.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct moat_pos meta_pos(const struct ycheck *ck, const struct ynode *n)
{
	return (struct moat_pos){ ck->file, n->line, n->col };
}

int meta_name_parse(struct ycheck *ck, const struct ynode *n, bool subdomain, char **out)
{
	const char *s = ystr(ck, n);

	if (!s)
		return 0;
	if (!(subdomain ? dns_subdomain_ok(s, strlen(s)) : dns_label_ok(s))) {
		yerr(ck, n, "invalid name \"%s\": use lowercase letters, digits and '-'%s, "
		     "starting and ending with a letter or digit, at most %d characters", s,
		     subdomain ? " (and '.')" : "", subdomain ? 253 : 63);
		return 0;
	}
	*out = arena_strdup(ck->arena, s);
	return *out ? 0 : -ENOMEM;
}

static const struct {
	const char *name;
	enum moat_mode mode;
} modes[] = {
	{ "enforce", MOAT_MODE_ENFORCE },
	{ "monitor", MOAT_MODE_MONITOR },
};

static void mode_parse(struct ycheck *ck, const struct ynode *n, enum moat_mode *mode)
{
	const char *s = ystr(ck, n);

	for (size_t i = 0; s && i < ARRAY_SIZE(modes); i++)
		if (!strcmp(s, modes[i].name)) {
			*mode = modes[i].mode;
			return;
		}
	if (s)
		yerr(ck, n, "annotation %s must be \"enforce\" or \"monitor\", got \"%s\"",
		     MOAT_MODE_ANNOTATION, s);
}

int meta_annotations_parse(struct ycheck *ck, const struct ynode *n, void *mode)
{
	if (!yexpect(ck, n, YNODE_MAP))
		return 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];

		if (!strcmp(k->str, MOAT_MODE_ANNOTATION))
			mode_parse(ck, v, mode);
		else if (!ynull(v))
			ystr(ck, v);
	}
	return 0;
}

int meta_labels_check(struct ycheck *ck, const struct ynode *n, void *unused)
{
	struct moat_labels scratch;

	return labels_parse(ck, n, true, 0, &scratch);
}

int meta_walk(struct ycheck *ck, const struct ynode *doc, const struct ynode *meta,
	      const struct yfield *fields, size_t nfields, struct meta_nodes *x, size_t *saved)
{
	int ret = meta ? ywalk_map_at(ck, "metadata", meta, fields, nfields, x) : 0;

	if (ret < 0)
		return ret;
	if (meta && meta->type != YNODE_MAP)
		return 0;
	*saved = ypath_key(ck, "metadata");
	if (!x->name)
		yerr(ck, meta ? meta : doc, "name is required");
	return 1;
}
