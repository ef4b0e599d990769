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

#include "learn.h"
#include "log.h"
#include "moat/baseline.h"
#include "moat/selector_text.h"

#define SAVE_EVERY_MS 1000
/* A big baseline takes a while to write: saves then space out so that saving takes at most
 * 1/SAVE_SHARE of the time (a 60,000-flow baseline is ~6 MB of JSON). */
#define SAVE_SHARE 20

struct learn {
	char *baseline_path, *state_path;
	struct moat_baseline *b;
	struct moat_selector_text *sel;	/* NULL: every flow */
	char *selector;
	bool active, ended;		/* ended: a session has been run to its end before */
	bool dirty;
	int64_t started_ms, until_ms, stopped_ms, saved_ms;
	int64_t save_gap_ms;		/* wait at least this long between debounced saves */
	uint64_t records, learned, saves, save_errors;
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

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int baseline_save(struct learn *l, int64_t now_ms)
{
	int64_t t0 = mono_ms();
	int ret = moat_baseline_save(l->b, l->baseline_path);
	int64_t took = mono_ms() - t0;

	l->save_gap_ms = took * SAVE_SHARE > SAVE_EVERY_MS ? took * SAVE_SHARE : SAVE_EVERY_MS;
	l->saves++;
	if (ret) {
		l->save_errors++;
		log_warn("learning: cannot save %s: %s", l->baseline_path, strerror(-ret));
		return ret;
	}
	l->dirty = false;
	l->saved_ms = now_ms;
	return 0;
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
		for (size_t i = 0; i < d.n; i++)
			log_error("%s:%u:%u: %s", d.v[i].file, d.v[i].line, d.v[i].col, d.v[i].msg);
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

int learn_new(const char *dir, struct learn **out)
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
	if (l->dirty && l->b)
		baseline_save(l, l->saved_ms);
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
	}
	if (ret)
		return ret;
	l->active = true;
	l->started_ms = now_ms;
	l->until_ms = duration_ms ? now_ms + (int64_t)duration_ms : 0;
	l->stopped_ms = 0;
	l->learned = l->records = 0;
	ret = baseline_save(l, now_ms);
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
	ret = baseline_save(l, now_ms);
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
	if (l->active && l->until_ms && now_ms >= l->until_ms) {
		log_info("learning: the session's time is up");
		learn_stop(l, now_ms);
		return;
	}
	if (l->dirty && now_ms - l->saved_ms >= l->save_gap_ms)
		baseline_save(l, now_ms);
}

json_t *learn_status_json(const struct learn *l, bool with_flows)
{
	json_t *j = json_pack("{s:s,s:b,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:o,s:I,s:I,s:s,s:s}", "state",
			      l->active ? "learning" : l->ended ? "stopped" : "none", "learning",
			      l->active, "selector", l->selector ? l->selector : "", "started",
			      time_json(l->started_ms), "until", time_json(l->until_ms), "stopped",
			      time_json(l->stopped_ms), "flows", (json_int_t)moat_baseline_count(l->b),
			      "records", (json_int_t)l->records, "learned", (json_int_t)l->learned,
			      "saved", time_json(l->saved_ms), "saves", (json_int_t)l->saves,
			      "save_errors", (json_int_t)l->save_errors, "baseline", l->baseline_path,
			      "alerting", learn_has_baseline(l) ? "on" : "off");

	if (j && with_flows)
		json_object_set_new(j, "baseline_flows", moat_baseline_json(l->b));
	return j;
}

int learn_suggest(const struct learn *l, const struct moat_endpoint_set *es, char **yaml)
{
	return moat_baseline_suggest(l->b, es, yaml);
}
