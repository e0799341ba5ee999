/*
 * RLE/bit-packing hybrid encoder; see parquet_int.h. One body, instantiated for the two
 * element widths the writer stores (uint8 levels, uint32 dictionary indices), so neither hot
 * path converts its input. Bit-packed groups are LSB-first, as the format requires.
 */
#include "parquet_int.h"

#include <string.h>

#include "rn_err.h"
#include "rn_pbwire.h"

int rn_pq__bit_width(uint32_t max)
{
	int w = 0;
	while (max) {
		w++;
		max >>= 1;
	}
	return w;
}

static int put_header(struct rn_buf *out, uint64_t h)
{
	uint8_t tmp[10];
	return rn_buf_append(out, tmp, rn_pb_varint_enc(tmp, h));
}

static int put_rle_run(struct rn_buf *out, uint32_t value, size_t count, int width)
{
	uint8_t vb[4];
	int rc;
	while (count) {
		size_t k = count > 0x7fffffff ? 0x7fffffff : count;
		if ((rc = put_header(out, (uint64_t)k << 1)))
			return rc;
		for (int i = 0; i < (width + 7) / 8; i++)
			vb[i] = (uint8_t)(value >> (8 * i));
		if ((rc = rn_buf_append(out, vb, (size_t)(width + 7) / 8)))
			return rc;
		count -= k;
	}
	return 0;
}

#define RLE_BODY(T)                                                                                \
	size_t i = 0;                                                                              \
	int rc;                                                                                    \
	if (width < 0 || width > 32)                                                               \
		return RN_EINVAL;                                                                  \
	if (width == 0)                                                                            \
		return n ? put_rle_run(out, 0, n, 0) : 0;                                          \
	while (i < n) {                                                                            \
		size_t j = i + 1;                                                                  \
		while (j < n && v[j] == v[i])                                                      \
			j++;                                                                       \
		if (j - i >= 8) {                                                                  \
			if ((rc = put_rle_run(out, v[i], j - i, width)))                           \
				return rc;                                                         \
			i = j;                                                                     \
			continue;                                                                  \
		}                                                                                  \
		/* bit-packed groups of 8 until a run of 8 starts at a group boundary */           \
		size_t s = i, groups;                                                              \
		for (;;) {                                                                         \
			i += 8;                                                                    \
			if (i >= n || (i - s) / 8 >= 0x3fffffff) {                                 \
				if (i > n)                                                         \
					i = n;                                                     \
				break;                                                             \
			}                                                                          \
			size_t k = i + 1;                                                          \
			while (k < n && k - i < 8 && v[k] == v[i])                                 \
				k++;                                                               \
			if (k - i >= 8)                                                            \
				break;                                                             \
		}                                                                                  \
		groups = (i - s + 7) / 8;                                                          \
		if ((rc = put_header(out, ((uint64_t)groups << 1) | 1)) ||                         \
		    (rc = rn_buf_reserve(out, groups * (size_t)width)))                            \
			return rc;                                                                 \
		uint8_t *o = out->data + out->len;                                                 \
		uint64_t acc = 0;                                                                  \
		int nb = 0;                                                                        \
		for (size_t k = s; k < s + groups * 8; k++) {                                      \
			acc |= (uint64_t)(k < i ? (uint32_t)v[k] : 0) << nb;                       \
			nb += width;                                                               \
			while (nb >= 8) {                                                          \
				*o++ = (uint8_t)acc;                                               \
				acc >>= 8;                                                         \
				nb -= 8;                                                           \
			}                                                                          \
		}                                                                                  \
		out->len += groups * (size_t)width;                                                \
	}                                                                                          \
	return 0;

int rn_pq__rle_u32(struct rn_buf *out, const uint32_t *v, size_t n, int width)
{
	RLE_BODY(uint32_t)
}

int rn_pq__rle_u8(struct rn_buf *out, const uint8_t *v, size_t n, int width)
{
	RLE_BODY(uint8_t)
}
