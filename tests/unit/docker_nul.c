/*
 * A NUL in a container's label (dockerd's API takes "\u0000" anywhere) must neither blind
 * moatd (jansson refuses the escape, in keys always: every list and inspect failed) nor let
 * the label pass for one without the NUL (a truncated "app\u0000x" would read as "app").
 */
#include <errno.h>
#include <string.h>

#include "../../daemon/runtime/docker.h"
#include "check.h"

#define FFFD "\xef\xbf\xbd"

static const char inspect[] =
	"{\"Id\":\"3f4e\",\"Name\":\"/evil\",\"State\":{\"Running\":true,\"Pid\":7},"
	"\"Config\":{\"Labels\":{\"app\\u0000x\":\"web\",\"role\":\"adm\\u0000in\","
	"\"tier\":\"web\\u0000\",\"text\":\"a\\\\u0000b\"}}}";

static void test_inspect(void)
{
	struct docker_container *ct = NULL;

	CHECK(docker_container_parse(inspect, strlen(inspect), &ct) == 0);
	if (!ct)
		return;
	CHECK(ct->labels.n == 4);
	CHECK(moat_labels_get(&ct->labels, "app") == NULL);	/* not truncated into "app" */
	CHECK_STR(moat_labels_get(&ct->labels, "app" FFFD "x"), "web");
	CHECK_STR(moat_labels_get(&ct->labels, "role"), "adm" FFFD "in");
	CHECK_STR(moat_labels_get(&ct->labels, "tier"), "web" FFFD);
	CHECK_STR(moat_labels_get(&ct->labels, "text"), "a\\u0000b");	/* an escaped backslash */
	docker_container_free(ct);
}

static void test_list(void)
{
	static const char list[] = "[{\"Id\":\"aa\",\"Labels\":{\"k\\u0000\":\"\\u0000\"}},"
				   "{\"Id\":\"bb\",\"Labels\":{}}]";
	struct docker_id_list *l = NULL;

	CHECK(docker_id_list_parse(list, strlen(list), &l) == 0);
	CHECK(l && l->n == 2);
	docker_id_list_free(l);
}

static void test_event(void)
{
	static const char ev[] = "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":"
				 "\"cc\",\"Attributes\":{\"nul\\u0000key\":\"v\\u0000\"}}}";
	struct docker_event e = { 0 };

	CHECK(docker_event_parse(ev, strlen(ev), &e) == 0);
	CHECK_STR(e.id, "cc");
}

static void test_not_json(void)
{
	static const char *const bad[] = { "\"\\u0000", "{\"a\":\"\\u000", "\\u0000" };
	struct docker_container *ct = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(docker_container_parse(bad[i], strlen(bad[i]), &ct) == -EBADMSG);
	CHECK(ct == NULL);
}

int main(void)
{
	test_inspect();
	test_list();
	test_event();
	test_not_json();
	return check_done();
}
