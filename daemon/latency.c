/* Latency histogram and recent samples (see latency.h). */
#include <stdlib.h>
#include <string.h>

#include "latency.h"

const uint64_t latency_bounds_us[LATENCY_BUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 20000, 50000, 100000, 250000, 1000000, 5000000,
};

void latency_add(struct latency *l, uint64_t us)
{
	size_t b = 0;

	while (b < LATENCY_BUCKETS - 1 && us > latency_bounds_us[b])
		b++;
	l->bucket[b]++;
	l->count++;
	l->sum_us += us;
	if (us > l->max_us)
		l->max_us = us;
	l->recent[l->next++ % LATENCY_RECENT] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts a copy: for status requests, not per event. */
uint64_t latency_quantile(const struct latency *l, double q)
{
	size_t n = l->count < LATENCY_RECENT ? l->count : LATENCY_RECENT;
	uint32_t *v;
	uint64_t r;

	if (!n || !(v = malloc(n * sizeof(*v))))
		return 0;
	memcpy(v, l->recent, n * sizeof(*v));
	qsort(v, n, sizeof(*v), u32_cmp);
	r = v[(size_t)(q * (double)(n - 1) + 0.5)];
	free(v);
	return r;
}
