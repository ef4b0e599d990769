/* The event loop: epoll + timerfd + signalfd, as in keepalived, redis ae.c and sd-event. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

enum source_kind { SRC_FD, SRC_TIMER, SRC_SIGNAL };

struct source {
	enum source_kind kind;
	int fd;
	int id;			/* timers: the id handed out */
	union {
		loop_fd_fn fd_fn;
		loop_timer_fn timer_fn;
	};
	void *data;
	struct source *next;
	int dead;		/* removed inside a dispatch round; freed after it */
};

struct signal_handler {
	int signo;
	loop_signal_fn fn;
	void *data;
};

struct loop {
	int epfd;
	int sigfd;
	sigset_t sigmask;
	struct signal_handler signals[16];
	int nsignals;
	struct source *sources;
	int next_timer_id;
	int stop;
	uint64_t wakeups;
};

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int ret = -errno;

		free(loop);
		return ret;
	}
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	*out = loop;
	return 0;
}

static void source_free(struct source *s)
{
	if (s->kind == SRC_TIMER)
		close(s->fd);
	free(s);
}

void loop_free(struct loop *loop)
{
	struct source *s, *next;

	if (!loop)
		return;
	for (s = loop->sources; s; s = next) {
		next = s->next;
		source_free(s);
	}
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop);
}

static struct source *source_add(struct loop *loop, enum source_kind kind, int fd, void *data)
{
	struct source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!s)
		return NULL;
	s->kind = kind;
	s->fd = fd;
	s->data = data;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(s);
		return NULL;
	}
	s->next = loop->sources;
	loop->sources = s;
	return s;
}

int loop_fd_add(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *data)
{
	struct source *s = source_add(loop, SRC_FD, fd, data);
	struct epoll_event ev = { .events = events };

	if (!s)
		return errno ? -errno : -ENOMEM;
	s->fd_fn = fn;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* Marks the source dead; the dispatcher frees dead sources between rounds. */
static void source_kill(struct loop *loop, struct source *s)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->dead = 1;
}

void loop_fd_del(struct loop *loop, int fd)
{
	for (struct source *s = loop->sources; s; s = s->next)
		if (s->kind == SRC_FD && s->fd == fd && !s->dead)
			source_kill(loop, s);
}

int loop_timer_add(struct loop *loop, unsigned ms, int periodic, loop_timer_fn fn, void *data)
{
	struct itimerspec its = { 0 };
	struct source *s;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (fd < 0)
		return -errno;
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L + (ms ? 0 : 1);
	if (periodic)
		its.it_interval = its.it_value;
	if (timerfd_settime(fd, 0, &its, NULL) < 0 || !(s = source_add(loop, SRC_TIMER, fd, data))) {
		close(fd);
		return -ENOMEM;
	}
	s->timer_fn = fn;
	s->id = ++loop->next_timer_id;
	return s->id;
}

void loop_timer_del(struct loop *loop, int id)
{
	for (struct source *s = loop->sources; s; s = s->next)
		if (s->kind == SRC_TIMER && s->id == id && !s->dead)
			source_kill(loop, s);
}

int loop_signal_add(struct loop *loop, int signo, loop_signal_fn fn, void *data)
{
	int fd;

	if (loop->nsignals == (int)(sizeof(loop->signals) / sizeof(loop->signals[0])))
		return -ENOSPC;
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
		return -errno;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (loop->sigfd < 0 && !source_add(loop, SRC_SIGNAL, fd, NULL)) {
		close(fd);
		return -ENOMEM;
	}
	loop->sigfd = fd;
	loop->signals[loop->nsignals++] = (struct signal_handler){ signo, fn, data };
	return 0;
}

static void dispatch_signals(struct loop *loop)
{
	struct signalfd_siginfo si;

	while (read(loop->sigfd, &si, sizeof(si)) == sizeof(si))
		for (int i = 0; i < loop->nsignals; i++)
			if (loop->signals[i].signo == (int)si.ssi_signo)
				loop->signals[i].fn(loop, (int)si.ssi_signo, loop->signals[i].data);
}

static void dispatch(struct loop *loop, struct source *s, uint32_t events)
{
	uint64_t ticks;

	if (s->dead)
		return;
	switch (s->kind) {
	case SRC_FD:
		s->fd_fn(loop, s->fd, events, s->data);
		break;
	case SRC_TIMER:
		if (read(s->fd, &ticks, sizeof(ticks)) == sizeof(ticks))
			s->timer_fn(loop, s->data);
		break;
	case SRC_SIGNAL:
		dispatch_signals(loop);
		break;
	}
}

static void reap(struct loop *loop)
{
	struct source **pp = &loop->sources;

	while (*pp) {
		struct source *s = *pp;

		if (s->dead) {
			*pp = s->next;
			source_free(s);
		} else {
			pp = &s->next;
		}
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event evs[32];

	loop->stop = 0;
	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, evs, 32, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		loop->wakeups++;
		for (int i = 0; i < n && !loop->stop; i++)
			dispatch(loop, evs[i].data.ptr, evs[i].events);
		reap(loop);
	}
	return 0;
}

uint64_t loop_wakeups(const struct loop *loop)
{
	return loop->wakeups;
}

void loop_stop(struct loop *loop)
{
	loop->stop = 1;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
