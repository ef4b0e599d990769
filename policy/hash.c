/* The process-wide hash seed (moat/hash.h). */
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>

#include "moat/hash.h"

uint64_t moat_hash_seed(void)
{
	static _Atomic uint64_t seed;
	uint64_t s = atomic_load(&seed), r;

	if (s)
		return s;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint64_t)(uintptr_t)&seed * 0x9e3779b97f4a7c15ull;
	r |= 1;		/* never 0: 0 means "not read yet" */
	if (!atomic_compare_exchange_strong(&seed, &s, r))
		return s;	/* another thread was first: everyone uses its value */
	return r;
}
