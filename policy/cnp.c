/*
 * Cluster-wide policies: ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) and
 * AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1) into struct moat_cnp, checked
 * as the API's CRDs check them (kubebuilder markers, CEL rules) and as moat-policy(5) says
 * Moat must. The three documents differ in a few words and limits: a table (struct lang)
 * holds the differences, one parser reads them all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cidr.h"
#include "cnp.h"
#include "domain.h"
#include "meta.h"
#include "ports.h"
#include "selector.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- what differs between the three documents ---- */

struct action_word {
	const char *word;
	enum moat_action action;
};

static const struct action_word accept_words[] = {
	{ "Accept", MOAT_ACTION_ACCEPT }, { "Deny", MOAT_ACTION_DENY }, { "Pass", MOAT_ACTION_PASS },
};
static const struct action_word allow_words[] = {
	{ "Allow", MOAT_ACTION_ACCEPT }, { "Deny", MOAT_ACTION_DENY }, { "Pass", MOAT_ACTION_PASS },
};

/* A field that belongs elsewhere, and the words that say where. Lists end with { NULL }. */
struct hint {
	const char *key, *msg;
};

struct spec_nodes {
	const struct ynode *tier, *priority, *subject, *in, *out;
};

static const struct yfield cnp_spec[] = {
	YKEEP("tier", struct spec_nodes, tier), YKEEP("priority", struct spec_nodes, priority),
	YKEEP("subject", struct spec_nodes, subject), YKEEP("ingress", struct spec_nodes, in),
	YKEEP("egress", struct spec_nodes, out),
};
#define ANP_SPEC (cnp_spec + 1)		/* priority, subject, ingress, egress */
#define BANP_SPEC (cnp_spec + 2)	/* subject, ingress, egress */

#define PODSELECTOR_HINT { "podSelector", "a cluster-wide policy selects its pods with subject " \
			   "(podSelector is NetworkPolicy's field)" }
static const struct hint cnp_spec_hints[] = { PODSELECTOR_HINT, { NULL, NULL } };
static const struct hint anp_spec_hints[] = {
	{ "tier", "an AdminNetworkPolicy has no tier: it is the Admin tier" },
	PODSELECTOR_HINT, { NULL, NULL },
};
static const struct hint banp_spec_hints[] = {
	{ "tier", "a BaselineAdminNetworkPolicy has no tier: it is the Baseline tier" },
	{ "priority", "a BaselineAdminNetworkPolicy has no priority: it comes after every "
		      "ClusterNetworkPolicy of the Baseline tier" },
	PODSELECTOR_HINT, { NULL, NULL },
};

struct rule_nodes {
	const struct ynode *name, *action, *peers, *ports;
};

#define RULE_FIELDS(peers_key, ports_key)                                                  \
	{ YKEEP("name", struct rule_nodes, name), YKEEP("action", struct rule_nodes, action), \
	  YKEEP(peers_key, struct rule_nodes, peers), YKEEP(ports_key, struct rule_nodes, ports) }
static const struct yfield cnp_in_rule[] = RULE_FIELDS("from", "protocols");
static const struct yfield cnp_out_rule[] = RULE_FIELDS("to", "protocols");
static const struct yfield v1_in_rule[] = RULE_FIELDS("from", "ports");
static const struct yfield v1_out_rule[] = RULE_FIELDS("to", "ports");

#define TO_HINT { "to", "an ingress rule says from (to is for egress rules)" }
#define FROM_HINT { "from", "an egress rule says to (from is for ingress rules)" }
#define PORTS_HINT { "ports", "a ClusterNetworkPolicy rule matches ports with protocols " \
		     "(ports is the v1alpha1 field)" }
#define PROTOCOLS_HINT { "protocols", "an AdminNetworkPolicy or BaselineAdminNetworkPolicy " \
			 "rule matches ports with ports (protocols is ClusterNetworkPolicy's field)" }
static const struct hint cnp_in_hints[] = { TO_HINT, PORTS_HINT, { NULL, NULL } };
static const struct hint cnp_out_hints[] = { FROM_HINT, PORTS_HINT, { NULL, NULL } };
static const struct hint v1_in_hints[] = { TO_HINT, PROTOCOLS_HINT, { NULL, NULL } };
static const struct hint v1_out_hints[] = { FROM_HINT, PROTOCOLS_HINT, { NULL, NULL } };

/* Peers: exactly one of these, in this order (ingress has the first two). */
enum { PEER_NAMESPACES, PEER_PODS, PEER_NODES, PEER_NETWORKS, PEER_DOMAINS };
static const char *const peer_names[] = { "namespaces", "pods", "nodes", "networks",
					  "domainNames" };
static const struct yfield peer_fields[] = {
	YKEEP("namespaces", struct yone_nodes, v[0]), YKEEP("pods", struct yone_nodes, v[1]),
	YKEEP("nodes", struct yone_nodes, v[2]), YKEEP("networks", struct yone_nodes, v[3]),
	YKEEP("domainNames", struct yone_nodes, v[4]),
};

static const struct hint in_peer_hints[] = {
	{ "networks", "networks is for egress peers only (an ingress peer is namespaces or pods)" },
	{ "domainNames", "domainNames is for egress peers only: a name says where a connection "
			 "goes, not where it comes from" },
	{ "nodes", "nodes is for egress peers only (an ingress peer is namespaces or pods)" },
	{ NULL, NULL },
};
static const struct hint banp_peer_hints[] = {
	{ "domainNames", "a BaselineAdminNetworkPolicy has no domainNames (a ClusterNetworkPolicy "
			 "of the Baseline tier has)" },
	{ NULL, NULL },
};

struct lang {
	const char *name;
	const struct action_word *actions;
	size_t nactions;
	const char *actions_list, *other_accept;	/* other_accept: the other version's word */
	const struct yfield *spec;
	size_t nspec;
	const struct hint *spec_hints;
	bool tier, priority, v1alpha1;	/* v1alpha1: pods.namespaceSelector is required */
	const struct yfield *rule[2];	/* [egress] */
	const struct hint *rule_hints[2];
	size_t npeer[2];		/* how many of peer_fields a peer may have */
	const struct hint *peer_hints[2];
	int (*port_parse)(struct ycheck *ck, const struct ynode *n, struct moat_port *out);
	const char *ports_key, *port_word;
	size_t max_rules, max_peers, max_ports;	/* the API's MaxItems */
};

static const struct lang langs[] = {
	[MOAT_CNP_CLUSTER] = {
		"ClusterNetworkPolicy", accept_words, 3, "Accept, Deny, Pass", "Allow",
		cnp_spec, 5, cnp_spec_hints, true, true, false,
		{ cnp_in_rule, cnp_out_rule }, { cnp_in_hints, cnp_out_hints },
		{ 2, 5 }, { in_peer_hints, NULL },
		port_protocol_parse, "protocols", "protocol", 25, 25, 25,
	},
	[MOAT_CNP_ADMIN] = {
		"AdminNetworkPolicy", allow_words, 3, "Allow, Deny, Pass", "Accept",
		ANP_SPEC, 4, anp_spec_hints, false, true, true,
		{ v1_in_rule, v1_out_rule }, { v1_in_hints, v1_out_hints },
		{ 2, 5 }, { in_peer_hints, NULL },
		port_v1alpha1_parse, "ports", "port", 100, 100, 100,
	},
	[MOAT_CNP_BASELINE] = {
		"BaselineAdminNetworkPolicy", allow_words, 2, "Allow, Deny", "Accept",
		BANP_SPEC, 3, banp_spec_hints, false, false, true,
		{ v1_in_rule, v1_out_rule }, { v1_in_hints, v1_out_hints },
		{ 2, 4 }, { in_peer_hints, banp_peer_hints },
		port_v1alpha1_parse, "ports", "port", 100, 100, 100,
	},
};

/* networks and domainNames: at most 25 entries in each version. */
#define MAX_LIST 25
/* A rule's name: at most 100 characters in each version. */
#define MAX_RULE_NAME 100

const char *moat_cnp_kind_name(enum moat_cnp_kind kind)
{
	return langs[kind].name;
}

const char *moat_cnp_action_name(enum moat_cnp_kind kind, enum moat_action action)
{
	return (kind == MOAT_CNP_CLUSTER ? accept_words : allow_words)[action].word;
}

const char *moat_tier_name(enum moat_tier tier)
{
	return tier == MOAT_TIER_ADMIN ? "Admin" : "Baseline";
}

char *moat_cnp_rule_format(const struct moat_cnp *c, bool egress, uint32_t rule, char *buf,
			   size_t len)
{
	const struct moat_cnp_rule *r = &(egress ? c->out : c->in)[rule];

	if (r->name[0])
		snprintf(buf, len, "%s/%s/%s", moat_tier_name(c->tier), c->name, r->name);
	else
		snprintf(buf, len, "%s/%s/#%u", moat_tier_name(c->tier), c->name, rule);
	return buf;
}

/* ---- reading state ---- */

struct ctx {
	struct ycheck *ck;
	const struct lang *l;
	struct moat_cnp *cnp;
};

/* The rules of one direction being read. */
struct rules {
	struct ctx *c;
	bool egress;
	struct moat_cnp_rule *v;
	size_t n;
};

/* One rule being read; group: where the peers of the current networks/domainNames start. */
struct rule_ctx {
	struct ctx *c;
	bool egress;
	struct moat_cnp_rule *r;
	size_t group;
};

static const char *hint_for(const char *key, const struct hint *hints)
{
	for (size_t i = 0; hints && hints[i].key; i++)
		if (!strcmp(key, hints[i].key))
			return hints[i].msg;
	return NULL;
}

/*
 * ywalk_map, but a key of hints gets its own words instead of "unknown field": the walk
 * then runs on a copy of the mapping without it. *hinted (may be NULL) tells whether one did.
 */
static int hint_walk(struct ycheck *ck, const struct ynode *n, const struct yfield *fields,
		     size_t nfields, const struct hint *hints, void *obj, bool *hinted)
{
	struct ynode copy;
	size_t k = 0;

	if (n->type != YNODE_MAP)
		return ywalk_map(ck, n, fields, nfields, obj);
	copy = *n;
	copy.kids = arena_array(ck->arena, 2 * n->n, sizeof(*copy.kids));
	if (!copy.kids)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		const char *msg = hint_for(n->kids[2 * i]->str, hints);

		if (msg) {
			yerr(ck, n->kids[2 * i], "%s", msg);
			continue;
		}
		copy.kids[2 * k] = n->kids[2 * i];
		copy.kids[2 * k++ + 1] = n->kids[2 * i + 1];
	}
	copy.n = k;
	if (hinted)
		*hinted = k < n->n;
	return ywalk_map(ck, &copy, fields, nfields, obj);
}

/* ---- selectors ---- */

static const struct yfield pods_fields[] = {
	YKEEP("namespaceSelector", struct yone_nodes, v[0]),
	YKEEP("podSelector", struct yone_nodes, v[1]),
};

/* pods: {namespaceSelector, podSelector} (NamespacedPod), both selectors. */
static int pods_parse(struct ctx *c, const struct ynode *n, struct moat_selector *ns,
		      struct moat_selector *pod)
{
	struct ycheck *ck = c->ck;
	struct yone_nodes x = { { NULL } };
	size_t saved = ypath_key(ck, "pods");
	int ret = ywalk_map(ck, n, pods_fields, ARRAY_SIZE(pods_fields), &x);

	if (!ret && n->type == YNODE_MAP) {
		if (!x.v[1])
			yerr(ck, n, "podSelector is required (podSelector: {} selects every pod)");
		if (!x.v[0] && c->l->v1alpha1)
			yerr(ck, n, "namespaceSelector is required in v1alpha1 "
			     "(namespaceSelector: {} selects every namespace)");
		if (x.v[0])
			ret = selector_parse_at(ck, "namespaceSelector", x.v[0], ns);
		if (!ret && x.v[1])
			ret = selector_parse_at(ck, "podSelector", x.v[1], pod);
	}
	ypath_pop(ck, saved);
	return ret;
}

static const struct yfield subject_fields[] = {
	YKEEP("namespaces", struct yone_nodes, v[0]), YKEEP("pods", struct yone_nodes, v[1]),
};

static int subject_parse(struct ctx *c, const struct ynode *spec, const struct ynode *n)
{
	struct ycheck *ck = c->ck;
	struct moat_cnp *cnp = c->cnp;
	struct yone_nodes x = { { NULL } };
	size_t saved;
	int ret, which;

	if (!n) {
		yerr(ck, spec, "subject is required (namespaces: SELECTOR, or pods: "
		     "{namespaceSelector: SELECTOR, podSelector: SELECTOR})");
		return 0;
	}
	saved = ypath_key(ck, "subject");
	ret = ywalk_map(ck, n, subject_fields, ARRAY_SIZE(subject_fields), &x);
	if (!ret && n->type == YNODE_MAP && (which = yone(ck, n, "a subject", x.v, peer_names, 2)) >= 0) {
		cnp->subject_pods = which == PEER_PODS;
		ret = which == PEER_PODS ? pods_parse(c, x.v[1], &cnp->subject_ns, &cnp->subject_pod)
			: selector_parse_at(ck, "namespaces", x.v[0], &cnp->subject_ns);
	}
	ypath_pop(ck, saved);
	return ret;
}

/* ---- peers ---- */

/* A peer's room: one, or one per item of its networks or domainNames. */
static size_t peers_room(const struct ynode *seq)
{
	size_t n = 0;

	for (size_t i = 0; seq->type == YNODE_SEQ && i < seq->n; i++) {
		const struct ynode *nets = ymap_get(seq->kids[i], "networks");
		const struct ynode *doms = ymap_get(seq->kids[i], "domainNames");

		n += 1 + (nets && nets->type == YNODE_SEQ ? nets->n : 0) +
		     (doms && doms->type == YNODE_SEQ ? doms->n : 0);
	}
	return n;
}

static struct moat_peer *peer_next(struct rule_ctx *rc, const struct ynode *n)
{
	struct moat_peer *p = &rc->r->peers[rc->r->npeers];

	p->pos = meta_pos(rc->c->ck, n);
	return p;
}

static int ns_peer(struct rule_ctx *rc, const struct ynode *item, const struct ynode *val)
{
	struct moat_peer *p = peer_next(rc, item);
	int ret = selector_parse_at(rc->c->ck, "namespaces", val, &p->ns);

	p->kind = MOAT_PEER_PODS;
	p->has_ns = true;
	rc->r->npeers++;
	return ret;
}

static int pods_peer(struct rule_ctx *rc, const struct ynode *item, const struct ynode *val)
{
	struct moat_peer *p = peer_next(rc, item);
	int ret = pods_parse(rc->c, val, &p->ns, &p->pod);

	p->kind = MOAT_PEER_PODS;
	p->has_ns = p->has_pod = true;
	rc->r->npeers++;
	return ret;
}

static int nodes_peer(struct rule_ctx *rc, const struct ynode *item, const struct ynode *val)
{
	size_t saved = ypath_key(rc->c->ck, "nodes");

	yerr(rc->c->ck, val, "nodes peers are not supported: Moat enforces on one node, without "
	     "the cluster's Node objects to select; write the nodes' addresses as networks");
	ypath_pop(rc->c->ck, saved);
	return 0;
}

/* Is p the same as a peer of the group being read (a set in the API)? Recorded at n. */
static bool peer_repeated(struct rule_ctx *rc, const struct ynode *n, const struct moat_peer *p,
			  const char *text)
{
	const struct moat_cnp_rule *r = rc->r;

	for (size_t i = rc->group; i < r->npeers; i++) {
		const struct moat_peer *q = &r->peers[i];
		bool same = p->kind == MOAT_PEER_DOMAIN ? !strcmp(q->domain, p->domain)
			: q->cidr.family == p->cidr.family && q->cidr.plen == p->cidr.plen &&
			  !memcmp(q->cidr.addr, p->cidr.addr, sizeof(p->cidr.addr));

		if (same) {
			yerr(rc->c->ck, n, "\"%s\" is listed twice (first at line %u, column %u); the "
			     "list is a set", text, q->pos.line, q->pos.col);
			return true;
		}
	}
	return false;
}

static int net_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rule_ctx *rc = obj;
	struct moat_peer *p = peer_next(rc, n);
	const char *s = ystr(ck, n);

	if (!s || !cidr_ycheck(ck, n, s, &p->cidr))
		return 0;
	p->kind = MOAT_PEER_IPBLOCK;
	if (!peer_repeated(rc, n, p, s))
		rc->r->npeers++;
	return 0;
}

static int domain_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rule_ctx *rc = obj;
	struct moat_peer *p = peer_next(rc, n);
	const char *s = ystr(ck, n), *why = s ? domain_problem(s) : NULL;

	if (why)
		yerr(ck, n, "\"%s\" is not a domain name the API accepts: %s", s, why);
	if (!s || why)
		return 0;
	p->kind = MOAT_PEER_DOMAIN;
	p->domain = domain_normalize(ck->arena, s);
	if (!p->domain)
		return -ENOMEM;
	if (!peer_repeated(rc, n, p, s))
		rc->r->npeers++;
	return 0;
}

/* networks or domainNames: 1 to 25 entries, each a peer of its own. */
static int list_peer(struct rule_ctx *rc, const char *key, const struct ynode *val,
		     const char *item, int (*fn)(struct ycheck *, const struct ynode *, size_t, void *))
{
	struct ycheck *ck = rc->c->ck;
	size_t saved = ypath_key(ck, key);
	int ret;

	ycount(ck, val, item, 1, MAX_LIST);
	rc->group = rc->r->npeers;
	ret = ywalk_seq(ck, val, fn, rc);
	ypath_pop(ck, saved);
	return ret;
}

static int nets_peer(struct rule_ctx *rc, const struct ynode *item, const struct ynode *val)
{
	return list_peer(rc, "networks", val, "CIDR", net_item);
}

static int domains_peer(struct rule_ctx *rc, const struct ynode *item, const struct ynode *val)
{
	return list_peer(rc, "domainNames", val, "domain name", domain_item);
}

static int (*const peer_fns[])(struct rule_ctx *, const struct ynode *, const struct ynode *) = {
	[PEER_NAMESPACES] = ns_peer, [PEER_PODS] = pods_peer, [PEER_NODES] = nodes_peer,
	[PEER_NETWORKS] = nets_peer, [PEER_DOMAINS] = domains_peer,
};

/* A from/to item: exactly one of the peer fields its direction and kind have. */
static int peer_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rule_ctx *rc = obj;
	const struct lang *l = rc->c->l;
	size_t nf = l->npeer[rc->egress];
	struct yone_nodes x = { { NULL } };
	bool hinted = false;
	int ret = hint_walk(ck, n, peer_fields, nf, l->peer_hints[rc->egress], &x, &hinted), which;
	size_t given = 0;

	for (size_t k = 0; k < nf; k++)
		given += x.v[k] != NULL;
	if (ret < 0 || n->type != YNODE_MAP || (hinted && !given))	/* said already */
		return ret;
	if ((which = yone(ck, n, "a peer", x.v, peer_names, nf)) < 0)
		return ret;
	return peer_fns[which](rc, n, x.v[which]);
}

/* ---- rules ---- */

static int port_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rule_ctx *rc = obj;
	struct moat_cnp_rule *r = rc->r;

	return rc->c->l->port_parse(ck, n, &r->ports[r->nports++]);
}

static int rule_name(struct ycheck *ck, const struct ynode *n, struct moat_cnp_rule *r)
{
	size_t saved = ypath_key(ck, "name");
	const char *s = ystr(ck, n);
	size_t len = s ? strlen(s) : 0;

	if (len > MAX_RULE_NAME)
		yerr(ck, n, "a rule's name is at most %d characters (this one has %zu)",
		     MAX_RULE_NAME, len);
	ypath_pop(ck, saved);
	if (!s || len > MAX_RULE_NAME)
		return 0;
	r->name = arena_strdup(ck->arena, s);
	return r->name ? 0 : -ENOMEM;
}

static void action_word(struct ctx *c, const struct ynode *n, const char *s, enum moat_action *out)
{
	const struct lang *l = c->l;

	for (size_t i = 0; i < l->nactions; i++)
		if (!strcmp(s, l->actions[i].word)) {
			*out = l->actions[i].action;
			return;
		}
	if (!strcmp(s, l->other_accept))
		yerr(c->ck, n, "unknown action \"%s\": a%s %s says %s (allowed: %s)", s,
		     l->name[0] == 'A' ? "n" : "", l->name, l->actions[0].word, l->actions_list);
	else
		yerr(c->ck, n, "unknown action \"%s\" (allowed: %s)", s, l->actions_list);
}

/*
 * action, with Moat's refusal of Pass in the Baseline tier: the API accepts it, but after
 * the Baseline tier comes only the default (allow), so it would be a confusing Accept.
 */
static void action_parse(struct ctx *c, const struct ynode *rule, const struct ynode *n,
			 struct moat_cnp_rule *r)
{
	struct ycheck *ck = c->ck;
	const char *s;
	size_t saved;

	if (!n) {
		yerr(ck, rule, "action is required (%s)", c->l->actions_list);
		return;
	}
	saved = ypath_key(ck, "action");
	s = ystr(ck, n);
	r->action = MOAT_ACTION_DENY;
	if (s)
		action_word(c, n, s, &r->action);
	if (r->action == MOAT_ACTION_PASS && c->cnp->tier == MOAT_TIER_BASELINE)
		yerr(ck, n, "Pass is for the Admin tier: in the Baseline tier it could only skip to "
		     "the default, which allows; write Accept");
	ypath_pop(ck, saved);
}

static int rule_peers(struct rule_ctx *rc, const struct ynode *rule, const struct ynode *n)
{
	struct ycheck *ck = rc->c->ck;
	const char *key = rc->egress ? "to" : "from";
	size_t saved;
	int ret;

	if (!n) {	/* unless the other direction's key stands for it (hinted already) */
		if (!ymap_get(rule, rc->egress ? "from" : "to"))
			yerr(ck, rule, "%s is required (at least one peer)", key);
		return 0;
	}
	saved = ypath_key(ck, key);
	ycount(ck, n, "peer", 1, rc->c->l->max_peers);
	rc->r->peers = arena_array(ck->arena, peers_room(n), sizeof(*rc->r->peers));
	ret = rc->r->peers ? ywalk_seq(ck, n, peer_item, rc) : -ENOMEM;
	ypath_pop(ck, saved);
	return ret;
}

static int rule_ports(struct rule_ctx *rc, const struct ynode *n)
{
	struct ycheck *ck = rc->c->ck;
	const struct lang *l = rc->c->l;
	size_t saved = ypath_key(ck, l->ports_key);
	int ret;

	ycount(ck, n, l->port_word, 1, l->max_ports);
	rc->r->ports = yseq_alloc(ck, n, sizeof(*rc->r->ports));
	ret = rc->r->ports ? ywalk_seq(ck, n, port_item, rc) : -ENOMEM;
	ypath_pop(ck, saved);
	return ret;
}

/* The API's rules across a rule's fields (its CEL rule, its words on domainNames). */
static void rule_check(struct rule_ctx *rc, const struct ynode *n)
{
	const struct moat_cnp_rule *r = rc->r;
	bool named = false, nets = false, domains = false;

	for (size_t i = 0; i < r->nports; i++)
		named |= r->ports[i].name != NULL;
	for (size_t i = 0; i < r->npeers; i++) {
		nets |= r->peers[i].kind == MOAT_PEER_IPBLOCK;
		domains |= r->peers[i].kind == MOAT_PEER_DOMAIN;
	}
	if (named && (nets || domains))
		yerr(rc->c->ck, n, "a named port cannot match %s peers: they have no named ports",
		     nets ? "networks" : "domainNames");
	if (domains && r->action != MOAT_ACTION_ACCEPT)
		yerr(rc->c->ck, n, "domainNames peers are for %s rules only; deny what else the "
		     "pods may reach with a later rule", rc->c->l->actions[0].word);
}

static int rule_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rules *rs = obj;
	const struct lang *l = rs->c->l;
	struct rule_ctx rc = { rs->c, rs->egress, &rs->v[rs->n++], 0 };
	struct rule_nodes x = { 0 };
	int ret = hint_walk(ck, n, l->rule[rs->egress], 4, l->rule_hints[rs->egress], &x, NULL);

	rc.r->pos = meta_pos(ck, n);
	rc.r->name = "";
	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	if (x.name)
		ret = rule_name(ck, x.name, rc.r);
	action_parse(rs->c, n, x.action, rc.r);
	if (!ret)
		ret = rule_peers(&rc, n, x.peers);
	if (!ret && x.ports)
		ret = rule_ports(&rc, x.ports);
	if (!ret)
		rule_check(&rc, n);
	return ret;
}

static int rules_parse(struct ctx *c, const char *key, const struct ynode *n, bool egress)
{
	struct ycheck *ck = c->ck;
	struct rules rs = { c, egress, yseq_alloc(ck, n, sizeof(*rs.v)), 0 };
	size_t saved = ypath_key(ck, key);
	int ret = rs.v ? 0 : -ENOMEM;

	if (!ret) {
		ycount(ck, n, "rule", 0, c->l->max_rules);
		ret = ywalk_seq(ck, n, rule_item, &rs);
	}
	ypath_pop(ck, saved);
	*(egress ? &c->cnp->out : &c->cnp->in) = rs.v;
	*(egress ? &c->cnp->nout : &c->cnp->nin) = rs.n;
	return ret;
}

/* ---- spec ---- */

static void tier_parse(struct ctx *c, const struct ynode *spec, const struct ynode *n)
{
	struct ycheck *ck = c->ck;
	const char *s;
	size_t saved;

	if (!n) {
		yerr(ck, spec, "tier is required (Admin or Baseline)");
		return;
	}
	saved = ypath_key(ck, "tier");
	s = ystr(ck, n);
	if (s && !strcmp(s, moat_tier_name(MOAT_TIER_ADMIN)))
		c->cnp->tier = MOAT_TIER_ADMIN;
	else if (s && !strcmp(s, moat_tier_name(MOAT_TIER_BASELINE)))
		c->cnp->tier = MOAT_TIER_BASELINE;
	else if (s)
		yerr(ck, n, "unknown tier \"%s\" (allowed: Admin, Baseline)", s);
	ypath_pop(ck, saved);
}

static void priority_parse(struct ctx *c, const struct ynode *spec, const struct ynode *n)
{
	struct ycheck *ck = c->ck;
	unsigned long v;
	size_t saved;

	if (!n) {
		yerr(ck, spec, "priority is required (0 to %u; the lower goes first)",
		     MOAT_CNP_MAX_PRIORITY);
		return;
	}
	saved = ypath_key(ck, "priority");
	if (yuint(ck, n, 0, MOAT_CNP_MAX_PRIORITY, &v))
		c->cnp->priority = v;
	ypath_pop(ck, saved);
}

/* The tier first: the rules' checks depend on it. */
static int spec_parse(struct ctx *c, const struct ynode *doc, const struct ynode *spec)
{
	struct ycheck *ck = c->ck;
	const struct lang *l = c->l;
	struct spec_nodes x = { 0 };
	size_t saved;
	int ret;

	if (!spec) {
		yerr(ck, doc, "spec is required");
		return 0;
	}
	saved = ypath_key(ck, "spec");
	ret = hint_walk(ck, spec, l->spec, l->nspec, l->spec_hints, &x, NULL);
	if (!ret && spec->type == YNODE_MAP) {
		if (l->tier)
			tier_parse(c, spec, x.tier);
		if (l->priority)
			priority_parse(c, spec, x.priority);
		ret = subject_parse(c, spec, x.subject);
	}
	if (!ret && x.in)
		ret = rules_parse(c, "ingress", x.in, false);
	if (!ret && x.out)
		ret = rules_parse(c, "egress", x.out, true);
	ypath_pop(ck, saved);
	return ret;
}

/* ---- documents ---- */

static const struct yfield meta_fields[] = {
	YKEEP("name", struct meta_nodes, name),
	YKEEP("namespace", struct meta_nodes, ns),
	YKEEP("labels", struct meta_nodes, labels),
	YKEEP("annotations", struct meta_nodes, annotations),
	META_SERVER_FIELDS,
};

/* Cluster-scoped: a name, no namespace; a BANP is the singleton "default" (the API's rule). */
static int meta_parse(struct ctx *c, const struct ynode *doc, const struct ynode *meta)
{
	struct ycheck *ck = c->ck;
	struct meta_nodes x = { 0 };
	size_t saved;
	int ret = meta_walk(ck, doc, meta, meta_fields, ARRAY_SIZE(meta_fields), &x, &saved);

	if (ret <= 0)
		return ret;
	if (x.ns)
		yerr(ck, x.ns, "a %s is cluster-wide: remove its namespace", c->l->name);
	ret = x.name ? meta_name_parse(ck, x.name, true, &c->cnp->name) : 0;
	if (!ret && c->cnp->kind == MOAT_CNP_BASELINE && c->cnp->name &&
	    strcmp(c->cnp->name, "default"))
		yerr(ck, x.name, "a BaselineAdminNetworkPolicy must be named \"default\" "
		     "(one per cluster)");
	if (!ret && x.labels)
		ret = meta_labels_check(ck, x.labels, NULL);
	if (!ret && x.annotations)
		ret = meta_annotations_parse(ck, x.annotations, &c->cnp->mode);
	ypath_pop(ck, saved);
	return ret;
}

struct doc_nodes {
	const struct ynode *meta, *spec;
};

static const struct yfield doc_fields[] = {
	YIGNORE("apiVersion"), YIGNORE("kind"),
	YKEEP("metadata", struct doc_nodes, meta),
	YKEEP("spec", struct doc_nodes, spec),
	YIGNORE("status"),
};

int cnp_parse(struct ycheck *ck, const struct ynode *doc, enum moat_cnp_kind kind,
	      struct moat_cnp *out)
{
	struct ctx c = { ck, &langs[kind], out };
	struct doc_nodes x = { 0 };
	int ret;

	*out = (struct moat_cnp){ .kind = kind, .mode = MOAT_MODE_ENFORCE, .pos = meta_pos(ck, doc) };
	if (kind == MOAT_CNP_BASELINE) {
		out->tier = MOAT_TIER_BASELINE;
		out->priority = MOAT_CNP_BANP_PRIORITY;
	}
	ret = ywalk_map(ck, doc, doc_fields, ARRAY_SIZE(doc_fields), &x);
	if (!ret)
		ret = meta_parse(&c, doc, x.meta);
	if (!ret)
		ret = spec_parse(&c, doc, x.spec);
	return ret;
}

/* ---- evaluation order ---- */

static int cnp_cmp(const void *a, const void *b)
{
	const struct moat_cnp *x = a, *y = b;
	int c = (x->tier > y->tier) - (x->tier < y->tier);

	if (!c)
		c = (x->priority > y->priority) - (x->priority < y->priority);
	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : (x->kind > y->kind) - (x->kind < y->kind);
}

void cnp_sort(struct moat_cnp *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cnp_cmp);
}
