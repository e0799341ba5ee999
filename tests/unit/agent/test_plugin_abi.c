/*
 * Unit tests for the source plugin ABI in agent/plugin.h: the version numbers (major and
 * minor, which ones this agent loads), RN_HOST_HAS on host structs of every length a plugin
 * can meet (an ABI 1.1 agent, one whose struct ends before set_state, a future longer one)
 * and rn_source_host_copy, which must never read past the agent's struct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugin.h"

static void test_versions(void **state)
{
	(void)state;
	assert_int_equal(RN_SOURCE_ABI_MAJOR(RN_SOURCE_ABI_1), 1);
	assert_int_equal(RN_SOURCE_ABI_MINOR(RN_SOURCE_ABI_1), 0);
	assert_int_equal(RN_SOURCE_ABI_MAJOR(RN_SOURCE_ABI_1_1), 1);
	assert_int_equal(RN_SOURCE_ABI_MINOR(RN_SOURCE_ABI_1_1), 1);
	/* an agent of ABI 1.0 compared abi == 1: it must refuse a 1.1 plugin */
	assert_int_not_equal(RN_SOURCE_ABI_1_1, RN_SOURCE_ABI_1);
	assert_true(RN_SOURCE_ABI_LOADABLE(RN_SOURCE_ABI_1));
	assert_true(RN_SOURCE_ABI_LOADABLE(RN_SOURCE_ABI_1_1));
	assert_true(RN_SOURCE_ABI_LOADABLE(RN_SOURCE_ABI(1, 7))); /* a later minor: RN_HOST_HAS */
	assert_false(RN_SOURCE_ABI_LOADABLE(RN_SOURCE_ABI(2, 0)));
	assert_false(RN_SOURCE_ABI_LOADABLE(99));
	assert_false(RN_SOURCE_ABI_LOADABLE(0));
	/* members of ABI 1.0 keep their places: size and set_state come after dead_letter */
	assert_true(offsetof(struct rn_source_host, size) >
		    offsetof(struct rn_source_host, dead_letter));
	assert_true(offsetof(struct rn_source_host, set_state) >
		    offsetof(struct rn_source_host, size));
}

static void poisoned(void *ctx, int st, const char *error)
{
	(void)ctx;
	(void)st;
	(void)error;
	fail_msg("set_state called through a host that does not have it");
}

static void test_host_has(void **state)
{
	(void)state;
	struct rn_source_host h = {.size = sizeof(struct rn_source_host), .set_state = poisoned};
	assert_true(RN_HOST_HAS(&h, set_state));
	assert_true(RN_HOST_HAS(&h, dead_letter));
	/* an agent whose struct ends just before set_state */
	h.size = offsetof(struct rn_source_host, set_state);
	assert_false(RN_HOST_HAS(&h, set_state));
	assert_true(RN_HOST_HAS(&h, size));
	/* one byte short of the whole pointer */
	h.size = offsetof(struct rn_source_host, set_state) + sizeof(h.set_state) - 1;
	assert_false(RN_HOST_HAS(&h, set_state));
	/* a longer struct (a later minor) has it too */
	h.size = sizeof(struct rn_source_host) + 64;
	assert_true(RN_HOST_HAS(&h, set_state));
}

static void test_host_copy(void **state)
{
	(void)state;
	/* the agent's struct ends before set_state, and the bytes after it are not its own:
	 * the copy must leave set_state NULL and say so in size */
	size_t short_size = offsetof(struct rn_source_host, set_state);
	unsigned char *mem = malloc(sizeof(struct rn_source_host));
	assert_non_null(mem);
	memset(mem, 0xa5, sizeof(struct rn_source_host));
	struct rn_source_host src = {.ctx = mem, .size = short_size};
	memcpy(mem, &src, short_size);
	struct rn_source_host dst;
	memset(&dst, 0x5a, sizeof(dst));
	rn_source_host_copy(&dst, (const struct rn_source_host *)mem);
	assert_ptr_equal(dst.ctx, mem);
	assert_int_equal(dst.size, short_size);
	assert_null(dst.set_state);
	assert_false(RN_HOST_HAS(&dst, set_state));

	/* a whole struct: everything copied */
	struct rn_source_host full = {.ctx = mem, .size = sizeof(full), .set_state = poisoned};
	rn_source_host_copy(&dst, &full);
	assert_int_equal(dst.size, sizeof(full));
	assert_ptr_equal(dst.set_state, poisoned);
	assert_true(RN_HOST_HAS(&dst, set_state));

	/* a longer one (a later minor): only what this header knows, size capped */
	unsigned char *big = calloc(1, sizeof(full) + 64);
	assert_non_null(big);
	full.size = sizeof(full) + 64;
	memcpy(big, &full, sizeof(full));
	rn_source_host_copy(&dst, (const struct rn_source_host *)big);
	assert_int_equal(dst.size, sizeof(full));
	assert_ptr_equal(dst.set_state, poisoned);
	free(big);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_host_has),
		cmocka_unit_test(test_host_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
