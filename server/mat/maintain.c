/*
 * Delta maintenance (checkpoint, compaction, vacuum: server/delta/maint.h) per table,
 * decided on the loop after each flush round (rn_maint_due) and run inline or, given
 * rn_mat_options.maint_submit, as one job per table at a time on a worker. The job opens its
 * own rn_delta handle on the table's directory and shares nothing mutable with the
 * materializer but two atomics (stop, running); maint_done accounts for it on the loop.
 */
#include "mat_int.h"

#include <stdatomic.h>

#include "delta.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"

/* ---- Delta maintenance: decided here on the loop, run inline or by a job on a worker ---- */

/* One table's maintenance run on a worker (rn_mat_options.maint_submit). */
struct maint_job {
	/* the worker's from submit until maint_run returns (server/README.md "Threads"): */
	char *dir;          /* the table's directory: the job opens its own rn_delta on it */
	unsigned tasks;     /* RN_MAINT_* */
	int64_t keep_after; /* the loop's version at submit: its next commit is above it */
	struct rn_maint_result res;
	/* a copy of the materializer's maintenance settings */
	struct rn_delta_maint cfg;
	const struct rn_tstore_config *store; /* the mat's (immutable while jobs run) */
	int64_t run_us;
	/* atomics of the materializer, read and changed by both sides */
	const atomic_int *stop;
	atomic_int *running;
	/* the loop's, never touched by the worker */
	struct rn_mat *m;
	struct mat_table *t;
};

/* Adds a run's result to the counters and the table's clock (loop). */
static void maint_account(struct rn_mat *m, struct mat_table *t, const struct rn_maint_result *r,
			  int64_t us)
{
	m->ms.maint_done++;
	m->ms.maint_failed += r->failed != 0;
	m->ms.maint_us += (uint64_t)us;
	if ((uint64_t)us > m->ms.maint_max_us)
		m->ms.maint_max_us = (uint64_t)us;
	m->ms.checkpoints += r->ckpt_version >= 0 && !r->failed;
	m->ms.compactions += r->compactions;
	m->ms.compacted_files += r->compacted;
	m->ms.vacuumed_files += (uint64_t)r->vacuumed;
	if (r->ckpt_version > t->maint.ckpt_mark)
		t->maint.ckpt_mark = r->ckpt_version;
}

/* On a worker: touches only the job's own fields and its own rn_delta handle. */
static void maint_run(void *arg)
{
	struct maint_job *j = arg;
	struct rn_delta *d = NULL;
	int64_t t0 = rn_mono_us();
	int rc;
	atomic_fetch_add(j->running, 1);
	if ((rc = rn_mat__delta_open(&d, j->dir, j->store, NULL, NULL, 0))) {
		rn_log_warn("mat", "%s: maintenance cannot open the table: %s", j->dir,
			    rn_strerror(rc));
		j->res = (struct rn_maint_result){.ckpt_version = -1, .failed = 1};
	} else {
		rn_maint_run(d, &j->cfg, j->tasks, j->keep_after, j->stop, &j->res);
	}
	rn_delta_close(d);
	/* this thread's compression contexts and write buffer: not kept between jobs (nor
	 * leaked when the pool's threads exit) */
	rn_zstd_release();
	rn_fs_thread_release();
	j->run_us = rn_mono_us() - t0;
	atomic_fetch_sub(j->running, 1);
}

/* Back on the loop, once per job. */
static void maint_done(void *arg, int cancelled)
{
	struct maint_job *j = arg;
	struct rn_mat *m = j->m;
	struct mat_table *t = j->t;
	t->job = NULL;
	m->ms.maint_inflight--;
	if (cancelled) {
		m->ms.maint_cancelled++;
	} else {
		maint_account(m, t, &j->res, j->run_us);
		/* take the job's commits in now, while the log files are fresh, rather than
		 * at the next flush's commit (which would read them after losing a race) */
		if (j->res.compactions && !m->maint_stopped && rn_delta_refresh(t->delta))
			rn_log_warn("mat", "table %s: %s", t->name, rn_delta_errmsg(t->delta));
	}
	rn_free(j->dir);
	rn_free(j);
}

/* Starts what is due for t: inline without a submit function, else as a job (at most one
 * per table; a refused submit leaves the clocks as they were, so the next flush asks
 * again). */
void rn_mat__maintain(struct rn_mat *m, struct mat_table *t, int64_t now_ms)
{
	const struct rn_delta_maint *cfg = &m->maint_cfg;
	int64_t version = rn_delta_version(t->delta);
	unsigned due;
	if (t->job || m->maint_stopped)
		return;
	due = rn_maint_due(cfg, &t->maint, version, rn_delta_checkpoint_version(t->delta), now_ms);
	if (!due)
		return;
	/* the flush's handle is a writer too: its next commit lands above its version */
	int64_t fkeep = t->fdelta ? t->fversion : INT64_MAX;
	if (!m->maint_submit) {
		struct rn_maint_result r;
		int64_t t0 = rn_mono_us();
		rn_maint_started(&t->maint, due, version, now_ms);
		rn_maint_run(t->delta, cfg, due, fkeep, NULL, &r);
		maint_account(m, t, &r, rn_mono_us() - t0);
		return;
	}
	struct maint_job *j = rn_calloc(1, sizeof(*j));
	if (!j || !(j->dir = rn_strdup(t->dir))) {
		rn_free(j);
		m->ms.maint_refused++;
		return;
	}
	j->tasks = due;
	j->cfg = *cfg;
	j->store = m->store;
	j->keep_after = version < fkeep ? version : fkeep;
	j->stop = &m->maint_stop;
	j->running = &m->maint_running;
	j->m = m;
	j->t = t;
	if (m->maint_submit(m->maint_ctx, maint_run, maint_done, j)) {
		rn_free(j->dir);
		rn_free(j);
		m->ms.maint_refused++;
		return;
	}
	rn_maint_started(&t->maint, due, version, now_ms);
	t->job = j;
	m->ms.maint_inflight++;
}

void rn_mat_maint_stop(struct rn_mat *m)
{
	m->maint_stopped = 1;
	atomic_store(&m->maint_stop, 1);
}
