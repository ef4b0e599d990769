/* Durations from text ("5m", "1h30m") for --since, --duration and the like. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "moat/duration.h"

#define MAX_MS (10ull * 366 * 24 * 3600 * 1000)

static const struct {
	const char *suffix;
	uint64_t ms;
} units[] = {	/* "ms" before "m", so the longest suffix wins */
	{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 }, { "d", 86400 * 1000 },
};

/* The unit at *p: advances past it and returns its size, or 0. */
static uint64_t unit_eat(const char **p)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t len = strlen(units[i].suffix);

		if (!strncmp(*p, units[i].suffix, len)) {
			*p += len;
			return units[i].ms;
		}
	}
	return 0;
}

int moat_duration_parse(const char *text, uint64_t *ms)
{
	const char *p = text;
	uint64_t total = 0;
	bool first = true;

	if (!*p)
		return -EINVAL;
	while (*p) {
		char *end;
		unsigned long long n;
		uint64_t unit;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		n = strtoull(p, &end, 10);
		if (errno)
			return -EINVAL;
		p = end;
		unit = unit_eat(&p);
		if (!unit && !(first && !*p))	/* only a lone number may go without a unit */
			return -EINVAL;
		unit = unit ? unit : 1000;
		if (n > MAX_MS / unit)
			return -EINVAL;
		total += n * unit;
		if (total > MAX_MS)
			return -EINVAL;
		first = false;
	}
	*ms = total;
	return 0;
}
