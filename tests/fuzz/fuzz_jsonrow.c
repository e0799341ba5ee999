/*
 * Fuzz target: JSON records decoded against a typed table (server/mat/jsonrow.c) — every
 * column type, nested struct/array/map — and the first line of the input parsed as a type
 * name (server/mat/schema.c), as the server config and stream creation do.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jsonrow.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_null(void *c, const struct rn_field *f)
{
	(void)c;
	(void)f;
	return 0;
}
static int n_i64(void *c, const struct rn_field *f, int64_t v)
{
	(void)c;
	(void)f;
	(void)v;
	return 0;
}
static int n_f64(void *c, const struct rn_field *f, double v)
{
	(void)c;
	(void)f;
	(void)v;
	return 0;
}
static int n_bytes(void *c, const struct rn_field *f, const void *p, size_t n)
{
	(void)c;
	(void)f;
	(void)p;
	(void)n;
	return 0;
}
static int n_dec(void *c, const struct rn_field *f, rn_i128 u)
{
	(void)c;
	(void)f;
	(void)u;
	return 0;
}
static int n_begin(void *c, const struct rn_field *f, size_t n)
{
	(void)c;
	(void)f;
	(void)n;
	return 0;
}
static int n_end(void *c, const struct rn_field *f)
{
	(void)c;
	(void)f;
	return 0;
}

static const struct rn_row_sink sink = {.null = n_null,
					.i64 = n_i64,
					.f64 = n_f64,
					.bytes = n_bytes,
					.dec = n_dec,
					.begin = n_begin,
					.end = n_end};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rn_schema s;
	static int ready;
	char err[256];
	if (!ready) {
		static const char *const cols[][2] = {
			{"id", "long"},
			{"n", "int"},
			{"b", "byte"},
			{"f", "float"},
			{"d", "double"},
			{"ok", "boolean"},
			{"s", "string"},
			{"raw", "binary"},
			{"day", "date"},
			{"ts", "timestamp"},
			{"wall", "timestamp_ntz"},
			{"p", "decimal(9,3)"},
			{"big", "decimal(38,10)"},
			{"a", "array<array<int>>"},
			{"m", "map<string,struct<x:double,y:array<string>>>"},
			{"mk", "map<long,date>"},
		};
		for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
			rn_schema_add_column(&s, cols[i][0], cols[i][1], i != 0, err, sizeof(err));
		ready = 1;
	}
	rn_jsonrow_decode(&s, (const char *)data, size, &sink, err, sizeof(err));

	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	char type[512];
	if (n < sizeof(type)) {
		struct rn_field f = {0};
		memcpy(type, data, n);
		type[n] = 0;
		rn_type_parse(type, &f, err, sizeof(err));
		rn_field_free(&f);
	}
	return 0;
}
