/*
 * Unit tests for the client-credentials exchange's pure parts (uplink/token.c): answers a
 * token endpoint gives (good, RFC 6749 5.2 errors, broken or hostile ones), the Basic header
 * and the refresh schedule.
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
#include "token.h"

static struct rn_token_resp r;

static int parse(int status, const char *body)
{
	return rn_token_parse(status, body, strlen(body), &r);
}

static void test_good(void **state)
{
	(void)state;
	assert_int_equal(parse(200, "{\"access_token\":\"eyJ.a-b_c.d\",\"token_type\":\"Bearer\","
				    "\"expires_in\":3600,\"scope\":\"all-apis\"}"),
			 0);
	assert_string_equal(r.access_token, "eyJ.a-b_c.d");
	assert_int_equal(r.expires_in, 3600);
	assert_string_equal(r.why, "");
	/* any case of bearer, members in any order, unknown members ignored */
	assert_int_equal(parse(200, " {\"expires_in\":5,\"x\":[1,{}],\"token_type\":\"bearer\","
				    "\"access_token\":\"t\"} "),
			 0);
	assert_int_equal(r.expires_in, 5);
	/* a lifetime past a day is believed for a day */
	assert_int_equal(parse(200, "{\"access_token\":\"t\",\"token_type\":\"Bearer\","
				    "\"expires_in\":99999999999}"),
			 0);
	assert_int_equal(r.expires_in, RN_TOKEN_LIFETIME_MAX);
}

static void test_errors(void **state)
{
	(void)state;
	assert_int_equal(parse(401, "{\"error\":\"invalid_client\",\"error_description\":"
				    "\"bad secret\\n\"}"),
			 RN_EINVAL);
	assert_string_equal(r.error, "invalid_client");
	assert_string_equal(r.why, "HTTP status 401: invalid_client: bad secret?");
	assert_string_equal(r.access_token, "");
	assert_int_equal(parse(400, "{\"error\":\"unsupported_grant_type\"}"), RN_EINVAL);
	assert_string_equal(r.why, "HTTP status 400: unsupported_grant_type");
	assert_int_equal(parse(502, "<html>bad gateway</html>"), RN_EINVAL);
	assert_string_equal(r.why, "HTTP status 502 (not an OAuth error answer)");
	/* a token in an error answer is not taken */
	assert_int_equal(parse(403, "{\"access_token\":\"t\",\"token_type\":\"Bearer\","
				    "\"expires_in\":60}"),
			 RN_EINVAL);
	assert_string_equal(r.access_token, "");
	assert_int_equal(parse(200, "{\"error\":\"invalid_scope\"}"), RN_EINVAL);
	assert_string_equal(r.why, "HTTP 200 with error invalid_scope");
}

static void test_bad_answers(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"[]",
		"{",
		"null",
		"{\"access_token\":\"t\",\"token_type\":\"Bearer\"}",
		"{\"access_token\":\"t\",\"token_type\":\"Bearer\",\"expires_in\":0}",
		"{\"access_token\":\"t\",\"token_type\":\"Bearer\",\"expires_in\":-5}",
		"{\"access_token\":\"t\",\"token_type\":\"Bearer\",\"expires_in\":1.5}",
		"{\"access_token\":\"t\",\"token_type\":\"Bearer\",\"expires_in\":\"60\"}",
		"{\"access_token\":\"t\",\"token_type\":\"mac\",\"expires_in\":60}",
		"{\"access_token\":\"t\",\"token_type\":\"Bearerx\",\"expires_in\":60}",
		"{\"access_token\":\"t\",\"expires_in\":60}",
		"{\"access_token\":\"\",\"token_type\":\"Bearer\",\"expires_in\":60}",
		"{\"access_token\":5,\"token_type\":\"Bearer\",\"expires_in\":60}",
		/* characters a header cannot carry: CR/LF injection, space, NUL, non-ASCII */
		"{\"access_token\":\"a\\r\\nx:1\",\"token_type\":\"Bearer\",\"expires_in\":6}",
		"{\"access_token\":\"a b\",\"token_type\":\"Bearer\",\"expires_in\":60}",
		"{\"access_token\":\"a\\u0000b\",\"token_type\":\"Bearer\",\"expires_in\":60}",
		"{\"access_token\":\"\xc3\xa9\",\"token_type\":\"Bearer\",\"expires_in\":60}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(200, bad[i]), RN_EINVAL);
		assert_string_equal(r.access_token, "");
		assert_true(r.why[0] != 0);
	}
	/* too long a token, too long an answer */
	size_t n = RN_TOKEN_MAX + 1;
	char *big = malloc(n + 100);
	assert_non_null(big);
	int k = sprintf(big, "{\"token_type\":\"Bearer\",\"expires_in\":60,\"access_token\":\"");
	memset(big + k, 'a', n);
	strcpy(big + k + n, "\"}");
	assert_int_equal(parse(200, big), RN_EINVAL);
	strcpy(big + k + n - 1, "\"}"); /* exactly RN_TOKEN_MAX */
	assert_int_equal(parse(200, big), 0);
	assert_int_equal(strlen(r.access_token), RN_TOKEN_MAX);
	free(big);
	assert_int_equal(rn_token_parse(200, NULL, 0, &r), RN_EINVAL);
	char *huge = calloc(1, RN_TOKEN_BODY_MAX + 2);
	assert_non_null(huge);
	memset(huge, ' ', RN_TOKEN_BODY_MAX + 1);
	memcpy(huge, "{}", 2);
	assert_int_equal(parse(200, huge), RN_EINVAL);
	assert_string_equal(r.why, "the answer is not a JSON object (too long)");
	free(huge);
}

static void test_basic(void **state)
{
	(void)state;
	char h[128];
	/* RFC 7617's example: Aladdin / open sesame */
	assert_int_equal(rn_token_basic_header("Aladdin", "open sesame", h, sizeof(h)), 0);
	assert_string_equal(h, "authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	assert_int_equal(rn_token_basic_header("a", "b", h, sizeof(h)), 0);
	assert_string_equal(h, "authorization: Basic YTpi");
	assert_int_equal(rn_token_basic_header("ab", "c", h, sizeof(h)), 0);
	assert_string_equal(h, "authorization: Basic YWI6Yw==");
	assert_int_equal(rn_token_basic_header("a", "bc", h, sizeof(h)), 0);
	assert_string_equal(h, "authorization: Basic YTpiYw==");
	/* exactly fits: 21 + 4 + NUL */
	assert_int_equal(rn_token_basic_header("a", "b", h, 26), 0);
	assert_int_equal(rn_token_basic_header("a", "b", h, 25), RN_ERANGE);
}

static void test_refresh(void **state)
{
	(void)state;
	assert_int_equal(rn_token_refresh_after_ms(3600), 2880 * 1000); /* 80 % */
	assert_int_equal(rn_token_refresh_after_ms(120), 60 * 1000);    /* 60 s before */
	assert_int_equal(rn_token_refresh_after_ms(300), 240 * 1000);   /* both the same */
	assert_int_equal(rn_token_refresh_after_ms(100), 50 * 1000);    /* half-life */
	assert_int_equal(rn_token_refresh_after_ms(3), 1500);
	assert_int_equal(rn_token_refresh_after_ms(1), 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),        cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bad_answers), cmocka_unit_test(test_basic),
		cmocka_unit_test(test_refresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
