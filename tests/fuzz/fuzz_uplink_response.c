/*
 * Fuzz target: decodes arbitrary bytes as server responses, as the uplink does with every
 * message the server (or something pretending to be it) sends; and feeds the same bytes as
 * a whole response body (gRPC framing around messages), split where its first byte says, as
 * libcurl hands it over in pieces.
 */
#include <stddef.h>
#include <stdint.h>

#include "response.h"
#include "rn_grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink_events(void *ctx, const struct rn_up_event *ev, int n)
{
	(void)ctx;
	for (int i = 0; i < n; i++) {
		volatile int64_t sink =
			ev[i].offset + ev[i].committed + ev[i].close_secs + ev[i].stream_id[0];
		(void)sink;
	}
	return 0;
}

static void feed(const uint8_t *data, size_t size)
{
	struct rn_grpc_deframer df = {.max_msg = 1 << 20};
	size_t step = size ? (size_t)data[0] % 16 + 1 : 1, mlen;
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		if (rn_uplink_feed(&df, data + off, n, sink_events, NULL, &mlen) != RN_UP_FEED_OK)
			break;
	}
	rn_grpc_deframer_free(&df);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	feed(data, size);
	struct rn_up_event ev[4];
	int n = rn_uplink_decode_response(data, size, ev, 4);
	for (int i = 0; i < n; i++) {
		volatile int64_t sink =
			ev[i].offset + ev[i].committed + ev[i].close_secs + ev[i].stream_id[0];
		(void)sink;
	}
	return 0;
}
