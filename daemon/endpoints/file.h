/*
 * The endpoints file room: a file of endpoints (moat-policy(5)) as a source for the store,
 * read again whenever it changes (inotify on its directory, for editors and `mv` that
 * replace it; a check every 5 s where the directory cannot be watched). A broken file is
 * logged and the last good one stays.
 */
#ifndef MOAT_ENDPOINTS_FILE_H
#define MOAT_ENDPOINTS_FILE_H

#include <stdint.h>

#include "endpoints/store.h"
#include "loop.h"

struct epfile;

/* Called after the file changed the store; t0_us: when the change was noticed. */
typedef void (*epfile_changed_fn)(void *data, uint64_t t0_us);

/*
 * epfile_new - watch path (borrowed) for store. Reads nothing yet. 0 and *out, or -ENOMEM.
 */
int epfile_new(const char *path, struct epstore *store, epfile_changed_fn changed, void *data,
	       struct epfile **out);

/* epfile_free - NULL-safe; stops watching. */
void epfile_free(struct epfile *f);

/*
 * epfile_read - read the file when its mtime changed and make it the store's file source.
 * 1 when the store changed, 0 when not (unchanged, missing or broken: logged), -ENOMEM.
 */
int epfile_read(struct epfile *f);

/* epfile_start - watch the file on loop (changed is called after each read that changes the
 * store). 0 or -errno. */
int epfile_start(struct epfile *f, struct loop *loop);

#endif
