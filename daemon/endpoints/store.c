/*
 * The endpoint store (store.h). Each source keeps its endpoints in an endpoint set of its
 * own (found by name through the set's index); the set in force holds copies of the winners.
 * Removing from a set leaves the removed endpoint's memory in the set's arena, so a source
 * whose set went stale is copied anew, and the set in force is rebuilt whole (a change says
 * so), each at a cost spread over the changes that made it stale.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct source {
	struct moat_endpoint_set *set;
	struct moat_cidr *subnets;
	size_t nsubnets;
};

struct epstore {
	struct source src[EPSOURCE_COUNT];
	struct moat_endpoint_set *es;		/* in force */
	struct moat_endpoint_set *touched;	/* names only: what changed since the last commit */
	struct moat_cidr *managed;
	size_t nmanaged;
	bool managed_changed, nss_changed;
};

int epstore_new(struct epstore **out)
{
	struct epstore *s = calloc(1, sizeof(*s));
	bool ok = s && (s->es = moat_endpoint_set_new()) && (s->touched = moat_endpoint_set_new());

	for (int i = 0; ok && i < EPSOURCE_COUNT; i++)
		ok = (s->src[i].set = moat_endpoint_set_new()) != NULL;
	if (!ok) {
		epstore_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

/* Forgets the touched names; false on ENOMEM (then they stay: a commit looks again). */
static bool touched_clear(struct epstore *s)
{
	struct moat_endpoint_set *t = moat_endpoint_set_new();

	if (!t)
		return false;
	moat_endpoint_set_free(s->touched);
	s->touched = t;
	s->managed_changed = s->nss_changed = false;
	return true;
}

void epstore_free(struct epstore *s)
{
	if (!s)
		return;
	moat_endpoint_set_free(s->touched);
	for (int i = 0; i < EPSOURCE_COUNT; i++) {
		moat_endpoint_set_free(s->src[i].set);
		free(s->src[i].subnets);
	}
	moat_endpoint_set_free(s->es);
	free(s->managed);
	free(s);
}

static int touch(struct epstore *s, const char *ns, const char *name)
{
	struct moat_endpoint e = { .name = (char *)name, .namespace = (char *)ns };
	int ret = moat_endpoint_set_add(s->touched, &e);

	return ret == -EEXIST ? 0 : ret;
}

/* A copy of set's live endpoints and namespaces, when its removed ones weigh too much. */
static int source_compact(struct source *src)
{
	struct moat_endpoint_set *set = src->set, *n;
	int ret = 0;

	if (!moat_endpoint_set_stale(set))
		return 0;
	if (!(n = moat_endpoint_set_new()))
		return -ENOMEM;
	for (size_t i = 0; i < set->nnss && !ret; i++)
		ret = moat_endpoint_set_add_namespace(n, set->nss[i].name, &set->nss[i].labels);
	for (size_t i = 0; i < set->n && !ret; i++)
		ret = moat_endpoint_set_add(n, &set->v[i]);
	if (ret) {
		moat_endpoint_set_free(n);
		return ret;
	}
	moat_endpoint_set_free(set);
	src->set = n;
	return 0;
}

/* Removes endpoint i of a source's set. */
static void source_remove(struct source *src, size_t i)
{
	moat_endpoint_set_change(src->set, &i, 1, NULL, 0);
}

int epstore_put(struct epstore *s, enum epsource src, const struct moat_endpoint *e)
{
	struct source *so = &s->src[src];
	const char *ns = e->namespace ? e->namespace : MOAT_DEFAULT_NAMESPACE;
	long i;
	int ret;

	if (!e->name)
		return -EINVAL;
	i = moat_endpoint_set_find(so->set, ns, e->name);
	if (i >= 0 && moat_endpoint_equal(&so->set->v[i], e))
		return 0;
	ret = touch(s, ns, e->name);
	if (ret)
		return ret;
	if (i >= 0)
		source_remove(so, i);
	ret = moat_endpoint_set_add(so->set, e);
	return ret ? ret : source_compact(so);
}

int epstore_del(struct epstore *s, enum epsource src, const char *ns, const char *name)
{
	struct source *so = &s->src[src];
	long i = moat_endpoint_set_find(so->set, ns, name);
	int ret;

	if (i < 0)
		return 0;
	ret = touch(s, ns, name);
	if (!ret)
		source_remove(so, i);
	return ret ? ret : source_compact(so);
}

/* Namespaces' labels of src become set's; notes when any differ. */
static int namespaces_replace(struct epstore *s, struct source *so,
			      const struct moat_endpoint_set *set)
{
	bool same = so->set->nnss == set->nnss;
	int ret = 0;

	for (size_t i = 0; same && i < set->nnss; i++) {
		size_t j = 0;

		while (j < so->set->nnss && strcmp(so->set->nss[j].name, set->nss[i].name))
			j++;
		same = j < so->set->nnss && moat_labels_equal(&so->set->nss[j].labels, &set->nss[i].labels);
	}
	if (same)
		return 0;
	s->nss_changed = true;
	for (size_t i = 0; i < set->nnss && !ret; i++)
		ret = moat_endpoint_set_add_namespace(so->set, set->nss[i].name, &set->nss[i].labels);
	return ret;
}

int epstore_namespaces(struct epstore *s, enum epsource src, const struct moat_endpoint_set *set)
{
	return namespaces_replace(s, &s->src[src], set);
}

int epstore_replace(struct epstore *s, enum epsource src, const struct moat_endpoint_set *set)
{
	struct source *so = &s->src[src];
	int ret = namespaces_replace(s, so, set);

	for (size_t i = 0; i < set->n && !ret; i++)
		ret = epstore_put(s, src, &set->v[i]);
	for (size_t i = so->set->n; i-- > 0 && !ret;)
		if (moat_endpoint_set_find(set, so->set->v[i].namespace, so->set->v[i].name) < 0)
			ret = epstore_del(s, src, so->set->v[i].namespace, so->set->v[i].name);
	return ret;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct moat_cidr *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* Every source's subnets, sorted without repeats (sources list them in no fixed order). */
static int managed_update(struct epstore *s)
{
	size_t n = 0, k = 0;
	struct moat_cidr *v;

	for (int i = 0; i < EPSOURCE_COUNT; i++)
		n += s->src[i].nsubnets;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (int i = 0; i < EPSOURCE_COUNT; i++)
		for (size_t j = 0; j < s->src[i].nsubnets; j++)
			v[k++] = s->src[i].subnets[j];
	qsort(v, k, sizeof(*v), cidr_cmp);
	n = 0;
	for (size_t i = 0; i < k; i++)
		if (!n || cidr_cmp(&v[n - 1], &v[i]))
			v[n++] = v[i];
	if (n != s->nmanaged || (n && memcmp(v, s->managed, n * sizeof(*v))))
		s->managed_changed = true;
	free(s->managed);
	s->managed = v, s->nmanaged = n;
	return 0;
}

int epstore_subnets(struct epstore *s, enum epsource src, const struct moat_cidr *v, size_t n)
{
	struct source *so = &s->src[src];
	struct moat_cidr *c = n ? malloc(n * sizeof(*c)) : NULL;

	if (n && !c)
		return -ENOMEM;
	if (n)
		memcpy(c, v, n * sizeof(*c));
	free(so->subnets);
	so->subnets = c, so->nsubnets = n;
	return managed_update(s);
}

const struct moat_endpoint_set *epstore_set(const struct epstore *s)
{
	return s->es;
}

const struct moat_cidr *epstore_managed(const struct epstore *s, size_t *n)
{
	*n = s->nmanaged;
	return s->managed;
}

const struct moat_cidr *epstore_subnets_of(const struct epstore *s, enum epsource src, size_t *n)
{
	*n = s->src[src].nsubnets;
	return s->src[src].subnets;
}

bool epstore_has(const struct epstore *s, enum epsource src, const char *ns, const char *name)
{
	return moat_endpoint_set_find(s->src[src].set, ns, name) >= 0;
}

size_t epstore_count(const struct epstore *s, enum epsource src)
{
	return s->src[src].set->n;
}

/* The winning endpoint of a name: the first source's that has it, or NULL. */
static const struct moat_endpoint *winner(const struct epstore *s, const char *ns,
					  const char *name)
{
	for (int i = 0; i < EPSOURCE_COUNT; i++) {
		long k = moat_endpoint_set_find(s->src[i].set, ns, name);

		if (k >= 0)
			return &s->src[i].set->v[k];
	}
	return NULL;
}

static int cmp_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x > y ? -1 : x < y;
}

int epstore_change(struct epstore *s, struct epchange *c)
{
	struct moat_endpoint *come;
	int ret = 0;

	*c = (struct epchange){ .managed = s->managed_changed,
				.whole = s->managed_changed || s->nss_changed ||
					 moat_endpoint_set_stale(s->es) };
	if (c->whole)
		return 0;
	c->gone = malloc((s->touched->n + 1) * sizeof(*c->gone));
	come = malloc((s->touched->n + 1) * sizeof(*come));
	c->come = calloc(s->touched->n + 1, sizeof(*c->come));
	if (!c->gone || !come || !c->come)
		ret = -ENOMEM;
	for (size_t t = 0; t < s->touched->n && !ret; t++) {
		const struct moat_endpoint *k = &s->touched->v[t];
		const struct moat_endpoint *w = winner(s, k->namespace, k->name);
		long i = moat_endpoint_set_find(s->es, k->namespace, k->name);

		if (i >= 0 && w && moat_endpoint_equal(&s->es->v[i], w))
			continue;
		if (i >= 0)
			c->gone[c->ngone++] = i;
		if (w)
			come[c->ncome++] = *w;	/* copy_in copies what it points at */
	}
	qsort(c->gone, c->ngone, sizeof(*c->gone), cmp_desc);
	if (!ret)
		ret = moat_endpoint_set_copy_in(s->es, come, c->ncome, c->come);
	free(come);
	if (ret)
		epstore_change_free(c);
	return ret;
}

void epstore_change_apply(struct epstore *s, const struct epchange *c)
{
	moat_endpoint_set_change(s->es, c->gone, c->ngone, c->come, c->ncome);
	touched_clear(s);
}

void epstore_change_free(struct epchange *c)
{
	free(c->gone);
	free(c->come);
	*c = (struct epchange){ 0 };
}

int epstore_build(struct epstore *s, struct moat_endpoint_set **out)
{
	struct moat_endpoint_set *es = moat_endpoint_set_new();
	int ret = es ? 0 : -ENOMEM;

	/* namespaces: the first source's labels win, so it goes last */
	for (int i = EPSOURCE_COUNT; i-- > 0 && !ret;)
		for (size_t k = 0; k < s->src[i].set->nnss && !ret; k++)
			ret = moat_endpoint_set_add_namespace(es, s->src[i].set->nss[k].name,
							      &s->src[i].set->nss[k].labels);
	for (int i = 0; i < EPSOURCE_COUNT && !ret; i++)
		for (size_t k = 0; k < s->src[i].set->n && !ret; k++) {
			ret = moat_endpoint_set_add(es, &s->src[i].set->v[k]);
			if (ret == -EEXIST)
				ret = 0;	/* an earlier source has the name */
		}
	if (!ret && s->nmanaged && !(es->subnets = malloc(s->nmanaged * sizeof(*es->subnets))))
		ret = -ENOMEM;
	if (!ret && s->nmanaged) {
		memcpy(es->subnets, s->managed, s->nmanaged * sizeof(*es->subnets));
		es->nsubnets = s->nmanaged;
	}
	if (ret) {
		moat_endpoint_set_free(es);
		return ret;
	}
	*out = es;
	return 0;
}

struct moat_endpoint_set *epstore_install(struct epstore *s, struct moat_endpoint_set *es)
{
	struct moat_endpoint_set *old = s->es;

	s->es = es;
	touched_clear(s);
	return old;
}
