/*
 * The pipeline: sources (plugin instances) -> chunk builders -> buffer, and the uplink's io
 * callbacks over the buffer. Per source there is one stream (named after the source) with
 * its chunk builder, plus one per route. A chunk closes on size or count inside emit(), or
 * on linger in tick(); it is committed to the buffer together with the source's snapshot
 * (its resume position) in one transaction. When the buffer refuses a chunk (full), the
 * chunk waits in memory and the source is paused (accepting() = 0) until it fits. Sources
 * are created by rn_agent__source_start (at start and on reload) and freed by
 * rn_agent__source_free; all of it runs on the loop thread.
 */
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "evtime.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "route.h"

#define ACK_LOG_EVERY 100      /* chunks acknowledged per INFO line */
#define ACK_COALESCE_US 100000 /* an ack waits at most this long for others (io_acked) */
#define PAUSE_LOG_US 10000000  /* at most one "paused" line per source per 10 s */

struct route *rn_agent__by_stream(struct rn_agent *a, int stream, struct source **src)
{
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++)
			if (a->src[i]->routes[k].st.id == stream) {
				if (src)
					*src = a->src[i];
				return &a->src[i]->routes[k];
			}
	return NULL;
}

/*
 * The tombstone that replaces a dropped chunk: one record at the chunk's offset, flagged
 * RN_RECORD_F_DROPPED, with the first dropped seq as its seq and attributes saying why and
 * how many, so the loss is a visible row in the table rather than a silent gap.
 */
static int make_tombstone(void *ctx, const struct rn_buffer_victim *v, int why, struct rn_buf *out)
{
	struct rn_agent *a = ctx;
	struct source *src = NULL;
	char n[24], range[64];
	rn_agent__by_stream(a, v->stream, &src);
	snprintf(n, sizeof(n), "%u", v->nrec);
	if (v->seq0 >= 0)
		snprintf(range, sizeof(range), "%lld-%lld", (long long)v->seq0,
			 (long long)(v->seq0 + v->nrec - 1));
	else
		snprintf(range, sizeof(range), "unknown");
	struct rn_attr at[3] = {
		{"runnel.error",
		 why == RN_BUFFER_DROP_EXPIRED
			 ? "dropped by the agent: older than the source's ttl"
			 : "dropped by the agent: buffer full (policy drop_oldest)"},
		{"runnel.dropped_records", n},
		{"runnel.dropped_seq", range},
	};
	struct rn_record rec = {.flags = RN_RECORD_F_DROPPED, .attrs = at, .nattrs = 3};
	struct rn_chunk_origin o = {.device_id = a->device_id,
				    .source = src ? src->conf->name : NULL};
	struct rn_chunk_builder cb = {
		.lim = {.max_bytes = 4096, .max_records = 1, .zstd_level = 1}};
	int rc = rn_chunk_add(&cb, &o, &rec, (uint64_t)(v->seq0 >= 0 ? v->seq0 : 0), rn_now_us());
	if (!rc)
		rc = rn_chunk_close(&cb, v->offset, out);
	rn_chunk_free(&cb);
	return rc;
}

/* policy drop_oldest: makes room for `bytes` more by tombstoning the oldest chunks. */
static int drop_for(struct rn_agent *a, int64_t bytes)
{
	uint64_t recs = 0;
	rn_agent__acks_apply(a); /* acknowledged chunks go first, not as drops */
	int64_t need = rn_buffer_bytes(a->buffer) + bytes - a->conf->buffer_max_bytes;
	int rc = rn_buffer_drop_oldest(a->buffer, need, make_tombstone, a, &recs);
	a->dropped_records += recs;
	if (recs) {
		int64_t now = rn_mono_us();
		if (now - a->drop_logged_us >= PAUSE_LOG_US) {
			rn_log_warn("agent",
				    "buffer full: dropped the oldest records (policy "
				    "drop_oldest), %llu so far; tombstones in the table count them",
				    (unsigned long long)a->dropped_records);
			a->drop_logged_us = now;
		}
	}
	return rc;
}

/* Segment number of a buffer stream name of the route (base, or base~N), or -1. */
static int segment_of(const char *base, const char *name)
{
	size_t n = strlen(base);
	char *end;
	if (strncmp(name, base, n))
		return -1;
	if (!name[n])
		return 0;
	if (name[n] != '~' || !name[n + 1])
		return -1;
	long k = strtol(name + n + 1, &end, 10);
	return *end || k <= 0 || k > 1000000 ? -1 : (int)k;
}

/* Buffer streams of the route's older segments that still hold unacknowledged chunks. */
static int segments_draining(struct rn_agent *a, const struct route *r)
{
	int ids[256], busy = 0;
	size_t n = 0;
	if (rn_buffer_stream_ids(a->buffer, ids, 256, &n))
		return SEGMENTS_MAX;
	for (size_t i = 0; i < n && i < 256; i++) {
		struct rn_buffer_stream st;
		if (ids[i] != r->st.id && !rn_buffer_stream_load(a->buffer, ids[i], &st) &&
		    segment_of(r->base, st.name) >= 0 && st.next_offset - 1 > st.acked)
			busy++;
	}
	return busy;
}

/* Points the route at segment `seg` of its stream (creating it), registered with the
 * uplink; seq continues from next_seq. 0 or an RN_E* code. */
static int route_use_segment(struct rn_agent *a, struct route *r, int seg, int64_t next_seq)
{
	struct rn_buffer_stream st;
	int rc;
	if (seg)
		snprintf(r->name, sizeof(r->name), "%s~%d", r->base, seg);
	else
		snprintf(r->name, sizeof(r->name), "%s", r->base);
	if ((rc = rn_buffer_stream_get(a->buffer, r->name, r->table, &st))) {
		rn_log_error("agent", "stream %s: %s", r->name, rn_buffer_errmsg(a->buffer));
		return rc;
	}
	if (st.next_seq < next_seq)
		st.next_seq = next_seq; /* stored with its first chunk */
	struct rn_uplink_stream_def d = {st.id, st.table, st.server_id[0] ? st.server_id : NULL,
					 st.acked, st.next_offset};
	if ((rc = rn_uplink_add_stream(a->uplink, &d)) && rc != RN_EEXIST)
		return rc;
	r->st = st;
	r->segment = seg;
	return 0;
}

/*
 * backlog_split: the link is up, yet the stream's oldest unacknowledged chunk is older than
 * the source's backlog_split. New records then go to the next segment of the stream, a
 * stream of its own (base~N) sent on its own call, so live data arrives while the backlog
 * drains. Each stream stays in order and exactly once; seq continues across segments.
 */
static void maybe_split(struct source *s, struct route *r)
{
	struct rn_agent *a = s->a;
	struct rn_uplink_stream_stats us = {0};
	int64_t limit = s->conf->backlog_split_ms * 1000, oldest, chunks;
	chunks = r->st.next_offset - 1 - r->st.acked;
	if (!limit || chunks <= 0 || rn_uplink_stream_stats(a->uplink, r->st.id, &us) ||
	    !us.connected)
		return; /* nothing waiting, or offline: a new stream would not be sent sooner */
	oldest = rn_buffer_oldest_us(a->buffer, r->st.id);
	if (!oldest || rn_now_us() - oldest < limit || segments_draining(a, r) >= SEGMENTS_MAX - 1)
		return;
	char old[sizeof(r->name)];
	snprintf(old, sizeof(old), "%s", r->name);
	if (route_use_segment(a, r, r->segment + 1, r->st.next_seq))
		return;
	rn_log_info("agent",
		    "stream %s: %lld chunks wait, the oldest for %lld s; new records go "
		    "to stream %s so live data is not held behind the backlog (which keeps "
		    "draining in order)",
		    old, (long long)chunks, (long long)((rn_now_us() - oldest) / 1000000), r->name);
}

/* Commits the source's closed chunks (one per route that had records) with its snapshot, in
 * one transaction. Under drop_oldest a full buffer first drops the oldest chunks. 0 or the
 * buffer's error (RN_EFULL, RN_ENOSPC: they stay pending). */
static int commit_pending(struct source *s)
{
	struct rn_agent *a = s->a;
	struct rn_buffer_chunk c[ROUTES_MAX];
	size_t n = 0;
	struct rn_buffer_ckpt ck = {s->conf->name,
				    s->pending_ckpt.data ? (const void *)s->pending_ckpt.data : "",
				    s->pending_ckpt.len};
	for (size_t k = 0; k < s->nroutes; k++) {
		struct route *r = &s->routes[k];
		if (r->has_pending)
			c[n++] = (struct rn_buffer_chunk){
				r->st.id,        r->pending_offset, r->pending_next_seq,
				r->pending_nrec, r->pending.data,   r->pending.len};
	}
	int rc = rn_buffer_commit_many(a->buffer, c, n, &ck, 1);
	if ((rc == RN_EFULL || rc == RN_ENOSPC) && a->ack_due_us) {
		rn_agent__acks_apply(a); /* the room acks free may be enough */
		rc = rn_buffer_commit_many(a->buffer, c, n, &ck, 1);
	}
	if (rc == RN_EFULL && a->conf->buffer_policy == RN_POLICY_DROP_OLDEST) {
		int64_t total = 0;
		for (size_t i = 0; i < n; i++)
			total += (int64_t)c[i].len;
		if (!drop_for(a, total))
			rc = rn_buffer_commit_many(a->buffer, c, n, &ck, 1);
	}
	if (rc)
		return rc;
	for (size_t k = 0; k < s->nroutes; k++) {
		struct route *r = &s->routes[k];
		if (!r->has_pending)
			continue;
		r->has_pending = 0;
		r->st.next_offset = r->pending_offset + 1;
		rn_uplink_chunks_ready(a->uplink, r->st.id, r->st.next_offset);
	}
	s->have_pending = 0;
	s->pos_dirty = 0;
	return 0;
}

/* Closes the open chunk of every route of the source that has records and commits them
 * together with the source's snapshot: the position then covers exactly what is committed,
 * whichever streams the records went to. */
void rn_agent__close_chunk(struct source *s)
{
	struct rn_agent *a = s->a;
	size_t nopen = 0;
	int rc;

	if (s->have_pending)
		return;
	for (size_t k = 0; k < s->nroutes; k++)
		nopen += s->routes[k].cb.nrec > 0;
	if (!nopen)
		return;
	rn_buf_reset(&a->snap);
	if ((rc = s->p->snapshot(s->inst, &a->snap))) {
		rn_log_error("agent", "source %s: cannot take a snapshot: %s", s->conf->name,
			     rn_strerror(rc));
		return;
	}
	for (size_t k = 0; k < s->nroutes; k++) {
		struct route *r = &s->routes[k];
		if (!r->cb.nrec)
			continue;
		maybe_split(s, r);
		r->pending_nrec = r->cb.nrec;
		r->pending_offset = r->st.next_offset;
		r->pending_next_seq = r->st.next_seq; /* every record of the route is in cb */
		if ((rc = rn_chunk_close(&r->cb, r->pending_offset, &r->pending))) {
			rn_log_error("agent", "stream %s: cannot build a chunk: %s", r->name,
				     rn_strerror(rc));
			return; /* the chunks closed so far stay pending and go in on tick */
		}
		r->has_pending = 1;
	}
	rn_buf_reset(&s->pending_ckpt);
	rn_buf_append(&s->pending_ckpt, a->snap.data, a->snap.len);
	s->have_pending = 1;
	if ((rc = commit_pending(s)) == 0)
		return;
	/* keep them and pause the source until the buffer takes them (cap reached, or the
	 * disk full) */
	if (rc == RN_EFULL || rc == RN_ENOSPC) {
		/* While a backlog drains the source pauses and resumes per chunk: say so once per
		 * PAUSE_LOG_US, not every time. */
		int64_t now = rn_mono_us();
		if (now - s->pause_logged_us >= PAUSE_LOG_US) {
			rn_log_warn("agent", "source %s paused: %s (resumes as acks free room)",
				    s->conf->name, rn_buffer_errmsg(a->buffer));
			s->pause_logged_us = now;
		}
		s->pauses++;
	} else
		rn_log_error("agent", "source %s: buffer commit failed (will retry): %s",
			     s->conf->name, rn_buffer_errmsg(a->buffer));
}

/* The route a record goes to: the first whose filter matches its topic, else the source's
 * own. */
static struct route *route_for(struct source *s, const char *topic)
{
	for (size_t k = 1; k < s->nroutes; k++)
		if (rn_topic_match(s->routes[k].match, topic))
			return &s->routes[k];
	return &s->routes[0];
}

/*
 * A chunk stays within chunk.max_bytes unless it holds a single record: rn_chunk_add refuses
 * (RN_EFULL) a record that would overfill it, and the chunk is closed before the record goes
 * in again. That keeps every request under the server's message limit (max_line_bytes is
 * capped well below it). While a closed chunk waits for room in the buffer, the open one
 * may fill up to max_bytes; then records are refused with RN_EFULL and the source retries
 * them later (nothing is taken, nothing lost).
 */
/* The event time cut out of a text record by event_time_pattern. 0 or an RN_E* code. */
static int evtime_match(struct source *s, const uint8_t *p, size_t len, int64_t *us)
{
	regmatch_t m[2];
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
	if (!p || regexec(&s->evtime_re, (const char *)p, 2, m, REG_STARTEND))
		return RN_ENOTFOUND;
	const regmatch_t *g = m[1].rm_so >= 0 ? &m[1] : &m[0];
	return rn_evtime_text((const char *)p + g->rm_so, (size_t)(g->rm_eo - g->rm_so), us);
}

static int host_emit(void *ctx, const struct rn_record *r0)
{
	struct source *s = ctx;
	int64_t now = s->poll_now_us ? s->poll_now_us : rn_now_us();
	struct rn_record rec = *r0, *r = &rec;
	if (s->conf->event_time_field && !r->event_time_us &&
	    rn_evtime_json(r->payload, r->len, s->conf->event_time_field, &rec.event_time_us))
		s->evtime_fallbacks++;
	if (s->have_re && !rec.event_time_us &&
	    evtime_match(s, r->payload, r->len, &rec.event_time_us))
		s->evtime_fallbacks++;
	struct route *rt = route_for(s, r->topic);
	struct rn_chunk_origin o = s->origin;
	if (now < RN_CLOCK_TRUSTED_US)
		o.boot_us = rn_boot_us(); /* the clock is not set: the boot timeline places it */
	int rc = rn_chunk_add(&rt->cb, &o, r, (uint64_t)rt->st.next_seq, now);
	if (rc == RN_EFULL) { /* the record would overfill the open chunk: close it first */
		rn_agent__close_chunk(s);
		if (rt->cb.nrec)
			return RN_EFULL; /* the closed chunks are waiting for room */
		rc = rn_chunk_add(&rt->cb, &o, r, (uint64_t)rt->st.next_seq, now);
	}
	if (rc)
		return rc;
	/* linger runs on the monotonic clock: a wall clock stepped back (NTP on a device that
	 * booted in 1970) must not hold a chunk open for hours */
	if (rt->cb.nrec == 1)
		rt->cb.opened_us = rn_mono_us();
	rt->st.next_seq++;
	s->records_in++;
	if (rt->cb.batch.len >= rt->cb.lim.max_bytes || rt->cb.nrec >= rt->cb.lim.max_records)
		rn_agent__close_chunk(s);
	return 0;
}

static void host_position_changed(void *ctx)
{
	((struct source *)ctx)->pos_dirty = 1;
}

static int host_load_position(void *ctx, struct rn_buf *out)
{
	struct source *s = ctx;
	return rn_buffer_checkpoint_load(s->a->buffer, s->conf->name, out);
}

/* Accepting while no chunk waits for room and the buffer can take two more full chunks (or
 * half the cap, if smaller): a plugin that checks this before each read (MQTT) can always
 * flush what it read. */
static int host_accepting(void *ctx)
{
	struct source *s = ctx;
	const struct rn_agent_conf *c = s->a->conf;
	int64_t margin = 2 * c->chunk_max_bytes;
	if (s->have_pending || rn_buffer_disk_full(s->a->buffer))
		return 0;
	if (c->buffer_policy == RN_POLICY_DROP_OLDEST)
		return 1; /* room is made by dropping */
	if (margin > c->buffer_max_bytes / 2)
		margin = c->buffer_max_bytes / 2; /* a tiny cap still lets data in */
	if (!c->buffer_max_bytes)
		return 1;
	if (rn_buffer_bytes(s->a->buffer) + margin > c->buffer_max_bytes && s->a->ack_due_us)
		rn_agent__acks_apply(s->a); /* the waiting acks may make the room */
	return rn_buffer_bytes(s->a->buffer) + margin <= c->buffer_max_bytes;
}

#define DEAD_ATTRS_MAX 32

static void host_set_state(void *ctx, int state, const char *error)
{
	struct source *s = ctx;
	s->state = state >= RN_SOURCE_UP && state <= RN_SOURCE_IDLE ? state : RN_SOURCE_ERROR;
	snprintf(s->state_error, sizeof(s->state_error), "%s", error ? error : "");
}

static int host_dead_letter(void *ctx, const struct rn_record *r, const char *reason)
{
	struct source *s = ctx;
	struct rn_attr attrs[DEAD_ATTRS_MAX];
	struct rn_record d = *r;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < r->nattrs && n < DEAD_ATTRS_MAX - 1; i++)
		attrs[n++] = r->attrs[i];
	attrs[n++] = (struct rn_attr){"runnel.error", reason ? reason : "unparsable input"};
	d.attrs = attrs;
	d.nattrs = n;
	d.flags |= RN_RECORD_F_DEAD;
	if ((rc = host_emit(ctx, &d)) == 0) {
		s->dead_letters++;
		/* one line per source per period; the rest are summed up by tick */
		if (rn_lograte_note(&s->a->dead_log, s->conf->name, 1, rn_mono_us()))
			rn_log_warn("agent",
				    "source %s: dead letter #%llu: %s (more in the next %lld s are "
				    "counted in one line)",
				    s->conf->name, (unsigned long long)s->dead_letters,
				    reason ? reason : "",
				    (long long)(RN_AGENT_DEAD_LOG_PERIOD_US / 1000000));
	}
	return rc;
}

static void dead_summary(void *ctx, const char *name, uint64_t events, uint64_t items)
{
	(void)ctx;
	(void)items; /* one record per event */
	rn_log_warn("agent", "source %s: %llu more dead letter(s) in the last %lld s",
		    name ? name : "(other sources)", (unsigned long long)events,
		    (long long)(RN_AGENT_DEAD_LOG_PERIOD_US / 1000000));
}

/* Has the dead-letter limiter counts waiting for a summary? */
static int dead_log_waiting(const struct rn_lograte *r)
{
	if (r->other_events)
		return 1;
	for (size_t i = 0; i < RN_LOGRATE_SLOTS; i++)
		if (r->key[i].used && r->key[i].events)
			return 1;
	return 0;
}

/* Everything emitted so far goes into the buffer now (see plugin.h). */
static int host_flush(void *ctx)
{
	struct source *s = ctx;
	if (s->have_pending && commit_pending(s))
		return RN_EFULL;
	rn_agent__close_chunk(s);
	if (s->have_pending)
		return RN_EFULL;
	if (s->pos_dirty)
		rn_agent__tick(s->a, rn_mono_us());
	return 0;
}

#define MAINT_EVERY_US 250000 /* disk-full recovery checks, while the disk is full */
#define RETRY_EVERY_US 250000 /* commits the buffer refused (full), while some wait */
#define TTL_EVERY_US 5000000  /* ttl sweeps, while some source has a ttl */

/* Drops what is older than each source's ttl (its own and its routes' streams). */
static void expire(struct rn_agent *a)
{
	int64_t now = rn_now_us();
	rn_agent__acks_apply(a); /* acknowledged chunks are deleted, not tombstoned */
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		if (!s->conf->ttl_ms)
			continue;
		for (size_t k = 0; k < s->nroutes; k++) {
			uint64_t recs = 0;
			int rc = rn_buffer_expire(a->buffer, s->routes[k].st.id,
						  now - s->conf->ttl_ms * 1000, make_tombstone, a,
						  &recs);
			if (rc)
				rn_log_error("agent", "stream %s: ttl sweep failed: %s",
					     s->routes[k].name, rn_buffer_errmsg(a->buffer));
			if (recs) {
				a->expired_records += recs;
				rn_log_warn("agent",
					    "stream %s: dropped %llu records older than the "
					    "ttl (%lld ms); tombstones in the table count them",
					    s->routes[k].name, (unsigned long long)recs,
					    (long long)s->conf->ttl_ms);
			}
		}
	}
}

/* `now` is monotonic (rn_mono_us), like the builders' opened_us. */
void rn_agent__tick(struct rn_agent *a, int64_t now)
{
	if (a->ack_due_us && now >= a->ack_due_us)
		rn_agent__acks_apply(a);
	if (rn_buffer_disk_full(a->buffer) && now >= a->next_maint_us) {
		rn_buffer_maintain(a->buffer);
		a->next_maint_us = now + MAINT_EVERY_US;
	}
	if (now >= a->next_ttl_us) {
		expire(a);
		a->next_ttl_us = now + TTL_EVERY_US;
	}
	rn_lograte_tick(&a->dead_log, now, dead_summary, a);
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		int due = 0;
		uint32_t open = 0;
		if (s->have_pending) {
			if (commit_pending(s))
				continue;
			rn_log_debug("agent", "source %s resumed", s->conf->name);
		}
		for (size_t k = 0; k < s->nroutes; k++) {
			due |= rn_chunk_due(&s->routes[k].cb, now);
			open += s->routes[k].cb.nrec;
		}
		if (due) {
			rn_agent__close_chunk(s);
		} else if (s->pos_dirty && !open) {
			rn_buf_reset(&a->snap);
			struct rn_buffer_ckpt ck = {s->conf->name, "", 0};
			if (!s->p->snapshot(s->inst, &a->snap)) {
				ck.state = a->snap.data ? (const void *)a->snap.data : "";
				ck.len = a->snap.len;
				if (!rn_buffer_commit_many(a->buffer, NULL, 0, &ck, 1))
					s->pos_dirty = 0;
			}
		}
	}
}

static int io_chunk_get(void *ctx, int stream, int64_t offset, struct rn_buf *out)
{
	struct rn_agent *a = ctx;
	return rn_buffer_chunk_get(a->buffer, stream, offset, out);
}

static int io_stream_id_set(void *ctx, int stream, const char *id)
{
	struct rn_agent *a = ctx;
	struct route *r = rn_agent__by_stream(a, stream, NULL);
	int rc = rn_buffer_set_server_id(a->buffer, stream, id);
	if (!rc && r)
		snprintf(r->st.server_id, sizeof(r->st.server_id), "%s", id);
	return rc;
}

/* Deletes the stream's chunks up to acked from the buffer (s: its route, if any). */
static int ack_now(struct rn_agent *a, int stream, int64_t acked, struct route *s)
{
	int rc = rn_buffer_ack(a->buffer, stream, acked);
	if (rc) {
		rn_log_error("agent", "cannot delete acked chunks: %s",
			     rn_buffer_errmsg(a->buffer));
		return rc;
	}
	a->ack_commits++;
	if (s) {
		uint64_t before = a->acked_chunks;
		a->acked_chunks += (uint64_t)(acked - s->st.acked);
		s->st.acked = acked;
		/* one INFO line per ACK_LOG_EVERY chunks acknowledged (all streams together) */
		if (a->acked_chunks / ACK_LOG_EVERY != before / ACK_LOG_EVERY)
			rn_log_info("agent",
				    "%llu chunks acknowledged; stream %s acked up to offset "
				    "%lld of %lld, %lld buffer bytes",
				    (unsigned long long)a->acked_chunks, s->name, (long long)acked,
				    (long long)s->st.next_offset,
				    (long long)rn_buffer_bytes(a->buffer));
	}
	return 0;
}

/* Applies the route's waiting ack, if any. 0 or the buffer's error (it keeps waiting). */
static int ack_route(struct rn_agent *a, struct route *r)
{
	if (!r->ack_waiting)
		return 0;
	int rc = ack_now(a, r->st.id, r->ack_to, r);
	if (!rc)
		r->ack_waiting = 0;
	return rc;
}

void rn_agent__acks_apply(struct rn_agent *a)
{
	int failed = 0;
	if (!a->ack_due_us)
		return;
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++)
			failed |= ack_route(a, &a->src[i]->routes[k]) != 0;
	a->ack_due_us = failed ? rn_mono_us() + RETRY_EVERY_US : 0;
}

/*
 * An ack is not written to the buffer at once: the highest offset per route waits up to
 * ACK_COALESCE_US, so the acks that arrive meanwhile cost one transaction. Deleting each
 * acknowledged chunk in a transaction of its own was ~10 % of the agent's CPU on the file
 * path (docs/benchmarks.md). A crash in between only means a resend the server recognises
 * as a duplicate (buffer/DESIGN.md). Whatever needs the room or the buffer's view of the
 * oldest chunks (a full buffer, drop_oldest, ttl sweeps, a source freed, the stop) applies
 * the waiting acks first. Streams without a route (orphans) are acked at once.
 */
static int io_acked(void *ctx, int stream, int64_t acked)
{
	struct rn_agent *a = ctx;
	struct route *r = rn_agent__by_stream(a, stream, NULL);
	if (!r)
		return ack_now(a, stream, acked, NULL);
	if (!r->ack_waiting || acked > r->ack_to)
		r->ack_to = acked;
	r->ack_waiting = 1;
	if (!a->ack_due_us)
		a->ack_due_us = rn_mono_us() + ACK_COALESCE_US;
	return 0;
}

/*
 * Streams in the buffer whose source is no longer configured (removed or renamed) may still
 * hold unacknowledged chunks: they are registered with the uplink too, so that data is
 * delivered rather than stranded. They get no new records.
 */
int rn_agent__register_orphans(struct rn_agent *a, struct rn_uplink *u)
{
	int ids[256];
	size_t n = 0;
	int rc = rn_buffer_stream_ids(a->buffer, ids, 256, &n);
	if (rc)
		return rc;
	if (n > 256) {
		rn_log_warn("agent",
			    "%zu streams in the buffer; only the first 256 are checked for "
			    "undelivered chunks",
			    n);
		n = 256;
	}
	for (size_t i = 0; i < n; i++) {
		struct rn_buffer_stream st;
		if (rn_agent__by_stream(a, ids[i], NULL) ||
		    rn_buffer_stream_load(a->buffer, ids[i], &st))
			continue;
		if (st.next_offset - 1 <= st.acked)
			continue; /* nothing left to send */
		rn_log_warn("agent",
			    "stream %d (source %s, no longer configured) still holds %lld "
			    "chunks; delivering them",
			    st.id, st.name, (long long)(st.next_offset - 1 - st.acked));
		struct rn_uplink_stream_def d = {st.id, st.table,
						 st.server_id[0] ? st.server_id : NULL, st.acked,
						 st.next_offset};
		if ((rc = rn_uplink_add_stream(u, &d)) && rc != RN_EEXIST)
			return rc;
	}
	return 0;
}

/* The source's "key=value" attributes (checked by rn_agent_conf_check) as rn_attr pairs. */
static int static_attrs(struct source *s)
{
	const struct rn_conf_strlist *l = &s->conf->attributes;
	if (!l->n)
		return 0;
	if (!(s->static_attrs = rn_calloc(l->n, sizeof(*s->static_attrs))))
		return RN_ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		const char *eq = strchr(l->v[i], '=');
		char *k = eq ? rn_strndup(l->v[i], (size_t)(eq - l->v[i])) : NULL;
		if (!k)
			return RN_ENOMEM;
		s->static_attrs[i] = (struct rn_attr){k, eq + 1};
		s->origin.nattrs = i + 1;
	}
	s->origin.attrs = s->static_attrs;
	return 0;
}

/* At start: the route continues in its newest segment, with the highest next_seq of any of
 * its segments (a segment created just before a crash may not have stored its own yet). */
static int route_resume(struct rn_agent *a, struct route *r)
{
	int ids[256], seg = 0;
	int64_t seq = 0;
	size_t n = 0;
	int rc = rn_buffer_stream_ids(a->buffer, ids, 256, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && i < 256; i++) {
		struct rn_buffer_stream st;
		int k;
		if (rn_buffer_stream_load(a->buffer, ids[i], &st) ||
		    (k = segment_of(r->base, st.name)) < 0)
			continue;
		if (k > seg)
			seg = k;
		if (st.next_seq > seq)
			seq = st.next_seq;
	}
	return route_use_segment(a, r, seg, seq);
}

/* The source's streams: its own, then one per route; each registered with the uplink. */
static int add_routes(struct source *s)
{
	struct rn_agent *a = s->a;
	const struct rn_agent_conf *conf = a->conf;
	const struct rn_source_conf *sc = s->conf;
	const struct rn_route_conf *rt = sc->routes.items;
	int rc;

	if (!(s->routes = rn_calloc(1 + sc->routes.n, sizeof(*s->routes))))
		return RN_ENOMEM;
	for (size_t k = 0; k <= sc->routes.n; k++) {
		struct route *r = &s->routes[k];
		s->nroutes++;
		r->match = k ? rt[k - 1].match : NULL;
		r->table = k ? rt[k - 1].table : sc->table;
		if (k)
			snprintf(r->base, sizeof(r->base), "%s/%s", sc->name, rt[k - 1].stream);
		else
			snprintf(r->base, sizeof(r->base), "%s", sc->name);
		r->cb.lim.max_bytes = (size_t)conf->chunk_max_bytes;
		r->cb.lim.max_records = (uint32_t)conf->chunk_max_records;
		r->cb.lim.linger_us = conf->linger_ms * 1000;
		r->cb.lim.zstd_level = (int)conf->zstd_level;
		if ((rc = route_resume(a, r)))
			return rc;
		if (strcmp(r->st.table, r->table))
			rn_log_warn("agent",
				    "stream %s now targets %s; its buffered stream keeps "
				    "table %s",
				    r->name, r->table, r->st.table);
	}
	return 0;
}

/* Whether some source (retiring ones too: their streams are still in the buffer) has a ttl. */
static int any_ttl(const struct rn_agent *a)
{
	for (size_t i = 0; i < a->nsrc; i++)
		if (a->src[i]->conf->ttl_ms)
			return 1;
	return 0;
}

static int64_t earlier(int64_t x, int64_t y)
{
	return x < y ? x : y;
}

/*
 * What tick() has to do next, so that an idle loop sleeps until then and no longer wakes
 * on a fixed period: the linger of every open chunk, the retry of a commit the buffer
 * refused, the disk-full check (only while the disk is full), the ttl sweep (only when a
 * source has a ttl). The uplink's own timers (backoff, rate limit) shorten its wait itself.
 */
int64_t rn_agent__next_deadline(struct rn_agent *a)
{
	int64_t t = INT64_MAX;
	if (a->ack_due_us)
		t = a->ack_due_us;
	if (rn_buffer_disk_full(a->buffer))
		t = earlier(t, a->next_maint_us);
	if (any_ttl(a))
		t = earlier(t, a->next_ttl_us);
	if (dead_log_waiting(&a->dead_log))
		t = earlier(t, a->dead_log.period_end_us);
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		if (s->have_pending) {
			t = earlier(t, rn_mono_us() + RETRY_EVERY_US);
			continue;
		}
		uint32_t open = 0;
		for (size_t k = 0; k < s->nroutes; k++) {
			const struct rn_chunk_builder *cb = &s->routes[k].cb;
			open += cb->nrec;
			if (cb->nrec)
				t = earlier(t, cb->opened_us + cb->lim.linger_us);
		}
		/* A position without records is stored by the tick of the loop turn that saw it;
		 * still dirty here means that commit failed: retry. With records open it goes in
		 * with their chunk (at its linger, above). */
		if (s->pos_dirty && !open)
			t = earlier(t, rn_mono_us() + RETRY_EVERY_US);
	}
	return t;
}

void rn_agent__apply_chunk_limits(struct rn_agent *a)
{
	const struct rn_agent_conf *c = a->conf;
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++) {
			struct rn_chunk_limits *l = &a->src[i]->routes[k].cb.lim;
			l->max_bytes = (size_t)c->chunk_max_bytes;
			l->max_records = (uint32_t)c->chunk_max_records;
			l->linger_us = c->linger_ms * 1000;
			l->zstd_level = (int)c->zstd_level;
		}
}

int rn_agent__uplink_open(struct rn_agent *a, int with_orphans, struct rn_uplink **out)
{
	const struct rn_agent_conf *conf = a->conf;
	struct rn_buf desc = {0};
	struct rn_uplink *u = NULL;
	int rc;

	*out = NULL;
	if ((rc = rn_chunk_descriptor(&desc)))
		return rc;
	struct rn_uplink_options uo = {
		.url = conf->url,
		.token = conf->token,
		.ca_file = conf->ca_file,
		.cert_file = conf->cert_file,
		.key_file = conf->key_file,
		.pinned_key = conf->pinned_key,
		.window = (int)conf->window,
		.backoff_min_ms = (int)conf->backoff_min_ms,
		.backoff_max_ms = (int)conf->backoff_max_ms,
		.ack_timeout_ms = (int)conf->ack_timeout_ms,
		.max_bytes_per_sec = conf->max_bytes_per_sec,
		.descriptor = desc.data,
		.descriptor_len = desc.len,
		.boot_id = a->boot_id[0] ? a->boot_id : NULL,
		.client_id = conf->client_id,
		.client_secret = conf->client_secret[0] ? conf->client_secret : NULL,
		.token_url = conf->token_url,
	};
	struct rn_uplink_io io = {.ctx = a,
				  .chunk_get = io_chunk_get,
				  .stream_id_set = io_stream_id_set,
				  .acked = io_acked};
	rc = rn_uplink_create(&u, &uo, &io);
	rn_buf_free(&desc);
	if (rc)
		return rc;
	/* every route's current segment; older segments and streams of sources that left the
	 * config are registered as orphans while they hold unacked chunks */
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++) {
			const struct rn_buffer_stream *st = &a->src[i]->routes[k].st;
			struct rn_uplink_stream_def d = {
				.stream = st->id,
				.table = st->table,
				.server_id = st->server_id[0] ? st->server_id : NULL,
				.acked = st->acked,
				.next_offset = st->next_offset};
			if ((rc = rn_uplink_add_stream(u, &d)) && rc != RN_EEXIST)
				goto fail;
		}
	if (with_orphans && (rc = rn_agent__register_orphans(a, u)))
		goto fail;
	*out = u;
	return 0;
fail:
	rn_uplink_destroy(u);
	return rc;
}

int rn_agent__source_start(struct rn_agent *a, const struct rn_agent_conf *gen,
			   const struct rn_source_conf *sc)
{
	struct source *s;
	int rc;

	if (a->nsrc == a->srccap) {
		size_t cap = a->srccap ? 2 * a->srccap : 8;
		struct source **v = rn_realloc(a->src, cap * sizeof(*v));
		if (!v)
			return RN_ENOMEM;
		a->src = v;
		a->srccap = cap;
	}
	if (!(s = rn_calloc(1, sizeof(*s))))
		return RN_ENOMEM;
	s->a = a;
	s->conf = sc;
	s->gen = gen;
	s->p = rn_plugin_find(sc->type);
	s->origin.device_id = a->device_id;
	s->origin.source = sc->name;
	s->origin.device_len = strlen(a->device_id);
	s->origin.source_len = strlen(sc->name);
	s->origin.boot_id = a->boot_id[0] ? a->boot_id : NULL;
	if (!s->p) {
		rc = RN_ECONFIG;
		goto fail;
	}
	if ((rc = add_routes(s)))
		goto fail;
	if ((rc = static_attrs(s)))
		goto fail;
	if (sc->event_time_pattern) {
		if (regcomp(&s->evtime_re, sc->event_time_pattern, REG_EXTENDED)) {
			rc = RN_ECONFIG;
			goto fail;
		}
		s->have_re = 1;
	}
	struct rn_source_host h = {.ctx = s,
				   .emit = host_emit,
				   .position_changed = host_position_changed,
				   .load_position = host_load_position,
				   .accepting = host_accepting,
				   .flush = host_flush,
				   .dead_letter = host_dead_letter,
				   .size = sizeof(struct rn_source_host),
				   .set_state = host_set_state};
	/* its streams are found by by_stream from now on (io_acked may run inside create) */
	a->src[a->nsrc++] = s;
	if ((rc = s->p->create(&s->inst, sc, &h))) {
		a->nsrc--;
		goto fail;
	}
	for (size_t k = 0; k < s->nroutes; k++) {
		struct route *r = &s->routes[k];
		rn_log_info("agent",
			    "source %s (%s)%s%s -> table %s: stream %s (%d), %lld "
			    "records so far, %lld chunks buffered",
			    sc->name, sc->type, r->match ? ", topics " : "",
			    r->match ? r->match : "", r->st.table, r->name, r->st.id,
			    (long long)r->st.next_seq,
			    (long long)(r->st.next_offset - r->st.acked - 1));
	}
	return 0;
fail:
	rn_agent__source_free(s);
	return rc;
}

void rn_agent__source_free(struct source *s)
{
	if (!s)
		return;
	if (s->inst)
		s->p->destroy(s->inst);
	for (size_t k = 0; k < s->nroutes; k++) {
		if (s->a && s->a->buffer)
			ack_route(s->a, &s->routes[k]); /* the route goes: its ack cannot wait */
		rn_chunk_free(&s->routes[k].cb);
		rn_buf_free(&s->routes[k].pending);
	}
	rn_free(s->routes);
	rn_buf_free(&s->pending_ckpt);
	for (size_t k = 0; k < s->origin.nattrs; k++)
		rn_free((void *)s->static_attrs[k].key);
	rn_free(s->static_attrs);
	if (s->have_re)
		regfree(&s->evtime_re);
	rn_free(s);
}
