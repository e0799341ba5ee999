/*
 * A call's request body, I/O-free: the queue of whole gRPC messages the uplink hands to
 * libcurl (the create/resume message, then chunk bytes read from the buffer), and one side
 * message (a health report) that goes out only between two of them, never inside one. The
 * body follows where each queued message ends from their 5-byte prefixes, so whatever
 * slices libcurl asks for, the side message starts at a message boundary and, once begun,
 * is sent to its end before anything else. The struct lives inside the uplink's per-stream
 * state (loop thread); a zeroed struct is an empty body; rn_up_body_free releases it.
 * Unit-tested in tests/unit/uplink/test_body.c.
 */
#ifndef RN_UPLINK_BODY_H
#define RN_UPLINK_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

struct rn_up_body {
	struct rn_buf out; /* whole gRPC messages; bytes before out_pos are sent */
	size_t out_pos;
	size_t frame_left;  /* bytes of the message at out_pos still to go; 0 = between two */
	struct rn_buf side; /* one whole gRPC message to slip in between two of out's, or empty */
	size_t side_pos;
};

/* Bytes not yet read, of both. */
static inline size_t rn_up_body_pending(const struct rn_up_body *b)
{
	return b->out.len - b->out_pos + (b->side.len - b->side_pos);
}

/* Bytes of out not yet read. */
static inline size_t rn_up_body_out_pending(const struct rn_up_body *b)
{
	return b->out.len - b->out_pos;
}

/* Copies up to n (> 0) bytes into dst: the side message when it is begun or out is between
 * two messages, else out's bytes, and while a side message waits, no further than the end
 * of out's current message (so it goes next, however long out is). *from_out says which
 * (the side message is never answered: its bytes do not count as data sent). Returns the
 * bytes copied (0: nothing pending). */
size_t rn_up_body_read(struct rn_up_body *b, uint8_t *dst, size_t n, int *from_out);

/*
 * Frames msg (len bytes) as the side message: compressed flag `compressed`, the 5-byte
 * prefix, the bytes. Replaces a side message not begun yet. 0; RN_EAGAIN when a side
 * message is being sent (it goes on; this one is not taken); RN_ENOMEM (no side message
 * then).
 */
int rn_up_body_side_set(struct rn_up_body *b, int compressed, const void *msg, size_t len);

/* Drops out's bytes already read when at least `keep_under` of them piled up, or all of out
 * when everything was read, so out does not grow with every byte of a long call. */
void rn_up_body_compact(struct rn_up_body *b, size_t keep_under);

/* Empties both (a new call); the storage is kept. */
void rn_up_body_reset(struct rn_up_body *b);
void rn_up_body_free(struct rn_up_body *b);

#endif
