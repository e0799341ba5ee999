/*
 * Decoder for PersistentStreamResponse messages (docs/protocol.md §3), I/O-free: what the
 * server said, as events the uplink's state machine applies. Unknown fields are skipped;
 * malformed input is an error, never a guess. Fuzzed by tests/fuzz/fuzz_uplink_response.c.
 * rn_uplink_feed takes the raw bytes of a call's response body (gRPC framing around those
 * messages) and says exactly where it stopped, so that the uplink tells a server's bad
 * answer from its own failure (out of memory).
 */
#ifndef RN_UPLINK_RESPONSE_H
#define RN_UPLINK_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "rn_grpc.h"

enum rn_up_kind {
	RN_UP_CREATED = 1, /* create_stream_response: stream_id */
	RN_UP_RESUMED,     /* resume_stream_response: offset (-1 = nothing committed) */
	RN_UP_ACK,         /* ingest_record_response: offset = durable up to, committed = in the
			      table up to (Runnel extension, field 1000; -1 absent) */
	RN_UP_CLOSE        /* close_stream_signal: close_secs */
};

struct rn_up_event {
	enum rn_up_kind kind;
	char stream_id[64];
	int64_t offset;
	int64_t committed;
	int64_t close_secs;
};

/* Decodes one response into at most `max` events (a message normally holds one). Returns
 * the number of events, or RN_EINVAL for malformed protobuf, a stream id that is empty or
 * longer than 63 bytes, an ack without its offset, or a negative committed offset. */
int rn_uplink_decode_response(const uint8_t *p, size_t len, struct rn_up_event *ev, int max);

/* Where rn_uplink_feed stopped. */
enum rn_up_feed {
	RN_UP_FEED_OK = 0,     /* every byte taken (a message may be incomplete: more to come) */
	RN_UP_FEED_NOMEM,      /* our side ran out of memory: not the server's fault */
	RN_UP_FEED_TOOBIG,     /* a length prefix over the deframer's max_msg */
	RN_UP_FEED_BADFLAG,    /* a compressed-flag byte other than 0 or 1 */
	RN_UP_FEED_COMPRESSED, /* a compressed message: the call accepts identity only */
	RN_UP_FEED_BADMSG,     /* a message that is not a PersistentStreamResponse */
	RN_UP_FEED_STOPPED     /* the callback returned nonzero */
};

/* Takes the events of one whole response message (n may be 0: nothing this decoder knows);
 * nonzero stops the feed. */
typedef int (*rn_up_msg_fn)(void *ctx, const struct rn_up_event *ev, int n);

/*
 * Feeds `len` bytes of a call's response body, in any split: deframes them (a partial
 * message waits in df, which the caller owns) and decodes each whole message, calling fn
 * with its events, in order. Returns RN_UP_FEED_OK once every byte is taken, else where it
 * stopped; *msg_len is then the length of the message concerned (0 if none). After anything
 * but OK the call is over and df must be reset before it is used again. I/O-free.
 */
enum rn_up_feed rn_uplink_feed(struct rn_grpc_deframer *df, const uint8_t *p, size_t len,
			       rn_up_msg_fn fn, void *ctx, size_t *msg_len);

#endif
