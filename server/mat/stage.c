/*
 * One batch, whole or not at all (rn_mat_add, rn_mat_refill_add). The staging area of a
 * table is its open builders: every batch added since the table's last commit, and only
 * those. A batch is decoded into them row by row (add_rows: rows to the table, misfits to
 * its dead-letter table, then the streams noted); if any row fails (memory, a broken
 * writer), the staging area is rebuilt (rebuild: the open builders of the table and its
 * dead-letter table are dropped and the caller's refill callback adds the batches since the
 * last commit again from its own durable log), so the failed batch leaves nothing. The
 * alternative, decoding each batch into a second staging buffer and appending it on
 * success, would still need this rebuild (the append into the builders can fail part way
 * as well, and the Parquet builders cannot be rolled back), and would copy every value once
 * more on the path every batch takes; the rebuild costs only on a failure.
 * Which batches a table has (has_batch: committed, committing or pending) is decided here
 * too, so that WAL replays and refills add each once. Loop thread only.
 */
#include "mat_int.h"

#include <stdio.h>
#include <string.h>

#include "delta.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"

static struct pending_stream *find_stream(struct pending_stream *s, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i].id, id))
			return &s[i];
	return NULL;
}

/* Remembers that `t` holds rows of stream_id up to `offset` (its txn at commit). */
static int note_stream(struct mat_table *t, const char *stream_id, int64_t offset)
{
	struct pending_stream *ps = find_stream(t->streams, t->nstreams, stream_id);
	if (!ps) {
		if (rn_grow(&t->streams, &t->capstreams, t->nstreams, sizeof(*t->streams), 8,
			    SIZE_MAX))
			return RN_ENOMEM;
		ps = &t->streams[t->nstreams];
		if (!(ps->id = rn_strdup(stream_id)))
			return RN_ENOMEM;
		ps->first = offset;
		t->nstreams++;
	}
	ps->last = offset;
	return 0;
}

/* Has table t (pending, retrying or committed) got stream_id's batch `offset` already? */
static int has_batch(struct mat_table *t, const char *stream_id, int64_t offset)
{
	struct pending_stream *ps = find_stream(t->streams, t->nstreams, stream_id);
	struct pending_stream *rs = find_stream(t->retry_streams, t->retry_nstreams, stream_id);
	return offset <= rn_delta_txn(t->delta, stream_id) || (ps && offset <= ps->last) ||
	       (rs && offset <= rs->last);
}

void rn_mat__mem_set(struct rn_mat *m, struct mat_table *t, size_t mem)
{
	m->mem_builders = m->mem_builders - t->mem + mem;
	t->mem = mem;
}

/* An unpartitioned table's writer after rows went in (a partitioned one counts per row in
 * route_row). Once per batch: rn_pq_mem is a walk of the writer's leaves. */
static void mem_sync(struct rn_mat *m, struct mat_table *t)
{
	if (t && !t->nkeys)
		rn_mat__mem_set(m, t, t->pq ? rn_pq_mem(t->pq) : 0);
}

/* Puts the rows of one validated batch into t's builders (and its dead letters into its
 * dead-letter table's) and notes the stream. On failure part of the batch may be in them:
 * the caller rebuilds. */
static int add_rows(struct rn_mat *m, struct mat_table *t, const char *stream_id, int64_t offset,
		    int record_type, const uint8_t *batch, size_t len, int64_t now,
		    const struct rn_mat_clock *clk, const char *principal)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	size_t dead = 0, nrec = 0, first_index = 0;
	char why[512], first_why[512] = "";
	int rc = 0;

	/* A typed table's dead letters are committed before the table: a batch the table has
	 * is in its dead-letter table too. */
	int dlq_has = t->dlq && has_batch(t->dlq, stream_id, offset);
	const struct rn_protoplan *plan = rn_mat__find_plan(t, stream_id);
	rn_pb_reader_init(&rd, batch, len);
	for (size_t index = 0; rn_pb_next(&rd, &f) == 1; index++, nrec++) {
		if (!t->schema) {
			const char *bad = NULL;
			rc = rn_mat__add_envelope_row(m, t, stream_id, record_type, f.ptr, f.len,
						      now, NULL, clk, &bad);
			if (!rc && bad && !dead++) {
				snprintf(first_why, sizeof(first_why), "%s", bad);
				first_index = index;
			}
		} else {
			rc = rn_mat__add_typed_row(m, t, stream_id, principal, record_type, plan,
						   f.ptr, f.len, now, clk, why, sizeof(why));
			if (!rc && why[0]) {
				if (!dead++) {
					snprintf(first_why, sizeof(first_why), "%s", why);
					first_index = index;
				}
				if (!dlq_has) {
					struct dead_ref dr = {why, offset, index};
					rc = rn_mat__add_envelope_row(m, t->dlq, stream_id,
								      record_type, f.ptr, f.len,
								      now, &dr, clk, NULL);
				}
			}
		}
		if (rc)
			return rc;
	}
	mem_sync(m, t);
	if (dead && t->dlq && !dlq_has)
		mem_sync(m, t->dlq);
	if (dead && t->dlq && !dlq_has && (rc = note_stream(t->dlq, stream_id, offset)))
		return rc;
	if ((rc = note_stream(t, stream_id, offset)))
		return rc;
	if (dead && !m->refilling) /* a refill adds batches that were reported already */
		rn_mat__warn_bad(m, t, stream_id, offset, dead, nrec, first_index, first_why);
	return 0;
}

/* Empties the open builders of t: its writer or partitions and the files they finished
 * early, its pending streams. RN_ENOMEM (a new writer) leaves t without a writer: dirty. */
static int drop_open(struct rn_mat *m, struct mat_table *t)
{
	struct rn_pq_options po = {.created_by = m->created_by,
				   .zstd_level = m->zstd_level,
				   .page_submit = m->page_submit,
				   .page_ctx = m->page_ctx};
	rn_mat__free_parts(t);
	rn_mat__free_files(t->spilled, t->nspilled);
	t->spilled = NULL;
	t->nspilled = 0;
	rn_mat__free_streams(t->streams, t->nstreams);
	t->streams = NULL;
	t->nstreams = t->capstreams = 0;
	m->pending_bytes -= t->pending_bytes;
	t->pending_bytes = 0;
	rn_mat__mem_set(m, t, 0);
	rn_ledger_settle(m->ledger, &t->debts);
	if (t->nkeys)
		return 0;
	rn_pq_writer_destroy(t->pq);
	t->pq = NULL;
	return rn_pq_writer_create(&t->pq, t->cols ? t->cols : rn_mat__envelope_cols,
				   t->cols ? t->ncols : t->env_ncols, &po);
}

/*
 * Makes t's open builders (and its dead-letter table's) hold exactly the batches added since
 * t's last commit: empties them (a file whose commit failed stays, to be committed as it is)
 * and has the refill callback add the table's batches again through rn_mat_refill_add, which
 * skips what t has committed or is committing (has_batch; dead letters likewise through the
 * dead-letter table's). On failure t stays dirty and the next add or flush tries again.
 */
int rn_mat__rebuild(struct rn_mat *m, struct mat_table *t)
{
	int rc;
	t->dirty = 1;
	if (t->dlq)
		t->dlq->dirty = 1;
	if ((rc = drop_open(m, t)) || (t->dlq && (rc = drop_open(m, t->dlq))))
		return rc;
	if (m->refill) {
		m->err[0] = 0;
		m->refilling = t;
		rc = m->refill(m->refill_ctx, m, t->name);
		m->refilling = NULL;
		if (rc) {
			if (!m->err[0])
				rn_mat__fail(m, rc, "table %s: refill failed: %s", t->name,
					     rn_strerror(rc));
			return rc;
		}
	}
	t->dirty = 0;
	if (t->dlq)
		t->dlq->dirty = 0;
	return 0;
}

int rn_mat_drop_pending(struct rn_mat *m, const char *table)
{
	struct mat_table *t;
	if (rn_mat__get_table(m, table, 0, &t))
		return RN_ENOTFOUND;
	t->dirty = 1; /* make_clean rebuilds it at the next add or flush */
	return 0;
}

/* Rebuilds t's builders if a failure left them (or, for a dead-letter table, its typed
 * table's) dirty. */
static int make_clean(struct rn_mat *m, struct mat_table *t)
{
	int rc;
	if (t->is_dlq && t->dirty)
		for (size_t i = 0; i < m->ntables; i++)
			if (m->tables[i]->dlq == t && (rc = rn_mat__rebuild(m, m->tables[i])))
				return rc;
	if (t->dirty || (t->dlq && t->dlq->dirty))
		return rn_mat__rebuild(m, t);
	return 0;
}

/* Is batch a record list (field 1, length-delimited, only)? */
static int check_batch(struct rn_mat *m, const uint8_t *batch, size_t len)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;
	rn_pb_reader_init(&rd, batch, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1)
		if (f.num != 1 || f.wt != RN_PB_LEN)
			return rn_mat__fail(m, RN_EINVAL,
					    "batch holds something other than records");
	if (rc < 0)
		return rn_mat__fail(m, RN_EINVAL, "malformed record batch");
	return 0;
}

int rn_mat_refill_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		      int record_type, const uint8_t *batch, size_t len,
		      const struct rn_mat_clock *clk)
{
	return rn_mat_refill_add_as(m, table, stream_id, offset, record_type, batch, len, clk,
				    NULL);
}

int rn_mat_refill_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
			 int record_type, const uint8_t *batch, size_t len,
			 const struct rn_mat_clock *clk, const char *principal)
{
	struct mat_table *t = m->refilling;
	int rc;
	if (!t || strcmp(t->name, table))
		return rn_mat__fail(m, RN_EINVAL, "refill of table %s outside its rebuild", table);
	if (has_batch(t, stream_id, offset))
		return 0;
	if ((rc = check_batch(m, batch, len)))
		return rc;
	if ((rc = add_rows(m, t, stream_id, offset, record_type, batch, len, rn_now_us(), clk,
			   principal)))
		return rn_mat__fail(m, rc, "table %s: cannot add record again: %s", table,
				    rn_strerror(rc));
	t->pending_bytes += len;
	m->pending_bytes += len;
	/* uncharged rows would let their writer past its share: the refill fails (the table
	 * stays dirty and is rebuilt again before its next add or flush) */
	if (rn_ledger_charge(m->ledger, &t->debts, principal, len))
		return rn_mat__fail(m, RN_ENOMEM, "table %s: cannot count its writer's bytes",
				    table);
	return 0;
}

int rn_mat_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
	       int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk)
{
	return rn_mat_add_as(m, table, stream_id, offset, record_type, batch, len, clk, NULL);
}

int rn_mat_add_as(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
		  int record_type, const uint8_t *batch, size_t len, const struct rn_mat_clock *clk,
		  const char *principal)
{
	struct mat_table *t;
	int rc;

	if (m->refilling)
		return rn_mat__fail(m, RN_EINVAL, "rn_mat_add inside a refill");
	if ((rc = rn_mat__get_table(m, table, 0, &t)))
		return rc;
	if ((rc = make_clean(m, t)))
		return rn_mat__fail(m, rc, "table %s: cannot rebuild its pending rows: %s", table,
				    m->err[0] ? m->err : rn_strerror(rc));
	if (has_batch(t, stream_id, offset))
		return 0;
	/* validate the list before touching the builders */
	if ((rc = check_batch(m, batch, len)))
		return rc;
	if ((rc = add_rows(m, t, stream_id, offset, record_type, batch, len, rn_now_us(), clk,
			   principal))) {
		/* all of the batch or none of it: the builders go back to the batches before
		 * it, refilled by the caller (now, or at the next call if that fails too); the
		 * batch is not in the caller's log yet, and the client sends it again */
		rn_mat__rebuild(m, t);
		return rn_mat__fail(m, rc, "table %s: cannot add record: %s", table,
				    rn_strerror(rc));
	}
	if (rn_ledger_charge(m->ledger, &t->debts, principal, len)) {
		/* the batch is in the builders but not counted: undone as a failed add */
		rn_mat__rebuild(m, t);
		return rn_mat__fail(m, RN_ENOMEM, "table %s: cannot count its writer's bytes",
				    table);
	}
	t->pending_bytes += len;
	m->pending_bytes += len;
	return 0;
}
