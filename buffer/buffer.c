/*
 * SQLite disk buffer; see buffer.h. Statements are prepared once at open. Byte accounting
 * is kept in memory (summed at open, adjusted on commit and ack) so the cap check costs
 * nothing per chunk.
 */
#include "buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "buffer_int.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_STREAM_FIND,
	Q_STREAM_INS,
	Q_STREAM_LOAD,
	Q_CHUNK_INS,
	Q_STREAM_ADV,
	Q_CKPT_PUT,
	Q_CKPT_GET,
	Q_CHUNK_GET,
	Q_ACK_SUM,
	Q_ACK_DEL,
	Q_ACK_SET,
	Q_SERVER_ID,
	Q_STREAM_IDS,
	Q_VICTIMS,
	Q_EXPIRED,
	Q_TOMB,
	Q_DROP_COUNT,
	Q_UNTRUSTED,
	Q_OLDEST,
	Q_BYTES_UPTO,
	Q_CHUNK_REF,
	Q_RECORDS,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_STREAM_FIND] = "SELECT id FROM streams WHERE name = ?1",
	[Q_STREAM_INS] = "INSERT INTO streams(name, tbl) VALUES(?1, ?2)",
	/* bytes is kept with every change, so status is O(1) however large the backlog */
	[Q_STREAM_LOAD] =
		"SELECT name, tbl, coalesce(server_id, ''), next_offset, next_seq, acked, "
		"bytes, dropped_records, expired_records FROM streams WHERE id = ?1",
	[Q_CHUNK_INS] = "INSERT INTO chunks(stream, off, nrec, created_us, bytes, seq0) "
			"VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	/* only from next_offset = offset: a gap or a repeat changes no row */
	[Q_STREAM_ADV] = "UPDATE streams SET next_offset = ?2, next_seq = ?3, bytes = bytes + ?4 "
			 "WHERE id = ?1 AND next_offset = ?2 - 1",
	[Q_CKPT_PUT] = "INSERT INTO checkpoints(source, state) VALUES(?1, ?2) "
		       "ON CONFLICT(source) DO UPDATE SET state = excluded.state",
	[Q_CKPT_GET] = "SELECT state FROM checkpoints WHERE source = ?1",
	[Q_CHUNK_GET] = "SELECT bytes FROM chunks WHERE stream = ?1 AND off = ?2",
	[Q_ACK_SUM] = "SELECT coalesce(sum(length(bytes)), 0) FROM chunks "
		      "WHERE stream = ?1 AND off <= ?2",
	[Q_ACK_DEL] = "DELETE FROM chunks WHERE stream = ?1 AND off <= ?2",
	[Q_ACK_SET] = "UPDATE streams SET acked = max(acked, ?2), bytes = bytes - ?3 WHERE id = ?1",
	[Q_SERVER_ID] = "UPDATE streams SET server_id = ?2 WHERE id = ?1",
	[Q_STREAM_IDS] = "SELECT id FROM streams ORDER BY id",
	/* drop_oldest: the oldest chunks that still hold records, over all streams */
	[Q_VICTIMS] = "SELECT stream, off, nrec, seq0, length(bytes) FROM chunks "
		      "WHERE dropped = 0 ORDER BY created_us, stream, off LIMIT 64",
	[Q_EXPIRED] = "SELECT stream, off, nrec, seq0, length(bytes) FROM chunks "
		      "WHERE stream = ?1 AND dropped = 0 AND created_us < ?2 ORDER BY off LIMIT 64",
	[Q_TOMB] = "UPDATE chunks SET bytes = ?3, dropped = ?4 WHERE stream = ?1 AND off = ?2",
	[Q_DROP_COUNT] = "UPDATE streams SET dropped_records = dropped_records + ?2, "
			 "expired_records = expired_records + ?3, bytes = bytes - ?4 WHERE id = ?1",
	/* chunks stored while the wall clock was not yet set: their age counts from now */
	[Q_UNTRUSTED] = "UPDATE chunks SET created_us = ?1 WHERE created_us < ?2",
	[Q_OLDEST] = "SELECT created_us FROM chunks WHERE stream = ?1 ORDER BY off LIMIT 1",
	[Q_BYTES_UPTO] = "SELECT COALESCE(SUM(length(bytes)), 0) FROM chunks "
			 "WHERE stream = ?1 AND off <= ?2",
	/* version 2 only: length() does not load the blob, and the CASE loads a small one */
	[Q_CHUNK_REF] = "SELECT id, length(bytes), CASE WHEN length(bytes) < ?3 THEN bytes END "
			"FROM chunks WHERE stream = ?1 AND off = ?2",
	/* nrec comes before the blob in the row: the blobs' overflow pages are not read */
	[Q_RECORDS] = "SELECT coalesce(sum(nrec), 0) FROM chunks WHERE dropped = 0",
};

/* Schema version 2. chunks.seq0 is the seq of the chunk's first record (-1 if unknown);
 * chunks.dropped is 0, or why its records were replaced by a tombstone (RN_BUFFER_DROP_*).
 * streams.bytes is the sum of its chunks' sizes, kept in the same transactions that change
 * them.
 * Version 2 keeps chunks in a rowid table (version 1 had a WITHOUT ROWID table keyed by
 * (stream, off)). In a WITHOUT ROWID table the whole row is the b-tree key, so SQLite copied
 * each chunk into memory to delete it and again to read it: a 1 MB chunk cost 2 MB of heap
 * while a backlog drained. Rowid chunks are read with incremental blob I/O straight into
 * the caller's buffer and deleted without a copy.
 * A version-0 file (before dropping and TTL) is upgraded to 1 by `upgrade_v1`. A version-1
 * file becomes version 2 the first time it is opened empty (rewriting a full buffer would
 * need its size again in free disk); until then it keeps its layout, which every statement
 * below also works on. */
#define SCHEMA_VERSION 2
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS streams("
	" id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, tbl TEXT NOT NULL, server_id TEXT,"
	" next_offset INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 0,"
	" acked INTEGER NOT NULL DEFAULT -1, dropped_records INTEGER NOT NULL DEFAULT 0,"
	" expired_records INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS chunks("
	" id INTEGER PRIMARY KEY, stream INTEGER NOT NULL, off INTEGER NOT NULL,"
	" nrec INTEGER NOT NULL, created_us INTEGER NOT NULL, bytes BLOB NOT NULL,"
	" seq0 INTEGER NOT NULL DEFAULT -1, dropped INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(stream, off));"
	"CREATE INDEX IF NOT EXISTS chunks_age ON chunks(dropped, created_us);"
	"CREATE TABLE IF NOT EXISTS checkpoints(source TEXT PRIMARY KEY, state BLOB NOT NULL);";
/* One transaction: an upgrade cut short (out of memory, an I/O error, a crash) must leave
 * version 0 whole, or the next start's ALTERs fail on the columns already added and the
 * buffer can no longer be opened at all. */
static const char upgrade_v1[] =
	"BEGIN IMMEDIATE;"
	"ALTER TABLE streams ADD COLUMN dropped_records INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE streams ADD COLUMN expired_records INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE chunks ADD COLUMN seq0 INTEGER NOT NULL DEFAULT -1;"
	"ALTER TABLE chunks ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE streams ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE streams SET bytes = (SELECT coalesce(sum(length(bytes)), 0) FROM chunks"
	" WHERE chunks.stream = streams.id);"
	"PRAGMA user_version = 1;"
	"COMMIT;";
/* Only run on an empty chunks table: the layout of version 2 (`schema` creates it). */
static const char upgrade_v2[] = "DROP TABLE chunks;";

/* Chunks at least this large are read with blob I/O (a smaller one is cheaper to read
 * through the statement, whose copy is then small). */
#define BLOB_READ_MIN (64u << 10)

#define FULL_CHECK_US 1000000 /* while the disk is full, look for free space once a second */
#define VACUUM_PAGES 256      /* pages handed back to the file system per maintain() */

struct rn_buffer {
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	int64_t bytes;
	int64_t max_bytes;
	int64_t reserve_bytes;
	char reserve_path[4200];
	char path[4096];  /* the database file: statvfs() of its file system */
	int have_reserve; /* the reserve file exists at full size */
	int disk_full;    /* ENOSPC seen: no new chunks until room returns */
	int64_t full_checked_us;
	int incremental; /* auto_vacuum = INCREMENTAL: freed pages can go back to the FS */
	int rowid;       /* schema version 2 layout: chunks in a rowid table */
	uint64_t full_episodes;
	char err[512];
};

static void enter_disk_full(struct rn_buffer *b);
static int64_t fs_avail(const struct rn_buffer *b);

/*
 * SQLite's own heap goes through rn_malloc & co., so the buffer's whole memory use shows in
 * the live count and the allocation-failure hook reaches SQLite too (the buffer's
 * out-of-memory paths are tested through it). SQLite asks for a block's size back (xSize):
 * a header in front of each block keeps it; 16 bytes keep the payload aligned for any type.
 * The cost is an atomic add per allocation: 20000 commits of 16 KiB chunks with a read and
 * an ack each took the same time either way, within noise. SQLite's configuration is
 * process-wide and must be set before SQLite initializes, so it is set once, by the first
 * rn_buffer_open.
 */
#define MEM_HDR 16

/* SQLite allocations refused, ever. SQLite reports some of them only as a verdict (a page
 * quick_check could not load for want of memory reads like a damaged one), so open compares
 * this before and after its check. Process-wide like SQLite's allocator itself. */
static atomic_long mem_failed;

static void *mem_malloc(int n)
{
	uint8_t *p = n > 0 ? rn_malloc((size_t)n + MEM_HDR) : NULL;
	if (!p) {
		atomic_fetch_add(&mem_failed, 1);
		return NULL;
	}
	memcpy(p, &(size_t){(size_t)n}, sizeof(size_t));
	return p + MEM_HDR;
}

static void mem_free(void *p)
{
	if (p)
		rn_free((uint8_t *)p - MEM_HDR);
}

static void *mem_realloc(void *p, int n)
{
	uint8_t *q;
	if (!p)
		return mem_malloc(n);
	if (n <= 0 || !(q = rn_realloc((uint8_t *)p - MEM_HDR, (size_t)n + MEM_HDR))) {
		atomic_fetch_add(&mem_failed, 1);
		return NULL; /* the old block stays, as SQLite expects */
	}
	memcpy(q, &(size_t){(size_t)n}, sizeof(size_t));
	return q + MEM_HDR;
}

static int mem_size(void *p)
{
	size_t n = 0;
	if (p)
		memcpy(&n, (uint8_t *)p - MEM_HDR, sizeof(n));
	return (int)n;
}

static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int mem_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void mem_shutdown(void *arg)
{
	(void)arg;
}

static void route_sqlite_memory(void)
{
	static const sqlite3_mem_methods m = {mem_malloc,  mem_free, mem_realloc,  mem_size,
					      mem_roundup, mem_init, mem_shutdown, NULL};
	/* refused only if something initialized SQLite first; it then keeps its own heap */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
		rn_log_debug("buffer", "SQLite was initialized before the buffer: its memory is "
				       "not counted");
}

void rn_buffer__init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, route_sqlite_memory);
}

static int db_fail(struct rn_buffer *b, const char *what)
{
	int code = sqlite3_errcode(b->db);
	snprintf(b->err, sizeof(b->err), "%s: %s", what, sqlite3_errmsg(b->db));
	if (code == SQLITE_FULL || sqlite3_system_errno(b->db) == ENOSPC) {
		enter_disk_full(b);
		return RN_ENOSPC;
	}
	return RN_EBUFFER;
}

/*
 * The reserve: a file of reserve_bytes next to the database, allocated while there is room.
 * SQLite needs a little free space even to delete (the WAL grows before it shrinks), so on
 * the first ENOSPC the reserve is released: acknowledged chunks can still be deleted and
 * the buffer keeps forwarding. It is taken again once the file system has room for it
 * twice over, and only then are new chunks accepted.
 */
static int take_reserve(struct rn_buffer *b)
{
	int fd, rc;
	if (!b->reserve_bytes || b->have_reserve)
		return 0;
	fd = open(b->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	rc = posix_fallocate(fd, 0, (off_t)b->reserve_bytes);
	if (rc == 0)
		rc = fsync(fd);
	close(fd);
	if (rc) {
		unlink(b->reserve_path);
		return -1;
	}
	b->have_reserve = 1;
	return 0;
}

static void release_reserve(struct rn_buffer *b)
{
	if (b->reserve_bytes && b->have_reserve) {
		unlink(b->reserve_path);
		b->have_reserve = 0;
	}
}

static void enter_disk_full(struct rn_buffer *b)
{
	if (b->disk_full)
		return;
	b->disk_full = 1;
	b->full_episodes++;
	b->full_checked_us = rn_mono_us();
	release_reserve(b);
	rn_log_error("buffer",
		     "disk full: no new records are accepted, buffered chunks keep "
		     "being sent%s",
		     b->reserve_bytes ? " (reserve released so that "
					"acknowledged chunks can be deleted)"
				      : "");
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
	b->rowid = 0;
}

/* The integer the statement returns in its first row. 0, RN_ECORRUPT or RN_EBUFFER. */
static int pragma_int(struct rn_buffer *b, const char *stmt, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(b->db, stmt, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		return 0;
	return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? RN_ECORRUPT : db_fail(b, stmt);
}

/* Opens and checks the file. 0, RN_ECORRUPT (move aside and retry), or RN_EBUFFER. */
static int try_open(struct rn_buffer *b, const struct rn_buffer_options *opt)
{
	sqlite3_stmt *st = NULL;
	char pragma[384];
	int rc, version = 0, have_chunks = 0, vac = 0;

	b->err[0] = 0;
	rc = sqlite3_open_v2(opt->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? RN_ECORRUPT
								   : db_fail(b, "open");
	sqlite3_busy_timeout(b->db, 5000);
	rc = sqlite3_prepare_v2(b->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		/* the row always holds text: none means its copy failed (out of memory), which
		 * says nothing about the file and must not send it aside as corrupt */
		rc = !r ? SQLITE_NOMEM : strcmp(r, "ok") ? SQLITE_CORRUPT : SQLITE_OK;
		if (rc == SQLITE_CORRUPT) /* the verdict's first line is the message */
			snprintf(b->err, sizeof(b->err), "quick_check: %.*s", (int)strcspn(r, "\n"),
				 r);
	} else {
		rc = sqlite3_errcode(b->db);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
		if (rc == SQLITE_NOTADB || !b->err[0])
			snprintf(b->err, sizeof(b->err), "%s", sqlite3_errmsg(b->db));
		return RN_ECORRUPT;
	}
	if (rc != SQLITE_OK)
		return db_fail(b, "check");
	/* A new file gets incremental auto-vacuum (it must be chosen before the first table):
	 * pages freed by acks can then be given back to a full file system. The WAL is cut back
	 * to half the reserve after each checkpoint, so it cannot keep the disk full. */
	/* The page cache is 256 KiB: chunks are read once and deleted, so caching them buys nothing
	 * and a small cache keeps the agent's memory flat while a backlog drains.
	 * Exclusive locking keeps the WAL index in memory instead of a -shm file: that file has
	 * to grow with the WAL, which fails on a full disk and then even reads fail. Only this
	 * process uses the buffer (a second agent on the same data_dir is refused).
	 * secure_delete=FAST: Debian builds SQLite with SECURE_DELETE on, which overwrote every
	 * page of every acknowledged chunk with zeros (a read and a write per 4 KiB page, then
	 * the checkpoint's write): most of a backlog drain's I/O. FAST still clears deleted
	 * content on b-tree pages that are written anyway, never at the cost of more I/O. */
	snprintf(pragma, sizeof(pragma),
		 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA secure_delete=FAST; "
		 "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; "
		 "PRAGMA synchronous=%s; PRAGMA journal_size_limit=%lld; PRAGMA cache_size=-256;",
		 opt->sync_full ? "FULL" : "NORMAL",
		 (long long)(b->reserve_bytes ? b->reserve_bytes / 2 : 4 << 20));
	if (sqlite3_exec(b->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite3_errcode(b->db) == SQLITE_NOTADB ? RN_ECORRUPT : db_fail(b, "pragma");
	if ((rc = pragma_int(b, "PRAGMA user_version", &version)) ||
	    (rc = pragma_int(b, "SELECT count(*) FROM sqlite_master WHERE name = 'chunks'",
			     &have_chunks)) ||
	    (rc = pragma_int(b, "PRAGMA auto_vacuum", &vac)))
		return rc;
	b->incremental = vac == 2;
	if (have_chunks && version < 1 &&
	    sqlite3_exec(b->db, upgrade_v1, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_fail(b, "upgrade to schema 1");
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (have_chunks && version < 2) {
		int any = 0;
		if ((rc = pragma_int(b, "SELECT EXISTS(SELECT 1 FROM chunks)", &any)))
			return rc;
		if (!any && sqlite3_exec(b->db, upgrade_v2, NULL, NULL, NULL) != SQLITE_OK)
			return db_fail(b, "upgrade to schema 2");
	}
	if (sqlite3_exec(b->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite3_errcode(b->db) == SQLITE_NOTADB ||
				       sqlite3_errcode(b->db) == SQLITE_CORRUPT
			       ? RN_ECORRUPT
			       : db_fail(b, "schema");
	/* the layout: only version 2 has a rowid (named id) */
	if (sqlite3_prepare_v2(b->db, "SELECT id FROM chunks LIMIT 0", -1, &st, NULL) == SQLITE_OK)
		b->rowid = 1;
	sqlite3_finalize(st);
	st = NULL;
	/* (written only when it changes: a start on a full disk must not need a write) */
	if (version != (b->rowid ? 2 : 1) &&
	    sqlite3_exec(b->db, b->rowid ? "PRAGMA user_version = 2" : "PRAGMA user_version = 1",
			 NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(b, "user_version");
	for (int i = 0; i < Q_COUNT; i++)
		if ((i != Q_CHUNK_REF || b->rowid) &&
		    sqlite3_prepare_v3(b->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &b->q[i],
				       NULL) != SQLITE_OK)
			return db_fail(b, sql[i]);
	if (sqlite3_prepare_v2(b->db, "SELECT coalesce(sum(length(bytes)), 0) FROM chunks", -1, &st,
			       NULL) != SQLITE_OK ||
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

	rn_buffer__init();
	*out = NULL;
	if (recovered)
		*recovered = 0;
	if (!(b = rn_calloc(1, sizeof(*b))))
		return RN_ENOMEM;
	b->max_bytes = opt->max_bytes;
	b->reserve_bytes = opt->reserve_bytes > 0 ? opt->reserve_bytes : 0;
	snprintf(b->reserve_path, sizeof(b->reserve_path), "%s.reserve", opt->path);
	snprintf(b->path, sizeof(b->path), "%s", opt->path);
	/* an existing reserve is kept (it is ours); a short or missing one is made whole */
	if (b->reserve_bytes && take_reserve(b))
		rn_log_warn("buffer", "cannot allocate the %lld-byte disk reserve %s: %s",
			    (long long)b->reserve_bytes, b->reserve_path, strerror(errno));
	long failed = atomic_load(&mem_failed);
	rc = try_open(b, opt);
	if (rc == RN_ECORRUPT && atomic_load(&mem_failed) != failed) {
		/* an allocation failed during the check: its verdict says nothing about the file,
		 * and moving a good buffer aside would abandon every record in it */
		snprintf(b->err + strlen(b->err), sizeof(b->err) - strlen(b->err),
			 " (while out of memory: not taken as corruption)");
		rc = RN_ENOMEM;
	}
	if (rc == RN_ECORRUPT) {
		char aside[4200], side[4300], src[4300];
		snprintf(aside, sizeof(aside), "%s.corrupt-%lld", opt->path, (long long)time(NULL));
		rn_log_error("buffer",
			     "buffer %s is corrupt (%s); moving it to %s and starting a "
			     "new buffer",
			     opt->path, b->err, aside);
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
	if (!rc && b->reserve_bytes && !b->have_reserve && fs_avail(b) < 2 * b->reserve_bytes)
		enter_disk_full(b); /* started on a full disk: forward only until room returns */
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
	out->dropped_records = sqlite3_column_int64(s, 7);
	out->expired_records = sqlite3_column_int64(s, 8);
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

/* Free bytes on the buffer's file system, or -1. */
static int64_t fs_avail(const struct rn_buffer *b)
{
	struct statvfs vs;
	if (statvfs(b->path, &vs))
		return -1;
	return (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
}

/* Bytes of free pages inside the database file. */
static int64_t db_free_bytes(struct rn_buffer *b)
{
	int pages = 0, size = 0;
	if (pragma_int(b, "PRAGMA freelist_count", &pages) ||
	    pragma_int(b, "PRAGMA page_size", &size))
		return 0;
	return (int64_t)pages * size;
}

/* While the disk is full: is there room again for the reserve and new chunks? Checked at
 * most once per FULL_CHECK_US; on success the reserve is taken back and the state ends. */
static int disk_room_returned(struct rn_buffer *b)
{
	int64_t now = rn_mono_us(), want, avail;
	if (now - b->full_checked_us < FULL_CHECK_US)
		return 0;
	b->full_checked_us = now;
	want = 2 * (b->reserve_bytes ? b->reserve_bytes : (int64_t)4 << 20);
	avail = fs_avail(b);
	if (avail >= want && take_reserve(b) == 0) {
		rn_log_info("buffer",
			    "disk space is back (%lld bytes free): accepting records "
			    "again",
			    (long long)avail);
	} else if (!b->incremental && db_free_bytes(b) >= want) {
		/* an old file that cannot shrink: the pages acks freed inside it are the room */
		rn_log_info("buffer",
			    "the buffer file has %lld free bytes again: accepting "
			    "records",
			    (long long)db_free_bytes(b));
	} else {
		return 0;
	}
	b->disk_full = 0;
	return 1;
}

int rn_buffer_maintain(struct rn_buffer *b)
{
	if (!b->disk_full)
		return 0;
	/* hand the pages acks freed back to the file system: the checkpoint truncates the file
	 * and empties the WAL */
	int wal_frames = 0, done = 0, page = 4096;
	int ck = sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &wal_frames,
					   &done);
	/* moving pages writes them to the WAL first: only with an empty WAL, and never more
	 * than half of what the file system has left */
	int64_t avail = fs_avail(b);
	pragma_int(b, "PRAGMA page_size", &page);
	int64_t pages = avail > 0 ? avail / 2 / page : 0;
	if (pages > VACUUM_PAGES)
		pages = VACUUM_PAGES;
	if (b->incremental && ck == SQLITE_OK && wal_frames <= 0 && pages > 0 &&
	    db_free_bytes(b) > 0) {
		char stmt[64];
		snprintf(stmt, sizeof(stmt), "PRAGMA incremental_vacuum(%lld)", (long long)pages);
		if (sqlite3_exec(b->db, stmt, NULL, NULL, NULL) == SQLITE_OK)
			sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
						  NULL);
	}
	return disk_room_returned(b);
}

int rn_buffer_disk_full(const struct rn_buffer *b)
{
	return b->disk_full;
}

int rn_buffer_commit(struct rn_buffer *b, int stream, int64_t offset, int64_t next_seq,
		     uint32_t nrec, const void *chunk, size_t len,
		     const struct rn_buffer_ckpt *ckpts, size_t nckpt)
{
	struct rn_buffer_chunk c = {stream, offset, next_seq, nrec, chunk, len};
	return rn_buffer_commit_many(b, &c, chunk ? 1 : 0, ckpts, nckpt);
}

/*
 * A COMMIT whose WAL sync failed has its frames in the WAL, whole, even though SQLite (and so
 * the caller) takes it as not done: after a crash the next start would find it committed,
 * and a source told that its records were not stored (an MQTT broker that got no ack) would
 * deliver them again, stored twice. SQLite writes the next transaction where those frames
 * are, and WAL recovery stops at the first frame that does not continue the checksum chain,
 * so one small write transaction at once (the schema version, rewritten as it is) buries
 * them. Best effort: if the disk refuses that too, nothing better can be done.
 */
static void bury_failed_commit(struct rn_buffer *b)
{
	sqlite3_exec(b->db, b->rowid ? "PRAGMA user_version = 2" : "PRAGMA user_version = 1", NULL,
		     NULL, NULL);
}

int rn_buffer_commit_many(struct rn_buffer *b, const struct rn_buffer_chunk *chunks, size_t nchunks,
			  const struct rn_buffer_ckpt *ckpts, size_t nckpt)
{
	sqlite3_stmt *s;
	int64_t total = 0;
	int rc;

	for (size_t i = 0; i < nchunks; i++)
		total += (int64_t)chunks[i].len;
	if (nchunks && b->disk_full && !disk_room_returned(b)) {
		snprintf(b->err, sizeof(b->err), "disk full (waiting for free space)");
		return RN_ENOSPC;
	}
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
		sqlite3_bind_int64(s, 4, (int64_t)c->len);
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
		sqlite3_bind_int64(s, 6, c->next_seq - (int64_t)c->nrec);
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
	if ((rc = exec_simple(b, Q_COMMIT))) {
		sqlite3_step(q(b, Q_ROLLBACK));
		bury_failed_commit(b);
		return rc;
	}
	b->bytes += total;
	return 0;
rollback:
	sqlite3_step(q(b, Q_ROLLBACK));
	return rc;
}

#define VICTIMS_MAX 64

/*
 * Replaces the records of the chunks `sel` (bound, returning stream, off, nrec, seq0,
 * length) yields with tombstones from fn, in one transaction per batch, until `need` bytes
 * are freed (need < 0: every chunk it yields). Offsets stay: the stream still sends one
 * message per offset, so the server's offset order is kept.
 */
static int tombstone(struct rn_buffer *b, int qi, int stream, int64_t cutoff, int why, int64_t need,
		     rn_buffer_tomb_fn fn, void *ctx, uint64_t *records)
{
	struct rn_buffer_victim v[VICTIMS_MAX];
	struct rn_buf tomb = {0};
	int64_t freed = 0;
	int rc = 0;

	*records = 0;
	while (need < 0 || freed < need) {
		sqlite3_stmt *s = q(b, qi);
		size_t n = 0;
		int64_t batch_freed = 0;
		uint64_t batch_records = 0; /* counted only once the batch is committed */
		if (qi == Q_EXPIRED) {
			sqlite3_bind_int(s, 1, stream);
			sqlite3_bind_int64(s, 2, cutoff);
		}
		while (n < VICTIMS_MAX && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			v[n] = (struct rn_buffer_victim){
				sqlite3_column_int(s, 0), sqlite3_column_int64(s, 1),
				sqlite3_column_int64(s, 3), (uint32_t)sqlite3_column_int64(s, 2),
				sqlite3_column_int64(s, 4)};
			n++;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = db_fail(b, "find chunks to drop");
			break;
		}
		sqlite3_reset(s);
		rc = 0;
		if (!n)
			break;
		if ((rc = exec_simple(b, Q_BEGIN)))
			break;
		for (size_t i = 0; i < n && (need < 0 || freed + batch_freed < need); i++) {
			rn_buf_reset(&tomb);
			if ((rc = fn(ctx, &v[i], why, &tomb)))
				goto rollback;
			s = q(b, Q_TOMB);
			sqlite3_bind_int(s, 1, v[i].stream);
			sqlite3_bind_int64(s, 2, v[i].offset);
			sqlite3_bind_blob(s, 3, tomb.data ? (const void *)tomb.data : "",
					  (int)tomb.len, SQLITE_STATIC);
			sqlite3_bind_int(s, 4, why);
			if (sqlite3_step(s) != SQLITE_DONE) {
				rc = db_fail(b, "store tombstone");
				goto rollback;
			}
			s = q(b, Q_DROP_COUNT);
			sqlite3_bind_int(s, 1, v[i].stream);
			sqlite3_bind_int64(s, 2, why == RN_BUFFER_DROP_FULL ? v[i].nrec : 0);
			sqlite3_bind_int64(s, 3, why == RN_BUFFER_DROP_EXPIRED ? v[i].nrec : 0);
			sqlite3_bind_int64(s, 4, v[i].bytes - (int64_t)tomb.len);
			if (sqlite3_step(s) != SQLITE_DONE) {
				rc = db_fail(b, "count dropped records");
				goto rollback;
			}
			batch_freed += v[i].bytes - (int64_t)tomb.len;
			batch_records += v[i].nrec;
		}
		if ((rc = exec_simple(b, Q_COMMIT)))
			goto rollback;
		freed += batch_freed;
		b->bytes -= batch_freed;
		*records += batch_records;
		continue;
	rollback:
		sqlite3_step(q(b, Q_ROLLBACK));
		break;
	}
	rn_buf_free(&tomb);
	if (!rc && need >= 0 && freed < need) {
		snprintf(b->err, sizeof(b->err), "buffer full and nothing left to drop");
		rc = RN_EFULL;
	}
	return rc;
}

int rn_buffer_drop_oldest(struct rn_buffer *b, int64_t need, rn_buffer_tomb_fn fn, void *ctx,
			  uint64_t *records)
{
	return tombstone(b, Q_VICTIMS, 0, 0, RN_BUFFER_DROP_FULL, need > 0 ? need : 1, fn, ctx,
			 records);
}

int rn_buffer_expire(struct rn_buffer *b, int stream, int64_t older_than_us, rn_buffer_tomb_fn fn,
		     void *ctx, uint64_t *records)
{
	int64_t now = rn_now_us();
	*records = 0;
	/* chunks stored before the wall clock was set look decades old: their age starts now */
	if (now >= RN_CLOCK_TRUSTED_US) {
		sqlite3_stmt *s = q(b, Q_UNTRUSTED);
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int64(s, 2, RN_CLOCK_TRUSTED_US);
		if (sqlite3_step(s) != SQLITE_DONE)
			return db_fail(b, "restart untrusted chunk ages");
	} else {
		return 0; /* no trustworthy clock, no ages */
	}
	return tombstone(b, Q_EXPIRED, stream, older_than_us, RN_BUFFER_DROP_EXPIRED, -1, fn, ctx,
			 records);
}

int64_t rn_buffer_oldest_us(struct rn_buffer *b, int stream)
{
	sqlite3_stmt *s = q(b, Q_OLDEST);
	int64_t t = 0;
	sqlite3_bind_int(s, 1, stream);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		t = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return t;
}

int64_t rn_buffer_records(struct rn_buffer *b)
{
	sqlite3_stmt *s = q(b, Q_RECORDS);
	int64_t n = -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

int64_t rn_buffer_bytes_upto(struct rn_buffer *b, int stream, int64_t offset)
{
	sqlite3_stmt *s = q(b, Q_BYTES_UPTO);
	int64_t n = 0;
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, offset);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/* Version 2: a large chunk goes from the file into out without an intermediate copy. */
static int chunk_get_rowid(struct rn_buffer *b, int stream, int64_t offset, struct rn_buf *out)
{
	sqlite3_stmt *s = q(b, Q_CHUNK_REF);
	sqlite3_blob *h = NULL;
	int64_t id, len;
	int rc;
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, offset);
	sqlite3_bind_int(s, 3, (int)BLOB_READ_MIN);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return RN_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(b, "read chunk");
	id = sqlite3_column_int64(s, 0);
	len = sqlite3_column_int64(s, 1);
	if (len < BLOB_READ_MIN) {
		rc = rn_buf_append(out, sqlite3_column_blob(s, 2), (size_t)len);
		sqlite3_reset(s);
		return rc;
	}
	sqlite3_reset(s);
	if ((rc = rn_buf_reserve(out, (size_t)len)))
		return rc;
	/* the handle is closed at once: an open one would hold a read transaction (and the WAL) */
	if (sqlite3_blob_open(b->db, "main", "chunks", "bytes", id, 0, &h) != SQLITE_OK ||
	    sqlite3_blob_read(h, out->data + out->len, (int)len, 0) != SQLITE_OK) {
		rc = db_fail(b, "read chunk blob");
		sqlite3_blob_close(h);
		return rc;
	}
	sqlite3_blob_close(h);
	out->len += (size_t)len;
	return 0;
}

int rn_buffer_chunk_get(struct rn_buffer *b, int stream, int64_t offset, struct rn_buf *out)
{
	sqlite3_stmt *s;
	int rc;
	if (b->rowid)
		return chunk_get_rowid(b, stream, offset, out);
	s = q(b, Q_CHUNK_GET);
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

static int ack_once(struct rn_buffer *b, int stream, int64_t acked);

/*
 * While the disk is full every ack is followed by a TRUNCATE checkpoint, so the WAL never
 * holds more than one ack's pages (left alone it would grow to the autocheckpoint size,
 * more than the released reserve); an ack that still fails for space gets one checkpoint
 * and one retry.
 */
int rn_buffer_ack(struct rn_buffer *b, int stream, int64_t acked)
{
	int rc = ack_once(b, stream, acked);
	if (rc == RN_ENOSPC) {
		sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		rc = ack_once(b, stream, acked);
	}
	if (!rc && b->disk_full)
		sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return rc;
}

static int ack_once(struct rn_buffer *b, int stream, int64_t acked)
{
	sqlite3_stmt *s;
	int64_t freed = 0;
	int rc;
	if ((rc = exec_simple(b, Q_BEGIN)))
		return rc;
	s = q(b, Q_ACK_SUM);
	sqlite3_bind_int(s, 1, stream);
	sqlite3_bind_int64(s, 2, acked);
	/* A failed step must end the ack: SQLite may have rolled the transaction back (it does
	 * on out-of-memory), and the statements after it would each commit on their own, with
	 * the byte count wrong. */
	if (sqlite3_step(s) != SQLITE_ROW) {
		rc = db_fail(b, "sum acked");
		goto rollback;
	}
	freed = sqlite3_column_int64(s, 0);
	sqlite3_reset(s); /* a statement left on a row would pin the WAL (no checkpoint) */
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
	sqlite3_bind_int64(s, 3, freed);
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
