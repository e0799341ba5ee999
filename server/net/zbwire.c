/*
 * Zerobus codec; see zbwire.h. Unknown fields are skipped (protobuf rules); for a oneof the
 * last member present wins.
 */
#include "zbwire.h"

#include <string.h>
#include <strings.h>

#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_pbwire.h"

static int decode_create(const uint8_t *p, size_t len, struct rn_zb_request *r)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		if (f.num == 1 && f.wt == RN_PB_LEN) {
			r->table = (const char *)f.ptr;
			r->table_len = f.len;
		} else if (f.num == 3 && f.wt == RN_PB_LEN) {
			r->descriptor = f.ptr;
			r->descriptor_len = f.len;
		} else if (f.num == 4 && f.wt == RN_PB_VARINT) {
			r->record_type = (int)f.u;
		}
	}
	return rc;
}

static int decode_resume(const uint8_t *p, size_t len, struct rn_zb_request *r)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		if (f.num == 1 && f.wt == RN_PB_LEN) {
			r->stream_id = (const char *)f.ptr;
			r->stream_id_len = f.len;
		} else if (f.num == 3 && f.wt == RN_PB_VARINT) {
			r->record_type = (int)f.u;
		}
	}
	return rc;
}

static int decode_ingest(const uint8_t *p, size_t len, int batch, struct rn_zb_request *r)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	r->is_single = !batch;
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		if (f.num == 1 && f.wt == RN_PB_VARINT) {
			r->has_offset = 1;
			r->offset = (int64_t)f.u;
		} else if (f.num >= 2 && f.num <= 4 && f.wt == RN_PB_LEN) {
			r->batch_type = f.num == 2 ? 1 : f.num == 3 ? 2 : 4;
			r->batch = f.ptr;
			r->batch_len = f.len;
		}
	}
	return rc;
}

int rn_zb_decode_request(const uint8_t *p, size_t len, int persistent, struct rn_zb_request *r,
			 const char **why)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f, last = {0}, health = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		if (f.wt == RN_PB_LEN && f.num >= 1 && f.num <= (persistent ? 4u : 3u))
			last = f;
		else if (persistent && f.wt == RN_PB_LEN && f.num == RN_ZB_FIELD_AGENT_HEALTH)
			health = f;
	}
	if (rc < 0) {
		*why = "malformed protobuf in request";
		return RN_EINVAL;
	}
	if (!last.num && health.num) {
		/* a health report alone (a payload next to it wins: the report is then ignored) */
		r->kind = RN_ZB_HEALTH;
		r->health = health.ptr;
		r->health_len = health.len;
		return 0;
	}
	if (!last.num) {
		*why = "request has no payload";
		return RN_EINVAL;
	}
	if (last.num == 1) {
		r->kind = RN_ZB_CREATE;
		if (persistent) { /* CreatePersistentStreamRequest{1: CreateIngestStreamRequest} */
			struct rn_pb_reader in;
			struct rn_pb_field g;
			rn_pb_reader_init(&in, last.ptr, last.len);
			while ((rc = rn_pb_next(&in, &g)) == 1) {
				if (g.num == 1 && g.wt == RN_PB_LEN &&
				    decode_create(g.ptr, g.len, r) < 0) {
					rc = RN_EINVAL;
					break;
				}
			}
		} else {
			rc = decode_create(last.ptr, last.len, r);
		}
	} else if (persistent && last.num == 2) {
		r->kind = RN_ZB_RESUME;
		rc = decode_resume(last.ptr, last.len, r);
	} else {
		int batch = last.num == (persistent ? 4u : 3u);
		r->kind = RN_ZB_INGEST;
		rc = decode_ingest(last.ptr, last.len, batch, r);
		if (rc >= 0 && !r->batch) {
			*why = "ingest request carries no records";
			return RN_EINVAL;
		}
	}
	if (rc < 0) {
		*why = "malformed protobuf in request payload";
		return RN_EINVAL;
	}
	if (r->kind == RN_ZB_RESUME && !r->stream_id) {
		*why = "resume_stream without stream_id";
		return RN_EINVAL;
	}
	return 0;
}

int rn_zb_decode_retire(const uint8_t *p, size_t len, const char **table, size_t *table_len,
			const char **stream_id, size_t *stream_id_len, const char **why)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	*table = *stream_id = NULL;
	*table_len = *stream_id_len = 0;
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		if ((f.num == 1 || f.num == 2) && f.wt != RN_PB_LEN) {
			rc = -1;
			break;
		}
		if (f.num == 1) {
			*table = (const char *)f.ptr;
			*table_len = f.len;
		} else if (f.num == 2) {
			*stream_id = (const char *)f.ptr;
			*stream_id_len = f.len;
		}
	}
	if (rc < 0) {
		*why = "malformed protobuf in RetireStreamRequest";
		return RN_EINVAL;
	}
	if (!*stream_id || !*stream_id_len) {
		*why = "RetireStreamRequest without stream_id";
		return RN_EINVAL;
	}
	return 0;
}

int rn_zb_encode_create_response(struct rn_buf *b, int persistent, const char *stream_id)
{
	struct rn_buf in = {0};
	int rc = rn_pb_put_str(&in, 1, stream_id);
	(void)persistent; /* field 1 in both numberings */
	rc = rc ? rc : rn_pb_put_bytes(b, 1, in.data, in.len);
	rn_buf_free(&in);
	return rc;
}

int rn_zb_encode_resume_response(struct rn_buf *b, int64_t last)
{
	uint8_t in[12];
	size_t n = 0;
	if (last >= 0) {
		in[n++] = 0x08;
		n += rn_pb_varint_enc(in + n, (uint64_t)last);
	}
	return rn_pb_put_bytes(b, 2, in, n);
}

int rn_zb_encode_ack(struct rn_buf *b, int persistent, int64_t offset)
{
	uint8_t in[12];
	size_t n = 0;
	in[n++] = 0x08;
	n += rn_pb_varint_enc(in + n, (uint64_t)offset);
	return rn_pb_put_bytes(b, persistent ? 3 : 2, in, n);
}

int rn_zb_encode_ack_committed(struct rn_buf *b, int persistent, int64_t offset, int64_t committed)
{
	uint8_t in[32];
	size_t n = 0;
	in[n++] = 0x08;
	n += rn_pb_varint_enc(in + n, (uint64_t)offset);
	if (committed >= 0) {
		n += rn_pb_varint_enc(in + n, (uint64_t)RN_ZB_FIELD_TABLE_COMMITTED << 3);
		n += rn_pb_varint_enc(in + n, (uint64_t)committed);
	}
	return rn_pb_put_bytes(b, persistent ? 3 : 2, in, n);
}

int rn_zb_encode_close_signal(struct rn_buf *b, int persistent, int64_t seconds)
{
	uint8_t dur[12], in[16];
	size_t n = 0, m = 0;
	dur[n++] = 0x08;
	n += rn_pb_varint_enc(dur + n, (uint64_t)seconds);
	in[m++] = 0x0a;
	in[m++] = (uint8_t)n;
	memcpy(in + m, dur, n);
	m += n;
	return rn_pb_put_bytes(b, persistent ? 4 : 3, in, m);
}

int rn_zb_parse_clock(const uint8_t *v, size_t len, char *boot_id, size_t idcap, int64_t *us)
{
	size_t i = 0, n;
	int64_t t = 0;
	if (!idcap)
		return RN_EINVAL;
	while (i < len && i < idcap - 1 &&
	       ((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') || v[i] == '-'))
		i++;
	if (!i || i >= len || v[i] != ' ')
		return RN_EINVAL;
	n = i++;
	if (i == len)
		return RN_EINVAL;
	for (; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || t > (INT64_MAX - 9) / 10)
			return RN_EINVAL;
		t = t * 10 + (v[i] - '0');
	}
	memcpy(boot_id, v, n);
	boot_id[n] = 0;
	*us = t;
	return 0;
}

int rn_zb_http_check(const uint8_t *method, size_t mlen, const uint8_t *ctype, size_t clen,
		     int *grpc_status, const char **why)
{
	static const char grpc[] = "application/grpc";
	const size_t glen = sizeof(grpc) - 1;

	if (!method || mlen != 4 || memcmp(method, "POST", 4)) {
		*grpc_status = RN_GRPC_INTERNAL;
		*why = "gRPC calls are HTTP/2 POST requests";
		return 405;
	}
	if (!ctype || clen < glen || strncasecmp((const char *)ctype, grpc, glen) ||
	    (clen > glen && ctype[glen] != '+' && ctype[glen] != ';')) {
		*grpc_status = RN_GRPC_INVALID_ARGUMENT;
		*why = "not a gRPC request: content-type must be application/grpc";
		return 415;
	}
	return 0;
}
