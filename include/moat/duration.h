/* Durations as people type them: "90s", "5m", "1h30m", "2d", "250ms"; a bare number is seconds. */
#ifndef MOAT_DURATION_H
#define MOAT_DURATION_H

#include <stdint.h>

/*
 * moat_duration_parse - text into milliseconds in *ms. Units: ms, s, m, h, d; terms add up
 * ("1h30m"). Returns 0, or -EINVAL for anything else (empty, negative, unknown unit, a number
 * without a unit after the first term, more than 10 years); *ms is untouched then.
 */
int moat_duration_parse(const char *text, uint64_t *ms);

#endif
