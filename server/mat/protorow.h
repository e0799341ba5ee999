/*
 * PROTO records into typed rows, I/O-free: the google.protobuf.DescriptorProto a Zerobus SDK
 * sends at stream creation (CreateIngestStreamRequest.descriptor_proto, one message with its
 * nested types inside it) is compiled once against a table schema (schema.h) into a decode
 * plan; each record is then decoded straight from the received bytes into the same row sink
 * jsonrow.h uses, with the same calls for the same logical row (schema order, begin/end around
 * the record, structs, arrays and maps). Strings and bytes are handed to the sink as pointers
 * into the record; no message objects are built.
 *
 * Mapping (docs/protocol.md §8.1), checked when the plan is built:
 *   - fields match columns by exact name; every proto field must name a column (unknown
 *     field: rejected) of a fitting type; a NOT NULL column must be covered by a field;
 *   - int32/sint32/sfixed32/uint32/fixed32/int64/sint64/sfixed64/uint64/fixed64 -> byte,
 *     short, integer, long, date (days), each value range-checked for the column's width;
 *     the 64-bit kinds also -> timestamp / timestamp_ntz (microseconds);
 *   - bool -> boolean; float -> float or double; double -> double;
 *   - string -> string (must be UTF-8) or decimal (text like "19.99", as jsonrow reads it);
 *     bytes -> binary; enum -> its number into an integral column, or its value name into a
 *     string column (a number the enum does not declare is rejected there);
 *   - message -> struct (fields matched the same way, recursively); repeated T -> array<T>
 *     (packed and unpacked encodings both accepted); repeated message -> array<struct>;
 *     a repeated message with fields key = 1 and value = 2 (a map<K,V>, map_entry or not)
 *     -> map<K,V>, entries in wire order (duplicate keys are passed on, as jsonrow does);
 *   - groups are refused; a message type that refers to itself, directly or not, is refused;
 *     at most RN_SCHEMA_MAX_FIELDS fields per message, RN_SCHEMA_MAX_DEPTH nesting levels.
 * Decoding follows protobuf: unknown field numbers are skipped; for a repeated field all
 * occurrences count, for a scalar the last one wins, a non-repeated message merges its
 * occurrences, and in a oneof the last member seen wins. A field the record lacks is
 * offered to sink->missing (top level, as jsonrow does), then becomes null (NOT NULL column or
 * proto2 required field: rejected); an absent repeated field or map is an empty one (protobuf
 * cannot tell the two apart). proto2 default values are not applied (absent means null). In
 * a map entry an absent key or value takes its type's default (0, "", false, first enum
 * value, empty message), as protobuf defines.
 *
 * A plan is created by rn_protorow_plan(), freed by rn_protorow_plan_free(), and is
 * read-only afterwards: any number of threads may decode with it at once. It points into
 * the table schema, which must outlive it.
 */
#ifndef RN_PROTOROW_H
#define RN_PROTOROW_H

#include <stddef.h>
#include <stdint.h>

#include "jsonrow.h"
#include "schema.h"

struct rn_protoplan;

/* Upper bound on a descriptor's size and on the message types it may declare. */
#define RN_PROTOROW_MAX_DESCRIPTOR (4u << 20)
#define RN_PROTOROW_MAX_TYPES 4096
/* Upper bound on the field runs (stretches of consecutive occurrences of one repeated or
 * message field) one record may have; beyond it the record is rejected. */
#define RN_PROTOROW_MAX_RUNS (1u << 20)

/* Compiles the serialized DescriptorProto [desc, desc+len) against `table`. On success *out
 * owns a new plan (free with rn_protorow_plan_free; it refers to `table`, which must outlive
 * it). RN_EINVAL with the reason in err (malformed descriptor, unknown field, a type that
 * does not fit its column, an uncovered NOT NULL column, recursion, caps), RN_ENOMEM. */
int rn_protorow_plan(const struct rn_schema *table, const uint8_t *desc, size_t len,
		     struct rn_protoplan **out, char *err, size_t cap);

/* Frees a plan; NULL is a no-op. */
void rn_protorow_plan_free(struct rn_protoplan *p);

/* The descriptor's message name (e.g. "table_events"); owned by the plan. */
const char *rn_protorow_plan_name(const struct rn_protoplan *p);

/*
 * Builds a table schema from a descriptor, for a table created by its first stream: one
 * column per field in field order, named as the field; proto2 optional -> nullable,
 * required -> NOT NULL; int32/sint32/sfixed32 -> integer; uint32/fixed32 -> long (their
 * values exceed integer); the 64-bit kinds -> long (a timestamp is indistinguishable from a
 * count on the wire, so nothing is guessed; operators who want timestamp declare the table);
 * float, double, bool, string, bytes -> float, double, boolean, string, binary; enum ->
 * string (its value names) when the descriptor declares it, else integer; message -> struct
 * (an empty message is refused); repeated T -> NOT NULL array<T> with non-null elements;
 * map<K,V> -> NOT NULL map<K,V> with non-null values. `out` must be zeroed; on success the
 * caller owns its contents (rn_schema_free), on error it is left empty. RN_EINVAL with the
 * reason in err, RN_ENOMEM.
 */
int rn_protorow_schema_from_descriptor(const uint8_t *desc, size_t len, struct rn_schema *out,
				       char *err, size_t cap);

/* Decodes one record [rec, rec+len) in one pass over its bytes into `sink`. 0, RN_EINVAL with
 * "field path: reason" in err (malformed wire data or a value that does not fit the table),
 * RN_ENOMEM, or a sink's error. On failure the sink may have seen part of the row and the
 * caller discards it. Thread-safe for a shared plan. */
int rn_protorow_decode(const struct rn_protoplan *p, const uint8_t *rec, size_t len,
		       const struct rn_row_sink *sink, char *err, size_t cap);

#endif
