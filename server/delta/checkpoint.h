/*
 * Delta classic checkpoints, as bytes: rn_ckpt_encode() turns a table snapshot (protocol,
 * metaData, live adds, remove tombstones, txns) into a single-file V1 checkpoint Parquet
 * file with the schema Delta readers expect (top-level struct columns txn, add, remove,
 * metaData, protocol; one row per action, exactly one column set per row), written with our
 * Parquet writer; rn_ckpt_decode() reads such a file back (server/delta/pqread) as the
 * equivalent newline-delimited JSON actions, so each log reader (delta.c, log.c) replays a
 * checkpoint with the same code that replays JSON commits. It does no I/O: delta.c writes the
 * files, `_last_checkpoint` and decides when. It does not write stats_parsed,
 * partitionValues_parsed, deletion vectors or v2/multi-part checkpoints.
 *
 * Lifetime: stateless calls; the snapshot belongs to the caller.
 */
#ifndef RN_DELTA_CHECKPOINT_H
#define RN_DELTA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

/* A string map entry (partitionValues, configuration, format.options); value NULL = null. */
struct rn_ckpt_kv {
	char *key;
	char *value;
};

/* A live add (is_remove 0) or a remove tombstone (is_remove 1). */
struct rn_ckpt_file {
	char *path;            /* as in the log (URI-encoded, relative) */
	struct rn_ckpt_kv *pv; /* partitionValues */
	size_t npv;
	int64_t size;        /* -1 unknown (remove without extendedFileMetadata) */
	int64_t mtime_ms;    /* add.modificationTime */
	int64_t deletion_ms; /* remove.deletionTimestamp, -1 unknown */
	int data_change;
	int is_remove;
	char *stats; /* add.stats JSON text or NULL */
};

struct rn_ckpt_txn {
	char *app_id;
	int64_t version;
	int64_t last_updated; /* -1 unknown */
};

struct rn_ckpt_meta {
	char *id, *name, *description; /* name, description may be NULL */
	char *provider;                /* format.provider ("parquet") */
	struct rn_ckpt_kv *options;    /* format.options */
	size_t noptions;
	char *schema; /* schemaString */
	char **part_cols;
	size_t nparts;
	struct rn_ckpt_kv *config;
	size_t nconfig;
	int64_t created_ms; /* -1 unknown */
};

struct rn_ckpt_snapshot {
	int min_reader, min_writer;
	const struct rn_ckpt_meta *meta;
	const struct rn_ckpt_file *const *files; /* adds and tombstones, any order */
	size_t nfiles;
	const struct rn_ckpt_txn *txns;
	size_t ntxns;
};

/* Appends the checkpoint Parquet file for s to out; *rows receives the number of actions
 * (the `size` of _last_checkpoint). created_by as for rn_pq_options (NULL = default). Pure.
 * RN_EINVAL (no metaData), RN_ENOMEM, RN_EIO (zstd). */
int rn_ckpt_encode(const struct rn_ckpt_snapshot *s, const char *created_by, struct rn_buf *out,
		   size_t *rows);

/* Appends the actions of the checkpoint file (data, len) to lines as JSON action lines
 * ({"add":{...}}\n ...). Pure. RN_ECORRUPT/RN_ENOTSUP with the reason in why, RN_ENOMEM. */
int rn_ckpt_decode(const uint8_t *data, size_t len, struct rn_buf *lines, char *why, size_t cap);

#endif
