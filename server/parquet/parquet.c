/*
 * Parquet writer for flat schemas; see parquet.h. Layout per column: `chunk` holds finished
 * pages (header + zstd body), `vals`/`levels` the open page. Pages are cut only at row ends,
 * so a row that fails rn_pq_row_end() can be rolled back by truncating the open page to the
 * last row mark. Statistics are exact over the values put (a rolled-back value may widen
 * min/max, which stays a valid bound).
 */
#include "parquet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_zstd.h"
#include "thrift.h"

#define PAGE_DEFAULT ((size_t)1 << 20)
#define MAX_COLS 256
#define STAT_EXACT_MAX 64 /* Parquet footer min/max for byte arrays only up to this length */
#define DELTA_PREFIX_CP 32

/* Parquet enums (parquet.thrift) */
enum { PT_BOOLEAN = 0, PT_INT32 = 1, PT_INT64 = 2, PT_DOUBLE = 5, PT_BYTE_ARRAY = 6 };
enum { ENC_PLAIN = 0, ENC_RLE = 3 };
enum { CODEC_ZSTD = 6 };
enum { CT_UTF8 = 0, CT_TIMESTAMP_MICROS = 10 };

struct pq_column {
	const struct rn_pq_col *def;
	struct rn_buf chunk;  /* finished pages */
	struct rn_buf vals;   /* open page: PLAIN values (bools one byte each until the cut) */
	struct rn_buf levels; /* open page: one definition level byte per entry */
	size_t row_mark;      /* vals.len at the last row end */
	uint32_t page_values; /* entries (nulls included) in the open page */
	int64_t num_values;   /* entries in finished pages */
	int64_t uncompressed; /* sum of page header + uncompressed body sizes */
	int64_t nulls;
	int set; /* set in the current row */
	/* exact statistics over non-null values */
	int has_stats;
	int64_t min_i, max_i;
	double min_d, max_d;
	struct rn_buf min_s, max_s;
	/* Delta-ready statistics of the last finished file */
	struct rn_pq_colstats last;
	struct rn_buf dmin, dmax;
};

struct rn_pq_writer {
	struct pq_column *cols;
	size_t ncols;
	size_t rows;
	size_t page_bytes;
	size_t max_bytes;
	size_t buffered; /* sum of chunk lengths */
	int level;
	char created_by[128];
	struct rn_buf scratch; /* page body before compression */
	struct rn_buf hdr;
};

static int is_bytes(enum rn_pq_type t)
{
	return t == RN_PQ_STRING || t == RN_PQ_BINARY;
}

static int physical(enum rn_pq_type t)
{
	switch (t) {
	case RN_PQ_STRING:
	case RN_PQ_BINARY: return PT_BYTE_ARRAY;
	case RN_PQ_INT64:
	case RN_PQ_TIMESTAMP: return PT_INT64;
	case RN_PQ_INT32: return PT_INT32;
	case RN_PQ_DOUBLE: return PT_DOUBLE;
	case RN_PQ_BOOL: return PT_BOOLEAN;
	}
	return PT_BYTE_ARRAY;
}

int rn_pq_writer_create(struct rn_pq_writer **out, const struct rn_pq_col *cols, size_t n,
			const struct rn_pq_options *opt)
{
	static const struct rn_pq_options defaults;
	struct rn_pq_writer *w;

	*out = NULL;
	if (!opt)
		opt = &defaults;
	if (n == 0 || n > MAX_COLS)
		return RN_EINVAL;
	if (!(w = rn_calloc(1, sizeof(*w))))
		return RN_ENOMEM;
	if (!(w->cols = rn_calloc(n, sizeof(*w->cols)))) {
		rn_free(w);
		return RN_ENOMEM;
	}
	w->ncols = n;
	for (size_t i = 0; i < n; i++)
		w->cols[i].def = &cols[i];
	w->page_bytes = opt->page_bytes ? opt->page_bytes : PAGE_DEFAULT;
	w->max_bytes = opt->max_bytes ? opt->max_bytes : ((size_t)1 << 30);
	w->level = opt->zstd_level ? opt->zstd_level : 3;
	if (opt->created_by)
		snprintf(w->created_by, sizeof(w->created_by), "%s", opt->created_by);
	else
		snprintf(w->created_by, sizeof(w->created_by),
			 "runnel-server version %s (build dev)", RN_VERSION);
	*out = w;
	return 0;
}

void rn_pq_writer_destroy(struct rn_pq_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->ncols; i++) {
		struct pq_column *c = &w->cols[i];
		rn_buf_free(&c->chunk);
		rn_buf_free(&c->vals);
		rn_buf_free(&c->levels);
		rn_buf_free(&c->min_s);
		rn_buf_free(&c->max_s);
		rn_buf_free(&c->dmin);
		rn_buf_free(&c->dmax);
	}
	rn_buf_free(&w->scratch);
	rn_buf_free(&w->hdr);
	rn_free(w->cols);
	rn_free(w);
}

static struct pq_column *col_for(struct rn_pq_writer *w, size_t col, int ok)
{
	if (col >= w->ncols || !ok || w->cols[col].set)
		return NULL;
	return &w->cols[col];
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

int rn_pq_put_bytes(struct rn_pq_writer *w, size_t col, const void *p, size_t len)
{
	struct pq_column *c = col_for(w, col, col < w->ncols && is_bytes(w->cols[col].def->type));
	uint32_t l32 = (uint32_t)len;
	int rc;

	if (!c || len > UINT32_MAX)
		return RN_EINVAL;
	if ((rc = rn_buf_reserve(&c->vals, 4 + len)))
		return rc;
	rn_buf_append(&c->vals, &l32, 4);
	rn_buf_append(&c->vals, p, len);
	if (!c->has_stats || bytes_cmp(p, len, c->min_s.data, c->min_s.len) < 0) {
		rn_buf_reset(&c->min_s);
		if ((rc = rn_buf_append(&c->min_s, p, len)))
			return rc;
	}
	if (!c->has_stats || bytes_cmp(p, len, c->max_s.data, c->max_s.len) > 0) {
		rn_buf_reset(&c->max_s);
		if ((rc = rn_buf_append(&c->max_s, p, len)))
			return rc;
	}
	c->has_stats = 1;
	c->set = 1;
	return 0;
}

static int put_int(struct rn_pq_writer *w, size_t col, int64_t v, int is32)
{
	int ok = col < w->ncols &&
		 (is32 ? w->cols[col].def->type == RN_PQ_INT32
		       : (w->cols[col].def->type == RN_PQ_INT64 ||
			  w->cols[col].def->type == RN_PQ_TIMESTAMP));
	struct pq_column *c = col_for(w, col, ok);
	int rc;

	if (!c)
		return RN_EINVAL;
	if (is32) {
		int32_t x = (int32_t)v;
		rc = rn_buf_append(&c->vals, &x, 4);
	} else {
		rc = rn_buf_append(&c->vals, &v, 8);
	}
	if (rc)
		return rc;
	if (!c->has_stats || v < c->min_i)
		c->min_i = v;
	if (!c->has_stats || v > c->max_i)
		c->max_i = v;
	c->has_stats = 1;
	c->set = 1;
	return 0;
}

int rn_pq_put_i64(struct rn_pq_writer *w, size_t col, int64_t v)
{
	return put_int(w, col, v, 0);
}

int rn_pq_put_i32(struct rn_pq_writer *w, size_t col, int32_t v)
{
	return put_int(w, col, v, 1);
}

int rn_pq_put_double(struct rn_pq_writer *w, size_t col, double v)
{
	struct pq_column *c =
		col_for(w, col, col < w->ncols && w->cols[col].def->type == RN_PQ_DOUBLE);
	int rc;
	if (!c)
		return RN_EINVAL;
	if ((rc = rn_buf_append(&c->vals, &v, 8)))
		return rc;
	if (!isnan(v)) { /* NaN never enters min/max */
		if (!c->has_stats || v < c->min_d)
			c->min_d = v;
		if (!c->has_stats || v > c->max_d)
			c->max_d = v;
		c->has_stats = 1;
	}
	c->set = 1;
	return 0;
}

int rn_pq_put_bool(struct rn_pq_writer *w, size_t col, int v)
{
	struct pq_column *c =
		col_for(w, col, col < w->ncols && w->cols[col].def->type == RN_PQ_BOOL);
	int rc;
	if (!c)
		return RN_EINVAL;
	if ((rc = rn_buf_append_u8(&c->vals, v ? 1 : 0)))
		return rc;
	if (!c->has_stats || (v ? 1 : 0) < c->min_i)
		c->min_i = v ? 1 : 0;
	if (!c->has_stats || (v ? 1 : 0) > c->max_i)
		c->max_i = v ? 1 : 0;
	c->has_stats = 1;
	c->set = 1;
	return 0;
}

/* RLE-hybrid encoding of 0/1 levels (bit width 1) as RLE runs, with the v1 length prefix. */
static int encode_levels(struct rn_buf *out, const uint8_t *lv, size_t n)
{
	size_t start = out->len, i = 0;
	uint32_t len;
	int rc;

	if ((rc = rn_buf_append(out, "\0\0\0\0", 4)))
		return rc;
	while (i < n) {
		size_t j = i;
		uint8_t tmp[11];
		while (j < n && lv[j] == lv[i] && j - i < 0x3fffffff)
			j++;
		size_t k = rn_pb_varint_enc(tmp, (uint64_t)(j - i) << 1);
		tmp[k++] = lv[i];
		if ((rc = rn_buf_append(out, tmp, k)))
			return rc;
		i = j;
	}
	len = (uint32_t)(out->len - start - 4);
	memcpy(out->data + start, &len, 4);
	return 0;
}

/* Encodes, compresses and appends the open page of column c to its chunk. */
static int cut_page(struct rn_pq_writer *w, struct pq_column *c)
{
	struct rn_buf *body = &w->scratch;
	struct rn_tc t;
	size_t comp_start;
	int rc;

	if (c->page_values == 0)
		return 0;
	rn_buf_reset(body);
	if (c->def->optional && (rc = encode_levels(body, c->levels.data, c->levels.len)))
		return rc;
	if (c->def->type == RN_PQ_BOOL) {
		size_t nb = (c->vals.len + 7) / 8;
		if ((rc = rn_buf_reserve(body, nb)))
			return rc;
		memset(body->data + body->len, 0, nb);
		for (size_t i = 0; i < c->vals.len; i++)
			body->data[body->len + i / 8] |= (uint8_t)(c->vals.data[i] << (i % 8));
		body->len += nb;
	} else if ((rc = rn_buf_append(body, c->vals.data, c->vals.len))) {
		return rc;
	}
	/* compress into the chunk after a placeholder for the header, then move it in front */
	rn_buf_reset(&w->hdr);
	struct rn_buf comp = {0};
	if ((rc = rn_zstd_compress(&comp, body->data, body->len, w->level))) {
		rn_buf_free(&comp);
		return rc;
	}
	rn_tc_init(&t, &w->hdr);
	rn_tc_i32(&t, 1, 0); /* DATA_PAGE */
	rn_tc_i32(&t, 2, (int32_t)body->len);
	rn_tc_i32(&t, 3, (int32_t)comp.len);
	rn_tc_struct_begin(&t, 5);
	rn_tc_i32(&t, 1, (int32_t)c->page_values);
	rn_tc_i32(&t, 2, ENC_PLAIN);
	rn_tc_i32(&t, 3, ENC_RLE);
	rn_tc_i32(&t, 4, ENC_RLE);
	rn_tc_struct_end(&t);
	rn_tc_stop(&t);
	if (t.err) {
		rn_buf_free(&comp);
		return t.err;
	}
	comp_start = c->chunk.len;
	if (w->buffered + w->hdr.len + comp.len > w->max_bytes) {
		rn_buf_free(&comp);
		return RN_ENOMEM;
	}
	if ((rc = rn_buf_reserve(&c->chunk, w->hdr.len + comp.len))) {
		rn_buf_free(&comp);
		return rc;
	}
	rn_buf_append(&c->chunk, w->hdr.data, w->hdr.len);
	rn_buf_append(&c->chunk, comp.data, comp.len);
	rn_buf_free(&comp);
	w->buffered += c->chunk.len - comp_start;
	c->uncompressed += (int64_t)(w->hdr.len + body->len);
	c->num_values += c->page_values;
	c->page_values = 0;
	rn_buf_reset(&c->vals);
	rn_buf_reset(&c->levels);
	c->row_mark = 0;
	return 0;
}

int rn_pq_row_end(struct rn_pq_writer *w)
{
	int rc;
	for (size_t i = 0; i < w->ncols; i++) {
		if (!w->cols[i].set && !w->cols[i].def->optional) {
			for (size_t j = 0; j < w->ncols; j++) {
				w->cols[j].vals.len = w->cols[j].row_mark;
				w->cols[j].set = 0;
			}
			return RN_EINVAL;
		}
	}
	for (size_t i = 0; i < w->ncols; i++) {
		struct pq_column *c = &w->cols[i];
		if (c->def->optional && (rc = rn_buf_append_u8(&c->levels, c->set ? 1 : 0)))
			return rc;
		if (!c->set)
			c->nulls++;
		c->set = 0;
		c->page_values++;
		c->row_mark = c->vals.len;
		if (c->vals.len + c->levels.len >= w->page_bytes && (rc = cut_page(w, c)))
			return rc;
	}
	w->rows++;
	return 0;
}

size_t rn_pq_rows(const struct rn_pq_writer *w)
{
	return w->rows;
}

size_t rn_pq_bytes(const struct rn_pq_writer *w)
{
	size_t n = w->buffered;
	for (size_t i = 0; i < w->ncols; i++)
		n += w->cols[i].vals.len / 4; /* open pages, assuming ~4x compression */
	return n;
}

/* Number of bytes of the first `cp` code points of UTF-8 text s (whole string if shorter). */
static size_t utf8_prefix(const uint8_t *s, size_t len, size_t cp, int *whole)
{
	size_t i = 0, n = 0;
	while (i < len && n < cp) {
		uint8_t c = s[i];
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (i + k > len)
			break;
		i += k;
		n++;
	}
	*whole = i >= len;
	return i;
}

/* Fills c->last with the Delta-ready statistics of the file just finished. */
static int freeze_stats(struct pq_column *c)
{
	struct rn_pq_colstats *s = &c->last;
	int whole, rc;

	memset(s, 0, sizeof(*s));
	s->nulls = c->nulls;
	if (!c->has_stats)
		return 0;
	switch (c->def->type) {
	case RN_PQ_INT32:
	case RN_PQ_INT64:
	case RN_PQ_TIMESTAMP:
		s->has_min = s->has_max = 1;
		s->min_i = c->min_i;
		s->max_i = c->max_i;
		break;
	case RN_PQ_DOUBLE:
		s->has_min = s->has_max = 1;
		s->min_d = c->min_d;
		s->max_d = c->max_d;
		break;
	case RN_PQ_STRING: {
		size_t n = utf8_prefix(c->min_s.data, c->min_s.len, DELTA_PREFIX_CP, &whole);
		rn_buf_reset(&c->dmin);
		rn_buf_reset(&c->dmax);
		if ((rc = rn_buf_append(&c->dmin, c->min_s.data, n)))
			return rc;
		n = utf8_prefix(c->max_s.data, c->max_s.len, DELTA_PREFIX_CP, &whole);
		if ((rc = rn_buf_append(&c->dmax, c->max_s.data, n)))
			return rc;
		if (!whole && (rc = rn_buf_append(&c->dmax, "\xf4\x8f\xbf\xbf", 4)))
			return rc;
		s->has_min = s->has_max = 1;
		s->min_s = c->dmin.data ? c->dmin.data : (const uint8_t *)"";
		s->min_len = c->dmin.len;
		s->max_s = c->dmax.data ? c->dmax.data : (const uint8_t *)"";
		s->max_len = c->dmax.len;
		break;
	}
	case RN_PQ_BINARY:
	case RN_PQ_BOOL:
		break; /* Delta keeps only null counts for these */
	}
	return 0;
}

static void write_schema(struct rn_tc *t, const struct rn_pq_writer *w)
{
	rn_tc_list_begin(t, 2, RN_TC_STRUCT, (uint32_t)(w->ncols + 1));
	rn_tc_elem_struct_begin(t);
	rn_tc_binary(t, 4, "schema", 6);
	rn_tc_i32(t, 5, (int32_t)w->ncols);
	rn_tc_struct_end(t);
	for (size_t i = 0; i < w->ncols; i++) {
		const struct rn_pq_col *d = w->cols[i].def;
		rn_tc_elem_struct_begin(t);
		rn_tc_i32(t, 1, physical(d->type));
		rn_tc_i32(t, 3, d->optional ? 1 : 0);
		rn_tc_binary(t, 4, d->name, strlen(d->name));
		if (d->type == RN_PQ_STRING) {
			rn_tc_i32(t, 6, CT_UTF8);
			rn_tc_struct_begin(t, 10);
			rn_tc_struct_begin(t, 1); /* StringType */
			rn_tc_struct_end(t);
			rn_tc_struct_end(t);
		} else if (d->type == RN_PQ_TIMESTAMP) {
			rn_tc_i32(t, 6, CT_TIMESTAMP_MICROS);
			rn_tc_struct_begin(t, 10);
			rn_tc_struct_begin(t, 8); /* TimestampType */
			rn_tc_bool(t, 1, 1);      /* isAdjustedToUTC */
			rn_tc_struct_begin(t, 2); /* TimeUnit */
			rn_tc_struct_begin(t, 2); /* MICROS */
			rn_tc_struct_end(t);
			rn_tc_struct_end(t);
			rn_tc_struct_end(t);
			rn_tc_struct_end(t);
		}
		rn_tc_struct_end(t);
	}
}

/* Parquet footer statistics: null_count always, min/max as PLAIN bytes when exact. */
static void write_stats(struct rn_tc *t, const struct pq_column *c)
{
	uint8_t minb[8], maxb[8];
	const void *minp = minb, *maxp = maxb;
	size_t len = 0, maxlen = 0;

	rn_tc_struct_begin(t, 12);
	rn_tc_i64(t, 3, c->nulls);
	if (c->has_stats) {
		switch (c->def->type) {
		case RN_PQ_INT32: {
			int32_t a = (int32_t)c->min_i, b = (int32_t)c->max_i;
			memcpy(minb, &a, 4);
			memcpy(maxb, &b, 4);
			len = maxlen = 4;
			break;
		}
		case RN_PQ_INT64:
		case RN_PQ_TIMESTAMP:
			memcpy(minb, &c->min_i, 8);
			memcpy(maxb, &c->max_i, 8);
			len = maxlen = 8;
			break;
		case RN_PQ_DOUBLE: {
			double a = c->min_d == 0 ? -0.0 : c->min_d, b = c->max_d == 0 ? 0.0 : c->max_d;
			memcpy(minb, &a, 8);
			memcpy(maxb, &b, 8);
			len = maxlen = 8;
			break;
		}
		case RN_PQ_BOOL:
			minb[0] = (uint8_t)c->min_i;
			maxb[0] = (uint8_t)c->max_i;
			len = maxlen = 1;
			break;
		case RN_PQ_STRING:
		case RN_PQ_BINARY:
			if (c->min_s.len <= STAT_EXACT_MAX && c->max_s.len <= STAT_EXACT_MAX) {
				minp = c->min_s.data ? (const void *)c->min_s.data : "";
				maxp = c->max_s.data ? (const void *)c->max_s.data : "";
				len = c->min_s.len;
				maxlen = c->max_s.len;
			} else {
				minp = NULL;
			}
			break;
		}
		if (minp) {
			rn_tc_binary(t, 5, maxp, maxlen);
			rn_tc_binary(t, 6, minp, len);
		}
	}
	rn_tc_struct_end(t);
}

int rn_pq_finish(struct rn_pq_writer *w, struct rn_buf *out)
{
	struct rn_buf meta = {0};
	struct rn_tc t;
	size_t start = out->len;
	int64_t *offsets = NULL, total_comp = 0, total_uncomp = 0;
	uint32_t mlen;
	int rc = 0;

	if (w->rows == 0)
		return RN_EINVAL;
	for (size_t i = 0; i < w->ncols; i++)
		if ((rc = cut_page(w, &w->cols[i])))
			return rc;
	if (!(offsets = rn_calloc(w->ncols, sizeof(*offsets))))
		return RN_ENOMEM;
	if ((rc = rn_buf_append(out, "PAR1", 4)))
		goto fail;
	for (size_t i = 0; i < w->ncols; i++) {
		offsets[i] = (int64_t)(out->len - start);
		if ((rc = rn_buf_append(out, w->cols[i].chunk.data, w->cols[i].chunk.len)))
			goto fail;
		total_comp += (int64_t)w->cols[i].chunk.len;
		total_uncomp += w->cols[i].uncompressed;
	}

	rn_tc_init(&t, &meta);
	rn_tc_i32(&t, 1, 1);
	write_schema(&t, w);
	rn_tc_i64(&t, 3, (int64_t)w->rows);
	rn_tc_list_begin(&t, 4, RN_TC_STRUCT, 1);
	rn_tc_elem_struct_begin(&t); /* RowGroup */
	rn_tc_list_begin(&t, 1, RN_TC_STRUCT, (uint32_t)w->ncols);
	for (size_t i = 0; i < w->ncols; i++) {
		const struct pq_column *c = &w->cols[i];
		rn_tc_elem_struct_begin(&t); /* ColumnChunk */
		rn_tc_i64(&t, 2, 0);
		rn_tc_struct_begin(&t, 3); /* ColumnMetaData */
		rn_tc_i32(&t, 1, physical(c->def->type));
		rn_tc_list_begin(&t, 2, RN_TC_I32, 2);
		rn_tc_elem_i32(&t, ENC_PLAIN);
		rn_tc_elem_i32(&t, ENC_RLE);
		rn_tc_list_begin(&t, 3, RN_TC_BINARY, 1);
		rn_tc_elem_binary(&t, c->def->name, strlen(c->def->name));
		rn_tc_i32(&t, 4, CODEC_ZSTD);
		rn_tc_i64(&t, 5, c->num_values);
		rn_tc_i64(&t, 6, c->uncompressed);
		rn_tc_i64(&t, 7, (int64_t)c->chunk.len);
		rn_tc_i64(&t, 9, offsets[i]);
		write_stats(&t, c);
		rn_tc_struct_end(&t); /* ColumnMetaData */
		rn_tc_struct_end(&t); /* ColumnChunk */
	}
	rn_tc_i64(&t, 2, total_uncomp);
	rn_tc_i64(&t, 3, (int64_t)w->rows);
	rn_tc_i64(&t, 5, offsets[0]);
	rn_tc_i64(&t, 6, total_comp);
	rn_tc_struct_end(&t); /* RowGroup */
	rn_tc_binary(&t, 6, w->created_by, strlen(w->created_by));
	rn_tc_list_begin(&t, 7, RN_TC_STRUCT, (uint32_t)w->ncols);
	for (size_t i = 0; i < w->ncols; i++) {
		rn_tc_elem_struct_begin(&t);
		rn_tc_struct_begin(&t, 1); /* TypeDefinedOrder */
		rn_tc_struct_end(&t);
		rn_tc_struct_end(&t);
	}
	rn_tc_stop(&t);
	if ((rc = t.err))
		goto fail;
	mlen = (uint32_t)meta.len;
	if ((rc = rn_buf_append(out, meta.data, meta.len)) || (rc = rn_buf_append(out, &mlen, 4)) ||
	    (rc = rn_buf_append(out, "PAR1", 4)))
		goto fail;

	/* reset for the next file, keeping the statistics of this one */
	for (size_t i = 0; i < w->ncols; i++) {
		struct pq_column *c = &w->cols[i];
		if ((rc = freeze_stats(c)))
			goto fail;
		rn_buf_reset(&c->chunk);
		c->num_values = c->uncompressed = c->nulls = 0;
		c->has_stats = 0;
	}
	w->rows = 0;
	w->buffered = 0;
	rn_buf_free(&meta);
	rn_free(offsets);
	return 0;
fail:
	out->len = start;
	rn_buf_free(&meta);
	rn_free(offsets);
	return rc;
}

int rn_pq_col_stats(const struct rn_pq_writer *w, size_t col, struct rn_pq_colstats *st)
{
	if (col >= w->ncols)
		return RN_EINVAL;
	*st = w->cols[col].last;
	return 0;
}
