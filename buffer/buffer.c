/*
 * SQLite disk buffer; see buffer.h. Statements are prepared once at open. Byte accounting
 * is kept in memory (summed at open, adjusted on commit and ack) so the cap check costs
 * nothing per chunk.
 */
#include "buffer.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

enum {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_STREAM_FIND, Q_STREAM_INS, Q_STREAM_LOAD, Q_CHUNK_INS,
	Q_STREAM_ADV, Q_CKPT_PUT, Q_CKPT_GET, Q_CHUNK_GET, Q_ACK_SUM, Q_ACK_DEL, Q_ACK_SET,
	Q_SERVER_ID, Q_STREAM_IDS, Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_STREAM_FIND] = "SELECT id FROM streams WHERE name = ?1",
	[Q_STREAM_INS] = "INSERT INTO streams(name, tbl) VALUES(?1, ?2)",
	[Q_STREAM_LOAD] = "SELECT name, tbl, coalesce(server_id, ''), next_offset, next_seq, acked, "
			  "(SELECT coalesce(sum(length(bytes)), 0) FROM chunks WHERE stream = ?1) "
			  "FROM streams WHERE id = ?1",
	[Q_CHUNK_INS] = "INSERT INTO chunks(stream, off, nrec, created_us, bytes) "
			"VALUES(?1, ?2, ?3, ?4, ?5)",
	/* only from next_offset = offset: a gap or a repeat changes no row */
	[Q_STREAM_ADV] = "UPDATE streams SET next_offset = ?2, next_seq = ?3 "
			 "WHERE id = ?1 AND next_offset = ?2 - 1",
	[Q_CKPT_PUT] = "INSERT INTO checkpoints(source, state) VALUES(?1, ?2) "
		       "ON CONFLICT(source) DO UPDATE SET state = excluded.state",
	[Q_CKPT_GET] = "SELECT state FROM checkpoints WHERE source = ?1",
	[Q_CHUNK_GET] = "SELECT bytes FROM chunks WHERE stream = ?1 AND off = ?2",
	[Q_ACK_SUM] = "SELECT coalesce(sum(length(bytes)), 0) FROM chunks "
		      "WHERE stream = ?1 AND off <= ?2",
	[Q_ACK_DEL] = "DELETE FROM chunks WHERE stream = ?1 AND off <= ?2",
	[Q_ACK_SET] = "UPDATE streams SET acked = max(acked, ?2) WHERE id = ?1",
	[Q_SERVER_ID] = "UPDATE streams SET server_id = ?2 WHERE id = ?1",
	[Q_STREAM_IDS] = "SELECT id FROM streams ORDER BY id",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS streams("
	" id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, tbl TEXT NOT NULL, server_id TEXT,"
	" next_offset INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 0,"
	" acked INTEGER NOT NULL DEFAULT -1);"
	"CREATE TABLE IF NOT EXISTS chunks("
	" stream INTEGER NOT NULL, off INTEGER NOT NULL, nrec INTEGER NOT NULL,"
	" created_us INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY(stream, off))"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS checkpoints(source TEXT PRIMARY KEY, state BLOB NOT NULL);";

struct rn_buffer {
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	int64_t bytes;
	int64_t max_bytes;
	char err[512];
};

static int db_fail(struct rn_buffer *b, const char *what)
{
	int code = sqlite3_errcode(b->db);
	snprintf(b->err, sizeof(b->err), "%s: %s", what, sqlite3_errmsg(b->db));
	if (code == SQLITE_FULL)
		return RN_ENOSPC;
	return RN_EBUFFER;
}

static void close_db(struct rn_buffer *b)
{
	for (int i = 0; i < Q_COUNT; i++) {
		sqlite3_finalize(b->q[i]);
		b->q[i] = NULL;
	}
	if (b->db)
		sqlite3_close_v2(b->db);
	b->db = NULL;
}

/* Opens and checks the file. 0, RN_ECORRUPT (move aside and retry), or RN_EBUFFER. */
static int try_open(struct rn_buffer *b, const struct rn_buffer_options *opt)
{
	sqlite3_stmt *st = NULL;
	char pragma[128];
	int rc;

	rc = sqlite3_open_v2(opt->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? RN_ECORRUPT : db_fail(b, "open");
	sqlite3_busy_timeout(b->db, 5000);
	rc = sqlite3_prepare_v2(b->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		rc = r && !strcmp(r, "ok") ? SQLITE_OK : SQLITE_CORRUPT;
	} else {
		rc = sqlite3_errcode(b->db);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
		snprintf(b->err, sizeof(b->err), "%s", sqlite3_errmsg(b->db));
		return RN_ECORRUPT;
	}
	if (rc != SQLITE_OK)
		return db_fail(b, "check");
	snprintf(pragma, sizeof(pragma), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
		 opt->sync_full ? "FULL" : "NORMAL");
	if (sqlite3_exec(b->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite3_errcode(b->db) == SQLITE_NOTADB ? RN_ECORRUPT : db_fail(b, "pragma");
	if (sqlite3_exec(b->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite3_errcode(b->db) == SQLITE_NOTADB || sqlite3_errcode(b->db) == SQLITE_CORRUPT
			       ? RN_ECORRUPT
			       : db_fail(b, "schema");
	for (int i = 0; i < Q_COUNT; i++)
		if (sqlite3_prepare_v3(b->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &b->q[i],
				       NULL) != SQLITE_OK)
			return db_fail(b, sql[i]);
	if (sqlite3_prepare_v2(b->db, "SELECT coalesce(sum(length(bytes)), 0) FROM chunks", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return sqlite3_errcode(b->db) == SQLITE_CORRUPT ? RN_ECORRUPT : db_fail(b, "size");
	}
	b->bytes = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int rn_buffer_open(struct rn_buffer **out, const struct rn_buffer_options *opt, int *recovered)
{
	struct rn_buffer *b;
	int rc;

	*out = NULL;
	if (recovered)
		*recovered = 0;
	if (!(b = rn_calloc(1, sizeof(*b))))
		return RN_ENOMEM;
	b->max_bytes = opt->max_bytes;
	rc = try_open(b, opt);
	if (rc == RN_ECORRUPT) {
		char aside[4200], side[4300], src[4300];
		snprintf(aside, sizeof(aside), "%s.corrupt-%lld", opt->path, (long long)time(NULL));
		rn_log_error("buffer", "buffer %s is corrupt (%s); moving it to %s and starting a "
			     "new buffer", opt->path, b->err, aside);
		close_db(b);
		if (rename(opt->path, aside))
			rn_log_error("buffer", "rename %s: %s", opt->path, strerror(errno));
		for (int i = 0; i < 2; i++) {
			const char *sfx = i ? "-shm" : "-wal";
			snprintf(src, sizeof(src), "%s%s", opt->path, sfx);
			snprintf(side, sizeof(side), "%s%s", aside, sfx);
			if (access(src, F_OK) == 0)
				rename(src, side);
		}
		if (recovered)
			*recovered = 1;
		rc = try_open(b, opt);
	}
	if (rc) {
		rn_log_error("buffer", "cannot open %s: %s", opt->path, b->err);
		close_db(b);
		rn_free(b);
		return rc == RN_ECORRUPT ? RN_EBUFFER : rc;
	}
	*out = b;
	return 0;
}

void rn_buffer_close(struct rn_buffer *b)
{
	if (!b)
		return;
	close_db(b);
	rn_free(b);
}

static sqlite3_stmt *q(struct rn_buffer *b, int i)
{
	sqlite3_reset(b->q[i]);
	sqlite3_clear_bindings(b->q[i]);
	return b->q[i];
}

static int exec_simple(struct rn_buffer *b, int i)
{
	return sqlite3_step(q(b, i)) == SQLITE_DONE ? 0 : db_fail(b, sql[i]);
}

int rn_buffer_stream_load(struct rn_buffer *b, int id, struct rn_buffer_stream *out)
{
	sqlite3_stmt *s = q(b, Q_STREAM_LOAD);
	int rc;
	sqlite3_bind_int(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return RN_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(b, "load stream");
	memset(out, 0, sizeof(*out));
	out->id = id;
	snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(s, 0));
	snprintf(out->table, sizeof(out->table), "%s", (const char *)sqlite3_column_text(s, 1));
	snprintf(out->server_id, sizeof(out->server_id), "%s",
		 (const char *)sqlite3_column_text(s, 2));
	out->next_offset = sqlite3_column_int64(s, 3);
	out->next_seq = sqlite3_column_int64(s, 4);
	out->acked = sqlite3_column_int64(s, 5);
	out->bytes = sqlite3_column_int64(s, 6);
	sqlite3_reset(s);
	return 0;
}

int rn_buffer_stream_get(struct rn_buffer *b, const char *name, const char *table,
			 struct rn_buffer_stream *out)
{
	sqlite3_stmt *s = q(b, Q_STREAM_FIND);
	int rc, id;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int(s, 0);
		sqlite3_reset(s);
		return rn_buffer_stream_load(b, id, out);
	}
	if (rc != SQLITE_DONE)
		return db_fail(b, "find stream");
	s = q(b, Q_STREAM_INS);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, table, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(b, "create stream");
	return rn_buffer_stream_load(b, (int)sqlite3_last_insert_rowid(b->db), out);
}

int rn_buffer_commit(struct rn_buffer *b, int stream, int64_t offset, int64_t next_seq,
		     uint32_t nrec, const void *chunk, size_t len,
		     const struct rn_buffer_ckpt *ckpts, size_t nckpt)
{
	struct rn_buffer_chunk c = {stream, offset, next_seq, nrec, chunk, len};
	return rn_buffer_commit_many(b, &c, chunk ? 1 : 0, ckpts, nckpt);
}

int rn_buffer_commit_many(struct rn_buffer *b, const struct rn_buffer_chunk *chunks,
			  size_t nchunks, const struct rn_buffer_ckpt *ckpts, size_t nckpt)
{
	sqlite3_stmt *s;
	int64_t total = 0;
	int rc;

	for (size_t i = 0; i < nchunks; i++)
		total += (int64_t)chunks[i].len;
	/* An empty buffer takes any commit, so one chunk larger than the cap cannot wedge a
	 * stream forever. */
	if (nchunks && b->max_bytes && b->bytes > 0 && b->bytes + total > b->max_bytes) {
		snprintf(b->err, sizeof(b->err), "buffer full (%lld of %lld bytes)",
			 (long long)b->bytes, (long long)b->max_bytes);
		return RN_EFULL;
	}
	if ((rc = exec_simple(b, Q_BEGIN)))
		return rc;
	for (size_t i = 0; i < nchunks; i++) {
		const struct rn_buffer_chunk *c = &chunks[i];
		s = q(b, Q_STREAM_ADV);
		sqlite3_bind_int(s, 1, c->stream);
		sqlite3_bind_int64(s, 2, c->offset + 1);
		sqlite3_bind_int64(s, 3, c->next_seq);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = db_fail(b, "advance stream");
			goto rollback;
		}
		if (sqlite3_changes(b->db) != 1) {
			snprintf(b->err, sizeof(b->err),
				 "chunk %lld of stream %d is not the stream's next offset",
				 (long long)c->offset, c->stream);
			rc = RN_EINVAL;
			goto rollback;
		}
		s = q(b, Q_CHUNK_INS);
		sqlite3_bind_int(s, 1, c->stream);
		sqlite3_bind_int64(s, 2, c->offset);
		sqlite3_bind_int(s, 3, (int)c->nrec);
		sqlite3_bind_int64(s, 4, rn_now_us());
		sqlite3_bind_blob(s, 5, c->data, (int)c->len, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = db_fail(b, "store chunk");
			goto rollback;
		}
	}
	for (size_t i = 0; i < nckpt; i++) {
		s = q(b, Q_CKPT_PUT);
		sqlite3_bind_text(s, 1, ckpts[i].source, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, ckpts[i].state ? ckpts[i].state : "", (int)ckpts[i].len,
				  SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = db_fail(b, "save checkpoint");
			goto rollback;
		}
	}
	if ((rc = exec_simple(b, Q_COMMIT)))
		goto rollback;
	b->bytes += total;
	return 0;
rollback:
	sqlite3_step(q(b, Q_ROLLBACK));
	return rc;
}

int rn_buffer_chunk_get(struct rn_buffer *b, int stream, int64_t offset, struct rn_buf *out)
{
	sqlite3_stmt *s = q(b, Q_CHUNK_GET);
	int rc;
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, offset);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return RN_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(b, "read chunk");
	rc = rn_buf_append(out, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	return rc;
}

int rn_buffer_ack(struct rn_buffer *b, int stream, int64_t acked)
{
	sqlite3_stmt *s;
	int64_t freed = 0;
	int rc;
	if ((rc = exec_simple(b, Q_BEGIN)))
		return rc;
	s = q(b, Q_ACK_SUM);
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, acked);
	if (sqlite3_step(s) == SQLITE_ROW)
		freed = sqlite3_column_int64(s, 0);
	s = q(b, Q_ACK_DEL);
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, acked);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = db_fail(b, "delete acked");
		goto rollback;
	}
	s = q(b, Q_ACK_SET);
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, acked);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = db_fail(b, "set acked");
		goto rollback;
	}
	if ((rc = exec_simple(b, Q_COMMIT)))
		goto rollback;
	b->bytes -= freed;
	return 0;
rollback:
	sqlite3_step(q(b, Q_ROLLBACK));
	return rc;
}

int rn_buffer_set_server_id(struct rn_buffer *b, int stream, const char *server_id)
{
	sqlite3_stmt *s = q(b, Q_SERVER_ID);
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_text(s, 2, server_id, -1, SQLITE_STATIC);
	return sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(b, "store server stream id");
}

int rn_buffer_checkpoint_load(struct rn_buffer *b, const char *source, struct rn_buf *out)
{
	sqlite3_stmt *s = q(b, Q_CKPT_GET);
	int rc;
	sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return RN_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(b, "load checkpoint");
	rc = rn_buf_append(out, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	return rc;
}

int rn_buffer_stream_ids(struct rn_buffer *b, int *ids, size_t max, size_t *n)
{
	sqlite3_stmt *s = q(b, Q_STREAM_IDS);
	int rc;
	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n < max)
			ids[*n] = sqlite3_column_int(s, 0);
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		return db_fail(b, "list streams");
	sqlite3_reset(s);
	return 0;
}

int64_t rn_buffer_bytes(const struct rn_buffer *b)
{
	return b->bytes;
}

const char *rn_buffer_errmsg(const struct rn_buffer *b)
{
	return b->err;
}
