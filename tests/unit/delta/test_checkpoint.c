/*
 * Log health of the Delta writer (server/delta): checkpoint write/read round trip (txn
 * watermarks, remove tombstones, a restart after the early JSON commits are gone, judged by
 * delta.c itself and by the independent analyzer log.c), log cleanup, compaction selection
 * and commit (rows read back identical, conflicts abort), vacuum selection, and the Parquet
 * reader on damaged checkpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "compact.h"
#include "delta.h"
#include "log.h"
#include "maint.h"
#include "parquet.h"
#include "pqread.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "testutil.h"

static char root[512], table[600];
static int seq;

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}},{\"name\":\"name\",\"type\":\"string\","              \
	"\"nullable\":true,\"metadata\":{}},{\"name\":\"tags\",\"type\":{\"type\":\"array\","      \
	"\"elementType\":\"string\",\"containsNull\":true},\"nullable\":true,\"metadata\":{}}]}"

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(root, sizeof(root), "ckpt"))
		return -1;
	snprintf(table, sizeof(table), "%s/t%d", root, seq++);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

__attribute__((format(printf, 1, 2))) static int exists(const char *fmt, ...)
{
	char p[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return access(p, F_OK) == 0;
}

static void slurp(const char *path, struct rn_buf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;
	assert_non_null(f);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		assert_int_equal(rn_buf_append(b, tmp, n), 0);
	fclose(f);
}

/* Commits one add (fake path) with a txn for app at version v. */
static int64_t commit_fake(struct rn_delta *d, const char *path, const char *app, int64_t v)
{
	struct rn_delta_add a = {
		.path = path, .size = 100, .mtime_ms = 1000 + v, .stats = "{\"numRecords\":1}"};
	struct rn_delta_txn t = {app, v};
	int64_t ver;
	assert_int_equal(rn_delta_commit(d, &a, 1, &t, 1, &ver), 0);
	return ver;
}

static void count_actions(const struct rn_buf *lines, int *add, int *rem, int *txn, int *meta,
			  int *proto)
{
	*add = *rem = *txn = *meta = *proto = 0;
	for (size_t off = 0; off < lines->len;) {
		const char *l = (const char *)lines->data + off;
		const char *nl = memchr(l, '\n', lines->len - off);
		assert_non_null(nl);
		*add += !strncmp(l, "{\"add\":", 7);
		*rem += !strncmp(l, "{\"remove\":", 10);
		*txn += !strncmp(l, "{\"txn\":", 7);
		*meta += !strncmp(l, "{\"metaData\":", 12);
		*proto += !strncmp(l, "{\"protocol\":", 12);
		off = (size_t)(nl - (const char *)lines->data) + 1;
	}
}

static void test_checkpoint_roundtrip(void **state)
{
	struct rn_delta *d, *d2;
	char p[64], path[1024];
	int64_t v, ck;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(p, sizeof(p), "f%02d.parquet", i);
		commit_fake(d, p, i % 2 ? "app-b" : "app-a", 100 + i);
	}
	/* a rewrite: three files removed (tombstones), one added */
	const char *gone[] = {"f00.parquet", "f01.parquet", "f02.parquet"};
	struct rn_delta_add big = {.path = "big.parquet",
				   .size = 300,
				   .mtime_ms = 5000,
				   .stats = "{\"numRecords\":3}"};
	assert_int_equal(rn_delta_commit_rewrite(d, gone, 3, &big, &v), 0);
	assert_int_equal(v, 13);
	assert_int_equal(rn_delta_checkpoint(d, 7 * 86400000LL, &ck), 0);
	assert_int_equal(ck, 13);
	assert_true(exists("%s/_delta_log/%020d.checkpoint.parquet", table, 13));

	/* _last_checkpoint names it with the row count: protocol, metaData, 2 txns, 10 adds,
	 * 3 removes */
	struct rn_buf b = {0}, lines = {0};
	char why[256];
	snprintf(path, sizeof(path), "%s/_delta_log/_last_checkpoint", table);
	slurp(path, &b);
	assert_int_equal(rn_buf_append_u8(&b, 0), 0);
	assert_non_null(strstr((char *)b.data, "\"version\":13,\"size\":17,"));
	rn_buf_free(&b);
	snprintf(path, sizeof(path), "%s/_delta_log/%020d.checkpoint.parquet", table, 13);
	slurp(path, &b);
	assert_int_equal(rn_ckpt_decode(b.data, b.len, &lines, why, sizeof(why)), 0);
	int add, rem, txn, meta, proto;
	count_actions(&lines, &add, &rem, &txn, &meta, &proto);
	assert_int_equal(add, 10);
	assert_int_equal(rem, 3);
	assert_int_equal(txn, 2);
	assert_int_equal(meta, 1);
	assert_int_equal(proto, 1);
	assert_int_equal(rn_buf_append_u8(&lines, 0), 0);
	assert_non_null(strstr((char *)lines.data,
			       "{\"txn\":{\"appId\":\"app-b\",\"version\":111,\"lastUpdated\":"));
	assert_non_null(strstr((char *)lines.data, "{\"remove\":{\"path\":\"f01.parquet\","
						   "\"deletionTimestamp\":"));
	assert_non_null(strstr((char *)lines.data, "\"dataChange\":false,\"extendedFileMetadata\":"
						   "true,\"partitionValues\":{},\"size\":100}}"));
	assert_non_null(strstr((char *)lines.data, "{\"add\":{\"path\":\"big.parquet\","
						   "\"partitionValues\":{},\"size\":300,"
						   "\"modificationTime\":5000,\"dataChange\":false,"
						   "\"stats\":\"{\\\"numRecords\\\":3}\"}}"));
	assert_non_null(strstr((char *)lines.data, "\"partitionColumns\":[],\"configuration\":{}"));
	rn_buf_free(&b);
	rn_buf_free(&lines);

	/* the JSON commits up to the checkpoint go away; a restart starts from it */
	for (int i = 0; i <= 13; i++) {
		snprintf(path, sizeof(path), "%s/_delta_log/%020d.json", table, i);
		assert_int_equal(unlink(path), 0);
	}
	assert_true(rn_delta_exists(table));
	assert_int_equal(rn_delta_open(&d2, table, NULL, "test"), 0);
	assert_int_equal(rn_delta_version(d2), 13);
	assert_int_equal(rn_delta_checkpoint_version(d2), 13);
	assert_int_equal(rn_delta_txn(d2, "app-a"), 110);
	assert_int_equal(rn_delta_txn(d2, "app-b"), 111);
	size_t n, live = 0, tomb = 0;
	const struct rn_ckpt_file *const *files = rn_delta_files(d2, &n);
	for (size_t i = 0; i < n; i++) {
		live += !files[i]->is_remove;
		tomb += files[i]->is_remove;
		if (files[i]->is_remove)
			assert_true(files[i]->deletion_ms > 0);
	}
	assert_int_equal(live, 10);
	assert_int_equal(tomb, 3);
	/* and keeps committing after it; the other handle sees that commit */
	assert_int_equal(commit_fake(d2, "f12.parquet", "app-a", 112), 14);
	assert_int_equal(rn_delta_refresh(d), 0);
	assert_int_equal(rn_delta_txn(d, "app-a"), 112);

	/* the independent analyzer reads it too */
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	assert_int_equal(rn_dlog_version(l), 14);
	rn_dlog_files(l, &n);
	assert_int_equal(n, 11);
	rn_dlog_removes(l, &n);
	assert_int_equal(n, 3);
	assert_int_equal(rn_dlog_txn(l, "app-b"), 111);
	assert_int_equal(rn_dlog_txn(l, "app-a"), 112);
	int64_t cs, cl, csz, cn;
	rn_dlog_checkpoint_info(l, &cs, &cl, &csz, &cn);
	assert_int_equal(cs, 13);
	assert_int_equal(cl, 13);
	assert_int_equal(csz, 17);
	size_t nw, tw;
	rn_dlog_warnings(l, &nw, &tw);
	assert_int_equal(tw, 0);
	rn_dlog_destroy(l);
	rn_delta_close(d);
	rn_delta_close(d2);
}

static void test_cleanup(void **state)
{
	struct rn_delta *d;
	char p[64];
	size_t n;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	/* no checkpoint: nothing may go */
	assert_int_equal(rn_delta_cleanup(d, 0, &n), 0);
	assert_int_equal(n, 0);
	for (int i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "g%d.parquet", i);
		commit_fake(d, p, "a", i);
		if (i == 2)
			assert_int_equal(rn_delta_checkpoint(d, 0, NULL), 0); /* version 3 */
	}
	assert_int_equal(rn_delta_checkpoint(d, 0, NULL), 0); /* version 6 */
	/* within the retention: kept */
	assert_int_equal(rn_delta_cleanup(d, 3600000, &n), 0);
	assert_int_equal(n, 0);
	/* retention 0: versions 0..5 and checkpoint 3 go; checkpoint 6 and 6.json stay */
	assert_int_equal(rn_delta_cleanup(d, 0, &n), 0);
	assert_int_equal(n, 7);
	assert_false(exists("%s/_delta_log/%020d.json", table, 5));
	assert_false(exists("%s/_delta_log/%020d.checkpoint.parquet", table, 3));
	assert_true(exists("%s/_delta_log/%020d.json", table, 6));
	assert_true(exists("%s/_delta_log/%020d.checkpoint.parquet", table, 6));
	rn_delta_close(d);
	assert_int_equal(rn_delta_open(&d, table, NULL, "test"), 0);
	assert_int_equal(rn_delta_version(d), 6);
	assert_int_equal(rn_delta_txn(d, "a"), 5);
	rn_delta_close(d);
}

/* Writes a real data file of `rows` rows (ids from first) and commits it with a txn. */
static const struct rn_pq_col elem[1] = {
	{.name = "element", .type = RN_PQ_STRING, .optional = 1},
};
static const struct rn_pq_col cols[3] = {
	{.name = "id", .type = RN_PQ_INT64},
	{.name = "name", .type = RN_PQ_STRING, .optional = 1},
	{.name = "tags", .type = RN_PQ_LIST, .optional = 1, .children = elem, .n_children = 1},
};

/* rows first.. as one file in a commit with txn (app, v); rg_rows rows per row group
 * (0 = one row group). */
static void commit_rg(struct rn_delta *d, int first, int rows, const char *app, int64_t v,
		      size_t rg_rows, int pad)
{
	struct rn_pq_writer *w;
	struct rn_buf out = {0};
	char name[256], s[600];
	int64_t mtime, ver;
	struct rn_pq_options po = {.row_group_rows = rg_rows};
	assert_int_equal(rn_pq_writer_create(&w, cols, 3, &po), 0);
	for (int i = first; i < first + rows; i++) {
		assert_int_equal(rn_pq_put_i64(w, 0, i), 0);
		if (i % 3) {
			snprintf(s, sizeof(s), "n%d%*s", i, pad, ""); /* pad: bigger rows */
			assert_int_equal(rn_pq_put_bytes(w, 1, s, strlen(s)), 0);
		}
		if (i % 4 == 0) {
			assert_int_equal(rn_pq_begin(w, 2), 0);
			for (int k = 0; k < i % 3; k++)
				assert_int_equal(rn_pq_put_bytes(w, 0, "t", 1), 0);
			assert_int_equal(rn_pq_put_null(w, 0), 0);
			assert_int_equal(rn_pq_end(w), 0);
		}
		assert_int_equal(rn_pq_row_end(w), 0);
	}
	assert_int_equal(rn_pq_finish(w, &out), 0);
	rn_pq_writer_destroy(w);
	assert_int_equal(rn_delta_write_file(d, out.data, out.len, name, sizeof(name), &mtime), 0);
	char stats[64];
	snprintf(stats, sizeof(stats), "{\"numRecords\":%d}", rows);
	struct rn_delta_add a = {
		.path = name, .size = (int64_t)out.len, .mtime_ms = mtime, .stats = stats};
	struct rn_delta_txn t = {app, v};
	assert_int_equal(rn_delta_commit(d, &a, 1, &t, 1, &ver), 0);
	rn_buf_free(&out);
}

static void commit_real(struct rn_delta *d, int first, int rows, const char *app, int64_t v)
{
	commit_rg(d, first, rows, app, v, 0, 0);
}

/* All rows of the live files as sorted JSON lines. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *table_rows(struct rn_delta *d, size_t *nrows)
{
	size_t n, cnt = 0;
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &n);
	struct rn_buf all = {0};
	for (size_t i = 0; i < n; i++) {
		char path[1200], why[200];
		struct rn_buf b = {0};
		struct rn_pqr *r;
		if (files[i]->is_remove)
			continue;
		snprintf(path, sizeof(path), "%s/%s", table, files[i]->path);
		slurp(path, &b);
		assert_int_equal(rn_pqr_open(&r, b.data, b.len, 0), 0);
		assert_int_equal(rn_pqr_to_json_lines(r, &all), 0);
		rn_pqr_close(r);
		rn_buf_free(&b);
		(void)why;
	}
	char **lines = calloc(all.len + 1, sizeof(char *));
	for (size_t off = 0; off < all.len;) {
		char *l = (char *)all.data + off, *nl = memchr(l, '\n', all.len - off);
		*nl = 0;
		lines[cnt++] = l;
		off = (size_t)(nl - (char *)all.data) + 1;
	}
	qsort(lines, cnt, sizeof(char *), cmp_str);
	struct rn_buf sorted = {0};
	for (size_t i = 0; i < cnt; i++) {
		rn_buf_append_str(&sorted, lines[i]);
		rn_buf_append_u8(&sorted, '\n');
	}
	rn_buf_append_u8(&sorted, 0);
	free(lines);
	rn_buf_free(&all);
	*nrows = cnt;
	return (char *)sorted.data;
}

/* rn_compact_pick's count (it fails only when its scratch array cannot be allocated). */
static size_t pick(const struct rn_ckpt_file *const *files, size_t n,
		   const struct rn_compact_options *o, size_t *idx)
{
	size_t k;
	assert_int_equal(rn_compact_pick(files, n, o, idx, &k), 0);
	return k;
}

static void test_compact_pick(void **state)
{
	struct rn_ckpt_file f[6] = {{0}};
	const struct rn_ckpt_file *p[6];
	size_t idx[6];
	(void)state;
	int64_t sizes[6] = {50, 10, 500, 30, 0, 20};
	for (int i = 0; i < 6; i++) {
		f[i].path = "x";
		f[i].size = sizes[i];
		f[i].mtime_ms = 100 - i;
		p[i] = &f[i];
	}
	f[3].is_remove = 1; /* tombstones never qualify */
	struct rn_compact_options o = {.target_bytes = 100, .min_files = 2};
	/* small live files: 0 (50), 1 (10), 5 (20); oldest first: 5, 1, 0; 20+10+50 <= 100,
	 * but 50 is more than 20+10: it waits until the small ones add up to it; then 20 is
	 * more than 10: two files are left only when the smaller is as large */
	assert_int_equal(pick(p, 6, &o, idx), 0);
	f[1].size = 30; /* now 20+30 >= 50: all three, oldest first */
	assert_int_equal(pick(p, 6, &o, idx), 3);
	assert_int_equal(idx[0], 5);
	assert_int_equal(idx[1], 1);
	assert_int_equal(idx[2], 0);
	f[5].size = 30;
	o.target_bytes = 60; /* 50 no longer fits after 30+30; the 500-byte file is never small */
	assert_int_equal(pick(p, 6, &o, idx), 2);
	assert_int_equal(idx[0], 5);
	assert_int_equal(idx[1], 1);
	o.min_files = 4;
	assert_int_equal(pick(p, 6, &o, idx), 0);
	o.min_files = 2;
	o.max_files = 1;
	assert_int_equal(pick(p, 6, &o, idx), 0);
	/* its scratch array cannot be allocated: an error, never "nothing to do" */
	size_t k = 1;
	rn_mem_fail_after(1);
	assert_int_equal(rn_compact_pick(p, 6, &o, idx, &k), RN_ENOMEM);
	assert_int_equal(rn_mem_fail_disarm(), 1);
	assert_int_equal(k, 0);
}

/* One partition per pick: the partition of the oldest small file that has enough of them;
 * equal partitions compare key by key in any order, and null is its own value. */
static void test_compact_pick_partitions(void **state)
{
	struct rn_ckpt_kv a[] = {{"day", "2026-12-01"}, {"site", "x"}};
	struct rn_ckpt_kv a2[] = {{"site", "x"}, {"day", "2026-12-01"}}; /* same, other order */
	struct rn_ckpt_kv b[] = {{"day", "2026-12-01"}, {"site", "y"}};
	struct rn_ckpt_kv n[] = {{"day", "2026-12-01"}, {"site", NULL}};
	struct rn_ckpt_kv *pv[7] = {b, a, n, a2, n, a, b};
	struct rn_ckpt_file f[7] = {{0}};
	const struct rn_ckpt_file *p[7];
	size_t idx[7];
	(void)state;
	for (int i = 0; i < 7; i++) {
		f[i].path = "x";
		f[i].size = 10;
		f[i].mtime_ms = 100 + i; /* file 0 is the oldest */
		f[i].pv = pv[i];
		f[i].npv = 2;
		p[i] = &f[i];
	}
	struct rn_compact_options o = {.target_bytes = 1000, .min_files = 3};
	/* site y (files 0, 6) is oldest but has 2; site x has 1, 3, 5 */
	assert_int_equal(pick(p, 7, &o, idx), 3);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 3);
	assert_int_equal(idx[2], 5);
	o.min_files = 2; /* now site y, the oldest partition, qualifies first */
	assert_int_equal(pick(p, 7, &o, idx), 2);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 6);
	f[0].is_remove = f[6].is_remove = 1;
	f[1].is_remove = 1; /* site x keeps 3 and 5; null (2, 4) is older */
	assert_int_equal(pick(p, 7, &o, idx), 2);
	assert_int_equal(idx[0], 2);
	assert_int_equal(idx[1], 4);
	f[4].npv = 1; /* a file with fewer partition columns is another partition */
	assert_int_equal(pick(p, 7, &o, idx), 2);
	assert_int_equal(idx[0], 3);
	assert_int_equal(idx[1], 5);
	o.min_files = 3;
	assert_int_equal(pick(p, 7, &o, idx), 0);
}

static void test_compact_step(void **state)
{
	struct rn_delta *d;
	size_t before_rows, after_rows, n;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	for (int i = 0; i < 8; i++)
		commit_real(d, i * 10, 10, i % 2 ? "s1" : "s2", i);
	char *before = table_rows(d, &before_rows);
	assert_int_equal(before_rows, 80);
	struct rn_compact_options o = {.target_bytes = 1 << 20, .min_files = 5};
	struct rn_compact_result res;
	assert_int_equal(rn_compact_step(d, &o, &res), 0);
	assert_int_equal(res.nfiles, 8);
	assert_int_equal(res.rows, 80);
	assert_int_equal(res.version, 9);
	char *after = table_rows(d, &after_rows);
	assert_int_equal(after_rows, 80);
	assert_string_equal(before, after);
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &n);
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		if (!files[i]->is_remove) {
			live++;
			assert_int_equal(files[i]->data_change, 0);
			assert_non_null(strstr(files[i]->stats, "\"numRecords\":80,\"minValues\":"
								"{\"id\":0,\"name\":\"n1\"},"
								"\"maxValues\":{\"id\":79,"));
		} else {
			assert_int_equal(files[i]->data_change, 0);
		}
	}
	assert_int_equal(live, 1);
	assert_int_equal(rn_delta_txn(d, "s1"), 7);
	assert_int_equal(rn_delta_txn(d, "s2"), 6);
	/* nothing left to do */
	assert_int_equal(rn_compact_step(d, &o, &res), RN_EAGAIN);

	/* the analyzer agrees; vacuum: dry run lists the 8 inputs, deletes nothing; a long
	 * retention deletes nothing; retention 0 deletes exactly the 8, never the live one */
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_load(l, table), 0);
	int64_t bytes, rows;
	size_t nos;
	rn_dlog_totals(l, &bytes, &rows, &nos);
	assert_int_equal(rows, 80);
	rn_dlog_destroy(l);
	size_t nv;
	int64_t vb;
	assert_int_equal(rn_delta_vacuum(d, 0, 1, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 8);
	assert_int_equal(rn_delta_vacuum(d, 3600000, 0, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 0);
	assert_int_equal(rn_delta_vacuum(d, 0, 0, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 8);
	free(after);
	after = table_rows(d, &after_rows); /* the live file is still readable */
	assert_string_equal(before, after);
	/* a checkpoint now drops the expired tombstones whose files are gone */
	int64_t ck;
	assert_int_equal(rn_delta_checkpoint(d, 0, &ck), 0);
	struct rn_delta *d2;
	assert_int_equal(rn_delta_open(&d2, table, NULL, "t"), 0);
	rn_delta_files(d2, &n);
	assert_int_equal(n, 1); /* opened from the checkpoint: only the live file is left */
	rn_delta_close(d2);
	free(before);
	free(after);
	rn_delta_close(d);
}

/* Sets the mtime of table/rel age_ms in the past. */
static void age(const char *rel, int64_t age_ms)
{
	char p[1200];
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	int64_t ms = (int64_t)ts[0].tv_sec * 1000 + ts[0].tv_nsec / 1000000 - age_ms;
	ts[0].tv_sec = (time_t)(ms / 1000);
	ts[0].tv_nsec = (long)(ms % 1000) * 1000000;
	ts[1] = ts[0];
	snprintf(p, sizeof(p), "%s/%s", table, rel);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* Writes table/rel (making its directory) with `len` bytes, its mtime age_ms in the past. */
static void put_aged(const char *rel, size_t len, int64_t age_ms)
{
	char p[1200], dir[1200];
	snprintf(p, sizeof(p), "%s/%s", table, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	for (char *s = dir + strlen(table) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(dir, 0755);
		*s = '/';
	}
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < len; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
	age(rel, age_ms);
}

struct seen {
	char keys[16][256];
	size_t n;
};

static void seen_cb(void *ctx, const char *path, int64_t size)
{
	struct seen *s = ctx;
	(void)size;
	if (s->n < 16)
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", path);
}

#define HOUR ((int64_t)3600000)

/* Vacuum of orphans: a data file no action names, older than the retention, goes (also in a
 * partition directory); a younger one stays; a referenced one (live or tombstone), however
 * old, never goes; nor hidden paths (_ or . components, the log), nor a nested table's
 * files. A dry run deletes nothing. The server's maintenance never deletes an orphan younger
 * than RN_DELTA_ORPHAN_MIN_AGE_MS, even with vacuum_retention 0. */
static void test_vacuum_orphans(void **state)
{
	struct rn_delta *d;
	size_t n, nv;
	int64_t vb;
	struct seen s = {0};
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	commit_real(d, 0, 10, "s1", 0);
	commit_real(d, 10, 10, "s1", 1);
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &n);
	assert_int_equal(n, 2);
	char live[256], gone[256];
	snprintf(live, sizeof(live), "%s", files[0]->path);
	snprintf(gone, sizeof(gone), "%s", files[1]->path);
	/* a rewrite makes `gone` a tombstone (its file stays until the tombstone expires) */
	const char *rm[] = {gone};
	int64_t v;
	struct rn_delta_add again = {.path = "part-again.parquet", .size = 4, .mtime_ms = 1};
	put_aged("part-again.parquet", 4, 3 * HOUR);
	assert_int_equal(rn_delta_commit_rewrite(d, rm, 1, &again, &v), 0);
	age(live, 3 * HOUR);
	age(gone, 3 * HOUR);

	put_aged("part-old-orphan.parquet", 100, 2 * HOUR);
	put_aged("day=2026-01-02/part-old.parquet", 50, 2 * HOUR);
	put_aged("part-young-orphan.parquet", 7, 10 * 60000);
	put_aged("_tmp/part-hidden.parquet", 9, 2 * HOUR);
	put_aged("day=1/_committed_x", 9, 2 * HOUR);
	put_aged("nested/_delta_log/00000000000000000000.json", 9, 2 * HOUR);
	put_aged("nested/part-of-nested.parquet", 9, 2 * HOUR);
	age("_delta_log/00000000000000000000.json", 2 * HOUR);

	/* dry run: reports both old orphans, deletes nothing */
	assert_int_equal(rn_delta_vacuum_orphans(d, HOUR, 1, seen_cb, &s, &nv, &vb), 0);
	assert_int_equal(nv, 2);
	assert_int_equal(vb, 150);
	assert_string_equal(s.keys[0], "day=2026-01-02/part-old.parquet");
	assert_string_equal(s.keys[1], "part-old-orphan.parquet");
	assert_true(exists("%s/part-old-orphan.parquet", table));

	/* the server's maintenance with vacuum_retention 0: the floor keeps the 10-minute-old
	 * orphan, the 2-hour-old ones go (the tombstoned `gone` goes as a tombstone) */
	struct rn_delta_maint cfg = rn_maint_defaults;
	cfg.vacuum_retention_ms = 0;
	struct rn_maint_result res;
	rn_maint_run(d, &cfg, RN_MAINT_VACUUM, INT64_MAX, NULL, &res);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.vacuumed, 3);
	assert_false(exists("%s/part-old-orphan.parquet", table));
	assert_false(exists("%s/day=2026-01-02/part-old.parquet", table));
	assert_false(exists("%s/%s", table, gone));
	assert_true(exists("%s/part-young-orphan.parquet", table));
	assert_true(exists("%s/%s", table, live));
	assert_true(exists("%s/part-again.parquet", table));
	assert_true(exists("%s/_tmp/part-hidden.parquet", table));
	assert_true(exists("%s/day=1/_committed_x", table));
	assert_true(exists("%s/nested/part-of-nested.parquet", table));
	assert_true(exists("%s/_delta_log/00000000000000000000.json", table));

	/* an explicit shorter retention (the CLI's --retention) reaches the young orphan, and
	 * still never a referenced file */
	s.n = 0;
	assert_int_equal(rn_delta_vacuum_orphans(d, 60000, 0, seen_cb, &s, &nv, &vb), 0);
	assert_int_equal(nv, 1);
	assert_string_equal(s.keys[0], "part-young-orphan.parquet");
	assert_false(exists("%s/part-young-orphan.parquet", table));
	assert_int_equal(rn_delta_vacuum_orphans(d, 0, 0, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 0);
	assert_true(exists("%s/%s", table, live));
	assert_true(exists("%s/part-again.parquet", table));

	/* an orphan written after the listing's cutoff (a flush in flight) is not touched */
	put_aged("part-in-flight.parquet", 3, -60000);
	assert_int_equal(rn_delta_vacuum_orphans(d, 0, 0, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 0);
	assert_true(exists("%s/part-in-flight.parquet", table));
	rn_delta_close(d);
}

/* A failed delete is an error (the file stays and goes next time); every allocation of the
 * call failing in turn makes it fail cleanly, with no leak and nothing deleted wrongly. */
static void test_vacuum_orphans_faults(void **state)
{
	struct rn_delta *d;
	size_t nv;
	int64_t vb;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	commit_real(d, 0, 10, "s1", 0);
	put_aged("part-orphan.parquet", 10, 2 * HOUR);
	rn_fs_fail_after(1, EIO, RN_FS_UNLINK);
	assert_int_equal(rn_delta_vacuum_orphans(d, HOUR, 0, NULL, NULL, &nv, &vb), RN_EIO);
	rn_fs_fail_after(0, 0, 0);
	assert_true(exists("%s/part-orphan.parquet", table));
	assert_int_equal(rn_delta_vacuum_orphans(d, HOUR, 0, NULL, NULL, &nv, &vb), 0);
	assert_int_equal(nv, 1);
	assert_false(exists("%s/part-orphan.parquet", table));

	int done = 0;
	for (long i = 1; i < 1000 && !done; i++) {
		put_aged("part-orphan.parquet", 10, 2 * HOUR);
		long live = rn_mem_live();
		rn_mem_fail_after(i);
		int rc = rn_delta_vacuum_orphans(d, HOUR, 0, NULL, NULL, &nv, &vb);
		rn_mem_fail_after(0);
		assert_int_equal(rn_mem_live(), live);
		if (rc == 0) {
			done = 1;
			assert_int_equal(nv, 1);
		} else {
			assert_int_equal(rc, RN_ENOMEM);
			assert_true(exists("%s/part-orphan.parquet", table));
		}
		/* the referenced file is never touched */
		const struct rn_ckpt_file *const *files = rn_delta_files(d, &nv);
		for (size_t k = 0; k < nv; k++)
			assert_true(exists("%s/%s", table, files[k]->path));
	}
	assert_true(done);
	assert_false(exists("%s/part-orphan.parquet", table));
	rn_delta_close(d);
}

/* The smallest reader memory cap (in 256-byte steps) with which the live file `path` of
 * the table reads whole, and its rn_pqr_group_bytes. */
static size_t min_read_mem(const char *path, size_t *group)
{
	struct rn_buf b = {0};
	size_t lo, hi = (size_t)64 << 20;
	slurp(path, &b);
	struct rn_pqr *r;
	assert_int_equal(rn_pqr_open(&r, b.data, b.len, 0), 0);
	*group = rn_pqr_group_bytes(r);
	rn_pqr_close(r);
	lo = 0; /* fails; hi reads: bisect on "opens and reads" to 256 bytes */
	while (hi - lo > 256) {
		size_t mid = (lo + (hi - lo) / 2) / 256 * 256;
		int ok = 0;
		struct rn_buf j = {0};
		if (mid <= lo)
			mid = lo + 256;
		if (rn_pqr_open(&r, b.data, b.len, mid) == 0 && rn_pqr_to_json_lines(r, &j) == 0)
			ok = 1;
		rn_pqr_close(r);
		rn_buf_free(&j);
		if (ok)
			hi = mid;
		else
			lo = mid;
	}
	rn_buf_free(&b);
	return hi;
}

/* The live files' paths (on disk, under the table) in log order. */
static size_t live_paths(struct rn_delta *d, char paths[][1200], size_t cap)
{
	size_t n, k = 0;
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &n);
	for (size_t i = 0; i < n && k < cap; i++)
		if (!files[i]->is_remove)
			snprintf(paths[k++], 1200, "%s/%s", table, files[i]->path);
	return k;
}

/* Reading holds one row group at a time: the same 400 rows in 40 row groups read with a
 * fraction of the memory one row group of 400 needs; and twice the footer's estimate covers
 * what a read takes (dictionaries and index arrays are not in the estimate). */
static void test_pqread_by_group(void **state)
{
	struct rn_delta *d;
	char paths[2][1200];
	size_t g_one, g_many;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	commit_rg(d, 0, 400, "s", 0, 0, 500);
	commit_rg(d, 0, 400, "s", 1, 10, 500);
	assert_int_equal(live_paths(d, paths, 2), 2);
	size_t one = min_read_mem(paths[0], &g_one), many = min_read_mem(paths[1], &g_many);
	print_message("read memory: 1 group %zu (est %zu), 40 groups %zu (est %zu)\n", one, g_one,
		      many, g_many);
	assert_true(many * 4 < one);
	assert_true(g_many * 20 < g_one);
	assert_true(one <= 2 * g_one); /* the estimate is within 2x (compaction's reader cap) */
	rn_delta_close(d);
}

/* A step's memory is bounded by group_bytes: an input with a larger row group is left as
 * it is, the output's row groups stay near the bound, and no row is lost or doubled. */
static void test_compact_bounded(void **state)
{
	struct rn_delta *d;
	char paths[16][1200];
	size_t g_small, g_big, rows_before, rows_after;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	commit_rg(d, 1000, 300, "big", 0, 0, 500); /* one row group of 300 rows */
	for (int i = 0; i < 8; i++)
		commit_rg(d, i * 20, 20, "s", i, 0, 500);
	assert_int_equal(live_paths(d, paths, 16), 9);
	min_read_mem(paths[0], &g_big);
	min_read_mem(paths[1], &g_small);
	assert_true(g_small * 4 < g_big);
	char *before = table_rows(d, &rows_before);
	assert_int_equal(rows_before, 460);
	/* room for a small input's row group, not for the big one's: 160 rows out, in row
	 * groups of at most group_bytes */
	struct rn_compact_options o = {
		.target_bytes = 1 << 20, .min_files = 5, .group_bytes = g_small * 3};
	struct rn_compact_result res;
	assert_int_equal(rn_compact_step(d, &o, &res), 0);
	assert_int_equal(res.nfiles, 8);
	assert_int_equal(res.rows, 160);
	char *after = table_rows(d, &rows_after);
	assert_int_equal(rows_after, 460);
	assert_string_equal(before, after);
	assert_int_equal(live_paths(d, paths, 16), 2);
	size_t g_out, g_kept;
	min_read_mem(paths[0], &g_kept);
	assert_int_equal(g_kept, g_big); /* the big file is still there, untouched */
	min_read_mem(paths[1], &g_out);
	print_message("group bytes: small input %zu, big %zu, output %zu, bound %zu\n", g_small,
		      g_big, g_out, o.group_bytes);
	assert_true(g_out <= o.group_bytes);
	assert_true(g_out * 2 < 160 / 20 * g_small); /* cut: not one row group of 160 rows */
	free(before);
	free(after);
	rn_delta_close(d);
}

static void test_compact_conflict(void **state)
{
	struct rn_delta *a, *b;
	int64_t v;
	(void)state;
	assert_int_equal(rn_delta_open(&a, table, SCHEMA, "a"), 0);
	for (int i = 0; i < 4; i++) {
		char p[32];
		snprintf(p, sizeof(p), "c%d.parquet", i);
		commit_fake(a, p, "x", i);
	}
	assert_int_equal(rn_delta_open(&b, table, NULL, "b"), 0);
	const char *in_b[] = {"c0.parquet", "c1.parquet"};
	const char *in_a[] = {"c1.parquet", "c2.parquet"};
	struct rn_delta_add ab = {.path = "b.parquet", .size = 10, .mtime_ms = 1},
			    aa = {.path = "a.parquet", .size = 10, .mtime_ms = 1};
	assert_int_equal(rn_delta_commit_rewrite(b, in_b, 2, &ab, &v), 0);
	/* a has not seen b's commit: it loses the race, reads it, and gives up */
	assert_int_equal(rn_delta_commit_rewrite(a, in_a, 2, &aa, &v), RN_ECONFLICT);
	/* a disjoint rewrite after the same lost race goes through at the next version */
	const char *in_a2[] = {"c2.parquet", "c3.parquet"};
	assert_int_equal(rn_delta_commit_rewrite(a, in_a2, 2, &aa, &v), 0);
	assert_int_equal(v, 6);
	/* and an append racing a rewrite is not disturbed */
	assert_int_equal(commit_fake(b, "c9.parquet", "x", 9), 7);
	assert_int_equal(rn_delta_txn(b, "x"), 9);
	rn_delta_close(a);
	rn_delta_close(b);
}

/* Entries in the table's directory besides _delta_log: data files, and anything left over. */
static long table_entries(void)
{
	return rn_test_entries(table) - 1;
}

/* An input that cannot be mapped (a directory where the data file was: mmap fails) aborts
 * the step: nothing committed, no new file left, the round reports a failure; once the
 * file is back, the next round (due after the interval) compacts all of them. */
static void test_compact_unmappable(void **state)
{
	struct rn_delta *d;
	char paths[16][1200], aside[1300];
	size_t rows_before, rows_after;
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	for (int i = 0; i < 8; i++)
		commit_real(d, i * 10, 10, "s", i);
	char *before = table_rows(d, &rows_before);
	int64_t v0 = rn_delta_version(d);
	assert_int_equal(live_paths(d, paths, 16), 8);
	snprintf(aside, sizeof(aside), "%s.aside", paths[2]);
	assert_int_equal(rename(paths[2], aside), 0);
	assert_int_equal(mkdir(paths[2], 0755), 0);
	long entries = table_entries();

	struct rn_compact_options o = {.target_bytes = 1 << 20, .min_files = 5};
	struct rn_compact_result res;
	assert_int_equal(rn_compact_step(d, &o, &res), RN_EIO);
	assert_non_null(strstr(res.why, "cannot read"));
	assert_int_equal(res.version, -1);
	assert_int_equal(rn_delta_version(d), v0);
	assert_false(exists("%s/_delta_log/%020lld.json", table, (long long)v0 + 1));
	assert_int_equal(table_entries(), entries); /* the new file never written */

	/* the same through a maintenance round: failed, and due again after its interval */
	struct rn_delta_maint cfg = rn_maint_defaults;
	cfg.compact_min_files = 5;
	cfg.compact_interval_ms = 1000;
	struct rn_maint_clock c = {.last_compact_ms = 0};
	struct rn_maint_result mr;
	assert_true(rn_maint_due(&cfg, &c, v0, -1, 1000) & RN_MAINT_COMPACT);
	rn_maint_started(&c, RN_MAINT_COMPACT, v0, 1000);
	rn_maint_run(d, &cfg, RN_MAINT_COMPACT, INT64_MAX, NULL, &mr);
	assert_int_equal(mr.failed, 1);
	assert_int_equal(mr.compactions, 0);
	assert_int_equal(rn_delta_version(d), v0);
	assert_int_equal(table_entries(), entries);
	assert_false(rn_maint_due(&cfg, &c, v0, -1, 1999) & RN_MAINT_COMPACT);
	assert_true(rn_maint_due(&cfg, &c, v0, -1, 2000) & RN_MAINT_COMPACT);

	assert_int_equal(rmdir(paths[2]), 0);
	assert_int_equal(rename(aside, paths[2]), 0);
	rn_maint_started(&c, RN_MAINT_COMPACT, v0, 2000);
	rn_maint_run(d, &cfg, RN_MAINT_COMPACT, INT64_MAX, NULL, &mr);
	assert_int_equal(mr.failed, 0);
	assert_int_equal(mr.compactions, 1);
	assert_int_equal(mr.compacted, 8);
	char *after = table_rows(d, &rows_after);
	assert_int_equal(rows_after, 80);
	assert_string_equal(before, after);
	free(before);
	free(after);
	rn_delta_close(d);
}

/* The table's rows as a reader opening it now sees them (a handle of our own: the sweep's
 * may hold a snapshot that a failed allocation left stale until its next refresh). */
static char *rows_on_disk(size_t *nrows)
{
	struct rn_delta *r;
	assert_int_equal(rn_delta_open(&r, table, NULL, "check"), 0);
	char *rows = table_rows(r, nrows);
	rn_delta_close(r);
	return rows;
}

/* A fresh table of 8 small files for the sweep below (the one before removed). */
static struct rn_delta *sweep_table(void)
{
	struct rn_delta *d;
	assert_int_equal(rn_test_rmtree(table), 0);
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	for (int i = 0; i < 8; i++)
		commit_rg(d, i * 20, 20, "s", i, 0, 500);
	return d;
}

/* Allocation-failure sweep of a compaction step whose output is cut into several row groups
 * (so rn_pq_end_row_group's allocations are among those failed): a failed step returns
 * RN_ENOMEM with nothing committed and no new file left behind; a step that absorbed its
 * failure (the writer's optional headroom) compacted everything, the rows the same (the sweep
 * goes on on a fresh table); the step after the last (nothing failed) compacts all inputs. */
static void test_compact_alloc_sweep(void **state)
{
	struct rn_delta *d = sweep_table();
	char paths[16][1200];
	size_t g_small, g_out, rows_before, rows;
	long n, failed = 0, absorbed = 0;
	int rc = -1, hit = 1;
	(void)state;
	assert_int_equal(live_paths(d, paths, 16), 8);
	min_read_mem(paths[0], &g_small);
	char *before = table_rows(d, &rows_before), *after;
	int64_t v0 = rn_delta_version(d);
	long entries = table_entries();
	struct rn_compact_options o = {
		.target_bytes = 1 << 20, .min_files = 5, .group_bytes = g_small * 3};
	struct rn_compact_result res;
	for (n = 1; n < 100000 && hit; n++) {
		rn_mem_fail_after(n);
		rc = rn_compact_step(d, &o, &res);
		hit = rn_mem_fail_disarm();
		if (!hit)
			break;
		if (rc == 0) {
			absorbed++;
			assert_int_equal(res.nfiles, 8);
			after = rows_on_disk(&rows);
			assert_string_equal(before, after);
			free(after);
			rn_delta_close(d);
			d = sweep_table();
			continue;
		}
		if (rc != RN_ENOMEM)
			fail_msg("allocation %ld failed: step returned %d (%s)", n, rc, res.why);
		failed++;
		assert_int_equal(rn_delta_version(d), v0);
		assert_false(exists("%s/_delta_log/%020lld.json", table, (long long)v0 + 1));
		if (table_entries() != entries)
			fail_msg("allocation %ld failed: a file was left in the table", n);
	}
	print_message("compaction sweep: %ld allocations failed the step, %ld absorbed\n", failed,
		      absorbed);
	assert_false(hit);
	assert_int_equal(rc, 0);
	assert_true(failed > 50);
	assert_int_equal(res.nfiles, 8);
	assert_int_equal(res.version, v0 + 1);
	after = rows_on_disk(&rows);
	assert_int_equal(rows, 160);
	assert_string_equal(before, after);
	/* the output has several row groups: the sweep went through the cuts */
	assert_int_equal(live_paths(d, paths, 16), 1);
	min_read_mem(paths[0], &g_out);
	assert_true(g_out * 2 < 8 * g_small);
	free(before);
	free(after);
	rn_delta_close(d);
}

/* Damaged checkpoints are errors, never crashes or wrong answers. */
static void test_pqread_damage(void **state)
{
	struct rn_delta *d;
	char path[1024], why[256];
	struct rn_buf b = {0};
	(void)state;
	assert_int_equal(rn_delta_open(&d, table, SCHEMA, "test"), 0);
	commit_fake(d, "z.parquet", "a", 1);
	assert_int_equal(rn_delta_checkpoint(d, 0, NULL), 0);
	rn_delta_close(d);
	snprintf(path, sizeof(path), "%s/_delta_log/%020d.checkpoint.parquet", table, 1);
	slurp(path, &b);
	int ok = 0;
	for (size_t cut = 0; cut < b.len; cut += 7) {
		struct rn_buf lines = {0};
		if (rn_ckpt_decode(b.data, cut, &lines, why, sizeof(why)) == 0)
			ok++;
		rn_buf_free(&lines);
	}
	assert_int_equal(ok, 0);
	srand(7);
	for (int i = 0; i < 2000; i++) {
		struct rn_buf lines = {0}, m = {0};
		rn_buf_append(&m, b.data, b.len);
		for (int k = 0; k < 3; k++)
			m.data[(size_t)rand() % m.len] ^= (uint8_t)(1u << (rand() % 8));
		(void)rn_ckpt_decode(m.data, m.len, &lines, why, sizeof(why));
		rn_buf_free(&lines);
		rn_buf_free(&m);
	}
	/* a damaged checkpoint with the JSON still there: open falls back to the JSON */
	b.data[b.len / 2] ^= 0xff;
	FILE *f = fopen(path, "wb");
	fwrite(b.data, 1, b.len, f);
	fclose(f);
	assert_int_equal(rn_delta_open(&d, table, NULL, "test"), 0);
	assert_int_equal(rn_delta_txn(d, "a"), 1);
	rn_delta_close(d);
	rn_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkpoint_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
		cmocka_unit_test(test_compact_pick),
		cmocka_unit_test(test_compact_pick_partitions),
		cmocka_unit_test_setup_teardown(test_compact_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pqread_by_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_unmappable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_alloc_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pqread_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vacuum_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vacuum_orphans_faults, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
