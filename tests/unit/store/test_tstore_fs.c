/*
 * The table store's local backend (server/store/tstore_fs.c): the backend-neutral contract
 * (tstore_contract.c) on a temporary directory, with a second object racing put_new, and the
 * failures only the file system has: every open, write, fsync, rename and link made to fail
 * in turn (common/rn_fs.h's seam) must leave no object behind a failed put, and a put_new
 * never reports success for an object that is not there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "testutil.h"
#include "tstore.h"
#include "tstore_contract.h"

static char root[1024], table[1100];

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "tstorefs"))
		return -1;
	snprintf(table, sizeof(table), "%s/tables/a/t", root);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rn_fs_fail_after(0, 0, 0);
	return rn_test_rmtree(root);
}

static struct rn_tstore *open_store(void)
{
	struct rn_tstore *st;
	char err[256];
	int rc = rn_tstore_open(&st, table, NULL, err, sizeof(err));
	if (rc)
		fail_msg("open %s: %s", table, err);
	return st;
}

static void test_contract(void **state)
{
	(void)state;
	long live = rn_mem_live();
	struct rn_tstore *a = open_store(), *b = open_store();
	assert_string_equal(rn_tstore_local_dir(a), table);
	assert_string_equal(rn_tstore_root(a), table);
	/* the root does not exist yet: the first put makes it */
	assert_int_equal(rn_tstore_contract_run(a), 0);
	assert_int_equal(rn_tstore_contract_run_pair(a, b), 0);
	rn_tstore_close(a);
	rn_tstore_close(b);
	assert_int_equal(rn_mem_live(), live);
}

static int count(void *ctx, const struct rn_tstore_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* Names in dir and below that are not directories (temp files included). */
static int files_below(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[2048];
		struct stat sb;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &sb))
			continue;
		n += S_ISDIR(sb.st_mode) ? files_below(p) : 1;
	}
	closedir(d);
	return n;
}

static void test_fs_only(void **state)
{
	(void)state;
	struct rn_tstore *st = open_store();
	struct rn_tstore_entry e;
	char p[2048];
	int n = 0, fd;

	/* scratch names (a dead writer's temp file) are not listed, nor dot directories */
	assert_int_equal(rn_tstore_put(st, "_delta_log/00000000000000000000.json", "{}\n", 3), 0);
	snprintf(p, sizeof(p), "%s/_delta_log/.00000000000000000001.json.1.2.3.tmp", table);
	assert_true((fd = open(p, O_WRONLY | O_CREAT, 0640)) >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/.hidden", table);
	assert_int_equal(mkdir(p, 0750), 0);
	snprintf(p, sizeof(p), "%s/.hidden/x", table);
	assert_true((fd = open(p, O_WRONLY | O_CREAT, 0640)) >= 0);
	close(fd);
	assert_int_equal(rn_tstore_list(st, NULL, 1, count, &n), 0);
	assert_int_equal(n, 1);
	/* a directory is no object */
	assert_int_equal(rn_tstore_stat(st, "_delta_log", &e), RN_ENOTFOUND);
	assert_int_equal(rn_tstore_delete(st, "_delta_log"), 0);
	assert_int_equal(rn_tstore_stat(st, "_delta_log/00000000000000000000.json", &e), 0);
	/* ENOSPC is RN_ENOSPC with the detail on the store */
	rn_fs_fail_after(1, ENOSPC, RN_FS_WRITE);
	assert_int_equal(rn_tstore_put(st, "x/full", "data", 4), RN_ENOSPC);
	rn_fs_fail_after(0, 0, 0);
	assert_non_null(strstr(rn_tstore_errmsg(st), "write"));
	assert_int_equal(rn_tstore_stat(st, "x/full", &e), RN_ENOTFOUND);
	/* a big body (written with O_DIRECT where the file system allows it) reads back */
	struct rn_buf big = {0}, back = {0};
	for (int i = 0; i < 300000; i++)
		assert_int_equal(rn_buf_append_u8(&big, (uint8_t)(i * 7)), 0);
	assert_int_equal(rn_tstore_put(st, "big/part-1.parquet", big.data, big.len), 0);
	assert_int_equal(rn_tstore_get(st, "big/part-1.parquet", 0, -1, &back), 0);
	assert_int_equal(back.len, big.len);
	assert_memory_equal(back.data, big.data, big.len);
	rn_buf_free(&big);
	rn_buf_free(&back);
	rn_tstore_close(st);
	assert_int_equal(rn_test_rmtree(table), 0);

	/* relative roots, one part and several, made on the first put */
	char cwd[1024], err[128];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(root), 0);
	static const char *const rel[] = {"relt", "rel/a/t"};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rn_tstore_open(&st, rel[i], NULL, err, sizeof(err)), 0);
		assert_int_equal(rn_tstore_put_new(st, "_delta_log/0.json", "x", 1), 0);
		assert_int_equal(rn_tstore_stat(st, "_delta_log/0.json", &e), 0);
		rn_tstore_close(st);
	}
	assert_int_equal(chdir(cwd), 0);
}

/* Every failure of kind `kind` in turn (errno err) during a put or put_new of a new key. */
static void sweep(unsigned kind, int err, int use_new)
{
	char k[64];
	long runs = 0;

	assert_int_equal(rn_test_rmtree(table), 0);
	for (long nth = 1;; nth++) {
		struct rn_tstore *st = open_store();
		struct rn_tstore_entry e;
		long inj = rn_fs_injected();
		int rc;

		snprintf(k, sizeof(k), "dir%ld/sub/k%ld", nth, nth);
		rn_fs_fail_after(nth, err, kind);
		rc = use_new ? rn_tstore_put_new(st, k, "body", 4)
			     : rn_tstore_put(st, k, "body", 4);
		rn_fs_fail_after(0, 0, 0);
		int fired = rn_fs_injected() > inj;
		int there = rn_tstore_stat(st, k, &e) == 0;
		if (!fired) {
			assert_int_equal(rc, 0);
			assert_true(there);
			rn_tstore_close(st);
			break;
		}
		runs++;
		assert_int_not_equal(rc, 0); /* every injected failure is reported */
		assert_true(rc == RN_EIO || rc == RN_ENOSPC);
		if (!use_new) {
			assert_false(there); /* no object after a failed put */
		} else if (there) {
			/* visible after a failed put_new: only once linked, reported as an
			 * unknown outcome (RN_EIO), never as success or as "full" */
			assert_int_equal(rc, RN_EIO);
			assert_true(kind == RN_FS_FSYNC);
			struct rn_buf b = {0};
			assert_int_equal(rn_tstore_get(st, k, 0, -1, &b), 0);
			assert_int_equal(b.len, 4);
			assert_memory_equal(b.data, "body", 4);
			rn_buf_free(&b);
			/* a retry of the same key sees it taken */
			assert_int_equal(rn_tstore_put_new(st, k, "body", 4), RN_EEXIST);
		}
		if (kind != RN_FS_FSYNC || !use_new) {
			/* nothing left on disk: no temp file, no object (directories may stay) */
			char d[1200];
			snprintf(d, sizeof(d), "%s/dir%ld", table, nth);
			assert_int_equal(files_below(d), 0);
		}
		rn_tstore_close(st);
		assert_true(nth < 100);
	}
	assert_true(runs > 0 || kind == (use_new ? RN_FS_RENAME : RN_FS_LINK));
}

static void test_failures(void **state)
{
	static const unsigned kinds[] = {RN_FS_OPEN, RN_FS_WRITE, RN_FS_FSYNC, RN_FS_RENAME,
					 RN_FS_LINK};
	static const int errs[] = {EIO, ENOSPC};
	(void)state;
	long live = rn_mem_live();
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (size_t e = 0; e < 2; e++)
			for (int use_new = 0; use_new < 2; use_new++)
				sweep(kinds[k], errs[e], use_new);
	assert_int_equal(rn_mem_live(), live);
	assert_int_equal(rn_test_rmtree(table), 0);
}

/* Allocation failures: open and list fail cleanly, nothing leaks. */
static void test_alloc(void **state)
{
	(void)state;
	struct rn_tstore *st = open_store();
	for (int i = 0; i < 20; i++) {
		char k[64];
		snprintf(k, sizeof(k), "l/%02d", i);
		assert_int_equal(rn_tstore_put(st, k, "x", 1), 0);
	}
	rn_tstore_close(st);
	for (long nth = 1;; nth++) {
		long live = rn_mem_live();
		int n = 0, rc;
		char err[128];
		rn_mem_fail_after(nth);
		rc = rn_tstore_open(&st, table, NULL, err, sizeof(err));
		if (!rc)
			rc = rn_tstore_list(st, "l", 0, count, &n);
		rn_mem_fail_after(0);
		if (!rc) {
			assert_int_equal(n, 20);
			rn_tstore_close(st);
			assert_int_equal(rn_mem_live(), live);
			break;
		}
		assert_int_equal(rc, RN_ENOMEM);
		rn_tstore_close(st);
		assert_int_equal(rn_mem_live(), live);
		assert_true(nth < 200);
	}
	assert_int_equal(rn_test_rmtree(table), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_fs_only),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_alloc),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
