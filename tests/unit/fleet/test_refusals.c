/*
 * Unit tests for the refusal sources (server/fleet/refusals.c): the key (address without its
 * port, principal), counts by kind with the "other" slot, one count per note, the bound and
 * eviction of the least recently refused with honest totals, the reason cut on a UTF-8
 * character, the last hour's window, the renderers (filter, sort, limit, summary), the
 * system table rows per interval, and every allocation made to fail in turn. Pure: no
 * server, no clock.
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
#include "refusals.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "rn_utf8.h"

#define T0 1800000000000LL

static int has(const struct rn_buf *b, const char *frag)
{
	return b->len && memmem(b->data, b->len, frag, strlen(frag)) != NULL;
}

static void render(struct rn_refusals *r, const char *query, int64_t now, struct rn_buf *b)
{
	struct rn_fleet_query q;
	const char *why = NULL;
	rn_buf_reset(b);
	assert_int_equal(rn_fleet_query_parse(query, RN_FLEET_QUERY_REFUSALS, &q, &why), 0);
	assert_int_equal(rn_refusals_render(r, &q, now, b), 0);
	assert_int_equal(rn_json_validate((const char *)b->data, b->len), 0);
}

static void test_key_and_kinds(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_refusals_totals t;
	struct rn_buf b = {0};
	assert_int_equal(rn_refusals_create(&r, 0), 0);
	/* the port is cut: three calls from 10.0.0.1 are one source */
	assert_int_equal(rn_refusals_note(r, "10.0.0.1:5000", NULL, "UNAUTHENTICATED", "bad token",
					  NULL, T0),
			 0);
	assert_int_equal(
		rn_refusals_note(r, "10.0.0.1:5001", "", "UNAUTHENTICATED", "expired", "", T0 + 1),
		0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.1", "", "http_401", "no token", NULL, T0 + 2),
			 0);
	/* another principal from the same address is another source; IPv6 forms */
	assert_int_equal(rn_refusals_note(r, "10.0.0.1:7", "dev-a", "PERMISSION_DENIED",
					  "not allowed", "main.t", T0 + 3),
			 0);
	assert_int_equal(rn_refusals_note(r, "[::1]:9", "dev-a", "NOT_FOUND", "x", NULL, T0 + 4),
			 0);
	assert_int_equal(rn_refusals_note(r, "::1", "dev-a", "NOT_FOUND", "y", NULL, T0 + 5), 0);
	rn_refusals_totals(r, T0 + 5, &t);
	assert_int_equal(t.refused, 6);
	assert_int_equal(t.sources, 3);
	assert_int_equal(t.last_hour, 6);
	assert_int_equal(t.evicted + t.evicted_calls + t.unattributed, 0);

	render(r, NULL, T0 + 5, &b);
	assert_true(has(&b, "\"total\":3,\"refused\":6,"));
	/* count desc by default: 10.0.0.1 "" (3) first */
	assert_true(has(&b, "\"sources\":[{\"peer\":\"10.0.0.1\",\"principal\":\"\",\"table\":null,"
			    "\"count\":3,\"kinds\":{\"UNAUTHENTICATED\":2,\"http_401\":1},"
			    "\"first_ms\":1800000000000,\"last_ms\":1800000000002,"
			    "\"last_reason\":\"no token\"}"));
	assert_true(has(&b, "{\"peer\":\"::1\",\"principal\":\"dev-a\",\"table\":null,\"count\":2,"
			    "\"kinds\":{\"NOT_FOUND\":2}"));
	assert_true(has(&b, "{\"peer\":\"10.0.0.1\",\"principal\":\"dev-a\",\"table\":\"main.t\","
			    "\"count\":1,\"kinds\":{\"PERMISSION_DENIED\":1}"));

	/* filter, sort by peer (a..z), limit */
	render(r, "q=dev-a&sort=peer&limit=1", T0 + 5, &b);
	assert_true(has(&b, "\"total\":2,"));
	assert_true(has(&b, "\"sources\":[{\"peer\":\"10.0.0.1\",\"principal\":\"dev-a\""));
	assert_false(has(&b, "::1"));
	render(r, "sort=peer&order=desc", T0 + 5, &b);
	assert_true(has(&b, "\"sources\":[{\"peer\":\"::1\""));
	render(r, "q=PERMISSION", T0 + 5, &b);
	assert_true(has(&b, "\"total\":1,"));
	render(r, "sort=last", T0 + 5, &b);
	assert_true(has(&b, "\"sources\":[{\"peer\":\"::1\""));

	struct rn_fleet_query q;
	const char *why = NULL;
	assert_int_equal(rn_fleet_query_parse("sort=records", RN_FLEET_QUERY_REFUSALS, &q, &why),
			 RN_EINVAL);
	assert_non_null(why);

	/* the summary: last hour and the top sources */
	rn_buf_reset(&b);
	assert_int_equal(rn_refusals_summary(r, T0 + 5, &b), 0);
	assert_int_equal(rn_json_validate((const char *)b.data, b.len), 0);
	assert_true(has(&b, "{\"last_hour\":6,\"total\":6,\"sources\":3,\"top\":[{\"peer\":"
			    "\"10.0.0.1\",\"principal\":\"\""));
	/* an hour later the window is empty, the totals stay */
	rn_refusals_totals(r, T0 + 3600000 + 60000, &t);
	assert_int_equal(t.last_hour, 0);
	assert_int_equal(t.refused, 6);
	rn_buf_free(&b);
	rn_refusals_destroy(r);
}

static void test_kinds_bound(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_buf b = {0};
	char kind[32];
	assert_int_equal(rn_refusals_create(&r, 4), 0);
	for (int i = 0; i < RN_REFUSALS_KINDS + 3; i++) {
		snprintf(kind, sizeof(kind), "K%d", i);
		assert_int_equal(rn_refusals_note(r, "1.2.3.4:1", "p", kind, "r", NULL, T0), 0);
	}
	render(r, NULL, T0, &b);
	/* the first kinds apart, the last slot sums the rest: no count lost */
	assert_true(has(&b, "\"count\":11,"));
	assert_true(has(&b, "\"K0\":1,"));
	snprintf(kind, sizeof(kind), "\"K%d\":1,", RN_REFUSALS_KINDS - 2);
	assert_true(has(&b, kind));
	snprintf(kind, sizeof(kind), "\"other\":%d}", 4);
	assert_true(has(&b, kind));
	rn_buf_free(&b);
	rn_refusals_destroy(r);
}

static void test_bound_and_eviction(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_refusals_totals t;
	struct rn_buf b = {0};
	char peer[32];
	assert_int_equal(rn_refusals_create(&r, 3), 0);
	/* a: 2 calls, b: 1, c: 1; then a again (most recent), then d evicts b (least recent) */
	assert_int_equal(rn_refusals_note(r, "10.0.0.1:1", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.1:2", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.2:1", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.3:1", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.1:3", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	assert_int_equal(rn_refusals_note(r, "10.0.0.4:1", "", "UNAUTHENTICATED", "", NULL, T0), 0);
	rn_refusals_totals(r, T0, &t);
	assert_int_equal(t.sources, 3);
	assert_int_equal(t.refused, 6);
	assert_int_equal(t.evicted, 1);
	assert_int_equal(t.evicted_calls, 1);
	render(r, NULL, T0, &b);
	assert_false(has(&b, "10.0.0.2"));
	assert_true(
		has(&b, "{\"peer\":\"10.0.0.1\",\"principal\":\"\",\"table\":null,\"count\":3"));
	assert_true(has(&b, "\"evicted\":1,\"evicted_calls\":1,"));
	/* a flood of new sources: the bound holds, the totals stay honest */
	for (int i = 0; i < 1000; i++) {
		snprintf(peer, sizeof(peer), "192.168.%d.%d:80", i / 250, i % 250);
		assert_int_equal(rn_refusals_note(r, peer, "x", "NOT_FOUND", "", NULL, T0 + i), 0);
	}
	rn_refusals_totals(r, T0 + 1000, &t);
	assert_int_equal(t.sources, 3);
	assert_int_equal(t.refused, 1006);
	assert_int_equal(t.evicted, 1001);
	assert_int_equal(t.evicted_calls + 3, 1006); /* the 3 kept have 1 each */
	rn_buf_free(&b);
	rn_refusals_destroy(r);
}

static void test_text_bounds(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_buf b = {0};
	char reason[RN_REFUSALS_REASON_MAX + 40], big[600];
	assert_int_equal(rn_refusals_create(&r, 0), 0);
	/* a 3-byte character straddling the bound is left out whole */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + RN_REFUSALS_REASON_MAX - 2, "\xe2\x82\xac", 3);
	reason[sizeof(reason) - 1] = 0;
	assert_int_equal(rn_refusals_note(r, "1.1.1.1:1", "p", "X", reason, NULL, T0), 0);
	render(r, NULL, T0, &b);
	const char *lr = strstr((const char *)b.data, "\"last_reason\":\"");
	assert_non_null(lr);
	lr += strlen("\"last_reason\":\"");
	size_t n = strcspn(lr, "\"");
	assert_int_equal(n, RN_REFUSALS_REASON_MAX - 2);
	/* bytes that are not UTF-8 and control characters become '?'; valid text stays */
	assert_int_equal(
		rn_refusals_note(r, "1.1.1.1:1", "p", "X", "a\xff\xc3(b\x01\xc3\xa9", NULL, T0), 0);
	render(r, NULL, T0, &b);
	assert_true(has(&b, "\"last_reason\":\"a?"
			    "?(b?\xc3\xa9\""));
	/* long principal, table and address are cut, a truncated sequence replaced */
	memset(big, 'p', sizeof(big));
	big[sizeof(big) - 1] = 0;
	assert_int_equal(rn_refusals_note(r, big, big, big, "\xe2\x82", big, T0), 0);
	render(r, "sort=principal&order=desc", T0, &b);
	assert_int_equal(rn_utf8_valid(b.data, b.len), 1);
	assert_true(has(&b, "\"last_reason\":\"??\""));
	rn_buf_free(&b);
	rn_refusals_destroy(r);
}

/* Rows under a byte cap: batches of at most cap bytes, each source written once across
 * them; a cap below one row writes nothing and keeps every interval. */
static void test_rows_cap(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_buf out = {0};
	char peer[32], needle[40];
	size_t n = 0, total = 0, batches = 0;
	int seen[50] = {0};
	assert_int_equal(rn_refusals_create(&r, 0), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(peer, sizeof(peer), "10.0.0.%d:5", i);
		assert_int_equal(
			rn_refusals_note(r, peer, "", "UNAUTHENTICATED", "bad token", NULL, T0), 0);
	}
	assert_int_equal(rn_refusals_rows(r, T0 + 1000, 40, &out, &n), RN_ETOOBIG);
	assert_int_equal(out.len, 0);
	do {
		rn_buf_reset(&out);
		assert_int_equal(rn_refusals_rows(r, T0 + 1000, 1200, &out, &n), 0);
		assert_true(out.len <= 1200);
		for (int i = 0; i < 50; i++) {
			snprintf(needle, sizeof(needle), "\"peer\":\"10.0.0.%d\"", i);
			seen[i] += has(&out, needle);
		}
		total += n;
		batches += n > 0;
	} while (n);
	assert_int_equal(total, 50);
	assert_true(batches > 5);
	for (int i = 0; i < 50; i++)
		assert_int_equal(seen[i], 1);
	rn_buf_free(&out);
	rn_refusals_destroy(r);
}

/* field 1's JSON rows of a record list, decoded naively: the count of rows and one text */
static void test_rows(void **state)
{
	(void)state;
	struct rn_refusals *r;
	struct rn_buf out = {0};
	size_t n = 99;
	assert_int_equal(rn_refusals_create(&r, 0), 0);
	assert_int_equal(rn_refusals_rows(r, T0, SIZE_MAX, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(
		rn_refusals_note(r, "1.1.1.1:1", "p", "PERMISSION_DENIED", "no", "m.t", T0), 0);
	assert_int_equal(
		rn_refusals_note(r, "1.1.1.1:2", "p", "PERMISSION_DENIED", "no", "m.t", T0), 0);
	assert_int_equal(rn_refusals_note(r, "2.2.2.2:1", "", "UNAUTHENTICATED", "bad", NULL, T0),
			 0);
	assert_int_equal(rn_refusals_rows(r, T0 + 1000, SIZE_MAX, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_true(has(&out, "{\"ts\":1800000001000000,\"peer\":\"1.1.1.1\",\"principal\":\"p\","
			      "\"table_name\":\"m.t\",\"kinds\":\"{\\\"PERMISSION_DENIED\\\":2}\","
			      "\"count_interval\":2,\"count_total\":2,"
			      "\"first_ts\":1800000000000000,\"last_ts\":1800000000000000,"
			      "\"last_reason\":\"no\"}"));
	/* nothing new: no row; one more refusal: its source alone, interval 1, total 3 */
	rn_buf_reset(&out);
	assert_int_equal(rn_refusals_rows(r, T0 + 2000, SIZE_MAX, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
		rn_refusals_note(r, "1.1.1.1:3", "p", "NOT_FOUND", "gone", NULL, T0 + 3000), 0);
	assert_int_equal(rn_refusals_rows(r, T0 + 4000, SIZE_MAX, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_true(has(&out, "\"count_interval\":1,\"count_total\":3,"));
	assert_false(has(&out, "2.2.2.2"));
	rn_buf_free(&out);
	rn_refusals_destroy(r);
}

/* Every allocation of a run fails in turn: RN_ENOMEM or success, the totals honest (every
 * note counted once, attributed or not), nothing leaked (ASan), the model usable. */
static void test_alloc_failures(void **state)
{
	(void)state;
	for (long k = 1;; k++) {
		struct rn_refusals *r = NULL;
		struct rn_refusals_totals t;
		struct rn_buf b = {0};
		size_t n;
		int notes = 0, fails = 0;
		rn_mem_fail_after(k);
		if (rn_refusals_create(&r, 2)) {
			assert_true(rn_mem_fail_disarm());
			continue;
		}
		const char *peers[] = {"1.1.1.1:1", "2.2.2.2:1", "1.1.1.1:2", "3.3.3.3:1"};
		for (int i = 0; i < 4; i++, notes++)
			fails += rn_refusals_note(r, peers[i], "p", "X", "r", NULL, T0) != 0;
		struct rn_fleet_query q;
		const char *why;
		assert_int_equal(rn_fleet_query_parse(NULL, RN_FLEET_QUERY_REFUSALS, &q, &why), 0);
		int rr = rn_refusals_render(r, &q, T0, &b);
		int rs = rn_refusals_summary(r, T0, &b);
		int rw = rn_refusals_rows(r, T0, SIZE_MAX, &b, &n);
		int reached = rn_mem_fail_disarm();
		rn_refusals_totals(r, T0, &t);
		assert_int_equal(t.refused, notes);
		assert_int_equal(t.unattributed, fails);
		assert_true(rr == 0 || rr == RN_ENOMEM);
		assert_true(rs == 0 || rs == RN_ENOMEM);
		assert_true(rw == 0 || rw == RN_ENOMEM);
		/* usable afterwards */
		assert_int_equal(rn_refusals_note(r, "9.9.9.9:1", "", "X", "r", NULL, T0), 0);
		rn_buf_free(&b);
		rn_refusals_destroy(r);
		if (!reached)
			break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_and_kinds),
		cmocka_unit_test(test_kinds_bound),
		cmocka_unit_test(test_bound_and_eviction),
		cmocka_unit_test(test_text_bounds),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_rows_cap),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
