/* Alerts: rate limit, the JSON-lines file, syslog, the ring and the followers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "alerts.h"
#include "log.h"
#include "moat/hash.h"

#define MAX_FOLLOWERS 64
#define TAIL_BYTES (1u << 20)
/*
 * No source takes more than a share of the budget: each (endpoint, or address when it is
 * none) has a bucket of 1/SOURCE_SHARE of the rate and burst, so a flood of unexpected flows from one container (the kernel logs it
 * at --log-rate) leaves the rest of the budget to the others. SOURCES buckets, found by a
 * short probe; a full probe reuses the bucket used longest ago (a forgotten source starts
 * with a full share again, which bounds what it can take, not what it has taken).
 */
#define SOURCES 4096
#define SOURCE_PROBE 8
#define SOURCE_SHARE 4

struct source {
	uint64_t key;			/* moat_hash_fin of the source address; 0: free */
	double tokens;
	uint64_t last_ms;
};

struct alerts {
	char *path;
	int fd;
	uint64_t file_bytes;
	unsigned rate;
	double tokens, burst;
	uint64_t last_ms;
	json_t *ring[ALERTS_RING];
	size_t head, n;			/* head: the next slot to write */
	uint64_t raised, suppressed, pending, write_errors;
	struct source *sources;		/* SOURCES of them */
	struct ctl_conn *followers[MAX_FOLLOWERS];
	size_t nfollowers;
};

static int file_open(struct alerts *a)
{
	struct stat st;

	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (a->fd < 0)
		return -errno;
	a->file_bytes = fstat(a->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

static void ring_push(struct alerts *a, json_t *alert)
{
	json_decref(a->ring[a->head]);
	a->ring[a->head] = json_incref(alert);
	a->head = (a->head + 1) % ALERTS_RING;
	if (a->n < ALERTS_RING)
		a->n++;
}

/* The last lines of an existing file, so the ring outlives a restart. */
static void tail_load(struct alerts *a)
{
	struct stat st;
	off_t from;
	char *buf, *line, *save = NULL;
	ssize_t got;
	int fd = open(a->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !(buf = malloc(TAIL_BYTES + 1))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	from = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
	got = pread(fd, buf, TAIL_BYTES, from);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	line = from ? strchr(buf, '\n') : buf;	/* skip a partial first line */
	for (line = line ? strtok_r(line, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);

		if (json_is_object(j))
			ring_push(a, j);
		json_decref(j);
	}
	free(buf);
}

int alerts_new(const char *dir, unsigned rate, struct alerts **out)
{
	struct alerts *a = calloc(1, sizeof(*a));
	int ret;

	if (!a || asprintf(&a->path, "%s/%s", dir, ALERTS_FILE) < 0) {
		free(a);
		return -ENOMEM;
	}
	a->fd = -1;
	a->rate = rate;
	a->burst = a->tokens = 10.0 * rate;
	a->sources = calloc(SOURCES, sizeof(*a->sources));
	if (!a->sources) {
		alerts_free(a);
		return -ENOMEM;
	}
	tail_load(a);
	ret = file_open(a);
	if (ret) {
		alerts_free(a);
		return ret;
	}
	openlog("moatd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	*out = a;
	return 0;
}

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < ALERTS_RING; i++)
		json_decref(a->ring[i]);
	if (a->fd >= 0)
		close(a->fd);
	free(a->sources);
	free(a->path);
	free(a);
}

/* Past ALERTS_FILE_MAX the file becomes alerts.jsonl.1 (replacing the one before). */
static void file_rotate(struct alerts *a)
{
	char old[4096];

	snprintf(old, sizeof(old), "%s.1", a->path);
	if (rename(a->path, old) < 0)
		return;
	close(a->fd);
	if (file_open(a) < 0)
		log_warn("alerts: cannot reopen %s after rotating it: %s", a->path, strerror(errno));
}

static int file_append(struct alerts *a, const char *line, size_t len)
{
	ssize_t n;

	if (a->fd < 0 && file_open(a) < 0)
		return -errno;
	n = write(a->fd, line, len);	/* one write per line: O_APPEND keeps lines whole */
	if (n != (ssize_t)len)
		return n < 0 ? -errno : -EIO;
	a->file_bytes += len;
	if (a->file_bytes > ALERTS_FILE_MAX)
		file_rotate(a);
	return 0;
}

static void time_set(json_t *alert)
{
	struct timespec ts;
	struct tm tm;
	char buf[64];

	if (json_object_get(alert, "time"))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03ldZ", ts.tv_nsec / 1000000);
	json_object_set_new(alert, "time", json_string(buf));
}

/* The line and its newline in one write. */
static int line_append(struct alerts *a, const char *s)
{
	size_t len = strlen(s);
	char *line = malloc(len + 1);
	int ret;

	if (!line)
		return -ENOMEM;
	memcpy(line, s, len);
	line[len] = '\n';
	ret = file_append(a, line, len + 1);
	free(line);
	return ret;
}

/* Writes, logs, rings and streams one alert (consumed). */
static int emit(struct alerts *a, json_t *alert, const char *text)
{
	char *s;
	int ret;

	time_set(alert);
	s = json_dumps(alert, JSON_COMPACT);
	ret = s ? line_append(a, s) : -ENOMEM;
	free(s);
	if (ret)
		a->write_errors++;
	syslog(LOG_WARNING, "%s", text);
	ring_push(a, alert);
	for (size_t i = 0; i < a->nfollowers; i++)
		ctl_conn_send(a->followers[i], alert);
	json_decref(alert);
	return ret;
}

static bool token_take(struct alerts *a, uint64_t now_ms)
{
	if (!a->rate)
		return true;
	a->tokens += (double)(now_ms - a->last_ms) * a->rate / 1000.0;
	a->last_ms = now_ms;
	if (a->tokens > a->burst)
		a->tokens = a->burst;
	if (a->tokens < 1.0)
		return false;
	a->tokens -= 1.0;
	return true;
}

/* Who an alert is from: its source endpoint's name, else its source address; NULL: none. */
static const char *source_of(json_t *alert)
{
	json_t *from = json_object_get(alert, "from");
	const char *name = json_string_value(json_object_get(from, "name"));

	return name ? name : json_string_value(json_object_get(from, "ip"));
}

/* The bucket of the alert's source, or NULL when it names none. */
static struct source *source_find(struct alerts *a, json_t *alert, uint64_t now_ms)
{
	const char *src = source_of(alert);
	uint64_t key = src ? moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS ^ moat_hash_seed(), src))
			   : 0;
	struct source *oldest = NULL;

	for (size_t i = 0; key && i < SOURCE_PROBE; i++) {
		struct source *s = &a->sources[(key + i) % SOURCES];

		if (s->key == key)
			return s;
		if (!oldest || !s->key || (oldest->key && s->last_ms < oldest->last_ms))
			oldest = s;
	}
	if (oldest)
		*oldest = (struct source){ key, a->burst / SOURCE_SHARE, now_ms };
	return oldest;
}

/* A token from the alert's source's share (always, without a rate or a source). */
static bool source_take(struct alerts *a, json_t *alert, uint64_t now_ms)
{
	struct source *s = a->rate ? source_find(a, alert, now_ms) : NULL;

	if (!s)
		return true;
	s->tokens += (double)(now_ms - s->last_ms) * a->rate / SOURCE_SHARE / 1000.0;
	s->last_ms = now_ms;
	if (s->tokens > a->burst / SOURCE_SHARE)
		s->tokens = a->burst / SOURCE_SHARE;
	if (s->tokens < 1.0)
		return false;
	s->tokens -= 1.0;
	return true;
}

int alerts_raise(struct alerts *a, json_t *alert, const char *text, uint64_t now_ms)
{
	int ret;

	if (!source_take(a, alert, now_ms) || !token_take(a, now_ms)) {
		a->suppressed++;
		a->pending++;
		json_decref(alert);
		return 0;
	}
	a->raised++;
	ret = emit(a, alert, text);
	return ret ? ret : 1;
}

void alerts_tick(struct alerts *a, uint64_t now_ms)
{
	char text[128];
	json_t *j;

	if (!a->pending || !token_take(a, now_ms))
		return;
	snprintf(text, sizeof(text), "moat: %llu alerts held back by the rate limit (%u/s)",
		 (unsigned long long)a->pending, a->rate);
	j = json_pack("{s:s,s:I,s:i,s:s}", "kind", "suppressed", "count", (json_int_t)a->pending,
		      "rate", (int)a->rate, "reason", text + 6);
	a->pending = 0;
	if (j)
		emit(a, j, text);
}

bool alerts_held(const struct alerts *a)
{
	return a->pending != 0;
}

json_t *alerts_recent(const struct alerts *a, size_t limit)
{
	json_t *arr = json_array();
	size_t n = limit && limit < a->n ? limit : a->n;

	for (size_t i = 0; arr && i < n; i++)
		json_array_append(arr, a->ring[(a->head + ALERTS_RING - n + i) % ALERTS_RING]);
	return arr;
}

static void follower_closed(struct ctl_conn *conn, void *data)
{
	struct alerts *a = data;

	for (size_t i = 0; i < a->nfollowers; i++)
		if (a->followers[i] == conn) {
			a->followers[i] = a->followers[--a->nfollowers];
			return;
		}
}

int alerts_follow(struct alerts *a, struct ctl_conn *conn)
{
	if (a->nfollowers == MAX_FOLLOWERS)
		return -EBUSY;
	a->followers[a->nfollowers++] = conn;
	ctl_conn_stream(conn, follower_closed, a);
	return 0;
}

json_t *alerts_stats_json(const struct alerts *a)
{
	return json_pack("{s:I,s:I,s:I,s:s,s:i}", "raised", (json_int_t)a->raised, "suppressed",
			 (json_int_t)a->suppressed, "write_errors", (json_int_t)a->write_errors,
			 "file", a->path, "rate", (int)a->rate);
}
