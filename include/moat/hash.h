/*
 * The one hash of the project: FNV-1a steps, an avalanche to finish, and a process-wide
 * random seed for tables keyed by what others choose (labels, names, addresses), so that
 * whoever starts containers cannot make every key of a table collide.
 */
#ifndef MOAT_HASH_H
#define MOAT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MOAT_HASH_BASIS 0xcbf29ce484222325ull

/* moat_hash_seed - a random 64-bit value, the same for the whole process (read once). */
uint64_t moat_hash_seed(void);

/* moat_hash_bytes - h after n more bytes at p (FNV-1a). Start from MOAT_HASH_BASIS, or from
 * MOAT_HASH_BASIS ^ moat_hash_seed() for a table of keys chosen by others. */
static inline uint64_t moat_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

/* moat_hash_str - h after s and its terminating NUL (so "ab","c" and "a","bc" differ). */
static inline uint64_t moat_hash_str(uint64_t h, const char *s)
{
	return moat_hash_bytes(h, s, strlen(s) + 1);
}

/* moat_hash_fin - mixes every bit of h into the low ones (tables mask them); never 0, which
 * tables may use to mark an empty slot. */
static inline uint64_t moat_hash_fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

#endif
