/*
 * PersistentStreamResponse decoder; see response.h.
 */
#include "response.h"

#include <string.h>

#include "rn_err.h"
#include "rn_pbwire.h"

/* Reads varint field 1 of a small message; -1 if absent. RN_EINVAL if malformed. */
static int field1_varint(const uint8_t *p, size_t len, int64_t *out)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	int rc;
	*out = -1;
	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1)
		if (f.num == 1 && f.wt == RN_PB_VARINT)
			*out = (int64_t)f.u;
	return rc < 0 ? RN_EINVAL : 0;
}

/* An IngestRecordResponse: field 1 (durable up to) and 1000 (table committed up to, a
 * Runnel extension; -1 if absent). RN_EINVAL if malformed. */
static int ack_fields(const uint8_t *p, size_t len, int64_t *durable, int64_t *committed)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	int rc;
	*durable = *committed = -1;
	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1) {
		if (f.num == 1 && f.wt == RN_PB_VARINT)
			*durable = (int64_t)f.u;
		else if (f.num == 1000 && f.wt == RN_PB_VARINT) {
			if (f.u > (uint64_t)INT64_MAX)
				return RN_EINVAL; /* negative: no offset */
			*committed = (int64_t)f.u;
		}
	}
	return rc < 0 ? RN_EINVAL : 0;
}

int rn_uplink_decode_response(const uint8_t *p, size_t len, struct rn_up_event *ev, int max)
{
	struct rn_pb_reader r, in;
	struct rn_pb_field f, g;
	int n = 0, rc;

	rn_pb_reader_init(&r, p, len);
	while ((rc = rn_pb_next(&r, &f)) == 1) {
		struct rn_up_event e;
		if (f.wt != RN_PB_LEN || f.num < 1 || f.num > 4)
			continue;
		memset(&e, 0, sizeof(e));
		e.offset = e.committed = -1;
		rn_pb_reader_init(&in, f.ptr, f.len);
		switch (f.num) {
		case 1:
			e.kind = RN_UP_CREATED;
			while ((rc = rn_pb_next(&in, &g)) == 1) {
				if (g.num != 1 || g.wt != RN_PB_LEN)
					continue;
				if (g.len == 0 || g.len >= sizeof(e.stream_id))
					return RN_EINVAL;
				memcpy(e.stream_id, g.ptr, g.len);
				e.stream_id[g.len] = 0;
			}
			if (rc < 0 || !e.stream_id[0])
				return RN_EINVAL;
			break;
		case 2:
			e.kind = RN_UP_RESUMED;
			if (field1_varint(f.ptr, f.len, &e.offset))
				return RN_EINVAL;
			break;
		case 3:
			e.kind = RN_UP_ACK;
			if (ack_fields(f.ptr, f.len, &e.offset, &e.committed) || e.offset < 0)
				return RN_EINVAL;
			break;
		case 4:
			e.kind = RN_UP_CLOSE;
			while ((rc = rn_pb_next(&in, &g)) == 1)
				if (g.num == 1 && g.wt == RN_PB_LEN &&
				    field1_varint(g.ptr, g.len, &e.close_secs))
					return RN_EINVAL;
			if (rc < 0)
				return RN_EINVAL;
			if (e.close_secs < 0)
				e.close_secs = 0;
			break;
		}
		if (n < max)
			ev[n++] = e;
	}
	return rc < 0 ? RN_EINVAL : n;
}

enum rn_up_feed rn_uplink_feed(struct rn_grpc_deframer *df, const uint8_t *p, size_t len,
			       rn_up_msg_fn fn, void *ctx, size_t *msg_len)
{
	size_t off = 0;
	*msg_len = 0;
	while (off < len) {
		struct rn_up_event ev[4];
		struct rn_grpc_msg m;
		size_t used = 0;
		int rc = rn_grpc_deframe(df, p + off, len - off, &used, &m), n;
		off += used;
		if (rc == 0)
			break;
		if (rc < 0) /* an allocation that failed is ours, not a framing error */
			return rc == RN_ENOMEM    ? RN_UP_FEED_NOMEM
			       : rc == RN_ETOOBIG ? RN_UP_FEED_TOOBIG
						  : RN_UP_FEED_BADFLAG;
		*msg_len = m.len;
		if (m.compressed)
			return RN_UP_FEED_COMPRESSED;
		if ((n = rn_uplink_decode_response(m.data, m.len, ev, 4)) < 0)
			return RN_UP_FEED_BADMSG;
		if (fn(ctx, ev, n))
			return RN_UP_FEED_STOPPED;
	}
	return RN_UP_FEED_OK;
}
