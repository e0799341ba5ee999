/* Topic filters for source routes (agent/route.c): MQTT matching rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route.h"

static void matching(void **st)
{
	(void)st;
	static const struct {
		const char *f, *t;
		int want;
	} c[] = {
		{"a/b", "a/b", 1},
		{"a/b", "a/bc", 0},
		{"a/b", "a/b/c", 0},
		{"a/+", "a/b", 1},
		{"a/+", "a/", 1},
		{"a/+", "a/b/c", 0},
		{"a/+/c", "a/x/c", 1},
		{"a/+/c", "a/x/d", 0},
		{"+/+", "a/b", 1},
		{"+", "a", 1},
		{"+", "a/b", 0},
		{"#", "a/b/c", 1},
		{"a/#", "a", 1},
		{"a/#", "a/b/c", 1},
		{"a/#", "ab", 0},
		{"fleet/+/gps", "fleet/t7/gps", 1},
		{"fleet/+/gps", "fleet/t7/can", 0},
		{"#", "$SYS/x", 0},
		{"+/x", "$SYS/x", 0},
		{"$SYS/#", "$SYS/x", 1},
		{"/var/log/+", "/var/log/app.log", 1},
		{"a/b", NULL, 0},
		{"a//b", "a//b", 1},
		{"a/+/b", "a//b", 1},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int got = rn_topic_match(c[i].f, c[i].t);
		if (got != c[i].want)
			fail_msg("filter '%s' topic '%s': got %d", c[i].f,
				 c[i].t ? c[i].t : "(null)", got);
	}
}

static void validity(void **st)
{
	(void)st;
	assert_true(rn_topic_filter_valid("a/+/b"));
	assert_true(rn_topic_filter_valid("#"));
	assert_true(rn_topic_filter_valid("a/#"));
	assert_true(rn_topic_filter_valid("+"));
	assert_false(rn_topic_filter_valid(""));
	assert_false(rn_topic_filter_valid(NULL));
	assert_false(rn_topic_filter_valid("a/#/b"));
	assert_false(rn_topic_filter_valid("a#"));
	assert_false(rn_topic_filter_valid("a+/b"));
	assert_false(rn_topic_filter_valid("a/b+"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matching),
		cmocka_unit_test(validity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
