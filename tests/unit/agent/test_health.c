/* The health report (agent/health.c): exact JSON, hostile strings, the 16 KiB cap, the state
 * comparison, the schedule, and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_utf8.h"

static const struct rn_health_drop drops2[] = {{"buffer_full", 12}, {"ttl", 3}};
static const struct rn_health_source srcs2[] = {
	{.name = "gps",
	 .type = "mqtt",
	 .state = RN_HEALTH_DOWN,
	 .error = "connection refused",
	 .records = 41},
	{.name = "log", .type = "file", .state = RN_HEALTH_UP, .records = 7},
};

static struct rn_health_snap base(void)
{
	return (struct rn_health_snap){
		.device = "truck-7",
		.version = "1.2.3",
		.config_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.boot_id = "b00t",
		.uptime_s = 3600,
		.sent_at_ms = 1765000000123,
		.clock_synced = 1,
		.buffer_bytes = 4096,
		.buffer_records = 10,
		.buffer_max_bytes = 1 << 20,
		.oldest_unsent_age_s = 5,
		.drops = drops2,
		.ndrops = 2,
		.expired = 3,
		.dead_letters = 1,
		.sources = srcs2,
		.nsources = 2,
	};
}

static char *render(const struct rn_health_snap *s)
{
	struct rn_buf b = {0};
	assert_int_equal(rn_health_render(s, &b), 0);
	assert_int_equal(rn_buf_append_u8(&b, 0), 0);
	return (char *)b.data;
}

static void exact_json(void **st)
{
	(void)st;
	struct rn_health_snap s = base();
	char *j = render(&s);
	assert_string_equal(
		j, "{\"v\":1,\"device\":\"truck-7\",\"version\":\"1.2.3\",\"config_sha256\":"
		   "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
		   "\"boot_id\":\"b00t\",\"uptime_s\":3600,\"sent_at_ms\":1765000000123,"
		   "\"clock\":{\"synced\":true,\"offset_ms\":null},"
		   "\"buffer\":{\"bytes\":4096,\"records\":10,\"max_bytes\":1048576,"
		   "\"oldest_unsent_age_s\":5},\"drops\":{\"buffer_full\":12,\"ttl\":3},"
		   "\"expired\":3,\"dead_letters\":1,\"sources\":["
		   "{\"name\":\"gps\",\"type\":\"mqtt\",\"state\":\"down\",\"error\":"
		   "\"connection refused\",\"records\":41},"
		   "{\"name\":\"log\",\"type\":\"file\",\"state\":\"up\",\"error\":null,"
		   "\"records\":7}]}");
	assert_int_equal(rn_json_validate(j, strlen(j)), 0);
	free(j);

	/* nothing unsent, a known clock offset, no boot id, no drops, no sources */
	struct rn_health_snap e = {.device = "d",
				   .clock_offset_known = 1,
				   .clock_offset_ms = -250,
				   .boot_id = "",
				   .oldest_unsent_age_s = -1};
	j = render(&e);
	assert_string_equal(j, "{\"v\":1,\"device\":\"d\",\"uptime_s\":0,\"sent_at_ms\":0,"
			       "\"clock\":{\"synced\":false,\"offset_ms\":-250},"
			       "\"buffer\":{\"bytes\":0,\"records\":0,\"max_bytes\":0,"
			       "\"oldest_unsent_age_s\":null},\"drops\":{},\"expired\":0,"
			       "\"dead_letters\":0,\"sources\":[]}");
	free(j);

	/* appends after what the buffer holds, leaves it alone */
	struct rn_buf b = {0};
	rn_buf_append_str(&b, "xy");
	assert_int_equal(rn_health_render(&e, &b), 0);
	assert_memory_equal(b.data, "xy{\"v\":1,", 9);
	rn_buf_free(&b);

	assert_string_equal(rn_health_state_name(RN_HEALTH_IDLE), "idle");
	assert_string_equal(rn_health_state_name(RN_HEALTH_ERROR), "error");
	assert_string_equal(rn_health_state_name(99), "error");
	assert_string_equal(rn_health_state_name(-1), "error");
}

static void hostile_strings(void **st)
{
	(void)st;
	char longname[600];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	/* a 3-byte character straddling the 256-byte cut */
	char cut[300];
	memset(cut, 'a', 255);
	memcpy(cut + 255, "\xe2\x82\xac", 3);
	strcpy(cut + 258, "tail");
	struct rn_health_source src[] = {
		{.name = "a\"b\\c\n\x01", .type = "plugin", .error = "x\"}],{\"evil\":1"},
		{.name = "\xff\xfe bad utf8", .type = "serial", .error = longname},
		{.name = cut, .type = "file"},
	};
	struct rn_health_drop d[] = {{"rea\"son", 1}};
	struct rn_health_snap s = {.device = "dev\"ice",
				   .sources = src,
				   .nsources = 3,
				   .drops = d,
				   .ndrops = 1,
				   .oldest_unsent_age_s = -1};
	char *j = render(&s);
	assert_int_equal(rn_json_validate(j, strlen(j)), 0);
	assert_true(rn_utf8_valid(j, strlen(j)));
	assert_non_null(strstr(j, "\"name\":\"a\\\"b\\\\c\\u000a\\u0001\""));
	assert_non_null(strstr(j, "\"error\":\"x\\\"}],{\\\"evil\\\":1\""));
	assert_non_null(strstr(j, "\"device\":\"dev\\\"ice\""));
	assert_non_null(strstr(j, "\"rea\\\"son\":1"));
	assert_non_null(strstr(j, "\"name\":\"\xef\xbf\xbd\xef\xbf\xbd bad utf8\""));
	/* cut at 256 bytes */
	char want[300];
	snprintf(want, sizeof(want), "\"error\":\"%.256s\"", longname);
	assert_non_null(strstr(j, want));
	assert_null(strstr(
		j, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		   "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		   "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		   "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\""));
	/* the euro sign does not fit in 256 bytes: cut before it, not through it */
	snprintf(want, sizeof(want), "\"name\":\"%.255s\"", cut);
	assert_non_null(strstr(j, want));
	free(j);
}

/* n sources whose errors are `elen` bytes each */
static int render_n(size_t n, size_t elen, struct rn_buf *b)
{
	struct rn_health_source *src = calloc(n, sizeof(*src));
	char *err = malloc(elen + 1);
	char(*names)[24] = calloc(n, 24);
	memset(err, 'e', elen);
	err[elen] = 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 24, "s%zu", i);
		src[i] = (struct rn_health_source){
			.name = names[i], .type = "file", .error = err, .records = i};
	}
	struct rn_health_snap s = base();
	s.sources = src;
	s.nsources = n;
	int rc = rn_health_render(&s, b);
	free(src);
	free(err);
	free(names);
	return rc;
}

static void the_cap(void **st)
{
	(void)st;
	struct rn_buf b = {0};
	/* 200 sources of ~300 bytes: ~60 KB, cut to the ones that fit */
	assert_int_equal(render_n(200, 250, &b), 0);
	assert_true(b.len <= RN_HEALTH_MAX);
	assert_true(b.len > RN_HEALTH_MAX - 400); /* not cut more than needed */
	assert_int_equal(rn_json_validate((char *)b.data, b.len), 0);
	rn_buf_append_u8(&b, 0);
	const char *t = strstr((char *)b.data, "\"sources_truncated\":");
	assert_non_null(t);
	long left = strtol(t + 20, NULL, 10);
	/* the kept ones are s0..s(k-1), in order; k + left = 200 */
	int kept = 0;
	for (const char *p = (char *)b.data; (p = strstr(p, "{\"name\":\"s")); p++)
		kept++;
	assert_int_equal(kept + left, 200);
	char last[32];
	snprintf(last, sizeof(last), "\"name\":\"s%d\"", kept - 1);
	assert_non_null(strstr((char *)b.data, last));
	snprintf(last, sizeof(last), "\"name\":\"s%d\"", kept);
	assert_null(strstr((char *)b.data, last));
	assert_string_equal((char *)b.data + b.len - 2, "}"); /* the key closes the object */
	rn_buf_free(&b);

	/* just fits: no truncation key; find the largest n that fits whole */
	size_t n = 1;
	for (;; n++) {
		rn_buf_reset(&b);
		assert_int_equal(render_n(n, 250, &b), 0);
		rn_buf_append_u8(&b, 0);
		if (strstr((char *)b.data, "sources_truncated"))
			break;
		assert_true(b.len - 1 <= RN_HEALTH_MAX);
	}
	assert_true(n > 10);
	/* n sources do not fit: n - 1 are kept (n - 2 when the (n-1)th fitted only as the
	 * last one, without room for the truncation key after it) */
	t = strstr((char *)b.data, "\"sources_truncated\":");
	assert_non_null(t);
	left = strtol(t + 20, NULL, 10);
	assert_true(left == 1 || left == 2);
	assert_true(b.len - 1 <= RN_HEALTH_MAX);
	rn_buf_free(&b);

	/* a head that cannot fit (a device name is cut at 256 bytes, so only many drop
	 * reasons can do it): RN_ERANGE, the buffer untouched */
	struct rn_health_drop *d = calloc(200, sizeof(*d));
	char reason[200];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = 0;
	for (int i = 0; i < 200; i++)
		d[i] = (struct rn_health_drop){reason, 1};
	struct rn_health_snap s = base();
	s.drops = d;
	s.ndrops = 200;
	rn_buf_append_str(&b, "keep");
	assert_int_equal(rn_health_render(&s, &b), RN_ERANGE);
	assert_int_equal(b.len, 4);
	rn_buf_free(&b);
	free(d);
}

static void no_memory(void **st)
{
	(void)st;
	struct rn_health_snap s = base();
	int failed = 0;
	for (long nth = 1; nth < 200; nth++) {
		struct rn_buf b = {0};
		rn_mem_fail_after(nth);
		int rc = rn_health_render(&s, &b);
		rn_mem_fail_after(0);
		if (rc) {
			assert_int_equal(rc, RN_ENOMEM);
			assert_int_equal(b.len, 0);
			failed++;
		} else {
			rn_buf_append_u8(&b, 0);
			char *j = render(&s);
			assert_string_equal((char *)b.data, j);
			free(j);
			rn_buf_free(&b);
			break;
		}
		rn_buf_free(&b);
	}
	assert_true(failed >= 1);
}

static void changes(void **st)
{
	(void)st;
	struct rn_health_snap a = base(), b = base();
	/* what moves with time or traffic is no change */
	b.uptime_s++;
	b.sent_at_ms += 1000;
	b.buffer_bytes *= 2;
	b.buffer_records++;
	b.oldest_unsent_age_s = 99;
	b.clock_offset_known = 1;
	assert_false(rn_health_changed(&a, &b));
	assert_int_equal(rn_health_state_key(&a), rn_health_state_key(&b));

	struct rn_health_source s2[2];
	memcpy(s2, srcs2, sizeof(s2));
	b.sources = s2;
	s2[1].records += 100;
	s2[1].error = "other";
	assert_false(rn_health_changed(&a, &b));
	s2[1].state = RN_HEALTH_DOWN;
	assert_true(rn_health_changed(&a, &b));
	s2[1].state = RN_HEALTH_UP;
	s2[0].name = "gpsx";
	assert_true(rn_health_changed(&a, &b));
	s2[0].name = "gps";
	assert_false(rn_health_changed(&a, &b));
	b.nsources = 1;
	assert_true(rn_health_changed(&a, &b));
	b.nsources = 2;

	struct rn_health_drop d2[2];
	memcpy(d2, drops2, sizeof(d2));
	b.drops = d2;
	d2[1].count++;
	assert_true(rn_health_changed(&a, &b));
	d2[1].count--;
	assert_false(rn_health_changed(&a, &b));

	b.expired++;
	assert_true(rn_health_changed(&a, &b));
	b.expired--;
	b.dead_letters++;
	assert_true(rn_health_changed(&a, &b));
	b.dead_letters--;
	b.clock_synced = 0;
	assert_true(rn_health_changed(&a, &b));
	b.clock_synced = 1;
	assert_false(rn_health_changed(&a, &b));
}

static void schedule(void **st)
{
	(void)st;
	const int64_t S = 1000000;
	assert_false(rn_health_due(100 * S, 0, 0, 1)); /* 0 = never */
	assert_false(rn_health_due(100 * S, 0, -1, 1));
	assert_true(rn_health_due(100 * S, 0, 60, 0)); /* the first: at once */
	assert_false(rn_health_due(100 * S, 50 * S, 60, 0));
	assert_true(rn_health_due(110 * S, 50 * S, 60, 0));
	assert_true(rn_health_due(111 * S, 50 * S, 60, 0));
	/* a change: sooner, but not within 5 s of the last one */
	assert_false(rn_health_due(54 * S, 50 * S, 60, 1));
	assert_false(rn_health_due(55 * S - 1, 50 * S, 60, 1));
	assert_true(rn_health_due(55 * S, 50 * S, 60, 1));
	/* an interval below 5 s is kept even with changes */
	assert_true(rn_health_due(51 * S, 50 * S, 1, 0));
	assert_true(rn_health_due(51 * S, 50 * S, 1, 1));
	assert_false(rn_health_due(51 * S - 1, 50 * S, 1, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exact_json), cmocka_unit_test(hostile_strings),
		cmocka_unit_test(the_cap),    cmocka_unit_test(no_memory),
		cmocka_unit_test(changes),    cmocka_unit_test(schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
