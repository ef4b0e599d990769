/*
 * Arrays of ids and indexes: growth and sorting (plan_priv.h). Short arrays (an endpoint's
 * atoms, an identity's keys) are sorted by insertion: cheaper than qsort's indirect compares
 * at these sizes.
 */
#include <errno.h>
#include <stdlib.h>

#include "moat/grow.h"
#include "plan_priv.h"

#define SORT_SHORT 64

int u32vec_push(struct u32vec *a, uint32_t x)
{
	if (grow((void **)&a->v, a->n, &a->cap, sizeof(*a->v)))
		return -ENOMEM;
	a->v[a->n++] = x;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void u32_sort(uint32_t *v, size_t n)
{
	if (n > SORT_SHORT) {
		qsort(v, n, sizeof(*v), cmp_u32);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint32_t x = v[i];
		size_t j = i;

		for (; j && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

void u64_sort(uint64_t *v, size_t n)
{
	if (n > SORT_SHORT) {
		qsort(v, n, sizeof(*v), cmp_u64);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;

		for (; j && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

size_t u32_sort_uniq(uint32_t *v, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	u32_sort(v, n);
	for (size_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}
