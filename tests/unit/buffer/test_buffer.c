/*
 * Unit tests for buffer/: stream get-or-create, offsets and seq across reopen (the "crash"),
 * chunk + checkpoint in one transaction, checkpoint-only commits, ack deletion and byte
 * accounting, the byte cap (RN_EFULL), server ids, and recovery from a corrupt file
 * (garbage, and a real database with damaged pages): open must succeed with a fresh buffer
 * and the old file moved aside as <name>.corrupt-<time>.
 */
#include <dirent.h>
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
#include <sqlite3.h>

#include "buffer.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "testutil.h"

static char dir[512];

static void mkpath(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(dir, sizeof(dir), "buffer");
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(dir);
}

static struct rn_buffer *open_buf(const char *name, int64_t max, int *recovered)
{
	char path[600];
	struct rn_buffer *b;
	struct rn_buffer_options o = {.sync_full = 0, .max_bytes = max};
	mkpath(path, sizeof(path), name);
	o.path = path;
	int rc = rn_buffer_open(&b, &o, recovered);
	if (rc)
		fail_msg("open %s: %d", path, rc);
	return b;
}

static void test_streams_and_reopen(void **state)
{
	struct rn_buffer_stream s, s2;
	struct rn_buf out = {0};
	(void)state;
	struct rn_buffer *b = open_buf("a.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "app", "main.default.t", &s), 0);
	assert_true(s.id > 0);
	assert_int_equal(s.next_offset, 0);
	assert_int_equal(s.next_seq, 0);
	assert_int_equal(s.acked, -1);
	assert_string_equal(s.server_id, "");
	assert_int_equal(rn_buffer_stream_get(b, "other", "main.default.t", &s2), 0);
	assert_int_not_equal(s.id, s2.id);

	struct rn_buffer_ckpt k = {"app", "pos=42", 6};
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 10, 10, "hello", 5, &k, 1), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 1, 15, 5, "world!", 6, NULL, 0), 0);
	assert_int_equal(rn_buffer_bytes(b), 11);
	assert_int_equal(rn_buffer_set_server_id(b, s.id, "srv-1"), 0);
	rn_buffer_close(b);

	b = open_buf("a.db", 0, NULL);
	assert_int_equal(rn_buffer_bytes(b), 11);
	assert_int_equal(rn_buffer_stream_get(b, "app", "main.default.t", &s), 0);
	assert_int_equal(s.next_offset, 2);
	assert_int_equal(s.next_seq, 15);
	assert_int_equal(s.bytes, 11);
	assert_string_equal(s.server_id, "srv-1");
	assert_int_equal(rn_buffer_stream_load(b, s.id, &s2), 0);
	assert_string_equal(s2.name, "app");
	assert_int_equal(rn_buffer_stream_load(b, 9999, &s2), RN_ENOTFOUND);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 1, &out), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "world!", 6);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 2, &out), RN_ENOTFOUND);
	rn_buf_reset(&out);
	assert_int_equal(rn_buffer_checkpoint_load(b, "app", &out), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "pos=42", 6);
	assert_int_equal(rn_buffer_checkpoint_load(b, "nope", &out), RN_ENOTFOUND);

	/* ack: deletes <= acked, keeps the rest, never lowers acked */
	assert_int_equal(rn_buffer_ack(b, s.id, 0), 0);
	assert_int_equal(rn_buffer_bytes(b), 6);
	rn_buf_reset(&out);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 0, &out), RN_ENOTFOUND);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 1, &out), 0);
	assert_int_equal(rn_buffer_ack(b, s.id, 1), 0);
	assert_int_equal(rn_buffer_ack(b, s.id, 0), 0);
	assert_int_equal(rn_buffer_bytes(b), 0);
	assert_int_equal(rn_buffer_stream_get(b, "app", "main.default.t", &s), 0);
	assert_int_equal(s.acked, 1);
	assert_int_equal(s.bytes, 0);
	rn_buffer_close(b);
	rn_buf_free(&out);
}

/* A failed commit (duplicate offset) writes neither the chunk nor the checkpoint. */
static void test_atomic_commit(void **state)
{
	struct rn_buffer_stream s;
	struct rn_buf out = {0};
	(void)state;
	struct rn_buffer *b = open_buf("b.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "src", "t", &s), 0);
	struct rn_buffer_ckpt k1 = {"src", "one", 3};
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 1, 1, "a", 1, &k1, 1), 0);
	struct rn_buffer_ckpt k2 = {"src", "two", 3};
	/* a repeat, a gap and an unknown stream: RN_EINVAL, neither chunk nor checkpoint */
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 2, 1, "b", 1, &k2, 1), RN_EINVAL);
	assert_int_equal(rn_buffer_commit(b, s.id, 2, 2, 1, "b", 1, &k2, 1), RN_EINVAL);
	assert_int_equal(rn_buffer_commit(b, 777, 0, 1, 1, "b", 1, &k2, 1), RN_EINVAL);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 2, &out), RN_ENOTFOUND);
	assert_int_equal(rn_buffer_checkpoint_load(b, "src", &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "one", 3);
	assert_int_equal(rn_buffer_bytes(b), 1);
	/* a checkpoint alone */
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 0, 0, NULL, 0, &k2, 1), 0);
	rn_buffer_close(b);

	/* after reopen (the "crash"), state is exactly the committed one */
	b = open_buf("b.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "src", "t", &s), 0);
	assert_int_equal(s.next_offset, 1);
	assert_int_equal(s.next_seq, 1);
	rn_buf_reset(&out);
	assert_int_equal(rn_buffer_checkpoint_load(b, "src", &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "two", 3);
	assert_int_equal(rn_buffer_commit(b, s.id, 1, 3, 2, "bb", 2, NULL, 0), 0);
	rn_buf_reset(&out);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 0, &out), 0);
	assert_memory_equal(out.data, "a", 1);
	rn_buffer_close(b);
	rn_buf_free(&out);
}

/* Several streams' chunks and the checkpoint in one transaction: all or nothing. */
static void test_commit_many(void **state)
{
	struct rn_buffer_stream a, c;
	struct rn_buf out = {0};
	(void)state;
	struct rn_buffer *b = open_buf("m.db", 1000, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "src", "t1", &a), 0);
	assert_int_equal(rn_buffer_stream_get(b, "src/can", "t2", &c), 0);
	struct rn_buffer_ckpt k = {"src", "p1", 2};
	struct rn_buffer_chunk ok[] = {{a.id, 0, 3, 3, "aaa", 3}, {c.id, 0, 2, 2, "cc", 2}};
	assert_int_equal(rn_buffer_commit_many(b, ok, 2, &k, 1), 0);
	assert_int_equal(rn_buffer_bytes(b), 5);
	/* the second chunk is a gap: neither chunk nor the checkpoint is written */
	struct rn_buffer_ckpt k2 = {"src", "p2", 2};
	struct rn_buffer_chunk bad[] = {{a.id, 1, 4, 1, "x", 1}, {c.id, 5, 3, 1, "y", 1}};
	assert_int_equal(rn_buffer_commit_many(b, bad, 2, &k2, 1), RN_EINVAL);
	assert_int_equal(rn_buffer_chunk_get(b, a.id, 1, &out), RN_ENOTFOUND);
	assert_int_equal(rn_buffer_checkpoint_load(b, "src", &out), 0);
	assert_memory_equal(out.data, "p1", 2);
	assert_int_equal(rn_buffer_bytes(b), 5);
	/* the cap applies to the sum */
	static char blob[600];
	struct rn_buffer_chunk big[] = {{a.id, 1, 4, 1, blob, 600}, {c.id, 1, 3, 1, blob, 600}};
	assert_int_equal(rn_buffer_commit_many(b, big, 2, &k2, 1), RN_EFULL);
	assert_int_equal(rn_buffer_commit_many(b, big, 1, &k2, 1), 0);
	rn_buffer_close(b);
	b = open_buf("m.db", 1000, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "src/can", "t2", &c), 0);
	assert_int_equal(rn_buffer_stream_get(b, "src", "t1", &a), 0);
	assert_int_equal(a.next_offset, 2);
	assert_int_equal(a.next_seq, 4);
	assert_int_equal(c.next_offset, 1);
	assert_int_equal(c.next_seq, 2);
	rn_buf_reset(&out);
	assert_int_equal(rn_buffer_checkpoint_load(b, "src", &out), 0);
	assert_memory_equal(out.data, "p2", 2);
	rn_buffer_close(b);
	rn_buf_free(&out);
}

static void test_cap(void **state)
{
	struct rn_buffer_stream s;
	char blob[100] = {0};
	(void)state;
	struct rn_buffer *b = open_buf("c.db", 250, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "s", "t", &s), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 1, 1, blob, 100, NULL, 0), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 1, 2, 1, blob, 100, NULL, 0), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 2, 3, 1, blob, 100, NULL, 0), RN_EFULL);
	assert_int_equal(rn_buffer_bytes(b), 200);
	/* a checkpoint alone is never refused */
	struct rn_buffer_ckpt k = {"s", "x", 1};
	assert_int_equal(rn_buffer_commit(b, s.id, 0, 0, 0, NULL, 0, &k, 1), 0);
	assert_int_equal(rn_buffer_ack(b, s.id, 0), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 2, 3, 1, blob, 100, NULL, 0), 0);
	assert_int_equal(rn_buffer_bytes(b), 200);
	/* an empty buffer accepts one chunk larger than the cap */
	assert_int_equal(rn_buffer_ack(b, s.id, 2), 0);
	assert_int_equal(rn_buffer_bytes(b), 0);
	char big[400] = {0};
	assert_int_equal(rn_buffer_commit(b, s.id, 3, 4, 1, big, sizeof(big), NULL, 0), 0);
	assert_int_equal(rn_buffer_commit(b, s.id, 4, 5, 1, blob, 100, NULL, 0), RN_EFULL);
	rn_buffer_close(b);
}

/* Test tombstone: "T" + why + the victim's offset, so the test can see which chunk it is. */
static int tomb(void *ctx, const struct rn_buffer_victim *v, int why, struct rn_buf *out)
{
	char t[64];
	int *calls = ctx;
	(*calls)++;
	snprintf(t, sizeof(t), "T%d:%lld:%lld:%u", why, (long long)v->offset, (long long)v->seq0,
		 v->nrec);
	return rn_buf_append(out, t, strlen(t));
}

static void expect_chunk(struct rn_buffer *b, int stream, int64_t off, const char *want)
{
	struct rn_buf out = {0};
	assert_int_equal(rn_buffer_chunk_get(b, stream, off, &out), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	rn_buf_free(&out);
}

/* len bytes that differ per chunk (n) and per position */
static char *big_chunk(int n, size_t len)
{
	char *c = malloc(len);
	assert_non_null(c);
	for (size_t i = 0; i < len; i++)
		c[i] = (char)(i * 31 + (size_t)n * 7 + (i >> 13));
	return c;
}

static void expect_big(struct rn_buffer *b, int stream, int64_t off, const char *want, size_t len)
{
	struct rn_buf out = {0};
	assert_int_equal(rn_buffer_chunk_get(b, stream, off, &out), 0);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, want, len);
	rn_buf_free(&out);
}

static int user_version(const char *name)
{
	char path[600];
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;
	mkpath(path, sizeof(path), name);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static size_t chunk_len(struct rn_buffer *b, int stream, int64_t off)
{
	struct rn_buf out = {0};
	assert_int_equal(rn_buffer_chunk_get(b, stream, off, &out), 0);
	size_t n = out.len;
	rn_buf_free(&out);
	return n;
}

/* Sets every chunk's stored time (wall clock, us), as a clock jump would. */
static void set_created(const char *name, int64_t us)
{
	char path[600], stmt[128];
	sqlite3 *db;
	mkpath(path, sizeof(path), name);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(stmt, sizeof(stmt), "UPDATE chunks SET created_us = %lld", (long long)us);
	assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* drop_oldest: the oldest chunks over all streams become tombstones at the same offsets,
 * enough bytes are freed, counts are kept per stream and survive a reopen, and the commit
 * that did not fit then fits. */
static void test_drop_oldest(void **state)
{
	struct rn_buffer_stream a, c;
	char blob[1000];
	int calls = 0;
	uint64_t recs = 0;
	(void)state;
	memset(blob, 'd', sizeof(blob));
	struct rn_buffer *b = open_buf("drop.db", 4000, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "a", "t", &a), 0);
	assert_int_equal(rn_buffer_stream_get(b, "c", "t", &c), 0);
	/* a0 (10 records), c0 (5), a1 (10), c1 (5): stored in that order */
	assert_int_equal(rn_buffer_commit(b, a.id, 0, 10, 10, blob, 1000, NULL, 0), 0);
	usleep(2000);
	assert_int_equal(rn_buffer_commit(b, c.id, 0, 5, 5, blob, 1000, NULL, 0), 0);
	usleep(2000);
	assert_int_equal(rn_buffer_commit(b, a.id, 1, 20, 10, blob, 1000, NULL, 0), 0);
	usleep(2000);
	assert_int_equal(rn_buffer_commit(b, c.id, 1, 10, 5, blob, 1000, NULL, 0), 0);
	assert_int_equal(rn_buffer_commit(b, a.id, 2, 30, 10, blob, 1000, NULL, 0), RN_EFULL);

	/* room for 900 more: the oldest chunk (a0) alone frees enough */
	int64_t need = rn_buffer_bytes(b) + 900 - 4000;
	assert_int_equal(rn_buffer_drop_oldest(b, need, tomb, &calls, &recs), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(recs, 10);
	expect_chunk(b, a.id, 0, "T1:0:0:10");
	assert_int_equal(chunk_len(b, c.id, 0), 1000);
	assert_int_equal(rn_buffer_bytes(b), 3000 + strlen("T1:0:0:10"));
	assert_int_equal(rn_buffer_commit(b, a.id, 2, 30, 10, blob, 900, NULL, 0), 0);

	/* 2500 more: c0, a1 and c1 go (oldest first), a0 is not dropped twice */
	calls = 0;
	assert_int_equal(rn_buffer_drop_oldest(b, 2500, tomb, &calls, &recs), 0);
	assert_int_equal(calls, 3);
	assert_int_equal(recs, 20);
	expect_chunk(b, c.id, 0, "T1:0:0:5");
	expect_chunk(b, a.id, 1, "T1:1:10:10");
	expect_chunk(b, c.id, 1, "T1:1:5:5");
	assert_int_equal(chunk_len(b, a.id, 2), 900);
	assert_int_equal(rn_buffer_stream_load(b, a.id, &a), 0);
	assert_int_equal(a.dropped_records, 20);
	assert_int_equal(a.expired_records, 0);
	assert_int_equal(a.next_offset, 3); /* offsets are untouched */
	/* per-stream bytes are kept through commits and drops: they add up to the total */
	assert_int_equal(rn_buffer_stream_load(b, c.id, &c), 0);
	assert_int_equal(a.bytes + c.bytes, rn_buffer_bytes(b));
	assert_int_equal(c.bytes, 2 * (int64_t)strlen("T1:0:0:5"));

	/* an ack deletes tombstones like any chunk; byte accounting stays exact */
	assert_int_equal(rn_buffer_ack(b, a.id, 1), 0);
	assert_int_equal(rn_buffer_ack(b, c.id, 1), 0);
	assert_int_equal(rn_buffer_bytes(b), 900);
	/* nothing but tombstones and one chunk: asking for more than exists is RN_EFULL */
	assert_int_equal(rn_buffer_drop_oldest(b, 5000, tomb, &calls, &recs), RN_EFULL);
	rn_buffer_close(b);

	b = open_buf("drop.db", 4000, NULL);
	assert_int_equal(rn_buffer_stream_load(b, c.id, &c), 0);
	assert_int_equal(c.dropped_records, 10);
	assert_int_equal(rn_buffer_bytes(b),
			 rn_buffer_stream_load(b, a.id, &a) == 0 ? a.bytes : -1);
	rn_buffer_close(b);
}

/* ttl: only the stream's chunks older than the cutoff become tombstones; chunks stored
 * while the wall clock was unset (1970) get their age restarted instead of expiring. */
static void test_expire(void **state)
{
	struct rn_buffer_stream a, c;
	char blob[500];
	int calls = 0;
	uint64_t recs = 0;
	(void)state;
	memset(blob, 'e', sizeof(blob));
	struct rn_buffer *b = open_buf("ttl.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "a", "t", &a), 0);
	assert_int_equal(rn_buffer_stream_get(b, "c", "t", &c), 0);
	assert_int_equal(rn_buffer_commit(b, a.id, 0, 3, 3, blob, 500, NULL, 0), 0);
	assert_int_equal(rn_buffer_commit(b, c.id, 0, 4, 4, blob, 500, NULL, 0), 0);
	int64_t mid = rn_now_us();
	usleep(2000);
	assert_int_equal(rn_buffer_commit(b, a.id, 1, 5, 2, blob, 500, NULL, 0), 0);
	assert_true(rn_buffer_oldest_us(b, a.id) > 0);
	assert_true(rn_buffer_oldest_us(b, a.id) < mid);
	assert_int_equal(rn_buffer_records(b), 3 + 4 + 2);

	assert_int_equal(rn_buffer_expire(b, a.id, mid, tomb, &calls, &recs), 0);
	assert_int_equal(recs, 3);
	assert_int_equal(rn_buffer_records(b), 4 + 2); /* tombstones are not records */
	expect_chunk(b, a.id, 0, "T2:0:0:3");
	assert_int_equal(chunk_len(b, a.id, 1), 500);
	assert_int_equal(chunk_len(b, c.id, 0), 500); /* another stream's ttl is its own */
	/* a second sweep finds nothing new */
	assert_int_equal(rn_buffer_expire(b, a.id, mid, tomb, &calls, &recs), 0);
	assert_int_equal(recs, 0);
	assert_int_equal(rn_buffer_stream_load(b, a.id, &a), 0);
	assert_int_equal(a.expired_records, 3);
	assert_int_equal(a.dropped_records, 0);
	rn_buffer_close(b);

	/* stored "in 1970": not expired for the clock jump, aged from now on */
	set_created("ttl.db", 5000000);
	b = open_buf("ttl.db", 0, NULL);
	assert_int_equal(rn_buffer_expire(b, c.id, rn_now_us() - 1000000, tomb, &calls, &recs), 0);
	assert_int_equal(recs, 0);
	assert_int_equal(chunk_len(b, c.id, 0), 500);
	assert_true(rn_buffer_oldest_us(b, c.id) >= RN_CLOCK_TRUSTED_US);
	assert_int_equal(rn_buffer_expire(b, c.id, rn_now_us() + 1000000, tomb, &calls, &recs), 0);
	assert_int_equal(recs, 4);
	assert_int_equal(rn_buffer_records(b), 2);
	rn_buffer_close(b);
}

/* A buffer written by the first release (schema 0) opens, keeps its chunks and can drop. */
static void test_upgrade_v0(void **state)
{
	char path[600];
	sqlite3 *db;
	struct rn_buffer_stream s;
	int calls = 0;
	uint64_t recs = 0;
	(void)state;
	mkpath(path, sizeof(path), "v0.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"PRAGMA journal_mode=WAL;"
			"CREATE TABLE streams(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
			" tbl TEXT NOT NULL, server_id TEXT, next_offset INTEGER NOT NULL DEFAULT "
			"0,"
			" next_seq INTEGER NOT NULL DEFAULT 0, acked INTEGER NOT NULL DEFAULT -1);"
			"CREATE TABLE chunks(stream INTEGER NOT NULL, off INTEGER NOT NULL,"
			" nrec INTEGER NOT NULL, created_us INTEGER NOT NULL, bytes BLOB NOT NULL,"
			" PRIMARY KEY(stream, off)) WITHOUT ROWID;"
			"CREATE TABLE checkpoints(source TEXT PRIMARY KEY, state BLOB NOT NULL);"
			"INSERT INTO streams(id, name, tbl, next_offset, next_seq) "
			"VALUES(1,'old','t',2,9);"
			"INSERT INTO chunks VALUES(1, 0, 4, 1, zeroblob(2000));"
			"INSERT INTO chunks VALUES(1, 1, 5, 2, x'44556677');",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	struct rn_buffer *b = open_buf("v0.db", 0, NULL);
	assert_int_equal(rn_buffer_bytes(b), 2004);
	assert_int_equal(rn_buffer_stream_load(b, 1, &s), 0);
	assert_int_equal(s.bytes, 2004); /* the upgrade computes the per-stream sum */
	assert_int_equal(rn_buffer_stream_get(b, "old", "t", &s), 0);
	assert_int_equal(s.next_offset, 2);
	assert_int_equal(s.dropped_records, 0);
	expect_chunk(b, 1, 1, "\x44\x55\x66\x77");
	assert_int_equal(rn_buffer_drop_oldest(b, 1, tomb, &calls, &recs), 0);
	assert_int_equal(recs, 4);
	expect_chunk(b, 1, 0, "T1:0:-1:4"); /* first seq unknown in a schema-0 chunk */
	int rc = rn_buffer_commit(b, s.id, 2, 10, 1, "z", 1, NULL, 0);
	if (rc)
		fail_msg("commit after upgrade: %d %s", rc, rn_buffer_errmsg(b));
	/* a large chunk in the old layout reads whole, like the small ones */
	char *big = big_chunk(3, 200000);
	assert_int_equal(rn_buffer_commit(b, s.id, 3, 11, 1, big, 200000, NULL, 0), 0);
	expect_big(b, s.id, 3, big, 200000);
	rn_buffer_close(b);
	/* chunks remain: the file keeps the version-1 layout (a rewrite would need its size) */
	assert_int_equal(user_version("v0.db"), 1);
	b = open_buf("v0.db", 0, NULL);
	expect_big(b, s.id, 3, big, 200000);
	assert_int_equal(rn_buffer_ack(b, s.id, 3), 0);
	assert_int_equal(rn_buffer_bytes(b), 0);
	rn_buffer_close(b);
	/* opened empty, it becomes version 2 and keeps its streams */
	b = open_buf("v0.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "old", "t", &s), 0);
	assert_int_equal(s.next_offset, 4);
	assert_int_equal(rn_buffer_commit(b, s.id, 4, 12, 1, big, 200000, NULL, 0), 0);
	expect_big(b, s.id, 4, big, 200000);
	rn_buffer_close(b);
	assert_int_equal(user_version("v0.db"), 2); /* (the agent holds the file exclusively) */
	free(big);
}

/* Schema 2 reads a chunk of any size, below and above the blob I/O threshold, whole and
 * appended after what the caller's buffer already holds; acks free the bytes. */
static void test_large_chunks(void **state)
{
	static const size_t sizes[] = {1, 65535, 65536, 65537, 1 << 20, 3000000};
	struct rn_buffer_stream s;
	struct rn_buf out = {0};
	(void)state;
	struct rn_buffer *b = open_buf("large.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "big", "t", &s), 0);
	int64_t total = 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *c = big_chunk((int)i, sizes[i]);
		assert_int_equal(rn_buffer_commit(b, s.id, (int64_t)i, (int64_t)i + 1, 1, c,
						  sizes[i], NULL, 0),
				 0);
		total += (int64_t)sizes[i];
		expect_big(b, s.id, (int64_t)i, c, sizes[i]);
		rn_buf_append(&out, "hdr", 3);
		assert_int_equal(rn_buffer_chunk_get(b, s.id, (int64_t)i, &out), 0);
		assert_int_equal(out.len, 3 + sizes[i]);
		assert_memory_equal(out.data, "hdr", 3);
		assert_memory_equal(out.data + 3, c, sizes[i]);
		rn_buf_reset(&out);
		free(c);
	}
	assert_int_equal(rn_buffer_bytes(b), total);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 99, &out), RN_ENOTFOUND);
	assert_int_equal(rn_buffer_ack(b, s.id, 4), 0);
	assert_int_equal(rn_buffer_bytes(b), 3000000);
	assert_int_equal(rn_buffer_chunk_get(b, s.id, 4, &out), RN_ENOTFOUND);
	rn_buf_free(&out);
	rn_buffer_close(b);
	assert_int_equal(user_version("large.db"), 2);
}

static int count_moved(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)) && strstr(e->d_name, ".corrupt-") &&
		    !strstr(e->d_name, "-wal") && !strstr(e->d_name, "-shm"))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_corrupt_garbage(void **state)
{
	char path[600];
	int recovered = 0;
	struct rn_buffer_stream s;
	(void)state;
	mkpath(path, sizeof(path), "g.db");
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 8192; i++)
		fputc((i * 7919) & 0xff, f);
	fclose(f);
	struct rn_buffer *b = open_buf("g.db", 0, &recovered);
	assert_int_equal(recovered, 1);
	assert_int_equal(count_moved("g.db"), 1);
	assert_int_equal(rn_buffer_stream_get(b, "s", "t", &s), 0);
	assert_int_equal(s.next_offset, 0);
	rn_buffer_close(b);
	/* and the fresh one opens cleanly */
	b = open_buf("g.db", 0, &recovered);
	assert_int_equal(recovered, 0);
	rn_buffer_close(b);
}

/* A real database whose b-tree pages were overwritten. */
static void test_corrupt_pages(void **state)
{
	char path[600];
	int recovered = 0;
	struct rn_buffer_stream s;
	char blob[3000];
	(void)state;
	memset(blob, 'x', sizeof(blob));
	struct rn_buffer *b = open_buf("p.db", 0, NULL);
	assert_int_equal(rn_buffer_stream_get(b, "s", "t", &s), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(
			rn_buffer_commit(b, s.id, i, i + 1, 1, blob, sizeof(blob), NULL, 0), 0);
	rn_buffer_close(b); /* checkpoints the WAL into the main file */
	mkpath(path, sizeof(path), "p.db");
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, 4096, SEEK_SET);
	for (int i = 0; i < 4096 * 3; i++)
		fputc(0xA5, f);
	fclose(f);
	b = open_buf("p.db", 0, &recovered);
	assert_int_equal(recovered, 1);
	assert_int_equal(count_moved("p.db"), 1);
	assert_int_equal(rn_buffer_bytes(b), 0);
	rn_buffer_close(b);
}

static void test_unwritable(void **state)
{
	struct rn_buffer *b;
	struct rn_buffer_options o = {.path = "/nonexistent-dir/x/buffer.db"};
	(void)state;
	assert_int_equal(rn_buffer_open(&b, &o, NULL), RN_EBUFFER);
	assert_null(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_streams_and_reopen),
		cmocka_unit_test(test_atomic_commit),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_corrupt_garbage),
		cmocka_unit_test(test_corrupt_pages),
		cmocka_unit_test(test_unwritable),
		cmocka_unit_test(test_commit_many),
		cmocka_unit_test(test_drop_oldest),
		cmocka_unit_test(test_expire),
		cmocka_unit_test(test_upgrade_v0),
		cmocka_unit_test(test_large_chunks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
