/*
 * Learning's baseline (daemon/learn.c): bounded by its cap (new flows past it counted, not
 * stored; known ones still widened); saved off the loop (learn_tick hands over and returns,
 * the file follows, and reads back the same) by a thread that takes none of moatd's
 * signals; and never torn: a learner killed with SIGKILL
 * at random moments, again and again, always leaves a baseline.json that loads, holding at
 * least what an earlier one held. Its tick is due only while it has work (learn_tick_due):
 * a save to hand over or to look at, a timed session's end; never when idle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/observe/learn.h"
#include "../../daemon/log.h"
#include "check.h"
#include "moat/baseline.h"

static const int64_t T0 = 1800000000000LL;

static struct moat_label app = { "app", "web" };
static struct moat_endpoint web = { .name = "web-1", .namespace = "shop",
				    .labels = { &app, 1 } };

/* Flow k: an outside address of its own to web, TCP port 1 + k % 1000. */
static int record(struct learn *l, unsigned k, int64_t when)
{
	struct moat_addr ext = { .family = AF_INET, .a = { 100, (uint8_t)(k >> 16),
							   (uint8_t)(k >> 8), (uint8_t)k } };

	return learn_record(l, NULL, &ext, &web, NULL, IPPROTO_TCP, (uint16_t)(1 + k % 1000), when);
}

static json_int_t figure(struct learn *l, const char *key)
{
	json_t *j = learn_status_json(l, false);
	json_int_t v = json_integer_value(json_object_get(j, key));

	json_decref(j);
	return v;
}

static bool flag(struct learn *l, const char *key)
{
	json_t *j = learn_status_json(l, false);
	bool v = json_is_true(json_object_get(j, key));

	json_decref(j);
	return v;
}

static void test_cap(const char *dir)
{
	struct learn *l = NULL;
	char err[256];

	CHECK(learn_new(dir, 3, &l) == 0);
	CHECK(l && learn_start(l, "", 0, true, T0, err, sizeof(err)) == 0);
	for (unsigned k = 0; l && k < 5; k++)
		CHECK(record(l, k, T0) == (k < 3));
	CHECK(l && figure(l, "flows") == 3 && figure(l, "cap") == 3);
	CHECK(l && figure(l, "not_learned") == 2 && flag(l, "full"));
	/* a known flow is still seen (widened), not counted as lost */
	CHECK(l && record(l, 1, T0 + 1000) == 0 && figure(l, "not_learned") == 2);
	CHECK(l && figure(l, "records") == 4);
	learn_free(l);
}

/* learn_tick hands over and returns; the saver writes; the file reads back as learned. */
static void test_saved(const char *dir)
{
	struct learn *l = NULL;
	struct moat_baseline *back = NULL;
	struct moat_diags d = { 0 };
	char path[256], err[256];

	snprintf(path, sizeof(path), "%s/baseline.json", dir);
	CHECK(learn_new(dir, 1000000, &l) == 0);
	CHECK(l && learn_start(l, "", 0, true, T0, err, sizeof(err)) == 0);
	for (unsigned k = 0; l && k < 50000; k++)
		record(l, k, T0);
	learn_tick(l, T0 + 1000);
	CHECK(figure(l, "flows") == 50000);
	learn_free(l);		/* waits for the saver */
	CHECK(moat_baseline_load(path, &back, &d) == 0 && moat_baseline_count(back) == 50000);
	moat_baseline_free(back);
	moat_diags_free(&d);
	/* and learning goes on from it */
	CHECK(learn_new(dir, 1000000, &l) == 0);
	CHECK(l && figure(l, "flows") == 50000 && flag(l, "learning"));
	CHECK(l && record(l, 50000, T0 + 2000) == 1);
	learn_free(l);
}

/* Ticks at the times learn_tick_due asks for, from now until it asks for none (or limit);
 * the last time it ticked. */
static int64_t ticks_due(struct learn *l, int64_t now, int64_t limit)
{
	for (int64_t due; (due = learn_tick_due(l, now)) >= 0 && now < limit;) {
		now += due ? due : 1;
		usleep(20000);		/* the saver writes meanwhile */
		learn_tick(l, now);
	}
	return now;
}

static void test_due(const char *dir)
{
	struct learn *l = NULL;
	char err[256];
	int64_t t;

	CHECK(learn_new(dir, 100, &l) == 0);
	if (!l)
		return;
	t = ticks_due(l, T0, T0 + 60000);
	CHECK(t < T0 + 60000 && learn_tick_due(l, t) == -1);	/* idle: no tick at all */
	/* a timed session with nothing to learn still ends on time */
	CHECK(learn_start(l, "", 5000, true, t, err, sizeof(err)) == 0);
	CHECK(learn_tick_due(l, t) >= 0 && learn_tick_due(l, t) <= 5000);
	t = ticks_due(l, t, t + 60000);
	CHECK(!learn_active(l) && flag(l, "learning") == false);
	CHECK(learn_tick_due(l, t) == -1);
	/* a flow learned is handed over within a second, and then nothing is due */
	CHECK(learn_start(l, "", 0, false, t, err, sizeof(err)) == 0);
	t = ticks_due(l, t, t + 60000);
	CHECK(learn_tick_due(l, t) == -1 && learn_active(l));	/* learning, nothing new */
	CHECK(record(l, 7, t) == 1);
	CHECK(learn_tick_due(l, t) >= 0 && learn_tick_due(l, t) <= 1000);
	t = ticks_due(l, t, t + 60000);
	CHECK(learn_tick_due(l, t) == -1 && figure(l, "saves") >= 1);
	learn_free(l);
}

/* The child: learns without end, a tick per 20,000 flows, until killed. */
static void learner(const char *dir, unsigned start)
{
	struct learn *l = NULL;
	int64_t when = T0;

	if (learn_new(dir, 10000000, &l))
		_exit(2);
	for (unsigned k = start;; k++) {
		record(l, k, when);
		if (k % 20000 == 0)
			learn_tick(l, when += 1000);
	}
}

static void test_kill(const char *dir)
{
	char path[256];
	size_t seen = 0, saves = 0;
	struct timespec pause;

	snprintf(path, sizeof(path), "%s/baseline.json", dir);
	srand((unsigned)time(NULL));
	for (int round = 0; round < 8; round++) {
		struct moat_baseline *b = NULL;
		struct moat_diags d = { 0 };
		pid_t pid = fork();
		int ret, status;

		if (pid == 0)
			learner(dir, (unsigned)round * 1000000u);
		/* the first kill waits for a save (however loaded the machine), the others fall
		 * anywhere, in a save or between two */
		for (int w = 0; !round && w < 1000 && access(path, F_OK); w++)
			nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
		pause = (struct timespec){ 0, (150 + rand() % 450) * 1000000L };
		nanosleep(&pause, NULL);
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
		ret = moat_baseline_load(path, &b, &d);
		CHECK(ret == 0 || (ret == -ENOENT && !seen));
		if (ret && ret != -ENOENT)
			moat_diags_print(&d, stderr);
		CHECK(!b || moat_baseline_count(b) >= seen);
		if (b && moat_baseline_count(b) > seen)
			saves++;
		seen = b ? moat_baseline_count(b) : seen;
		moat_baseline_free(b);
		moat_diags_free(&d);
	}
	printf("killed 8 times: %zu flows saved, growing %zu times\n", seen, saves);
	CHECK(seen > 0);
}

/*
 * moatd blocks its signals and reads them from a signalfd: a thread of learn's that did not
 * block them would take a SIGTERM with the default action and kill moatd mid-way (its
 * ruleset and baseline unsaved). With the thread running, a SIGTERM stays pending for the
 * loop's thread.
 */
static void test_signals(const char *dir)
{
	struct learn *l = NULL;
	sigset_t term, old;
	siginfo_t si;

	/* as moatd: its threads first, then the loop blocks the signals it reads */
	CHECK(learn_new(dir, 10, &l) == 0);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	kill(getpid(), SIGTERM);
	CHECK(sigtimedwait(&term, &si, &(struct timespec){ 1, 0 }) == SIGTERM);
	learn_free(l);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
	char dir[] = "/tmp/moat-learn-unit.XXXXXX", sub[64], cmd[96];
	struct learn *l = NULL;
	char err[256];

	log_setup("error", "text");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/signals", dir);
	test_signals(sub);
	snprintf(sub, sizeof(sub), "%s/cap", dir);
	test_cap(sub);
	snprintf(sub, sizeof(sub), "%s/saved", dir);
	test_saved(sub);
	snprintf(sub, sizeof(sub), "%s/due", dir);
	test_due(sub);
	snprintf(sub, sizeof(sub), "%s/kill", dir);
	CHECK(learn_new(sub, 10, &l) == 0);
	CHECK(l && learn_start(l, "", 0, true, T0, err, sizeof(err)) == 0);
	learn_free(l);		/* a session to go on with, in learn.json */
	test_kill(sub);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return check_done();
}
