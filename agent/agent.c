/*
 * The agent: pipeline, uplink glue and loop; see agent.h. Per source there is one stream
 * (named after the source) with its chunk builder. A chunk closes on size or count inside
 * emit(), or on linger in tick(); it is committed to the buffer together with the source's
 * snapshot (its resume position) in one transaction. When the buffer refuses a chunk (full),
 * the chunk waits in memory and the source is paused (accepting() = 0) until it fits.
 */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buffer.h"
#include "chunk.h"
#include "evtime.h"
#include "route.h"
#include "plugin.h"
#include "rn_addr.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "uplink.h"

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const sync_modes[] = {"normal", "full", NULL};
static const char *const policies[] = {"block", "drop_oldest", NULL};

#define A(f) offsetof(struct rn_agent_conf, f)
#define S(f) offsetof(struct rn_source_conf, f)
#define ROUTES_MAX 32 /* streams per source, its own included */

static const struct rn_conf_key agent_keys[] = {
	{"device_id", RN_CONF_STRING, NULL, A(device_id), 0, 0,
	 "device id in every record (default: hostname)"},
	{"data_dir", RN_CONF_STRING, "/var/lib/runnel", A(data_dir), 0, 0,
	 "buffer and status files"},
	{"log_level", RN_CONF_ENUM, "info", A(log_level), 0, 0, "log verbosity", log_levels},
	{"plugin_dir", RN_CONF_STRING, NULL, A(plugin_dir), 0, 0,
	 "directory of source plugin .so files, loaded at start (ABI checked)"},
	{NULL},
};
static const struct rn_conf_key buffer_keys[] = {
	{"sync", RN_CONF_ENUM, "normal", A(sync), 0, 0,
	 "normal: survive crashes; full: also power loss", sync_modes},
	{"max_bytes", RN_CONF_SIZE, "1G", A(buffer_max_bytes), 1 << 20, (int64_t)1 << 50,
	 "cap on buffered chunk bytes; what happens then is the policy"},
	{"policy", RN_CONF_ENUM, "block", A(buffer_policy), 0, 0,
	 "when the cap is reached: block (pause sources; MQTT disconnects so the broker queues) "
	 "or drop_oldest (replace the oldest chunks by tombstone records that count the loss)",
	 policies},
	{"reserve", RN_CONF_SIZE, "8M", A(buffer_reserve), 0, (int64_t)1 << 40,
	 "disk space held back and released when the disk fills, so that acknowledged chunks "
	 "can still be deleted; 0 = none"},
	{NULL},
};
static const struct rn_conf_key uplink_keys[] = {
	{"url", RN_CONF_URL, "http://127.0.0.1:7700", A(url), 0, 0,
	 "Zerobus endpoint: http://host[:port] (h2c) or https://host[:port]; IPv6 in brackets"},
	{"token", RN_CONF_STRING, NULL, A(token), 0, 0, "bearer token"},
	{"window", RN_CONF_INT, "32", A(window), 1, 1024, "chunks in flight per stream"},
	{"backoff_min_ms", RN_CONF_INT, "200", A(backoff_min_ms), 1, 600000,
	 "first retry delay cap"},
	{"backoff_max_ms", RN_CONF_INT, "30000", A(backoff_max_ms), 1, 3600000,
	 "retry delay ceiling"},
	{"ack_timeout_ms", RN_CONF_INT, "60000", A(ack_timeout_ms), 100, 3600000,
	 "chunks in flight and no word from the server for this long: the connection is taken "
	 "as dead (a silent link, a hung server) and dialled again"},
	{"max_bytes_per_sec", RN_CONF_SIZE, "0", A(max_bytes_per_sec), 0, (int64_t)1 << 40,
	 "bandwidth cap for metered links, all streams together (request bytes/s, K/M/G "
	 "suffixes); 0 = none"},
	{NULL},
};
static const struct rn_conf_key chunk_keys[] = {
	{"max_bytes", RN_CONF_SIZE, "1M", A(chunk_max_bytes), 1024, (int64_t)8 << 20,
	 "encoded records per chunk"},
	{"max_records", RN_CONF_INT, "10000", A(chunk_max_records), 1, 1000000,
	 "records per chunk"},
	{"linger_ms", RN_CONF_INT, "200", A(linger_ms), 1, 600000,
	 "oldest record waits at most this long"},
	{"zstd_level", RN_CONF_INT, "3", A(zstd_level), 1, 19, "chunk compression level"},
	{NULL},
};
#define R(f) offsetof(struct rn_route_conf, f)
static const struct rn_conf_key route_keys[] = {
	{"match", RN_CONF_STRING, NULL, R(match), 0, 0,
	 "topic filter (MQTT rules: + one level, # the rest)", NULL, NULL, 0, RN_CONF_F_REQUIRED},
	{"table", RN_CONF_STRING, NULL, R(table), 0, 0, "target table of the matching records",
	 NULL, NULL, 0, RN_CONF_F_REQUIRED},
	{"stream", RN_CONF_STRING, NULL, R(stream), 0, 0,
	 "stream name (the buffer's stream is "
	 "<source>/<stream>)",
	 NULL, NULL, 0, RN_CONF_F_REQUIRED},
	{NULL},
};
#undef R

/* Common keys of a sources entry; the plugin named by `type` adds its own rows. */
static const struct rn_conf_key source_keys[] = {
	{"type", RN_CONF_STRING, NULL, S(type), 0, 0, "plugin (runnel-agent -H lists them)", NULL,
	 NULL, 0, RN_CONF_F_REQUIRED},
	{"name", RN_CONF_STRING, NULL, S(name), 0, 0, "source name (also its stream's name)", NULL,
	 NULL, 0, RN_CONF_F_REQUIRED},
	{"table", RN_CONF_STRING, NULL, S(table), 0, 0, "target table (catalog.schema.table)", NULL,
	 NULL, 0, RN_CONF_F_REQUIRED},
	{"attributes", RN_CONF_STRLIST, NULL, S(attributes), 0, 0,
	 "static attributes for every record, as \"key=value\" (vehicle id, site)"},
	{"event_time_field", RN_CONF_STRING, NULL, S(event_time_field), 0, 0,
	 "top-level JSON field with the event time (epoch s/ms/us/ns or RFC 3339); "
	 "receive time when absent"},
	{"routes", RN_CONF_LIST, NULL, S(routes), 0, 0,
	 "records whose topic matches go to their own stream and table (first match wins)", NULL,
	 route_keys, sizeof(struct rn_route_conf)},
	{"event_time_pattern", RN_CONF_STRING, NULL, S(event_time_pattern), 0, 0,
	 "extended regex for text records; its first group (or the match) is the event time: "
	 "RFC 3339 (no zone = UTC) or epoch; receive time when it does not match"},
	{"backlog_split", RN_CONF_DURATION, "2m", S(backlog_split_ms), 0, (int64_t)1 << 50,
	 "when the link is up but the stream's oldest unsent chunk is older than this, new "
	 "records go to a new stream (<name>~N, seq continues) so live data is not held behind "
	 "the backlog, which keeps draining in order; 0 = never"},
	{"ttl", RN_CONF_DURATION, "0", S(ttl_ms), 0, (int64_t)1 << 50,
	 "buffered records older than this are dropped, leaving a tombstone record that counts "
	 "them; 0 = never"},
	{NULL},
};

const struct rn_conf_key rn_agent_conf_table[] = {
	{"agent", RN_CONF_GROUP, NULL, 0, 0, 0, "agent identity and files", NULL, agent_keys},
	{"buffer", RN_CONF_GROUP, NULL, 0, 0, 0, "the disk buffer", NULL, buffer_keys},
	{"uplink", RN_CONF_GROUP, NULL, 0, 0, 0, "where and how to send", NULL, uplink_keys},
	{"chunk", RN_CONF_GROUP, NULL, 0, 0, 0, "how records are batched", NULL, chunk_keys},
	{"sources", RN_CONF_LIST, NULL, A(sources), 0, 0, "source plugins", NULL, source_keys,
	 sizeof(struct rn_source_conf), 0, "type", rn_plugin_conf_resolve,
	 offsetof(struct rn_source_conf, plugin)},
	{NULL},
};

static const struct rn_source_plugin *plugin_for(const char *type)
{
	return rn_plugin_find(type);
}

int rn_agent_conf_check(const struct rn_agent_conf *c, const char *file, char *err, size_t cap)
{
	const struct rn_source_conf *src = c->sources.items;
	/* uplink.url was checked by the loader (RN_CONF_URL, with its line); this is for
	 * structs filled by hand */
	struct rn_url u;
	const char *why = NULL;
	if (rn_addr_parse_url(c->url, &u, &why)) {
		snprintf(err, cap, "%s: uplink.url \"%s\": %s", file, c->url ? c->url : "", why);
		return RN_ECONFIG;
	}
	if (!c->sources.n) {
		snprintf(err, cap, "%s: no sources configured", file);
		return RN_ECONFIG;
	}
	for (size_t i = 0; i < c->sources.n; i++) {
		const struct rn_source_plugin *p = plugin_for(src[i].type);
		if (!src[i].name || !*src[i].name || !src[i].table || !*src[i].table) {
			snprintf(err, cap, "%s: sources[%zu]: name and table are required", file,
				 i);
			return RN_ECONFIG;
		}
		if (!p) {
			snprintf(err, cap, "%s: sources[%zu] (%s): unknown type '%s'", file, i,
				 src[i].name, src[i].type ? src[i].type : "");
			return RN_ECONFIG;
		}
		if (p->abi != RN_SOURCE_ABI_1) {
			snprintf(err, cap,
				 "%s: sources[%zu]: plugin '%s' was built for plugin ABI %d, "
				 "this agent speaks %d",
				 file, i, p->name, p->abi, RN_SOURCE_ABI_1);
			return RN_ECONFIG;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(src[j].name, src[i].name)) {
				snprintf(err, cap, "%s: sources[%zu]: name '%s' used twice", file,
					 i, src[i].name);
				return RN_ECONFIG;
			}
		for (size_t k = 0; k < src[i].attributes.n; k++) {
			const char *kv = src[i].attributes.v[k], *eq = strchr(kv, '=');
			if (!eq || eq == kv) {
				snprintf(err, cap,
					 "%s: sources[%zu] (%s): attribute '%s' is not "
					 "key=value",
					 file, i, src[i].name, kv);
				return RN_ECONFIG;
			}
		}
		const struct rn_route_conf *rt = src[i].routes.items;
		if (src[i].routes.n > ROUTES_MAX - 1) {
			snprintf(err, cap, "%s: sources[%zu] (%s): at most %d routes", file, i,
				 src[i].name, ROUTES_MAX - 1);
			return RN_ECONFIG;
		}
		for (size_t k = 0; k < src[i].routes.n; k++) {
			if (!rn_topic_filter_valid(rt[k].match) || !*rt[k].stream ||
			    !*rt[k].table || strchr(rt[k].stream, '/')) {
				snprintf(err, cap,
					 "%s: sources[%zu] (%s): routes[%zu]: match must be a "
					 "valid filter, stream and table non-empty (no '/' in "
					 "stream)",
					 file, i, src[i].name, k);
				return RN_ECONFIG;
			}
			for (size_t j = 0; j < k; j++)
				if (!strcmp(rt[j].stream, rt[k].stream)) {
					snprintf(err, cap,
						 "%s: sources[%zu] (%s): routes[%zu]: stream "
						 "'%s' used twice",
						 file, i, src[i].name, k, rt[k].stream);
					return RN_ECONFIG;
				}
		}
		if (src[i].event_time_pattern) {
			regex_t re;
			int rc = regcomp(&re, src[i].event_time_pattern, REG_EXTENDED);
			if (rc) {
				char e[256];
				regerror(rc, &re, e, sizeof(e));
				snprintf(err, cap, "%s: sources[%zu] (%s): event_time_pattern: %s",
					 file, i, src[i].name, e);
				return RN_ECONFIG;
			}
			regfree(&re);
		}
		if (p->check) {
			char e[512];
			if (p->check(&src[i], e, sizeof(e))) {
				snprintf(err, cap, "%s: sources[%zu]: %s", file, i, e);
				return RN_ECONFIG;
			}
		}
	}
	return 0;
}

#define ACK_LOG_EVERY 100     /* chunks acknowledged per INFO line */
#define PAUSE_LOG_US 10000000 /* at most one "paused" line per source per 10 s */

/* One stream of a source: its own (route 0) or a route's. */
#define SEGMENTS_MAX 8 /* streams of one route draining at once (backlog_split) */

struct route {
	const char *match; /* NULL for the source's own stream */
	char base[300];    /* the configured stream name */
	int segment;       /* 0, or N after backlog splits: the stream is then base~N */
	char name[310];    /* the buffer's stream name */
	const char *table;
	struct rn_buffer_stream st;
	struct rn_chunk_builder cb;
	/* the closed chunk of a commit the buffer refused (full) */
	int has_pending;
	struct rn_buf pending;
	int64_t pending_offset, pending_next_seq;
	uint32_t pending_nrec;
	/* records/s over the last second or more, for status (see sample_rates) */
	int64_t rate_seq, rate_us;
	double rate;
};

struct source {
	struct rn_agent *a;
	const struct rn_source_conf *conf;
	const struct rn_source_plugin *p;
	void *inst;
	struct route *routes; /* [0] = the source's own stream */
	size_t nroutes;
	struct rn_chunk_origin origin;
	int pos_dirty;
	/* closed chunks (in routes) and the snapshot the buffer refused; retried on tick */
	int have_pending;
	struct rn_buf pending_ckpt;
	uint64_t records_in;
	uint64_t dead_letters;        /* records kept with RN_RECORD_F_DEAD */
	uint64_t evtime_fallbacks;    /* event_time_field missing or unreadable */
	struct rn_attr *static_attrs; /* from the source's `attributes`; strings owned */
	regex_t evtime_re;            /* event_time_pattern, if have_re */
	int have_re;
	int64_t pause_logged_us; /* mono time of the last "paused" line */
	uint64_t pauses;         /* times the buffer was full for this source */
};

struct rn_agent {
	const struct rn_agent_conf *conf;
	char device_id[256];
	char boot_id[64]; /* /proc/sys/kernel/random/boot_id, read at start; "" = unknown */
	struct rn_buffer *buffer;
	struct rn_uplink *uplink;
	struct source *src;
	size_t nsrc;
	struct rn_buf scratch, snap;
	int64_t next_status_us;
	int64_t started_us;
	int status_fd; /* data_dir/agent.sock listener, or -1 */
	uint64_t acked_chunks;
	uint64_t dropped_records; /* tombstoned by drop_oldest since start */
	uint64_t expired_records; /* tombstoned by a source's ttl since start */
	int buffer_recovered;     /* the buffer file was corrupt at start and set aside */
	int64_t drop_logged_us;
	int64_t next_maint_us, next_ttl_us;
};

static struct route *by_stream(struct rn_agent *a, int stream, struct source **src)
{
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i].nroutes; k++)
			if (a->src[i].routes[k].st.id == stream) {
				if (src)
					*src = &a->src[i];
				return &a->src[i].routes[k];
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
	by_stream(a, v->stream, &src);
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
	struct rn_chunk_origin o = {a->device_id, src ? src->conf->name : NULL, NULL, 0};
	struct rn_chunk_builder cb = {
		.lim = {.max_bytes = 4096, .max_records = 1, .zstd_level = 1}};
	int rc = rn_chunk_add(&cb, &o, &rec, (uint64_t)(v->seq0 >= 0 ? v->seq0 : 0), rn_now_us());
	if (!rc)
		rc = rn_chunk_close(&cb, v->offset, out, &a->scratch);
	rn_chunk_free(&cb);
	return rc;
}

/* policy drop_oldest: makes room for `bytes` more by tombstoning the oldest chunks. */
static int drop_for(struct rn_agent *a, int64_t bytes)
{
	uint64_t recs = 0;
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
static void close_chunk(struct source *s)
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
		if ((rc = rn_chunk_close(&r->cb, r->pending_offset, &r->pending, &a->scratch))) {
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

/* Upper estimate of a record's encoded size beyond payload and topic (envelope fields,
 * varints, tags). Only used to close a chunk before a record would overfill it. */
#define RECORD_OVERHEAD 96

/*
 * A chunk stays within chunk.max_bytes unless it holds a single record: it is closed before
 * a record that would overfill it is added. That keeps every request under the server's
 * message limit (max_line_bytes is capped well below it). While a closed chunk waits for
 * room in the buffer, the open one may fill up to max_bytes; then records are refused with
 * RN_EFULL and the source retries them later (nothing is taken, nothing lost).
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
	int64_t now = rn_now_us();
	struct rn_record rec = *r0, *r = &rec;
	if (s->conf->event_time_field && !r->event_time_us &&
	    rn_evtime_json(r->payload, r->len, s->conf->event_time_field, &rec.event_time_us))
		s->evtime_fallbacks++;
	if (s->have_re && !rec.event_time_us &&
	    evtime_match(s, r->payload, r->len, &rec.event_time_us))
		s->evtime_fallbacks++;
	size_t need = r->len + (r->topic ? strlen(r->topic) : 0) + RECORD_OVERHEAD;
	for (size_t i = 0; i < r->nattrs; i++)
		need += strlen(r->attrs[i].key) + strlen(r->attrs[i].value) + 8;
	for (size_t i = 0; i < s->origin.nattrs; i++)
		need += strlen(s->origin.attrs[i].key) + strlen(s->origin.attrs[i].value) + 8;
	struct route *rt = route_for(s, r->topic);
	if (rt->cb.nrec && rt->cb.batch.len + need > rt->cb.lim.max_bytes) {
		close_chunk(s);
		if (rt->cb.nrec)
			return RN_EFULL; /* the closed chunks are waiting for room */
	}
	struct rn_chunk_origin o = s->origin;
	if (now < RN_CLOCK_TRUSTED_US)
		o.boot_us = rn_boot_us(); /* the clock is not set: the boot timeline places it */
	int rc = rn_chunk_add(&rt->cb, &o, r, (uint64_t)rt->st.next_seq, now);
	if (rc)
		return rc;
	/* linger runs on the monotonic clock: a wall clock stepped back (NTP on a device that
	 * booted in 1970) must not hold a chunk open for hours */
	if (rt->cb.nrec == 1)
		rt->cb.opened_us = rn_mono_us();
	rt->st.next_seq++;
	s->records_in++;
	if (rt->cb.batch.len >= rt->cb.lim.max_bytes || rt->cb.nrec >= rt->cb.lim.max_records)
		close_chunk(s);
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
	return !c->buffer_max_bytes ||
	       rn_buffer_bytes(s->a->buffer) + margin <= c->buffer_max_bytes;
}

#define DEAD_ATTRS_MAX 32

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
		if (s->dead_letters == 1 || s->dead_letters % 1000 == 0)
			rn_log_warn("agent", "source %s: dead letter #%llu: %s", s->conf->name,
				    (unsigned long long)s->dead_letters, reason ? reason : "");
	}
	return rc;
}

static void tick(struct rn_agent *a, int64_t now);

/* Everything emitted so far goes into the buffer now (see plugin.h). */
static int host_flush(void *ctx)
{
	struct source *s = ctx;
	if (s->have_pending && commit_pending(s))
		return RN_EFULL;
	close_chunk(s);
	if (s->have_pending)
		return RN_EFULL;
	if (s->pos_dirty)
		tick(s->a, rn_mono_us());
	return 0;
}

#define MAINT_EVERY_US 250000 /* disk-full recovery checks */
#define TTL_EVERY_US 5000000  /* ttl sweeps */

/* Drops what is older than each source's ttl (its own and its routes' streams). */
static void expire(struct rn_agent *a)
{
	int64_t now = rn_now_us();
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = &a->src[i];
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
static void tick(struct rn_agent *a, int64_t now)
{
	if (now >= a->next_maint_us) {
		rn_buffer_maintain(a->buffer);
		a->next_maint_us = now + MAINT_EVERY_US;
	}
	if (now >= a->next_ttl_us) {
		expire(a);
		a->next_ttl_us = now + TTL_EVERY_US;
	}
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = &a->src[i];
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
			close_chunk(s);
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
	struct route *r = by_stream(a, stream, NULL);
	int rc = rn_buffer_set_server_id(a->buffer, stream, id);
	if (!rc && r)
		snprintf(r->st.server_id, sizeof(r->st.server_id), "%s", id);
	return rc;
}

static int io_acked(void *ctx, int stream, int64_t acked)
{
	struct rn_agent *a = ctx;
	struct route *s = by_stream(a, stream, NULL);
	int rc = rn_buffer_ack(a->buffer, stream, acked);
	if (rc) {
		rn_log_error("agent", "cannot delete acked chunks: %s",
			     rn_buffer_errmsg(a->buffer));
		return rc;
	}
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

/* A JSON string literal for s (quotes, backslashes and control bytes escaped). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
#define STATUS_EVERY_US 500000

/*
 * data_dir/status.json, replaced atomically (write to .tmp, rename): what tests and
 * operators poll. Per stream: name, table, server stream id, next_offset, acked, records
 * (= next_seq), buffered_bytes (chunk bytes not yet acked), connection state. Written twice
 * a second, at once on SIGUSR1, and at exit.
 */
static void status_json(struct rn_agent *a, FILE *f)
{
	fprintf(f, "{\"device_id\":");
	json_str(f, a->device_id);
	fprintf(f,
		",\"uptime_s\":%lld,\"buffer_bytes\":%lld,\"buffer_max_bytes\":%lld,"
		"\"buffer_policy\":\"%s\",\"disk_full\":%s,\"buffer_recovered\":%s,"
		"\"dropped_records\":%llu,\"expired_records\":%llu,\"streams\":[",
		(long long)((rn_mono_us() - a->started_us) / 1000000),
		(long long)rn_buffer_bytes(a->buffer), (long long)a->conf->buffer_max_bytes,
		policies[a->conf->buffer_policy], rn_buffer_disk_full(a->buffer) ? "true" : "false",
		a->buffer_recovered ? "true" : "false", (unsigned long long)a->dropped_records,
		(unsigned long long)a->expired_records);
	int first = 1;
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = &a->src[i];
		for (size_t k = 0; k < s->nroutes; k++) {
			struct route *r = &s->routes[k];
			struct rn_uplink_stream_stats us = {0};
			struct rn_buffer_stream bs;
			int64_t buffered = 0, dropped = 0, expired = 0, oldest_s = 0;
			rn_uplink_stream_stats(a->uplink, r->st.id, &us);
			if (!rn_buffer_stream_load(a->buffer, r->st.id, &bs)) {
				buffered = bs.bytes;
				dropped = bs.dropped_records;
				expired = bs.expired_records;
			}
			int64_t oldest = rn_buffer_oldest_us(a->buffer, r->st.id);
			if (oldest > 0 && rn_now_us() > oldest)
				oldest_s = (rn_now_us() - oldest) / 1000000;
			fprintf(f, "%s{\"name\":", first ? "" : ",");
			first = 0;
			json_str(f, r->name);
			fprintf(f, ",\"source\":");
			json_str(f, s->conf->name);
			fprintf(f, ",\"table\":");
			json_str(f, r->table);
			fprintf(f, ",\"server_stream_id\":");
			json_str(f, r->st.server_id);
			fprintf(f,
				",\"uplink\":{\"state\":\"%s\",\"bytes_sent\":%llu,\"failures\":%"
				"llu,"
				"\"faults\":%llu,\"pushbacks\":%llu,\"rate_waits\":%llu,"
				"\"retry_in_ms\":%lld,\"last_status\":%d,\"last_error\":",
				rn_uplink_state_name(us.state), (unsigned long long)us.bytes_sent,
				(unsigned long long)us.failures, (unsigned long long)us.faults,
				(unsigned long long)us.pushbacks, (unsigned long long)us.rate_waits,
				(long long)us.retry_in_ms, us.last_status);
			json_str(f, us.last_error);
			fputc('}', f);
			fprintf(f,
				",\"records\":%lld,\"next_offset\":%lld,\"acked\":%lld,"
				"\"buffered_bytes\":%lld,\"connected\":%s,\"reconnects\":%llu,"
				"\"paused\":%s,\"pauses\":%llu,\"dead_letters\":%llu,"
				"\"event_time_fallbacks\":%llu,\"dropped_records\":%lld,"
				"\"expired_records\":%lld,\"oldest_age_s\":%lld,"
				"\"records_per_s\":%.1f}",
				(long long)r->st.next_seq, (long long)r->st.next_offset,
				(long long)r->st.acked, (long long)buffered,
				us.connected ? "true" : "false", (unsigned long long)us.reconnects,
				s->have_pending ? "true" : "false", (unsigned long long)s->pauses,
				(unsigned long long)s->dead_letters,
				(unsigned long long)s->evtime_fallbacks, (long long)dropped,
				(long long)expired, (long long)oldest_s, r->rate);
		}
	}
	fprintf(f, "]}\n");
}

/* Each stream's intake rate, records/s, measured over windows of at least a second. */
static void sample_rates(struct rn_agent *a)
{
	int64_t now = rn_mono_us();
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i].nroutes; k++) {
			struct route *r = &a->src[i].routes[k];
			if (!r->rate_us) {
				r->rate_us = now;
				r->rate_seq = r->st.next_seq;
			} else if (now - r->rate_us >= 1000000) {
				r->rate = (double)(r->st.next_seq - r->rate_seq) * 1e6 /
					  (double)(now - r->rate_us);
				r->rate_us = now;
				r->rate_seq = r->st.next_seq;
			}
		}
}

static void write_status(struct rn_agent *a)
{
	char path[4200], tmp[4300];
	FILE *f;
	snprintf(path, sizeof(path), "%s/status.json", a->conf->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	sample_rates(a);
	if (!(f = fopen(tmp, "w")))
		return;
	status_json(a, f);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/*
 * The status socket, data_dir/agent.sock: every connection gets the status JSON, written
 * at once, and is closed (`runnel-agent status` reads it). Answered from the loop between
 * polls; a client that does not read is cut off (non-blocking write, no waiting).
 */
static void status_socket_open(struct rn_agent *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", a->conf->data_dir);
	a->status_fd = -1;
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		rn_log_warn("agent", "data_dir is too long for a status socket; status.json only");
		return;
	}
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
		rn_log_warn("agent", "status socket %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	a->status_fd = fd;
}

static void status_socket_serve(struct rn_agent *a)
{
	int c;
	while (a->status_fd >= 0 &&
	       (c = accept4(a->status_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (f) {
			status_json(a, f);
			if (fclose(f) == 0 && write(c, text, len) < 0)
				rn_log_debug("agent", "status client went away: %s",
					     strerror(errno));
		}
		free(text);
		close(c);
	}
}

/*
 * Streams in the buffer whose source is no longer configured (removed or renamed) may still
 * hold unacknowledged chunks: they are registered with the uplink too, so that data is
 * delivered rather than stranded. They get no new records.
 */
static int register_orphans(struct rn_agent *a)
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
		if (by_stream(a, ids[i], NULL) || rn_buffer_stream_load(a->buffer, ids[i], &st))
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
		if ((rc = rn_uplink_add_stream(a->uplink, &d)))
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

/* The kernel's id of this boot, which pairs with CLOCK_BOOTTIME (chunk.h, uplink.h). */
static void read_boot_id(char *out, size_t cap)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	out[0] = 0;
	if (f && fgets(out, (int)cap, f))
		out[strcspn(out, " \r\n")] = 0;
	if (f)
		fclose(f);
}

int rn_agent_create(struct rn_agent **out, const struct rn_agent_conf *conf)
{
	struct rn_agent *a;
	char path[4200];
	int rc, recovered = 0;
	struct rn_buf desc = {0};

	*out = NULL;
	if (!(a = rn_calloc(1, sizeof(*a))))
		return RN_ENOMEM;
	a->conf = conf;
	a->started_us = rn_mono_us();
	a->status_fd = -1;
	if (conf->device_id)
		snprintf(a->device_id, sizeof(a->device_id), "%s", conf->device_id);
	else if (gethostname(a->device_id, sizeof(a->device_id) - 1))
		snprintf(a->device_id, sizeof(a->device_id), "unknown");
	read_boot_id(a->boot_id, sizeof(a->boot_id));
	snprintf(path, sizeof(path), "%s/buffer.db", conf->data_dir);
	struct rn_buffer_options bo = {path, conf->sync, conf->buffer_max_bytes,
				       conf->buffer_reserve};
	if ((rc = rn_buffer_open(&a->buffer, &bo, &recovered)))
		goto fail;
	if ((rc = rn_chunk_descriptor(&desc)))
		goto fail;
	struct rn_uplink_options uo = {
		.url = conf->url,
		.token = conf->token,
		.window = (int)conf->window,
		.backoff_min_ms = (int)conf->backoff_min_ms,
		.backoff_max_ms = (int)conf->backoff_max_ms,
		.ack_timeout_ms = (int)conf->ack_timeout_ms,
		.max_bytes_per_sec = conf->max_bytes_per_sec,
		.descriptor = desc.data,
		.descriptor_len = desc.len,
		.boot_id = a->boot_id[0] ? a->boot_id : NULL,
	};
	struct rn_uplink_io io = {a, io_chunk_get, io_stream_id_set, io_acked};
	rc = rn_uplink_create(&a->uplink, &uo, &io);
	rn_buf_free(&desc);
	if (rc)
		goto fail;
	if (!(a->src = rn_calloc(conf->sources.n, sizeof(*a->src)))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < conf->sources.n; i++) {
		struct source *s = &a->src[i];
		const struct rn_source_conf *sc =
			(const struct rn_source_conf *)conf->sources.items + i;
		s->a = a;
		s->conf = sc;
		s->p = plugin_for(sc->type);
		s->origin.device_id = a->device_id;
		s->origin.source = sc->name;
		s->origin.boot_id = a->boot_id[0] ? a->boot_id : NULL;
		a->nsrc++;
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
		struct rn_source_host h = {s,
					   host_emit,
					   host_position_changed,
					   host_load_position,
					   host_accepting,
					   host_flush,
					   host_dead_letter};
		if ((rc = s->p->create(&s->inst, sc, &h)))
			goto fail;
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
	}
	if ((rc = register_orphans(a)))
		goto fail;
	if (recovered)
		rn_log_error("agent",
			     "the buffer was corrupt and has been set aside; started anew");
	a->buffer_recovered = recovered;
	status_socket_open(a);
	*out = a;
	return 0;
fail:
	rn_agent_destroy(a);
	return rc;
}

static void drain(struct rn_agent *a)
{
	int64_t until = rn_mono_us() + 2000000;
	for (size_t i = 0; i < a->nsrc; i++) {
		close_chunk(&a->src[i]);
		if (a->src[i].pos_dirty)
			tick(a, rn_mono_us());
	}
	while (!rn_uplink_idle(a->uplink) && rn_mono_us() < until) {
		rn_uplink_step(a->uplink);
		rn_uplink_wait(a->uplink, NULL, 0, 20);
	}
}

#define WAITFD_MAX 64

int rn_agent_run(struct rn_agent *a, volatile int *stop, volatile int *status_now)
{
	struct rn_uplink_waitfd wfd[WAITFD_MAX];
	while (!*stop) {
		int64_t now = rn_mono_us();
		int more = 0, nw = 0;
		for (size_t i = 0; i < a->nsrc; i++) {
			struct source *s = &a->src[i];
			int m = 0, rc;
			if (s->have_pending)
				continue;
			if ((rc = s->p->poll(s->inst, rn_mono_us(), &m)))
				rn_log_error("agent", "source %s: %s", s->conf->name,
					     rn_strerror(rc));
			more |= m;
			short ev = 0;
			int fd =
				s->p->wait_fd && nw < WAITFD_MAX ? s->p->wait_fd(s->inst, &ev) : -1;
			if (fd >= 0)
				wfd[nw++] = (struct rn_uplink_waitfd){fd, ev, 0};
		}
		if (a->status_fd >= 0 && nw < WAITFD_MAX)
			wfd[nw++] = (struct rn_uplink_waitfd){a->status_fd, POLLIN, 0};
		tick(a, now);
		rn_uplink_step(a->uplink);
		status_socket_serve(a);
		if (rn_mono_us() >= a->next_status_us || (status_now && *status_now)) {
			if (status_now)
				*status_now = 0;
			write_status(a);
			a->next_status_us = rn_mono_us() + STATUS_EVERY_US;
		}
		rn_uplink_wait(a->uplink, nw ? wfd : NULL, nw, more ? 0 : 50);
	}
	rn_log_info("agent", "stopping: committing open chunks and draining");
	drain(a);
	write_status(a);
	return 0;
}

void rn_agent_destroy(struct rn_agent *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = &a->src[i];
		if (s->inst)
			s->p->destroy(s->inst);
		for (size_t k = 0; k < s->nroutes; k++) {
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
	}
	rn_free(a->src);
	if (a->status_fd >= 0) {
		char path[4200];
		close(a->status_fd);
		snprintf(path, sizeof(path), "%s/agent.sock", a->conf->data_dir);
		unlink(path);
	}
	rn_uplink_destroy(a->uplink);
	rn_buffer_close(a->buffer);
	rn_buf_free(&a->scratch);
	rn_buf_free(&a->snap);
	rn_free(a);
}
