/* Partition directory names, add paths and partition value text (server/mat/partition.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "partition.h"
#include "rn_err.h"

static struct rn_buf b;

static const char *str(void)
{
	rn_buf_append_u8(&b, 0);
	b.len--;
	return (const char *)b.data;
}

static void escaping(void **st)
{
	static const char in[] = "a b:c/d=e%f\x01#\xc3\xa9";
	(void)st;
	rn_buf_reset(&b);
	assert_int_equal(rn_part_escape(&b, in, strlen(in)), 0);
	assert_string_equal(str(), "a b%3Ac%2Fd%3De%25f%01%23\xc3\xa9");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_uri(&b, "site=a b%3Ac/part-1.parquet", 27u), 0);
	assert_string_equal(str(), "site=a%20b%253Ac/part-1.parquet");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_uri(&b, "x=\xc3\xa9", 4), 0);
	assert_string_equal(str(), "x=%C3%A9");
}

static void values(void **st)
{
	(void)st;
	rn_buf_reset(&b);
	assert_int_equal(rn_part_date(&b, 20417), 0);
	assert_string_equal(str(), "2025-11-25");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_date(&b, -1), 0);
	assert_string_equal(str(), "1969-12-31");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_timestamp(&b, 1795600800000000LL), 0);
	assert_string_equal(str(), "2026-11-25 10:00:00");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_timestamp(&b, 1795600800000001LL), 0);
	assert_string_equal(str(), "2026-11-25 10:00:00.000001");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_timestamp(&b, -1), 0);
	assert_string_equal(str(), "1969-12-31 23:59:59.999999");
	rn_buf_free(&b);
}

static struct rn_schema schema(void)
{
	static const char *const cols[][3] = {
		{"ts", "timestamp", "0"}, {"site", "string", "1"},    {"day", "date", "0"},
		{"n", "long", "1"},       {"ok", "boolean", "1"},     {"f", "double", "1"},
		{"d2", "date", "1"},      {"when", "timestamp", "1"}, {"d3", "date", "0"},
	};
	struct rn_schema s = {0};
	char err[200];
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		assert_int_equal(rn_schema_add_column(&s, cols[i][0], cols[i][1],
						      cols[i][2][0] == '1', err, sizeof(err)),
				 0);
	return s;
}

static void spec_ok(void **st)
{
	struct rn_schema s = schema();
	const char *const by[] = {"day", "site", "ok", "n"};
	const struct rn_part_derived der[] = {
		{"day", "ts"}, {"d2", "event_time"}, {"site", "principal"}};
	struct rn_part_spec sp = {by, 4, der, 3};
	int derive[9];
	char err[300] = "";
	(void)st;
	assert_int_equal(rn_part_spec_check(&s, &sp, derive, err, sizeof(err)), 0);
	assert_int_equal(derive[0], -1);
	assert_int_equal(derive[2], 0);
	assert_int_equal(derive[6], RN_PART_FROM_ENVELOPE);
	assert_int_equal(derive[1], RN_PART_FROM_PRINCIPAL);
	assert_int_equal(derive[3], -1);
	rn_schema_free(&s);
}

static void expect_bad(const struct rn_part_spec *sp, const char *want)
{
	struct rn_schema s = schema();
	char err[300] = "";
	assert_int_equal(rn_part_spec_check(&s, sp, NULL, err, sizeof(err)), RN_EINVAL);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	rn_schema_free(&s);
}

static void spec_bad(void **st)
{
	const char *const unknown[] = {"nope"}, *const dbl[] = {"f"}, *const ts[] = {"ts"},
			  *const twice[] = {"site", "site"};
	const char *const all[] = {"ts", "site", "day", "n", "ok", "f", "d2", "when", "d3"};
	(void)st;
	expect_bad(&(struct rn_part_spec){unknown, 1, NULL, 0}, "no column 'nope'");
	expect_bad(&(struct rn_part_spec){dbl, 1, NULL, 0}, "column 'f' is double");
	expect_bad(&(struct rn_part_spec){ts, 1, NULL, 0}, "column 'ts' is timestamp");
	expect_bad(&(struct rn_part_spec){twice, 2, NULL, 0}, "named twice");
	expect_bad(&(struct rn_part_spec){all, 9, NULL, 0}, "at least one column");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"x", "ts"}}, 1},
		   "'x' (from = \"ts\"): no such column");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"n", "ts"}}, 1},
		   "needs type date");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"d2", "site"}}, 1},
		   "must be a timestamp column, not string");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"d2", "when"}}, 1},
		   "declare the source column before");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"d2", "zz"}}, 1},
		   "from = \"zz\": no such column");
	expect_bad(&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"d3", "when"}}, 1},
		   "'d3' is NOT NULL but its source 'when' is nullable");
	expect_bad(&(struct rn_part_spec){NULL, 0,
					  (struct rn_part_derived[]){{"d2", "ts"}, {"d2", "ts"}},
					  2},
		   "derived twice");
	expect_bad(
		&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"n", "principal"}}, 1},
		"'n': from = \"principal\" needs type string, not long");
	expect_bad(
		&(struct rn_part_spec){NULL, 0, (struct rn_part_derived[]){{"d2", "principal"}}, 1},
		"needs type string, not date");
}

static void day_and_text(void **st)
{
	(void)st;
	assert_int_equal(rn_part_day(0), 0);
	assert_int_equal(rn_part_day(86399999999LL), 0);
	assert_int_equal(rn_part_day(86400000000LL), 1);
	assert_int_equal(rn_part_day(-1), -1);
	assert_int_equal(rn_part_day(-86400000000LL), -1);
	assert_int_equal(rn_part_day(-86400000001LL), -2);
	assert_int_equal(rn_part_day(1795600800000000LL), 20782);
	rn_buf_reset(&b);
	assert_int_equal(rn_part_text(&b, RN_T_DATE, 20782), 0);
	assert_string_equal(str(), "2026-11-25");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_text(&b, RN_T_BOOL, 1), 0);
	assert_string_equal(str(), "true");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_text(&b, RN_T_BYTE, -128), 0);
	assert_string_equal(str(), "-128");
	rn_buf_reset(&b);
	assert_int_equal(rn_part_text(&b, RN_T_LONG, INT64_MIN), 0);
	assert_string_equal(str(), "-9223372036854775808");
	assert_int_equal(rn_part_text(&b, RN_T_DOUBLE, 1), RN_EINVAL);
}

static void layout(void **st)
{
	struct rn_buf dir = {0}, pv = {0};
	const char *const cols[] = {"day", "si te", "x"};
	const struct rn_part_val v[] = {
		{"2026-11-25", 10, 0}, {"a/b:c=\"d\" %\xc3\xa9", 13, 0}, {NULL, 0, 1}};
	(void)st;
	assert_int_equal(rn_part_layout(&dir, &pv, cols, v, 3), 0);
	rn_buf_append_u8(&dir, 0);
	rn_buf_append_u8(&pv, 0);
	assert_string_equal((char *)dir.data,
			    "day=2026-11-25/si te=a%2Fb%3Ac%3D%22d%22 %25\xc3\xa9/"
			    "x=__HIVE_DEFAULT_PARTITION__");
	assert_string_equal(
		(char *)pv.data,
		"{\"day\":\"2026-11-25\",\"si te\":\"a/b:c=\\\"d\\\" %\xc3\xa9\",\"x\":null}");
	/* an empty string is null in Delta: same directory and partitionValues */
	rn_buf_reset(&dir);
	rn_buf_reset(&pv);
	const struct rn_part_val e[] = {{"", 0, 0}};
	assert_int_equal(rn_part_layout(&dir, &pv, cols, e, 1), 0);
	rn_buf_append_u8(&dir, 0);
	rn_buf_append_u8(&pv, 0);
	assert_string_equal((char *)dir.data, "day=__HIVE_DEFAULT_PARTITION__");
	assert_string_equal((char *)pv.data, "{\"day\":null}");
	rn_buf_free(&dir);
	rn_buf_free(&pv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escaping),     cmocka_unit_test(values),
		cmocka_unit_test(spec_ok),      cmocka_unit_test(spec_bad),
		cmocka_unit_test(day_and_text), cmocka_unit_test(layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
