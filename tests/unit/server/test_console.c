/*
 * Unit tests for the web console's file server (server/net/console.h): the embedded files
 * and their types, the index and redirects, the headers every answer carries (nosniff, the
 * content-security-policy, cache-control, ETag), conditional requests (If-None-Match with
 * lists, weak tags and "*"), HEAD, other methods (405) and unknown files or paths (404).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"
#include "rest.h"

static const char *header(const struct rn_console_answer *a, const char *name)
{
	for (size_t i = 0; i < a->r.nheaders; i++)
		if (!strcmp(a->r.headers[i].name, name))
			return a->r.headers[i].value;
	return NULL;
}

static int ask(const char *method, const char *path, const char *inm, struct rn_console_answer *a)
{
	return rn_console_answer(method, path, strlen(path), inm, a);
}

static void common_headers(const struct rn_console_answer *a)
{
	assert_true(a->r.nheaders <= RN_CONSOLE_NHDR);
	assert_true(a->r.nheaders <= RN_HTTPX_MAX_HEADERS);
	assert_string_equal(header(a, "X-Content-Type-Options"), "nosniff");
	const char *csp = header(a, "Content-Security-Policy");
	assert_non_null(csp);
	assert_non_null(strstr(csp, "default-src 'none'"));
	assert_non_null(strstr(csp, "script-src 'self';"));
	assert_null(strstr(csp, "unsafe-inline"));
	assert_null(strstr(csp, "unsafe-eval"));
}

static void test_files(void **state)
{
	struct rn_console_answer a;
	static const struct {
		const char *path, *ctype, *starts;
	} files[] = {
		{"/console/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/console/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "/*"},
		{"/console/app.css", "text/css; charset=utf-8", "/*"},
		{"/console/icon.svg", "image/svg+xml", "<svg"},
	};
	(void)state;
	assert_int_equal(rn_console_nassets, 4);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		assert_int_equal(ask("GET", files[i].path, NULL, &a), 200);
		assert_int_equal(a.r.status, 200);
		assert_string_equal(a.r.content_type, files[i].ctype);
		assert_true(a.r.len > 100 || !strcmp(files[i].ctype, "image/svg+xml"));
		assert_memory_equal(a.r.body, files[i].starts, strlen(files[i].starts));
		assert_false(a.r.head);
		common_headers(&a);
		assert_string_equal(header(&a, "Cache-Control"), "no-cache");
		const char *etag = header(&a, "ETag");
		assert_non_null(etag);
		assert_int_equal(strlen(etag), 18); /* "\"" + 16 hex + "\"" */
		assert_int_equal(etag[0], '"');
		assert_int_equal(etag[17], '"');
	}
	/* every file has its own tag; find is exact */
	assert_string_not_equal(rn_console_find("app.js", 6)->etag,
				rn_console_find("app.css", 7)->etag);
	assert_null(rn_console_find("app.j", 5));
	assert_null(rn_console_find("app.jss", 7));
	/* the index loads the script from a file (the policy forbids inline script) */
	const struct rn_console_asset *idx = rn_console_find("index.html", 10);
	assert_non_null(strstr((const char *)idx->data, "<script src=\"app.js\""));
	assert_null(strstr((const char *)idx->data, "<script>"));
	assert_int_equal(idx->data[idx->len], 0);
}

static void test_redirects_and_refusals(void **state)
{
	struct rn_console_answer a;
	(void)state;
	assert_int_equal(ask("GET", "/", NULL, &a), 302);
	assert_string_equal(header(&a, "Location"), "/console/");
	common_headers(&a);
	assert_int_equal(ask("GET", "/console", NULL, &a), 302);
	assert_string_equal(header(&a, "Location"), "/console/");
	assert_int_equal(ask("HEAD", "/", NULL, &a), 302);
	assert_true(a.r.head);
	/* unknown files, sub-folders, traversal, other paths: 404 with the same headers */
	static const char *const missing[] = {
		"/console/nope.js", "/console/a/app.js", "/console/../app.js", "/console//app.js",
		"/console/app.js/", "/consolex",         "/api/v1/overview",   "/console/APP.JS"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		assert_int_equal(ask("GET", missing[i], NULL, &a), 404);
		assert_null(header(&a, "ETag"));
		common_headers(&a);
	}
	/* methods other than GET and HEAD */
	static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "get", ""};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		assert_int_equal(ask(methods[i], "/console/app.js", NULL, &a), 405);
		assert_string_equal(a.r.hname, "Allow");
		assert_string_equal(a.r.hvalue, "GET, HEAD");
	}
	assert_int_equal(ask(NULL, "/console/", NULL, &a), 405);
	assert_int_equal(ask("POST", "/", NULL, &a), 405);
}

static void test_conditional_and_head(void **state)
{
	struct rn_console_answer a;
	char list[128];
	(void)state;
	const char *etag = rn_console_find("app.js", 6)->etag;
	size_t len = rn_console_find("app.js", 6)->len;
	assert_int_equal(ask("GET", "/console/app.js", etag, &a), 304);
	assert_int_equal(a.r.len, 0);
	assert_null(a.r.body);
	assert_string_equal(header(&a, "ETag"), etag);
	common_headers(&a);
	snprintf(list, sizeof(list), "\"0000000000000000\", W/%s", etag);
	assert_int_equal(ask("GET", "/console/app.js", list, &a), 304);
	assert_int_equal(ask("HEAD", "/console/app.js", "*", &a), 304);
	/* another file's tag, a tag cut short, garbage: the file */
	assert_int_equal(ask("GET", "/console/app.js", rn_console_find("app.css", 7)->etag, &a),
			 200);
	snprintf(list, sizeof(list), "%.10s", etag);
	assert_int_equal(ask("GET", "/console/app.js", list, &a), 200);
	assert_int_equal(ask("GET", "/console/app.js", ",,, W/ ,", &a), 200);
	assert_int_equal(ask("GET", "/console/app.js", "", &a), 200);
	/* HEAD: the GET's headers and length, head set (the adapters send no body) */
	assert_int_equal(ask("HEAD", "/console/app.js", NULL, &a), 200);
	assert_true(a.r.head);
	assert_int_equal(a.r.len, len);
	assert_string_equal(header(&a, "ETag"), etag);
}

static void test_router(void **state)
{
	struct rn_rest_target t;
	(void)state;
	static const char *const paths[] = {"/", "/console", "/console/", "/console/app.js",
					    "/console/whatever"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		/* any method: the console answers 405 itself */
		assert_int_equal(
			rn_rest_route("DELETE", paths[i], strlen(paths[i]), NULL, NULL, &t), 0);
		assert_int_equal(t.route, RN_REST_CONSOLE);
		/* not REST whatever the content-type: a gRPC call to "/" stays gRPC */
		assert_false(rn_rest_is_rest_path(paths[i], strlen(paths[i])));
	}
	assert_string_equal(rn_rest_route_name(RN_REST_CONSOLE), "console");
	assert_int_equal(rn_rest_route("GET", "/consolex", 9, NULL, NULL, &t), 404);
	assert_int_equal(rn_rest_route("GET", "//", 2, NULL, NULL, &t), 404);
	assert_false(rn_rest_is_rest_path("/consoles", 9));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_redirects_and_refusals),
		cmocka_unit_test(test_conditional_and_head),
		cmocka_unit_test(test_router),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
