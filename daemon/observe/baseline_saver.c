/* The baseline's saver thread (daemon/baseline_saver.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baseline_saver.h"

struct job {
	struct moat_baseline_delta *delta;
	unsigned flags;
	struct job *next;
};

struct baseline_saver {
	char *path;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct job *head, **tail;	/* queued, oldest first */
	bool working, stop;
	bool lost;			/* the thread's: the replica lost a delta (until a reset) */
	struct baseline_saver_report rep;
	struct moat_baseline_replica *replica;	/* the thread's alone */
};

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Applies the jobs (the thread's now); whether the file should be written. */
static bool jobs_apply(struct baseline_saver *s, struct job *j, int *ret)
{
	bool write = false;

	while (j) {
		struct job *next = j->next;

		if (j->flags & SAVER_RESET) {
			moat_baseline_replica_reset(s->replica);
			s->lost = false;
		}
		if (j->delta && !s->lost && (*ret = moat_baseline_replica_apply(s->replica,
										 j->delta)))
			s->lost = true;		/* out of step: nothing to write until reset */
		write |= !(j->flags & SAVER_NO_WRITE);
		moat_baseline_delta_free(j->delta);
		free(j);
		j = next;
	}
	return write;
}

static void *saver_main(void *arg)
{
	struct baseline_saver *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct job *jobs;
		int64_t t0;
		int ret = 0;
		bool write;

		while (!s->head && !s->stop)
			pthread_cond_wait(&s->work, &s->lock);
		if (!s->head)
			break;
		jobs = s->head;
		s->head = NULL, s->tail = &s->head, s->working = true;
		pthread_mutex_unlock(&s->lock);

		t0 = clock_ms(CLOCK_MONOTONIC);
		write = jobs_apply(s, jobs, &ret);
		if (write && !s->lost)
			ret = moat_baseline_replica_save(s->replica, s->path);

		pthread_mutex_lock(&s->lock);
		s->working = false;
		s->rep.out_of_step = s->lost;
		if (write && !ret && !s->lost) {
			s->rep.saves++;
			s->rep.saved_ms = clock_ms(CLOCK_REALTIME);
			s->rep.flows = moat_baseline_replica_count(s->replica);
		}
		if (ret || (write && s->lost))
			s->rep.errors++, s->rep.last_error = ret ? ret : -EIO;
		else if (write)
			s->rep.last_error = 0;
		s->rep.last_ms = (uint64_t)(clock_ms(CLOCK_MONOTONIC) - t0);
		if (!s->head)
			pthread_cond_broadcast(&s->idle);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The thread takes no signal: they are the loop's (signalfd), and a signal the thread did
 * not block would kill the process with its default action. */
static int thread_start(struct baseline_saver *s)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&s->thread, NULL, saver_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int baseline_saver_new(const char *path, struct baseline_saver **out)
{
	struct baseline_saver *s = calloc(1, sizeof(*s));
	int ret = s ? moat_baseline_replica_new(&s->replica) : -ENOMEM;

	if (!ret && !(s->path = strdup(path)))
		ret = -ENOMEM;
	if (ret) {
		if (s)
			moat_baseline_replica_free(s->replica);
		free(s);
		return ret;
	}
	s->tail = &s->head;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->idle, NULL);
	ret = thread_start(s);
	if (ret) {
		moat_baseline_replica_free(s->replica);
		free(s->path);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int baseline_saver_submit(struct baseline_saver *s, struct moat_baseline_delta *delta,
			  unsigned flags)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		moat_baseline_delta_free(delta);
		return -ENOMEM;
	}
	*j = (struct job){ delta, flags, NULL };
	pthread_mutex_lock(&s->lock);
	*s->tail = j;
	s->tail = &j->next;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void baseline_saver_report_get(struct baseline_saver *s, struct baseline_saver_report *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->rep;
	out->busy = s->working || s->head;
	pthread_mutex_unlock(&s->lock);
}

void baseline_saver_wait(struct baseline_saver *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->working || s->head)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void baseline_saver_free(struct baseline_saver *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	moat_baseline_replica_free(s->replica);
	free(s->path);
	free(s);
}
