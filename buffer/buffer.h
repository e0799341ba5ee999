/*
 * The agent's disk buffer: one SQLite database (WAL journal) holding the streams, their
 * chunks (the exact request bytes to send) and the sources' resume positions. A chunk and
 * the checkpoints of the records in it commit in one transaction, so after any crash the
 * buffer and the sources agree: nothing is lost, nothing read twice. It is the only code
 * that includes sqlite3.h. `sync = normal` survives process crashes; `full` also power loss.
 * At open it checks the file; a corrupt file is moved aside (loudly) and a new one started.
 *
 * Lifetime: opened by the agent at start, closed at exit; loop thread only.
 * Durability notes: buffer/DESIGN.md.
 */
#ifndef RN_BUFFER_H
#define RN_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

struct rn_buffer;

struct rn_buffer_options {
	const char *path;      /* database file; required */
	int sync_full;         /* 1 = synchronous=FULL */
	int64_t max_bytes;     /* chunk bytes cap; 0 = unlimited */
	int64_t reserve_bytes; /* disk reserve released on ENOSPC (see rn_buffer_maintain); 0 = none
				*/
};

struct rn_buffer_stream {
	int id;
	char name[128];
	char table[256];
	char server_id[64];      /* "" until the server assigned one */
	int64_t next_offset;     /* offset the next chunk gets */
	int64_t next_seq;        /* seq the next record gets */
	int64_t acked;           /* highest offset the server made durable, -1 if none */
	int64_t bytes;           /* chunk bytes buffered */
	int64_t dropped_records; /* replaced by tombstones under drop_oldest, ever */
	int64_t expired_records; /* replaced by tombstones for their age (TTL), ever */
};

/* A source's resume position, opaque to the buffer. */
struct rn_buffer_ckpt {
	const char *source;
	const void *state;
	size_t len;
};

/* Opens or creates the buffer. A file that fails its integrity check is renamed to
 * <path>.corrupt-<unix time> and a fresh buffer is created (*recovered = 1). RN_EBUFFER
 * (detail in the log) if even a fresh file cannot be made; RN_ENOMEM when memory ran out,
 * also during the check (the file is then left where it is: the check could not decide). */
int rn_buffer_open(struct rn_buffer **out, const struct rn_buffer_options *opt, int *recovered);
void rn_buffer_close(struct rn_buffer *b);

/* Finds the stream by name, creating it for `table`. RN_EBUFFER. */
int rn_buffer_stream_get(struct rn_buffer *b, const char *name, const char *table,
			 struct rn_buffer_stream *out);
/* Reloads stream `id`'s counters. RN_ENOTFOUND, RN_EBUFFER. */
int rn_buffer_stream_load(struct rn_buffer *b, int id, struct rn_buffer_stream *out);

/* Ids of every stream in the buffer, ascending: up to max into ids, the total in *n (which
 * may exceed max: call again with more room). 0 or RN_EBUFFER. */
int rn_buffer_stream_ids(struct rn_buffer *b, int *ids, size_t max, size_t *n);

/*
 * In one transaction: stores chunk (stream, offset) with its bytes, sets the stream's
 * next_offset = offset + 1 and next_seq, and saves every checkpoint given. The offset must
 * be the stream's next_offset (RN_EINVAL otherwise: a gap, a repeat or an unknown stream;
 * nothing written). RN_EFULL if the byte cap would be passed (nothing written; an empty
 * buffer accepts any one chunk, so an oversized chunk cannot wedge a stream), RN_ENOSPC,
 * RN_EBUFFER. Chunk may be NULL (len 0, nrec 0) to save checkpoints alone; that is never
 * refused for space.
 */
int rn_buffer_commit(struct rn_buffer *b, int stream, int64_t offset, int64_t next_seq,
		     uint32_t nrec, const void *chunk, size_t len,
		     const struct rn_buffer_ckpt *ckpts, size_t nckpt);

/* One chunk of a commit_many. */
struct rn_buffer_chunk {
	int stream;
	int64_t offset;
	int64_t next_seq; /* the stream's next_seq after this chunk */
	uint32_t nrec;
	const void *data;
	size_t len;
};

/* rn_buffer_commit for several chunks (of different streams, or consecutive offsets of one)
 * and the checkpoints, all in one transaction: a source that routes records to several
 * streams commits its position together with every chunk it covers. The cap check is on
 * the sum of the chunks. Same results as rn_buffer_commit. */
int rn_buffer_commit_many(struct rn_buffer *b, const struct rn_buffer_chunk *chunks, size_t nchunks,
			  const struct rn_buffer_ckpt *ckpts, size_t nckpt);

/* Why a chunk's records were replaced by a tombstone (chunks.dropped). */
enum { RN_BUFFER_DROP_FULL = 1, RN_BUFFER_DROP_EXPIRED = 2 };

/* A chunk about to lose its records. */
struct rn_buffer_victim {
	int stream;
	int64_t offset;
	int64_t seq0; /* seq of its first record, -1 if unknown (a pre-v1 file) */
	uint32_t nrec;
	int64_t bytes; /* its size now */
};

/* Builds the tombstone that replaces a victim: a whole chunk for the same offset that says
 * what was lost (the agent makes it one record flagged as dropped). Appends to out; 0 or an
 * RN_E* code (nothing is changed then). */
typedef int (*rn_buffer_tomb_fn)(void *ctx, const struct rn_buffer_victim *v, int why,
				 struct rn_buf *out);

/*
 * Policy drop_oldest: frees at least `need` bytes under the cap by replacing the oldest
 * chunks (by the time they were stored, over all streams) with tombstones. A chunk keeps its
 * offset, so every stream still sends a gapless offset sequence and the loss is visible
 * downstream as a tombstone row with the count. *records = records dropped; they are also
 * added to the stream's dropped_records. RN_EFULL if everything is already a tombstone,
 * RN_ENOSPC, RN_EBUFFER. The work is done in transactions of up to 64 chunks: after an
 * error the batches committed before it stay, and *records counts exactly those.
 */
int rn_buffer_drop_oldest(struct rn_buffer *b, int64_t need, rn_buffer_tomb_fn fn, void *ctx,
			  uint64_t *records);

/* TTL: replaces every chunk of `stream` stored before older_than_us (wall clock) with a
 * tombstone; counted in expired_records. Does nothing while the wall clock is before
 * RN_CLOCK_TRUSTED_US; chunks stored before the clock was set have their age restarted
 * (they are not expired for a clock jump). 0, RN_ENOSPC, RN_EBUFFER; batches and *records
 * after an error as for rn_buffer_drop_oldest. */
int rn_buffer_expire(struct rn_buffer *b, int stream, int64_t older_than_us, rn_buffer_tomb_fn fn,
		     void *ctx, uint64_t *records);

/* Wall-clock time the stream's oldest buffered chunk was stored, 0 if it has none. */
int64_t rn_buffer_oldest_us(struct rn_buffer *b, int stream);

/* Records in the buffered chunks of all streams, tombstones left out (for status and
 * health reports: a scan of the chunk rows, not of their bytes); -1 on an error. */
int64_t rn_buffer_records(struct rn_buffer *b);

/* Bytes of the stream's buffered chunks with offset <= `offset` (0 if none, or on an error:
 * for status output only). With the durability ack: what is kept until the table has it. */
int64_t rn_buffer_bytes_upto(struct rn_buffer *b, int stream, int64_t offset);

/*
 * Disk full. The first ENOSPC (from any call) puts the buffer in the disk-full state: it
 * releases its reserve file so that acks can still delete chunks, and commits that carry
 * chunks return RN_ENOSPC without touching the file (checkpoint-only commits, acks and
 * server ids go on). rn_buffer_maintain(), called periodically, gives pages that acks freed
 * back to the file system and, once the file system has room for the reserve twice over,
 * takes the reserve again and ends the state (returns 1 then, else 0).
 */
int rn_buffer_maintain(struct rn_buffer *b);
int rn_buffer_disk_full(const struct rn_buffer *b);

/* Appends the bytes of chunk (stream, offset) to out. RN_ENOTFOUND, RN_EBUFFER. */
int rn_buffer_chunk_get(struct rn_buffer *b, int stream, int64_t offset, struct rn_buf *out);

/* Deletes the stream's chunks with offset <= acked and records acked. RN_EBUFFER. */
int rn_buffer_ack(struct rn_buffer *b, int stream, int64_t acked);

/* Stores the server's stream id for the stream (durably, before it is used). */
int rn_buffer_set_server_id(struct rn_buffer *b, int stream, const char *server_id);

/* A source's saved resume position into out. RN_ENOTFOUND if none. */
int rn_buffer_checkpoint_load(struct rn_buffer *b, const char *source, struct rn_buf *out);

/* Chunk bytes buffered in total. */
int64_t rn_buffer_bytes(const struct rn_buffer *b);

const char *rn_buffer_errmsg(const struct rn_buffer *b);

#endif
