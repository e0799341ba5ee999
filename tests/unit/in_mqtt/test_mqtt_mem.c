/*
 * Unit tests for plugins/in_mqtt/mqtt_mem.c, the retained-message rule and the remembered
 * subscriptions, without a broker: a retained value already stored is known, a changed one
 * is not, an ordinary message on a remembered topic replaces the digest (the broker's
 * retained value may be that message) and on any other topic is not remembered, the table
 * stops growing at RN_MQTT_RETAINED_MAX, subscriptions are told apart by filter and options,
 * and the text form round-trips, sits after the redelivery ring's entries, and skips what is
 * malformed. Allocation failure at create is clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt_mem.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_mem.h"

static uint64_t dg(const char *topic, const char *payload)
{
	return rn_mqtt_digest(topic, payload, strlen(payload));
}

static struct rn_mqtt_mem *mem(void)
{
	struct rn_mqtt_mem *m = NULL;
	assert_int_equal(rn_mqtt_mem_create(&m), 0);
	assert_non_null(m);
	return m;
}

/* Encodes a and decodes it into a fresh memory: what a restart sees. */
static struct rn_mqtt_mem *restart(const struct rn_mqtt_mem *a, const char *prefix)
{
	struct rn_buf b = {0};
	struct rn_mqtt_mem *m = mem();
	assert_int_equal(rn_buf_append(&b, prefix, strlen(prefix)), 0);
	assert_int_equal(rn_mqtt_mem_encode(a, &b), 0);
	rn_mqtt_mem_decode(m, (const char *)b.data, b.len);
	rn_buf_free(&b);
	return m;
}

#define VECTOR 0x9a8a5514dace4110ULL

static void test_digest(void **state)
{
	(void)state;
	/* the redelivery ring's hash (64-bit FNV-1a, topic, 0xff, payload): values an older
	 * snapshot holds must still match */
	assert_true(dg("plant/a/temp", "21.5") == VECTOR);
	assert_true(dg("a", "bc") != dg("ab", "c"));
	assert_true(dg("t", "x") != dg("t", "y"));
	assert_true(dg("t", "x") == dg("t", "x"));
}

static void test_retained_rule(void **state)
{
	struct rn_mqtt_mem *m = mem();
	(void)state;
	/* first retained value: not known, then remembered */
	assert_false(rn_mqtt_mem_retained_known(m, "s/a", dg("s/a", "on")));
	assert_int_equal(rn_mqtt_mem_note(m, "s/a", dg("s/a", "on"), 1), 0);
	assert_true(rn_mqtt_mem_retained_known(m, "s/a", dg("s/a", "on")));
	/* a changed value is stored */
	assert_false(rn_mqtt_mem_retained_known(m, "s/a", dg("s/a", "off")));
	/* an ordinary message on a remembered topic replaces the digest */
	rn_mqtt_mem_note(m, "s/a", dg("s/a", "off"), 0);
	assert_true(rn_mqtt_mem_retained_known(m, "s/a", dg("s/a", "off")));
	assert_false(rn_mqtt_mem_retained_known(m, "s/a", dg("s/a", "on")));
	/* ordinary messages on other topics are not remembered (the snapshot stays small) */
	rn_mqtt_mem_note(m, "live/x", dg("live/x", "1"), 0);
	assert_false(rn_mqtt_mem_retained_known(m, "live/x", dg("live/x", "1")));
	assert_int_equal(rn_mqtt_mem_retained_count(m), 1);
	/* the same payload on another topic is another message */
	assert_false(rn_mqtt_mem_retained_known(m, "s/b", dg("s/a", "off")));
	rn_mqtt_mem_destroy(m);
}

static void test_cap(void **state)
{
	struct rn_mqtt_mem *m = mem();
	char t[32];
	(void)state;
	for (int i = 0; i < RN_MQTT_RETAINED_MAX; i++) {
		snprintf(t, sizeof(t), "dev/%d/status", i);
		assert_int_equal(rn_mqtt_mem_note(m, t, dg(t, "up"), 1), 0);
	}
	assert_int_equal(rn_mqtt_mem_note(m, "dev/x/status", dg("dev/x/status", "up"), 1), 1);
	assert_false(rn_mqtt_mem_retained_known(m, "dev/x/status", dg("dev/x/status", "up")));
	assert_int_equal(rn_mqtt_mem_retained_count(m), RN_MQTT_RETAINED_MAX);
	/* known topics still update and are all found */
	assert_int_equal(rn_mqtt_mem_note(m, "dev/7/status", dg("dev/7/status", "down"), 1), 0);
	for (int i = 0; i < RN_MQTT_RETAINED_MAX; i++) {
		snprintf(t, sizeof(t), "dev/%d/status", i);
		assert_true(rn_mqtt_mem_retained_known(m, t, dg(t, i == 7 ? "down" : "up")));
	}
	struct rn_mqtt_mem *r = restart(m, "");
	assert_int_equal(rn_mqtt_mem_retained_count(r), RN_MQTT_RETAINED_MAX);
	assert_true(rn_mqtt_mem_retained_known(r, "dev/7/status", dg("dev/7/status", "down")));
	assert_true(rn_mqtt_mem_retained_known(r, "dev/1023/status", dg("dev/1023/status", "up")));
	rn_mqtt_mem_destroy(r);
	rn_mqtt_mem_destroy(m);
}

static void test_subs(void **state)
{
	struct rn_mqtt_mem *m = mem();
	(void)state;
	assert_false(rn_mqtt_mem_granted(m, "a/#", 1));
	rn_mqtt_mem_grant(m, "a/#", 1);
	rn_mqtt_mem_grant(m, "a/#", 1); /* once */
	assert_true(rn_mqtt_mem_granted(m, "a/#", 1));
	assert_false(rn_mqtt_mem_granted(m, "a/#", 0));    /* another QoS: subscribe again */
	assert_false(rn_mqtt_mem_granted(m, "a/#", 0x11)); /* other options */
	assert_false(rn_mqtt_mem_granted(m, "b/#", 1));
	struct rn_mqtt_mem *r = restart(m, "");
	assert_true(rn_mqtt_mem_granted(r, "a/#", 1));
	rn_mqtt_mem_forget_subs(r);
	assert_false(rn_mqtt_mem_granted(r, "a/#", 1));
	struct rn_buf b = {0};
	assert_int_equal(rn_mqtt_mem_encode(m, &b), 0);
	assert_int_equal(b.len, 18); /* "s" + 16 hex + "," */
	rn_buf_free(&b);
	rn_mqtt_mem_destroy(r);
	rn_mqtt_mem_destroy(m);
}

static void test_text_form(void **state)
{
	struct rn_mqtt_mem *m = mem();
	(void)state;
	rn_mqtt_mem_note(m, "s/a", dg("s/a", "on"), 1);
	rn_mqtt_mem_grant(m, "s/#", 1);
	/* after the redelivery ring's "mid:hash," entries, which it skips */
	struct rn_mqtt_mem *r = restart(m, "17:00000000000000ab,18:00000000000000cd,");
	assert_true(rn_mqtt_mem_retained_known(r, "s/a", dg("s/a", "on")));
	assert_true(rn_mqtt_mem_granted(r, "s/#", 1));
	assert_int_equal(rn_mqtt_mem_retained_count(r), 1);
	rn_mqtt_mem_destroy(r);

	/* an older snapshot (ring only) loads nothing; malformed entries are skipped, good ones
	 * around them kept; text need not be NUL-terminated */
	struct rn_mqtt_mem *e = mem();
	assert_int_equal(rn_mqtt_mem_decode(e, "1:0000000000000001,2:0000000000000002,", 38), 0);
	const char *bad = "r0000:1,s12,rzzzzzzzzzzzzzzzz:0000000000000001,"
			  "r00000000000000000000000000000000001,"
			  "r0000000000000001:0000000000000002,"
			  "s00000000000000AA,sxyz,,,"
			  "s00000000000000aa,r0000000000000003:00000000000000";
	assert_int_equal(rn_mqtt_mem_decode(e, bad, strlen(bad)), 2);
	assert_int_equal(rn_mqtt_mem_retained_count(e), 1);
	assert_int_equal(rn_mqtt_mem_decode(e, "", 0), 0);
	char cut[] = "r0000000000000004:0000000000000005,";
	assert_int_equal(rn_mqtt_mem_decode(e, cut, 20), 0); /* cut short */
	rn_mqtt_mem_destroy(e);
	rn_mqtt_mem_destroy(m);
}

static void test_enomem(void **state)
{
	struct rn_mqtt_mem *m = (struct rn_mqtt_mem *)1;
	(void)state;
	rn_mem_fail_after(1);
	assert_int_equal(rn_mqtt_mem_create(&m), RN_ENOMEM);
	assert_null(m);
	rn_mem_fail_after(0);
	rn_mqtt_mem_destroy(NULL);
	/* encode under allocation failure: an error, never a crash */
	m = mem();
	rn_mqtt_mem_note(m, "s/a", dg("s/a", "on"), 1);
	for (long n = 1;; n++) {
		struct rn_buf b = {0};
		rn_mem_fail_after(n);
		int rc = rn_mqtt_mem_encode(m, &b);
		rn_mem_fail_after(0);
		rn_buf_free(&b);
		if (!rc)
			break;
		assert_int_equal(rc, RN_ENOMEM);
	}
	rn_mqtt_mem_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest),    cmocka_unit_test(test_retained_rule),
		cmocka_unit_test(test_cap),       cmocka_unit_test(test_subs),
		cmocka_unit_test(test_text_form), cmocka_unit_test(test_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
