/*
 * A minimal Thrift compact-protocol encoder: just what Parquet page headers and the file
 * footer need (i32/i64/binary/bool fields, nested structs, lists). Writes into an rn_buf and
 * remembers the first error, so callers check once at the end. Internal to server/parquet.
 */
#ifndef RN_PQ_THRIFT_H
#define RN_PQ_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

enum {
	RN_TC_TRUE = 1,
	RN_TC_FALSE = 2,
	RN_TC_I8 = 3,
	RN_TC_I16 = 4,
	RN_TC_I32 = 5,
	RN_TC_I64 = 6,
	RN_TC_DOUBLE = 7,
	RN_TC_BINARY = 8,
	RN_TC_LIST = 9,
	RN_TC_STRUCT = 12
};

#define RN_TC_MAX_DEPTH 16

struct rn_tc {
	struct rn_buf *b;
	int16_t last[RN_TC_MAX_DEPTH]; /* previous field id per open struct */
	int depth;
	int err; /* first error (RN_ENOMEM / RN_EINVAL), sticky */
};

void rn_tc_init(struct rn_tc *t, struct rn_buf *b);
void rn_tc_i32(struct rn_tc *t, int16_t id, int32_t v);
void rn_tc_i64(struct rn_tc *t, int16_t id, int64_t v);
void rn_tc_bool(struct rn_tc *t, int16_t id, int v);
/* An i8 field: one raw byte, not a varint (Parquet's IntType.bitWidth). */
void rn_tc_i8(struct rn_tc *t, int16_t id, int8_t v);
/* Raw bytes: an element already encoded elsewhere (e.g. a RowGroup serialized earlier). */
void rn_tc_raw(struct rn_tc *t, const void *p, size_t len);
void rn_tc_binary(struct rn_tc *t, int16_t id, const void *p, size_t len);
void rn_tc_struct_begin(struct rn_tc *t, int16_t id);
void rn_tc_struct_end(struct rn_tc *t);
/* A list field header; then write n elements with the raw element writers below. */
void rn_tc_list_begin(struct rn_tc *t, int16_t id, uint8_t elem_type, uint32_t n);
void rn_tc_elem_i32(struct rn_tc *t, int32_t v);
void rn_tc_elem_binary(struct rn_tc *t, const void *p, size_t len);
/* Struct elements of a list: begin opens a fresh field-id context, end writes the stop. */
void rn_tc_elem_struct_begin(struct rn_tc *t);
/* The top-level struct's stop byte (the outermost struct has no field header). */
void rn_tc_stop(struct rn_tc *t);

#endif
