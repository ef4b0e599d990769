/*
 * Fuzzes every parser of what dockerd answers (daemon/runtime/docker.c, docker_watch.c): each input
 * goes through docker_container_parse (GET /containers/{id}/json), docker_id_list_parse
 * (GET /containers/json), docker_network_list_parse (GET /networks), docker_event_parse
 * (one /events line), docker_version_parse (GET /_ping's headers), podman_pod_parse (Podman's
 * GET /libpod/containers/json) and podman_pod_labels_parse (GET /libpod/pods/{id}/json).
 * Checks what the structs promise: ids and names present, labels sorted and unique, networks
 * sorted by name, a container-mode peer exactly in container mode, addresses of the family
 * they say, subnets with host bits clear, event records terminated, pods with an id.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/runtime/docker.h"
#include "../../daemon/runtime/podman.h"
#include "fuzz.h"

static void container_check(const struct docker_container *ct)
{
	FUZZ_CHECK(ct->id && ct->name && ct->name[0] != '/');
	for (size_t i = 0; i < ct->labels.n; i++)
		FUZZ_CHECK(i == 0 || strcmp(ct->labels.v[i - 1].key, ct->labels.v[i].key) < 0);
	FUZZ_CHECK((ct->netmode == DOCKER_NETMODE_CONTAINER) == (ct->netmode_peer != NULL));
	FUZZ_CHECK(ct->running || ct->pid == 0);
	for (size_t i = 0; i < ct->nnets; i++) {
		const struct docker_attach *a = &ct->nets[i];

		FUZZ_CHECK(a->network);
		FUZZ_CHECK(i == 0 || strcmp(ct->nets[i - 1].network, a->network) <= 0);
		FUZZ_CHECK(a->ipv4.family == 0 || a->ipv4.family == AF_INET);
		FUZZ_CHECK(a->ipv6.family == 0 || a->ipv6.family == AF_INET6);
	}
}

static void subnet_check(const struct moat_cidr *c)
{
	unsigned max = c->family == AF_INET ? 32 : 128;

	FUZZ_CHECK(c->family == AF_INET || c->family == AF_INET6);
	FUZZ_CHECK(c->plen <= max);
	for (unsigned i = c->plen; i < max; i++)
		FUZZ_CHECK(!(c->addr[i / 8] & (0x80 >> (i % 8))));
}

static void networks_check(const struct docker_network_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		FUZZ_CHECK(l->v[i].id && l->v[i].name);
		for (size_t k = 0; k < l->v[i].nsubnets; k++)
			subnet_check(&l->v[i].subnets[k]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct docker_container *ct = NULL;
	struct docker_id_list *ids = NULL;
	struct docker_network_list *nets = NULL;
	struct docker_event ev;
	struct docker_version v;
	struct podman_pod pod = { 0 };
	struct moat_labels labels = { 0 };
	int ret;

	ret = docker_container_parse(s, size, &ct);
	FUZZ_CHECK(ret == 0 ? ct != NULL : ret == -EBADMSG);
	if (ct)
		container_check(ct);
	docker_container_free(ct);

	ret = docker_id_list_parse(s, size, &ids);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG);
	for (size_t i = 0; !ret && i < ids->n; i++)
		FUZZ_CHECK(ids->v[i] != NULL);
	docker_id_list_free(ret ? NULL : ids);

	ret = docker_network_list_parse(s, size, &nets);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG);
	if (!ret)
		networks_check(nets);
	docker_network_list_free(ret ? NULL : nets);

	memset(&ev, 0xa5, sizeof(ev));
	ret = docker_event_parse(s, size, &ev);
	FUZZ_CHECK(ret == 0 || ret == -ENOENT || ret == -EBADMSG);
	if (!ret) {
		FUZZ_CHECK(ev.kind == DOCKER_EVENT_CONTAINER);
		FUZZ_CHECK(memchr(ev.id, 0, sizeof(ev.id)) && ev.id[0]);
		FUZZ_CHECK(memchr(ev.action, 0, sizeof(ev.action)));
	}

	ret = docker_version_parse(s, size, &v);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG);
	if (!ret)
		FUZZ_CHECK(memchr(v.name, 0, sizeof(v.name)) && v.name[0] &&
			   memchr(v.version, 0, sizeof(v.version)) && memchr(v.api, 0, sizeof(v.api)));

	ret = podman_pod_parse(s, size, &pod);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG || ret == -ENOENT);
	FUZZ_CHECK(!pod.id || (!ret && pod.id[0] && pod.name));
	FUZZ_CHECK(pod.id || (!pod.name && !pod.infra));
	podman_pod_clear(&pod);

	ret = podman_pod_labels_parse(s, size, &labels);
	FUZZ_CHECK(ret == 0 || ret == -EBADMSG);
	for (size_t i = 1; !ret && i < labels.n; i++)
		FUZZ_CHECK(strcmp(labels.v[i - 1].key, labels.v[i].key) < 0);
	if (!ret)
		docker_labels_free(&labels);
	return 0;
}
