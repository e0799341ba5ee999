/*
 * I/O-failure sweep of the Delta writer (server/delta/delta.c): one workload — create a
 * table, then three times write a data file and commit it with the stream's txn (the
 * materializer's flush: on a failed commit a new data file is written and the commit
 * retried), then write a checkpoint — runs once per injected failure: every open, write,
 * fsync, rename, link and unlink it makes through the rn_fs seam fails in turn (N = 1, 2, ...
 * until a run reaches none), with EIO and then ENOSPC. After each run: no crash or leak;
 * the independent analyzer (log.c) reads the log from version 0 and from the checkpoint;
 * every live data file is whole (its size and bytes as written); no temp file is left
 * under a name readers see; a call whose fsync, write or link failed reported an error;
 * and each batch is in the table exactly once (three live files, txn = 2). RN_SWEEP_LONG=1
 * (tests/README.md) commits ten batches instead of three.
 */
#include <dirent.h>
#include <errno.h>
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

#include "delta.h"
#include "log.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "testutil.h"

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

static char root[512], table[600];
static int long_mode;

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "deltaio"))
		return -1;
	snprintf(table, sizeof(table), "%s/t", root);
	long_mode = getenv("RN_SWEEP_LONG") && *getenv("RN_SWEEP_LONG") == '1';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rn_fs_fail_after(0, 0, 0);
	return rn_test_rmtree(root);
}

static void wipe(void)
{
	assert_int_equal(rn_test_rmtree(table), 0);
}

static int io_error(int rc)
{
	return rc == RN_EIO || rc == RN_ENOSPC;
}

/* The content of batch i's data file: recognisable, and different per batch. */
static void batch_data(int i, char *out, size_t cap)
{
	snprintf(out, cap, "PAR1 batch %d of the io sweep ......................................",
		 i);
}

/* Set by every step: did the armed failure fire inside it? */
static long injected_before;
static int fired(void)
{
	long now = rn_fs_injected();
	int f = now > injected_before;
	injected_before = now;
	return f;
}

/* The kind armed in this run (0 = none). */
static unsigned armed_kind;

/* A call in which a write, fsync, open or link failed must report it. */
static void must_report(int rc)
{
	if (fired() && (armed_kind & (RN_FS_WRITE | RN_FS_FSYNC | RN_FS_OPEN | RN_FS_LINK)))
		assert_true(rc != 0);
}

static void workload(int nb)
{
	struct rn_delta *d = NULL;
	int rc;

	for (int tries = 0;; tries++) {
		assert_true(tries < 3);
		rc = rn_delta_open(&d, table, SCHEMA, "io sweep");
		must_report(rc);
		if (!rc)
			break;
		assert_true(io_error(rc));
	}
	for (int i = 0; i < nb; i++) {
		char data[128];
		batch_data(i, data, sizeof(data));
		for (int tries = 0;; tries++) {
			char name[256];
			int64_t mtime, version;
			assert_true(tries < 3);
			rc = rn_delta_write_file(d, data, strlen(data), name, sizeof(name), &mtime);
			must_report(rc);
			if (rc) {
				assert_true(io_error(rc));
				continue;
			}
			char stats[64];
			snprintf(stats, sizeof(stats), "{\"numRecords\":%d}", i + 1);
			struct rn_delta_add add = {name, (int64_t)strlen(data), mtime, stats, NULL};
			struct rn_delta_txn txn = {"stream-1", i};
			rc = rn_delta_commit(d, &add, 1, &txn, 1, &version);
			must_report(rc);
			if (!rc || (tries && rc == RN_EEXIST))
				break; /* committed (by this try or, unreported, the one before) */
			assert_true(io_error(rc));
		}
	}
	for (int tries = 0;; tries++) {
		assert_true(tries < 3);
		rc = rn_delta_checkpoint(d, 0, NULL);
		must_report(rc);
		if (!rc)
			break;
		assert_true(io_error(rc));
	}
	rn_delta_close(d);
}

/* Reads the whole file at table/rel; -1 if absent. */
static long read_file(const char *rel, char *out, size_t cap)
{
	char p[1400];
	snprintf(p, sizeof(p), "%s/%s", table, rel);
	FILE *f = fopen(p, "rb");
	if (!f)
		return -1;
	long n = (long)fread(out, 1, cap, f);
	fclose(f);
	return n;
}

/* No file in dir that is neither dot-prefixed (ignored by readers) nor accepted by ok. */
static void no_stray(const char *dir, int (*ok)(const char *name))
{
	DIR *d = opendir(dir);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "_delta_log"))
			continue;
		if (!ok(de->d_name))
			fail_msg("%s/%s should not be there", dir, de->d_name);
	}
	closedir(d);
}

static int data_name(const char *n)
{
	return !strncmp(n, "part-", 5) && strstr(n, ".parquet");
}

static int log_name(const char *n)
{
	size_t len = strlen(n);
	return (len == 25 && !strcmp(n + 20, ".json")) || !strcmp(n, "_last_checkpoint") ||
	       strstr(n, ".checkpoint.parquet");
}

static void check_table(int nb)
{
	char logdir[1400];
	for (int from_ckpt = 0; from_ckpt < 2; from_ckpt++) {
		struct rn_dlog *l;
		size_t n;
		assert_int_equal(rn_dlog_create(&l), 0);
		int rc = rn_dlog_load_mode(l, table, from_ckpt);
		if (rc)
			fail_msg("log unreadable (from checkpoint %d): %s", from_ckpt,
				 rn_dlog_errmsg(l));
		assert_int_equal(rn_dlog_txn(l, "stream-1"), nb - 1);
		const struct rn_dlog_file *f = rn_dlog_files(l, &n);
		assert_int_equal(n, (size_t)nb);
		int seen[64] = {0};
		for (size_t i = 0; i < n; i++) {
			char buf[256], want[128];
			long got = read_file(f[i].path, buf, sizeof(buf));
			assert_int_equal(got, f[i].size); /* whole */
			int b = (int)f[i].num_records - 1;
			assert_true(b >= 0 && b < nb);
			batch_data(b, want, sizeof(want));
			assert_int_equal(got, (long)strlen(want));
			assert_memory_equal(buf, want, (size_t)got);
			assert_int_equal(seen[b]++, 0); /* exactly once */
		}
		rn_dlog_destroy(l);
	}
	/* the writer's own reader opens it too */
	struct rn_delta *d;
	assert_int_equal(rn_delta_open(&d, table, NULL, "check"), 0);
	assert_int_equal(rn_delta_txn(d, "stream-1"), nb - 1);
	rn_delta_close(d);
	no_stray(table, data_name);
	snprintf(logdir, sizeof(logdir), "%s/_delta_log", table);
	no_stray(logdir, log_name);
}

static void test_io_sweep(void **state)
{
	static const unsigned kinds[] = {RN_FS_OPEN,   RN_FS_WRITE, RN_FS_FSYNC,
					 RN_FS_RENAME, RN_FS_LINK,  RN_FS_UNLINK};
	static const char *const names[] = {"open", "write", "fsync", "rename", "link", "unlink"};
	static const int errs[] = {EIO, ENOSPC};
	int nb = long_mode ? 10 : 3;
	long runs = 0, ops;
	(void)state;

	wipe();
	long c0 = rn_fs_calls();
	workload(nb);
	ops = rn_fs_calls() - c0;
	check_table(nb);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (size_t e = 0; e < 2; e++) {
			for (long n = 1;; n++) {
				long live = rn_mem_live(), inj = rn_fs_injected();
				wipe();
				injected_before = inj;
				armed_kind = kinds[k];
				rn_fs_fail_after(n, errs[e], kinds[k]);
				workload(nb);
				rn_fs_fail_after(0, 0, 0);
				armed_kind = 0;
				runs++;
				check_table(nb);
				assert_int_equal(rn_mem_live(), live);
				if (rn_fs_injected() == inj)
					break;
				if (n > 1000)
					fail_msg("%s: no end", names[k]);
			}
		}
	}
	printf("delta I/O sweep: %ld seam calls per run x %zu kinds x 2 errnos = %ld runs\n", ops,
	       sizeof(kinds) / sizeof(kinds[0]), runs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_sweep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
