/*
 * A pod's labels (pods.h): every (key, value) of the pod and its containers, ranked (the pod
 * 0, then containers by name), sorted by key and rank; the first of each key is taken.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pods.h"

struct ranked {
	const struct moat_label *l;
	const char *who;	/* NULL for the pod: it sorts first */
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	int c = strcmp(x->l->key, y->l->key);

	if (c || x->who == y->who)
		return c;
	if (!x->who || !y->who)
		return x->who ? 1 : -1;
	return strcmp(x->who, y->who);
}

static size_t ranked_add(struct ranked *v, size_t k, const struct moat_labels *l,
			 const char *who)
{
	for (size_t i = 0; l && i < l->n; i++)
		v[k++] = (struct ranked){ &l->v[i], who };
	return k;
}

int pod_labels_merge(const struct moat_labels *owner, const struct pod_member *members,
		     size_t n, struct moat_labels *out, size_t *conflicts)
{
	size_t total = owner ? owner->n : 0, k, m = 0, bad = 0;
	struct ranked *v;
	bool split = false;

	for (size_t i = 0; i < n; i++)
		total += members[i].labels ? members[i].labels->n : 0;
	v = calloc(total + 1, sizeof(*v));
	out->v = calloc(total + 1, sizeof(*out->v));
	if (!v || !out->v) {
		free(v);
		free(out->v);
		out->v = NULL;
		return -ENOMEM;
	}
	k = ranked_add(v, 0, owner, NULL);
	for (size_t i = 0; i < n; i++)
		k = ranked_add(v, k, members[i].labels, members[i].name ? members[i].name : "");
	qsort(v, k, sizeof(*v), ranked_cmp);
	for (size_t i = 0; i < k; i++) {
		if (!m || strcmp(out->v[m - 1].key, v[i].l->key)) {
			out->v[m++] = *v[i].l;
			split = false;
		} else if (!split && strcmp(out->v[m - 1].value, v[i].l->value)) {
			split = true;	/* counted once per key */
			bad++;
		}
	}
	out->n = m;
	free(v);
	if (conflicts)
		*conflicts = bad;
	return 0;
}
