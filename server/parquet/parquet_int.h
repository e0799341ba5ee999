/*
 * Internals shared by the Parquet writer's files and its unit tests: the RLE/bit-packing
 * hybrid encoder used for levels and dictionary indices (the Parquet format's encodings,
 * "RLE": https://github.com/apache/parquet-format/blob/master/Encodings.md).
 */
#ifndef RN_PARQUET_INT_H
#define RN_PARQUET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

/* Bits needed for values 0..max (0 for max 0). */
int rn_pq__bit_width(uint32_t max);

/* Appends the RLE/bit-packed hybrid encoding of n values of `width` bits (0..32; every value
 * must fit) to out, without any length prefix. Runs of 8 or more equal values become RLE
 * runs, the rest bit-packed groups of 8; only the final group is padded. RN_ENOMEM, RN_EINVAL
 * for a width over 32. */
int rn_pq__rle_u32(struct rn_buf *out, const uint32_t *v, size_t n, int width);
int rn_pq__rle_u8(struct rn_buf *out, const uint8_t *v, size_t n, int width);

#endif
