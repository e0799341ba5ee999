/*
 * Delta maintenance off the loop (server/delta/maint.c): when tasks are due (pure decisions),
 * and a maintenance run on its own handle in a second thread racing a writer that commits
 * appends on another handle (the server's loop and its maintenance worker): every row is in
 * the table exactly once whichever side wins each version, the writer's txn watermark is
 * intact, and the log reads back with the independent analyzer. Log cleanup keeps the
 * versions the other writer may still commit after (keep_after).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "delta.h"
#include "log.h"
#include "maint.h"
#include "parquet.h"
#include "pqread.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_zstd.h"
#include "testutil.h"

static char root[512], table[600];
static int seq;

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "maint"))
		return -1;
	snprintf(table, sizeof(table), "%s/t%d", root, seq++);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

static void test_due(void **state)
{
	struct rn_delta_maint cfg = {
		.checkpoint_interval = 10, .compact_interval_ms = 1000, .vacuum_interval_ms = 5000};
	struct rn_maint_clock c = {.last_compact_ms = 100, .last_vacuum_ms = 100};
	(void)state;
	/* nothing yet: version 9 < 10 commits, intervals not passed */
	assert_int_equal(rn_maint_due(&cfg, &c, 9, -1, 500), 0);
	assert_int_equal(rn_maint_due(&cfg, &c, 10, -1, 500), RN_MAINT_CHECKPOINT);
	assert_int_equal(rn_maint_due(&cfg, &c, 0, -1, 500), 0); /* a new table */
	assert_int_equal(rn_maint_due(&cfg, &c, 19, 10, 500), 0);
	assert_int_equal(rn_maint_due(&cfg, &c, 20, 10, 1100),
			 RN_MAINT_CHECKPOINT | RN_MAINT_COMPACT);
	assert_int_equal(rn_maint_due(&cfg, &c, 1, -1, 5100), RN_MAINT_COMPACT | RN_MAINT_VACUUM);
	/* started: the clocks restart, the checkpoint counts from the version it was asked at
	 * (a failed checkpoint waits another interval) */
	rn_maint_started(&c, RN_MAINT_CHECKPOINT | RN_MAINT_COMPACT, 20, 1100);
	assert_int_equal(c.ckpt_mark, 20);
	assert_int_equal(rn_maint_due(&cfg, &c, 29, 10, 2099), 0);
	assert_int_equal(rn_maint_due(&cfg, &c, 30, 10, 2100),
			 RN_MAINT_CHECKPOINT | RN_MAINT_COMPACT);
	/* a checkpoint newer than the mark counts too */
	assert_int_equal(rn_maint_due(&cfg, &c, 30, 25, 1200), 0);
	rn_maint_started(&c, RN_MAINT_VACUUM, 30, 6000);
	assert_int_equal(c.ckpt_mark, 20);
	assert_int_equal(rn_maint_due(&cfg, &c, 0, -1, 10999), RN_MAINT_COMPACT);
	assert_int_equal(rn_maint_due(&cfg, &c, 0, -1, 11000), RN_MAINT_COMPACT | RN_MAINT_VACUUM);
	/* intervals <= 0 disable their task */
	struct rn_delta_maint off = {0};
	assert_int_equal(rn_maint_due(&off, &c, 1000, -1, 1 << 30), 0);
}

static const struct rn_pq_col cols[1] = {{.name = "id", .type = RN_PQ_INT64}};

/* Writes a data file of ids [first, first + rows) and commits it with txn (app, v). */
static int commit_rows(struct rn_delta *d, int first, int rows, const char *app, int64_t v)
{
	struct rn_pq_writer *w;
	struct rn_buf out = {0};
	char name[256], stats[64];
	int64_t mtime, ver;
	int rc;
	if (rn_pq_writer_create(&w, cols, 1, NULL))
		return -1;
	for (int i = first; i < first + rows; i++)
		if (rn_pq_put_i64(w, 0, i) || rn_pq_row_end(w))
			return -1;
	rc = rn_pq_finish(w, &out);
	rn_pq_writer_destroy(w);
	if (rc || rn_delta_write_file(d, out.data, out.len, name, sizeof(name), &mtime))
		return -1;
	snprintf(stats, sizeof(stats), "{\"numRecords\":%d}", rows);
	struct rn_delta_add a = {
		.path = name, .size = (int64_t)out.len, .mtime_ms = mtime, .stats = stats};
	struct rn_delta_txn t = {app, v};
	rc = rn_delta_commit(d, &a, 1, &t, 1, &ver);
	rn_buf_free(&out);
	return rc;
}

/* Counts every id of the table's live files (opened afresh) into n[0..max). */
static void count_ids(int *n, int max, size_t *nlive)
{
	struct rn_delta *d;
	size_t nf;
	assert_int_equal(rn_delta_open(&d, table, NULL, "reader"), 0);
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &nf);
	*nlive = 0;
	for (size_t i = 0; i < nf; i++) {
		char path[1200];
		struct rn_buf b = {0}, lines = {0};
		struct rn_pqr *r;
		if (files[i]->is_remove)
			continue;
		(*nlive)++;
		snprintf(path, sizeof(path), "%s/%s", table, files[i]->path);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		char tmp[4096];
		size_t k;
		while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
			assert_int_equal(rn_buf_append(&b, tmp, k), 0);
		fclose(f);
		assert_int_equal(rn_pqr_open(&r, b.data, b.len, 0), 0);
		assert_int_equal(rn_pqr_to_json_lines(r, &lines), 0);
		rn_pqr_close(r);
		assert_int_equal(rn_buf_append_u8(&lines, 0), 0);
		for (const char *p = (const char *)lines.data; (p = strstr(p, "\"id\":")); p += 5) {
			int id = atoi(p + 5);
			assert_true(id >= 0 && id < max);
			n[id]++;
		}
		rn_buf_free(&b);
		rn_buf_free(&lines);
	}
	rn_delta_close(d);
}

#define NCOMMITS 120
#define ROWS 5

struct racer {
	atomic_int done;
	int rounds, compactions, checkpoints;
};

/* The maintenance side: its own handle, every task each round, until the writer is done. */
static void *maint_thread(void *arg)
{
	struct racer *r = arg;
	struct rn_delta *d;
	struct rn_delta_maint cfg = {.checkpoint_interval = 7,
				     .log_retention_ms = 3600000,
				     .compact_target = 1 << 20,
				     .compact_min_files = 4,
				     .compact_interval_ms = 1,
				     .vacuum_retention_ms = 0,
				     .vacuum_interval_ms = 1};
	if (rn_delta_open(&d, table, NULL, "maint"))
		return NULL;
	while (!atomic_load(&r->done) || r->rounds < 3) {
		struct rn_maint_result res;
		rn_maint_run(d, &cfg, RN_MAINT_CHECKPOINT | RN_MAINT_COMPACT | RN_MAINT_VACUUM,
			     INT64_MAX, NULL, &res);
		r->rounds++;
		r->compactions += (int)res.compactions;
		r->checkpoints += res.ckpt_version >= 0;
	}
	rn_delta_close(d);
	rn_zstd_release(); /* as the server's worker does after each job */
	rn_fs_thread_release();
	return NULL;
}

static void test_race_threads(void **state)
{
	struct rn_delta *w;
	struct racer r = {0};
	pthread_t th;
	int n[NCOMMITS * ROWS] = {0};
	size_t nlive;
	(void)state;
	assert_int_equal(rn_delta_open(&w, table, SCHEMA, "writer"), 0);
	assert_int_equal(pthread_create(&th, NULL, maint_thread, &r), 0);
	for (int i = 0; i < NCOMMITS; i++) /* the loop's flushes: appends with txns */
		assert_int_equal(commit_rows(w, i * ROWS, ROWS, "stream", i), 0);
	atomic_store(&r.done, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(r.compactions > 0);
	assert_true(r.checkpoints > 0);
	/* the writer's handle took in the rewrites it lost races to: one more append works
	 * and lands after every version */
	assert_int_equal(rn_delta_refresh(w), 0);
	assert_int_equal(rn_delta_txn(w, "stream"), NCOMMITS - 1);
	rn_delta_close(w);
	count_ids(n, NCOMMITS * ROWS, &nlive);
	for (int i = 0; i < NCOMMITS * ROWS; i++)
		if (n[i] != 1)
			fail_msg("id %d is in the table %d times", i, n[i]);
	assert_true(nlive < NCOMMITS); /* compaction did remove files */
	struct rn_dlog *l;
	int64_t bytes, rows;
	size_t nos;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	rn_dlog_totals(l, &bytes, &rows, &nos);
	assert_int_equal(rows, NCOMMITS * ROWS);
	assert_int_equal(rn_dlog_txn(l, "stream"), NCOMMITS - 1);
	rn_dlog_destroy(l);
	printf("# %d rounds, %d compaction commits, %d checkpoints, %zu live files\n", r.rounds,
	       r.compactions, r.checkpoints, nlive);
}

/* Cleanup behind a checkpoint keeps every version above keep_after: the other writer, still
 * at keep_after, commits next at keep_after + 1, which must exist or its put-if-absent would
 * take a version the log already had (and the checkpoint hides). */
static void test_cleanup_keeps_other_writer(void **state)
{
	struct rn_delta *loop, *job;
	struct rn_delta_maint cfg = {.checkpoint_interval = 1, .log_retention_ms = -1};
	struct rn_maint_result res;
	int n[40 * ROWS] = {0};
	size_t nlive;
	(void)state;
	assert_int_equal(rn_delta_open(&loop, table, SCHEMA, "loop"), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(commit_rows(loop, i * ROWS, ROWS, "a", i), 0);
	int64_t at = rn_delta_version(loop); /* 5 */
	assert_int_equal(rn_delta_open(&job, table, NULL, "job"), 0);
	for (int i = 5; i < 30; i++) /* another writer moves on meanwhile */
		assert_int_equal(commit_rows(job, i * ROWS, ROWS, "b", i), 0);
	rn_maint_run(job, &cfg, RN_MAINT_CHECKPOINT, at, NULL, &res);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.ckpt_version, 30);
	assert_int_equal(res.log_deleted, (size_t)at + 1); /* versions 0..at only */
	char p[1200];
	snprintf(p, sizeof(p), "%s/_delta_log/%020lld.json", table, (long long)at + 1);
	assert_int_equal(access(p, F_OK), 0);
	/* the loop commits without a refresh: it loses at + 1, reads on, and lands at 31 */
	assert_int_equal(commit_rows(loop, 30 * ROWS, ROWS, "a", 30), 0);
	assert_int_equal(rn_delta_version(loop), 31);
	rn_delta_close(loop);
	rn_delta_close(job);
	count_ids(n, 40 * ROWS, &nlive);
	for (int i = 0; i < 31 * ROWS; i++)
		if (n[i] != 1)
			fail_msg("id %d is in the table %d times", i, n[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due),
		cmocka_unit_test_setup_teardown(test_race_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_keeps_other_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
