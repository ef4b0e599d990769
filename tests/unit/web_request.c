/*
 * The web UI's requests without HTTP: /api/ names to read-only control requests (and
 * nothing else, whatever the query says), bounds on values, the static files that may be
 * served (nothing outside the directory), the token (parsing, constant-time comparison,
 * the bearer header), the Host check against DNS rebinding, server-sent event framing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../daemon/web/web_request.h"

/* A query: pairs of key and value, ending with NULL. */
static const char *param(void *ctx, const char *key)
{
	const char *const *q = ctx;

	for (; q && q[0]; q += 2)
		if (!strcmp(q[0], key))
			return q[1];
	return NULL;
}

static json_t *request(const char *name, const char *const *query, int *ret)
{
	char err[256] = "";
	json_t *req = NULL;

	*ret = web_api_request(name, param, (void *)query, &req, err, sizeof(err));
	if (*ret == -EINVAL)
		CHECK(err[0]);
	return req;
}

static const char *str(json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
}

static void test_api(void)
{
	const char *const flows[] = { "from", "app=web", "to", "10.0.0.0/8", "port", "5432/tcp",
				      "verdict", "denied", "since", "5m", "limit", "50",
				      "cmd", "mode", "mode", "monitor", "follow", "1", NULL };
	const char *const blank[] = { "from", "", "verdict", "", NULL };
	int ret;
	json_t *r;

	r = request("status", NULL, &ret);
	CHECK(ret == 0 && json_object_size(r) == 1);
	CHECK_STR(str(r, "cmd"), "status");
	json_decref(r);
	r = request("graph", NULL, &ret);
	CHECK(ret == 0);
	CHECK_STR(str(r, "cmd"), "graph");
	CHECK_STR(str(r, "format"), "json");
	json_decref(r);
	/* the query fills the filters; cmd, mode and follow in it change nothing */
	r = request("flows", flows, &ret);
	CHECK(ret == 0);
	CHECK_STR(str(r, "cmd"), "flows");
	CHECK_STR(str(r, "from"), "app=web");
	CHECK_STR(str(r, "to"), "10.0.0.0/8");
	CHECK_STR(str(r, "port"), "5432/tcp");
	CHECK_STR(str(r, "verdict"), "denied");
	CHECK(json_integer_value(json_object_get(r, "since_ms")) == 300000);
	CHECK(json_integer_value(json_object_get(r, "limit")) == 50);
	CHECK(!json_object_get(r, "mode") && !json_object_get(r, "follow"));
	json_decref(r);
	r = request("events", flows, &ret);
	CHECK(ret == 0 && json_is_true(json_object_get(r, "follow")));
	CHECK_STR(str(r, "cmd"), "flows");
	json_decref(r);
	/* blank fields are no filter; the limit has a default */
	r = request("flows", blank, &ret);
	CHECK(ret == 0 && !json_object_get(r, "from") && !json_object_get(r, "verdict"));
	CHECK(json_integer_value(json_object_get(r, "limit")) == WEB_FLOWS_DEFAULT);
	json_decref(r);
	r = request("explain", flows, &ret);
	CHECK(ret == 0 && json_object_size(r) == 4);
	CHECK_STR(str(r, "cmd"), "policy.explain");
	json_decref(r);
}

static void test_api_refused(void)
{
	static const char *const changes[] = { "reload", "policy.reload", "mode", "learn.start",
					       "learn.stop", "login", "", "status/", "../status" };
	char big[WEB_PARAM_MAX + 2];
	const char *const huge[] = { "limit", "999999999", NULL };
	const char *const bad_limit[] = { "limit", "-1", NULL };
	const char *const bad_limit2[] = { "limit", "10x", NULL };
	const char *const bad_since[] = { "since", "yesterday", NULL };
	const char *const long_value[] = { "to", big, NULL };
	int ret;
	json_t *r;

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		r = request(changes[i], NULL, &ret);
		CHECK(ret == -ENOENT && !r);
	}
	r = request("flows", huge, &ret);
	CHECK(ret == 0 && json_integer_value(json_object_get(r, "limit")) == WEB_FLOWS_MAX);
	json_decref(r);
	CHECK(!request("flows", bad_limit, &ret) && ret == -EINVAL);
	CHECK(!request("flows", bad_limit2, &ret) && ret == -EINVAL);
	CHECK(!request("events", bad_since, &ret) && ret == -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(!request("flows", long_value, &ret) && ret == -EINVAL);
	big[WEB_PARAM_MAX] = '\0';	/* exactly the bound: taken */
	r = request("flows", long_value, &ret);
	CHECK(ret == 0 && r);
	json_decref(r);
}

static void test_files(void)
{
	static const char *const bad[] = {
		"", "..", "../etc/passwd", "..%2fetc", "/etc/passwd", "a/b.js", ".htaccess",
		".js", "index.HTML", "app.JS", "x..js", "x.exe", "x.html.bak", "index", "a b.js",
		"a\\b.js", "x.js/", "index.html~",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.js",
	};

	CHECK_STR(web_file_type("index.html"), "text/html; charset=utf-8");
	CHECK_STR(web_file_type("app.js"), "text/javascript; charset=utf-8");
	CHECK_STR(web_file_type("style.css"), "text/css; charset=utf-8");
	CHECK_STR(web_file_type("favicon.svg"), "image/svg+xml");
	CHECK_STR(web_file_type("web-map_2.png"), "image/png");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(web_file_type(bad[i]) == NULL);
		if (web_file_type(bad[i]))
			fprintf(stderr, "  served: \"%s\"\n", bad[i]);
	}
}

static void test_token(void)
{
	char tok[WEB_TOKEN_MAX + 1], err[256];
	char longer[WEB_TOKEN_MAX + 2];
	const char *t;
	size_t n;

	CHECK(web_token_parse("0123456789abcdefXYZ._~+/=-\n", 27, tok, err, sizeof(err)) == 0);
	CHECK_STR(tok, "0123456789abcdefXYZ._~+/=-");
	CHECK(web_token_parse("0123456789abcdef  \r\n\n", 21, tok, err, sizeof(err)) == 0);
	CHECK_STR(tok, "0123456789abcdef");
	CHECK(web_token_parse("0123456789abcde\n", 16, tok, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "16"));
	CHECK(web_token_parse("0123456789 abcdef\n", 18, tok, err, sizeof(err)) == -EINVAL);
	CHECK(web_token_parse("0123456789abcdef;x=1", 20, tok, err, sizeof(err)) == -EINVAL);
	CHECK(web_token_parse("0123456789abcdef\nsecond", 23, tok, err, sizeof(err)) == -EINVAL);
	CHECK(web_token_parse("0123456789abcdef\0zz", 19, tok, err, sizeof(err)) == -EINVAL);
	memset(longer, 'k', sizeof(longer));
	CHECK(web_token_parse(longer, WEB_TOKEN_MAX, tok, err, sizeof(err)) == 0);
	CHECK(web_token_parse(longer, WEB_TOKEN_MAX + 1, tok, err, sizeof(err)) == -EINVAL);

	t = "0123456789abcdef";
	CHECK(web_token_equal("0123456789abcdef", 16, t, 16));
	CHECK(!web_token_equal("x123456789abcdef", 16, t, 16));
	CHECK(!web_token_equal("0123456789abcdex", 16, t, 16));
	CHECK(!web_token_equal("0123456789abcde", 15, t, 16));
	CHECK(!web_token_equal("0123456789abcdefg", 17, t, 16));
	CHECK(!web_token_equal("", 0, t, 16));

	CHECK(web_bearer("Bearer abc.def", &t, &n) && n == 7 && !strncmp(t, "abc.def", n));
	CHECK(web_bearer("bearer  abc  ", &t, &n) && n == 3 && !strncmp(t, "abc", n));
	CHECK(!web_bearer("Basic YWJj", &t, &n));
	CHECK(!web_bearer("Bearer ", &t, &n));
	CHECK(!web_bearer("Bearer a b", &t, &n));
	CHECK(!web_bearer("Bearerabc", &t, &n));
	CHECK(!web_bearer(NULL, &t, &n));
}

static void test_host(void)
{
	static const char *const local[] = { "127.0.0.1:9641", "127.0.0.1", "localhost:9641",
					     "LocalHost", "[::1]:9641", "[::1]", "10.1.2.3:80",
					     "[fd00::5]:1" };
	static const char *const remote[] = { "evil.example", "evil.example:9641",
					      "127.0.0.1.evil.example", "localhost.evil.example",
					      "", "127.0.0.1:", "127.0.0.1:96a", "[::1]x",
					      "[::1]:", "::1", "[evil]:80", "localhost:80:80" };

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		CHECK(web_host_local(local[i]));
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		CHECK(!web_host_local(remote[i]));
		if (web_host_local(remote[i]))
			fprintf(stderr, "  taken as local: \"%s\"\n", remote[i]);
	}
	CHECK(!web_host_local(NULL));
}

static void test_sse(void)
{
	json_t *msg = json_pack("{s:s}", "name", "a\nb\r\nevent: forged");
	char *text = NULL;
	size_t len = 0;

	CHECK(web_sse_event("flow", msg, &text, &len) == 0);
	CHECK_STR(text, "event: flow\ndata: {\"name\":\"a\\nb\\r\\nevent: forged\"}\n\n");
	CHECK(len == strlen(text));
	free(text);
	json_decref(msg);
}

int main(void)
{
	test_api();
	test_api_refused();
	test_files();
	test_token();
	test_host();
	test_sse();
	return check_done();
}
