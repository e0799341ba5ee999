/*
 * Multi-writer safety of the Delta writer (server/delta/delta.c), judged by the independent
 * log analyzer (server/delta/log.c): several processes commit to one table in tight loops,
 * far more contended than a server's flush timer makes it. Every commit must land exactly
 * once at its own version, versions stay contiguous, each writer's txn watermark is its last
 * batch. And when two processes race to commit the same batch (same appId and version), one
 * lands and the other is told RN_EEXIST. And two writers holding overlapping offsets of one
 * stream (a stream resumed on another server): the second is told RN_EOVERLAP, never commits
 * the offsets twice. And a writer more versions behind than one commit call races through
 * is told RN_EAGAIN, never success for a version it did not write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "delta.h"
#include "log.h"
#include "rn_err.h"
#include "testutil.h"

#define WRITERS 4
#define COMMITS 150

static char root[512], table[600];

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(root, sizeof(root), "race");
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

/* Child: COMMITS commits of one add + one txn for app "w<id>". Exit status = failures. */
static int writer(int id)
{
	struct rn_delta *d;
	char app[16], path[64];
	int bad = 0;
	snprintf(app, sizeof(app), "w%d", id);
	if (rn_delta_open(&d, table, SCHEMA, "race"))
		return 100;
	for (int i = 0; i < COMMITS; i++) {
		int64_t v;
		snprintf(path, sizeof(path), "w%d-%04d.parquet", id, i);
		struct rn_delta_add add = {
			.path = path, .size = 100, .mtime_ms = 1, .stats = "{\"numRecords\":1}"};
		struct rn_delta_txn txn = {app, i};
		int rc = rn_delta_commit(d, &add, 1, &txn, 1, &v);
		if (rc) {
			fprintf(stderr, "writer %d commit %d: %s: %s\n", id, i, rn_strerror(rc),
				rn_delta_errmsg(d));
			bad++;
		}
	}
	rn_delta_close(d);
	return bad > 99 ? 99 : bad;
}

static void wait_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st))
			fail_msg("writer %d: exit %d", i, WEXITSTATUS(st));
	}
}

static void test_contended_appends(void **state)
{
	pid_t pids[WRITERS];
	struct rn_dlog *l;
	(void)state;
	snprintf(table, sizeof(table), "%s/append", root);
	/* No table yet: the writers also race to create version 0. */
	for (int i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(writer(i));
	}
	wait_all(pids, WRITERS);

	assert_int_equal(rn_dlog_create(&l), 0);
	if (rn_dlog_load(l, table))
		fail_msg("%s", rn_dlog_errmsg(l));
	assert_int_equal(rn_dlog_version(l), WRITERS * COMMITS);
	size_t n, total;
	int64_t bytes, rows;
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, WRITERS * COMMITS);
	rn_dlog_files(l, &n);
	assert_int_equal(n, WRITERS * COMMITS);
	for (int i = 0; i < WRITERS; i++) {
		char app[16];
		snprintf(app, sizeof(app), "w%d", i);
		assert_int_equal(rn_dlog_txn(l, app), COMMITS - 1);
	}
	const char *const *w = rn_dlog_warnings(l, &n, &total);
	if (total)
		fail_msg("log warning: %s", w[0]);
	/* exactly one version 0 with metaData: the others saw the table created */
	const struct rn_dlog_commit *c = rn_dlog_commits(l, &n);
	for (size_t v = 1; v < n; v++)
		assert_false(c[v].meta_change);
	rn_dlog_destroy(l);
}

static int ready_fd[2], go_fd[2];

/* Child: opens the table, says so, waits for the go, then commits the batch (app "same",
 * version 7) once. Exit 0 = landed, 1 = RN_EEXIST (already committed), 2 = other error. */
static int same_batch(int id)
{
	struct rn_delta *d;
	char path[64], c;
	int64_t v;
	close(ready_fd[0]);
	close(go_fd[1]);
	if (rn_delta_open(&d, table, SCHEMA, "race"))
		return 100;
	if (write(ready_fd[1], "r", 1) != 1 || read(go_fd[0], &c, 1) != 0)
		return 101;
	snprintf(path, sizeof(path), "same-%d.parquet", id);
	struct rn_delta_add add = {
		.path = path, .size = 100, .mtime_ms = 1, .stats = "{\"numRecords\":1}"};
	struct rn_delta_txn txn = {"same", 7};
	int rc = rn_delta_commit(d, &add, 1, &txn, 1, &v);
	rn_delta_close(d);
	return rc == 0 ? 0 : rc == RN_EEXIST ? 1 : 2;
}

static void test_same_batch_twice(void **state)
{
	(void)state;
	/* Both writers have read the log before either commits, so they race for version 1 with
	 * the same batch: exactly one may land. Repeated to see both outcomes of the race. */
	for (int round = 0; round < 20; round++) {
		struct rn_delta *d;
		struct rn_dlog *l;
		pid_t pids[2];
		int landed = 0, dup = 0;
		char c;
		snprintf(table, sizeof(table), "%s/same-%d", root, round);
		assert_int_equal(rn_delta_open(&d, table, SCHEMA, "race"), 0);
		rn_delta_close(d);
		assert_int_equal(pipe(ready_fd), 0);
		assert_int_equal(pipe(go_fd), 0);
		for (int i = 0; i < 2; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0)
				_exit(same_batch(i));
		}
		close(ready_fd[1]);
		close(go_fd[0]);
		for (int i = 0; i < 2; i++)
			assert_int_equal(read(ready_fd[0], &c, 1), 1);
		close(go_fd[1]); /* both are past open: go */
		close(ready_fd[0]);
		for (int i = 0; i < 2; i++) {
			int st;
			assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
			assert_true(WIFEXITED(st));
			landed += WEXITSTATUS(st) == 0;
			dup += WEXITSTATUS(st) == 1;
		}
		assert_int_equal(landed, 1);
		assert_int_equal(dup, 1);
		assert_int_equal(rn_dlog_create(&l), 0);
		assert_int_equal(rn_dlog_load(l, table), 0);
		size_t n;
		rn_dlog_files(l, &n);
		assert_int_equal(n, 1);
		assert_int_equal(rn_dlog_version(l), 1);
		assert_int_equal(rn_dlog_txn(l, "same"), 7);
		rn_dlog_destroy(l);
	}
}

static int64_t add_commit(struct rn_delta *d, const char *path, const struct rn_delta_txn *txns,
			  const int64_t *first, size_t n)
{
	int64_t v = -1;
	struct rn_delta_add add = {
		.path = path, .size = 100, .mtime_ms = 1, .stats = "{\"numRecords\":1}"};
	int rc = rn_delta_commit_from(d, &add, 1, txns, first, n, &v);
	return rc ? rc : v;
}

static void test_overlap(void **state)
{
	struct rn_delta *a, *b;
	(void)state;
	snprintf(table, sizeof(table), "%s/overlap", root);
	assert_int_equal(rn_delta_open(&a, table, SCHEMA, "race"), 0);
	assert_int_equal(rn_delta_open(&b, table, SCHEMA, "race"), 0);
	/* a holds offsets 0..5 of s, b holds 0..9 (s resumed on b at nothing): a lands */
	struct rn_delta_txn ta = {"s", 5}, tb = {"s", 9}, two[2] = {{"s", 9}, {"o", 3}};
	int64_t from0 = 0, from6 = 6, two0[2] = {0, 0};
	assert_int_equal(add_commit(a, "a1.parquet", &ta, &from0, 1), 1);
	/* b has not read it: it loses the race for version 1, reads it and refuses (0..5 of its
	 * rows are in the table); nothing written */
	assert_int_equal(add_commit(b, "b1.parquet", &tb, &from0, 1), RN_EOVERLAP);
	assert_int_equal(rn_delta_version(b), 1);
	/* now in b's snapshot: refused before any write, with another stream in the commit too */
	assert_int_equal(add_commit(b, "b1.parquet", two, two0, 2), RN_EOVERLAP);
	/* rebuilt without them, offsets 6..9: lands */
	assert_int_equal(add_commit(b, "b2.parquet", &tb, &from6, 1), 2);
	/* covered whole: RN_EEXIST, as before */
	assert_int_equal(add_commit(a, "a2.parquet", &ta, &from0, 1), RN_EEXIST);
	/* without `first` (rn_delta_commit) a range is not known: only a txn at or past ours is
	 * seen, and part of a commit covered (one app id of two) is RN_EOVERLAP after a lost
	 * race */
	struct rn_delta_txn tc = {"o", 1};
	assert_int_equal(add_commit(a, "a3.parquet", &tc, NULL, 1), 3);
	struct rn_delta_txn mix[2] = {{"s", 12}, {"o", 1}};
	assert_int_equal(add_commit(b, "b3.parquet", mix, NULL, 2), RN_EOVERLAP);
	rn_delta_close(a);
	rn_delta_close(b);
	struct rn_dlog *l;
	size_t n;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	rn_dlog_files(l, &n);
	assert_int_equal(n, 3); /* a1, b2, a3 */
	assert_int_equal(rn_dlog_txn(l, "s"), 9);
	assert_int_equal(rn_dlog_txn(l, "o"), 1);
	rn_dlog_destroy(l);
}

/* A writer far behind: b commits while a (a server whose handle has not committed for a
 * while, or one paused) sits at version 0; a's next commit loses a race for every version
 * after it. Past the commit call's 1,000 lost races it must say RN_EAGAIN and have written
 * nothing, never report success for a version another writer holds; its retry goes on from
 * where it stopped and lands once. */
static void test_far_behind(void **state)
{
	struct rn_delta *a, *b;
	int64_t v = -1;
	enum { BEHIND = 1200 };
	(void)state;
	snprintf(table, sizeof(table), "%s/behind", root);
	assert_int_equal(rn_delta_open(&a, table, SCHEMA, "race"), 0);
	assert_int_equal(rn_delta_open(&b, table, SCHEMA, "race"), 0);
	for (int i = 0; i < BEHIND; i++) {
		struct rn_delta_txn tb = {"b", i};
		if (rn_delta_commit(b, NULL, 0, &tb, 1, &v))
			fail_msg("b's commit %d: %s", i, rn_delta_errmsg(b));
	}
	assert_int_equal(v, BEHIND);
	struct rn_delta_add add = {
		.path = "a1.parquet", .size = 100, .mtime_ms = 1, .stats = "{\"numRecords\":1}"};
	struct rn_delta_txn ta = {"a", 1};
	v = -1;
	assert_int_equal(rn_delta_commit(a, &add, 1, &ta, 1, &v), RN_EAGAIN);
	assert_int_equal(v, -1);
	assert_int_equal(rn_delta_version(a), 1000); /* read on as far as it raced */
	assert_int_equal(rn_delta_txn(a, "a"), -1);
	assert_int_equal(rn_delta_commit(a, &add, 1, &ta, 1, &v), 0);
	assert_int_equal(v, BEHIND + 1);
	rn_delta_close(a);
	rn_delta_close(b);
	struct rn_dlog *l;
	size_t n;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	assert_int_equal(rn_dlog_version(l), BEHIND + 1);
	rn_dlog_files(l, &n);
	assert_int_equal(n, 1); /* a1, once */
	assert_int_equal(rn_dlog_txn(l, "a"), 1);
	assert_int_equal(rn_dlog_txn(l, "b"), BEHIND - 1);
	rn_dlog_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contended_appends),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_same_batch_twice),
		cmocka_unit_test(test_far_behind),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
