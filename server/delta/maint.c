/*
 * Maintenance decisions and runs; see maint.h. The run is what rn_delta_maintain did on the
 * loop before it moved to a worker: same tasks, same order, same budget per round.
 */
#include "maint.h"

#include "compact.h"
#include "delta.h"
#include "rn_err.h"
#include "rn_log.h"

#define COMPACT_STEPS 32 /* compaction commits per round at most */
#define DAY_MS ((int64_t)86400000)

const struct rn_delta_maint rn_maint_defaults = {
	.checkpoint_interval = 10,
	.log_retention_ms = 30 * DAY_MS,
	.compact_target = (int64_t)128 << 20,
	.compact_min_files = 10,
	.compact_interval_ms = 60000,
	.compact_group_bytes = (int64_t)64 << 20,
	.vacuum_retention_ms = 7 * DAY_MS,
	.vacuum_interval_ms = 3600000,
};

unsigned rn_maint_due(const struct rn_delta_maint *cfg, const struct rn_maint_clock *c,
		      int64_t version, int64_t ckpt_version, int64_t now_ms)
{
	unsigned due = 0;
	int64_t base = ckpt_version > c->ckpt_mark ? ckpt_version : c->ckpt_mark;
	if (base < 0)
		base = 0;
	if (cfg->checkpoint_interval > 0 && version > 0 &&
	    version - base >= cfg->checkpoint_interval)
		due |= RN_MAINT_CHECKPOINT;
	if (cfg->compact_interval_ms > 0 && now_ms - c->last_compact_ms >= cfg->compact_interval_ms)
		due |= RN_MAINT_COMPACT;
	if (cfg->vacuum_interval_ms > 0 && now_ms - c->last_vacuum_ms >= cfg->vacuum_interval_ms)
		due |= RN_MAINT_VACUUM;
	return due;
}

void rn_maint_started(struct rn_maint_clock *c, unsigned tasks, int64_t version, int64_t now_ms)
{
	if ((tasks & RN_MAINT_CHECKPOINT) && version > c->ckpt_mark)
		c->ckpt_mark = version;
	if (tasks & RN_MAINT_COMPACT)
		c->last_compact_ms = now_ms;
	if (tasks & RN_MAINT_VACUUM)
		c->last_vacuum_ms = now_ms;
}

static int stopped(const atomic_int *stop, struct rn_maint_result *res)
{
	if (stop && atomic_load(stop))
		res->stopped = 1;
	return res->stopped;
}

static void checkpoint(struct rn_delta *d, const struct rn_delta_maint *cfg, int64_t keep_after,
		       struct rn_maint_result *res)
{
	int64_t v;
	if (rn_delta_checkpoint(d, cfg->vacuum_retention_ms, &v)) {
		rn_log_warn("delta", "%s: checkpoint failed: %s", rn_delta_dir(d),
			    rn_delta_errmsg(d));
		res->ckpt_version = rn_delta_version(d); /* retry after another interval */
		res->failed = 1;
		return;
	}
	res->ckpt_version = v;
	rn_log_debug("delta", "%s: checkpoint at version %lld", rn_delta_dir(d), (long long)v);
	int64_t below = keep_after < INT64_MAX ? keep_after + 1 : INT64_MAX;
	if (rn_delta_cleanup_below(d, cfg->log_retention_ms, below, &res->log_deleted)) {
		rn_log_warn("delta", "%s: log cleanup: %s", rn_delta_dir(d), rn_delta_errmsg(d));
		res->failed = 1;
	} else if (res->log_deleted) {
		rn_log_info("delta", "%s: removed %zu expired log files", rn_delta_dir(d),
			    res->log_deleted);
	}
}

static void compact(struct rn_delta *d, const struct rn_delta_maint *cfg, const atomic_int *stop,
		    struct rn_maint_result *res)
{
	struct rn_compact_options co = {.target_bytes = cfg->compact_target,
					.min_files = (size_t)cfg->compact_min_files,
					.group_bytes = (size_t)cfg->compact_group_bytes};
	struct rn_compact_result cr;
	int64_t budget = cfg->compact_target > 0 ? cfg->compact_target : (int64_t)128 << 20;
	/* a step rewrites one partition: go on with the next ones while the budget (one target
	 * of input bytes, COMPACT_STEPS commits) lasts, so a table with many partitions keeps
	 * up with its flushes */
	for (int steps = 0; steps < COMPACT_STEPS && budget > 0 && !stopped(stop, res); steps++) {
		int rc = rn_compact_step(d, &co, &cr);
		if (rc == RN_EAGAIN)
			break;
		if (rc) {
			/* RN_ECONFLICT: another writer removed an input; the next round re-reads */
			rn_log_warn("delta", "%s: compaction: %s", rn_delta_dir(d), cr.why);
			res->failed = rc != RN_ECONFLICT;
			break;
		}
		rn_log_info("delta", "%s: compacted %zu files (%lld rows) into %s", rn_delta_dir(d),
			    cr.nfiles, (long long)cr.rows, cr.path);
		res->compactions++;
		res->compacted += cr.nfiles;
		budget -= cr.bytes;
	}
}

static void vacuum(struct rn_delta *d, const struct rn_delta_maint *cfg,
		   struct rn_maint_result *res)
{
	size_t n;
	int64_t bytes;
	/* first the files a remove tombstone names (a data file another writer has written
	 * but not committed yet has none, so it is not one of them) */
	if (rn_delta_vacuum(d, cfg->vacuum_retention_ms, 0, NULL, NULL, &n, &bytes)) {
		rn_log_warn("delta", "%s: vacuum: %s", rn_delta_dir(d), rn_delta_errmsg(d));
		res->failed = 1;
		return;
	}
	res->vacuumed += (int64_t)n;
	if (n)
		rn_log_info("delta", "%s: vacuum deleted %zu files (%lld bytes)", rn_delta_dir(d),
			    n, (long long)bytes);
	/* Files no action names (a flush or compaction that wrote its file and never
	 * committed it), once older than the retention and never younger than
	 * RN_DELTA_ORPHAN_MIN_AGE_MS whatever the retention says: a flush in flight, or a
	 * commit being retried, keeps its file that long at least. */
	int64_t age = cfg->vacuum_retention_ms > RN_DELTA_ORPHAN_MIN_AGE_MS
			      ? cfg->vacuum_retention_ms
			      : RN_DELTA_ORPHAN_MIN_AGE_MS;
	if (rn_delta_vacuum_orphans(d, age, 0, NULL, NULL, &n, &bytes)) {
		rn_log_warn("delta", "%s: vacuum: %s", rn_delta_dir(d), rn_delta_errmsg(d));
		res->failed = 1;
		return;
	}
	res->vacuumed += (int64_t)n;
	if (n)
		rn_log_info("delta",
			    "%s: vacuum deleted %zu unreferenced files older than %lld s (%lld "
			    "bytes)",
			    rn_delta_dir(d), n, (long long)(age / 1000), (long long)bytes);
}

void rn_maint_run(struct rn_delta *d, const struct rn_delta_maint *cfg, unsigned tasks,
		  int64_t keep_after, const atomic_int *stop, struct rn_maint_result *res)
{
	*res = (struct rn_maint_result){.ckpt_version = -1};
	if (rn_delta_refresh(d)) {
		rn_log_warn("delta", "%s: maintenance: %s", rn_delta_dir(d), rn_delta_errmsg(d));
		res->failed = 1;
		return;
	}
	if ((tasks & RN_MAINT_CHECKPOINT) && !stopped(stop, res))
		checkpoint(d, cfg, keep_after, res);
	if ((tasks & RN_MAINT_COMPACT) && !stopped(stop, res))
		compact(d, cfg, stop, res);
	if ((tasks & RN_MAINT_VACUUM) && !stopped(stop, res))
		vacuum(d, cfg, res);
}
