/*
 * A stable radix sort of n records of size bytes on nd (<= 32) key bytes, the least
 * significant first: digits(r, out) gives all of record r's, digit(r, d) one. Passes over a
 * byte every record shares are skipped (ids and addresses have many). For the big arrays (set
 * elements, endpoint addresses) it is several times faster than qsort's indirect compares.
 * Always inlined, so that each caller's functions and record size are constants.
 */
#ifndef MOAT_POLICY_RADIX_H
#define MOAT_POLICY_RADIX_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Counts per byte value -> where the first record with that value goes. */
static inline void radix_offsets(size_t *pos)
{
	for (size_t b = 0, sum = 0; b < 256; b++) {
		size_t k = pos[b];

		pos[b] = sum;
		sum += k;
	}
}

/* 0 or -ENOMEM (v unchanged). */
static inline __attribute__((always_inline)) int
radix_sort(void *v, size_t n, size_t size, int nd, void (*digits)(const void *, uint8_t *),
	   unsigned (*digit)(const void *, int))
{
	size_t (*cnt)[256];
	unsigned char *tmp, *from = v, *to, *t;
	uint8_t b[32];

	if (n < 2)
		return 0;
	cnt = calloc(nd, sizeof(*cnt));
	to = tmp = malloc(n * size);
	if (!cnt || !tmp) {
		free(cnt), free(tmp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		digits(from + i * size, b);
		for (int d = 0; d < nd; d++)
			cnt[d][b[d]]++;
	}
	for (int d = 0; d < nd; d++) {
		if (cnt[d][digit(v, d)] == n)
			continue;	/* one value: the pass would change nothing */
		radix_offsets(cnt[d]);
		for (size_t i = 0; i < n; i++)
			memcpy(to + cnt[d][digit(from + i * size, d)]++ * size, from + i * size, size);
		t = from, from = to, to = t;
	}
	if (from != v)
		memcpy(v, from, n * size);
	free(cnt), free(tmp);
	return 0;
}

#endif
