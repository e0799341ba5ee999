/*
 * Fuzz target: decodes arbitrary bytes as server responses, as the uplink does with every
 * message the server (or something pretending to be it) sends.
 */
#include <stddef.h>
#include <stdint.h>

#include "response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_up_event ev[4];
	int n = rn_uplink_decode_response(data, size, ev, 4);
	for (int i = 0; i < n; i++) {
		volatile int64_t sink = ev[i].offset + ev[i].close_secs + ev[i].stream_id[0];
		(void)sink;
	}
	return 0;
}
