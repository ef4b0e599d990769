/* The CLI's side of the control socket: one request line out, one reply line back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "moat/ctl.h"

#define REPLY_MAX (256u << 20)

static const char *socket_override;

void cli_ctl_set_socket(const char *path)
{
	socket_override = path;
}

const char *cli_ctl_socket(void)
{
	const char *env = getenv(MOAT_CTL_SOCKET_ENV);

	if (socket_override)
		return socket_override;
	return env && *env ? env : MOAT_CTL_DEFAULT_SOCKET;
}

static int ctl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = cli_ctl_socket();
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until the first newline or EOF. The caller frees *out. -EMSGSIZE past REPLY_MAX
 * bytes, -ECONNRESET when moatd closed the connection before a whole line. */
static int read_line(int fd, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	while ((n = read(fd, buf + len, cap - len - 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || len + (size_t)n >= REPLY_MAX) {
			free(buf);
			return n < 0 ? -errno : -EMSGSIZE;
		}
		len += (size_t)n;
		if (memchr(buf + len - n, '\n', (size_t)n))
			break;
		if (cap - len < 2) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	if (!memchr(buf, '\n', len)) {
		free(buf);
		return -ECONNRESET;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int cli_ctl_call(json_t *request, json_t **reply)
{
	char *line = json_dumps(request, JSON_COMPACT), *answer = NULL;
	json_t *parsed;
	int fd, ret;

	if (!line)
		return -ENOMEM;
	fd = ctl_connect();
	if (fd < 0) {
		free(line);
		return fd;
	}
	ret = write_all(fd, line, strlen(line));
	if (!ret)
		ret = write_all(fd, "\n", 1);
	if (!ret)
		ret = read_line(fd, &answer);
	close(fd);
	free(line);
	if (ret)
		return ret;
	parsed = json_loads(answer, JSON_DISABLE_EOF_CHECK, NULL);
	free(answer);
	if (!json_is_object(parsed)) {
		json_decref(parsed);
		return -EPROTO;
	}
	*reply = parsed;
	return 0;
}

json_t *cli_ctl_request_hint(json_t *request, const char *hint)
{
	json_t *reply = NULL;
	int ret = request ? cli_ctl_call(request, &reply) : -ENOMEM;

	json_decref(request);
	if (ret == -EMSGSIZE || ret == -ECONNRESET || ret == -EPROTO) {
		fprintf(stderr, "moat: moatd at %s %s\n", cli_ctl_socket(),
			ret == -EMSGSIZE ? "answered more than this command reads (256 MiB)" :
			ret == -EPROTO ? "answered something that is not a reply" :
			"closed the connection before its answer was whole");
		return NULL;
	}
	if (ret) {
		fprintf(stderr, "moat: cannot reach moatd at %s: %s%s%s%s\n", cli_ctl_socket(),
			strerror(-ret), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
		return NULL;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		cli_ctl_print_error(reply);
		json_decref(reply);
		return NULL;
	}
	return reply;
}

json_t *cli_ctl_request(json_t *request)
{
	return cli_ctl_request_hint(request, NULL);
}

void cli_ctl_print_error(json_t *reply)
{
	json_t *diags = json_object_get(reply, "diags"), *d;
	const char *err = json_string_value(json_object_get(reply, "error"));
	size_t i;

	fprintf(stderr, "moat: %s\n", err ? err : "moatd refused the request");
	json_array_foreach(diags, i, d)
		if (json_is_string(d))
			fprintf(stderr, "%s\n", json_string_value(d));
}

/* Hands every complete line in buf[0..*len) to fn; keeps a partial last line. */
static int lines_feed(char *buf, size_t *len, int (*fn)(json_t *msg, void *data), void *data)
{
	char *start = buf, *nl;
	int ret = 0;

	while (!ret && (nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
		json_t *msg = json_loadb(start, (size_t)(nl - start), 0, NULL);

		ret = json_is_object(msg) ? fn(msg, data) : -EPROTO;
		json_decref(msg);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
	return ret;
}

int cli_ctl_stream(json_t *request, int (*fn)(json_t *msg, void *data), void *data)
{
	char *line = json_dumps(request, JSON_COMPACT), *buf = malloc(REPLY_MAX);
	size_t len = 0;
	ssize_t n;
	int fd = -1, ret = line && buf ? 0 : -ENOMEM;

	if (!ret && (fd = ctl_connect()) < 0)
		ret = fd;
	if (!ret)
		ret = write_all(fd, line, strlen(line));
	if (!ret)
		ret = write_all(fd, "\n", 1);
	while (!ret && (n = read(fd, buf + len, REPLY_MAX - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		else if ((len += (size_t)n) == REPLY_MAX)
			ret = -EMSGSIZE;
		else
			ret = lines_feed(buf, &len, fn, data);
	}
	if (fd >= 0)
		close(fd);
	free(line);
	free(buf);
	return ret;
}
