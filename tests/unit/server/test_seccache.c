/*
 * Unit tests for the verified-secret cache (server/seccache.h): a put secret hits, a wrong
 * one never does, another client id or another secret_hash misses, a client's new secret
 * replaces its old one, another process key matches nothing, clear forgets all, the size
 * stays bounded (LRU in a set), a cache of size 0 keeps nothing, allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "seccache.h"

static const uint8_t K[RN_SECCACHE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const char *H1 = "pbkdf2-sha256$1000$aaaa$bbbb";
static const char *H2 = "pbkdf2-sha256$1000$cccc$dddd";

static int hit(struct rn_seccache *c, const char *id, const char *h, const char *sec)
{
	return rn_seccache_hit(c, id, h, sec, strlen(sec));
}

static int put(struct rn_seccache *c, const char *id, const char *h, const char *sec)
{
	return rn_seccache_put(c, id, h, sec, strlen(sec));
}

static void test_hit_miss(void **state)
{
	struct rn_seccache *c;
	(void)state;
	assert_int_equal(rn_seccache_create(&c, 16, K), 0);
	assert_false(hit(c, "dev-1", H1, "s3cret"));
	assert_int_equal(put(c, "dev-1", H1, "s3cret"), 0);
	assert_int_equal(rn_seccache_count(c), 1);
	assert_true(hit(c, "dev-1", H1, "s3cret"));
	assert_false(hit(c, "dev-1", H1, "s3cre"));   /* a prefix */
	assert_false(hit(c, "dev-1", H1, "s3cretX")); /* longer */
	assert_false(hit(c, "dev-1", H1, "wrong"));
	assert_false(hit(c, "dev-2", H1, "s3cret")); /* another client */
	assert_false(hit(c, "dev-1", H2, "s3cret")); /* the principal's hash changed */
	/* a secret with a NUL inside is compared over its length */
	assert_int_equal(rn_seccache_put(c, "dev-3", H1, "a\0b", 3), 0);
	assert_true(rn_seccache_hit(c, "dev-3", H1, "a\0b", 3));
	assert_false(rn_seccache_hit(c, "dev-3", H1, "a\0c", 3));
	assert_false(rn_seccache_hit(c, "dev-3", H1, "a", 1));
	/* a new secret replaces the client's entry */
	assert_int_equal(put(c, "dev-1", H1, "n3w"), 0);
	assert_int_equal(rn_seccache_count(c), 2);
	assert_true(hit(c, "dev-1", H1, "n3w"));
	assert_false(hit(c, "dev-1", H1, "s3cret"));
	/* under another key (another process), nothing matches */
	struct rn_seccache *o;
	uint8_t k2[RN_SECCACHE_KEY_LEN];
	memcpy(k2, K, sizeof(k2));
	k2[0] ^= 1;
	assert_int_equal(rn_seccache_create(&o, 16, k2), 0);
	assert_false(hit(o, "dev-1", H1, "n3w"));
	rn_seccache_destroy(o);
	rn_seccache_clear(c);
	assert_int_equal(rn_seccache_count(c), 0);
	assert_false(hit(c, "dev-1", H1, "n3w"));
	rn_seccache_destroy(c);
}

/* Never more than cap entries; within a set the least recently used one goes. */
static void test_bounded(void **state)
{
	struct rn_seccache *c;
	char id[32];
	size_t hits = 0;
	(void)state;
	assert_int_equal(rn_seccache_create(&c, 8, K), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		assert_int_equal(put(c, id, H1, "s"), 0);
		assert_true(rn_seccache_count(c) <= 8);
	}
	assert_int_equal(rn_seccache_count(c), 8);
	/* the most recent ones are kept (LRU within a set): the last put always hits */
	assert_true(hit(c, "dev-999", H1, "s"));
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		hits += (size_t)hit(c, id, H1, "s");
	}
	assert_int_equal(hits, 8);
	/* a used entry survives newcomers in its set: keep dev-999 used while filling */
	for (int i = 1000; i < 1100; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		assert_true(hit(c, "dev-999", H1, "s"));
		assert_int_equal(put(c, id, H1, "s"), 0);
	}
	assert_true(hit(c, "dev-999", H1, "s"));
	rn_seccache_destroy(c);
}

static void test_off_and_limits(void **state)
{
	struct rn_seccache *c;
	(void)state;
	assert_int_equal(rn_seccache_create(&c, RN_SECCACHE_MAX + 1, K), RN_EINVAL);
	assert_null(c);
	assert_int_equal(rn_seccache_create(&c, 0, K), 0);
	assert_int_equal(put(c, "dev-1", H1, "s3cret"), 0);
	assert_false(hit(c, "dev-1", H1, "s3cret"));
	assert_int_equal(rn_seccache_count(c), 0);
	rn_seccache_clear(c);
	rn_seccache_destroy(c);
	rn_seccache_destroy(NULL);
	/* allocation failures: create fails cleanly, put caches nothing, hit misses */
	rn_mem_fail_after(1);
	assert_int_equal(rn_seccache_create(&c, 4, K), RN_ENOMEM);
	rn_mem_fail_after(2);
	assert_int_equal(rn_seccache_create(&c, 4, K), RN_ENOMEM);
	rn_mem_fail_disarm();
	assert_int_equal(rn_seccache_create(&c, 4, K), 0);
	rn_mem_fail_after(1);
	assert_int_equal(put(c, "dev-1", H1, "s3cret"), RN_ENOMEM);
	rn_mem_fail_disarm();
	assert_int_equal(rn_seccache_count(c), 0);
	assert_int_equal(put(c, "dev-1", H1, "s3cret"), 0);
	rn_mem_fail_after(1);
	assert_false(hit(c, "dev-1", H1, "s3cret"));
	rn_mem_fail_disarm();
	assert_true(hit(c, "dev-1", H1, "s3cret"));
	rn_seccache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_off_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
