/*
 * One Delta table in a table store (server/store/tstore.h: a local directory or an S3
 * prefix): creating it, writing data files durably, and committing versions to _delta_log
 * with put-if-absent (rn_tstore_put_new: link() of an fsynced temp file, or a conditional
 * PUT), so several writers can append to one table. All its I/O goes through the store. It replays
 * the JSON log incrementally to know the latest version and, per appId, the highest txn version —
 * the exactly-once watermark. The replay keeps the whole snapshot (protocol, metaData, live adds,
 * remove tombstones, txns) so it can write classic Parquet checkpoints (checkpoint.h) and start
 * from the newest one on open; it also cleans up expired log files behind a checkpoint, commits
 * rewrites (rn_delta_commit_rewrite) and vacuums removed data files. This is the log core: it knows
 * nothing of when maintenance is due or of how small files are picked and rewritten; the
 * compaction (compact.c) and the maintenance runs (maint.c) are built on it, one way, and
 * take their settings as arguments (tests/layering.sh checks delta.c includes neither).
 *
 * Lifetime: a handle is used on one thread at a time and shares nothing mutable with other
 * handles, so several handles on one table (the materializer's on the loop, a maintenance
 * job's on a worker) are independent writers, ordered by the log's put-if-absent. Opened by
 * the materializer per table and closed at exit; a maintenance job opens and closes its own.
 */
#ifndef RN_DELTA_H
#define RN_DELTA_H

#include <stddef.h>
#include <stdint.h>

struct rn_delta;
struct rn_tstore;

/* Opens the table in `dir` (a local directory; any root rn_tstore_open takes, opened with
 * the default store settings). With schema_json != NULL, a missing table (no version 0) is
 * created: directories made, version 0 committed with commitInfo, protocol (1,2) and
 * metaData carrying schema_json (a Spark struct schema). Without it, a missing table is
 * RN_ENOTFOUND. RN_EIO, RN_EDELTA (unreadable log), RN_ENOMEM. */
int rn_delta_open(struct rn_delta **out, const char *dir, const char *schema_json,
		  const char *engine_info);
/* rn_delta_open for a partitioned table: a table it creates gets metaData.partitionColumns
 * = the nparts names of parts (columns of schema_json; NULL/0 = unpartitioned). An existing
 * table keeps what its log says; see rn_delta_partition_columns. Same errors. */
int rn_delta_open_part(struct rn_delta **out, const char *dir, const char *schema_json,
		       const char *const *parts, size_t nparts, const char *engine_info);
/* rn_delta_open(_part) on a store the caller opened (rn_tstore_open). The handle takes st
 * over: rn_delta_close closes it, and a failed open closes it too. The store object is used
 * on the handle's thread only. Same errors, plus those of the store (RN_ECONNECT). */
int rn_delta_open_store(struct rn_delta **out, struct rn_tstore *st, const char *schema_json,
			const char *engine_info);
int rn_delta_open_store_part(struct rn_delta **out, struct rn_tstore *st, const char *schema_json,
			     const char *const *parts, size_t nparts, const char *engine_info);
void rn_delta_close(struct rn_delta *d);

/* 1 if `dir` holds a Delta table (its version 0 commit or a _last_checkpoint exists); a
 * local directory only. */
int rn_delta_exists(const char *dir);
/* rn_delta_exists on a store: 1, 0, or a negative rn_err code when the store cannot say. */
int rn_delta_exists_store(struct rn_tstore *st);
/* The handle's store (owned by the handle): for data file reads (rn_tstore_map) and deletes
 * of files the caller wrote and never committed. */
struct rn_tstore *rn_delta_store(const struct rn_delta *d);

/* Reads commits newer than the last one seen. 0, RN_EIO, RN_EDELTA. */
int rn_delta_refresh(struct rn_delta *d);

/* The table's schemaString (Spark JSON) from its latest metaData, or NULL. Valid until the
 * next refresh or commit. */
const char *rn_delta_schema(const struct rn_delta *d);

/* The table's partitionColumns from its latest metaData (*n = 0, NULL if none). Valid until
 * the next refresh or commit. */
char *const *rn_delta_partition_columns(const struct rn_delta *d, size_t *n);

/* Latest version seen (after the last refresh or commit). */
int64_t rn_delta_version(const struct rn_delta *d);

/* That version's commitInfo.timestamp (Unix ms) when the handle read it as a commit file or
 * wrote it; -1 when it came from a checkpoint or its commit has no usable timestamp. */
int64_t rn_delta_commit_time(const struct rn_delta *d);

/* Highest txn version for app_id, or -1 if none. Does not refresh. */
int64_t rn_delta_txn(const struct rn_delta *d, const char *app_id);

/* Writes `len` bytes as a new data file (rn_tstore_put: durable when it returns). On success
 * name receives the file name relative to the table (ASCII, no escaping needed) and
 * *mtime_ms its modification time (the store's; the clock's if it cannot be read back).
 * RN_EIO, RN_ENOSPC, RN_ECONNECT, RN_ENOMEM. */
int rn_delta_write_file(struct rn_delta *d, const void *data, size_t len, char *name, size_t cap,
			int64_t *mtime_ms);
/* rn_delta_write_file into the subdirectory `subdir` of the table (a relative path as it is
 * on disk, e.g. Hive partition directories "day=2026-01-02/site=a%3Ab"; NULL or "" = the
 * table directory), created if needed with its new parents fsynced. name receives
 * "subdir/part-....parquet" as on disk: URI-encode it (partition.h rn_part_uri) for the log.
 * RN_EINVAL (subdir absolute, with "..", or too long), RN_EIO, RN_ENOSPC. */
int rn_delta_write_file_in(struct rn_delta *d, const char *subdir, const void *data, size_t len,
			   char *name, size_t cap, int64_t *mtime_ms);

struct rn_delta_add {
	const char *path; /* relative, as returned by rn_delta_write_file */
	int64_t size;
	int64_t mtime_ms;
	const char *stats; /* JSON text of the stats object, or NULL */
	/* JSON text of the partitionValues object ({"col":"v","c2":null}), or NULL = {} */
	const char *partition_values;
};

struct rn_delta_txn {
	const char *app_id;
	int64_t version;
};

/*
 * Commits adds + txns as the next version. The commit text is built whole before anything is
 * written: a failure to build it (RN_ENOMEM) writes nothing and takes no version. When every
 * txn is already at or past ours in the snapshot, RN_EEXIST without writing. Once the version
 * is durable the call succeeds (a snapshot that could not take it in is rebuilt from the log
 * before its next use). If another writer took that version, the newer
 * commits are read: a protocol or metaData change aborts with RN_ECONFLICT; when every one
 * of our app ids has a txn with a version >= ours the batch is already in the table and the
 * call returns RN_EEXIST without writing; when only some have, RN_EOVERLAP (the rows of the
 * others are not in the table, those of these are: they must be built again without the
 * committed ones); otherwise it retries at the next version. On success *version receives
 * the committed version. RN_EIO, RN_ENOSPC, RN_ENOMEM. When the store cannot tell whether the
 * commit was written (RN_EIO), the version is read back before anything else: if it holds
 * this commit the snapshot takes it in but the call still fails (its durability is not
 * known), so a retry of the same txns returns RN_EEXIST; the text is never written at a
 * second version while the first attempt's outcome is open.
 */
int rn_delta_commit(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
		    const struct rn_delta_txn *txns, size_t ntxn, int64_t *version);

/*
 * rn_delta_commit where first[i] (NULL: not known) is the lowest offset (txn version) of
 * txns[i].app_id whose rows the adds hold: they hold that app id's offsets first[i] ..
 * txns[i].version. Another writer's txn for it inside that range (first[i] <= its version <
 * ours), in the snapshot or read after a lost race, means part of our rows is in the table
 * already: RN_EOVERLAP without writing, so no row is committed twice when two writers
 * (servers sharing a table) hold overlapping offsets of one stream. Same errors otherwise.
 */
int rn_delta_commit_from(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
			 const struct rn_delta_txn *txns, const int64_t *first, size_t ntxn,
			 int64_t *version);

const char *rn_delta_errmsg(const struct rn_delta *d);

/* ---- log health: checkpoints, cleanup, compaction commits, vacuum ---- */

/* Writes the checkpoint of the latest version (after a refresh) and then _last_checkpoint
 * (never moving it backwards). Tombstones older than tombstone_retention_ms are left out
 * once their data file is gone. *version (may be NULL) receives the version. RN_EDELTA (no
 * metaData), RN_ENOTSUP (table features this writer does not know), RN_EIO, RN_ENOSPC,
 * RN_ENOMEM. */
int rn_delta_checkpoint(struct rn_delta *d, int64_t tombstone_retention_ms, int64_t *version);
/* Version of the newest checkpoint read or written, or -1. */
int64_t rn_delta_checkpoint_version(const struct rn_delta *d);

/* Deletes JSON commits and checkpoints whose version is below the newest checkpoint
 * (_last_checkpoint) and whose mtime is older than retention_ms. *deleted counts them.
 * 0 (also when there is no checkpoint: nothing is deleted), RN_EIO. */
int rn_delta_cleanup(struct rn_delta *d, int64_t retention_ms, size_t *deleted);
/* rn_delta_cleanup that also keeps every version >= below: those another writer that has
 * not read past below - 1 may still try to commit after (INT64_MAX = none). */
int rn_delta_cleanup_below(struct rn_delta *d, int64_t retention_ms, int64_t below,
			   size_t *deleted);

/* The snapshot's files: the newest action per path; is_remove marks tombstones. Valid until
 * the next refresh or commit. */
struct rn_ckpt_file;
const struct rn_ckpt_file *const *rn_delta_files(const struct rn_delta *d, size_t *n);
const char *rn_delta_dir(const struct rn_delta *d);

/* Commits a rewrite: remove{dataChange:false} of every path in removed (each must be live)
 * plus add (dataChange:false), with put-if-absent. After a lost race the winning commits are
 * read: one that removed any input, or changed protocol/metaData, aborts with RN_ECONFLICT
 * (the caller deletes its new file and tries later); otherwise it retries at the next
 * version. RN_ECONFLICT also if an input is not live now. RN_EIO, RN_ENOSPC, RN_EAGAIN,
 * RN_ENOMEM. An attempt of unknown outcome that turns out to be in the log is a success (the
 * new file is referenced: the caller must keep it). */
int rn_delta_commit_rewrite(struct rn_delta *d, const char *const *removed, size_t nremoved,
			    const struct rn_delta_add *add, int64_t *version);

/* Deletes data files whose remove tombstone is older than retention_ms (0 = every
 * tombstone); live files are never touched (a tombstone is the newest action for its path).
 * dry_run only reports. cb (may be NULL) is called per file (path as in the log) deleted or,
 * in a dry run, to be deleted; nfiles and bytes total them. RN_EIO, RN_EDELTA. */
int rn_delta_vacuum(struct rn_delta *d, int64_t retention_ms, int dry_run,
		    void (*cb)(void *ctx, const char *path, int64_t size), void *ctx,
		    size_t *nfiles, int64_t *bytes);

/* The youngest an unreferenced file may be for the server's own vacuum to delete it,
 * whatever vacuum_retention says: a flush or compaction writes its data file before the
 * commit that names it, and a commit retried for a while keeps its file. */
#define RN_DELTA_ORPHAN_MIN_AGE_MS ((int64_t)3600000)

/* Deletes orphans: data files in the table that no action of the snapshot names (neither a
 * live add nor a tombstone) and whose mtime (S3: LastModified) is older than retention_ms
 * (it is not floored here: callers apply RN_DELTA_ORPHAN_MIN_AGE_MS). They are the files of
 * a flush or compaction that wrote its file but never committed it (a crash, a lost race).
 * Only data files: a key with any component starting with '.' or '_' (_delta_log/, temp
 * files, _change_data/ ...) is never touched, nor anything under a directory that holds a
 * _delta_log of its own (a nested table). The listing skips what the current snapshot names
 * (memory is bounded by the orphans), and the snapshot is refreshed after the listing to
 * decide, so a file committed while the listing ran is seen as referenced. A
 * snapshot path that is absolute or a URI (so not comparable with the store's keys) makes
 * the call refuse (RN_EDELTA) rather than guess. dry_run only reports. cb (may be NULL) gets
 * each key deleted or to be deleted; nfiles and bytes total them. At most
 * RN_DELTA_ORPHAN_MAX files per call (the rest go next time). RN_EIO, RN_EDELTA, RN_ENOMEM. */
#define RN_DELTA_ORPHAN_MAX ((size_t)1 << 20)
int rn_delta_vacuum_orphans(struct rn_delta *d, int64_t retention_ms, int dry_run,
			    void (*cb)(void *ctx, const char *path, int64_t size), void *ctx,
			    size_t *nfiles, int64_t *bytes);

#endif
