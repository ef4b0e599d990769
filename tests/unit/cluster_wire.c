/*
 * What Moat keeps in etcd (daemon/cluster/wire.h) and what etcd's JSON gateway answers
 * (daemon/cluster/etcd.h): keys both ways, an endpoint through encode and decode, hostile
 * values refused for what they are, 64-bit numbers as strings, fields left out as defaults,
 * base64 keys and values, a compaction's cancel, and the policy set as files.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/cluster/etcd.h"
#include "../../daemon/cluster/wire.h"
#include "check.h"

#define P WIRE_DEFAULT_PREFIX

static void test_keys(void)
{
	struct wire_key k, back = { .kind = WIRE_KEY_ENDPOINT };
	char buf[1024];
	const char *bad[] = { P "endpoints/n1/default", P "endpoints/n1/ns/a/b", P "nodes/",
			      P "nodes/-x", P "nodes/a/b", P "endpoints//ns/x", "/other/nodes/a",
			      P "policiesx", P "alive/a b" };

	CHECK(!wire_key_parse(P, P "endpoints/node-1/prod/web", strlen(P "endpoints/node-1/prod/web"), &k));
	CHECK(k.kind == WIRE_KEY_ENDPOINT);
	CHECK_STR(k.node, "node-1");
	CHECK_STR(k.ns, "prod");
	CHECK_STR(k.name, "web");
	CHECK(!wire_key_format(P, &k, buf, sizeof(buf)));
	CHECK_STR(buf, P "endpoints/node-1/prod/web");
	CHECK(!wire_key_parse(P, P "policies", strlen(P "policies"), &k) && k.kind == WIRE_KEY_POLICIES);
	CHECK(!wire_key_parse(P, P "alive/n.2", strlen(P "alive/n.2"), &k) && k.kind == WIRE_KEY_ALIVE);
	CHECK_STR(k.node, "n.2");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(wire_key_parse(P, bad[i], strlen(bad[i]), &k) == -EINVAL);
	/* a NUL inside a key is not a name */
	CHECK(wire_key_parse(P, P "nodes/a\0b", strlen(P "nodes/a") + 2, &k) == -EINVAL);
	strcpy(back.node, "n1"), strcpy(back.ns, "a/b"), strcpy(back.name, "x");
	CHECK(wire_key_format(P, &back, buf, sizeof(buf)) == -EINVAL);
	CHECK(wire_name_ok("node-1.example") && !wire_name_ok("") && !wire_name_ok("a/b") &&
	      !wire_name_ok(".x"));
}

static void test_endpoint_roundtrip(void)
{
	struct moat_label labels[] = { { "app", "api" }, { "tier", "back" } };
	struct moat_addr ips[2];
	struct moat_named_port ports[] = { { "http", IPPROTO_TCP, 8080 }, { "dns", IPPROTO_UDP, 53 } };
	struct moat_endpoint e = { .name = "api", .namespace = "prod", .labels = { labels, 2 },
				   .ips = ips, .nips = 2, .ports = ports, .nports = 2 };
	struct wire_key k = { .kind = WIRE_KEY_ENDPOINT, "n2", "prod", "api" };
	struct wire_endpoint w;
	char err[256], *v;

	moat_addr_parse("10.1.2.3", &ips[0]);
	moat_addr_parse("fd00::3", &ips[1]);
	v = wire_endpoint_encode(&e, err, sizeof(err));
	CHECK(v != NULL);
	CHECK(v && !wire_endpoint_decode(&k, v, strlen(v), &w, err, sizeof(err)));
	CHECK_STR(w.e.name, "api@n2");
	CHECK_STR(w.e.node, "n2");
	CHECK_STR(w.e.namespace, "prod");
	CHECK(w.e.labels.n == 2 && !strcmp(w.e.labels.v[1].value, "back"));
	CHECK(w.e.nips == 2 && !moat_addr_cmp(&w.e.ips[1], &ips[1]));
	CHECK(w.e.nports == 2);
	for (size_t i = 0; i < w.e.nports; i++)
		CHECK((!strcmp(w.e.ports[i].name, "http") && w.e.ports[i].port == 8080 &&
		       w.e.ports[i].proto == IPPROTO_TCP) ||
		      (!strcmp(w.e.ports[i].name, "dns") && w.e.ports[i].port == 53 &&
		       w.e.ports[i].proto == IPPROTO_UDP));
	CHECK(!w.e.nifaces && !w.e.host_network);
	wire_endpoint_free(&w);
	/* the key says the name: a value that says another is refused */
	strcpy(k.name, "db");
	CHECK(v && wire_endpoint_decode(&k, v, strlen(v), &w, err, sizeof(err)) == -EINVAL);
	free(v);
}

/* Each hostile or broken value is refused with words, never crashes. */
static void test_endpoint_hostile(void)
{
	struct wire_key k = { .kind = WIRE_KEY_ENDPOINT, "n2", "default", "x" };
	const char *bad[] = {
		"", "not json", "[]", "{\"name\":\"x\",\"namespace\":\"default\",\"labels\":[1]}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{\"a\":1}}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"ips\":\"10.0.0.1\"}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"ips\":[\"10.0.0.300\"]}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"ips\":[\"10.0.0.1\",\"10.0.0.1\"]}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"ports\":{\"h\":\"80/icmp\"}}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"ports\":{\"h\":\"0/tcp\"}}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"host_network\":\"yes\"}",
		"{\"name\":\"x\",\"namespace\":\"default\",\"name\":\"y\"}",
		"{\"name\":\"x\"}",
		"{\"name\":7,\"namespace\":\"default\"}",
	};
	struct wire_endpoint w;
	char err[256], *huge;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(wire_endpoint_decode(&k, bad[i], strlen(bad[i]), &w, err, sizeof(err)) == -EINVAL);
		CHECK(err[0] != '\0');
	}
	/* huge labels: more than WIRE_MAX_LABELS, and a value past WIRE_MAX_ENDPOINT bytes */
	huge = malloc(WIRE_MAX_ENDPOINT * 2);
	n += sprintf(huge, "{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{");
	for (int i = 0; i <= WIRE_MAX_LABELS; i++)
		n += sprintf(huge + n, "%s\"k%d\":\"v\"", i ? "," : "", i);
	n += sprintf(huge + n, "}}");
	CHECK(wire_endpoint_decode(&k, huge, n, &w, err, sizeof(err)) == -EINVAL);
	n = sprintf(huge, "{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{\"a\":\"");
	memset(huge + n, 'a', WIRE_MAX_ENDPOINT);
	n += WIRE_MAX_ENDPOINT;
	n += sprintf(huge + n, "\"}}");
	CHECK(wire_endpoint_decode(&k, huge, n, &w, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "bytes") != NULL);
	free(huge);
	/* absent fields are empty, not errors */
	huge = "{\"name\":\"x\",\"namespace\":\"default\"}";
	CHECK(!wire_endpoint_decode(&k, huge, strlen(huge), &w, err, sizeof(err)));
	CHECK(w.e.nips == 0 && w.e.labels.n == 0 && w.e.nports == 0);
	wire_endpoint_free(&w);
}

static void test_node_and_alive(void)
{
	struct moat_cidr sub[2];
	struct wire_node n = { .subnets = sub, .nsubnets = 2 }, back;
	struct wire_alive a = { .lease = 7587899292718248968, .ttl = 20, .heard_ms = 1700000000000,
				.policy_rev = 42, .endpoints = 3 }, b;
	char err[256], *v;

	strcpy(n.host, "h1");
	moat_cidr_parse("10.1.0.0/24", &sub[0]);
	moat_cidr_parse("fd00:1::/64", &sub[1]);
	v = wire_node_encode("n1", &n);
	CHECK(v && !wire_node_decode("n1", v, strlen(v), &back, err, sizeof(err)));
	CHECK(back.nsubnets == 2 && !memcmp(&back.subnets[1], &sub[1], sizeof(sub[1])));
	CHECK_STR(back.host, "h1");
	wire_node_free(&back);
	CHECK(v && wire_node_decode("n2", v, strlen(v), &back, err, sizeof(err)) == -EINVAL);
	free(v);
	v = "{\"node\":\"n1\",\"host\":\"h\",\"subnets\":[\"0.0.0.0/0\"]}";
	CHECK(wire_node_decode("n1", v, strlen(v), &back, err, sizeof(err)) == -EINVAL);
	strcpy(a.host, "h1");
	v = wire_alive_encode(&a);
	/* the lease goes as a string (64 bits), and comes back */
	CHECK(v && strstr(v, "\"7587899292718248968\""));
	CHECK(v && !wire_alive_decode(v, strlen(v), &b, err, sizeof(err)));
	CHECK(b.lease == a.lease && b.ttl == 20 && b.policy_rev == 42 && b.endpoints == 3);
	free(v);
	v = "{\"host\":\"h\",\"ttl\":\"x\"}";
	CHECK(wire_alive_decode(v, strlen(v), &b, err, sizeof(err)) == -EINVAL);
}

static void test_policies(void)
{
	struct moat_policy_file files[] = { { "a.yaml", "kind: Namespace\n", 16 } };
	struct moat_policy_files f = { files, 1 }, back;
	char err[256], *v = wire_policies_encode(&f, 123);

	CHECK(v && !wire_policies_decode(v, strlen(v), &back, err, sizeof(err)));
	CHECK(back.n == 1 && !strcmp(back.v[0].name, "a.yaml") && back.v[0].len == 16);
	moat_policy_files_free(&back);
	free(v);
	v = "{\"files\":[{\"name\":\"a\",\"text\":\"x\\u0000y\"}]}";
	CHECK(wire_policies_decode(v, strlen(v), &back, err, sizeof(err)) == -EINVAL);
	v = "{\"files\":{}}";
	CHECK(wire_policies_decode(v, strlen(v), &back, err, sizeof(err)) == -EINVAL);
}

/* The gateway's answers as etcd 3.4 writes them (taken from a real one). */
static void test_gateway(void)
{
	const char *range = "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
		"\"10276657743932975437\",\"revision\":\"9223372036854775806\",\"raft_term\":\"2\"},"
		"\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":"
		"\"1\",\"value\":\"YmFy\",\"lease\":\"7587899292718248968\"}],\"more\":true,\"count\":\"3\"}";
	const char *empty = "{\"header\":{\"revision\":\"2\"}}";
	const char *ev = "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":"
		"\"Zm9v\",\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":"
		"\"YmFy\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9w\",\"mod_revision\":\"5\"}}]}}";
	const char *compacted = "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,"
		"\"compact_revision\":\"2\"}}";
	const char *created = "{\"result\":{\"header\":{\"revision\":\"6\"},\"created\":true}}";
	const char *err = "{\"error\":{\"grpc_code\":11,\"http_code\":400,\"message\":\"etcdserver: "
		"mvcc: required revision has been compacted\",\"http_status\":\"Bad Request\"}}";
	const char *bad[] = { "{\"header\":{\"revision\":\"x\"}}", "{\"kvs\":[{\"key\":\"Zm9v!\"}]}",
			      "{\"kvs\":[{\"key\":\"Zm9v\",\"mod_revision\":[]}]}", "[]", "{\"kvs\":{}}",
			      "{\"kvs\":[{\"value\":\"YmFy\"}]}", "{\"more\":\"yes\"}" };
	struct etcd_kvs kvs = { 0 };
	struct etcd_watch_resp r;
	char *end;

	CHECK(!etcd_range_parse(range, strlen(range), &kvs));
	CHECK(kvs.revision == 9223372036854775806LL && kvs.n == 1 && kvs.more && kvs.count == 3);
	CHECK(kvs.n && kvs.v[0].klen == 3 && !strcmp(kvs.v[0].key, "foo") &&
	      !strcmp(kvs.v[0].value, "bar") && kvs.v[0].lease == 7587899292718248968LL);
	etcd_kvs_free(&kvs);
	/* absent kvs, count, more: an empty range */
	CHECK(!etcd_range_parse(empty, strlen(empty), &kvs) && kvs.n == 0 && !kvs.more &&
	      kvs.count == 0 && kvs.revision == 2);
	etcd_kvs_free(&kvs);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(etcd_range_parse(bad[i], strlen(bad[i]), &kvs) == -EBADMSG);
		etcd_kvs_free(&kvs);
	}
	CHECK(!etcd_watch_parse(ev, strlen(ev), &r));
	CHECK(r.n == 2 && r.v[0].kind == ETCD_EVENT_PUT && r.v[1].kind == ETCD_EVENT_DELETE);
	CHECK(r.n == 2 && r.v[1].kv.mod_rev == 5 && r.v[1].kv.vlen == 0 && !r.created);
	etcd_watch_resp_free(&r);
	CHECK(!etcd_watch_parse(compacted, strlen(compacted), &r));
	CHECK(r.canceled && r.compact_revision == 2 && r.revision == 0 && !r.n);
	etcd_watch_resp_free(&r);
	CHECK(!etcd_watch_parse(created, strlen(created), &r) && r.created && r.revision == 6);
	etcd_watch_resp_free(&r);
	CHECK(!etcd_watch_parse(err, strlen(err), &r) && r.error && strstr(r.error, "compacted"));
	etcd_watch_resp_free(&r);
	CHECK(etcd_watch_parse("{\"result\":{\"events\":[{\"type\":\"EXPIRE\"}]}}", 41, &r) ==
	      -EBADMSG);
	end = etcd_prefix_end("/moat/v1/");
	CHECK_STR(end, "/moat/v10");
	free(end);
	end = etcd_watch_body("/a", "/b", 7);
	CHECK(end && strstr(end, "\"start_revision\":\"7\"") && strstr(end, "\"L2E=\""));
	free(end);
}

int main(void)
{
	test_keys();
	test_endpoint_roundtrip();
	test_endpoint_hostile();
	test_node_and_alive();
	test_policies();
	test_gateway();
	return check_done();
}
