/* Event time from JSON payloads (agent/evtime.c): units by magnitude, RFC 3339, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "evtime.h"
#include "rn_err.h"

#define T0 1795600800LL /* 2026-11-25T10:00:00Z */

static int64_t ev(const char *json, const char *field, int want_rc)
{
	int64_t us = -1;
	assert_int_equal(rn_evtime_json(json, strlen(json), field, &us), want_rc);
	return us;
}

static void numbers_by_magnitude(void **st)
{
	(void)st;
	assert_int_equal(ev("{\"ts\":1795600800}", "ts", 0), T0 * 1000000);
	assert_int_equal(ev("{\"ts\":1795600800123}", "ts", 0), T0 * 1000000 + 123000);
	assert_int_equal(ev("{\"ts\":1795600800123456}", "ts", 0), T0 * 1000000 + 123456);
	assert_int_equal(ev("{\"ts\":1795600800123456789}", "ts", 0), T0 * 1000000 + 123456);
	assert_int_equal(ev("{\"ts\":1795600800.25}", "ts", 0), T0 * 1000000 + 250000);
	assert_int_equal(ev(" {\"a\":{\"ts\":1},\"ts\" : 1795600800 } ", "ts", 0), T0 * 1000000);
}

static void rfc3339(void **st)
{
	(void)st;
	assert_int_equal(ev("{\"t\":\"2026-11-25T10:00:00Z\"}", "t", 0), T0 * 1000000);
	assert_int_equal(ev("{\"t\":\"2026-11-25T10:00:00.5Z\"}", "t", 0), T0 * 1000000 + 500000);
	assert_int_equal(ev("{\"t\":\"2026-11-25T12:00:00.000001+02:00\"}", "t", 0),
			 T0 * 1000000 + 1);
	assert_int_equal(ev("{\"t\":\"2026-11-25 05:30:00-04:30\"}", "t", 0), T0 * 1000000);
	assert_int_equal(ev("{\"t\":\"1970-01-01T00:00:00Z\"}", "t", 0), 0);
	int64_t us;
	assert_int_equal(rn_evtime_rfc3339("2024-02-29T00:00:00Z", 20, &us), 0);
	assert_int_equal(us, 1709164800LL * 1000000);
}

static void bad_input(void **st)
{
	(void)st;
	ev("{\"t\":\"2026-13-01T00:00:00Z\"}", "t", RN_EINVAL);
	ev("{\"t\":\"2026-11-25T10:00:00\"}", "t", RN_EINVAL); /* no zone */
	ev("{\"t\":\"2026-11-25T10:00:00Zjunk\"}", "t", RN_EINVAL);
	ev("{\"t\":\"2026-02-30T10:00:00Z\"}", "t", RN_EINVAL);
	ev("{\"t\":\"2026-02-29T10:00:00Z\"}", "t", RN_EINVAL); /* not a leap year */
	ev("{\"t\":\"2000-02-29T00:00:00Z\"}", "t", 0);
	ev("{\"t\":\"yesterday\"}", "t", RN_EINVAL);
	ev("{\"t\":-5}", "t", RN_EINVAL);
	ev("{\"t\":true}", "t", RN_EINVAL);
	ev("{\"t\":1e999}", "t", RN_EINVAL);
	ev("{\"x\":1}", "t", RN_ENOTFOUND);
	ev("[1,2]", "t", RN_ENOTFOUND);
	ev("plain text", "t", RN_ENOTFOUND);
	ev("{\"t\":", "t", RN_ENOTFOUND);
	ev("", "t", RN_ENOTFOUND);
}

static void text_from_patterns(void **st)
{
	int64_t us;
	(void)st;
	assert_int_equal(rn_evtime_text("2026-11-25 10:00:00,250", 23, &us), 0);
	assert_int_equal(us, T0 * 1000000 + 250000);
	assert_int_equal(rn_evtime_text("2026-11-25T10:00:00", 19, &us), 0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(rn_evtime_text("2026-11-25T12:00:00+02:00", 25, &us), 0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(rn_evtime_text("1795600800", 10, &us), 0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(rn_evtime_text("1795600800.5", 12, &us), 0);
	assert_int_equal(us, T0 * 1000000 + 500000);
	assert_int_equal(rn_evtime_text("2026-11-25 10:00", 16, &us), RN_EINVAL);
	assert_int_equal(rn_evtime_text("Nov 25 10:00:00", 15, &us), RN_EINVAL);
	assert_int_equal(rn_evtime_text("", 0, &us), RN_EINVAL);
	/* strict RFC 3339 still wants a zone */
	assert_int_equal(rn_evtime_rfc3339("2026-11-25T10:00:00", 19, &us), RN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(numbers_by_magnitude),
		cmocka_unit_test(rfc3339),
		cmocka_unit_test(bad_input),
		cmocka_unit_test(text_from_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
