/*
 * gRPC message framing (the 5-byte length prefix) and status codes, shared by the agent's
 * uplink and the server's h2 front. The deframer is an I/O-free incremental parser: feed it
 * the bytes of DATA frames in any split, take out whole messages. It enforces a maximum
 * message size so a hostile length prefix never makes us allocate. One deframer per call;
 * not thread-safe.
 */
#ifndef RN_GRPC_H
#define RN_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_GRPC_HDR_LEN 5
#define RN_GRPC_DEFAULT_MAX_MSG ((size_t)10 << 20)

enum rn_grpc_status {
	RN_GRPC_OK = 0,
	RN_GRPC_CANCELLED = 1,
	RN_GRPC_UNKNOWN = 2,
	RN_GRPC_INVALID_ARGUMENT = 3,
	RN_GRPC_DEADLINE_EXCEEDED = 4,
	RN_GRPC_NOT_FOUND = 5,
	RN_GRPC_ALREADY_EXISTS = 6,
	RN_GRPC_PERMISSION_DENIED = 7,
	RN_GRPC_RESOURCE_EXHAUSTED = 8,
	RN_GRPC_FAILED_PRECONDITION = 9,
	RN_GRPC_ABORTED = 10,
	RN_GRPC_OUT_OF_RANGE = 11,
	RN_GRPC_UNIMPLEMENTED = 12,
	RN_GRPC_INTERNAL = 13,
	RN_GRPC_UNAVAILABLE = 14,
	RN_GRPC_DATA_LOSS = 15,
	RN_GRPC_UNAUTHENTICATED = 16
};

const char *rn_grpc_status_name(int status);

/* Writes the 5-byte prefix for a message of `len` bytes into out. */
void rn_grpc_frame_header(uint8_t out[RN_GRPC_HDR_LEN], int compressed, uint32_t len);

/* Appends prefix + message to b. 0 or RN_ENOMEM. */
int rn_grpc_frame_append(struct rn_buf *b, int compressed, const void *msg, size_t len);

struct rn_grpc_deframer {
	struct rn_buf pending; /* bytes of an incomplete message, prefix included */
	size_t max_msg;        /* 0 = RN_GRPC_DEFAULT_MAX_MSG */
};

/* One whole message. `data` points into the deframer's storage or into the fed input and is
 * valid until the next call on the deframer. */
struct rn_grpc_msg {
	int compressed;
	const uint8_t *data;
	size_t len;
};

/*
 * Feeds bytes and extracts at most one message. Call in a loop: *used tells how many input
 * bytes were consumed; returns 1 with *msg filled when a message is complete, 0 when more
 * input is needed (all input consumed), RN_ETOOBIG when the prefix announces a message over
 * max_msg, RN_EINVAL for a compressed-flag byte other than 0 or 1, RN_ENOMEM on allocation
 * failure. After an error the deframer must be reset before reuse.
 */
int rn_grpc_deframe(struct rn_grpc_deframer *d, const uint8_t *in, size_t len, size_t *used,
		    struct rn_grpc_msg *msg);
/* True when the deframer holds a partial message (a call ended mid-message). */
int rn_grpc_deframer_partial(const struct rn_grpc_deframer *d);
void rn_grpc_deframer_reset(struct rn_grpc_deframer *d);
void rn_grpc_deframer_free(struct rn_grpc_deframer *d);

/* Percent-encodes a status message for the grpc-message trailer into b (NUL-terminated). */
int rn_grpc_message_encode(struct rn_buf *b, const char *msg);

#endif
