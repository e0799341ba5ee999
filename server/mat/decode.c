/*
 * One record into one row. Envelope tables: a runnel.v1.Record (or a JSON record) is read
 * as zero-copy slices (decode_record) and put straight into the column builders; one that
 * does not decode is kept raw with the reason. Typed tables: the record's JSON (or its own
 * PROTO message, through its stream's plan) is decoded by jsonrow/protorow into a sink
 * (pq_sink) that writes the columns, fills those the payload lacks from the envelope, and
 * for partitioned tables tapes the writer calls while capturing the partition values, then
 * replays them into the partition's writer (route_row). A record that does not fit a typed
 * table says why, and the caller makes it a dead letter (an envelope row with the reason,
 * its batch offset and index: struct dead_ref). Clock correction (clock_fix) happens here.
 * A row that fails part way is aborted; the batch's earlier rows stay (the batch-level
 * undo is stage.c's). Loop thread only; no I/O.
 *
 * Partitioned typed tables keep one Parquet writer per partition value tuple instead (their
 * columns minus the partition columns). A record's partition values are only known once it
 * is decoded, and its columns come in schema order, so the sink records the writer calls of
 * one record on a small tape (ops with column indexes and values, bytes copied) while it
 * captures the partition columns' values; when the record decoded, the tape is replayed
 * into its partition's writer. One decode, one memcpy of the values: cheaper than decoding
 * twice, and the envelope fill-ins (k_missing) need no second implementation. A flush
 * finishes every partition's file, writes them into their Hive directories and commits all
 * of them in one commit with the txns (flush.c); files finished early (too many open
 * partitions) wait in memory for that commit.
 */
#include "mat_int.h"

#include <stdio.h>
#include <string.h>

#include "jsonrow.h"
#include "partition.h"
#include "protorow.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_utf8.h"

/* The zero-copy view of one runnel.v1.Record. */
struct rec {
	struct rn_pb_field device, source, topic, payload;
	int has_device, has_source, has_topic, has_payload, has_event, has_receive, has_seq;
	int64_t event, receive;
	uint64_t seq;
	int has_boot, corrected; /* boot_time_us and boot_id both present; clock_fix applied */
	uint64_t boot_us;
	struct rn_pb_field boot_id;
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
		case 1:
		case 2:
		case 3:
		case 7:
		case 11: {
			if (f.wt != RN_PB_LEN)
				return "wrong wire type for a text field";
			if (f.num != 7 && !rn_utf8_valid(f.ptr, f.len))
				return "device_id, source, topic or boot_id is not UTF-8";
			if (f.num == 11) {
				r->boot_id = f;
				r->has_boot |= 2;
			}
			if (f.num == 1) {
				r->device = f;
				r->has_device = 1;
			}
			if (f.num == 2) {
				r->source = f;
				r->has_source = 1;
			}
			if (f.num == 3) {
				r->topic = f;
				r->has_topic = 1;
			}
			if (f.num == 7) {
				r->payload = f;
				r->has_payload = 1;
			}
			break;
		}
		case 4:
		case 5:
		case 6:
		case 9:
		case 10:
			if (f.wt != RN_PB_VARINT)
				return "wrong wire type for a number field";
			if (f.num == 10) {
				r->boot_us = f.u;
				r->has_boot |= 1;
			}
			if (f.num == 4) {
				r->event = (int64_t)f.u;
				r->has_event = 1;
			}
			if (f.num == 5) {
				r->receive = (int64_t)f.u;
				r->has_receive = 1;
			}
			if (f.num == 6) {
				r->seq = f.u;
				r->has_seq = 1;
			}
			if (f.num == 9)
				r->flags = (uint32_t)f.u;
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
		default: break; /* unknown fields are skipped, as protobuf requires */
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
	r->has_boot = r->has_boot == 3;
	return NULL;
}

/*
 * Places a record made before the device's clock was set on the server's clock, when it
 * carries boot_time_us and the boot id of the stream's reference (mat.h, rn_mat_add). The
 * event time moves by the same amount only when it is itself before RN_CLOCK_TRUSTED_US: a
 * valid one (from the payload, e.g. GPS) is kept. Nothing changes if the result would be
 * out of range.
 */
static void clock_fix(struct rec *r, const struct rn_mat_clock *clk)
{
	const int64_t lim = (int64_t)1 << 62;
	int64_t recv, ev = r->event;
	if (!clk || !r->has_boot || r->boot_us >= (uint64_t)lim || clk->delta_us <= -lim ||
	    clk->delta_us >= lim || r->boot_id.len != strlen(clk->boot_id) ||
	    memcmp(r->boot_id.ptr, clk->boot_id, r->boot_id.len))
		return;
	recv = (int64_t)r->boot_us + clk->delta_us;
	if (recv < 0 || recv > 253402300799999999LL)
		return;
	if (r->has_event && r->event < RN_CLOCK_TRUSTED_US) {
		ev = r->has_receive ? r->event + (recv - r->receive) : recv;
		if (ev < -62135596800000000LL || ev > 253402300799999999LL)
			return;
	}
	r->event = ev;
	r->receive = recv;
	r->has_receive = 1;
	r->corrected = 1;
}

static int put_dead_ref(struct rn_buf *b, const struct dead_ref *d, const char *reason)
{
	int rc = rn_buf_append_str(b, "\"runnel.error\":");
	rc = rc ? rc : rn_json_put_str(b, reason, strlen(reason));
	if (d && !rc)
		rc = rn_buf_printf(b, ",\"runnel.offset\":\"%lld\",\"runnel.record\":\"%zu\"",
				   (long long)d->offset, d->index);
	return rc;
}

/* The record's attributes as a JSON object (p may be NULL: none), with the dead-letter
 * attributes first when dead is not NULL. */
static int attrs_json(struct rn_buf *b, const uint8_t *p, size_t len, const struct dead_ref *dead)
{
	struct rn_pb_reader rd;
	struct rn_pb_field f;
	int first = 1, rc = 0;

	rn_buf_reset(b);
	rc = rn_buf_append_u8(b, '{');
	if (dead && !rc) {
		rc = put_dead_ref(b, dead, dead->reason);
		first = 0;
	}
	rn_pb_reader_init(&rd, p, p ? len : 0);
	while (!rc && rn_pb_next(&rd, &f) == 1) {
		struct rn_pb_reader ar;
		struct rn_pb_field af;
		const uint8_t *k = (const uint8_t *)"", *v = (const uint8_t *)"";
		size_t kl = 0, vl = 0;
		if (f.num != 8)
			continue;
		rn_pb_reader_init(&ar, f.ptr, f.len);
		while (rn_pb_next(&ar, &af) == 1) {
			if (af.num == 1) {
				k = af.ptr;
				kl = af.len;
			}
			if (af.num == 2) {
				v = af.ptr;
				vl = af.len;
			}
		}
		if (!first)
			rc = rn_buf_append_u8(b, ',');
		first = 0;
		rc = rc ? rc : rn_json_put_str(b, k, kl);
		rc = rc ? rc : rn_buf_append_u8(b, ':');
		rc = rc ? rc : rn_json_put_str(b, v, vl);
	}
	return rc ? rc : rn_buf_append_u8(b, '}');
}

static int put_str(struct rn_pq_writer *w, size_t col, const struct rn_pb_field *f)
{
	return rn_pq_put_bytes(w, col, f->ptr, f->len);
}

/*
 * One row of an envelope table. `reason` != NULL makes it a dead letter of a typed table:
 * the record as received (decoded as far as it goes) with the reason among its attributes.
 * A record that does not decode is kept raw, and *undecodable (not NULL) says why.
 */
/* The latest dead letters of a dead-letter table, for the fleet API (memory: one ring of
 * RN_MAT_DEAD_LATEST per such table, made at its first row; none when out of memory). */
static void keep_dead_sample(struct mat_table *t, const uint8_t *p, size_t len, const char *why)
{
	if (!t->dead_latest &&
	    !(t->dead_latest = rn_calloc(RN_MAT_DEAD_LATEST, sizeof(*t->dead_latest))))
		return;
	struct rn_mat_dead_sample *d = &t->dead_latest[t->dead_head];
	d->t_ms = rn_now_us() / 1000;
	snprintf(d->reason, sizeof(d->reason), "%s", why);
	d->sample_len = len < sizeof(d->sample) ? len : sizeof(d->sample);
	memcpy(d->sample, p, d->sample_len);
	t->dead_head = (t->dead_head + 1) % RN_MAT_DEAD_LATEST;
	if (t->dead_n < RN_MAT_DEAD_LATEST)
		t->dead_n++;
}

int rn_mat__add_envelope_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			     int record_type, const uint8_t *p, size_t len, int64_t now,
			     const struct dead_ref *dead, const struct rn_mat_clock *clk,
			     const char **undecodable)
{
	int corrected = 0;
	const char *reason = dead ? dead->reason : NULL;
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
		if (!why && !rc && reason && !(rc = attrs_json(&m->scratch, NULL, 0, dead)))
			rc = rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
	} else if (!(why = decode_record(p, len, &r))) {
		clock_fix(&r, clk);
		corrected = r.corrected;
		if (r.has_device)
			rc = rc ? rc : put_str(w, C_DEVICE, &r.device);
		if (r.has_source)
			rc = rc ? rc : put_str(w, C_SOURCE, &r.source);
		if (r.has_topic)
			rc = rc ? rc : put_str(w, C_TOPIC, &r.topic);
		if (r.has_event)
			rc = rc ? rc : rn_pq_put_i64(w, C_EVENT_TIME, r.event);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, r.has_receive ? r.receive : now);
		if (r.has_seq)
			rc = rc ? rc : rn_pq_put_i64(w, C_SEQ, (int64_t)r.seq);
		if (r.has_payload) {
			if (rn_utf8_valid(r.payload.ptr, r.payload.len))
				rc = rc ? rc : put_str(w, C_PAYLOAD, &r.payload);
			else
				rc = rc ? rc : put_str(w, C_PAYLOAD_RAW, &r.payload);
		}
		if ((r.nattrs || reason) && !rc && !(rc = attrs_json(&m->scratch, p, len, dead)))
			rc = rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i32(w, C_FLAGS, (int32_t)r.flags);
	}
	if (why) {
		/* Keep what could not be decoded, with the reason, as a row of its own. */
		rn_buf_reset(&m->scratch);
		rc = rn_buf_append_u8(&m->scratch, '{');
		rc = rc ? rc : put_dead_ref(&m->scratch, dead, reason ? reason : why);
		rc = rc ? rc : rn_buf_append_u8(&m->scratch, '}');
		rc = rc ? rc : rn_pq_put_bytes(w, C_PAYLOAD_RAW, p, len);
		rc = rc ? rc : rn_pq_put_bytes(w, C_ATTRS, m->scratch.data, m->scratch.len);
		rc = rc ? rc : rn_pq_put_i64(w, C_RECEIVE_TIME, now);
		if (!reason && undecodable)
			*undecodable = why;
	}
	rc = rc ? rc : rn_pq_put_bytes(w, C_STREAM, stream_id, strlen(stream_id));
	if (!rc && t->env_ncols > C_CLOCK)
		rc = rn_pq_put_bool(w, C_CLOCK, corrected);
	if (rc) {
		rn_pq_row_abort(w);
		return rc;
	}
	if ((rc = rn_pq_row_end(w)) == 0 && corrected)
		m->clock_corrected++;
	if (!rc && reason)
		keep_dead_sample(t, p, len, reason);
	return rc;
}

/* Feeds decoded JSON values into a typed table's Parquet writer (jsonrow.h's sink), and
 * fills columns the payload lacks from the envelope. */
struct pq_sink {
	struct rn_pq_writer *w; /* direct writes; NULL when taping */
	struct mat_table *t;
	const struct rn_field *stack[RN_SCHEMA_MAX_DEPTH + 2];
	int depth;
	const struct rec *env; /* NULL for JSON records */
	const uint8_t *env_bytes;
	size_t env_len;
	const char *stream_id;
	const char *principal; /* who wrote the batch (rn_mat_add_as), or NULL */
	int64_t now;
	struct rn_buf *scratch;
	/* partitioned tables: the record's writer calls, and its partition values as text in
	 * keybuf (set = seen; a column never seen is null) */
	struct rn_buf *tape, *keybuf;
	struct keycap {
		int set, is_null;
		size_t off, len;
	} caps[RN_PART_MAX_COLUMNS];
};

/* The writer calls a sink makes, as taped. */
enum { OP_NULL, OP_I64, OP_I32, OP_BOOL, OP_F32, OP_F64, OP_BYTES, OP_DEC, OP_BEGIN, OP_END };

struct tape_op {
	int op;
	size_t col;
	int64_t i;
	double d;
	size_t n; /* bytes that follow (OP_BYTES, OP_DEC) */
};

static int pq_call(struct rn_pq_writer *w, const struct tape_op *o, const void *p)
{
	switch (o->op) {
	case OP_NULL: return rn_pq_put_null(w, o->col);
	case OP_I64: return rn_pq_put_i64(w, o->col, o->i);
	case OP_I32: return rn_pq_put_i32(w, o->col, (int32_t)o->i);
	case OP_BOOL: return rn_pq_put_bool(w, o->col, (int)o->i);
	case OP_F32: return rn_pq_put_float(w, o->col, (float)o->d);
	case OP_F64: return rn_pq_put_double(w, o->col, o->d);
	case OP_BYTES: return rn_pq_put_bytes(w, o->col, p, o->n);
	case OP_DEC: return rn_pq_put_decimal(w, o->col, p);
	case OP_BEGIN: return rn_pq_begin(w, o->col);
	default: return rn_pq_end(w);
	}
}

/* Keeps a partition column's value (as its partitionValues text) instead of writing it. */
static int capture(struct pq_sink *k, size_t col, const struct tape_op *o, const void *p)
{
	struct keycap *c = &k->caps[k->t->keyof[col]];
	int rc = 0;
	c->set = 1;
	c->is_null = o->op == OP_NULL;
	c->off = k->keybuf->len;
	if (o->op == OP_BYTES)
		rc = rn_buf_append(k->keybuf, p, o->n);
	else if (!c->is_null)
		rc = rn_part_text(k->keybuf, k->t->schema->root.fields[col].type, o->i);
	c->len = k->keybuf->len - c->off;
	return rc;
}

/* Every value goes through here: top-level integers are remembered (derived columns read
 * them), partition columns captured, the rest written to the writer or onto the tape. */
static int emit(struct pq_sink *k, int op, size_t col, int64_t i, double d, const void *p, size_t n)
{
	struct mat_table *t = k->t;
	struct tape_op o = {op, col, i, d, n};
	int rc;

	if (k->depth == 1 && op != OP_END && t && t->top) {
		if (op == OP_I64 || op == OP_I32 || op == OP_BOOL) {
			t->top[col] = i;
			t->top_set[col] = 1;
		}
		if (t->nkeys) {
			if (t->keyof[col] >= 0)
				return capture(k, col, &o, p);
			o.col = t->colmap[col];
		}
	}
	if (!k->tape)
		return pq_call(k->w, &o, p);
	if ((rc = rn_buf_append(k->tape, &o, sizeof(o))))
		return rc;
	return rn_buf_append(k->tape, p, n);
}

/* Writes one taped record into w (the row is left open). */
static int replay(struct rn_pq_writer *w, const struct rn_buf *tape)
{
	size_t off = 0;
	int rc = 0;
	while (!rc && off < tape->len) {
		struct tape_op o;
		memcpy(&o, tape->data + off, sizeof(o));
		off += sizeof(o);
		rc = pq_call(w, &o, tape->data + off);
		off += o.n;
	}
	return rc;
}

/* The child index of f in the innermost open group. */
static size_t col_of(const struct pq_sink *k, const struct rn_field *f)
{
	const struct rn_field *p = k->stack[k->depth - 1];
	if (p->type == RN_T_STRUCT)
		return (size_t)(f - p->fields);
	if (p->type == RN_T_MAP)
		return f == &p->fields[0] ? 0 : 1;
	return 0;
}

/* Is f a derived top-level column? Its value then comes from its source, whatever the
 * record says. */
static int derived(const struct pq_sink *k, size_t col)
{
	return k->depth == 1 && k->t && k->t->derive && k->t->derive[col] != -1;
}

static int put_derived(struct pq_sink *k, size_t col)
{
	const struct mat_table *t = k->t;
	const struct rec *r = k->env;
	int src = t->derive[col];
	int64_t us;
	if (src == RN_PART_FROM_PRINCIPAL) {
		/* unknown (a stream from before owners were kept): null, or "" if NOT NULL */
		const char *p = k->principal;
		if (!p && k->stack[0]->fields[col].nullable)
			return emit(k, OP_NULL, col, 0, 0, NULL, 0);
		return emit(k, OP_BYTES, col, 0, 0, p ? p : "", p ? strlen(p) : 0);
	}
	if (src == RN_PART_FROM_ENVELOPE)
		us = r && r->has_event ? r->event : r && r->has_receive ? r->receive : k->now;
	else if (t->top_set[src])
		us = t->top[src];
	else
		return emit(k, OP_NULL, col, 0, 0, NULL, 0);
	return emit(k, OP_I32, col, rn_part_day(us), 0, NULL, 0);
}

static int k_null(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col))
		return put_derived(k, col);
	return emit(k, OP_NULL, col, 0, 0, NULL, 0);
}

static int k_i64(void *c, const struct rn_field *f, int64_t v)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col))
		return put_derived(k, col);
	switch (f->type) {
	case RN_T_LONG:
	case RN_T_TIMESTAMP:
	case RN_T_TIMESTAMP_NTZ: return emit(k, OP_I64, col, v, 0, NULL, 0);
	case RN_T_BOOL: return emit(k, OP_BOOL, col, v, 0, NULL, 0);
	default: return emit(k, OP_I32, col, v, 0, NULL, 0);
	}
}

static int k_f64(void *c, const struct rn_field *f, double v)
{
	struct pq_sink *k = c;
	return emit(k, f->type == RN_T_FLOAT ? OP_F32 : OP_F64, col_of(k, f), 0, v, NULL, 0);
}

static int k_bytes(void *c, const struct rn_field *f, const void *p, size_t n)
{
	struct pq_sink *k = c;
	size_t col = col_of(k, f);
	if (derived(k, col)) /* a record cannot name its own principal */
		return put_derived(k, col);
	return emit(k, OP_BYTES, col, 0, 0, p, n);
}

static int k_dec(void *c, const struct rn_field *f, rn_i128 u)
{
	struct pq_sink *k = c;
	uint8_t be[16];
	if (f->precision <= 18)
		return emit(k, OP_I64, col_of(k, f), rn_i128_to_i64(u), 0, NULL, 0);
	rn_i128_to_be(u, be);
	return emit(k, OP_DEC, col_of(k, f), 0, 0, be, 16);
}

static int k_begin(void *c, const struct rn_field *f, size_t n)
{
	struct pq_sink *k = c;
	int rc = 0;
	(void)n;
	if (k->depth >= (int)(sizeof(k->stack) / sizeof(k->stack[0])))
		return RN_EINVAL;
	if (k->depth > 0 && (rc = emit(k, OP_BEGIN, col_of(k, f), 0, 0, NULL, 0)))
		return rc;
	k->stack[k->depth++] = f;
	return 0;
}

static int k_end(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	(void)f;
	return --k->depth > 0 ? emit(k, OP_END, 0, 0, 0, NULL, 0) : 0;
}

/* Envelope values for top-level columns the payload does not name. */
static int k_missing(void *c, const struct rn_field *f)
{
	struct pq_sink *k = c;
	const struct rec *r = k->env;
	size_t col = col_of(k, f);
	const char *n = f->name;

	if (derived(k, col))
		return put_derived(k, col);
	if (!strcmp(n, "stream_id") && f->type == RN_T_STRING)
		return emit(k, OP_BYTES, col, 0, 0, k->stream_id, strlen(k->stream_id));
	if (!strcmp(n, "receive_time") && f->type == RN_T_TIMESTAMP)
		return emit(k, OP_I64, col, r && r->has_receive ? r->receive : k->now, 0, NULL, 0);
	if (!strcmp(n, "clock_corrected") && f->type == RN_T_BOOL)
		return emit(k, OP_BOOL, col, r && r->corrected, 0, NULL, 0);
	if (!r)
		return RN_ENOTFOUND;
	if (f->type == RN_T_STRING) {
		const struct rn_pb_field *s = !strcmp(n, "device_id") && r->has_device ? &r->device
					      : !strcmp(n, "source") && r->has_source  ? &r->source
					      : !strcmp(n, "topic") && r->has_topic    ? &r->topic
										       : NULL;
		if (s)
			return emit(k, OP_BYTES, col, 0, 0, s->ptr, s->len);
		if (!strcmp(n, "attributes") && r->nattrs) {
			int rc = attrs_json(k->scratch, k->env_bytes, k->env_len, NULL);
			return rc ? rc
				  : emit(k, OP_BYTES, col, 0, 0, k->scratch->data, k->scratch->len);
		}
	}
	if (!strcmp(n, "event_time") && f->type == RN_T_TIMESTAMP && r->has_event)
		return emit(k, OP_I64, col, r->event, 0, NULL, 0);
	if (!strcmp(n, "seq") && f->type == RN_T_LONG && r->has_seq)
		return emit(k, OP_I64, col, (int64_t)r->seq, 0, NULL, 0);
	if (!strcmp(n, "flags") && f->type == RN_T_INT)
		return emit(k, OP_I32, col, (int32_t)r->flags, 0, NULL, 0);
	return RN_ENOTFOUND;
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* Puts the taped record into its partition's writer (opening it, after finishing every
 * open one at the cap). A partition value that makes a too long directory name is a misfit:
 * RN_EINVAL with the reason in why. */
static int route_row(struct rn_mat *m, struct mat_table *t, struct pq_sink *k, char *why,
		     size_t cap)
{
	struct rn_part_val v[RN_PART_MAX_COLUMNS];
	struct mat_part *p = NULL;
	int rc;

	for (size_t i = 0; i < t->nkeys; i++) {
		v[i].text = k->keybuf->data ? (const char *)k->keybuf->data + k->caps[i].off : "";
		v[i].len = k->caps[i].len;
		v[i].is_null = !k->caps[i].set || k->caps[i].is_null;
	}
	rn_buf_reset(&m->pdir);
	rn_buf_reset(&m->ppv);
	if ((rc = rn_part_layout(&m->pdir, &m->ppv, (const char *const *)t->keys, v, t->nkeys)) ||
	    (rc = rn_buf_append_u8(&m->pdir, 0)) || (rc = rn_buf_append_u8(&m->ppv, 0)))
		return rc;
	const char *pv = (const char *)m->ppv.data, *dir = (const char *)m->pdir.data;
	uint32_t h = hash_str(pv);
	for (size_t i = 0; i < t->nparts && !p; i++)
		if (t->parts[i].hash == h && !strcmp(t->parts[i].pv, pv))
			p = &t->parts[i];
	if (!p) {
		/* a directory name longer than NAME_MAX could never be created */
		for (const char *s = dir, *e; *s; s = *e ? e + 1 : e) {
			e = strchr(s, '/');
			e = e ? e : s + strlen(s);
			if (e - s > 255) {
				snprintf(why, cap,
					 "partition directory name %.40s... is %zu bytes, "
					 "more than 255",
					 s, (size_t)(e - s));
				return RN_EINVAL;
			}
		}
		if (t->nparts == RN_MAT_MAX_OPEN_PARTITIONS) {
			rn_log_info("mat",
				    "table %s: %d partitions open; finishing their files early",
				    t->name, RN_MAT_MAX_OPEN_PARTITIONS);
			if ((rc = rn_mat__finish_parts(m, t, &t->spilled, &t->nspilled)))
				return rc;
			/* the writers became files: count the files (a walk, as rare as the
			 * spill itself, which walks them all) */
			size_t mem = 0;
			for (size_t i = 0; i < t->nspilled; i++)
				mem += t->spilled[i].data.cap;
			rn_mat__mem_set(m, t, mem);
		}
		struct mat_part *np = rn_reallocarray(t->parts, t->nparts + 1, sizeof(*np));
		if (!np)
			return RN_ENOMEM;
		t->parts = np;
		p = &np[t->nparts];
		memset(p, 0, sizeof(*p));
		struct rn_pq_options po = {.created_by = m->created_by,
					   .zstd_level = m->zstd_level,
					   .page_submit = m->page_submit,
					   .page_ctx = m->page_ctx};
		if (!(p->pv = rn_strdup(pv)) || !(p->dir = rn_strdup(dir)) ||
		    (rc = rn_pq_writer_create(&p->pq, t->dcols, t->ndcols, &po))) {
			rn_free(p->pv);
			rn_free(p->dir);
			return rc ? rc : RN_ENOMEM;
		}
		p->hash = h;
		t->nparts++;
	}
	size_t before = rn_pq_mem(p->pq);
	if ((rc = replay(p->pq, k->tape)) || (rc = rn_pq_row_end(p->pq))) {
		rn_pq_row_abort(p->pq);
		return rc;
	}
	rn_mat__mem_set(m, t, t->mem - before + rn_pq_mem(p->pq));
	return 0;
}

/*
 * One record of a typed table: its row, or (when it does not fit) why not in `why` and no
 * row. Errors other than a misfit (memory) are returned.
 */
int rn_mat__add_typed_row(struct rn_mat *m, struct mat_table *t, const char *stream_id,
			  const char *principal, int record_type, const struct rn_protoplan *plan,
			  const uint8_t *p, size_t len, int64_t now, const struct rn_mat_clock *clk,
			  char *why, size_t cap)
{
	struct pq_sink k = {.w = t->pq,
			    .t = t,
			    .stream_id = stream_id,
			    .principal = principal,
			    .now = now,
			    .scratch = &m->scratch};
	static const struct rn_row_sink sink_fns = {NULL,  k_null,  k_i64, k_f64,    k_bytes,
						    k_dec, k_begin, k_end, k_missing};
	struct rn_row_sink sink = sink_fns;
	struct rec r;
	const char *json = (const char *)p;
	size_t jlen = len;
	const char *bad;
	int rc;

	sink.ctx = &k;
	why[0] = 0;
	if (t->top_set)
		memset(t->top_set, 0, t->ncols);
	if (t->nkeys) {
		rn_buf_reset(&m->tape);
		rn_buf_reset(&m->keybuf);
		k.tape = &m->tape;
		k.keybuf = &m->keybuf;
	}
	if (record_type != RN_MAT_JSON && plan) {
		rc = rn_protorow_decode(plan, p, len, &sink, why, cap);
		goto decoded;
	}
	if (record_type != RN_MAT_JSON) {
		if ((bad = decode_record(p, len, &r))) {
			snprintf(why, cap, "%s", bad);
			return 0;
		}
		clock_fix(&r, clk);
		if (!r.has_payload) {
			snprintf(why, cap, "the record has no payload to fill the columns from");
			return 0;
		}
		k.env = &r;
		k.env_bytes = p;
		k.env_len = len;
		json = (const char *)r.payload.ptr;
		jlen = r.payload.len;
	}
	rc = rn_jsonrow_decode(t->schema, json, jlen, &sink, why, cap);
decoded:
	if (rc == 0 && t->nkeys)
		rc = route_row(m, t, &k, why, cap);
	else if (rc == 0)
		rc = rn_pq_row_end(t->pq);
	if (rc == 0)
		return 0;
	if (!t->nkeys)
		rn_pq_row_abort(t->pq);
	if (rc == RN_EINVAL || rc == RN_ERANGE) {
		if (!why[0])
			snprintf(why, cap, "value out of range for its column");
		return 0;
	}
	return rc;
}

/* The summary of a period's bad-record warnings that got no line of their own. */
static void warn_summary(void *ctx, const char *name, uint64_t batches, uint64_t records)
{
	(void)ctx;
	rn_log_warn("mat",
		    "table %s: %llu more batch(es) with %llu bad record(s) in the last %lld s "
		    "(each kept with its reason; not logged one by one)",
		    name ? name : "(other tables)", (unsigned long long)batches,
		    (unsigned long long)records, (long long)(RN_MAT_WARN_PERIOD_US / 1000000));
}

/* Counts one batch's bad records (dead letters of a typed table, records of an envelope table
 * kept undecoded) and gives it one warning line, unless the table had its line in this period:
 * then it goes into the table's summary. A flood of bad records costs a few lines, whatever
 * the number of records or batches. */
void rn_mat__warn_bad(struct rn_mat *m, const struct mat_table *t, const char *stream_id,
		      int64_t offset, size_t bad, size_t nrec, size_t first_index, const char *why)
{
	int64_t now = rn_mono_us();
	if (t->schema)
		m->dead_records += bad;
	else
		m->undecodable += bad;
	rn_lograte_tick(&m->warn, now, warn_summary, m);
	if (!rn_lograte_note(&m->warn, t->name, bad, now))
		return;
	if (t->schema)
		rn_log_warn("mat",
			    "table %s stream %s batch %lld: %zu of %zu record(s) to %s; first "
			    "(record %zu): %s",
			    t->name, stream_id, (long long)offset, bad, nrec, t->dlq->name,
			    first_index, why);
	else
		rn_log_warn("mat",
			    "table %s stream %s batch %lld: %zu of %zu record(s) undecodable, kept "
			    "in payload_raw; first (record %zu): %s",
			    t->name, stream_id, (long long)offset, bad, nrec, first_index, why);
}

void rn_mat_tick(struct rn_mat *m, int64_t now_us)
{
	rn_lograte_tick(&m->warn, now_us, warn_summary, m);
}
