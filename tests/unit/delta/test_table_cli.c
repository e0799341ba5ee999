/*
 * Unit tests for runnel-table (server/cli/table_cli.c) on tables in a temp dir: a table
 * written by the real writer (server/delta/delta.c) describes, lists its history and
 * verifies clean; then each kind of damage verify must catch (missing file, size mismatch,
 * bad magic, a torn footer, numRecords that disagree with the footer, a gap in the log) gives
 * exit 1 and a message naming the problem (also a checkpoint that disagrees or is missing);
 * usage errors give exit 2. vacuum of unreferenced files and the s3:// settings' errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "delta.h"
#include "rn_err.h"
#include "table_cli.h"
#include "testutil.h"

static char root[512], table[600];

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

/* A fake Parquet file: PAR1, padding, FileMetaData{1: 1, 2: [root], 3: rows, 4: []}. */
static size_t fake_parquet(uint8_t *out, int64_t rows, size_t pad)
{
	size_t n = 0, meta;
	uint64_t z = (uint64_t)(rows << 1) ^ (uint64_t)(rows >> 63);
	memcpy(out, "PAR1", 4);
	n = 4;
	memset(out + n, 0xab, pad);
	n += pad;
	meta = n;
	uint8_t pre[] = {0x15, 0x02, 0x19, 0x1c, 0x48, 0x01, 's', 0x00, 0x16};
	memcpy(out + n, pre, sizeof(pre));
	n += sizeof(pre);
	do {
		out[n++] = (uint8_t)((z & 0x7f) | (z > 0x7f ? 0x80 : 0));
		z >>= 7;
	} while (z);
	out[n++] = 0x19;
	out[n++] = 0x0c;
	out[n++] = 0x00;
	uint32_t len = (uint32_t)(n - meta);
	memcpy(out + n, (uint8_t[]){(uint8_t)len, (uint8_t)(len >> 8), 0, 0}, 4);
	n += 4;
	memcpy(out + n, "PAR1", 4);
	return n + 4;
}

/* Commits one fake file with `rows` in the footer and `stat_rows` in the stats. */
static void add_file(struct rn_delta *d, int64_t rows, int64_t stat_rows, const char *app,
		     int64_t off, char *name, size_t cap)
{
	uint8_t buf[256];
	char stats[64];
	int64_t mtime, version;
	size_t n = fake_parquet(buf, rows, 20);
	assert_int_equal(rn_delta_write_file(d, buf, n, name, cap, &mtime), 0);
	snprintf(stats, sizeof(stats), "{\"numRecords\":%lld}", (long long)stat_rows);
	struct rn_delta_add add = {
		.path = name, .size = (int64_t)n, .mtime_ms = mtime, .stats = stats};
	struct rn_delta_txn txn = {app, off};
	assert_int_equal(rn_delta_commit(d, &add, 1, &txn, 1, &version), 0);
}

static char files[3][128];

static int setup(void **state)
{
	struct rn_delta *d;
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "table"))
		return -1;
	snprintf(table, sizeof(table), "%s/main/default/t", root);
	if (rn_delta_open(&d, table, SCHEMA, "test"))
		return -1;
	add_file(d, 10, 10, "stream-a", 0, files[0], sizeof(files[0]));
	add_file(d, 20, 20, "stream-b", 4, files[1], sizeof(files[1]));
	add_file(d, 30, 30, "stream-a", 1, files[2], sizeof(files[2]));
	rn_delta_close(d);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

struct result {
	int code;
	char out[16384], err[4096];
};

/* Runs `table <args...>` (NULL-terminated) capturing both streams. */
static void run(struct result *r, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;
	argv[argc++] = "table";
	va_start(ap, r);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	FILE *o = tmpfile(), *e = tmpfile();
	assert_non_null(o);
	assert_non_null(e);
	r->code = rn_table_main(argc, argv, o, e);
	fflush(o);
	fflush(e);
	rewind(o);
	rewind(e);
	size_t n = fread(r->out, 1, sizeof(r->out) - 1, o);
	r->out[n] = 0;
	n = fread(r->err, 1, sizeof(r->err) - 1, e);
	r->err[n] = 0;
	fclose(o);
	fclose(e);
}

#define assert_has(hay, needle)                                                                    \
	do {                                                                                       \
		if (!strstr((hay), (needle)))                                                      \
			fail_msg("'%s' not found in:\n%s", (needle), (hay));                       \
	} while (0)

static void test_healthy_table(void **state)
{
	struct result r;
	(void)state;
	run(&r, "describe", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "version     3\n");
	assert_has(r.out, "files       3 live");
	assert_has(r.out, "rows        60\n");
	assert_has(r.out, "  id      long          no\n");
	assert_has(r.out, "  stream-a  1  (committed in version 3");
	assert_has(r.out, "  stream-b  4  ");

	run(&r, "describe", "--json", "-d", root, "main.default.t", NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "\"version\":3,");
	assert_has(r.out, "\"schema\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":false}]");
	assert_has(r.out, "\"files\":3,");
	assert_has(r.out, "\"rows\":60,");
	assert_has(r.out, "\"streams\":{\"stream-a\":1,\"stream-b\":4}");
	assert_has(r.out, "\"warnings\":[]");

	run(&r, "history", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "       3  ");
	assert_has(r.out, "CREATE TABLE");
	run(&r, "history", "-n", "2", "--json", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "\"history\":[{\"version\":3,");
	assert_has(r.out, "\"operation\":\"STREAMING UPDATE\"");
	assert_has(r.out, "\"filesAdded\":1,\"filesRemoved\":0,\"rowsAdded\":30,");
	assert_null(strstr(r.out, "\"version\":1,")); /* -n 2: versions 3 and 2 only */

	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "3 live files");
	assert_has(r.out, "3 files checked against their Parquet footer: OK");
	run(&r, "verify", "--json", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "\"ok\":true");
	assert_has(r.out, "\"problems\":[]");

	/* a garbage checkpoint next to a complete JSON log: other readers would start from
	 * it, so verify (which replays both ways) reports it */
	char p[900];
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.checkpoint.parquet", table, 2);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "problem: checkpoint: checkpoint 2: not a Parquet file");
	unlink(p);
	/* a real one agrees with the JSON replay */
	run(&r, "checkpoint", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "checkpoint written at version 3");
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 0);
	run(&r, "describe", table, NULL);
	assert_has(r.out, "checkpoint  version 3 (");
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.checkpoint.parquet", table, 3);
	unlink(p);
	snprintf(p, sizeof(p), "%s/_delta_log/_last_checkpoint", table);
	unlink(p);
}

static void path_of(char *out, size_t cap, int i)
{
	snprintf(out, cap, "%s/%s", table, files[i]);
}

static void test_damage(void **state)
{
	struct result r;
	char p[900], saved[1000];
	struct stat st;
	(void)state;

	/* a file one byte longer than the log says */
	path_of(p, sizeof(p), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size + 1), 0);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "size mismatch");
	assert_has(r.out, files[0]);
	assert_has(r.out, ": 1 problem\n");
	assert_int_equal(truncate(p, st.st_size), 0);

	/* missing file, json output */
	snprintf(saved, sizeof(saved), "%s.saved", p);
	assert_int_equal(rename(p, saved), 0);
	run(&r, "verify", "--json", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "\"ok\":false");
	assert_has(r.out, "data file is missing (added in version 1)");
	assert_int_equal(rename(saved, p), 0);

	/* head magic overwritten */
	FILE *f = fopen(p, "r+b");
	assert_non_null(f);
	fwrite("XXXX", 1, 4, f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "no PAR1 magic at the start");
	f = fopen(p, "r+b");
	fwrite("PAR1", 1, 4, f);
	fclose(f);

	/* tail magic overwritten (a torn write) */
	f = fopen(p, "r+b");
	fseek(f, -2, SEEK_END);
	fwrite("\0\0", 1, 2, f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "bad Parquet footer: no PAR1 magic at the end");
	f = fopen(p, "r+b");
	fseek(f, -2, SEEK_END);
	fwrite("R1", 1, 2, f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 0);
}

static void test_stats_mismatch_and_duplicates(void **state)
{
	struct result r;
	struct rn_delta *d;
	char name[128];
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, NULL, "test"), 0);
	add_file(d, 5, 7, "stream-c", 0, name, sizeof(name));
	rn_delta_close(d);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "stats say numRecords 7, the Parquet footer says 5 rows");
	run(&r, "describe", table, NULL);
	assert_int_equal(r.code, 0); /* describe reports, it does not judge */
	assert_has(r.out, "rows        67\n");

	/* a hand-made commit that adds an already live file again: counted once, flagged */
	char p[900], line[512];
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", table, 5);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	struct stat st;
	char fp[900];
	path_of(fp, sizeof(fp), 1);
	assert_int_equal(stat(fp, &st), 0);
	snprintf(line, sizeof(line),
		 "{\"add\":{\"path\":\"%s\",\"size\":%lld,\"dataChange\":true,"
		 "\"stats\":\"{\\\"numRecords\\\":20}\"}}\n",
		 files[1], (long long)st.st_size);
	fputs(line, f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "is added again (live since version 2, no remove)");
	run(&r, "describe", "--json", table, NULL);
	assert_has(r.out, "\"rows\":67,");
	unlink(p);
	/* back to the healthy 0..3 for the next tests (the data file stays as an orphan) */
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", table, 4);
	unlink(p);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 0);
}

static void test_broken_logs(void **state)
{
	struct result r;
	char p[900], q[1000], c[900];
	(void)state;

	/* a gap: version 2 missing while 3 exists */
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", table, 2);
	snprintf(q, sizeof(q), "%s.aside", p);
	assert_int_equal(rename(p, q), 0);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.err, "version 2 is missing from the log (version 3 exists)");
	run(&r, "describe", "--json", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "\"error\":\"unreadable log\"");
	assert_int_equal(rename(q, p), 0);

	/* a malformed line */
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", table, 4);
	FILE *f = fopen(p, "w");
	fputs("{\"commitInfo\":{}}\n{\"add\":{\"path\":\"x\",\"size\":1}\n", f);
	fclose(f);
	run(&r, "history", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.err, "version 4 line 2: not a JSON object");
	unlink(p);

	/* JSON commits cleaned up behind a checkpoint whose file is gone: a broken log */
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", table, 0);
	snprintf(q, sizeof(q), "%s.aside", p);
	snprintf(c, sizeof(c), "%s/_delta_log/_last_checkpoint", table);
	assert_int_equal(rename(p, q), 0);
	f = fopen(c, "w");
	fputs("{\"version\":1,\"size\":4}\n", f);
	fclose(f);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.err, "_last_checkpoint names version 1, but that checkpoint file is missing");
	run(&r, "describe", "--json", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.out, "\"error\":\"unreadable log\"");
	unlink(c);
	/* the same without any checkpoint is a broken log */
	run(&r, "describe", table, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.err, "versions 0..0 are missing and there is no checkpoint");
	assert_int_equal(rename(q, p), 0);
	run(&r, "verify", table, NULL);
	assert_int_equal(r.code, 0);
}

static void test_usage(void **state)
{
	struct result r;
	(void)state;
	run(&r, NULL);
	assert_int_equal(r.code, 2);
	run(&r, "frobnicate", table, NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "unknown subcommand 'frobnicate'");
	run(&r, "vacuum", "--retention", "1", table, NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "--unsafe-retention");
	run(&r, "describe", NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "no table given");
	run(&r, "describe", "--bogus", table, NULL);
	assert_int_equal(r.code, 2);
	run(&r, "history", "-n", "0", table, NULL);
	assert_int_equal(r.code, 2);
	run(&r, "describe", "-d", root, "../etc", NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "not a valid table name");
	run(&r, "describe", root, NULL);
	assert_int_equal(r.code, 1);
	assert_has(r.err, "is not a Delta table");
	run(&r, "--help", NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "usage: runnel-table describe");
}

/* Writes table/name with its mtime age_ms in the past. */
static void aged_file(const char *name, int64_t age_ms)
{
	char p[1024];
	struct timespec ts[2];
	snprintf(p, sizeof(p), "%s/%s", table, name);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	fputs("PAR1 not committed PAR1", f);
	assert_int_equal(fclose(f), 0);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)(age_ms / 1000);
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* vacuum of files no log entry names: kept under the default retention, deleted with an
 * explicit one (a warning below 1 hour), live files never; s3:// roots: a malformed one and
 * missing credentials are usage errors that name the cause. */
static void test_vacuum_unreferenced_and_s3(void **state)
{
	struct result r;
	char p[1024];
	(void)state;
	aged_file("part-orphan-a.parquet", 2 * 3600000);
	run(&r, "vacuum", "--json", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "\"unreferenced\":0");
	snprintf(p, sizeof(p), "%s/part-orphan-a.parquet", table);
	assert_int_equal(access(p, F_OK), 0);
	run(&r, "vacuum", "--json", "--retention", "1", "--unsafe-retention", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.out, "{\"path\":\"part-orphan-a.parquet\",\"size\":23,\"unreferenced\":true}");
	assert_has(r.out, "\"unreferenced\":1");
	assert_null(strstr(r.err, "warning"));
	assert_int_not_equal(access(p, F_OK), 0);
	aged_file("part-orphan-b.parquet", 10 * 60000);
	run(&r, "vacuum", "--retention", "0.05", "--unsafe-retention", table, NULL);
	assert_int_equal(r.code, 0);
	assert_has(r.err, "warning: a retention below 1 hour");
	assert_has(r.out, "deleted part-orphan-b.parquet (23 bytes, no log entry names it)");
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", table, files[i]);
		assert_int_equal(access(p, F_OK), 0);
	}

	run(&r, "describe", "s3://bucket//t", NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "not s3://bucket");
	setenv("AWS_ACCESS_KEY_ID", "", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "", 1);
	setenv("HOME", root, 1);
	run(&r, "verify", "--s3-endpoint", "http://127.0.0.1:1", "s3://bucket/t", NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.err, "no S3 credentials");
	run(&r, "vacuum", "--json", "--s3-endpoint", "http://127.0.0.1:1", "s3://bucket/t", NULL);
	assert_int_equal(r.code, 2);
	assert_has(r.out, "{\"table\":\"s3://bucket/t\",\"ok\":false,\"error\":\"store\",");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy_table),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_stats_mismatch_and_duplicates),
		cmocka_unit_test(test_broken_logs),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_vacuum_unreferenced_and_s3),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
