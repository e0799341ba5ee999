/*
 * The flush (rn_mat_flush_start, rn_mat_flush): a round of one job per table with rows,
 * holding its dead-letter table (committed first). On the loop, detach hands a table's
 * builders, pending streams and bytes to its flush block and gives it fresh builders; the
 * job (unit_run, on a worker or inline) finishes them into Parquet files and commits them
 * with one txn per stream through the table's own flush handle, retrying a failed commit
 * first in the next round (commit_retry, commit_part: the written file is kept by path);
 * back on the loop, flush_done reads the commit back and settles the bytes, and the last
 * job of a round starts the due maintenance. The ownership of the flush block while a job
 * is in flight: mat_int.h (struct mat_table) and server/README.md "Threads".
 */
#include "mat_int.h"

#include <stdio.h>
#include <string.h>

#include "delta.h"
#include "partition.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"

/* Finishes every partition's file of (*parts, *np) (t's open ones, or detached ones) into
 * (*files, *n), oldest first, dropping the partition. On failure the partitions not finished
 * stay, and why in err. Touches only its arguments and t's immutable columns, so that a
 * flush job may run it on detached partitions. */
static int finish_list(const struct mat_table *t, struct mat_part **parts, size_t *np,
		       struct mat_file **files, size_t *n, char *err, size_t errcap)
{
	while (*np) {
		struct mat_part *p = &(*parts)[*np - 1];
		size_t rows = rn_pq_rows(p->pq);
		struct mat_file *nf = rn_reallocarray(*files, *n + 1, sizeof(**files));
		int rc;
		if (!nf)
			return RN_ENOMEM;
		*files = nf;
		struct mat_file *f = &nf[*n];
		memset(f, 0, sizeof(*f));
		if (rows) {
			if ((rc = rn_pq_finish(p->pq, &f->data))) {
				snprintf(err, errcap, "table %s: parquet: %s", t->name,
					 rn_strerror(rc));
				return rc;
			}
			if (!(f->stats = rn_pq_delta_stats(p->pq, t->dcols, t->ndcols,
							   (int64_t)rows))) {
				rn_buf_free(&f->data);
				return RN_ENOMEM;
			}
			f->dir = p->dir;
			f->pv = p->pv;
			(*n)++;
		} else {
			rn_free(p->dir);
			rn_free(p->pv);
		}
		rn_pq_writer_destroy(p->pq);
		(*np)--;
	}
	rn_free(*parts);
	*parts = NULL;
	return 0;
}

/* finish_list of t's open partitions (on the loop). */
int rn_mat__finish_parts(struct rn_mat *m, struct mat_table *t, struct mat_file **files, size_t *n)
{
	char err[320] = "";
	int rc = finish_list(t, &t->parts, &t->nparts, files, n, err, sizeof(err));
	if (rc && err[0])
		return rn_mat__fail(m, rc, "%s", err);
	return rc;
}

/* ---- The flush: detached on the loop, finished and committed by a job ---- */

/* The retry commit's txns (one per stream, its newest offset) and, in *first, each stream's
 * lowest offset in the rows (rn_delta_commit_from). 0 or RN_ENOMEM (nothing allocated). */
static int retry_txns(const struct mat_table *t, struct rn_delta_txn **txns, int64_t **first)
{
	size_t n = t->retry_nstreams ? t->retry_nstreams : 1;
	*txns = rn_calloc(n, sizeof(**txns));
	*first = rn_calloc(n, sizeof(**first));
	if (!*txns || !*first) {
		rn_free(*txns);
		rn_free(*first);
		return RN_ENOMEM;
	}
	for (size_t i = 0; i < t->retry_nstreams; i++) {
		(*txns)[i].app_id = t->retry_streams[i].id;
		(*txns)[i].version = t->retry_streams[i].last;
		(*first)[i] = t->retry_streams[i].first;
	}
	return 0;
}

/* A commit that failed: why in t->ferr. RN_EOVERLAP (another writer, a server sharing the
 * table, committed some of these streams' offsets: a stream resumed there while this one
 * still held it) breaks the flush: its file(s) become orphans and the rows are built again
 * from the WAL without what the table has (flush_done); any other failure keeps the file
 * for the next try. */
static void commit_failed(struct mat_table *t, int rc)
{
	snprintf(t->ferr, sizeof(t->ferr), "table %s: commit failed: %s", t->name,
		 rn_delta_errmsg(t->fdelta));
	if (rc == RN_EOVERLAP)
		t->fbroken = 1;
}

/* 1 if a data file written at mtime_ms (the store's clock) is too old to be named by a
 * commit now: vacuum takes an unreferenced file older than RN_DELTA_ORPHAN_MIN_AGE_MS for an
 * orphan, so a retry past half of it writes the file again (the old one becomes the orphan). */
static int retry_file_stale(const struct mat_table *t, int64_t mtime_ms)
{
	return mtime_ms > 0 && rn_now_us() / 1000 - mtime_ms > t->retry_max_age_ms;
}

/* Forgets *path (a retry's data file written at mtime_ms) when it is stale, so the caller
 * writes the file again; the old one is left for vacuum as an orphan. */
static void forget_stale(const struct mat_table *t, char **path, int64_t mtime_ms)
{
	if (!*path || !retry_file_stale(t, mtime_ms))
		return;
	rn_log_warn("mat",
		    "table %s: %s was written too long ago to commit safely; writing it again",
		    t->name, *path);
	rn_free(*path);
	*path = NULL;
}

/* Writes and commits t's retry file with the retry txns through the flush handle. 0 on
 * success or duplicate; on failure why in t->ferr, and the written file is kept (by path)
 * for the next try. The flush job's (or the loop's when no job is in flight). */
static int commit_retry(struct mat_table *t)
{
	char name[256];
	int64_t mtime = 0, version;
	struct rn_delta_txn *txns;
	int64_t *first;
	int rc = 0;

	if ((rc = retry_txns(t, &txns, &first)))
		return rc;
	forget_stale(t, &t->retry_path, t->retry_mtime);
	if (!t->retry_path) {
		rc = rn_delta_write_file(t->fdelta, t->retry_file.data, t->retry_file.len, name,
					 sizeof(name), &mtime);
		if (!rc && !(t->retry_path = rn_strdup(name)))
			rc = RN_ENOMEM;
		t->retry_mtime = mtime;
	}
	if (!rc) {
		struct rn_delta_add add = {.path = t->retry_path,
					   .size = (int64_t)t->retry_file.len,
					   .mtime_ms = t->retry_mtime,
					   .stats = t->retry_stats};
		rc = rn_delta_commit_from(t->fdelta, &add, 1, txns, first, t->retry_nstreams,
					  &version);
		if (rc == RN_EEXIST) {
			rn_log_warn("mat",
				    "table %s: batch already committed by another writer; "
				    "%s is an orphan",
				    t->name, t->retry_path);
			rc = 0;
		} else if (!rc) {
			rn_log_debug("mat", "table %s: committed version %lld", t->name,
				     (long long)version);
		}
	}
	rn_free(txns);
	rn_free(first);
	if (rc) {
		commit_failed(t, rc);
		return rc;
	}
	/* freed, not kept between flushes: a table would hold a file's worth of memory while
	 * idle (the memory budget counts only what holds rows); the next rn_pq_finish still
	 * takes the writer's storage rather than copying it (it trades with any empty out) */
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	t->retry_stats = NULL;
	rn_free(t->retry_path);
	t->retry_path = NULL;
	return 0;
}

/* Writes the not yet written files of t's retry commit into their partition directories
 * and commits all of them with the retry txns in one version. 0 on success or duplicate;
 * on failure (why in t->ferr) the written files are kept (by path) for the next try. */
static int commit_part(struct mat_table *t)
{
	char name[4400];
	struct rn_buf uri = {0};
	struct rn_delta_add *adds = NULL;
	struct rn_delta_txn *txns = NULL;
	int64_t *first = NULL, version;
	int rc = 0;

	for (size_t i = 0; i < t->nrfiles && !rc; i++) {
		struct mat_file *f = &t->rfiles[i];
		forget_stale(t, &f->path, f->mtime_ms);
		if (f->path)
			continue;
		rc = rn_delta_write_file_in(t->fdelta, f->dir, f->data.data, f->data.len, name,
					    sizeof(name), &f->mtime_ms);
		if (rc)
			break;
		rn_buf_reset(&uri);
		if ((rc = rn_part_uri(&uri, name, strlen(name))) ||
		    (rc = rn_buf_append_u8(&uri, 0)))
			break;
		if (!(f->path = rn_strdup((const char *)uri.data))) {
			rc = RN_ENOMEM;
			break;
		}
		/* the bytes are kept until the commit: a retry may have to write them again */
		f->size = (int64_t)f->data.len;
	}
	rn_buf_free(&uri);
	if (rc) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: cannot write a data file: %s",
			 t->name, rn_delta_errmsg(t->fdelta));
		return rc;
	}
	if (!(adds = rn_calloc(t->nrfiles ? t->nrfiles : 1, sizeof(*adds))))
		return RN_ENOMEM;
	if ((rc = retry_txns(t, &txns, &first))) {
		rn_free(adds);
		return rc;
	}
	for (size_t i = 0; i < t->nrfiles; i++) {
		const struct mat_file *f = &t->rfiles[i];
		adds[i] = (struct rn_delta_add){f->path, f->size, f->mtime_ms, f->stats, f->pv};
	}
	rc = rn_delta_commit_from(t->fdelta, adds, t->nrfiles, txns, first, t->retry_nstreams,
				  &version);
	if (rc == RN_EEXIST) {
		rn_log_warn("mat",
			    "table %s: batch already committed by another writer; its %zu "
			    "file(s) are orphans",
			    t->name, t->nrfiles);
		rc = 0;
	} else if (!rc) {
		rn_log_debug("mat", "table %s: committed version %lld (%zu files)", t->name,
			     (long long)version, t->nrfiles);
	}
	rn_free(adds);
	rn_free(txns);
	rn_free(first);
	if (rc) {
		commit_failed(t, rc);
		return rc;
	}
	rn_mat__free_files(t->rfiles, t->nrfiles);
	t->rfiles = NULL;
	t->nrfiles = 0;
	t->retry_part = 0;
	return 0;
}

/* Does t hold a flush not yet settled (detached, finished or committed, not yet read back)? */
static int flush_held(const struct mat_table *t)
{
	return t->retry_nstreams || t->retry_part || t->fpq || t->nfparts || t->fcommitted;
}

/* Rows in t's open builders? */
static int open_rows(const struct mat_table *t)
{
	return t->nkeys ? t->nparts || t->nspilled : t->pq && rn_pq_rows(t->pq);
}

/*
 * Loop: hands t's open builders, its pending streams and their bytes to the flush (the
 * fields of mat_table's flush block) and gives t fresh builders. 1 if t has a flush to run
 * (just detached, or one held from an earlier round: then the open rows wait, and the round
 * answers RN_EAGAIN), 0 if nothing, or an error (the builders stay attached).
 */
static int detach(struct rn_mat *m, struct mat_table *t)
{
	if (flush_held(t)) {
		if (open_rows(t) && !m->round_rc)
			m->round_rc = RN_EAGAIN;
		return 1;
	}
	if (!open_rows(t))
		return 0; /* (rows only in its dead-letter table, or none) */
	if (t->nkeys) {
		t->fparts = t->parts;
		t->nfparts = t->nparts;
		t->parts = NULL;
		t->nparts = 0;
		t->rfiles = t->spilled;
		t->nrfiles = t->nspilled;
		t->spilled = NULL;
		t->nspilled = 0;
		t->retry_part = 1;
	} else {
		struct rn_pq_options po = {.created_by = m->created_by,
					   .zstd_level = m->zstd_level,
					   .page_submit = m->page_submit,
					   .page_ctx = m->page_ctx};
		struct rn_pq_writer *nw;
		int rc = rn_pq_writer_create(&nw, t->cols ? t->cols : rn_mat__envelope_cols,
					     t->cols ? t->ncols : t->env_ncols, &po);
		if (rc)
			return rn_mat__fail(m, rc, "table %s: no writer for the next rows",
					    t->name);
		t->fpq = t->pq;
		t->pq = nw;
	}
	t->retry_streams = t->streams;
	t->retry_nstreams = t->nstreams;
	t->streams = NULL;
	t->nstreams = t->capstreams = 0;
	t->fbytes = t->pending_bytes;
	t->pending_bytes = 0;
	t->fmem = t->mem; /* the new writer's few bytes are counted at its first batch */
	m->mem_flush += t->fmem;
	rn_mat__mem_set(m, t, 0);
	struct rn_ledger_debts d = t->fdebts; /* settled (empty); its array is reused */
	t->fdebts = t->debts;
	t->debts = d;
	return 1;
}

/*
 * Worker (or loop, inline): finishes t's detached builders into a file (or files) and
 * commits them with the retry txns through t's flush handle, opened here the first time.
 * Touches only t's flush block, its immutable fields (name, dir, columns) and the log.
 */
static void unit_run(struct mat_table *t)
{
	int rc;
	t->frc = 0;
	t->ferr[0] = 0;
	if (t->fcommitted)
		return; /* committed before (fcommit_ms kept): the loop reads it back again */
	t->fcommit_ms = 0;
	if (!t->fdelta && (rc = rn_mat__delta_open(&t->fdelta, t->dir, t->store, NULL, NULL, 0))) {
		snprintf(t->ferr, sizeof(t->ferr), "table %s: cannot open its log to commit: %s",
			 t->name, rn_strerror(rc));
		t->frc = rc;
		return;
	}
	int64_t v0 = rn_delta_version(t->fdelta);
	if (t->nkeys) {
		if (t->nfparts && (rc = finish_list(t, &t->fparts, &t->nfparts, &t->rfiles,
						    &t->nrfiles, t->ferr, sizeof(t->ferr)))) {
			t->fbroken = 1;
			t->frc = rc;
			return;
		}
		rc = commit_part(t);
	} else {
		if (t->fpq) {
			size_t rows = rn_pq_rows(t->fpq);
			if ((rc = rn_pq_finish(t->fpq, &t->retry_file))) {
				snprintf(t->ferr, sizeof(t->ferr), "table %s: parquet: %s", t->name,
					 rn_strerror(rc));
				t->fbroken = 1;
				t->frc = rc;
				return;
			}
			t->retry_stats =
				rn_pq_delta_stats(t->fpq, t->cols ? t->cols : rn_mat__envelope_cols,
						  t->cols ? t->ncols : t->env_ncols, rows);
			if (!t->retry_stats) {
				/* every add carries its stats: finish again, after a refill */
				snprintf(t->ferr, sizeof(t->ferr), "table %s: stats: %s", t->name,
					 rn_strerror(RN_ENOMEM));
				t->fbroken = 1;
				t->frc = RN_ENOMEM;
				return;
			}
			rn_pq_writer_destroy(t->fpq);
			t->fpq = NULL;
		}
		rc = t->retry_nstreams ? commit_retry(t) : 0;
	}
	if (rc) {
		if (!t->ferr[0])
			snprintf(t->ferr, sizeof(t->ferr), "table %s: commit: %s", t->name,
				 rn_strerror(rc));
		t->frc = rc;
	} else {
		t->fcommitted = 1;
		/* a version of ours: its commitInfo.timestamp is the commit's wall time */
		if (rn_delta_version(t->fdelta) > v0) {
			int64_t ts = rn_delta_commit_time(t->fdelta);
			t->fcommit_ms = ts > 0 ? ts : rn_now_us() / 1000;
		}
	}
	t->fversion = rn_delta_version(t->fdelta);
}

/* Loop: forgets a flush whose builders broke; its rows come back through the refill. */
static void unit_discard(struct mat_table *t)
{
	rn_pq_writer_destroy(t->fpq);
	t->fpq = NULL;
	rn_mat__free_part_list(t->fparts, t->nfparts);
	t->fparts = NULL;
	t->nfparts = 0;
	rn_mat__free_files(t->rfiles, t->nrfiles);
	t->rfiles = NULL;
	t->nrfiles = 0;
	t->retry_part = 0;
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	t->retry_stats = NULL;
	rn_free(t->retry_path); /* written and not committed: an orphan file, as after a crash */
	t->retry_path = NULL;
	rn_mat__free_streams(t->retry_streams, t->retry_nstreams);
	t->retry_streams = NULL;
	t->retry_nstreams = 0;
	t->fbroken = 0;
	t->frc = 0;
}

/* One flush job: a table, preceded by its dead-letter table (committed first). */
struct flush_job {
	struct mat_table *u[2]; /* their flush blocks are the worker's until flush_done */
	size_t n;
	int64_t run_us;
	struct rn_mat *m; /* the loop's, never touched by the worker */
};

/* On a worker (or inline): the units in order; a table whose dead letters did not commit
 * waits (unfinished builders of it are refilled with them if the dead letters broke). */
static void flush_run(void *arg)
{
	struct flush_job *j = arg;
	int64_t t0 = rn_mono_us();
	for (size_t i = 0; i < j->n; i++) {
		struct mat_table *t = j->u[i];
		if (i && !j->u[0]->fcommitted) {
			t->frc = RN_EAGAIN;
			snprintf(t->ferr, sizeof(t->ferr), "table %s: waits for its dead letters",
				 t->name);
			if (j->u[0]->fbroken && (t->fpq || t->nfparts))
				t->fbroken = 1;
			continue;
		}
		unit_run(t);
	}
	/* this thread's compression contexts and write buffer: not kept between jobs (nor
	 * leaked when the pool's threads exit) */
	rn_zstd_release();
	rn_fs_thread_release();
	j->run_us = rn_mono_us() - t0;
}

/* Loop: one job of the round is over; the last one ends the round. */
static void round_step(struct rn_mat *m)
{
	if (--m->round_jobs)
		return;
	int64_t now_ms = rn_mono_us() / 1000;
	for (size_t k = 0; k < m->ntables; k++) /* checkpoint, compact, vacuum when due */
		rn_mat__maintain(m, m->tables[k], now_ms);
	if (m->round_cb) {
		void (*cb)(void *, int) = m->round_cb;
		m->round_cb = NULL;
		cb(m->round_ctx, m->round_rc);
	}
}

/* Back on the loop, once per job: settles each table's flush. */
static void flush_done(void *arg, int cancelled)
{
	struct flush_job *j = arg;
	struct rn_mat *m = j->m;
	for (size_t i = 0; i < j->n; i++) {
		struct mat_table *t = j->u[i];
		int rc = 0;
		t->fj = NULL;
		/* the detached rows' bytes: settled once, whatever came of them (a failed
		 * commit keeps its file in memory, a broken one is refilled and charged again) */
		m->pending_bytes -= t->fbytes;
		t->fbytes = 0;
		rn_ledger_settle(m->ledger, &t->fdebts);
		if (cancelled) {
			rc = RN_EAGAIN;
		} else if (t->fbroken && t->frc == RN_EOVERLAP) {
			/* not a failure: the rows wait for the next round, rebuilt without the
			 * offsets another writer committed (the loop's handle reads them now) */
			rn_log_warn("mat",
				    "table %s: another writer committed some of these streams' "
				    "offsets; rebuilding the rows without them",
				    t->name);
			m->ms.overlaps++;
			if (rn_delta_refresh(t->delta))
				rn_log_warn("mat", "table %s: %s", t->name,
					    rn_delta_errmsg(t->delta));
			else
				t->acks_due = 1;
			unit_discard(t);
			t->dirty = 1;
			rc = RN_EAGAIN;
		} else if (t->fbroken) {
			rc = rn_mat__fail(m, t->frc ? t->frc : RN_EIO, "%s", t->ferr);
			unit_discard(t);
			t->dirty = 1; /* a dead-letter table is rebuilt by its typed table */
		} else if (t->fcommitted) {
			if (t->fcommit_ms > t->commit_ms) /* durable: whatever the read-back does */
				t->commit_ms = t->fcommit_ms;
			/* the loop's handle reads the commit back: has_batch and rn_mat_add skip
			 * its batches by their txns from now on; until then by retry_streams */
			if (rn_delta_refresh(t->delta)) {
				rn_log_warn("mat", "table %s: %s", t->name,
					    rn_delta_errmsg(t->delta));
			} else {
				t->acks_due = 1;
				rn_mat__free_streams(t->retry_streams, t->retry_nstreams);
				t->retry_streams = NULL;
				t->retry_nstreams = 0;
				t->fcommitted = 0;
			}
		} else if (t->frc) {
			rc = t->frc == RN_EAGAIN ? RN_EAGAIN
						 : rn_mat__fail(m, t->frc, "%s", t->ferr);
		}
		if (rc && (!m->round_rc || m->round_rc == RN_EAGAIN))
			m->round_rc = rc;
		if (!flush_held(t)) { /* a failed commit keeps its file for the retry */
			m->mem_flush -= t->fmem;
			t->fmem = 0;
		}
	}
	m->ms.flush_jobs++;
	m->ms.flush_us += (uint64_t)j->run_us;
	if ((uint64_t)j->run_us > m->ms.flush_max_us)
		m->ms.flush_max_us = (uint64_t)j->run_us;
	m->ms.flush_inflight--;
	rn_free(j);
	round_step(m);
}

/* Loop: the job of t (and its dead-letter table), submitted or run inline. */
static void flush_table(struct rn_mat *m, struct mat_table *t)
{
	struct mat_table *u[2];
	size_t n = 0;
	int rc, dlq_lag = t->dlq && flush_held(t->dlq) && open_rows(t->dlq);
	if (t->dlq && (rc = detach(m, t->dlq)) != 0) {
		if (rc < 0) {
			m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN ? m->round_rc : rc;
			return; /* the table waits for its dead letters */
		}
		u[n++] = t->dlq;
	}
	if (dlq_lag && !flush_held(t)) {
		/* its dead letters wait behind a held flush: so do its new rows */
		if (open_rows(t) && !m->round_rc)
			m->round_rc = RN_EAGAIN;
	} else if ((rc = detach(m, t)) < 0)
		m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN ? m->round_rc : rc;
	else if (rc)
		u[n++] = t;
	if (!n)
		return;
	struct flush_job *j = rn_calloc(1, sizeof(*j));
	if (!j) { /* what was detached stays held: the next round runs it */
		m->round_rc = m->round_rc && m->round_rc != RN_EAGAIN
				      ? m->round_rc
				      : rn_mat__fail(m, RN_ENOMEM, "flush job");
		return;
	}
	memcpy(j->u, u, n * sizeof(*u));
	j->n = n;
	j->m = m;
	for (size_t i = 0; i < n; i++)
		u[i]->fj = j;
	m->round_jobs++;
	m->ms.flush_inflight++;
	if (m->flush_inline || !m->flush_submit ||
	    m->flush_submit(m->flush_ctx, flush_run, flush_done, j)) {
		flush_run(j); /* no worker (or the queue is full): on this thread */
		flush_done(j, 0);
	}
}

int rn_mat_flush_start(struct rn_mat *m, void (*cb)(void *ctx, int rc), void *ctx)
{
	if (m->round_jobs)
		return RN_EAGAIN;
	m->round_rc = 0;
	m->round_cb = cb;
	m->round_ctx = ctx;
	m->round_jobs = 1; /* the round cannot end while it is being started */
	/* builders left behind by a failure are rebuilt first (a dead-letter table's by its
	 * typed table): the refill skips what a held flush has */
	for (size_t k = 0; k < m->ntables; k++) {
		struct mat_table *t = m->tables[k];
		int rc;
		if (!t->is_dlq && (t->dirty || (t->dlq && t->dlq->dirty)) &&
		    (rc = rn_mat__rebuild(m, t)))
			m->round_rc = m->round_rc ? m->round_rc
						  : rn_mat__fail(m, rc,
								 "table %s: cannot rebuild "
								 "its pending rows: %s",
								 t->name, rn_strerror(rc));
	}
	/* one job per table, holding its dead-letter table (committed first: a batch
	 * committed to a typed table must already be in its dead-letter table, which
	 * rn_mat_add relies on after a crash); a dead-letter table no typed table holds (opened
	 * by its own name) flushes on its own */
	for (size_t k = 0; k < m->ntables; k++) {
		struct mat_table *t = m->tables[k];
		int owned = 0;
		if (t->is_dlq)
			for (size_t i = 0; i < m->ntables && !owned; i++)
				owned = m->tables[i]->dlq == t;
		if (owned || t->fj || t->dirty || (t->dlq && (t->dlq->dirty || t->dlq->fj)))
			continue;
		flush_table(m, t);
	}
	round_step(m);
	return 0;
}

int rn_mat_flush(struct rn_mat *m)
{
	int rc = 0;
	if (m->round_jobs)
		return rn_mat__fail(m, RN_EAGAIN, "a flush is in flight");
	/* a round that found a flush held from before leaves the rows behind it (RN_EAGAIN):
	 * the next round takes them */
	for (int i = 0; i < 3; i++) {
		m->flush_inline = 1;
		rn_mat_flush_start(m, NULL, NULL);
		m->flush_inline = 0;
		if ((rc = m->round_rc) != RN_EAGAIN)
			break;
	}
	if (rc == RN_EAGAIN)
		rn_mat__fail(m, rc, "rows still pending after three flush rounds");
	return rc;
}

void rn_mat_committed_tables(struct rn_mat *m, void (*fn)(void *ctx, const char *table), void *ctx)
{
	for (size_t k = 0; k < m->ntables; k++) {
		struct mat_table *t = m->tables[k];
		if (!t->acks_due)
			continue;
		t->acks_due = 0;
		if (!t->is_dlq)
			fn(ctx, t->name);
	}
}

int rn_mat_flush_busy(const struct rn_mat *m)
{
	return m->round_jobs != 0;
}
