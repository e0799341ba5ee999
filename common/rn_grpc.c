/*
 * gRPC length-prefixed framing; see rn_grpc.h. The fast path hands out messages that lie
 * whole in the input without copying; only messages split across feeds are assembled in
 * `pending`. Fuzzed by tests/fuzz/fuzz_grpc_deframe.c.
 */
#include "rn_grpc.h"

#include <string.h>

#include "rn_err.h"

const char *rn_grpc_status_name(int s)
{
	static const char *names[] = {"OK",
				      "CANCELLED",
				      "UNKNOWN",
				      "INVALID_ARGUMENT",
				      "DEADLINE_EXCEEDED",
				      "NOT_FOUND",
				      "ALREADY_EXISTS",
				      "PERMISSION_DENIED",
				      "RESOURCE_EXHAUSTED",
				      "FAILED_PRECONDITION",
				      "ABORTED",
				      "OUT_OF_RANGE",
				      "UNIMPLEMENTED",
				      "INTERNAL",
				      "UNAVAILABLE",
				      "DATA_LOSS",
				      "UNAUTHENTICATED"};
	if (s < 0 || s > 16)
		return "UNKNOWN_STATUS";
	return names[s];
}

void rn_grpc_frame_header(uint8_t out[RN_GRPC_HDR_LEN], int compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int rn_grpc_frame_append(struct rn_buf *b, int compressed, const void *msg, size_t len)
{
	uint8_t h[RN_GRPC_HDR_LEN];
	int rc;
	if (len > UINT32_MAX)
		return RN_ETOOBIG;
	rn_grpc_frame_header(h, compressed, (uint32_t)len);
	if ((rc = rn_buf_reserve(b, len + sizeof(h))) != 0)
		return rc;
	rn_buf_append(b, h, sizeof(h));
	rn_buf_append(b, msg, len);
	return 0;
}

static int check_header(const struct rn_grpc_deframer *d, const uint8_t *h, size_t *mlen)
{
	size_t max = d->max_msg ? d->max_msg : RN_GRPC_DEFAULT_MAX_MSG;
	uint32_t len =
		((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
	if (h[0] > 1)
		return RN_EINVAL;
	if (len > max)
		return RN_ETOOBIG;
	*mlen = len;
	return 0;
}

int rn_grpc_deframe(struct rn_grpc_deframer *d, const uint8_t *in, size_t len, size_t *used,
		    struct rn_grpc_msg *msg)
{
	size_t mlen, take;
	int rc;

	*used = 0;
	if (d->pending.len == 0) {
		/* Fast path: a whole message in the input. */
		if (len >= RN_GRPC_HDR_LEN) {
			if ((rc = check_header(d, in, &mlen)) != 0)
				return rc;
			if (len - RN_GRPC_HDR_LEN >= mlen) {
				msg->compressed = in[0];
				msg->data = in + RN_GRPC_HDR_LEN;
				msg->len = mlen;
				*used = RN_GRPC_HDR_LEN + mlen;
				return 1;
			}
		}
		d->pending.max =
			(d->max_msg ? d->max_msg : RN_GRPC_DEFAULT_MAX_MSG) + RN_GRPC_HDR_LEN;
		if ((rc = rn_buf_append(&d->pending, in, len)) != 0)
			return rc;
		*used = len;
		if (len >= RN_GRPC_HDR_LEN && (rc = check_header(d, in, &mlen)) != 0)
			return rc;
		return 0;
	}
	/* Slow path: complete the header, then the body. */
	if (d->pending.len < RN_GRPC_HDR_LEN) {
		take = RN_GRPC_HDR_LEN - d->pending.len;
		if (take > len)
			take = len;
		if ((rc = rn_buf_append(&d->pending, in, take)) != 0)
			return rc;
		*used += take;
		in += take;
		len -= take;
		if (d->pending.len < RN_GRPC_HDR_LEN)
			return 0;
	}
	if ((rc = check_header(d, d->pending.data, &mlen)) != 0)
		return rc;
	take = RN_GRPC_HDR_LEN + mlen - d->pending.len;
	if (take > len)
		take = len;
	if ((rc = rn_buf_append(&d->pending, in, take)) != 0)
		return rc;
	*used += take;
	if (d->pending.len < RN_GRPC_HDR_LEN + mlen)
		return 0;
	msg->compressed = d->pending.data[0];
	msg->data = d->pending.data + RN_GRPC_HDR_LEN;
	msg->len = mlen;
	d->pending.len = 0; /* data stays valid until the next append */
	return 1;
}

int rn_grpc_deframer_partial(const struct rn_grpc_deframer *d)
{
	return d->pending.len != 0;
}

void rn_grpc_deframer_reset(struct rn_grpc_deframer *d)
{
	d->pending.len = 0;
}

void rn_grpc_deframer_free(struct rn_grpc_deframer *d)
{
	rn_buf_free(&d->pending);
}

int rn_grpc_message_encode(struct rn_buf *b, const char *msg)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (const unsigned char *p = (const unsigned char *)msg; *p && !rc; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			rc = rn_buf_append_u8(b, *p);
		} else {
			uint8_t e[3] = {'%', (uint8_t)hex[*p >> 4], (uint8_t)hex[*p & 15]};
			rc = rn_buf_append(b, e, 3);
		}
	}
	return rc ? rc : (rn_buf_append_u8(b, 0) ? RN_ENOMEM : (b->len--, 0));
}
