/*
 * Unit tests for the uplink's bandwidth cap (uplink/ratelimit.c): the token bucket starts
 * full, grants at most its tokens and never dribbles, refills at exactly the configured rate
 * whatever the call pattern (no fraction lost or gained), tells how long to wait, and an
 * unlimited bucket grants everything. Time is simulated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_unlimited(void **state)
{
	struct rn_ratelimit rl;
	(void)state;
	rn_ratelimit_init(&rl, 0, 5);
	assert_int_equal(rn_ratelimit_take(&rl, 5, 1 << 30), 1 << 30);
	assert_int_equal(rn_ratelimit_wait_us(&rl, 5, 1 << 30), 0);
	rn_ratelimit_init(&rl, -7, 5);
	assert_int_equal(rn_ratelimit_take(&rl, 5, 100), 100);
	assert_int_equal(rn_ratelimit_take(&rl, 5, 0), 0);
}

static void test_burst_and_quantum(void **state)
{
	struct rn_ratelimit rl;
	(void)state;
	/* 100 KB/s: burst 25000, quantum half of it */
	rn_ratelimit_init(&rl, 100000, 0);
	assert_int_equal(rl.burst, 25000);
	assert_int_equal(rl.quantum, 12500);
	assert_int_equal(rn_ratelimit_take(&rl, 0, 1 << 20), 25000); /* a full bucket at start */
	assert_int_equal(rn_ratelimit_take(&rl, 0, 1), 0);
	/* 10 ms later: 1000 bytes. A small want is granted, a large one waits for a quantum. */
	assert_int_equal(rn_ratelimit_take(&rl, 10000, 100000), 0);
	assert_int_equal(rn_ratelimit_take(&rl, 10000, 600), 600);
	assert_int_equal(rn_ratelimit_take(&rl, 10000, 400), 400);
	assert_int_equal(rn_ratelimit_take(&rl, 10000, 1), 0);
	/* a quantum (12500 bytes) takes 125 ms */
	assert_int_equal(rn_ratelimit_wait_us(&rl, 10000, 100000), 125000);
	assert_int_equal(rn_ratelimit_take(&rl, 10000 + 124999, 100000), 0);
	assert_int_equal(rn_ratelimit_take(&rl, 10000 + 125000, 100000), 12500);
	/* fast links: the quantum is 16 KiB */
	rn_ratelimit_init(&rl, 1000000, 0);
	assert_int_equal(rl.quantum, 16384);
	/* tiny and huge rates: burst bounds */
	rn_ratelimit_init(&rl, 10, 0);
	assert_int_equal(rl.burst, 1024);
	assert_int_equal(rl.quantum, 512);
	rn_ratelimit_init(&rl, (int64_t)1 << 50, 0);
	assert_int_equal(rl.burst, 4 << 20);
	assert_int_equal(rl.rate, (int64_t)1 << 40);
}

/* Whatever the pattern of calls, bytes granted over a long run match the rate. */
static void test_long_run_rate(void **state)
{
	static const int64_t steps[] = {1, 7, 13, 999, 3, 12345, 50000, 2};
	struct rn_ratelimit rl;
	(void)state;
	for (int64_t rate = 1000; rate <= 1000000; rate *= 31) { /* demand stays above supply */
		int64_t t = 0, got = 0;
		rn_ratelimit_init(&rl, rate, 0);
		got -= rn_ratelimit_take(&rl, 0, INT64_MAX / 4); /* don't count the initial burst */
		for (int i = 0; t < 20000000; i++) {
			t += steps[i % 8];
			got += rn_ratelimit_take(&rl, t, 1 + (i * 7919) % 40000);
		}
		/* never above rate * t; below it only by what a full bucket cannot hold */
		assert_true(got <= rate * t / 1000000);
		assert_true(got >= rate * t / 1000000 * 98 / 100 - rl.burst);
	}
}

/* The wait time is exact: waiting it always makes take() grant. */
static void test_wait_then_take(void **state)
{
	struct rn_ratelimit rl;
	int64_t t = 0, sent = 0;
	(void)state;
	rn_ratelimit_init(&rl, 33333, 0);
	while (t < 10000000) {
		int64_t w = rn_ratelimit_wait_us(&rl, t, 20000), g;
		t += w;
		g = rn_ratelimit_take(&rl, t, 20000);
		assert_true(g > 0);
		sent += g;
	}
	assert_true(sent <= 33333 * (t / 1000000.0) + rl.burst);
	assert_true(sent >= 33333 * (t / 1000000.0) - 2 * rl.quantum);
}

static void test_idle_caps_at_burst(void **state)
{
	struct rn_ratelimit rl;
	(void)state;
	rn_ratelimit_init(&rl, 4000, 0);
	assert_int_equal(rn_ratelimit_take(&rl, 0, 1 << 20), 1024);
	/* an hour idle earns one burst, not an hour's worth */
	assert_int_equal(rn_ratelimit_take(&rl, (int64_t)3600 * 1000000, 1 << 20), 1024);
	assert_int_equal(rn_ratelimit_take(&rl, (int64_t)3600 * 1000000, 1), 0);
	/* time going backwards (it must not, but) grants nothing and breaks nothing */
	assert_int_equal(rn_ratelimit_take(&rl, 5, 1), 0);
	assert_int_equal(rn_ratelimit_take(&rl, (int64_t)3600 * 1000000 + 256000, 1 << 20), 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),          cmocka_unit_test(test_burst_and_quantum),
		cmocka_unit_test(test_long_run_rate),      cmocka_unit_test(test_wait_then_take),
		cmocka_unit_test(test_idle_caps_at_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
