/*
 * The learned baseline at 100,000, 300,000 and 1,000,000 flows: a synthetic baseline (500
 * endpoint groups of two labels talking on a few ports, and one flow in ten from an outside
 * address of its own), then
 *   save      moat_baseline_save of it all: the time a save takes, wherever it runs;
 *   stall     (moatd's learning, daemon/learn.h, when built with its saver) the longest
 *             learn_tick (which hands changes to the saver) and the longest learn_record
 *             (which may grow the baseline's tables) while 100,000 more flows are learned at
 *             20,000 a "second", a save a second: how long moatd's loop is held;
 *   load      moat_baseline_load in a fresh process: its time and that process's peak RSS.
 * Prints the figures side by side; asserts nothing (timing on shared machines is noise).
 * Usage: baseline_bench [N...]; baseline_bench --load FILE (the child).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "moat/baseline.h"
#include "../../daemon/observe/learn.h"

#define GROUPS 500

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct groups {
	struct moat_endpoint e[GROUPS];
	struct moat_label l[GROUPS][2];
	char names[GROUPS][16];
};

static void groups_make(struct groups *g)
{
	for (int i = 0; i < GROUPS; i++) {
		snprintf(g->names[i], sizeof(g->names[i]), "svc-%d", i);
		g->l[i][0] = (struct moat_label){ "app", g->names[i] };
		g->l[i][1] = (struct moat_label){ "tier", i % 2 ? "back" : "front" };
		g->e[i] = (struct moat_endpoint){ .name = g->names[i], .namespace = "default",
						  .labels = { g->l[i], 2 } };
	}
}

/* Flow k of the synthetic baseline, as the arguments of moat_baseline_add. */
static void flow_k(const struct groups *g, size_t k, const struct moat_endpoint **from,
		   struct moat_addr *ext, const struct moat_endpoint **to, uint16_t *port)
{
	size_t pair = k / 10 * 9 + k % 10;

	*ext = (struct moat_addr){ .family = AF_INET, .a = { 100, (uint8_t)(k >> 16),
							     (uint8_t)(k >> 8), (uint8_t)k } };
	*from = k % 10 == 9 ? NULL : &g->e[pair % GROUPS];
	*to = &g->e[pair / GROUPS % GROUPS];
	*port = (uint16_t)(1 + pair / (GROUPS * GROUPS));
	if (!*from)
		*port = 443;
}

static struct moat_baseline *make(const struct groups *g, size_t n)
{
	struct moat_baseline *b = NULL;

	if (moat_baseline_new(&b))
		return NULL;
	for (size_t k = 0; k < n; k++) {
		const struct moat_endpoint *from, *to;
		struct moat_addr ext;
		uint16_t port;

		flow_k(g, k, &from, &ext, &to, &port);
		if (moat_baseline_add(b, from, &ext, to, NULL, IPPROTO_TCP, port,
				      1700000000 + (int64_t)k) != 1) {
			fprintf(stderr, "flow %zu was not new\n", k);
			exit(1);
		}
	}
	return b;
}

/* Times the load of path in a new process; its peak RSS into *rss_kb. */
static double load_child(const char *self, const char *path, long *rss_kb)
{
	struct rusage ru;
	int fds[2], status;
	double ms = -1;
	char buf[64] = "";
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execl(self, self, "--load", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (read(fds[0], buf, sizeof(buf) - 1) > 0)
		ms = atof(buf);
	close(fds[0]);
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	*rss_kb = ru.ru_maxrss;
	return ms;
}

static int load_main(const char *path)
{
	struct moat_baseline *b = NULL;
	struct moat_diags d = { 0 };
	double t0 = now_ms();
	int ret = moat_baseline_load(path, &b, &d);

	if (ret) {
		moat_diags_print(&d, stderr);
		return 1;
	}
	printf("%.1f\n", now_ms() - t0);
	fflush(stdout);
	moat_baseline_free(b);
	moat_diags_free(&d);
	return 0;
}

#ifdef LEARN_SAVES_OFF_LOOP
/*
 * moatd's side: learning into a state directory already holding n flows, 20,000 new flows a
 * second for 5 s (simulated seconds: one learn_tick a "second"), every learn_tick and
 * learn_record timed. Returns the longest call in ms, and the saves seen.
 */
static double stall(const struct groups *g, const char *dir, size_t n, double *record_ms,
		    unsigned *saves)
{
	struct learn *l = NULL;
	double worst = 0, t0;
	int64_t clock = 1800000000000LL;
	char err[256];
	json_t *st;

	*record_ms = 0;
	if (learn_new(dir, n + 200000, &l) || learn_start(l, "", 0, false, clock, err, sizeof(err)))
		return -1;
	for (size_t k = n; k < n + 100000; k++) {
		const struct moat_endpoint *from, *to;
		struct moat_addr ext;
		uint16_t port;

		flow_k(g, k, &from, &ext, &to, &port);
		t0 = now_ms();
		learn_record(l, from, &ext, to, NULL, IPPROTO_TCP, port, clock);
		*record_ms = now_ms() - t0 > *record_ms ? now_ms() - t0 : *record_ms;
		if ((k - n) % 20000 == 19999) {
			clock += 1000;
			t0 = now_ms();
			learn_tick(l, clock);
			worst = now_ms() - t0 > worst ? now_ms() - t0 : worst;
			usleep(500000);	/* the loop's other work: the saver runs meanwhile */
		}
	}
	learn_stop(l, clock);
	st = learn_status_json(l, false);
	*saves = (unsigned)json_integer_value(json_object_get(st, "saves"));
	json_decref(st);
	learn_free(l);
	return worst;
}
#endif

static void one(const char *self, const struct groups *g, size_t n)
{
	char dir[] = "/tmp/moat-baseline-bench.XXXXXX", path[64], cmd[96];
	struct moat_baseline *b;
	double t0, save_ms, load_ms, stall_ms = -1, record_ms = -1;
	unsigned saves = 0;
	long rss = 0;

	if (!mkdtemp(dir))
		return;
	snprintf(path, sizeof(path), "%s/baseline.json", dir);
	b = make(g, n);
	t0 = now_ms();
	if (!b || moat_baseline_save(b, path)) {
		fprintf(stderr, "save failed\n");
		exit(1);
	}
	save_ms = now_ms() - t0;
	moat_baseline_free(b);
	load_ms = load_child(self, path, &rss);
#ifdef LEARN_SAVES_OFF_LOOP
	stall_ms = stall(g, dir, n, &record_ms, &saves);
#endif
	printf("  %9zu  %9.0f ms  %9.1f ms (%2u saves)  %9.1f ms  %9.0f ms  %9ld MB\n", n, save_ms,
	       stall_ms, saves, record_ms, load_ms, rss / 1024);
	snprintf(cmd, sizeof(cmd), getenv("KEEP") ? "true %s" : "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 100000, 300000, 1000000 };
	static struct groups g;

	if (argc == 3 && !strcmp(argv[1], "--load"))
		return load_main(argv[2]);
	groups_make(&g);
	printf("baseline: save (all of it, wherever it runs); the longest learn_tick (the hand-over "
	       "to the saver) and learn_record while\nlearning 100,000 more flows with a save a "
	       "second; load (a new process) and its peak RSS\n");
	printf("  %9s  %12s  %23s  %12s  %12s  %12s\n", "flows", "save", "learn_tick (loop)",
	       "learn_record", "load", "load RSS");
	if (argc > 1)
		for (int i = 1; i < argc; i++)
			one(argv[0], &g, strtoul(argv[i], NULL, 10));
	else
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			one(argv[0], &g, sizes[i]);
	return 0;
}
