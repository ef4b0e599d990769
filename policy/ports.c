/* Ports: NetworkPolicy's {protocol, port, endPort} and named ports. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "ports.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *name;
	uint8_t proto;
} protos[] = {
	{ "TCP", IPPROTO_TCP },
	{ "UDP", IPPROTO_UDP },
	{ "SCTP", IPPROTO_SCTP },
};

uint8_t proto_lookup(const char *s, bool nocase)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!(nocase ? strcasecmp : strcmp)(s, protos[i].name))
			return protos[i].proto;
	return 0;
}

/* Kubernetes' IsValidPortName (RFC 6335 IANA_SVC_NAME). */
const char *port_name_problem(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > 15 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != len ||
	    strspn(name, "0123456789-") == len || name[0] == '-' || name[len - 1] == '-' ||
	    strstr(name, "--"))
		return "a port name is 1-15 lowercase letters, digits and '-', with at least one "
		       "letter and no '-' at either end or twice in a row";
	return NULL;
}

struct port_nodes {
	const struct ynode *proto, *port, *end;
};

static const struct yfield port_fields[] = {
	YKEEP("protocol", struct port_nodes, proto),
	YKEEP("port", struct port_nodes, port),
	YKEEP("endPort", struct port_nodes, end),
};

/* Each check records its errors and returns 0, or -ENOMEM. at_key runs one under its key. */
typedef int (*port_check_fn)(struct ycheck *, const struct ynode *, struct moat_port *);

static int at_key(struct ycheck *ck, const char *key, port_check_fn fn, const struct ynode *n,
		  struct moat_port *out)
{
	size_t saved = ypath_key(ck, key);
	int ret = fn(ck, n, out);

	ypath_pop(ck, saved);
	return ret;
}

static int proto_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	const char *s = ystr(ck, n);

	if (s && !(out->proto = proto_lookup(s, false)))
		yerr(ck, n, "unknown protocol \"%s\" (allowed: TCP, UDP, SCTP)", s);
	return 0;
}

/* ---- what kubectl reads a plain scalar as ---- */

/*
 * kubectl (sigs.k8s.io/yaml) resolves plain scalars with go-yaml v2, YAML 1.1, turns the
 * document into JSON, and only then lets IntOrString choose: a JSON string is a port name,
 * anything else is read as a number. So what go-yaml resolves to an int, a float, a bool or
 * null never reaches Kubernetes as a name. The rules, from go-yaml v2's resolve():
 *   - whole-word tables: y/yes/true/on and n/no/false/off (three casings each) are bools;
 *     "", ~, null are null; .inf, .nan and their signs are floats;
 *   - a scalar starting with '.': a float when ParseFloat takes it (".5", ".8e2");
 *   - starting with a digit or a sign: '_' removed, then Go's ParseInt(s, 0) (0x, 0o, 0b and
 *     a leading 0 for octal, a sign), ParseUint, or the float syntax
 *     [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?;
 *   - anything else is a string.
 */
enum kubectl_scalar { KUBECTL_STRING, KUBECTL_NUMBER, KUBECTL_BOOL, KUBECTL_NULL };

static const struct {
	const char *word;
	enum kubectl_scalar kind;
} kubectl_words[] = {
	{ "y", KUBECTL_BOOL }, { "Y", KUBECTL_BOOL }, { "yes", KUBECTL_BOOL },
	{ "Yes", KUBECTL_BOOL }, { "YES", KUBECTL_BOOL }, { "n", KUBECTL_BOOL },
	{ "N", KUBECTL_BOOL }, { "no", KUBECTL_BOOL }, { "No", KUBECTL_BOOL },
	{ "NO", KUBECTL_BOOL }, { "true", KUBECTL_BOOL }, { "True", KUBECTL_BOOL },
	{ "TRUE", KUBECTL_BOOL }, { "false", KUBECTL_BOOL }, { "False", KUBECTL_BOOL },
	{ "FALSE", KUBECTL_BOOL }, { "on", KUBECTL_BOOL }, { "On", KUBECTL_BOOL },
	{ "ON", KUBECTL_BOOL }, { "off", KUBECTL_BOOL }, { "Off", KUBECTL_BOOL },
	{ "OFF", KUBECTL_BOOL }, { "", KUBECTL_NULL }, { "~", KUBECTL_NULL },
	{ "null", KUBECTL_NULL }, { "Null", KUBECTL_NULL }, { "NULL", KUBECTL_NULL },
};

/* Go's strconv.ParseInt(s, 0, ...) syntax: sign, then 0x/0o/0b digits, 0-led octal or
 * decimal. The value (approximate past 2^53, which no port reaches) into *v. */
static bool go_int(const char *s, double *v)
{
	static const struct {
		const char *prefix;
		unsigned base;
	} bases[] = { { "0x", 16 }, { "0X", 16 }, { "0o", 8 }, { "0O", 8 }, { "0b", 2 },
		      { "0B", 2 } };
	double sign = *s == '-' ? -1 : 1, acc = 0;
	unsigned base = 10;
	size_t n = 0;

	s += *s == '-' || *s == '+';
	for (size_t i = 0; i < ARRAY_SIZE(bases); i++)
		if (!strncmp(s, bases[i].prefix, 2))
			base = bases[i].base, s += 2;
	if (base == 10 && s[0] == '0' && s[1])
		base = 8;
	for (; s[n]; n++) {
		unsigned d = s[n] >= 'a' ? s[n] - 'a' + 10u : s[n] >= 'A' ? s[n] - 'A' + 10u :
			     (unsigned)(s[n] - '0');

		if (s[n] < '0' || d >= base || (s[n] > '9' && s[n] < 'A'))
			return false;
		acc = acc * base + d;
	}
	*v = sign * acc;
	return n > 0;
}

/* go-yaml's float syntax, above; strtod then agrees on the value. */
static bool yaml_float(const char *s, double *v)
{
	size_t i = *s == '-' || *s == '+', d = strspn(s + i, "0123456789");

	if (!d && s[i] != '.')
		return false;
	i += d;
	if (s[i] == '.') {
		size_t frac = strspn(s + i + 1, "0123456789");

		if (!d && !frac)
			return false;
		i += 1 + frac;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		size_t j = i + 1 + (s[i + 1] == '-' || s[i + 1] == '+');
		size_t e = strspn(s + j, "0123456789");

		if (!e)
			return false;
		i = j + e;
	}
	if (s[i])
		return false;
	*v = strtod(s, NULL);
	return true;
}

static const char *const kubectl_special_floats[] = {
	".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
	".nan", ".NaN", ".NAN",
};

/* What kubectl makes of plain scalar s; *v is the number for KUBECTL_NUMBER. */
static enum kubectl_scalar kubectl_scalar(const char *s, double *v)
{
	char plain[64];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(kubectl_words); i++)
		if (!strcmp(s, kubectl_words[i].word))
			return kubectl_words[i].kind;
	for (size_t i = 0; i < ARRAY_SIZE(kubectl_special_floats); i++)
		if (!strcmp(s, kubectl_special_floats[i])) {
			*v = s[strcspn(s, "aA")] ? NAN : *s == '-' ? -INFINITY : INFINITY;
			return KUBECTL_NUMBER;
		}
	if (*s == '.')
		return yaml_float(s, v) ? KUBECTL_NUMBER : KUBECTL_STRING;
	if (!strchr("+-0123456789", *s) || strlen(s) >= sizeof(plain))
		return KUBECTL_STRING;
	for (; *s; s++)
		if (*s != '_')
			plain[n++] = *s;
	plain[n] = 0;
	return go_int(plain, v) || yaml_float(plain, v) ? KUBECTL_NUMBER : KUBECTL_STRING;
}

/* A plain scalar kubectl would not read as a port name: recorded at n, true. */
static bool kubectl_not_a_name(struct ycheck *ck, const struct ynode *n)
{
	static const char fix[] = "write the port in decimal, or quote a port name";
	double v = 0;

	switch (kubectl_scalar(n->str, &v)) {
	case KUBECTL_STRING:
		return false;
	case KUBECTL_NUMBER:
		yerr(ck, n, "kubectl reads %s as the number %.15g, not as a port name: %s", n->str,
		     v, fix);
		break;
	case KUBECTL_BOOL:
		yerr(ck, n, "kubectl reads %s as a boolean, not as a port name: %s", n->str, fix);
		break;
	case KUBECTL_NULL:
		yerr(ck, n, "kubectl reads %s as null, which means every port: leave port out for "
		     "that, or write one", n->str);
		break;
	}
	return true;
}

/*
 * A plain decimal is a port number; a plain scalar kubectl reads as a number, a boolean or
 * null is an error (Moat would otherwise take it for a port name kubectl never sees);
 * anything else is a port name (Kubernetes' IntOrString).
 */
static int port_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	unsigned long v;
	const char *s, *why;

	if (n->type == YNODE_SCALAR && n->plain && yis_uint(n)) {
		if (yuint(ck, n, 1, 65535, &v))
			out->port = out->end_port = v;
		return 0;
	}
	if (n->type == YNODE_SCALAR && n->plain && strlen(n->str) == n->len &&
	    kubectl_not_a_name(ck, n))
		return 0;
	s = ystr(ck, n);
	why = s ? port_name_problem(s) : NULL;
	if (why)
		yerr(ck, n, "invalid port name \"%s\": %s", s, why);
	if (!s || why)
		return 0;
	out->name = arena_strdup(ck->arena, s);
	return out->name ? 0 : -ENOMEM;
}

static int end_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	unsigned long v;

	if (!yuint(ck, n, 1, 65535, &v))
		return 0;
	if (out->name)
		yerr(ck, n, "endPort needs a numeric port, not the port name \"%s\"", out->name);
	else if (!out->port)
		yerr(ck, n, "endPort needs a numeric port to start the range");
	else if (v < out->port)
		yerr(ck, n, "endPort %lu is below port %u", v, out->port);
	else
		out->end_port = v;
	return 0;
}

int port_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	struct port_nodes x = { 0 };
	int ret = ywalk_map(ck, n, port_fields, 3, &x);

	memset(out, 0, sizeof(*out));
	out->proto = IPPROTO_TCP;
	out->pos = (struct moat_pos){ ck->file, n->line, n->col };
	if (!ret && x.proto)
		ret = at_key(ck, "protocol", proto_check, x.proto, out);
	if (!ret && x.port)
		ret = at_key(ck, "port", port_check, x.port, out);
	/* after an invalid port, a complaint about endPort would only be noise */
	if (!ret && x.end && (!x.port || out->port || out->name))
		ret = at_key(ck, "endPort", end_check, x.end, out);
	return ret;
}

int port_spec_parse(const char *s, uint16_t *port, uint8_t *proto)
{
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	uint8_t p = slash ? proto_lookup(slash + 1, true) : IPPROTO_TCP;
	unsigned long v = 0;

	if (!n || n > 5 || strspn(s, "0123456789") != n || s[0] == '0' || !p)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v > 65535)
		return -EINVAL;
	*port = v;
	*proto = p;
	return 0;
}

/* ---- the cluster-wide policies' ports (policy.networking.k8s.io) ---- */

/* A port number 1-65535 under key of map x; false when absent (required) or invalid. */
static bool num_at(struct ycheck *ck, const struct ynode *map, const char *key,
		   const struct ynode *n, unsigned long *out)
{
	size_t saved;
	bool ok;

	if (!n) {
		yerr(ck, map, "%s is required", key);
		return false;
	}
	saved = ypath_key(ck, key);
	ok = yuint(ck, n, 1, 65535, out);
	ypath_pop(ck, saved);
	return ok;
}

struct range_nodes {
	const struct ynode *proto, *start, *end;
};

/* {start, end}: both required, start < end (the API's rule: one port is a number). */
static void range_check(struct ycheck *ck, const struct ynode *n, const struct range_nodes *x,
			struct moat_port *out)
{
	unsigned long lo, hi;
	bool ok = num_at(ck, n, "start", x->start, &lo);

	if (!num_at(ck, n, "end", x->end, &hi) || !ok)
		return;
	if (lo >= hi)
		yerr(ck, x->end, "start %lu must be less than end %lu (for one port, write a number)",
		     lo, hi);
	out->port = lo;
	out->end_port = hi;
}

/* A named port: a valid IANA service name, for any protocol (proto 0). */
static int named_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	const char *s = ystr(ck, n), *why = s ? port_name_problem(s) : NULL;

	if (why)
		yerr(ck, n, "invalid port name \"%s\": %s", s, why);
	if (!s || why)
		return 0;
	out->proto = 0;
	out->name = arena_strdup(ck->arena, s);
	return out->name ? 0 : -ENOMEM;
}

static const struct yfield range_fields[] = {
	YKEEP("start", struct range_nodes, start),
	YKEEP("end", struct range_nodes, end),
};

/* destinationPort: exactly one of number and range. */
static int dport_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	static const char *const names[] = { "number", "range" };
	static const struct yfield fields[] = {
		YKEEP("number", struct yone_nodes, v[0]), YKEEP("range", struct yone_nodes, v[1]),
	};
	struct yone_nodes x = { { NULL } };
	struct range_nodes r = { 0 };
	unsigned long v;
	int ret = ywalk_map(ck, n, fields, 2, &x), which;

	if (ret < 0 || n->type != YNODE_MAP || (which = yone(ck, n, "destinationPort", x.v, names, 2)) < 0)
		return ret;
	if (which == 0 && num_at(ck, n, "number", x.v[0], &v))
		out->port = out->end_port = v;
	if (which == 1 && !(ret = ywalk_map_at(ck, "range", x.v[1], range_fields, 2, &r)) &&
	    x.v[1]->type == YNODE_MAP) {
		size_t saved = ypath_key(ck, "range");

		range_check(ck, x.v[1], &r, out);
		ypath_pop(ck, saved);
	}
	return ret;
}

/* tcp/udp/sctp: {destinationPort} (required: the API's MinProperties). */
static int l4_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	static const struct yfield fields[] = { YKEEP("destinationPort", struct yone_nodes, v[0]) };
	struct yone_nodes x = { { NULL } };
	int ret = ywalk_map(ck, n, fields, 1, &x);

	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	if (!x.v[0]) {
		yerr(ck, n, "destinationPort is required (every port: "
		     "destinationPort: {range: {start: 1, end: 65535}})");
		return 0;
	}
	return at_key(ck, "destinationPort", dport_check, x.v[0], out);
}

int port_protocol_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	static const char *const names[] = { "tcp", "udp", "sctp", "destinationNamedPort" };
	static const uint8_t l4[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	static const struct yfield fields[] = {
		YKEEP("tcp", struct yone_nodes, v[0]), YKEEP("udp", struct yone_nodes, v[1]),
		YKEEP("sctp", struct yone_nodes, v[2]), YKEEP("destinationNamedPort", struct yone_nodes, v[3]),
	};
	struct yone_nodes x = { { NULL } };
	int ret = ywalk_map(ck, n, fields, 4, &x), which;

	memset(out, 0, sizeof(*out));
	out->pos = (struct moat_pos){ ck->file, n->line, n->col };
	if (ret < 0 || n->type != YNODE_MAP || (which = yone(ck, n, "a protocol", x.v, names, 4)) < 0)
		return ret;
	if (which == 3)
		return at_key(ck, names[3], named_check, x.v[3], out);
	out->proto = l4[which];
	return at_key(ck, names[which], l4_check, x.v[which], out);
}

static const struct yfield pnum_fields[] = {
	YKEEP("protocol", struct range_nodes, proto),
	YKEEP("port", struct range_nodes, start),
};

static const struct yfield prange_fields[] = {
	YKEEP("protocol", struct range_nodes, proto),
	YKEEP("start", struct range_nodes, start),
	YKEEP("end", struct range_nodes, end),
};

/* portNumber {protocol, port} or portRange {protocol, start, end}; protocol TCP by default. */
static int v1_num_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out,
			bool range)
{
	struct range_nodes x = { 0 };
	unsigned long v;
	int ret = ywalk_map(ck, n, range ? prange_fields : pnum_fields, range ? 3 : 2, &x);

	if (ret < 0 || n->type != YNODE_MAP)
		return ret;
	out->proto = IPPROTO_TCP;
	if (x.proto)
		ret = at_key(ck, "protocol", proto_check, x.proto, out);
	if (range)
		range_check(ck, n, &x, out);
	else if (num_at(ck, n, "port", x.start, &v))
		out->port = out->end_port = v;
	return ret;
}

static int v1_number(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	return v1_num_check(ck, n, out, false);
}

static int v1_range(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	return v1_num_check(ck, n, out, true);
}

int port_v1alpha1_parse(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	static const char *const names[] = { "portNumber", "portRange", "namedPort" };
	static const port_check_fn fns[] = { v1_number, v1_range, named_check };
	static const struct yfield fields[] = {
		YKEEP("portNumber", struct yone_nodes, v[0]), YKEEP("portRange", struct yone_nodes, v[1]),
		YKEEP("namedPort", struct yone_nodes, v[2]),
	};
	struct yone_nodes x = { { NULL } };
	int ret = ywalk_map(ck, n, fields, 3, &x), which;

	memset(out, 0, sizeof(*out));
	out->pos = (struct moat_pos){ ck->file, n->line, n->col };
	if (ret < 0 || n->type != YNODE_MAP || (which = yone(ck, n, "a port", x.v, names, 3)) < 0)
		return ret;
	return at_key(ck, names[which], fns[which], x.v[which], out);
}
