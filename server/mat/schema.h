/*
 * Table schemas, I/O-free: the Delta column types a typed table can have (every primitive,
 * decimal, and struct/array/map nesting), parsed from Spark's DDL type names as operators
 * write them in the server config ("long", "decimal(10,2)", "array<struct<x:double,y:double>>"),
 * and rendered as the Spark JSON schema that goes into the Delta log's metaData.
 *
 * A schema is a tree of rn_field nodes owned by one struct rn_schema; build it with
 * rn_schema_add_column() and free it with rn_schema_free(). Pure functions, no globals.
 */
#ifndef RN_SCHEMA_H
#define RN_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"
#include "rn_i128.h"

enum rn_type {
	RN_T_STRING,
	RN_T_LONG,
	RN_T_INT,
	RN_T_SHORT,
	RN_T_BYTE,
	RN_T_FLOAT,
	RN_T_DOUBLE,
	RN_T_BOOL,
	RN_T_BINARY,
	RN_T_DATE,
	RN_T_TIMESTAMP,
	RN_T_TIMESTAMP_NTZ,
	RN_T_DECIMAL,
	RN_T_STRUCT,
	RN_T_ARRAY,
	RN_T_MAP
};

#define RN_SCHEMA_MAX_DEPTH 32    /* nesting levels of struct/array/map */
#define RN_SCHEMA_MAX_FIELDS 2048 /* fields of one struct (the table included) */

struct rn_field {
	char *name; /* NULL for an array element, a map key or value */
	enum rn_type type;
	int nullable;            /* for elements: containsNull; for map values: valueContainsNull */
	int precision, scale;    /* RN_T_DECIMAL: 1..38, 0..precision */
	struct rn_field *fields; /* RN_T_STRUCT: its fields; RN_T_ARRAY: [0] = element;
				  * RN_T_MAP: [0] = key (never null), [1] = value */
	size_t nfields;
};

struct rn_schema {
	struct rn_field root; /* an RN_T_STRUCT; its fields are the columns */
};

/* Parses a type name into f (name and nullable untouched). Accepted, case-insensitive:
 * string, long|bigint, integer|int, short|smallint, byte|tinyint, float|real, double,
 * boolean, binary, date, timestamp, timestamp_ntz, decimal(p,s) (decimal = decimal(10,0)),
 * array<T>, map<K,V> (K primitive), struct<name:T,...>. Nested elements, map values and
 * struct fields are nullable. 0 or RN_EINVAL with a message in err. Free f with
 * rn_field_free. */
int rn_type_parse(const char *s, struct rn_field *f, char *err, size_t cap);

/* Adds a column to the schema (the type string as for rn_type_parse). RN_EINVAL (bad type,
 * empty or duplicate name, too many columns), RN_ENOMEM. */
int rn_schema_add_column(struct rn_schema *s, const char *name, const char *type, int nullable,
			 char *err, size_t cap);

/* Index of the column named `name` (exact match), or -1. */
int rn_schema_find(const struct rn_schema *s, const char *name, size_t len);

/* Appends the Spark JSON schema ({"type":"struct","fields":[...]}) to out. */
int rn_schema_to_json(const struct rn_schema *s, struct rn_buf *out);

/* Parses a Spark JSON schema ({"type":"struct","fields":[...]}, as in a Delta log's
 * schemaString) into s (zeroed by the caller). RN_EINVAL with the reason in err (a type
 * this schema model does not know), RN_ENOMEM. Free s with rn_schema_free in every case. */
int rn_schema_from_json(struct rn_schema *s, const char *json, size_t len, char *err, size_t cap);

/* Parses decimal text of exactly n bytes ("-12.5", "19.99"; no exponent) for a decimal
 * column f into its unscaled value. 0, or RN_EINVAL with *why set: not a decimal number,
 * more fractional digits than the scale, or more digits than the precision (checked before
 * they could overflow). Pure. */
int rn_decimal_parse(const struct rn_field *f, const char *s, size_t n, rn_i128 *out,
		     const char **why);

/* The Spark name of a primitive type ("long", "decimal(10,2)"), or of the kind for nested
 * ones ("struct", "array", "map"). Writes into buf. */
const char *rn_type_name(const struct rn_field *f, char *buf, size_t cap);

void rn_field_free(struct rn_field *f);
void rn_schema_free(struct rn_schema *s);

#endif
