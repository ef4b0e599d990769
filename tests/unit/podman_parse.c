/*
 * Podman's service through the Docker-compatible parsers (daemon/runtime/docker.h) and beside
 * them (podman.h): answers as Debian's podman 4.3.1 gives them (trimmed), against Docker's
 * where the two differ: /_ping's headers, a pod's containers, user-mode networks, network events.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/runtime/docker.h"
#include "../../daemon/runtime/podman.h"
#include "check.h"

static void test_version(void)
{
	static const char podman[] =
		"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nBuilder-Version: \r\n"
		"Libpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\n"
		"Content-Length: 2\r\n\r\n";
	static const char docker[] =
		"HTTP/1.1 200 OK\r\napi-version: 1.41\r\nDocker-Experimental: false\r\n"
		"server: Docker/20.10.24+dfsg1 (linux)\r\n\r\n";
	static const char *const bad[] = { "", "HTTP/1.1 200 OK\r\n\r\n",
					   "Server: nginx/1.2\r\n", "Server: Libpod/ (linux)\r\n",
					   "X-Server: Docker/1.0\r\n" };
	struct docker_version v = { 0 };

	CHECK(docker_version_parse(podman, strlen(podman), &v) == 0);
	CHECK_STR(v.name, "Podman Engine");
	CHECK_STR(v.version, "4.3.1");
	CHECK_STR(v.api, "1.41");
	CHECK(v.podman);
	CHECK(docker_version_parse(docker, strlen(docker), &v) == 0);
	CHECK_STR(v.name, "Docker Engine");
	CHECK_STR(v.version, "20.10.24+dfsg1");
	CHECK_STR(v.api, "1.41");
	CHECK(!v.podman);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(docker_version_parse(bad[i], strlen(bad[i]), &v) == -EBADMSG);
	CHECK(docker_version_parse(NULL, 0, &v) == -EBADMSG);
	CHECK_STR(v.version, "20.10.24+dfsg1");	/* untouched on failure */
}

/* A container of a pod: it joins the infra container's namespace, and Podman lists the
 * infra's network and address under it too (Docker lists none for container:X). */
static void test_pod_member(void)
{
	static const char s[] =
		"{\"Id\":\"63565d75c3e9\",\"Name\":\"/shop-db\",\"State\":{\"Status\":\"running\","
		"\"Running\":true,\"Pid\":17572,\"Health\":{\"Status\":\"\",\"FailingStreak\":0}},"
		"\"HostConfig\":{\"NetworkMode\":\"container:54b113e1817d8c63\"},"
		"\"Config\":{\"Labels\":{\"role\":\"db\",\"tier\":\"data\"}},"
		"\"NetworkSettings\":{\"SandboxKey\":\"/run/netns/netns-11b53dbb\",\"Networks\":"
		"{\"front\":{\"NetworkID\":\"front\",\"IPAddress\":\"10.219.1.10\",\"IPPrefixLen\":24,"
		"\"GlobalIPv6Address\":\"\",\"MacAddress\":\"06:9a:16:09:9a:9f\"}}}}";
	static const char libpod[] =
		"[{\"Id\":\"63565d75c3e9\",\"Names\":[\"shop-db\"],\"Pod\":\"41d93ba798fa\","
		"\"PodName\":\"shop\",\"IsInfra\":false}]";
	static const char infra[] = "[{\"Id\":\"54b1\",\"Pod\":\"41d93ba798fa\",\"PodName\":"
				    "\"shop\",\"IsInfra\":true}]";
	static const char *const none[] = { "[{\"Pod\":\"\",\"PodName\":\"\"}]",
					    "[{\"Id\":\"x\"}]", "[{\"Pod\":null}]" };
	static const char *const bad[] = { "[{\"Pod\":7}]", "[{\"Pod\":\"a\",\"PodName\":[]}]",
					   "[7]", "{}", "[" };
	struct docker_container *ct = NULL;
	struct podman_pod pod = { 0 };

	CHECK(docker_container_parse(s, strlen(s), &ct) == 0);
	CHECK(ct && ct->netmode == DOCKER_NETMODE_CONTAINER);
	CHECK_STR(ct ? ct->netmode_peer : NULL, "54b113e1817d8c63");
	CHECK(ct && ct->nnets == 1 && ct->nets[0].has_mac);
	docker_container_free(ct);
	CHECK(podman_pod_parse(libpod, strlen(libpod), &pod) == 0);
	CHECK_STR(pod.id, "41d93ba798fa");
	CHECK_STR(pod.name, "shop");
	CHECK(!pod.infra);
	podman_pod_clear(&pod);
	CHECK(podman_pod_parse(infra, strlen(infra), &pod) == 0 && pod.infra);
	podman_pod_clear(&pod);
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		CHECK(podman_pod_parse(none[i], strlen(none[i]), &pod) == 0);
		CHECK(!pod.id && !pod.name && !pod.infra);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(podman_pod_parse(bad[i], strlen(bad[i]), &pod) == -EBADMSG);
	CHECK(podman_pod_parse("[]", 2, &pod) == -ENOENT);
	CHECK(!pod.id);
}

/* A pod's own labels: the infra container's also carry its image's (io.buildah.version). */
static void test_pod_labels(void)
{
	static const char s[] = "{\"Id\":\"41d93ba798fa\",\"Name\":\"shop\",\"Labels\":"
				"{\"tier\":\"pod\",\"app\":\"shop\",\"n\":1},\"InfraContainerID\":\"54b1\"}";
	struct moat_labels l = { 0 };

	CHECK(podman_pod_labels_parse(s, strlen(s), &l) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.n == 2 ? l.v[0].key : NULL, "app");		/* sorted; 1 is no string */
	docker_labels_free(&l);
	CHECK(podman_pod_labels_parse("{}", 2, &l) == 0 && l.n == 0);
	CHECK(podman_pod_labels_parse("{\"Labels\":[]}", 13, &l) == -EBADMSG);
	CHECK(podman_pod_labels_parse("[]", 2, &l) == -EBADMSG);
}

static void test_user_netmodes(void)
{
	static const char *const user[] = { "slirp4netns", "pasta",
					    "slirp4netns:allow_host_loopback=true",
					    "pasta:-T,8080" };
	static const char *const not_user[] = { "slirp4netnsx", "pastaa", "bridge", "front" };
	char buf[256];
	struct docker_container *ct = NULL;

	for (size_t i = 0; i < sizeof(user) / sizeof(user[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"Id\":\"a\",\"HostConfig\":{\"NetworkMode\":\"%s\"},"
			 "\"NetworkSettings\":{\"Networks\":{}}}", user[i]);
		CHECK(docker_container_parse(buf, strlen(buf), &ct) == 0);
		CHECK(ct && ct->netmode == DOCKER_NETMODE_USER && ct->nnets == 0);
		CHECK_STR(ct ? ct->netmode_name : NULL, user[i]);
		docker_container_free(ct);
		ct = NULL;
	}
	for (size_t i = 0; i < sizeof(not_user) / sizeof(not_user[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"Id\":\"a\",\"HostConfig\":{\"NetworkMode\":\"%s\"}}",
			 not_user[i]);
		CHECK(docker_container_parse(buf, strlen(buf), &ct) == 0);
		CHECK(ct && ct->netmode == DOCKER_NETMODE_BRIDGE);
		docker_container_free(ct);
		ct = NULL;
	}
}

/* Podman's events: the container of a network event is the top-level id (Actor.ID too, but
 * Docker's Actor there is the network); stops are "die" on the wire, removals "remove". */
static void test_events(void)
{
	static const char connect[] =
		"{\"status\":\"connect\",\"id\":\"68a8b1d77f62\",\"Type\":\"network\",\"Action\":"
		"\"connect\",\"Actor\":{\"ID\":\"68a8b1d77f62\",\"Attributes\":{\"name\":\"api\","
		"\"podId\":\"\"}},\"scope\":\"local\",\"time\":1796173804}";
	static const char die[] =
		"{\"status\":\"die\",\"id\":\"68a8b1d77f62\",\"Type\":\"container\",\"Action\":\"die\","
		"\"Actor\":{\"ID\":\"68a8b1d77f62\",\"Attributes\":{\"name\":\"api2\"}}}";
	static const char removed[] =
		"{\"status\":\"remove\",\"Type\":\"container\",\"Action\":\"remove\","
		"\"Actor\":{\"ID\":\"16df535aa3f8\"}}";
	static const char *const ignored[] = {
		"{\"Type\":\"container\",\"Action\":\"sync\",\"Actor\":{\"ID\":\"68a8\"}}",
		"{\"Type\":\"container\",\"Action\":\"exec_start: sh\",\"Actor\":{\"ID\":\"68a8\"}}",
		"{\"Type\":\"container\",\"Action\":\"health_status\",\"Actor\":{\"ID\":\"68a8\"}}",
		"{\"Type\":\"network\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"9c1d\"}}",
	};
	struct docker_event ev = { 0 };

	CHECK(docker_event_parse(connect, strlen(connect), &ev) == 0);
	CHECK(ev.kind == DOCKER_EVENT_CONTAINER);
	CHECK_STR(ev.id, "68a8b1d77f62");
	CHECK_STR(ev.action, "connect");
	CHECK(docker_event_parse(die, strlen(die), &ev) == 0);
	CHECK_STR(ev.action, "die");
	CHECK(docker_event_parse(removed, strlen(removed), &ev) == 0);
	CHECK_STR(ev.id, "16df535aa3f8");
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		CHECK(docker_event_parse(ignored[i], strlen(ignored[i]), &ev) == -ENOENT);
	CHECK_STR(ev.action, "remove");		/* untouched */
}

/* Podman's default network is "podman" in an inspect and "bridge" in /networks: the subnets
 * come from /networks, whatever the names. */
static void test_networks(void)
{
	static const char s[] =
		"[{\"Name\":\"front\",\"Id\":\"0932bc63\",\"Driver\":\"bridge\",\"EnableIPv6\":false,"
		"\"IPAM\":{\"Driver\":\"default\",\"Options\":{\"driver\":\"host-local\"},\"Config\":"
		"[{\"Subnet\":\"10.219.1.0/24\",\"Gateway\":\"10.219.1.1\"}]},\"Internal\":false},"
		"{\"Name\":\"bridge\",\"Id\":\"2f259bab\",\"Driver\":\"bridge\",\"IPAM\":{\"Config\":"
		"[{\"Subnet\":\"10.88.0.0/16\",\"Gateway\":\"10.88.0.1\"}]}}]";
	struct docker_network_list *l = NULL;

	CHECK(docker_network_list_parse(s, strlen(s), &l) == 0);
	CHECK(l && l->n == 2 && l->v[0].nsubnets == 1 && l->v[1].nsubnets == 1);
	CHECK(l && l->v[1].subnets[0].plen == 16 && l->v[1].subnets[0].addr[0] == 10);
	docker_network_list_free(l);
}

int main(void)
{
	test_version();
	test_pod_member();
	test_pod_labels();
	test_user_netmodes();
	test_events();
	test_networks();
	return check_done();
}
