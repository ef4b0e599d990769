/*
 * The baseline's saver: a thread that keeps a replica of the learned baseline and writes it
 * to its file (include/moat/baseline.h: deltas and replicas), so that a save, which takes
 * seconds at a million flows, never holds moatd's event loop. The loop hands over what
 * changed (a delta, taken in time proportional to the change) and goes on; the saver
 * applies the deltas in order and writes the file atomically (moat_baseline_save's
 * temporary file, fsync and rename: a kill -9 at any moment leaves the old file or the new
 * one). Submissions queue; several pending ones are applied and written once.
 */
#ifndef MOAT_DAEMON_BASELINE_SAVER_H
#define MOAT_DAEMON_BASELINE_SAVER_H

#include <stdbool.h>
#include <stdint.h>

#include "moat/baseline.h"

struct baseline_saver;

/* What the saver has done, for status and logs. */
struct baseline_saver_report {
	uint64_t saves, errors;		/* files written, and attempts that failed */
	int last_error;			/* -errno of the last failed attempt, 0 after a success */
	int64_t saved_ms;		/* unix ms of the last file written, 0 for none yet */
	uint64_t last_ms;		/* how long the last write took */
	uint64_t flows;			/* flows in the last file written */
	bool busy;			/* work is queued or under way */
	bool out_of_step;		/* a delta could not be applied (ENOMEM): nothing is
					 * written until a SAVER_RESET with all of the baseline */
};

/* baseline_saver_new - a saver for path; its thread runs from now. 0 and *out, or -errno. */
int baseline_saver_new(const char *path, struct baseline_saver **out);

/* What to do with a submitted delta. */
enum {
	SAVER_RESET = 1,	/* the delta starts a new baseline: forget the replica first */
	SAVER_NO_WRITE = 2,	/* apply only (the file holds it already: a loaded baseline) */
};

/*
 * baseline_saver_submit - queue delta (taken over; NULL-safe: then only a write, e.g. to
 * retry) to be applied to the replica and written, after what is queued already. Never
 * blocks on a write. 0 or -ENOMEM (delta freed).
 */
int baseline_saver_submit(struct baseline_saver *s, struct moat_baseline_delta *delta,
			  unsigned flags);

/* baseline_saver_report_get - the figures, now. */
void baseline_saver_report_get(struct baseline_saver *s, struct baseline_saver_report *out);

/* baseline_saver_wait - block until nothing is queued or under way. */
void baseline_saver_wait(struct baseline_saver *s);

/* baseline_saver_free - NULL-safe: finishes what is queued, then stops the thread. */
void baseline_saver_free(struct baseline_saver *s);

#endif
