/*
 * The container table. Entries are replaced whole on every inspect; each container with a
 * network namespace of its own is one endpoint (containers.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "containers.h"
#include "moat/grow.h"
#include "moat/report.h"
#include "log.h"
#include "netns.h"
#include "podman.h"
#include "pods.h"

struct entry {
	struct docker_container *ct;
	char **ifaces;			/* host-side veths, one per attached network found */
	size_t nifaces;
	uint8_t (*macs)[6];		/* per iface: the container side's MAC, as the runtime
					 * gave it (not as the container may have changed it) */
	struct podman_pod pod;		/* its Podman pod, if any (id NULL: none) */
	char *unenforced;		/* why its traffic is out of Moat's reach, or NULL */
	char *fingerprint;		/* everything the plan depends on, to tell real changes */
	uint64_t listed;		/* the listing's sum it was inspected after (0: unknown) */
};

struct containers {
	enum namespace_from nsfrom;
	bool podman;			/* ask for pods */
	char *rootless;			/* why no container of this runtime is enforced, or NULL */
	size_t npods;			/* entries with a pod: only then are pods' labels merged */
	struct entry *v;
	size_t n, cap;
};

int containers_new(enum namespace_from nsfrom, struct containers **out)
{
	struct containers *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->nsfrom = nsfrom;
	*out = t;
	return 0;
}

static void entry_clear(struct entry *e)
{
	docker_container_free(e->ct);
	for (size_t i = 0; i < e->nifaces; i++)
		free(e->ifaces[i]);
	free(e->ifaces);
	free(e->macs);
	podman_pod_clear(&e->pod);
	free(e->unenforced);
	free(e->fingerprint);
	memset(e, 0, sizeof(*e));
}

void containers_free(struct containers *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_clear(&t->v[i]);
	free(t->v);
	free(t->rootless);
	free(t);
}

int containers_runtime_set(struct containers *t, bool podman, uid_t owner)
{
	char buf[256], *r = NULL;

	if (owner) {
		snprintf(buf, sizeof(buf), "rootless runtime (its socket belongs to uid %u): its "
			 "containers' networks live in that user's namespaces, past every hook Moat "
			 "programs on this host", (unsigned)owner);
		if (!(r = strdup(buf)))
			return -ENOMEM;
	}
	free(t->rootless);
	t->rootless = r;
	t->podman = podman;
	return 0;
}

size_t containers_size(const struct containers *t)
{
	return t->n;
}

/* Where the interfaces found so far go: one host-side veth per attached network. */
struct pairing {
	const struct netns_ifaces *l;
	bool *taken;			/* per interface of l */
	bool *paired;			/* per attached network */
};

/* Is f a veth of the container whose peer is a host-side port moatd can see? */
static bool host_port(const struct netns_iface *f)
{
	return f->host_ifindex != 0;
}

static int pair(struct entry *e, struct pairing *p, size_t attach, size_t iface)
{
	const struct docker_attach *a = &e->ct->nets[attach];

	p->paired[attach] = p->taken[iface] = true;
	if (a->has_mac)
		memcpy(e->macs[e->nifaces], a->mac, 6);
	e->ifaces[e->nifaces] = strdup(p->l->v[iface].host_name);
	return e->ifaces[e->nifaces++] ? 0 : -ENOMEM;
}

/*
 * Each attached network's host-side veth, found from the host side: the veths whose peer is
 * in the container's namespace (netns.h). The MAC the runtime gave the network picks its
 * veth; a network whose interface no longer has that MAC (a container with CAP_NET_ADMIN may
 * change it, rename the interface or add links) takes a veth left over, in order. So the
 * container keeps its ports and the runtime's MACs whatever it does inside, and frames with
 * another MAC are dropped: it keeps its identity or is cut off, never becomes a stranger.
 */
static int pair_all(struct entry *e, struct pairing *p)
{
	const struct netns_ifaces *l = p->l;
	int ret = 0;

	for (size_t i = 0; i < e->ct->nnets && !ret; i++)
		for (size_t k = 0; k < l->n && !p->paired[i] && !ret; k++)
			if (e->ct->nets[i].has_mac && host_port(&l->v[k]) && !p->taken[k] &&
			    !memcmp(l->v[k].mac, e->ct->nets[i].mac, 6))
				ret = pair(e, p, i, k);
	for (size_t i = 0; i < e->ct->nnets && !ret; i++)
		for (size_t k = 0; k < l->n && !p->paired[i] && !ret; k++)
			if (host_port(&l->v[k]) && !p->taken[k])
				ret = pair(e, p, i, k);
	return ret;
}

/*
 * Networks left without a host-side veth carry traffic that never crosses moatd's hooks
 * (macvlan and ipvlan go straight out of their parent, overlay through a namespace of its
 * own): the reason names the first, with the kind of the interface that has its MAC.
 */
static int unenforced_reason(struct entry *e, const struct pairing *p)
{
	char b[512] = "";

	if (e->ct->netmode == DOCKER_NETMODE_NONE)
		snprintf(b, sizeof(b), "network none: no interface but loopback");
	for (size_t i = 0; i < e->ct->nnets && e->ct->netmode != DOCKER_NETMODE_NONE; i++) {
		const struct docker_attach *a = &e->ct->nets[i];
		const struct netns_iface *f = a->has_mac ? netns_ifaces_find_mac(p->l, a->mac) : NULL;

		if (p->paired[i])
			continue;
		snprintf(b, sizeof(b), "network %s (%s): its traffic does not cross this node's hooks",
			 a->network, f && *f->kind ? f->kind : "no veth into this node");
		break;
	}
	if (e->ct->netmode != DOCKER_NETMODE_NONE && e->nifaces == e->ct->nnets)
		return 0;
	e->unenforced = strdup(b);
	return e->unenforced ? 0 : -ENOMEM;
}

static int entry_ifaces(struct entry *e)
{
	struct netns_ifaces *l = NULL;
	struct pairing p = { 0 };
	int ret = netns_ifaces_load(e->ct->pid, &l);

	if (ret == -EALREADY)
		return 0;
	if (ret < 0)
		return ret;
	p.l = l;
	p.taken = calloc(l->n + 1, sizeof(bool));
	p.paired = calloc(e->ct->nnets + 1, sizeof(bool));
	e->ifaces = calloc(e->ct->nnets + 1, sizeof(char *));
	e->macs = calloc(e->ct->nnets + 1, sizeof(*e->macs));
	ret = p.taken && p.paired && e->ifaces && e->macs ? pair_all(e, &p) : -ENOMEM;
	if (!ret)
		ret = unenforced_reason(e, &p);
	free(p.taken);
	free(p.paired);
	netns_ifaces_free(l);
	return ret;
}

/* The label that names a container's namespace, by --namespace-from (config.h). */
static const char *const namespace_labels[] = {
	[NAMESPACE_FROM_NONE] = NULL,
	[NAMESPACE_FROM_KUBERNETES] = MOAT_NAMESPACE_LABEL,
	[NAMESPACE_FROM_COMPOSE] = MOAT_COMPOSE_PROJECT_LABEL,
};

/* A pod's namespace is the pod's (its infra container's labels): a container of the pod
 * cannot move it into another. */
static const char *entry_namespace(const struct containers *t, const struct entry *e)
{
	const char *key = namespace_labels[t->nsfrom];
	const char *ns = key ? moat_labels_get(&e->ct->labels, key) : NULL;

	return ns && *ns ? ns : MOAT_DEFAULT_NAMESPACE;
}

/* Why e's own traffic is out of Moat's reach: a rootless runtime, a user-mode network. */
static int entry_unenforced(const struct containers *t, struct entry *e)
{
	char buf[256];

	if (t->rootless) {
		e->unenforced = strdup(t->rootless);
	} else if (e->ct->netmode == DOCKER_NETMODE_USER) {
		snprintf(buf, sizeof(buf), "network mode %s: a user-mode network stack carries its "
			 "traffic through the host's own sockets, past every hook Moat programs",
			 e->ct->netmode_name);
		e->unenforced = strdup(buf);
	} else {
		return 0;
	}
	return e->unenforced ? 0 : -ENOMEM;
}

/* Is it a pod's? Only Podman's own API says (elsewhere a container that joins another's
 * namespace is a --network container:X, which adds nothing). */
static int entry_pod(const struct containers *t, struct docker_client *dc, struct entry *e)
{
	struct moat_labels pod = { 0 };
	int ret;

	if (!t->podman)
		return 0;
	ret = podman_pod_of(dc, e->ct->id, &e->pod);
	if (ret || !e->pod.infra)
		return ret;
	/* the infra container's labels are the pod's and its image's (io.buildah.version of
	 * the pause image Podman builds): the pod's alone are the pod's */
	ret = podman_pod_labels(dc, e->pod.id, &pod);
	if (ret)
		return ret;
	docker_labels_free(&e->ct->labels);
	e->ct->labels = pod;
	return 0;
}

/* The endpoint's name: a pod's infra container is the pod. */
static const char *entry_name(const struct entry *e)
{
	return e->pod.infra && e->pod.name && *e->pod.name ? e->pod.name : e->ct->name;
}

/* A text of every field the plan reads; two equal fingerprints compile alike. */
static char *entry_fingerprint(const struct containers *t, const struct entry *e)
{
	char *buf = NULL, addr[64];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "%s\n%s\n%d\n%s\n%s %d\n%s\n", entry_name(e), entry_namespace(t, e),
		e->ct->netmode, e->ct->netmode_peer ? e->ct->netmode_peer : "",
		e->pod.id ? e->pod.id : "", e->pod.infra, e->unenforced ? e->unenforced : "");
	for (size_t i = 0; i < e->ct->labels.n; i++)
		fprintf(f, "l%zu:%s=%zu:%s\n", strlen(e->ct->labels.v[i].key), e->ct->labels.v[i].key,
			strlen(e->ct->labels.v[i].value), e->ct->labels.v[i].value);
	for (size_t i = 0; i < e->ct->nnets; i++) {
		fprintf(f, "n%s", moat_addr_format(&e->ct->nets[i].ipv4, addr, sizeof(addr)));
		fprintf(f, " %s\n", moat_addr_format(&e->ct->nets[i].ipv6, addr, sizeof(addr)));
	}
	for (size_t i = 0; i < e->nifaces; i++)
		fprintf(f, "i%s %02x%02x%02x%02x%02x%02x\n", e->ifaces[i], e->macs[i][0],
			e->macs[i][1], e->macs[i][2], e->macs[i][3], e->macs[i][4], e->macs[i][5]);
	fprintf(f, "u%s\n", e->unenforced ? e->unenforced : "");
	for (size_t i = 0; i < e->ct->npublished; i++)
		fprintf(f, "p%u %u %u\n", e->ct->published[i].proto, e->ct->published[i].host_port,
			e->ct->published[i].port);
	fclose(f);
	return buf;
}

/* Is e container id (its id, or a prefix of it)? */
static bool entry_is(const struct entry *e, const char *id)
{
	return !strncmp(e->ct->id, id, strlen(id));
}

static long entry_find(const struct containers *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (entry_is(&t->v[i], id))
			return (long)i;
	return -1;
}

static void entry_remove(struct containers *t, size_t i)
{
	t->npods -= t->v[i].pod.id != NULL;
	entry_clear(&t->v[i]);
	t->v[i] = t->v[--t->n];
}

/* Inspects id into *e. 0, -ENOENT when gone or not running, or -errno. */
static int entry_load(struct containers *t, struct docker_client *dc, const char *id,
		      struct entry *e)
{
	int ret = docker_container_inspect(dc, id, &e->ct);

	if (ret == 0 && !e->ct->running)
		ret = -ENOENT;
	if (ret == 0 && e->ct->netmode != DOCKER_NETMODE_HOST &&
	    e->ct->netmode != DOCKER_NETMODE_CONTAINER && e->ct->netmode != DOCKER_NETMODE_USER)
		ret = entry_ifaces(e);
	if (ret == 0)
		ret = entry_pod(t, dc, e);
	if (ret == 0)
		ret = entry_unenforced(t, e);
	if (ret == 0 && !(e->fingerprint = entry_fingerprint(t, e)))
		ret = -ENOMEM;
	if (ret == -ESRCH)
		ret = -ENOENT;	/* exited between inspect and setns */
	if (ret < 0)
		entry_clear(e);
	return ret;
}

static int entry_put(struct containers *t, struct entry *e)
{
	if (grow((void **)&t->v, t->n, &t->cap, sizeof(*t->v)))
		return -ENOMEM;
	t->v[t->n++] = *e;
	t->npods += e->pod.id != NULL;
	return 0;
}

int containers_update(struct containers *t, struct docker_client *dc, const char *id)
{
	struct entry e = { 0 };
	long i = entry_find(t, id);
	int ret = entry_load(t, dc, id, &e);

	if (ret == -ENOENT) {
		if (i < 0)
			return 0;
		entry_remove(t, (size_t)i);
		return 1;
	}
	if (ret < 0)
		return ret;
	if (i >= 0 && !strcmp(t->v[i].fingerprint, e.fingerprint)) {
		entry_clear(&e);
		return 0;
	}
	if (i >= 0) {
		entry_remove(t, (size_t)i);
		ret = entry_put(t, &e);		/* cannot fail: the room is there */
		return ret < 0 ? ret : 1;
	}
	ret = entry_put(t, &e);
	if (ret < 0)
		entry_clear(&e);
	return ret < 0 ? ret : 1;
}

int containers_resync(struct containers *t, struct docker_client *dc)
{
	struct docker_id_list *ids = NULL;
	struct containers fresh = { .nsfrom = t->nsfrom, .podman = t->podman,
				    .rootless = t->rootless };
	int ret = docker_container_list(dc, &ids), changed;

	for (size_t i = 0; ret >= 0 && i < ids->n; i++) {
		struct entry e = { .listed = ids->sums[i] };

		ret = entry_load(&fresh, dc, ids->v[i], &e);
		if (ret == 0 && (ret = entry_put(&fresh, &e)) < 0)
			entry_clear(&e);
		if (ret == -ENOENT)
			ret = 0;	/* stopped while we listed */
	}
	docker_id_list_free(ids);
	if (ret < 0) {
		for (size_t i = 0; i < fresh.n; i++)
			entry_clear(&fresh.v[i]);
		free(fresh.v);
		return ret;
	}
	changed = fresh.n != t->n;
	for (size_t i = 0; !changed && i < fresh.n; i++) {
		long j = entry_find(t, fresh.v[i].ct->id);

		changed = j < 0 || strcmp(t->v[j].fingerprint, fresh.v[i].fingerprint);
	}
	for (size_t i = 0; i < t->n; i++)
		entry_clear(&t->v[i]);
	free(t->v);
	t->v = fresh.v, t->n = fresh.n, t->cap = fresh.cap, t->npods = fresh.npods;
	return changed;
}

/* ---- the cheap resync ---- */

struct by_id {
	const char *id;
	size_t at;		/* index into the table */
};

static int by_id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct by_id *)a)->id, ((const struct by_id *)b)->id);
}

/*
 * Marks seen[j] for each entry listed, and collects in *stale (indexes into ids) the listed
 * containers to inspect: new, or inspected after another listing than this one. One sort
 * and a search per listed id, so an unchanged node costs no inspect and no O(n^2).
 */
static int check_listing(const struct containers *t, const struct docker_id_list *ids,
			 bool *seen, size_t *stale, size_t *nstale)
{
	struct by_id *v = calloc(t->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t j = 0; j < t->n; j++)
		v[j] = (struct by_id){ t->v[j].ct->id, j };
	qsort(v, t->n, sizeof(*v), by_id_cmp);
	*nstale = 0;
	for (size_t i = 0; i < ids->n; i++) {
		struct by_id key = { ids->v[i], 0 };
		const struct by_id *hit = bsearch(&key, v, t->n, sizeof(*v), by_id_cmp);

		if (hit)
			seen[hit->at] = true;
		if (!hit || !t->v[hit->at].listed || t->v[hit->at].listed != ids->sums[i])
			stale[(*nstale)++] = i;
	}
	free(v);
	return 0;
}

/* Inspects listed container i again, and notes the listing it was inspected after. */
static int check_one(struct containers *t, struct docker_client *dc,
		     const struct docker_id_list *ids, size_t i)
{
	int ret = containers_update(t, dc, ids->v[i]);
	long j = ret >= 0 ? entry_find(t, ids->v[i]) : -1;

	if (j >= 0)
		t->v[j].listed = ids->sums[i];
	return ret;
}

int containers_check(struct containers *t, struct docker_client *dc)
{
	struct docker_id_list *ids = NULL;
	bool *seen = calloc(t->n + 1, sizeof(*seen));
	size_t *stale = NULL, nstale = 0;
	int ret = seen ? docker_container_list(dc, &ids) : -ENOMEM, changed = 0;

	if (!ret && !(stale = calloc(ids->n + 1, sizeof(*stale))))
		ret = -ENOMEM;
	if (!ret)
		ret = check_listing(t, ids, seen, stale, &nstale);
	/* not listed: not running. Downwards, as entry_remove moves the last entry into j. */
	for (size_t j = t->n; !ret && j-- > 0;)
		if (!seen[j]) {
			entry_remove(t, j);
			changed = 1;
		}
	for (size_t k = 0; ret >= 0 && k < nstale; k++)
		if ((ret = check_one(t, dc, ids, stale[k])) > 0)
			changed = 1;
	docker_id_list_free(ids);
	free(seen);
	free(stale);
	return ret < 0 ? ret : changed;
}

/*
 * Named ports, which Kubernetes takes from the pod spec: on Docker a container names its own
 * ports with labels moat.io/port.NAME=PORT[/PROTO]. Like a pod's, they only say what the
 * container itself serves, so a label can gain its container nothing. Names follow
 * Kubernetes' IANA_SVC_NAME (1-15 of a-z, 0-9, '-'); anything else is ignored.
 */
static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15 || s[0] == '-' || s[n - 1] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static size_t named_ports(const struct moat_labels *l, struct moat_named_port *v, size_t max)
{
	static const char prefix[] = "moat.io/port.";
	struct moat_port_arg p;
	size_t n = 0;

	for (size_t i = 0; i < l->n && n < max; i++) {
		const char *name = l->v[i].key + sizeof(prefix) - 1;

		if (strncmp(l->v[i].key, prefix, sizeof(prefix) - 1) || !port_name_ok(name) ||
		    moat_port_arg_parse(l->v[i].value, &p) < 0 || !p.port)
			continue;
		v[n++] = (struct moat_named_port){ (char *)name, p.proto, p.port };
	}
	return n;
}

/* Is m a container of the pod whose infra container is e, in its namespace? */
static bool entry_joins(const struct entry *m, const struct entry *e)
{
	return e->pod.infra && m->pod.id && !m->pod.infra && !strcmp(m->pod.id, e->pod.id) &&
	       m->ct->netmode == DOCKER_NETMODE_CONTAINER && m->ct->netmode_peer &&
	       *m->ct->netmode_peer && entry_is(e, m->ct->netmode_peer);
}

/* e's labels, with those of its pod's containers (pods.h); out->v is NULL when e is no pod's
 * infra container (use e's own), else the caller frees it. */
static int entry_pod_labels(const struct containers *t, const struct entry *e,
			    struct moat_labels *out)
{
	struct pod_member *m = NULL;
	size_t n = 0;
	int ret = 0;

	*out = (struct moat_labels){ 0 };
	if (!e->pod.infra)
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		if (!entry_joins(&t->v[i], e))
			continue;
		if (!m && !(m = calloc(t->n, sizeof(*m))))
			return -ENOMEM;
		m[n++] = (struct pod_member){ t->v[i].ct->name, &t->v[i].ct->labels };
	}
	if (n)
		ret = pod_labels_merge(&e->ct->labels, m, n, out, NULL);
	free(m);
	return ret;
}

static int entry_endpoint(const struct containers *t, const struct entry *e, containers_fn fn,
			  void *data)
{
	struct moat_named_port ports[32];
	struct moat_addr ips[64];
	struct moat_labels pod;
	struct moat_endpoint ep = {
		.name = (char *)entry_name(e), .namespace = (char *)entry_namespace(t, e),
		.labels = e->ct->labels, .ips = ips, .ifaces = e->ifaces, .nifaces = e->nifaces,
		.macs = e->macs, .unenforced = e->unenforced,
		.host_network = e->ct->netmode == DOCKER_NETMODE_HOST, .ports = ports,
		.published = e->ct->published, .npublished = e->ct->npublished,
	};
	int ret = t->npods ? entry_pod_labels(t, e, &pod) : 0;

	if (ret)
		return ret;
	if (t->npods && pod.v)
		ep.labels = pod;
	ep.nports = named_ports(&ep.labels, ports, 32);
	for (size_t i = 0; i < e->ct->nnets && ep.nips + 2 <= 64; i++) {
		if (e->ct->nets[i].ipv4.family)
			ips[ep.nips++] = e->ct->nets[i].ipv4;
		if (e->ct->nets[i].ipv6.family)
			ips[ep.nips++] = e->ct->nets[i].ipv6;
	}
	ret = fn(data, &ep);
	if (t->npods)
		free(pod.v);
	return ret;
}

int containers_each(const struct containers *t, const char *id, containers_fn fn, void *data)
{
	int ret = 0;

	for (size_t i = 0; i < t->n && !ret; i++) {
		const struct entry *e = &t->v[i];

		if (e->ct->netmode == DOCKER_NETMODE_CONTAINER || (id && !entry_is(e, id)))
			continue;
		ret = entry_endpoint(t, e, fn, data);
	}
	return ret;
}

const char *containers_owner(const struct containers *t, const char *id)
{
	long i = entry_find(t, id), j;

	if (i < 0)
		return NULL;
	if (t->v[i].ct->netmode != DOCKER_NETMODE_CONTAINER)
		return t->v[i].ct->id;
	if (!t->v[i].pod.id || !t->v[i].ct->netmode_peer || !*t->v[i].ct->netmode_peer)
		return NULL;
	j = entry_find(t, t->v[i].ct->netmode_peer);
	return j >= 0 && entry_joins(&t->v[i], &t->v[j]) ? t->v[j].ct->id : NULL;
}

json_t *containers_dump(const struct containers *t)
{
	static const char *const modes[] = { "bridge", "host", "container", "none", "user" };
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < t->n; i++) {
		const struct docker_container *ct = t->v[i].ct;

		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "id", ct->id,
						     "name", ct->name, "netmode", modes[ct->netmode],
						     "shares", ct->netmode_peer, "pod",
						     t->v[i].pod.name));
	}
	return arr;
}
