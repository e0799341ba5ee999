/*
 * Unit tests for the Delta log analyzer's pure core (server/delta/log.c): a good log replays
 * into the right snapshot (schema, partition columns, live files, rows, txns, history);
 * removes make tombstones and re-adds revive them; duplicate adds and txn anomalies are
 * warnings; malformed lines are errors that name the version and line; the Parquet footer
 * reader and the URI decoder on good and bad input; failed allocations fail cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "rn_err.h"
#include "rn_mem.h"

#define V0                                                                                         \
	"{\"commitInfo\":{\"timestamp\":1700000000000,\"operation\":\"CREATE TABLE\","             \
	"\"engineInfo\":\"test/1\"}}\n"                                                            \
	"{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n"                         \
	"{\"metaData\":{\"id\":\"t-1\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"      \
	"\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":["                         \
	"{\\\"name\\\":\\\"id\\\",\\\"type\\\":\\\"long\\\",\\\"nullable\\\":false,"               \
	"\\\"metadata\\\":{}},"                                                                    \
	"{\\\"name\\\":\\\"tags\\\",\\\"type\\\":{\\\"type\\\":\\\"array\\\",\\\"elementType\\\":" \
	"\\\"string\\\","                                                                          \
	"\\\"containsNull\\\":true},\\\"nullable\\\":true,\\\"metadata\\\":{}},"                   \
	"{\\\"name\\\":\\\"day\\\",\\\"type\\\":\\\"date\\\",\\\"nullable\\\":true,"               \
	"\\\"metadata\\\":{}}]}\","                                                                \
	"\"partitionColumns\":[\"day\"],\"configuration\":{},\"createdTime\":1700000000001}}\n"

#define ADD(path, size, rows)                                                                      \
	"{\"add\":{\"path\":\"" path "\",\"partitionValues\":{},\"size\":" #size                   \
	",\"modificationTime\":1,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":" #rows       \
	"}\"}}\n"

#define TXN(app, v) "{\"txn\":{\"appId\":\"" app "\",\"version\":" #v ",\"lastUpdated\":5}}\n"

#define INFO(ts) "{\"commitInfo\":{\"timestamp\":" #ts ",\"operation\":\"STREAMING UPDATE\"}}\n"

static struct rn_dlog *replay(const char *const *commits, size_t n)
{
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	for (size_t i = 0; i < n; i++) {
		int rc = rn_dlog_apply(l, (int64_t)i, commits[i], strlen(commits[i]));
		if (rc)
			fail_msg("version %zu: %s", i, rn_dlog_errmsg(l));
	}
	return l;
}

static const struct rn_dlog_file *find_file(const struct rn_dlog *l, const char *path)
{
	size_t n;
	const struct rn_dlog_file *f = rn_dlog_files(l, &n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].path, path))
			return &f[i];
	return NULL;
}

static size_t nwarnings(const struct rn_dlog *l, const char *needle)
{
	size_t n, total, hits = 0;
	const char *const *w = rn_dlog_warnings(l, &n, &total);
	for (size_t i = 0; i < n; i++)
		if (strstr(w[i], needle))
			hits++;
	return hits;
}

static void test_good_log(void **state)
{
	(void)state;
	const char *c[] = {
		V0,
		INFO(1700000001000) ADD("a.parquet", 100, 10) ADD("b.parquet", 200, 20)
			TXN("s1", 3),
		INFO(1700000002000) ADD("c%20d.parquet", 300, 30) TXN("s1", 7) TXN("s2", 0),
	};
	struct rn_dlog *l = replay(c, 3);
	size_t n, total;
	int64_t bytes, rows;

	assert_int_equal(rn_dlog_version(l), 2);
	assert_string_equal(rn_dlog_table_id(l), "t-1");
	assert_int_equal(rn_dlog_created_ms(l), 1700000000001);
	int r, w;
	const char *rf, *wf;
	rn_dlog_protocol(l, &r, &w, &rf, &wf);
	assert_int_equal(r, 1);
	assert_int_equal(w, 2);
	assert_null(rf);
	const struct rn_dlog_column *cols = rn_dlog_columns(l, &n);
	assert_int_equal(n, 3);
	assert_string_equal(cols[0].name, "id");
	assert_string_equal(cols[0].type, "long");
	assert_false(cols[0].nullable);
	assert_string_equal(cols[1].type, "array<string>");
	assert_true(cols[1].nullable);
	char *const *parts = rn_dlog_partition_columns(l, &n);
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "day");

	rn_dlog_files(l, &n);
	assert_int_equal(n, 3);
	assert_int_equal(find_file(l, "b.parquet")->num_records, 20);
	assert_int_equal(find_file(l, "c%20d.parquet")->version, 2);
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(bytes, 600);
	assert_int_equal(rows, 60);
	assert_int_equal(n, 0);

	assert_int_equal(rn_dlog_txn(l, "s1"), 7);
	assert_int_equal(rn_dlog_txn(l, "s2"), 0);
	assert_int_equal(rn_dlog_txn(l, "nope"), -1);
	const struct rn_dlog_txn *t = rn_dlog_txns(l, &n);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].app_id, "s1");
	assert_int_equal(t[0].at_version, 2);

	const struct rn_dlog_commit *h = rn_dlog_commits(l, &n);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].operation, "CREATE TABLE");
	assert_string_equal(h[0].engine, "test/1");
	assert_true(h[0].meta_change);
	assert_int_equal(h[1].timestamp_ms, 1700000001000);
	assert_int_equal(h[1].nadd, 2);
	assert_int_equal(h[1].rows_added, 30);
	assert_int_equal(h[2].ntxn, 2);
	assert_false(h[2].meta_change);
	rn_dlog_warnings(l, &n, &total);
	assert_int_equal(total, 0);
	rn_dlog_destroy(l);
}

static void test_removes(void **state)
{
	(void)state;
	const char *c[] = {
		V0,
		ADD("a", 100, 10) ADD("b", 200, 20) ADD("c", 300, 30),
		"{\"remove\":{\"path\":\"a\",\"deletionTimestamp\":99,\"dataChange\":false}}\n"
		"{\"remove\":{\"path\":\"b\",\"deletionTimestamp\":99,\"dataChange\":false}}\n"
		"{\"add\":{\"path\":\"ab\",\"size\":300,\"dataChange\":false,"
		"\"stats\":\"{\\\"numRecords\\\":30}\"}}\n",
		/* a comes back (restore), the stale remove of b is repeated: no effect */
		ADD("a", 100, 10) "{\"remove\":{\"path\":\"b\",\"dataChange\":true}}\n",
	};
	struct rn_dlog *l = replay(c, 3);
	size_t n, total;
	int64_t bytes, rows;
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, 60);
	assert_int_equal(bytes, 600);
	assert_null(find_file(l, "a"));
	assert_non_null(find_file(l, "ab"));
	assert_false(find_file(l, "ab")->data_change);
	const struct rn_dlog_remove *r = rn_dlog_removes(l, &n);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].deletion_ms, 99);
	const struct rn_dlog_commit *h = rn_dlog_commits(l, &n);
	assert_int_equal(h[2].nremove, 2);
	assert_int_equal(h[2].nadd, 1);

	assert_int_equal(rn_dlog_apply(l, 3, c[3], strlen(c[3])), 0);
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, 70);
	assert_non_null(find_file(l, "a"));
	rn_dlog_removes(l, &n);
	assert_int_equal(n, 1); /* only b is still a tombstone */
	rn_dlog_warnings(l, &n, &total);
	assert_int_equal(total, 0);
	rn_dlog_destroy(l);
}

static void test_duplicates_and_txn_anomalies(void **state)
{
	(void)state;
	const char *c[] = {
		V0,
		ADD("a", 100, 10) ADD("a", 100, 10) TXN("s1", 5) TXN("s1", 6),
		ADD("a", 100, 10)
			TXN("s1", 2) "{\"remove\":{\"path\":\"ghost\",\"dataChange\":true}}\n",
	};
	struct rn_dlog *l = replay(c, 3);
	size_t n, total;
	int64_t bytes, rows;
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, 10); /* one live file however often it was added */
	rn_dlog_files(l, &n);
	assert_int_equal(n, 1);
	assert_int_equal(nwarnings(l, "added twice in one commit"), 1);
	assert_int_equal(nwarnings(l, "added again"), 1);
	assert_int_equal(nwarnings(l, "two txn actions for appId s1"), 1);
	assert_int_equal(nwarnings(l, "goes back from 6 to 2"), 1);
	assert_int_equal(nwarnings(l, "never added"), 1);
	rn_dlog_warnings(l, &n, &total);
	assert_int_equal(total, 5);
	assert_int_equal(rn_dlog_txn(l, "s1"), 2); /* the latest action wins, per the protocol */
	rn_dlog_destroy(l);
}

static void test_stats_and_other_actions(void **state)
{
	(void)state;
	const char *c[] = {
		V0,
		/* no stats, null stats, stats without numRecords, unreadable stats */
		"{\"add\":{\"path\":\"n1\",\"size\":1,\"dataChange\":true}}\n"
		"{\"add\":{\"path\":\"n2\",\"size\":1,\"dataChange\":true,\"stats\":null}}\n"
		"{\"add\":{\"path\":\"n3\",\"size\":1,\"dataChange\":true,\"stats\":\"{}\"}}\n"
		"{\"add\":{\"path\":\"n4\",\"size\":1,\"dataChange\":true,\"stats\":\"{oops\"}}\n"
		/* actions a snapshot does not need are accepted */
		"{\"domainMetadata\":{\"domain\":\"x\",\"configuration\":\"{}\",\"removed\":false}}"
		"\n"
		"{\"cdc\":{\"path\":\"c\",\"size\":1,\"dataChange\":false}}\r\n",
		/* a commit without its final newline: readable, but flagged */
		ADD("m", 5, 2),
	};
	struct rn_dlog *l = replay(c, 2);
	size_t n;
	int64_t bytes, rows;
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(n, 4);
	assert_int_equal(rows, 0);
	assert_int_equal(nwarnings(l, "n4 has unreadable stats"), 1);
	const struct rn_dlog_commit *h = rn_dlog_commits(l, &n);
	assert_int_equal(h[1].adds_without_stats, 4);
	assert_int_equal(h[1].timestamp_ms, -1);
	assert_null(h[1].operation);
	char torn[] = ADD("m", 5, 2);
	assert_int_equal(rn_dlog_apply(l, 2, torn, strlen(torn) - 1), 0);
	assert_int_equal(nwarnings(l, "does not end with a newline"), 1);
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, 2);
	rn_dlog_destroy(l);
}

/* Applies `bad` as version 1 after a good version 0 and checks the error mentions `why`. */
static void expect_error(const char *bad, const char *why)
{
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_apply(l, 0, V0, strlen(V0)), 0);
	int rc = rn_dlog_apply(l, 1, bad, strlen(bad));
	if (rc != RN_EDELTA || !strstr(rn_dlog_errmsg(l), why))
		fail_msg("for %s: rc %d, message '%s', wanted '%s'", bad, rc, rn_dlog_errmsg(l),
			 why);
	rn_dlog_destroy(l);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_error("{\"add\":{\"path\":\"a\",\"size\":1}\n",
		     "version 1 line 1: not a JSON object");
	expect_error(INFO(1) "not json\n", "version 1 line 2: not a JSON object");
	expect_error("[1,2]\n", "line 1: not a JSON object");
	expect_error("{\"add\":{\"path\":\"a\",\"size\":1}}trailing\n", "not a JSON object");
	expect_error("{}\n", "line 1: line holds no action");
	expect_error(
		"{\"add\":{\"path\":\"a\",\"size\":1},\"txn\":{\"appId\":\"x\",\"version\":1}}\n",
		"more than one action");
	expect_error("{\"add\":{\"size\":1}}\n", "add without path");
	expect_error("{\"add\":{\"path\":\"a\"}}\n", "add without size");
	expect_error("{\"add\":{\"path\":\"a\",\"size\":-4}}\n",
		     "size is not a non-negative integer");
	expect_error("{\"add\":{\"path\":7,\"size\":1}}\n", "path is not a string");
	expect_error("{\"add\":{\"path\":\"a\",\"size\":1,\"dataChange\":\"yes\"}}\n",
		     "dataChange is not a boolean");
	expect_error("{\"add\":[1]}\n", "add is not a valid action object");
	expect_error("{\"remove\":{\"dataChange\":true}}\n", "remove without path");
	expect_error("{\"txn\":{\"version\":1}}\n", "txn without appId");
	expect_error("{\"txn\":{\"appId\":\"a\"}}\n", "txn without version");
	expect_error("{\"txn\":{\"appId\":\"a\",\"version\":1.5}}\n",
		     "txn version is not an integer");
	expect_error("{\"protocol\":{\"minReaderVersion\":1}}\n", "protocol without");
	expect_error("{\"metaData\":{\"id\":\"x\"}}\n", "metaData without schemaString");
	expect_error("{\"metaData\":{\"schemaString\":\"{\\\"type\\\":\\\"struct\\\"}\"}}\n",
		     "schemaString is not a valid struct schema");
	expect_error("{\"metaData\":{\"schemaString\":\"{}\",\"partitionColumns\":[1]}}\n",
		     "schemaString is not a valid struct schema");
	expect_error("{\"metaData\":{\"schemaString\":\"{\\\"type\\\":\\\"struct\\\","
		     "\\\"fields\\\":[]}\","
		     "\"partitionColumns\":[\"a\",1]}}\n",
		     "partitionColumns is not an array of strings");
	expect_error("\n\n", "version 1 holds no action");

	/* versions must come in order, from 0 */
	struct rn_dlog *l;
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_apply(l, 1, V0, strlen(V0)), RN_EDELTA);
	assert_non_null(strstr(rn_dlog_errmsg(l), "version 1 applied after version -1"));
	assert_int_equal(rn_dlog_apply(l, 0, V0, strlen(V0)), 0);
	assert_int_equal(rn_dlog_apply(l, 2, V0, strlen(V0)), RN_EDELTA);
	rn_dlog_destroy(l);
}

static void test_schema_rendering(void **state)
{
	(void)state;
	const char *c[] = {
		"{\"metaData\":{\"id\":\"x\",\"schemaString\":\"{\\\"type\\\":\\\"struct\\\","
		"\\\"fields\\\":["
		"{\\\"name\\\":\\\"m\\\",\\\"type\\\":{\\\"type\\\":\\\"map\\\",\\\"keyType\\\":"
		"\\\"string\\\","
		"\\\"valueType\\\":{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":"
		"\\\"a\\\","
		"\\\"type\\\":\\\"decimal(10,2)\\\",\\\"nullable\\\":true}]}},\\\"nullable\\\":"
		"true}]}"
		"\","
		"\"partitionColumns\":[]}}\n"
		"{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,"
		"\"readerFeatures\":[\"timestampNtz\"],\"writerFeatures\":[\"timestampNtz\"]}}\n",
	};
	struct rn_dlog *l = replay(c, 1);
	size_t n;
	const struct rn_dlog_column *cols = rn_dlog_columns(l, &n);
	assert_int_equal(n, 1);
	assert_string_equal(cols[0].type, "map<string,struct<a:decimal(10,2)>>");
	int r, w;
	const char *rf, *wf;
	rn_dlog_protocol(l, &r, &w, &rf, &wf);
	assert_int_equal(r, 3);
	assert_string_equal(rf, "[\"timestampNtz\"]");
	assert_int_equal(nwarnings(l, "version 0 lacks"), 0);
	rn_dlog_destroy(l);
}

/* A schema field whose type cannot be rendered fails the commit and leaves no column with a
 * NULL name or type behind (fuzz_delta_log found one; corpus/delta_log/schema_field_bad_type):
 * the columns are the whole schema or none, and the snapshot can still be read. */
static void test_bad_schema_field(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"metaData\":{\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":["
		"{\\\"name\\\":\\\"\\\",\\\"type\\\":{}}]}\"}}\n",
		"{\"metaData\":{\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":["
		"{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"long\\\"},"
		"{\\\"name\\\":7,\\\"type\\\":\\\"long\\\"}]}\"}}\n",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct rn_dlog *l;
		size_t n;
		assert_int_equal(rn_dlog_create(&l), 0);
		assert_int_equal(rn_dlog_apply(l, 0, bad[k], strlen(bad[k])), RN_EDELTA);
		assert_non_null(
			strstr(rn_dlog_errmsg(l), "schemaString is not a valid struct schema"));
		const struct rn_dlog_column *cols = rn_dlog_columns(l, &n);
		for (size_t i = 0; i < n; i++) {
			assert_non_null(cols[i].name);
			assert_non_null(cols[i].type);
		}
		assert_int_equal(n, 0);
		rn_dlog_destroy(l);
	}
}

static void test_many_files(void **state)
{
	(void)state;
	/* Enough adds and removes to grow and rehash the path map several times. */
	struct rn_dlog *l;
	char line[128];
	assert_int_equal(rn_dlog_create(&l), 0);
	assert_int_equal(rn_dlog_apply(l, 0, V0, strlen(V0)), 0);
	for (int v = 1; v <= 200; v++) {
		char text[8192] = "";
		for (int i = 0; i < 20; i++) {
			snprintf(line, sizeof(line),
				 "{\"add\":{\"path\":\"f-%d-%d\",\"size\":10,"
				 "\"stats\":\"{\\\"numRecords\\\":1}\"}}\n",
				 v, i);
			strcat(text, line);
		}
		if (v > 1) { /* remove half of the previous version's files */
			for (int i = 0; i < 20; i += 2) {
				snprintf(line, sizeof(line),
					 "{\"remove\":{\"path\":\"f-%d-%d\"}}\n", v - 1, i);
				strcat(text, line);
			}
		}
		assert_int_equal(rn_dlog_apply(l, v, text, strlen(text)), 0);
	}
	size_t n;
	int64_t bytes, rows;
	rn_dlog_totals(l, &bytes, &rows, &n);
	assert_int_equal(rows, 200 * 20 - 199 * 10);
	rn_dlog_removes(l, &n);
	assert_int_equal(n, 199 * 10);
	assert_non_null(find_file(l, "f-200-0"));
	assert_non_null(find_file(l, "f-7-1"));
	assert_null(find_file(l, "f-7-2"));
	rn_dlog_destroy(l);
}

/* A minimal footer: FileMetaData{1: version 1, 2: [root{name "s"}], 3: num_rows, 4: []}. */
static size_t footer(uint8_t *out, int64_t rows)
{
	size_t n = 0;
	uint64_t z = (uint64_t)(rows << 1) ^ (uint64_t)(rows >> 63);
	memcpy(out, "PAR1", 4);
	n = 4;
	size_t meta = n;
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
	out[n++] = (uint8_t)len;
	out[n++] = (uint8_t)(len >> 8);
	out[n++] = (uint8_t)(len >> 16);
	out[n++] = (uint8_t)(len >> 24);
	memcpy(out + n, "PAR1", 4);
	return n + 4;
}

static void test_parquet_footer(void **state)
{
	(void)state;
	uint8_t f[64];
	char why[128];
	uint32_t fl;
	int64_t rows;
	size_t n = footer(f, 123456);
	assert_int_equal(rn_dlog_parquet_footer(f, n, n, &fl, &rows, why, sizeof(why)), 0);
	assert_int_equal(rows, 123456);
	assert_int_equal(fl, n - 12);
	/* a short tail: the length is known, the rows need a longer read */
	assert_int_equal(rn_dlog_parquet_footer(f + n - 10, 10, n, &fl, &rows, why, sizeof(why)),
			 0);
	assert_int_equal(rows, -1);
	assert_int_equal(fl, n - 12);
	/* bad magic */
	f[n - 1] = 'X';
	assert_int_equal(rn_dlog_parquet_footer(f, n, n, &fl, &rows, why, sizeof(why)),
			 RN_ECORRUPT);
	assert_non_null(strstr(why, "PAR1"));
	f[n - 1] = '1';
	/* a length that does not fit the file */
	f[n - 8] = 0xff;
	assert_int_equal(rn_dlog_parquet_footer(f, n, n, &fl, &rows, why, sizeof(why)),
			 RN_ECORRUPT);
	assert_non_null(strstr(why, "does not fit"));
	n = footer(f, 7);
	/* a broken Thrift field type inside the metadata */
	f[4] = 0x1f;
	assert_int_equal(rn_dlog_parquet_footer(f, n, n, &fl, &rows, why, sizeof(why)),
			 RN_ECORRUPT);
	assert_non_null(strstr(why, "Thrift"));
	/* metadata without num_rows */
	uint8_t g[] = {'P', 'A', 'R', '1', 0x15, 0x02, 0x00, 3, 0, 0, 0, 'P', 'A', 'R', '1'};
	assert_int_equal(
		rn_dlog_parquet_footer(g, sizeof(g), sizeof(g), &fl, &rows, why, sizeof(why)),
		RN_ECORRUPT);
	assert_non_null(strstr(why, "num_rows"));
	assert_int_equal(rn_dlog_parquet_footer(g, 4, 4, &fl, &rows, why, sizeof(why)),
			 RN_ECORRUPT);
}

static void test_uri_decode(void **state)
{
	(void)state;
	char out[32];
	assert_int_equal(rn_dlog_uri_decode("day=2024-01-01/a%20b%25.parquet", out, sizeof(out)),
			 0);
	assert_string_equal(out, "day=2024-01-01/a b%.parquet");
	assert_int_equal(rn_dlog_uri_decode("a%2", out, sizeof(out)), RN_EINVAL);
	assert_int_equal(rn_dlog_uri_decode("a%zz", out, sizeof(out)), RN_EINVAL);
	assert_int_equal(rn_dlog_uri_decode("a%00", out, sizeof(out)), RN_EINVAL);
	assert_int_equal(rn_dlog_uri_decode("0123456789", out, 10), RN_EINVAL);
	assert_int_equal(rn_dlog_uri_decode("012345678", out, 10), 0);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	const char *c1 = INFO(1) ADD("a", 1, 1) ADD("b", 1, 1)
		TXN("s", 1) "{\"remove\":{\"path\":\"a\"}}\n" ADD("a", 1, 1) ADD("a", 1, 1);
	long live = rn_mem_live();
	int failed = 0;
	/* Fail each allocation in turn: every apply either works or fails cleanly. */
	for (long k = 1; k < 200; k++) {
		struct rn_dlog *l;
		rn_mem_fail_after(k);
		int rc = rn_dlog_create(&l);
		if (!rc) {
			rc = rn_dlog_apply(l, 0, V0, strlen(V0));
			if (!rc)
				rc = rn_dlog_apply(l, 1, c1, strlen(c1));
		}
		rn_mem_fail_after(0);
		if (rc) {
			failed++;
			assert_true(rc == RN_ENOMEM || rc == RN_EDELTA);
		}
		rn_dlog_destroy(rc && !l ? NULL : l);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(failed > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_log),
		cmocka_unit_test(test_removes),
		cmocka_unit_test(test_duplicates_and_txn_anomalies),
		cmocka_unit_test(test_stats_and_other_actions),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_schema_rendering),
		cmocka_unit_test(test_bad_schema_field),
		cmocka_unit_test(test_many_files),
		cmocka_unit_test(test_parquet_footer),
		cmocka_unit_test(test_uri_decode),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
