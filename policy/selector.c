/* Label selectors: matching (the hot side) and parsing from YAML with Kubernetes' checks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "selector.h"

/* ---- matching ---- */

const char *moat_labels_get(const struct moat_labels *labels, const char *key)
{
	size_t lo = 0, hi = labels->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, labels->v[mid].key);

		if (!c)
			return labels->v[mid].value;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool value_in(const struct moat_sel_expr *e, const char *v)
{
	for (size_t i = 0; i < e->nvalues; i++)
		if (!strcmp(e->values[i], v))
			return true;
	return false;
}

/* Kubernetes: NotIn also matches when the label is absent. */
static bool expr_match(const struct moat_sel_expr *e, const struct moat_labels *labels)
{
	const char *v = moat_labels_get(labels, e->key);

	switch (e->op) {
	case MOAT_SEL_IN:
		return v && value_in(e, v);
	case MOAT_SEL_NOT_IN:
		return !v || !value_in(e, v);
	case MOAT_SEL_EXISTS:
		return v != NULL;
	case MOAT_SEL_DOES_NOT_EXIST:
		return v == NULL;
	}
	return false;
}

bool moat_selector_match(const struct moat_selector *sel, const struct moat_labels *labels)
{
	for (size_t i = 0; i < sel->match.n; i++) {
		const char *v = moat_labels_get(labels, sel->match.v[i].key);

		if (!v || strcmp(v, sel->match.v[i].value))
			return false;
	}
	for (size_t i = 0; i < sel->nexprs; i++)
		if (!expr_match(&sel->exprs[i], labels))
			return false;
	return true;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct moat_label *)a)->key, ((const struct moat_label *)b)->key);
}

bool moat_labels_equal(const struct moat_labels *a, const struct moat_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

int moat_labels_sort(struct moat_labels *labels)
{
	if (labels->n < 2)
		return 0;
	qsort(labels->v, labels->n, sizeof(*labels->v), label_cmp);
	for (size_t i = 1; i < labels->n; i++)
		if (!strcmp(labels->v[i - 1].key, labels->v[i].key))
			return -EINVAL;
	return 0;
}

/* ---- label syntax (k8s.io/apimachinery validation) ---- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* 1-63 of [A-Za-z0-9_.-], alphanumeric at both ends. */
static bool qualified_name_ok(const char *s, size_t len)
{
	if (!len || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

bool dns_label_ok(const char *s)
{
	size_t len = strlen(s);

	return len && len <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len &&
	       s[0] != '-' && s[len - 1] != '-';
}

bool dns_subdomain_ok(const char *s, size_t len)
{
	size_t start = 0;

	if (!len || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
				return false;
			continue;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

const char *label_key_problem(const char *key)
{
	const char *slash = strchr(key, '/');
	const char *name = slash ? slash + 1 : key;

	if (slash && !dns_subdomain_ok(key, slash - key))
		return "the prefix before '/' must be a DNS subdomain (lowercase letters, digits, "
		       "'-' and '.', at most 253 characters)";
	if (!qualified_name_ok(name, strlen(name)))
		return "the name must be 1-63 characters of letters, digits, '-', '_' or '.', "
		       "starting and ending with a letter or digit";
	return NULL;
}

const char *label_value_problem(const char *value)
{
	size_t len = strlen(value);

	if (len && !qualified_name_ok(value, len))
		return "a label value must be empty or at most 63 characters of letters, digits, "
		       "'-', '_' or '.', starting and ending with a letter or digit";
	return NULL;
}

/* ---- parsing ---- */

/* A label value: any scalar, null reading as "" (as Kubernetes decodes it). */
static const char *label_str(struct ycheck *ck, const struct ynode *n)
{
	return ynull(n) ? "" : ystr(ck, n);
}

/* Checks one pair; false (error recorded) when it cannot be a label. */
static bool label_ok(struct ycheck *ck, const struct ynode *k, const char *v, bool strict)
{
	const char *why;

	if (!k->str[0] || strlen(k->str) != k->len) {
		yerr(ck, k, "a label key must not be empty");
		return false;
	}
	if (!strict)
		return true;
	why = label_key_problem(k->str);
	if (why) {
		yerr(ck, k, "invalid label key \"%s\": %s", k->str, why);
		return false;
	}
	why = label_value_problem(v);
	if (why)
		yerr(ck, k, "invalid value \"%s\" for label \"%s\": %s", v, k->str, why);
	return !why;
}

int labels_parse(struct ycheck *ck, const struct ynode *n, bool strict, size_t extra,
		 struct moat_labels *out)
{
	struct moat_labels l = { 0 };

	size_t n_in = n->type == YNODE_MAP ? n->n : 0;

	*out = l;
	l.v = arena_array(ck->arena, n_in + extra, sizeof(*l.v));
	if (!l.v)
		return -ENOMEM;
	if (!yexpect(ck, n, YNODE_MAP)) {
		*out = l;
		return 0;
	}
	for (size_t i = 0; i < n_in; i++) {
		const struct ynode *k = n->kids[2 * i];
		const char *v = label_str(ck, n->kids[2 * i + 1]);

		if (!v || !label_ok(ck, k, v, strict))
			continue;
		l.v[l.n].key = arena_strdup(ck->arena, k->str);
		l.v[l.n].value = arena_strdup(ck->arena, v);
		if (!l.v[l.n].key || !l.v[l.n].value)
			return -ENOMEM;
		l.n++;
	}
	moat_labels_sort(&l);	/* keys of one mapping are unique */
	*out = l;
	return 0;
}

void labels_put(struct moat_labels *labels, char *key, char *value)
{
	for (size_t i = 0; i < labels->n; i++)
		if (!strcmp(labels->v[i].key, key)) {
			labels->v[i].value = value;
			return;
		}
	labels->v[labels->n++] = (struct moat_label){ key, value };
	moat_labels_sort(labels);
}

static const struct {
	const char *name;
	enum moat_sel_op op;
	bool values;		/* needs values (else must have none) */
} sel_ops[] = {
	{ "In", MOAT_SEL_IN, true },
	{ "NotIn", MOAT_SEL_NOT_IN, true },
	{ "Exists", MOAT_SEL_EXISTS, false },
	{ "DoesNotExist", MOAT_SEL_DOES_NOT_EXIST, false },
};

struct expr_nodes {
	const struct ynode *key, *op, *values;
};

static const struct yfield expr_fields[] = {
	YKEEP("key", struct expr_nodes, key),
	YKEEP("operator", struct expr_nodes, op),
	YKEEP("values", struct expr_nodes, values),
};

static int expr_value(struct ycheck *ck, const struct ynode *item, size_t i, void *obj)
{
	struct moat_sel_expr *e = obj;
	const char *v = ystr(ck, item), *why = v ? label_value_problem(v) : NULL;

	if (why)
		yerr(ck, item, "invalid value \"%s\": %s", v, why);
	if (!v || why)
		return 0;
	e->values[e->nvalues] = arena_strdup(ck->arena, v);
	return e->values[e->nvalues++] ? 0 : -ENOMEM;
}

/* The operator, checked against how many values it came with; -1 when wrong (recorded). */
static int expr_op(struct ycheck *ck, const struct ynode *at, const struct expr_nodes *x)
{
	const char *name = ystr(ck, x->op);
	size_t nvalues = x->values && x->values->type == YNODE_SEQ ? x->values->n : 0;

	for (size_t i = 0; name && i < sizeof(sel_ops) / sizeof(sel_ops[0]); i++) {
		if (strcmp(name, sel_ops[i].name))
			continue;
		if (sel_ops[i].values && !nvalues)
			yerr(ck, x->values ? x->values : x->op, "operator %s needs at least one value", name);
		else if (!sel_ops[i].values && x->values)
			yerr(ck, x->values, "operator %s takes no values", name);
		else
			return sel_ops[i].op;
		return -1;
	}
	if (name)
		yerr(ck, x->op, "unknown operator \"%s\" (allowed: In, NotIn, Exists, DoesNotExist)",
		     name);
	return -1;
}

static int expr_parse(struct ycheck *ck, const struct ynode *item, size_t i, void *obj)
{
	struct moat_selector *sel = obj;
	struct moat_sel_expr *e = &sel->exprs[sel->nexprs];
	struct expr_nodes x = { 0 };
	const char *key, *why;
	int ret = ywalk_map(ck, item, expr_fields, 3, &x), op;

	if (ret < 0 || item->type != YNODE_MAP)
		return ret;
	if (!x.key || !x.op) {
		yerr(ck, item, "a match expression needs a key and an operator");
		return 0;
	}
	key = ystr(ck, x.key);
	why = key ? label_key_problem(key) : NULL;
	if (why)
		yerr(ck, x.key, "invalid label key \"%s\": %s", key, why);
	op = expr_op(ck, item, &x);
	if (!key || why || op < 0)
		return 0;
	e->op = op;
	e->key = arena_strdup(ck->arena, key);
	e->values = arena_array(ck->arena, x.values ? x.values->n : 0, sizeof(char *));
	if (!e->key || !e->values)
		return -ENOMEM;
	sel->nexprs++;
	if (!x.values)
		return 0;
	size_t saved = ypath_key(ck, "values");
	ret = ywalk_seq(ck, x.values, expr_value, e);
	ypath_pop(ck, saved);
	return ret;
}

struct sel_nodes {
	const struct ynode *labels, *exprs, *service, *project;
};

static const struct yfield sel_fields[] = {
	YKEEP("matchLabels", struct sel_nodes, labels),
	YKEEP("matchExpressions", struct sel_nodes, exprs),
	YKEEP("composeService", struct sel_nodes, service),
	YKEEP("composeProject", struct sel_nodes, project),
};

/* composeService: web -> matchLabels com.docker.compose.service=web (Moat's shorthand). */
static int compose_put(struct ycheck *ck, const struct ynode *n, const char *label,
		       struct moat_selector *sel)
{
	const char *v = ystr(ck, n), *why = v ? label_value_problem(v) : NULL;
	char *key, *value;

	if (why || (v && !v[0]))
		yerr(ck, n, "invalid Compose name \"%s\": %s", v, why ? why : "it is empty");
	if (!v || why || !v[0])
		return 0;
	if (moat_labels_get(&sel->match, label)) {
		yerr(ck, n, "matchLabels already sets %s", label);
		return 0;
	}
	key = arena_strdup(ck->arena, label);
	value = arena_strdup(ck->arena, v);
	if (!key || !value)
		return -ENOMEM;
	labels_put(&sel->match, key, value);
	return 0;
}

static int sel_compose(struct ycheck *ck, const struct sel_nodes *x, struct moat_selector *sel)
{
	size_t saved;
	int ret = 0;

	if (x->service) {
		saved = ypath_key(ck, "composeService");
		ret = compose_put(ck, x->service, MOAT_COMPOSE_SERVICE_LABEL, sel);
		ypath_pop(ck, saved);
	}
	if (!ret && x->project) {
		saved = ypath_key(ck, "composeProject");
		ret = compose_put(ck, x->project, MOAT_COMPOSE_PROJECT_LABEL, sel);
		ypath_pop(ck, saved);
	}
	return ret;
}

static int sel_exprs(struct ycheck *ck, const struct ynode *n, struct moat_selector *sel)
{
	size_t saved = ypath_key(ck, "matchExpressions");
	int ret = 0;

	if (n->type == YNODE_SEQ) {
		sel->exprs = arena_array(ck->arena, n->n, sizeof(*sel->exprs));
		ret = sel->exprs ? 0 : -ENOMEM;
	}
	if (!ret)
		ret = ywalk_seq(ck, n, expr_parse, sel);
	ypath_pop(ck, saved);
	return ret;
}

int selector_parse(struct ycheck *ck, const struct ynode *n, struct moat_selector *sel)
{
	struct sel_nodes x = { 0 };
	struct moat_labels empty = { 0 };
	int ret = ywalk_map(ck, n, sel_fields, 4, &x);
	size_t saved;

	memset(sel, 0, sizeof(*sel));
	if (ret < 0)
		return ret;
	if (x.labels) {
		saved = ypath_key(ck, "matchLabels");
		ret = labels_parse(ck, x.labels, true, 2, &sel->match);
		ypath_pop(ck, saved);
	} else {
		sel->match = empty;
		sel->match.v = arena_array(ck->arena, 2, sizeof(*sel->match.v));
		ret = sel->match.v ? 0 : -ENOMEM;
	}
	if (!ret)
		ret = sel_compose(ck, &x, sel);
	if (!ret && x.exprs)
		ret = sel_exprs(ck, x.exprs, sel);
	return ret;
}

int selector_parse_at(struct ycheck *ck, const char *key, const struct ynode *n,
		      struct moat_selector *sel)
{
	size_t saved = ypath_key(ck, key);
	int ret = selector_parse(ck, n, sel);

	ypath_pop(ck, saved);
	return ret;
}
