/* Partition directory names, add paths and partition value text (server/mat/partition.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "partition.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escaping),
		cmocka_unit_test(values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
