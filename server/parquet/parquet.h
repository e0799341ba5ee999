/*
 * An I/O-free Parquet file writer for flat schemas. Values are appended row by row into
 * per-column builders; each column's current page is encoded (PLAIN values, RLE definition
 * levels, data page v1) and zstd-compressed as soon as it passes the page size, so memory
 * holds compressed pages plus one open page per column. rn_pq_finish() lays out the whole
 * file (PAR1, column chunks, Thrift-compact FileMetaData with statistics and column_orders)
 * into a caller buffer. Writing the bytes to disk is the caller's job (server/delta).
 *
 * Lifetime: one writer per table being materialized, created and used on one thread;
 * after finish it is empty and can take the next file's rows.
 */
#ifndef RN_PARQUET_H
#define RN_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

enum rn_pq_type {
	RN_PQ_STRING,    /* BYTE_ARRAY + STRING; values must be UTF-8 (caller checks) */
	RN_PQ_BINARY,    /* BYTE_ARRAY */
	RN_PQ_INT64,     /* Delta long */
	RN_PQ_INT32,     /* Delta integer */
	RN_PQ_TIMESTAMP, /* INT64 microseconds, TIMESTAMP(isAdjustedToUTC=true, MICROS) */
	RN_PQ_DOUBLE,    /* Delta double */
	RN_PQ_BOOL       /* Delta boolean */
};

struct rn_pq_col {
	const char *name; /* leaf name; the writer keeps the pointer (static tables) */
	enum rn_pq_type type;
	int optional; /* nullable */
};

struct rn_pq_writer;

struct rn_pq_options {
	const char *created_by; /* NULL = "runnel-server version <v> (build dev)" */
	size_t page_bytes;      /* uncompressed page target; 0 = 1 MiB */
	int zstd_level;         /* 0 = 3 */
	size_t max_bytes;       /* cap on buffered compressed bytes; 0 = 1 GiB */
};

/* Creates a writer for `n` columns (1..256). `cols` must outlive the writer. RN_EINVAL,
 * RN_ENOMEM. */
int rn_pq_writer_create(struct rn_pq_writer **out, const struct rn_pq_col *cols, size_t n,
			const struct rn_pq_options *opt);
void rn_pq_writer_destroy(struct rn_pq_writer *w);

/* Sets column `col` of the current row. Setting a column twice in a row, or with a put of
 * the wrong type, is RN_EINVAL. RN_ENOMEM past the caps. */
int rn_pq_put_bytes(struct rn_pq_writer *w, size_t col, const void *p, size_t len);
int rn_pq_put_i64(struct rn_pq_writer *w, size_t col, int64_t v);
int rn_pq_put_i32(struct rn_pq_writer *w, size_t col, int32_t v);
int rn_pq_put_double(struct rn_pq_writer *w, size_t col, double v);
int rn_pq_put_bool(struct rn_pq_writer *w, size_t col, int v);
/* Ends the row: optional columns not set become null. RN_EINVAL if a required column was
 * not set (the row is then discarded: every column rolls back to the row start). */
int rn_pq_row_end(struct rn_pq_writer *w);

/* Rows ended so far in the open file, and an estimate of its final size in bytes. */
size_t rn_pq_rows(const struct rn_pq_writer *w);
size_t rn_pq_bytes(const struct rn_pq_writer *w);

/* Appends the complete file to out and resets the writer for the next file. Statistics of
 * the file just written stay readable with rn_pq_col_stats until the next put. RN_EINVAL if
 * there are no rows, RN_ENOMEM, RN_EIO (zstd). */
int rn_pq_finish(struct rn_pq_writer *w, struct rn_buf *out);

/* Statistics of one column of the last finished file. For STRING, min/max are already
 * truncated for Delta (min: first <= 32 code points; max: exact if <= 32 code points, else
 * the prefix + U+10FFFF), has_max is 0 when no bound was kept. Pointers are valid until the
 * next put. */
struct rn_pq_colstats {
	int64_t nulls;
	int has_min, has_max;
	int64_t min_i, max_i; /* INT32/INT64/TIMESTAMP */
	double min_d, max_d;  /* DOUBLE */
	const uint8_t *min_s, *max_s; /* STRING */
	size_t min_len, max_len;
};
int rn_pq_col_stats(const struct rn_pq_writer *w, size_t col, struct rn_pq_colstats *st);

#endif
