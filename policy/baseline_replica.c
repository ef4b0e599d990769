/*
 * A baseline's changes, taken in time proportional to them, and a replica that applies them:
 * what lets moatd save a large baseline from another thread while learning goes on
 * (include/moat/baseline.h). The replica owns deep copies and never shares memory with the
 * baseline, so the two threads need no lock beyond the hand-over of a delta.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_priv.h"

struct moat_baseline_delta {
	struct bl_peer *peers;		/* new peers, deep copies, from index first_peer on */
	size_t first_peer, npeers;
	uint32_t *idx;			/* changed flows: where, and what they are now */
	struct bl_flow *flows;
	size_t nflows;
	size_t total_flows;		/* the baseline's flow count when taken */
};

struct moat_baseline_replica {
	struct bl_peer *peers;
	size_t npeers, peers_cap;
	struct bl_flow *flows;
	size_t nflows, flows_cap;
};

void moat_baseline_delta_free(struct moat_baseline_delta *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->npeers; i++)
		bl_peer_fini(&d->peers[i]);
	free(d->peers);
	free(d->idx);
	free(d->flows);
	free(d);
}

size_t moat_baseline_delta_flows(const struct moat_baseline_delta *d)
{
	return d ? d->nflows : 0;
}

static int delta_peers(struct moat_baseline_delta *d, const struct moat_baseline *b)
{
	size_t n = b->npeers - b->peers_taken;

	d->first_peer = b->peers_taken;
	d->peers = calloc(n ? n : 1, sizeof(*d->peers));
	if (!d->peers)
		return -ENOMEM;
	for (; d->npeers < n; d->npeers++)
		if (bl_peer_copy(&d->peers[d->npeers], &b->peers[d->first_peer + d->npeers]))
			return -ENOMEM;
	return 0;
}

int moat_baseline_delta_take(struct moat_baseline *b, struct moat_baseline_delta **out)
{
	struct moat_baseline_delta *d = calloc(1, sizeof(*d));
	int ret = d ? delta_peers(d, b) : -ENOMEM;

	if (!ret) {
		d->idx = malloc((b->nchanges ? b->nchanges : 1) * sizeof(*d->idx));
		d->flows = malloc((b->nchanges ? b->nchanges : 1) * sizeof(*d->flows));
		ret = d->idx && d->flows ? 0 : -ENOMEM;
	}
	if (ret) {
		moat_baseline_delta_free(d);
		return ret;
	}
	for (size_t i = 0; i < b->nchanges; i++) {
		struct bl_flow *f = &b->flows[b->changes[i]];

		f->changed = 0;
		d->idx[i] = b->changes[i];
		d->flows[i] = *f;
	}
	d->nflows = b->nchanges;
	d->total_flows = b->nflows;
	b->nchanges = 0;
	b->peers_taken = b->npeers;
	*out = d;
	return 0;
}

int moat_baseline_delta_take_all(struct moat_baseline *b, struct moat_baseline_delta **out)
{
	uint32_t *v = realloc(b->changes, (b->nflows ? b->nflows : 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	b->changes = v;
	b->changes_cap = b->nflows ? b->nflows : 1;
	b->nchanges = 0;
	for (size_t i = 0; i < b->nflows; i++) {
		b->flows[i].changed = 1;
		b->changes[b->nchanges++] = (uint32_t)i;
	}
	b->peers_taken = 0;
	return moat_baseline_delta_take(b, out);
}

int moat_baseline_replica_new(struct moat_baseline_replica **out)
{
	struct moat_baseline_replica *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	*out = r;
	return 0;
}

void moat_baseline_replica_reset(struct moat_baseline_replica *r)
{
	for (size_t i = 0; i < r->npeers; i++)
		bl_peer_fini(&r->peers[i]);
	r->npeers = r->nflows = 0;
}

void moat_baseline_replica_free(struct moat_baseline_replica *r)
{
	if (!r)
		return;
	moat_baseline_replica_reset(r);
	free(r->peers);
	free(r->flows);
	free(r);
}

/* Room for n elements of size sz in *v of *cap. */
static int room(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t ncap = *cap ? *cap : 8;
	void *nv;

	if (n <= *cap)
		return 0;
	while (ncap < n)
		ncap *= 2;
	nv = realloc(*v, ncap * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

int moat_baseline_replica_apply(struct moat_baseline_replica *r,
				const struct moat_baseline_delta *d)
{
	if (d->first_peer != r->npeers || d->total_flows < r->nflows)
		return -EINVAL;		/* not the next delta of the baseline r follows */
	if (room((void **)&r->peers, &r->peers_cap, r->npeers + d->npeers, sizeof(*r->peers)) ||
	    room((void **)&r->flows, &r->flows_cap, d->total_flows, sizeof(*r->flows)))
		return -ENOMEM;
	for (size_t i = 0; i < d->npeers; i++)
		if (bl_peer_copy(&r->peers[r->npeers], &d->peers[i]) == 0)
			r->npeers++;
		else
			return -ENOMEM;
	/* every flow past r->nflows is new since, so it is in the delta */
	for (size_t i = 0; i < d->nflows; i++)
		r->flows[d->idx[i]] = d->flows[i];
	r->nflows = d->total_flows;
	return 0;
}

size_t moat_baseline_replica_count(const struct moat_baseline_replica *r)
{
	return r->nflows;
}

int moat_baseline_replica_save(const struct moat_baseline_replica *r, const char *path)
{
	struct bl_view v = { r->peers, r->npeers, r->flows, r->nflows };

	return bl_view_save(&v, path);
}
