/*
 * Unit tests for common/rn_lograte: the first event of a name gets a line, the rest are one
 * summary per period with their item counts, quiet names are forgotten, and whatever the input
 * (one table flooding, a new name for every event) the lines per period stay bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rn_lograte.h"

#define S 1000000LL

struct seen {
	size_t n;
	uint64_t events, items, other;
	char last[256];
};

static void emit(void *ctx, const char *name, uint64_t events, uint64_t items)
{
	struct seen *s = ctx;
	s->n++;
	s->events += events;
	s->items += items;
	if (!name) {
		s->other += events;
		return;
	}
	snprintf(s->last, sizeof(s->last), "%s", name);
}

static void test_flood_of_one_name(void **state)
{
	struct rn_lograte r;
	struct seen s = {0};
	size_t lines = 0;
	(void)state;
	rn_lograte_init(&r, 10 * S, 0);
	/* 300,000 batches of 2 bad records each into one table within one period */
	for (int i = 0; i < 300000; i++)
		lines += rn_lograte_note(&r, "main.ops.t", 2, i * 30);
	assert_int_equal(lines, 1);
	assert_int_equal(r.suppressed, 299999);
	assert_int_equal(rn_lograte_tick(&r, 9 * S, emit, &s), 0); /* period not over */
	assert_int_equal(rn_lograte_tick(&r, 10 * S, emit, &s), 1);
	assert_int_equal(s.events, 299999);
	assert_int_equal(s.items, 599998);
	assert_string_equal(s.last, "main.ops.t");
	/* still bad in the next period: counted, not a new first line */
	assert_int_equal(rn_lograte_note(&r, "main.ops.t", 5, 11 * S), 0);
	/* a quiet period forgets the name after its last summary: the next one is a first */
	assert_int_equal(rn_lograte_tick(&r, 20 * S, emit, &s), 1);
	assert_int_equal(s.items, 599998 + 5);
	assert_int_equal(rn_lograte_tick(&r, 30 * S, emit, &s), 0);
	assert_int_equal(rn_lograte_note(&r, "main.ops.t", 1, 31 * S), 1);
	assert_int_equal(r.suppressed, 300000);
}

static void test_names(void **state)
{
	struct rn_lograte r;
	(void)state;
	rn_lograte_init(&r, 0, 0);
	assert_int_equal(r.period_us, 10 * S);
	assert_int_equal(rn_lograte_note(&r, "a.b.c", 1, 1), 1);
	assert_int_equal(rn_lograte_note(&r, "a.b.c", 1, 2), 0);
	assert_int_equal(rn_lograte_note(&r, "a.b.d", 1, 3), 1);
	assert_int_equal(rn_lograte_note(&r, NULL, 1, 4), 1); /* "" is a name too */
	assert_int_equal(rn_lograte_note(&r, "", 1, 5), 0);
	/* names longer than a slot's are compared truncated */
	char l1[400], l2[400];
	memset(l1, 'x', sizeof(l1) - 1);
	l1[sizeof(l1) - 1] = 0;
	memcpy(l2, l1, sizeof(l2));
	l2[350] = 'y';
	assert_int_equal(rn_lograte_note(&r, l1, 1, 6), 1);
	assert_int_equal(rn_lograte_note(&r, l2, 1, 7), 0);
}

static void test_bounded_with_many_names(void **state)
{
	struct rn_lograte r;
	struct seen s = {0};
	(void)state;
	rn_lograte_init(&r, 10 * S, 0);
	for (int period = 0; period < 5; period++) {
		size_t lines = 0;
		s.n = 0;
		for (int i = 0; i < 10000; i++) {
			char name[32];
			snprintf(name, sizeof(name), "t.t.n%d", period * 10000 + i);
			lines += rn_lograte_note(&r, name, 3, period * 10 * S + i);
		}
		assert_true(lines <= RN_LOGRATE_FIRSTS);
		rn_lograte_tick(&r, (period + 1) * 10 * S, emit, &s);
		assert_true(lines + s.n <= RN_LOGRATE_FIRSTS + RN_LOGRATE_SLOTS + 1);
	}
	assert_true(s.other > 0);
	/* every event is either a first line or in some summary */
	assert_int_equal(r.suppressed, s.events);
}

static void test_tick_without_emit(void **state)
{
	struct rn_lograte r;
	(void)state;
	rn_lograte_init(&r, 1 * S, 0);
	assert_int_equal(rn_lograte_note(&r, "x.y.z", 4, 1), 1);
	assert_int_equal(rn_lograte_note(&r, "x.y.z", 4, 2), 0);
	assert_int_equal(rn_lograte_tick(&r, 1 * S, NULL, NULL), 1);
	assert_int_equal(r.key[0].events, 0);
	assert_int_equal(r.key[0].items, 0);
	/* quiet for a period: forgotten, and its slot reused */
	assert_int_equal(rn_lograte_tick(&r, 2 * S + 2, NULL, NULL), 0);
	assert_int_equal(r.key[0].used, 0);
	assert_int_equal(rn_lograte_note(&r, "x.y.w", 1, 3 * S), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_of_one_name),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bounded_with_many_names),
		cmocka_unit_test(test_tick_without_emit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
