/*
 * Fuzz target: walks arbitrary bytes as protobuf, recursing into length-delimited fields the
 * way the server walks requests and envelope records. Must never read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>

#include "rn_pbwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const uint8_t *p, size_t n, int depth)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	rn_pb_reader_init(&r, p, n);
	while (rn_pb_next(&r, &f) == 1) {
		if (f.wt == RN_PB_LEN && depth < 8)
			walk(f.ptr, f.len, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	walk(data, size, 0);
	return 0;
}
