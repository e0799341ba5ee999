/*
 * Unit tests for the materializer, the Delta log writer and table-name validation: batches
 * land once (offsets at or below the txn watermark are skipped, also after reopening),
 * payloads that are not UTF-8 go to payload_raw, an undecodable record is kept, names that
 * could escape the data root are refused, a lost commit race is resolved by txn, and the
 * clock correction (clock_corrected; tables from before the column are kept as they are),
 * and a column from = "principal" (the writer's name, whatever the record says); two
 * materializers holding overlapping offsets of one stream commit each once.
 */
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
#include "mat.h"
#include "partition.h"
#include "rn_mem.h"
#include "schema.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_pbwire.h"
#include "testutil.h"
#include "tstore.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	assert_int_equal(rn_test_tmpdir(root, sizeof(root), "mat"), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

static void batch_of(struct rn_buf *b, int n, const char *payload, size_t plen)
{
	rn_buf_reset(b);
	for (int i = 0; i < n; i++) {
		struct rn_buf r = {0};
		rn_pb_put_uint(&r, 6, (uint64_t)i);
		rn_pb_put_bytes(&r, 7, payload, plen);
		rn_pb_put_bytes(b, 1, r.data, r.len);
		rn_buf_free(&r);
	}
}

static int count_lines(const char *path, const char *needle)
{
	char line[8192];
	int n = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(rn_table_name_check("main.default.t1"), 0);
	assert_int_equal(rn_table_name_check("a-b.c_d.E-9"), 0);
	assert_int_equal(rn_table_name_check(NULL), RN_EINVAL);
	/* only 3-part names: a 1- or 2-part name's directory would hold other tables */
	const char *bad[] = {"",    "..",   "../x", "a..b",   "/abs",   "a.b.c.d",    "a/b",
			     ".a",  "a.",   "-a",   "_a",     "a b",    "a.\xc3\xa9", "t",
			     "a.b", "a.b.", ".a.b", "a..b.c", "a.b.c.", "a.b._c",     "a.-b.c"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rn_table_name_check(bad[i]), RN_EINVAL);
	char longname[200];
	memset(longname, 'x', 129);
	longname[129] = 0;
	assert_int_equal(rn_table_name_check(longname), RN_EINVAL);
}

static void test_exactly_once(void **state)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root};
	struct rn_buf b = {0};
	int64_t off;
	char log1[400];
	(void)state;

	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 0);
	assert_int_equal(
		rn_mat_add(m, "db.s.t", "s1", 0, RN_MAT_PROTO, (const uint8_t *)"", 0, NULL),
		RN_ENOTFOUND);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 1);
	assert_int_equal(
		rn_mat_add(m, "../etc", "s1", 0, RN_MAT_PROTO, (const uint8_t *)"", 0, NULL),
		RN_EINVAL);

	batch_of(&b, 3, "hello", 5);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 0, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 0, RN_MAT_PROTO, b.data, b.len, NULL),
			 0); /* dup */
	batch_of(&b, 2, "\xff\xfe", 2);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 1, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	assert_true(rn_mat_pending_bytes(m) > 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "s1", &off), 0);
	assert_int_equal(off, 1);
	assert_int_equal(rn_mat_committed(m, "db.s.t", "nope", &off), 0);
	assert_int_equal(off, -1);
	snprintf(log1, sizeof(log1), "%s/db/s/t/_delta_log/%020d.json", root, 1);
	assert_int_equal(count_lines(log1, "\"numRecords\\\":5"), 1);
	assert_int_equal(count_lines(log1, "\"payload_raw\\\":3"), 1); /* nullCount: 3 text rows */
	assert_int_equal(count_lines(log1, "{\"txn\":{\"appId\":\"s1\",\"version\":1,"), 1);
	rn_mat_destroy(m);

	/* a new materializer (a restart) skips what the log holds */
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 1, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	snprintf(log1, sizeof(log1), "%s/db/s/t/_delta_log/%020d.json", root, 2);
	assert_int_equal(access(log1, F_OK), -1);
	/* an undecodable record is kept as a row */
	rn_buf_reset(&b);
	rn_pb_put_bytes(&b, 1, "\x20\xff", 2);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 2, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	/* a batch that is not a record list is refused */
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 3, RN_MAT_PROTO, (const uint8_t *)"\x08\x01",
				    2, NULL),
			 RN_EINVAL);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(count_lines(log1, "\"payload_raw\\\":0"), 1); /* the raw bytes are kept */
	assert_int_equal(count_lines(log1, "\"numRecords\\\":1"), 1);
	rn_mat_destroy(m);
	rn_buf_free(&b);
}

static void test_delta_race(void **state)
{
	struct rn_delta *a, *b;
	char dir[300];
	int64_t v;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/race", root);
	assert_int_equal(rn_delta_open(&a, dir, "{\"type\":\"struct\",\"fields\":[]}", NULL), 0);
	assert_int_equal(rn_delta_open(&b, dir, NULL, NULL), 0);
	struct rn_delta_txn ta = {"app-a", 5}, tb = {"app-b", 1};
	assert_int_equal(rn_delta_commit(a, NULL, 0, &ta, 1, &v), 0);
	assert_int_equal(v, 1);
	/* b has not seen version 1: it loses the race, reads it, retries at 2 */
	assert_int_equal(rn_delta_commit(b, NULL, 0, &tb, 1, &v), 0);
	assert_int_equal(v, 2);
	/* b now knows app-a is at 5: the same batch again from b is a duplicate */
	struct rn_delta_txn ta_again = {"app-a", 5};
	assert_int_equal(rn_delta_txn(b, "app-a"), 5);
	/* a is behind (version 1); committing app-b@1 again loses the race to a duplicate */
	assert_int_equal(rn_delta_commit(a, NULL, 0, &tb, 1, &v), RN_EEXIST);
	(void)ta_again;
	rn_delta_close(a);
	rn_delta_close(b);
}

/* One envelope record with a clock: receive (and event) time, boot fields when boot_id. */
static void clock_record(struct rn_buf *b, uint64_t seq, int64_t event, int64_t receive,
			 const char *boot_id, uint64_t boot_us)
{
	struct rn_buf r = {0};
	rn_pb_put_str(&r, 1, "dev");
	rn_pb_put_uint(&r, 4, (uint64_t)event);
	rn_pb_put_uint(&r, 5, (uint64_t)receive);
	rn_pb_put_uint(&r, 6, seq);
	rn_pb_put_str(&r, 7, "x");
	if (boot_id) {
		rn_pb_put_uint(&r, 10, boot_us);
		rn_pb_put_str(&r, 11, boot_id);
	}
	rn_pb_put_bytes(b, 1, r.data, r.len);
	rn_buf_free(&r);
}

/* Flushes and says whether version v of table dir (under root) holds every needle. */
static int log_has(const char *dir, int v, const char *const *needles, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/_delta_log/%020d.json", root, dir, v);
	for (size_t i = 0; i < n; i++)
		if (count_lines(path, needles[i]) < 1) {
			print_message("%s: no %s\n", path, needles[i]);
			return 0;
		}
	return 1;
}

#define DAY1 (86400LL * 1000000)       /* 1970-01-02: a device without an RTC */
#define T2026 (1767225600LL * 1000000) /* 2026-01-01T00:00:00Z */

/*
 * The clock correction: a record with the reference's boot id gets receive_time =
 * boot_time_us + delta (event time moved the same when it is untrustworthy, kept when it is
 * valid); another boot's record keeps its times. Read back from the add's column stats.
 */
static void test_clock(void **state)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root};
	struct rn_mat_clock clk = {"b-1", T2026 - 5000000}; /* boot 5 s = 2026-01-01T00:00:00 */
	struct rn_buf b = {0};
	(void)state;
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.c"), 0);
	const char *v0[] = {"clock_corrected\\\",\\\"type\\\":\\\"boolean\\\""};
	assert_true(log_has("db/s/c", 0, v0, 1));

	/* corrected, and another boot's record that is not */
	clock_record(&b, 0, DAY1, DAY1, "b-1", 5000000);
	clock_record(&b, 1, DAY1 + 7, DAY1 + 7, "b-0", 5000000);
	assert_int_equal(rn_mat_add(m, "db.s.c", "s1", 0, RN_MAT_PROTO, b.data, b.len, &clk), 0);
	assert_int_equal(rn_mat_clock_corrected(m), 1); /* the fleet view's clock_corrections */
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v1[] = {"\\\"maxValues\\\":{\\\"device_id\\\":\\\"dev\\\",\\\"event_time\\\":"
			    "\\\"2026-01-01T00:00:00.000Z\\\",\\\"receive_time\\\":\\\"2026-01-"
			    "01T00:00:00.000Z\\\"",
			    "\\\"minValues\\\":{\\\"device_id\\\":\\\"dev\\\",\\\"event_time\\\":"
			    "\\\"1970-01-02T00:00:00.000Z\\\",\\\"receive_time\\\":\\\"1970-01-"
			    "02T00:00:00.000Z\\\"",
			    "\\\"clock_corrected\\\":0}"}; /* nullCount: written on every row */
	assert_true(log_has("db/s/c", 1, v1, 3));

	/* a valid event time (GPS) is kept; the receive time is corrected */
	rn_buf_reset(&b);
	clock_record(&b, 2, T2026 - 600000000, DAY1, "b-1", 6000000);
	assert_int_equal(rn_mat_add(m, "db.s.c", "s1", 1, RN_MAT_PROTO, b.data, b.len, &clk), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v2[] = {"\\\"event_time\\\":\\\"2025-12-31T23:50:00.000Z\\\","
			    "\\\"receive_time\\\":\\\"2026-01-01T00:00:01.000Z\\\""};
	assert_true(log_has("db/s/c", 2, v2, 1));

	/* an untrustworthy event time (read 60 s before the record) moves with it */
	rn_buf_reset(&b);
	clock_record(&b, 3, DAY1 - 60000000, DAY1, "b-1", 6000000);
	assert_int_equal(rn_mat_add(m, "db.s.c", "s1", 2, RN_MAT_PROTO, b.data, b.len, &clk), 0);
	/* and without a reference nothing is corrected */
	rn_buf_reset(&b);
	clock_record(&b, 4, DAY1, DAY1, "b-1", 6000000);
	assert_int_equal(rn_mat_add(m, "db.s.c", "s2", 0, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v3[] = {"\\\"maxValues\\\":{\\\"device_id\\\":\\\"dev\\\",\\\"event_time\\\":"
			    "\\\"2025-12-31T23:59:01.000Z\\\",\\\"receive_time\\\":"
			    "\\\"2026-01-01T00:00:01.000Z\\\"",
			    "\\\"minValues\\\":{\\\"device_id\\\":\\\"dev\\\",\\\"event_time\\\":"
			    "\\\"1970-01-02T00:00:00.000Z\\\",\\\"receive_time\\\":"
			    "\\\"1970-01-02T00:00:00.000Z\\\""};
	assert_true(log_has("db/s/c", 3, v3, 2));
	assert_int_equal(rn_mat_clock_corrected(m), 3); /* s2's record had no reference */
	rn_mat_destroy(m);
	rn_buf_free(&b);
}

/*
 * A typed table's column from = "principal" holds the name rn_mat_add_as was given, never
 * what the record names; unknown (plain rn_mat_add) is null in a nullable column. Read back
 * from the adds' column stats.
 */
static void test_principal_column(void **state)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root};
	struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
	const struct rn_part_derived der[] = {{"who", "principal"}};
	struct rn_part_spec sp = {NULL, 0, der, 1};
	struct rn_buf b = {0};
	char err[200];
	(void)state;
	assert_non_null(sc);
	assert_int_equal(rn_schema_add_column(sc, "v", "long", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "who", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_define_table_ex(m, "db.s.p", sc, &sp), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.p"), 0);

	/* a record naming someone else, and one naming nobody */
	rn_pb_put_str(&b, 1, "{\"v\":1,\"who\":\"mallory\"}");
	rn_pb_put_str(&b, 1, "{\"v\":2}");
	assert_int_equal(
		rn_mat_add_as(m, "db.s.p", "s1", 0, RN_MAT_JSON, b.data, b.len, NULL, "alice"), 0);
	assert_int_equal(
		rn_mat_add_as(m, "db.s.p", "s2", 0, RN_MAT_JSON, b.data, b.len, NULL, "bob"), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v1[] = {"\\\"minValues\\\":{\\\"v\\\":1,\\\"who\\\":\\\"alice\\\"}",
			    "\\\"maxValues\\\":{\\\"v\\\":2,\\\"who\\\":\\\"bob\\\"}",
			    "\\\"nullCount\\\":{\\\"v\\\":0,\\\"who\\\":0}"};
	assert_true(log_has("db/s/p", 1, v1, 3));

	/* without a principal: null */
	assert_int_equal(rn_mat_add(m, "db.s.p", "s3", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v2[] = {"\\\"nullCount\\\":{\\\"v\\\":0,\\\"who\\\":2}"};
	assert_true(log_has("db/s/p", 2, v2, 1));
	rn_mat_destroy(m);
	rn_buf_free(&b);
}

/* The WAL of test_principal_pending: its batches, handed back with their writers on a
 * refill. */
struct pp_batch {
	const char *table, *stream, *who;
	int64_t offset;
	struct rn_buf b;
};
static struct pp_batch pp_log[16];
static size_t pp_n;

static int pp_refill(void *ctx, struct rn_mat *m, const char *table)
{
	(void)ctx;
	for (size_t i = 0; i < pp_n; i++) {
		int rc;
		if (strcmp(pp_log[i].table, table))
			continue;
		if ((rc = rn_mat_refill_add_as(m, table, pp_log[i].stream, pp_log[i].offset,
					       RN_MAT_PROTO, pp_log[i].b.data, pp_log[i].b.len,
					       NULL, pp_log[i].who)))
			return rc;
	}
	return 0;
}

/* Adds a batch as `who`, retrying through every allocation failure (each one rebuilds the
 * table from pp_log); logs it once it is in. */
static void pp_add(struct rn_mat *m, const char *table, const char *stream, int64_t offset,
		   const char *who)
{
	struct pp_batch *e = &pp_log[pp_n];
	*e = (struct pp_batch){table, stream, who, offset, {0}};
	batch_of(&e->b, 2, "some bytes", 10);
	for (long n = 1;; n++) {
		rn_mem_fail_after(n);
		int rc = rn_mat_add_as(m, table, stream, offset, RN_MAT_PROTO, e->b.data, e->b.len,
				       NULL, who);
		rn_mem_fail_disarm();
		if (!rc)
			break;
		assert_int_equal(rc, RN_ENOMEM);
	}
	pp_n++;
}

/*
 * Pending bytes per principal (rn_mat_principal_pending_bytes): charged by rn_mat_add_as
 * over all tables, not twice for a duplicate, not at all without a principal, right after
 * every allocation failure of an add (the table is rebuilt by its refill with the writers),
 * and released table by table as flushes commit them.
 */
static void test_principal_pending(void **state)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root, .refill = pp_refill};
	size_t active, one;
	(void)state;
	pp_n = 0;
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.a"), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.b"), 0);
	assert_int_equal(rn_mat_principal_pending_bytes(m, "alice", &active), 0);
	assert_int_equal(active, 0);

	pp_add(m, "db.s.a", "s1", 0, "alice");
	one = pp_log[0].b.len;
	pp_add(m, "db.s.b", "s2", 0, "alice");
	pp_add(m, "db.s.a", "s3", 0, "bob");
	pp_add(m, "db.s.a", "s1", 1, "alice");
	assert_int_equal(rn_mat_principal_pending_bytes(m, "alice", &active), 3 * one);
	assert_int_equal(active, 2);
	assert_int_equal(rn_mat_principal_pending_bytes(m, "bob", NULL), one);
	/* a duplicate is not charged again; a batch of nobody counts for nobody */
	assert_int_equal(rn_mat_add_as(m, "db.s.a", "s1", 1, RN_MAT_PROTO, pp_log[0].b.data,
				       pp_log[0].b.len, NULL, "alice"),
			 0);
	assert_int_equal(rn_mat_add(m, "db.s.b", "s4", 0, RN_MAT_PROTO, pp_log[0].b.data,
				    pp_log[0].b.len, NULL),
			 0);
	assert_int_equal(rn_mat_principal_pending_bytes(m, "alice", &active), 3 * one);
	assert_int_equal(active, 2);
	assert_int_equal(rn_mat_principal_pending_bytes(m, NULL, NULL), 0);
	/* committed: nothing held */
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(rn_mat_principal_pending_bytes(m, "alice", &active), 0);
	assert_int_equal(active, 0);
	assert_int_equal(rn_mat_principal_pending_bytes(m, "bob", NULL), 0);
	rn_mat_destroy(m);
	for (size_t i = 0; i < pp_n; i++)
		rn_buf_free(&pp_log[i].b);
}

/* The envelope schema before clock_corrected, as tables created then have it in their log. */
static const char old_envelope[] =
	"{\"type\":\"struct\",\"fields\":["
	"{\"name\":\"device_id\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"source\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"topic\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"event_time\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"receive_time\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"stream_id\",\"type\":\"string\",\"nullable\":false,\"metadata\":{}},"
	"{\"name\":\"seq\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"payload\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"payload_raw\",\"type\":\"binary\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"attributes\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
	"{\"name\":\"flags\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}}]}";

/* A table created before the column stays an envelope table, written without it (its
 * times are still corrected), and gets no dead-letter table. */
static void test_clock_old_table(void **state)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = root};
	struct rn_mat_clock clk = {"b-1", T2026 - 5000000};
	struct rn_delta *d;
	struct rn_buf b = {0};
	char dir[400];
	struct stat sb;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/db/s/old", root);
	assert_int_equal(rn_delta_open(&d, dir, old_envelope, NULL), 0);
	rn_delta_close(d);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	clock_record(&b, 0, DAY1, DAY1, "b-1", 5000000);
	assert_int_equal(rn_mat_add(m, "db.s.old", "s1", 0, RN_MAT_PROTO, b.data, b.len, &clk), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	const char *v1[] = {"\\\"receive_time\\\":\\\"2026-01-01T00:00:00.000Z\\\"",
			    "\\\"flags\\\":0}"}; /* nullCount ends at flags */
	assert_true(log_has("db/s/old", 1, v1, 2));
	snprintf(dir, sizeof(dir), "%s/db/s/old/_delta_log/%020d.json", root, 1);
	assert_int_equal(count_lines(dir, "clock_corrected"), 0);
	snprintf(dir, sizeof(dir), "%s/db/s/old_dead_letters", root);
	assert_int_not_equal(stat(dir, &sb), 0);
	rn_mat_destroy(m);
	rn_buf_free(&b);
}

/* One server's WAL in test_overlap: stream "s" offsets from .. to, two records each. */
struct ov_wal {
	int64_t from, to;
};

static int ov_refill(void *ctx, struct rn_mat *m, const char *table)
{
	const struct ov_wal *w = ctx;
	struct rn_buf b = {0};
	int rc = 0;
	batch_of(&b, 2, "r", 1);
	for (int64_t o = w->from; o <= w->to && !rc; o++)
		rc = rn_mat_refill_add(m, table, "s", o, RN_MAT_PROTO, b.data, b.len, NULL);
	rn_buf_free(&b);
	return rc;
}

/* Rows committed to db/s/ov: the numRecords of every add in its log. */
static long ov_rows(void)
{
	char path[400], line[8192];
	long n = 0;
	for (int v = 0;; v++) {
		snprintf(path, sizeof(path), "%s/db/s/ov/_delta_log/%020d.json", root, v);
		FILE *f = fopen(path, "r");
		if (!f)
			return n;
		while (fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, "numRecords\\\":");
			if (p && strstr(line, "\"add\""))
				n += atol(p + strlen("numRecords\\\":"));
		}
		fclose(f);
	}
}

/*
 * Two servers (two materializers, one data root) hold overlapping offsets of stream "s": a
 * 0..5 (acked, not committed, when the client resumed on b), b 0..9 (sent again from the
 * table's watermark, none). a commits first; b's commit is refused (RN_EOVERLAP), its round
 * answers RN_EAGAIN (not a failure) and the next round rebuilds the rows from b's WAL
 * without 0..5 and commits 6..9: every offset once.
 */
static void test_overlap(void **state)
{
	struct ov_wal wa = {0, 5}, wb = {0, 9};
	struct rn_mat_options oa = {.data_root = root, .refill = ov_refill, .refill_ctx = &wa};
	struct rn_mat_options ob = {.data_root = root, .refill = ov_refill, .refill_ctx = &wb};
	struct rn_mat *a, *b;
	struct rn_mat_stats st;
	struct rn_buf bt = {0};
	int64_t off;
	(void)state;
	batch_of(&bt, 2, "r", 1);
	assert_int_equal(rn_mat_create(&a, &oa), 0);
	assert_int_equal(rn_mat_ensure_table(a, "db.s.ov"), 0);
	assert_int_equal(rn_mat_create(&b, &ob), 0);
	for (int64_t o = 0; o <= 9; o++) {
		if (o <= 5)
			assert_int_equal(rn_mat_add(a, "db.s.ov", "s", o, RN_MAT_PROTO, bt.data,
						    bt.len, NULL),
					 0);
		assert_int_equal(
			rn_mat_add(b, "db.s.ov", "s", o, RN_MAT_PROTO, bt.data, bt.len, NULL), 0);
	}
	assert_int_equal(rn_mat_flush(a), 0);
	assert_int_equal(ov_rows(), 12);
	/* one call: its first round is refused and answers RN_EAGAIN, the next one rebuilds */
	assert_int_equal(rn_mat_flush(b), 0);
	rn_mat_stats(b, &st);
	assert_int_equal(st.overlaps, 1);
	assert_int_equal(rn_mat_committed(b, "db.s.ov", "s", &off), 0);
	assert_int_equal(off, 9);
	assert_int_equal(ov_rows(), 20);
	rn_mat_stats(a, &st);
	assert_int_equal(st.overlaps, 0);
	/* a batch b still gets (a resend below the watermark) is skipped */
	assert_int_equal(rn_mat_add(b, "db.s.ov", "s", 7, RN_MAT_PROTO, bt.data, bt.len, NULL), 0);
	assert_int_equal(rn_mat_pending_bytes(b), 0);
	rn_mat_destroy(a);
	rn_mat_destroy(b);
	rn_buf_free(&bt);
}

/* Tables under table_root (not data_root); the store settings are copied at create (the
 * caller's strings may go away); an s3:// root that does not answer fails the table's open
 * cleanly (RN_ECONNECT, the table not registered); every allocation of create fails in turn
 * without a leak. */
static void test_table_root(void **state)
{
	struct rn_mat *m;
	char troot[400], dlog[500], ep[64], key[16], secret[32];
	struct rn_buf b = {0};
	struct stat sb;
	int64_t off;
	(void)state;
	snprintf(troot, sizeof(troot), "%s/elsewhere", root);
	assert_int_equal(mkdir(troot, 0750), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:1");
	snprintf(key, sizeof(key), "AK");
	snprintf(secret, sizeof(secret), "SK-test-table-root");
	struct rn_tstore_config tc = {.s3 = {.endpoint = ep,
					     .access_key = key,
					     .secret_key = secret,
					     .max_attempts = 1,
					     .connect_timeout_ms = 1000}};
	struct rn_mat_options o = {.data_root = root, .table_root = troot, .store = &tc};
	assert_int_equal(rn_mat_create(&m, &o), 0);
	/* the caller's strings are gone: the mat holds its own copies */
	memset(ep, 'x', sizeof(ep) - 1);
	memset(secret, 0, sizeof(secret));
	assert_int_equal(rn_mat_ensure_table(m, "db.s.tr"), 0);
	batch_of(&b, 3, "hi", 2);
	assert_int_equal(rn_mat_add(m, "db.s.tr", "s1", 0, RN_MAT_PROTO, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(rn_mat_committed(m, "db.s.tr", "s1", &off), 0);
	assert_int_equal(off, 0);
	snprintf(dlog, sizeof(dlog), "%s/db/s/tr/_delta_log/%020d.json", troot, 1);
	assert_int_equal(stat(dlog, &sb), 0);
	snprintf(dlog, sizeof(dlog), "%s/db/s/tr", root);
	assert_int_equal(stat(dlog, &sb), -1); /* nothing of the table under data_root */
	rn_mat_destroy(m);

	/* an s3:// root whose store refuses connections: the open fails, nothing registered */
	snprintf(ep, sizeof(ep), "http://127.0.0.1:1");
	snprintf(secret, sizeof(secret), "SK-test-table-root");
	o.table_root = "s3://bucket/tables";
	assert_int_equal(rn_mat_create(&m, &o), 0);
	memset(ep, 'x', sizeof(ep) - 1); /* a shallow copy would now be a malformed endpoint */
	assert_int_equal(rn_mat_ensure_table(m, "db.s.tr"), RN_ECONNECT);
	assert_int_equal(rn_mat_table_exists(m, "db.s.tr"), RN_ECONNECT);
	assert_null(strstr(rn_mat_errmsg(m), secret));
	rn_mat_destroy(m);
	/* a malformed one: RN_EINVAL from the store, at the table's open */
	o.table_root = "s3://";
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.tr"), RN_EINVAL);
	rn_mat_destroy(m);

	long live = rn_mem_live();
	int done = 0;
	for (long nth = 1; !done && nth < 100; nth++) {
		rn_mem_fail_after(nth);
		int rc = rn_mat_create(&m, &o);
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		rn_mat_destroy(done ? m : NULL);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
	rn_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_exactly_once),
		cmocka_unit_test(test_delta_race),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_clock_old_table),
		cmocka_unit_test(test_principal_column),
		cmocka_unit_test(test_principal_pending),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_table_root),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
