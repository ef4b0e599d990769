/*
 * The endpoints file room: a file of endpoints (moat-policy(5)), or a directory of such files
 * (*.yaml, *.yml, *.json), as a source for the store, each file read again whenever it
 * changes (inotify on the directory, for editors and `mv` that replace files; a check every
 * 5 s where it cannot be watched). A change to one file of a directory costs that file. A
 * broken file is logged and its last good contents stay.
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
 * epfile_read - read every file whose mtime changed (new, changed and removed ones) into the
 * store's file source. 1 when the store changed, 0 when not (unchanged, missing or broken:
 * logged), -ENOMEM.
 */
int epfile_read(struct epfile *f);

/* epfile_start - watch the file on loop (changed is called after each read that changes the
 * store). 0 or -errno. */
int epfile_start(struct epfile *f, struct loop *loop);

#endif
