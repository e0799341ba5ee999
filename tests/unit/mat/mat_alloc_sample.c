/*
 * Writes tables through allocation-failure sweeps of the materializer and leaves them for
 * readers none of us wrote (tests/integration/mat_alloc_sweep.test.mjs: DuckDB and
 * parquet-wasm). For each operation (rn_mat_add of an envelope table, rn_mat_flush of an
 * envelope table and of a typed table with dead letters) and N = 1, 2, ... until the
 * operation completes without reaching the failure, one table: batches pending, the
 * operation with its Nth allocation failing, the retry, one more batch, a flush, then a
 * restart that replays every batch and flushes again. Prints one JSON line per table:
 * {"table": "<dir relative to data_root>", "typed": 0|1, "s0": <records>, "s1": <records>},
 * each stream holding seqs [0, records) exactly once (a typed table together with its
 * dead-letter table). Exits non-zero if a call that must succeed fails.
 * Usage: mat_alloc_sample <data_root>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mat.h"
#include "rn_buf.h"
#include "rn_mem.h"
#include "refill_log.h"
#include "rn_pbwire.h"
#include "schema.h"

#define PER 20

static const char *const streams[] = {"s0", "s1"};
/* the WAL's part: the batches added, handed back when the materializer refills a table */
static struct refill_log wal;

static void die(const char *what, struct rn_mat *m)
{
	fprintf(stderr, "mat_alloc_sample: %s: %s\n", what, m ? rn_mat_errmsg(m) : "");
	exit(1);
}

/* Batch `off` of a stream: seqs [off * PER, (off + 1) * PER); every 7th v not a number. */
static void batch(struct rn_buf *b, int64_t off)
{
	char payload[128];
	rn_buf_reset(b);
	for (int i = 0; i < PER; i++) {
		struct rn_buf r = {0};
		int64_t q = off * PER + i;
		int len = q % 7 == 3 ? snprintf(payload, sizeof(payload), "{\"v\":\"x\"}")
				     : snprintf(payload, sizeof(payload), "{\"v\":%lld}",
						(long long)q);
		rn_pb_put_str(&r, 1, "dev");
		rn_pb_put_uint(&r, 6, (uint64_t)q);
		rn_pb_put_bytes(&r, 7, payload, (size_t)len);
		rn_pb_put_bytes(b, 1, r.data, r.len);
		rn_buf_free(&r);
	}
}

static int add(struct rn_mat *m, const char *table, int stream, int64_t off)
{
	struct rn_buf b = {0};
	batch(&b, off);
	int rc = refill_log_add(&wal, m, table, streams[stream], off, RN_MAT_PROTO, b.data, b.len,
				NULL);
	rn_buf_free(&b);
	return rc;
}

static struct rn_mat *open_mat(const char *root, const char *table, int typed)
{
	struct rn_mat_options o = {.data_root = root, .refill = refill_log_fn, .refill_ctx = &wal};
	struct rn_mat *m;
	char err[200];
	if (rn_mat_create(&m, &o))
		die("create", NULL);
	if (typed) {
		struct rn_schema *sc = rn_calloc(1, sizeof(*sc));
		if (!sc || rn_schema_add_column(sc, "v", "long", 1, err, sizeof(err)) ||
		    rn_schema_add_column(sc, "seq", "long", 1, err, sizeof(err)) ||
		    rn_schema_add_column(sc, "stream_id", "string", 1, err, sizeof(err)) ||
		    rn_mat_define_table(m, table, sc))
			die("define", m);
	}
	if (rn_mat_ensure_table(m, table))
		die("ensure", m);
	return m;
}

/* One table of the sweep of `op` at n; returns whether the failure was reached. */
static int one(const char *root, const char *op, long n)
{
	int is_add = !strcmp(op, "add_env"), typed = !strcmp(op, "flush_typed");
	int before = is_add ? 1 : 3, last;
	char table[128];
	snprintf(table, sizeof(table), "main.sweep.%s_%ld", op, n);
	struct rn_mat *m = open_mat(root, table, typed);
	for (int k = 0; k < before; k++)
		if (add(m, table, 0, k))
			die("add", m);
	struct rn_buf b = {0};
	batch(&b, before); /* before the failure is armed: only the call may meet it */
	rn_mem_fail_after(n);
	int rc = is_add ? refill_log_add(&wal, m, table, "s0", before, RN_MAT_PROTO, b.data, b.len,
					 NULL)
			: rn_mat_flush(m);
	int hit = rn_mem_fail_disarm();
	if (rc && (is_add ? add(m, table, 0, before) : rn_mat_flush(m)))
		die("retry", m);
	rn_buf_free(&b);
	last = is_add ? before + 1 : before;
	if (add(m, table, 0, last) || add(m, table, 1, 0) || rn_mat_flush(m))
		die("after", m);
	rn_mat_destroy(m);
	m = open_mat(root, table, typed); /* a restart replays every batch */
	for (int k = 0; k <= last; k++)
		if (add(m, table, 0, k))
			die("replay", m);
	if (add(m, table, 1, 0) || rn_mat_pending_bytes(m) || rn_mat_flush(m))
		die("replay", m);
	rn_mat_destroy(m);
	refill_log_clear(&wal);
	printf("{\"table\":\"main/sweep/%s_%ld\",\"typed\":%d,\"s0\":%d,\"s1\":%d}\n", op, n, typed,
	       (last + 1) * PER, PER);
	if (!hit && rc)
		die("failed without reaching the failure", NULL);
	return hit;
}

int main(int argc, char **argv)
{
	const char *ops[] = {"add_env", "flush_env", "flush_typed"};
	if (argc != 2) {
		fprintf(stderr, "usage: mat_alloc_sample <data_root>\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		for (long n = 1; one(argv[1], ops[i], n); n++)
			;
	return 0;
}
