/*
 * NetworkPolicy and Namespace documents (networking.k8s.io/v1, v1, and v1 List) into a
 * struct moat_policy_set, with Kubernetes' defaults and checks and Moat's extensions; the
 * cluster-wide policies' documents are read by cnp.c and kept here. Every problem is
 * recorded with its position; nothing is applied unless all files are clean.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arena.h"
#include "cidr.h"
#include "cnp.h"
#include "meta.h"
#include "moat/grow.h"
#include "ports.h"
#include "selector.h"
#include "yaml.h"

#define KINDS "NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy, " \
	      "BaselineAdminNetworkPolicy, Namespace and List"
#define NAMESPACE_NAME_LABEL "kubernetes.io/metadata.name"

/* What moat_policy_set.priv points at. */
struct set_priv {
	struct arena *arena;
	size_t pols_cap, nss_cap, cnps_cap;
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- metadata ---- */

static const struct yfield np_meta_fields[] = {
	YKEEP("name", struct meta_nodes, name),
	YKEEP("namespace", struct meta_nodes, ns),
	YKEEP("labels", struct meta_nodes, labels),
	YKEEP("annotations", struct meta_nodes, annotations),
	META_SERVER_FIELDS,
};

static const struct yfield ns_meta_fields[] = {
	YKEEP("name", struct meta_nodes, name),
	YKEEP("labels", struct meta_nodes, labels),
	YKEEP("annotations", struct meta_nodes, annotations),
	META_SERVER_FIELDS,
};

/* metadata of a NetworkPolicy: name required, namespace defaulting to "default". */
static int np_meta(struct ycheck *ck, const struct ynode *doc, const struct ynode *meta,
		   struct moat_netpol *np)
{
	struct meta_nodes x = { 0 };
	size_t saved;
	int ret = meta_walk(ck, doc, meta, np_meta_fields, ARRAY_SIZE(np_meta_fields), &x, &saved);

	if (ret <= 0)
		return ret;
	ret = x.name ? meta_name_parse(ck, x.name, true, &np->name) : 0;
	if (!ret && x.ns)
		ret = meta_name_parse(ck, x.ns, false, &np->namespace);
	if (!ret && x.labels)
		ret = meta_labels_check(ck, x.labels, NULL);
	if (!ret && x.annotations)
		ret = meta_annotations_parse(ck, x.annotations, &np->mode);
	ypath_pop(ck, saved);
	if (!ret && !np->namespace)
		np->namespace = arena_strdup(ck->arena, MOAT_DEFAULT_NAMESPACE);
	return !ret && !np->namespace ? -ENOMEM : ret;
}

/* ---- peers ---- */

/* ipBlock.cidr: a string, then a CIDR. */
static bool cidr_field(struct ycheck *ck, const struct ynode *n, struct moat_cidr *out)
{
	size_t saved = ypath_key(ck, "cidr");
	const char *s = ystr(ck, n);
	bool ok = s && cidr_ycheck(ck, n, s, out);

	ypath_pop(ck, saved);
	return ok;
}

static int except_parse(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct moat_peer *p = obj;
	struct moat_cidr *e = &p->except[p->nexcept];
	const char *s = ystr(ck, n);
	char a[64], b[64];

	if (!s || !cidr_ycheck(ck, n, s, e))
		return 0;
	if (e->plen <= p->cidr.plen || !moat_cidr_contains(&p->cidr, e))
		yerr(ck, n, "except %s is not inside cidr %s (it must be a strictly smaller part of it)",
		     moat_cidr_format(e, a, sizeof(a)), moat_cidr_format(&p->cidr, b, sizeof(b)));
	else
		p->nexcept++;
	return 0;
}

struct ipb_nodes {
	const struct ynode *cidr, *except;
};

static const struct yfield ipb_fields[] = {
	YKEEP("cidr", struct ipb_nodes, cidr),
	YKEEP("except", struct ipb_nodes, except),
};

static int ipblock_parse(struct ycheck *ck, const struct ynode *n, struct moat_peer *p)
{
	struct ipb_nodes x = { 0 };
	size_t saved;
	int ret = ywalk_map_at(ck, "ipBlock", n, ipb_fields, ARRAY_SIZE(ipb_fields), &x);

	p->kind = MOAT_PEER_IPBLOCK;
	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	saved = ypath_key(ck, "ipBlock");
	if (!x.cidr)
		yerr(ck, n, "cidr is required");
	else if (cidr_field(ck, x.cidr, &p->cidr) && x.except) {
		p->except = yseq_alloc(ck, x.except, sizeof(*p->except));
		ret = p->except ? ywalk_seq_at(ck, "except", x.except, except_parse, p) : -ENOMEM;
	}
	ypath_pop(ck, saved);
	return ret;
}

struct peer_nodes {
	const struct ynode *pod, *ns, *ipb;
};

static const struct yfield peer_fields[] = {
	YKEEP("podSelector", struct peer_nodes, pod),
	YKEEP("namespaceSelector", struct peer_nodes, ns),
	YKEEP("ipBlock", struct peer_nodes, ipb),
};

static int pods_peer(struct ycheck *ck, const struct peer_nodes *x, struct moat_peer *p)
{
	int ret = 0;

	p->kind = MOAT_PEER_PODS;
	p->has_pod = x->pod != NULL;
	p->has_ns = x->ns != NULL;
	if (x->pod)
		ret = selector_parse_at(ck, "podSelector", x->pod, &p->pod);
	if (!ret && x->ns)
		ret = selector_parse_at(ck, "namespaceSelector", x->ns, &p->ns);
	return ret;
}

static int peer_parse(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct moat_rule *r = obj;
	struct moat_peer *p = &r->peers[r->npeers];
	struct peer_nodes x = { 0 };
	int ret = ywalk_map(ck, n, peer_fields, ARRAY_SIZE(peer_fields), &x);

	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	p->pos = meta_pos(ck, n);
	r->npeers++;
	if (x.ipb && (x.pod || x.ns))
		yerr(ck, x.ipb, "ipBlock cannot be combined with podSelector or namespaceSelector "
		     "in one peer; write them as separate peers");
	else if (!x.ipb && !x.pod && !x.ns)
		yerr(ck, n, "a peer needs a podSelector, a namespaceSelector or an ipBlock");
	else
		ret = x.ipb ? ipblock_parse(ck, x.ipb, p) : pods_peer(ck, &x, p);
	return ret;
}

/* ---- rules ---- */

struct rule_nodes {
	const struct ynode *peers, *ports;
};

static const struct yfield in_fields[] = {
	YKEEP("from", struct rule_nodes, peers),
	YKEEP("ports", struct rule_nodes, ports),
};

static const struct yfield out_fields[] = {
	YKEEP("to", struct rule_nodes, peers),
	YKEEP("ports", struct rule_nodes, ports),
};

struct rules {
	struct moat_rule *v;
	size_t n;
	bool egress;
};

static int port_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct moat_rule *r = obj;

	return port_parse(ck, n, &r->ports[r->nports++]);
}

/* from/to and ports absent or empty both mean "all" (npeers, nports 0). */
static int rule_parse(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	struct rules *rs = obj;
	struct moat_rule *r = &rs->v[rs->n++];
	struct rule_nodes x = { 0 };
	int ret = ywalk_map(ck, n, rs->egress ? out_fields : in_fields, 2, &x);

	r->pos = meta_pos(ck, n);
	if (!ret && x.peers) {
		r->peers = yseq_alloc(ck, x.peers, sizeof(*r->peers));
		ret = r->peers ? ywalk_seq_at(ck, rs->egress ? "to" : "from", x.peers, peer_parse, r)
			       : -ENOMEM;
	}
	if (!ret && x.ports) {
		r->ports = yseq_alloc(ck, x.ports, sizeof(*r->ports));
		ret = r->ports ? ywalk_seq_at(ck, "ports", x.ports, port_item, r) : -ENOMEM;
	}
	return ret;
}

static int rules_parse(struct ycheck *ck, const char *key, const struct ynode *n, bool egress,
		       struct moat_rule **v, size_t *nv)
{
	struct rules rs = { .v = yseq_alloc(ck, n, sizeof(*rs.v)), .egress = egress };
	int ret = rs.v ? ywalk_seq_at(ck, key, n, rule_parse, &rs) : -ENOMEM;

	*v = rs.v;
	*nv = rs.n;
	return ret;
}

/* ---- spec ---- */

struct spec_nodes {
	const struct ynode *target, *types, *in, *out;
};

static const struct yfield spec_fields[] = {
	YKEEP("podSelector", struct spec_nodes, target),
	YKEEP("policyTypes", struct spec_nodes, types),
	YKEEP("ingress", struct spec_nodes, in),
	YKEEP("egress", struct spec_nodes, out),
};

static const char *const policy_types[] = { "Ingress", "Egress" };

static int ptype_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	bool *seen = obj;
	const char *s = ystr(ck, n);

	for (size_t t = 0; s && t < ARRAY_SIZE(policy_types); t++)
		if (!strcmp(s, policy_types[t])) {
			seen[t] = true;
			return 0;
		}
	if (s)
		yerr(ck, n, "unknown policy type \"%s\" (allowed: Ingress, Egress)", s);
	return 0;
}

/*
 * policyTypes, with Kubernetes' defaulting (SetDefaults_NetworkPolicy): when absent or
 * empty, Ingress always, and Egress only when egress has at least one rule. Note that
 * "egress: []" therefore does not isolate egress; write policyTypes: [Egress] for that.
 */
static int types_parse(struct ycheck *ck, const struct spec_nodes *x, struct moat_netpol *np)
{
	bool seen[2] = { false, false };
	int ret;

	np->isolates_in = true;
	np->isolates_out = x->out && x->out->type == YNODE_SEQ && x->out->n > 0;
	if (!x->types || (x->types->type == YNODE_SEQ && !x->types->n))
		return 0;
	ret = ywalk_seq_at(ck, "policyTypes", x->types, ptype_item, seen);
	np->isolates_in = seen[0];
	np->isolates_out = seen[1];
	return ret;
}

static int spec_parse(struct ycheck *ck, const struct ynode *doc, const struct ynode *spec,
		      struct moat_netpol *np)
{
	struct spec_nodes x = { 0 };
	int ret = spec ? ywalk_map_at(ck, "spec", spec, spec_fields, ARRAY_SIZE(spec_fields), &x) : 0;
	size_t saved;

	if (ret < 0 || (spec && spec->type != YNODE_MAP))
		return ret;
	saved = ypath_key(ck, "spec");
	if (!x.target)
		yerr(ck, spec ? spec : doc, "podSelector is required "
		     "(podSelector: {} selects every pod of the namespace)");
	else
		ret = selector_parse_at(ck, "podSelector", x.target, &np->target);
	if (!ret)
		ret = types_parse(ck, &x, np);
	if (!ret && x.in)
		ret = rules_parse(ck, "ingress", x.in, false, &np->in, &np->nin);
	if (!ret && x.out)
		ret = rules_parse(ck, "egress", x.out, true, &np->out, &np->nout);
	ypath_pop(ck, saved);
	return ret;
}

/* ---- documents ---- */

struct doc_nodes {
	const struct ynode *meta, *spec, *items;
};

static const struct yfield np_fields[] = {
	YIGNORE("apiVersion"), YIGNORE("kind"),
	YKEEP("metadata", struct doc_nodes, meta),
	YKEEP("spec", struct doc_nodes, spec),
};

static int netpol_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	struct set_priv *priv = ps->priv;
	struct moat_netpol np = { .mode = MOAT_MODE_ENFORCE, .pos = meta_pos(ck, doc) };
	struct doc_nodes x = { 0 };
	int ret = ywalk_map(ck, doc, np_fields, ARRAY_SIZE(np_fields), &x);

	if (!ret)
		ret = np_meta(ck, doc, x.meta, &np);
	if (!ret)
		ret = spec_parse(ck, doc, x.spec, &np);
	if (!ret)
		ret = grow((void **)&ps->pols, ps->npols, &priv->pols_cap, sizeof(np));
	if (!ret)
		ps->pols[ps->npols++] = np;
	return ret;
}

static const struct yfield ns_fields[] = {
	YIGNORE("apiVersion"), YIGNORE("kind"),
	YKEEP("metadata", struct doc_nodes, meta),
	YIGNORE("spec"), YIGNORE("status"),
};

/* A Namespace, labelled kubernetes.io/metadata.name=NAME as the API server does. */
static int ns_meta(struct ycheck *ck, const struct ynode *doc, const struct ynode *meta,
		   struct moat_namespace *ns)
{
	struct meta_nodes x = { 0 };
	enum moat_mode ignored;
	size_t saved;
	int ret = meta_walk(ck, doc, meta, ns_meta_fields, ARRAY_SIZE(ns_meta_fields), &x, &saved);

	if (ret <= 0)
		return ret;
	ret = x.name ? meta_name_parse(ck, x.name, false, &ns->name) : 0;
	if (!ret && x.labels)
		ret = labels_parse(ck, x.labels, true, 1, &ns->labels);
	else if (!ret)
		ret = (ns->labels.v = arena_array(ck->arena, 1, sizeof(*ns->labels.v))) ? 0 : -ENOMEM;
	if (!ret && x.annotations)
		ret = meta_annotations_parse(ck, x.annotations, &ignored);
	ypath_pop(ck, saved);
	if (ret || !ns->name)
		return ret;
	char *key = arena_strdup(ck->arena, NAMESPACE_NAME_LABEL);
	if (!key)
		return -ENOMEM;
	labels_put(&ns->labels, key, ns->name);
	return 0;
}

static int namespace_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	struct set_priv *priv = ps->priv;
	struct moat_namespace ns = { .pos = meta_pos(ck, doc) };
	struct doc_nodes x = { 0 };
	int ret = ywalk_map(ck, doc, ns_fields, ARRAY_SIZE(ns_fields), &x);

	if (!ret)
		ret = ns_meta(ck, doc, x.meta, &ns);
	if (!ret)
		ret = grow((void **)&ps->nss, ps->nnss, &priv->nss_cap, sizeof(ns));
	if (!ret)
		ps->nss[ps->nnss++] = ns;
	return ret;
}

/* A cluster-wide policy of kind, kept even when invalid (the set is then dropped whole). */
static int cluster_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps,
		       enum moat_cnp_kind kind)
{
	struct set_priv *priv = ps->priv;
	struct moat_cnp cnp = { 0 };
	int ret = cnp_parse(ck, doc, kind, &cnp);

	if (!ret)
		ret = grow((void **)&ps->cnps, ps->ncnps, &priv->cnps_cap, sizeof(cnp));
	if (!ret)
		ps->cnps[ps->ncnps++] = cnp;
	return ret;
}

static int cnp_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	return cluster_doc(ck, doc, ps, MOAT_CNP_CLUSTER);
}

static int anp_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	return cluster_doc(ck, doc, ps, MOAT_CNP_ADMIN);
}

static int banp_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	return cluster_doc(ck, doc, ps, MOAT_CNP_BASELINE);
}

static int list_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps);

static const struct kind {
	const char *kind, *api;
	int (*parse)(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps);
} kinds[] = {
	{ "NetworkPolicy", "networking.k8s.io/v1", netpol_doc },
	{ "ClusterNetworkPolicy", CNP_API_V1ALPHA2, cnp_doc },
	{ "AdminNetworkPolicy", CNP_API_V1ALPHA1, anp_doc },
	{ "BaselineAdminNetworkPolicy", CNP_API_V1ALPHA1, banp_doc },
	{ "Namespace", "v1", namespace_doc },
	{ "List", "v1", list_doc },
};

/* The document's kind, checked with its apiVersion; NULL when it cannot be read at all. */
static const struct kind *kind_find(struct ycheck *ck, const struct ynode *doc)
{
	const struct ynode *kn = ymap_get(doc, "kind"), *an = ymap_get(doc, "apiVersion");
	const char *k = kn && !ynull(kn) ? ystr(ck, kn) : NULL, *api;

	if (!kn || ynull(kn)) {
		yerr(ck, doc, "kind is missing (Moat reads " KINDS ")");
		return NULL;
	}
	for (size_t i = 0; k && i < ARRAY_SIZE(kinds); i++) {
		if (strcmp(k, kinds[i].kind))
			continue;
		api = an && !ynull(an) ? ystr(ck, an) : NULL;
		if (!an || ynull(an))
			yerr(ck, doc, "apiVersion is missing (kind %s is %s)", k, kinds[i].api);
		else if (api && strcmp(api, kinds[i].api))
			yerr(ck, an, "unknown apiVersion \"%s\" for kind %s (Moat reads %s)", api, k,
			     kinds[i].api);
		return &kinds[i];	/* read on anyway, to report everything else too */
	}
	if (k)
		yerr(ck, kn, "unknown kind \"%s\" (Moat reads " KINDS ")", k);
	return NULL;
}

static int doc_parse(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps,
		     bool in_list)
{
	const struct kind *k;

	if (ynull(doc)) {
		if (in_list)
			yerr(ck, doc, "an item of a List must not be empty");
		return 0;	/* an empty document, or only comments */
	}
	if (!yexpect(ck, doc, YNODE_MAP) || !(k = kind_find(ck, doc)))
		return 0;
	if (in_list && k->parse == list_doc) {
		yerr(ck, doc, "a List inside a List is not supported");
		return 0;
	}
	return k->parse(ck, doc, ps);
}

static int list_item(struct ycheck *ck, const struct ynode *n, size_t i, void *obj)
{
	return doc_parse(ck, n, obj, true);
}

static const struct yfield list_fields[] = {
	YIGNORE("apiVersion"), YIGNORE("kind"), YIGNORE("metadata"),
	YKEEP("items", struct doc_nodes, items),
};

static int list_doc(struct ycheck *ck, const struct ynode *doc, struct moat_policy_set *ps)
{
	struct doc_nodes x = { 0 };
	int ret = ywalk_map(ck, doc, list_fields, ARRAY_SIZE(list_fields), &x);

	if (!ret && x.items)
		ret = ywalk_seq_at(ck, "items", x.items, list_item, ps);
	return ret;
}

/* ---- sets, files and directories ---- */

/* The state of one load: the set being built and every error so far. */
struct loader {
	struct moat_policy_set *ps;
	struct moat_diags *diags;
	unsigned nerr;
	int io_err;		/* the first I/O error, returned instead of -EINVAL */
};

static struct moat_policy_set *set_new(void)
{
	struct moat_policy_set *ps = calloc(1, sizeof(*ps));
	struct set_priv *priv = calloc(1, sizeof(*priv));

	if (ps && priv && (priv->arena = arena_new())) {
		ps->priv = priv;
		return ps;
	}
	free(priv);
	free(ps);
	return NULL;
}

void moat_policy_set_free(struct moat_policy_set *ps)
{
	struct set_priv *priv;

	if (!ps)
		return;
	priv = ps->priv;
	arena_free(priv->arena);
	free(priv);
	free(ps->pols);
	free(ps->nss);
	free(ps->cnps);
	free(ps);
}

/* Parses one buffer named name into the set. Returns 0 or -ENOMEM; errors in ld. */
static int parse_buf(struct loader *ld, const char *name, const char *buf, size_t len)
{
	struct set_priv *priv = ld->ps->priv;
	struct arena *tree = arena_new();
	const char *file = arena_strdup(priv->arena, name);
	struct ycheck ck;
	struct ynode **docs;
	size_t ndocs = 0;
	int ret = -ENOMEM;

	if (!tree || !file)
		goto out;
	ycheck_init(&ck, file, priv->arena, ld->diags);
	ret = yaml_parse(&ck, tree, buf, len, &docs, &ndocs);
	for (size_t i = 0; !ret && i < ndocs; i++)
		ret = doc_parse(&ck, docs[i], ld->ps, false);
	ld->nerr += ck.nerr;
	if (ret == -EINVAL)
		ret = 0;	/* recorded; go on with the next file */
out:
	arena_free(tree);
	return ret;
}

static int load_file(struct loader *ld, const char *path)
{
	char *buf = NULL;
	size_t len;
	int ret = yaml_read_file(path, &buf, &len, ld->diags);

	if (ret < 0) {
		ld->nerr++;
		if (ret != -EFBIG && !ld->io_err)
			ld->io_err = ret;
		return ret == -ENOMEM ? ret : 0;
	}
	ret = parse_buf(ld, path, buf, len);
	free(buf);
	return ret;
}

static bool yaml_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')	/* hidden, and Kubernetes' ..data links in mounted ConfigMaps */
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.yaml / *.yml entries of dir, sorted; *names is malloc'd, each name too. */
static int dir_list(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;
	int ret = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return -errno;
	/* cppcheck-suppress readdirCalled ; readdir_r is deprecated; d is this call's own stream */
	while (!ret && (e = readdir(d))) {
		if (!yaml_name(e->d_name))
			continue;
		ret = grow((void **)names, *n, &cap, sizeof(char *));
		if (!ret && !((*names)[*n] = strdup(e->d_name)))
			ret = -ENOMEM;
		if (!ret)
			(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof(char *), name_cmp);
	return ret;
}

static int load_dir(struct loader *ld, const char *dir)
{
	size_t len = strlen(dir), n = 0;
	const char *sep = len && dir[len - 1] == '/' ? "" : "/";
	char **names, *path;
	struct stat st;
	int ret = dir_list(dir, &names, &n);

	for (size_t i = 0; !ret && i < n; i++) {
		if (asprintf(&path, "%s%s%s", dir, sep, names[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			ret = 0;	/* a directory named x.yaml: not ours to read */
		else
			ret = load_file(ld, path);
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (ret < 0 && ret != -ENOMEM) {
		moat_diags_add(ld->diags, dir, 0, 0, "cannot read the directory: %s", strerror(-ret));
		ld->nerr++;
		ld->io_err = ld->io_err ? ld->io_err : ret;
		ret = 0;
	}
	return ret;
}

static int load_path(struct loader *ld, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return load_dir(ld, path);
	return load_file(ld, path);
}

/* ---- duplicates across the whole set ---- */

struct objref {
	const char *ns, *name;	/* ns "" for namespaces */
	const struct moat_pos *pos;
	size_t i;		/* load order, so the first definition sorts first */
};

static int objref_cmp(const void *a, const void *b)
{
	const struct objref *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Reports every object defined twice, at the repeat, naming the first. Sorts refs. */
static void report_dups(struct loader *ld, struct objref *refs, size_t n, const char *what)
{
	qsort(refs, n, sizeof(*refs), objref_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct objref *first = &refs[i - 1], *r = &refs[i];

		if (strcmp(first->ns, r->ns) || strcmp(first->name, r->name))
			continue;
		moat_diags_add(ld->diags, r->pos->file, r->pos->line, r->pos->col,
			       "%s %s%s%s is defined twice (first at %s:%u:%u)", what, r->ns,
			       r->ns[0] ? "/" : "", r->name, first->pos->file, first->pos->line,
			       first->pos->col);
		ld->nerr++;
		refs[i] = *first;	/* a third one still names the first */
	}
}

/* Cluster-wide policies are unique by name within their kind (the API's resources). */
static void check_cnp_dups(struct loader *ld, struct objref *refs)
{
	const struct moat_policy_set *ps = ld->ps;

	for (int kind = MOAT_CNP_CLUSTER; kind <= MOAT_CNP_BASELINE; kind++) {
		size_t n = 0;

		for (size_t i = 0; i < ps->ncnps; i++)
			if (ps->cnps[i].name && ps->cnps[i].kind == (enum moat_cnp_kind)kind)
				refs[n++] = (struct objref){ "", ps->cnps[i].name, &ps->cnps[i].pos, i };
		report_dups(ld, refs, n, moat_cnp_kind_name(kind));
	}
}

static int check_dups(struct loader *ld)
{
	const struct moat_policy_set *ps = ld->ps;
	struct objref *refs = calloc(ps->npols + ps->nnss + ps->ncnps + 1, sizeof(*refs));
	size_t n = 0;

	if (!refs)
		return -ENOMEM;
	check_cnp_dups(ld, refs);
	for (size_t i = 0; i < ps->npols; i++)
		if (ps->pols[i].name)
			refs[n++] = (struct objref){ ps->pols[i].namespace, ps->pols[i].name,
						     &ps->pols[i].pos, i };
	report_dups(ld, refs, n, "NetworkPolicy");
	n = 0;
	for (size_t i = 0; i < ps->nnss; i++)
		if (ps->nss[i].name)
			refs[n++] = (struct objref){ "", ps->nss[i].name, &ps->nss[i].pos, i };
	report_dups(ld, refs, n, "Namespace");
	free(refs);
	return 0;
}

/* ---- entry points ---- */

/* All or nothing: hands the set over only when nothing at all went wrong. */
static int finish(struct loader *ld, int ret, struct moat_policy_set **out)
{
	if (!ret)
		ret = check_dups(ld);
	if (!ret && ld->nerr)
		ret = ld->io_err ? ld->io_err : -EINVAL;
	if (ret) {
		moat_policy_set_free(ld->ps);
		return ret;
	}
	cnp_sort(ld->ps->cnps, ld->ps->ncnps);
	*out = ld->ps;
	return 0;
}

int moat_policy_set_load(const char *const *paths, size_t npaths, struct moat_policy_set **out,
			 struct moat_diags *diags)
{
	struct loader ld = { .ps = set_new(), .diags = diags };
	int ret = 0;

	if (!ld.ps)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < npaths; i++)
		ret = load_path(&ld, paths[i]);
	return finish(&ld, ret, out);
}

int moat_policy_set_parse(const char *name, const char *buf, size_t len,
			  struct moat_policy_set **out, struct moat_diags *diags)
{
	struct loader ld = { .ps = set_new(), .diags = diags };

	if (!ld.ps)
		return -ENOMEM;
	return finish(&ld, parse_buf(&ld, name ? name : "", buf, len), out);
}

int moat_policy_set_parse_files(const struct moat_policy_files *f, struct moat_policy_set **out,
				struct moat_diags *diags)
{
	struct loader ld = { .ps = set_new(), .diags = diags };
	int ret = 0;

	if (!ld.ps)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < f->n; i++)
		ret = parse_buf(&ld, f->v[i].name, f->v[i].text, f->v[i].len);
	return finish(&ld, ret, out);
}

void moat_policy_files_free(struct moat_policy_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].text);
	}
	free(f->v);
	*f = (struct moat_policy_files){ 0 };
}

/* One file into f; an I/O problem is recorded in diags and returned. */
static int files_add(struct moat_policy_files *f, size_t *cap, const char *path,
		     struct moat_diags *diags)
{
	char *buf = NULL;
	size_t len;
	int ret = yaml_read_file(path, &buf, &len, diags);

	if (!ret)
		ret = grow((void **)&f->v, f->n, cap, sizeof(*f->v));
	if (!ret && !(f->v[f->n].name = strdup(path)))
		ret = -ENOMEM;
	if (ret) {
		free(buf);
		return ret;
	}
	f->v[f->n].text = buf;
	f->v[f->n++].len = len;
	return 0;
}

/* A directory's policy files, in the order load_dir reads them. */
static int files_dir(struct moat_policy_files *f, size_t *cap, const char *dir,
		     struct moat_diags *diags)
{
	size_t len = strlen(dir), n = 0;
	const char *sep = len && dir[len - 1] == '/' ? "" : "/";
	char **names, *path;
	struct stat st;
	int ret = dir_list(dir, &names, &n);

	if (ret)
		moat_diags_add(diags, dir, 0, 0, "cannot read the directory: %s", strerror(-ret));
	for (size_t i = 0; !ret && i < n; i++) {
		if (asprintf(&path, "%s%s%s", dir, sep, names[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			ret = files_add(f, cap, path, diags);
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

int moat_policy_files_read(const char *const *paths, size_t npaths, struct moat_policy_files *out,
			   struct moat_diags *diags)
{
	struct moat_policy_files f = { 0 };
	struct stat st;
	size_t cap = 0;
	int ret = 0;

	for (size_t i = 0; !ret && i < npaths; i++)
		if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			ret = files_dir(&f, &cap, paths[i], diags);
		else
			ret = files_add(&f, &cap, paths[i], diags);
	if (ret) {
		moat_policy_files_free(&f);
		return ret;
	}
	*out = f;
	return 0;
}
