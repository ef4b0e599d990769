/*
 * Fuzzes what a browser (or anyone reaching --web) sends moatd, without HTTP: the input's
 * lines are the URL's name under /api/ (line 1) and query parameters "key=value" (the rest);
 * line 1 is also tried as a file name, a Host header, a token file and an Authorization
 * header (daemon/web_request.h). Invariants: a file name that is served never leaves the
 * directory; a request only ever becomes one of the read-only commands, with the keys and
 * bounds the API documents, whatever the query holds; a Host taken as local is an address
 * or localhost; a parsed token is valid and equals itself; a bearer token lies inside the
 * header; a server-sent event of any text is one event.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/web/web_request.h"
#include "fuzz.h"

#define MAX_PARAMS 16

struct query {
	char *keys[MAX_PARAMS], *values[MAX_PARAMS];
	size_t n;
};

static const char *param(void *ctx, const char *key)
{
	struct query *q = ctx;

	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->keys[i], key))
			return q->values[i];
	return NULL;
}

static void file_check(const char *name)
{
	if (!web_file_type(name))
		return;
	FUZZ_CHECK(!strchr(name, '/') && !strchr(name, '\\') && name[0] != '.');
	FUZZ_CHECK(!strstr(name, "..") && strlen(name) <= WEB_FILE_NAME_MAX);
}

static void request_check(const char *name, struct query *q)
{
	static const char *const cmds[] = { "status", "endpoints", "graph", "flows",
					    "policy.explain" };
	static const char *const keys[] = { "cmd", "from", "to", "port", "verdict", "since_ms",
					    "limit", "follow", "format" };
	char err[256] = "";
	json_t *req = NULL, *v;
	const char *k, *cmd;
	bool known = false;
	int ret = web_api_request(name, param, q, &req, err, sizeof(err));

	FUZZ_CHECK(ret == 0 || ret == -ENOENT || ret == -ENOMEM || (ret == -EINVAL && err[0]));
	FUZZ_CHECK(ret == 0 ? req != NULL : req == NULL);
	if (ret)
		return;
	cmd = json_string_value(json_object_get(req, "cmd"));
	for (size_t i = 0; cmd && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		known |= !strcmp(cmd, cmds[i]);
	FUZZ_CHECK(known);
	json_object_foreach(req, k, v) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			ok |= !strcmp(k, keys[i]);
		FUZZ_CHECK(ok);
		FUZZ_CHECK(!json_is_string(v) || strlen(json_string_value(v)) <= WEB_PARAM_MAX);
	}
	v = json_object_get(req, "limit");
	FUZZ_CHECK(!v || (json_integer_value(v) >= 1 && json_integer_value(v) <= WEB_FLOWS_MAX));
	FUZZ_CHECK(!json_object_get(req, "follow") || !strcmp(name, "events"));
	json_decref(req);
}

static void token_check(const char *s, size_t len)
{
	char tok[WEB_TOKEN_MAX + 1], err[256];
	const char *b;
	size_t n;

	if (web_token_parse(s, len, tok, err, sizeof(err)) == 0) {
		n = strlen(tok);
		FUZZ_CHECK(n >= WEB_TOKEN_MIN && n <= WEB_TOKEN_MAX && !strpbrk(tok, " \t\r\n;,\""));
		FUZZ_CHECK(web_token_equal(tok, n, tok, n));
		FUZZ_CHECK(!web_token_equal(tok, n - 1, tok, n));
	}
	if (web_bearer(s, &b, &n))
		FUZZ_CHECK(b > s && b + n <= s + strlen(s) && n && !memchr(b, ' ', n));
}

static void host_check(const char *h)
{
	if (web_host_local(h))
		FUZZ_CHECK(!strpbrk(h, "/@ \t") && strlen(h) < 140);
}

static void sse_check(const char *s)
{
	json_t *j = json_string(s);
	char *text = NULL;
	size_t len = 0, lines = 0;

	if (!j)
		return;	/* not UTF-8 */
	if (web_sse_event("flow", j, &text, &len) == 0) {
		for (size_t i = 0; i < len; i++)
			lines += text[i] == '\n' || text[i] == '\r';
		FUZZ_CHECK(lines == 3 && !strncmp(text, "event: flow\ndata: ", 18));
		free(text);
	}
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *line, *save = NULL;
	struct query q = { 0 };
	const char *first;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	token_check(s, size);
	first = strtok_r(s, "\n", &save);
	first = first ? first : "";
	file_check(first);
	host_check(first);
	sse_check(first);
	while ((line = strtok_r(NULL, "\n", &save)) && q.n < MAX_PARAMS) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq = '\0';
		q.keys[q.n] = line, q.values[q.n++] = eq + 1;
	}
	request_check(first, &q);
	free(s);
	return 0;
}
