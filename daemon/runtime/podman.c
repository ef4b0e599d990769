/*
 * Podman beside its compatible API (podman.h): the pod a container belongs to, and whether a
 * runtime's socket is a rootless one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "podman.h"

void podman_pod_clear(struct podman_pod *p)
{
	free(p->id);
	free(p->name);
	*p = (struct podman_pod){ 0 };
}

/* A string member, or "" when absent or null; -EBADMSG when it is something else. */
static int str_member(json_t *o, const char *key, const char **out)
{
	json_t *v = json_object_get(o, key);

	if (v && !json_is_null(v) && !json_is_string(v))
		return -EBADMSG;
	*out = json_is_string(v) ? json_string_value(v) : "";
	return 0;
}

static int pod_from(json_t *ct, struct podman_pod *out)
{
	struct podman_pod p = { 0 };
	const char *id, *name;

	if (!json_is_object(ct) || str_member(ct, "Pod", &id) || str_member(ct, "PodName", &name))
		return -EBADMSG;
	if (!*id) {
		*out = p;
		return 0;
	}
	p.id = strdup(id);
	p.name = strdup(name);
	p.infra = json_is_true(json_object_get(ct, "IsInfra"));
	if (!p.id || !p.name) {
		podman_pod_clear(&p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

int podman_pod_parse(const char *json, size_t len, struct podman_pod *out)
{
	json_t *j = docker_json_load(json ? json : "", json ? len : 0);
	int ret = -EBADMSG;

	if (json_is_array(j))
		ret = json_array_size(j) ? pod_from(json_array_get(j, 0), out) : -ENOENT;
	json_decref(j);
	return ret;
}

int podman_pod_of(struct docker_client *c, const char *id, struct podman_pod *out)
{
	char path[320], *body = NULL;
	size_t len = 0;
	int ret;

	/* the id comes from an inspect answer: hex digits, nothing to escape in the query */
	if (strspn(id, "0123456789abcdef") != strlen(id) || !*id || strlen(id) > 64)
		return -ENOENT;
	snprintf(path, sizeof(path), "/libpod/containers/json?all=true&filters="
		 "%%7B%%22id%%22%%3A%%5B%%22%s%%22%%5D%%7D", id);	/* {"id":["ID"]} */
	ret = docker_get(c, path, &body, &len);
	if (!ret)
		ret = podman_pod_parse(body, len, out);
	free(body);
	return ret;
}

int podman_pod_labels_parse(const char *json, size_t len, struct moat_labels *out)
{
	json_t *j = docker_json_load(json ? json : "", json ? len : 0);
	int ret = json_is_object(j) ? docker_labels_parse(json_object_get(j, "Labels"), out)
				    : -EBADMSG;

	json_decref(j);
	return ret;
}

int podman_pod_labels(struct docker_client *c, const char *id, struct moat_labels *out)
{
	char path[320], *body = NULL;
	size_t len = 0;
	int ret;

	if (strspn(id, "0123456789abcdef") != strlen(id) || !*id || strlen(id) > 64)
		return -ENOENT;
	snprintf(path, sizeof(path), "/libpod/pods/%s/json", id);
	ret = docker_get(c, path, &body, &len);
	if (!ret)
		ret = podman_pod_labels_parse(body, len, out);
	free(body);
	return ret;
}

int podman_socket_owner(const char *path, uid_t *uid)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*uid = st.st_uid;
	return 0;
}
