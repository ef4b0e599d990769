/* Learning sessions and the baseline's files in the state directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "baseline_saver.h"
#include "learn.h"
#include "log.h"
#include "moat/baseline.h"
#include "moat/selector_text.h"

#define SAVE_EVERY_MS 1000

struct learn {
	char *baseline_path, *state_path;
	struct moat_baseline *b;
	struct baseline_saver *saver;	/* writes baseline.json off the loop */
	struct moat_selector_text *sel;	/* NULL: every flow */
	char *selector;
	bool active, ended;		/* ended: a session has been run to its end before */
	bool dirty;			/* changes not handed to the saver yet */
	bool cap_said;			/* the log said the baseline is full (this session) */
	size_t cap;			/* flows the baseline may hold */
	int64_t started_ms, until_ms, stopped_ms;
	int64_t handed_ms;		/* when changes were last handed to the saver */
	bool unseen;			/* handed over, and the saver's outcome not looked at yet */
	uint64_t records, learned, over_cap;
	struct baseline_saver_report rep;	/* as of the last learn_tick */
};

/* mkdir -p, mode for the directories it makes. */
static int dir_make(const char *dir, mode_t mode)
{
	char *copy;
	int ret;

	if (mkdir(dir, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || !(copy = strdup(dir)))
		return -errno;
	ret = strcmp(dirname(copy), dir) ? dir_make(copy, mode) : -ENOENT;
	free(copy);
	if (!ret && mkdir(dir, mode) < 0 && errno != EEXIST)
		ret = -errno;
	return ret;
}

/* Atomic like moat_baseline_save: a temporary file, fsync, rename, fsync the directory. */
static int json_file_write(json_t *j, const char *path)
{
	char tmp[4096], *copy;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (json_dumpfd(j, fd, JSON_INDENT(2)) < 0 || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	if ((copy = strdup(path)) && (fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
	return 0;
}

static json_t *time_json(int64_t ms)
{
	return ms ? json_integer(ms / 1000) : json_null();
}

static int state_save(struct learn *l)
{
	json_t *j = json_pack("{s:i,s:b,s:s,s:o,s:o,s:o}", "version", 1, "learning", l->active,
			      "selector", l->selector ? l->selector : "", "started",
			      time_json(l->started_ms), "until", time_json(l->until_ms), "stopped",
			      time_json(l->stopped_ms));
	int ret = j ? json_file_write(j, l->state_path) : -ENOMEM;

	json_decref(j);
	if (ret)
		log_warn("learning: cannot save %s: %s", l->state_path, strerror(-ret));
	return ret;
}

/*
 * Hands what changed to the saver, which writes baseline.json off the loop; the hand-over
 * costs time proportional to the changes. 0, or -ENOMEM (still dirty: tried again).
 */
static int baseline_save(struct learn *l, int64_t now_ms, unsigned flags)
{
	struct moat_baseline_delta *d = NULL;
	int ret = moat_baseline_delta_take(l->b, &d);

	if (!ret)
		ret = baseline_saver_submit(l->saver, d, flags);
	if (ret) {
		log_warn("learning: cannot hand the baseline over to be saved: %s", strerror(-ret));
		return ret;
	}
	l->dirty = false;
	l->unseen = true;
	l->handed_ms = now_ms;
	return 0;
}

/* What the saver did since the last look: failures logged (and retried), a replica that
 * lost a delta fed all of the baseline again. */
static void saver_poll(struct learn *l)
{
	struct baseline_saver_report r;
	struct moat_baseline_delta *d = NULL;

	baseline_saver_report_get(l->saver, &r);
	if (r.errors > l->rep.errors) {
		log_warn("learning: cannot save %s: %s", l->baseline_path, strerror(-r.last_error));
		l->dirty = true;
	}
	/* idle: everything handed over is written, or its failure is seen above */
	l->unseen = r.busy;
	if (r.out_of_step && !r.busy && moat_baseline_delta_take_all(l->b, &d) == 0 &&
	    baseline_saver_submit(l->saver, d, SAVER_RESET) == 0) {
		log_warn("learning: the saver lost track of the baseline; saving all of it");
		l->unseen = true;
	}
	l->rep = r;
}

static int selector_set(struct learn *l, const char *text, char *err, size_t errlen)
{
	struct moat_selector_text *sel = NULL;
	char *copy = strdup(text ? text : "");
	int ret = copy ? 0 : -ENOMEM;

	if (!ret && *copy)
		ret = moat_selector_text_parse(copy, &sel, err, errlen);
	if (ret) {
		free(copy);
		return ret;
	}
	moat_selector_text_free(l->sel);
	free(l->selector);
	l->sel = sel;
	l->selector = copy;
	return 0;
}

static void baseline_load(struct learn *l)
{
	struct moat_diags d = { 0 };
	char bad[4096];
	int ret = moat_baseline_load(l->baseline_path, &l->b, &d);

	if (!ret) {
		l->ended = true;
		log_info("learning: %zu baseline flows from %s", moat_baseline_count(l->b),
			 l->baseline_path);
	} else if (ret != -ENOENT) {
		log_diags(&d);
		snprintf(bad, sizeof(bad), "%s.bad", l->baseline_path);
		log_error("learning: %s cannot be read; kept as %s, starting from nothing",
			  l->baseline_path, bad);
		rename(l->baseline_path, bad);
	}
	moat_diags_free(&d);
}

static int64_t json_ms(json_t *o, const char *key)
{
	return json_is_integer(json_object_get(o, key))
		       ? json_integer_value(json_object_get(o, key)) * 1000 : 0;
}

/* Picks up a session that was running when moatd stopped. */
static void state_load(struct learn *l)
{
	json_t *j = json_load_file(l->state_path, 0, NULL);
	char err[256];

	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	l->started_ms = json_ms(j, "started");
	l->until_ms = json_ms(j, "until");
	l->stopped_ms = json_ms(j, "stopped");
	if (json_is_true(json_object_get(j, "learning"))) {
		if (selector_set(l, json_string_value(json_object_get(j, "selector")), err,
				 sizeof(err)) == 0) {
			l->active = true;
			log_info("learning: continuing the session started at %lld (selector \"%s\")",
				 (long long)(l->started_ms / 1000), l->selector);
		} else {
			log_error("learning: %s has a bad selector (%s); not learning", l->state_path, err);
		}
	}
	json_decref(j);
}

/*
 * Room in the baseline, so that learning seldom stops the loop to grow it (a table's growth
 * copies and rehashes it all): up to the cap when that is modest (the default), else twice
 * what it holds (the hash slots of a room reserved are touched at once: 16 bytes a flow).
 */
#define ROOM_AHEAD 131072

static int room(struct learn *l)
{
	size_t n = moat_baseline_count(l->b), want = 2 * n > ROOM_AHEAD ? 2 * n : ROOM_AHEAD;

	return moat_baseline_reserve(l->b, want < l->cap ? want : l->cap > n ? l->cap : n);
}

int learn_new(const char *dir, size_t cap, struct learn **out)
{
	struct learn *l = calloc(1, sizeof(*l));
	int ret = l ? dir_make(dir, 0750) : -ENOMEM;

	if (!ret && (asprintf(&l->baseline_path, "%s/baseline.json", dir) < 0 ||
		     asprintf(&l->state_path, "%s/learn.json", dir) < 0))
		ret = -ENOMEM;
	if (!ret)
		baseline_load(l);
	if (!ret && !l->b)
		ret = moat_baseline_new(&l->b);
	l->cap = cap ? cap : 1;
	if (!ret)
		ret = room(l);
	if (!ret)
		ret = baseline_saver_new(l->baseline_path, &l->saver);
	/* the saver's replica starts as the file is: all of it, nothing to write */
	if (!ret)
		ret = baseline_save(l, 0, SAVER_NO_WRITE);
	if (ret) {
		learn_free(l);
		return ret;
	}
	state_load(l);
	*out = l;
	return 0;
}

void learn_free(struct learn *l)
{
	if (!l)
		return;
	if (l->dirty && l->b && l->saver)
		baseline_save(l, l->handed_ms, 0);
	baseline_saver_free(l->saver);	/* writes what is queued first */
	moat_baseline_free(l->b);
	moat_selector_text_free(l->sel);
	free(l->selector);
	free(l->baseline_path);
	free(l->state_path);
	free(l);
}

int learn_start(struct learn *l, const char *selector, uint64_t duration_ms, bool reset,
		int64_t now_ms, char *err, size_t errlen)
{
	struct moat_baseline *fresh = NULL;
	int ret;

	if (l->active)
		return snprintf(err, errlen, "already learning"), -EALREADY;
	ret = selector_set(l, selector, err, errlen);
	if (!ret && reset && !(ret = moat_baseline_new(&fresh))) {
		moat_baseline_free(l->b);
		l->b = fresh;
		ret = room(l);
	}
	if (ret)
		return ret;
	l->active = true;
	l->started_ms = now_ms;
	l->until_ms = duration_ms ? now_ms + (int64_t)duration_ms : 0;
	l->stopped_ms = 0;
	l->learned = l->records = l->over_cap = 0;
	l->cap_said = false;
	ret = baseline_save(l, now_ms, reset ? SAVER_RESET : 0);
	if (!ret)
		ret = state_save(l);
	if (ret)
		snprintf(err, errlen, "cannot save the learning state: %s", strerror(-ret));
	log_info("learning: started (selector \"%s\", %s)", l->selector,
		 duration_ms ? "with a deadline" : "until stopped");
	return ret;
}

int learn_stop(struct learn *l, int64_t now_ms)
{
	int ret;

	if (!l->active)
		return -ENOENT;
	l->active = false;
	l->ended = true;
	l->stopped_ms = now_ms;
	ret = baseline_save(l, now_ms, 0);
	if (!ret)
		ret = state_save(l);
	log_info("learning: stopped; the baseline has %zu flows", moat_baseline_count(l->b));
	return ret;
}

bool learn_active(const struct learn *l)
{
	return l->active;
}

bool learn_has_baseline(const struct learn *l)
{
	return !l->active && l->ended;
}

/* A new flow past the cap: counted, not stored; said once a session. */
static int over_cap(struct learn *l)
{
	l->over_cap++;
	if (!l->cap_said)
		log_warn("learning: the baseline holds %zu flows, its cap (--baseline-cap): new "
			 "flows are counted, not learned (moat learn status)", l->cap);
	l->cap_said = true;
	return 0;
}

static bool selected(const struct learn *l, const struct moat_endpoint *e)
{
	return e && (!l->sel || moat_selector_match(&l->sel->sel, &e->labels));
}

int learn_record(struct learn *l, const struct moat_endpoint *from,
		 const struct moat_addr *from_addr, const struct moat_endpoint *to,
		 const struct moat_addr *to_addr, uint8_t proto, uint16_t port, int64_t when_ms)
{
	int ret;

	if (!l->active || (!selected(l, from) && !selected(l, to)))
		return 0;
	if (moat_baseline_count(l->b) >= l->cap &&
	    !moat_baseline_contains(l->b, from, from_addr, to, to_addr, proto, port))
		return over_cap(l);
	ret = moat_baseline_add(l->b, from, from_addr, to, to_addr, proto, port, when_ms / 1000);
	if (ret < 0)
		return ret;
	l->records++;
	l->learned += (uint64_t)ret;
	l->dirty = true;
	return ret;
}

bool learn_known(const struct learn *l, const struct moat_endpoint *from,
		 const struct moat_addr *from_addr, const struct moat_endpoint *to,
		 const struct moat_addr *to_addr, uint8_t proto, uint16_t port)
{
	return moat_baseline_contains(l->b, from, from_addr, to, to_addr, proto, port);
}

void learn_tick(struct learn *l, int64_t now_ms)
{
	saver_poll(l);
	if (l->active && l->until_ms && now_ms >= l->until_ms) {
		log_info("learning: the session's time is up");
		learn_stop(l, now_ms);
		return;
	}
	/* at most once a second, and not while the last save is under way (a big one takes
	 * longer): changes pile up in the baseline meanwhile, and go over in one delta */
	if (l->dirty && now_ms - l->handed_ms >= SAVE_EVERY_MS && !l->rep.busy)
		baseline_save(l, now_ms, 0);
}

int64_t learn_tick_due(const struct learn *l, int64_t now_ms)
{
	int64_t due = -1;

	if (l->unseen || l->rep.busy)
		due = SAVE_EVERY_MS;		/* look at the saver again */
	if (l->dirty) {
		int64_t at = l->handed_ms + SAVE_EVERY_MS - now_ms;

		at = at < 0 ? 0 : at;
		due = due < 0 || at < due ? at : due;
	}
	if (l->active && l->until_ms) {
		int64_t at = l->until_ms > now_ms ? l->until_ms - now_ms : 0;

		due = due < 0 || at < due ? at : due;
	}
	return due;
}

json_t *learn_status_json(const struct learn *l, bool with_flows)
{
	struct baseline_saver_report r;
	json_t *j;

	baseline_saver_report_get(l->saver, &r);
	j = json_pack("{s:s,s:b,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:o,s:I,s:I,s:s,s:s,s:I,s:b,s:I,s:b,"
		      "s:I}", "state", l->active ? "learning" : l->ended ? "stopped" : "none",
		      "learning", l->active, "selector", l->selector ? l->selector : "", "started",
		      time_json(l->started_ms), "until", time_json(l->until_ms), "stopped",
		      time_json(l->stopped_ms), "flows", (json_int_t)moat_baseline_count(l->b),
		      "records", (json_int_t)l->records, "learned", (json_int_t)l->learned,
		      "saved", time_json(r.saved_ms), "saves", (json_int_t)r.saves, "save_errors",
		      (json_int_t)r.errors, "baseline", l->baseline_path, "alerting",
		      learn_has_baseline(l) ? "on" : "off", "cap", (json_int_t)l->cap, "full",
		      moat_baseline_count(l->b) >= l->cap, "not_learned", (json_int_t)l->over_cap,
		      "saving", r.busy, "save_ms", (json_int_t)r.last_ms);

	if (j && with_flows)
		json_object_set_new(j, "baseline_flows", moat_baseline_json(l->b));
	return j;
}

int learn_suggest(const struct learn *l, const struct moat_endpoint_set *es, char **yaml)
{
	return moat_baseline_suggest(l->b, es, yaml);
}
