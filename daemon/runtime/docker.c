/*
 * Docker Engine API requests over a unix socket: list, inspect, networks. Only this file and
 * docker_watch.c speak HTTP to dockerd; this one parses the answers into plain structs so that
 * nothing else sees JSON from the runtime.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curlio.h"
#include "docker.h"
#include "moat/hash.h"
#include "moat/proto.h"

struct docker_client {
	char *socket;
	CURL *curl;		/* kept between requests: one connection, reused */
};

int docker_client_new(const char *url, struct docker_client **out)
{
	const char *path = url;
	struct docker_client *c;
	int ret;

	if (!strncmp(url, "unix://", 7))
		path = url + 7;
	if (path[0] != '/')
		return -EINVAL;
	ret = curlio_init();
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->socket = strdup(path);
	c->curl = curl_easy_init();
	if (!c->socket || !c->curl) {
		docker_client_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void docker_client_free(struct docker_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->socket);
	free(c);
}

const char *docker_client_socket(const struct docker_client *c)
{
	return c->socket;
}

/* GET path (after the version prefix); the body in *out on 200 (the caller frees out->buf),
 * and the header lines in *headers when it is not NULL (likewise). */
static int get_request(struct docker_client *c, const char *path, struct curlio_body *out,
		       struct curlio_body *headers)
{
	struct curlio_body b = { .max = DOCKER_MAX_RESPONSE }, h = { .max = DOCKER_MAX_RESPONSE };
	char url[512];
	long status = 0;
	CURLcode rc;
	int ret;

	if ((size_t)snprintf(url, sizeof(url), "http://localhost/%s%s", DOCKER_API_VERSION,
			     path) >= sizeof(url))
		return -ENAMETOOLONG;
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)DOCKER_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, curlio_body_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	if (headers) {
		curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, curlio_body_write);
		curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &h);
	}
	rc = curl_easy_perform(c->curl);
	if (b.too_big || h.too_big) {
		ret = -EFBIG;
		goto out;
	}
	ret = curlio_errno(rc);
	if (ret)
		goto out;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		ret = status == 404 ? -ENOENT : -EIO;
		goto out;
	}
	*out = b;
	if (headers)
		*headers = h;
	return 0;
out:
	free(b.buf);
	free(h.buf);
	return ret;
}

static int get_body(struct docker_client *c, const char *path, struct curlio_body *out)
{
	return get_request(c, path, out, NULL);
}

int docker_get(struct docker_client *c, const char *path, char **body, size_t *len)
{
	struct curlio_body b = { 0 };
	int ret = get_body(c, path, &b);

	if (ret)
		return ret;
	if (!b.buf && !(b.buf = calloc(1, 1)))
		return -ENOMEM;
	*body = b.buf;
	*len = b.len;
	return 0;
}

/* Rewrites each \u0000 escape inside a JSON string into \ufffd, in place (same length). */
static void json_nul_defuse(char *s, size_t len)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		if (!in_str) {
			in_str = s[i] == '"';
		} else if (s[i] == '"') {
			in_str = false;
		} else if (s[i] == '\\') {
			if (len - i >= 6 && !memcmp(s + i + 1, "u0000", 5))
				memcpy(s + i + 2, "fffd", 4);
			i++;	/* the escaped character, so that \\u0000 stays text */
		}
	}
}

json_t *docker_json_load(const char *json, size_t len)
{
	char *copy = malloc(len + 1);
	json_t *j;

	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, json, len);
	json_nul_defuse(copy, len);
	j = json_loadb(copy, len, 0, NULL);
	free(copy);
	return j;
}

/* A whole answer as JSON; hostile bytes end here as -EBADMSG, never as a crash. */
static int json_parse(const char *json, size_t len, json_t **out)
{
	json_t *j = docker_json_load(json ? json : "", json ? len : 0);

	if (!j)
		return -EBADMSG;
	*out = j;
	return 0;
}

int docker_container_list(struct docker_client *c, struct docker_id_list **out)
{
	struct curlio_body b = { .max = DOCKER_MAX_RESPONSE };
	int ret = get_body(c, "/containers/json", &b);

	if (!ret)
		ret = docker_id_list_parse(b.buf, b.len, out);
	free(b.buf);
	return ret;
}

/*
 * What a container's listing entry says that Moat reads, hashed with the process's seed
 * (nobody who starts containers can make a changed entry hash as before). Not "Status" (how
 * long it has run), nor "Ports" and "Mounts", which dockerd lists in a new order each time
 * and which only a new container (a new Id) can change. 0 or -ENOMEM.
 */
static int listing_sum(json_t *entry, uint64_t *sum)
{
	static const char *const keys[] = { "Id", "Names", "Created", "Labels", "State",
					     "HostConfig", "NetworkSettings" };
	json_t *kept = json_object();
	char *text = NULL;

	for (size_t i = 0; kept && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_get(entry, keys[i]))
			json_object_set(kept, keys[i], json_object_get(entry, keys[i]));
	if (kept)
		text = json_dumps(kept, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(kept);
	if (!text)
		return -ENOMEM;
	*sum = moat_hash_fin(moat_hash_str(MOAT_HASH_BASIS ^ moat_hash_seed(), text));
	free(text);
	return 0;
}

int docker_id_list_parse(const char *json, size_t len, struct docker_id_list **out)
{
	struct docker_id_list *l = NULL;
	json_t *arr = NULL, *it;
	const char *id;
	size_t i;
	int ret;

	ret = json_parse(json, len, &arr);
	if (ret)
		return ret;
	ret = -EBADMSG;
	if (!json_is_array(arr))
		goto out;
	ret = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->v = calloc(json_array_size(arr) + 1, sizeof(*l->v))) ||
	    !(l->sums = calloc(json_array_size(arr) + 1, sizeof(*l->sums))))
		goto out;
	json_array_foreach(arr, i, it) {
		id = json_string_value(json_object_get(it, "Id"));
		if (!id)
			continue;
		if (!(l->v[l->n] = strdup(id)) || listing_sum(it, &l->sums[l->n]))
			goto out;
		l->n++;
	}
	*out = l;
	l = NULL;
	ret = 0;
out:
	docker_id_list_free(l);
	json_decref(arr);
	return ret;
}

void docker_id_list_free(struct docker_id_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; l->v && i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->sums);
	free(l);
}

/* A copy of a JSON string member; NULL with *err set when it is there but not a string. */
static char *dup_member(json_t *obj, const char *key, int *err)
{
	json_t *v = json_object_get(obj, key);
	char *s;

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*err = -EBADMSG;
		return NULL;
	}
	s = strdup(json_string_value(v));
	if (!s)
		*err = -ENOMEM;
	return s;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct moat_label *)a)->key, ((const struct moat_label *)b)->key);
}

void docker_labels_free(struct moat_labels *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Config.Labels (an object of strings, or null) into sorted labels. */
int docker_labels_parse(json_t *obj, struct moat_labels *out)
{
	struct moat_labels l = { 0 };
	const char *k;
	json_t *v;

	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return -EBADMSG;
	l.v = calloc(json_object_size(obj) + 1, sizeof(*l.v));
	if (!l.v)
		return -ENOMEM;
	json_object_foreach(obj, k, v) {
		if (!json_is_string(v))
			continue;
		l.v[l.n].key = strdup(k);
		l.v[l.n].value = strdup(json_string_value(v));
		l.n++;
		if (!l.v[l.n - 1].key || !l.v[l.n - 1].value) {
			docker_labels_free(&l);
			return -ENOMEM;
		}
	}
	qsort(l.v, l.n, sizeof(*l.v), label_cmp);
	*out = l;
	return 0;
}

/* An address of family fam into a; "" or absent leaves a zero (family 0). */
static int addr_parse(json_t *obj, const char *key, int fam, struct moat_addr *a)
{
	const char *s = json_string_value(json_object_get(obj, key));

	memset(a, 0, sizeof(*a));
	if (!s || !*s)
		return 0;
	if (inet_pton(fam, s, a->a) != 1)
		return -EBADMSG;	/* also an address of the other family */
	a->family = fam;
	return 0;
}

static int mac_parse(const char *s, uint8_t mac[6])
{
	unsigned m[6];
	int i, n = 0;

	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
			 &n) != 6 || s[n])
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = m[i];
	return 0;
}

static int attach_parse(const char *name, json_t *o, struct docker_attach *a)
{
	int ret = 0;

	if (!json_is_object(o))
		return -EBADMSG;
	a->network = strdup(name);
	if (!a->network)
		return -ENOMEM;
	a->network_id = dup_member(o, "NetworkID", &ret);
	if (ret)
		return ret;
	ret = addr_parse(o, "IPAddress", AF_INET, &a->ipv4);
	if (!ret)
		ret = addr_parse(o, "GlobalIPv6Address", AF_INET6, &a->ipv6);
	if (ret)
		return ret;
	a->ipv4_plen = json_integer_value(json_object_get(o, "IPPrefixLen"));
	a->ipv6_plen = json_integer_value(json_object_get(o, "GlobalIPv6PrefixLen"));
	a->has_mac = !mac_parse(json_string_value(json_object_get(o, "MacAddress")), a->mac);
	return 0;
}

static int attach_cmp(const void *a, const void *b)
{
	return strcmp(((const struct docker_attach *)a)->network,
		      ((const struct docker_attach *)b)->network);
}

static int nets_parse(json_t *nets, struct docker_container *ct)
{
	const char *name;
	json_t *o;
	int ret;

	if (!nets || json_is_null(nets))
		return 0;
	if (!json_is_object(nets))
		return -EBADMSG;
	ct->nets = calloc(json_object_size(nets) + 1, sizeof(*ct->nets));
	if (!ct->nets)
		return -ENOMEM;
	json_object_foreach(nets, name, o) {
		ret = attach_parse(name, o, &ct->nets[ct->nnets++]);
		if (ret)
			return ret;
	}
	qsort(ct->nets, ct->nnets, sizeof(*ct->nets), attach_cmp);
	return 0;
}

static int published_cmp(const void *a, const void *b)
{
	const struct moat_published *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->host_port != y->host_port)
		return x->host_port - y->host_port;
	return x->port - y->port;
}

/* "81/tcp" into proto and port; false for anything else. */
static bool container_port_parse(const char *s, uint8_t *proto, uint16_t *port)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);
	int p = end == s || *end != '/' ? -1 : moat_proto_by_name(end + 1);

	if (p < 0 || !moat_proto_has_ports((uint8_t)p) || !n || n > 65535)
		return false;
	*proto = (uint8_t)p;
	*port = (uint16_t)n;
	return true;
}

/* A binding's HostPort ("15432"), 0 when absent or not a port. */
static uint16_t host_port_parse(json_t *binding)
{
	const char *s = json_string_value(json_object_get(binding, "HostPort"));
	char *end;
	unsigned long n = s ? strtoul(s, &end, 10) : 0;

	return s && end != s && !*end && n <= 65535 ? (uint16_t)n : 0;
}

/*
 * NetworkSettings.Ports ({"81/tcp": [{HostIp, HostPort}, ..] | null}): the ports the node
 * publishes, as they are bound (an ephemeral host port resolved), each once whatever the
 * host address (0.0.0.0 and :: both). Malformed entries are skipped: they publish nothing.
 */
static int published_parse(json_t *ports, struct docker_container *ct)
{
	size_t total = 0, i, o = 0;
	const char *key;
	json_t *v, *b;

	if (!json_is_object(ports))
		return 0;
	json_object_foreach(ports, key, v)
		total += json_is_array(v) ? json_array_size(v) : 0;
	ct->published = calloc(total + 1, sizeof(*ct->published));
	if (!ct->published)
		return -ENOMEM;
	json_object_foreach(ports, key, v) {
		struct moat_published p = { 0 };

		if (!json_is_array(v) || !container_port_parse(key, &p.proto, &p.port))
			continue;
		json_array_foreach(v, i, b)
			if ((p.host_port = host_port_parse(b)))
				ct->published[ct->npublished++] = p;
	}
	qsort(ct->published, ct->npublished, sizeof(*ct->published), published_cmp);
	for (i = 0; i < ct->npublished; i++)
		if (!o || published_cmp(&ct->published[o - 1], &ct->published[i]))
			ct->published[o++] = ct->published[i];
	ct->npublished = o;
	return 0;
}

/* A mode is its name alone, or (options) its name and a ':' with more after it. */
static const struct {
	const char *name;
	enum docker_netmode mode;
	bool options;
} netmodes[] = {
	{ "host", DOCKER_NETMODE_HOST, false },
	{ "none", DOCKER_NETMODE_NONE, false },
	{ "slirp4netns", DOCKER_NETMODE_USER, true },	/* Podman's, rootless by default */
	{ "pasta", DOCKER_NETMODE_USER, true },
};

static bool netmode_is(const char *s, const char *name, bool options)
{
	size_t n = strlen(name);

	return !strncmp(s, name, n) && (!s[n] || (options && s[n] == ':'));
}

static int netmode_parse(const char *s, struct docker_container *ct)
{
	size_t i;

	ct->netmode = DOCKER_NETMODE_BRIDGE;
	if (!s)
		return 0;
	ct->netmode_name = strdup(s);
	if (!ct->netmode_name)
		return -ENOMEM;
	for (i = 0; i < sizeof(netmodes) / sizeof(netmodes[0]); i++)
		if (netmode_is(s, netmodes[i].name, netmodes[i].options))
			ct->netmode = netmodes[i].mode;
	if (!strncmp(s, "container:", 10)) {
		ct->netmode = DOCKER_NETMODE_CONTAINER;
		ct->netmode_peer = strdup(s + 10);
		if (!ct->netmode_peer)
			return -ENOMEM;
	}
	return 0;
}

static int container_parse(json_t *j, struct docker_container *ct)
{
	json_t *state = json_object_get(j, "State");
	const char *name;
	int ret = 0;

	ct->id = dup_member(j, "Id", &ret);
	if (ret || !ct->id)
		return ret ? ret : -EBADMSG;
	name = json_string_value(json_object_get(j, "Name"));
	while (name && name[0] == '/')	/* "/web"; a broken answer may say "//web" */
		name++;
	ct->name = strdup(name ? name : "");
	if (!ct->name)
		return -ENOMEM;
	ret = docker_labels_parse(json_object_get(json_object_get(j, "Config"), "Labels"),
				  &ct->labels);
	if (ret)
		return ret;
	ct->running = json_is_true(json_object_get(state, "Running"));
	ct->pid = ct->running ? json_integer_value(json_object_get(state, "Pid")) : 0;
	ret = netmode_parse(json_string_value(json_object_get(json_object_get(j, "HostConfig"),
							      "NetworkMode")), ct);
	if (ret)
		return ret;
	ret = nets_parse(json_object_get(json_object_get(j, "NetworkSettings"), "Networks"), ct);
	if (!ret)
		ret = published_parse(json_object_get(json_object_get(j, "NetworkSettings"), "Ports"),
				      ct);
	return ret;
}

/* Ids and names go into the URL path: refuse anything that would need escaping. */
static bool id_ok(const char *id)
{
	size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");

	return n > 0 && n < 256 && !id[n];
}

int docker_container_inspect(struct docker_client *c, const char *id,
			     struct docker_container **out)
{
	struct curlio_body b = { .max = DOCKER_MAX_RESPONSE };
	char path[320];
	int ret;

	if (!id_ok(id))
		return -ENOENT;
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	ret = get_body(c, path, &b);
	if (!ret)
		ret = docker_container_parse(b.buf, b.len, out);
	free(b.buf);
	return ret;
}

int docker_container_parse(const char *json, size_t len, struct docker_container **out)
{
	struct docker_container *ct;
	json_t *j;
	int ret;

	ret = json_parse(json, len, &j);
	if (ret)
		return ret;
	ct = calloc(1, sizeof(*ct));
	ret = ct ? container_parse(j, ct) : -ENOMEM;
	json_decref(j);
	if (ret) {
		docker_container_free(ct);
		return ret;
	}
	*out = ct;
	return 0;
}

void docker_container_free(struct docker_container *ct)
{
	size_t i;

	if (!ct)
		return;
	for (i = 0; i < ct->nnets; i++) {
		free(ct->nets[i].network);
		free(ct->nets[i].network_id);
	}
	free(ct->nets);
	free(ct->published);
	docker_labels_free(&ct->labels);
	free(ct->id);
	free(ct->name);
	free(ct->netmode_name);
	free(ct->netmode_peer);
	free(ct);
}

static int network_parse(json_t *o, struct docker_network *n)
{
	json_t *cfg = json_object_get(json_object_get(o, "IPAM"), "Config"), *it;
	size_t i;
	int ret = 0;

	n->id = dup_member(o, "Id", &ret);
	if (!ret)
		n->name = dup_member(o, "Name", &ret);
	if (!ret)
		n->driver = dup_member(o, "Driver", &ret);
	if (ret)
		return ret;
	if (!n->id || !n->name)
		return -EBADMSG;
	n->ipv6 = json_is_true(json_object_get(o, "EnableIPv6"));
	n->internal = json_is_true(json_object_get(o, "Internal"));
	if (!json_is_array(cfg))
		return 0;
	n->subnets = calloc(json_array_size(cfg) + 1, sizeof(*n->subnets));
	if (!n->subnets)
		return -ENOMEM;
	json_array_foreach(cfg, i, it) {
		if (!json_object_get(it, "Subnet"))
			continue;
		if (moat_cidr_parse_masked(json_string_value(json_object_get(it, "Subnet")),
					   &n->subnets[n->nsubnets]))
			return -EBADMSG;
		n->nsubnets++;
	}
	return 0;
}

int docker_network_list(struct docker_client *c, struct docker_network_list **out)
{
	struct curlio_body b = { .max = DOCKER_MAX_RESPONSE };
	int ret = get_body(c, "/networks", &b);

	if (!ret)
		ret = docker_network_list_parse(b.buf, b.len, out);
	free(b.buf);
	return ret;
}

int docker_network_list_parse(const char *json, size_t len, struct docker_network_list **out)
{
	struct docker_network_list *l = NULL;
	json_t *arr = NULL, *it;
	size_t i;
	int ret;

	ret = json_parse(json, len, &arr);
	if (ret)
		return ret;
	ret = -EBADMSG;
	if (!json_is_array(arr))
		goto out;
	ret = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->v = calloc(json_array_size(arr) + 1, sizeof(*l->v))))
		goto out;
	json_array_foreach(arr, i, it) {
		ret = network_parse(it, &l->v[l->n++]);
		if (ret)
			goto out;
	}
	*out = l;
	l = NULL;
	ret = 0;	/* also for no networks at all, where ret still said -ENOMEM */
out:
	docker_network_list_free(l);
	json_decref(arr);
	return ret;
}

void docker_network_list_free(struct docker_network_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; l->v && i < l->n; i++) {
		free(l->v[i].id);
		free(l->v[i].name);
		free(l->v[i].driver);
		free(l->v[i].subnets);
	}
	free(l->v);
	free(l);
}

/* The value of header name in the header lines of an answer, into buf (cut to fit). */
static bool header_get(const char *h, size_t len, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name), i = 0, end, v;

	for (; i < len; i = end + 1) {
		const char *nl = memchr(h + i, '\n', len - i);

		end = nl ? (size_t)(nl - h) : len;
		if (end - i <= n || strncasecmp(h + i, name, n) || h[i + n] != ':')
			continue;
		for (v = i + n + 1; v < end && (h[v] == ' ' || h[v] == '\t'); v++)
			;
		while (end > v && (h[end - 1] == '\r' || h[end - 1] == ' '))
			end--;
		snprintf(buf, size, "%.*s", (int)(end - v), h + v);
		return true;
	}
	return false;
}

/* Server: Docker/20.10.24+dfsg1 (linux) or Libpod/4.3.1 (linux). */
static const struct {
	const char *product, *name;
	bool podman;
} servers[] = {
	{ "Docker/", "Docker Engine", false },
	{ "Libpod/", "Podman Engine", true },
};

int docker_version_parse(const char *headers, size_t len, struct docker_version *out)
{
	struct docker_version v = { 0 };
	char server[128];
	size_t i, n;

	if (!headers || !header_get(headers, len, "Server", server, sizeof(server)))
		return -EBADMSG;
	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		if (!strncmp(server, servers[i].product, strlen(servers[i].product)))
			break;
	if (i == sizeof(servers) / sizeof(servers[0]))
		return -EBADMSG;
	n = strcspn(server + strlen(servers[i].product), " ");
	snprintf(v.name, sizeof(v.name), "%s", servers[i].name);
	snprintf(v.version, sizeof(v.version), "%.*s", (int)n,
		 server + strlen(servers[i].product));
	v.podman = servers[i].podman;
	header_get(headers, len, "Api-Version", v.api, sizeof(v.api));
	if (!v.version[0])
		return -EBADMSG;
	*out = v;
	return 0;
}

/* GET /_ping, which both answer at once (Podman takes seconds over /version, which asks its
 * storage and OCI runtime), and whose headers say who answers. */
int docker_version_get(struct docker_client *c, struct docker_version *out)
{
	struct curlio_body b = { 0 }, h = { 0 };
	int ret = get_request(c, "/_ping", &b, &h);

	if (!ret)
		ret = docker_version_parse(h.buf, h.len, out);
	free(b.buf);
	free(h.buf);
	return ret;
}
