/*
 * Fuzzes yaml_parse's fast path (JSON and the block subset) against libyaml (ytree.h): on any
 * input, the fast path either leaves the text to libyaml or gives exactly libyaml's outcome,
 * tree and messages. The dictionary leans on what tells the two apart: escapes, surrogates,
 * line breaks, indentation, tabs, comments, multi-byte characters, numbers, long keys.
 */
#include <stdint.h>

#include "fuzz.h"
#include "ytree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(ytree_parse_same((const char *)data, size));
	return 0;
}
