/* A tiny unit-test harness: CHECK records a failure with its line and goes on. */
#ifndef MOAT_TEST_CHECK_H
#define MOAT_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed, check_run;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		check_run++;                                                              \
		if (!(cond)) {                                                            \
			check_failed++;                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                         \
	} while (0)

#define CHECK_STR(a, b)                                                                   \
	do {                                                                              \
		const char *a_ = (a), *b_ = (b);                                          \
		check_run++;                                                              \
		if (!a_ || !b_ || strcmp(a_, b_)) {                                       \
			check_failed++;                                                   \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n",    \
				__FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		}                                                                         \
	} while (0)

/* Ends main: prints the count and returns the exit status. */
static inline int check_done(void)
{
	printf("%d checks, %d failed\n", check_run, check_failed);
	return check_failed ? 1 : 0;
}

#endif
