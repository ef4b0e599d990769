/*
 * The endpoint diff behind a revocation need: endpoints are matched by namespace/name, and an
 * endpoint keeps its connections' verdicts as long as everything a verdict reads of it (its
 * labels, its namespace's labels, its named ports) is unchanged: NetworkPolicy decides a pair
 * of endpoints on the pair alone, never on who else exists.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "revocation.h"

static bool ports_equal(const struct moat_endpoint *a, const struct moat_endpoint *b)
{
	if (a->nports != b->nports)
		return false;
	for (size_t i = 0; i < a->nports; i++)
		if (strcmp(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

static bool same_rights(const struct moat_endpoint *a, const struct moat_endpoint *b)
{
	return a->host_network == b->host_network && moat_labels_equal(&a->labels, &b->labels) &&
	       ports_equal(a, b);
}

static bool namespaces_equal(const struct moat_endpoint_set *a, const struct moat_endpoint_set *b)
{
	if (a->nnss != b->nnss)
		return false;
	for (size_t i = 0; i < a->nnss; i++) {
		size_t j = 0;

		while (j < b->nnss && strcmp(a->nss[i].name, b->nss[j].name))
			j++;
		if (j == b->nnss || !moat_labels_equal(&a->nss[i].labels, &b->nss[j].labels))
			return false;
	}
	return true;
}

static bool addr_in(const struct moat_addr *a, const struct moat_addr *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!moat_addr_cmp(a, &v[i]))
			return true;
	return false;
}

static bool in_managed(const struct moat_addr *a, const struct moat_cidr *m, size_t n)
{
	struct moat_cidr host = { .family = a->family, .plen = a->family == AF_INET ? 32 : 128 };

	memcpy(host.addr, a->a, sizeof(host.addr));
	for (size_t i = 0; i < n; i++)
		if (moat_cidr_contains(&m[i], &host))
			return true;
	return false;
}

static int gone_add(struct revocation *r, const struct moat_addr *a)
{
	if (r->ngone == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct moat_addr *v = realloc(r->gone, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->gone = v, r->cap = cap;
	}
	r->gone[r->ngone++] = *a;
	return 0;
}

/* Addresses of e that kept (NULL: none kept): gone. LATER when there were any. */
static int addrs_gone(struct revocation *r, const struct moat_endpoint *e,
		      const struct moat_endpoint *kept)
{
	int need = REVOCATION_NONE;

	for (size_t i = 0; i < e->nips; i++) {
		if (kept && addr_in(&e->ips[i], kept->ips, kept->nips))
			continue;
		if (gone_add(r, &e->ips[i]))
			return -ENOMEM;
		need = REVOCATION_LATER;
	}
	return need;
}

/* NOW when e has an address (not in was) through which a connection may live. */
static int addrs_new(const struct revocation *r, const struct moat_plan *old,
		     const struct moat_endpoint *e, const struct moat_endpoint *was,
		     const struct moat_cidr *managed, size_t nmanaged)
{
	for (size_t i = 0; i < e->nips; i++) {
		const struct moat_addr *a = &e->ips[i];

		if (was && addr_in(a, was->ips, was->nips))
			continue;
		if (old->mode != MOAT_MODE_ENFORCE || !in_managed(a, managed, nmanaged) ||
		    moat_plan_addr_find(old, a) || addr_in(a, r->gone, r->ngone))
			return REVOCATION_NOW;
	}
	return REVOCATION_NONE;
}

/* What endpoint e of the old set becoming now (NULL: gone) can take. */
static int endpoint_went(struct revocation *r, const struct moat_endpoint *e,
			 const struct moat_endpoint *now)
{
	if (now && !same_rights(e, now))
		return REVOCATION_NOW;
	if (e->host_network && !now)
		return REVOCATION_NOW;
	return addrs_gone(r, e, now);
}

/* What endpoint e, which was was (NULL: new), can take by coming. */
static int endpoint_came(const struct revocation *r, const struct moat_plan *old,
			 const struct moat_endpoint *e, const struct moat_endpoint *was,
			 const struct moat_cidr *managed, size_t nmanaged)
{
	if (e->host_network && !was)
		return REVOCATION_NOW;
	return addrs_new(r, old, e, was, managed, nmanaged);
}

int revocation_diff(struct revocation *r, const struct moat_plan *old,
		    const struct moat_endpoint_set *es, const struct moat_cidr *managed,
		    size_t nmanaged)
{
	const struct moat_endpoint_set *was = old ? old->es : NULL;
	int need = REVOCATION_NONE, ret;

	if (!was || !namespaces_equal(was, es))
		return REVOCATION_NOW;
	for (size_t i = 0; i < was->n; i++) {
		long j = moat_endpoint_set_find(es, was->v[i].namespace, was->v[i].name);

		ret = endpoint_went(r, &was->v[i], j >= 0 ? &es->v[j] : NULL);
		if (ret < 0 || ret == REVOCATION_NOW)
			return ret;
		need = ret > need ? ret : need;
	}
	for (size_t j = 0; j < es->n; j++) {
		long i = moat_endpoint_set_find(was, es->v[j].namespace, es->v[j].name);

		if (endpoint_came(r, old, &es->v[j], i >= 0 ? &was->v[i] : NULL, managed, nmanaged))
			return REVOCATION_NOW;
	}
	return need;
}

/* The endpoint of list v[0..n) with e's namespace and name, or NULL. */
static const struct moat_endpoint *same_name(const struct moat_endpoint *e,
					     const struct moat_endpoint *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, e->name) && !strcmp(v[i].namespace, e->namespace))
			return &v[i];
	return NULL;
}

int revocation_change(struct revocation *r, const struct moat_plan *old, const size_t *gone,
		      size_t ngone, const struct moat_endpoint *come, size_t ncome,
		      const struct moat_cidr *managed, size_t nmanaged)
{
	const struct moat_endpoint_set *was = old->es;
	int need = REVOCATION_NONE, ret;

	for (size_t g = 0; g < ngone; g++) {
		const struct moat_endpoint *e = &was->v[gone[g]];

		ret = endpoint_went(r, e, same_name(e, come, ncome));
		if (ret < 0 || ret == REVOCATION_NOW)
			return ret;
		need = ret > need ? ret : need;
	}
	for (size_t j = 0; j < ncome; j++) {
		const struct moat_endpoint *prev = NULL;

		for (size_t g = 0; g < ngone && !prev; g++)
			if (same_name(&come[j], &was->v[gone[g]], 1))
				prev = &was->v[gone[g]];
		if (endpoint_came(r, old, &come[j], prev, managed, nmanaged))
			return REVOCATION_NOW;
	}
	return need;
}

void revocation_gone(struct revocation *r, const struct moat_plan *plan)
{
	size_t k = 0;

	for (size_t i = 0; i < r->ngone; i++)
		if (!moat_plan_addr_find(plan, &r->gone[i]))
			r->gone[k++] = r->gone[i];
	r->ngone = k;
	if (k > 1)
		qsort(r->gone, k, sizeof(*r->gone), moat_addr_cmp);
}

void revocation_clear(struct revocation *r)
{
	r->ngone = 0;
}

void revocation_free(struct revocation *r)
{
	free(r->gone);
	*r = (struct revocation){ 0 };
}
