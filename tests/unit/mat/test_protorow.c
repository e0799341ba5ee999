/*
 * PROTO records decoded through a stream's descriptor (server/mat/protorow.c): every type
 * mapping, nesting, repeated fields packed and unpacked, maps, oneofs, missing and required
 * fields, plan errors (unknown and misfit fields, recursion, caps), malformed records, the
 * schema built from a descriptor, and allocation failures. Descriptors are written in a
 * small text form (see desc()) and encoded here; records are encoded with rn_pbwire. Where a
 * JSON record means the same row, its jsonrow output is the expected output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonrow.h"
#include "protorow.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rec_sink.h"
#include "schema.h"

static int s_missing(void *c, const struct rn_field *f)
{
	(void)c;
	if (!strcmp(f->name, "src")) {
		rec_emit("src=<env> ");
		return 0;
	}
	return RN_ENOTFOUND;
}

static const struct rn_row_sink msink = {NULL,    rec_null,  rec_i64, rec_f64,  rec_bytes,
					 rec_dec, rec_begin, rec_end, s_missing};

/* ---- descriptors in a text form ----
 * msg   := Name ['!'] '{' item* '}'        '!' sets options.map_entry
 * item  := msg | enum | field ';'
 * enum  := 'enum' Name '{' NAME '=' num (',' NAME '=' num)* '}'
 * field := label type name '=' num ['@' oneof]     label: opt req rep
 * type  := a scalar name (int32, string, ...), 'M:' type_name, 'E:' type_name,
 *          'T' num (a raw type number, no type_name)
 */
static const char *const scalar_types[] = {
	"",        "double",   "float",    "int64",  "uint64",  "int32", "fixed64",
	"fixed32", "bool",     "string",   "group",  "message", "bytes", "uint32",
	"enum",    "sfixed32", "sfixed64", "sint32", "sint64",
};

static const char *tok(const char **s, char *buf, size_t cap)
{
	size_t n = 0;
	while (**s == ' ' || **s == '\n' || **s == '\t')
		(*s)++;
	if (strchr("{};,=@!", **s) && **s) {
		buf[n++] = *(*s)++;
	} else {
		while (**s && !strchr(" \n\t{};,=@!", **s) && n + 1 < cap)
			buf[n++] = *(*s)++;
	}
	buf[n] = 0;
	return buf;
}

static void put_msg(const char **s, const char *name, struct rn_buf *b);

static void put_enum(const char **s, struct rn_buf *b)
{
	char t[128], name[128];
	struct rn_buf e = {0};
	assert_int_equal(rn_pb_put_str(&e, 1, tok(s, name, sizeof(name))), 0);
	assert_string_equal(tok(s, t, sizeof(t)), "{");
	for (;;) {
		struct rn_buf v = {0};
		tok(s, name, sizeof(name));
		assert_string_equal(tok(s, t, sizeof(t)), "=");
		long num = strtol(tok(s, t, sizeof(t)), NULL, 10);
		assert_int_equal(rn_pb_put_str(&v, 1, name), 0);
		assert_int_equal(rn_pb_put_uint(&v, 2, (uint64_t)(int64_t)num), 0);
		assert_int_equal(rn_pb_put_bytes(&e, 2, v.data, v.len), 0);
		rn_buf_free(&v);
		if (!strcmp(tok(s, t, sizeof(t)), "}"))
			break;
		assert_string_equal(t, ",");
	}
	assert_int_equal(rn_pb_put_bytes(b, 4, e.data, e.len), 0);
	rn_buf_free(&e);
}

static void put_field(const char **s, const char *label, struct rn_buf *b)
{
	char type[128], name[128], t[64];
	struct rn_buf f = {0};
	int lb = !strcmp(label, "opt") ? 1 : !strcmp(label, "req") ? 2 : 3;
	tok(s, type, sizeof(type));
	tok(s, name, sizeof(name));
	assert_string_equal(tok(s, t, sizeof(t)), "=");
	long num = strtol(tok(s, t, sizeof(t)), NULL, 10);
	assert_int_equal(rn_pb_put_str(&f, 1, name), 0);
	assert_int_equal(rn_pb_put_uint(&f, 3, (uint64_t)num), 0);
	assert_int_equal(rn_pb_put_uint(&f, 4, (uint64_t)lb), 0);
	if (!strncmp(type, "M:", 2) || !strncmp(type, "E:", 2)) {
		assert_int_equal(rn_pb_put_uint(&f, 5, type[0] == 'M' ? 11 : 14), 0);
		assert_int_equal(rn_pb_put_str(&f, 6, type + 2), 0);
	} else if (type[0] == 'T') {
		assert_int_equal(rn_pb_put_uint(&f, 5, (uint64_t)atoi(type + 1)), 0);
	} else {
		size_t i;
		for (i = 1; i < sizeof(scalar_types) / sizeof(scalar_types[0]); i++)
			if (!strcmp(type, scalar_types[i]))
				break;
		if (i == sizeof(scalar_types) / sizeof(scalar_types[0]))
			fail_msg("test descriptor: unknown type %s", type);
		assert_int_equal(rn_pb_put_uint(&f, 5, i), 0);
	}
	tok(s, t, sizeof(t));
	if (!strcmp(t, "@")) {
		assert_int_equal(rn_pb_put_uint(&f, 9, (uint64_t)atoi(tok(s, t, sizeof(t)))), 0);
		tok(s, t, sizeof(t));
	}
	assert_string_equal(t, ";");
	assert_int_equal(rn_pb_put_bytes(b, 2, f.data, f.len), 0);
	rn_buf_free(&f);
}

static void put_msg(const char **s, const char *name, struct rn_buf *b)
{
	char t[128];
	assert_int_equal(rn_pb_put_str(b, 1, name), 0);
	tok(s, t, sizeof(t));
	if (!strcmp(t, "!")) {
		static const uint8_t map_entry[] = {0x38, 0x01}; /* MessageOptions.map_entry */
		assert_int_equal(rn_pb_put_bytes(b, 7, map_entry, sizeof(map_entry)), 0);
		tok(s, t, sizeof(t));
	}
	assert_string_equal(t, "{");
	for (;;) {
		tok(s, t, sizeof(t));
		if (!strcmp(t, "}"))
			return;
		if (!strcmp(t, "opt") || !strcmp(t, "req") || !strcmp(t, "rep")) {
			put_field(s, t, b);
		} else if (!strcmp(t, "enum")) {
			put_enum(s, b);
		} else {
			struct rn_buf n = {0};
			char nested[128];
			snprintf(nested, sizeof(nested), "%s", t);
			put_msg(s, nested, &n);
			assert_int_equal(rn_pb_put_bytes(b, 3, n.data, n.len), 0);
			rn_buf_free(&n);
		}
	}
}

static struct rn_buf desc(const char *text)
{
	struct rn_buf b = {0};
	char name[128];
	const char *s = text;
	tok(&s, name, sizeof(name));
	put_msg(&s, name, &b);
	return b;
}

/* ---- record encoding ---- */

static void pv(struct rn_buf *b, uint32_t num, uint64_t v)
{
	assert_int_equal(rn_pb_put_uint(b, num, v), 0);
}

static void ps(struct rn_buf *b, uint32_t num, const char *s)
{
	assert_int_equal(rn_pb_put_str(b, num, s), 0);
}

static void pf32(struct rn_buf *b, uint32_t num, uint32_t bits)
{
	assert_int_equal(rn_pb_put_tag(b, num, RN_PB_I32), 0);
	assert_int_equal(rn_buf_append(b, &bits, 4), 0);
}

static void pf64(struct rn_buf *b, uint32_t num, uint64_t bits)
{
	assert_int_equal(rn_pb_put_tag(b, num, RN_PB_I64), 0);
	assert_int_equal(rn_buf_append(b, &bits, 8), 0);
}

static uint32_t fbits(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	return u;
}

static uint64_t dbits(double x)
{
	uint64_t u;
	memcpy(&u, &x, 8);
	return u;
}

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Appends field `num` holding message m (and frees m). */
static void pm(struct rn_buf *b, uint32_t num, struct rn_buf *m)
{
	assert_int_equal(rn_pb_put_bytes(b, num, m->data ? m->data : (const uint8_t *)"", m->len),
			 0);
	rn_buf_free(m);
}

/* Packed varints as one LEN field. */
static void ppacked(struct rn_buf *b, uint32_t num, const uint64_t *v, size_t n)
{
	struct rn_buf p = {0};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rn_pb_put_varint(&p, v[i]), 0);
	pm(b, num, &p);
}

/* ---- helpers ---- */

static struct rn_schema table(const char *const (*cols)[3], size_t n)
{
	struct rn_schema s = {0};
	char err[256];
	for (size_t i = 0; i < n; i++)
		if (rn_schema_add_column(&s, cols[i][0], cols[i][1], cols[i][2][0] == '1', err,
					 sizeof(err)))
			fail_msg("column %s: %s", cols[i][0], err);
	return s;
}

static struct rn_protoplan *plan_ok(const struct rn_schema *s, const char *text)
{
	struct rn_buf d = desc(text);
	struct rn_protoplan *p = NULL;
	char err[256];
	int rc = rn_protorow_plan(s, d.data, d.len, &p, err, sizeof(err));
	rn_buf_free(&d);
	if (rc)
		fail_msg("plan: rc %d (%s)", rc, err);
	assert_non_null(p);
	return p;
}

static void plan_bad(const struct rn_schema *s, const char *text, const char *expect)
{
	struct rn_buf d = desc(text);
	struct rn_protoplan *p = (struct rn_protoplan *)&d;
	char err[256];
	int rc = rn_protorow_plan(s, d.data, d.len, &p, err, sizeof(err));
	rn_buf_free(&d);
	if (rc != RN_EINVAL)
		fail_msg("plan for '%.60s': rc %d, want RN_EINVAL", text, rc);
	assert_null(p);
	if (!strstr(err, expect))
		fail_msg("plan error:\n got  '%s'\n want '%s'", err, expect);
}

/* Decodes and compares the sink's text (or the error) with `expect` (a substring). */
static void dec(const struct rn_protoplan *p, const struct rn_buf *rec, int want,
		const char *expect)
{
	char err[256];
	rec_out[0] = 0;
	int rc = rn_protorow_decode(p, rec->data, rec->len, &rec_sink, err, sizeof(err));
	if (rc != want)
		fail_msg("decode: rc %d want %d (%s) out '%s'", rc, want, err, rec_out);
	const char *got = rc ? err : rec_out;
	if (!strstr(got, expect))
		fail_msg("decode:\n got  '%s'\n want '%s'", got, expect);
}

/* jsonrow's output for the same logical row. */
static const char *json_out(const struct rn_schema *s, const char *json)
{
	static char keep[sizeof(rec_out)];
	char err[256];
	rec_out[0] = 0;
	if (rn_jsonrow_decode(s, json, strlen(json), &rec_sink, err, sizeof(err)))
		fail_msg("jsonrow: %s", err);
	snprintf(keep, sizeof(keep), "%s", rec_out);
	return keep;
}

/* ---- tests ---- */

/* The columns of test_schema.c's table, one field for each. */
static const char *const all_cols[][3] = {
	{"id", "long", "0"},
	{"n", "integer", "1"},
	{"sh", "short", "1"},
	{"b", "byte", "1"},
	{"f", "float", "1"},
	{"d", "double", "1"},
	{"ok", "boolean", "1"},
	{"name", "string", "1"},
	{"raw", "binary", "1"},
	{"day", "date", "1"},
	{"ts", "timestamp", "1"},
	{"wall", "timestamp_ntz", "1"},
	{"price", "decimal(6,2)", "1"},
	{"big", "decimal(38,0)", "1"},
	{"tags", "array<string>", "1"},
	{"m", "map<int,double>", "1"},
	{"pos", "struct<lat:double,lon:double>", "1"},
};

static const char all_desc[] =
	"table_t { req int64 id=1; opt int32 n=2; opt sint32 sh=3; opt sfixed32 b=4;"
	" opt float f=5; opt double d=6; opt bool ok=7; opt string name=8; opt bytes raw=9;"
	" opt int32 day=10; opt int64 ts=11; opt sfixed64 wall=12; opt string price=13;"
	" opt string big=14; rep string tags=15; rep M:MEntry m=16; opt M:.pkg.table_t.Pos pos=17;"
	" MEntry! { opt int32 key=1; opt double value=2; }"
	" Pos { opt double lat=1; opt double lon=2; } }";

static void every_type(void **st)
{
	(void)st;
	struct rn_schema s = table(all_cols, sizeof(all_cols) / sizeof(all_cols[0]));
	struct rn_protoplan *p = plan_ok(&s, all_desc);
	struct rn_buf r = {0};
	assert_string_equal(rn_protorow_plan_name(p), "table_t");

	/* fields in reverse order; the row comes out in schema order */
	struct rn_buf pos = {0};
	pf64(&pos, 2, dbits(13.4));
	pf64(&pos, 1, dbits(52.5));
	pm(&r, 17, &pos);
	struct rn_buf e1 = {0}, e2 = {0};
	pv(&e1, 1, 7);
	pf64(&e1, 2, dbits(0.25));
	pv(&e2, 1, (uint64_t)(int64_t)-1);
	pf64(&e2, 2, dbits(-2.5));
	pm(&r, 16, &e1);
	pm(&r, 16, &e2);
	ps(&r, 15, "a");
	ps(&r, 15, "");
	ps(&r, 14, "99999999999999999999999999999999999999");
	ps(&r, 13, "-1234.5");
	pf64(&r, 12, (uint64_t)1795600800000000LL);
	pv(&r, 11, 1795597200500000LL);
	pv(&r, 10, (uint64_t)(int64_t)-1);
	ps(&r, 9, "hello");
	ps(&r, 8, "caf\xc3\xa9 \"q\"");
	pv(&r, 7, 1);
	pf64(&r, 6, dbits(-1.0 / 0.0));
	pf32(&r, 5, fbits(1.5f));
	pf32(&r, 4, (uint32_t)-128);
	pv(&r, 3, zz(32767));
	pv(&r, 2, (uint64_t)(int64_t)INT32_MIN); /* int32 negatives are 10-byte varints */
	pv(&r, 1, 9007199254740993ULL);
	const char *want = json_out(
		&s, "{\"pos\":{\"lon\":13.4,\"lat\":52.5},\"id\":\"9007199254740993\","
		    "\"n\":-2147483648,\"sh\":32767,\"b\":-128,\"f\":1.5,\"d\":\"-Infinity\","
		    "\"ok\":true,\"name\":\"caf\\u00e9 \\\"q\\\"\",\"raw\":\"aGVsbG8=\","
		    "\"day\":\"1969-12-31\",\"ts\":\"2026-11-25T10:00:00.5+01:00\","
		    "\"wall\":\"2026-11-25 10:00:00\",\"price\":\"-1234.5\","
		    "\"big\":\"99999999999999999999999999999999999999\",\"tags\":[\"a\",\"\"],"
		    "\"m\":{\"7\":0.25,\"-1\":-2.5}}");
	dec(p, &r, 0, want);
	/* the literal text, so the comparison itself is pinned */
	dec(p, &r, 0,
	    "{17 id=9007199254740993 n=-2147483648 sh=32767 b=-128 f=1.5 d=-inf ok=1 "
	    "name='caf\xc3\xa9 \"q\"' raw='hello' day=-1 ts=1795597200500000 "
	    "wall=1795600800000000 price=-123450 big=99999999999999999999999999999999999999 "
	    "tags[2 ='a' ='' ] m<2 =7 =0.25 =-1 =-2.5 > pos{2 lat=52.5 lon=13.4 } } ");
	rn_buf_free(&r);

	/* only the required field: everything else null, the repeated ones empty */
	pv(&r, 1, 1);
	want = json_out(&s, "{\"id\":1,\"tags\":[],\"m\":{}}");
	dec(p, &r, 0, want);
	dec(p, &r, 0,
	    "{17 id=1 n=null sh=null b=null f=null d=null ok=null name=null raw=null "
	    "day=null ts=null wall=null price=null big=null tags[0 ] m<0 > pos=null } ");
	rn_buf_free(&r);
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* The other integer kinds, widening, and enums (number or name). */
static void integers_and_enums(void **st)
{
	(void)st;
	static const char *const cols[][3] = {
		{"u32", "long", "1"},
		{"u64", "long", "1"},
		{"fx32", "long", "1"},
		{"fx64", "long", "1"},
		{"s64", "long", "1"},
		{"i32l", "long", "1"},
		{"i64i", "integer", "1"},
		{"i64b", "byte", "1"},
		{"color", "string", "1"},
		{"colnum", "integer", "1"},
		{"ext", "short", "1"},
		{"fd", "double", "1"},
		{"colors", "array<string>", "1"},
	};
	struct rn_schema s = table(cols, sizeof(cols) / sizeof(cols[0]));
	struct rn_protoplan *p = plan_ok(
		&s,
		"T { opt uint32 u32=1; opt uint64 u64=2; opt fixed32 fx32=3; opt fixed64 fx64=4;"
		" opt sint64 s64=5; opt int32 i32l=6; opt int64 i64i=7; opt int64 i64b=8;"
		" opt E:Color color=9; opt E:T.Color colnum=10; opt E:.other.Outside ext=11;"
		" opt float fd=12; rep E:Color colors=13;"
		" enum Color { RED=0, GREEN=1, VERDE=1, BLUE=-3 } }");
	struct rn_buf r = {0};
	pv(&r, 1, UINT32_MAX);
	pv(&r, 2, (uint64_t)INT64_MAX);
	pf32(&r, 3, UINT32_MAX);
	pf64(&r, 4, 5);
	pv(&r, 5, zz(INT64_MIN));
	pv(&r, 6, (uint64_t)(int64_t)-7);
	pv(&r, 7, (uint64_t)(int64_t)INT32_MIN);
	pv(&r, 8, 127);
	pv(&r, 9, 1);
	pv(&r, 10, (uint64_t)(int64_t)-3);
	pv(&r, 11, 12);
	pf32(&r, 12, fbits(0.5f));
	uint64_t cs[] = {0, 1, (uint64_t)(int64_t)-3};
	ppacked(&r, 13, cs, 3);
	dec(p, &r, 0,
	    "{13 u32=4294967295 u64=9223372036854775807 fx32=4294967295 fx64=5 "
	    "s64=-9223372036854775808 i32l=-7 i64i=-2147483648 i64b=127 color='GREEN' colnum=-3 "
	    "ext=12 fd=0.5 colors[3 ='RED' ='GREEN' ='BLUE' ] } ");
	rn_buf_free(&r);

	static const struct {
		uint32_t num;
		uint64_t v;
		const char *err;
	} bad[] = {
		{2, (uint64_t)INT64_MAX + 1, "u64: integer out of range for the column"},
		{7, (uint64_t)INT32_MAX + 1, "i64i: integer out of range"},
		{8, 128, "i64b: integer out of range"},
		{11, 40000, "ext: integer out of range"},
		{9, 7, "color: value 7 is not declared in enum T.Color"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pv(&r, bad[i].num, bad[i].v);
		dec(p, &r, RN_EINVAL, bad[i].err);
		rn_buf_free(&r);
	}
	uint64_t c2[] = {1, 9};
	ppacked(&r, 13, c2, 2);
	dec(p, &r, RN_EINVAL, "colors[1]: value 9 is not declared");
	rn_buf_free(&r);
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* Repeated scalars: packed, unpacked, both, split by other fields; last-one-wins scalars;
 * unknown fields skipped. */
static void repeated_and_order(void **st)
{
	(void)st;
	static const char *const cols[][3] = {
		{"k", "integer", "1"},         {"xs", "array<long>", "1"},
		{"fs", "array<float>", "1"},   {"ds", "array<double>", "1"},
		{"bs", "array<boolean>", "1"}, {"ss", "array<short>", "1"},
	};
	struct rn_schema s = table(cols, sizeof(cols) / sizeof(cols[0]));
	struct rn_protoplan *p =
		plan_ok(&s, "T { opt int32 k=1; rep sint64 xs=2; rep float fs=3;"
			    " rep double ds=4; rep bool bs=5; rep sfixed32 ss=6; }");
	struct rn_buf r = {0}, pk = {0};
	uint64_t a[] = {zz(1), zz(-2), zz(300)};
	pv(&r, 1, 5);
	ppacked(&r, 2, a, 3); /* packed */
	pv(&r, 2, zz(4));     /* then unpacked, same run */
	pv(&r, 99, 1);        /* unknown field: skipped */
	pf64(&r, 98, 1);      /* unknown fixed64 */
	ps(&r, 97, "zz");     /* unknown LEN */
	pv(&r, 1, 6);         /* k again: the last wins */
	pv(&r, 2, zz(-5));    /* xs split: a second run */
	uint32_t fb[] = {fbits(1.5f), fbits(-2.0f)};
	assert_int_equal(rn_buf_append(&pk, fb, sizeof(fb)), 0);
	pm(&r, 3, &pk);           /* packed floats */
	pf32(&r, 3, fbits(4.0f)); /* unpacked float */
	pf64(&r, 4, dbits(0.125));
	uint64_t db[] = {dbits(1e300)};
	assert_int_equal(rn_buf_append(&pk, db, sizeof(db)), 0);
	pm(&r, 4, &pk);
	uint64_t bb[] = {1, 0, 2};
	ppacked(&r, 5, bb, 3);
	uint32_t sb[] = {(uint32_t)-32768, 7};
	assert_int_equal(rn_buf_append(&pk, sb, sizeof(sb)), 0);
	pm(&r, 6, &pk);
	dec(p, &r, 0,
	    "{6 k=6 xs[5 =1 =-2 =300 =4 =-5 ] fs[3 =1.5 =-2 =4 ] ds[2 =0.125 =1e+300 ] "
	    "bs[3 =1 =0 =1 ] ss[2 =-32768 =7 ] } ");
	assert_string_equal(rec_out,
			    json_out(&s, "{\"k\":6,\"xs\":[1,-2,300,4,-5],\"fs\":[1.5,-2,4],"
					 "\"ds\":[0.125,1e300],\"bs\":[true,false,true],"
					 "\"ss\":[-32768,7]}"));
	rn_buf_free(&r);

	/* many interleaved runs: more than the arena's stack part holds */
	for (int i = 0; i < 3000; i++) {
		pv(&r, 2, zz(i));
		pf32(&r, 3, fbits((float)i));
	}
	rec_out[0] = 0;
	char err[256];
	assert_int_equal(rn_protorow_decode(p, r.data, r.len, &rec_sink, err, sizeof(err)), 0);
	assert_non_null(strstr(rec_out, "xs[3000 =0 =1 =2 "));
	rn_buf_free(&r);

	/* packed element errors */
	uint8_t trunc[] = {0x12, 0x02, 0x01, 0x80}; /* xs: packed, last varint unterminated */
	struct rn_buf t = {trunc, sizeof(trunc), sizeof(trunc), 0};
	dec(p, &t, RN_EINVAL, "xs: truncated packed varint");
	uint8_t odd[] = {0x1a, 0x03, 1, 2, 3}; /* fs: 3 bytes of packed floats */
	t = (struct rn_buf){odd, sizeof(odd), sizeof(odd), 0};
	dec(p, &t, RN_EINVAL, "fs: packed float values of 3 bytes");
	uint8_t ss[] = {0x32, 0x04, 0, 0, 1, 0}; /* ss: 65536 in a short */
	t = (struct rn_buf){ss, sizeof(ss), sizeof(ss), 0};
	dec(p, &t, RN_EINVAL, "ss[0]: integer out of range for the column");
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* Structs (merged occurrences), arrays of structs, maps of every shape, oneofs. */
static void nested(void **st)
{
	(void)st;
	static const char *const cols[][3] = {
		{"pos", "struct<lat:double,lon:double,alt:float>", "1"},
		{"pts", "array<struct<x:integer,label:string>>", "0"},
		{"attrs", "map<string,string>", "1"},
		{"byid", "map<long,struct<n:integer,tags:array<string>>>", "1"},
		{"pairs", "array<struct<key:string,value:integer>>", "1"},
		{"a", "integer", "1"},
		{"b", "string", "1"},
	};
	struct rn_schema s = table(cols, sizeof(cols) / sizeof(cols[0]));
	struct rn_protoplan *p = plan_ok(
		&s,
		"R { opt M:Pos pos=1; rep M:Pt pts=2; rep M:AttrsEntry attrs=3;"
		" rep M:ByidEntry byid=4; rep M:Pair pairs=5; opt int32 a=6 @0; opt string b=7 @0;"
		" Pos { opt double lat=1; opt double lon=2; }"
		" Pt { req int32 x=1; opt string label=2; }"
		" AttrsEntry { opt string key=1; opt string value=2; }"
		" ByidEntry! { opt int64 key=1; opt M:V value=2; V { opt int32 n=1; rep string "
		"tags=2; } }"
		" Pair { opt string key=1; opt int32 value=2; } }");
	struct rn_buf r = {0}, m = {0}, v = {0};

	pf64(&m, 1, dbits(1.0));
	pm(&r, 1, &m);
	pv(&m, 1, 1);
	ps(&m, 2, "p1");
	pm(&r, 2, &m);
	pf64(&m, 2, dbits(2.0)); /* pos again: merged into the first */
	pm(&r, 1, &m);
	pv(&m, 1, 2);
	pm(&r, 2, &m);
	ps(&m, 1, "k");
	ps(&m, 2, "v");
	pm(&r, 3, &m);
	ps(&m, 2, "only-value"); /* key absent: "" */
	pm(&r, 3, &m);
	pv(&v, 1, 9);
	ps(&v, 2, "t");
	pv(&m, 1, 42);
	pm(&m, 2, &v);
	pm(&r, 4, &m);
	pv(&m, 1, 43); /* value absent: an empty message */
	pm(&r, 4, &m);
	ps(&m, 1, "x");
	pv(&m, 2, 3);
	pm(&r, 5, &m);
	pv(&r, 6, 1); /* a, then b of the same oneof: b wins */
	ps(&r, 7, "b-wins");
	dec(p, &r, 0,
	    "{7 pos{3 lat=1 lon=2 alt=null } pts[2 {2 x=1 label='p1' } {2 x=2 label=null } ] "
	    "attrs<2 ='k' ='v' ='' ='only-value' > "
	    "byid<2 =42 {2 n=9 tags[1 ='t' ] } =43 {2 n=null tags[0 ] } > "
	    "pairs[1 {2 key='x' value=3 } ] a=null b='b-wins' } ");
	assert_string_equal(
		rec_out, json_out(&s, "{\"pos\":{\"lat\":1,\"lon\":2},"
				      "\"pts\":[{\"x\":1,\"label\":\"p1\"},{\"x\":2}],"
				      "\"attrs\":{\"k\":\"v\",\"\":\"only-value\"},"
				      "\"byid\":{\"42\":{\"n\":9,\"tags\":[\"t\"]},"
				      "\"43\":{\"tags\":[]}},"
				      "\"pairs\":[{\"key\":\"x\",\"value\":3}],\"b\":\"b-wins\"}"));
	rn_buf_free(&r);

	/* b then a: a wins */
	ps(&r, 7, "lost");
	pv(&r, 6, 5);
	dec(p, &r, 0, "a=5 b=null } ");
	rn_buf_free(&r);

	/* errors inside nested messages name the path */
	pv(&m, 1, 1);
	pm(&r, 2, &m);
	ps(&m, 2, "no x");
	pm(&r, 2, &m);
	dec(p, &r, RN_EINVAL, "pts[1].x: missing required field");
	rn_buf_free(&r);
	pv(&m, 1, 5); /* lat as a varint */
	pm(&r, 1, &m);
	dec(p, &r, RN_EINVAL, "pos.lat: wire type 0 does not match the field's type double");
	rn_buf_free(&r);
	pv(&v, 1, (uint64_t)INT32_MAX + 1); /* n: int32 truncates, as protobuf does */
	pv(&m, 1, 1);
	pm(&m, 2, &v);
	pm(&r, 4, &m);
	dec(p, &r, 0, "=1 {2 n=-2147483648 tags[0 ] }");
	rn_buf_free(&r);
	uint8_t badsub[] = {0x0a, 0x02, 0x09, 0x01}; /* pos: a fixed64 cut short */
	struct rn_buf t = {badsub, sizeof(badsub), sizeof(badsub), 0};
	dec(p, &t, RN_EINVAL, "pos: malformed protobuf at byte 2");
	uint8_t str[] = {0x3a, 0x01, 0xff}; /* b: not UTF-8 */
	t = (struct rn_buf){str, sizeof(str), sizeof(str), 0};
	dec(p, &t, RN_EINVAL, "b: a string that is not UTF-8");
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* Missing fields: null, NOT NULL, required, the sink's missing hook; decimals. */
static void missing_and_decimals(void **st)
{
	(void)st;
	static const char *const cols[][3] = {
		{"id", "long", "0"},
		{"src", "string", "0"},
		{"note", "string", "1"},
		{"qty", "integer", "0"},
		{"price", "decimal(6,2)", "1"},
		{"tags", "array<string>", "0"},
	};
	struct rn_schema s = table(cols, sizeof(cols) / sizeof(cols[0]));
	/* src is NOT NULL but not in the descriptor: refused */
	plan_bad(&s, "T { req int64 id=1; opt int32 qty=3; rep string tags=4; }",
		 "NOT NULL column src is not covered by the descriptor");
	struct rn_protoplan *p =
		plan_ok(&s, "T { req int64 id=1; opt string src=2; opt string note=5;"
			    " opt int32 qty=3; opt string price=6; rep string tags=4; }");
	struct rn_buf r = {0};
	char err[256];
	pv(&r, 1, 1);
	pv(&r, 3, 2);
	ps(&r, 2, "s");
	dec(p, &r, 0, "{6 id=1 src='s' note=null qty=2 price=null tags[0 ] } ");
	rn_buf_free(&r);
	pv(&r, 3, 2);
	dec(p, &r, RN_EINVAL, "id: missing required field");
	rn_buf_free(&r);
	pv(&r, 1, 2);
	pv(&r, 3, 2);
	dec(p, &r, RN_EINVAL, "src: missing NOT NULL column");
	/* the sink's missing hook supplies src, and declines the others */
	rec_out[0] = 0;
	assert_int_equal(rn_protorow_decode(p, r.data, r.len, &msink, err, sizeof(err)), 0);
	assert_string_equal(rec_out, "{6 id=2 src=<env> note=null qty=2 price=null tags[0 ] } ");
	rn_buf_free(&r);

	static const char *const decs[][2] = {
		{"19.99", "price=1999 "},
		{"-0.5", "price=-50 "},
		{"+7", "price=700 "},
		{"1.234", "price: more fractional digits than the column's scale"},
		{"12345.6", "price: too many digits for the column's precision"},
		{"1e3", "price: not a decimal number"},
		{"", "price: not a decimal number"},
		{".", "price: not a decimal number"},
	};
	for (size_t i = 0; i < sizeof(decs) / sizeof(decs[0]); i++) {
		pv(&r, 1, 1);
		ps(&r, 2, "s");
		pv(&r, 3, 0);
		ps(&r, 6, decs[i][0]);
		dec(p, &r, decs[i][1][5] == ':' ? RN_EINVAL : 0, decs[i][1]);
		rn_buf_free(&r);
	}
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* Descriptors refused when the plan is built. */
static void plan_errors(void **st)
{
	(void)st;
	static const char *const cols[][3] = {
		{"id", "long", "0"},
		{"speed", "float", "1"},
		{"tags", "array<string>", "1"},
		{"pos", "struct<lat:double>", "1"},
		{"m", "map<string,integer>", "1"},
		{"raw", "binary", "1"},
		{"ts", "timestamp", "1"},
		{"color", "string", "1"},
	};
	struct rn_schema s = table(cols, sizeof(cols) / sizeof(cols[0]));
	static const char *const cases[][2] = {
		{"T { req int64 id=1; opt string speed=2; }",
		 "field 'speed' (string) does not fit column speed float"},
		{"T { req int64 id=1; opt double speed=2; }",
		 "field 'speed' (double) does not fit"},
		{"T { req int64 id=1; opt int64 zz=2; }",
		 "unknown field 'zz': the table has no column zz"},
		{"T { req int64 id=1; opt M:P pos=2; P { opt double lat=1; opt double alt=2; } }",
		 "unknown field 'pos.alt'"},
		{"T { req int64 id=1; opt M:P pos=2; P { opt int32 lat=1; } }",
		 "field 'pos.lat' (int32) does not fit column pos.lat double"},
		{"T { req int64 id=1; opt string tags=2; }",
		 "field 'tags' (string) does not fit column tags array<string>"},
		{"T { req int64 id=1; rep int32 tags=2; }",
		 "field 'tags' (repeated int32) does not fit column tags array<string>"},
		{"T { req int64 id=1; rep M:E m=2; E { opt string key=1; opt string value=2; } }",
		 "field 'm' (repeated message E) does not fit column m map<string,integer>"},
		{"T { req int64 id=1; rep M:E m=2; E { opt string k=1; opt int32 value=2; } }",
		 "does not fit column m map<string,integer>"},
		{"T { req int64 id=1; opt string raw=2; }", "field 'raw' (string) does not fit"},
		{"T { req int64 id=1; opt int32 ts=2; }",
		 "field 'ts' (int32) does not fit column ts timestamp"},
		{"T { req int64 id=1; opt E:.x.Outside color=2; }",
		 "field 'color' (enum) does not fit"},
		{"T { req int64 id=1; opt M:Nope pos=2; }",
		 "type 'Nope' of field 'T.pos' is not in the descriptor"},
		{"T { req int64 id=1; opt M:P pos=2; P { opt M:P lat=1; } }",
		 "message T.P refers to itself (field 'T.P.lat')"},
		{"T { req int64 id=1; opt M:A pos=2; A { opt M:B lat=1; } B { opt M:A x=1; } }",
		 "message T.A refers to itself (field 'T.B.x')"},
		{"T { req int64 id=1; opt T10 pos=2; }", "is a group"},
		{"T { req int64 id=1; opt int32 speed=1; }", "share number 1"},
		{"T { req int64 id=1; opt int32 id=2; }", "declared twice"},
		{"T { req int64 id=0; }", "has no valid number"},
		{"T { req int64 bad-name=1; }", "is not an identifier"},
		{"T { req int64 id=1; opt T99 speed=2; }", "unknown type"},
		{"T { opt float speed=2; }", "NOT NULL column id is not covered"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		plan_bad(&s, cases[i][0], cases[i][1]);

	/* malformed descriptor bytes */
	char err[256];
	struct rn_protoplan *p = NULL;
	static const uint8_t junk[][4] = {
		{0x0a, 0x05, 'T', 0},     /* name longer than the input */
		{0x12, 0x02, 0x18, 0x80}, /* a field whose number varint is cut */
		{0x0b, 0, 0, 0},          /* a group wire type */
		{0x0a, 0x01, '1', 0x00},  /* a name that is not an identifier... */
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_int_equal(
			rn_protorow_plan(&s, junk[i], i == 3 ? 3 : 4, &p, err, sizeof(err)),
			RN_EINVAL);
		assert_null(p);
	}
	assert_int_equal(rn_protorow_plan(&s, NULL, 0, &p, err, sizeof(err)), RN_EINVAL);
	assert_non_null(strstr(err, "empty descriptor"));
	rn_schema_free(&s);
}

/* Caps: fields per message, nesting depth (declared and used), plan and schema expansion. */
static void caps(void **st)
{
	(void)st;
	struct rn_schema s = {0};
	char err[256];
	struct rn_protoplan *p = NULL;
	size_t cap = 200000;
	char *text = malloc(cap);
	assert_non_null(text);

	/* 2049 fields in one message */
	size_t o = (size_t)snprintf(text, cap, "T {");
	for (int i = 1; i <= RN_SCHEMA_MAX_FIELDS + 1; i++)
		o += (size_t)snprintf(text + o, cap - o, " opt int32 f%d=%d;", i, i);
	snprintf(text + o, cap - o, " }");
	assert_int_equal(rn_schema_add_column(&s, "f1", "int", 1, err, sizeof(err)), 0);
	plan_bad(&s, text, "more than 2048 fields");

	/* exactly 2048 unknown fields: the first is reported */
	o = (size_t)snprintf(text, cap, "T {");
	for (int i = 1; i <= RN_SCHEMA_MAX_FIELDS; i++)
		o += (size_t)snprintf(text + o, cap - o, " opt int32 g%d=%d;", i, i);
	snprintf(text + o, cap - o, " }");
	plan_bad(&s, text, "unknown field 'g1'");

	/* nested declarations 40 deep */
	o = 0;
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, cap - o, "N%d { ", i);
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, cap - o, "} ");
	plan_bad(&s, text, "nested types deeper than 32 levels");

	/* used 40 deep (declared flat) */
	o = (size_t)snprintf(text, cap, "T { opt M:N0 f1=1; ");
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, cap - o, "N%d { opt M:N%d x=1; } ", i, i + 1);
	snprintf(text + o, cap - o, "N40 { opt int32 x=1; } }");
	plan_bad(&s, text, "nested more than 32 levels");
	struct rn_schema none = {0};
	assert_int_equal(
		rn_protorow_schema_from_descriptor((const uint8_t *)"", 0, &none, err, sizeof(err)),
		RN_EINVAL);

	/* a diamond that would expand beyond the column budget: A has 64 B, B has 64 C, ... */
	o = (size_t)snprintf(text, cap, "T { opt M:L0 f1=1; ");
	for (int l = 0; l < 4; l++) {
		o += (size_t)snprintf(text + o, cap - o, "L%d { ", l);
		for (int i = 1; i <= 64; i++)
			o += (size_t)snprintf(text + o, cap - o, "opt M:L%d x%d=%d; ", l + 1, i, i);
		o += (size_t)snprintf(text + o, cap - o, "} ");
	}
	snprintf(text + o, cap - o, "L4 { opt int32 y=1; } }");
	struct rn_buf d = desc(text);
	struct rn_schema got = {0};
	assert_int_equal(rn_protorow_schema_from_descriptor(d.data, d.len, &got, err, sizeof(err)),
			 RN_EINVAL);
	assert_non_null(strstr(err, "expands to more than"));
	assert_int_equal(got.root.nfields, 0);
	rn_buf_free(&d);
	(void)p;
	free(text);
	rn_schema_free(&s);
}

/* A table schema from a descriptor, then a plan against it and a row. */
static void schema_from_descriptor(void **st)
{
	(void)st;
	struct rn_schema s = {0};
	struct rn_buf d = desc(
		"T { req int64 id=1; opt int32 n=2; opt uint32 u=3; opt float f=4; opt bool ok=5;"
		" opt bytes raw=6; opt E:Color c=7; opt E:.ext.Unknown e=8; rep string tags=9;"
		" rep M:AEntry attrs=10; opt M:P pos=11; rep M:P hist=12;"
		" enum Color { RED=0 } AEntry { opt string key=1; opt M:P value=2; }"
		" P { req double x=1; opt sint64 y=2; } }");
	struct rn_buf j = {0};
	char err[256];
	assert_int_equal(rn_protorow_schema_from_descriptor(d.data, d.len, &s, err, sizeof(err)),
			 0);
	assert_int_equal(rn_schema_to_json(&s, &j), 0);
	assert_int_equal(rn_buf_append(&j, "", 1), 0);
	const char *want =
		"{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"n\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"u\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"f\",\"type\":\"float\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"ok\",\"type\":\"boolean\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"raw\",\"type\":\"binary\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"c\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"e\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"elementType\":\"string\","
		"\"containsNull\":false},\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"keyType\":\"string\","
		"\"valueType\":"
		"{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"x\",\"type\":\"double\",\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"y\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]},"
		"\"valueContainsNull\":false},\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"pos\",\"type\":{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"x\",\"type\":\"double\",\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"y\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]},"
		"\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"hist\",\"type\":{\"type\":\"array\",\"elementType\":"
		"{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"x\",\"type\":\"double\",\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"y\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]},"
		"\"containsNull\":false},\"nullable\":false,\"metadata\":{}}]}";
	assert_string_equal((char *)j.data, want);

	/* the same descriptor plans against the schema it made, and decodes */
	struct rn_protoplan *p = NULL;
	assert_int_equal(rn_protorow_plan(&s, d.data, d.len, &p, err, sizeof(err)), 0);
	struct rn_buf r = {0}, m = {0}, v = {0};
	pv(&r, 1, 1);
	pv(&r, 7, 0);
	pv(&r, 8, 3);
	pf64(&v, 1, dbits(0.5));
	ps(&m, 1, "k");
	pm(&m, 2, &v);
	pm(&r, 10, &m);
	pf64(&m, 1, dbits(2));
	pv(&m, 2, zz(-1));
	pm(&r, 12, &m);
	dec(p, &r, 0,
	    "{12 id=1 n=null u=null f=null ok=null raw=null c='RED' e=3 tags[0 ] "
	    "attrs<1 ='k' {2 x=0.5 y=null } > pos=null hist[1 {2 x=2 y=-1 } ] } ");
	rn_buf_free(&r);
	rn_protorow_plan_free(p);
	rn_buf_free(&j);
	rn_buf_free(&d);
	rn_schema_free(&s);

	/* refused: an empty message as a column */
	d = desc("T { opt M:E e=1; E { } }");
	assert_int_equal(rn_protorow_schema_from_descriptor(d.data, d.len, &s, err, sizeof(err)),
			 RN_EINVAL);
	assert_non_null(strstr(err, "message T.E has no fields"));
	rn_buf_free(&d);
}

/* Malformed records at the top level. */
static void malformed(void **st)
{
	(void)st;
	static const char *const cols[][3] = {{"id", "long", "1"}, {"s", "string", "1"}};
	struct rn_schema s = table(cols, 2);
	struct rn_protoplan *p = plan_ok(&s, "T { opt int64 id=1; opt string s=2; }");
	static const struct {
		uint8_t b[8];
		size_t n;
		const char *err;
	} cases[] = {
		{{0x08}, 1, "(record): malformed protobuf at byte 0"},
		{{0x08, 0x01, 0x12, 0x05, 'a'}, 5, "(record): malformed protobuf at byte 2"},
		{{0x00, 0x01}, 2, "malformed protobuf"}, /* field number 0 */
		{{0x0b, 0x0c}, 2, "malformed protobuf"}, /* a group */
		{{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8, "malformed"},
		{{0x0d, 1, 2, 3, 4}, 5, "id: wire type 5 does not match the field's type int64"},
		{{0x10, 0x01}, 2, "s: wire type 0 does not match the field's type string"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rn_buf t = {(uint8_t *)cases[i].b, cases[i].n, cases[i].n, 0};
		dec(p, &t, RN_EINVAL, cases[i].err);
	}
	struct rn_buf empty = {0};
	dec(p, &empty, 0, "{2 id=null s=null } ");
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* A sink error stops decoding and comes back as is. */
static int fail_bytes(void *c, const struct rn_field *f, const void *p, size_t n)
{
	(void)c;
	(void)f;
	(void)p;
	(void)n;
	return RN_ETOOBIG;
}

static void sink_error(void **st)
{
	(void)st;
	struct rn_schema s = table(all_cols, sizeof(all_cols) / sizeof(all_cols[0]));
	struct rn_protoplan *p = plan_ok(&s, all_desc);
	struct rn_row_sink k = rec_sink;
	struct rn_buf r = {0};
	char err[256];
	k.bytes = fail_bytes;
	pv(&r, 1, 1);
	ps(&r, 15, "x");
	assert_int_equal(rn_protorow_decode(p, r.data, r.len, &k, err, sizeof(err)), RN_ETOOBIG);
	rn_buf_free(&r);
	rn_protorow_plan_free(p);
	rn_schema_free(&s);
}

/* Every allocation of plan building and of a large decode fails in turn, cleanly. */
static void allocation_failures(void **st)
{
	(void)st;
	struct rn_schema s = table(all_cols, sizeof(all_cols) / sizeof(all_cols[0]));
	struct rn_buf d = desc(all_desc), r = {0};
	char err[256];
	for (int i = 0; i < 3000; i++)
		ps(&r, 15, "t"), pv(&r, 1, 1); /* interleaved runs */
	long live = rn_mem_live();
	int ok = 0;
	for (long nth = 1; nth < 400 && !ok; nth++) {
		struct rn_protoplan *p = NULL;
		rn_mem_fail_after(nth);
		int rc = rn_protorow_plan(&s, d.data, d.len, &p, err, sizeof(err));
		if (rc == 0) {
			rec_out[0] = 0;
			rc = rn_protorow_decode(p, r.data, r.len, &rec_sink, err, sizeof(err));
			ok = rc == 0;
		}
		rn_mem_fail_after(0);
		if (!ok)
			assert_int_equal(rc, RN_ENOMEM);
		rn_protorow_plan_free(p);
		if (rn_mem_live() != live)
			fail_msg("allocation %ld failed: %ld allocations leaked (rc %d)", nth,
				 rn_mem_live() - live, rc);
	}
	assert_true(ok);
	assert_non_null(strstr(rec_out, "tags[3000 ='t' "));
	rn_buf_free(&d);
	rn_buf_free(&r);
	rn_schema_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_type),
		cmocka_unit_test(integers_and_enums),
		cmocka_unit_test(repeated_and_order),
		cmocka_unit_test(nested),
		cmocka_unit_test(missing_and_decimals),
		cmocka_unit_test(plan_errors),
		cmocka_unit_test(caps),
		cmocka_unit_test(schema_from_descriptor),
		cmocka_unit_test(malformed),
		cmocka_unit_test(sink_error),
		cmocka_unit_test(allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
