/*
 * The agent's disk buffer: one SQLite database (WAL journal) holding every stream's chunks
 * until the server acknowledges them, the streams' offsets and server ids, and the sources'
 * resume positions (checkpoints). It is the only code that includes sqlite3.h. What it
 * guarantees: a chunk and the checkpoints handed to the same rn_buffer_commit() become
 * durable together or not at all (one transaction), so a crash never loses or repeats
 * source data; see buffer/DESIGN.md. What it does not do: encode chunks, talk to the
 * network, or decide when to commit (the agent's pipeline batches commits).
 *
 * Lifetime: the agent opens one buffer at start (rn_buffer_open) and closes it at exit. Not
 * thread-safe: every call happens on the agent's loop thread.
 */
#ifndef RN_BUFFER_H
#define RN_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

struct rn_buffer;

enum rn_buffer_sync { RN_BUFFER_SYNC_NORMAL = 0, RN_BUFFER_SYNC_FULL = 1 };

struct rn_buffer_options {
	const char *path;         /* database file; required. -wal/-shm files live beside it */
	enum rn_buffer_sync sync; /* NORMAL survives process crashes; FULL also power loss */
	int64_t max_bytes;        /* cap on the sum of stored chunk bytes; 0 = no cap */
};

/* One stream's persistent state. Strings are owned by the struct (rn_buffer_stream_clear). */
struct rn_buffer_stream {
	int id;              /* the agent's small stream id (SQLite rowid), > 0 */
	char *name;          /* the source name */
	char *table;         /* the destination table */
	char *server_id;     /* NULL until the server assigned one */
	int64_t next_offset; /* offset the next chunk gets; chunks are 0,1,2,... */
	int64_t next_seq;    /* seq the next record gets; records are 0,1,2,... */
	int64_t acked;       /* highest offset the server acknowledged, -1 if none */
	int64_t bytes;       /* chunk bytes still stored (not yet acked) */
	int64_t chunks;      /* chunks still stored */
};

/* A chunk to store. `offset` must equal the stream's next_offset (RN_EINVAL otherwise); the
 * stream's next_offset becomes offset+1 and next_seq grows by nrec. */
struct rn_buffer_chunk {
	int stream;
	int64_t offset;
	int64_t nrec;
	const void *data;
	size_t len;
};

/* A source's resume position: an opaque blob replaced as a whole. */
struct rn_buffer_ckpt {
	const char *source;
	const void *state;
	size_t len;
};

/*
 * Opens (or creates) the buffer. Runs PRAGMA quick_check first; a file that is not a
 * database, is corrupt, or fails the check is renamed to "<path>.corrupt-<unixtime>" (with
 * its -wal/-shm), logged at ERROR, and a fresh buffer is created: corruption never stops
 * the agent. *recovered (may be NULL) is set to 1 when that happened. Returns 0, RN_EINVAL
 * (no path), RN_ENOMEM, or RN_EBUFFER when even a fresh database cannot be created (for
 * example the directory is not writable); then *out is NULL and `err` holds the reason.
 */
int rn_buffer_open(struct rn_buffer **out, const struct rn_buffer_options *opt, int *recovered,
		   char *err, size_t errcap);
/* Finalizes statements and closes the database. NULL is a no-op. */
void rn_buffer_close(struct rn_buffer *b);

/* Last SQLite error in words ("" if none). */
const char *rn_buffer_errmsg(const struct rn_buffer *b);

/* Finds the stream (name, table) or creates it with offsets 0 and acked -1, filling *out
 * (caller owns the strings; rn_buffer_stream_clear). 0, RN_ENOMEM, RN_EBUFFER. */
int rn_buffer_stream_get(struct rn_buffer *b, const char *name, const char *table,
			 struct rn_buffer_stream *out);
/* Every stream, ordered by id. *out is an rn_malloc'd array (rn_buffer_streams_free).
 * 0, RN_ENOMEM, RN_EBUFFER. */
int rn_buffer_streams(struct rn_buffer *b, struct rn_buffer_stream **out, size_t *n);
void rn_buffer_stream_clear(struct rn_buffer_stream *s);
void rn_buffer_streams_free(struct rn_buffer_stream *v, size_t n);

/*
 * Stores chunks (in order; several per stream allowed) and checkpoints in ONE transaction:
 * all or nothing. Either array may be empty. Returns 0; RN_EFULL when the chunks would push
 * the stored bytes past max_bytes (nothing written; an empty buffer always accepts, so one
 * oversized chunk cannot wedge a stream); RN_EINVAL for a chunk whose offset is not the
 * stream's next_offset or an unknown stream (nothing written); RN_ENOSPC when the disk is
 * full; RN_EBUFFER for other SQLite failures (nothing written).
 */
int rn_buffer_commit(struct rn_buffer *b, const struct rn_buffer_chunk *chunks, size_t nchunks,
		     const struct rn_buffer_ckpt *ckpts, size_t nckpts);

/* Appends the bytes of chunk (stream, offset) to out. 0, RN_ENOTFOUND, RN_ENOMEM (out's
 * cap), RN_EBUFFER. */
int rn_buffer_chunk_get(struct rn_buffer *b, int stream, int64_t offset, struct rn_buf *out);

/* Deletes the stream's chunks with offset <= acked and stores acked (never lowers it).
 * 0, RN_EBUFFER. */
int rn_buffer_ack(struct rn_buffer *b, int stream, int64_t acked);

/* Persists the server's stream id for the stream (durably, before returning). 0,
 * RN_ENOTFOUND, RN_EBUFFER. */
int rn_buffer_set_server_id(struct rn_buffer *b, int stream, const char *server_id);

/* Copies the checkpoint of `source` into out (replacing its content). 0, RN_ENOTFOUND,
 * RN_ENOMEM, RN_EBUFFER. */
int rn_buffer_checkpoint_get(struct rn_buffer *b, const char *source, struct rn_buf *out);

/* Sum of stored chunk bytes (kept in memory, exact). */
int64_t rn_buffer_bytes(const struct rn_buffer *b);

#endif
