/* Group names of endpoints: the baseline's key labels as text. */
#include <stdio.h>

#include "baseline_priv.h"
#include "moat/baseline_group.h"

/* Appends like snprintf into buf at *at, tracking the length the whole text needs. */
static void put(char *buf, size_t len, size_t *at, const char *a, const char *b, const char *c)
{
	int n = snprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0, "%s%s%s", a, b, c);

	*at += n > 0 ? (size_t)n : 0;
}

size_t moat_baseline_group_name(const struct moat_endpoint *e, char *buf, size_t len)
{
	bool stable = bl_labels_stable(&e->labels), any = false;
	size_t at = 0;

	if (len)
		buf[0] = '\0';
	put(buf, len, &at, e->namespace ? e->namespace : "default", "/", "");
	for (size_t i = 0; i < e->labels.n; i++) {
		if (!bl_label_is_key(&e->labels, i, stable))
			continue;
		put(buf, len, &at, any ? "," : "", e->labels.v[i].key, "=");
		put(buf, len, &at, e->labels.v[i].value, "", "");
		any = true;
	}
	if (!any)
		put(buf, len, &at, e->name, "", "");
	return at;
}
