/*
 * A read-only analyzer of a Delta table's log, for operator tooling (`runnel-server table`).
 * It replays JSON commits into a snapshot: the live files with size, stats and numRecords,
 * the remove tombstones, the latest protocol and metaData (schema, partition columns), the
 * latest txn per appId, and a one-line summary per version from commitInfo. Things a healthy
 * log should not hold but that readers survive (duplicate adds, a txn going backwards, two
 * txns for one appId in a commit, a commit without its final newline) are collected as
 * warnings; things that make the log unreadable (a line that is not one JSON action, an add
 * without a path, a version out of order) are errors with the version and line in the
 * message. It also holds the small Parquet footer reader `table verify` needs.
 *
 * The core is pure: rn_dlog_apply() takes one commit's text and does no I/O, so it is unit
 * tested and fuzzed (tests/fuzz/fuzz_delta_log.c). rn_dlog_load_store() is the thin adapter
 * that lists _delta_log through the table store (server/store/tstore.h: a local directory or
 * an s3:// prefix; this file makes no file system call of its own) and feeds the commits in
 * order. When the JSON commits no longer start at
 * version 0 (cleaned up behind a checkpoint), or when asked to, it starts from the classic
 * Parquet checkpoint (_last_checkpoint's, else the newest), read with the generic Parquet
 * reader (pqread.h) into JSON action lines and applied by rn_dlog_apply_checkpoint(). It
 * deliberately shares no code with delta.c (the writer) or checkpoint.c so it can serve as
 * a second opinion on what the writer committed.
 *
 * Lifetime: rn_dlog_create() makes an empty snapshot, the caller owns it and frees it with
 * rn_dlog_destroy(); one thread at a time. Pointers returned by the accessors stay valid
 * until the next apply/load or destroy.
 */
#ifndef RN_DELTA_LOG_H
#define RN_DELTA_LOG_H

#include <stddef.h>
#include <stdint.h>

/* Hard caps: a log past them fails with RN_ENOMEM and says which cap it hit. */
#define RN_DLOG_MAX_FILES ((size_t)1 << 24)    /* live files + tombstones */
#define RN_DLOG_MAX_VERSIONS ((size_t)1 << 24) /* versions kept in the history */
#define RN_DLOG_MAX_WARNINGS 1000              /* later warnings are only counted */

struct rn_dlog;

/* One live file (newest add for its path). */
struct rn_dlog_file {
	char *path;          /* as written in the log: relative and URI-encoded, or a URI */
	int64_t size;        /* bytes, from the add action */
	int64_t mtime_ms;    /* modificationTime, or -1 */
	int64_t num_records; /* stats.numRecords, or -1 when the add has no usable stats */
	int64_t version;     /* version of the add */
	int data_change;     /* add.dataChange */
};

/* A remove tombstone (newest action for its path is a remove). */
struct rn_dlog_remove {
	char *path;
	int64_t deletion_ms; /* deletionTimestamp, or -1 */
	int64_t version;
};

/* The latest txn per appId. */
struct rn_dlog_txn {
	char *app_id;
	int64_t version;      /* txn.version of the newest txn action for app_id */
	int64_t last_updated; /* lastUpdated, or -1 */
	int64_t at_version;   /* table version that committed it */
};

/* One version of the history. */
struct rn_dlog_commit {
	int64_t version;
	int64_t timestamp_ms; /* commitInfo.timestamp, or -1 without commitInfo */
	char *operation;      /* commitInfo.operation, or NULL */
	char *engine;         /* commitInfo.engineInfo, or NULL */
	size_t nadd, nremove, ntxn;
	int64_t rows_added; /* sum of numRecords of its adds with stats */
	size_t adds_without_stats;
	int meta_change; /* the version holds metaData or protocol */
};

/* One schema column (top-level field of schemaString). */
struct rn_dlog_column {
	char *name;
	char *type; /* primitive name, or a rendering like array<string>, struct<a:int> */
	int nullable;
};

/* Makes an empty snapshot (version -1). 0 or RN_ENOMEM. */
int rn_dlog_create(struct rn_dlog **out);
void rn_dlog_destroy(struct rn_dlog *l);

/*
 * Applies the commit text of `version` (the whole NNN.json file: newline-delimited actions).
 * version must be rn_dlog_version(l) + 1, and the first one applied may be 0 only. Pure.
 * 0; RN_EDELTA for a malformed commit or a version out of order, the reason (with version and
 * line number) in rn_dlog_errmsg(); RN_ENOMEM (also when a cap is hit). After an error the
 * snapshot may hold part of that commit: discard it.
 */
int rn_dlog_apply(struct rn_dlog *l, int64_t version, const char *text, size_t len);

struct rn_tstore;

/*
 * Replays the log of the table in store st (not owned; used on the caller's thread) into l,
 * which must be fresh: the JSON commits from version 0 when they are all there, else the
 * newest checkpoint plus the JSON commits after it. Dot-prefixed temp files, .crc files and log
 * compactions are ignored. 0; RN_ENOTFOUND (no _delta_log or no commits), RN_EDELTA (malformed
 * commit or checkpoint, a version missing, JSON commits missing at the start with no checkpoint),
 * RN_EIO, RN_ENOMEM. rn_dlog_errmsg() explains.
 */
int rn_dlog_load_store(struct rn_dlog *l, struct rn_tstore *st, int from_checkpoint);

/* rn_dlog_load_store on a store opened on `dir` (a directory or s3:// root, with default
 * store settings: S3 credentials from the environment) and closed again; a root the store
 * refuses is RN_EINVAL. */
int rn_dlog_load(struct rn_dlog *l, const char *dir);

/* Like rn_dlog_load; with from_checkpoint = 1 the replay starts from the checkpoint even
 * when every JSON commit is still there (table verify compares both replays). A checkpoint
 * that cannot be read is RN_EDELTA. */
int rn_dlog_load_mode(struct rn_dlog *l, const char *dir, int from_checkpoint);

/* Applies a checkpoint of `version` given as JSON action lines (one action per line, as
 * rn_pqr_to_json_lines makes them) to a fresh snapshot; the history then starts with an
 * entry "(checkpoint)" for that version. Pure. RN_EDELTA (malformed, not fresh, no
 * protocol or metaData), RN_ENOMEM. */
int rn_dlog_apply_checkpoint(struct rn_dlog *l, int64_t version, const char *lines, size_t len);

/* Checkpoint facts from the last load: the version the replay started from (-1 = from
 * version 0), _last_checkpoint's version and size (-1 when absent or unreadable), and the
 * newest classic checkpoint file's version (-1 none). */
void rn_dlog_checkpoint_info(const struct rn_dlog *l, int64_t *start, int64_t *last,
			     int64_t *last_size, int64_t *newest);

/* Latest version applied, or -1. */
int64_t rn_dlog_version(const struct rn_dlog *l);

/* Live files, in first-added order. */
const struct rn_dlog_file *rn_dlog_files(const struct rn_dlog *l, size_t *n);
const struct rn_dlog_remove *rn_dlog_removes(const struct rn_dlog *l, size_t *n);
/* Latest txn per appId, in order of first appearance. */
const struct rn_dlog_txn *rn_dlog_txns(const struct rn_dlog *l, size_t *n);
/* latest txn version for app_id, or -1. */
int64_t rn_dlog_txn(const struct rn_dlog *l, const char *app_id);
/* One entry per applied version, ascending. */
const struct rn_dlog_commit *rn_dlog_commits(const struct rn_dlog *l, size_t *n);

/* Totals over the live files; *rows counts only files with numRecords (see files_no_stats). */
void rn_dlog_totals(const struct rn_dlog *l, int64_t *bytes, int64_t *rows, size_t *files_no_stats);

/* Latest protocol; -1 when none has been seen. Feature lists are JSON text or NULL. */
void rn_dlog_protocol(const struct rn_dlog *l, int *min_reader, int *min_writer,
		      const char **reader_features, const char **writer_features);

/* Latest metaData. Strings are NULL when absent; created_ms is -1 when absent. */
const char *rn_dlog_table_id(const struct rn_dlog *l);
const char *rn_dlog_schema_string(const struct rn_dlog *l);
int64_t rn_dlog_created_ms(const struct rn_dlog *l);
const struct rn_dlog_column *rn_dlog_columns(const struct rn_dlog *l, size_t *n);
/* Partition column names. */
char *const *rn_dlog_partition_columns(const struct rn_dlog *l, size_t *n);

/* Warnings (see the top of this file), oldest first; *total also counts dropped ones. */
const char *const *rn_dlog_warnings(const struct rn_dlog *l, size_t *n, size_t *total);

/* Human detail of the last error; "" if none. */
const char *rn_dlog_errmsg(const struct rn_dlog *l);

/*
 * Parquet footer check, pure. `tail` is the last `len` bytes of a file of `file_size` bytes
 * (len <= file_size; pass the whole footer region: the 8-byte trailer plus the FileMetaData
 * before it). On 0, *footer_len is the FileMetaData length the trailer names and, if
 * len >= footer_len + 8, *num_rows is FileMetaData.num_rows; otherwise *num_rows is -1 and the
 * caller should read footer_len + 8 bytes and call again. RN_ECORRUPT when the trailer magic
 * is not PAR1, the length does not fit the file, or the Thrift compact FileMetaData is
 * malformed or lacks num_rows; `why` (cap bytes) says which.
 */
int rn_dlog_parquet_footer(const uint8_t *tail, size_t len, uint64_t file_size,
			   uint32_t *footer_len, int64_t *num_rows, char *why, size_t cap);

/* Decodes %XX escapes of an add path into out (NUL-terminated). RN_EINVAL for a bad escape,
 * an embedded NUL, or a result that would not fit. Pure. */
int rn_dlog_uri_decode(const char *in, char *out, size_t cap);

#endif
