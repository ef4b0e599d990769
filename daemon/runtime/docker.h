/*
 * The daemon's view of the container runtime: a Docker Engine API client over a unix socket
 * (libcurl + jansson), API version pinned to v1.41 (Docker 20.10; newer engines accept it).
 *
 * Two halves with separate curl handles, so that they may run on different threads:
 *   - requests (docker_container_list/_inspect, docker_network_list) block the caller for at
 *     most DOCKER_REQUEST_TIMEOUT_MS each; a client is for one thread at a time;
 *   - the watcher (docker_watch_*) follows /events on its own thread and turns them into small
 *     fixed-size records on a pipe the event loop polls. Events are hints: a RESYNC record
 *     comes after every (re)connect and whenever records were lost, and the daemon must then
 *     re-list everything. Between RESYNCs, CONTAINER records name containers to re-inspect.
 *
 * Every function returns 0 or a negative errno:
 *   -ECONNREFUSED              dockerd is not listening, or the socket is missing
 *   -ENOENT                    no such container (or other object)
 *   -ETIMEDOUT                 no answer within the timeout
 *   -EBADMSG                   the answer was not the JSON we expect
 *   -EFBIG                     the answer was larger than DOCKER_MAX_RESPONSE
 *   -EIO                       any other HTTP or transport failure
 */
#ifndef MOAT_DAEMON_DOCKER_H
#define MOAT_DAEMON_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/endpoint.h"
#include "moat/policy.h"

#define DOCKER_API_VERSION "v1.41"
#define DOCKER_CONNECT_TIMEOUT_MS 2000
#define DOCKER_REQUEST_TIMEOUT_MS 10000
#define DOCKER_MAX_RESPONSE (32u << 20)
/* Backoff between attempts to (re)connect the event stream. */
#define DOCKER_WATCH_BACKOFF_MIN_MS 100
#define DOCKER_WATCH_BACKOFF_MAX_MS 5000
/* An event is a few hundred bytes plus the container's labels. */
#define DOCKER_WATCH_MAX_LINE (1u << 20)

struct docker_client;

/*
 * docker_client_new - a client for url: "unix:///var/run/docker.sock" or a plain absolute
 * socket path. Does not connect yet (dockerd may start later). Returns 0 and sets *out, or
 * -EINVAL for another kind of url, -ENOMEM. Free with docker_client_free.
 */
int docker_client_new(const char *url, struct docker_client **out);

/* docker_client_free - NULL-safe. Stop every watcher made from c first. */
void docker_client_free(struct docker_client *c);

/* docker_client_socket - the socket path c talks to; owned by c. */
const char *docker_client_socket(const struct docker_client *c);

/* Container ids (64 hex digits), as listed, and what each one's listing says. */
struct docker_id_list {
	char **v;
	uint64_t *sums;		/* per id: a seeded hash of what its listing entry says of
				 * its name, labels, state, network mode and networks: an equal
				 * sum across two listings says its labels, networks,
				 * addresses, MACs and endpoints are as they were (a restart
				 * makes new endpoints); never 0 */
	size_t n;
};

/*
 * docker_container_list - the ids of the running containers. Returns 0 and sets *out (free
 * with docker_id_list_free), or a negative errno. A container may stop before you inspect
 * it: expect -ENOENT or running == false from docker_container_inspect. Trap: the sums are
 * of the listing only: what it does not show (the host side of a veth) is seen by an
 * inspect alone.
 */
int docker_container_list(struct docker_client *c, struct docker_id_list **out);

/*
 * docker_id_list_parse - a GET /containers/json answer (len bytes) into ids, as
 * docker_container_list. Pure. 0 and *out, -EBADMSG, -ENOMEM.
 */
int docker_id_list_parse(const char *json, size_t len, struct docker_id_list **out);

/* docker_id_list_free - NULL-safe. */
void docker_id_list_free(struct docker_id_list *l);

/* HostConfig.NetworkMode, by what it means for finding the container's namespace. */
enum docker_netmode {
	DOCKER_NETMODE_BRIDGE,		/* "default", "bridge" or a user network: own netns */
	DOCKER_NETMODE_HOST,		/* the daemon's namespace: never segmented */
	DOCKER_NETMODE_CONTAINER,	/* "container:<id>": shares that container's netns */
	DOCKER_NETMODE_NONE,		/* own netns with only lo */
	DOCKER_NETMODE_USER,		/* Podman's "slirp4netns[:opts]" or "pasta[:opts]": a
					 * user-mode network stack carries its traffic through
					 * sockets of the host, past no hook of Moat's */
};

/* One network a container is attached to (NetworkSettings.Networks). */
struct docker_attach {
	char *network;			/* network name */
	char *network_id;
	struct moat_addr ipv4;		/* family 0 when it has none */
	struct moat_addr ipv6;		/* the global address; family 0 when none */
	uint8_t ipv4_plen, ipv6_plen;
	bool has_mac;
	uint8_t mac[6];			/* matches the interface inside the container */
};

struct docker_container {
	char *id;			/* 64 hex digits */
	char *name;			/* without Docker's leading '/' */
	struct moat_labels labels;	/* Config.Labels, sorted by key */
	int pid;			/* State.Pid: 0 unless running */
	bool running;
	enum docker_netmode netmode;
	char *netmode_name;		/* HostConfig.NetworkMode verbatim */
	char *netmode_peer;		/* CONTAINER: the other container's id or name; else NULL */
	struct docker_attach *nets;	/* sorted by network name; none for host/container modes */
	size_t nnets;
	struct moat_published *published;	/* NetworkSettings.Ports bound on the node:
						 * sorted, once each whatever the host address */
	size_t npublished;
};

/*
 * docker_container_inspect - GET /containers/{id}/json into a new struct (free with
 * docker_container_free). id may be an id, a unique id prefix or a name. Returns 0 and
 * sets *out, -ENOENT when no such container exists (any more), or a negative errno.
 * Trap: pid is only a snapshot. The process may exit and its pid be reused before you open
 * /proc/PID/ns/net; re-inspect after you have the namespace open if that matters.
 */
int docker_container_inspect(struct docker_client *c, const char *id,
			     struct docker_container **out);

/*
 * docker_container_parse - an inspect answer (the body of GET /containers/{id}/json, len
 * bytes, need not be NUL-terminated; NULL with len 0 is an empty body) into a new struct.
 * Pure: no I/O, so it can be fuzzed. Returns 0 and sets *out (free with
 * docker_container_free), -EBADMSG when it is not the JSON we expect, or -ENOMEM. Fields
 * of the wrong type are ignored or refused, never trusted: Id must be a string.
 */
int docker_container_parse(const char *json, size_t len, struct docker_container **out);

/* docker_container_free - NULL-safe. */
void docker_container_free(struct docker_container *ct);

struct docker_network {
	char *id, *name, *driver;
	bool ipv6, internal;
	struct moat_cidr *subnets;	/* IPAM.Config[].Subnet, host bits cleared */
	size_t nsubnets;
};

struct docker_network_list {
	struct docker_network *v;	/* in the order dockerd gave them */
	size_t n;
};

/*
 * docker_network_list - every network with its IPAM subnets: the address space Docker
 * hands out, which Moat treats as managed. Returns 0 and sets *out (free with
 * docker_network_list_free), -EBADMSG when a subnet does not parse (rather than leave
 * managed space out), or a negative errno.
 */
int docker_network_list(struct docker_client *c, struct docker_network_list **out);

/*
 * docker_network_list_parse - a GET /networks answer (len bytes), as docker_network_list.
 * Pure. 0 and *out, -EBADMSG (also for a subnet that does not parse), -ENOMEM.
 */
int docker_network_list_parse(const char *json, size_t len, struct docker_network_list **out);

/* docker_network_list_free - NULL-safe. */
void docker_network_list_free(struct docker_network_list *l);

enum docker_event_kind {
	/* The stream is (re)connected, or records were lost: list everything again. */
	DOCKER_EVENT_RESYNC = 1,
	/* Something happened to container id (action says what): inspect it again. */
	DOCKER_EVENT_CONTAINER,
	/* The stream broke (dockerd gone); the watcher retries with backoff. */
	DOCKER_EVENT_DOWN,
};

/* A record on the watcher's pipe; small enough that writes of one are atomic. */
struct docker_event {
	uint8_t kind;			/* enum docker_event_kind */
	char action[23];		/* "start", "die", "destroy", "connect", ...; "" */
	char id[72];			/* container id, NUL-terminated; "" unless CONTAINER */
};

/*
 * The container actions followed; network connect/disconnect are mapped to their container.
 * Podman says "remove" where Docker says "destroy". They are picked here, not by the
 * stream's filters: Podman matches an event filter against its own names ("died"), so
 * filters=event=die loses every stop there.
 */
#define DOCKER_WATCH_ACTIONS \
	{ "start", "die", "destroy", "remove", "rename", "connect", "disconnect" }

/*
 * docker_json_load - one answer or event line of dockerd (len bytes, need not be
 * NUL-terminated) as JSON: a new reference, or NULL when it is not JSON (or on ENOMEM).
 * Trap it closes: dockerd keeps whatever strings its API is given, "\u0000" included, and
 * jansson refuses that escape (in object keys always). One container with a NUL in a label
 * would make every list fail and leave moatd blind. Each "\u0000" escape inside a string is
 * read as U+FFFD instead: the label still exists, and its key or value can never equal one a
 * policy names (selectors only take Kubernetes label syntax).
 */
json_t *docker_json_load(const char *json, size_t len);

/*
 * docker_event_parse - one /events line (len bytes, without its newline, not NUL-terminated)
 * into *out. Pure. Returns 0 with a CONTAINER record when the event is one of
 * DOCKER_WATCH_ACTIONS and names a container (Actor.ID of a container event; of a network
 * event, Actor.Attributes.container (Docker's), else the top-level id (Podman's, whose
 * Actor.ID is the container there too); an id too long for the record is not a container),
 * -ENOENT for any other event (ignore it), or
 * -EBADMSG when the line is not JSON (the caller must resync: it lost an event it cannot
 * name). *out is set only on success.
 */
int docker_event_parse(const char *line, size_t len, struct docker_event *out);

struct docker_watch;

/*
 * docker_watch_start - start a thread that follows c's /events and writes docker_event
 * records to a non-blocking pipe; poll docker_watch_fd for EPOLLIN and drain it with
 * docker_watch_read. The first record, once connected, is a RESYNC. The thread reconnects
 * with exponential backoff (DOCKER_WATCH_BACKOFF_MIN_MS .. _MAX_MS) for as long as it runs.
 * If the pipe is full, records are dropped and a RESYNC follows once there is room.
 * Returns 0 and sets *out, or a negative errno. Stop with docker_watch_stop before freeing c.
 */
int docker_watch_start(struct docker_client *c, struct docker_watch **out);

/* docker_watch_fd - the read end of the pipe; owned by w, valid until docker_watch_stop. */
int docker_watch_fd(const struct docker_watch *w);

/*
 * docker_watch_read - take one record. Returns 0 and fills *ev, -EAGAIN when the pipe is
 * empty, or another negative errno.
 */
int docker_watch_read(struct docker_watch *w, struct docker_event *ev);

/* docker_watch_stop - stop and join the thread (within about 100 ms), close the pipe, free w.
 * NULL-safe. */
void docker_watch_stop(struct docker_watch *w);

/* What the runtime says it is: the headers of its answer to GET /_ping. */
struct docker_version {
	char name[64];		/* "Docker Engine" (Server: Docker/..), "Podman Engine" (Libpod/..) */
	char version[64];	/* the engine's version, "20.10.24+dfsg1", "4.3.1" */
	char api[16];		/* the API version it speaks by default (Api-Version), "1.41" */
	bool podman;		/* Podman's compatible API: pods, and its libpod API beside */
};

/*
 * docker_version_get - ask the runtime what it is, by GET /_ping: Podman takes seconds to
 * answer /version (it asks its storage and OCI runtime), more than a listing may wait. 0 and
 * *out, or a negative errno (-EBADMSG: a server that is neither Docker nor Podman).
 */
int docker_version_get(struct docker_client *c, struct docker_version *out);

/* docker_version_parse - the header lines of that answer (len bytes, "Name: value" lines in
 * any case, CRLF or LF), as docker_version_get. Pure. 0 and *out, or -EBADMSG (no Server
 * header of Docker's or Podman's). Strings too long for the struct are cut. */
int docker_version_parse(const char *headers, size_t len, struct docker_version *out);

/* Shared by docker.c, docker_watch.c and podman.c only. */
int docker_get(struct docker_client *c, const char *path, char **body, size_t *len);
				/* GET /v1.41PATH: the body of a 200 answer, NUL-terminated
				 * (caller frees), or the errors of the table above */
int docker_labels_parse(json_t *obj, struct moat_labels *out);
				/* an object of string labels (or null) into sorted labels,
				 * other values left out; 0, -EBADMSG, -ENOMEM */
void docker_labels_free(struct moat_labels *l);

#endif
