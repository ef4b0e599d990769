/* Log lines for people (systemd style "<N>level: msg") or for machines (JSON lines). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "moat/errors.h"

static const char *const level_names[] = { "debug", "info", "warn", "error" };
/* sd-daemon(3) priority prefixes, so journald files each line at its level. */
static const char *const level_prefix[] = { "<7>", "<6>", "<4>", "<3>" };

static struct {
	enum log_level min;
	int json;
} log_cfg = { LOG_LEVEL_INFO, 0 };

int log_setup(const char *level, const char *format)
{
	int found = -1;

	for (int i = 0; i < 4; i++)
		if (level && !strcmp(level, level_names[i]))
			found = i;
	if (level && found < 0)
		return -EINVAL;
	if (format && strcmp(format, "text") && strcmp(format, "json"))
		return -EINVAL;
	if (found >= 0)
		log_cfg.min = (enum log_level)found;
	if (format)
		log_cfg.json = !strcmp(format, "json");
	return 0;
}

static void log_json(enum log_level level, const char *msg)
{
	struct timespec ts;
	char stamp[32];
	struct tm tm;
	json_t *o;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* gmtime_r: the Docker watcher thread logs too, and gmtime shares one buffer. */
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime_r(&ts.tv_sec, &tm));
	o = json_pack("{s:s+,s:s,s:s}", "time", stamp, "Z", "level", level_names[level], "msg", msg);
	if (o)
		json_dumpf(o, stderr, JSON_COMPACT);
	fputc('\n', stderr);
	json_decref(o);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level < log_cfg.min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_cfg.json)
		log_json(level, msg);
	else
		fprintf(stderr, "%smoatd: %s: %s\n", getenv("JOURNAL_STREAM") ? level_prefix[level] : "",
			level_names[level], msg);
}

void log_diags(const struct moat_diags *d)
{
	char line[4096];

	for (size_t i = 0; i < d->n; i++)
		log_error("%s", moat_diag_format(&d->v[i], line, sizeof(line)));
}
