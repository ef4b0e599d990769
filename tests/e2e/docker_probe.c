/*
 * docker_probe - drives daemon/runtime/docker.c and daemon/runtime/netns.c the way moatd does, for the e2e
 * tests. Run it in the namespace dockerd runs in (the host veths are looked up there).
 *
 *   docker_probe [--runtime URL]               every running container and every network, as
 *                                              one JSON object on stdout
 *   docker_probe [--runtime URL] --watch SECS  watcher records, one per line, for SECS seconds:
 *                                              "RESYNC", "DOWN", "CONTAINER <action> <id>"
 *
 * URL defaults to $DOCKER_HOST. Exits 0, or 1 with a message on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../daemon/runtime/docker.h"
#include "../../daemon/runtime/netns.h"

static const char *const netmode_names[] = {
	[DOCKER_NETMODE_BRIDGE] = "bridge",
	[DOCKER_NETMODE_HOST] = "host",
	[DOCKER_NETMODE_CONTAINER] = "container",
	[DOCKER_NETMODE_NONE] = "none",
};

static json_t *addr_json(const struct moat_addr *a, int plen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n;

	if (!a->family || !inet_ntop(a->family, a->a, buf, INET6_ADDRSTRLEN))
		return json_null();
	n = strlen(buf);
	if (plen >= 0)
		snprintf(buf + n, sizeof(buf) - n, "/%d", plen);
	return json_string(buf);
}

static json_t *mac_json(const uint8_t m[6])
{
	char buf[18];

	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		 m[5]);
	return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *iface_json(const struct netns_iface *it)
{
	json_t *addrs = json_array();
	size_t i;

	for (i = 0; i < it->naddrs; i++)
		json_array_append_new(addrs, addr_json(&it->addrs[i], it->plens[i]));
	return json_pack("{s:s,s:i,s:s,s:o,s:b,s:i,s:o,s:o,s:o}", "name", it->name,
			 "ifindex", it->ifindex, "kind", it->kind, "mac", mac_json(it->mac),
			 "up", it->up, "peer_ifindex", it->peer_ifindex,
			 "host_veth", str_or_null(it->host_name),
			 "bridge", str_or_null(it->master_name), "addrs", addrs);
}

static json_t *attach_json(const struct docker_attach *a, const struct netns_ifaces *ifs)
{
	const struct netns_iface *it = ifs && a->has_mac ? netns_ifaces_find_mac(ifs, a->mac) :
				       NULL;

	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "name", a->network,
			 "id", str_or_null(a->network_id),
			 "ipv4", addr_json(&a->ipv4, -1), "ipv6", addr_json(&a->ipv6, -1),
			 "mac", a->has_mac ? mac_json(a->mac) : json_null(),
			 "iface", str_or_null(it ? it->name : NULL),
			 "host_veth", str_or_null(it ? it->host_name : NULL),
			 "bridge", str_or_null(it ? it->master_name : NULL));
}

static json_t *container_json(const struct docker_container *ct)
{
	struct netns_ifaces *ifs = NULL;
	json_t *o, *labels = json_object(), *nets = json_array(), *ifaces = json_array();
	int err = 0;
	size_t i;

	for (i = 0; i < ct->labels.n; i++)
		json_object_set_new(labels, ct->labels.v[i].key, json_string(ct->labels.v[i].value));
	if (ct->pid > 0 && ct->netmode != DOCKER_NETMODE_HOST)
		err = netns_ifaces_load(ct->pid, &ifs);
	for (i = 0; ifs && i < ifs->n; i++)
		json_array_append_new(ifaces, iface_json(&ifs->v[i]));
	for (i = 0; i < ct->nnets; i++)
		json_array_append_new(nets, attach_json(&ct->nets[i], ifs));
	o = json_pack("{s:s,s:s,s:o,s:i,s:b,s:s,s:o,s:o,s:o,s:o,s:o}", "id", ct->id,
		      "name", ct->name, "labels", labels, "pid", ct->pid, "running", ct->running,
		      "network_mode", netmode_names[ct->netmode],
		      "network_mode_name", str_or_null(ct->netmode_name),
		      "network_mode_peer", str_or_null(ct->netmode_peer),
		      "networks", nets, "ifaces", ifaces,
		      "netns_error", err ? json_string(strerror(-err)) : json_null());
	netns_ifaces_free(ifs);
	return o;
}

static json_t *network_json(const struct docker_network *n)
{
	json_t *subnets = json_array();
	struct moat_addr a;
	size_t i;

	for (i = 0; i < n->nsubnets; i++) {
		a.family = n->subnets[i].family;
		memcpy(a.a, n->subnets[i].addr, 16);
		json_array_append_new(subnets, addr_json(&a, n->subnets[i].plen));
	}
	return json_pack("{s:s,s:s,s:o,s:b,s:b,s:o}", "id", n->id, "name", n->name,
			 "driver", str_or_null(n->driver), "ipv6", n->ipv6,
			 "internal", n->internal, "subnets", subnets);
}

static int list_main(struct docker_client *c)
{
	struct docker_network_list *nl = NULL;
	struct docker_container *ct;
	struct docker_id_list *ids = NULL;
	json_t *out = json_pack("{s:[],s:[]}", "containers", "networks");
	size_t i;
	int ret;

	ret = docker_container_list(c, &ids);
	if (!ret)
		ret = docker_network_list(c, &nl);
	if (ret) {
		fprintf(stderr, "docker_probe: %s: %s\n", docker_client_socket(c), strerror(-ret));
		goto out;
	}
	for (i = 0; i < ids->n; i++) {
		ret = docker_container_inspect(c, ids->v[i], &ct);
		if (ret == -ENOENT)
			continue;	/* gone since the list: fine */
		if (ret) {
			fprintf(stderr, "docker_probe: inspect %s: %s\n", ids->v[i], strerror(-ret));
			goto out;
		}
		json_array_append_new(json_object_get(out, "containers"), container_json(ct));
		docker_container_free(ct);
	}
	for (i = 0; i < nl->n; i++)
		json_array_append_new(json_object_get(out, "networks"), network_json(&nl->v[i]));
	json_dumpf(out, stdout, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	putchar('\n');
out:
	json_decref(out);
	docker_id_list_free(ids);
	docker_network_list_free(nl);
	return ret ? 1 : 0;
}

static void event_print(const struct docker_event *ev)
{
	switch (ev->kind) {
	case DOCKER_EVENT_RESYNC:
		printf("RESYNC\n");
		break;
	case DOCKER_EVENT_DOWN:
		printf("DOWN\n");
		break;
	case DOCKER_EVENT_CONTAINER:
		printf("CONTAINER %s %s\n", ev->action, ev->id);
		break;
	default:
		printf("UNKNOWN %d\n", ev->kind);
	}
	fflush(stdout);
}

static int watch_main(struct docker_client *c, int secs)
{
	struct docker_watch *w;
	struct docker_event ev;
	struct timespec t0, t;
	struct pollfd pfd;
	long left;
	int ret;

	ret = docker_watch_start(c, &w);
	if (ret) {
		fprintf(stderr, "docker_probe: watch: %s\n", strerror(-ret));
		return 1;
	}
	pfd.fd = docker_watch_fd(w);
	pfd.events = POLLIN;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = secs * 1000L - ((t.tv_sec - t0.tv_sec) * 1000L +
				       (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		while (!(ret = docker_watch_read(w, &ev)))
			event_print(&ev);
		if (ret != -EAGAIN) {
			fprintf(stderr, "docker_probe: watch read: %s\n", strerror(-ret));
			break;
		}
	}
	docker_watch_stop(w);
	return ret && ret != -EAGAIN ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runtime", required_argument, NULL, 'r' },
		{ "watch", required_argument, NULL, 'w' },
		{ 0 },
	};
	const char *url = getenv("DOCKER_HOST");
	struct docker_client *c;
	int opt, watch = -1, ret;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'r')
			url = optarg;
		else if (opt == 'w')
			watch = atoi(optarg);
		else
			return 1;
	}
	if (!url)
		url = "unix:///var/run/docker.sock";
	ret = docker_client_new(url, &c);
	if (ret) {
		fprintf(stderr, "docker_probe: %s: %s\n", url, strerror(-ret));
		return 1;
	}
	ret = watch >= 0 ? watch_main(c, watch) : list_main(c);
	docker_client_free(c);
	return ret;
}
