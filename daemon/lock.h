/*
 * One moatd per state directory: an exclusive flock on <state-dir>/moatd.lock, held for
 * moatd's life, with the holder's pid and control socket written in it. A second moatd finds
 * the lock taken, reads who holds it and refuses to start, before it touches the control
 * socket or the ruleset (two daemons would take the socket from each other and fight over
 * the tables). The kernel drops the lock when the holder dies, kill -9 included: a stale
 * file never keeps a new moatd out.
 */
#ifndef MOAT_LOCK_H
#define MOAT_LOCK_H

#include <stddef.h>

#define LOCK_FILE "moatd.lock"

/*
 * lock_take - create state_dir (one level, mode 0755) when missing, open and lock its
 * LOCK_FILE without waiting, and write "pid PID socket SOCKET" in it. Returns the open
 * descriptor (keep it open: closing it releases the lock), or -errno with why (NUL-terminated,
 * at most whylen) saying what is wrong for people: -EBUSY when another process holds the lock
 * (why names its pid and socket as it wrote them), another -errno when the directory or file
 * cannot be made or locked.
 */
int lock_take(const char *state_dir, const char *socket, char *why, size_t whylen);

#endif
