/* rn_i128: signed 128-bit integers for decimal values (unscaled decimal(p<=38) numbers).
 *
 * The compiler's __int128 where it has one (__SIZEOF_INT128__: amd64, arm64), else, or
 * when RN_NO_INT128 is defined (the CMake option of that name, so the portable path is
 * tested on amd64 too), two's complement in two 64-bit halves (armhf, other 32-bit
 * targets). Only the operations the decimal code uses; all pure, header only, and the same
 * results in both representations: arithmetic wraps modulo 2^128, as unsigned __int128
 * does. Code must use these functions only, never operators, so both paths compile. */
#ifndef RN_I128_H
#define RN_I128_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__) && !defined(RN_NO_INT128)
#define RN_I128_NATIVE 1
__extension__ typedef __int128 rn_i128;
__extension__ typedef unsigned __int128 rn_u128_native;
#else
#define RN_I128_NATIVE 0
typedef struct {
	uint64_t lo, hi; /* two's complement: hi's top bit is the sign */
} rn_i128;
#endif

/* v, sign-extended. */
static inline rn_i128 rn_i128_from_i64(int64_t v)
{
#if RN_I128_NATIVE
	return v;
#else
	rn_i128 r = {(uint64_t)v, v < 0 ? UINT64_MAX : 0};
	return r;
#endif
}

/* The low 64 bits as int64_t (v's value when it fits; callers range-check first). */
static inline int64_t rn_i128_to_i64(rn_i128 v)
{
#if RN_I128_NATIVE
	return (int64_t)(uint64_t)(rn_u128_native)v;
#else
	return (int64_t)v.lo;
#endif
}

/* a + b, wrapping. */
static inline rn_i128 rn_i128_add(rn_i128 a, rn_i128 b)
{
#if RN_I128_NATIVE
	return (rn_i128)((rn_u128_native)a + (rn_u128_native)b);
#else
	rn_i128 r;
	r.lo = a.lo + b.lo;
	r.hi = a.hi + b.hi + (r.lo < a.lo);
	return r;
#endif
}

/* -v, wrapping (the most negative value stays itself). */
static inline rn_i128 rn_i128_neg(rn_i128 v)
{
#if RN_I128_NATIVE
	return (rn_i128)((rn_u128_native)0 - (rn_u128_native)v);
#else
	rn_i128 r;
	r.lo = 0 - v.lo;
	r.hi = 0 - v.hi - (v.lo != 0);
	return r;
#endif
}

/* a * m, wrapping. */
static inline rn_i128 rn_i128_mul_u32(rn_i128 a, uint32_t m)
{
#if RN_I128_NATIVE
	return (rn_i128)((rn_u128_native)a * m);
#else
	uint64_t p0 = (a.lo & 0xffffffffu) * m, p1 = (a.lo >> 32) * m;
	rn_i128 r;
	r.lo = p0 + (p1 << 32);
	r.hi = a.hi * m + (p1 >> 32) + (r.lo < p0);
	return r;
#endif
}

/* -1, 0 or 1 as a <, == or > b (signed). */
static inline int rn_i128_cmp(rn_i128 a, rn_i128 b)
{
#if RN_I128_NATIVE
	return (a > b) - (a < b);
#else
	if (a.hi != b.hi)
		return (int64_t)a.hi < (int64_t)b.hi ? -1 : 1;
	return (a.lo > b.lo) - (a.lo < b.lo);
#endif
}

/* -1, 0 or 1 as a <, == or > b, both read as unsigned 128-bit numbers. */
static inline int rn_i128_ucmp(rn_i128 a, rn_i128 b)
{
#if RN_I128_NATIVE
	rn_u128_native x = (rn_u128_native)a, y = (rn_u128_native)b;
	return (x > y) - (x < y);
#else
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	return (a.lo > b.lo) - (a.lo < b.lo);
#endif
}

/* -1, 0 or 1: the sign of v. */
static inline int rn_i128_sign(rn_i128 v)
{
	return rn_i128_cmp(v, rn_i128_from_i64(0));
}

/* 10^p for 0 <= p <= 38. */
static inline rn_i128 rn_i128_pow10(int p)
{
	rn_i128 r = rn_i128_from_i64(1);
	while (p-- > 0)
		r = rn_i128_mul_u32(r, 10);
	return r;
}

/* *u = *u / d and returns *u % d, *u read as unsigned; d > 0. */
static inline uint32_t rn_i128_udivmod_u32(rn_i128 *u, uint32_t d)
{
#if RN_I128_NATIVE
	rn_u128_native x = (rn_u128_native)*u;
	uint32_t r = (uint32_t)(x % d);
	*u = (rn_i128)(x / d);
	return r;
#else
	/* long division by 32-bit digits: the remainder stays below d, so r<<32|w fits */
	uint32_t w[4] = {(uint32_t)(u->hi >> 32), (uint32_t)u->hi, (uint32_t)(u->lo >> 32),
			 (uint32_t)u->lo};
	uint64_t r = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t cur = r << 32 | w[i];
		w[i] = (uint32_t)(cur / d);
		r = cur % d;
	}
	u->hi = (uint64_t)w[0] << 32 | w[1];
	u->lo = (uint64_t)w[2] << 32 | w[3];
	return (uint32_t)r;
#endif
}

/* v as 16 big-endian two's complement bytes (Parquet's decimal encoding). */
static inline void rn_i128_to_be(rn_i128 v, uint8_t be[16])
{
#if RN_I128_NATIVE
	rn_u128_native u = (rn_u128_native)v;
	for (int i = 15; i >= 0; i--, u >>= 8)
		be[i] = (uint8_t)u;
#else
	for (int i = 0; i < 8; i++) {
		be[7 - i] = (uint8_t)(v.hi >> (8 * i));
		be[15 - i] = (uint8_t)(v.lo >> (8 * i));
	}
#endif
}

/* The value of 16 big-endian two's complement bytes. */
static inline rn_i128 rn_i128_from_be(const uint8_t be[16])
{
#if RN_I128_NATIVE
	rn_u128_native u = 0;
	for (int i = 0; i < 16; i++)
		u = u << 8 | be[i];
	return (rn_i128)u;
#else
	rn_i128 r = {0, 0};
	for (int i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | be[i];
		r.lo = r.lo << 8 | be[8 + i];
	}
	return r;
#endif
}

/* Writes v in decimal into buf, which has room for 41 bytes (the longest,
 * "-170141183460469231731687303715884105728", and the NUL); returns the length. */
static inline int rn_i128_to_str(rn_i128 v, char *buf)
{
	char tmp[40];
	int n = 0, o = 0, neg = rn_i128_sign(v) < 0;
	rn_i128 u = neg ? rn_i128_neg(v) : v;
	do
		tmp[n++] = (char)('0' + rn_i128_udivmod_u32(&u, 10));
	while (rn_i128_sign(u) != 0);
	if (neg)
		buf[o++] = '-';
	while (n > 0)
		buf[o++] = tmp[--n];
	buf[o] = 0;
	return o;
}

#endif
