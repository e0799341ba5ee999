/*
 * Unit tests for the S3 client's decisions (server/store/s3policy.c): every outcome's error
 * code, whether it is retried, whether the request may have been applied (what the
 * conditional put's lost-response rule rests on), and the backoff's doubling, cap and jitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rn_err.h"
#include "s3policy.h"

static void expect(struct rn_s3_verdict v, int rc, int retry, int maybe)
{
	assert_int_equal(v.rc, rc);
	assert_int_equal(v.retry, retry);
	assert_int_equal(v.maybe_applied, maybe);
}

static void test_answers(void **state)
{
	(void)state;
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 200, 0, 0), 0, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 204, 0, 0), 0, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 206, 0, 0), 0, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 404, 0, 0), RN_ENOTFOUND, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 412, 1, 0), RN_EEXIST, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 416, 0, 0), RN_ERANGE, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 400, 0, 0), RN_EINVAL, 0, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 403, 0, 0), RN_EIO, 0,
	       0); /* a wrong key: final */
	/* 409: a conditional put racing another is transient; otherwise (a bucket conflict) not */
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 409, 1, 0), RN_EIO, 1, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 409, 0, 0), RN_EIO, 0, 0);
	/* refusals before any work: retried, nothing applied */
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 503, 1, 0), RN_EIO, 1, 0);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 429, 1, 0), RN_EIO, 1, 0);
	/* other 5xx may come after the store acted */
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 500, 1, 0), RN_EIO, 1, 1);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 502, 0, 0), RN_EIO, 1, 1);
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 504, 0, 0), RN_EIO, 1, 1);
	/* a 200 carrying <Error> (CompleteMultipartUpload): failed late, maybe applied */
	expect(rn_s3_policy_verdict(RN_S3_ANSWERED, 200, 0, 1), RN_EIO, 1, 1);
}

static void test_no_answer(void **state)
{
	(void)state;
	expect(rn_s3_policy_verdict(RN_S3_NO_CONNECTION, 0, 1, 0), RN_ECONNECT, 1, 0);
	expect(rn_s3_policy_verdict(RN_S3_CUT, 0, 1, 0), RN_ECONNECT, 1, 1);
}

static void test_backoff(void **state)
{
	(void)state;
	/* half fixed, half jitter: rnd 0 gives the floor, a large rnd stays within the step */
	assert_int_equal(rn_s3_policy_backoff_ms(100, 0, 0), 50);
	assert_int_equal(rn_s3_policy_backoff_ms(100, 0, 50), 100);
	assert_int_equal(rn_s3_policy_backoff_ms(100, 0, 51), 50);
	assert_int_equal(rn_s3_policy_backoff_ms(100, 1, 0), 100);
	assert_int_equal(rn_s3_policy_backoff_ms(100, 3, 0), 400);
	for (uint64_t r = 0; r < 1000; r += 37) {
		int64_t ms = rn_s3_policy_backoff_ms(100, 2, r * 0x9E3779B97F4A7C15ull);
		assert_true(ms >= 200 && ms <= 400);
	}
	/* capped, also for absurd retry numbers (no overflow) */
	assert_int_equal(rn_s3_policy_backoff_ms(100, 10, 0), RN_S3_BACKOFF_CAP_MS / 2);
	assert_true(rn_s3_policy_backoff_ms(100, 1000000, UINT64_MAX) <= RN_S3_BACKOFF_CAP_MS);
	assert_true(rn_s3_policy_backoff_ms(0, 0, 0) >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_no_answer),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
