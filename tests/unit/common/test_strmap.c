/*
 * Unit tests for common/rn_strmap and common/rn_list: the map against a plain array under a
 * random mix of puts, gets and deletes; keys that differ only in length or after a NUL;
 * churn (a stream opened and forgotten forever) that must not grow the table; a failed
 * allocation that leaves the map as it was; and the intrusive list's unlink-from-anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_list.h"
#include "rn_mem.h"
#include "rn_strmap.h"

static void test_basic(void **state)
{
	struct rn_strmap m = {0};
	int a = 1, b = 2, c = 3;
	(void)state;
	assert_null(rn_strmap_get(&m, "x", 1)); /* a zeroed map is empty */
	assert_null(rn_strmap_del(&m, "x", 1));
	assert_int_equal(rn_strmap_put(&m, "abc", 3, &a), 0);
	assert_int_equal(rn_strmap_put(&m, "ab", 2, &b), 0);
	assert_int_equal(rn_strmap_put(&m, "ab\0c", 4, &c), 0); /* bytes, not C strings */
	assert_int_equal(m.n, 3);
	assert_ptr_equal(rn_strmap_get(&m, "abc", 3), &a);
	assert_ptr_equal(rn_strmap_get(&m, "abcd", 2), &b);
	assert_ptr_equal(rn_strmap_get(&m, "ab\0c", 4), &c);
	assert_null(rn_strmap_get(&m, "a", 1));
	assert_null(rn_strmap_get(&m, "", 0));
	/* replacing keeps one entry */
	assert_int_equal(rn_strmap_put(&m, "abc", 3, &c), 0);
	assert_int_equal(m.n, 3);
	assert_ptr_equal(rn_strmap_get(&m, "abc", 3), &c);
	assert_int_equal(rn_strmap_put(&m, "abc", 3, NULL), RN_EINVAL);
	assert_ptr_equal(rn_strmap_del(&m, "abc", 3), &c);
	assert_null(rn_strmap_get(&m, "abc", 3));
	assert_null(rn_strmap_del(&m, "abc", 3));
	assert_int_equal(m.n, 2);
	rn_strmap_free(&m);
	assert_int_equal(m.n, 0);
	assert_null(rn_strmap_get(&m, "ab", 2));
	assert_int_equal(rn_strmap_put(&m, "ab", 2, &b), 0); /* usable again */
	rn_strmap_free(&m);
}

#define NKEYS 5000

/* Random operations, checked against an array of what each key maps to. */
static void test_against_array(void **state)
{
	static char keys[NKEYS][40];
	static void *want[NKEYS];
	static int vals[NKEYS];
	struct rn_strmap m = {0};
	size_t n = 0;
	(void)state;
	srand(7);
	for (int i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "%08x-%04d-stream", (unsigned)rand(), i);
	memset(want, 0, sizeof(want));
	for (int step = 0; step < 200000; step++) {
		int i = rand() % NKEYS, op = rand() % 3;
		size_t len = strlen(keys[i]);
		if (op == 0) {
			n += !want[i];
			want[i] = &vals[i];
			assert_int_equal(rn_strmap_put(&m, keys[i], len, &vals[i]), 0);
		} else if (op == 1) {
			n -= !!want[i];
			assert_ptr_equal(rn_strmap_del(&m, keys[i], len), want[i]);
			want[i] = NULL;
		} else {
			assert_ptr_equal(rn_strmap_get(&m, keys[i], len), want[i]);
		}
		assert_int_equal(m.n, n);
	}
	for (int i = 0; i < NKEYS; i++)
		assert_ptr_equal(rn_strmap_get(&m, keys[i], strlen(keys[i])), want[i]);
	/* at most half full, tombstones included */
	assert_true(2 * (m.n + m.tombs) <= m.cap);
	rn_strmap_free(&m);
}

/* A million short-lived keys, at most 10 at a time: the table stays small. */
static void test_churn_stays_small(void **state)
{
	struct rn_strmap m = {0};
	static char ring[10][24];
	int v = 0;
	(void)state;
	for (int i = 0; i < 1000000; i++) {
		char *k = ring[i % 10];
		if (i >= 10)
			assert_ptr_equal(rn_strmap_del(&m, k, strlen(k)), &v);
		snprintf(k, sizeof(ring[0]), "s%d", i);
		assert_int_equal(rn_strmap_put(&m, k, strlen(k), &v), 0);
	}
	assert_int_equal(m.n, 10);
	assert_true(m.cap <= 64);
	rn_strmap_free(&m);
}

/* A growth that cannot allocate fails cleanly: every entry is still there. */
static void test_alloc_failure(void **state)
{
	struct rn_strmap m = {0};
	static char keys[200][16];
	int v = 0, failed = 0;
	(void)state;
	for (int i = 0; i < 200; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		rn_mem_fail_after(1);
		int rc = rn_strmap_put(&m, keys[i], strlen(keys[i]), &v);
		int reached = rn_mem_fail_disarm();
		if (rc) {
			assert_int_equal(rc, RN_ENOMEM);
			assert_true(reached);
			failed++;
			assert_null(rn_strmap_get(&m, keys[i], strlen(keys[i])));
			assert_int_equal(rn_strmap_put(&m, keys[i], strlen(keys[i]), &v), 0);
		}
		for (int k = 0; k <= i; k++)
			assert_ptr_equal(rn_strmap_get(&m, keys[k], strlen(keys[k])), &v);
	}
	assert_true(failed >= 4); /* every growth: 16, 32, 64, 128... */
	assert_int_equal(m.n, 200);
	rn_strmap_free(&m);
}

struct item {
	int id;
	struct rn_list node;
};

static void test_list(void **state)
{
	struct rn_list head;
	struct item it[4] = {{0, {0}}, {1, {0}}, {2, {0}}, {3, {0}}};
	int seen = 0;
	(void)state;
	rn_list_init(&head);
	assert_true(rn_list_empty(&head));
	assert_null(rn_list_first(&head));
	for (int i = 0; i < 4; i++) {
		assert_false(rn_list_linked(&it[i].node)); /* zeroed: on no list */
		rn_list_push(&head, &it[i].node);
		assert_true(rn_list_linked(&it[i].node));
	}
	rn_list_unlink(&it[2].node); /* from the middle, by the object alone */
	rn_list_unlink(&it[2].node); /* twice: no-op */
	assert_false(rn_list_linked(&it[2].node));
	struct rn_list *n;
	while ((n = rn_list_first(&head))) {
		struct item *x = RN_LIST_ENTRY(n, struct item, node);
		seen = seen * 10 + x->id;
		rn_list_unlink(n);
	}
	assert_int_equal(seen, 13); /* 0, 1, 3 in order */
	assert_true(rn_list_empty(&head));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_against_array),
		cmocka_unit_test(test_churn_stays_small),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
