/*
 * The materializer under failure: a typed table whose dead-letter table cannot be opened is
 * not created or registered (the auto_create path: the create fails, the retry starts over,
 * never a NULL dead-letter table).
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
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "schema.h"
#include "table_check.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/rn-test-mat-alloc-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

static void count_rows(void *ctx, const char *stream, size_t len, int64_t seq)
{
	(void)stream;
	(void)len;
	(void)seq;
	++*(int64_t *)ctx;
}

/* A DescriptorProto "Row" {optional int64 v = 1; optional int64 seq = 2;} */
static void row_descriptor(struct rn_buf *d)
{
	const char *names[] = {"v", "seq"};
	rn_buf_reset(d);
	rn_pb_put_str(d, 1, "Row");
	for (int i = 0; i < 2; i++) {
		struct rn_buf f = {0};
		rn_pb_put_str(&f, 1, names[i]);
		rn_pb_put_uint(&f, 3, (uint64_t)i + 1);
		rn_pb_put_uint(&f, 4, 1); /* LABEL_OPTIONAL */
		rn_pb_put_uint(&f, 5, 3); /* TYPE_INT64 */
		rn_pb_put_bytes(d, 2, f.data, f.len);
		rn_buf_free(&f);
	}
}

/*
 * auto_create of a typed table whose dead-letter table cannot be opened (its directory is
 * taken by a file): the create fails and leaves nothing (not on disk, not registered, not
 * declared), a record for the table is refused instead of dereferencing a missing
 * dead-letter table, and once the obstacle is gone the same create works and misfits land
 * in the dead-letter table.
 */
static void test_dead_letter_open_fails(void **state)
{
	char dr[400], path[600];
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = dr};
	struct rn_buf d = {0}, b = {0};
	const char *rec_ok = "{\"v\":1,\"seq\":0}", *rec_bad = "{\"v\":\"x\",\"seq\":1}";
	(void)state;

	snprintf(dr, sizeof(dr), "%s/dlq", root);
	snprintf(path, sizeof(path), "%s/db", dr);
	assert_int_equal(mkdir(dr, 0755), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/db/t_dead_letters", dr);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	row_descriptor(&d);
	rn_pb_put_bytes(&b, 1, rec_ok, strlen(rec_ok));
	rn_pb_put_bytes(&b, 1, rec_bad, strlen(rec_bad));

	assert_int_equal(rn_mat_create(&m, &o), 0);
	/* the server's CreateIngestStream with auto_create, twice (the client retries) */
	for (int attempt = 0; attempt < 2; attempt++) {
		assert_int_equal(rn_mat_table_exists(m, "db.t"), 0);
		assert_int_not_equal(rn_mat_create_from_descriptor(m, "db.t", d.data, d.len), 0);
		assert_int_equal(rn_mat_table_exists(m, "db.t"), 0);
		assert_int_not_equal(rn_mat_add(m, "db.t", "s0", 0, RN_MAT_JSON, b.data, b.len,
						NULL),
				     0);
	}
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rn_mat_create_from_descriptor(m, "db.t", d.data, d.len), 0);
	assert_int_equal(rn_mat_table_exists(m, "db.t"), 1);
	assert_int_equal(rn_mat_add(m, "db.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	/* one row in each (the table has no stream_id column, the dead letter no seq) */
	int64_t rows[2] = {0, 0}, v;
	char why[700];
	snprintf(path, sizeof(path), "%s/db/t", dr);
	assert_int_equal(rn_tc_check(path, count_rows, &rows[0], &v, why, sizeof(why)), 0);
	snprintf(path, sizeof(path), "%s/db/t_dead_letters", dr);
	assert_int_equal(rn_tc_check(path, count_rows, &rows[1], &v, why, sizeof(why)), 0);
	assert_int_equal(rows[0], 1);
	assert_int_equal(rows[1], 1);
	rn_mat_destroy(m);

	/* a restart: the table is typed by its log and finds its dead-letter table */
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_add(m, "db.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	rn_mat_destroy(m);
	rn_buf_free(&d);
	rn_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dead_letter_open_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
