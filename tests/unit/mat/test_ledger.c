/*
 * Unit tests for the WAL's bytes per principal (server/mat/ledger.c): charges per table and
 * principal, settling a table releases exactly its debts, a principal holding nothing is
 * forgotten (and counted out of `active`), many principals (the hash grows), and every
 * allocation failure of a charge leaves the ledger as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ledger.h"
#include "rn_err.h"
#include "rn_mem.h"

static void test_charge_and_settle(void **state)
{
	struct rn_ledger *l;
	struct rn_ledger_debts t1 = {0}, t2 = {0};
	size_t active = 99;
	long base = rn_mem_live();
	(void)state;

	assert_int_equal(rn_ledger_create(&l), 0);
	assert_int_equal(rn_ledger_held(l, "alice", &active), 0);
	assert_int_equal(active, 0);
	/* nobody (NULL, "") and empty batches are not counted */
	assert_int_equal(rn_ledger_charge(l, &t1, NULL, 10), 0);
	assert_int_equal(rn_ledger_charge(l, &t1, "", 10), 0);
	assert_int_equal(rn_ledger_charge(l, &t1, "alice", 0), 0);
	assert_int_equal(rn_ledger_held(l, "", &active), 0);
	assert_int_equal(active, 0);
	assert_int_equal(t1.n, 0);
	/* alice writes two tables, bob one of them */
	assert_int_equal(rn_ledger_charge(l, &t1, "alice", 100), 0);
	assert_int_equal(rn_ledger_charge(l, &t1, "alice", 50), 0); /* same debt */
	assert_int_equal(rn_ledger_charge(l, &t2, "alice", 30), 0);
	assert_int_equal(rn_ledger_charge(l, &t1, "bob", 7), 0);
	assert_int_equal(rn_ledger_charge(l, &t2, "alice", 1), 0); /* the hint is t2 now */
	assert_int_equal(rn_ledger_charge(l, &t1, "alice", 1), 0); /* found by a scan */
	assert_int_equal(t1.n, 2);
	assert_int_equal(t2.n, 1);
	assert_int_equal(rn_ledger_held(l, "alice", &active), 182);
	assert_int_equal(active, 2);
	assert_int_equal(rn_ledger_held(l, "bob", NULL), 7);
	assert_int_equal(rn_ledger_held(l, "carol", NULL), 0);
	/* t1 commits: alice keeps t2's bytes, bob is forgotten */
	rn_ledger_settle(l, &t1);
	assert_int_equal(t1.n, 0);
	assert_int_equal(rn_ledger_held(l, "alice", &active), 31);
	assert_int_equal(active, 1);
	assert_int_equal(rn_ledger_held(l, "bob", NULL), 0);
	/* settling again, or an empty table, changes nothing */
	rn_ledger_settle(l, &t1);
	assert_int_equal(rn_ledger_held(l, "alice", NULL), 31);
	/* bob comes back on t1 (its array is reused) */
	assert_int_equal(rn_ledger_charge(l, &t1, "bob", 5), 0);
	assert_int_equal(rn_ledger_held(l, "bob", &active), 5);
	assert_int_equal(active, 2);
	rn_ledger_debts_free(l, &t2);
	assert_null(t2.v);
	assert_int_equal(rn_ledger_held(l, "alice", &active), 0);
	assert_int_equal(active, 1);
	rn_ledger_debts_free(l, &t1);
	assert_int_equal(rn_ledger_held(l, "bob", &active), 0);
	assert_int_equal(active, 0);
	rn_ledger_destroy(l);
	rn_ledger_destroy(NULL);
	assert_int_equal(rn_mem_live(), base);
}

/* A fleet: 5,000 principals over 3 tables; the hash grows, every total stays right. */
static void test_many_principals(void **state)
{
	struct rn_ledger *l;
	struct rn_ledger_debts t[3] = {{0}};
	char name[32];
	size_t active;
	long base = rn_mem_live();
	(void)state;

	assert_int_equal(rn_ledger_create(&l), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "device-%d", i);
		for (int k = 0; k <= i % 3; k++)
			assert_int_equal(rn_ledger_charge(l, &t[k], name, (size_t)i + 1), 0);
	}
	for (int i = 0; i < 5000; i += 7) {
		snprintf(name, sizeof(name), "device-%d", i);
		assert_int_equal(rn_ledger_held(l, name, &active), (size_t)(i + 1) * (i % 3 + 1));
		assert_int_equal(active, 5000);
	}
	rn_ledger_settle(l, &t[0]); /* every principal wrote t[0]: a third keep t[1] bytes */
	snprintf(name, sizeof(name), "device-%d", 4);
	assert_int_equal(rn_ledger_held(l, name, &active), 5);
	assert_int_equal(active, 5000 - 1667);
	rn_ledger_settle(l, &t[2]);
	rn_ledger_settle(l, &t[1]);
	assert_int_equal(rn_ledger_held(l, name, &active), 0);
	assert_int_equal(active, 0);
	for (int k = 0; k < 3; k++)
		rn_ledger_debts_free(l, &t[k]);
	rn_ledger_destroy(l);
	assert_int_equal(rn_mem_live(), base);
}

/* Every allocation of a charge fails in turn: RN_ENOMEM with nothing charged, and the charge
 * succeeds once retried. */
static void test_alloc_failures(void **state)
{
	struct rn_ledger *l;
	struct rn_ledger_debts t = {0};
	char name[32];
	size_t active;
	long base = rn_mem_live();
	(void)state;

	for (long n = 1;; n++) {
		rn_mem_fail_after(n);
		int rc = rn_ledger_create(&l);
		if (!rn_mem_fail_disarm()) {
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, RN_ENOMEM);
		assert_int_equal(rn_mem_live(), base);
	}
	/* enough principals that the array and the hash both grow under the sweep */
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		for (long n = 1;; n++) {
			rn_mem_fail_after(n);
			int rc = rn_ledger_charge(l, &t, name, 10);
			int hit = rn_mem_fail_disarm();
			if (rc) {
				assert_int_equal(rc, RN_ENOMEM);
				assert_true(hit);
				assert_int_equal(rn_ledger_held(l, name, &active), 0);
				assert_int_equal(active, (size_t)i);
				continue;
			}
			break;
		}
		assert_int_equal(rn_ledger_held(l, name, &active), 10);
		assert_int_equal(active, (size_t)i + 1);
		assert_int_equal(t.n, (size_t)i + 1);
	}
	rn_ledger_debts_free(l, &t);
	rn_ledger_destroy(l);
	assert_int_equal(rn_mem_live(), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charge_and_settle),
		cmocka_unit_test(test_many_principals),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
