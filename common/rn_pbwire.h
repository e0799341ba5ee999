/*
 * Protobuf wire-format helpers for the hot paths that must not build message objects: the
 * agent's chunk encoder writes batches directly, and the server decodes ingest requests and
 * envelope records straight from the received bytes into column builders. The decoder is
 * zero-copy (slices point into the input) and never reads outside [p, end). No I/O, no
 * allocation except through rn_buf on the encode side.
 */
#ifndef RN_PBWIRE_H
#define RN_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

enum rn_pb_wt { RN_PB_VARINT = 0, RN_PB_I64 = 1, RN_PB_LEN = 2, RN_PB_I32 = 5 };

struct rn_pb_reader {
	const uint8_t *p;   /* next unread byte */
	const uint8_t *end; /* one past the last byte */
};

/* One decoded field. For RN_PB_LEN, `ptr`/`len` slice the input; otherwise `u` holds the
 * value (I64/I32 as raw little-endian bits). */
struct rn_pb_field {
	uint32_t num;
	enum rn_pb_wt wt;
	uint64_t u;
	const uint8_t *ptr;
	size_t len;
};

static inline void rn_pb_reader_init(struct rn_pb_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->end = r->p + len;
}

/* Reads the next field. Returns 1 when a field was read, 0 at a clean end of input, and
 * RN_EINVAL for truncated or malformed input (bad varint, field number 0, group wire types,
 * a length past the end). */
int rn_pb_next(struct rn_pb_reader *r, struct rn_pb_field *f);

/* Decodes a varint at *p (< end). Returns bytes used, 0 on malformed input. */
size_t rn_pb_varint_dec(const uint8_t *p, const uint8_t *end, uint64_t *out);

/* Encoders append to b and return 0 or RN_ENOMEM. */
int rn_pb_put_varint(struct rn_buf *b, uint64_t v);
int rn_pb_put_tag(struct rn_buf *b, uint32_t num, enum rn_pb_wt wt);
int rn_pb_put_uint(struct rn_buf *b, uint32_t num, uint64_t v);
int rn_pb_put_bytes(struct rn_buf *b, uint32_t num, const void *p, size_t len);
int rn_pb_put_str(struct rn_buf *b, uint32_t num, const char *s);
/* Bytes a varint of v takes (1..10). Inline: the agent's chunk builder calls these a few
 * times per record. */
static inline size_t rn_pb_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Writes a varint into out (>= 10 bytes); returns bytes written. */
static inline size_t rn_pb_varint_enc(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static inline int64_t rn_pb_zigzag_dec(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif
