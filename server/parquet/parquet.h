/*
 * An I/O-free Parquet file writer for every Delta Lake type, flat or nested. The schema is a
 * tree of rn_pq_col nodes; values are appended row by row into per-leaf builders (Dremel
 * repetition and definition levels); each leaf's open page is encoded (PLAIN or
 * RLE_DICTIONARY values, RLE-hybrid levels, data page v1) and zstd-compressed as soon as it
 * passes the page size, so memory holds compressed pages plus one open page per leaf. Rows
 * are grouped into row groups by a row or byte target; rn_pq_take() hands out the bytes of
 * finished row groups early so a large file need not sit in memory, and rn_pq_finish() lays
 * out the rest (column chunks, Thrift-compact FileMetaData with statistics and
 * column_orders). Writing the bytes to disk is the caller's job (server/delta).
 *
 * Lifetime: one writer per table being materialized, used by one thread at a time (it may
 * move: filled on the loop, finished by a flush worker); after finish it is empty and can
 * take the next file's rows. With rn_pq_options.page_submit, full pages are compressed by
 * pool workers meanwhile (pages.c), the only work of a writer done on other threads.
 *
 * Writing values. A row is the root group. In a group, `col` names a child: the field index
 * for the root and for STRUCTs; 0 (the element) for a LIST, where every put/begin/null
 * appends one element; 0 (the key, starting a new entry) or 1 (that entry's value) for a
 * MAP. rn_pq_put_*() set a leaf, rn_pq_put_null() sets any optional node to null,
 * rn_pq_begin() opens a STRUCT, LIST or MAP child and rn_pq_end() closes the innermost open
 * one. Optional struct fields, and map values, that are not set are null. For example the
 * row {id: 7, tags: ["a", null], attrs: {"k": {x: 1}}} with top-level columns id, tags,
 * attrs is:
 *   put_i64(0, 7); begin(1); put_bytes(0, "a"); put_null(0); end();
 *   begin(2); put_bytes(0, "k"); begin(1); put_i64(0, 1); end(); end(); row_end();
 * A flat schema needs only the puts and rn_pq_row_end(), with col = column index.
 */
#ifndef RN_PARQUET_H
#define RN_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

/* Column types. The first seven form enum rn_pq_type, as they did before the others existed,
 * so that callers' exhaustive switches over that enum keep compiling (-Wswitch); the rest
 * continue the numbering in enum rn_pq_type_more. rn_pq_col.type holds either. */
enum rn_pq_type {
	RN_PQ_STRING,    /* BYTE_ARRAY + STRING; values must be UTF-8 (caller checks) */
	RN_PQ_BINARY,    /* BYTE_ARRAY */
	RN_PQ_INT64,     /* Delta long */
	RN_PQ_INT32,     /* Delta integer */
	RN_PQ_TIMESTAMP, /* INT64 microseconds, TIMESTAMP(isAdjustedToUTC=true, MICROS) */
	RN_PQ_DOUBLE,    /* Delta double */
	RN_PQ_BOOL       /* Delta boolean */
};
enum rn_pq_type_more {
	RN_PQ_INT16 = RN_PQ_BOOL + 1, /* Delta short: INT32 + INT(16, signed); put_i32 */
	RN_PQ_INT8,                   /* Delta byte: INT32 + INT(8, signed); put_i32 */
	RN_PQ_FLOAT,                  /* Delta float: FLOAT; put_float */
	RN_PQ_DATE,                   /* Delta date: INT32 days since 1970-01-01 + DATE; put_i32 */
	RN_PQ_TIMESTAMP_NTZ, /* INT64 microseconds, TIMESTAMP(isAdjustedToUTC=false, MICROS) */
	RN_PQ_DECIMAL,       /* decimal(precision, scale): INT32 (p<=9), INT64 (p<=18) or
				big-endian FIXED_LEN_BYTE_ARRAY of the minimal width (p<=38);
				the puts take the unscaled value */
	RN_PQ_STRUCT,        /* group of `children` (n_children >= 1) */
	RN_PQ_LIST,          /* 3-level LIST; children[0] is the element (its `optional` is
				Delta's containsNull; its name is ignored: Parquet says "element") */
	RN_PQ_MAP            /* MAP; children[0] the key (must be required), children[1] the
				value (names ignored: "key" and "value") */
};

/* Dictionary choice per column (rn_pq_col.dict); only BYTE_ARRAY leaves use dictionaries. */
enum { RN_PQ_DICT_DEFAULT = 0, RN_PQ_DICT_ON = 1, RN_PQ_DICT_OFF = 2 };

/* One schema node. The writer keeps pointers into the caller's tables (names, children), so
 * they must outlive it (static tables). Trailing fields may be left zero. */
struct rn_pq_col {
	const char *name;     /* field name */
	int type;             /* enum rn_pq_type or rn_pq_type_more */
	int optional;         /* nullable */
	int precision, scale; /* RN_PQ_DECIMAL: 1 <= precision <= 38, 0 <= scale <= precision */
	int dict;             /* RN_PQ_DICT_*: overrides rn_pq_options.no_dict for this leaf */
	const struct rn_pq_col *children; /* STRUCT, LIST, MAP */
	size_t n_children;
};

struct rn_pq_writer;

/* A zeroed struct is the default configuration. */
struct rn_pq_options {
	const char *created_by; /* NULL = "runnel-server version <v> (build dev)" */
	size_t page_bytes;      /* uncompressed page target; 0 = 1 MiB */
	int zstd_level;         /* 0 = 3 */
	size_t max_bytes;       /* cap on buffered compressed bytes; 0 = 1 GiB */
	size_t row_group_rows;  /* close a row group after this many rows; 0 = no row limit */
	size_t row_group_bytes; /* ... or once its estimated size passes this; 0 = 128 MiB */
	int no_dict;            /* 1 = no dictionaries unless a column asks (RN_PQ_DICT_ON) */
	size_t dict_bytes;      /* per-chunk dictionary cap before PLAIN fallback; 0 = 1 MiB */
	size_t dict_entries;    /* ... and entry cap; 0 = 65536 */
	/* Page compression off the writer's thread: a page that fills at a row end is handed
	 * to page_submit (rn_pool_submit's contract, server/pool.h: run(arg) on a worker,
	 * done(arg, cancelled) later, exactly once, on any thread) and the writer goes on;
	 * the compressed pages join their column chunk in order when a row group closes (or
	 * earlier, once done). NULL: every page is compressed on the writer's thread. A
	 * refused submit, or page_jobs pages already in flight, compresses the page there
	 * too, so memory stays bounded and the rows keep flowing. The writer may then be
	 * destroyed or finished on another thread than the one that filled it. */
	int (*page_submit)(void *ctx, void (*run)(void *arg),
			   void (*done)(void *arg, int cancelled), void *arg);
	void *page_ctx;
	size_t page_jobs; /* uncompressed pages in flight per writer; 0 = 8 */
};

/* Creates a writer for `n` top-level columns (1..256; at most 1024 leaves, nesting depth
 * 32). `cols` must outlive the writer. RN_EINVAL for a bad schema (unknown type, decimal out
 * of range, empty group, optional map key, too deep), RN_ENOMEM. */
int rn_pq_writer_create(struct rn_pq_writer **out, const struct rn_pq_col *cols, size_t n,
			const struct rn_pq_options *opt);
void rn_pq_writer_destroy(struct rn_pq_writer *w);

/* Set child `col` of the innermost open group (see the top of this file). Setting a struct
 * field twice, a put of the wrong type, a null for a required node, a map value without its
 * key are RN_EINVAL and change nothing. Values outside the column's range (INT8/INT16,
 * decimal digits) are RN_ERANGE. RN_ENOMEM past the caps; the row must then be abandoned
 * with rn_pq_row_abort(). Put types: bytes for STRING/BINARY; i32 for INT32, INT16, INT8,
 * DATE and DECIMAL(p<=9); i64 for INT64, TIMESTAMP, TIMESTAMP_NTZ and any DECIMAL; double for
 * DOUBLE; float for FLOAT; bool for BOOL; decimal (16 bytes, big-endian two's complement
 * unscaled value) for any DECIMAL. */
int rn_pq_put_bytes(struct rn_pq_writer *w, size_t col, const void *p, size_t len);
int rn_pq_put_i64(struct rn_pq_writer *w, size_t col, int64_t v);
int rn_pq_put_i32(struct rn_pq_writer *w, size_t col, int32_t v);
int rn_pq_put_double(struct rn_pq_writer *w, size_t col, double v);
int rn_pq_put_float(struct rn_pq_writer *w, size_t col, float v);
int rn_pq_put_bool(struct rn_pq_writer *w, size_t col, int v);
int rn_pq_put_decimal(struct rn_pq_writer *w, size_t col, const uint8_t be[16]);
int rn_pq_put_null(struct rn_pq_writer *w, size_t col);
/* Opens the STRUCT, LIST or MAP child `col` (RN_EINVAL for any other node) / closes the
 * innermost open group: RN_EINVAL if none is open, or if a required struct field or map
 * value is missing (nothing changes; set it and end again, or abort the row). */
int rn_pq_begin(struct rn_pq_writer *w, size_t col);
int rn_pq_end(struct rn_pq_writer *w);
/* Ends the row: optional columns not set become null. RN_EINVAL if a required column was
 * not set or a group is still open (the row is then discarded, as by rn_pq_row_abort).
 * May cut pages and close a row group: RN_ENOMEM, RN_EIO (zstd) leave the open file unusable
 * (finish is refused; destroy the writer). */
int rn_pq_row_end(struct rn_pq_writer *w);
/* Discards the current row: every leaf rolls back to the row start. Never fails. */
void rn_pq_row_abort(struct rn_pq_writer *w);

/* Rows ended so far in the open file, and an estimate of its final size in bytes (bytes
 * already taken included). */
size_t rn_pq_rows(const struct rn_pq_writer *w);
size_t rn_pq_bytes(const struct rn_pq_writer *w);
/* Closes the open row group now (between rows; nothing to do without rows in it), as the
 * row and byte targets would. RN_EINVAL inside a row, RN_ENOMEM, RN_EIO (zstd), or the
 * error that broke the writer. */
int rn_pq_end_row_group(struct rn_pq_writer *w);
/* Heap bytes the writer holds now (its buffers' capacities: open pages, compressed chunks,
 * dictionaries, closed row groups not taken): what the server's memory budget counts
 * (memory_max_bytes). Linear in the number of leaves; no allocation. */
size_t rn_pq_mem(const struct rn_pq_writer *w);
/* Row groups closed so far in the open file. */
size_t rn_pq_row_groups(const struct rn_pq_writer *w);

/* Appends the bytes of the open file that are final (the PAR1 magic and closed row groups)
 * to out and drops them from memory; concatenating every take and the finish gives the file.
 * RN_ENOMEM (out unchanged). */
int rn_pq_take(struct rn_pq_writer *w, struct rn_buf *out);

/* Closes the last row group and appends the rest of the file (all of it if nothing was
 * taken) to out, then resets the writer for the next file. An empty out trades storage with
 * the writer instead of receiving a copy (its data pointer changes; a caller that keeps an
 * emptied out between files lets the two buffers alternate). Statistics of the file just
 * written stay readable with rn_pq_col_stats until the next put. RN_EINVAL if there are no
 * rows, RN_ENOMEM, RN_EIO (zstd); on failure out is unchanged. */
int rn_pq_finish(struct rn_pq_writer *w, struct rn_buf *out);

/* Delta-ready statistics of one node of the last finished file. Leaves: nulls counts the
 * level entries without a value (for a leaf outside any list: rows where it is null, parents
 * included). Groups: nulls counts the instances where the group itself was null while its
 * parent was present (a top-level LIST/MAP: rows where it is null); no min/max. min/max
 * follow Delta: none for BOOL, BINARY, groups, and FLOAT/DOUBLE columns holding a NaN
 * (nans > 0). STRING min/max are truncated as Delta's writer does (min: first <= 32 code
 * points; max: exact if <= 32 code points, else the prefix, extended over any U+10FFFF that
 * follows it, + U+10FFFF; has_max = 0 when that would take over 64 code points or more bytes
 * than the writer keeps per value, 140). Pointers are valid until the next put. */
struct rn_pq_colstats {
	int64_t nulls;
	int has_min, has_max;
	int64_t min_i, max_i; /* integer types, DATE (days), TIMESTAMP(_NTZ) (us), DECIMAL p<=18
				 (unscaled) */
	double min_d, max_d;  /* DOUBLE, FLOAT */
	const uint8_t *min_s, *max_s; /* STRING */
	size_t min_len, max_len;
	int64_t nans;                     /* FLOAT/DOUBLE NaN values */
	uint8_t min_dec[16], max_dec[16]; /* DECIMAL: unscaled, 16-byte big-endian */
};
/* By top-level column index (for flat schemas: the column). RN_EINVAL for a bad index. */
int rn_pq_col_stats(const struct rn_pq_writer *w, size_t col, struct rn_pq_colstats *st);
/* By schema node: any node of the tree passed to create, by address. RN_EINVAL if unknown. */
int rn_pq_node_stats(const struct rn_pq_writer *w, const struct rn_pq_col *node,
		     struct rn_pq_colstats *st);

/* Delta add.stats JSON (NUL-terminated, rn_malloc'd; NULL on ENOMEM) for the file just
 * finished: numRecords = rows, and minValues/maxValues/nullCount of the top-level primitive
 * columns among cols (timestamps as ISO 8601 UTC with milliseconds, dates as YYYY-MM-DD,
 * decimals as JSON numbers); nested columns get none, so readers just scan them. */
char *rn_pq_delta_stats(const struct rn_pq_writer *w, const struct rn_pq_col *cols, size_t ncols,
			int64_t rows);

/* Formats a 16-byte big-endian unscaled decimal with `scale` digits after the point, as a
 * JSON number ("-12.50", "0.001", "123"). Needs cap >= 42. Returns the length. */
size_t rn_pq_decimal_format(char *buf, size_t cap, const uint8_t be[16], int scale);

#endif
