/*
 * The pure parsers of dockerd's answers (daemon/runtime/docker.h): fields of an inspect answer,
 * container network mode, the event records, the listing's sums (what the cheap resync
 * compares), and regressions found by tests/fuzz/inspect.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/runtime/docker.h"
#include "check.h"

static const char inspect[] =
	"{\"Id\":\"3f4e\",\"Name\":\"/shop-web-1\",\"State\":{\"Running\":true,\"Pid\":48213},"
	"\"HostConfig\":{\"NetworkMode\":\"shop_default\"},"
	"\"Config\":{\"Labels\":{\"z\":\"1\",\"app\":\"web\",\"n\":7}},"
	"\"NetworkSettings\":{\"Networks\":{\"shop_default\":{\"NetworkID\":\"9c1d\","
	"\"IPAddress\":\"172.18.0.2\",\"IPPrefixLen\":16,\"GlobalIPv6Address\":\"fd00::2\","
	"\"MacAddress\":\"02:42:ac:12:00:02\"},\"a_net\":{\"IPAddress\":\"\",\"MacAddress\":\"x\"}}}}";

static void test_inspect(void)
{
	struct docker_container *ct = NULL;

	CHECK(docker_container_parse(inspect, strlen(inspect), &ct) == 0);
	if (!ct)
		return;
	CHECK_STR(ct->id, "3f4e");
	CHECK_STR(ct->name, "shop-web-1");
	CHECK(ct->running && ct->pid == 48213);
	CHECK(ct->netmode == DOCKER_NETMODE_BRIDGE && !ct->netmode_peer);
	CHECK(ct->labels.n == 2);	/* the number label is not a string: left out */
	CHECK_STR(ct->labels.v[0].key, "app");
	CHECK(ct->nnets == 2);
	CHECK_STR(ct->nets[0].network, "a_net");	/* sorted by name */
	CHECK(ct->nets[0].ipv4.family == 0 && !ct->nets[0].has_mac);
	CHECK(ct->nets[1].ipv4.family == AF_INET && ct->nets[1].ipv4_plen == 16);
	CHECK(ct->nets[1].ipv6.family == AF_INET6 && ct->nets[1].has_mac);
	CHECK(ct->nets[1].mac[5] == 2);
	docker_container_free(ct);
}

static void test_refused(void)
{
	static const char *const bad[] = { "", "{", "[]", "{\"Id\":7}", "{\"Name\":\"/x\"}",
					   "{\"Id\":\"a\",\"NetworkSettings\":{\"Networks\":"
					   "{\"n\":{\"IPAddress\":\"300.1.1.1\"}}}}" };
	struct docker_container *ct = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(docker_container_parse(bad[i], strlen(bad[i]), &ct) == -EBADMSG);
	CHECK(ct == NULL);
	CHECK(docker_container_parse(NULL, 0, &ct) == -EBADMSG);
}

static void test_container_mode(void)
{
	static const char s[] = "{\"Id\":\"b\",\"HostConfig\":{\"NetworkMode\":\"container:web\"}}";
	struct docker_container *ct = NULL;

	CHECK(docker_container_parse(s, strlen(s), &ct) == 0);
	CHECK(ct && ct->netmode == DOCKER_NETMODE_CONTAINER);
	CHECK_STR(ct ? ct->netmode_peer : NULL, "web");
	CHECK(ct && !ct->running && ct->pid == 0);
	docker_container_free(ct);
}

/* Regression: an empty network list was -ENOMEM, and the list it still handed out leaked. */
static void test_networks(void)
{
	static const char two[] = "[{\"Id\":\"1\",\"Name\":\"b\",\"IPAM\":{\"Config\":"
				  "[{\"Subnet\":\"10.1.2.3/16\"},{\"Gateway\":\"x\"}]}},"
				  "{\"Id\":\"2\",\"Name\":\"host\",\"IPAM\":{\"Config\":[]}}]";
	static const char bad[] = "[{\"Id\":\"1\",\"Name\":\"b\",\"IPAM\":{\"Config\":"
				  "[{\"Subnet\":\"10.1.2.3/33\"}]}}]";
	struct docker_network_list *l = NULL;

	CHECK(docker_network_list_parse("[]", 2, &l) == 0);
	CHECK(l && l->n == 0);
	docker_network_list_free(l);
	l = NULL;
	CHECK(docker_network_list_parse(two, strlen(two), &l) == 0);
	CHECK(l && l->n == 2 && l->v[0].nsubnets == 1 && l->v[0].subnets[0].plen == 16);
	CHECK(l && l->v[0].subnets[0].addr[2] == 0);	/* host bits cleared */
	docker_network_list_free(l);
	CHECK(docker_network_list_parse(bad, strlen(bad), &l) == -EBADMSG);
}

/* The ports the node publishes, as bound: each once whatever the host address, sorted. */
static void test_published(void)
{
	static const char s[] =
		"{\"Id\":\"p\",\"NetworkSettings\":{\"Ports\":{"
		"\"81/tcp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"15432\"},"
		"{\"HostIp\":\"::\",\"HostPort\":\"15432\"}],"
		"\"53/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"5353\"}],"
		"\"9000/tcp\":null,\"70/sctp\":[{\"HostPort\":\"7070\"}],"
		"\"bad\":[{\"HostPort\":\"1\"}],\"99/icmp\":[{\"HostPort\":\"2\"}],"
		"\"98/tcp\":[{\"HostPort\":\"70000\"},{\"HostPort\":\"x\"},{}],\"97/tcp\":7}}}";
	struct docker_container *ct = NULL;

	CHECK(docker_container_parse(s, strlen(s), &ct) == 0);
	CHECK(ct && ct->npublished == 3);
	if (!ct || ct->npublished != 3)
		goto out;
	CHECK(ct->published[0].proto == IPPROTO_TCP && ct->published[0].host_port == 15432 &&
	      ct->published[0].port == 81);
	CHECK(ct->published[1].proto == IPPROTO_UDP && ct->published[1].host_port == 5353 &&
	      ct->published[1].port == 53);
	CHECK(ct->published[2].proto == IPPROTO_SCTP && ct->published[2].host_port == 7070);
out:
	docker_container_free(ct);
}

static void test_events(void)
{
	static const char start[] = "{\"Type\":\"container\",\"Action\":\"start\","
				    "\"Actor\":{\"ID\":\"3f4e\"}}";
	static const char conn[] = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":"
				   "{\"ID\":\"9c1d\",\"Attributes\":{\"container\":\"3f4e\"}}}";
	static const char image[] = "{\"Type\":\"image\",\"Action\":\"pull\",\"Actor\":{\"ID\":\"x\"}}";
	struct docker_event ev = { 0 };

	CHECK(docker_event_parse(start, strlen(start), &ev) == 0);
	CHECK(ev.kind == DOCKER_EVENT_CONTAINER);
	CHECK_STR(ev.id, "3f4e");
	CHECK_STR(ev.action, "start");
	CHECK(docker_event_parse(conn, strlen(conn), &ev) == 0);
	CHECK_STR(ev.action, "connect");
	CHECK(docker_event_parse(image, strlen(image), &ev) == -ENOENT);
	CHECK(docker_event_parse("{\"Type\":", 8, &ev) == -EBADMSG);
	CHECK_STR(ev.action, "connect");	/* untouched on failure */
}

/* One listing of two containers: a's entry with status, label and endpoint as given (and
 * its Ports in another order when it has been up for hours). */
static struct docker_id_list *listing(const char *status, const char *label, const char *ep)
{
	char json[1024];
	struct docker_id_list *l = NULL;

	snprintf(json, sizeof(json),
		 "[{\"Id\":\"a1\",\"Status\":\"%s\",\"State\":\"running\",\"Ports\":[%s],"
		 "\"Labels\":{\"app\":\"%s\",\"tier\":\"x\"},\"NetworkSettings\":{\"Networks\":"
		 "{\"n\":{\"IPAddress\":\"10.0.0.2\",\"EndpointID\":\"%s\"}}}},"
		 "{\"Id\":\"b2\",\"Status\":\"Up 1 second\",\"Labels\":{}}]", status,
		 status[4] == '3' ? "{\"PrivatePort\":81},{\"PrivatePort\":80}" :
		 "{\"PrivatePort\":80},{\"PrivatePort\":81}", label, ep);
	CHECK(docker_id_list_parse(json, strlen(json), &l) == 0);
	return l;
}

/* Equal sums exactly when the listing says the same but for how long it has been up. */
static void test_listing_sums(void)
{
	struct docker_id_list *l[4] = {
		listing("Up 2 seconds", "web", "e1"), listing("Up 3 hours", "web", "e1"),
		listing("Up 2 seconds", "db", "e1"), listing("Up 2 seconds", "web", "e2"),
	};

	for (int i = 0; i < 4; i++)
		if (!l[i] || l[i]->n != 2)
			goto out;
	CHECK_STR(l[0]->v[0], "a1");
	CHECK(l[0]->sums[0] && l[0]->sums[0] != l[0]->sums[1]);
	CHECK(l[0]->sums[0] == l[1]->sums[0]);	/* only Status and the order of Ports differ */
	CHECK(l[0]->sums[0] != l[2]->sums[0]);	/* a label */
	CHECK(l[0]->sums[0] != l[3]->sums[0]);	/* a new endpoint: restarted */
	CHECK(l[0]->sums[1] == l[3]->sums[1]);	/* b as it was */
out:
	for (int i = 0; i < 4; i++)
		docker_id_list_free(l[i]);
}

int main(void)
{
	test_inspect();
	test_refused();
	test_container_mode();
	test_networks();
	test_published();
	test_events();
	test_listing_sums();
	return check_done();
}
