/*
 * server/mat/table.c: a typed table opens together with its dead-letter table as one step,
 * both registered or neither. White-box (mat_int.h): the registry's own counts say what is
 * registered, since a dead-letter table left open on its own would be invisible to the
 * public API until it was flushed as an orphan. Three ways to fail after the dead-letter
 * table opened: the table's log has another schema than the config declares (a real
 * conflict, no injection), and allocation-failure sweeps of opening a declared partitioned
 * table and of opening an undeclared table typed by its log (whose declaration, made by the
 * step, must go too). After every failure nothing leaks and the retry opens both.
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

#include "mat_int.h"
#include "partition.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "schema.h"
#include "testutil.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	assert_int_equal(rn_test_tmpdir(root, sizeof(root), "mat-table"), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(root);
}

/* Declares db.s.t with columns v (type vtype), k string; partitioned by k if part. */
static void declare(struct rn_mat *m, const char *vtype, int part)
{
	static const char *const keys[] = {"k"};
	struct rn_part_spec spec = {keys, 1, NULL, 0};
	struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
	char err[200];
	assert_non_null(sc);
	assert_int_equal(rn_schema_add_column(sc, "v", vtype, 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "k", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_mat_define_table_ex(m, "db.s.t", sc, part ? &spec : NULL), 0);
}

/* Both open and registered, the dead-letter table first and held by the typed table. */
static void assert_both(const struct rn_mat *m)
{
	assert_int_equal(m->ntables, 2);
	assert_string_equal(m->tables[0]->name, "db.s.t_dead_letters");
	assert_string_equal(m->tables[1]->name, "db.s.t");
	assert_ptr_equal(m->tables[1]->dlq, m->tables[0]);
	assert_true(m->tables[0]->is_dlq);
}

/* Makes db.s.t on disk (with its dead-letter table) under dr. */
static void make_table(const char *dr, const char *vtype, int part)
{
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = dr};
	assert_int_equal(mkdir(dr, 0755), 0);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	declare(m, vtype, part);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_both(m);
	rn_mat_destroy(m);
}

/*
 * The table's log says v is a long, the config says string: RN_ECONFLICT once the dead-
 * letter table is open. Nothing stays registered (the declaration, made before, does), and
 * a correct declaration in a new materializer opens both.
 */
static void test_conflict_registers_nothing(void **state)
{
	char dr[400];
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = dr};
	long base = rn_mem_live();
	(void)state;

	snprintf(dr, sizeof(dr), "%s/conflict", root);
	make_table(dr, "long", 0);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	declare(m, "string", 0);
	for (int attempt = 0; attempt < 2; attempt++) {
		assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), RN_ECONFLICT);
		assert_non_null(strstr(rn_mat_errmsg(m), "another schema"));
		assert_int_equal(m->ntables, 0);
		assert_int_equal(m->ndefs, 1);
	}
	/* the dead-letter table on its own is an envelope table like any other */
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t_dead_letters"), 0);
	assert_int_equal(m->ntables, 1);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), RN_ECONFLICT);
	assert_int_equal(m->ntables, 1); /* opened before the step: not the step's to close */
	rn_mat_destroy(m);
	assert_int_equal(rn_mem_live(), base);

	assert_int_equal(rn_mat_create(&m, &o), 0);
	declare(m, "long", 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_both(m);
	rn_mat_destroy(m);
	assert_int_equal(rn_mem_live(), base);
}

/*
 * Opening a table with its Nth allocation failing, for N = 1, 2, ... until the open does
 * not reach the failure: after a failure nothing is registered and ndefs is as before; the
 * retry opens both; nothing leaks. declared: the config declares the (partitioned) table;
 * else it is typed by its log, and the step's own declaration goes with it.
 */
static void open_sweep(const char *name, int declared)
{
	char dr[400];
	struct rn_mat_options o = {.data_root = dr};
	long base = rn_mem_live(), n;

	snprintf(dr, sizeof(dr), "%s/%s", root, name);
	make_table(dr, "long", declared);
	for (n = 1;; n++) {
		struct rn_mat *m;
		assert_int_equal(rn_mat_create(&m, &o), 0);
		if (declared)
			declare(m, "long", 1);
		size_t ndefs = m->ndefs;
		rn_mem_fail_after(n);
		int rc = rn_mat_ensure_table(m, "db.s.t");
		int hit = rn_mem_fail_disarm();
		if (rc) {
			if (m->ntables != 0 || m->ndefs != ndefs)
				fail_msg("N = %ld: %zu table(s), %zu declaration(s) after a failed "
					 "open",
					 n, m->ntables, m->ndefs);
			assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
		}
		assert_both(m);
		assert_int_equal(m->ndefs, ndefs + !declared);
		if (declared)
			assert_int_equal(m->tables[1]->nkeys, 1);
		rn_mat_destroy(m);
		assert_int_equal(rn_mem_live(), base);
		if (!hit) {
			assert_int_equal(rc, 0);
			break;
		}
	}
	print_message("open %s: %ld allocations swept\n", name, n);
	assert_true(n > 10);
}

static void test_open_declared_sweep(void **state)
{
	(void)state;
	open_sweep("declared", 1);
}

static void test_open_by_log_sweep(void **state)
{
	(void)state;
	open_sweep("bylog", 0);
}

/* One JSON batch of records (a record list) from `rows` JSON texts. */
static void json_batch(struct rn_buf *b, const char *const *rows, size_t n)
{
	rn_buf_reset(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rn_pb_put_bytes(b, 1, rows[i], strlen(rows[i])), 0);
}

/*
 * rn_mat_table_info (the fleet API's tables page): a partitioned typed table's version,
 * files, rows, partitions and its dead-letter table's rows and latest dead letters (newest
 * first, at most RN_MAT_DEAD_LATEST, samples cut at 512 bytes); dead-letter tables are not
 * listed on their own.
 */
static void test_table_info(void **state)
{
	char dr[300], big[700];
	struct rn_mat *m;
	struct rn_mat_table_info in;
	struct rn_buf b = {0};
	size_t i = 0;
	(void)state;
	snprintf(dr, sizeof(dr), "%s/info", root);
	assert_int_equal(mkdir(dr, 0755), 0);
	struct rn_mat_options o = {.data_root = dr};
	assert_int_equal(rn_mat_create(&m, &o), 0);
	declare(m, "long", 1);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(rn_mat_table_info(m, &i, &in), 0);
	assert_string_equal(in.name, "db.s.t");
	assert_int_equal(in.version, 0);
	assert_int_equal(in.files, 0);
	assert_int_equal(in.rows, 0);
	assert_true(in.has_dlq);
	assert_string_equal(in.dlq_name, "db.s.t_dead_letters");
	assert_int_equal(in.nlatest, 0);
	assert_int_equal(rn_mat_table_info(m, &i, &in), RN_ENOTFOUND); /* the dlq is not listed */

	/* three partitions, one row of them twice; 7 dead letters, the last with a long sample */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	char bad[720];
	snprintf(bad, sizeof(bad), "{\"v\":\"%s\"}", big);
	const char *rows[] = {"{\"v\":1,\"k\":\"a\"}",
			      "{\"v\":2,\"k\":\"b\"}",
			      "{\"v\":3,\"k\":\"a\"}",
			      "{\"v\":4}",
			      "{\"v\":\"d1\"}",
			      "{\"v\":\"d2\"}",
			      "{\"v\":\"d3\"}",
			      "{\"v\":\"d4\"}",
			      "{\"v\":\"d5\"}",
			      "{\"v\":\"d6\"}",
			      bad};
	json_batch(&b, rows, sizeof(rows) / sizeof(rows[0]));
	assert_int_equal(rn_mat_add(m, "db.s.t", "s1", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	i = 0;
	assert_int_equal(rn_mat_table_info(m, &i, &in), 0);
	assert_int_equal(in.version, 1);
	assert_int_equal(in.rows, 4);
	assert_int_equal(in.files, 3);
	assert_int_equal(in.partitions, 3); /* a, b and null */
	assert_true(in.bytes > 0);
	assert_true(in.last_commit_ms > 1600000000000LL);
	assert_int_equal(in.dlq_rows, 7);
	assert_int_equal(in.nlatest, RN_MAT_DEAD_LATEST);
	assert_int_equal(in.latest[0]->sample_len, 512); /* the newest: the long one, cut */
	assert_memory_equal(in.latest[0]->sample, "{\"v\":\"xxx", 9);
	assert_true(in.latest[0]->reason[0] != 0);
	assert_memory_equal(in.latest[1]->sample, "{\"v\":\"d6\"}", in.latest[1]->sample_len);
	assert_memory_equal(in.latest[4]->sample, "{\"v\":\"d3\"}", in.latest[4]->sample_len);
	rn_buf_free(&b);
	rn_mat_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_info),
		cmocka_unit_test(test_conflict_registers_nothing),
		cmocka_unit_test(test_open_declared_sweep),
		cmocka_unit_test(test_open_by_log_sweep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
