/*
 * Chunk builder; see chunk.h. A record is written as one field-1 entry of the batch: its
 * size is computed first so the bytes are written once, in place. The batch starts with
 * HEADROOM unused bytes, where close writes the request's header right before the records,
 * so zstd reads the whole request from one buffer without a copy of the batch (that copy
 * was 14 % of the agent's CPU with 1 MB chunks: docs/benchmarks.md).
 */
#include "chunk.h"

#include <string.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_pbwire.h"
#include "rn_zstd.h"

/* field 4 tag + length, field 1 tag + offset, field 2 tag + length: 1+5 + 1+10 + 1+5 */
#define HEADROOM 24

static size_t len_field(size_t n)
{
	return 1 + rn_pb_varint_len(n) + n;
}

/* strlen, 0 for NULL (a NULL string is left out of the record) */
static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static size_t str_len(const char *s)
{
	return s ? len_field(strlen(s)) : 0;
}

static size_t attr_size(const struct rn_attr *a)
{
	return str_len(a->key) + str_len(a->value);
}

static void put_len(uint8_t **p, uint32_t num, const void *data, size_t n)
{
	*(*p)++ = (uint8_t)((num << 3) | RN_PB_LEN);
	*p += rn_pb_varint_enc(*p, n);
	memcpy(*p, data, n);
	*p += n;
}

static void put_varint(uint8_t **p, uint32_t num, uint64_t v)
{
	*(*p)++ = (uint8_t)(num << 3);
	*p += rn_pb_varint_enc(*p, v);
}

static void put_attr(uint8_t **p, const struct rn_attr *a)
{
	*(*p)++ = (8 << 3) | RN_PB_LEN;
	*p += rn_pb_varint_enc(*p, attr_size(a));
	if (a->key)
		put_len(p, 1, a->key, strlen(a->key));
	if (a->value)
		put_len(p, 2, a->value, strlen(a->value));
}

/* Each string's length is taken once per record (strlen was 3.5 % of the file path when it
 * was taken twice, for the size and for the copy: docs/benchmarks.md). */
int rn_chunk_add(struct rn_chunk_builder *b, const struct rn_chunk_origin *o,
		 const struct rn_record *r, uint64_t seq, int64_t now_us)
{
	int64_t ev = r->event_time_us ? r->event_time_us : now_us;
	size_t dlen = o->device_len ? o->device_len : slen(o->device_id),
	       srclen = o->source_len ? o->source_len : slen(o->source), tlen = slen(r->topic);
	size_t n = (o->device_id ? len_field(dlen) : 0) + (o->source ? len_field(srclen) : 0) +
		   (r->topic ? len_field(tlen) : 0) + 1 + rn_pb_varint_len((uint64_t)ev) + 1 +
		   rn_pb_varint_len((uint64_t)now_us) + 1 + rn_pb_varint_len(seq) +
		   len_field(r->len);
	uint8_t *p;
	int rc;

	for (size_t i = 0; i < o->nattrs; i++)
		n += len_field(attr_size(&o->attrs[i]));
	for (size_t i = 0; i < r->nattrs; i++)
		n += len_field(attr_size(&r->attrs[i]));
	if (r->flags)
		n += 1 + rn_pb_varint_len(r->flags);
	/* an untrustworthy wall clock: say where on the device's boot timeline it was */
	int boot = now_us < RN_CLOCK_TRUSTED_US && o->boot_id && o->boot_us > 0;
	if (boot)
		n += 1 + rn_pb_varint_len((uint64_t)o->boot_us) + str_len(o->boot_id);
	/* a chunk holding records takes none that would carry it past max_bytes */
	if (b->nrec && b->lim.max_bytes && b->batch.len + len_field(n) > b->lim.max_bytes)
		return RN_EFULL;
	size_t head = b->batch.len ? 0 : HEADROOM;
	if ((rc = rn_buf_reserve(&b->batch, head + len_field(n))))
		return rc;
	b->batch.len += head;
	p = b->batch.data + b->batch.len;
	*p++ = (1 << 3) | RN_PB_LEN;
	p += rn_pb_varint_enc(p, n);
	if (o->device_id)
		put_len(&p, 1, o->device_id, dlen);
	if (o->source)
		put_len(&p, 2, o->source, srclen);
	if (r->topic)
		put_len(&p, 3, r->topic, tlen);
	uint8_t *evp = p;
	put_varint(&p, 4, (uint64_t)ev);
	if (ev == now_us) { /* the usual case: the same varint again, under tag 5 */
		size_t vl = (size_t)(p - evp);
		memcpy(p, evp, vl);
		*p = (uint8_t)(5 << 3);
		p += vl;
	} else
		put_varint(&p, 5, (uint64_t)now_us);
	put_varint(&p, 6, seq);
	put_len(&p, 7, r->payload ? (const void *)r->payload : "", r->len);
	for (size_t i = 0; i < o->nattrs; i++)
		put_attr(&p, &o->attrs[i]);
	for (size_t i = 0; i < r->nattrs; i++)
		put_attr(&p, &r->attrs[i]);
	if (r->flags)
		put_varint(&p, 9, r->flags);
	if (boot) {
		put_varint(&p, 10, (uint64_t)o->boot_us);
		put_len(&p, 11, o->boot_id, strlen(o->boot_id));
	}
	b->batch.len = (size_t)(p - b->batch.data);
	if (b->nrec++ == 0)
		b->opened_us = now_us;
	return 0;
}

int rn_chunk_due(const struct rn_chunk_builder *b, int64_t now_us)
{
	if (!b->nrec)
		return 0;
	return b->batch.len >= b->lim.max_bytes || b->nrec >= b->lim.max_records ||
	       now_us - b->opened_us >= b->lim.linger_us;
}

int rn_chunk_close(struct rn_chunk_builder *b, int64_t offset, struct rn_buf *out)
{
	uint8_t hdr[HEADROOM], *p = hdr;
	size_t inner, records, hlen;
	int rc;

	if (!b->nrec)
		return RN_EINVAL;
	records = b->batch.len - HEADROOM;
	/* ingest_record_batch{1: offset, 2: proto_encoded_batch{batch}} as field 4 */
	inner = 1 + rn_pb_varint_len((uint64_t)offset) + len_field(records);
	*p++ = (4 << 3) | RN_PB_LEN;
	p += rn_pb_varint_enc(p, inner);
	*p++ = (1 << 3) | RN_PB_VARINT;
	p += rn_pb_varint_enc(p, (uint64_t)offset);
	*p++ = (2 << 3) | RN_PB_LEN;
	p += rn_pb_varint_enc(p, records);
	hlen = (size_t)(p - hdr);
	/* the header goes right before the records; a failed close rewrites it the next time */
	memcpy(b->batch.data + HEADROOM - hlen, hdr, hlen);
	rn_buf_reset(out);
	if ((rc = rn_buf_append(out, "\1\0\0\0\0", RN_GRPC_HDR_LEN)) ||
	    (rc = rn_zstd_compress(out, b->batch.data + HEADROOM - hlen, hlen + records,
				   b->lim.zstd_level)))
		return rc;
	rn_grpc_frame_header(out->data, 1, (uint32_t)(out->len - RN_GRPC_HDR_LEN));
	rn_buf_reset(&b->batch);
	b->nrec = 0;
	return 0;
}

void rn_chunk_free(struct rn_chunk_builder *b)
{
	rn_buf_free(&b->batch);
	b->nrec = 0;
}

/* One FieldDescriptorProto of Record or Attribute. */
struct field_row {
	const char *name;
	int num, label, type;
	const char *type_name;
};

enum {
	OPT = 1,
	REP = 3,
	T_INT64 = 3,
	T_UINT64 = 4,
	T_STRING = 9,
	T_MSG = 11,
	T_BYTES = 12,
	T_UINT32 = 13
};

static const struct field_row attr_fields[] = {
	{"key", 1, OPT, T_STRING, NULL},
	{"value", 2, OPT, T_STRING, NULL},
};

static const struct field_row record_fields[] = {
	{"device_id", 1, OPT, T_STRING, NULL},      {"source", 2, OPT, T_STRING, NULL},
	{"topic", 3, OPT, T_STRING, NULL},          {"event_time_us", 4, OPT, T_INT64, NULL},
	{"receive_time_us", 5, OPT, T_INT64, NULL}, {"seq", 6, OPT, T_UINT64, NULL},
	{"payload", 7, OPT, T_BYTES, NULL},         {"attributes", 8, REP, T_MSG, "Attribute"},
	{"flags", 9, OPT, T_UINT32, NULL},          {"boot_time_us", 10, OPT, T_UINT64, NULL},
	{"boot_id", 11, OPT, T_STRING, NULL},
};

/* A DescriptorProto (field 1 name, field 2 per field) appended to out; every append is
 * checked, so a failure never leaves a message that parses but lacks a field. */
static int message_desc(struct rn_buf *out, const char *name, const struct field_row *rows,
			size_t n)
{
	struct rn_buf f = {0};
	int rc = rn_pb_put_str(out, 1, name);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct field_row *r = &rows[i];
		rn_buf_reset(&f);
		if ((rc = rn_pb_put_str(&f, 1, r->name)) ||
		    (rc = rn_pb_put_uint(&f, 3, (uint64_t)r->num)) ||
		    (rc = rn_pb_put_uint(&f, 4, (uint64_t)r->label)) ||
		    (rc = rn_pb_put_uint(&f, 5, (uint64_t)r->type)) ||
		    (r->type_name && (rc = rn_pb_put_str(&f, 6, r->type_name))))
			break;
		rc = rn_pb_put_bytes(out, 2, f.data, f.len);
	}
	rn_buf_free(&f);
	return rc;
}

int rn_chunk_descriptor(struct rn_buf *out)
{
	struct rn_buf attr = {0};
	size_t len0 = out->len;
	int rc;
	if (!(rc = message_desc(&attr, "Attribute", attr_fields,
				sizeof(attr_fields) / sizeof(attr_fields[0]))) &&
	    !(rc = message_desc(out, "Record", record_fields,
				sizeof(record_fields) / sizeof(record_fields[0]))))
		rc = rn_pb_put_bytes(out, 3, attr.data, attr.len);
	if (rc)
		out->len = len0; /* nothing half-written stays */
	rn_buf_free(&attr);
	return rc;
}
