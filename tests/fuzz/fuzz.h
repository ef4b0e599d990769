/* Shared by the libFuzzer harnesses: an invariant check that stops the run with a crash. */
#ifndef MOAT_FUZZ_H
#define MOAT_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

/* A broken invariant is a finding: print where, then abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                   \
			abort();                                                          \
		}                                                                         \
	} while (0)

#endif
