/*
 * Unit tests for the REST router (server/net/rest.h): every route and its refusals (unknown
 * path, other methods, content types, missing, over-long, NUL-holding and badly escaped table
 * names, an over-long path), percent-decoding and query parameters, body splitting into a
 * record list (arrays, single objects, empty arrays, non-objects named by index, invalid
 * JSON, a capped output buffer left as it was), the error body and the gRPC status mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rest.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_pbwire.h"
#include "rn_url.h"

static int route(const char *method, const char *path, const char *query, const char *ctype,
		 struct rn_rest_target *t)
{
	return rn_rest_route(method, path, strlen(path), query, ctype, t);
}

static void test_routes(void **state)
{
	struct rn_rest_target t;
	(void)state;
	assert_int_equal(
		route("POST", "/zerobus/v1/tables/main.a.b/insert", NULL, "application/json", &t),
		0);
	assert_int_equal(t.route, RN_REST_INSERT);
	assert_string_equal(t.table, "main.a.b");
	/* percent-decoded; any case of the type, parameters allowed, none = JSON */
	assert_int_equal(route("POST", "/zerobus/v1/tables/main%2Ea.b/insert", NULL,
			       "Application/JSON; charset=utf-8", &t),
			 0);
	assert_string_equal(t.table, "main.a.b");
	assert_int_equal(route("POST", "/zerobus/v1/tables/x.y.z/insert", NULL, NULL, &t), 0);
	assert_int_equal(route("POST", "/ingest-record", "a=1&table_name=c.d.e", NULL, &t), 0);
	assert_int_equal(t.route, RN_REST_INGEST_RECORD);
	assert_string_equal(t.table, "c.d.e");
	assert_int_equal(
		route("POST", "/oidc/v1/token", NULL, "application/x-www-form-urlencoded", &t), 0);
	assert_int_equal(t.route, RN_REST_TOKEN);
	assert_string_equal(rn_rest_route_name(RN_REST_INGEST_RECORD), "ingest_record");
	assert_true(rn_rest_is_rest_path("/zerobus/v1/x", 13));
	assert_true(rn_rest_is_rest_path("/ingest-record", 14));
	assert_false(rn_rest_is_rest_path("/ingest-records", 15));
	assert_false(rn_rest_is_rest_path("/databricks.zerobus.Zerobus/EphemeralStream", 43));
}

/* The fleet API (docs/protocol.md "HTTP API"): GET only, a device name percent-decoded. */
static void test_api_routes(void **state)
{
	struct rn_rest_target t;
	char name[300];
	(void)state;
	assert_int_equal(route("GET", "/api/v1/overview", NULL, NULL, &t), 0);
	assert_int_equal(t.route, RN_REST_API_OVERVIEW);
	assert_string_equal(rn_rest_route_name(t.route), "api_overview");
	assert_int_equal(route("GET", "/api/v1/tables", "x=1", NULL, &t), 0);
	assert_int_equal(t.route, RN_REST_API_TABLES);
	assert_int_equal(route("GET", "/api/v1/streams", "state=silent", "text/plain", &t), 0);
	assert_int_equal(t.route, RN_REST_API_STREAMS);
	assert_int_equal(route("GET", "/api/v1/devices", NULL, NULL, &t), 0);
	assert_int_equal(t.route, RN_REST_API_DEVICES);
	assert_string_equal(rn_rest_route_name(t.route), "api_devices");
	assert_int_equal(route("GET", "/api/v1/devices/truck%2F7%20a", NULL, NULL, &t), 0);
	assert_int_equal(t.route, RN_REST_API_DEVICE);
	assert_string_equal(t.device, "truck/7 a");
	assert_true(rn_rest_is_rest_path("/api/v1/overview", 16));
	/* other methods: 405 with Allow: GET */
	assert_int_equal(route("POST", "/api/v1/streams", NULL, NULL, &t), 405);
	assert_string_equal(t.allow, "GET");
	assert_int_equal(t.route, RN_REST_API_STREAMS);
	assert_int_equal(route("DELETE", "/api/v1/devices/x", NULL, NULL, &t), 405);
	/* unknown paths, a second segment, an empty or impossible device name: 404 */
	assert_int_equal(route("GET", "/api/v1/nothing", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/api/v1/streams/", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/api/v1/devices/", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/api/v1/devices/a/b", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/api/v1/devices/a%00b", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/api/v1/devices/a%zz", NULL, NULL, &t), 404);
	assert_string_equal(t.code, "NOT_FOUND");
	/* 256 bytes decoded is a possible device, 257 is not */
	memcpy(name, "/api/v1/devices/", 16);
	memset(name + 16, 'd', 256);
	name[16 + 256] = 0;
	assert_int_equal(route("GET", name, NULL, NULL, &t), 0);
	assert_int_equal(strlen(t.device), 256);
	name[16 + 256] = 'd';
	name[16 + 257] = 0;
	assert_int_equal(route("GET", name, NULL, NULL, &t), 404);
}

static void test_refusals(void **state)
{
	struct rn_rest_target t;
	char big[RN_REST_PATH_MAX + 10], name[300];
	(void)state;
	assert_int_equal(route("POST", "/zerobus/v1/tables/a.b.c/update", NULL, NULL, &t), 404);
	assert_string_equal(t.code, "NOT_FOUND");
	assert_int_equal(route("POST", "/zerobus/v1/tables/a/b/insert", NULL, NULL, &t), 404);
	assert_int_equal(route("POST", "/zerobus/v1/tables//insert", NULL, NULL, &t), 404);
	assert_int_equal(route("GET", "/zerobus/v1/tables/a.b.c/insert", NULL, NULL, &t), 405);
	assert_string_equal(t.allow, "POST");
	assert_int_equal(t.route, RN_REST_INSERT); /* counted under its route */
	assert_int_equal(route(NULL, "/oidc/v1/token", NULL, NULL, &t), 405);
	assert_int_equal(route("POST", "/zerobus/v1/tables/a.b.c/insert", NULL, "text/csv", &t),
			 501);
	assert_string_equal(t.code, "NOT_IMPLEMENTED");
	assert_int_equal(
		route("POST", "/zerobus/v1/tables/a.b.c/insert", NULL, "application/jsonl", &t),
		501);
	assert_int_equal(route("POST", "/zerobus/v1/tables/a%00b/insert", NULL, NULL, &t), 400);
	assert_non_null(strstr(t.why, "NUL"));
	assert_int_equal(route("POST", "/zerobus/v1/tables/a%zzb/insert", NULL, NULL, &t), 400);
	assert_int_equal(route("POST", "/zerobus/v1/tables/a%2/insert", NULL, NULL, &t), 400);
	assert_int_equal(route("POST", "/ingest-record", "table=x", NULL, &t), 400);
	assert_int_equal(route("POST", "/ingest-record", NULL, NULL, &t), 400);
	assert_int_equal(route("POST", "/ingest-record", "table_name=", NULL, &t), 400);
	/* 255 bytes decoded pass, 256 are refused, never cut */
	memset(name, 'a', 255);
	snprintf(big, sizeof(big), "/zerobus/v1/tables/%.255s/insert", name);
	assert_int_equal(route("POST", big, NULL, NULL, &t), 0);
	assert_int_equal(strlen(t.table), 255);
	memset(name, 'a', 256);
	snprintf(big, sizeof(big), "/zerobus/v1/tables/%.256s/insert", name);
	assert_int_equal(route("POST", big, NULL, NULL, &t), 400);
	assert_non_null(strstr(t.why, "255"));
	/* a path longer than the router takes */
	assert_int_equal(rn_rest_route("POST", "/x", RN_REST_PATH_MAX + 1, NULL, NULL, &t), 414);
}

static void test_unescape(void **state)
{
	char out[8];
	(void)state;
	assert_int_equal(rn_url_unescape("a%41+b", 6, 0, out, sizeof(out)), 4);
	assert_string_equal(out, "aA+b");
	assert_int_equal(rn_url_unescape("a%41+b", 6, 1, out, sizeof(out)), 4);
	assert_string_equal(out, "aA b");
	assert_int_equal(rn_url_unescape("%4", 2, 0, out, sizeof(out)), -1);
	assert_int_equal(rn_url_unescape("%", 1, 0, out, sizeof(out)), -1);
	assert_int_equal(rn_url_unescape("1234567", 7, 0, out, sizeof(out)), 7);
	assert_int_equal(rn_url_unescape("12345678", 8, 0, out, sizeof(out)), -2);
	assert_int_equal(rn_url_unescape("", 0, 0, out, 0), -2);
	assert_int_equal(rn_rest_param("a=1&b=%32&b=3", 13, "b", out, sizeof(out)), 1);
	assert_string_equal(out, "2");
	assert_int_equal(rn_rest_param("a&b", 3, "a", out, sizeof(out)), 0);
	assert_int_equal(rn_rest_param("ab=1", 4, "a", out, sizeof(out)), -3);
	assert_int_equal(rn_rest_param("", 0, "a", out, sizeof(out)), -3);
}

/* The records of a record list, joined with '|'. */
static void records(const struct rn_buf *b, char *out, size_t cap)
{
	struct rn_pb_reader r;
	struct rn_pb_field f;
	size_t n = 0;
	out[0] = 0;
	rn_pb_reader_init(&r, b->data, b->len);
	while (rn_pb_next(&r, &f) == 1) {
		assert_int_equal(f.num, 1);
		n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "|" : "", (int)f.len,
				      (const char *)f.ptr);
	}
}

static int batch(const char *body, int single, struct rn_buf *b, size_t *n, char *why)
{
	return rn_rest_batch((const uint8_t *)body, strlen(body), single, b, n, why, 120);
}

static void test_batch(void **state)
{
	struct rn_buf b = {0};
	size_t n;
	char why[120], got[256];
	(void)state;
	assert_int_equal(batch(" [ {\"a\":1} , {\"b\":[1,{}]} ]\n", 0, &b, &n, why), 0);
	assert_int_equal(n, 2);
	records(&b, got, sizeof(got));
	assert_string_equal(got, "{\"a\":1}|{\"b\":[1,{}]}");
	rn_buf_reset(&b);
	assert_int_equal(batch("[]", 0, &b, &n, why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(batch("\t{\"x\":\"y\"} ", 1, &b, &n, why), 0);
	assert_int_equal(n, 1);
	records(&b, got, sizeof(got));
	assert_string_equal(got, "{\"x\":\"y\"}");
	/* refusals leave the buffer as it was */
	size_t was = b.len;
	assert_int_equal(batch("[{\"a\":1}, 2, {}]", 0, &b, &n, why), RN_EINVAL);
	assert_string_equal(why, "row 1: not a JSON object");
	assert_int_equal(b.len, was);
	assert_int_equal(batch("[{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, []]", 0, &b, &n, why),
			 RN_EINVAL);
	assert_string_equal(why, "row 11: not a JSON object");
	assert_int_equal(batch("{\"a\":1}", 0, &b, &n, why), RN_EINVAL);
	assert_string_equal(why, "body is not a JSON array");
	assert_int_equal(batch("[{\"a\":1}", 0, &b, &n, why), RN_EINVAL);
	assert_string_equal(why, "body is not valid JSON");
	assert_int_equal(batch("", 0, &b, &n, why), RN_EINVAL);
	assert_int_equal(batch("[{}]", 1, &b, &n, why), RN_EINVAL);
	assert_string_equal(why, "body is not a JSON object");
	assert_int_equal(rn_rest_batch(NULL, 0, 0, &b, &n, why, sizeof(why)), RN_EINVAL);
	assert_int_equal(b.len, was);
	rn_buf_free(&b);
	/* an output cap: refused whole, nothing half appended */
	struct rn_buf small = {.max = 16};
	assert_int_equal(batch("[{\"a\":1},{\"b\":22222222222}]", 0, &small, &n, why), RN_ENOMEM);
	assert_int_equal(small.len, 0);
	assert_non_null(strstr(why, "row 1"));
	rn_buf_free(&small);
}

static void test_bodies(void **state)
{
	struct rn_buf b = {0};
	const char *code;
	(void)state;
	assert_int_equal(rn_rest_error_body(&b, "NOT_FOUND", "table \"x\"\n"), 0);
	const char *want = "{\"error_code\":\"NOT_FOUND\",\"message\":\"table \\\"x\\\"\\u000a\"}";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	rn_buf_free(&b);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_UNAUTHENTICATED, &code), 401);
	assert_string_equal(code, "UNAUTHENTICATED");
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_PERMISSION_DENIED, &code), 403);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_INVALID_ARGUMENT, &code), 400);
	assert_string_equal(code, "INVALID_PARAMETER_VALUE");
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_NOT_FOUND, &code), 404);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_RESOURCE_EXHAUSTED, &code), 429);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_UNIMPLEMENTED, &code), 501);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_UNAVAILABLE, &code), 503);
	assert_int_equal(rn_rest_http_of_grpc(RN_GRPC_DATA_LOSS, &code), 500);
	assert_int_equal(rn_rest_statuses[rn_rest_status_index(413)], 413);
	assert_int_equal(rn_rest_status_index(418), RN_REST_NSTATUS - 1);
	assert_int_equal(rn_rest_status_index(0), RN_REST_NSTATUS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),   cmocka_unit_test(test_api_routes),
		cmocka_unit_test(test_refusals), cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_batch),    cmocka_unit_test(test_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
