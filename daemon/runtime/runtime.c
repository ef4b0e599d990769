/*
 * The runtime room (runtime.h): the container table and the runtime's networks, turned into
 * the store's runtime source.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "containers.h"
#include "docker.h"
#include "log.h"
#include "podman.h"
#include "runtime.h"

struct runtime {
	const struct config *cfg;
	struct epstore *store;
	runtime_changed_fn changed;
	void *data;
	struct docker_client *docker;
	struct docker_watch *watch;
	struct containers *table;
	struct docker_version version;	/* what the runtime said it is at the last listing */
	struct moat_cidr *subnets;	/* as last listed */
	size_t nsubnets;
	bool synced, up;
};

int runtime_new(const struct config *cfg, struct epstore *store, runtime_changed_fn changed,
		void *data, struct runtime **out)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	int ret;

	if (!rt)
		return -ENOMEM;
	*rt = (struct runtime){ .cfg = cfg, .store = store, .changed = changed, .data = data };
	ret = containers_new(cfg->namespace_from, &rt->table);
	if (!ret)
		ret = docker_client_new(cfg->runtime, &rt->docker);
	if (ret) {
		runtime_free(rt);
		return ret;
	}
	*out = rt;
	return 0;
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	docker_watch_stop(rt->watch);
	docker_client_free(rt->docker);
	containers_free(rt->table);
	free(rt->subnets);
	free(rt);
}

bool runtime_synced(const struct runtime *rt)
{
	return rt->synced;
}

bool runtime_up(const struct runtime *rt)
{
	return rt->up;
}

size_t runtime_containers(const struct runtime *rt)
{
	return containers_size(rt->table);
}

json_t *runtime_dump(const struct runtime *rt)
{
	return containers_dump(rt->table);
}

const char *runtime_name(const struct runtime *rt)
{
	return rt->version.name[0] ? rt->version.name : NULL;
}

const char *runtime_version(const struct runtime *rt)
{
	return rt->version.version[0] ? rt->version.version : NULL;
}

/* What the runtime is (GET /_ping; the socket's owner), for what the listing reads. A server
 * that answers but says neither Docker nor Podman (a socket proxy that drops the header) is
 * listed as Docker is, its name unknown. */
static int version_load(struct runtime *rt)
{
	struct docker_version v = { .name = "an unknown engine" };
	uid_t owner = 0;
	int ret = docker_version_get(rt->docker, &v);

	if (ret && ret != -EBADMSG)
		return ret;
	if (podman_socket_owner(docker_client_socket(rt->docker), &owner) < 0)
		owner = 0;	/* answered, then gone: the next listing looks again */
	if (strcmp(v.name, rt->version.name) || strcmp(v.version, rt->version.version))
		log_info("runtime at %s: %s %s (API %s)%s", rt->cfg->runtime, v.name,
			 ret ? "(no Server header of Docker's or Podman's)" : v.version,
			 v.api[0] ? v.api : "?",
			 owner ? ", rootless: its containers are not enforced" : "");
	rt->version = v;
	return containers_runtime_set(rt->table, v.podman, owner);
}

/* Keeps v (taken over) as the subnets last listed; whether they differ from the ones before. */
static bool subnets_keep(struct runtime *rt, struct moat_cidr *v, size_t n)
{
	bool same = n == rt->nsubnets && (!n || !memcmp(v, rt->subnets, n * sizeof(*v)));

	free(rt->subnets);
	rt->subnets = v, rt->nsubnets = n;
	return !same;
}

/*
 * The subnets of the runtime's networks: the address space it hands out, which Moat
 * manages. 1 when they changed since the last listing, 0 when not, or -errno.
 */
static int subnets_load(struct runtime *rt)
{
	struct docker_network_list *nets = NULL;
	struct moat_cidr *v = NULL;
	size_t k = 0, total = 0;
	int ret = docker_network_list(rt->docker, &nets);

	for (size_t i = 0; !ret && i < nets->n; i++)
		total += nets->v[i].nsubnets;
	if (!ret && !(v = calloc(total + 1, sizeof(*v))))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < nets->n; i++)
		for (size_t j = 0; j < nets->v[i].nsubnets; j++)
			v[k++] = nets->v[i].subnets[j];
	docker_network_list_free(nets);
	if (!ret)
		ret = epstore_subnets(rt->store, EPSOURCE_RUNTIME, v, k);
	if (ret) {
		free(v);
		return ret;
	}
	return subnets_keep(rt, v, k);
}

static int set_add(void *data, const struct moat_endpoint *e)
{
	return moat_endpoint_set_add(data, e);
}

/* The store's runtime source becomes exactly the table's containers. 0 or -errno. */
static int store_replace(struct runtime *rt)
{
	struct moat_endpoint_set *set = moat_endpoint_set_new();
	int ret = set ? containers_each(rt->table, NULL, set_add, set) : -ENOMEM;

	if (ret >= 0)
		ret = epstore_replace(rt->store, EPSOURCE_RUNTIME, set);
	moat_endpoint_set_free(set);
	return ret;
}

/* After a listing that made the store what it lists (ret: 1 changed, 0 not, or -errno). */
static int listed(struct runtime *rt, int ret)
{
	if (ret < 0) {
		if (rt->up || !rt->synced)
			log_warn("cannot list the runtime at %s: %s", rt->cfg->runtime, strerror(-ret));
		rt->up = false;
		return ret;
	}
	rt->up = rt->synced = true;
	if (ret)
		rt->changed(rt->data, loop_now_us());
	return 0;
}

int runtime_resync(struct runtime *rt)
{
	int ret = version_load(rt);

	if (!ret)
		ret = subnets_load(rt);

	if (ret >= 0)
		ret = containers_resync(rt->table, rt->docker);
	if (ret >= 0)
		ret = store_replace(rt);
	return listed(rt, ret < 0 ? ret : 1);	/* the first listing commits, even of nothing */
}

int runtime_check(struct runtime *rt)
{
	int subnets, ret;

	if (!rt->synced || !rt->up)
		return runtime_resync(rt);
	ret = subnets = subnets_load(rt);
	if (ret >= 0)
		ret = containers_check(rt->table, rt->docker);
	if (ret > 0 && (ret = store_replace(rt)) == 0)
		ret = 1;
	return listed(rt, ret < 0 ? ret : ret || subnets);
}

/* The namespace/name a container's endpoint has, kept across its update. */
struct key {
	char ns[256], name[256];
	bool set;
};

static int key_take(void *data, const struct moat_endpoint *e)
{
	struct key *k = data;

	snprintf(k->ns, sizeof(k->ns), "%s", e->namespace);
	snprintf(k->name, sizeof(k->name), "%s", e->name);
	k->set = true;
	return 0;
}

static int store_put(void *data, const struct moat_endpoint *e)
{
	return epstore_put(data, EPSOURCE_RUNTIME, e);
}

/* The id of the container whose endpoint id's traffic is (containers_owner), copied. */
static void owner_copy(const struct runtime *rt, const char *id, char out[72])
{
	const char *o = containers_owner(rt->table, id);

	snprintf(out, 72, "%s", o ? o : "");
}

/*
 * Re-inspects one container. The endpoint it belonged to goes (under its old name) and comes
 * back, and so does the one it belongs to now when that is another (a container joining a pod
 * changes the pod's labels; a pod's name and namespace are its own, whatever its containers).
 */
static int container_event(struct runtime *rt, const char *id)
{
	struct key old = { 0 };
	char before[72], after[72];
	int ret;

	owner_copy(rt, id, before);
	if (*before)
		containers_each(rt->table, before, key_take, &old);
	ret = containers_update(rt->table, rt->docker, id);
	if (ret <= 0)
		return ret;
	owner_copy(rt, id, after);
	ret = old.set ? epstore_del(rt->store, EPSOURCE_RUNTIME, old.ns, old.name) : 0;
	if (ret)
		return ret;
	if (*before)
		ret = containers_each(rt->table, before, store_put, rt->store);
	if (!ret && *after && strcmp(after, before))
		ret = containers_each(rt->table, after, store_put, rt->store);
	return ret ? ret : 1;
}

static void event_handle(struct runtime *rt, const struct docker_event *ev)
{
	uint64_t t0 = loop_now_us();
	int ret;

	if (ev->kind == DOCKER_EVENT_DOWN) {
		log_warn("runtime event stream lost; reconnecting (rules stay in force)");
		rt->up = false;
		return;
	}
	if (ev->kind == DOCKER_EVENT_RESYNC || !rt->synced) {
		runtime_resync(rt);
		return;
	}
	ret = container_event(rt, ev->id);
	if (ret < 0) {
		log_warn("inspecting %.12s failed (%s); listing everything", ev->id, strerror(-ret));
		runtime_resync(rt);
	} else if (ret > 0) {
		log_debug("container %.12s %s", ev->id, ev->action);
		rt->changed(rt->data, t0);
	}
}

static void watch_event(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct runtime *rt = data;
	struct docker_event ev;

	while (docker_watch_read(rt->watch, &ev) == 0)
		event_handle(rt, &ev);
}

int runtime_start(struct runtime *rt, struct loop *loop)
{
	int ret;

	if (runtime_resync(rt) < 0)
		log_warn("keeping the ruleset in the kernel until the runtime answers");
	ret = docker_watch_start(rt->docker, &rt->watch);
	if (!ret)
		ret = loop_fd_add(loop, docker_watch_fd(rt->watch), EPOLLIN, watch_event, rt);
	return ret;
}
