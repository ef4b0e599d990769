/*
 * Latency figures: a fixed-bucket histogram (what Prometheus scrapes) plus the last
 * LATENCY_RECENT samples, from which quantiles are exact rather than bucket estimates.
 * No allocation: embed it in the owner's struct, zero-initialised.
 */
#ifndef MOAT_LATENCY_H
#define MOAT_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#define LATENCY_BUCKETS 14
#define LATENCY_RECENT 4096

/* Upper bounds (microseconds, inclusive) of the buckets; the last bucket is +Inf. */
extern const uint64_t latency_bounds_us[LATENCY_BUCKETS - 1];

struct latency {
	uint64_t count, sum_us, max_us;
	uint64_t bucket[LATENCY_BUCKETS];	/* not cumulative */
	uint32_t recent[LATENCY_RECENT];	/* microseconds, a ring */
	size_t next;
};

/* latency_add - record one sample. */
void latency_add(struct latency *l, uint64_t us);

/* latency_quantile - q in [0, 1] over the recent samples; 0 when there are none. */
uint64_t latency_quantile(const struct latency *l, double q);

#endif
