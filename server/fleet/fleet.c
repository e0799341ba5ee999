/*
 * The fleet model: streams and devices, their states and the API's JSON (fleet.h). Pure:
 * the server passes the time and the reports in, the JSON comes out; the health parser is
 * health.c.
 */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_strmap.h"
#include "rn_url.h"

/* One report's numbers, as the device history keeps them (-1 unknown). */
struct summary {
	int64_t t_ms;
	int64_t buffer_bytes, buffer_records, oldest_unsent_age_s;
	int64_t drops, expired, dead_letters;
	uint64_t records, bytes; /* the reporting stream's counters at that time */
};

struct anchor {
	int64_t t_ms; /* the first report of its minute */
	int64_t drops, expired;
};

struct rn_fleet_device {
	char name[RN_FLEET_STR_MAX + 1]; /* the map's key */
	struct rn_fleet_stream *streams; /* every stream naming it (dnext) */
	struct rn_buf report;            /* its newest report, rendered (health.c) */
	char *invalid;                   /* that report's reasons, NULL valid */
	char version[RN_FLEET_STR_MAX + 1];
	int clock_synced; /* -1 unknown */
	int64_t last_seen_ms;
	struct summary newest;
	struct summary hist[RN_FLEET_HISTORY]; /* ring: hist_n entries ending before hist_head */
	size_t hist_head, hist_n;
	struct anchor anchors[RN_FLEET_ANCHORS]; /* ring, as hist */
	size_t anc_head, anc_n;
};

struct rn_fleet {
	struct rn_fleet_conf conf;
	struct rn_strmap streams_by_id, devices;
	struct rn_fleet_stream *streams; /* newest first */
	size_t nstreams, ndevices;
};

static const char *const state_names[RN_FLEET_NSTATES] = {"silent", "behind", "dropping", "clock",
							  "invalid"};

const char *rn_fleet_state_name(int i)
{
	return i >= 0 && i < RN_FLEET_NSTATES ? state_names[i] : NULL;
}

int rn_fleet_state_parse(const char *name)
{
	if (!strcmp(name, "all") || !name[0])
		return 0;
	if (!strcmp(name, "connected"))
		return -2;
	for (int i = 0; i < RN_FLEET_NSTATES; i++)
		if (!strcmp(name, state_names[i]))
			return 1 << i;
	return -1;
}

const char *rn_fleet_kind_name(enum rn_fleet_kind k)
{
	return k == RN_FLEET_REST ? "rest" : k == RN_FLEET_EPHEMERAL ? "ephemeral" : "persistent";
}

int rn_fleet_create(struct rn_fleet **out, const struct rn_fleet_conf *conf)
{
	struct rn_fleet *f = rn_calloc(1, sizeof(*f));
	if (!f)
		return RN_ENOMEM;
	rn_fleet_set_conf(f, conf);
	*out = f;
	return 0;
}

void rn_fleet_set_conf(struct rn_fleet *f, const struct rn_fleet_conf *conf)
{
	if (conf)
		f->conf = *conf;
	if (f->conf.silent_after_ms <= 0)
		f->conf.silent_after_ms = 300000;
	if (f->conf.behind_after_ms <= 0)
		f->conf.behind_after_ms = 600000;
}

static void device_free(struct rn_fleet_device *d)
{
	rn_buf_free(&d->report);
	rn_free(d->invalid);
	rn_free(d);
}

static void stream_free(struct rn_fleet_stream *fs)
{
	rn_free(fs->table);
	rn_free(fs->invalid);
	rn_free(fs);
}

void rn_fleet_destroy(struct rn_fleet *f)
{
	if (!f)
		return;
	while (f->streams)
		rn_fleet_stream_forget(f, f->streams);
	rn_strmap_free(&f->streams_by_id);
	rn_strmap_free(&f->devices);
	rn_free(f);
}

size_t rn_fleet_nstreams(const struct rn_fleet *f)
{
	return f->nstreams;
}

size_t rn_fleet_ndevices(const struct rn_fleet *f)
{
	return f->ndevices;
}

struct rn_fleet_stream *rn_fleet_stream_find(const struct rn_fleet *f, const char *id)
{
	return rn_strmap_get(&f->streams_by_id, id, strlen(id));
}

struct rn_fleet_stream *rn_fleet_stream_get(struct rn_fleet *f, const char *id, const char *table)
{
	struct rn_fleet_stream *fs = rn_fleet_stream_find(f, id);
	if (fs)
		return fs;
	if (strlen(id) >= sizeof(fs->id) || !(fs = rn_calloc(1, sizeof(*fs))))
		return NULL;
	snprintf(fs->id, sizeof(fs->id), "%s", id);
	if (!(fs->table = rn_strdup(table ? table : "")) ||
	    rn_strmap_put(&f->streams_by_id, fs->id, strlen(fs->id), fs)) {
		stream_free(fs);
		return NULL;
	}
	fs->acked_offset = fs->committed_offset = -1;
	fs->next = f->streams;
	if (f->streams)
		f->streams->prev = fs;
	f->streams = fs;
	f->nstreams++;
	return fs;
}

void rn_fleet_stream_open(struct rn_fleet_stream *fs, enum rn_fleet_kind kind, const char *peer,
			  const char *principal, int64_t now_ms)
{
	fs->kind = kind;
	fs->connected = kind != RN_FLEET_REST;
	if (peer)
		snprintf(fs->peer, sizeof(fs->peer), "%s", peer);
	if (principal)
		snprintf(fs->principal, sizeof(fs->principal), "%s", principal);
	fs->opened_ms = now_ms;
}

/* Takes fs off its device; the device goes with its last stream. */
static void detach(struct rn_fleet *f, struct rn_fleet_stream *fs)
{
	struct rn_fleet_device *d = fs->dev;
	if (!d)
		return;
	if (fs->dprev)
		fs->dprev->dnext = fs->dnext;
	else
		d->streams = fs->dnext;
	if (fs->dnext)
		fs->dnext->dprev = fs->dprev;
	fs->dnext = fs->dprev = NULL;
	fs->dev = NULL;
	if (!d->streams) {
		rn_strmap_del(&f->devices, d->name, strlen(d->name));
		f->ndevices--;
		device_free(d);
	}
}

void rn_fleet_stream_forget(struct rn_fleet *f, struct rn_fleet_stream *fs)
{
	if (!fs)
		return;
	detach(f, fs);
	rn_strmap_del(&f->streams_by_id, fs->id, strlen(fs->id));
	if (fs->prev)
		fs->prev->next = fs->next;
	else
		f->streams = fs->next;
	if (fs->next)
		fs->next->prev = fs->prev;
	f->nstreams--;
	stream_free(fs);
}

static int set_str(char **dst, const char *s)
{
	char *c = NULL;
	if (s && s[0] && !(c = rn_strdup(s)))
		return RN_ENOMEM;
	rn_free(*dst);
	*dst = c;
	return 0;
}

int rn_fleet_report(struct rn_fleet *f, struct rn_fleet_stream *fs, const struct rn_fleet_health *h,
		    int64_t now_ms)
{
	struct rn_fleet_device *d;
	fs->last_report_ms = now_ms;
	if (set_str(&fs->invalid, h->invalid)) {
		/* the mark must stay even when its text cannot be kept */
		rn_free(fs->invalid);
		fs->invalid = NULL;
		if ((fs->invalid = rn_malloc(1)))
			fs->invalid[0] = 0;
		return RN_ENOMEM;
	}
	if (h->reject != RN_FLEET_OK || !h->device[0])
		return 0;
	d = rn_strmap_get(&f->devices, h->device, strlen(h->device));
	if (!d) {
		if (!(d = rn_calloc(1, sizeof(*d))))
			return RN_ENOMEM;
		snprintf(d->name, sizeof(d->name), "%s", h->device);
		d->report.max = RN_FLEET_REPORT_MAX;
		if (rn_strmap_put(&f->devices, d->name, strlen(d->name), d)) {
			device_free(d);
			return RN_ENOMEM;
		}
		f->ndevices++;
	}
	if (fs->dev != d) {
		detach(f, fs);
		fs->dev = d;
		fs->dnext = d->streams;
		if (d->streams)
			d->streams->dprev = fs;
		d->streams = fs;
	}
	rn_buf_reset(&d->report);
	if (rn_buf_append(&d->report, h->json.data, h->json.len) ||
	    set_str(&d->invalid, h->invalid))
		return RN_ENOMEM;
	snprintf(d->version, sizeof(d->version), "%s", h->version);
	d->clock_synced = h->clock_synced;
	d->last_seen_ms = now_ms;
	d->newest = (struct summary){
		now_ms,         h->buffer_bytes, h->buffer_records, h->oldest_unsent_age_s,
		h->drops_total, h->expired,      h->dead_letters,   fs->records,
		fs->bytes};
	d->hist[d->hist_head] = d->newest;
	d->hist_head = (d->hist_head + 1) % RN_FLEET_HISTORY;
	if (d->hist_n < RN_FLEET_HISTORY)
		d->hist_n++;
	/* the first report of each minute anchors `dropping` an hour back */
	size_t last = (d->anc_head + RN_FLEET_ANCHORS - 1) % RN_FLEET_ANCHORS;
	if (!d->anc_n || d->anchors[last].t_ms / 60000 != now_ms / 60000) {
		d->anchors[d->anc_head] = (struct anchor){now_ms, h->drops_total, h->expired};
		d->anc_head = (d->anc_head + 1) % RN_FLEET_ANCHORS;
		if (d->anc_n < RN_FLEET_ANCHORS)
			d->anc_n++;
	}
	return 0;
}

/* Whether drops or expired grew from the oldest report of the last hour to the newest. */
static int dropping(const struct rn_fleet_device *d, int64_t now_ms)
{
	for (size_t i = 0; i < d->anc_n; i++) {
		const struct anchor *a =
			&d->anchors[(d->anc_head + RN_FLEET_ANCHORS - d->anc_n + i) %
				    RN_FLEET_ANCHORS];
		if (a->t_ms < now_ms - RN_FLEET_HOUR_MS)
			continue;
		return (a->drops >= 0 && d->newest.drops > a->drops) ||
		       (a->expired >= 0 && d->newest.expired > a->expired);
	}
	return 0;
}

int rn_fleet_stream_states(const struct rn_fleet *f, const struct rn_fleet_stream *fs,
			   int64_t now_ms)
{
	int st = 0;
	int64_t last =
		fs->last_batch_ms > fs->last_report_ms ? fs->last_batch_ms : fs->last_report_ms;
	if (!last)
		last = fs->opened_ms;
	if (now_ms - last >= f->conf.silent_after_ms)
		st |= RN_FLEET_SILENT;
	if (fs->invalid)
		st |= RN_FLEET_INVALID;
	if (fs->clock_corrected_ms && fs->clock_corrected_ms >= now_ms - RN_FLEET_HOUR_MS)
		st |= RN_FLEET_CLOCK;
	const struct rn_fleet_device *d = fs->dev;
	if (d) {
		if (d->newest.oldest_unsent_age_s >= 0 &&
		    d->newest.oldest_unsent_age_s * 1000 >= f->conf.behind_after_ms)
			st |= RN_FLEET_BEHIND;
		if (dropping(d, now_ms))
			st |= RN_FLEET_DROPPING;
		if (d->clock_synced == 0)
			st |= RN_FLEET_CLOCK;
	}
	return st;
}

static int device_states(const struct rn_fleet *f, const struct rn_fleet_device *d, int64_t now)
{
	int st = 0;
	for (const struct rn_fleet_stream *fs = d->streams; fs; fs = fs->dnext)
		st |= rn_fleet_stream_states(f, fs, now);
	return st;
}

static void count_states(uint64_t *c, int st)
{
	c[RN_FLEET_NSTATES]++;
	for (int i = 0; i < RN_FLEET_NSTATES; i++)
		if (st & (1 << i))
			c[i]++;
}

void rn_fleet_gauges(const struct rn_fleet *f, int64_t now_ms, struct rn_fleet_gauges *g)
{
	memset(g, 0, sizeof(*g));
	for (const struct rn_fleet_stream *fs = f->streams; fs; fs = fs->next) {
		count_states(g->streams, rn_fleet_stream_states(f, fs, now_ms));
		g->streams[RN_FLEET_NSTATES + 1] += !!fs->connected;
		const struct rn_fleet_device *d = fs->dev;
		if (!d || d->streams != fs)
			continue; /* each device once: at its first stream */
		int dst = device_states(f, d, now_ms), conn = 0;
		count_states(g->devices, dst);
		for (const struct rn_fleet_stream *x = d->streams; x; x = x->dnext)
			conn |= x->connected;
		g->devices[RN_FLEET_NSTATES + 1] += !!conn;
		if (d->newest.oldest_unsent_age_s > g->oldest_unsent_age_s)
			g->oldest_unsent_age_s = d->newest.oldest_unsent_age_s;
		if (d->newest.dead_letters > 0)
			g->dead_letters += d->newest.dead_letters;
		if (d->newest.drops > 0)
			g->dropped += d->newest.drops;
		if (d->newest.expired > 0)
			g->dropped += d->newest.expired;
	}
}

/* ---- query parameters ---- */

static const char *const stream_sorts[] = {"stream_id",
					   "table",
					   "principal",
					   "device",
					   "kind",
					   "connected",
					   "peer",
					   "opened_ms",
					   "last_batch_ms",
					   "last_report_ms",
					   "records",
					   "bytes",
					   "batches",
					   "acked_offset",
					   "committed_offset",
					   "pushbacks",
					   "clock_corrections",
					   "refused_calls",
					   "states",
					   NULL};
static const char *const device_sorts[] = {"device",         "streams",
					   "states",         "last_seen_ms",
					   "version",        "buffer_bytes",
					   "buffer_records", "oldest_unsent_age_s",
					   "drops",          "expired",
					   "dead_letters",   "clock_synced",
					   "invalid",        NULL};

/* /api/v1/refusals (refusals.c keeps the same order) */
static const char *const refusal_sorts[] = {"count",     "last",  "first", "peer",
					    "principal", "table", NULL};

static long sort_index(const char *const *names, const char *s)
{
	for (long i = 0; names[i]; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

/* The value of `name` in the query into out; 1 found, 0 absent, -1 bad (escape, length). */
static int param(const char *query, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), len = strlen(query), i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && query[end] != '&')
			end++;
		const char *eq = memchr(query + i, '=', end - i);
		size_t klen = eq ? (size_t)(eq - (query + i)) : end - i;
		if (klen == nlen && !memcmp(query + i, name, nlen)) {
			const char *v = eq ? eq + 1 : query + end;
			long n = rn_url_unescape(v, (size_t)(query + end - v), 1, out, cap);
			if (n < 0 || memchr(out, 0, (size_t)n))
				return -1;
			return 1;
		}
		i = end + 1;
	}
	return 0;
}

int rn_fleet_query_parse(const char *query, int devices, struct rn_fleet_query *q, const char **why)
{
	const char *const *sorts = devices == RN_FLEET_QUERY_REFUSALS ? refusal_sorts
				   : devices                          ? device_sorts
								      : stream_sorts;
	char v[300];
	int r;
	memset(q, 0, sizeof(*q));
	q->limit = 1000;
	q->desc = 1;
	if (!query)
		query = "";
	if ((r = param(query, "state", v, sizeof(v))) < 0 ||
	    (r > 0 && (q->state = rn_fleet_state_parse(v)) == -1)) {
		*why = "bad state (all, connected, silent, behind, dropping, clock, invalid)";
		return RN_EINVAL;
	}
	if ((r = param(query, "q", q->q, sizeof(q->q))) < 0) {
		*why = "bad q (at most 256 bytes)";
		return RN_EINVAL;
	}
	if ((r = param(query, "sort", v, sizeof(v))) < 0 ||
	    (r > 0 && (strlen(v) >= sizeof(q->sort) || sort_index(sorts, v) < 0))) {
		*why = "bad sort (a field of the answer)";
		return RN_EINVAL;
	}
	if (r > 0)
		memcpy(q->sort, v, strlen(v) + 1); /* shorter than q->sort: checked above */
	if ((r = param(query, "order", v, sizeof(v))) < 0 ||
	    (r > 0 && strcmp(v, "asc") && strcmp(v, "desc"))) {
		*why = "bad order (asc or desc)";
		return RN_EINVAL;
	}
	if (r > 0) {
		q->desc = !strcmp(v, "desc");
		q->order_given = 1;
	}
	if ((r = param(query, "limit", v, sizeof(v))) != 0) {
		char *e = NULL;
		long n = r > 0 && v[0] >= '0' && v[0] <= '9' ? strtol(v, &e, 10) : -1;
		if (r < 0 || !e || *e || n < 1 || n > 10000) {
			*why = "bad limit (1..10000)";
			return RN_EINVAL;
		}
		q->limit = n;
	}
	return 0;
}

/* ---- rendering ---- */

static int put_states(struct rn_buf *b, int st)
{
	int n = 0;
	if (rn_buf_append_str(b, "["))
		return RN_ENOMEM;
	for (int i = 0; i < RN_FLEET_NSTATES; i++)
		if ((st & (1 << i)) && ((n++ && rn_buf_append_str(b, ",")) ||
					rn_buf_printf(b, "\"%s\"", state_names[i])))
			return RN_ENOMEM;
	return rn_buf_append_str(b, "]");
}

static int put_opt(struct rn_buf *b, int64_t v)
{
	return v < 0 ? rn_buf_append_str(b, "null") : rn_buf_printf(b, "%lld", (long long)v);
}

static int put_ms(struct rn_buf *b, int64_t v)
{
	return v <= 0 ? rn_buf_append_str(b, "null") : rn_buf_printf(b, "%lld", (long long)v);
}

static int put_s(struct rn_buf *b, const char *s)
{
	return s && s[0] ? rn_json_put_str(b, s, strlen(s)) : rn_buf_append_str(b, "null");
}

static int render_stream(const struct rn_fleet_stream *fs, int st, struct rn_buf *b)
{
	if (rn_buf_append_str(b, "{\"stream_id\":") || put_s(b, fs->id) ||
	    rn_buf_append_str(b, ",\"table\":") || put_s(b, fs->table) ||
	    rn_buf_append_str(b, ",\"principal\":") || put_s(b, fs->principal) ||
	    rn_buf_append_str(b, ",\"device\":") || put_s(b, fs->dev ? fs->dev->name : NULL) ||
	    rn_buf_printf(b, ",\"kind\":\"%s\",\"connected\":%s,\"peer\":",
			  rn_fleet_kind_name(fs->kind), fs->connected ? "true" : "false") ||
	    put_s(b, fs->peer) || rn_buf_append_str(b, ",\"opened_ms\":") ||
	    put_ms(b, fs->opened_ms) || rn_buf_append_str(b, ",\"last_batch_ms\":") ||
	    put_ms(b, fs->last_batch_ms) || rn_buf_append_str(b, ",\"last_report_ms\":") ||
	    put_ms(b, fs->last_report_ms) ||
	    rn_buf_printf(b, ",\"records\":%llu,\"bytes\":%llu,\"batches\":%llu,\"acked_offset\":",
			  (unsigned long long)fs->records, (unsigned long long)fs->bytes,
			  (unsigned long long)fs->batches) ||
	    put_opt(b, fs->acked_offset) || rn_buf_append_str(b, ",\"committed_offset\":") ||
	    put_opt(b, fs->committed_offset) ||
	    rn_buf_printf(b,
			  ",\"pushbacks\":%llu,\"clock_corrections\":%llu,\"refused_calls\":%llu,"
			  "\"states\":",
			  (unsigned long long)fs->pushbacks,
			  (unsigned long long)fs->clock_corrections,
			  (unsigned long long)fs->refused_calls) ||
	    put_states(b, st) || rn_buf_append_str(b, "}"))
		return RN_ENOMEM;
	return 0;
}

static int contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* An item being listed: its object and states, and a key to sort by. */
struct item {
	const void *p;
	int st;
};

/* A sort's key (index in stream_sorts / device_sorts) and order, qsort_r's context. */
struct sorter {
	long key;
	int desc;
};

static int cmp_i(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_s(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int cmp_stream(const void *x, const void *y, void *ctx)
{
	const struct sorter sort_by = *(const struct sorter *)ctx;
	const struct item *ia = x, *ib = y;
	const struct rn_fleet_stream *a = ia->p, *b = ib->p;
	int c = 0;
	switch (sort_by.key) {
	case 0: c = cmp_s(a->id, b->id); break;
	case 1: c = cmp_s(a->table, b->table); break;
	case 2: c = cmp_s(a->principal, b->principal); break;
	case 3: c = cmp_s(a->dev ? a->dev->name : NULL, b->dev ? b->dev->name : NULL); break;
	case 4: c = cmp_i(a->kind, b->kind); break;
	case 5: c = cmp_i(a->connected, b->connected); break;
	case 6: c = cmp_s(a->peer, b->peer); break;
	case 7: c = cmp_i(a->opened_ms, b->opened_ms); break;
	case 8: c = cmp_i(a->last_batch_ms, b->last_batch_ms); break;
	case 9: c = cmp_i(a->last_report_ms, b->last_report_ms); break;
	case 10: c = cmp_i((int64_t)a->records, (int64_t)b->records); break;
	case 11: c = cmp_i((int64_t)a->bytes, (int64_t)b->bytes); break;
	case 12: c = cmp_i((int64_t)a->batches, (int64_t)b->batches); break;
	case 13: c = cmp_i(a->acked_offset, b->acked_offset); break;
	case 14: c = cmp_i(a->committed_offset, b->committed_offset); break;
	case 15: c = cmp_i((int64_t)a->pushbacks, (int64_t)b->pushbacks); break;
	case 16: c = cmp_i((int64_t)a->clock_corrections, (int64_t)b->clock_corrections); break;
	case 17: c = cmp_i((int64_t)a->refused_calls, (int64_t)b->refused_calls); break;
	case 18: c = cmp_i(ia->st, ib->st); break;
	}
	if (!c)
		c = cmp_s(a->id, b->id); /* a stable order whatever the key */
	return sort_by.desc ? -c : c;
}

int rn_fleet_render_streams(const struct rn_fleet *f, const struct rn_fleet_query *q,
			    int64_t now_ms, struct rn_buf *out)
{
	struct item *v = NULL;
	size_t n = 0;
	int rc = RN_ENOMEM;
	if (f->nstreams && !(v = rn_calloc(f->nstreams, sizeof(*v))))
		return RN_ENOMEM;
	for (const struct rn_fleet_stream *fs = f->streams; fs; fs = fs->next) {
		int st = rn_fleet_stream_states(f, fs, now_ms);
		if (q->state == -2 ? !fs->connected : q->state > 0 && !(st & q->state))
			continue;
		if (q->q[0] && !contains(fs->id, q->q) && !contains(fs->table, q->q) &&
		    !contains(fs->principal, q->q) && !(fs->dev && contains(fs->dev->name, q->q)))
			continue;
		v[n++] = (struct item){fs, st};
	}
	struct sorter by = {q->sort[0] ? sort_index(stream_sorts, q->sort) : 8,
			    q->order_given || !q->sort[0] ? q->desc : 0};
	if (n > 1)
		qsort_r(v, n, sizeof(*v), cmp_stream, &by);
	if (rn_buf_printf(out,
			  "{\"now_ms\":%lld,\"silent_after_s\":%lld,\"behind_after_s\":%lld,"
			  "\"total\":%zu,\"streams\":[",
			  (long long)now_ms, (long long)(f->conf.silent_after_ms / 1000),
			  (long long)(f->conf.behind_after_ms / 1000), n))
		goto out;
	for (size_t i = 0; i < n && i < (size_t)q->limit; i++)
		if ((i && rn_buf_append_str(out, ",")) || render_stream(v[i].p, v[i].st, out))
			goto out;
	rc = rn_buf_append_str(out, "]}");
out:
	rn_free(v);
	return rc;
}

static int cmp_device(const void *x, const void *y, void *ctx)
{
	const struct sorter sort_by = *(const struct sorter *)ctx;
	const struct item *ia = x, *ib = y;
	const struct rn_fleet_device *a = ia->p, *b = ib->p;
	int c = 0;
	size_t na = 0, nb = 0;
	switch (sort_by.key) {
	case 0: break;
	case 1:
		for (const struct rn_fleet_stream *s = a->streams; s; s = s->dnext)
			na++;
		for (const struct rn_fleet_stream *s = b->streams; s; s = s->dnext)
			nb++;
		c = cmp_i((int64_t)na, (int64_t)nb);
		break;
	case 2: c = cmp_i(ia->st, ib->st); break;
	case 3: c = cmp_i(a->last_seen_ms, b->last_seen_ms); break;
	case 4: c = cmp_s(a->version, b->version); break;
	case 5: c = cmp_i(a->newest.buffer_bytes, b->newest.buffer_bytes); break;
	case 6: c = cmp_i(a->newest.buffer_records, b->newest.buffer_records); break;
	case 7: c = cmp_i(a->newest.oldest_unsent_age_s, b->newest.oldest_unsent_age_s); break;
	case 8: c = cmp_i(a->newest.drops, b->newest.drops); break;
	case 9: c = cmp_i(a->newest.expired, b->newest.expired); break;
	case 10: c = cmp_i(a->newest.dead_letters, b->newest.dead_letters); break;
	case 11: c = cmp_i(a->clock_synced, b->clock_synced); break;
	case 12: c = cmp_s(a->invalid, b->invalid); break;
	}
	if (!c)
		c = strcmp(a->name, b->name);
	return sort_by.desc ? -c : c;
}

/* ["reason", ...] from a reasons text joined by "; " (null-safe). */
static int put_reasons(struct rn_buf *b, const char *s)
{
	int n = 0;
	if (rn_buf_append_str(b, "["))
		return RN_ENOMEM;
	while (s && *s) {
		const char *e = strstr(s, "; ");
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if ((n++ && rn_buf_append_str(b, ",")) || rn_json_put_str(b, s, len))
			return RN_ENOMEM;
		s = e ? e + 2 : NULL;
	}
	return rn_buf_append_str(b, "]");
}

static int render_device_row(const struct rn_fleet_device *d, int st, struct rn_buf *b)
{
	int n = 0;
	if (rn_buf_append_str(b, "{\"device\":") || put_s(b, d->name) ||
	    rn_buf_append_str(b, ",\"streams\":["))
		return RN_ENOMEM;
	for (const struct rn_fleet_stream *s = d->streams; s; s = s->dnext)
		if ((n++ && rn_buf_append_str(b, ",")) || put_s(b, s->id))
			return RN_ENOMEM;
	if (rn_buf_append_str(b, "],\"states\":") || put_states(b, st) ||
	    rn_buf_append_str(b, ",\"last_seen_ms\":") || put_ms(b, d->last_seen_ms) ||
	    rn_buf_append_str(b, ",\"version\":") || put_s(b, d->version) ||
	    rn_buf_append_str(b, ",\"buffer_bytes\":") || put_opt(b, d->newest.buffer_bytes) ||
	    rn_buf_append_str(b, ",\"buffer_records\":") || put_opt(b, d->newest.buffer_records) ||
	    rn_buf_append_str(b, ",\"oldest_unsent_age_s\":") ||
	    put_opt(b, d->newest.oldest_unsent_age_s) || rn_buf_append_str(b, ",\"drops\":") ||
	    put_opt(b, d->newest.drops) || rn_buf_append_str(b, ",\"expired\":") ||
	    put_opt(b, d->newest.expired) || rn_buf_append_str(b, ",\"dead_letters\":") ||
	    put_opt(b, d->newest.dead_letters) || rn_buf_append_str(b, ",\"clock_synced\":") ||
	    rn_buf_append_str(b, d->clock_synced < 0 ? "null"
				 : d->clock_synced   ? "true"
						     : "false") ||
	    rn_buf_append_str(b, ",\"invalid\":") || put_reasons(b, d->invalid) ||
	    rn_buf_append_str(b, "}"))
		return RN_ENOMEM;
	return 0;
}

int rn_fleet_render_devices(const struct rn_fleet *f, const struct rn_fleet_query *q,
			    int64_t now_ms, struct rn_buf *out)
{
	struct item *v = NULL;
	size_t n = 0;
	int rc = RN_ENOMEM;
	if (f->ndevices && !(v = rn_calloc(f->ndevices, sizeof(*v))))
		return RN_ENOMEM;
	for (const struct rn_fleet_stream *fs = f->streams; fs; fs = fs->next) {
		const struct rn_fleet_device *d = fs->dev;
		if (!d || d->streams != fs || n >= f->ndevices)
			continue; /* each device once */
		int st = device_states(f, d, now_ms), conn = 0;
		for (const struct rn_fleet_stream *x = d->streams; x; x = x->dnext)
			conn |= x->connected;
		if (q->state == -2 ? !conn : q->state > 0 && !(st & q->state))
			continue;
		if (q->q[0]) {
			int hit = contains(d->name, q->q);
			for (const struct rn_fleet_stream *x = d->streams; x && !hit; x = x->dnext)
				hit = contains(x->id, q->q) || contains(x->table, q->q) ||
				      contains(x->principal, q->q);
			if (!hit)
				continue;
		}
		v[n++] = (struct item){d, st};
	}
	struct sorter by = {q->sort[0] ? sort_index(device_sorts, q->sort) : 3,
			    q->order_given || !q->sort[0] ? q->desc : 0};
	if (n > 1)
		qsort_r(v, n, sizeof(*v), cmp_device, &by);
	if (rn_buf_printf(out, "{\"now_ms\":%lld,\"total\":%zu,\"devices\":[", (long long)now_ms,
			  n))
		goto out;
	for (size_t i = 0; i < n && i < (size_t)q->limit; i++)
		if ((i && rn_buf_append_str(out, ",")) || render_device_row(v[i].p, v[i].st, out))
			goto out;
	rc = rn_buf_append_str(out, "]}");
out:
	rn_free(v);
	return rc;
}

int rn_fleet_render_device(const struct rn_fleet *f, const char *device, size_t len, int64_t now_ms,
			   struct rn_buf *out)
{
	const struct rn_fleet_device *d = rn_strmap_get(&f->devices, device, len);
	int n = 0;
	if (!d)
		return RN_ENOTFOUND;
	if (rn_buf_append_str(out, "{\"device\":") || put_s(out, d->name) ||
	    rn_buf_append_str(out, ",\"report\":") ||
	    (d->report.len ? rn_buf_append(out, d->report.data, d->report.len)
			   : rn_buf_append_str(out, "null")) ||
	    rn_buf_append_str(out, ",\"invalid\":") || put_reasons(out, d->invalid) ||
	    rn_buf_append_str(out, ",\"streams\":["))
		return RN_ENOMEM;
	for (const struct rn_fleet_stream *s = d->streams; s; s = s->dnext)
		if ((n++ && rn_buf_append_str(out, ",")) ||
		    render_stream(s, rn_fleet_stream_states(f, s, now_ms), out))
			return RN_ENOMEM;
	if (rn_buf_append_str(out, "],\"history\":["))
		return RN_ENOMEM;
	for (size_t i = 0; i < d->hist_n; i++) {
		const struct summary *h =
			&d->hist[(d->hist_head + RN_FLEET_HISTORY - d->hist_n + i) %
				 RN_FLEET_HISTORY];
		if ((i && rn_buf_append_str(out, ",")) ||
		    rn_buf_printf(out, "{\"t_ms\":%lld,\"buffer_bytes\":", (long long)h->t_ms) ||
		    put_opt(out, h->buffer_bytes) ||
		    rn_buf_append_str(out, ",\"buffer_records\":") ||
		    put_opt(out, h->buffer_records) ||
		    rn_buf_append_str(out, ",\"oldest_unsent_age_s\":") ||
		    put_opt(out, h->oldest_unsent_age_s) || rn_buf_append_str(out, ",\"drops\":") ||
		    put_opt(out, h->drops) || rn_buf_append_str(out, ",\"expired\":") ||
		    put_opt(out, h->expired) || rn_buf_append_str(out, ",\"dead_letters\":") ||
		    put_opt(out, h->dead_letters) ||
		    rn_buf_printf(out, ",\"records\":%llu,\"bytes\":%llu}",
				  (unsigned long long)h->records, (unsigned long long)h->bytes))
			return RN_ENOMEM;
	}
	return rn_buf_append_str(out, "]}");
}

/* ---- system table rows ---- */

static int put_raw_or_null(struct rn_buf *b, const struct rn_buf *j)
{
	/* a JSON text kept as a string column */
	return j->len ? rn_json_put_str(b, j->data, j->len) : rn_buf_append_str(b, "null");
}

int rn_fleet_agents_row(const struct rn_fleet_stream *fs, const struct rn_fleet_health *h,
			int64_t now_ms, struct rn_buf *out)
{
	int ok = h->reject == RN_FLEET_OK;
	if (rn_buf_printf(out, "{\"ts\":%lld,\"device\":", (long long)now_ms * 1000) ||
	    put_s(out, ok ? h->device : NULL) || rn_buf_append_str(out, ",\"stream_id\":") ||
	    put_s(out, fs->id) || rn_buf_append_str(out, ",\"table_name\":") ||
	    put_s(out, fs->table) || rn_buf_append_str(out, ",\"principal\":") ||
	    put_s(out, fs->principal))
		return RN_ENOMEM;
	if (ok) {
		if (rn_buf_append_str(out, ",\"version\":") || put_s(out, h->version) ||
		    rn_buf_append_str(out, ",\"config_sha256\":") || put_s(out, h->config_sha256) ||
		    rn_buf_append_str(out, ",\"boot_id\":") || put_s(out, h->boot_id) ||
		    rn_buf_append_str(out, ",\"uptime_s\":") || put_opt(out, h->uptime_s) ||
		    rn_buf_append_str(out, ",\"agent_clock_offset_ms\":") ||
		    (h->sent_at_ms >= 0
			     ? rn_buf_printf(out, "%lld", (long long)(h->sent_at_ms - now_ms))
			     : rn_buf_append_str(out, "null")) ||
		    rn_buf_append_str(out, ",\"clock_synced\":") ||
		    rn_buf_append_str(out, h->clock_synced < 0 ? "null"
					   : h->clock_synced   ? "true"
							       : "false") ||
		    rn_buf_append_str(out, ",\"buffer_bytes\":") || put_opt(out, h->buffer_bytes) ||
		    rn_buf_append_str(out, ",\"buffer_records\":") ||
		    put_opt(out, h->buffer_records) ||
		    rn_buf_append_str(out, ",\"buffer_max_bytes\":") ||
		    put_opt(out, h->buffer_max_bytes) ||
		    rn_buf_append_str(out, ",\"oldest_unsent_age_s\":") ||
		    put_opt(out, h->oldest_unsent_age_s) ||
		    rn_buf_append_str(out, ",\"drops_total\":") || put_opt(out, h->drops_total) ||
		    rn_buf_append_str(out, ",\"drops_json\":") ||
		    put_raw_or_null(out, &h->drops_json) ||
		    rn_buf_append_str(out, ",\"expired\":") || put_opt(out, h->expired) ||
		    rn_buf_append_str(out, ",\"dead_letters\":") || put_opt(out, h->dead_letters) ||
		    rn_buf_append_str(out, ",\"sources_json\":") ||
		    put_raw_or_null(out, &h->sources_json))
			return RN_ENOMEM;
	}
	if (rn_buf_append_str(out, ",\"invalid\":") || put_s(out, h->invalid) ||
	    rn_buf_append_str(out, "}"))
		return RN_ENOMEM;
	return 0;
}

static int states_text(struct rn_buf *b, int st)
{
	int n = 0;
	if (!st)
		return rn_buf_append_str(b, "\"\"");
	if (rn_buf_append_str(b, "\""))
		return RN_ENOMEM;
	for (int i = 0; i < RN_FLEET_NSTATES; i++)
		if ((st & (1 << i)) &&
		    ((n++ && rn_buf_append_str(b, ",")) || rn_buf_append_str(b, state_names[i])))
			return RN_ENOMEM;
	return rn_buf_append_str(b, "\"");
}

static int put_ts(struct rn_buf *b, int64_t ms)
{
	return ms > 0 ? rn_buf_printf(b, "%lld", (long long)ms * 1000)
		      : rn_buf_append_str(b, "null");
}

int rn_fleet_streams_rows(const struct rn_fleet *f, int64_t now_ms, size_t *next, size_t cap,
			  struct rn_buf *out, size_t *n)
{
	struct rn_buf row = {0};
	size_t before = out->len, k = 0, i = 0;
	int rc = RN_ENOMEM;
	const struct rn_fleet_stream *fs = f->streams;
	*n = 0;
	while (fs && i < *next) { /* the list holds no index: walked to the cursor */
		fs = fs->next;
		i++;
	}
	for (; fs; fs = fs->next) {
		rn_buf_reset(&row);
		if (rn_buf_printf(&row, "{\"ts\":%lld,\"stream_id\":", (long long)now_ms * 1000) ||
		    put_s(&row, fs->id) || rn_buf_append_str(&row, ",\"table_name\":") ||
		    put_s(&row, fs->table) || rn_buf_append_str(&row, ",\"principal\":") ||
		    put_s(&row, fs->principal) || rn_buf_append_str(&row, ",\"device\":") ||
		    put_s(&row, fs->dev ? fs->dev->name : NULL) ||
		    rn_buf_printf(&row, ",\"kind\":\"%s\",\"connected\":%s,\"peer\":",
				  rn_fleet_kind_name(fs->kind), fs->connected ? "true" : "false") ||
		    put_s(&row, fs->peer) || rn_buf_append_str(&row, ",\"last_batch_ts\":") ||
		    put_ts(&row, fs->last_batch_ms) ||
		    rn_buf_append_str(&row, ",\"last_report_ts\":") ||
		    put_ts(&row, fs->last_report_ms) ||
		    rn_buf_printf(&row, ",\"records\":%llu,\"bytes\":%llu,\"batches\":%llu",
				  (unsigned long long)fs->records, (unsigned long long)fs->bytes,
				  (unsigned long long)fs->batches) ||
		    rn_buf_append_str(&row, ",\"acked_offset\":") ||
		    put_opt(&row, fs->acked_offset) ||
		    rn_buf_append_str(&row, ",\"committed_offset\":") ||
		    put_opt(&row, fs->committed_offset) ||
		    rn_buf_printf(&row,
				  ",\"pushbacks\":%llu,\"clock_corrections\":%llu,"
				  "\"refused_calls\":%llu,\"states\":",
				  (unsigned long long)fs->pushbacks,
				  (unsigned long long)fs->clock_corrections,
				  (unsigned long long)fs->refused_calls) ||
		    states_text(&row, rn_fleet_stream_states(f, fs, now_ms)) ||
		    rn_buf_append_str(&row, "}"))
			goto out;
		/* its record: tag, length (a varint, at most 10 bytes) and the row */
		if (out->len - before + 11 + row.len > cap) {
			if (!k) {
				rc = RN_ETOOBIG;
				goto out;
			}
			break;
		}
		if (rn_pb_put_bytes(out, 1, row.data, row.len))
			goto out;
		k++;
	}
	rc = 0;
	*n = k;
	*next += k;
out:
	if (rc)
		out->len = before;
	rn_buf_free(&row);
	return rc;
}
