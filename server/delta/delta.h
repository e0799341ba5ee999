/*
 * One Delta table on a local filesystem: creating it, writing data files durably, and
 * committing versions to _delta_log with put-if-absent (link() of an fsynced temp file), so
 * several writers can append to one table. It replays the JSON log incrementally to know the
 * latest version and, per appId, the highest txn version — the exactly-once watermark.
 * Checkpoints are not written yet; the replay reads JSON commits only.
 *
 * Lifetime: opened by the materializer per table, used on one thread, closed at exit.
 */
#ifndef RN_DELTA_H
#define RN_DELTA_H

#include <stddef.h>
#include <stdint.h>

struct rn_delta;

/* Opens the table in `dir`. With schema_json != NULL, a missing table (no version 0) is
 * created: directories made, version 0 committed with commitInfo, protocol (1,2) and
 * metaData carrying schema_json (a Spark struct schema). Without it, a missing table is
 * RN_ENOTFOUND. RN_EIO, RN_EDELTA (unreadable log), RN_ENOMEM. */
int rn_delta_open(struct rn_delta **out, const char *dir, const char *schema_json,
		  const char *engine_info);
void rn_delta_close(struct rn_delta *d);

/* 1 if `dir` holds a Delta table (its version 0 commit exists), else 0. */
int rn_delta_exists(const char *dir);

/* Reads commits newer than the last one seen. 0, RN_EIO, RN_EDELTA. */
int rn_delta_refresh(struct rn_delta *d);

/* Latest version seen (after the last refresh or commit). */
int64_t rn_delta_version(const struct rn_delta *d);

/* Highest txn version for app_id, or -1 if none. Does not refresh. */
int64_t rn_delta_txn(const struct rn_delta *d, const char *app_id);

/* Writes `len` bytes as a new data file (temp name, fsync, rename, fsync dir). On success
 * name receives the file name relative to the table (ASCII, no escaping needed) and
 * *mtime_ms its modification time. RN_EIO, RN_ENOSPC. */
int rn_delta_write_file(struct rn_delta *d, const void *data, size_t len, char *name,
			size_t cap, int64_t *mtime_ms);

struct rn_delta_add {
	const char *path;  /* relative, as returned by rn_delta_write_file */
	int64_t size;
	int64_t mtime_ms;
	const char *stats; /* JSON text of the stats object, or NULL */
};

struct rn_delta_txn {
	const char *app_id;
	int64_t version;
};

/*
 * Commits adds + txns as the next version. If another writer took that version, the newer
 * commits are read: a protocol or metaData change aborts with RN_ECONFLICT; a txn for one
 * of our app ids with a version >= ours means the batch is already in the table and the
 * call returns RN_EEXIST without writing; otherwise it retries at the next version. On
 * success *version receives the committed version. RN_EIO, RN_ENOSPC, RN_ENOMEM.
 */
int rn_delta_commit(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
		    const struct rn_delta_txn *txns, size_t ntxn, int64_t *version);

const char *rn_delta_errmsg(const struct rn_delta *d);

#endif
