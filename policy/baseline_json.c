/*
 * The baseline on disk: JSON, one flow per line (so diffs of a baseline read well), saved
 * atomically. Reading it back is policy/baseline_load.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baseline_priv.h"

/* ---- to JSON ---- */

static json_t *peer_json(const struct bl_peer *p)
{
	struct moat_cidr c = { .family = p->addr.family };
	char buf[64];
	json_t *labels;

	if (!p->ns) {
		c.plen = p->addr.family == AF_INET ? 32 : 128;
		memcpy(c.addr, p->addr.a, sizeof(c.addr));
		return json_pack("{s:s}", "cidr", moat_cidr_format(&c, buf, sizeof(buf)));
	}
	labels = json_object();
	for (size_t i = 0; labels && i < p->labels.n; i++)
		if (json_object_set_new(labels, p->labels.v[i].key,
					json_string(p->labels.v[i].value))) {
			json_decref(labels);
			return NULL;
		}
	return json_pack("{s:s,s:o}", "namespace", p->ns, "labels", labels);
}

static json_t *proto_json(uint8_t proto)
{
	const char *name = moat_proto_name(proto);

	return name ? json_string(name) : json_integer(proto);
}

static json_t *flow_json(const struct moat_baseline *b, const struct bl_flow *f)
{
	json_int_t count = f->count > INT64_MAX ? INT64_MAX : (json_int_t)f->count;

	return json_pack("{s:o,s:o,s:o,s:i,s:I,s:I,s:I}", "from", peer_json(&b->peers[f->from]),
			 "to", peer_json(&b->peers[f->to]), "proto", proto_json(f->proto),
			 "port", (int)f->port, "first", (json_int_t)f->first,
			 "last", (json_int_t)f->last, "count", count);
}

json_t *moat_baseline_json(const struct moat_baseline *b)
{
	json_t *a = json_array();
	uint32_t *order;

	if (!a || bl_flows_sorted(b, &order)) {
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < b->nflows; i++)
		if (json_array_append_new(a, flow_json(b, &b->flows[order[i]]))) {
			json_decref(a);
			a = NULL;
			break;
		}
	free(order);
	return a;
}

/* ---- saving ---- */

/* Each peer's JSON text, compact, rendered once; NULL on ENOMEM. */
static char **peer_texts(const struct bl_view *v)
{
	char **t = calloc(v->npeers + 1, sizeof(*t));

	for (size_t i = 0; t && i < v->npeers; i++) {
		json_t *j = peer_json(&v->peers[i]);

		t[i] = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!t[i]) {
			for (size_t k = 0; k < i; k++)
				free(t[k]);
			free(t);
			return NULL;
		}
	}
	return t;
}

static void peer_texts_free(char **t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free(t[i]);
	free(t);
}

/* One flow as moat_baseline_json's element would print compact. */
static void flow_put(FILE *f, char *const *peer, const struct bl_flow *fl, bool first)
{
	const char *name = moat_proto_name(fl->proto);
	long long count = fl->count > INT64_MAX ? INT64_MAX : (long long)fl->count;

	fprintf(f, "%s{\"from\":%s,\"to\":%s,\"proto\":", first ? "\n  " : ",\n  ",
		peer[fl->from], peer[fl->to]);
	if (name)
		fprintf(f, "\"%s\"", name);
	else
		fprintf(f, "%u", fl->proto);
	fprintf(f, ",\"port\":%u,\"first\":%lld,\"last\":%lld,\"count\":%lld}", fl->port,
		(long long)fl->first, (long long)fl->last, count);
}

/*
 * The document, one flow per line, sorted. Peers are rendered once and flows sorted on
 * integers (bl_view_sorted): a million flows take seconds, not a million JSON trees.
 */
static int baseline_write(const struct bl_view *v, FILE *f)
{
	char **peer = peer_texts(v);
	uint32_t *order = NULL;

	if (!peer || bl_view_sorted(v, &order)) {
		peer_texts_free(peer, v->npeers);
		return -ENOMEM;
	}
	fprintf(f, "{\"version\": %d, \"flows\": [", BASELINE_VERSION);
	for (size_t i = 0; i < v->nflows; i++)
		flow_put(f, peer, &v->flows[order[i]], i == 0);
	fputs("\n]}\n", f);
	free(order);
	peer_texts_free(peer, v->npeers);
	return 0;
}

/* fsyncs the directory path is in, so that the rename is durable. */
static int dir_sync(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

/* Writes and fsyncs tmp; 0 or -errno. */
static int tmp_write(const struct bl_view *v, const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	int ret;

	if (!f) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	ret = baseline_write(v, f);
	if (!ret && (fflush(f) || ferror(f) || fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

int bl_view_save(const struct bl_view *v, const char *path)
{
	char *tmp = NULL;
	int ret;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	errno = 0;
	ret = tmp_write(v, tmp);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	else
		ret = dir_sync(path);
	free(tmp);
	return ret;
}

int moat_baseline_save(const struct moat_baseline *b, const char *path)
{
	struct bl_view v = bl_view_of(b);

	return bl_view_save(&v, path);
}
