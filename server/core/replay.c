/*
 * WAL replay at start and the tables that failed it (server_int.h, struct srv_failing):
 * every WAL record goes back into the materializer under its stream (ephemeral streams of
 * earlier runs are made again, ended, with their clock and owner from the registry); a table
 * that cannot take its records keeps the segments holding them (rn_wal_drop_before skips
 * them, their bytes are wal_retained_bytes) and is retried every RETRY_US and on each
 * create/resume for it, until its records are back in the materializer and a flush has
 * committed them. Moved out of server.c; loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "server_int.h"
#include "wal.h"

static int keep_segment(struct srv_failing *f, uint64_t seg);

int rn_server__replay_entry(void *ctx, const struct rn_wal_entry *e)
{
	struct rn_server *s = ctx;
	struct srv_stream *st = rn_server__find_stream(s, e->stream_id, e->stream_id_len);
	char table[300], sid[64];
	int rc;

	if (e->table_len >= sizeof(table) || e->stream_id_len >= sizeof(sid))
		return 0;
	memcpy(table, e->table, e->table_len);
	table[e->table_len] = 0;
	memcpy(sid, e->stream_id, e->stream_id_len);
	sid[e->stream_id_len] = 0;
	if (!st) {
		if (!(st = rn_server__add_stream(s, sid, e->stream_id_len, table, e->table_len,
						 e->record_type)))
			return RN_ENOMEM;
		rn_server__load_files(s, st);    /* an ephemeral stream's clock and owner */
		rn_server__mark_ended(s, st, 1); /* its call ended with the last run */
	}
	if (e->offset > st->last_durable)
		st->last_durable = st->last_received = e->offset;
	/* once a table failed, its later records wait too: adding them would let the table's
	 * txn pass the ones before, which would then be skipped as already committed */
	struct srv_failing *f = rn_server__find_failing(s, table);
	if (!f) {
		if (!(rc = rn_mat_add_as(s->mat, table, sid, e->offset, e->record_type, e->batch,
					 e->batch_len, st->has_clock ? &st->clock : NULL,
					 rn_server__owner_of(st)))) {
			s->mat_dirty = 1;
			return 0;
		}
		if (!(f = rn_server__add_failing(s, table, 0)))
			return RN_ENOMEM;
		snprintf(f->why, sizeof(f->why), "%s", rn_mat_errmsg(s->mat));
		rn_log_error("server",
			     "WAL recovery: table %s cannot take stream %s offset %lld: "
			     "%s; its records stay in the WAL and it is retried",
			     table, sid, (long long)e->offset, f->why);
	}
	return keep_segment(f, rn_wal_replay_segment(s->wal));
}

/* The failing-table entry of `table`, or NULL. */
struct srv_failing *rn_server__find_failing(const struct rn_server *s, const char *table)
{
	for (struct srv_failing *f = s->failing; f; f = f->next)
		if (!strcmp(f->table, table))
			return f;
	return NULL;
}

struct srv_failing *rn_server__add_failing(struct rn_server *s, const char *table, int configured)
{
	struct srv_failing *f = rn_calloc(1, sizeof(*f));
	if (!f || !(f->table = rn_strdup(table))) {
		rn_free(f);
		return NULL;
	}
	f->configured = configured;
	f->next = s->failing;
	s->failing = f;
	return f;
}

void rn_server__free_failing(struct srv_failing *f)
{
	rn_free(f->table);
	rn_free(f->segs);
	rn_free(f);
}

/* Notes that segment seg holds records of f's table (ids arrive in ascending order). */
static int keep_segment(struct srv_failing *f, uint64_t seg)
{
	if (f->nsegs && f->segs[f->nsegs - 1] == seg)
		return 0;
	if (f->nsegs == f->capsegs) {
		size_t nc = f->capsegs ? f->capsegs * 2 : 4;
		uint64_t *t = rn_reallocarray(f->segs, nc, sizeof(*t));
		if (!t)
			return RN_ENOMEM;
		f->segs = t;
		f->capsegs = nc;
	}
	f->segs[f->nsegs++] = seg;
	return 0;
}

/* rn_wal_drop_before's keep callback: segments holding records of a failing table. */
int rn_server__segment_kept(void *ctx, uint64_t seg)
{
	const struct rn_server *s = ctx;
	for (const struct srv_failing *f = s->failing; f; f = f->next)
		for (size_t i = 0; i < f->nsegs; i++)
			if (f->segs[i] == seg)
				return 1;
	return 0;
}

/* Recomputes retained_bytes: each kept segment counted once. */
void rn_server__count_retained(struct rn_server *s)
{
	s->retained_bytes = 0;
	for (const struct srv_failing *f = s->failing; f; f = f->next)
		for (size_t i = 0; i < f->nsegs; i++) {
			int seen = 0;
			for (const struct srv_failing *g = s->failing; g != f && !seen; g = g->next)
				for (size_t k = 0; k < g->nsegs && !seen; k++)
					seen = g->segs[k] == f->segs[i];
			if (!seen)
				s->retained_bytes += rn_wal_segment_bytes(s->wal, f->segs[i]);
		}
}

struct retry_ctx {
	struct rn_server *s;
	const char *table;
	size_t added;
};

/* rn_wal_scan callback of a retry: adds the failing table's records again. */
static int retry_entry(void *ctx, const struct rn_wal_entry *e)
{
	struct retry_ctx *r = ctx;
	struct rn_server *s = r->s;
	struct srv_stream *st;
	char sid[64];
	if (e->table_len != strlen(r->table) || memcmp(e->table, r->table, e->table_len) ||
	    e->stream_id_len >= sizeof(sid))
		return 0;
	memcpy(sid, e->stream_id, e->stream_id_len);
	sid[e->stream_id_len] = 0;
	if (!(st = rn_server__find_stream(s, e->stream_id, e->stream_id_len))) {
		/* kept by forget_ended while its table fails; only an allocation can miss it */
		if (!(st = rn_server__add_stream(s, sid, e->stream_id_len, r->table,
						 strlen(r->table), e->record_type)))
			return RN_ENOMEM;
		rn_server__load_files(s, st);
		rn_server__mark_ended(s, st, 1);
	}
	int rc = rn_mat_add_as(s->mat, r->table, sid, e->offset, e->record_type, e->batch,
			       e->batch_len, st->has_clock ? &st->clock : NULL,
			       rn_server__owner_of(st));
	if (!rc)
		r->added++;
	return rc;
}

/*
 * Tries a failing table again: opens it (creating a configured one), hands its streams'
 * descriptors to the materializer and adds its kept records in WAL order. On success the
 * table is `readded` (the next good flush lets it go). 0, or the error (reason in f->why).
 */
static int retry_table(struct rn_server *s, struct srv_failing *f)
{
	struct retry_ctx r = {s, f->table, 0};
	int rc = 0;
	if (f->readded)
		return 0;
	s->stats.recovery_retries++;
	f->retries++;
	if (f->configured && (rc = rn_mat_ensure_table(s->mat, f->table)))
		snprintf(f->why, sizeof(f->why), "%s", rn_mat_errmsg(s->mat));
	else if (rn_server__load_descriptors(s, f->table))
		snprintf(f->why, sizeof(f->why), "%s", rn_mat_errmsg(s->mat)), rc = RN_EIO;
	for (size_t i = 0; !rc && i < f->nsegs; i++) {
		/* RN_ECORRUPT: a packed entry that does not decompress (wal.h) */
		if ((rc = rn_wal_scan(s->wal, f->segs[i], retry_entry, &r)) == RN_EIO ||
		    rc == RN_ECORRUPT)
			snprintf(f->why, sizeof(f->why), "%s", rn_wal_errmsg(s->wal));
		else if (rc)
			snprintf(f->why, sizeof(f->why), "%s", rn_mat_errmsg(s->mat));
	}
	if (rc) {
		/* records added before the failure stay pending: a prefix, in order; the next
		 * retry skips them as the materializer already has them */
		if (r.added)
			s->mat_dirty = 1;
		if (f->retries % 12 == 1)
			rn_log_warn("server", "table %s still cannot be recovered (%u tries): %s",
				    f->table, f->retries, f->why);
		return rc;
	}
	f->readded = 1;
	s->mat_dirty = 1;
	if (!s->oldest_pending_us)
		s->oldest_pending_us = rn_mono_us();
	rn_log_info("server",
		    "table %s recovered: %zu kept batches from %zu WAL segment(s) go "
		    "into it with the next flush",
		    f->table, r.added, f->nsegs);
	return 0;
}

/* Retries every failing table (when due, or now with force). */
void rn_server__retry_failing(struct rn_server *s, int force)
{
	int64_t now = rn_mono_us();
	if (!s->failing || (!force && now < s->retry_at_us))
		return;
	s->retry_at_us = now + RETRY_US;
	for (struct srv_failing *f = s->failing; f; f = f->next)
		retry_table(s, f);
}

/* After a flush that committed everything added before it: readded tables are whole. */
void rn_server__release_readded(struct rn_server *s)
{
	int n = 0;
	for (struct srv_failing **pp = &s->failing; *pp;) {
		struct srv_failing *f = *pp;
		if (f->readded != 2) {
			pp = &f->next;
			continue;
		}
		rn_log_info("server",
			    "table %s: every kept record is committed; its WAL segments "
			    "can go",
			    f->table);
		*pp = f->next;
		rn_server__free_failing(f);
		n++;
	}
	if (n)
		rn_server__count_retained(s);
}

/* On create/resume for `table`: refuses it (UNAVAILABLE, *why set) while the table still
 * has records kept in the WAL that cannot be put into it, retrying first. */
int rn_server__table_failing(struct rn_server *s, const char *table, char *why, size_t cap)
{
	struct srv_failing *f = rn_server__find_failing(s, table);
	if (!f || f->readded || !retry_table(s, f))
		return 0;
	if (snprintf(why, cap,
		     "table %s cannot be recovered yet (its acknowledged records are "
		     "kept): %s",
		     table, f->why) < 0)
		why[0] = 0; /* a message cut at cap is still a message */
	return 1;
}
