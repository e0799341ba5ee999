/*
 * Compaction of small data files: picks live files below a target size (oldest first, at
 * least min_files of them, bounded per step by the target size and max_files), reads every
 * row back with the Parquet reader (pqread.h), re-appends it with our writer into one new
 * file with recomputed Delta stats, and commits remove{dataChange:false} of the inputs plus
 * add{dataChange:false} of the output with rn_delta_commit_rewrite(). txn watermarks are
 * untouched: the rows are the same rows. If a concurrent commit removed an input the commit
 * aborts (RN_ECONFLICT), the new file is deleted and the next step re-reads the log. Files
 * whose schema the reader cannot map back to a writer schema, or that differ from the first
 * input's schema, are skipped with a log line.
 *
 * Design for ingest: a step does bounded work (at most target_bytes of input, max_files
 * files) on the caller's thread; the server runs a round of steps per table at most once
 * per compact_interval (maint.h) on a maintenance thread, with a handle of its own, so
 * ingest never waits for it.
 * The selection is pure (rn_compact_pick) and unit tested.
 *
 * Lifetime: stateless calls on a table the caller has open.
 */
#ifndef RN_DELTA_COMPACT_H
#define RN_DELTA_COMPACT_H

#include <stddef.h>
#include <stdint.h>

struct rn_delta;
struct rn_ckpt_file;

/* A zeroed struct is the default: 128 MiB target, 10 files minimum, 1000 files per step,
 * 64 MiB row groups. */
struct rn_compact_options {
	int64_t target_bytes; /* files below are small; a step reads at most this much */
	size_t min_files;     /* fewer small files than this: nothing to do */
	size_t max_files;     /* per step */
	size_t group_bytes;   /* uncompressed row group size: inputs with a larger one are left
			       * alone, the output's row groups are cut near it */
};

struct rn_compact_result {
	size_t nfiles;   /* inputs rewritten */
	int64_t bytes;   /* their size */
	int64_t rows;    /* rows in the new file */
	int64_t version; /* the commit */
	char path[1024]; /* the new file, as in the log (URI-encoded) */
	char why[512];   /* on failure: the reason */
};

/* Picks inputs among files (adds and tombstones as rn_delta_files gives them): live adds
 * with 0 < size < target of one partition (a table without partitions is one), oldest
 * modificationTime first, while their total stays <= target (the first file always fits)
 * and n <= max_files; then, largest first, leaves out a file larger than the others
 * together (each byte is rewritten about log2(growth) times, not at every step). Partitions are
 * tried in the order of their oldest small file; the first with at least min_files such files is
 * taken. Writes indexes into idx (room for n) and how many into *npick (0 when no partition
 * qualifies). No I/O; 0, or RN_ENOMEM (its scratch array: never taken for "nothing to do"). */
int rn_compact_pick(const struct rn_ckpt_file *const *files, size_t n,
		    const struct rn_compact_options *opt, size_t *idx, size_t *npick);

/* One compaction step on d (refreshed first). 0 with *res filled; RN_EAGAIN when there is
 * nothing to compact; RN_ECONFLICT (a concurrent commit removed an input), RN_ENOTSUP
 * (schema cannot be rewritten), RN_ECORRUPT (an input is not readable Parquet), RN_EIO,
 * RN_ENOSPC, RN_ENOMEM with res->why. */
int rn_compact_step(struct rn_delta *d, const struct rn_compact_options *opt,
		    struct rn_compact_result *res);

#endif
