/*
 * The ruleset (ruleset.h): what was applied, and the ways to change the kernel's copy:
 * whole (recreate both tables in one batch), by difference from what was applied, by a
 * change's parts alone, and flushed; plus verification by reading back. The parts it
 * assembles are in schema, elements, elemset, rules, batch and tamper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "batch.h"
#include "elements.h"
#include "elemset.h"
#include "rules.h"
#include "ruleset.h"
#include "tamper.h"

struct ruleset {
	struct nfsock *nl, *watch;
	bool applied;
	enum moat_mode mode;
	uint16_t group, dns_queue;
	uint32_t ndomains[2];		/* the per_domain sets and chains of each tier */
	struct elemset *cur;		/* what the kernel holds */
	struct ownerv owners;		/* the identity chains the kernel holds, sorted */
	uint32_t log_rate;
	enum ruleset_host host_access;
	struct pubv pubs;		/* the published ports the kernel holds, by identity */
	unsigned nrules[T_COUNT];
	struct ruleset_stats stats;
	uint64_t unlogged_base;		/* what the counters held before full applies reset them */
};

int ruleset_new(struct ruleset **out)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));
	int ret;

	if (!rs)
		return -ENOMEM;
	ret = nfsock_open(0, &rs->nl);
	if (!ret)
		ret = nfsock_open(NFNLGRP_NFTABLES, &rs->watch);
	if (!ret)
		ret = elemset_new(&rs->cur);
	if (ret < 0) {
		ruleset_free(rs);
		return ret;
	}
	*out = rs;
	return 0;
}

void ruleset_free(struct ruleset *rs)
{
	if (!rs)
		return;
	nfsock_close(rs->nl);
	nfsock_close(rs->watch);
	elemset_free(rs->cur);
	free(rs->owners.v);
	free(rs->pubs.v);
	free(rs);
}

const struct ruleset_stats *ruleset_stats(const struct ruleset *rs)
{
	return &rs->stats;
}

int ruleset_watch_fd(const struct ruleset *rs)
{
	return nfsock_fd(rs->watch);
}

int ruleset_watch_read(struct ruleset *rs, struct ruleset_tamper *out)
{
	return tamper_read(rs->watch, rs->nl->portid, out);
}

/* ---- helpers ---- */

static bool interval_set(enum set_id s)
{
	return (sets[s].flags & NFT_SET_INTERVAL) && !(sets[s].flags & NFT_SET_CONCAT);
}

static bool owner_in(const struct ownerv *o, uint32_t id, bool egress)
{
	for (size_t lo = 0, hi = o->n; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		struct owner k = { id, egress, 0 };
		int c = owner_cmp(&k, &o->v[mid]);

		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* Is e in a set of a chain in gone (its set goes whole, with the chain)? */
static bool in_gone_set(enum set_id s, const struct elem *e, const struct ownerv *gone)
{
	return sets[s].per_ident && owner_in(gone, e->owner, sets[s].egress);
}

static int owner_cmp_v(const void *a, const void *b)
{
	return owner_cmp(a, b);
}

/* o (sorted) without gone and with added (both sorted). 0 or -ENOMEM (o unchanged). */
static int owners_update(struct ownerv *o, const struct ownerv *gone, const struct ownerv *added)
{
	struct ownerv n = { 0 };
	int ret = 0;

	for (size_t i = 0; i < o->n && !ret; i++)
		if (!owner_in(gone, o->v[i].id, o->v[i].egress))
			ret = ownerv_push(&n, o->v[i].id, o->v[i].egress, o->v[i].shape);
	for (size_t i = 0; i < added->n && !ret; i++)
		ret = ownerv_push(&n, added->v[i].id, added->v[i].egress, added->v[i].shape);
	if (ret) {
		free(n.v);
		return ret;
	}
	if (n.n > 1)
		qsort(n.v, n.n, sizeof(*n.v), owner_cmp_v);
	free(o->v);
	*o = n;
	return 0;
}

/* The rules of the chains o, which go with them. */
static unsigned owners_rules(const struct ownerv *o)
{
	unsigned n = 0;

	for (size_t i = 0; i < o->n; i++)
		n += rules_owner_count(&o->v[i]);
	return n;
}

/* Sends bt; on success counts what it did. */
static int send(struct ruleset *rs, struct batch *bt, bool full, struct moat_diags *diags)
{
	int ret = bt->err;

	if (ret < 0)
		moat_diags_add(diags, "nftables", 0, 0, "building the batch: %s", strerror(-ret));
	else if (bt->nrecs)
		ret = nfsock_send(rs->nl, bt, diags);
	if (!ret) {
		for (int t = 0; t < T_COUNT; t++)
			rs->nrules[t] = (full ? 0 : rs->nrules[t]) + bt->nrules[t];
		rs->stats = (struct ruleset_stats){ full, bt->nrecs, bt->added, bt->deleted };
	}
	return ret;
}

/* ---- what the log limit kept out ---- */

static int unlogged_read(struct ruleset *rs, uint64_t *n)
{
	uint64_t v;
	int ret = 0;

	*n = 0;
	for (int t = 0; t < T_COUNT && !ret; t++) {
		ret = nfsock_counter_get(rs->nl, t, UNLOGGED_COUNTER, &v);
		*n += ret ? 0 : v;
	}
	return ret;
}

/* Before a full apply recreates the counters: what they hold so far. */
static void unlogged_keep(struct ruleset *rs)
{
	uint64_t n;

	if (rs->applied && !unlogged_read(rs, &n))
		rs->unlogged_base += n;
}

int ruleset_unlogged(struct ruleset *rs, uint64_t *n)
{
	uint64_t v;
	int ret = rs->applied ? unlogged_read(rs, &v) : -ENODATA;

	if (!ret)
		*n = rs->unlogged_base + v;
	return ret;
}

/* ---- whole and by difference ---- */

static void batch_full(struct batch *bt, const struct ruleset_input *in,
		       const struct elemv *v, const struct ownerv *o)
{
	for (int t = 0; t < T_COUNT; t++) {
		/* add (never fails), delete, add: the batch works whether the table exists or not */
		batch_table(bt, t, NFT_MSG_NEWTABLE);
		batch_table(bt, t, NFT_MSG_DELTABLE);
		batch_table(bt, t, NFT_MSG_NEWTABLE);
	}
	for (int s = 0; s < S_COUNT; s++)
		if (!sets[s].per_ident && !sets[s].per_domain)
			batch_set(bt, s, 0, false);
	for (int t = 0; t < T_COUNT; t++)
		batch_counter(bt, t, UNLOGGED_COUNTER);
	for (int c = 0; c < C_COUNT; c++)
		if (rules_chain_used(c, in))
			batch_chain(bt, chains[c].t, chains[c].name, chains[c].hook,
				    chains[c].prio, false);
	rules_add(bt, in);
	for (size_t i = 0; i < o->n; i++)
		rules_owner_add(bt, &o->v[i]);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, v[s].v, v[s].n, false);
}

/*
 * The elements of set s in old only (to delete: not those of a chain that goes, whose set
 * goes whole) or in new only (to add). rbtree interval sets change whole: an end element
 * can be the same bytes in both while closing a different interval in each, and keeping it
 * would make the kernel see two ends in a row (a partial overlap, EEXIST). These sets are
 * small (ipBlock edges, managed subnets), and an unchanged one sends nothing.
 */
static int diff_set(enum set_id s, const struct elemset *old, const struct elemv *ov,
		    const struct elemset *new, const struct elemv *nv, const struct ownerv *gone,
		    struct elemv *del, struct elemv *add)
{
	bool whole = false;
	int ret = 0;

	if (interval_set(s)) {
		whole = ov->n != nv->n;
		for (size_t i = 0; i < nv->n && !whole; i++)
			whole = !elemset_has(old, s, &nv->v[i]);
	}
	for (size_t i = 0; i < ov->n && !ret; i++)
		if ((whole || !elemset_has(new, s, &ov->v[i])) && !in_gone_set(s, &ov->v[i], gone))
			ret = elemv_push(del, &ov->v[i]);
	for (size_t i = 0; i < nv->n && !ret; i++)
		if (whole || !elemset_has(old, s, &nv->v[i]))
			ret = elemv_push(add, &nv->v[i]);
	return ret;
}

/*
 * Order matters within the one batch: new identity chains (and their sets) exist before
 * the verdict map elements that go to them; element deletes come before adds (an interval
 * or pipapo range being replaced would otherwise overlap); a chain goes only after the
 * elements that go to it.
 */
static int batch_diff(struct batch *bt, const struct elemset *old, const struct elemset *new,
		      const struct ownerv *gone, const struct ownerv *added, struct elemv *del,
		      struct elemv *add)
{
	int ret = 0;

	for (int s = 0; s < S_COUNT && !ret; s++) {
		struct elemv ov = { 0 }, nv = { 0 };

		ret = elemset_list(old, s, &ov);
		if (!ret)
			ret = elemset_list(new, s, &nv);
		if (!ret)
			ret = diff_set(s, old, &ov, new, &nv, gone, &del[s], &add[s]);
		free(ov.v), free(nv.v);
	}
	if (ret)
		return ret;
	for (size_t i = 0; i < added->n; i++)
		rules_owner_add(bt, &added->v[i]);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, del[s].v, del[s].n, true);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, add[s].v, add[s].n, false);
	for (size_t i = 0; i < gone->n; i++)
		rules_owner_del(bt, &gone->v[i]);
	return 0;
}

/* The whole of in, as an element multiset and its elements per set, sorted. */
static int build(const struct ruleset_input *in, struct elemset **set, struct elemv *v)
{
	struct elemv parts[S_COUNT] = { { 0 } };
	int ret = elemset_new(set);

	if (!ret)
		ret = elements_build(in, parts);
	if (!ret)
		ret = elemset_add_all(*set, parts);
	for (int s = 0; s < S_COUNT && !ret; s++)
		ret = elemset_list(*set, s, &v[s]);
	elemvs_free(parts);
	return ret;
}

int ruleset_apply(struct ruleset *rs, const struct ruleset_input *in, bool full,
		  struct moat_diags *diags)
{
	struct elemv v[S_COUNT] = { { 0 } }, del[S_COUNT] = { { 0 } }, add[S_COUNT] = { { 0 } };
	struct ownerv o = { 0 }, gone = { 0 }, added = { 0 };
	struct elemset *set = NULL;
	struct pubv pubs = { 0 };
	struct batch bt = { 0 };
	int ret;

	if (!rs->applied || rs->mode != in->mode || rs->group != in->nflog_group ||
	    rs->dns_queue != in->dns_queue ||
	    memcmp(rs->ndomains, in->plan->ndomains, sizeof(rs->ndomains)) ||
	    rs->log_rate != in->log_rate || rs->host_access != in->host_access)
		full = true;
	if (full)
		unlogged_keep(rs);
	ret = build(in, &set, v);
	if (!ret)
		ret = pubv_build(in->plan, in->es, &pubs);
	if (!ret)
		ret = elements_owners(in->plan, &o);
	if (!ret && !full)
		ret = elements_diff_owners(&rs->owners, &o, &gone, &added);
	if (ret > 0)
		full = true, ret = 0;
	if (!ret)
		ret = batch_init(&bt, rs->nl->seq);
	if (!ret && full)
		batch_full(&bt, in, v, &o);
	else if (!ret)
		ret = batch_diff(&bt, rs->cur, set, &gone, &added, del, add);
	if (!ret)
		ret = send(rs, &bt, full, diags);
	if (!ret) {
		rs->nrules[T_INET] -= full ? 0 : owners_rules(&gone);
		elemset_free(rs->cur);
		rs->cur = set, set = NULL;
		free(rs->owners.v);
		rs->owners = o, o = (struct ownerv){ 0 };
		rs->applied = true;
		rs->mode = in->mode;
		rs->group = in->nflog_group;
		rs->dns_queue = in->dns_queue;
		memcpy(rs->ndomains, in->plan->ndomains, sizeof(rs->ndomains));
		rs->log_rate = in->log_rate;
		rs->host_access = in->host_access;
		free(rs->pubs.v);
		rs->pubs = pubs, pubs = (struct pubv){ 0 };
	}
	batch_free(&bt);
	elemset_free(set);
	elemvs_free(v), elemvs_free(del), elemvs_free(add);
	free(o.v), free(gone.v), free(added.v), free(pubs.v);
	return ret;
}

/* ---- by a change's parts ---- */

/*
 * The parts in minus leave cur and those in plus come (elements leave the kernel with their
 * last part and come with their first): what the kernel must delete goes to del, what it
 * must add to add. Undone by undo() with the same arguments.
 */
static int parts_apply(struct elemset *cur, const struct elemv *minus, const struct elemv *plus,
		       const struct ownerv *gone, struct elemv *del, struct elemv *add,
		       size_t *done)
{
	int ret = 0;

	*done = 0;
	for (int s = 0; s < S_COUNT && !ret; s++)
		for (size_t i = 0; i < minus[s].n && !ret; i++, (*done)++) {
			ret = elemset_del(cur, s, &minus[s].v[i]);
			if (ret == 1 && !in_gone_set(s, &minus[s].v[i], gone))
				ret = elemv_push(&del[s], &minus[s].v[i]);
			ret = ret < 0 ? ret : 0;
		}
	for (int s = 0; s < S_COUNT && !ret; s++)
		for (size_t i = 0; i < plus[s].n && !ret; i++, (*done)++) {
			ret = elemset_add(cur, s, &plus[s].v[i]);
			if (ret == 1)
				ret = elemv_push(&add[s], &plus[s].v[i]);
			ret = ret < 0 ? ret : 0;
		}
	if (ret)
		(*done)--;	/* the failed one changed nothing, or was undoable like the rest */
	return ret;
}

/* Undoes the first done parts of parts_apply. */
static void parts_undo(struct elemset *cur, const struct elemv *minus, const struct elemv *plus,
		       size_t done)
{
	for (int s = 0; s < S_COUNT && done; s++)
		for (size_t i = 0; i < minus[s].n && done; i++, done--)
			elemset_add(cur, s, &minus[s].v[i]);	/* the entry is there or was */
	for (int s = 0; s < S_COUNT && done; s++)
		for (size_t i = 0; i < plus[s].n && done; i++, done--)
			elemset_del(cur, s, &plus[s].v[i]);
}

static int change_batch(struct batch *bt, struct elemv *del, struct elemv *add,
			const struct ownerv *gone, const struct ownerv *added)
{
	for (size_t i = 0; i < added->n; i++)
		rules_owner_add(bt, &added->v[i]);
	for (int s = 0; s < S_COUNT; s++) {
		elemv_sort(&del[s]);
		batch_elems(bt, s, del[s].v, del[s].n, true);
	}
	for (int s = 0; s < S_COUNT; s++) {
		elemv_sort(&add[s]);
		batch_elems(bt, s, add[s].v, add[s].n, false);
	}
	for (size_t i = 0; i < gone->n; i++)
		rules_owner_del(bt, &gone->v[i]);
	return bt->err;
}

int ruleset_apply_change(struct ruleset *rs, const struct moat_plan *plan,
			 const struct moat_plan_delta *d, const size_t *gone, size_t ngone,
			 const struct moat_endpoint *come, size_t ncome, struct moat_diags *diags)
{
	struct elemv minus[S_COUNT] = { { 0 } }, plus[S_COUNT] = { { 0 } };
	struct elemv del[S_COUNT] = { { 0 } }, add[S_COUNT] = { { 0 } };
	struct ownerv ogone = { 0 }, oadded = { 0 };
	struct pubv pubs = { 0 };
	struct batch bt = { 0 };
	size_t done = 0;
	bool undo = false;
	int ret = rs->applied ? 0 : -ENODATA;

	if (!ret)
		ret = elements_change(plan, d, gone, ngone, come, ncome, &rs->pubs, minus, plus);
	if (!ret)
		ret = pubv_change(&rs->pubs, plan, d, gone, ngone, come, ncome, &pubs);
	if (!ret)
		ret = elements_owners_of(d->idents_gone, d->nidents_gone, &ogone);
	if (!ret)
		ret = elements_owners_of(d->idents_new, d->nidents_new, &oadded);
	if (!ret) {
		ret = parts_apply(rs->cur, minus, plus, &ogone, del, add, &done);
		undo = true;
	}
	if (!ret)
		ret = batch_init(&bt, rs->nl->seq);
	if (!ret)
		ret = change_batch(&bt, del, add, &ogone, &oadded);
	if (!ret)
		ret = send(rs, &bt, false, diags);
	if (!ret)
		ret = owners_update(&rs->owners, &ogone, &oadded);
	if (!ret) {
		rs->nrules[T_INET] -= owners_rules(&ogone);
		undo = false;
		free(rs->pubs.v);
		rs->pubs = pubs, pubs = (struct pubv){ 0 };
	}
	if (undo)
		parts_undo(rs->cur, minus, plus, done);
	batch_free(&bt);
	elemvs_free(minus), elemvs_free(plus), elemvs_free(del), elemvs_free(add);
	free(ogone.v), free(oadded.v), free(pubs.v);
	return ret;
}

/* ---- flush ---- */

int ruleset_flush(struct ruleset *rs, struct moat_diags *diags)
{
	struct elemset *empty = NULL;
	struct batch bt = { 0 };
	int ret = elemset_new(&empty);

	unlogged_keep(rs);
	if (!ret)
		ret = batch_init(&bt, rs->nl->seq);
	for (int t = 0; !ret && t < T_COUNT; t++) {
		batch_table(&bt, t, NFT_MSG_NEWTABLE);
		batch_table(&bt, t, NFT_MSG_DELTABLE);
	}
	if (!ret)
		ret = send(rs, &bt, true, diags);
	if (!ret) {
		elemset_free(rs->cur);
		rs->cur = empty, empty = NULL;
		free(rs->owners.v);
		rs->owners = (struct ownerv){ 0 };
		free(rs->pubs.v);
		rs->pubs = (struct pubv){ 0 };
		memset(rs->nrules, 0, sizeof(rs->nrules));
		rs->applied = false;
		rs->stats.added = 0;
	}
	batch_free(&bt);
	elemset_free(empty);
	return ret;
}

/* ---- egress by DNS name ---- */

int ruleset_dns_add(struct ruleset *rs, const struct ruleset_dns *v, size_t n,
		    struct moat_diags *diags)
{
	struct elemv e[S_COUNT] = { { 0 } };
	struct batch bt = { 0 };
	int ret = rs->applied ? 0 : -ENODATA;

	for (size_t i = 0; i < n && !ret; i++)
		ret = elements_dns(&v[i], rs->ndomains[v[i].tier], e);
	if (!ret)
		ret = batch_init(&bt, rs->nl->seq);
	for (int s = 0; s < S_COUNT && !ret; s++)
		batch_elems(&bt, s, e[s].v, e[s].n, false);
	if (!ret) {
		ret = bt.err;
		if (!ret && bt.nrecs)
			ret = nfsock_send(rs->nl, &bt, diags);
	}
	batch_free(&bt);
	elemvs_free(e);
	return ret;
}

/* ---- verify ---- */

static int verify_set(struct ruleset *rs, enum set_id s, uint32_t owner, char *why,
		      size_t whylen)
{
	char name[32];
	size_t n, want = elemset_count(rs->cur, s, owner);
	int ret = nfsock_dump_count(rs->nl, sets[s].t, schema_set_name(s, owner, name,
								       sizeof(name)), &n);

	if (!ret && n != want) {
		snprintf(why, whylen, "set %s moat %s: %zu elements, applied %zu",
			 tbls[sets[s].t].fname, name, n, want);
		return 1;
	}
	return ret;
}

static int verify(struct ruleset *rs, char *why, size_t whylen)
{
	int ret = 0;

	for (int t = 0; t < T_COUNT && !ret; t++) {
		size_t n;

		ret = nfsock_dump_count(rs->nl, t, NULL, &n);
		if (!ret && n != rs->nrules[t]) {
			snprintf(why, whylen, "table %s moat: %zu rules, applied %u", tbls[t].fname,
				 n, rs->nrules[t]);
			return 1;
		}
	}
	for (int s = 0; s < S_COUNT && !ret; s++)	/* per_domain ones are learnt */
		if (!sets[s].per_ident && !sets[s].per_domain && !sets[s].meter)
			ret = verify_set(rs, s, 0, why, whylen);
	for (size_t i = 0; i < rs->owners.n && !ret; i++) {
		const struct owner *o = &rs->owners.v[i];
		enum set_id v[OWNER_SETS_MAX];
		size_t n = owner_sets(o, v);

		for (size_t k = 0; k < n && !ret; k++)
			ret = verify_set(rs, v[k], o->id, why, whylen);
	}
	return ret;
}

int ruleset_verify(struct ruleset *rs, bool *in_sync, char *why, size_t whylen)
{
	int ret;

	if (!rs->applied)
		return -ENODATA;
	if (whylen)
		why[0] = 0;
	ret = verify(rs, why, whylen);
	if (ret == -ENOENT) {
		snprintf(why, whylen, "a moat table or set is missing");
		ret = 1;
	}
	if (ret >= 0)
		*in_sync = !ret;
	return ret < 0 ? ret : 0;
}
