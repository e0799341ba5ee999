/*
 * Unit tests for the time-to-table estimator (server/fleet/ttt.h): batches become samples
 * only when their stream's committed offset reaches them, in any order of streams; the
 * waiting list and the window stay bounded (a full list counts the batch unsampled, the
 * window keeps the newest samples); the quantiles by nearest rank; a forgotten stream's
 * batches are never sampled; no sample: RN_ENOTFOUND. Pure: the time is given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "rn_err.h"
#include "ttt.h"

/* Two streams (keys &committed[0], &committed[1]) and their committed offsets. */
static int64_t committed[2];

static int64_t committed_of(void *ctx, const void *key)
{
	(void)ctx;
	return *(const int64_t *)key;
}

static struct rn_ttt *fresh(void)
{
	struct rn_ttt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	committed[0] = committed[1] = -1;
	return t;
}

static void test_commit_samples(void **state)
{
	struct rn_ttt *t = fresh();
	int64_t us;
	(void)state;
	assert_int_equal(rn_ttt_quantile(t, 0.5, &us), RN_ENOTFOUND);
	assert_int_equal(rn_ttt_quantile(NULL, 0.5, &us), RN_ENOTFOUND);
	/* s0: offsets 0, 1, 2 at 100, 200, 300; s1: offset 0 at 150 */
	assert_int_equal(rn_ttt_queued(t, &committed[0], 0, 100), 0);
	assert_int_equal(rn_ttt_queued(t, &committed[1], 0, 150), 0);
	assert_int_equal(rn_ttt_queued(t, &committed[0], 1, 200), 0);
	assert_int_equal(rn_ttt_queued(t, &committed[0], 2, 300), 0);
	/* nothing committed: nothing sampled */
	assert_int_equal(rn_ttt_committed(t, committed_of, NULL, 1000), 0);
	assert_int_equal(t->npend, 4);
	/* s0 up to 1: two samples (900, 800); s0's 2 and s1's 0 wait, in order */
	committed[0] = 1;
	assert_int_equal(rn_ttt_committed(t, committed_of, NULL, 1000), 2);
	assert_int_equal(t->npend, 2);
	assert_ptr_equal(t->pend[0].key, &committed[1]);
	assert_int_equal(t->pend[1].offset, 2);
	assert_int_equal(rn_ttt_quantile(t, 0.5, &us), 0);
	assert_int_equal(us, 800);
	assert_int_equal(rn_ttt_quantile(t, 1, &us), 0);
	assert_int_equal(us, 900);
	/* the rest at 2000: 1850 and 1700 */
	committed[0] = 2;
	committed[1] = 0;
	assert_int_equal(rn_ttt_committed(t, committed_of, NULL, 2000), 2);
	assert_int_equal(t->npend, 0);
	assert_int_equal(t->count, 4);
	assert_true(t->sum_s > 0.005249 && t->sum_s < 0.005251); /* 900+800+1850+1700 us */
	/* sorted 800 900 1700 1850: p50 = 2nd, p99 = 4th, p25 = 1st */
	assert_int_equal(rn_ttt_quantile(t, 0.5, &us), 0);
	assert_int_equal(us, 900);
	assert_int_equal(rn_ttt_quantile(t, 0.99, &us), 0);
	assert_int_equal(us, 1850);
	assert_int_equal(rn_ttt_quantile(t, 0.25, &us), 0);
	assert_int_equal(us, 800);
	assert_int_equal(rn_ttt_quantile(t, 0, &us), RN_ENOTFOUND); /* q out of range */
	free(t);
}

static void test_bounds(void **state)
{
	struct rn_ttt *t = fresh();
	int64_t us;
	(void)state;
	for (int64_t i = 0; i < RN_TTT_PENDING; i++)
		assert_int_equal(rn_ttt_queued(t, &committed[0], i, i), 0);
	/* full: counted, not kept */
	assert_int_equal(rn_ttt_queued(t, &committed[0], RN_TTT_PENDING, 5), RN_EAGAIN);
	assert_int_equal(t->unsampled, 1);
	assert_int_equal(t->npend, RN_TTT_PENDING);
	committed[0] = RN_TTT_PENDING;
	assert_int_equal(rn_ttt_committed(t, committed_of, NULL, RN_TTT_PENDING), RN_TTT_PENDING);
	assert_int_equal(t->npend, 0);
	/* the window keeps the newest RN_TTT_WINDOW samples: 3 * WINDOW more of 1 ms ... */
	for (int i = 0; i < 3 * RN_TTT_WINDOW; i++)
		rn_ttt_sample(t, 1000);
	assert_int_equal(t->n, RN_TTT_WINDOW);
	assert_int_equal(rn_ttt_quantile(t, 1, &us), 0);
	assert_int_equal(us, 1000); /* the older, larger ones are gone */
	/* ... then a quarter of them 5 ms: p50 still 1 ms, p99 5 ms */
	for (int i = 0; i < RN_TTT_WINDOW / 4; i++)
		rn_ttt_sample(t, 5000);
	assert_int_equal(rn_ttt_quantile(t, 0.5, &us), 0);
	assert_int_equal(us, 1000);
	assert_int_equal(rn_ttt_quantile(t, 0.99, &us), 0);
	assert_int_equal(us, 5000);
	rn_ttt_sample(t, -7); /* a clock going back: 0, never negative */
	assert_int_equal(rn_ttt_quantile(t, 0.0001, &us), 0);
	assert_int_equal(us, 0);
	free(t);
}

static void test_forget(void **state)
{
	struct rn_ttt *t = fresh();
	int64_t us;
	(void)state;
	assert_int_equal(rn_ttt_queued(t, &committed[0], 0, 10), 0);
	assert_int_equal(rn_ttt_queued(t, &committed[1], 0, 20), 0);
	assert_int_equal(rn_ttt_queued(t, &committed[0], 1, 30), 0);
	rn_ttt_forget(t, &committed[0]);
	assert_int_equal(t->npend, 1);
	committed[0] = committed[1] = 5;
	assert_int_equal(rn_ttt_committed(t, committed_of, NULL, 100), 1);
	assert_int_equal(rn_ttt_quantile(t, 0.5, &us), 0);
	assert_int_equal(us, 80);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_samples),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
