/*
 * Decoder for PersistentStreamResponse messages (docs/protocol.md §3), I/O-free: what the
 * server said, as events the uplink's state machine applies. Unknown fields are skipped;
 * malformed input is an error, never a guess. Fuzzed by tests/fuzz/fuzz_uplink_response.c.
 */
#ifndef RN_UPLINK_RESPONSE_H
#define RN_UPLINK_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

enum rn_up_kind {
	RN_UP_CREATED = 1, /* create_stream_response: stream_id */
	RN_UP_RESUMED,     /* resume_stream_response: offset (-1 = nothing committed) */
	RN_UP_ACK,         /* ingest_record_response: offset = durable up to */
	RN_UP_CLOSE        /* close_stream_signal: close_secs */
};

struct rn_up_event {
	enum rn_up_kind kind;
	char stream_id[64];
	int64_t offset;
	int64_t close_secs;
};

/* Decodes one response into at most `max` events (a message normally holds one). Returns
 * the number of events, or RN_EINVAL for malformed protobuf, a stream id that is empty or
 * longer than 63 bytes, or an ack without its offset. */
int rn_uplink_decode_response(const uint8_t *p, size_t len, struct rn_up_event *ev, int max);

#endif
