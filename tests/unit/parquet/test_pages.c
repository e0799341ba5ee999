/*
 * Unit tests for the Parquet writer's page jobs (server/parquet/pages.c, rn_pq_options.
 * page_submit): a file written with pages compressed by a real worker pool (server/pool.c),
 * by a submit that always refuses (the pool full), and by a queue the test runs itself in
 * reverse order or never (the finish compresses what nobody started) is byte for byte the
 * file written with every page compressed inline; the cap on pages in flight; and an
 * allocation-failure sweep over a writer with page jobs: every failure is an error of a row
 * end or of the finish (never a file missing rows) and leaks nothing.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parquet.h"
#include "pool.h"
#include "rn_err.h"
#include "rn_mem.h"

static const struct rn_pq_col tag_cols[] = {{.name = "k", .type = RN_PQ_INT32}};
static const struct rn_pq_col cols[] = {
	{.name = "id", .type = RN_PQ_INT64},
	{.name = "payload", .type = RN_PQ_STRING, .dict = RN_PQ_DICT_OFF},
	{.name = "tag", .type = RN_PQ_STRING, .optional = 1}, /* dictionary */
	{.name = "x", .type = RN_PQ_DOUBLE, .optional = 1},
	{.name = "ok", .type = RN_PQ_BOOL},
	{.name = "s", .type = RN_PQ_STRUCT, .optional = 1, .children = tag_cols, .n_children = 1},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))
#define ROWS 6000

/* ---- submit functions ---- */

/* a queue run by the test: jobs are kept, run (or not) and handed back when it says */
struct held {
	void (*run)(void *);
	void (*done)(void *, int);
	void *arg;
};
static struct held held[4096];
static size_t nheld, submits, refusals;

static int hold_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
		       void *arg)
{
	(void)ctx;
	if (nheld == sizeof(held) / sizeof(held[0]))
		return RN_EAGAIN;
	held[nheld++] = (struct held){run, done, arg};
	submits++;
	return 0;
}

/* runs the held jobs from the last to the first: pages compressed out of order */
static void run_held_reversed(void)
{
	for (size_t i = nheld; i > 0; i--)
		held[i - 1].run(held[i - 1].arg);
}

static void done_held(int cancelled)
{
	for (size_t i = 0; i < nheld; i++)
		held[i].done(held[i].arg, cancelled);
	nheld = 0;
}

static int refuse_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
			 void *arg)
{
	(void)ctx;
	(void)run;
	(void)done;
	(void)arg;
	refusals++;
	return RN_EAGAIN;
}

static int pool_submit(void *ctx, void (*run)(void *arg), void (*done)(void *arg, int cancelled),
		       void *arg)
{
	int rc = rn_pool_submit(ctx, run, done, arg);
	submits += rc == 0;
	return rc;
}

/* ---- rows ---- */

static int put_row(struct rn_pq_writer *w, int i)
{
	char p[300];
	int n = snprintf(p, sizeof(p), "{\"i\":%d,\"v\":\"%0*d\"}", i, 200 + i % 60, i * 7919);
	int rc = rn_pq_put_i64(w, 0, i);
	rc = rc ? rc : rn_pq_put_bytes(w, 1, p, (size_t)n);
	if (!rc && i % 5)
		rc = rn_pq_put_bytes(w, 2, i % 3 ? "alpha" : "beta", i % 3 ? 5 : 4);
	if (!rc && i % 7)
		rc = rn_pq_put_double(w, 3, i * 0.5);
	rc = rc ? rc : rn_pq_put_bool(w, 4, i & 1);
	if (!rc && i % 4) {
		rc = rn_pq_begin(w, 5);
		rc = rc ? rc : rn_pq_put_i32(w, 0, i);
		rc = rc ? rc : rn_pq_end(w);
	}
	if (rc) {
		rn_pq_row_abort(w);
		return rc;
	}
	return rn_pq_row_end(w);
}

/* Writes ROWS rows (small pages, row groups by rows) into f; returns the first error. */
static int write_file(struct rn_pq_options *o, struct rn_buf *f)
{
	struct rn_pq_writer *w;
	int rc;
	o->page_bytes = 4096;
	o->row_group_rows = 2500;
	o->created_by = "test";
	if ((rc = rn_pq_writer_create(&w, cols, NCOLS, o)))
		return rc;
	for (int i = 0; i < ROWS && !rc; i++)
		rc = put_row(w, i);
	if (!rc && o->page_submit == hold_submit)
		run_held_reversed(); /* every other page is claimed by the finish */
	if (!rc)
		rc = rn_pq_finish(w, f);
	rn_pq_writer_destroy(w);
	return rc;
}

static struct rn_buf reference(void)
{
	struct rn_pq_options o = {0};
	struct rn_buf f = {0};
	assert_int_equal(write_file(&o, &f), 0);
	assert_true(f.len > 100000);
	return f;
}

static void test_pool_same_bytes(void **state)
{
	struct rn_buf a = reference(), b = {0};
	struct rn_pool *p;
	struct rn_pool_options po = {.threads = 2, .queue_max = 10000, .name = "pages"};
	(void)state;
	assert_int_equal(rn_pool_create(&p, &po), 0);
	for (size_t jobs = 1; jobs <= 16; jobs *= 4) {
		struct rn_pq_options o = {
			.page_submit = pool_submit, .page_ctx = p, .page_jobs = jobs};
		submits = 0;
		assert_int_equal(write_file(&o, &b), 0);
		/* pages did go to the pool: at least the first (how many more depends on how
		 * fast the pool hands them back: with one job in flight, a page cut while it
		 * runs is compressed on this thread, and a loaded machine makes that most) */
		assert_true(submits > 0);
		assert_int_equal(b.len, a.len);
		assert_memory_equal(b.data, a.data, a.len);
		rn_buf_reset(&b);
		struct pollfd pfd = {.fd = rn_pool_fd(p), .events = POLLIN};
		while (rn_pool_depth(p)) { /* hand every job back (its done drops the page) */
			poll(&pfd, 1, 1000);
			rn_pool_complete(p);
		}
	}
	rn_pool_destroy(p);
	rn_buf_free(&a);
	rn_buf_free(&b);
}

static void test_refused_and_held_same_bytes(void **state)
{
	struct rn_buf a = reference(), b = {0};
	(void)state;
	/* the pool full: every page compressed on the writer's thread */
	struct rn_pq_options o = {.page_submit = refuse_submit};
	refusals = 0;
	assert_int_equal(write_file(&o, &b), 0);

	assert_true(refusals > 50);
	assert_int_equal(b.len, a.len);
	assert_memory_equal(b.data, a.data, a.len);
	rn_buf_reset(&b);
	/* held jobs: the first pages in flight up to the cap, compressed by run_held_reversed
	 * out of order; past the cap inline; the finish takes them in order */
	o = (struct rn_pq_options){.page_submit = hold_submit, .page_jobs = 4};
	submits = nheld = 0;
	assert_int_equal(write_file(&o, &b), 0);
	assert_int_equal(b.len, a.len);
	assert_memory_equal(b.data, a.data, a.len);
	assert_true(submits >= 4);
	done_held(0);
	rn_buf_reset(&b);
	/* jobs never run (a pool destroyed with them queued): the finish compresses them, and
	 * their cancelled done frees them */
	o = (struct rn_pq_options){.page_submit = hold_submit, .page_jobs = 1000};
	struct rn_pq_writer *w;
	assert_int_equal(rn_pq_writer_create(&w, cols, NCOLS,
					     &(struct rn_pq_options){.page_submit = hold_submit,
								     .page_jobs = 1000,
								     .page_bytes = 4096,
								     .row_group_rows = 2500,
								     .created_by = "test"}),
			 0);
	for (int i = 0; i < ROWS; i++)
		assert_int_equal(put_row(w, i), 0);
	assert_true(nheld > 100);
	assert_int_equal(rn_pq_finish(w, &b), 0);
	assert_int_equal(b.len, a.len);
	assert_memory_equal(b.data, a.data, a.len);
	/* the writer's next file: destroyed with pages in flight that nobody ran */
	for (int i = 0; i < ROWS / 2; i++)
		assert_int_equal(put_row(w, i), 0);
	rn_pq_writer_destroy(w);
	run_held_reversed(); /* claimed by the destroy: nothing to do */
	done_held(1);
	rn_buf_free(&a);
	rn_buf_free(&b);
}

/* The cap: with page_jobs = 2 and jobs never run, at most 2 are ever submitted per file
 * (the rest compressed inline) until the finish takes them. */
static void test_cap_in_flight(void **state)
{
	struct rn_pq_writer *w;
	struct rn_buf f = {0};
	(void)state;
	submits = nheld = 0;
	assert_int_equal(rn_pq_writer_create(&w, cols, NCOLS,
					     &(struct rn_pq_options){.page_submit = hold_submit,
								     .page_jobs = 2,
								     .page_bytes = 4096,
								     .created_by = "test"}),
			 0);
	for (int i = 0; i < ROWS; i++)
		assert_int_equal(put_row(w, i), 0);
	assert_int_equal(submits, 2);
	assert_int_equal(rn_pq_finish(w, &f), 0);
	rn_pq_writer_destroy(w);
	done_held(0);
	rn_buf_free(&f);
}

/* Every allocation of a writer with page jobs fails in turn: the failure surfaces as an
 * error of a row end (the writer then refuses the finish: no file with rows missing) or of
 * the finish, and nothing leaks (the sanitizer build checks). */
static void test_alloc_failure_sweep(void **state)
{
	struct rn_buf a = reference();
	(void)state;
	for (long k = 1;; k++) {
		struct rn_pq_writer *w;
		struct rn_buf f = {0};
		int rc, row_rc = 0, fin_rc = -1, i;
		size_t rows;
		nheld = 0;
		rn_mem_fail_after(k);
		rc = rn_pq_writer_create(&w, cols, NCOLS,
					 &(struct rn_pq_options){.page_submit = hold_submit,
								 .page_jobs = 3,
								 .page_bytes = 4096,
								 .row_group_rows = 2500,
								 .created_by = "test"});
		if (rc) {
			assert_int_equal(rc, RN_ENOMEM);
			assert_true(rn_mem_fail_disarm());
			continue;
		}
		for (i = 0; i < ROWS && !row_rc; i++)
			row_rc = put_row(w, i);
		if (nheld)
			held[0].run(held[0].arg); /* a worker gets one of them */
		rows = rn_pq_rows(w);
		fin_rc = rn_pq_finish(w, &f);
		int reached = rn_mem_fail_disarm();
		if (row_rc) /* the failed row is abandoned; a page that failed broke the file */
			assert_int_equal(row_rc, RN_ENOMEM);
		/* a file that is finished holds every row ended before the failure, no fewer */
		if (fin_rc == 0)
			assert_int_equal(rows, row_rc ? i - 1 : ROWS);
		if (!reached) {
			assert_int_equal(row_rc, 0);
			assert_int_equal(fin_rc, 0);
			assert_int_equal(f.len, a.len);
			assert_memory_equal(f.data, a.data, a.len);
		}
		rn_pq_writer_destroy(w);
		done_held(0);
		rn_buf_free(&f);
		if (!reached) {
			assert_true(k > 20);
			break;
		}
	}
	rn_buf_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_same_bytes),
		cmocka_unit_test(test_refused_and_held_same_bytes),
		cmocka_unit_test(test_cap_in_flight),
		cmocka_unit_test(test_alloc_failure_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
