/*
 * A small event loop: epoll for file descriptors, timerfd for timers, signalfd for signals.
 * Signal handlers never run arbitrary code: signals arrive as events like any fd.
 * Single-threaded: callbacks run on the thread that calls loop_run.
 */
#ifndef MOAT_LOOP_H
#define MOAT_LOOP_H

#include <stdint.h>

struct loop;

/* Called with the fd's epoll events (EPOLLIN, ...). */
typedef void (*loop_fd_fn)(struct loop *loop, int fd, uint32_t events, void *data);
typedef void (*loop_timer_fn)(struct loop *loop, void *data);
typedef void (*loop_signal_fn)(struct loop *loop, int signo, void *data);

/* loop_new - 0 and *out, or -errno. Free with loop_free. */
int loop_new(struct loop **out);

/* loop_free - NULL-safe; closes timer and signal fds it made, not fds added with loop_fd_add. */
void loop_free(struct loop *loop);

/* loop_fd_add - watch fd for events (EPOLLIN...). The caller keeps owning fd. 0 or -errno. */
int loop_fd_add(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *data);

/* loop_fd_del - stop watching fd; safe to call from its own callback. */
void loop_fd_del(struct loop *loop, int fd);

/*
 * loop_timer_add - call fn after ms milliseconds, then every ms if periodic. Returns a timer
 * id (> 0) for loop_timer_del, or -errno.
 */
int loop_timer_add(struct loop *loop, unsigned ms, int periodic, loop_timer_fn fn, void *data);

/* loop_timer_del - cancel a timer by id; safe from its own callback. */
void loop_timer_del(struct loop *loop, int id);

/* loop_signal_add - block signo and deliver it as an event. 0 or -errno. */
int loop_signal_add(struct loop *loop, int signo, loop_signal_fn fn, void *data);

/* loop_run - dispatch until loop_stop; returns 0, or -errno if epoll fails. May be run
 * again after it returned. */
int loop_run(struct loop *loop);

/* loop_wakeups - how often loop_run has woken (epoll_wait returned): an idle daemon should
 * not wake at all, and tests can say so. */
uint64_t loop_wakeups(const struct loop *loop);

/* loop_stop - make loop_run return after the current callback. */
void loop_stop(struct loop *loop);

/* loop_now_ms - a monotonic clock in milliseconds. */
uint64_t loop_now_ms(void);

/* loop_now_us - the same clock in microseconds. */
uint64_t loop_now_us(void);

#endif
