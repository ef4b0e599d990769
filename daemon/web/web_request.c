/* The web UI's requests as control requests, and the checks on what a browser sends. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web_request.h"
#include "moat/duration.h"
#include "moat/endpoint.h"

enum param_kind { PARAM_STRING, PARAM_SINCE, PARAM_LIMIT };

struct param {
	const char *key;
	enum param_kind kind;
};

static const struct param flow_params[] = {
	{ "from", PARAM_STRING }, { "to", PARAM_STRING }, { "port", PARAM_STRING },
	{ "verdict", PARAM_STRING }, { "since", PARAM_SINCE }, { "limit", PARAM_LIMIT },
	{ NULL, 0 },
};

static const struct param explain_params[] = {
	{ "from", PARAM_STRING }, { "to", PARAM_STRING }, { "port", PARAM_STRING }, { NULL, 0 },
};

/* Read-only commands only: nothing here may reach one that changes state. */
static const struct api {
	const char *name, *cmd;
	const struct param *params;
	bool follow, graph;
} apis[] = {
	{ "status", "status", NULL, false, false },
	{ "endpoints", "endpoints", NULL, false, false },
	{ "graph", "graph", NULL, false, true },
	{ "flows", "flows", flow_params, false, false },
	{ "events", "flows", flow_params, true, false },
	{ "explain", "policy.explain", explain_params, false, false },
};

static int limit_parse(const char *v, json_int_t *n)
{
	char *end;
	long long x = strtoll(v, &end, 10);

	if (*end || end == v || x <= 0)
		return -EINVAL;
	*n = x > WEB_FLOWS_MAX ? WEB_FLOWS_MAX : x;
	return 0;
}

/* One parameter into req; an empty value is as good as none (a form's blank field). */
static int param_put(json_t *req, const struct param *p, const char *v, char *err, size_t errlen)
{
	uint64_t ms;
	json_int_t n;
	int ret;

	if (strlen(v) > WEB_PARAM_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", p->key, WEB_PARAM_MAX);
		return -EINVAL;
	}
	switch (p->kind) {
	case PARAM_STRING:
		return json_object_set_new(req, p->key, json_string(v)) ? -ENOMEM : 0;
	case PARAM_SINCE:
		if (moat_duration_parse(v, &ms) < 0)
			break;
		ret = json_object_set_new(req, "since_ms", json_integer((json_int_t)ms));
		return ret ? -ENOMEM : 0;
	case PARAM_LIMIT:
		if (limit_parse(v, &n) < 0)
			break;
		return json_object_set_new(req, "limit", json_integer(n)) ? -ENOMEM : 0;
	}
	snprintf(err, errlen, "%s: expected %s", p->key,
		 p->kind == PARAM_SINCE ? "a duration like 90s, 5m, 1h30m" : "a positive number");
	return -EINVAL;
}

static int params_put(json_t *req, const struct api *a, web_param_fn param, void *ctx,
		      char *err, size_t errlen)
{
	int ret = 0;

	for (const struct param *p = a->params; p && p->key && !ret; p++) {
		const char *v = param(ctx, p->key);

		if (v && *v)
			ret = param_put(req, p, v, err, errlen);
	}
	if (!ret && a->params == flow_params && !json_object_get(req, "limit") &&
	    json_object_set_new(req, "limit", json_integer(WEB_FLOWS_DEFAULT)))
		ret = -ENOMEM;
	return ret;
}

int web_api_request(const char *name, web_param_fn param, void *ctx, json_t **out, char *err,
		    size_t errlen)
{
	const struct api *a = NULL;
	json_t *req;
	int ret;

	for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]) && !a; i++)
		if (!strcmp(name, apis[i].name))
			a = &apis[i];
	if (!a)
		return -ENOENT;
	if (!(req = json_pack("{s:s}", "cmd", a->cmd)))
		return -ENOMEM;
	ret = params_put(req, a, param, ctx, err, errlen);
	if (!ret && a->follow)
		ret = json_object_set_new(req, "follow", json_true()) ? -ENOMEM : 0;
	if (!ret && a->graph)
		ret = json_object_set_new(req, "format", json_string("json")) ? -ENOMEM : 0;
	if (ret) {
		json_decref(req);
		return ret;
	}
	*out = req;
	return 0;
}

/* ---- static files ---- */

static const struct {
	const char *ext, *type;
} types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "ico", "image/x-icon" },
	{ "txt", "text/plain; charset=utf-8" },
};

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

const char *web_file_type(const char *name)
{
	const char *dot = strchr(name, '.');
	size_t len = strlen(name);

	if (!dot || dot == name || len > WEB_FILE_NAME_MAX)
		return NULL;
	for (const char *p = name; p < dot; p++)
		if (!name_char(*p))
			return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot + 1, types[i].ext))
			return types[i].type;
	return NULL;
}

/* ---- token, Host ---- */

static bool token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("._~+/=-", c));
}

int web_token_parse(const char *buf, size_t len, char *out, char *err, size_t errlen)
{
	size_t n = 0;

	while (len && strchr(" \t\r\n", buf[len - 1]) && buf[len - 1])
		len--;
	while (n < len && token_char(buf[n]))
		n++;
	if (n < len) {
		snprintf(err, errlen, "the token may only have letters, digits and ._~+/=- "
			 "(one line)");
		return -EINVAL;
	}
	if (n < WEB_TOKEN_MIN || n > WEB_TOKEN_MAX) {
		snprintf(err, errlen, "the token must have %d to %d characters, not %zu",
			 WEB_TOKEN_MIN, WEB_TOKEN_MAX, n);
		return -EINVAL;
	}
	memcpy(out, buf, n);
	out[n] = '\0';
	return 0;
}

bool web_token_equal(const char *given, size_t glen, const char *token, size_t tlen)
{
	volatile unsigned char diff = glen != tlen;

	/* every byte of the secret is looked at whatever given holds; given is read in bounds */
	for (size_t i = 0; i < tlen; i++)
		diff |= (unsigned char)token[i] ^ (unsigned char)(i < glen ? given[i] : 0);
	return !diff;
}

bool web_bearer(const char *value, const char **tok, size_t *len)
{
	if (!value || strncasecmp(value, "Bearer ", 7))
		return false;
	value += 7;
	while (*value == ' ')
		value++;
	*tok = value;
	*len = strcspn(value, " \t");
	return *len > 0 && !value[*len + strspn(value + *len, " \t")];
}

/* ":PORT" or nothing. */
static bool port_ok(const char *p)
{
	return !*p || (p[0] == ':' && p[1] && strspn(p + 1, "0123456789") == strlen(p + 1));
}

bool web_host_local(const char *host)
{
	const char *start = host, *port;
	struct moat_addr a;
	char h[128];
	size_t n;

	if (!host)
		return false;
	if (host[0] == '[') {		/* [v6]:port */
		if (!(port = strchr(host, ']')))
			return false;
		start = host + 1;
		n = (size_t)(port - start);
		port++;
	} else {
		n = strcspn(host, ":");
		port = host + n;
	}
	if (!n || n >= sizeof(h) || !port_ok(port))
		return false;
	memcpy(h, start, n);
	h[n] = '\0';
	return !strcasecmp(h, "localhost") || moat_addr_parse(h, &a) == 0;
}

int web_sse_event(const char *name, json_t *msg, char **out, size_t *len)
{
	char *data = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
	char *buf = NULL;
	int n;

	if (!data)
		return -ENOMEM;
	n = asprintf(&buf, "event: %s\ndata: %s\n\n", name, data);
	free(data);
	if (n < 0)
		return -ENOMEM;
	*out = buf;
	*len = (size_t)n;
	return 0;
}
