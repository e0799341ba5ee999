/*
 * Unit tests for common/rn_i128.h, built twice: test_i128 (the compiler's __int128 where it
 * has one) and test_i128_portable (RN_NO_INT128: two 64-bit halves). Both check known
 * answers (the decimal(38) limits, the most negative value, wrapping); where the compiler
 * has __int128, every operation is also compared with plain __int128 arithmetic over edge
 * values and a million pseudo-random operands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rn_i128.h"

static void be_of(rn_i128 v, uint8_t be[16])
{
	rn_i128_to_be(v, be);
}

static void assert_i128_str(rn_i128 v, const char *want)
{
	char buf[48];
	int n = rn_i128_to_str(v, buf);
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static rn_i128 max38(void)
{
	return rn_i128_add(rn_i128_pow10(38), rn_i128_from_i64(-1));
}

static void test_known(void **state)
{
	(void)state;
	assert_i128_str(rn_i128_from_i64(0), "0");
	assert_i128_str(rn_i128_from_i64(-1), "-1");
	assert_i128_str(rn_i128_from_i64(INT64_MIN), "-9223372036854775808");
	assert_i128_str(rn_i128_pow10(19), "10000000000000000000");
	assert_i128_str(max38(), "99999999999999999999999999999999999999");
	assert_i128_str(rn_i128_neg(max38()), "-99999999999999999999999999999999999999");
	/* the most negative value: 0x80 then zeros; negating it gives itself */
	uint8_t be[16] = {0x80}, out[16];
	rn_i128 min = rn_i128_from_be(be);
	assert_i128_str(min, "-170141183460469231731687303715884105728");
	be_of(rn_i128_neg(min), out);
	assert_memory_equal(out, be, 16);
	/* max + 1 wraps to min */
	memset(be, 0xff, sizeof(be));
	be[0] = 0x7f;
	rn_i128 max = rn_i128_from_be(be);
	assert_i128_str(max, "170141183460469231731687303715884105727");
	assert_int_equal(rn_i128_cmp(rn_i128_add(max, rn_i128_from_i64(1)), min), 0);
	assert_int_equal(rn_i128_cmp(min, max), -1);
	assert_int_equal(rn_i128_ucmp(min, max), 1);
	assert_int_equal(rn_i128_sign(min), -1);
	assert_int_equal(rn_i128_sign(rn_i128_from_i64(0)), 0);
	/* 10^38 - 1 in big-endian bytes (Parquet's FLBA(16) for decimal(38)) */
	static const uint8_t m38[16] = {0x4b, 0x3b, 0x4c, 0xa8, 0x5a, 0x86, 0xc4, 0x7a,
					0x09, 0x8a, 0x22, 0x3f, 0xff, 0xff, 0xff, 0xff};
	be_of(max38(), out);
	assert_memory_equal(out, m38, 16);
	assert_int_equal(rn_i128_cmp(rn_i128_from_be(m38), max38()), 0);
	/* carries across the halves */
	rn_i128 x = rn_i128_from_i64(INT64_MAX);
	x = rn_i128_mul_u32(x, 4);
	assert_i128_str(x, "36893488147419103228");
	rn_i128 q = x;
	assert_int_equal(rn_i128_udivmod_u32(&q, 10), 8);
	assert_i128_str(q, "3689348814741910322");
	assert_int_equal(rn_i128_to_i64(rn_i128_from_i64(-42)), -42);
}

#ifdef __SIZEOF_INT128__
__extension__ typedef __int128 n128;
__extension__ typedef unsigned __int128 nu128;

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void nbe(n128 v, uint8_t be[16])
{
	nu128 u = (nu128)v;
	for (int i = 15; i >= 0; i--, u >>= 8)
		be[i] = (uint8_t)u;
}

static rn_i128 conv(n128 v)
{
	uint8_t be[16];
	nbe(v, be);
	return rn_i128_from_be(be);
}

static void same(rn_i128 got, n128 want)
{
	uint8_t a[16], b[16];
	be_of(got, a);
	nbe(want, b);
	assert_memory_equal(a, b, 16);
}

/* A random operand: often small, near the 64-bit border or the decimal(38) limit. */
static n128 operand(void)
{
	nu128 r = (nu128)next() << 64 | next();
	static const n128 p38 = (n128)10000000000000000000u * (n128)10000000000000000000u;
	switch (next() % 6) {
	case 0: return (n128)(int64_t)next() >> (next() % 64);
	case 1: return (n128)(r >> (next() % 128));
	case 2: return (n128)r;
	case 3: return (n128)(int64_t)(next() % 5) - 2 + ((next() & 1) ? (n128)INT64_MAX : 0);
	case 4: return p38 - 1 - (n128)(next() % 1000);
	default: return -(p38 - 1) + (n128)(next() % 1000);
	}
}

static void check_pair(n128 a, n128 b, uint32_t m, uint32_t d)
{
	rn_i128 x = conv(a), y = conv(b);
	same(x, a);
	same(rn_i128_add(x, y), (n128)((nu128)a + (nu128)b));
	same(rn_i128_neg(x), (n128)((nu128)0 - (nu128)a));
	same(rn_i128_mul_u32(x, m), (n128)((nu128)a * m));
	assert_int_equal(rn_i128_cmp(x, y), (a > b) - (a < b));
	assert_int_equal(rn_i128_ucmp(x, y), ((nu128)a > (nu128)b) - ((nu128)a < (nu128)b));
	assert_int_equal(rn_i128_sign(x), (a > 0) - (a < 0));
	assert_int_equal(rn_i128_to_i64(x), (int64_t)(uint64_t)(nu128)a);
	rn_i128 q = x;
	assert_int_equal(rn_i128_udivmod_u32(&q, d), (uint32_t)((nu128)a % d));
	same(q, (n128)((nu128)a / d));
	int64_t s = (int64_t)next();
	same(rn_i128_from_i64(s), (n128)s);
}

static void test_against_int128(void **state)
{
	(void)state;
	static const n128 edge[] = {0,
				    1,
				    -1,
				    9,
				    10,
				    INT64_MAX,
				    INT64_MIN,
				    (n128)UINT64_MAX,
				    -(n128)UINT64_MAX,
				    (n128)1 << 64,
				    -((n128)1 << 64),
				    (n128)((nu128)1 << 127),
				    (n128)(((nu128)1 << 127) - 1)};
	static const uint32_t mults[] = {0, 1, 10, 0xffffffffu, 1000000000u};
	size_t ne = sizeof(edge) / sizeof(edge[0]);
	for (size_t i = 0; i < ne; i++)
		for (size_t j = 0; j < ne; j++)
			for (size_t k = 0; k < sizeof(mults) / sizeof(mults[0]); k++)
				check_pair(edge[i], edge[j], mults[k], mults[k] ? mults[k] : 7);
	for (int i = 0; i < 1000000; i++) {
		uint32_t m = (uint32_t)next(), d = (uint32_t)next();
		check_pair(operand(), operand(), i & 1 ? m : 10, d ? (i & 2 ? d : 10) : 1);
	}
	/* decimal text round trip through the accumulation the parser does */
	for (int i = 0; i < 10000; i++) {
		n128 v = operand();
		char buf[48], want[48], tmp[48];
		int n = 0, o = 0;
		nu128 u = v < 0 ? (nu128)0 - (nu128)v : (nu128)v;
		do
			tmp[n++] = (char)('0' + (int)(u % 10));
		while (u /= 10);
		if (v < 0)
			want[o++] = '-';
		while (n > 0)
			want[o++] = tmp[--n];
		want[o] = 0;
		rn_i128_to_str(conv(v), buf);
		assert_string_equal(buf, want);
	}
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
#ifdef __SIZEOF_INT128__
		cmocka_unit_test(test_against_int128),
#endif
	};
	printf("rn_i128: %s representation\n", RN_I128_NATIVE ? "__int128" : "portable");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
