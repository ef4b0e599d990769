/* Selectors typed on the command line, and durations ("5m") for --since / --duration. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "moat/duration.h"
#include "moat/selector_text.h"

#define L(k, v) { (char *)(k), (char *)(v) }

static struct moat_label web_v[] = { L("app", "web"), L("env", "prod"), L("tier", "front") };
static const struct moat_labels web = { web_v, 3 };
static struct moat_label db_v[] = { L("app", "db"), L("tier", "back") };
static const struct moat_labels db = { db_v, 2 };
static const struct moat_labels none = { NULL, 0 };

/* Does text parse, and does it select web, db and an unlabelled endpoint as expected? */
static void sel_case(const char *text, int web_m, int db_m, int none_m)
{
	struct moat_selector_text *st = NULL;
	char err[256] = "";
	int ret = moat_selector_text_parse(text, &st, err, sizeof(err));

	CHECK(ret == 0);
	if (ret) {
		fprintf(stderr, "  \"%s\": %s\n", text, err);
		return;
	}
	CHECK(moat_selector_match(&st->sel, &web) == web_m);
	CHECK(moat_selector_match(&st->sel, &db) == db_m);
	CHECK(moat_selector_match(&st->sel, &none) == none_m);
	if (moat_selector_match(&st->sel, &web) != web_m || moat_selector_match(&st->sel, &db) != db_m ||
	    moat_selector_match(&st->sel, &none) != none_m)
		fprintf(stderr, "  wrong matches for \"%s\"\n", text);
	moat_selector_text_free(st);
}

static void test_selectors(void)
{
	sel_case("", 1, 1, 1);
	sel_case("   ", 1, 1, 1);
	sel_case("app=web", 1, 0, 0);
	sel_case("app==web", 1, 0, 0);
	sel_case(" app = web ", 1, 0, 0);
	sel_case("app!=web", 0, 1, 1);		/* != matches the unlabelled too, like NotIn */
	sel_case("app=web,tier!=db", 1, 0, 0);
	sel_case("app=web,tier=back", 0, 0, 0);
	sel_case("tier in (front, back)", 1, 1, 0);
	sel_case("tier in(back)", 0, 1, 0);
	sel_case("tier notin (front)", 0, 1, 1);
	sel_case("env", 1, 0, 0);
	sel_case("!env", 0, 1, 1);
	sel_case("! env", 0, 1, 1);
	sel_case("app,!env", 0, 1, 0);
	sel_case("app in (db),tier", 0, 1, 0);
	sel_case("index", 0, 0, 0);		/* a key that starts like "in" */
	sel_case("tier=", 0, 0, 0);		/* an empty value is a value */
}

static void bad(const char *text, const char *where)
{
	struct moat_selector_text *st = NULL;
	char err[256] = "";

	CHECK(moat_selector_text_parse(text, &st, err, sizeof(err)) == -EINVAL);
	CHECK(st == NULL);
	CHECK(strstr(err, where) != NULL);
	if (!strstr(err, where))
		fprintf(stderr, "  \"%s\": got \"%s\", wanted \"%s\"\n", text, err, where);
}

static void test_errors(void)
{
	bad("=web", "column 1: expected a label key");
	bad("app=web,", "column 9: expected a label key");
	bad("app=web tier=db", "column 9: expected ','");
	bad("app in (a,", "column 11: expected a value");
	bad("app in (a b)", "column 11: expected ',' or ')'");
	bad("app in ()", "expected a value");
	bad("app=(x)", "expected ','");
	bad("!", "expected a label key");
	bad("!app=web", "expected ','");	/* negation takes a key only */
}

static void dur(const char *text, int ok, uint64_t want)
{
	uint64_t ms = 12345;
	int ret = moat_duration_parse(text, &ms);

	CHECK(ok ? ret == 0 && ms == want : ret == -EINVAL && ms == 12345);
	if (ok ? ret || ms != want : ret != -EINVAL)
		fprintf(stderr, "  duration \"%s\": ret %d ms %llu\n", text, ret, (unsigned long long)ms);
}

static void test_durations(void)
{
	dur("5m", 1, 300000);
	dur("90s", 1, 90000);
	dur("90", 1, 90000);
	dur("250ms", 1, 250);
	dur("1h30m", 1, 5400000);
	dur("2d", 1, 172800000);
	dur("1m30s500ms", 1, 90500);
	dur("0s", 1, 0);
	dur("", 0, 0);
	dur("m", 0, 0);
	dur("-5m", 0, 0);
	dur("5x", 0, 0);
	dur("5m3", 0, 0);		/* a unit-less number only on its own */
	dur("1h 30m", 0, 0);
	dur("99999999999999999999s", 0, 0);
	dur("4000d", 0, 0);		/* over 10 years */
	dur("3650d", 1, 3650ull * 86400000);
}

int main(void)
{
	test_selectors();
	test_errors();
	test_durations();
	return check_done();
}
