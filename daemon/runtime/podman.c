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

int podman_pod_parse(const char *json, size_t len, char **pod)
{
	json_t *j = docker_json_load(json ? json : "", json ? len : 0), *v;
	int ret = -EBADMSG;
	char *p = NULL;

	if (!json_is_object(j))
		goto out;
	v = json_object_get(j, "Pod");
	if (v && !json_is_null(v) && !json_is_string(v))
		goto out;
	ret = 0;
	if (json_string_length(v) && !(p = strdup(json_string_value(v))))
		ret = -ENOMEM;
	if (!ret)
		*pod = p;
out:
	json_decref(j);
	return ret;
}

int podman_pod_of(struct docker_client *c, const char *id, char **pod)
{
	char path[320], *body = NULL;
	size_t len = 0;
	int ret;

	/* the id comes from an inspect answer: 64 hex digits, nothing to escape */
	if (strspn(id, "0123456789abcdef") != strlen(id) || !*id || strlen(id) > 64)
		return -ENOENT;
	snprintf(path, sizeof(path), "/libpod/containers/%s/json", id);
	ret = docker_get(c, path, &body, &len);
	if (!ret)
		ret = podman_pod_parse(body, len, pod);
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
