/*
 * A call's request body: chunk messages and a side message between them; see body.h.
 * Pure: no I/O, no clock.
 */
#include "body.h"

#include <string.h>

#include "rn_err.h"
#include "rn_grpc.h"

/* Moves the read position of out n bytes on, keeping frame_left. out holds whole messages,
 * so at a message's start its 5-byte prefix is there. */
static void out_take(struct rn_up_body *b, size_t n)
{
	while (n) {
		if (!b->frame_left) {
			const uint8_t *h = b->out.data + b->out_pos;
			b->frame_left = RN_GRPC_HDR_LEN + ((size_t)h[1] << 24 | (size_t)h[2] << 16 |
							   (size_t)h[3] << 8 | (size_t)h[4]);
		}
		size_t k = n < b->frame_left ? n : b->frame_left;
		b->out_pos += k;
		b->frame_left -= k;
		n -= k;
	}
}

size_t rn_up_body_read(struct rn_up_body *b, uint8_t *dst, size_t n, int *from_out)
{
	size_t side = b->side.len - b->side_pos, main = b->out.len - b->out_pos;
	if (side && (b->side_pos || !b->frame_left)) {
		n = n < side ? n : side;
		memcpy(dst, b->side.data + b->side_pos, n);
		if ((b->side_pos += n) == b->side.len) {
			rn_buf_reset(&b->side);
			b->side_pos = 0;
		}
		*from_out = 0;
		return n;
	}
	/* a side message waits: stop at the end of this message so that it goes next */
	if (side && b->frame_left && n > b->frame_left)
		n = b->frame_left;
	n = n < main ? n : main;
	if (n)
		memcpy(dst, b->out.data + b->out_pos, n);
	out_take(b, n);
	*from_out = 1;
	return n;
}

int rn_up_body_side_set(struct rn_up_body *b, int compressed, const void *msg, size_t len)
{
	if (b->side_pos)
		return RN_EAGAIN;
	rn_buf_reset(&b->side);
	int rc = rn_grpc_frame_append(&b->side, compressed, msg, len);
	if (rc)
		rn_buf_reset(&b->side);
	return rc;
}

void rn_up_body_compact(struct rn_up_body *b, size_t keep_under)
{
	if (b->out_pos == b->out.len) {
		rn_buf_reset(&b->out);
		b->out_pos = 0;
	} else if (b->out_pos >= keep_under) {
		memmove(b->out.data, b->out.data + b->out_pos, b->out.len - b->out_pos);
		b->out.len -= b->out_pos;
		b->out_pos = 0;
	}
}

void rn_up_body_reset(struct rn_up_body *b)
{
	rn_buf_reset(&b->out);
	rn_buf_reset(&b->side);
	b->out_pos = b->side_pos = b->frame_left = 0;
}

void rn_up_body_free(struct rn_up_body *b)
{
	rn_buf_free(&b->out);
	rn_buf_free(&b->side);
	b->out_pos = b->side_pos = b->frame_left = 0;
}
