/*
 * Unit tests for the server's limit decisions (server/limits.h): pressure from WAL bytes and
 * materializer lag with its pushback and message, the effective lag limit, the slow-client
 * and idle rules, the memory budget (early flush, pressure), and how much flow-control
 * window may be granted back. Pure functions, so time is made up: no clocks, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "limits.h"

#define S 1000000LL /* one second in microseconds */

static void test_no_pressure_below_limits(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 1000, .max_lag_ms = 60000};
	struct rn_limits_now n = {.now_us = 100 * S,
				  .wal_bytes = 999,
				  .oldest_pending_us = 41 * S,
				  .next_flush_us = 101 * S};
	int64_t pb = -7;
	char msg[200] = "untouched";
	(void)state;

	assert_int_equal(rn_limits_pressure(&l, &n, &pb, msg, sizeof(msg)), RN_PRESSURE_NONE);
	assert_int_equal(pb, -7); /* outputs are left alone when there is no pressure */
	assert_string_equal(msg, "untouched");
	/* limits of 0 are off, whatever the numbers */
	struct rn_limits off = {0};
	n.wal_bytes = UINT64_MAX / 2;
	n.oldest_pending_us = 1;
	assert_int_equal(rn_limits_pressure(&off, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
}

static void test_wal_pressure_names_the_limit(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 65536, .max_lag_ms = 60000};
	struct rn_limits_now n = {.now_us = 10 * S,
				  .wal_bytes = 65536,
				  .oldest_pending_us = 9 * S,
				  .next_flush_us = 10 * S + 2500000,
				  .flush_cost_us = 300000};
	int64_t pb = 0;
	char msg[300];
	(void)state;

	/* reached at the limit itself */
	assert_int_equal(rn_limits_pressure(&l, &n, &pb, msg, sizeof(msg)), RN_PRESSURE_WAL);
	/* until the next flush (2500) + its cost (300) + slack (100) */
	assert_int_equal(pb, 2900);
	assert_non_null(strstr(msg, "wal_max_bytes"));
	assert_non_null(strstr(msg, "65536 bytes in the WAL"));
	assert_non_null(strstr(msg, "retry in 2900 ms"));
	/* the WAL limit is reported when both are reached */
	n.oldest_pending_us = 1;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_WAL);
}

/* A nearly full WAL disk refuses data (instead of failing syncs); unknown free space and a
 * limit of 0 never do. */
static void test_disk_pressure(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 1 << 30, .wal_min_free = 16 << 20};
	struct rn_limits_now n = {.now_us = 10 * S,
				  .wal_bytes = 100,
				  .next_flush_us = 10 * S + S,
				  .wal_free = (16 << 20) - 1};
	char msg[300];
	(void)state;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, msg, sizeof(msg)), RN_PRESSURE_DISK);
	assert_non_null(strstr(msg, "wal_min_free"));
	assert_non_null(strstr(msg, "16777215 bytes free"));
	n.wal_free = 16 << 20;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	n.wal_free = -1;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	n.wal_free = 0;
	l.wal_min_free = 0;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	/* the WAL byte limit still wins */
	l.wal_min_free = 1;
	n.wal_bytes = 1u << 30;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_WAL);
}

static void test_lag_pressure(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 1 << 30, .max_lag_ms = 60000};
	struct rn_limits_now n = {.now_us = 100 * S,
				  .wal_bytes = 10,
				  .oldest_pending_us = 40 * S,
				  .next_flush_us = 100 * S + 999};
	int64_t pb = 0;
	char msg[300];
	(void)state;

	assert_int_equal(rn_limits_lag_ms(&n), 60000);
	assert_int_equal(rn_limits_pressure(&l, &n, &pb, msg, sizeof(msg)), RN_PRESSURE_LAG);
	assert_non_null(strstr(msg, "max_lag"));
	assert_non_null(strstr(msg, "60000 ms ago (limit 60000 ms)"));
	assert_int_equal(pb, 1 + RN_LIMITS_PUSHBACK_SLACK_MS); /* 999 us round up to 1 ms */
	n.oldest_pending_us = 41 * S;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	/* nothing pending: no lag, whatever the clock says */
	n.oldest_pending_us = 0;
	assert_int_equal(rn_limits_lag_ms(&n), 0);
	/* a clock that went backwards is no lag either */
	n.oldest_pending_us = 200 * S;
	assert_int_equal(rn_limits_lag_ms(&n), 0);
}

static void test_pushback_clamped(void **state)
{
	struct rn_limits_now n = {.now_us = 5 * S};
	(void)state;

	n.next_flush_us = 0; /* overdue: the slack alone, raised to the floor */
	assert_int_equal(rn_limits_pushback_ms(&n), RN_LIMITS_PUSHBACK_MIN_MS);
	n.next_flush_us = 5 * S + 1; /* partial milliseconds round up */
	assert_int_equal(rn_limits_pushback_ms(&n), 1 + RN_LIMITS_PUSHBACK_SLACK_MS);
	n.next_flush_us = 5 * S + 700000;
	assert_int_equal(rn_limits_pushback_ms(&n), 800);
	n.next_flush_us = 5 * S + 3600 * S; /* a one-hour flush interval */
	assert_int_equal(rn_limits_pushback_ms(&n), RN_LIMITS_PUSHBACK_MAX_MS);
}

static void test_effective_lag(void **state)
{
	(void)state;
	assert_int_equal(rn_limits_effective_lag_ms(0, 1000), 0);
	assert_int_equal(rn_limits_effective_lag_ms(-1, 1000), 0);
	assert_int_equal(rn_limits_effective_lag_ms(60000, 1000), 60000);
	assert_int_equal(rn_limits_effective_lag_ms(1000, 1000), 2000);
	assert_int_equal(rn_limits_effective_lag_ms(60000, 3600000), 7200000);
}

static void test_slow_client(void **state)
{
	int64_t since = 0;
	(void)state;

	/* below or at the bound: never, and the clock is reset */
	assert_false(rn_limits_slow(&since, 4096, 4096, 1 * S, 10 * S));
	assert_int_equal(since, 0);
	/* over it: timed from the first time seen over */
	assert_false(rn_limits_slow(&since, 4097, 4096, 1 * S, 10 * S));
	assert_int_equal(since, 10 * S);
	assert_false(rn_limits_slow(&since, 9999, 4096, 1 * S, 10 * S + 999999));
	assert_true(rn_limits_slow(&since, 4097, 4096, 1 * S, 11 * S));
	/* draining below the bound in between starts the clock again */
	since = 0;
	assert_false(rn_limits_slow(&since, 5000, 4096, 1 * S, 20 * S));
	assert_false(rn_limits_slow(&since, 100, 4096, 1 * S, 20 * S + 900000));
	assert_false(rn_limits_slow(&since, 5000, 4096, 1 * S, 21 * S));
	assert_false(rn_limits_slow(&since, 5000, 4096, 1 * S, 21 * S + 999999));
	assert_true(rn_limits_slow(&since, 5000, 4096, 1 * S, 22 * S));
	/* a zero timeout closes as soon as the bound is passed; a clock at 0 still counts */
	since = 0;
	assert_true(rn_limits_slow(&since, 5000, 4096, 0, 0));
	assert_int_not_equal(since, 0);
}

static void test_idle(void **state)
{
	(void)state;
	assert_false(rn_limits_idle(0, 10 * S, 0, 1000 * S));       /* 0 = never */
	assert_false(rn_limits_idle(1, 10 * S, 1 * S, 1000 * S));   /* a call is open */
	assert_false(rn_limits_idle(0, 10 * S, 1 * S, 11 * S - 1)); /* not yet */
	assert_true(rn_limits_idle(0, 10 * S, 1 * S, 11 * S));
}

static void test_header_late(void **state)
{
	(void)state;
	assert_false(rn_limits_header_late(0, 1 * S, 1000 * S));        /* nothing awaited */
	assert_false(rn_limits_header_late(10 * S, 0, 1000 * S));       /* 0 = never */
	assert_false(rn_limits_header_late(10 * S, 1 * S, 11 * S - 1)); /* not yet */
	assert_true(rn_limits_header_late(10 * S, 1 * S, 11 * S));
}

static void test_accept_backoff(void **state)
{
	(void)state;
	assert_int_equal(rn_limits_accept_backoff_ms(0), 50);
	assert_int_equal(rn_limits_accept_backoff_ms(1), 50);
	assert_int_equal(rn_limits_accept_backoff_ms(2), 100);
	assert_int_equal(rn_limits_accept_backoff_ms(5), 800);
	assert_int_equal(rn_limits_accept_backoff_ms(6), 1000);
	assert_int_equal(rn_limits_accept_backoff_ms(UINT64_MAX), 1000); /* no overflow */
}

static void test_window_grant(void **state)
{
	uint64_t conn = 300, stream = 200;
	struct rn_limits_grant g;
	(void)state;

	/* under pressure nothing is granted and nothing is forgotten */
	g = rn_limits_window_grant(&conn, &stream, 1, 0);
	assert_int_equal(g.conn, 0);
	assert_int_equal(g.stream, 0);
	assert_int_equal(conn, 300);
	assert_int_equal(stream, 200);
	/* a held stream: the connection's window only */
	g = rn_limits_window_grant(&conn, &stream, 0, 1);
	assert_int_equal(g.conn, 300);
	assert_int_equal(g.stream, 0);
	assert_int_equal(conn, 0);
	assert_int_equal(stream, 200);
	/* released: the rest of the stream's */
	conn += 50;
	stream += 50;
	g = rn_limits_window_grant(&conn, &stream, 0, 0);
	assert_int_equal(g.conn, 50);
	assert_int_equal(g.stream, 250);
	assert_int_equal(conn, 0);
	assert_int_equal(stream, 0);
	/* bytes of no stream (or a closed one): the connection's only */
	conn = 9;
	g = rn_limits_window_grant(&conn, NULL, 0, 0);
	assert_int_equal(g.conn, 9);
	assert_int_equal(g.stream, 0);
	assert_int_equal(conn, 0);
}

/* Fair share: a table holding its share of a WAL above the soft threshold is refused, the
 * others are not; a lone table may fill the WAL; wal_table_max_bytes caps at any size. */
static void test_table_share(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 1000, .wal_soft_percent = 50};
	struct rn_limits_now n = {.now_us = 10 * S, .wal_bytes = 499, .next_flush_us = 11 * S};
	char msg[300] = "";
	int64_t pb = -7;
	(void)state;
	/* below the soft threshold: nobody is refused, whatever it holds */
	assert_int_equal(rn_limits_table_share(&l, &n, 499, 2, &pb, msg, sizeof(msg)), RN_SHARE_OK);
	assert_int_equal(pb, -7);
	assert_string_equal(msg, "");
	/* at the threshold: A (its share 500 of 2 tables) is refused at 500, not at 499 */
	n.wal_bytes = 500;
	assert_int_equal(rn_limits_table_share(&l, &n, 499, 2, &pb, msg, sizeof(msg)), RN_SHARE_OK);
	n.wal_bytes = 900;
	assert_int_equal(rn_limits_table_share(&l, &n, 800, 2, &pb, msg, sizeof(msg)),
			 RN_SHARE_FAIR);
	assert_int_equal(pb, 1000 + RN_LIMITS_PUSHBACK_SLACK_MS);
	assert_non_null(strstr(msg, "share of wal_max_bytes"));
	assert_non_null(strstr(msg, "its share is 500 (2 tables writing"));
	/* B, with 100 of the 900, goes on (up to wal_max_bytes: rn_limits_pressure's job) */
	assert_int_equal(rn_limits_table_share(&l, &n, 100, 2, NULL, NULL, 0), RN_SHARE_OK);
	/* three tables: the share is 333 */
	assert_int_equal(rn_limits_table_share(&l, &n, 333, 3, NULL, NULL, 0), RN_SHARE_FAIR);
	assert_int_equal(rn_limits_table_share(&l, &n, 332, 3, NULL, NULL, 0), RN_SHARE_OK);
	/* a table alone may use the whole WAL; so may a table new to it (0 bytes) */
	assert_int_equal(rn_limits_table_share(&l, &n, 900, 1, NULL, NULL, 0), RN_SHARE_OK);
	assert_int_equal(rn_limits_table_share(&l, &n, 0, 1, NULL, NULL, 0), RN_SHARE_OK);
	/* soft threshold off, or no wal_max_bytes: no fair share */
	l.wal_soft_percent = 0;
	assert_int_equal(rn_limits_table_share(&l, &n, 800, 2, NULL, NULL, 0), RN_SHARE_OK);
	l.wal_soft_percent = 50;
	l.wal_max_bytes = 0;
	assert_int_equal(rn_limits_table_share(&l, &n, 800, 2, NULL, NULL, 0), RN_SHARE_OK);
	/* the per-table cap applies at any WAL size, alone or not */
	l.wal_table_max_bytes = 300;
	n.wal_bytes = 300;
	assert_int_equal(rn_limits_table_share(&l, &n, 300, 1, &pb, msg, sizeof(msg)),
			 RN_SHARE_CAP);
	assert_non_null(strstr(msg, "wal_table_max_bytes"));
	assert_non_null(strstr(msg, "(limit 300)"));
	assert_int_equal(rn_limits_table_share(&l, &n, 299, 1, NULL, NULL, 0), RN_SHARE_OK);
	/* a soft threshold of 100 % is the hard limit: the share never applies before it */
	struct rn_limits h = {.wal_max_bytes = 1000, .wal_soft_percent = 100};
	n.wal_bytes = 999;
	assert_int_equal(rn_limits_table_share(&h, &n, 990, 2, NULL, NULL, 0), RN_SHARE_OK);
	/* a huge wal_max_bytes: the threshold does not overflow */
	struct rn_limits big = {.wal_max_bytes = UINT64_MAX, .wal_soft_percent = 50};
	n.wal_bytes = UINT64_MAX / 2 - 100;
	assert_int_equal(rn_limits_table_share(&big, &n, UINT64_MAX / 2, 2, NULL, NULL, 0),
			 RN_SHARE_OK);
	n.wal_bytes = UINT64_MAX / 2 + 1;
	assert_int_equal(rn_limits_table_share(&big, &n, UINT64_MAX / 2, 2, NULL, NULL, 0),
			 RN_SHARE_FAIR);
}

/* The same rule per principal: its own share, its own cap (wal_principal_max_bytes), and
 * messages that name a principal; the table cap does not apply to principals nor the
 * principal cap to tables. */
static void test_principal_share(void **state)
{
	struct rn_limits l = {.wal_max_bytes = 1000, .wal_soft_percent = 50};
	struct rn_limits_now n = {.now_us = 10 * S, .wal_bytes = 900, .next_flush_us = 12 * S};
	char msg[300] = "";
	int64_t pb = -7;
	(void)state;
	/* A holds 600 of 900 with B writing too: over its share of 500 */
	assert_int_equal(
		rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 600, 2, &pb, msg, sizeof(msg)),
		RN_SHARE_FAIR);
	assert_int_equal(pb, 2000 + RN_LIMITS_PUSHBACK_SLACK_MS);
	assert_non_null(strstr(msg, "principal over its share of wal_max_bytes"));
	assert_non_null(strstr(msg, "its share is 500 (2 principals writing, 900 bytes"));
	assert_null(strstr(msg, "table over"));
	/* B with 300 goes on; a lone principal may fill the WAL */
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 300, 2, NULL, NULL, 0),
			 RN_SHARE_OK);
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 900, 1, NULL, NULL, 0),
			 RN_SHARE_OK);
	/* below the soft threshold nobody is refused */
	n.wal_bytes = 499;
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 499, 2, NULL, NULL, 0),
			 RN_SHARE_OK);
	/* each cap belongs to its own kind of holder */
	l.wal_table_max_bytes = 100;
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 200, 1, NULL, NULL, 0),
			 RN_SHARE_OK);
	l.wal_table_max_bytes = 0;
	l.wal_principal_max_bytes = 200;
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_TABLE, 200, 1, NULL, NULL, 0),
			 RN_SHARE_OK);
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 199, 1, NULL, NULL, 0),
			 RN_SHARE_OK);
	assert_int_equal(
		rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 200, 1, &pb, msg, sizeof(msg)),
		RN_SHARE_CAP);
	assert_non_null(strstr(msg, "principal over wal_principal_max_bytes"));
	assert_non_null(strstr(msg, "(limit 200)"));
	/* the cap holds with the share off and no wal_max_bytes */
	l.wal_soft_percent = 0;
	l.wal_max_bytes = 0;
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 5000, 3, NULL, NULL, 0),
			 RN_SHARE_CAP);
	l.wal_principal_max_bytes = 0;
	assert_int_equal(rn_limits_share(&l, &n, RN_SHARE_BY_PRINCIPAL, 5000, 3, NULL, NULL, 0),
			 RN_SHARE_OK);
	/* the table wrapper is the table kind of the general rule */
	struct rn_limits t = {.wal_max_bytes = 1000, .wal_soft_percent = 50};
	n.wal_bytes = 900;
	assert_int_equal(rn_limits_table_share(&t, &n, 600, 2, NULL, msg, sizeof(msg)),
			 RN_SHARE_FAIR);
	assert_non_null(strstr(msg, "table over its share"));
}

static void test_memory_budget(void **state)
{
	struct rn_limits l = {.memory_max_bytes = 1000};
	struct rn_limits_now n = {.now_us = 10 * S, .next_flush_us = 11 * S};
	int64_t pb = 0;
	char msg[300];
	(void)state;

	assert_int_equal(rn_limits_builder_share(&l), 500);
	/* builders under their share: no early flush, no pressure */
	n.mem_builders = 499;
	assert_int_equal(rn_limits_flush_early(&l, &n, 0), 0);
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	/* at their share: a flush now, unless one is in flight */
	n.mem_builders = 500;
	assert_int_equal(rn_limits_flush_early(&l, &n, 0), 1);
	assert_int_equal(rn_limits_flush_early(&l, &n, 1), 0);
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	/* builders plus a flush job in flight: under the cap, then at it */
	n.mem_flush = 499;
	assert_int_equal(rn_limits_memory_full(&l, &n), 0);
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	n.mem_flush = 500;
	assert_int_equal(rn_limits_memory_full(&l, &n), 1);
	assert_int_equal(rn_limits_pressure(&l, &n, &pb, msg, sizeof(msg)), RN_PRESSURE_MEMORY);
	/* not until the next flush interval: the job in flight frees the memory */
	assert_int_equal(pb, RN_LIMITS_PUSHBACK_MIN_MS);
	n.flush_cost_us = 250000;
	n.next_flush_us = 70 * S;
	assert_int_equal(rn_limits_pressure(&l, &n, &pb, NULL, 0), RN_PRESSURE_MEMORY);
	assert_int_equal(pb, RN_LIMITS_PUSHBACK_SLACK_MS + 250);
	n.flush_cost_us = 100 * S;
	assert_int_equal(rn_limits_memory_pushback_ms(&n), RN_LIMITS_PUSHBACK_MAX_MS);
	n.flush_cost_us = 0;
	assert_non_null(strstr(msg, "memory_max_bytes"));
	assert_non_null(strstr(msg, "builders 500, flush jobs 500; limit 1000"));
	/* the flush jobs alone fill it too (builders emptied into them) */
	n.mem_builders = 0;
	n.mem_flush = 1000;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_MEMORY);
	/* the WAL limit wins when both are reached */
	l.wal_max_bytes = 10;
	n.wal_bytes = 10;
	assert_int_equal(rn_limits_pressure(&l, &n, NULL, NULL, 0), RN_PRESSURE_WAL);
	/* off: 0, whatever the numbers */
	struct rn_limits off = {0};
	n.mem_builders = n.mem_flush = UINT64_MAX / 2;
	assert_int_equal(rn_limits_builder_share(&off), 0);
	assert_int_equal(rn_limits_flush_early(&off, &n, 0), 0);
	assert_int_equal(rn_limits_pressure(&off, &n, NULL, NULL, 0), RN_PRESSURE_NONE);
	/* the share of a budget near the top of the range does not overflow */
	struct rn_limits big = {.memory_max_bytes = UINT64_MAX};
	assert_true(rn_limits_builder_share(&big) > UINT64_MAX / 2 - 100);
	assert_true(rn_limits_builder_share(&big) <= UINT64_MAX / 2 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_pressure_below_limits),
		cmocka_unit_test(test_table_share),
		cmocka_unit_test(test_principal_share),
		cmocka_unit_test(test_wal_pressure_names_the_limit),
		cmocka_unit_test(test_lag_pressure),
		cmocka_unit_test(test_disk_pressure),
		cmocka_unit_test(test_pushback_clamped),
		cmocka_unit_test(test_effective_lag),
		cmocka_unit_test(test_slow_client),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_window_grant),
		cmocka_unit_test(test_accept_backoff),
		cmocka_unit_test(test_header_late),
		cmocka_unit_test(test_memory_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
