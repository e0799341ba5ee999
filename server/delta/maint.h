/*
 * Delta log maintenance (checkpoint + log cleanup, compaction steps, vacuum), split into a
 * decision the event loop takes and a run a worker thread does. The decision (rn_maint_due)
 * is a pure function of the table's version, its newest checkpoint, a small clock the caller
 * keeps per table, the frozen configuration and the time: no I/O, unit-tested. The run
 * (rn_maint_run) does the slow part on an rn_delta handle of its own that no other thread
 * touches (the server's worker opens one per job with rn_delta_open and no schema): it is a
 * second writer of the table, and the log's put-if-absent commit settles its races with the
 * loop's appends (a compaction only removes files it read; appends never remove: neither
 * side can lose or double rows, see delta.h rn_delta_commit and rn_delta_commit_rewrite).
 *
 * Depends on delta.h and compact.h one way; delta.c knows nothing of it. Every function is
 * safe on any thread as long as its arguments are not shared (the configuration is the
 * caller's, read only).
 */
#ifndef RN_DELTA_MAINT_H
#define RN_DELTA_MAINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct rn_delta;

/* Maintenance settings; the defaults (rn_maint_defaults) are Delta's (checkpoint every 10
 * commits, 30-day log retention, 7-day deleted-file retention) plus compaction of >= 10
 * files below 128 MiB at most once a minute. A value <= 0 for an interval disables that
 * task. Passed explicitly: the server hands its copy to the materializer (rn_mat_options),
 * runnel-table starts from the defaults; nothing is process-wide. */
struct rn_delta_maint {
	int64_t checkpoint_interval; /* commits between checkpoints */
	int64_t log_retention_ms;    /* JSON commits/checkpoints older than this may go */
	int64_t compact_target;      /* bytes: files below are "small"; output cap */
	int64_t compact_min_files;   /* compact only when at least this many small files */
	int64_t compact_interval_ms; /* at most one compaction step per interval per table */
	int64_t compact_group_bytes; /* compaction's row groups, uncompressed: bounds its memory */
	/* removed files older than this are deleted, and files no action names (orphans)
	 * older than this and never younger than RN_DELTA_ORPHAN_MIN_AGE_MS */
	int64_t vacuum_retention_ms;
	int64_t vacuum_interval_ms; /* how often maint.h runs vacuum */
};
extern const struct rn_delta_maint rn_maint_defaults;

/* Tasks, a bit mask. */
#define RN_MAINT_CHECKPOINT 1u /* checkpoint of the latest version, then log cleanup */
#define RN_MAINT_COMPACT 2u    /* compaction steps within one target of input bytes */
#define RN_MAINT_VACUUM                                                                            \
	4u /* delete data files removed (or orphaned) longer ago than the retention */

/* When each task last started on a table; kept by the caller (the loop), zeroed = never. */
struct rn_maint_clock {
	int64_t ckpt_mark;       /* version the last checkpoint was asked for (or written) */
	int64_t last_compact_ms; /* monotonic ms */
	int64_t last_vacuum_ms;
};

/* The tasks due now (monotonic now_ms) for a table at `version` whose newest known
 * checkpoint is ckpt_version (-1 none): a checkpoint when checkpoint_interval commits passed
 * since max(ckpt_version, clock->ckpt_mark, 0); a compaction or vacuum when its interval
 * passed since it last started. An interval <= 0 disables its task. Pure. */
unsigned rn_maint_due(const struct rn_delta_maint *cfg, const struct rn_maint_clock *c,
		      int64_t version, int64_t ckpt_version, int64_t now_ms);

/* Records that `tasks` start now on a table at `version`: their clocks restart (so a task
 * that fails waits one interval before it is tried again). */
void rn_maint_started(struct rn_maint_clock *c, unsigned tasks, int64_t version, int64_t now_ms);

/* What a run did. */
struct rn_maint_result {
	int64_t ckpt_version; /* the checkpoint written (or attempted), -1 none */
	size_t log_deleted;   /* expired log files cleaned up */
	size_t compactions;   /* compaction commits */
	size_t compacted;     /* files they removed */
	int64_t vacuumed;     /* data files deleted */
	int failed;           /* a task failed (logged; retried after its interval) */
	int stopped;          /* *stop was set: the remaining steps were skipped */
};

/*
 * Runs `tasks` on d, in that order: checkpoint (then cleanup of log files below both the
 * checkpoint and keep_after + 1: the versions another writer of this process may still
 * commit after, so its next put-if-absent never lands on a version cleaned away; INT64_MAX
 * = no such writer), compaction steps (while the step budget lasts: one compact_target of
 * input bytes, 32 commits), vacuum. Checks *stop (may be NULL) between steps. Never fails:
 * problems are logged and counted in *res. On the caller's thread, which must be the only
 * one using d.
 */
void rn_maint_run(struct rn_delta *d, const struct rn_delta_maint *cfg, unsigned tasks,
		  int64_t keep_after, const atomic_int *stop, struct rn_maint_result *res);

#endif
