/*
 * Thrift compact protocol encoder; see thrift.h. Field headers use the short delta form when
 * the id grows by 1..15, the long form otherwise. Unit-tested against the verified byte
 * vectors of the Parquet digest (tests/unit/parquet).
 */
#include "thrift.h"

#include "rn_err.h"
#include "rn_pbwire.h"

static void put(struct rn_tc *t, const void *p, size_t n)
{
	if (!t->err && rn_buf_append(t->b, p, n))
		t->err = RN_ENOMEM;
}

static void varint(struct rn_tc *t, uint64_t v)
{
	uint8_t tmp[10];
	put(t, tmp, rn_pb_varint_enc(tmp, v));
}

static void field(struct rn_tc *t, int16_t id, uint8_t type)
{
	int16_t delta = (int16_t)(id - t->last[t->depth]);
	if (delta > 0 && delta <= 15) {
		uint8_t h = (uint8_t)((delta << 4) | type);
		put(t, &h, 1);
	} else {
		put(t, &type, 1);
		varint(t, (uint64_t)(((uint32_t)id << 1) ^ (uint32_t)(id >> 15)));
	}
	t->last[t->depth] = id;
}

void rn_tc_init(struct rn_tc *t, struct rn_buf *b)
{
	t->b = b;
	t->depth = 0;
	t->last[0] = 0;
	t->err = 0;
}

static uint64_t zz32(int32_t v)
{
	return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

static uint64_t zz64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

void rn_tc_i32(struct rn_tc *t, int16_t id, int32_t v)
{
	field(t, id, RN_TC_I32);
	varint(t, zz32(v));
}

void rn_tc_i64(struct rn_tc *t, int16_t id, int64_t v)
{
	field(t, id, RN_TC_I64);
	varint(t, zz64(v));
}

void rn_tc_bool(struct rn_tc *t, int16_t id, int v)
{
	field(t, id, v ? RN_TC_TRUE : RN_TC_FALSE);
}

void rn_tc_i8(struct rn_tc *t, int16_t id, int8_t v)
{
	uint8_t b = (uint8_t)v;
	field(t, id, RN_TC_I8);
	put(t, &b, 1);
}

void rn_tc_raw(struct rn_tc *t, const void *p, size_t len)
{
	put(t, p, len);
}

void rn_tc_binary(struct rn_tc *t, int16_t id, const void *p, size_t len)
{
	field(t, id, RN_TC_BINARY);
	rn_tc_elem_binary(t, p, len);
}

static void push(struct rn_tc *t)
{
	if (t->depth + 1 >= RN_TC_MAX_DEPTH) {
		t->err = RN_EINVAL;
		return;
	}
	t->last[++t->depth] = 0;
}

void rn_tc_struct_begin(struct rn_tc *t, int16_t id)
{
	field(t, id, RN_TC_STRUCT);
	push(t);
}

void rn_tc_elem_struct_begin(struct rn_tc *t)
{
	push(t);
}

void rn_tc_struct_end(struct rn_tc *t)
{
	uint8_t z = 0;
	put(t, &z, 1);
	if (t->depth > 0)
		t->depth--;
}

void rn_tc_stop(struct rn_tc *t)
{
	uint8_t z = 0;
	put(t, &z, 1);
}

void rn_tc_list_begin(struct rn_tc *t, int16_t id, uint8_t elem_type, uint32_t n)
{
	field(t, id, RN_TC_LIST);
	if (n <= 14) {
		uint8_t h = (uint8_t)((n << 4) | elem_type);
		put(t, &h, 1);
	} else {
		uint8_t h = (uint8_t)(0xf0 | elem_type);
		put(t, &h, 1);
		varint(t, n);
	}
}

void rn_tc_elem_i32(struct rn_tc *t, int32_t v)
{
	varint(t, zz32(v));
}

void rn_tc_elem_binary(struct rn_tc *t, const void *p, size_t len)
{
	varint(t, len);
	put(t, p, len);
}
