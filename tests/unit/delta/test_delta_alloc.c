/*
 * Allocation-failure sweeps of the Delta commit and checkpoint (server/delta/delta.c), in the
 * manner of SQLite's malloc tests: for N = 1, 2, ... the Nth allocation of the operation
 * fails (rn_mem_fail_after), then failure is switched off and the operation retried, until an
 * N where it completes without reaching the failure. After every N: nothing leaks, the table
 * reads back whole with the project's independent readers (table_check.h: every version
 * parses, announces its adds, points at complete Parquet files; a checkpoint says what the
 * JSON says), a failed commit took no version, and after the retry every record is in the
 * table exactly once. RN_SWEEP_LONG=1 makes the tables larger (tests/README.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "delta.h"
#include "parquet.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "table_check.h"
#include "testutil.h"

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"stream_id\",\"type\":\"string\","            \
	"\"nullable\":true,\"metadata\":{}},{\"name\":\"seq\",\"type\":\"long\",\"nullable\":"     \
	"true,\"metadata\":{}}]}"

static const struct rn_pq_col cols[] = {
	{.name = "stream_id", .type = RN_PQ_STRING, .optional = 1},
	{.name = "seq", .type = RN_PQ_INT64, .optional = 1},
};
static const char *const streams[] = {"s0", "s1", "s2"};

static char root[256];
static int long_mode;
static long sweep_ops, sweep_runs;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(rn_test_tmpdir(root, sizeof(root), "delta-alloc"), 0);
	long_mode = getenv("RN_SWEEP_LONG") && atoi(getenv("RN_SWEEP_LONG")) > 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	print_message("delta sweep: %ld operations x N, %ld runs in all\n", sweep_ops, sweep_runs);
	return rn_test_rmtree(root);
}

static void rm_rf(const char *dir)
{
	assert_int_equal(rn_test_rmtree(dir), 0);
}

/* Writes one data file of stream s with seqs [from, from + n); fills add. */
static void data_file(struct rn_delta *d, const char *s, int64_t from, int64_t n,
		      struct rn_delta_add *add, char *name, size_t cap, char **stats)
{
	struct rn_pq_writer *w;
	struct rn_buf f = {0};
	int64_t mtime;
	assert_int_equal(rn_pq_writer_create(&w, cols, 2, NULL), 0);
	for (int64_t i = 0; i < n; i++) {
		assert_int_equal(rn_pq_put_bytes(w, 0, s, strlen(s)), 0);
		assert_int_equal(rn_pq_put_i64(w, 1, from + i), 0);
		assert_int_equal(rn_pq_row_end(w), 0);
	}
	assert_int_equal(rn_pq_finish(w, &f), 0);
	*stats = rn_pq_delta_stats(w, cols, 2, n);
	assert_non_null(*stats);
	assert_int_equal(rn_delta_write_file(d, f.data, f.len, name, cap, &mtime), 0);
	*add = (struct rn_delta_add){name, (int64_t)f.len, mtime, *stats, NULL};
	rn_pq_writer_destroy(w);
	rn_buf_free(&f);
}

/* The table at dir reads back whole; *rows receives its row count and counts the records. */
static int64_t check(const char *dir, struct rn_tc_counts *c, int64_t *version)
{
	char why[600];
	memset(c->n, 0, sizeof(int) * c->nstreams * (size_t)c->nseq);
	c->unknown = 0;
	if (rn_tc_check(dir, rn_tc_count, c, version, why, sizeof(why)))
		fail_msg("%s", why);
	int64_t rows = 0;
	for (size_t i = 0; i < c->nstreams * (size_t)c->nseq; i++)
		rows += c->n[i];
	assert_int_equal(c->unknown, 0);
	return rows;
}

/* Every record of [0, per_stream) of each stream exactly once. */
static void assert_once(const struct rn_tc_counts *c, int64_t per_stream)
{
	for (size_t s = 0; s < c->nstreams; s++)
		for (int64_t q = 0; q < c->nseq; q++)
			if (c->n[s * (size_t)c->nseq + (size_t)q] != (q < per_stream))
				fail_msg("stream %s seq %lld: %d rows", c->streams[s], (long long)q,
					 c->n[s * (size_t)c->nseq + (size_t)q]);
}

/*
 * The commit: three data files (one per stream) and three txns in one version. A failure
 * before the version is durable returns an error, leaves no version file and no version
 * taken; the retry commits it as version 1; every record once.
 */
static void test_commit_sweep(void **state)
{
	int64_t per = long_mode ? 2000 : 40;
	int cnt[3 * 2000];
	struct rn_tc_counts c = {streams, 3, per, cnt, 0};
	long base = rn_mem_live();
	(void)state;

	for (long n = 1;; n++) {
		char dir[400], names[3][256], *stats[3];
		struct rn_delta_add adds[3];
		struct rn_delta_txn txns[3];
		struct rn_delta *d;
		int64_t v = -1, ver;

		snprintf(dir, sizeof(dir), "%s/commit-%ld", root, n);
		assert_int_equal(rn_delta_open(&d, dir, SCHEMA, NULL), 0);
		for (int i = 0; i < 3; i++) {
			data_file(d, streams[i], 0, per, &adds[i], names[i], sizeof(names[i]),
				  &stats[i]);
			txns[i] = (struct rn_delta_txn){streams[i], 7};
		}
		rn_mem_fail_after(n);
		int rc = rn_delta_commit(d, adds, 3, txns, 3, &v);
		int hit = rn_mem_fail_disarm();
		int64_t rows = check(dir, &c, &ver);
		if (rc) {
			/* nothing visible, no version taken */
			assert_int_equal(rc, RN_ENOMEM);
			assert_int_equal(ver, 0);
			assert_int_equal(rows, 0);
			assert_int_equal(rn_delta_commit(d, adds, 3, txns, 3, &v), 0);
		}
		assert_int_equal(v, 1);
		rows = check(dir, &c, &ver);
		assert_int_equal(ver, 1);
		assert_int_equal(rows, 3 * per);
		assert_once(&c, per);
		/* the same batch again is known to be in the table */
		assert_int_equal(rn_delta_commit(d, adds, 3, txns, 3, &v), RN_EEXIST);
		for (int i = 0; i < 3; i++)
			rn_free(stats[i]);
		rn_delta_close(d);
		assert_int_equal(rn_mem_live(), base);
		rm_rf(dir);
		sweep_runs++;
		if (!hit) {
			assert_int_equal(rc, 0);
			print_message("commit: %ld allocations swept\n", n);
			break;
		}
	}
	sweep_ops++;
}

/*
 * The checkpoint of a table with several versions (adds of three streams, txns, and a
 * checkpoint before it): a failure leaves the table readable, from the JSON and from any
 * checkpoint; the retry writes it; every record once either way.
 */
static void test_checkpoint_sweep(void **state)
{
	int nver = long_mode ? 30 : 6;
	int64_t per = 10;
	int cnt[3 * 30 * 10];
	struct rn_tc_counts c = {streams, 3, per * nver, cnt, 0};
	long base = rn_mem_live();
	(void)state;

	for (long n = 1;; n++) {
		char dir[400], name[256], *stats;
		struct rn_delta *d;
		int64_t v, ver, cv = -1;

		snprintf(dir, sizeof(dir), "%s/ckpt-%ld", root, n);
		assert_int_equal(rn_delta_open(&d, dir, SCHEMA, NULL), 0);
		for (int k = 0; k < nver; k++) {
			struct rn_delta_add add;
			struct rn_delta_txn txn = {streams[k % 3], k};
			data_file(d, streams[k % 3], (k / 3) * per, per, &add, name, sizeof(name),
				  &stats);
			assert_int_equal(rn_delta_commit(d, &add, 1, &txn, 1, &v), 0);
			rn_free(stats);
			if (k == nver / 2)
				assert_int_equal(rn_delta_checkpoint(d, 0, NULL), 0);
		}
		rn_mem_fail_after(n);
		int rc = rn_delta_checkpoint(d, 0, &cv);
		int hit = rn_mem_fail_disarm();
		int64_t rows = check(dir, &c, &ver);
		assert_int_equal(ver, nver);
		assert_int_equal(rows, 3 * per * ((nver + 2) / 3));
		if (rc)
			assert_int_equal(rn_delta_checkpoint(d, 0, &cv), 0);
		assert_int_equal(cv, nver);
		assert_int_equal(rn_delta_checkpoint_version(d), nver);
		rows = check(dir, &c, &ver);
		assert_int_equal(rows, 3 * per * ((nver + 2) / 3));
		assert_once(&c, per * ((nver + 2) / 3));
		rn_delta_close(d);
		/* a new handle starts from that checkpoint and knows every txn */
		assert_int_equal(rn_delta_open(&d, dir, NULL, NULL), 0);
		assert_int_equal(rn_delta_checkpoint_version(d), nver);
		assert_int_equal(rn_delta_txn(d, streams[(nver - 1) % 3]), nver - 1);
		rn_delta_close(d);
		assert_int_equal(rn_mem_live(), base);
		rm_rf(dir);
		sweep_runs++;
		if (!hit) {
			assert_int_equal(rc, 0);
			print_message("checkpoint: %ld allocations swept\n", n);
			break;
		}
	}
	sweep_ops++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_sweep),
		cmocka_unit_test(test_checkpoint_sweep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
