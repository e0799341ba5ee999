/*
 * Protobuf wire encoding and zero-copy decoding; see rn_pbwire.h. Bounds are checked on
 * every read; this file is a fuzz target (tests/fuzz/fuzz_pbwire.c).
 */
#include "rn_pbwire.h"

#include <string.h>

#include "rn_err.h"

size_t rn_pb_varint_dec(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	for (i = 0; i < 10 && p + i < end; i++) {
		uint8_t c = p[i];
		if (i == 9 && c > 1)
			return 0; /* more than 64 bits */
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

int rn_pb_next(struct rn_pb_reader *r, struct rn_pb_field *f)
{
	uint64_t key, v;
	size_t n;

	if (r->p >= r->end)
		return 0;
	n = rn_pb_varint_dec(r->p, r->end, &key);
	if (!n || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return RN_EINVAL;
	r->p += n;
	f->num = (uint32_t)(key >> 3);
	f->wt = (enum rn_pb_wt)(key & 7);
	f->ptr = NULL;
	f->len = 0;
	f->u = 0;
	switch (key & 7) {
	case RN_PB_VARINT:
		n = rn_pb_varint_dec(r->p, r->end, &f->u);
		if (!n)
			return RN_EINVAL;
		r->p += n;
		return 1;
	case RN_PB_I64:
		if (r->end - r->p < 8)
			return RN_EINVAL;
		memcpy(&f->u, r->p, 8);
		r->p += 8;
		return 1;
	case RN_PB_I32: {
		uint32_t w;
		if (r->end - r->p < 4)
			return RN_EINVAL;
		memcpy(&w, r->p, 4);
		f->u = w;
		r->p += 4;
		return 1;
	}
	case RN_PB_LEN:
		n = rn_pb_varint_dec(r->p, r->end, &v);
		if (!n)
			return RN_EINVAL;
		r->p += n;
		if (v > (uint64_t)(r->end - r->p))
			return RN_EINVAL;
		f->ptr = r->p;
		f->len = (size_t)v;
		r->p += v;
		return 1;
	}
	return RN_EINVAL; /* groups (3, 4) and reserved wire types */
}

int rn_pb_put_varint(struct rn_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	return rn_buf_append(b, tmp, rn_pb_varint_enc(tmp, v));
}

int rn_pb_put_tag(struct rn_buf *b, uint32_t num, enum rn_pb_wt wt)
{
	return rn_pb_put_varint(b, ((uint64_t)num << 3) | (uint64_t)wt);
}

int rn_pb_put_uint(struct rn_buf *b, uint32_t num, uint64_t v)
{
	int rc = rn_pb_put_tag(b, num, RN_PB_VARINT);
	return rc ? rc : rn_pb_put_varint(b, v);
}

int rn_pb_put_bytes(struct rn_buf *b, uint32_t num, const void *p, size_t len)
{
	int rc;
	if ((rc = rn_pb_put_tag(b, num, RN_PB_LEN)) || (rc = rn_pb_put_varint(b, len)))
		return rc;
	return rn_buf_append(b, p, len);
}

int rn_pb_put_str(struct rn_buf *b, uint32_t num, const char *s)
{
	return rn_pb_put_bytes(b, num, s, strlen(s));
}
