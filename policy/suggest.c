/*
 * Baseline -> NetworkPolicy YAML that allows exactly the learned flows (the contract is in
 * include/moat/baseline.h). Every learned group is isolated both ways, so a flow passes only
 * when the source's egress rules and the destination's ingress rules both name it, and each
 * names exactly the learned keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "baseline_priv.h"
#include "selector.h"

#define NAME_PREFIX "moat-learned-"
#define NAME_GROUP_MAX 200	/* leaves room in 253 for the prefix, "-NN" and "-ingress" */

struct group {
	uint32_t peer;
	const char *why;	/* NULL: expressible; else why not (static text) */
	const char **absent;	/* DoesNotExist keys (static strings) */
	size_t nabsent;
	char *name;		/* NAME_PREFIX + readable group name, unique in its namespace */
};

struct suggest {
	const struct moat_baseline *b;
	FILE *out;
	struct group *groups;
	size_t ngroups;
	int32_t *group_of;	/* per peer: index into groups, or -1 */
	uint32_t *by_from;	/* flows sorted by (from, to, proto, port) */
	uint32_t *by_to;	/* flows sorted by (to, from, proto, port) */
	size_t cur_from, cur_to;	/* cursors into by_from, by_to as groups go in order */
};

/* ---- text: quoting and comments (label values are attacker-controlled) ---- */

/* A YAML double-quoted scalar: never read as a number, bool or null, never breaks a line. */
static void yq(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Text inside a # comment: printable ASCII only, so nothing can end the comment. */
static void comment_put(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void peer_describe(FILE *f, const struct bl_peer *p)
{
	char buf[64];

	if (!p->ns) {
		fputs(moat_addr_format(&p->addr, buf, sizeof(buf)), f);
		return;
	}
	comment_put(f, p->ns);
	fputc('/', f);
	for (size_t i = 0; i < p->labels.n; i++) {
		fputs(i ? "," : "", f);
		comment_put(f, p->labels.v[i].key);
		fputc('=', f);
		comment_put(f, p->labels.v[i].value);
	}
	if (!p->labels.n)
		fputs("(no labels)", f);
}

static void flow_describe(FILE *f, const struct moat_baseline *b, const struct bl_flow *fl)
{
	const char *proto = moat_proto_name(fl->proto);

	fputs("#   ", f);
	peer_describe(f, &b->peers[fl->from]);
	fputs(" -> ", f);
	peer_describe(f, &b->peers[fl->to]);
	if (moat_proto_has_ports(fl->proto))
		fprintf(f, " %u/%s\n", fl->port, proto);
	else if (proto)
		fprintf(f, " %s\n", proto);
	else
		fprintf(f, " protocol %u\n", fl->proto);
}

/* ---- groups ---- */

/*
 * Why group p cannot have a policy, or NULL. A group must be selected exactly, today and
 * for every container that comes later, or its learned flows would be granted to others.
 * Stable labels allow that (matchLabels on them, DoesNotExist on every other stable key:
 * group_exclude); a group keyed by other labels does not, as any container may carry more
 * labels than it and no selector says "and no other label".
 */
static const char *group_problem(const struct bl_peer *p)
{
	if (!dns_label_ok(p->ns))
		return "its namespace is not a valid Kubernetes namespace name";
	for (size_t i = 0; i < p->labels.n; i++)
		if (label_key_problem(p->labels.v[i].key) ||
		    label_value_problem(p->labels.v[i].value))
			return "a label key or value is not valid in a Kubernetes selector";
	if (!bl_labels_stable(&p->labels))
		return "it has no stable label (app, app.kubernetes.io/name, component, tier, role, "
		       "service, k8s-app, name or Compose's service and project), so no selector "
		       "can keep containers that come later out of it; label it (app=NAME) and "
		       "learn again";
	return NULL;
}

/*
 * The group's DoesNotExist keys: every stable key it lacks. A container is in the group
 * when its stable labels are exactly the group's (bl_peer_is), so these and matchLabels
 * select exactly the group, whatever containers come later.
 */
static int group_exclude(struct suggest *s, struct group *g)
{
	const struct bl_peer *p = &s->b->peers[g->peer];
	const char *const *keys;
	size_t n = bl_stable_keys(&keys);

	g->absent = calloc(n, sizeof(*g->absent));
	if (!g->absent)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!moat_labels_get(&p->labels, keys[i]))
			g->absent[g->nabsent++] = keys[i];
	return 0;
}

/* lowercase [a-z0-9] runs joined by single '-', at most max bytes, into buf. */
static size_t sanitize(char *buf, size_t at, size_t max, const char *s)
{
	for (; *s && at < max; s++) {
		char c = *s;

		c = (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			buf[at++] = c;
		else if (at && buf[at - 1] != '-')
			buf[at++] = '-';
	}
	return at;
}

/* "app-web", "service-web-project-shop": last key component and value, sanitised. */
static void group_base(const struct bl_peer *p, char *buf, size_t max)
{
	size_t at = 0;

	for (size_t i = 0; i < p->labels.n; i++) {
		const char *k = p->labels.v[i].key, *slash = strrchr(k, '/');
		const char *dot = strrchr(slash ? slash + 1 : k, '.');

		k = dot ? dot + 1 : slash ? slash + 1 : k;
		at = sanitize(buf, at, max, k);
		at = at && at < max && buf[at - 1] != '-' ? (buf[at++] = '-', at) : at;
		at = sanitize(buf, at, max, p->labels.v[i].value);
		at = at && at < max && buf[at - 1] != '-' ? (buf[at++] = '-', at) : at;
	}
	while (at && buf[at - 1] == '-')
		at--;
	buf[at] = 0;
	if (!at)
		strcpy(buf, "unlabelled");
}

static bool name_taken(const struct suggest *s, size_t upto, const char *ns, const char *name)
{
	for (size_t i = 0; i < upto; i++)
		if (s->groups[i].name && !strcmp(s->b->peers[s->groups[i].peer].ns, ns) &&
		    !strcmp(s->groups[i].name, name))
			return true;
	return false;
}

/* NAME_PREFIX + base, with -2, -3... when an earlier group of the namespace has it. */
static int group_name(struct suggest *s, size_t gi)
{
	const char *ns = s->b->peers[s->groups[gi].peer].ns;
	char base[NAME_GROUP_MAX + 1], *name = NULL;

	group_base(&s->b->peers[s->groups[gi].peer], base, NAME_GROUP_MAX);
	for (unsigned n = 1;; n++) {
		free(name);
		if ((n == 1 ? asprintf(&name, NAME_PREFIX "%s", base) :
			      asprintf(&name, NAME_PREFIX "%s-%u", base, n)) < 0)
			return -ENOMEM;
		if (!name_taken(s, gi, ns, name))
			break;
	}
	s->groups[gi].name = name;
	return 0;
}

/* Groups: every endpoint peer a flow uses, in peer order. */
static int groups_find(struct suggest *s)
{
	const struct moat_baseline *b = s->b;

	s->group_of = malloc((b->npeers ? b->npeers : 1) * sizeof(*s->group_of));
	s->groups = calloc(b->npeers ? b->npeers : 1, sizeof(*s->groups));
	if (!s->group_of || !s->groups)
		return -ENOMEM;
	for (size_t i = 0; i < b->npeers; i++)
		s->group_of[i] = -1;
	/* by_from is in from-peer order; groups are collected in peer order below. */
	for (size_t i = 0; i < b->nflows; i++) {
		const struct bl_flow *f = &b->flows[s->by_from[i]];

		s->group_of[f->from] = b->peers[f->from].ns ? 0 : -1;
		s->group_of[f->to] = b->peers[f->to].ns ? 0 : -1;
	}
	return 0;
}

static int peer_idx_cmp(const void *x, const void *y, void *arg)
{
	const struct moat_baseline *b = arg;

	return bl_peer_cmp(&b->peers[*(const uint32_t *)x], &b->peers[*(const uint32_t *)y]);
}

/* Sorts the groups found, then gives each its problems, exclusions and name. */
static int groups_build(struct suggest *s)
{
	uint32_t *peers = malloc((s->b->npeers ? s->b->npeers : 1) * sizeof(*peers));
	int ret = 0;

	if (!peers)
		return -ENOMEM;
	for (size_t i = 0; i < s->b->npeers; i++)
		if (s->group_of[i] == 0)
			peers[s->ngroups++] = (uint32_t)i;
	qsort_r(peers, s->ngroups, sizeof(*peers), peer_idx_cmp, (void *)s->b);
	for (size_t g = 0; g < s->ngroups && !ret; g++) {
		s->groups[g].peer = peers[g];
		s->group_of[peers[g]] = (int32_t)g;
		s->groups[g].why = group_problem(&s->b->peers[peers[g]]);
		ret = s->groups[g].why ? 0 : group_exclude(s, &s->groups[g]);
		ret = ret || s->groups[g].why ? ret : group_name(s, g);
	}
	free(peers);
	return ret;
}

/* ---- flows ---- */

static int by_to_cmp(const void *x, const void *y, void *arg)
{
	const struct moat_baseline *b = arg;
	const struct bl_flow *f = &b->flows[*(const uint32_t *)x];
	const struct bl_flow *g = &b->flows[*(const uint32_t *)y];
	int c = bl_peer_cmp(&b->peers[f->to], &b->peers[g->to]);

	c = c ? c : bl_peer_cmp(&b->peers[f->from], &b->peers[g->from]);
	c = c ? c : (f->proto > g->proto) - (f->proto < g->proto);
	return c ? c : (f->port > g->port) - (f->port < g->port);
}

static int flows_order(struct suggest *s)
{
	int ret = bl_flows_sorted(s->b, &s->by_from);

	if (ret || !s->b->nflows)
		return ret;
	s->by_to = malloc(s->b->nflows * sizeof(*s->by_to));
	if (!s->by_to)
		return -ENOMEM;
	memcpy(s->by_to, s->by_from, s->b->nflows * sizeof(*s->by_to));
	qsort_r(s->by_to, s->b->nflows, sizeof(*s->by_to), by_to_cmp, (void *)s->b);
	return 0;
}

/* A peer NetworkPolicy can name: an external address or an expressible group. */
static bool peer_ok(const struct suggest *s, uint32_t peer)
{
	return !s->b->peers[peer].ns || !s->groups[s->group_of[peer]].why;
}

/* Can NetworkPolicy say this flow (both peers, protocol and port)? */
static bool flow_ok(const struct suggest *s, const struct bl_flow *f)
{
	return moat_proto_has_ports(f->proto) && f->port && peer_ok(s, f->from) &&
	       peer_ok(s, f->to);
}

/* ---- YAML ---- */

static void indent(FILE *f, int n)
{
	fprintf(f, "%*s", n, "");
}

/* The body of a LabelSelector at indentation n (after "podSelector:"). */
static void selector_emit(FILE *f, const struct bl_peer *p, const struct group *g, int n)
{
	if (!p->labels.n && !g->nabsent) {
		fputs(" {}\n", f);
		return;
	}
	fputc('\n', f);
	if (p->labels.n) {
		indent(f, n);
		fputs("matchLabels:\n", f);
	}
	for (size_t i = 0; i < p->labels.n; i++) {
		indent(f, n + 2);
		yq(f, p->labels.v[i].key);
		fputs(": ", f);
		yq(f, p->labels.v[i].value);
		fputc('\n', f);
	}
	if (g->nabsent) {
		indent(f, n);
		fputs("matchExpressions:\n", f);
	}
	for (size_t i = 0; i < g->nabsent; i++) {
		indent(f, n);
		fputs("- key: ", f);
		yq(f, g->absent[i]);
		fputc('\n', f);
		indent(f, n);
		fputs("  operator: DoesNotExist\n", f);
	}
}

/* One item of from/to, at indentation n ("- " included), for peer seen from group self. */
static void peer_emit(struct suggest *s, uint32_t peer, const struct bl_peer *self, int n)
{
	const struct bl_peer *p = &s->b->peers[peer];
	char buf[64];
	struct moat_cidr c = { .family = p->addr.family };

	if (!p->ns) {
		c.plen = p->addr.family == AF_INET ? 32 : 128;
		memcpy(c.addr, p->addr.a, sizeof(c.addr));
		indent(s->out, n);
		fprintf(s->out, "- ipBlock:\n");
		indent(s->out, n + 4);
		fprintf(s->out, "cidr: %s\n", moat_cidr_format(&c, buf, sizeof(buf)));
		return;
	}
	indent(s->out, n);
	fputs("- podSelector:", s->out);
	selector_emit(s->out, p, &s->groups[s->group_of[peer]], n + 4);
	if (!strcmp(p->ns, self->ns))
		return;
	indent(s->out, n + 2);
	fputs("namespaceSelector:\n", s->out);
	indent(s->out, n + 4);
	fputs("matchLabels:\n", s->out);
	indent(s->out, n + 6);
	fputs("kubernetes.io/metadata.name: ", s->out);
	yq(s->out, p->ns);
	fputc('\n', s->out);
}

static void ports_emit(FILE *f, const struct suggest *s, const uint32_t *by, size_t lo,
		       size_t hi)
{
	fputs("    ports:\n", f);
	for (size_t i = lo; i < hi; i++) {
		const struct bl_flow *fl = &s->b->flows[by[i]];
		const char *proto = moat_proto_name(fl->proto);

		if (!flow_ok(s, fl))
			continue;
		fputs("    - protocol: ", f);
		for (; *proto; proto++)
			fputc(*proto - 'a' + 'A', f);
		fprintf(f, "\n      port: %u\n", fl->port);
	}
}

static uint32_t other(const struct bl_flow *f, bool egress)
{
	return egress ? f->to : f->from;
}

/* The rules of one policy: flows by[lo, hi) all share the group's side; one rule per peer. */
static void rules_emit(struct suggest *s, const struct bl_peer *self, const uint32_t *by,
		       size_t lo, size_t hi, bool egress)
{
	bool any = false;

	for (size_t i = lo; i < hi; i++)
		any |= flow_ok(s, &s->b->flows[by[i]]);
	if (any)
		fputs(egress ? "  egress:\n" : "  ingress:\n", s->out);
	while (lo < hi) {
		uint32_t peer = other(&s->b->flows[by[lo]], egress);
		size_t end = lo, ok = 0;

		for (; end < hi && other(&s->b->flows[by[end]], egress) == peer; end++)
			ok += flow_ok(s, &s->b->flows[by[end]]);
		if (ok) {
			fputs(egress ? "  - to:\n" : "  - from:\n", s->out);
			peer_emit(s, peer, self, 4);
			ports_emit(s->out, s, by, lo, end);
		}
		lo = end;
	}
}

/* The range of by (flows sorted on the group's side) for group peer, advancing *cur. */
static void range_find(const struct suggest *s, const uint32_t *by, bool egress, uint32_t peer,
		       size_t *cur, size_t *hi)
{
	const struct bl_peer *p = &s->b->peers[peer];
	size_t n = s->b->nflows;

	while (*cur < n && bl_peer_cmp(&s->b->peers[egress ? s->b->flows[by[*cur]].from :
					s->b->flows[by[*cur]].to], p) < 0)
		(*cur)++;
	*hi = *cur;
	while (*hi < n && (egress ? s->b->flows[by[*hi]].from : s->b->flows[by[*hi]].to) == peer)
		(*hi)++;
}

static void policy_emit(struct suggest *s, const struct group *g, bool egress, size_t lo,
			size_t hi)
{
	const struct bl_peer *p = &s->b->peers[g->peer];
	FILE *f = s->out;

	fputs("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n", f);
	fprintf(f, "  name: %s-%s\n  namespace: ", g->name, egress ? "egress" : "ingress");
	yq(f, p->ns);
	fputs("\nspec:\n  podSelector:", f);
	selector_emit(f, p, g, 4);
	fprintf(f, "  policyTypes:\n  - %s\n", egress ? "Egress" : "Ingress");
	rules_emit(s, p, egress ? s->by_from : s->by_to, lo, hi, egress);
}

static void group_emit(struct suggest *s, const struct group *g)
{
	size_t lo, hi;

	lo = s->cur_to;
	range_find(s, s->by_to, false, g->peer, &lo, &hi);
	s->cur_to = hi;
	policy_emit(s, g, false, lo, hi);
	lo = s->cur_from;
	range_find(s, s->by_from, true, g->peer, &lo, &hi);
	s->cur_from = hi;
	policy_emit(s, g, true, lo, hi);
}

static void time_put(FILE *f, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];

	if (gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		fputs(buf, f);
	else
		fprintf(f, "%" PRId64, t);
}

/* What the output leaves out, as comments. */
static void left_out_emit(struct suggest *s)
{
	bool head = false;

	for (size_t g = 0; g < s->ngroups; g++) {
		if (!s->groups[g].why)
			continue;
		fputs(head ? "" : "# Left out, as NetworkPolicy cannot say it (so denied):\n", s->out);
		head = true;
		fputs("#   group ", s->out);
		peer_describe(s->out, &s->b->peers[s->groups[g].peer]);
		fprintf(s->out, ": %s; it gets no policy\n", s->groups[g].why);
	}
	for (size_t i = 0; i < s->b->nflows; i++) {
		const struct bl_flow *f = &s->b->flows[s->by_from[i]];

		if (flow_ok(s, f))
			continue;
		fputs(head ? "" : "# Left out, as NetworkPolicy cannot say it (so denied):\n", s->out);
		head = true;
		flow_describe(s->out, s->b, f);
	}
}

static void header_emit(struct suggest *s)
{
	int64_t first = INT64_MAX, last = INT64_MIN;

	for (size_t i = 0; i < s->b->nflows; i++) {
		first = s->b->flows[i].first < first ? s->b->flows[i].first : first;
		last = s->b->flows[i].last > last ? s->b->flows[i].last : last;
	}
	fprintf(s->out, "# NetworkPolicy learned by Moat: %zu flows among %zu groups", s->b->nflows,
		s->ngroups);
	if (s->b->nflows) {
		fputs(", seen from ", s->out);
		time_put(s->out, first);
		fputs(" to ", s->out);
		time_put(s->out, last);
	}
	fputs(".\n# Every endpoint of these groups is isolated for ingress and egress; only the "
	      "learned\n# flows pass (the source's egress and the destination's ingress both allow "
	      "each).\n", s->out);
	left_out_emit(s);
}

static void suggest_fini(struct suggest *s)
{
	for (size_t g = 0; s->groups && g < s->ngroups; g++) {
		free(s->groups[g].absent);
		free(s->groups[g].name);
	}
	free(s->groups);
	free(s->group_of);
	free(s->by_from);
	free(s->by_to);
}

int moat_baseline_suggest(const struct moat_baseline *b, const struct moat_endpoint_set *es,
			  char **yaml_out)
{
	struct suggest s = { .b = b };	/* es: see the header, no longer needed */
	char *buf = NULL;
	size_t len;
	int ret = flows_order(&s);

	ret = ret ? ret : groups_find(&s);
	ret = ret ? ret : groups_build(&s);
	if (!ret) {
		s.out = open_memstream(&buf, &len);
		ret = s.out ? 0 : -ENOMEM;
	}
	if (!ret) {
		header_emit(&s);
		for (size_t g = 0; g < s.ngroups; g++)
			if (!s.groups[g].why)
				group_emit(&s, &s.groups[g]);
		ret = ferror(s.out) ? -ENOMEM : 0;
		ret = fclose(s.out) || ret ? -ENOMEM : 0;
	}
	suggest_fini(&s);
	if (ret)
		free(buf);
	else
		*yaml_out = buf;
	return ret;
}
