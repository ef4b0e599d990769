/*
 * Fuzzes the baseline reader (policy/baseline_load.c: moat_baseline_parse) and its JSON pull
 * reader, held to jansson on the same bytes: text jansson cannot read is refused (as "not
 * valid JSON", alone, unless jansson's only complaint is a repeated key: the reader leaves
 * those to its caller, which refuses them too); text jansson reads is never called invalid
 * JSON. A baseline that loads is written out and read back the same (json_equal).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/baseline.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool says_invalid(const struct moat_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].msg && !strncmp(d->v[i].msg, "not valid JSON: ", 16))
			return true;
	return false;
}

static void round_trip(struct moat_baseline *b)
{
	static char path[64];
	struct moat_baseline *back = NULL;
	struct moat_diags d = { 0 };
	json_t *j1, *j2;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/moat-fuzz-baseline.%d.json", (int)getpid());
	FUZZ_CHECK(moat_baseline_save(b, path) == 0);
	FUZZ_CHECK(moat_baseline_load(path, &back, &d) == 0);
	j1 = moat_baseline_json(b);
	j2 = moat_baseline_json(back);
	FUZZ_CHECK(json_equal(j1, j2));
	json_decref(j1);
	json_decref(j2);
	moat_baseline_free(back);
	moat_diags_free(&d);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = (char *)fuzz_copy(data, size);
	struct moat_baseline *b = NULL;
	struct moat_diags d = { 0 };
	json_error_t jerr;
	json_t *j;
	int ret;

	if (!copy)
		return 0;
	ret = moat_baseline_parse("fuzz.json", copy, size, &b, &d);
	/* jansson reads a NUL byte right after a number as if it were not there: no oracle */
	j = memchr(copy, 0, size) ? NULL : json_loadb(copy, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!j && memchr(copy, 0, size))
		goto out;
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	FUZZ_CHECK(!ret == (b != NULL) && !!ret == (d.n > 0));
	if (!j && !strstr(jerr.text, "duplicate object key") && !strstr(jerr.text, "depth"))
		FUZZ_CHECK(ret == -EINVAL && d.n == 1 && says_invalid(&d));
	if (!j)
		FUZZ_CHECK(ret == -EINVAL);
	if (j)
		FUZZ_CHECK(!says_invalid(&d));
out:
	if (!ret)
		round_trip(b);
	json_decref(j);
	moat_baseline_free(b);
	moat_diags_free(&d);
	free(copy);
	return 0;
}
