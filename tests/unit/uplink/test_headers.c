/*
 * Unit tests for the uplink's response header parser (uplink/headers.c): the lines libcurl
 * delivers for a gRPC answer, trailers with status, message and pushback, and what a server
 * that is not a gRPC server sends instead (HTTP/1.1, 404 pages, text/html, broken values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "headers.h"

static void feed(struct rn_up_headers *h, const char *const *lines)
{
	for (; *lines; lines++)
		rn_up_headers_line(h, *lines, strlen(*lines));
}

static void test_grpc_answer(void **state)
{
	struct rn_up_headers h;
	static const char *const lines[] = {"HTTP/2 200 \r\n",
					    "content-type: application/grpc\r\n",
					    "grpc-encoding: identity\r\n",
					    "Runnel-Committed-Acks: 1\r\n",
					    "\r\n",
					    "grpc-status: 8\r\n",
					    "grpc-message: WAL%20queue%20full%0A\r\n",
					    "grpc-retry-pushback-ms: 1500\r\n",
					    NULL};
	(void)state;
	rn_up_headers_reset(&h);
	assert_int_equal(h.grpc_status, -1);
	assert_int_equal(h.pushback_ms, -1);
	feed(&h, lines);
	assert_int_equal(h.http_major, 2);
	assert_int_equal(h.http_status, 200);
	assert_true(h.grpc_ct);
	assert_int_equal(h.grpc_status, 8);
	assert_string_equal(h.grpc_message, "WAL queue full?");
	assert_int_equal(h.pushback_ms, 1500);
	assert_false(h.pushback_bad);
	assert_true(h.committed_acks);
	/* anything but "1" is not the feature; a new status line forgets it */
	rn_up_headers_line(&h, "runnel-committed-acks: yes", 26);
	assert_false(h.committed_acks);
	rn_up_headers_line(&h, "runnel-committed-acks: 1", 24);
	assert_true(h.committed_acks);
	/* the same for runnel-health (the server takes health reports) */
	assert_false(h.health);
	rn_up_headers_line(&h, "Runnel-Health:  1 \r\n", 20);
	assert_true(h.health);
	rn_up_headers_line(&h, "runnel-health: 10", 17);
	assert_false(h.health);
	rn_up_headers_line(&h, "runnel-health: 1", 16);
	assert_true(h.health);
	rn_up_headers_line(&h, "HTTP/2 200", 10);
	assert_false(h.committed_acks);
	assert_false(h.health);
}

static void test_content_types(void **state)
{
	struct rn_up_headers h;
	(void)state;
	static const struct {
		const char *line;
		int grpc;
	} cases[] = {
		{"Content-Type: application/grpc", 1},
		{"content-type: application/grpc+proto", 1},
		{"content-type:application/grpc;charset=x", 1},
		{"content-type: application/grpcx", 0},
		{"content-type: application/json", 0},
		{"content-type: text/html; charset=utf-8", 0},
		{"content-type: ", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rn_up_headers_reset(&h);
		rn_up_headers_line(&h, cases[i].line, strlen(cases[i].line));
		assert_int_equal(h.grpc_ct, cases[i].grpc);
	}
	rn_up_headers_line(&h, "content-type: text/\x01html", 24);
	assert_string_equal(h.content_type, "text/?html");
}

static void test_not_grpc(void **state)
{
	struct rn_up_headers h;
	(void)state;
	rn_up_headers_reset(&h);
	rn_up_headers_line(&h, "HTTP/1.1 404 Not Found\r\n", 24);
	assert_int_equal(h.http_major, 1);
	assert_int_equal(h.http_status, 404);
	/* a new status line starts over (e.g. after a 1xx) */
	rn_up_headers_line(&h, "grpc-status: 3", 14);
	rn_up_headers_line(&h, "HTTP/2 503", 10);
	assert_int_equal(h.http_major, 2);
	assert_int_equal(h.http_status, 503);
	assert_int_equal(h.grpc_status, -1);
	rn_up_headers_line(&h, "HTTP/2 2000", 11);
	assert_int_equal(h.http_status, -1);
	rn_up_headers_line(&h, "HTTP/", 5);
	assert_int_equal(h.http_status, -1);
	assert_int_equal(rn_up_http_to_grpc(401), 16);
	assert_int_equal(rn_up_http_to_grpc(403), 7);
	assert_int_equal(rn_up_http_to_grpc(404), 12);
	assert_int_equal(rn_up_http_to_grpc(503), 14);
	assert_int_equal(rn_up_http_to_grpc(429), 14);
	assert_int_equal(rn_up_http_to_grpc(400), 13);
	assert_int_equal(rn_up_http_to_grpc(500), 2);
	assert_int_equal(rn_up_http_to_grpc(-1), 2);
}

static void test_bad_values(void **state)
{
	struct rn_up_headers h;
	(void)state;
	rn_up_headers_reset(&h);
	rn_up_headers_line(&h, "grpc-status: 99", 15);
	assert_int_equal(h.grpc_status, 2); /* UNKNOWN */
	rn_up_headers_line(&h, "grpc-status: -1", 15);
	assert_int_equal(h.grpc_status, 2);
	rn_up_headers_line(&h, "grpc-status:", 12);
	assert_int_equal(h.grpc_status, 2);
	rn_up_headers_line(&h, "GRPC-STATUS:  14  \r\n", 20);
	assert_int_equal(h.grpc_status, 14);
	rn_up_headers_line(&h, "grpc-retry-pushback-ms: -5", 26);
	assert_int_equal(h.pushback_ms, -1);
	assert_true(h.pushback_bad);
	rn_up_headers_line(&h, "grpc-retry-pushback-ms: 1e3", 27);
	assert_int_equal(h.pushback_ms, -1);
	rn_up_headers_line(&h, "grpc-retry-pushback-ms: 99999999999999999", 41);
	assert_int_equal(h.pushback_ms, RN_UP_PUSHBACK_MAX_MS);
	assert_false(h.pushback_bad);
	rn_up_headers_line(&h, "grpc-retry-pushback-ms: 9999999999999999999999", 46);
	assert_int_equal(h.pushback_ms, -1); /* too many digits: malformed, not a wrap */
	rn_up_headers_line(&h, "grpc-retry-pushback-ms: 0", 25);
	assert_int_equal(h.pushback_ms, 0);
	/* truncated escapes and long messages stay bounded and printable */
	rn_up_headers_line(&h, "grpc-message: 100%", 18);
	assert_string_equal(h.grpc_message, "100%");
	rn_up_headers_line(&h, "grpc-message: %4", 16);
	assert_string_equal(h.grpc_message, "%4");
	rn_up_headers_line(&h, "grpc-message: %zz%00", 20);
	assert_string_equal(h.grpc_message, "%zz?");
	char big[1000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "grpc-message: ", 14);
	rn_up_headers_line(&h, big, sizeof(big));
	assert_int_equal(strlen(h.grpc_message), sizeof(h.grpc_message) - 1);
	/* lines that are not headers are ignored */
	rn_up_headers_line(&h, "no colon here", 13);
	rn_up_headers_line(&h, ": empty name", 12);
	rn_up_headers_line(&h, "", 0);
	assert_int_equal(h.grpc_status, 14);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grpc_answer),
		cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_not_grpc),
		cmocka_unit_test(test_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
