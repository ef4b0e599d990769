/*
 * The runtime room: the container runtime (Docker Engine API, or Podman's compatible one)
 * as a source of endpoints and managed subnets for the store. It lists everything when it
 * starts and whenever the event stream (re)connects or loses events, and follows the stream
 * between: each event re-inspects one container and puts or deletes its endpoint. Events
 * are hints; listings are the truth.
 */
#ifndef MOAT_RUNTIME_RUNTIME_H
#define MOAT_RUNTIME_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "endpoints/store.h"
#include "loop.h"

struct runtime;

/* The store changed: t0_us is when the event that changed it arrived (loop_now_us). */
typedef void (*runtime_changed_fn)(void *data, uint64_t t0_us);

/*
 * runtime_new - a client for cfg->runtime feeding store (both borrowed for its life);
 * changed(data, t0) after each change it makes. Connects nothing yet. 0 and *out, or -EINVAL
 * (a runtime URL it cannot use), -ENOMEM.
 */
int runtime_new(const struct config *cfg, struct epstore *store, runtime_changed_fn changed,
		void *data, struct runtime **out);

/* runtime_free - NULL-safe; stops the event stream. */
void runtime_free(struct runtime *rt);

/*
 * runtime_resync - list every container and network and make the store's runtime source
 * exactly that, then call changed. 0, or -errno (the runtime did not answer: the store keeps
 * what it had; logged once).
 */
int runtime_resync(struct runtime *rt);

/*
 * runtime_check - the periodic look: list the containers and networks again and inspect only
 * the containers whose listing changed (containers_check); changed is called only when
 * something did. What a listing cannot show is for runtime_resync, which this is until the
 * runtime has been listed and while it does not answer. 0 or -errno, as runtime_resync.
 */
int runtime_check(struct runtime *rt);

/* runtime_start - the first listing, then follow the event stream on loop. A runtime that
 * does not answer yet is not an error: listing happens when the stream connects. 0 or -errno. */
int runtime_start(struct runtime *rt, struct loop *loop);

/* runtime_synced - has the runtime been listed at least once? runtime_up - does it answer? */
bool runtime_synced(const struct runtime *rt);
bool runtime_up(const struct runtime *rt);

/* runtime_name, runtime_version - what the runtime said it is ("Podman Engine", "4.3.1"),
 * or NULL before it answered once. Owned by rt. */
const char *runtime_name(const struct runtime *rt);
const char *runtime_version(const struct runtime *rt);

/* runtime_containers - containers listed. runtime_dump - them as JSON (id, name, netmode). */
size_t runtime_containers(const struct runtime *rt);
json_t *runtime_dump(const struct runtime *rt);

#endif
