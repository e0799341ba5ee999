/*
 * Unit tests for the uplink's I/O-free parts: the response decoder (golden bytes of
 * docs/protocol.md §4, hostile input) and the retry policy (full jitter bounds, growth, cap,
 * reset, terminal statuses, pushback floor, fault episodes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"
#include "response.h"
#include "rn_err.h"

static void test_decode_golden(void **state)
{
	struct rn_up_event ev[4];
	(void)state;
	/* PersistentStreamResponse: ack 42 is field 3 */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x02\x08\x2a", 4, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_ACK);
	assert_int_equal(ev[0].offset, 42);
	/* create_stream_response{stream_id "sid-1"} */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x0a\x07\x0a\x05sid-1", 9, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_CREATED);
	assert_string_equal(ev[0].stream_id, "sid-1");
	/* resume with and without last_committed_offset */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x12\x03\x08\xac\x02", 5, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_RESUMED);
	assert_int_equal(ev[0].offset, 300);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x12\x00", 2, ev, 4), 1);
	assert_int_equal(ev[0].offset, -1);
	/* close_stream_signal{duration 300 s, 500 ns} */
	assert_int_equal(rn_uplink_decode_response(
				 (const uint8_t *)"\x22\x08\x0a\x06\x08\xac\x02\x10\xf4\x03", 10, ev, 4), 1);
	assert_int_equal(ev[0].kind, RN_UP_CLOSE);
	assert_int_equal(ev[0].close_secs, 300);
	/* unknown fields are skipped */
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x2a\x01x\x1a\x02\x08\x01", 7, ev, 4), 1);
	assert_int_equal(ev[0].offset, 1);
}

static void test_decode_hostile(void **state)
{
	struct rn_up_event ev[4];
	(void)state;
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x05\x08", 3, ev, 4), RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x1a\x00", 2, ev, 4), RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x0a\x00", 2, ev, 4), RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"\x0a\x02\x0a\x00", 4, ev, 4), RN_EINVAL);
	assert_int_equal(rn_uplink_decode_response((const uint8_t *)"", 0, ev, 4), 0);
}

static void test_backoff(void **state)
{
	struct rn_backoff b = {.min_ms = 100, .max_ms = 1000, .slow_ms = 30000};
	(void)state;
	/* full jitter: uniform in [0, ceil), ceil doubling from min up to max */
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 99);
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 199);
	assert_int_equal(rn_backoff_next(&b, 0.5, 0), 200);
	assert_int_equal(rn_backoff_next(&b, 0.0, 0), 0);
	for (int i = 0; i < 50; i++)
		assert_true(rn_backoff_next(&b, 0.999, 0) <= 1000);
	rn_backoff_reset(&b);
	assert_int_equal(rn_backoff_next(&b, 0.999, 0), 99);
	assert_int_equal(rn_backoff_next(&b, 0.1, 1), 30000);
	assert_true(rn_backoff_terminal_status(16));
	assert_true(rn_backoff_terminal_status(5));
	assert_false(rn_backoff_terminal_status(14));
	assert_false(rn_backoff_terminal_status(8));
	assert_false(rn_backoff_terminal_status(-1));
}

/* Pushback is a floor under the jittered backoff, which keeps growing underneath. */
static void test_pushback(void **state)
{
	struct rn_backoff b = {.min_ms = 100, .max_ms = 1000, .slow_ms = 30000};
	(void)state;
	assert_int_equal(rn_backoff_pushback(&b, 0.999, 1500), 1500);
	assert_int_equal(rn_backoff_pushback(&b, 0.999, 50), 199);
	assert_int_equal(rn_backoff_pushback(&b, 0.0, 0), 0);
	assert_int_equal(b.attempt, 3);
	for (int i = 0; i < 20; i++)
		assert_true(rn_backoff_pushback(&b, 0.5, 700) >= 700);
}

/* A fault repeating on every retry is one episode: loud once, quiet after, loud again when
 * its kind changes or after it ended. */
static void test_episode(void **state)
{
	struct rn_episode e = {0};
	int64_t dur = -1;
	(void)state;
	assert_int_equal(rn_episode_end(&e, 5, &dur), 0);
	assert_int_equal(dur, 0);
	assert_int_equal(rn_episode_fail(&e, 3008, 100), 1);
	assert_int_equal(rn_episode_fail(&e, 3008, 200), 0);
	assert_int_equal(rn_episode_fail(&e, 3008, 300), 0);
	assert_int_equal(e.failures, 3);
	assert_int_equal(rn_episode_fail(&e, 4006, 400), 1); /* a different kind: say so */
	assert_int_equal(rn_episode_fail(&e, 4006, 500), 0);
	assert_int_equal(rn_episode_end(&e, 900, &dur), 2);
	assert_int_equal(dur, 500);
	assert_int_equal(rn_episode_fail(&e, 4006, 1000), 1); /* new episode */
	assert_int_equal(rn_episode_end(&e, 1000, NULL), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_golden),
		cmocka_unit_test(test_decode_hostile),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_pushback),
		cmocka_unit_test(test_episode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
