/* The state directory's lock (lock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"

/* What the holder wrote, one line, for the message; "" when it cannot be read. */
static void holder_read(int fd, char *b, size_t len)
{
	ssize_t n = pread(fd, b, len - 1, 0);

	b[n > 0 ? n : 0] = '\0';
	b[strcspn(b, "\n")] = '\0';
}

static int holder_write(int fd, const char *socket)
{
	char b[4200];
	int n = snprintf(b, sizeof(b), "pid %d socket %s\n", (int)getpid(), socket);

	if (n < 0 || (size_t)n >= sizeof(b))
		n = (int)sizeof(b) - 1;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, b, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

int lock_take(const char *state_dir, const char *socket, char *why, size_t whylen)
{
	char path[4096], holder[512];
	int fd, ret;

	if (mkdir(state_dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(why, whylen, "state directory %s: %s", state_dir, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/%s", state_dir, LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		holder_read(fd, holder, sizeof(holder));
		if (ret == -EBUSY)
			snprintf(why, whylen, "another moatd is running (%s; it holds %s)",
				 *holder ? holder : "pid unknown", path);
		else
			snprintf(why, whylen, "locking %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	ret = holder_write(fd, socket);
	if (ret < 0) {
		snprintf(why, whylen, "writing %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}
