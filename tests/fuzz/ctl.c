/*
 * Fuzzes the control socket's request handling without a socket: the bytes a peer sends
 * arrive in chunks (byte 0: chunk size 1..64, in KiB when padded; bit 7 of byte 1: pad the
 * request with leading spaces to just under or over MOAT_CTL_MAX_REQUEST, byte 2 says how
 * near), buffered as daemon/ctl.c's conn_read buffers them (at most MOAT_CTL_MAX_REQUEST + 1
 * bytes), and ctl_request_parse is asked after every chunk, as the daemon asks. Its answer
 * must agree with the protocol: -EAGAIN only while there is no newline and room left,
 * -EMSGSIZE exactly when the line is too long, otherwise an object with a "cmd" string or
 * -EBADMSG with words.
 *
 * node_ctl (daemon/node.c) itself is not driven: its node needs a netfilter socket and
 * applies rulesets (mode, policy.reload), so this harness stops at the parsing layer, plus
 * the library calls the read-only commands make on the request's fields: moat_port_arg_parse
 * on "port"/"ports", and moat_report_explain of "from" -> "to" on a small fixed plan.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../daemon/ctl.h"
#include "fuzz.h"
#include "moat/ctl.h"
#include "moat/plan.h"
#include "moat/report.h"

#define BUF (MOAT_CTL_MAX_REQUEST + 1)

static const char endpoints_yaml[] =
	"namespaces: {x: {team: red}}\n"
	"endpoints:\n"
	"  - {name: a, namespace: x, labels: {app: a}, ips: [10.0.1.1, \"fd00::1\"], ports: {http: 80/tcp}}\n"
	"  - {name: b, labels: {app: b}, ips: [10.0.1.2]}\n";
static const char policies_yaml[] =
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: a, namespace: x}\n"
	"spec: {podSelector: {matchLabels: {app: a}}, ingress: [{ports: [{port: http}]}]}\n";

static struct moat_endpoint_set *es;
static struct moat_policy_set *ps;
static struct moat_plan *plan;
static char *buf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct moat_diags d = { 0 };

	if (moat_endpoint_set_parse("e", endpoints_yaml, strlen(endpoints_yaml), &es, &d) ||
	    moat_policy_set_parse("p", policies_yaml, strlen(policies_yaml), &ps, &d) ||
	    moat_plan_compile(ps, es, MOAT_MODE_ENFORCE, NULL, &plan) || !(buf = malloc(BUF))) {
		moat_diags_print(&d, stderr);
		abort();
	}
	return 0;
}

/* What the read-only commands do with a request's fields (matrix.c, node.c: cmd_explain). */
static void fields_use(json_t *req)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *to = json_string_value(json_object_get(req, "to"));
	const char *port = json_string_value(json_object_get(req, "port"));
	struct moat_port_arg p, q;
	json_t *a = json_object_get(req, "ports"), *it, *j = NULL;
	char err[600];
	size_t i;
	int ret;

	json_array_foreach(a, i, it)
		if (json_is_string(it) && !moat_port_arg_parse(json_string_value(it), &q))
			FUZZ_CHECK(memchr(q.text, 0, sizeof(q.text)));
	if (!port || moat_port_arg_parse(port, &p))
		return;
	FUZZ_CHECK(memchr(p.text, 0, sizeof(p.text)));
	if (!from || !to)
		return;
	ret = moat_report_explain(plan, from, to, &p, &j, err, sizeof(err));
	FUZZ_CHECK(ret == 0 ? j != NULL : ret == -ENOENT && memchr(err, 0, sizeof(err)));
	json_decref(j);
}

/* What the protocol says the answer for the first len buffered bytes must be. */
static int expected(const char *in, size_t len)
{
	const char *nl = memchr(in, '\n', len);

	if (!nl)
		return len > MOAT_CTL_MAX_REQUEST ? -EMSGSIZE : -EAGAIN;
	return (size_t)(nl - in) > MOAT_CTL_MAX_REQUEST ? -EMSGSIZE : 0;
}

/* Lays out what a peer sends, cut at what conn_read would buffer: padding, the fuzzed bytes. */
static size_t stream_build(const uint8_t *data, size_t size)
{
	size_t pad = data[1] & 0x80 ? MOAT_CTL_MAX_REQUEST - 64 + data[2] % 128 : 0, n;

	if (pad > BUF)
		pad = BUF;
	n = size - 3 < BUF - pad ? size - 3 : BUF - pad;
	memset(buf, ' ', pad);
	memcpy(buf + pad, data + 3, n);
	return pad + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk, total, inlen = 0;
	json_t *req = NULL;
	char err[256];
	int ret = -EAGAIN, want;

	if (size < 3)
		return 0;
	chunk = data[0] % 64 + 1;
	total = stream_build(data, size);
	if (data[1] & 0x80)
		chunk *= 1024;	/* a padded request in 1-byte reads is 2^32 byte scans: slow, not new */
	while (ret == -EAGAIN && inlen < total) {
		inlen += chunk < total - inlen ? chunk : total - inlen;
		memset(err, 0, sizeof(err));
		ret = ctl_request_parse(buf, inlen, &req, err, sizeof(err));
		want = expected(buf, inlen);
		FUZZ_CHECK(want == 0 ? ret == 0 || ret == -EBADMSG : ret == want);
	}
	if (ret == -EBADMSG)
		FUZZ_CHECK(!strncmp(err, "bad request: ", 13));
	if (ret)
		return 0;
	FUZZ_CHECK(json_is_object(req) && json_is_string(json_object_get(req, "cmd")));
	fields_use(req);
	json_decref(req);
	return 0;
}
