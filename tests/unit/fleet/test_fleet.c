/*
 * Unit tests for the fleet model (server/fleet/): the health report validator with absurd
 * input (negative, huge, fractions, wrong types, deep nesting, long strings, too many
 * sources and drop reasons, bad UTF-8, oversize), the states at their thresholds with an
 * injected clock, devices following their streams, the API renderers (filter, sort, limit,
 * query errors), the system table rows (the streams rows in batches under a byte cap, each
 * stream once), and allocation failures everywhere (every
 * allocation of a run made to fail in turn: RN_ENOMEM, nothing leaked, the model still
 * usable). Pure: no server, no files, no clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_pbwire.h"

#define T0 1800000000000LL /* an arbitrary "now" in unix ms */

static struct rn_fleet_health H;

static int parse(const char *s)
{
	return rn_fleet_health_parse(&H, (const uint8_t *)s, strlen(s));
}

/* The rendered report holds `frag`. */
static int has(const struct rn_buf *b, const char *frag)
{
	return b->len && memmem(b->data, b->len, frag, strlen(frag)) != NULL;
}

static int setup(void **state)
{
	(void)state;
	rn_fleet_health_init(&H);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rn_fleet_health_free(&H);
	return 0;
}

static const char *full =
	"{\"v\":1,\"device\":\"dev-1\",\"version\":\"0.9.1\",\"config_sha256\":\"ab\","
	"\"boot_id\":\"b-1\",\"uptime_s\":77,\"sent_at_ms\":1800000000500,"
	"\"clock\":{\"synced\":true,\"offset_ms\":-12},"
	"\"buffer\":{\"bytes\":100,\"records\":5,\"max_bytes\":1000,\"oldest_unsent_age_s\":30},"
	"\"drops\":{\"full\":3,\"ttl\":4},\"expired\":1,\"dead_letters\":2,"
	"\"sources\":[{\"name\":\"m\",\"type\":\"mqtt\",\"state\":\"up\",\"error\":null,"
	"\"records\":9}],\"unknown\":{\"x\":[1,2]}}";

static void test_parse_valid(void **state)
{
	(void)state;
	assert_int_equal(parse(full), 0);
	assert_int_equal(H.reject, RN_FLEET_OK);
	assert_string_equal(H.invalid, "");
	assert_string_equal(H.device, "dev-1");
	assert_string_equal(H.version, "0.9.1");
	assert_int_equal(H.uptime_s, 77);
	assert_int_equal(H.clock_synced, 1);
	assert_true(H.has_offset);
	assert_int_equal(H.clock_offset_ms, -12);
	assert_int_equal(H.buffer_bytes, 100);
	assert_int_equal(H.oldest_unsent_age_s, 30);
	assert_int_equal(H.drops_total, 7);
	assert_int_equal(H.expired, 1);
	assert_int_equal(H.dead_letters, 2);
	assert_int_equal(rn_json_validate((const char *)H.json.data, H.json.len), 0);
	assert_true(has(&H.json, "\"drops\":{\"full\":3,\"ttl\":4}"));
	assert_true(has(&H.json, "\"sources\":[{\"name\":\"m\",\"type\":\"mqtt\",\"state\":\"up\","
				 "\"error\":null,\"records\":9}]"));
	assert_false(has(&H.json, "unknown"));
	/* keys absent: unknown, no reason */
	assert_int_equal(parse("{}"), 0);
	assert_string_equal(H.invalid, "");
	assert_int_equal(H.buffer_bytes, -1);
	assert_int_equal(H.clock_synced, -1);
	assert_int_equal(H.drops_total, -1);
}

static void test_parse_absurd(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"device\":\"d\",\"uptime_s\":-4,\"buffer\":{\"bytes\":1.5,"
			       "\"records\":\"x\",\"oldest_unsent_age_s\":99999999999999999999,"
			       "\"max_bytes\":9007199254740993},\"expired\":true,"
			       "\"dead_letters\":1e3,\"sent_at_ms\":-99999999999999999999,"
			       "\"clock\":{\"synced\":1,\"offset_ms\":0.5},\"v\":[1]}"),
			 0);
	assert_int_equal(H.reject, RN_FLEET_OK);
	assert_string_equal(H.device, "d");
	assert_int_equal(H.uptime_s, -1);
	assert_int_equal(H.buffer_bytes, -1);
	assert_int_equal(H.buffer_records, -1);
	assert_int_equal(H.oldest_unsent_age_s, -1);
	assert_int_equal(H.buffer_max_bytes, -1);
	assert_int_equal(H.expired, -1);
	assert_int_equal(H.dead_letters, -1);
	assert_int_equal(H.clock_synced, -1);
	assert_false(H.has_offset);
	assert_non_null(strstr(H.invalid, "uptime_s: negative"));
	assert_non_null(strstr(H.invalid, "buffer.bytes: not an integer"));
	assert_non_null(strstr(H.invalid, "buffer.records: not an integer"));
	assert_non_null(strstr(H.invalid, "buffer.oldest_unsent_age_s: too large"));
	assert_non_null(strstr(H.invalid, "buffer.max_bytes: too large"));
	assert_non_null(strstr(H.invalid, "expired: not an integer"));
	assert_non_null(strstr(H.invalid, "dead_letters: not an integer"));
	assert_non_null(strstr(H.invalid, "sent_at_ms: negative"));
	assert_non_null(strstr(H.invalid, "clock.synced: not a boolean"));
	assert_non_null(strstr(H.invalid, "clock.offset_ms: not an integer"));
	assert_non_null(strstr(H.invalid, "v: not an integer"));
	assert_true(has(&H.json, "\"uptime_s\":null"));
	assert_true(has(&H.json, "\"bytes\":null"));
	assert_int_equal(rn_json_validate((const char *)H.json.data, H.json.len), 0);
	/* 2^53 itself is in range, one more is not */
	assert_int_equal(parse("{\"uptime_s\":9007199254740992}"), 0);
	assert_int_equal(H.uptime_s, (int64_t)1 << 53);
	assert_int_equal(parse("{\"uptime_s\":-0}"), 0);
	assert_int_equal(H.uptime_s, 0);
	/* wrong types of the groups */
	assert_int_equal(parse("{\"device\":5,\"buffer\":[],\"clock\":\"x\",\"drops\":3,"
			       "\"sources\":{}}"),
			 0);
	assert_string_equal(H.device, "");
	assert_non_null(strstr(H.invalid, "device: not a string"));
	assert_non_null(strstr(H.invalid, "buffer: not an object"));
	assert_non_null(strstr(H.invalid, "clock: not an object"));
	assert_non_null(strstr(H.invalid, "drops: not an object"));
	assert_non_null(strstr(H.invalid, "sources: not an array"));
	/* a NUL inside a string */
	assert_int_equal(parse("{\"device\":\"a\\u0000b\"}"), 0);
	assert_string_equal(H.device, "");
	assert_non_null(strstr(H.invalid, "device: holds a NUL byte"));
}

static void test_parse_refused(void **state)
{
	char *big;
	(void)state;
	assert_int_equal(parse("not json"), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_JSON);
	assert_string_equal(rn_fleet_reject_name(H.reject), "json");
	assert_int_equal(parse("[1,2]"), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_NOT_OBJECT);
	assert_int_equal(parse("  \"s\" "), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_NOT_OBJECT);
	assert_int_equal(parse(""), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_JSON);
	assert_int_equal(rn_fleet_health_parse(&H, (const uint8_t *)"{\"device\":\"\xff\"}", 14),
			 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_UTF8);
	/* deep nesting: past the JSON walker's depth it is not JSON for us */
	big = malloc(RN_FLEET_REPORT_BYTES + 2);
	assert_non_null(big);
	size_t n = 0;
	big[n++] = '{';
	memcpy(big + n, "\"x\":", 4), n += 4;
	for (int i = 0; i < 200; i++)
		big[n++] = '[';
	for (int i = 0; i < 200; i++)
		big[n++] = ']';
	big[n++] = '}';
	big[n] = 0;
	assert_int_equal(parse(big), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_JSON);
	/* 16384 bytes is taken, 16385 is not */
	memset(big, ' ', RN_FLEET_REPORT_BYTES + 1);
	big[0] = '{';
	big[RN_FLEET_REPORT_BYTES - 1] = '}';
	big[RN_FLEET_REPORT_BYTES] = 0;
	assert_int_equal(parse(big), 0);
	assert_int_equal(H.reject, RN_FLEET_OK);
	big[RN_FLEET_REPORT_BYTES] = ' ';
	big[RN_FLEET_REPORT_BYTES + 1] = 0;
	assert_int_equal(parse(big), 0);
	assert_int_equal(H.reject, RN_FLEET_REJ_SIZE);
	assert_string_equal(rn_fleet_reject_name(H.reject), "size");
	free(big);
}

static void test_parse_limits(void **state)
{
	char buf[RN_FLEET_REPORT_BYTES];
	size_t n;
	(void)state;
	/* a long device name: cut at 256 bytes on a character boundary ("é" is 2 bytes) */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"device\":\"x");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\xc3\xa9");
	snprintf(buf + n, sizeof(buf) - n, "\"}");
	assert_int_equal(parse(buf), 0);
	assert_int_equal(strlen(H.device), 255); /* 1 + 127 * 2: the 128th "é" would pass 256 */
	assert_non_null(strstr(H.invalid, "device: truncated"));
	/* 70 sources: 64 kept, flagged once */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"sources\":[");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s{\"name\":\"s%d\"}",
				      i ? "," : "", i);
	snprintf(buf + n, sizeof(buf) - n, "]}");
	assert_int_equal(parse(buf), 0);
	assert_non_null(strstr(H.invalid, "sources: more than 64 sources"));
	assert_true(has(&H.sources_json, "\"s63\""));
	assert_false(has(&H.sources_json, "\"s64\""));
	/* 40 drop reasons: 32 kept and summed */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"drops\":{");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"r%d\":1", i ? "," : "", i);
	snprintf(buf + n, sizeof(buf) - n, "}}");
	assert_int_equal(parse(buf), 0);
	assert_non_null(strstr(H.invalid, "drops: more than 32 reasons"));
	assert_int_equal(H.drops_total, 32);
	/* a bad count among drops: that one null, the sum of the others */
	assert_int_equal(parse("{\"drops\":{\"a\":-1,\"b\":2,\"c\":\"x\"}}"), 0);
	assert_int_equal(H.drops_total, 2);
	assert_non_null(strstr(H.invalid, "drops.a: negative"));
	assert_non_null(strstr(H.invalid, "drops.c: not an integer"));
	assert_true(has(&H.drops_json, "{\"a\":null,\"b\":2,\"c\":null}"));
	/* a source that is not an object */
	assert_int_equal(parse("{\"sources\":[1,{\"name\":7,\"records\":-3}]}"), 0);
	assert_non_null(strstr(H.invalid, "sources[0]: not an object"));
	assert_non_null(strstr(H.invalid, "sources[1].name: not a string"));
	assert_non_null(strstr(H.invalid, "sources[1].records: negative"));
	/* many reasons: cut at the cap, still a string */
	n = (size_t)snprintf(buf, sizeof(buf), "{\"sources\":[");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n,
			"%s{\"name\":1,\"type\":2,\"state\":3,\"error\":4,\"records\":-1}",
			i ? "," : "");
	snprintf(buf + n, sizeof(buf) - n, "]}");
	assert_int_equal(parse(buf), 0);
	assert_true(strlen(H.invalid) < RN_FLEET_REASONS_MAX);
	assert_int_equal(rn_json_validate((const char *)H.json.data, H.json.len), 0);
}

static struct rn_fleet *mk(int64_t silent_s, int64_t behind_s)
{
	struct rn_fleet *f = NULL;
	struct rn_fleet_conf c = {silent_s * 1000, behind_s * 1000};
	assert_int_equal(rn_fleet_create(&f, &c), 0);
	return f;
}

static void report(struct rn_fleet *f, struct rn_fleet_stream *fs, const char *json, int64_t now)
{
	assert_int_equal(parse(json), 0);
	assert_int_equal(rn_fleet_report(f, fs, &H, now), 0);
}

static void test_states(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	(void)state;
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s-a", "t.a.b");
	assert_non_null(a);
	assert_ptr_equal(rn_fleet_stream_get(f, "s-a", "other"), a);
	rn_fleet_stream_open(a, RN_FLEET_PERSISTENT, "1.2.3.4:5", "p", T0);
	/* silent: exactly at fleet_silent_after from the open, then from the last batch */
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 299999), 0);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 300000), RN_FLEET_SILENT);
	a->last_batch_ms = T0 + 100000;
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 399999), 0);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 400000), RN_FLEET_SILENT);
	/* a report counts as a sign of life too */
	report(f, a, "{\"device\":\"d1\",\"buffer\":{\"oldest_unsent_age_s\":599}}", T0 + 200000);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 499999), 0);
	/* behind: at fleet_behind_after */
	report(f, a, "{\"device\":\"d1\",\"buffer\":{\"oldest_unsent_age_s\":600}}", T0 + 200000);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200000), RN_FLEET_BEHIND);
	/* clock: synced false; or records corrected within the hour */
	report(f, a, "{\"device\":\"d1\",\"clock\":{\"synced\":false}}", T0 + 200000);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200000), RN_FLEET_CLOCK);
	report(f, a, "{\"device\":\"d1\",\"clock\":{\"synced\":true}}", T0 + 200000);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200000), 0);
	a->clock_corrected_ms = T0 + 200000;
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200000 + RN_FLEET_HOUR_MS),
			 RN_FLEET_CLOCK | RN_FLEET_SILENT);
	a->last_batch_ms = T0 + 200001 + RN_FLEET_HOUR_MS;
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200001 + RN_FLEET_HOUR_MS), 0);
	/* invalid: the newest report on the stream had a bad field, or was refused */
	report(f, a, "{\"device\":\"d1\",\"uptime_s\":-1}", T0 + 200000 + RN_FLEET_HOUR_MS);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200001 + RN_FLEET_HOUR_MS),
			 RN_FLEET_INVALID);
	report(f, a, "{]", T0 + 200001 + RN_FLEET_HOUR_MS);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200001 + RN_FLEET_HOUR_MS),
			 RN_FLEET_INVALID);
	assert_int_equal(rn_fleet_ndevices(f), 1); /* a refused report keeps the device */
	report(f, a, "{\"device\":\"d1\"}", T0 + 200002 + RN_FLEET_HOUR_MS);
	assert_int_equal(rn_fleet_stream_states(f, a, T0 + 200002 + RN_FLEET_HOUR_MS), 0);
	rn_fleet_destroy(f);
}

static void test_dropping(void **state)
{
	struct rn_fleet *f = mk(100000, 100000);
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s", "t");
	(void)state;
	rn_fleet_stream_open(a, RN_FLEET_PERSISTENT, NULL, "p", T0);
	/* one report per minute with the same counts: not dropping */
	for (int m = 0; m < 30; m++)
		report(f, a, "{\"device\":\"d\",\"drops\":{\"full\":5},\"expired\":2}",
		       T0 + m * 60000);
	assert_false(rn_fleet_stream_states(f, a, T0 + 29 * 60000) & RN_FLEET_DROPPING);
	/* drops grew: dropping */
	report(f, a, "{\"device\":\"d\",\"drops\":{\"full\":6},\"expired\":2}", T0 + 30 * 60000);
	assert_true(rn_fleet_stream_states(f, a, T0 + 30 * 60000) & RN_FLEET_DROPPING);
	/* still growing compared with the oldest report of the last hour ... */
	for (int m = 31; m < 90; m++)
		report(f, a, "{\"device\":\"d\",\"drops\":{\"full\":6},\"expired\":2}",
		       T0 + m * 60000);
	assert_true(rn_fleet_stream_states(f, a, T0 + 89 * 60000) & RN_FLEET_DROPPING);
	/* ... until that one is the first with 6: an hour later, no longer */
	assert_false(rn_fleet_stream_states(f, a, T0 + 91 * 60000) & RN_FLEET_DROPPING);
	/* expired growing alone is dropping too */
	report(f, a, "{\"device\":\"d\",\"drops\":{\"full\":6},\"expired\":3}", T0 + 91 * 60000);
	assert_true(rn_fleet_stream_states(f, a, T0 + 91 * 60000) & RN_FLEET_DROPPING);
	/* counts reset by an agent restart (smaller) are not drops */
	struct rn_fleet *g = mk(100000, 100000);
	struct rn_fleet_stream *b = rn_fleet_stream_get(g, "s", "t");
	report(g, b, "{\"device\":\"d\",\"drops\":{\"full\":9},\"expired\":9}", T0);
	report(g, b, "{\"device\":\"d\",\"drops\":{\"full\":0},\"expired\":0}", T0 + 60000);
	assert_false(rn_fleet_stream_states(g, b, T0 + 60000) & RN_FLEET_DROPPING);
	rn_fleet_destroy(g);
	rn_fleet_destroy(f);
}

static void test_devices_follow_streams(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	struct rn_buf b = {0};
	struct rn_fleet_gauges g;
	(void)state;
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s-a", "t.a");
	struct rn_fleet_stream *c = rn_fleet_stream_get(f, "s-c", "t.c");
	struct rn_fleet_stream *r = rn_fleet_stream_get(f, "s-r", "t.r");
	rn_fleet_stream_open(a, RN_FLEET_PERSISTENT, "h:1", "p", T0);
	rn_fleet_stream_open(c, RN_FLEET_PERSISTENT, "h:2", "p", T0);
	rn_fleet_stream_open(r, RN_FLEET_REST, NULL, "q", T0);
	assert_true(a->connected);
	assert_false(r->connected);
	report(f, a,
	       "{\"device\":\"d1\",\"dead_letters\":4,\"drops\":{\"x\":2},\"expired\":1,"
	       "\"buffer\":{\"oldest_unsent_age_s\":700}}",
	       T0);
	report(f, c, "{\"device\":\"d1\",\"dead_letters\":5}", T0 + 1);
	assert_int_equal(rn_fleet_ndevices(f), 1);
	/* the device's newest report is c's */
	rn_fleet_gauges(f, T0 + 1, &g);
	assert_int_equal(g.streams[RN_FLEET_NSTATES], 3);
	assert_int_equal(g.streams[RN_FLEET_NSTATES + 1], 2);
	assert_int_equal(g.devices[RN_FLEET_NSTATES], 1);
	assert_int_equal(g.dead_letters, 5);
	assert_int_equal(g.oldest_unsent_age_s, 0);
	/* c moves to another device; a still names d1 */
	report(f, c,
	       "{\"device\":\"d2\",\"dead_letters\":1,\"buffer\":{\"oldest_unsent_age_s\":9}}",
	       T0 + 2);
	assert_int_equal(rn_fleet_ndevices(f), 2);
	rn_fleet_gauges(f, T0 + 2, &g);
	assert_int_equal(g.dead_letters, 6);
	assert_int_equal(g.oldest_unsent_age_s, 9);
	assert_int_equal(rn_fleet_render_device(f, "d1", 2, T0 + 2, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	assert_true(has(&b, "\"stream_id\":\"s-a\""));
	assert_false(has(&b, "\"stream_id\":\"s-c\""));
	/* history: oldest first, with the stream's counters */
	assert_true(has(&b, "\"history\":[{\"t_ms\":1800000000000,"));
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_render_device(f, "nope", 4, T0, &b), RN_ENOTFOUND);
	assert_int_equal(b.len, 0);
	/* a device goes with its last stream */
	rn_fleet_stream_forget(f, a);
	assert_int_equal(rn_fleet_ndevices(f), 1);
	assert_int_equal(rn_fleet_render_device(f, "d1", 2, T0, &b), RN_ENOTFOUND);
	rn_fleet_stream_forget(f, c);
	assert_int_equal(rn_fleet_ndevices(f), 0);
	assert_int_equal(rn_fleet_nstreams(f), 1);
	rn_fleet_stream_forget(f, NULL);
	rn_buf_free(&b);
	rn_fleet_destroy(f);
	rn_fleet_destroy(NULL);
}

static void test_history_ring(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	struct rn_buf b = {0};
	char frag[64];
	(void)state;
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s", "t");
	for (int i = 0; i < 75; i++) {
		a->records = (uint64_t)i;
		report(f, a, "{\"device\":\"d\"}", T0 + i);
	}
	assert_int_equal(rn_fleet_render_device(f, "d", 1, T0 + 80, &b), 0);
	/* the last 60: reports 15..74, oldest first */
	snprintf(frag, sizeof(frag), "\"history\":[{\"t_ms\":%lld,", (long long)(T0 + 15));
	assert_true(has(&b, frag));
	snprintf(frag, sizeof(frag), "\"t_ms\":%lld,", (long long)(T0 + 14));
	assert_false(has(&b, frag));
	assert_true(has(&b, "\"records\":74,\"bytes\":0}]}"));
	rn_buf_free(&b);
	rn_fleet_destroy(f);
}

static void test_query(void **state)
{
	struct rn_fleet_query q;
	const char *why = NULL;
	(void)state;
	assert_int_equal(rn_fleet_query_parse(NULL, 0, &q, &why), 0);
	assert_int_equal(q.limit, 1000);
	assert_int_equal(q.state, 0);
	assert_int_equal(rn_fleet_query_parse("state=silent&q=ab%20c&sort=records&order=asc&"
					      "limit=5&other=x",
					      0, &q, &why),
			 0);
	assert_int_equal(q.state, RN_FLEET_SILENT);
	assert_string_equal(q.q, "ab c");
	assert_string_equal(q.sort, "records");
	assert_false(q.desc);
	assert_int_equal(q.limit, 5);
	assert_int_equal(rn_fleet_query_parse("state=connected", 1, &q, &why), 0);
	assert_int_equal(q.state, -2);
	assert_int_equal(rn_fleet_query_parse("state=bogus", 0, &q, &why), RN_EINVAL);
	assert_non_null(strstr(why, "state"));
	assert_int_equal(rn_fleet_query_parse("limit=0", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("limit=10001", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("limit=-1", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("limit=5x", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("limit=", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("limit=10000", 0, &q, &why), 0);
	assert_int_equal(rn_fleet_query_parse("order=up", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("sort=buffer_bytes", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("sort=buffer_bytes", 1, &q, &why), 0);
	assert_int_equal(rn_fleet_query_parse("sort=stream_id", 1, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("q=%zz", 0, &q, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_query_parse("q=a%00b", 0, &q, &why), RN_EINVAL);
}

/* The stream ids of a /streams answer, in order, joined by ','. */
static void ids_of(const struct rn_buf *b, char *out, size_t cap)
{
	const char *p = (const char *)b->data, *end = p + b->len;
	size_t n = 0;
	out[0] = 0;
	while ((p = memmem(p, (size_t)(end - p), "\"stream_id\":\"", 13))) {
		p += 13;
		const char *q = memchr(p, '"', (size_t)(end - p));
		n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "," : "", (int)(q - p), p);
	}
}

static void test_render_lists(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	struct rn_fleet_query q;
	struct rn_buf b = {0};
	const char *why;
	char ids[256];
	(void)state;
	for (int i = 0; i < 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "s%d", i);
		struct rn_fleet_stream *s = rn_fleet_stream_get(f, id, i % 2 ? "t.odd" : "t.even");
		rn_fleet_stream_open(s, RN_FLEET_PERSISTENT, "h:1", "p", T0);
		s->last_batch_ms = T0 + i * 1000;
		s->records = (uint64_t)(10 - i);
	}
	/* default: last_batch_ms desc */
	assert_int_equal(rn_fleet_query_parse(NULL, 0, &q, &why), 0);
	assert_int_equal(rn_fleet_render_streams(f, &q, T0 + 5000, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	ids_of(&b, ids, sizeof(ids));
	assert_string_equal(ids, "s3,s2,s1,s0");
	assert_true(has(&b, "\"total\":4,"));
	/* sort by records asc, limit 2: total before the limit */
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse("sort=records&limit=2", 0, &q, &why), 0);
	assert_int_equal(rn_fleet_render_streams(f, &q, T0 + 5000, &b), 0);
	ids_of(&b, ids, sizeof(ids));
	assert_string_equal(ids, "s3,s2");
	assert_true(has(&b, "\"total\":4,"));
	/* a substring of the table */
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse("q=odd&sort=stream_id&order=desc", 0, &q, &why), 0);
	assert_int_equal(rn_fleet_render_streams(f, &q, T0 + 5000, &b), 0);
	ids_of(&b, ids, sizeof(ids));
	assert_string_equal(ids, "s3,s1");
	/* silent ones only: s0 (its last batch at T0) at T0 + 300000 */
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse("state=silent", 0, &q, &why), 0);
	assert_int_equal(rn_fleet_render_streams(f, &q, T0 + 300000, &b), 0);
	ids_of(&b, ids, sizeof(ids));
	assert_string_equal(ids, "s0");
	assert_true(has(&b, "\"states\":[\"silent\"]"));
	/* devices: none yet, then two */
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse(NULL, 1, &q, &why), 0);
	assert_int_equal(rn_fleet_render_devices(f, &q, T0, &b), 0);
	assert_true(has(&b, "\"total\":0,\"devices\":[]"));
	report(f, rn_fleet_stream_find(f, "s0"),
	       "{\"device\":\"dev \\\"a\\\"\",\"buffer\":{\"bytes\":5}}", T0);
	report(f, rn_fleet_stream_find(f, "s1"), "{\"device\":\"dev-b\",\"buffer\":{\"bytes\":-5}}",
	       T0 + 1);
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse("sort=buffer_bytes&order=desc", 1, &q, &why), 0);
	assert_int_equal(rn_fleet_render_devices(f, &q, T0 + 2, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	assert_true(has(&b, "\"total\":2,\"devices\":[{\"device\":\"dev \\\"a\\\"\""));
	assert_true(has(&b, "\"invalid\":[\"buffer.bytes: negative\"]"));
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_query_parse("state=invalid", 1, &q, &why), 0);
	assert_int_equal(rn_fleet_render_devices(f, &q, T0 + 2, &b), 0);
	assert_true(has(&b, "\"total\":1,\"devices\":[{\"device\":\"dev-b\""));
	rn_buf_free(&b);
	rn_fleet_destroy(f);
}

static void test_rows(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	struct rn_buf b = {0};
	size_t n = 0;
	(void)state;
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s-a", "t.a");
	rn_fleet_stream_open(a, RN_FLEET_PERSISTENT, "h:1", "p", T0);
	assert_int_equal(parse(full), 0);
	assert_int_equal(rn_fleet_agents_row(a, &H, T0, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	assert_true(has(&b, "\"ts\":1800000000000000,\"device\":\"dev-1\""));
	assert_true(has(&b, "\"agent_clock_offset_ms\":500"));
	assert_true(has(&b, "\"drops_total\":7,\"drops_json\":\"{\\\"full\\\":3,\\\"ttl\\\":4}\""));
	assert_true(has(&b, "\"invalid\":null}"));
	rn_buf_reset(&b);
	assert_int_equal(parse("nope"), 0);
	assert_int_equal(rn_fleet_agents_row(a, &H, T0, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	assert_true(has(&b, "\"device\":null"));
	assert_true(has(&b, "\"invalid\":\"report: not JSON\"}"));
	rn_buf_reset(&b);
	assert_int_equal(rn_fleet_report(f, a, &H, T0), 0);
	size_t next = 0;
	assert_int_equal(rn_fleet_streams_rows(f, T0 + 1, &next, 1 << 20, &b, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(next, 1);
	assert_true(has(&b, "\"states\":\"invalid\""));
	assert_true(has(&b, "\"last_report_ts\":1800000000000000"));
	rn_buf_free(&b);
	rn_fleet_destroy(f);
}

/* The streams' rows in batches of at most `cap` bytes (a cursor carried from call to call):
 * every stream exactly once across the batches, each batch under the cap, the last call 0
 * rows; a cap no row fits is RN_ETOOBIG with nothing appended and the cursor unmoved. */
static void test_rows_batches(void **state)
{
	struct rn_fleet *f = mk(300, 600);
	struct rn_buf b = {0};
	enum { N = 300 };
	int seen[N] = {0};
	size_t n = 0, next = 0, batches = 0, total = 0;
	const size_t cap = 2000; /* a few rows each */
	char id[32];
	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "s-%03d", i);
		struct rn_fleet_stream *fs = rn_fleet_stream_get(f, id, "t.a");
		assert_non_null(fs);
		rn_fleet_stream_open(fs, RN_FLEET_PERSISTENT, "h:1", "p", T0);
	}
	assert_int_equal(rn_fleet_streams_rows(f, T0, &next, 100, &b, &n), RN_ETOOBIG);
	assert_int_equal(next, 0);
	assert_int_equal(b.len, 0);
	for (;;) {
		rn_buf_reset(&b);
		assert_int_equal(rn_fleet_streams_rows(f, T0, &next, cap, &b, &n), 0);
		if (!n)
			break;
		assert_true(b.len <= cap);
		batches++;
		total += n;
		assert_int_equal(next, total);
		/* the record list's rows: which streams */
		struct rn_pb_reader rd;
		struct rn_pb_field fl;
		size_t rows = 0;
		rn_pb_reader_init(&rd, b.data, b.len);
		while (rn_pb_next(&rd, &fl) == 1) {
			static const char key[] = "\"stream_id\":\"s-";
			const char *p = memmem(fl.ptr, fl.len, key, sizeof(key) - 1);
			assert_non_null(p);
			seen[atoi(p + sizeof(key) - 1)]++;
			rows++;
		}
		assert_int_equal(rows, n);
	}
	assert_true(batches > 10); /* the cap made many batches */
	assert_int_equal(total, N);
	assert_int_equal(next, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	rn_buf_free(&b);
	rn_fleet_destroy(f);
}

/* Every allocation of a run failed in turn: RN_ENOMEM or success, never a crash or a leak. */
static void run_all(int *failed)
{
	struct rn_fleet *f = NULL;
	struct rn_fleet_health h;
	struct rn_fleet_query q;
	struct rn_buf b = {0};
	const char *why;
	size_t n;
	rn_fleet_health_init(&h);
	if (rn_fleet_create(&f, NULL)) {
		*failed = 1;
		return;
	}
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s-a", "t.a");
	struct rn_fleet_stream *c = rn_fleet_stream_get(f, "s-c", "t.c");
	if (!a || !c)
		*failed = 1;
	if (a && !rn_fleet_health_parse(&h, (const uint8_t *)full, strlen(full))) {
		if (rn_fleet_report(f, a, &h, T0))
			*failed = 1;
		if (rn_fleet_agents_row(a, &h, T0, &b))
			*failed = 1;
	} else {
		*failed = 1;
	}
	rn_fleet_query_parse("sort=records", 0, &q, &why);
	if (rn_fleet_render_streams(f, &q, T0, &b) || rn_fleet_render_devices(f, &q, T0, &b) ||
	    rn_fleet_render_device(f, "dev-1", 5, T0, &b) == RN_ENOMEM ||
	    rn_fleet_streams_rows(f, T0, &(size_t){0}, 1 << 20, &b, &n))
		*failed = 1;
	rn_buf_free(&b);
	rn_fleet_health_free(&h);
	rn_fleet_destroy(f);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	long k;
	for (k = 1; k < 10000; k++) {
		int failed = 0;
		long before = rn_mem_live();
		rn_mem_fail_after(k);
		run_all(&failed);
		int reached = rn_mem_fail_reached();
		rn_mem_fail_after(0);
		assert_int_equal(rn_mem_live(), before);
		if (!reached) {
			assert_false(failed); /* no failure injected: everything worked */
			break;
		}
	}
	assert_true(k > 10 && k < 10000); /* the run allocates, and the sweep ended */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_absurd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devices_follow_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_ring, setup, teardown),
		cmocka_unit_test(test_query),
		cmocka_unit_test_setup_teardown(test_render_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_batches, setup, teardown),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
