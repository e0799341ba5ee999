/*
 * The materializer; see mat.h. Per table it keeps an open Parquet writer with the default
 * envelope schema, the streams that have rows in it (with their last offset, which becomes
 * the txn version at commit), and at most one finished-but-uncommitted file to retry after a
 * failed commit. Records are decoded from the received bytes into slices and put straight
 * into the column builders.
 */
#include "mat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delta.h"
#include "parquet.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_utf8.h"

enum {
	C_DEVICE, C_SOURCE, C_TOPIC, C_EVENT_TIME, C_RECEIVE_TIME, C_STREAM, C_SEQ, C_PAYLOAD,
	C_PAYLOAD_RAW, C_ATTRS, C_FLAGS, C_COUNT
};

static const struct rn_pq_col envelope_cols[C_COUNT] = {
	[C_DEVICE] = {"device_id", RN_PQ_STRING, 1},
	[C_SOURCE] = {"source", RN_PQ_STRING, 1},
	[C_TOPIC] = {"topic", RN_PQ_STRING, 1},
	[C_EVENT_TIME] = {"event_time", RN_PQ_TIMESTAMP, 1},
	[C_RECEIVE_TIME] = {"receive_time", RN_PQ_TIMESTAMP, 1},
	[C_STREAM] = {"stream_id", RN_PQ_STRING, 0},
	[C_SEQ] = {"seq", RN_PQ_INT64, 1},
	[C_PAYLOAD] = {"payload", RN_PQ_STRING, 1},
	[C_PAYLOAD_RAW] = {"payload_raw", RN_PQ_BINARY, 1},
	[C_ATTRS] = {"attributes", RN_PQ_STRING, 1},
	[C_FLAGS] = {"flags", RN_PQ_INT32, 1},
};

static const char *delta_type(enum rn_pq_type t)
{
	switch (t) {
	case RN_PQ_STRING: return "string";
	case RN_PQ_BINARY: return "binary";
	case RN_PQ_INT64: return "long";
	case RN_PQ_INT32: return "integer";
	case RN_PQ_TIMESTAMP: return "timestamp";
	case RN_PQ_DOUBLE: return "double";
	case RN_PQ_BOOL: return "boolean";
	}
	return "string";
}

struct pending_stream {
	char *id;
	int64_t last; /* highest offset added and not yet committed */
};

struct mat_table {
	char *name;
	char *dir;
	struct rn_delta *delta;
	struct rn_pq_writer *pq;
	struct pending_stream *streams; /* streams with rows in the open writer */
	size_t nstreams, capstreams;
	size_t pending_bytes;
	/* a finished file whose commit failed; retried before anything else */
	struct rn_buf retry_file;
	char *retry_stats;
	struct pending_stream *retry_streams;
	size_t retry_nstreams;
};

struct rn_mat {
	char *root;
	char *created_by;
	struct mat_table **tables;
	size_t ntables, captables;
	size_t pending_bytes;
	struct rn_buf scratch; /* attributes JSON */
	struct rn_buf file;
	char err[512];
};

static int fail(struct rn_mat *m, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rn_mat *m, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return rc;
}

int rn_table_name_check(const char *name)
{
	int parts = 0;
	const char *p = name;

	if (!name || !*name)
		return RN_EINVAL;
	for (;;) {
		const char *s = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			p++;
		if (p == s || p - s > 128 || *s == '-' || *s == '_')
			return RN_EINVAL;
		parts++;
		if (*p == 0)
			break;
		if (*p != '.' || parts == 3)
			return RN_EINVAL;
		p++;
	}
	return 0;
}

static char *schema_json(void)
{
	struct rn_buf b = {0};
	rn_buf_append_str(&b, "{\"type\":\"struct\",\"fields\":[");
	for (size_t i = 0; i < C_COUNT; i++)
		rn_buf_printf(&b, "%s{\"name\":\"%s\",\"type\":\"%s\",\"nullable\":%s,\"metadata\":{}}",
			      i ? "," : "", envelope_cols[i].name, delta_type(envelope_cols[i].type),
			      envelope_cols[i].optional ? "true" : "false");
	if (rn_buf_append_str(&b, "]}") || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

int rn_mat_create(struct rn_mat **out, const struct rn_mat_options *opt)
{
	struct rn_mat *m;
	*out = NULL;
	if (!opt || !opt->data_root)
		return RN_EINVAL;
	if (!(m = rn_calloc(1, sizeof(*m))))
		return RN_ENOMEM;
	m->root = rn_strdup(opt->data_root);
	if (opt->created_by)
		m->created_by = rn_strdup(opt->created_by);
	if (!m->root || (opt->created_by && !m->created_by)) {
		rn_mat_destroy(m);
		return RN_ENOMEM;
	}
	*out = m;
	return 0;
}

static void free_streams(struct pending_stream *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rn_free(s[i].id);
	rn_free(s);
}

static void table_free(struct mat_table *t)
{
	if (!t)
		return;
	rn_delta_close(t->delta);
	rn_pq_writer_destroy(t->pq);
	free_streams(t->streams, t->nstreams);
	free_streams(t->retry_streams, t->retry_nstreams);
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	rn_free(t->name);
	rn_free(t->dir);
	rn_free(t);
}

void rn_mat_destroy(struct rn_mat *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ntables; i++)
		table_free(m->tables[i]);
	rn_free(m->tables);
	rn_buf_free(&m->scratch);
	rn_buf_free(&m->file);
	rn_free(m->root);
	rn_free(m->created_by);
	rn_free(m);
}

static char *table_dir(const struct rn_mat *m, const char *name)
{
	struct rn_buf b = {0};
	rn_buf_printf(&b, "%s/", m->root);
	for (const char *p = name; *p; p++)
		rn_buf_append_u8(&b, *p == '.' ? '/' : (uint8_t)*p);
	if (rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* Finds the table, opening (and with create, creating) it on first use. */
static int get_table(struct rn_mat *m, const char *name, int create, struct mat_table **out)
{
	struct mat_table *t;
	char *schema = NULL;
	int rc;

	*out = NULL;
	if (rn_table_name_check(name))
		return fail(m, RN_EINVAL, "invalid table name");
	for (size_t i = 0; i < m->ntables; i++) {
		if (!strcmp(m->tables[i]->name, name)) {
			*out = m->tables[i];
			return 0;
		}
	}
	if (m->ntables == m->captables) {
		size_t nc = m->captables ? m->captables * 2 : 8;
		struct mat_table **tt = rn_reallocarray(m->tables, nc, sizeof(*tt));
		if (!tt)
			return RN_ENOMEM;
		m->tables = tt;
		m->captables = nc;
	}
	if (!(t = rn_calloc(1, sizeof(*t))) || !(t->name = rn_strdup(name)) ||
	    !(t->dir = table_dir(m, name)) || (create && !(schema = schema_json()))) {
		table_free(t);
		return RN_ENOMEM;
	}
	rc = rn_delta_open(&t->delta, t->dir, schema, NULL);
	rn_free(schema);
	if (rc) {
		if (rc != RN_ENOTFOUND)
			fail(m, rc, "table %s: cannot open its Delta log", name);
		else
			fail(m, rc, "table %s does not exist", name);
		table_free(t);
		return rc;
	}
	struct rn_pq_options po = {.created_by = m->created_by};
	if ((rc = rn_pq_writer_create(&t->pq, envelope_cols, C_COUNT, &po))) {
		table_free(t);
		return rc;
	}
	m->tables[m->ntables++] = t;
	*out = t;
	return 0;
}

int rn_mat_ensure_table(struct rn_mat *m, const char *table)
{
	struct mat_table *t;
	return get_table(m, table, 1, &t);
}

int rn_mat_table_exists(struct rn_mat *m, const char *table)
{
	char *dir;
	int r;
	if (rn_table_name_check(table))
		return RN_EINVAL;
	for (size_t i = 0; i < m->ntables; i++)
		if (!strcmp(m->tables[i]->name, table))
			return 1;
	if (!(dir = table_dir(m, table)))
		return RN_ENOMEM;
	r = rn_delta_exists(dir);
	rn_free(dir);
	return r;
}

static struct pending_stream *find_stream(struct pending_stream *s, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i].id, id))
			return &s[i];
	return NULL;
}

/* The zero-copy view of one runnel.v1.Record. */
struct rec {
	struct rn_pb_field device, source, topic, payload;
	int has_device, has_source, has_topic, has_payload, has_event, has_receive, has_seq;
	int64_t event, receive;
	uint64_t seq;
	uint32_t flags;
	const uint8_t *attrs_start; /* first attribute field, for a second pass */
	size_t nattrs;
};

static const char *decode_record(const uint8_t *p, size_t len, struct rec *r)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int rc;

	memset(r, 0, sizeof(*r));
	rn_pb_reader_init(&rd, p, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1) {
		switch (f.num) {
		case 1: case 2: case 3: case 7: {
			if (f.wt != RN_PB_LEN)
				return "wrong wire type for a text field";
			if (f.num != 7 && !rn_utf8_valid(f.ptr, f.len))
				return "device_id, source or topic is not UTF-8";
			if (f.num == 1) { r->device = f; r->has_device = 1; }
			if (f.num == 2) { r->source = f; r->has_source = 1; }
			if (f.num == 3) { r->topic = f; r->has_topic = 1; }
			if (f.num == 7) { r->payload = f; r->has_payload = 1; }
			break;
		}
		case 4: case 5: case 6: case 9:
			if (f.wt != RN_PB_VARINT)
				return "wrong wire type for a number field";
			if (f.num == 4) { r->event = (int64_t)f.u; r->has_event = 1; }
			if (f.num == 5) { r->receive = (int64_t)f.u; r->has_receive = 1; }
			if (f.num == 6) { r->seq = f.u; r->has_seq = 1; }
			if (f.num == 9) r->flags = (uint32_t)f.u;
			break;
		case 8: {
			struct rn_pb_reader ar;
			struct rn_pb_field af;
			if (f.wt != RN_PB_LEN)
				return "wrong wire type for attributes";
			rn_pb_reader_init(&ar, f.ptr, f.len);
			while ((rc = rn_pb_next(&ar, &af)) == 1)
				if ((af.num == 1 || af.num == 2) &&
				    (af.wt != RN_PB_LEN || !rn_utf8_valid(af.ptr, af.len)))
					return "attribute key or value is not UTF-8 text";
			if (rc < 0)
				return "malformed attribute";
			r->nattrs++;
			break;
		}
		default:
			break; /* unknown fields are skipped, as protobuf requires */
		}
	}
	if (rc < 0)
		return "malformed protobuf";
	/* microseconds from year 1 to 9999: what every reader can represent */
	if (r->has_event && (r->event < -62135596800000000LL || r->event > 253402300799999999LL))
		return "event_time out of range";
	if (r->has_receive &&
	    (r->receive < -62135596800000000LL || r->receive > 253402300799999999LL))
		return "receive_time out of range";
	return NULL;
}

static int attrs_json(struct rn_buf *b, const uint8_t *p, size_t len)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int first = 1, rc = 0;

	rn_buf_reset(b);
	rn_buf_append_u8(b, '{');
	rn_pb_reader_init(&rd, p, len);
	while (!rc && rn_pb_next(&rd, &f) == 1) {
		struct rn_pb_reader ar;
		struct rn_pb_field af;
		const uint8_t *k = (const uint8_t *)"", *v = (const uint8_t *)"";
		size_t kl = 0, vl = 0;
		if (f.num != 8)
			continue;
		rn_pb_reader_init(&ar, f.ptr, f.len);
		while (rn_pb_next(&ar, &af) == 1) {
			if (af.num == 1) { k = af.ptr; kl = af.len; }
			if (af.num == 2) { v = af.ptr; vl = af.len; }
		}
		if (!first)
			rn_buf_append_u8(b, ',');
		first = 0;
		rn_json_put_str(b, k, kl);
		rn_buf_append_u8(b, ':');
		rc = rn_json_put_str(b, v, vl);
	}
	return rc ? rc : rn_buf_append_u8(b, '}');
}

static int put_str(struct rn_pq_writer *w, size_t col, const struct rn_pb_field *f)
{
	return rn_pq_put_bytes(w, col, f->ptr, f->len);
}

static int add_record(struct rn_mat *m, struct mat_table *t, const char *stream_id,
		      int record_type, const uint8_t *p, size_t len, int64_t now)
{
	struct rn_pq_writer *w = t->pq;
	const char *why = NULL;
	struct rec r;
	int rc = 0;

	if (record_type == RN_MAT_JSON) {
		if (!rn_utf8_valid(p, len))
			why = "JSON record is not UTF-8";
		else
			rc = rn_pq_put_bytes(w, C_PAYLOAD, p, len);
		if (!why && !rc)
			rc = rn_pq_put_i64(w, C_RECEIVE_TIME, now);
	} else if (!(why = decode_record(p, len, &r))) {
		if (r.has_device) rc = rc ? rc : put_str(w, C_DEVICE, &r.device);
		if (r.has_source) rc = rc ? rc : put_str(w, C_SOURCE, &r.source);
		if (r.has_topic) rc = rc ? rc : put_str(w, C_TOPIC, &r.topic);
		if (r.has_event) rc = rc ? rc : rn_pq_put_i64(w, C_EVENT_TIME, r.event);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, r.has_receive ? r.receive : now);
		if (r.has_seq) rc = rc ? rc : rn_pq_put_i64(w, C_SEQ, (int64_t)r.seq);
		if (r.has_payload) {
			if (rn_utf8_valid(r.payload.ptr, r.payload.len))
				rc = rc ? rc : put_str(w, C_PAYLOAD, &r.payload);
			else
				rc = rc ? rc : put_str(w, C_PAYLOAD_RAW, &r.payload);
		}
		if (r.nattrs && !rc && !(rc = attrs_json(&m->scratch, p, len)))
			rc = rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i32(w, C_FLAGS, (int32_t)r.flags);
	}
	if (why) {
		/* Keep what could not be decoded, with the reason, as a row of its own. */
		rn_buf_reset(&m->scratch);
		rn_buf_append_str(&m->scratch, "{\"runnel.error\":");
		rn_json_put_str(&m->scratch, why, strlen(why));
		rn_buf_append_u8(&m->scratch, '}');
		rc = rn_pq_put_bytes(w, C_PAYLOAD_RAW, p, len);
		rc = rc ? rc : rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, now);
		rn_log_warn("mat", "table %s stream %s: undecodable record kept in payload_raw: %s",
			    t->name, stream_id, why);
	}
	rc = rc ? rc : rn_pq_put_bytes(w, C_STREAM, stream_id, strlen(stream_id));
	return rc ? rc : rn_pq_row_end(w);
}

int rn_mat_add(struct rn_mat *m, const char *table, const char *stream_id, int64_t offset,
	       int record_type, const uint8_t *batch, size_t len)
{
	struct mat_table *t;
	struct pending_stream *ps;
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int64_t now = rn_now_us();
	int rc;

	if ((rc = get_table(m, table, 0, &t)))
		return rc;
	if (offset <= rn_delta_txn(t->delta, stream_id))
		return 0; /* already in the table */
	ps = find_stream(t->streams, t->nstreams, stream_id);
	if ((ps && offset <= ps->last))
		return 0; /* already pending */
	struct pending_stream *rs = find_stream(t->retry_streams, t->retry_nstreams, stream_id);
	if (rs && offset <= rs->last)
		return 0;
	/* validate the list before touching the builders */
	rn_pb_reader_init(&rd, batch, len);
	while ((rc = rn_pb_next(&rd, &f)) == 1)
		if (f.num != 1 || f.wt != RN_PB_LEN)
			return fail(m, RN_EINVAL, "batch holds something other than records");
	if (rc < 0)
		return fail(m, RN_EINVAL, "malformed record batch");
	rn_pb_reader_init(&rd, batch, len);
	while (rn_pb_next(&rd, &f) == 1)
		if ((rc = add_record(m, t, stream_id, record_type, f.ptr, f.len, now)))
			return fail(m, rc, "table %s: cannot add record: %s", table,
				    rn_strerror(rc));
	if (!ps) {
		if (t->nstreams == t->capstreams) {
			size_t nc = t->capstreams ? t->capstreams * 2 : 8;
			struct pending_stream *s = rn_reallocarray(t->streams, nc, sizeof(*s));
			if (!s)
				return RN_ENOMEM;
			t->streams = s;
			t->capstreams = nc;
		}
		ps = &t->streams[t->nstreams];
		if (!(ps->id = rn_strdup(stream_id)))
			return RN_ENOMEM;
		t->nstreams++;
	}
	ps->last = offset;
	t->pending_bytes += len;
	m->pending_bytes += len;
	return 0;
}

static void put_ts(struct rn_buf *b, int64_t us)
{
	time_t s = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	int64_t ms = (us - (int64_t)s * 1000000) / 1000;
	struct tm tm;
	char tmp[40];
	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	rn_buf_printf(b, "\"%s.%03lldZ\"", tmp, (long long)ms);
}

/* Delta add.stats for the file just finished by t->pq. */
static char *stats_json(struct mat_table *t, size_t rows)
{
	struct rn_buf b = {0};
	struct rn_pq_colstats st;
	const char *sep;

	rn_buf_printf(&b, "{\"numRecords\":%zu", rows);
	for (int pass = 0; pass < 3; pass++) {
		rn_buf_append_str(&b, pass == 0 ? ",\"minValues\":{" : pass == 1 ? ",\"maxValues\":{"
										   : ",\"nullCount\":{");
		sep = "";
		for (size_t i = 0; i < C_COUNT; i++) {
			rn_pq_col_stats(t->pq, i, &st);
			if (pass == 2) {
				rn_buf_printf(&b, "%s\"%s\":%lld", sep, envelope_cols[i].name,
					      (long long)st.nulls);
				sep = ",";
				continue;
			}
			if (pass == 0 ? !st.has_min : !st.has_max)
				continue;
			rn_buf_printf(&b, "%s\"%s\":", sep, envelope_cols[i].name);
			sep = ",";
			switch (envelope_cols[i].type) {
			case RN_PQ_STRING:
				if (pass == 0)
					rn_json_put_str(&b, st.min_s, st.min_len);
				else
					rn_json_put_str(&b, st.max_s, st.max_len);
				break;
			case RN_PQ_TIMESTAMP:
				put_ts(&b, pass == 0 ? st.min_i : st.max_i);
				break;
			case RN_PQ_DOUBLE:
				rn_buf_printf(&b, "%.17g", pass == 0 ? st.min_d : st.max_d);
				break;
			default:
				rn_buf_printf(&b, "%lld", (long long)(pass == 0 ? st.min_i : st.max_i));
				break;
			}
		}
		rn_buf_append_u8(&b, '}');
	}
	if (rn_buf_append_str(&b, "}") || rn_buf_append_u8(&b, 0)) {
		rn_buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* Writes and commits t's retry file. 0 on success or duplicate. */
static int commit_retry(struct rn_mat *m, struct mat_table *t)
{
	char name[256];
	int64_t mtime, version;
	struct rn_delta_txn *txns;
	int rc;

	if (!(txns = rn_calloc(t->retry_nstreams ? t->retry_nstreams : 1, sizeof(*txns))))
		return RN_ENOMEM;
	for (size_t i = 0; i < t->retry_nstreams; i++) {
		txns[i].app_id = t->retry_streams[i].id;
		txns[i].version = t->retry_streams[i].last;
	}
	rc = rn_delta_write_file(t->delta, t->retry_file.data, t->retry_file.len, name,
				 sizeof(name), &mtime);
	if (!rc) {
		struct rn_delta_add add = {name, (int64_t)t->retry_file.len, mtime, t->retry_stats};
		rc = rn_delta_commit(t->delta, &add, 1, txns, t->retry_nstreams, &version);
		if (rc == RN_EEXIST) {
			rn_log_warn("mat", "table %s: batch already committed by another writer; "
				    "%s is an orphan", t->name, name);
			rc = 0;
		} else if (!rc) {
			rn_log_debug("mat", "table %s: committed version %lld", t->name,
				     (long long)version);
		}
	}
	rn_free(txns);
	if (rc)
		return fail(m, rc, "table %s: commit failed: %s", t->name, rn_delta_errmsg(t->delta));
	rn_buf_free(&t->retry_file);
	rn_free(t->retry_stats);
	t->retry_stats = NULL;
	free_streams(t->retry_streams, t->retry_nstreams);
	t->retry_streams = NULL;
	t->retry_nstreams = 0;
	return 0;
}

int rn_mat_flush(struct rn_mat *m)
{
	int first_rc = 0;
	for (size_t i = 0; i < m->ntables; i++) {
		struct mat_table *t = m->tables[i];
		int rc;
		if (t->retry_nstreams && (rc = commit_retry(m, t))) {
			first_rc = first_rc ? first_rc : rc;
			continue;
		}
		size_t rows = rn_pq_rows(t->pq);
		if (rows == 0)
			continue;
		if ((rc = rn_pq_finish(t->pq, &t->retry_file))) {
			first_rc = first_rc ? first_rc : fail(m, rc, "table %s: parquet: %s", t->name,
							      rn_strerror(rc));
			continue;
		}
		t->retry_stats = stats_json(t, rows);
		t->retry_streams = t->streams;
		t->retry_nstreams = t->nstreams;
		t->streams = NULL;
		t->nstreams = t->capstreams = 0;
		m->pending_bytes -= t->pending_bytes;
		t->pending_bytes = 0;
		if ((rc = commit_retry(m, t)))
			first_rc = first_rc ? first_rc : rc;
	}
	return first_rc;
}

size_t rn_mat_pending_bytes(const struct rn_mat *m)
{
	return m->pending_bytes;
}

int rn_mat_committed(struct rn_mat *m, const char *table, const char *stream_id,
		     int64_t *offset)
{
	struct mat_table *t;
	int rc;
	*offset = -1;
	if ((rc = get_table(m, table, 0, &t)))
		return rc == RN_ENOTFOUND ? 0 : rc;
	if ((rc = rn_delta_refresh(t->delta)))
		return fail(m, rc, "table %s: %s", table, rn_delta_errmsg(t->delta));
	*offset = rn_delta_txn(t->delta, stream_id);
	return 0;
}

const char *rn_mat_errmsg(const struct rn_mat *m)
{
	return m->err;
}
