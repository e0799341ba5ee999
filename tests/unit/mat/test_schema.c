/*
 * Table schemas (server/mat/schema.c) and JSON records decoded against them
 * (server/mat/jsonrow.c): type names, the Spark JSON schema, and every decoding rule with
 * its error message. A recording sink turns the decoded values into text so each case is
 * one comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jsonrow.h"
#include "rn_err.h"
#include "rec_sink.h"
#include "schema.h"

static void types_and_json(void **st)
{
	struct rn_schema s = {0};
	struct rn_buf b = {0};
	char err[256];
	(void)st;
	assert_int_equal(rn_schema_add_column(&s, "ts", "timestamp", 0, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(&s, "price", "DECIMAL(10, 2)", 1, err, sizeof(err)),
			 0);
	assert_int_equal(
		rn_schema_add_column(&s, "tags", "map<string,array<int>>", 1, err, sizeof(err)), 0);
	assert_int_equal(rn_schema_add_column(&s, "pos", "struct<lat:double, lon:double>", 1, err,
					      sizeof(err)),
			 0);
	assert_int_equal(rn_schema_to_json(&s, &b), 0);
	assert_int_equal(rn_buf_append(&b, "", 1), 0);
	assert_string_equal(
		(char *)b.data,
		"{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"ts\",\"type\":\"timestamp\",\"nullable\":false,\"metadata\":{}},"
		"{\"name\":\"price\",\"type\":\"decimal(10,2)\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"keyType\":\"string\","
		"\"valueType\":"
		"{\"type\":\"array\",\"elementType\":\"integer\",\"containsNull\":true},"
		"\"valueContainsNull\":true},\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"pos\",\"type\":{\"type\":\"struct\",\"fields\":["
		"{\"name\":\"lat\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}},"
		"{\"name\":\"lon\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]},"
		"\"nullable\":true,\"metadata\":{}}]}");
	static const char *const bad[][2] = {
		{"strin", "unknown type"},          {"decimal(40,2)", "precision"},
		{"decimal(5,6)", "precision"},      {"array<int", "expected '>'"},
		{"map<array<int>,int>", "map key"}, {"struct<a:int,a:int>", "duplicate"},
		{"struct<>", "needs fields"},       {"int extra", "unexpected text"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rn_schema_add_column(&s, "x", bad[i][0], 1, err, sizeof(err)),
				 RN_EINVAL);
		if (!strstr(err, bad[i][1]))
			fail_msg("type '%s': message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
	}
	/* the JSON form reads back into the same schema */
	struct rn_schema back = {0};
	assert_int_equal(rn_schema_from_json(&back, (char *)b.data, b.len - 1, err, sizeof(err)),
			 0);
	struct rn_buf b2 = {0};
	assert_int_equal(rn_schema_to_json(&back, &b2), 0);
	assert_int_equal(b2.len, b.len - 1);
	assert_memory_equal(b2.data, b.data, b2.len);
	rn_schema_free(&back);
	rn_buf_free(&b2);
	static const char *const badjson[] = {
		"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"variant\"}]}",
		"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\"}]}",
		"{\"type\":\"array\",\"elementType\":\"int\"}",
		"{\"type\":\"struct\",\"fields\":[]}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(badjson) / sizeof(badjson[0]); i++) {
		struct rn_schema x = {0};
		assert_int_equal(
			rn_schema_from_json(&x, badjson[i], strlen(badjson[i]), err, sizeof(err)),
			RN_EINVAL);
		rn_schema_free(&x);
	}
	assert_int_equal(rn_schema_add_column(&s, "ts", "long", 1, err, sizeof(err)), RN_EINVAL);
	assert_non_null(strstr(err, "twice"));
	char deep[4096] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "array<");
	strcat(deep, "int");
	for (int i = 0; i < 40; i++)
		strcat(deep, ">");
	assert_int_equal(rn_schema_add_column(&s, "deep", deep, 1, err, sizeof(err)), RN_EINVAL);
	assert_non_null(strstr(err, "deeply"));
	rn_schema_free(&s);
	rn_buf_free(&b);
}

static struct rn_schema table(void)
{
	struct rn_schema s = {0};
	char err[256];
	static const char *const cols[][3] = {
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
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		assert_int_equal(rn_schema_add_column(&s, cols[i][0], cols[i][1],
						      cols[i][2][0] == '1', err, sizeof(err)),
				 0);
	return s;
}

static void decode(const struct rn_schema *s, const char *json, int want, const char *expect)
{
	char err[256];
	rec_out[0] = 0;
	int rc = rn_jsonrow_decode(s, json, strlen(json), &rec_sink, err, sizeof(err));
	if (rc != want)
		fail_msg("%s: rc %d (%s)", json, rc, err);
	const char *got = rc ? err : rec_out;
	if (!strstr(got, expect))
		fail_msg("%s:\n got  '%s'\n want '%s'", json, got, expect);
}

static void values(void **st)
{
	(void)st;
	struct rn_schema s = table();
	decode(&s, "{\"id\":1}", 0,
	       "{17 id=1 n=null sh=null b=null f=null d=null ok=null name=null raw=null day=null "
	       "ts=null wall=null price=null big=null tags=null m=null pos=null } ");
	/* members in any order, every type */
	decode(&s,
	       "{\"pos\":{\"lon\":13.4,\"lat\":52.5},\"id\":\"9007199254740993\",\"n\":-2147483648,"
	       "\"sh\":32767,\"b\":-128,\"f\":1.5,\"d\":\"-Infinity\",\"ok\":true,"
	       "\"name\":\"caf\\u00e9 \\\"q\\\"\",\"raw\":\"aGVsbG8=\",\"day\":\"1969-12-31\","
	       "\"ts\":\"2026-11-25T10:00:00.5+01:00\",\"wall\":\"2026-11-25 10:00:00\","
	       "\"price\":\"-1234.5\",\"big\":\"99999999999999999999999999999999999999\","
	       "\"tags\":[\"a\",null,\"\"],\"m\":{\"7\":0.25,\"-1\":null}}",
	       0,
	       "id=9007199254740993 n=-2147483648 sh=32767 b=-128 f=1.5 d=-inf ok=1 "
	       "name='caf\xc3\xa9 \"q\"' raw='hello' day=-1 ts=1795597200500000 "
	       "wall=1795600800000000 price=-123450 big=99999999999999999999999999999999999999 "
	       "tags[3 ='a' =null ='' ] m<2 =7 =0.25 =-1 =null > pos{2 lat=52.5 lon=13.4 } } ");
	/* a lone surrogate escape becomes U+FFFD, as in most JSON readers */
	decode(&s, "{\"id\":1,\"name\":\"a\\ud800b\"}", 0,
	       "name='a\xef\xbf\xbd"
	       "b'");
	decode(&s, "{\"id\":5,\"day\":20000,\"ts\":1795600800000000,\"price\":12,\"tags\":[]}", 0,
	       "day=20000 ts=1795600800000000 wall=null price=1200 big=null tags[0 ] ");
	rn_schema_free(&s);
}

static void rejected(void **st)
{
	(void)st;
	struct rn_schema s = table();
	static const char *const cases[][2] = {
		{"{}", "id: missing NOT NULL column"},
		{"{\"id\":null}", "id: null in a NOT NULL column"},
		{"{\"id\":1,\"zz\":2}", "unknown field 'zz'"},
		{"{\"id\":1,\"id\":2}", "given twice"},
		{"{\"id\":1.5}", "id: not an integer"},
		{"{\"id\":\"12a\"}", "id: not an integer"},
		{"{\"id\":99999999999999999999}", "id: integer out of range"},
		{"{\"id\":1,\"n\":2147483648}", "n: integer out of range"},
		{"{\"id\":1,\"b\":128}", "b: integer out of range"},
		{"{\"id\":1,\"f\":1e39}", "f: out of range for float"},
		{"{\"id\":1,\"d\":\"fast\"}", "d: not a number"},
		{"{\"id\":1,\"ok\":1}", "ok: expected true or false"},
		{"{\"id\":1,\"name\":5}", "name: expected a string"},
		{"{\"id\":1,\"raw\":\"***\"}", "raw: not base64"},
		{"{\"id\":1,\"day\":\"2026-02-29\"}", "day: not a date"},
		{"{\"id\":1,\"ts\":\"2026-11-25T10:00:00\"}", "ts: a timestamp text needs a zone"},
		{"{\"id\":1,\"wall\":\"2026-11-25T10:00:00Z\"}",
		 "wall: a timestamp_ntz text has no zone"},
		{"{\"id\":1,\"ts\":\"yesterdayZ\"}", "ts: a timestamp text needs a zone"},
		{"{\"id\":1,\"ts\":253402300800000000}", "ts: integer out of range"},
		{"{\"id\":1,\"ts\":-62135596800000001}", "ts: integer out of range"},
		{"{\"id\":1,\"day\":2932897}", "day: integer out of range"},
		{"{\"id\":1,\"price\":\"1.234\"}", "price: more fractional digits"},
		{"{\"id\":1,\"price\":\"12345.6\"}", "price: too many digits"},
		{"{\"id\":1,\"price\":\"1e3\"}", "price: not a decimal"},
		{"{\"id\":1,\"tags\":\"a\"}", "tags: expected an array"},
		{"{\"id\":1,\"tags\":[1]}", "tags[0]: expected a string"},
		{"{\"id\":1,\"m\":{\"x\":1}}", "m.x: not an integer"},
		{"{\"id\":1,\"pos\":{\"lat\":1,\"alt\":2}}", "pos: unknown field 'alt'"},
		{"[1]", "must be an object"},
		{"{\"id\":1", "not valid JSON"},
		{"", "must be an object"},
		{"{\"id\":1,\"name\":\"\\x41\"}", "not valid JSON"},
		{"{\"id\":1,\"name\":\"\xff\xfe\"}", "not valid JSON"}, /* not UTF-8 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		decode(&s, cases[i][0], RN_EINVAL, cases[i][1]);
	rn_schema_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(types_and_json),
		cmocka_unit_test(values),
		cmocka_unit_test(rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
