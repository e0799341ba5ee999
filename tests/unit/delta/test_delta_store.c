/*
 * The Delta code on a table store (server/delta/delta.c over server/store/tstore.h): a table
 * opened on a store the caller made (the handle owns it), rn_delta_exists_store, and commits
 * whose outcome the store could not tell (RN_EIO after the object became visible: the local
 * backend's directory fsync failing after link()). Such a commit is read back: an append
 * reports the failure but is never written a second time (a retry of its txns is RN_EEXIST,
 * one version in the log), a compaction rewrite found in the log is a success (its new file
 * is referenced). Judged by the independent log reader (log.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "delta.h"
#include "log.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "testutil.h"
#include "tstore.h"

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

static char root[512], table[600];
static int seq;

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "deltastore"))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rn_fs_fail_after(0, 0, 0);
	return rn_test_rmtree(root);
}

static struct rn_tstore *store(void)
{
	struct rn_tstore *st;
	char err[256];
	snprintf(table, sizeof(table), "%s/t%d", root, seq++);
	if (rn_tstore_open(&st, table, NULL, err, sizeof(err)))
		fail_msg("%s", err);
	return st;
}

/* Writes a data file and returns its add (name in buf). */
static struct rn_delta_add data_file(struct rn_delta *d, char *buf, size_t cap)
{
	int64_t mtime;
	assert_int_equal(rn_delta_write_file(d, "PAR1 data", 9, buf, cap, &mtime), 0);
	return (struct rn_delta_add){buf, 9, mtime, "{\"numRecords\":1}", NULL};
}

/* The log as the independent reader sees it: its version, and app's txn. */
static int64_t log_version(int64_t *txn, const char *app)
{
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	if (rn_dlog_load(l, table))
		fail_msg("log unreadable: %s", rn_dlog_errmsg(l));
	int64_t v = rn_dlog_version(l);
	if (txn)
		*txn = rn_dlog_txn(l, app);
	rn_dlog_destroy(l);
	return v;
}

static void test_open_store(void **state)
{
	(void)state;
	long live = rn_mem_live();
	struct rn_tstore *st = store();
	struct rn_delta *d;
	char name[256];
	int64_t v;

	assert_int_equal(rn_delta_exists_store(st), 0);
	/* no schema, no table: RN_ENOTFOUND, and the store was closed with the failed open */
	assert_int_equal(rn_delta_open_store(&d, st, NULL, "t"), RN_ENOTFOUND);
	assert_null(d);
	assert_int_equal(rn_mem_live(), live);

	st = store();
	assert_int_equal(rn_delta_open_store(&d, st, SCHEMA, "t"), 0);
	assert_ptr_equal(rn_delta_store(d), st);
	assert_string_equal(rn_delta_dir(d), table);
	assert_int_equal(rn_delta_exists_store(st), 1);
	assert_int_equal(rn_delta_exists(table), 1);
	struct rn_delta_add add = data_file(d, name, sizeof(name));
	struct rn_delta_txn txn = {"s", 0};
	assert_int_equal(rn_delta_commit(d, &add, 1, &txn, 1, &v), 0);
	assert_int_equal(v, 1);
	rn_delta_close(d); /* closes st */
	assert_int_equal(rn_mem_live(), live);

	/* the path-based open reads the same table */
	assert_int_equal(rn_delta_open(&d, table, NULL, "t"), 0);
	assert_int_equal(rn_delta_version(d), 1);
	assert_int_equal(rn_delta_txn(d, "s"), 0);
	rn_delta_close(d);
	/* a root no store takes */
	assert_int_equal(rn_delta_open(&d, "ftp://x/y", SCHEMA, "t"), RN_EINVAL);
	assert_null(d);
}

/* The directory fsync of the next put_new fails (the commit is visible, its outcome unknown
 * to the store): the temp file's fsync is the 1st FSYNC call, the directory's the 2nd. */
static void fail_dir_fsync_of_next_commit(void)
{
	rn_fs_fail_after(2, EIO, RN_FS_FSYNC);
}

static void test_append_unknown_outcome(void **state)
{
	(void)state;
	struct rn_delta *d;
	char name[256];
	int64_t v, txn;

	assert_int_equal(rn_delta_open_store(&d, store(), SCHEMA, "t"), 0);
	struct rn_delta_add add = data_file(d, name, sizeof(name));
	struct rn_delta_txn t = {"s", 7};
	long inj = rn_fs_injected();
	fail_dir_fsync_of_next_commit();
	int rc = rn_delta_commit(d, &add, 1, &t, 1, &v);
	rn_fs_fail_after(0, 0, 0);
	assert_true(rn_fs_injected() > inj);
	assert_int_equal(rc, RN_EIO); /* reported: its durability is not known */
	/* the version is ours and in the snapshot: a retry never writes it again */
	assert_int_equal(rn_delta_version(d), 1);
	assert_int_equal(rn_delta_txn(d, "s"), 7);
	assert_int_equal(rn_delta_commit(d, &add, 1, &t, 1, &v), RN_EEXIST);
	assert_int_equal(log_version(&txn, "s"), 1);
	assert_int_equal(txn, 7);

	/* a commit without txns is not written twice either: the next one is version 2 */
	struct rn_delta_add add2 = data_file(d, name, sizeof(name));
	fail_dir_fsync_of_next_commit();
	assert_int_equal(rn_delta_commit(d, &add2, 1, NULL, 0, &v), RN_EIO);
	rn_fs_fail_after(0, 0, 0);
	assert_int_equal(rn_delta_version(d), 2);
	assert_int_equal(log_version(NULL, NULL), 2);

	/* a failure before the commit is visible (the link) takes no version */
	struct rn_delta_add add3 = data_file(d, name, sizeof(name));
	rn_fs_fail_after(1, EIO, RN_FS_LINK);
	struct rn_delta_txn t3 = {"s", 8};
	assert_int_equal(rn_delta_commit(d, &add3, 1, &t3, 1, &v), RN_EIO);
	rn_fs_fail_after(0, 0, 0);
	assert_int_equal(rn_delta_version(d), 2);
	assert_int_equal(log_version(NULL, NULL), 2);
	assert_int_equal(rn_delta_commit(d, &add3, 1, &t3, 1, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(log_version(&txn, "s"), 3);
	assert_int_equal(txn, 8);
	rn_delta_close(d);
}

static void test_rewrite_unknown_outcome(void **state)
{
	(void)state;
	struct rn_delta *d;
	char n1[256], n2[256], n3[256];
	int64_t v;

	assert_int_equal(rn_delta_open_store(&d, store(), SCHEMA, "t"), 0);
	struct rn_delta_add a[2] = {data_file(d, n1, sizeof(n1)), data_file(d, n2, sizeof(n2))};
	assert_int_equal(rn_delta_commit(d, a, 2, NULL, 0, &v), 0);
	struct rn_delta_add out = data_file(d, n3, sizeof(n3));
	const char *removed[] = {n1, n2};
	fail_dir_fsync_of_next_commit();
	assert_int_equal(rn_delta_commit_rewrite(d, removed, 2, &out, &v), 0);
	rn_fs_fail_after(0, 0, 0);
	assert_int_equal(v, 2);
	assert_int_equal(log_version(NULL, NULL), 2);
	/* the rewrite is in: its output is the one live file */
	size_t live = 0;
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	const struct rn_dlog_file *lf = rn_dlog_files(l, &live);
	assert_int_equal(live, 1);
	assert_non_null(strstr(lf[0].path, n3));
	rn_dlog_destroy(l);
	rn_delta_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_store),
		cmocka_unit_test(test_append_unknown_outcome),
		cmocka_unit_test(test_rewrite_unknown_outcome),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
