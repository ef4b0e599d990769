/*
 * The ruleset (ruleset.h): what was applied, and the three ways to change the kernel's copy:
 * whole (recreate both tables in one batch), by difference, and flushed; plus verification
 * by reading back. The parts it assembles are in schema, elements, rules, batch and tamper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "batch.h"
#include "elements.h"
#include "rules.h"
#include "ruleset.h"
#include "tamper.h"

struct ruleset {
	struct nfsock *nl, *watch;
	bool applied;
	enum moat_mode mode;
	uint16_t group;
	struct elemv cur[S_COUNT];	/* what the kernel holds, sorted */
	struct ownerv owners;		/* the identity chains the kernel holds, sorted */
	unsigned nrules[T_COUNT];
	struct ruleset_stats stats;
};

static void batch_full(struct batch *bt, const struct ruleset_input *in, const struct elemv *v,
		       const struct ownerv *o)
{
	for (int t = 0; t < T_COUNT; t++) {
		/* add (never fails), delete, add: the batch works whether the table exists or not */
		batch_table(bt, t, NFT_MSG_NEWTABLE);
		batch_table(bt, t, NFT_MSG_DELTABLE);
		batch_table(bt, t, NFT_MSG_NEWTABLE);
	}
	for (int s = 0; s < S_COUNT; s++)
		if (!sets[s].per_ident)
			batch_set(bt, s, 0, false);
	for (int c = 0; c < C_COUNT; c++)
		batch_chain(bt, chains[c].t, chains[c].name, chains[c].hook, chains[c].prio, false);
	rules_add(bt, in);
	for (size_t i = 0; i < o->n; i++)
		rules_owner_add(bt, &o->v[i]);
	for (int s = 0; s < S_COUNT; s++)
		batch_elems(bt, s, v[s].v, v[s].n, false);
}

/*
 * Order matters within the one batch: new identity chains (and their sets) exist before
 * the verdict map elements that go to them; element deletes come before adds (an interval
 * or pipapo range being replaced would otherwise overlap); a chain goes only after the
 * elements that go to it.
 */
static int batch_incremental(struct batch *bt, const struct elemv *old, const struct elemv *new,
			     const struct ownerv *gone, const struct ownerv *added,
			     struct elemv *del, struct elemv *add)
{
	for (int s = 0; s < S_COUNT; s++) {
		int ret = elements_diff_set(s, &old[s], &new[s], gone, &del[s], &add[s]);

		if (ret < 0)
			return ret;
	}
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

int ruleset_new(struct ruleset **out)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));
	int ret;

	if (!rs)
		return -ENOMEM;
	ret = nfsock_open(0, &rs->nl);
	if (!ret)
		ret = nfsock_open(NFNLGRP_NFTABLES, &rs->watch);
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
	elemvs_free(rs->cur);
	free(rs->owners.v);
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

static void state_take(struct ruleset *rs, const struct ruleset_input *in, struct elemv *v,
		       struct ownerv *o, const struct batch *bt, bool full)
{
	elemvs_free(rs->cur);
	memcpy(rs->cur, v, sizeof(rs->cur));
	memset(v, 0, sizeof(rs->cur));
	free(rs->owners.v);
	rs->owners = *o;
	*o = (struct ownerv){0};
	for (int t = 0; t < T_COUNT; t++)
		rs->nrules[t] = (full ? 0 : rs->nrules[t]) + bt->nrules[t];
	rs->applied = true;
	rs->mode = in->mode;
	rs->group = in->nflog_group;
	rs->stats = (struct ruleset_stats){ full, bt->nrecs, bt->added, bt->deleted };
}

int ruleset_apply(struct ruleset *rs, const struct ruleset_input *in, bool full,
		      struct moat_diags *diags)
{
	struct elemv v[S_COUNT] = {{0}}, del[S_COUNT] = {{0}}, add[S_COUNT] = {{0}};
	struct ownerv o = {0}, gone = {0}, added = {0};
	struct batch bt;
	int ret;

	if (!rs->applied || rs->mode != in->mode || rs->group != in->nflog_group)
		full = true;
	ret = elements_build(in, rs->applied ? rs->cur : NULL, v);
	if (!ret)
		ret = elements_owners(in->plan, &o);
	if (!ret && !full)
		ret = elements_diff_owners(&rs->owners, &o, &gone, &added);
	if (ret > 0)
		full = true, ret = 0;
	if (ret < 0)
		goto out_elems;
	ret = batch_init(&bt, rs->nl->seq);
	if (!ret && full)
		batch_full(&bt, in, v, &o);
	else if (!ret)
		ret = batch_incremental(&bt, rs->cur, v, &gone, &added, del, add);
	if (!ret)
		ret = bt.err;
	if (ret < 0)
		moat_diags_add(diags, "nftables", 0, 0, "building the batch: %s", strerror(-ret));
	else if (bt.nrecs)
		ret = nfsock_send(rs->nl, &bt, diags);
	if (!ret) {
		/* rules of deleted chains went with them */
		rs->nrules[T_INET] -= full ? 0 : gone.n * RULES_PER_OWNER;
		state_take(rs, in, v, &o, &bt, full);
	}
	batch_free(&bt);
out_elems:
	elemvs_free(v);
	elemvs_free(del);
	elemvs_free(add);
	free(o.v);
	free(gone.v);
	free(added.v);
	return ret;
}

int ruleset_flush(struct ruleset *rs, struct moat_diags *diags)
{
	struct batch bt;
	int ret = batch_init(&bt, rs->nl->seq);

	for (int t = 0; !ret && t < T_COUNT; t++) {
		batch_table(&bt, t, NFT_MSG_NEWTABLE);
		batch_table(&bt, t, NFT_MSG_DELTABLE);
	}
	if (!ret)
		ret = bt.err;
	if (!ret)
		ret = nfsock_send(rs->nl, &bt, diags);
	if (!ret) {
		elemvs_free(rs->cur);
		free(rs->owners.v);
		rs->owners = (struct ownerv){0};
		memset(rs->nrules, 0, sizeof(rs->nrules));
		rs->applied = false;
		rs->stats = (struct ruleset_stats){ true, bt.nrecs, 0, 0 };
	}
	batch_free(&bt);
	return ret;
}

/* Elements of set s that rs applied, for one owner (per_ident sets) or all. */
static size_t applied_count(const struct ruleset *rs, enum set_id s, uint32_t owner)
{
	size_t n = 0;

	if (!sets[s].per_ident)
		return rs->cur[s].n;
	for (size_t i = 0; i < rs->cur[s].n; i++)
		n += rs->cur[s].v[i].owner == owner;
	return n;
}

static int verify_set(struct ruleset *rs, enum set_id s, uint32_t owner, char *why,
		      size_t whylen)
{
	char name[32];
	size_t n;
	int ret = nfsock_dump_count(rs->nl, sets[s].t, schema_set_name(s, owner, name, sizeof(name)), &n);

	if (!ret && n != applied_count(rs, s, owner)) {
		snprintf(why, whylen, "set %s moat %s: %zu elements, applied %zu",
			 tbls[sets[s].t].fname, name, n, applied_count(rs, s, owner));
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
	for (int s = 0; s < S_COUNT && !ret; s++)
		if (!sets[s].per_ident)
			ret = verify_set(rs, s, 0, why, whylen);
	for (size_t i = 0; i < rs->owners.n && !ret; i++) {
		const struct owner *o = &rs->owners.v[i];

		ret = verify_set(rs, o->egress ? S_TO : S_FROM, o->id, why, whylen);
		if (!ret)
			ret = verify_set(rs, o->egress ? S_OUT_ANY : S_IN_ANY, o->id, why, whylen);
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
