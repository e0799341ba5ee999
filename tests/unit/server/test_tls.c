/*
 * Unit tests for the pure helpers of server/net/tls.h: ALPN selection from a client's list in wire
 * format (found first, later, absent, a prefix of another name, malformed lists that end
 * inside a name or hold an empty one), the tls_client_auth words, the /metrics reason names,
 * and the sorting of OpenSSL handshake errors into reasons (cleartext, no h2, bad certificate,
 * other, none).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls.h"

/* OpenSSL's packed error codes, spelled out so the test needs no OpenSSL header: library in
 * bits 23..30, reason in bits 0..22 (ERR_PACK in openssl/err.h). */
#define PACK(lib, reason) (((unsigned long)(lib) << 23) | (unsigned long)(reason))
#define LIB_SSL 20
#define R_WRONG_VERSION_NUMBER 267
#define R_HTTP_REQUEST 156
#define R_NO_APPLICATION_PROTOCOL 235
#define R_PEER_DID_NOT_RETURN_A_CERTIFICATE 199
#define R_CERTIFICATE_VERIFY_FAILED 134
#define R_TLSV1_ALERT_UNKNOWN_CA 1048
#define R_UNSUPPORTED_PROTOCOL 258

static void test_alpn(void **state)
{
	const unsigned char *sel = NULL;
	unsigned char len = 0;
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	static const unsigned char h1[] = "\x08http/1.1";
	static const unsigned char h2c[] = "\x03h2c\x02h2";
	(void)state;
	assert_int_equal(rn_tls_alpn_select("h2", both, sizeof(both) - 1, &sel, &len), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(sel, "h2", 2);
	assert_ptr_equal(sel, both + 1);
	assert_int_equal(rn_tls_alpn_select("http/1.1", both, sizeof(both) - 1, &sel, &len), 1);
	assert_int_equal(len, 8);
	assert_ptr_equal(sel, both + 4);
	assert_int_equal(rn_tls_alpn_select("h2", h1, sizeof(h1) - 1, &sel, &len), 0);
	/* "h2c" is not "h2"; the h2 after it is found */
	assert_int_equal(rn_tls_alpn_select("h2", h2c, sizeof(h2c) - 1, &sel, &len), 1);
	assert_ptr_equal(sel, h2c + 5);
	assert_int_equal(rn_tls_alpn_select("h2", (const unsigned char *)"", 0, &sel, &len), 0);
}

static void test_alpn_malformed(void **state)
{
	const unsigned char *sel = NULL;
	unsigned char len = 0;
	static const unsigned char past_end[] = "\x09http/1.1";  /* a name past the end */
	static const unsigned char empty_name[] = "\x00\x02h2";  /* an empty name first */
	static const unsigned char cut[] = "\x08http/1.1\x05h2"; /* h2 inside a bad name */
	(void)state;
	assert_int_equal(rn_tls_alpn_select("http/1.1", past_end, sizeof(past_end) - 1, &sel, &len),
			 0);
	assert_int_equal(rn_tls_alpn_select("h2", empty_name, sizeof(empty_name) - 1, &sel, &len),
			 0);
	assert_int_equal(rn_tls_alpn_select("h2", cut, sizeof(cut) - 1, &sel, &len), 0);
}

static void test_client_auth(void **state)
{
	(void)state;
	assert_int_equal(rn_tls_client_auth_parse("none"), RN_TLS_CLIENT_NONE);
	assert_int_equal(rn_tls_client_auth_parse("optional"), RN_TLS_CLIENT_OPTIONAL);
	assert_int_equal(rn_tls_client_auth_parse("require"), RN_TLS_CLIENT_REQUIRE);
	assert_int_equal(rn_tls_client_auth_parse("Require"), -1);
	assert_int_equal(rn_tls_client_auth_parse(""), -1);
	assert_int_equal(rn_tls_client_auth_parse(NULL), -1);
}

static void test_reasons(void **state)
{
	char buf[256];
	(void)state;
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_CLEARTEXT), "cleartext");
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_NO_H2), "no_h2");
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_BAD_CERT), "bad_cert");
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_OTHER), "other");
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_TIMEOUT), "timeout");
	assert_string_equal(rn_tls_reason_name(RN_TLS_FAIL_N), "other");
	assert_string_equal(rn_tls_reason_name((enum rn_tls_reason)99), "other");

	assert_int_equal(
		rn_tls_classify(NULL, PACK(LIB_SSL, R_WRONG_VERSION_NUMBER), buf, sizeof(buf)),
		RN_TLS_FAIL_CLEARTEXT);
	assert_true(buf[0] != 0); /* OpenSSL's text (its strings may not be loaded here) */
	assert_int_equal(rn_tls_classify(NULL, PACK(LIB_SSL, R_HTTP_REQUEST), buf, sizeof(buf)),
			 RN_TLS_FAIL_CLEARTEXT);
	assert_int_equal(
		rn_tls_classify(NULL, PACK(LIB_SSL, R_NO_APPLICATION_PROTOCOL), buf, sizeof(buf)),
		RN_TLS_FAIL_NO_H2);
	assert_int_equal(rn_tls_classify(NULL, PACK(LIB_SSL, R_PEER_DID_NOT_RETURN_A_CERTIFICATE),
					 buf, sizeof(buf)),
			 RN_TLS_FAIL_BAD_CERT);
	assert_int_equal(
		rn_tls_classify(NULL, PACK(LIB_SSL, R_CERTIFICATE_VERIFY_FAILED), buf, sizeof(buf)),
		RN_TLS_FAIL_BAD_CERT);
	assert_int_equal(
		rn_tls_classify(NULL, PACK(LIB_SSL, R_TLSV1_ALERT_UNKNOWN_CA), buf, sizeof(buf)),
		RN_TLS_FAIL_BAD_CERT);
	assert_int_equal(
		rn_tls_classify(NULL, PACK(LIB_SSL, R_UNSUPPORTED_PROTOCOL), buf, sizeof(buf)),
		RN_TLS_FAIL_OTHER);
	/* another library's reason number that happens to equal an SSL one is not it */
	assert_int_equal(rn_tls_classify(NULL, PACK(11, R_WRONG_VERSION_NUMBER), buf, sizeof(buf)),
			 RN_TLS_FAIL_OTHER);
	assert_int_equal(rn_tls_classify(NULL, 0, buf, sizeof(buf)), RN_TLS_FAIL_OTHER);
	assert_string_equal(buf, "connection closed during the handshake");
	/* a small buffer is cut, never overrun */
	char tiny[8];
	rn_tls_classify(NULL, 0, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alpn),
		cmocka_unit_test(test_alpn_malformed),
		cmocka_unit_test(test_client_auth),
		cmocka_unit_test(test_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
