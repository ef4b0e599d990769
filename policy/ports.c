/* Ports: NetworkPolicy's {protocol, port, endPort} and named ports. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "ports.h"

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

/* A plain number is a port number; anything else is a port name (Kubernetes' IntOrString). */
static int port_check(struct ycheck *ck, const struct ynode *n, struct moat_port *out)
{
	unsigned long v;
	const char *s, *why;

	if (n->type == YNODE_SCALAR && n->plain && n->len && strspn(n->str, "-0123456789") == n->len) {
		if (yuint(ck, n, 1, 65535, &v))
			out->port = out->end_port = v;
		return 0;
	}
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
