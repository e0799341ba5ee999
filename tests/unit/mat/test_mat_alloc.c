/*
 * The materializer under failure: a batch is added whole or not at all (a failure part way
 * leaves none of its rows, dead letters included, and the client's resend lands once); a
 * typed table whose dead-letter table cannot be opened is not created or registered (the
 * auto_create path: the create fails, the retry starts over, never a NULL dead-letter
 * table); and allocation-failure sweeps of rn_mat_add and rn_mat_flush in the manner of
 * SQLite's malloc tests: for N = 1, 2, ... the Nth allocation fails, failure is switched off
 * and the call retried, until an N where the call completes without reaching the failure.
 * After every N: nothing leaks, every table reads back whole with the project's independent
 * readers (tests/unit/delta/table_check.h), and after the retry, a further batch and a
 * restart that replays every batch, each record is in its table (or its dead-letter table)
 * exactly once, counted by stream and seq. The materializer keeps no copy of pending
 * batches: refill_log.c plays the WAL's part (the batches added, handed back when a table is
 * refilled). RN_SWEEP_LONG=1 uses more and larger batches (tests/README.md).
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
#include "maint.h"
#include "mat.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "partition.h"
#include "refill_log.h"
#include "schema.h"
#include "table_check.h"
#include "testutil.h"

static char root[256];
/* every rn_mat_options here: checkpoints at every other commit (setup) */
static struct rn_delta_maint mt;
static int long_mode;
static long sweep_ops, sweep_runs;
/* the WAL's part: every batch added, handed back when the materializer refills a table */
static struct refill_log wal;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(rn_test_tmpdir(root, sizeof(root), "mat-alloc"), 0);
	long_mode = getenv("RN_SWEEP_LONG") && atoi(getenv("RN_SWEEP_LONG")) > 0;
	/* checkpoints at every other commit, so that flushes run them too */
	mt = rn_maint_defaults;
	mt.checkpoint_interval = 2;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	print_message("mat sweep: %ld operations x N, %ld runs in all\n", sweep_ops, sweep_runs);
	return rn_test_rmtree(root);
}

static void rm_rf(const char *dir)
{
	assert_int_equal(rn_test_rmtree(dir), 0);
}

/*
 * A batch of n runnel.v1.Record envelopes with seqs [from, from + n): payload {"v":seq} with
 * `pad` bytes of text, except every 7th record, whose v is not a number (a dead letter in a
 * typed table with v long).
 */
static void batch(struct rn_buf *b, int64_t from, int n, size_t pad, int part)
{
	char payload[8192];
	rn_buf_reset(b);
	for (int i = 0; i < n; i++) {
		struct rn_buf r = {0};
		int64_t q = from + i;
		int len = q % 7 == 3 ? snprintf(payload, sizeof(payload), "{\"v\":\"x\",\"p\":\"")
				     : snprintf(payload, sizeof(payload), "{\"v\":%lld,\"p\":\"",
						(long long)q);
		for (size_t k = 0; k < pad && len + 3 < (int)sizeof(payload); k++)
			payload[len++] = (char)('a' + (q + (int64_t)k) % 26);
		len += snprintf(payload + len, sizeof(payload) - (size_t)len, "\"");
		if (part) /* the partition value: three partitions */
			len += snprintf(payload + len, sizeof(payload) - (size_t)len,
					",\"k\":\"%c\"", (char)('a' + q % 3));
		len += snprintf(payload + len, sizeof(payload) - (size_t)len, "}");
		rn_pb_put_str(&r, 1, "dev");
		rn_pb_put_uint(&r, 6, (uint64_t)q);
		rn_pb_put_bytes(&r, 7, payload, (size_t)len);
		rn_pb_put_bytes(b, 1, r.data, r.len);
		rn_buf_free(&r);
	}
}

/* The typed table: v long, seq long, stream_id string, p string (seq and stream_id come
 * from the envelope and the stream); partitioned: and k string, its partition column. */
static void define_typed(struct rn_mat *m, const char *name, int part)
{
	const char *const pcols[] = {"k"};
	struct rn_part_spec spec = {pcols, 1, NULL, 0};
	struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
	char err[200];
	assert_non_null(sc);
	assert_int_equal(rn_schema_add_column(sc, "v", "long", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "seq", "long", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "stream_id", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(sc, "p", "string", 1, err, sizeof(err)), 0);
	if (part)
		assert_int_equal(rn_schema_add_column(sc, "k", "string", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_mat_define_table_ex(m, name, sc, part ? &spec : NULL), 0);
}

static const char *const streams[] = {"s0", "s1"};

/* Counts the records of table (a.b under data_root) and, for a typed table, of its
 * dead-letter table; every table must read back whole. Returns the rows. */
static int64_t count_table(const char *data_root, const char *table, int typed,
			   struct rn_tc_counts *c)
{
	char dir[600], why[700];
	int64_t v, rows = 0;
	memset(c->n, 0, sizeof(int) * c->nstreams * (size_t)c->nseq);
	c->unknown = 0;
	for (int k = 0; k <= typed; k++) {
		snprintf(dir, sizeof(dir), "%s/%s%s", data_root, table, k ? "_dead_letters" : "");
		for (char *p = dir + strlen(data_root); *p; p++)
			if (*p == '.')
				*p = '/';
		if (rn_tc_check(dir, rn_tc_count, c, &v, why, sizeof(why)))
			fail_msg("%s", why);
	}
	for (size_t i = 0; i < c->nstreams * (size_t)c->nseq; i++) {
		if (c->n[i] > 1)
			fail_msg("%s: stream %s seq %zu is there %d times", table,
				 c->streams[i / (size_t)c->nseq], i % (size_t)c->nseq, c->n[i]);
		rows += c->n[i];
	}
	assert_int_equal(c->unknown, 0);
	return rows;
}

/* Every record of seqs [0, upto) of stream s, and none past it. */
static void assert_once(const struct rn_tc_counts *c, size_t s, int64_t upto)
{
	for (int64_t q = 0; q < c->nseq; q++)
		if (c->n[s * (size_t)c->nseq + (size_t)q] != (q < upto))
			fail_msg("stream %s seq %lld: %d rows", c->streams[s], (long long)q,
				 c->n[s * (size_t)c->nseq + (size_t)q]);
}

/* The sweeps' workload: batches of `per` records with `pad` bytes of payload text, on
 * streams s0 and s1, offset k holding seqs [k * per, (k + 1) * per). */
struct load {
	int per;
	size_t pad;
	int nbatches; /* batches added before the operation */
	int part;     /* the typed table is partitioned */
};

static void add_batch(struct rn_mat *m, const char *table, const struct load *ld, int stream,
		      int64_t off, int expect)
{
	struct rn_buf b = {0};
	batch(&b, off * ld->per, ld->per, ld->pad, ld->part);
	assert_int_equal(refill_log_add(&wal, m, table, streams[stream], off, RN_MAT_PROTO, b.data,
					b.len, NULL),
			 expect);
	rn_buf_free(&b);
}

/* After the operation and its retry: one more batch, then a restart that replays every
 * batch (the WAL's job), and every record is there exactly once. */
static void finish_and_replay(struct rn_mat **mp, const char *data_root, const char *table,
			      int typed, const struct load *ld, int last, struct rn_tc_counts *c)
{
	struct rn_mat_options o = {
		.maint = &mt, .data_root = data_root, .refill = refill_log_fn, .refill_ctx = &wal};
	int64_t upto = (int64_t)(last + 1) * ld->per;

	add_batch(*mp, table, ld, 0, last, 0);
	add_batch(*mp, table, ld, 1, 0, 0);
	assert_int_equal(rn_mat_flush(*mp), 0);
	count_table(data_root, table, typed, c);
	assert_once(c, 0, upto);
	assert_once(c, 1, ld->per);
	rn_mat_destroy(*mp);
	assert_int_equal(rn_mat_create(mp, &o), 0);
	if (typed)
		define_typed(*mp, table, ld->part);
	for (int k = 0; k <= last; k++)
		add_batch(*mp, table, ld, 0, k, 0);
	add_batch(*mp, table, ld, 1, 0, 0);
	assert_int_equal(rn_mat_pending_bytes(*mp), 0);
	assert_int_equal(rn_mat_flush(*mp), 0);
	count_table(data_root, table, typed, c);
	assert_once(c, 0, upto);
	assert_once(c, 1, ld->per);
}

/*
 * rn_mat_add of batch `nbatches` (after nbatches batches already pending) with its Nth
 * allocation failing. A failed add must leave no row of that batch: the resend adds it
 * once. (Case: a 50-record batch failing part way used to leave its first rows behind.)
 */
static void sweep_add(const char *table, int typed, const struct load *ld)
{
	int cnt[2 * 64 * 60];
	struct rn_tc_counts c = {streams, 2, (int64_t)(ld->nbatches + 2) * ld->per, cnt, 0};
	long base = rn_mem_live();
	assert_true((size_t)c.nseq * 2 <= sizeof(cnt) / sizeof(cnt[0]));

	for (long n = 1;; n++) {
		char dr[400];
		struct rn_mat *m;
		struct rn_mat_options o = {
			.maint = &mt, .data_root = dr, .refill = refill_log_fn, .refill_ctx = &wal};
		struct rn_buf b = {0};

		snprintf(dr, sizeof(dr), "%s/add-%s-%ld", root, table, n);
		assert_int_equal(mkdir(dr, 0755), 0);
		assert_int_equal(rn_mat_create(&m, &o), 0);
		if (typed)
			define_typed(m, table, ld->part);
		assert_int_equal(rn_mat_ensure_table(m, table), 0);
		for (int k = 0; k < ld->nbatches; k++)
			add_batch(m, table, ld, 0, k, 0);
		batch(&b, (int64_t)ld->nbatches * ld->per, ld->per, ld->pad, ld->part);
		long refills = wal.refills;
		rn_mem_fail_after(n);
		int rc = refill_log_add(&wal, m, table, "s0", ld->nbatches, RN_MAT_PROTO, b.data,
					b.len, NULL);
		int hit = rn_mem_fail_disarm();
		if (rc) {
			assert_int_equal(rc, RN_ENOMEM);
			/* no copy in the materializer: the table was refilled from the log */
			assert_true(wal.refills > refills);
			/* the client sends the batch again */
			assert_int_equal(refill_log_add(&wal, m, table, "s0", ld->nbatches,
							RN_MAT_PROTO, b.data, b.len, NULL),
					 0);
		}
		rn_buf_free(&b);
		finish_and_replay(&m, dr, table, typed, ld, ld->nbatches + 1, &c);
		rn_mat_destroy(m);
		refill_log_clear(&wal);
		assert_int_equal(rn_mem_live(), base);
		rm_rf(dr);
		sweep_runs++;
		if (!hit) {
			assert_int_equal(rc, 0);
			print_message("add %s: %ld allocations swept\n", table, n);
			break;
		}
	}
	sweep_ops++;
}

/*
 * rn_mat_flush with its Nth allocation failing, after batches on two streams (and, for the
 * typed table, dead letters). Whatever the flush committed reads back whole and holds no
 * record twice; the retry commits the rest.
 */
static void sweep_flush(const char *table, int typed, const struct load *ld, int flushes)
{
	int cnt[2 * 64 * 60];
	struct rn_tc_counts c = {streams, 2, (int64_t)(ld->nbatches * flushes + 2) * ld->per, cnt,
				 0};
	long base = rn_mem_live();
	assert_true((size_t)c.nseq * 2 <= sizeof(cnt) / sizeof(cnt[0]));

	for (long n = 1;; n++) {
		char dr[400];
		struct rn_mat *m;
		struct rn_mat_options o = {
			.maint = &mt, .data_root = dr, .refill = refill_log_fn, .refill_ctx = &wal};
		int rc = 0, hit = 0, k = 0;

		snprintf(dr, sizeof(dr), "%s/flush-%s-%ld", root, table, n);
		assert_int_equal(mkdir(dr, 0755), 0);
		assert_int_equal(rn_mat_create(&m, &o), 0);
		if (typed)
			define_typed(m, table, ld->part);
		assert_int_equal(rn_mat_ensure_table(m, table), 0);
		/* earlier flushes without failure (so the failing one may run a checkpoint) */
		for (int f = 0; f < flushes; f++) {
			for (int i = 0; i < ld->nbatches; i++, k++)
				add_batch(m, table, ld, 0, k, 0);
			if (f + 1 < flushes)
				assert_int_equal(rn_mat_flush(m), 0);
		}
		rn_mem_fail_after(n);
		rc = rn_mat_flush(m);
		hit = rn_mem_fail_disarm();
		/* what is visible now is whole and holds nothing twice */
		count_table(dr, table, typed, &c);
		if (rc)
			assert_int_equal(rn_mat_flush(m), 0);
		count_table(dr, table, typed, &c);
		assert_once(&c, 0, (int64_t)k * ld->per);
		finish_and_replay(&m, dr, table, typed, ld, k, &c);
		rn_mat_destroy(m);
		refill_log_clear(&wal);
		assert_int_equal(rn_mem_live(), base);
		rm_rf(dr);
		sweep_runs++;
		if (!hit) {
			assert_int_equal(rc, 0);
			print_message("flush %s (%d flushes): %ld allocations swept\n", table,
				      flushes, n);
			break;
		}
	}
	sweep_ops++;
}

static void test_add_sweep(void **state)
{
	(void)state;
	/* 50 records after 10 pending; the long mode adds batches of 1 KB payloads so that the
	 * failing batch cuts pages too */
	struct load small = {50, 8, 1, 0};
	struct load big = {60, 1000, 30, 0};
	struct load part = {50, 8, 1, 1};
	sweep_add("db.s.env", 0, &small);
	sweep_add("db.s.typed", 1, &small);
	sweep_add("db.s.part", 1, &part);
	/* allocations happen where buffers grow: after several pending sizes, so that the
	 * failing batch meets growth, page cuts and row group ends at different points */
	for (int nb = 1; long_mode && nb <= 30; nb = nb * 2 + 1) {
		big.nbatches = nb;
		sweep_add("db.s.env", 0, &big);
		sweep_add("db.s.typed", 1, &big);
		big.part = 1;
		sweep_add("db.s.part", 1, &big);
		big.part = 0;
	}
}

static void test_flush_sweep(void **state)
{
	(void)state;
	struct load small = {20, 8, 2, 0};
	struct load big = {60, 1000, 10, 0};
	struct load part = {20, 8, 2, 1};
	sweep_flush("db.s.env", 0, &small, 1);
	sweep_flush("db.s.typed", 1, &small, 1);
	sweep_flush("db.s.part", 1, &part, 1);
	sweep_flush("db.s.env", 0, &small, 2); /* its commit is due a checkpoint */
	if (long_mode) {
		sweep_flush("db.s.env", 0, &big, 2);
		sweep_flush("db.s.typed", 1, &big, 2);
		big.part = 1;
		sweep_flush("db.s.part", 1, &big, 2);
	}
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
	struct rn_mat_options o = {.data_root = dr, .maint = &mt};
	struct rn_buf d = {0}, b = {0};
	const char *rec_ok = "{\"v\":1,\"seq\":0}", *rec_bad = "{\"v\":\"x\",\"seq\":1}";
	(void)state;

	snprintf(dr, sizeof(dr), "%s/dlq", root);
	snprintf(path, sizeof(path), "%s/db", dr);
	assert_int_equal(mkdir(dr, 0755), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/db/s", dr);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/db/s/t_dead_letters", dr);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	row_descriptor(&d);
	rn_pb_put_bytes(&b, 1, rec_ok, strlen(rec_ok));
	rn_pb_put_bytes(&b, 1, rec_bad, strlen(rec_bad));

	assert_int_equal(rn_mat_create(&m, &o), 0);
	/* the server's CreateIngestStream with auto_create, twice (the client retries) */
	for (int attempt = 0; attempt < 2; attempt++) {
		assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 0);
		assert_int_not_equal(rn_mat_create_from_descriptor(m, "db.s.t", d.data, d.len), 0);
		assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 0);
		assert_int_not_equal(
			rn_mat_add(m, "db.s.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	}
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rn_mat_create_from_descriptor(m, "db.s.t", d.data, d.len), 0);
	assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 1);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	/* one row in each (the table has no stream_id column, the dead letter no seq) */
	int64_t rows[2] = {0, 0}, v;
	char why[700];
	snprintf(path, sizeof(path), "%s/db/s/t", dr);
	assert_int_equal(rn_tc_check(path, count_rows, &rows[0], &v, why, sizeof(why)), 0);
	snprintf(path, sizeof(path), "%s/db/s/t_dead_letters", dr);
	assert_int_equal(rn_tc_check(path, count_rows, &rows[1], &v, why, sizeof(why)), 0);
	assert_int_equal(rows[0], 1);
	assert_int_equal(rows[1], 1);
	rn_mat_destroy(m);

	/* a restart: the table is typed by its log and finds its dead-letter table */
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_add(m, "db.s.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL), 0);
	assert_int_equal(rn_mat_pending_bytes(m), 0);
	rn_mat_destroy(m);
	rn_buf_free(&d);
	rn_buf_free(&b);
}

/* A PROTO batch of Row {v, seq} records. */
static void row_batch(struct rn_buf *b, int64_t v, int n)
{
	rn_buf_reset(b);
	for (int i = 0; i < n; i++) {
		struct rn_buf r = {0};
		rn_pb_put_uint(&r, 1, (uint64_t)v);
		rn_pb_put_uint(&r, 2, (uint64_t)i);
		rn_pb_put_bytes(b, 1, r.data, r.len);
		rn_buf_free(&r);
	}
}

/*
 * Streams' descriptors are found by id through a map (issue 13: a look-up per batch, not a
 * scan of every stream of the table): forgetting streams (the middle one, the last one)
 * moves others inside the table's array, whose look-ups must still find their own plans;
 * a forgotten stream has none; registering with its Nth allocation failing leaves the
 * stream without a plan and nothing leaked, and the retry works.
 */
static void test_stream_plans(void **state)
{
	char dr[400], path[600], why[700], id[32];
	struct rn_mat *m;
	struct rn_mat_options o = {.data_root = dr, .maint = &mt};
	struct rn_buf d = {0}, b = {0};
	int64_t rows = 0, v;
	(void)state;

	snprintf(dr, sizeof(dr), "%s/plans", root);
	assert_int_equal(mkdir(dr, 0755), 0);
	row_descriptor(&d);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_create_from_descriptor(m, "db.s.t", d.data, d.len), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(rn_mat_stream_descriptor(m, "db.s.t", id, d.data, d.len), 0);
	}
	/* again for one: replaced, not added twice */
	assert_int_equal(rn_mat_stream_descriptor(m, "db.s.t", "s3", d.data, d.len), 0);
	rn_mat_stream_forget(m, "s5");  /* the last one moves into its place */
	rn_mat_stream_forget(m, "s39"); /* the last one */
	rn_mat_stream_forget(m, "nope");
	row_batch(&b, 7, 3);
	/* (a stream without a descriptor has its records in the dead letters) */
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(rn_mat_add(m, "db.s.t", id, 0, RN_MAT_PROTO, b.data, b.len, NULL),
				 0);
	}
	/* a registration whose Nth allocation fails: no plan, nothing leaked, retry works */
	long fails = 0;
	for (long n = 1;; n++) {
		long live = rn_mem_live();
		snprintf(id, sizeof(id), "f%ld", n);
		rn_mem_fail_after(n);
		int rc = rn_mat_stream_descriptor(m, "db.s.t", id, d.data, d.len);
		int hit = rn_mem_fail_disarm();
		if (!hit) {
			assert_int_equal(rc, 0);
			rn_mat_stream_forget(m, id);
			break;
		}
		assert_int_equal(rc, RN_ENOMEM);
		assert_int_equal(rn_mem_live(), live);
		fails++;
		/* no plan: its records are dead letters */
		assert_int_equal(rn_mat_add(m, "db.s.t", id, 0, RN_MAT_PROTO, b.data, b.len, NULL),
				 0);
		assert_int_equal(rn_mat_stream_descriptor(m, "db.s.t", id, d.data, d.len), 0);
		rn_mat_stream_forget(m, id);
		/* a stream registered after the failure decodes with its plan */
		snprintf(id, sizeof(id), "g%ld", n);
		assert_int_equal(rn_mat_stream_descriptor(m, "db.s.t", id, d.data, d.len), 0);
		assert_int_equal(rn_mat_add(m, "db.s.t", id, 0, RN_MAT_PROTO, b.data, b.len, NULL),
				 0);
		rn_mat_stream_forget(m, id);
	}
	assert_int_equal(rn_mat_flush(m), 0);
	snprintf(path, sizeof(path), "%s/db/s/t", dr);
	if (rn_tc_check(path, count_rows, &rows, &v, why, sizeof(why)))
		fail_msg("%s", why);
	assert_true(fails >= 2);
	assert_int_equal(rows, 38 * 3 + 3 * fails);
	rows = 0;
	snprintf(path, sizeof(path), "%s/db/s/t_dead_letters", dr);
	if (rn_tc_check(path, count_rows, &rows, &v, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(rows, 2 * 3 + 3 * fails); /* s5, s39 and each failed registration */
	rn_mat_destroy(m);
	rn_buf_free(&d);
	rn_buf_free(&b);
	rm_rf(dr);
}

/*
 * The auto_create of a typed table (rn_mat_create_from_descriptor) with its Nth allocation
 * failing: a failed create registers nothing and leaves on disk only what was durable (the
 * dead-letter table first, then the typed table), the retry creates or opens it, and its
 * records and dead letters land once.
 */
static void test_create_sweep(void **state)
{
	struct rn_buf d = {0}, b = {0};
	const char *rec_ok = "{\"v\":1,\"seq\":0}", *rec_bad = "{\"v\":\"x\",\"seq\":1}";
	long base = rn_mem_live();
	(void)state;

	row_descriptor(&d);
	rn_pb_put_bytes(&b, 1, rec_ok, strlen(rec_ok));
	rn_pb_put_bytes(&b, 1, rec_bad, strlen(rec_bad));
	for (long n = 1;; n++) {
		char dr[400], path[600], why[700];
		struct rn_mat *m;
		struct rn_mat_options o = {.data_root = dr, .maint = &mt};
		int64_t rows[2] = {0, 0}, v;

		snprintf(dr, sizeof(dr), "%s/create-%ld", root, n);
		assert_int_equal(mkdir(dr, 0755), 0);
		assert_int_equal(rn_mat_create(&m, &o), 0);
		rn_mem_fail_after(n);
		int rc = rn_mat_create_from_descriptor(m, "db.s.t", d.data, d.len);
		int hit = rn_mem_fail_disarm();
		if (rc) {
			/* nothing registered; on disk at most what was durable (the dead-letter
			 * table, and the typed table when only later steps failed) */
			char p0[600];
			snprintf(p0, sizeof(p0), "%s/db/s/t/_delta_log/%020d.json", dr, 0);
			assert_int_equal(rn_mat_table_exists(m, "db.s.t"), access(p0, F_OK) == 0);
			assert_int_equal(rn_mat_create_from_descriptor(m, "db.s.t", d.data, d.len),
					 0);
		}
		assert_int_equal(rn_mat_table_exists(m, "db.s.t"), 1);
		assert_int_equal(rn_mat_add(m, "db.s.t", "s0", 0, RN_MAT_JSON, b.data, b.len, NULL),
				 0);
		assert_int_equal(rn_mat_flush(m), 0);
		snprintf(path, sizeof(path), "%s/db/s/t", dr);
		if (rn_tc_check(path, count_rows, &rows[0], &v, why, sizeof(why)))
			fail_msg("%s", why);
		snprintf(path, sizeof(path), "%s/db/s/t_dead_letters", dr);
		if (rn_tc_check(path, count_rows, &rows[1], &v, why, sizeof(why)))
			fail_msg("%s", why);
		if (rows[0] != 1 || rows[1] != 1)
			fail_msg("N = %ld (create %d): %lld row(s), %lld dead letter(s)", n, rc,
				 (long long)rows[0], (long long)rows[1]);
		rn_mat_destroy(m);
		assert_int_equal(rn_mem_live(), base + 2); /* d and b */
		rm_rf(dr);
		sweep_runs++;
		if (!hit) {
			assert_int_equal(rc, 0);
			print_message("create (auto_create): %ld allocations swept\n", n);
			break;
		}
	}
	sweep_ops++;
	rn_buf_free(&d);
	rn_buf_free(&b);
}

/*
 * rn_mat_drop_pending: a batch the materializer took but the caller could not log (its WAL
 * append failed) is taken back: the table is rebuilt from the log at the next flush, so the
 * batch is not committed behind its refusal, and the logged batches are there once; the
 * stream's offset is free for the resend, which lands once.
 */
static void test_drop_pending(void **state)
{
	char dr[400];
	struct rn_mat *m;
	struct rn_mat_options o = {
		.maint = &mt, .data_root = dr, .refill = refill_log_fn, .refill_ctx = &wal};
	struct load ld = {.per = 4, .pad = 8};
	struct rn_buf b = {0};
	int seen[2 * 8] = {0};
	struct rn_tc_counts c = {streams, 2, 8, seen, 0};
	(void)state;

	snprintf(dr, sizeof(dr), "%s/drop", root);
	assert_int_equal(mkdir(dr, 0755), 0);
	refill_log_clear(&wal);
	assert_int_equal(rn_mat_create(&m, &o), 0);
	assert_int_equal(rn_mat_ensure_table(m, "db.s.t"), 0);
	assert_int_equal(rn_mat_drop_pending(m, "db.s.nope"), RN_ENOTFOUND);
	add_batch(m, "db.s.t", &ld, 0, 0, 0); /* logged */
	/* taken, not logged: the WAL append that follows it failed */
	batch(&b, 0, ld.per, ld.pad, 0);
	assert_int_equal(rn_mat_add(m, "db.s.t", streams[1], 0, RN_MAT_PROTO, b.data, b.len, NULL),
			 0);
	long refills = wal.refills;
	assert_int_equal(rn_mat_drop_pending(m, "db.s.t"), 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(wal.refills, refills + 1);
	assert_int_equal(count_table(dr, "db.s.t", 0, &c), ld.per);
	assert_once(&c, 0, ld.per);
	assert_once(&c, 1, 0);
	/* the resend of the dropped batch, logged this time, lands once */
	add_batch(m, "db.s.t", &ld, 1, 0, 0);
	assert_int_equal(rn_mat_flush(m), 0);
	assert_int_equal(count_table(dr, "db.s.t", 0, &c), 2 * ld.per);
	assert_once(&c, 0, ld.per);
	assert_once(&c, 1, ld.per);
	rn_mat_destroy(m);
	refill_log_clear(&wal);
	rn_buf_free(&b);
	rm_rf(dr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dead_letter_open_fails),
		cmocka_unit_test(test_create_sweep),
		cmocka_unit_test(test_stream_plans),
		cmocka_unit_test(test_add_sweep),
		cmocka_unit_test(test_flush_sweep),
		cmocka_unit_test(test_drop_pending),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
