/*
 * Unit tests for the bearer-token check (server/net/auth.h): the constant-time comparison
 * (equal, different content, different lengths, a prefix), the case-insensitive scheme, an
 * empty or missing token, several configured tokens, and a token of RN_CONF_HDR_MAX bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "rn_conf.h"

static void test_equal(void **state)
{
	(void)state;
	assert_true(rn_auth_equal("abc", 3, "abc", 3));
	assert_false(rn_auth_equal("abc", 3, "abd", 3));
	assert_false(rn_auth_equal("xbc", 3, "abc", 3));
	assert_false(rn_auth_equal("ab", 2, "abc", 3));  /* a prefix */
	assert_false(rn_auth_equal("abc", 3, "ab", 2));  /* longer */
	assert_false(rn_auth_equal("ab\0", 3, "ab", 2)); /* a NUL is not an end */
	assert_true(rn_auth_equal("", 0, "", 0));
}

static void test_check(void **state)
{
	char *toks[] = {"old-token", "new-token", NULL};
	char *empty[] = {"", NULL};
	(void)state;
	assert_true(rn_auth_check(NULL, 0, NULL)); /* no tokens: no authentication */
	assert_true(rn_auth_check(toks, 2, "Bearer old-token"));
	assert_true(rn_auth_check(toks, 2, "Bearer new-token"));
	assert_true(rn_auth_check(toks, 2, "bearer new-token"));
	assert_true(rn_auth_check(toks, 2, "BEARER new-token"));
	assert_true(rn_auth_check(toks, 2, "Bearer   new-token"));
	assert_false(rn_auth_check(toks, 2, "Bearer new-toke"));
	assert_false(rn_auth_check(toks, 2, "Bearer new-tokenX"));
	assert_false(rn_auth_check(toks, 2, "Bearernew-token"));
	assert_false(rn_auth_check(toks, 2, "Basic new-token"));
	assert_false(rn_auth_check(toks, 2, "new-token"));
	assert_false(rn_auth_check(toks, 2, NULL));
	assert_false(rn_auth_check(toks, 2, ""));
	assert_false(rn_auth_check(toks, 2, "Bearer "));
	assert_false(rn_auth_check(toks, 2, "Bearer"));
	assert_false(rn_auth_check(empty, 1, "Bearer "));
}

static void test_long_token(void **state)
{
	static char tok[RN_CONF_HDR_MAX + 1], hdr[RN_CONF_HDR_MAX + 8];
	char *toks[] = {tok, NULL};
	(void)state;
	for (size_t i = 0; i < RN_CONF_HDR_MAX; i++)
		tok[i] = (char)('a' + i % 26);
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	assert_true(rn_auth_check(toks, 1, hdr));
	hdr[sizeof(hdr) - 2] ^= 1; /* the last byte differs */
	assert_false(rn_auth_check(toks, 1, hdr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_long_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
