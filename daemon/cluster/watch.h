/*
 * Everything under a prefix of etcd, followed by one thread: a full list (a snapshot at one
 * revision, read in pages), then the /v3/watch stream from the list's revision + 1, and
 * after a disconnect the stream again from the last revision seen + 1, so nothing is missed
 * and nothing listed again. A start revision that etcd has compacted cancels the watch: the
 * thread lists everything again (a new snapshot), never leaves a silent gap.
 *
 * The thread hands the event loop messages, oldest first, through a queue and an eventfd;
 * it holds no state of the loop's. When more than WATCH_MAX_QUEUED bytes wait, it stops
 * reading the stream until the loop has taken them (etcd buffers meanwhile).
 */
#ifndef MOAT_CLUSTER_WATCH_H
#define MOAT_CLUSTER_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"

#define WATCH_PAGE 2000
#define WATCH_MAX_LINE (32u << 20)
#define WATCH_MAX_QUEUED (64u << 20)
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

enum watch_msg_kind {
	WATCH_SNAPSHOT,		/* kvs: every key under the prefix at revision */
	WATCH_EVENTS,		/* events, in order, up to revision */
	WATCH_UP,		/* the stream is (re)connected */
	WATCH_DOWN,		/* the stream or a list failed (why); retrying */
};

struct watch_msg {
	enum watch_msg_kind kind;
	int64_t revision;
	struct etcd_kvs kvs;
	struct etcd_event *events;
	size_t nevents;
	size_t bytes;		/* what it holds, roughly */
	char why[256];
	struct watch_msg *next;
};

struct watch;

/*
 * watch_start - follow every key under prefix (both copied) through a client of o. The first
 * message, once etcd answers, is a SNAPSHOT. 0 and *out, -EINVAL (err says), -errno.
 */
int watch_start(const struct etcd_opts *o, const char *prefix, struct watch **out, char *err,
		size_t errlen);

/* watch_stop - stop and join the thread, free w and the messages it holds. NULL-safe. */
void watch_stop(struct watch *w);

/* watch_fd - readable while messages wait. */
int watch_fd(const struct watch *w);

/* watch_take - every waiting message, oldest first, as a list (free with watch_msg_free);
 * NULL when none. */
struct watch_msg *watch_take(struct watch *w);

/* watch_msg_free - a list of messages. NULL-safe. */
void watch_msg_free(struct watch_msg *m);

/* watch_kick - end the stream now and connect again (resuming): for when the caller knows
 * etcd went away, which a silent stream would only show after TCP keepalives. */
void watch_kick(struct watch *w);

/* watch_relist - list every key again (a new SNAPSHOT), then watch on from there: for when
 * what the caller accepted depends on something that changed. */
void watch_relist(struct watch *w);

struct watch_stats {
	uint64_t snapshots, compacted, reconnects, events, lines_refused;
	int64_t revision;	/* the last revision seen */
	bool up;
};

/* watch_stats - a copy of the thread's counters. */
void watch_stats(struct watch *w, struct watch_stats *st);

#endif
