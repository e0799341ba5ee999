/*
 * Unit tests for server/net/refuselog: the first refusal of a kind gets a line, the rest are one
 * summary per period, quiet kinds are forgotten, and whatever the clients do (a flood from one
 * address, or a new address for every call) the lines per period stay bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refuselog.h"

#define S 1000000LL
#define UNAUTH 16

struct seen {
	size_t n;
	uint64_t total, other;
	char last_peer[64];
	char last_reason[120];
};

static void emit(void *ctx, const struct rn_refuselog_kind *k, uint64_t count)
{
	struct seen *s = ctx;
	s->n++;
	s->total += count;
	if (!k) {
		s->other += count;
		return;
	}
	strcpy(s->last_peer, k->peer);
	strcpy(s->last_reason, k->reason);
}

static void test_flood_from_one_client(void **state)
{
	struct rn_refuselog r;
	struct seen s = {0};
	size_t lines = 0;
	(void)state;
	rn_refuselog_init(&r, 10 * S, 0);
	/* 200,000 wrong tokens from one address (ports vary), within one period */
	for (int i = 0; i < 200000; i++) {
		char peer[32];
		snprintf(peer, sizeof(peer), "10.0.0.7:%d", 1024 + i % 60000);
		lines += rn_refuselog_note(&r, peer, UNAUTH, "missing or wrong bearer token",
					   i * 40);
	}
	assert_int_equal(lines, 1);
	assert_int_equal(rn_refuselog_tick(&r, 9 * S, emit, &s), 0); /* period not over */
	assert_int_equal(rn_refuselog_tick(&r, 10 * S, emit, &s), 1);
	assert_int_equal(s.total, 199999);
	assert_string_equal(s.last_peer, "10.0.0.7");
	assert_string_equal(s.last_reason, "missing or wrong bearer token");
	/* still refused in the next period: counted, not a new first line */
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.7:5", UNAUTH,
					   "missing or wrong bearer token", 11 * S),
			 0);
	/* a quiet period forgets the kind after its last summary: the next one is a first */
	assert_int_equal(rn_refuselog_tick(&r, 20 * S, emit, &s), 1);
	assert_int_equal(rn_refuselog_tick(&r, 30 * S, emit, &s), 0);
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.7:5", UNAUTH,
					   "missing or wrong bearer token", 31 * S),
			 1);
}

static void test_kinds(void **state)
{
	struct rn_refuselog r;
	(void)state;
	rn_refuselog_init(&r, 0, 0);
	assert_int_equal(r.period_us, 10 * S);
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.1:1", UNAUTH, "a", 1), 1);
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.1:2", UNAUTH, "a", 2), 0);
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.1:2", UNAUTH, "b", 3), 1); /* reason */
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.1:2", 3, "a", 4), 1);      /* status */
	assert_int_equal(rn_refuselog_note(&r, "10.0.0.2:2", UNAUTH, "a", 5), 1); /* peer */
	assert_int_equal(rn_refuselog_note(&r, "[::1]:80", UNAUTH, "a", 6), 1);
	assert_int_equal(rn_refuselog_note(&r, "[::1]:81", UNAUTH, "a", 7), 0);
	assert_string_equal(r.kind[4].peer, "[::1]");
	assert_int_equal(rn_refuselog_note(&r, NULL, UNAUTH, NULL, 8), 1);
	assert_int_equal(rn_refuselog_note(&r, "?", UNAUTH, "", 9), 0);
}

/* A new address for every refusal: first lines are capped per period, the rest summed. */
static void test_many_addresses(void **state)
{
	struct rn_refuselog r;
	struct seen s = {0};
	(void)state;
	rn_refuselog_init(&r, 10 * S, 0);
	for (int period = 0; period < 5; period++) {
		size_t lines = 0;
		uint64_t before = s.total;
		for (int i = 0; i < 10000; i++) {
			char peer[32];
			snprintf(peer, sizeof(peer), "10.%d.%d.%d:1", period, i / 256, i % 256);
			lines += rn_refuselog_note(&r, peer, UNAUTH, "x", period * 10 * S + i);
		}
		assert_true(lines <= RN_REFUSELOG_FIRSTS);
		size_t summaries = rn_refuselog_tick(&r, (period + 1) * 10 * S, emit, &s);
		assert_true(summaries <= RN_REFUSELOG_SLOTS + 1);
		/* every refusal is either a first line or in a summary */
		assert_int_equal(lines + (s.total - before), 10000);
	}
	assert_true(s.other > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_from_one_client),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_many_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
