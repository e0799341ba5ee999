/*
 * The server's write-ahead log. Every batch a client sends is appended here and fsynced
 * before it is acknowledged; the materializer turns WAL contents into Delta commits, after
 * which whole segments are deleted. The entry codec (rn_wal_entry_encode/decode) is an
 * I/O-free core and a fuzz target; the rest is a thin file adapter: segment files
 * data_root/_wal/wal-<16 digit id>.log, appends buffered in memory and written + fdatasync'd
 * by rn_wal_sync() (group commit: the caller syncs once per loop iteration for every entry
 * appended in it), recovery by rn_wal_replay() at start. The group commit also comes in two
 * halves around rn_wal_sync_io(), so that the write and fdatasync of one group can run on
 * another thread while the loop appends the next group.
 *
 * Lifetime: one WAL per server, created at start, used on the loop thread only, except
 * rn_wal_sync_io() (see there).
 * Format and recovery rules: server/wal/DESIGN.md.
 */
#ifndef RN_WAL_H
#define RN_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_WAL_HDR_LEN 12

/* One durable batch. Pointers are slices into the encoded bytes when decoded. */
struct rn_wal_entry {
	const char *stream_id;
	size_t stream_id_len;
	const char *table;
	size_t table_len;
	int64_t offset;
	int record_type;
	const uint8_t *batch; /* ProtoEncodedRecordBatch / JsonRecordBatch wire bytes */
	size_t batch_len;
	/* The packed form (entry format 2): `packed` holds a zstd frame as the client sent it
	 * (its gRPC message, grpc-encoding zstd), stored verbatim; it decompresses to plain_len
	 * bytes of which the batch is [batch_off, batch_off + batch_len). On append, a non-NULL
	 * packed stores the entry so (batch is then not read: batch_off, batch_len and
	 * plain_len describe it); NULL stores batch itself (format 1). On decode, a packed
	 * entry has batch NULL until rn_wal_entry_unpack; replay and the scans hand their
	 * callbacks unpacked entries only. */
	const uint8_t *packed;
	size_t packed_len;
	size_t plain_len;
	size_t batch_off;
};

/* Appends the encoded entry to out. RN_EINVAL (a field too long, a batch slice outside
 * plain_len), RN_ENOMEM. */
int rn_wal_entry_encode(struct rn_buf *out, const struct rn_wal_entry *e);

/* Decodes one entry at p. Returns 1 and sets *used on success; 0 if the input ends inside
 * the entry (a torn tail); RN_ECORRUPT for a bad magic, length, checksum, format or (format
 * 2) a batch slice outside plain_len. The CRC covers the stored bytes, packed or not. */
int rn_wal_entry_decode(const uint8_t *p, size_t len, struct rn_wal_entry *e, size_t *used);

/* Makes a decoded packed entry usable: decompresses e->packed into plain (reset first; it
 * must allow plain_len bytes: its max 0 or >= plain_len) and points e->batch into it, valid
 * until plain changes. An entry that is not packed is left as it is. 0; RN_ECORRUPT when the
 * frame does not decompress to exactly plain_len bytes; RN_ENOMEM. */
int rn_wal_entry_unpack(struct rn_wal_entry *e, struct rn_buf *plain);

/* CRC-32C (Castagnoli) of len bytes. */
uint32_t rn_crc32c(uint32_t crc, const void *p, size_t len);
/* The same in portable code (what rn_crc32c uses without SSE4.2); for tests. */
uint32_t rn_crc32c_sw(uint32_t crc, const void *p, size_t len);

struct rn_wal;

/* Opens (creating) dir and takes its lock (dir/LOCK, flock): RN_EEXIST if another process
 * holds it. Does not read segments: call rn_wal_replay next. RN_EIO. */
int rn_wal_open(struct rn_wal **out, const char *dir);
void rn_wal_close(struct rn_wal *w);

/* Reads every segment in order and calls fn for each valid entry (slices valid only during
 * the call; packed entries unpacked). A torn or corrupt tail of a segment is cut off (the
 * file truncated at the last good entry) and logged. An entry whose checksum holds but whose
 * packed batch does not decompress stops the replay with RN_ECORRUPT, the segment left as
 * it is (rn_wal_errmsg names it and the byte): it cannot be torn, so it is no tail to cut,
 * and what follows it was acknowledged. After replay, appends go to a new segment. fn's
 * non-zero return stops the replay and is returned. RN_EIO, RN_ENOSPC (the new segment),
 * RN_ENOMEM, RN_ECORRUPT. */
int rn_wal_replay(struct rn_wal *w, int (*fn)(void *ctx, const struct rn_wal_entry *e), void *ctx);

/* During rn_wal_replay's callback: the id of the segment the entry comes from (so the
 * caller can keep it, see rn_wal_drop_before). 0 outside a replay. */
uint64_t rn_wal_replay_segment(const struct rn_wal *w);

/* Reads one older segment again (after replay, e.g. to retry a table that could not be
 * recovered) and calls fn for each entry, as rn_wal_replay does but changing nothing.
 * fn's non-zero return stops the scan and is returned. RN_EIO (unreadable or gone),
 * RN_EINVAL (the segment being written), RN_ENOMEM, RN_ECORRUPT (a packed entry that does
 * not decompress; message set). */
int rn_wal_scan(struct rn_wal *w, uint64_t seg, int (*fn)(void *ctx, const struct rn_wal_entry *e),
		void *ctx);

/* Reads every segment on disk in order, the one being written up to its durable length, and
 * calls fn for each entry, changing nothing: what the WAL holds durably now (the
 * materializer's refill reads a table's batches back from it). Needs nothing queued: call
 * rn_wal_sync first. fn's non-zero return stops the scan and is returned. RN_EINVAL (before
 * rn_wal_replay, or entries queued), RN_EIO, RN_ENOMEM, RN_ECORRUPT (as rn_wal_scan). */
int rn_wal_scan_all(struct rn_wal *w, int (*fn)(void *ctx, const struct rn_wal_entry *e),
		    void *ctx);

/* Bytes of segment seg on disk (0 if it is not there). */
uint64_t rn_wal_segment_bytes(const struct rn_wal *w, uint64_t seg);

/* Queues an entry for the next sync. RN_ENOMEM, RN_EINVAL (a field too long). */
int rn_wal_append(struct rn_wal *w, const struct rn_wal_entry *e);

/* Writes queued entries and fdatasyncs (begin, io and end on the calling thread). 0 when
 * everything appended so far is durable; RN_EAGAIN while a group is in flight;
 * RN_EIO / RN_ENOSPC otherwise: the queued entries are dropped (never acknowledge them)
 * and the segment is abandoned (cut back to its durable length and never written again:
 * after a failed fsync its cached pages cannot be trusted), so the next sync starts a new
 * segment. Before rn_wal_replay: RN_EIO. */
int rn_wal_sync(struct rn_wal *w);

/*
 * The group commit in two halves. rn_wal_sync_begin (loop) hands every queued entry to one
 * group and returns 1 (0: nothing queued; RN_EAGAIN: a group is in flight already; errors of
 * rn_wal_sync when no segment can be opened: the queue is dropped, nothing is in flight).
 * rn_wal_sync_io then writes and fdatasyncs the group; it may run on any one thread and
 * touches only the group and the segment's descriptor, so the loop may go on calling
 * rn_wal_append, rn_wal_dirty, rn_wal_bytes and rn_wal_segment_bytes meanwhile, and must call
 * nothing else of the WAL (rn_wal_sync, rotate, scan_all fail with RN_EAGAIN / RN_EINVAL)
 * until rn_wal_sync_end. rn_wal_sync_end (loop, after rn_wal_sync_io returned, ordered by a
 * lock or a join) applies the result: 0, the group is durable; RN_EIO / RN_ENOSPC, the
 * group is dropped and so is everything appended since begin (it follows the group in its
 * streams), and the segment is abandoned, as in rn_wal_sync. Never acknowledge an entry
 * before the rn_wal_sync_end that covers it returned 0.
 */
int rn_wal_sync_begin(struct rn_wal *w);
void rn_wal_sync_io(struct rn_wal *w);
int rn_wal_sync_end(struct rn_wal *w);

/* True between rn_wal_sync_begin returning 1 and rn_wal_sync_end. */
int rn_wal_syncing(const struct rn_wal *w);

/* True when entries are queued and not yet handed to a sync. */
int rn_wal_dirty(const struct rn_wal *w);

/* Syncs, then starts a new segment. *seg receives the new segment's id: every entry
 * appended before the call is in a segment with a smaller id. Errors of rn_wal_sync, and
 * RN_EIO / RN_ENOSPC when the new segment cannot be made durably (appends then stay in
 * the current one). */
int rn_wal_rotate(struct rn_wal *w, uint64_t *seg);

/* Deletes every segment whose id is < seg, except those keep (may be NULL) returns
 * non-zero for. A segment that cannot be deleted is logged and left for the next call.
 * 0, RN_EIO (the directory cannot be listed), RN_ENOMEM. */
int rn_wal_drop_before(struct rn_wal *w, uint64_t seg, int (*keep)(void *ctx, uint64_t seg),
		       void *ctx);

/* Bytes in all segments on disk. */
uint64_t rn_wal_bytes(const struct rn_wal *w);

/* Bytes made durable by group commits since rn_wal_open (what the WAL wrote to its
 * segments, packed entries counted as stored). */
uint64_t rn_wal_written(const struct rn_wal *w);

const char *rn_wal_errmsg(const struct rn_wal *w);

#endif
