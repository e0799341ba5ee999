/*
 * Unit tests for server/net/throttle: more than max_per_s refusals within a second throttle an
 * address for the cool-down (not max_per_s, not the same number spread over seconds); the
 * throttle ends on the tick with the count of what it blocked; a full table evicts the
 * least recently seen address that is not throttled, never a throttled one; 0 is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "throttle.h"

#define S 1000000LL

static struct rn_throttle t;

static void test_threshold_per_second(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	rn_throttle_config(&t, 3, 10 * S);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rn_throttle_note(&t, "10.0.0.1", 1 * S + i), 0);
	assert_int_equal(rn_throttle_blocked(&t, "10.0.0.1", 1 * S + 5), 0);
	/* a new second starts a new count */
	for (int i = 0; i < 3; i++)
		assert_int_equal(rn_throttle_note(&t, "10.0.0.1", 2 * S + i), 0);
	assert_int_equal(rn_throttle_note(&t, "10.0.0.1", 2 * S + 10), 1); /* the 4th */
	assert_int_equal(rn_throttle_note(&t, "10.0.0.1", 2 * S + 11), 0); /* already */
	assert_int_equal(rn_throttle_blocked(&t, "10.0.0.1", 3 * S), 1);
	assert_int_equal(rn_throttle_blocked(&t, "10.0.0.2", 3 * S), 0); /* another address */
	assert_int_equal(rn_throttle_active(&t, 3 * S), 1);
}

static uint64_t ended_blocked;
static char ended_addr[64];

static void on_end(void *ctx, const char *addr, uint64_t blocked)
{
	(void)ctx;
	snprintf(ended_addr, sizeof(ended_addr), "%s", addr);
	ended_blocked = blocked;
}

static void test_cooldown_ends_on_tick(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	rn_throttle_config(&t, 1, 10 * S);
	rn_throttle_note(&t, "::1", 1 * S);
	assert_int_equal(rn_throttle_note(&t, "::1", 1 * S + 1), 1);
	assert_int_equal(rn_throttle_blocked(&t, "::1", 5 * S), 1);
	assert_int_equal(rn_throttle_blocked(&t, "::1", 6 * S), 1);
	assert_int_equal(rn_throttle_tick(&t, 10 * S, on_end, NULL), 0); /* not over yet */
	assert_int_equal(rn_throttle_blocked(&t, "::1", 11 * S + 1), 0); /* over */
	assert_int_equal(rn_throttle_tick(&t, 11 * S + 1, on_end, NULL), 1);
	assert_string_equal(ended_addr, "::1");
	assert_int_equal(ended_blocked, 2);
	assert_int_equal(rn_throttle_active(&t, 12 * S), 0);
	/* it starts counting afresh */
	assert_int_equal(rn_throttle_note(&t, "::1", 11 * S + 2), 0);
	assert_int_equal(rn_throttle_note(&t, "::1", 11 * S + 3), 1);
}

static void test_full_table_keeps_throttled(void **state)
{
	char a[32];
	(void)state;
	memset(&t, 0, sizeof(t));
	rn_throttle_config(&t, 1, 100 * S);
	rn_throttle_note(&t, "bad", 1);
	assert_int_equal(rn_throttle_note(&t, "bad", 2), 1);
	/* a flood of one-off addresses fills and churns the table */
	for (int i = 0; i < 10 * RN_THROTTLE_SLOTS; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 256, i % 256);
		rn_throttle_note(&t, a, 10 + i);
	}
	assert_int_equal(rn_throttle_blocked(&t, "bad", 50 * S), 1);
}

static void test_off(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	rn_throttle_config(&t, 0, 10 * S);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rn_throttle_note(&t, "10.0.0.1", i), 0);
	assert_int_equal(rn_throttle_blocked(&t, "10.0.0.1", 1000), 0);
	assert_int_equal(rn_throttle_blocked(&t, NULL, 1000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_per_second),
		cmocka_unit_test(test_cooldown_ends_on_tick),
		cmocka_unit_test(test_full_table_keeps_throttled),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
