/* ctl_request_parse (daemon/ctl.h): the control socket's framing and size limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/ctl.h"
#include "check.h"
#include "moat/ctl.h"

static int parse(const char *s, size_t len, json_t **req, char *err)
{
	*req = NULL;
	return ctl_request_parse(s, len, req, err, 256);
}

int main(void)
{
	size_t big = MOAT_CTL_MAX_REQUEST + 2;
	char err[256] = "", *buf = malloc(big);
	json_t *req;

	CHECK(parse("{\"cmd\":\"status\"}\n", 17, &req, err) == 0);
	CHECK_STR(json_string_value(json_object_get(req, "cmd")), "status");
	json_decref(req);
	/* Bytes after the newline are not part of the request. */
	CHECK(parse("{\"cmd\":\"a\"}\ngarbage", 19, &req, err) == 0);
	json_decref(req);
	CHECK(parse("{\"cmd\":\"status\"}", 16, &req, err) == -EAGAIN);
	CHECK(parse("", 0, &req, err) == -EAGAIN);
	CHECK(parse("{\"cmd\":7}\n", 10, &req, err) == -EBADMSG && req == NULL);
	CHECK_STR(err, "bad request: expected an object with a \"cmd\" string");
	CHECK(parse("[1]\n", 4, &req, err) == -EBADMSG);
	CHECK(parse("{\n", 2, &req, err) == -EBADMSG && !strncmp(err, "bad request: ", 13));

	/* The limit: a line of exactly MOAT_CTL_MAX_REQUEST bytes is read, one more is not. */
	memset(buf, ' ', big);
	memcpy(buf + MOAT_CTL_MAX_REQUEST - 13, "{\"cmd\":\"s\"}", 11);
	buf[MOAT_CTL_MAX_REQUEST] = '\n';
	CHECK(parse(buf, MOAT_CTL_MAX_REQUEST + 1, &req, err) == 0);
	json_decref(req);
	CHECK(parse(buf, MOAT_CTL_MAX_REQUEST, &req, err) == -EAGAIN);
	buf[MOAT_CTL_MAX_REQUEST] = ' ';
	CHECK(parse(buf, MOAT_CTL_MAX_REQUEST + 1, &req, err) == -EMSGSIZE);
	buf[MOAT_CTL_MAX_REQUEST + 1] = '\n';
	CHECK(parse(buf, MOAT_CTL_MAX_REQUEST + 2, &req, err) == -EMSGSIZE);
	free(buf);
	return check_done();
}
