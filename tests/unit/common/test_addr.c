/*
 * Unit tests for common/rn_addr: listen addresses (IPv4, bracketed IPv6, port 0 only where
 * allowed, names only where allowed) and uplink URLs, each refusal with its reason. The
 * refused inputs are the ones that used to pass a config check and then bound a random port
 * or dialled nothing: "127.0.0.1:abc", ":99999", "https://", "http://h:99999".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rn_addr.h"
#include "rn_err.h"

#define LISTEN (RN_ADDR_PORT_ZERO | RN_ADDR_NUMERIC)

static void hp_ok(const char *s, unsigned flags, const char *host, int port, int family)
{
	struct rn_hostport hp;
	const char *why = NULL;
	if (rn_addr_parse_hostport(s, flags, &hp, &why))
		fail_msg("\"%s\" refused: %s", s, why);
	assert_string_equal(hp.host, host);
	assert_int_equal(hp.port, port);
	assert_int_equal(hp.family, family);
}

static void hp_bad(const char *s, unsigned flags, const char *reason)
{
	struct rn_hostport hp;
	const char *why = NULL;
	if (rn_addr_parse_hostport(s, flags, &hp, &why) != RN_EINVAL)
		fail_msg("\"%s\" accepted", s ? s : "(null)");
	assert_non_null(why);
	if (!strstr(why, reason))
		fail_msg("\"%s\": reason \"%s\", want \"%s\"", s ? s : "(null)", why, reason);
}

static void test_listen_good(void **state)
{
	(void)state;
	hp_ok("127.0.0.1:7700", LISTEN, "127.0.0.1", 7700, 4);
	hp_ok("0.0.0.0:0", LISTEN, "0.0.0.0", 0, 4);
	hp_ok("127.0.0.1:65535", LISTEN, "127.0.0.1", 65535, 4);
	hp_ok("[::1]:7700", LISTEN, "::1", 7700, 6);
	hp_ok("[::]:1", LISTEN, "::", 1, 6);
	hp_ok("[2001:db8::42]:443", LISTEN, "2001:db8::42", 443, 6);
	hp_ok("broker.local:1883", 0, "broker.local", 1883, 0);
	hp_ok("a_b-c.example.:1", 0, "a_b-c.example.", 1, 0);
}

static void test_listen_bad(void **state)
{
	(void)state;
	hp_bad(NULL, LISTEN, "empty");
	hp_bad("", LISTEN, "empty");
	hp_bad("127.0.0.1:abc", LISTEN, "port must be a number from 0");
	hp_bad(":99999", LISTEN, "host is empty");
	hp_bad("127.0.0.1:99999", LISTEN, "port must be a number");
	hp_bad("127.0.0.1:65536", LISTEN, "port must be a number");
	hp_bad("127.0.0.1:", LISTEN, "port must be a number");
	hp_bad("127.0.0.1:+80", LISTEN, "port must be a number");
	hp_bad("127.0.0.1:-1", LISTEN, "port must be a number");
	hp_bad("127.0.0.1: 80", LISTEN, "spaces");
	hp_bad("127.0.0.1:80 ", LISTEN, "spaces");
	hp_bad("127.0.0.1:123456", LISTEN, "port must be a number");
	hp_bad("127.0.0.1", LISTEN, "no port");
	hp_bad("127.0.0.1:0", 0, "from 1 to 65535");
	hp_bad("localhost:7700", LISTEN, "must be an IP address");
	hp_bad("::1:7700", LISTEN, "brackets");
	hp_bad("[::1]7700", LISTEN, "expected ':'");
	hp_bad("[::1:7700", LISTEN, "without ']'");
	hp_bad("::1]:7700", LISTEN, "brackets");
	hp_bad("h]:7700", 0, "']' without '['");
	hp_bad("[127.0.0.1]:7700", LISTEN, "not an IPv6 address");
	hp_bad("[]:7700", LISTEN, "host is empty");
	hp_bad("[::1]:", LISTEN, "port must be a number");
	hp_bad("[::1]", LISTEN, "no port");
	hp_bad("256.0.0.1:80", LISTEN, "must be an IP address");
	hp_bad("256.0.0.1:80", 0, "not an IPv4 address");
	hp_bad("-bad.example:80", 0, "not a valid host name");
	hp_bad("bad-.example:80", 0, "not a valid host name");
	hp_bad("a..b:80", 0, "not a valid host name");
	hp_bad("a/b:80", 0, "not a valid host name");
}

/* Listen lists: several addresses, comma-separated, each checked as one listen address. */
static void test_listen_list(void **state)
{
	struct rn_hostport hp[RN_ADDR_LIST_MAX];
	const char *why = NULL;
	size_t n = 99, at = 99;
	(void)state;
	assert_int_equal(rn_addr_parse_listen_list("127.0.0.1:7700", hp, 8, &n, &at, &why), 0);
	assert_int_equal(n, 1);
	assert_string_equal(hp[0].host, "127.0.0.1");
	assert_int_equal(rn_addr_parse_listen_list(" 0.0.0.0:7700 ,[::]:7700,  [::1]:0", hp, 8, &n,
						   &at, &why),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(hp[0].host, "0.0.0.0");
	assert_int_equal(hp[0].port, 7700);
	assert_string_equal(hp[1].host, "::");
	assert_int_equal(hp[1].family, 6);
	assert_string_equal(hp[2].host, "::1");
	assert_int_equal(hp[2].port, 0);
	/* same host, other port: fine; same both: refused, port 0 included */
	assert_int_equal(rn_addr_parse_listen_list("127.0.0.1:1,127.0.0.1:2", hp, 8, &n, &at, &why),
			 0);
	struct {
		const char *s;
		const char *reason;
		size_t at;
	} bad[] = {
		{"", "empty", 0},
		{"127.0.0.1:1,", "empty address in the list", 12},
		{",127.0.0.1:1", "empty address in the list", 0},
		{"127.0.0.1:1,,[::1]:1", "empty address in the list", 12},
		{"127.0.0.1:1, 127.0.0.1:1", "given twice", 13},
		{"[::1]:0,[::1]:0", "given twice", 8},
		{"127.0.0.1:1, host.example:2", "IP", 13},
		{"127.0.0.1:1,::1:2", "brackets", 12},
		{"127.0.0.1:1,127.0.0.1", "no port", 12},
		{"1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5,1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,"
		 "1.1.1.1:9",
		 "too many", 80},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (rn_addr_parse_listen_list(bad[i].s, hp, 8, &n, &at, &why) != RN_EINVAL)
			fail_msg("\"%s\" accepted", bad[i].s);
		if (!why || !strstr(why, bad[i].reason))
			fail_msg("\"%s\": reason \"%s\", want \"%s\"", bad[i].s, why ? why : "",
				 bad[i].reason);
		if (at != bad[i].at)
			fail_msg("\"%s\": at %zu, want %zu", bad[i].s, at, bad[i].at);
	}
	/* a cap below the list's length */
	assert_int_equal(rn_addr_parse_listen_list("1.1.1.1:1,1.1.1.1:2", hp, 1, &n, &at, &why),
			 RN_EINVAL);
	assert_int_equal(rn_addr_parse_listen_list(NULL, hp, 8, &n, &at, &why), RN_EINVAL);
}

static void url_ok(const char *s, int tls, const char *host, int port, int given, const char *path)
{
	struct rn_url u;
	const char *why = NULL;
	if (rn_addr_parse_url(s, &u, &why))
		fail_msg("\"%s\" refused: %s", s, why);
	assert_int_equal(u.tls, tls);
	assert_string_equal(u.hp.host, host);
	assert_int_equal(u.hp.port, port);
	assert_int_equal(u.port_given, given);
	assert_string_equal(s + u.path_off, path);
}

static void url_bad(const char *s, const char *reason)
{
	struct rn_url u;
	const char *why = NULL;
	if (rn_addr_parse_url(s, &u, &why) != RN_EINVAL)
		fail_msg("\"%s\" accepted", s ? s : "(null)");
	if (!why || !strstr(why, reason))
		fail_msg("\"%s\": reason \"%s\", want \"%s\"", s ? s : "(null)", why ? why : "",
			 reason);
}

static void test_url_good(void **state)
{
	(void)state;
	url_ok("http://127.0.0.1:7700", 0, "127.0.0.1", 7700, 1, "");
	url_ok("https://ingest.example.com", 1, "ingest.example.com", 443, 0, "");
	url_ok("HTTP://host", 0, "host", 80, 0, "");
	url_ok("http://host/", 0, "host", 80, 0, "/");
	url_ok("https://[::1]:8443/prefix/x", 1, "::1", 8443, 1, "/prefix/x");
	url_ok("http://10.0.0.1:1", 0, "10.0.0.1", 1, 1, "");
	url_ok("https://h:65535", 1, "h", 65535, 1, "");
}

static void test_url_bad(void **state)
{
	(void)state;
	url_bad(NULL, "empty");
	url_bad("", "empty");
	url_bad("https://", "no host");
	url_bad("http:///x", "no host");
	url_bad("http://h:99999", "from 1 to 65535");
	url_bad("http://h:0", "from 1 to 65535");
	url_bad("http://h:", "from 1 to 65535");
	url_bad("http://h:abc", "from 1 to 65535");
	url_bad("http://:7700", "host is empty");
	url_bad("ftp://h", "must start with http://");
	url_bad("127.0.0.1:7700", "must start with http://");
	url_bad("http//h", "must start with http://");
	url_bad("http://::1:7700", "brackets");
	url_bad("http://[::1:7700", "without ']'");
	url_bad("http://user:pw@h", "user:password@");
	url_bad("http://h/x?y=1", "query");
	url_bad("http://h#f", "query");
	url_bad("http://h /x", "spaces");
	url_bad("http://h\n", "spaces");
	url_bad("http://bad_-.x", "not a valid host name");
	url_bad("http://999.1.1.1:80", "not an IPv4 address");
}

static void test_loopback(void **state)
{
	struct rn_hostport hp;
	const char *why;
	static const char *const yes[] = {"127.0.0.1:1", "127.255.0.9:7700", "[::1]:7700",
					  "[::ffff:127.0.0.1]:7700", NULL};
	static const char *const no[] = {"0.0.0.0:7700",   "[::]:7700",  "10.0.0.1:7700",
					 "128.0.0.1:7700", "[::2]:7700", "[::ffff:10.0.0.1]:7700",
					 "localhost:7700", NULL};
	(void)state;
	for (size_t i = 0; yes[i]; i++) {
		assert_int_equal(rn_addr_parse_hostport(yes[i], 0, &hp, &why), 0);
		assert_true(rn_addr_is_loopback(&hp));
	}
	for (size_t i = 0; no[i]; i++) {
		assert_int_equal(rn_addr_parse_hostport(no[i], 0, &hp, &why), 0);
		assert_false(rn_addr_is_loopback(&hp));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_good), cmocka_unit_test(test_listen_bad),
		cmocka_unit_test(test_listen_list), cmocka_unit_test(test_url_good),
		cmocka_unit_test(test_url_bad),     cmocka_unit_test(test_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
