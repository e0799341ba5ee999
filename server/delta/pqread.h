/*
 * A small, I/O-free Parquet reader for the files this project writes (server/parquet): the
 * Thrift-compact footer, the schema tree, data pages v1 with RLE/bit-packed hybrid levels,
 * PLAIN or RLE_DICTIONARY values (PLAIN dictionary page), zstd-compressed or uncompressed
 * pages, and Dremel record assembly for nested STRUCT, 3-level LIST and MAP columns. It reads
 * Delta checkpoints (server/delta/checkpoint.c, log.c) and the small data files compaction
 * rewrites. It deliberately does not read what we never write: data page v2, other codecs,
 * DELTA_* encodings, INT96, legacy 2-level lists or repeated primitives are RN_ENOTSUP; any
 * malformed or inconsistent input is RN_ECORRUPT, never a crash (fuzzed by
 * tests/fuzz/fuzz_pqread.c). It does not know Delta.
 *
 * Lifetime: rn_pqr_open() parses a whole file held by the caller (who keeps the bytes alive
 * until rn_pqr_close); the reader owns everything else. One thread at a time.
 */
#ifndef RN_PQREAD_H
#define RN_PQREAD_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

/* Physical types (Parquet Type enum). */
enum {
	RN_PQR_BOOLEAN,
	RN_PQR_INT32,
	RN_PQR_INT64,
	RN_PQR_INT96,
	RN_PQR_FLOAT,
	RN_PQR_DOUBLE,
	RN_PQR_BYTE_ARRAY,
	RN_PQR_FLBA
};

/* What a node is, from its annotations. */
enum rn_pqr_kind {
	RN_PQR_LEAF,
	RN_PQR_STRUCT,  /* a plain group */
	RN_PQR_LIST,    /* LIST-annotated group: one repeated group child with one child */
	RN_PQR_MAP,     /* MAP-annotated group: one repeated group child with key (+ value) */
	RN_PQR_REPEATED /* the repeated group inside a LIST or MAP; emits no events itself */
};

/* One schema node; nodes[0] is the root. */
struct rn_pqr_node {
	char *name;
	int kind;       /* enum rn_pqr_kind */
	int physical;   /* leaves: RN_PQR_*; groups -1 */
	int repetition; /* 0 required, 1 optional, 2 repeated (root: 0) */
	int converted;  /* ConvertedType, or -1 */
	int logical;    /* LogicalType union member id, or 0 */
	int ts_utc;     /* TIMESTAMP: isAdjustedToUTC */
	int ts_unit;    /* TIMESTAMP: 1 millis, 2 micros, 3 nanos */
	int int_bits;   /* INTEGER: bit width (8, 16, 32, 64) */
	int scale, precision, type_length;
	size_t parent;      /* index of the parent (root: 0) */
	size_t first_child; /* index of the first child; children are consecutive subtrees */
	size_t nchildren;
	size_t index; /* position among its parent's children */
	int def, rep; /* definition / repetition level at which this node is present */
	size_t leaf;  /* leaves: leaf (column) number */
	size_t end;   /* one past the last node of this subtree */
};

/* One value handed to a sink: integers (also BOOLEAN 0/1, INT32 sign-extended) in i, FLOAT
 * and DOUBLE in d, BYTE_ARRAY and FLBA as (p, len) valid until rn_pqr_close. */
struct rn_pqr_value {
	int64_t i;
	double d;
	const uint8_t *p;
	size_t len;
};

/* Record assembly events, in row order, depth first. `n` is the node (its `index` is the
 * child position the writer API uses: field index, 0 for a list element or map key, 1 for
 * a map value). begin/end bracket STRUCT, LIST and MAP nodes that are present; null marks
 * an absent optional node (its subtree emits nothing). Return non-zero to stop (returned). */
struct rn_pqr_sink {
	int (*begin)(void *ctx, const struct rn_pqr_node *n);
	int (*end)(void *ctx, const struct rn_pqr_node *n);
	int (*null)(void *ctx, const struct rn_pqr_node *n);
	int (*value)(void *ctx, const struct rn_pqr_node *n, const struct rn_pqr_value *v);
	int (*row_end)(void *ctx);
};

struct rn_pqr;

/* Parses the footer of the `len`-byte file `data` (kept alive by the caller). max_mem caps
 * the reader's own allocations (decompressed pages, levels, values); 0 = 256 MiB.
 * RN_ECORRUPT, RN_ENOTSUP, RN_ENOMEM; the reason is in *out's errmsg when *out is set, so
 * on failure the reader is still handed out and must be closed. */
int rn_pqr_open(struct rn_pqr **out, const uint8_t *data, size_t len, size_t max_mem);
void rn_pqr_close(struct rn_pqr *r);
const char *rn_pqr_errmsg(const struct rn_pqr *r);

int64_t rn_pqr_num_rows(const struct rn_pqr *r);

/* num_rows of a serialized FileMetaData (the `len` footer bytes before the length and the
 * trailing PAR1), without reading the rest of the file. 0, or RN_ECORRUPT when it is not
 * valid Thrift compact or has no valid num_rows. */
int rn_pqr_footer_num_rows(const uint8_t *meta, size_t len, int64_t *num_rows);
const struct rn_pqr_node *rn_pqr_nodes(const struct rn_pqr *r, size_t *n);

/* Decodes every column and assembles the rows into sink calls, one row group at a time:
 * the pages of a row group are freed once its rows are delivered, so values handed to the
 * sink live until its row_end returns, and memory holds one row group (rn_pqr_group_bytes).
 * Once per reader. RN_ECORRUPT, RN_ENOTSUP, RN_ENOMEM, or what a sink callback returned
 * (rows of earlier row groups have been delivered then). */
int rn_pqr_read(struct rn_pqr *r, const struct rn_pqr_sink *sink, void *ctx);

/* An estimate from the footer of the memory rn_pqr_read needs for the file's largest row
 * group: its uncompressed column chunks plus the levels and values decoded from them (a
 * read needs less than twice this: dictionaries and index arrays come on top). */
size_t rn_pqr_group_bytes(const struct rn_pqr *r);

/* Convenience: every row as one line of JSON text appended to out ("{"col":value}\n" with
 * only the non-null top-level columns; structs as objects without their null fields, maps
 * as objects, lists as arrays, strings as JSON strings, binary as strings (bytes that are not
 * UTF-8 become U+FFFD), integers and floats as numbers, booleans). That is exactly a Delta
 * action line for a checkpoint row. Errors as rn_pqr_read. */
int rn_pqr_to_json_lines(struct rn_pqr *r, struct rn_buf *out);

#endif
