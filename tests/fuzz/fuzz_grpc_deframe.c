/*
 * Fuzz target: feeds arbitrary bytes to the gRPC deframer in pieces whose sizes come from the
 * input itself, as h2 DATA frames would split them. Checks the zero-copy slices stay inside
 * the buffers they point into.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "rn_grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_grpc_deframer d = {.max_msg = 1 << 16};
	struct rn_grpc_msg m;
	size_t off = 1, used;
	size_t step = size ? (size_t)(data[0] % 13) + 1 : 1;

	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		int rc = rn_grpc_deframe(&d, data + off, n, &used, &m);
		if (rc < 0)
			break;
		if (rc == 1 && m.len) {
			volatile uint8_t sink = m.data[0] ^ m.data[m.len - 1];
			(void)sink;
		}
		if (used == 0 && rc == 0)
			abort(); /* no progress: would loop forever */
		off += used;
	}
	rn_grpc_deframer_free(&d);
	return 0;
}
