/*
 * Fuzz target: PROTO records through a stream's descriptor (server/mat/protorow.c). Input:
 * a 2-byte little-endian length, that many bytes of serialized DescriptorProto, then one
 * record. The descriptor is planned against a fixed table with every column type (most
 * descriptors are refused there, which exercises the checks) and used to build a schema of
 * its own, which it is then planned against; the record is decoded through each plan that
 * was built. The sink checks that begin/end pair up and that byte values lie in the record.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protorow.h"
#include "rn_err.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct chk {
	const uint8_t *rec;
	size_t len;
	int depth;
};

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
	struct chk *k = c;
	const uint8_t *b = p;
	(void)f;
	/* strings and binaries point into the record; enum names point into the plan */
	if (f->type == RN_T_BINARY && n && (b < k->rec || b + n > k->rec + k->len))
		abort();
	volatile uint8_t x = 0;
	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	(void)x;
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
	struct chk *k = c;
	(void)f;
	(void)n;
	k->depth++;
	return 0;
}
static int n_end(void *c, const struct rn_field *f)
{
	struct chk *k = c;
	(void)f;
	if (--k->depth < 0)
		abort();
	return 0;
}

static void run(const struct rn_protoplan *p, const uint8_t *rec, size_t len)
{
	struct chk k = {rec, len, 0};
	struct rn_row_sink s = {&k, n_null, n_i64, n_f64, n_bytes, n_dec, n_begin, n_end, NULL};
	char err[256];
	int rc = rn_protorow_decode(p, rec, len, &s, err, sizeof(err));
	if (rc == 0 && k.depth != 0)
		abort(); /* a decoded row has balanced begin/end */
	if (rc != 0 && rc != RN_EINVAL && rc != RN_ENOMEM)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rn_schema fixed;
	static int ready;
	char err[256];
	if (!ready) {
		static const char *const cols[][2] = {
			{"id", "long"},
			{"n", "int"},
			{"sh", "short"},
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
			{"tags", "array<string>"},
			{"xs", "array<long>"},
			{"pts", "array<struct<x:double,y:double>>"},
			{"m", "map<string,struct<x:double,y:array<string>>>"},
			{"mk", "map<long,date>"},
			{"pos", "struct<lat:double,lon:double>"},
		};
		for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
			rn_schema_add_column(&fixed, cols[i][0], cols[i][1], i != 0, err,
					     sizeof(err));
		ready = 1;
	}
	if (size < 2)
		return 0;
	size_t dlen = (size_t)data[0] | (size_t)data[1] << 8;
	if (dlen > size - 2)
		dlen = size - 2;
	const uint8_t *desc = data + 2, *rec = desc + dlen;
	size_t rlen = size - 2 - dlen;

	struct rn_protoplan *p = NULL;
	if (rn_protorow_plan(&fixed, desc, dlen, &p, err, sizeof(err)) == 0) {
		run(p, rec, rlen);
		rn_protorow_plan_free(p);
	}
	struct rn_schema own = {0};
	if (rn_protorow_schema_from_descriptor(desc, dlen, &own, err, sizeof(err)) == 0) {
		/* a descriptor always fits the schema made from it */
		if (rn_protorow_plan(&own, desc, dlen, &p, err, sizeof(err)) != 0)
			abort();
		run(p, rec, rlen);
		rn_protorow_plan_free(p);
	}
	rn_schema_free(&own);
	return 0;
}
