/*
 * JSON records into typed rows, I/O-free: one JSON object per record, decoded against a
 * table schema (schema.h) under Zerobus's JSON rules (docs/protocol.md §8.2), a little
 * more forgiving where that costs nothing:
 *   - every member must name a column (unknown member: rejected); a NOT NULL column must be
 *     present and not null; a missing nullable column is null;
 *   - integers: JSON integers, or strings of digits (BIGINT beyond 2^53); range-checked for
 *     the column's width; float/double: numbers, or "NaN", "Infinity", "-Infinity";
 *   - timestamp / timestamp_ntz: integer microseconds since the epoch, or RFC 3339 text
 *     (timestamp: with its zone; timestamp_ntz: the wall-clock time, without a zone);
 *   - date: integer days since the epoch, or "YYYY-MM-DD"; dates and timestamps outside the
 *     years 1..9999 are refused (readers cannot represent them);
 *   - binary: base64 text; decimal: a string or number like "19.99" (no exponent), at most
 *     the column's scale of fractional digits and its precision in all;
 *   - string: a JSON string (escapes decoded; a lone surrogate escape becomes U+FFFD);
 *     struct: object; array: JSON array; map: object (keys converted to the key type).
 * Values are handed to a sink in schema order (members may come in any order), with
 * begin/end around struct, array and map values, so a columnar writer can take them as is.
 * A record that fails is reported with the field path and the reason; the sink may then
 * have seen part of the row, and the caller discards it.
 */
#ifndef RN_JSONROW_H
#define RN_JSONROW_H

#include <stddef.h>
#include <stdint.h>

#include "schema.h"

struct rn_row_sink {
	void *ctx;
	/* f is the schema node the value is for; for array elements and map keys/values it is
	 * the element/key/value node. Each returns 0 or an RN_E* code (which stops decoding). */
	int (*null)(void *ctx, const struct rn_field *f);
	/* long, integer, short, byte, date (days), timestamp(_ntz) (us), boolean (0/1) */
	int (*i64)(void *ctx, const struct rn_field *f, int64_t v);
	int (*f64)(void *ctx, const struct rn_field *f, double v); /* float, double */
	int (*bytes)(void *ctx, const struct rn_field *f, const void *p,
		     size_t n); /* string, binary */
	int (*dec)(void *ctx, const struct rn_field *f, rn_i128 unscaled);
	/* struct: n = its field count; array: n = elements; map: n = entries (each entry is
	 * key then value) */
	int (*begin)(void *ctx, const struct rn_field *f, size_t n);
	int (*end)(void *ctx, const struct rn_field *f);
	/* Optional (may be NULL): a top-level column the record does not name. Return 0 after
	 * supplying its value through the sink yourself (e.g. from the record's envelope), or
	 * RN_ENOTFOUND to let the usual rule apply (null, or an error for NOT NULL). */
	int (*missing)(void *ctx, const struct rn_field *f);
};

/* Decodes one record. 0, RN_EINVAL with "field path: reason" in err (the record does not
 * fit the table), RN_ENOMEM, or a sink's error. */
int rn_jsonrow_decode(const struct rn_schema *s, const char *json, size_t len,
		      const struct rn_row_sink *sink, char *err, size_t cap);

#endif
