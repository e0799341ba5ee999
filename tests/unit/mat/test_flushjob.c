/*
 * Unit tests for flush jobs (rn_mat_flush_start): a table's rows detached on the loop are
 * encoded and committed by a job on another thread while adds go on; batches in flight are
 * skipped by rn_mat_add and by a refill (a failed add rebuilds the table while the job still
 * holds its rows) and still count as pending; the round's callback comes once, after the
 * last job; a job cancelled before it ran is run by the next round; and a replay of every
 * batch after all of that (a restart with the whole WAL) adds nothing twice; the memory
 * budget's counters follow the rows from builders to flush jobs and away; the tables a round
 * committed are reported (rn_mat_committed_tables) whatever the round's result. The table is
 * read back by the independent checker (tests/unit/delta/table_check.c).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "delta.h"
#include "mat.h"
#include "partition.h"
#include "refill_log.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "schema.h"
#include "table_check.h"
#include "testutil.h"

#define PER 4 /* records per batch: offset k holds seqs [k * PER, (k + 1) * PER) */

static char root[256];
static struct refill_log wal;

/* The pool's part: each submitted job runs on a thread of its own; the test (the loop)
 * joins them and calls done when it chooses. */
struct job {
	void (*run)(void *);
	void (*done)(void *, int);
	void *arg;
	pthread_t th;
	int started;
};
static struct job jobs[8];
static size_t njobs;
static int start_threads = 1; /* 0: jobs wait (to be cancelled) */

static void *job_main(void *p)
{
	struct job *j = p;
	j->run(j->arg);
	return NULL;
}

static int submit(void *ctx, void (*run)(void *), void (*done)(void *, int), void *arg)
{
	(void)ctx;
	if (njobs == sizeof(jobs) / sizeof(jobs[0]))
		return RN_EAGAIN;
	struct job *j = &jobs[njobs++];
	*j = (struct job){run, done, arg, 0, 0};
	if (start_threads) {
		assert_int_equal(pthread_create(&j->th, NULL, job_main, j), 0);
		j->started = 1;
	}
	return 0;
}

static void join_all(void)
{
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i].started) {
			pthread_join(jobs[i].th, NULL);
			jobs[i].started = 0;
		}
}

static void done_all(int cancelled)
{
	size_t n = njobs;
	njobs = 0;
	for (size_t i = 0; i < n; i++)
		jobs[i].done(jobs[i].arg, cancelled);
}

static int cb_calls, cb_rc;
static void round_cb(void *ctx, int rc)
{
	(void)ctx;
	cb_calls++;
	cb_rc = rc;
}

/* rn_mat_committed_tables' report: the tables named since the last call, comma-joined. */
static char told[256];
static void tell(void *ctx, const char *table)
{
	(void)ctx;
	size_t n = strlen(told);
	snprintf(told + n, sizeof(told) - n, "%s%s", n ? "," : "", table);
}

static const char *committed_tables(struct rn_mat *m)
{
	told[0] = 0;
	rn_mat_committed_tables(m, tell, NULL);
	return told;
}

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(root, sizeof(root), "flushjob");
}

static int teardown(void **state)
{
	(void)state;
	refill_log_clear(&wal);
	return rn_test_rmtree(root);
}

static void make_batch(struct rn_buf *b, int64_t off)
{
	struct rn_buf r = {0};
	char pad[200];
	memset(pad, 'x', sizeof(pad));
	rn_buf_reset(b);
	for (int i = 0; i < PER; i++) {
		rn_buf_reset(&r);
		rn_pb_put_uint(&r, 6, (uint64_t)(off * PER + i));
		rn_pb_put_bytes(&r, 7, pad, sizeof(pad));
		rn_pb_put_bytes(b, 1, r.data, r.len);
	}
	rn_buf_free(&r);
}

static int add_to(struct rn_mat *m, const char *stream, int64_t off)
{
	struct rn_buf b = {0};
	make_batch(&b, off);
	int rc = refill_log_add(&wal, m, "db.s.t", stream, off, RN_MAT_PROTO, b.data, b.len, NULL);
	rn_buf_free(&b);
	return rc;
}

static int add(struct rn_mat *m, int64_t off)
{
	return add_to(m, "s0", off);
}

/* Every seq of s0's offsets [0, upto) and of s1's [0, upto1) exactly once, none past. */
static void assert_once2(int64_t upto, int64_t upto1)
{
	const char *streams[] = {"s0", "s1"};
	int n[128] = {0};
	struct rn_tc_counts c = {streams, 2, 64, n, 0};
	char dir[300], why[512];
	int64_t v;
	if (rn_tc_check(rn_test_path(dir, sizeof(dir), root, "db/s/t"), rn_tc_count, &c, &v, why,
			sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(c.unknown, 0);
	for (int q = 0; q < 128; q++)
		if (n[q] != (q % 64 < (q < 64 ? upto : upto1) * PER))
			fail_msg("stream s%d seq %d: %d rows", q / 64, q % 64, n[q]);
}

static void assert_once(int64_t upto)
{
	assert_once2(upto, 0);
}

static int64_t retry_age_ms; /* rn_mat_options.retry_file_max_age_ms of open_mat */

static struct rn_mat *open_mat(void)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root,
				   .refill = refill_log_fn,
				   .refill_ctx = &wal,
				   .flush_submit = submit,
				   .retry_file_max_age_ms = retry_age_ms};
	assert_int_equal(rn_mat_create(&m, &o), 0);
	return m;
}

/* A materializer with db.s.t holding s0's batches 0 and 1, the round callback not called. */
static struct rn_mat *open_two_batches(void)
{
	struct rn_mat *m = open_mat();
	cb_calls = 0;
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(add(m, 0), 0);
	assert_int_equal(add(m, 1), 0);
	return m;
}

static void test_in_flight(void **state)
{
	struct rn_mat *m = open_two_batches();
	int64_t off;
	(void)state;
	size_t held = rn_mat_table_pending_bytes(m, "db.s.t", NULL, NULL);
	assert_true(held > 0);

	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	assert_int_equal(njobs, 1);
	assert_int_equal(cb_calls, 0);
	assert_true(rn_mat_flush_busy(m));
	/* one round at a time */
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), RN_EAGAIN);
	assert_int_equal(rn_mat_flush(m), RN_EAGAIN);
	/* the detached rows still count (the WAL still holds them) */
	assert_int_equal(rn_mat_table_pending_bytes(m, "db.s.t", NULL, NULL), held);
	assert_int_equal(rn_mat_pending_bytes(m), held);
	/* while the job runs: a batch it holds is a duplicate, a new one goes to the new
	 * builders */
	assert_int_equal(add(m, 1), 0);
	assert_int_equal(rn_mat_table_pending_bytes(m, "db.s.t", NULL, NULL), held);
	assert_int_equal(add(m, 2), 0);
	size_t more = rn_mat_table_pending_bytes(m, "db.s.t", NULL, NULL);
	assert_true(more > held);

	/* the job's work is over but the loop has not had it back: a batch that fails part
	 * way (a new stream: its note allocates after the rows) rebuilds the table, whose
	 * refill must skip the batches in flight (0, 1) */
	join_all();
	long refills = wal.refills;
	struct rn_buf b = {0};
	int rc = -1;
	make_batch(&b, 0);
	for (long n = 1; n < 200 && rc; n++) {
		rn_mem_fail_after(n);
		rc = refill_log_add(&wal, m, "db.s.t", "s1", 0, RN_MAT_PROTO, b.data, b.len, NULL);
		int hit = rn_mem_fail_disarm();
		assert_true(rc == 0 || hit);
	}
	rn_buf_free(&b);
	assert_int_equal(rc, 0);
	assert_true(wal.refills > refills); /* at least one failure rebuilt it */
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, 1); /* durable in the log already: read from the log */

	done_all(0);
	assert_int_equal(cb_calls, 1);
	assert_int_equal(cb_rc, 0);
	assert_false(rn_mat_flush_busy(m));
	assert_int_equal(rn_mat_pending_bytes(m),
			 rn_mat_table_pending_bytes(m, "db.s.t", NULL, NULL));
	assert_true(rn_mat_pending_bytes(m) < more + 1 && rn_mat_pending_bytes(m) > 0);
	assert_int_equal(add(m, 0), 0); /* committed: skipped */
	assert_int_equal(add(m, 3), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(cb_calls, 1); /* the sync flush has no callback */
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, 3);
	assert_once2(4, 1);
	struct rn_mat_stats st;
	rn_mat_stats(m, &st);
	assert_int_equal(st.flush_jobs, 2);
	assert_int_equal(st.flush_inflight, 0);
	rn_mat_destroy(m);

	/* a restart replays the whole WAL (it was never truncated here): nothing twice */
	m = open_mat();
	for (int64_t k = 0; k < 4; k++)
		assert_int_equal(add(m, k), 0);
	assert_int_equal(add_to(m, "s1", 0), 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_once2(4, 1);
	rn_mat_destroy(m);
}

static void test_cancelled(void **state)
{
	struct rn_mat *m = open_mat();
	int64_t off;
	(void)state;
	cb_calls = 0;
	start_threads = 0;
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(add(m, 0), 0);
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	assert_int_equal(add(m, 1), 0);
	done_all(1); /* the pool went away before it ran */
	start_threads = 1;
	assert_int_equal(cb_calls, 1);
	assert_int_equal(cb_rc, RN_EAGAIN);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, -1);
	assert_true(rn_mat_pending_bytes(m) > 0);
	/* the next round runs the held job first; the rows behind it wait for one more */
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	join_all();
	done_all(0);
	assert_int_equal(cb_calls, 2);
	assert_int_equal(cb_rc, RN_EAGAIN);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	join_all();
	done_all(0);
	assert_int_equal(cb_calls, 3);
	assert_int_equal(cb_rc, 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_once(2);
	/* nothing to do: the callback comes at once */
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	assert_int_equal(njobs, 0);
	assert_int_equal(cb_calls, 4);
	assert_int_equal(cb_rc, 0);
	rn_mat_destroy(m);
}

/* rn_mat_memory is (builders, flush) exactly. */
static void assert_memory(const struct rn_mat *m, size_t builders, size_t flush)
{
	size_t b, f;
	rn_mat_memory(m, &b, &f);
	assert_int_equal(b, builders);
	assert_int_equal(f, flush);
}

/* The memory budget's counters (rn_mat_memory): builders grow with adds, move whole to the
 * flush when a round detaches them, and go when the job is done; a cancelled job keeps its
 * builders counted until a later round has run it. */
static void test_memory(void **state)
{
	struct rn_mat *m = open_mat();
	size_t b, f, b0, b1;
	(void)state;
	cb_calls = 0;
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_memory(m, 0, 0);
	assert_int_equal(add(m, 0), 0);
	rn_mat_memory(m, &b0, &f);
	assert_true(b0 > 0);
	assert_int_equal(f, 0);
	assert_int_equal(add(m, 1), 0);
	rn_mat_memory(m, &b, NULL);
	assert_true(b >= b0); /* capacities: the same or more */

	start_threads = 0; /* the job waits, to be cancelled */
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	rn_mat_memory(m, &b1, &f);
	assert_int_equal(b1, 0);
	assert_int_equal(f, b); /* moved whole */
	assert_int_equal(add(m, 2), 0);
	rn_mat_memory(m, &b1, NULL);
	assert_true(b1 > 0);
	done_all(1); /* cancelled: its rows wait, still in memory */
	start_threads = 1;
	rn_mat_memory(m, NULL, &f);
	assert_int_equal(f, b);

	/* the next round runs the held job (the new rows wait behind it) */
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	join_all();
	rn_mat_memory(m, &b, &f);
	assert_int_equal(b, b1); /* not detached: behind the held flush */
	assert_true(f > 0);
	done_all(0);
	assert_memory(m, b1, 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_memory(m, 0, 0);
	assert_once(3);
	rn_mat_destroy(m);
}

/* Data files of the table (its directory holds nothing else besides _delta_log). */
static long data_files(void)
{
	char dir[300];
	return rn_test_entries(rn_test_path(dir, sizeof(dir), root, "db/s/t")) - 1;
}

/* Runs a round whose commit fails at the put-if-absent of its log entry (the data files are
 * written), to its end: the round reports RN_EIO. */
static void fail_first_commit(struct rn_mat *m)
{
	rn_fs_fail_after(1, EIO, RN_FS_LINK);
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	join_all();
	assert_int_equal(rn_fs_injected() > 0, 1);
	rn_fs_fail_after(0, 0, 0);
	done_all(0);
	assert_int_equal(cb_rc, RN_EIO);
}

/* A flush whose commit fails keeps its file for the retry: its bytes stay counted as the
 * flush's (once, not added again by the round that retries it), the rows behind it are the
 * builders', and when the retry commits the file written before (not a second one) the
 * flush's count is back to 0 and nothing is lost or doubled. */
/* The table's last_commit_ms as the fleet API shows it. */
static int64_t commit_ms(const struct rn_mat *m)
{
	struct rn_mat_table_info in;
	size_t i = 0;
	assert_int_equal(rn_mat_table_info(m, &i, &in), 0);
	assert_string_equal(in.name, "db.s.t");
	return in.last_commit_ms;
}

/* Waits until the wall clock (ms) has passed t: a later time is then told apart from t. */
static int64_t wall_after(int64_t t)
{
	int64_t now;
	while ((now = rn_now_us() / 1000) <= t)
		;
	return now;
}

static void test_commit_retry(void **state)
{
	struct rn_mat *m = open_two_batches();
	size_t b, f, held, b2;
	int64_t off;
	(void)state;
	/* the table's creation (version 0) is its newest commit so far */
	const int64_t created = commit_ms(m);
	assert_true(created > 1600000000000LL);
	wall_after(created); /* a commit made now would show */
	rn_mat_memory(m, &held, &f);
	assert_true(held > 0);
	assert_int_equal(f, 0);

	/* the commit's put-if-absent of the log entry fails (the data file was written) */
	fail_first_commit(m);
	assert_int_equal(cb_calls, 1);
	assert_string_equal(committed_tables(m), ""); /* nothing committed: nobody to tell */
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, -1);
	assert_int_equal(commit_ms(m), created); /* a failed commit is no commit */
	assert_int_equal(data_files(), 1);
	rn_mat_memory(m, &b, &f);
	assert_int_equal(b, 0);
	assert_int_equal(f, held); /* kept for the retry, counted once */

	/* new rows wait in the builders behind the held file; a duplicate of a held batch is
	 * skipped */
	assert_int_equal(add(m, 1), 0);
	rn_mat_memory(m, &b, &f);
	assert_int_equal(b, 0);
	assert_int_equal(add(m, 2), 0);
	rn_mat_memory(m, &b2, &f);
	assert_true(b2 > 0);
	assert_int_equal(f, held);

	/* the next round retries the commit of the same file: the flush's count goes */
	int64_t before = wall_after(created);
	assert_int_equal(rn_mat_flush_start(m, round_cb, NULL), 0);
	join_all();
	done_all(0);
	int64_t after = rn_now_us() / 1000;
	assert_true(commit_ms(m) >= before); /* the retried commit's time */
	assert_true(commit_ms(m) <= after);
	assert_int_equal(cb_calls, 2);
	assert_int_equal(cb_rc, RN_EAGAIN); /* the rows behind it wait for one more */
	/* a round that did not end 0 still committed this table: reported now, once */
	assert_string_equal(committed_tables(m), "db.s.t");
	assert_string_equal(committed_tables(m), "");
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, 1);
	assert_int_equal(data_files(), 1);
	assert_memory(m, b2, 0);

	assert_int_equal(rn_mat_flush(m), 0);
	assert_memory(m, 0, 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_int_equal(data_files(), 2);
	assert_once(3);
	/* after a restart the time comes from the newest commit's commitInfo.timestamp */
	const int64_t last = commit_ms(m);
	assert_true(last >= before);
	rn_mat_destroy(m);
	m = open_mat();
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(commit_ms(m), last);
	rn_mat_destroy(m);
	/* a log that starts at a checkpoint of its newest version has no commitInfo to read:
	 * the newest commit file's modification time (set here to a known one), not the
	 * checkpoint's (written later) */
	char dir[300], commit[400];
	struct rn_delta *d;
	int64_t cv;
	rn_test_path(dir, sizeof(dir), root, "db/s/t");
	assert_int_equal(rn_delta_open(&d, dir, NULL, NULL), 0);
	assert_int_equal(rn_delta_checkpoint(d, 0, &cv), 0);
	assert_int_equal(cv, rn_delta_version(d));
	rn_delta_close(d);
	for (int64_t v = 0; v <= cv; v++) { /* the newest commit newest, the others older */
		const time_t sec = v == cv ? 1700000000 : 1600000000 + v;
		const struct timeval tv[2] = {{sec, 123000}, {sec, 123000}};
		snprintf(commit, sizeof(commit), "%s/_delta_log/%020lld.json", dir, (long long)v);
		assert_int_equal(utimes(commit, tv), 0);
	}
	m = open_mat();
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(commit_ms(m), 1700000000123LL);
	rn_mat_destroy(m);
}

/* A commit retried long after its file was written writes the file again under a new name:
 * vacuum may take the old one, unreferenced and old, for an orphan at any time. The retry
 * commits the new file; the old one is left unreferenced; every row once. */
static void test_commit_retry_stale(void **state)
{
	int64_t off;
	(void)state;
	retry_age_ms = 1;
	struct rn_mat *m = open_two_batches();
	retry_age_ms = 0;

	fail_first_commit(m);
	assert_int_equal(data_files(), 1);

	/* older than the 1 ms allowed: elapsed time, not an ordering, so a sleep is exact */
	usleep(20000);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s0", &off), 0);
	assert_int_equal(off, 1);
	assert_int_equal(data_files(), 2); /* the stale one, unreferenced, and the committed */
	assert_once(2);
	rn_mat_destroy(m);
}

/* A partitioned table (k string, two partitions): each of a commit retry's files is written
 * again when stale, like the one file of an unpartitioned table, and the commit names only
 * the new ones. */
static void test_commit_part_stale(void **state)
{
	const char *const pcols[] = {"k"};
	struct rn_part_spec spec = {pcols, 1, NULL, 0};
	struct rn_schema *sc;
	char err[200], dir[300];
	int64_t off;
	(void)state;

	retry_age_ms = 1;
	struct rn_mat *m = open_mat();
	retry_age_ms = 0;
	assert_non_null(sc = rn_calloc(1, sizeof(*sc)));
	assert_int_equal(rn_schema_add_column(sc, "seq", "long", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "stream_id", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "k", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_mat_define_table_ex(m, "db.s.p", sc, &spec), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.p"), 0);
	for (int64_t o = 0; o < 2; o++) {
		struct rn_buf b = {0}, r = {0};
		for (int i = 0; i < PER; i++) {
			rn_buf_reset(&r);
			rn_pb_put_uint(&r, 6, (uint64_t)(o * PER + i));
			rn_pb_put_str(&r, 7, i % 2 ? "{\"k\":\"a\"}" : "{\"k\":\"b\"}");
			rn_pb_put_bytes(&b, 1, r.data, r.len);
		}
		assert_int_equal(refill_log_add(&wal, m, "db.s.p", "s0", o, RN_MAT_PROTO, b.data,
						b.len, NULL),
				 0);
		rn_buf_free(&b);
		rn_buf_free(&r);
	}

	fail_first_commit(m);
	assert_int_equal(rn_test_entries(rn_test_path(dir, sizeof(dir), root, "db/s/p/k=a")), 1);
	assert_int_equal(rn_test_entries(rn_test_path(dir, sizeof(dir), root, "db/s/p/k=b")), 1);

	/* older than the 1 ms allowed: elapsed time, not an ordering, so a sleep is exact */
	usleep(20000);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(rn_mat_committed(m, "db.s.p", "s0", &off), 0);
	assert_int_equal(off, 1);
	/* in each partition the stale file, unreferenced, and the committed one */
	assert_int_equal(rn_test_entries(rn_test_path(dir, sizeof(dir), root, "db/s/p/k=a")), 2);
	assert_int_equal(rn_test_entries(rn_test_path(dir, sizeof(dir), root, "db/s/p/k=b")), 2);
	const char *streams[] = {"s0"};
	int n[64] = {0};
	struct rn_tc_counts c = {streams, 1, 64, n, 0};
	char why[512];
	int64_t v;
	if (rn_tc_check(rn_test_path(dir, sizeof(dir), root, "db/s/p"), rn_tc_count, &c, &v, why,
			sizeof(why)))
		fail_msg("%s", why);
	for (int q = 0; q < 64; q++)
		if (n[q] != (q < 2 * PER))
			fail_msg("seq %d: %d rows", q, n[q]);
	rn_mat_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_retry_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_part_stale, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
