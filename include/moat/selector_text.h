/*
 * Label selectors as people type them on a command line, in kubectl's syntax:
 *   app=web,tier!=db     app==web     tier in (api, db)     tier notin (db)     canary     !canary
 * Requirements are separated by commas and all must hold; an empty text selects everything.
 * "k!=v" and "k notin (...)" also match endpoints without the label (Kubernetes' NotIn).
 */
#ifndef MOAT_SELECTOR_TEXT_H
#define MOAT_SELECTOR_TEXT_H

#include <stddef.h>

#include "moat/policy.h"

/* A parsed selector and the memory behind it. sel is what moat_selector_match takes. */
struct moat_selector_text {
	struct moat_selector sel;
	void *priv;		/* allocator; not for callers */
};

/*
 * moat_selector_text_parse - parse text into *out (free with moat_selector_text_free).
 * Keys and values are taken as written (container labels are not held to Kubernetes'
 * syntax); they cannot contain spaces, commas, '=', '!' or parentheses.
 * Returns 0, -EINVAL with the reason and the 1-based column in err ("column 5: expected a
 * value after '='"), or -ENOMEM.
 */
int moat_selector_text_parse(const char *text, struct moat_selector_text **out, char *err,
			     size_t errlen);

/* moat_selector_text_free - NULL-safe. */
void moat_selector_text_free(struct moat_selector_text *st);

#endif
