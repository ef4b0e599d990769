/*
 * Growth of a malloc'd array: room for element n (capacity doubles from 8). The project's
 * one way to grow its arrays (the policy library's and moatd's).
 */
#ifndef MOAT_GROW_H
#define MOAT_GROW_H

#include <errno.h>
#include <stdlib.h>

/* grow - make *v (of *cap elements of size sz) hold at least n + 1. 0 or -ENOMEM (*v kept). */
static inline int grow(void **v, size_t n, size_t *cap, size_t sz)
{
	size_t ncap = *cap ? *cap * 2 : 8;
	void *nv;

	if (n < *cap)
		return 0;
	while (ncap <= n)
		ncap *= 2;
	nv = realloc(*v, ncap * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

#endif
