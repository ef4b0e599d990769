/*
 * Kinds: endpoints alike in everything their identities are made of (plan_priv.h). The
 * first of a kind finds its atoms; its replicas find the kind by a hash of those fields.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "moat/hash.h"
#include "plan_policy.h"
#include "plan_priv.h"

static uint64_t hash_opt(uint64_t h, const char *s)
{
	return s ? moat_hash_str(h, s) : moat_hash_bytes(h, "", 1);
}

uint64_t kind_hash(const struct moat_endpoint *e)
{
	uint64_t h = hash_opt(MOAT_HASH_BASIS ^ moat_hash_seed(), e->namespace);

	h = moat_hash_bytes(h, &e->host_network, sizeof(e->host_network));
	for (size_t i = 0; i < e->labels.n; i++)
		h = hash_opt(hash_opt(h, e->labels.v[i].key), e->labels.v[i].value);
	for (size_t i = 0; i < e->nports; i++) {
		h = hash_opt(h, e->ports[i].name);
		h = moat_hash_bytes(h, &e->ports[i].proto, 1);
		h = moat_hash_bytes(h, &e->ports[i].port, 2);
	}
	return moat_hash_fin(h);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Alike in what kind_atoms reads, in order. */
bool kind_is(const struct plan_kind *k, const struct moat_endpoint *e, uint64_t h)
{
	if (k->hash != h || !str_eq(k->ns, e->namespace) || k->host_network != e->host_network ||
	    k->labels.n != e->labels.n || k->nports != e->nports)
		return false;
	for (size_t i = 0; i < e->labels.n; i++)
		if (!str_eq(k->labels.v[i].key, e->labels.v[i].key) ||
		    !str_eq(k->labels.v[i].value, e->labels.v[i].value))
			return false;
	for (size_t i = 0; i < e->nports; i++)
		if (!str_eq(k->ports[i].name, e->ports[i].name) ||
		    k->ports[i].proto != e->ports[i].proto || k->ports[i].port != e->ports[i].port)
			return false;
	return true;
}

long kind_find(const struct plan_priv *pv, const struct moat_endpoint *e, uint64_t h)
{
	size_t it = 0;
	uint32_t *v;

	while ((v = hmap_next(&pv->kind_by_hash, h, &it)))
		if (kind_is(&pv->kinds[*v], e, h))
			return *v;
	return -1;
}

static char *dup_opt(struct arena *ar, const char *s, bool *ok)
{
	char *d = s ? arena_strdup(ar, s) : NULL;

	*ok = *ok && (!s || d);
	return d;
}

int kind_copy(struct arena *ar, const struct moat_endpoint *e, uint64_t h, struct plan_kind *k)
{
	bool ok = true;

	*k = (struct plan_kind){ .hash = h, .host_network = e->host_network,
				 .labels.n = e->labels.n, .nports = e->nports };
	k->ns = dup_opt(ar, e->namespace, &ok);
	k->labels.v = arena_array(ar, e->labels.n + 1, sizeof(*k->labels.v));
	k->ports = arena_array(ar, e->nports + 1, sizeof(*k->ports));
	if (!k->labels.v || !k->ports)
		return -ENOMEM;
	for (size_t i = 0; i < e->labels.n; i++) {
		k->labels.v[i].key = dup_opt(ar, e->labels.v[i].key, &ok);
		k->labels.v[i].value = dup_opt(ar, e->labels.v[i].value, &ok);
	}
	for (size_t i = 0; i < e->nports; i++) {
		k->ports[i] = e->ports[i];
		k->ports[i].name = dup_opt(ar, e->ports[i].name, &ok);
	}
	return ok ? 0 : -ENOMEM;
}

void nport_canon(char *buf, size_t len, const char *name, uint8_t proto, uint16_t port)
{
	snprintf(buf, len, "N\x1f%s\x1f%u/%u\x1f", name, proto, port);
}

/* Does a rule refer to named port name of proto (0: of whatever protocol the endpoint's is)? */
static bool nport_referred(const struct plan_policy *pol, const char *name, uint8_t proto)
{
	size_t it = 0;

	return hmap_next(&pol->nport_ref, nport_key(name, proto), &it) != NULL;
}

int kind_atoms(const struct plan_policy *pol, const struct plan_atom *atoms, uint32_t ns,
	       const struct moat_endpoint *e, kind_nport_fn nport, void *ctx, struct u32vec *out)
{
	int ret = 0;

	out->n = 0;
	if (!e->host_network)	/* never segmented */
		ret = plan_policy_sels(pol, atoms, ns, &e->labels, out);
	for (size_t i = 0; i < e->nports && !ret; i++) {
		const struct moat_named_port *np = &e->ports[i];
		uint32_t a;

		if (!np->name || (!nport_referred(pol, np->name, np->proto) &&
				  !nport_referred(pol, np->name, 0)))
			continue;
		ret = nport(ctx, np, &a);
		if (!ret)
			ret = u32vec_push(out, a);
	}
	if (!ret)
		out->n = u32_sort_uniq(out->v, out->n);
	return ret;
}
