/* Shared by the libFuzzer harnesses: an invariant check that stops the run with a crash. */
#ifndef MOAT_FUZZ_H
#define MOAT_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant is a finding: print where, then abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                   \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* fuzz_copy - the input in a buffer of its exact size, so that ASan sees any read past it
 * (libFuzzer's own buffer may be larger). NULL when out of memory; the caller frees it. */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (copy && size)
		memcpy(copy, data, size);
	return copy;
}

#endif
