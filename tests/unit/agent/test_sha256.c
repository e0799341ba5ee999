/* SHA-256 (agent/sha256.c) against the FIPS 180-4 / NIST test vectors, fed whole and in
 * every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void vectors(void **st)
{
	(void)st;
	char hex[65];
	rn_sha256_hex("", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	rn_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	rn_sha256_hex(m, strlen(m), hex);
	assert_string_equal(hex,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* a million 'a' */
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	rn_sha256_hex(a, 1000000, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

static void splits(void **st)
{
	(void)st;
	/* lengths around the padding edges (55, 56, 63, 64, 119, 120), fed in every split */
	char msg[130], whole[65], part[65];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	for (size_t len = 0; len <= sizeof(msg); len++) {
		rn_sha256_hex(msg, len, whole);
		for (size_t cut = 0; cut <= len; cut++) {
			struct rn_sha256 c;
			uint8_t d[32];
			rn_sha256_init(&c);
			rn_sha256_update(&c, msg, cut);
			rn_sha256_update(&c, msg + cut, len - cut);
			rn_sha256_final(&c, d);
			for (int i = 0; i < 32; i++) {
				part[2 * i] = "0123456789abcdef"[d[i] >> 4];
				part[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
			}
			part[64] = 0;
			assert_string_equal(part, whole);
		}
	}
	/* 56 bytes: the known digest of the two-block case */
	rn_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, whole);
	assert_string_equal(whole,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(vectors), cmocka_unit_test(splits)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
