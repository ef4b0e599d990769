/* Flow queries (filters from a control request) and flows as JSON. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "capture.h"
#include "flow_query.h"
#include "moat/proto.h"

#define MAX_LABELS 128

static const char *const verdict_names[FLOW_NVERDICTS] = {
	[FLOW_ALLOWED] = "allowed",
	[FLOW_DENIED] = "denied",
	[FLOW_VIOLATION] = "violation",
};

const char *flow_verdict_name(unsigned verdict)
{
	return verdict < FLOW_NVERDICTS ? verdict_names[verdict] : "?";
}

const char *flow_proto_name(uint8_t proto, char *buf)
{
	const char *name = moat_proto_name(proto);

	if (name)
		return name;
	snprintf(buf, 8, "%u", proto);
	return buf;
}

const char *flow_time_iso(int64_t ms, char *buf)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + 19, 13, ".%03dZ", (int)(ms % 1000));
	return buf;
}

/* ---- filters ---- */

/* "10.0.0.0/8", "10.0.0.5" (a /32), else a label selector. */
static int side_parse(const char *text, struct flow_side_filter *f, char *err, size_t errlen)
{
	struct moat_addr a;

	if (moat_cidr_parse(text, &f->net) == 0) {
		f->is_net = true;
		return 0;
	}
	if (moat_addr_parse(text, &a) == 0) {
		f->is_net = true;
		f->net = (struct moat_cidr){ .family = a.family, .plen = a.family == AF_INET ? 32 : 128 };
		memcpy(f->net.addr, a.a, sizeof(f->net.addr));
		return 0;
	}
	return moat_selector_text_parse(text, &f->sel, err, errlen);
}

static int verdict_parse(const char *s, unsigned *bits)
{
	for (unsigned v = 0; v < FLOW_NVERDICTS; v++)
		if (!strcmp(s, verdict_names[v])) {
			*bits |= 1u << v;
			return 0;
		}
	return -EINVAL;
}

static int sides_parse(json_t *req, struct flow_query *q, char *err, size_t errlen)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *to = json_string_value(json_object_get(req, "to"));
	char why[256] = "";
	int ret = 0;

	if (from && (ret = side_parse(from, &q->from, why, sizeof(why))))
		snprintf(err, errlen, "--from %s: %s", from, why);
	if (!ret && to && (ret = side_parse(to, &q->to, why, sizeof(why))))
		snprintf(err, errlen, "--to %s: %s", to, why);
	return ret;
}

int flow_query_parse(json_t *req, int64_t now_ms, struct flow_query *q, char *err,
		     size_t errlen)
{
	const char *port = json_string_value(json_object_get(req, "port"));
	const char *verdict = json_string_value(json_object_get(req, "verdict"));
	json_t *since = json_object_get(req, "since_ms"), *limit = json_object_get(req, "limit");
	int ret;

	memset(q, 0, sizeof(*q));
	ret = sides_parse(req, q, err, errlen);
	if (!ret && port && (q->has_port = true) && moat_port_arg_parse(port, &q->port) < 0) {
		snprintf(err, errlen, "--port %s: expected 80, 80/tcp, 53/udp or icmp", port);
		ret = -EINVAL;
	}
	if (!ret && verdict && verdict_parse(verdict, &q->verdicts) < 0) {
		snprintf(err, errlen, "--verdict %s: expected allowed, denied or violation", verdict);
		ret = -EINVAL;
	}
	if (!ret && json_is_integer(since) && json_integer_value(since) > 0)
		q->since_ms = now_ms - json_integer_value(since);
	if (!ret && json_is_integer(limit) && json_integer_value(limit) > 0)
		q->limit = (size_t)json_integer_value(limit);
	return ret;
}

void flow_query_fini(struct flow_query *q)
{
	moat_selector_text_free(q->from.sel);
	moat_selector_text_free(q->to.sel);
	q->from.sel = q->to.sel = NULL;
}

/* An endpoint's labels (a JSON object in its name's meta) as sorted moat_labels. */
static bool labels_of(const struct names *names, uint32_t id, struct moat_label *buf,
		      struct moat_labels *out)
{
	json_t *labels = json_object_get(names_meta(names, id), "labels"), *v;
	const char *k;

	out->v = buf, out->n = 0;
	if (!json_is_object(labels))
		return false;
	json_object_foreach(labels, k, v) {
		if (out->n == MAX_LABELS || !json_is_string(v))
			continue;
		buf[out->n++] = (struct moat_label){ (char *)k, (char *)json_string_value(v) };
	}
	moat_labels_sort(out);
	return true;
}

static bool addr_in(const struct moat_cidr *net, const struct moat_addr *a)
{
	struct moat_cidr host = { .family = a->family, .plen = a->family == AF_INET ? 32 : 128 };

	memcpy(host.addr, a->a, sizeof(host.addr));
	return moat_cidr_contains(net, &host);
}

static bool side_match(const struct flow_side_filter *f, const struct flow_peer *p,
		       const struct moat_addr *seen, const struct names *names)
{
	struct moat_label buf[MAX_LABELS];
	struct moat_labels labels;

	if (f->is_net)
		return addr_in(&f->net, seen);
	if (!f->sel)
		return true;
	return p->name && labels_of(names, p->name, buf, &labels) &&
	       moat_selector_match(&f->sel->sel, &labels);
}

bool flow_query_match(const struct flow_query *q, const struct flow *f,
		      const struct names *names)
{
	if (q->since_ms && f->last_ms < q->since_ms)
		return false;
	if (q->verdicts && !(q->verdicts & (1u << f->verdict)))
		return false;
	if (q->has_port && (f->key.proto != q->port.proto || f->key.port != q->port.port))
		return false;
	return side_match(&q->from, &f->key.src, &f->saddr, names) &&
	       side_match(&q->to, &f->key.dst, &f->daddr, names);
}

/* ---- JSON ---- */

json_t *flow_peer_json(const struct flow_peer *p, const struct moat_addr *seen,
		       const struct names *names)
{
	char ip[64];
	json_t *meta = names_meta(names, p->name), *o;

	moat_addr_format(seen, ip, sizeof(ip));
	if (!p->name)
		return json_pack("{s:n,s:s}", "name", "ip", ip);
	o = json_pack("{s:s,s:s}", "name", names_str(names, p->name), "ip", ip);
	if (o && meta) {
		json_object_set(o, "group", json_object_get(meta, "group"));
		json_object_set(o, "labels", json_object_get(meta, "labels"));
	}
	return o;
}

json_t *flow_json(const struct flow *f, const struct names *names)
{
	char first[32], last[32], pbuf[8];

	return json_pack("{s:s,s:s,s:I,s:I,s:o,s:o,s:s,s:i,s:s,s:o,s:s,s:I}", "first",
			 flow_time_iso(f->first_ms, first), "last", flow_time_iso(f->last_ms, last),
			 "first_ms", (json_int_t)f->first_ms, "last_ms", (json_int_t)f->last_ms,
			 "from", flow_peer_json(&f->key.src, &f->saddr, names), "to",
			 flow_peer_json(&f->key.dst, &f->daddr, names), "proto",
			 flow_proto_name(f->key.proto, pbuf), "port", (int)f->key.port, "verdict",
			 flow_verdict_name(f->verdict), "policy",
			 f->policy ? json_string(names_str(names, f->policy)) : json_null(), "reason",
			 capture_kind_name(f->kind), "count", (json_int_t)f->count);
}
