/*
 * Unit tests for `runnel-server fleet` (server/cli/fleet_cli.c) and its HTTP GET
 * (server/cli/httpget.c): the answer parser (Content-Length, chunked, until close, and the
 * malformed answers it must refuse), the device and stream tables from fleet API JSON
 * (columns aligned, ages against the answer's now_ms, a device string with control
 * characters or over the cell width shown safely, --limit's footer, JSON that is not the
 * API's refused), the refusal sources' table (--refused: kinds joined, hostile reasons
 * cleaned, missing members shown as "-"), and the command with a stubbed GET: the request it makes
 * (path, query encoding, the token from --token-file), the messages of 401/403/404/400, --json as
 * received, usage errors; and the real GET against a closed port (connection refused).
 * Allocation-failure sweeps: every allocation of the parser, the tables and the command
 * made to fail in turn gives RN_ENOMEM (exit 1) and leaks nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet_cli.h"
#include "httpget.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "testutil.h"

/* ---- rn_httpget_parse ---- */

static int parse(const char *raw, int *status, struct rn_buf *body, const char **why)
{
	return rn_httpget_parse(raw, strlen(raw), status, body, why);
}

static void test_parse_content_length(void **state)
{
	(void)state;
	struct rn_buf b = {0};
	const char *why = NULL;
	int st = 0;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX: y\r\n\r\nhello+junk",
			       &st, &b, &why),
			 0);
	assert_int_equal(st, 200);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);
	rn_buf_free(&b);
	/* until close, no length */
	assert_int_equal(parse("HTTP/1.0 404 Not Found\r\n\r\nnope\n", &st, &b, &why), 0);
	assert_int_equal(st, 404);
	assert_int_equal(b.len, 5);
	rn_buf_free(&b);
}

static void test_parse_chunked(void **state)
{
	(void)state;
	struct rn_buf b = {0};
	const char *why = NULL;
	int st = 0;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "4\r\n{\"a\"\r\nA;ext=1\r\n:1234567}\n\r\n0\r\n\r\n",
			       &st, &b, &why),
			 0);
	assert_int_equal(b.len, 14);
	assert_memory_equal(b.data, "{\"a\":1234567}\n", 14);
	rn_buf_free(&b);
}

static void test_parse_refuses(void **state)
{
	(void)state;
	static const char *bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",          /* no end of headers */
		"SSH-2.0-OpenSSH\r\n\r\n",                           /* not HTTP */
		"HTTP/1.1 2x0 OK\r\n\r\n",                           /* bad status */
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", /* shorter than its length */
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", /* cut chunk */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  /* bad size */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rn_buf b = {0};
		const char *why = NULL;
		int st = 0;
		assert_int_equal(parse(bad[i], &st, &b, &why), RN_EPROTO);
		assert_non_null(why);
		rn_buf_free(&b);
	}
}

/* ---- the tables ---- */

#define NOW 1700000000000LL
static const char devices_json[] =
	"{\"now_ms\": 1700000000000, \"total\": 2, \"devices\": ["
	"{\"device\": \"truck-7\", \"streams\": [\"s1\"], \"states\": [\"silent\", \"behind\"],"
	" \"last_seen_ms\": 1699999700000, \"version\": \"0.1.0\", \"buffer_bytes\": 1572864,"
	" \"buffer_records\": 340, \"oldest_unsent_age_s\": 7300, \"drops\": 3, \"expired\": 1,"
	" \"dead_letters\": 0, \"clock_synced\": true, \"invalid\": []},"
	"{\"device\": null, \"streams\": [\"9f0c-stream\"], \"states\": [],"
	" \"last_seen_ms\": 1699999999500, \"version\": null, \"buffer_bytes\": null,"
	" \"oldest_unsent_age_s\": null, \"drops\": {\"full\": 2, \"ttl\": 5}, \"expired\": null,"
	" \"dead_letters\": null, \"invalid\": []}]}\n";

/* The lines of text (at most 16), NUL-terminated in place. */
static size_t lines(char *text, char **line)
{
	size_t n = 0;
	for (char *p = text; *p && n < 16;) {
		char *nl = strchr(p, '\n');
		line[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

static char *render_dev(const char *json, int expect)
{
	struct rn_buf out = {0};
	const char *why = NULL;
	assert_int_equal(rn_fleet_cli_devices(json, strlen(json), &out, &why), expect);
	if (expect) {
		assert_non_null(why);
		rn_buf_free(&out);
		return NULL;
	}
	assert_int_equal(rn_buf_append_u8(&out, 0), 0);
	return (char *)out.data;
}

static void test_devices_table(void **state)
{
	(void)state;
	char *t = render_dev(devices_json, 0), *l[16];
	size_t n = lines(t, l);
	assert_int_equal(n, 4);
	/* header, then the rows, each column starting where its header does */
	const char *cols[] = {"DEVICE", "STATES",  "LAST SEEN", "BUFFER", "OLDEST UNSENT",
			      "DROPS",  "EXPIRED", "DEAD",      "VERSION"};
	const char *row1[] = {"truck-7", "silent,behind", "5m ago", "1.5 MiB", "2h", "3", "1",
			      "0",       "0.1.0"};
	const char *row2[] = {"(stream 9f0c-stream)", "ok", "0s ago", "-", "-", "7", "-", "-", "-"};
	for (size_t c = 0; c < 9; c++) {
		const char *h = strstr(l[0], cols[c]);
		assert_non_null(h);
		size_t at = (size_t)(h - l[0]);
		assert_true(strlen(l[1]) > at);
		assert_memory_equal(l[1] + at, row1[c], strlen(row1[c]));
		assert_true(strlen(l[2]) > at);
		assert_memory_equal(l[2] + at, row2[c], strlen(row2[c]));
		if (c) /* two spaces before every column */
			assert_memory_equal(l[1] + at - 2, "  ", 2);
	}
	assert_string_equal(l[3], "2 devices");
	free(t);
}

static void test_devices_hostile_strings(void **state)
{
	(void)state;
	/* control characters (an escape sequence a terminal would obey) become '?'; a long
	 * name is cut at a character boundary with "..." */
	char *t = render_dev(
		"{\"now_ms\": 10, \"devices\": [{\"device\": \"a\\u001b[2Jb\\nc\","
		" \"version\": \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
		"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
		"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
		"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\","
		" \"last_seen_ms\": \"yesterday\", \"buffer_bytes\": -5, \"states\": "
		"[\"invalid\"]}]}",
		0);
	assert_null(strchr(t, '\x1b'));
	assert_non_null(strstr(t, "a?[2Jb?c"));
	assert_non_null(strstr(t, "never")); /* a last_seen_ms that is not a number */
	assert_non_null(strstr(t, "-5 B"));  /* shown as sent */
	const char *v = strstr(t, "\xc3\xa9");
	assert_non_null(v);
	size_t e = 0;
	while (!memcmp(v + 2 * e, "\xc3\xa9", 2))
		e++;
	assert_int_equal(e, 40);
	assert_memory_equal(v + 80, "...", 3);
	assert_non_null(strstr(t, "1 device\n"));
	free(t);
}

static void test_devices_limit_footer(void **state)
{
	(void)state;
	char *t =
		render_dev("{\"now_ms\": 0, \"total\": 5, \"devices\": [{\"device\": \"d\"}]}", 0);
	assert_non_null(strstr(t, "\n1 of 5 devices shown (--limit)\n"));
	free(t);
	t = render_dev("{\"now_ms\": 0, \"total\": 0, \"devices\": []}", 0);
	assert_non_null(strstr(t, "DEVICE"));
	assert_non_null(strstr(t, "\n0 devices\n"));
	free(t);
}

static void test_not_the_api(void **state)
{
	(void)state;
	render_dev("<html>hi</html>", RN_EINVAL);
	render_dev("{\"now_ms\": 1, \"devices\": [", RN_EINVAL);
	render_dev("{\"now_ms\": 1, \"streams\": []}", RN_EINVAL);
	render_dev("{\"devices\": []}", RN_EINVAL);
	render_dev("[1,2]", RN_EINVAL);
	struct rn_buf out = {0};
	const char *why = NULL;
	/* an empty body: no buffer at all (found by fuzz_fleet_cli) */
	assert_int_equal(rn_fleet_cli_devices(NULL, 0, &out, &why), RN_EINVAL);
	assert_int_equal(rn_fleet_cli_streams(NULL, 0, &out, &why), RN_EINVAL);
	assert_int_equal(out.len, 0);
}

static void test_streams_table(void **state)
{
	(void)state;
	static const char js[] =
		"{\"now_ms\": 1700000000000, \"silent_after_s\": 300, \"behind_after_s\": 600,"
		" \"total\": 1, \"streams\": [{\"stream_id\": \"abc\", \"table\": "
		"\"main.default.telemetry\", \"principal\": null, \"device\": \"truck-7\","
		" \"kind\": \"persistent\", \"connected\": true, \"last_batch_ms\": 1699996400000,"
		" \"records\": 120, \"acked_offset\": 11, \"committed_offset\": 9,"
		" \"states\": [\"clock\"]}]}";
	struct rn_buf out = {0};
	const char *why = NULL;
	char *l[16];
	assert_int_equal(rn_fleet_cli_streams(js, sizeof(js) - 1, &out, &why), 0);
	assert_int_equal(rn_buf_append_u8(&out, 0), 0);
	assert_int_equal(lines((char *)out.data, l), 3);
	const char *cols[] = {"STREAM", "DEVICE",     "TABLE",   "PRINCIPAL", "KIND",     "CONN",
			      "STATES", "LAST BATCH", "RECORDS", "ACKED",     "COMMITTED"};
	const char *row[] = {"abc",   "truck-7",    "main.default.telemetry",
			     "-",     "persistent", "yes",
			     "clock", "1h ago",     "120",
			     "11",    "9"};
	for (size_t c = 0; c < 11; c++) {
		const char *h = strstr(l[0], cols[c]);
		assert_non_null(h);
		assert_memory_equal(l[1] + (h - l[0]), row[c], strlen(row[c]));
	}
	assert_string_equal(l[2], "1 stream");
	rn_buf_free(&out);
}

/* ---- the refusal sources (--refused) ---- */

static const char refusals_json[] =
	"{\"now_ms\":1700000000000,\"total\":2,\"refused\":7,\"last_hour\":7,\"evicted\":0,"
	"\"evicted_calls\":0,\"unattributed\":0,\"max_sources\":1024,\"sources\":["
	"{\"peer\":\"127.0.0.1\",\"principal\":\"\",\"table\":null,\"count\":5,"
	"\"kinds\":{\"UNAUTHENTICATED\":3,\"http_401\":2},\"first_ms\":1699999000000,"
	"\"last_ms\":1699999880000,\"last_reason\":\"bad token\"},"
	"{\"peer\":\"2001:db8::7\",\"principal\":\"edge-42\",\"table\":\"main.default.t\","
	"\"count\":2,\"kinds\":{\"PERMISSION_DENIED\":2},\"first_ms\":1699992800000,"
	"\"last_ms\":1699992800000,\"last_reason\":\"table not granted\"}]}\n";

static char *render_ref(const char *json, int expect)
{
	struct rn_buf out = {0};
	const char *why = NULL;
	assert_int_equal(rn_fleet_cli_refusals(json, strlen(json), &out, &why), expect);
	if (expect) {
		assert_non_null(why);
		assert_int_equal(out.len, 0);
		rn_buf_free(&out);
		return NULL;
	}
	assert_int_equal(rn_buf_append_u8(&out, 0), 0);
	return (char *)out.data;
}

static void test_refusals_table(void **state)
{
	(void)state;
	char *t = render_ref(refusals_json, 0);
	assert_string_equal(
		t, "ADDRESS      PRINCIPAL  COUNT  KINDS                          LAST SEEN  "
		   "LAST REASON\n"
		   "127.0.0.1    -          5      UNAUTHENTICATED 3, http_401 2  2m ago     "
		   "bad token\n"
		   "2001:db8::7  edge-42    2      PERMISSION_DENIED 2            2h ago     "
		   "table not granted\n"
		   "2 sources\n");
	free(t);
}

static void test_refusals_hostile_and_missing(void **state)
{
	(void)state;
	/* an escape sequence and newlines in the reason, principal and a kind become '?'; a
	 * long reason and a long kinds list are cut with "..." */
	char *t = render_ref(
		"{\"now_ms\": 5000, \"total\": 3, \"sources\": [{\"peer\": \"10.0.0.1\","
		" \"principal\": \"p\\u001b]0;x\\u0007\", \"count\": 1, \"kinds\":"
		" {\"k\\nx\": 1, \"aaaaaaaaaa\": 2, \"bbbbbbbbbb\": 3, \"cccccccccc\": 4},"
		" \"last_ms\": 4000, \"last_reason\": \"\\u001b[31mred\\r\\nline2 "
		"0123456789012345678901234567890123456789\"},"
		/* members missing, null or of the wrong type */
		" {\"peer\": null, \"count\": \"many\", \"kinds\": {\"x\": \"y\"}, \"last_ms\": "
		"null},"
		" {}, 7]}",
		0);
	char *l[16];
	assert_null(strchr(t, '\x1b'));
	assert_null(strchr(t, '\x07'));
	assert_null(strchr(t, '\r'));
	assert_int_equal(lines(t, l), 5);
	assert_non_null(strstr(l[1], "p?]0;x?"));
	assert_non_null(strstr(l[1], "k?x 1, aaaaaaaaaa 2, bbbbbbbbbb 3, ccccc...  "));
	assert_non_null(strstr(l[1], "1s ago"));
	const char *end = "?[31mred??line2 012345678901234567890123..."; /* the last cell */
	assert_true(strlen(l[1]) > strlen(end));
	assert_string_equal(l[1] + strlen(l[1]) - strlen(end), end);
	/* the rows without members (and the element that is no object, not counted): "-" for
	 * strings and numbers, "never" without a time */
	assert_string_equal(l[2], "-         -          -      -                              "
				  "              never      -");
	assert_string_equal(l[3], l[2]);
	assert_string_equal(l[4], "3 sources");
	free(t);
	t = render_ref("{\"now_ms\": 0, \"total\": 9, \"sources\": [{\"peer\": \"a\"}]}", 0);
	assert_non_null(strstr(t, "\n1 of 9 sources shown (--limit)\n"));
	free(t);
	t = render_ref("{\"now_ms\": 0, \"sources\": []}", 0);
	assert_string_equal(
		t, "ADDRESS  PRINCIPAL  COUNT  KINDS  LAST SEEN  LAST REASON\n0 sources\n");
	free(t);
}

static void test_refusals_not_the_api(void **state)
{
	(void)state;
	const char *why = NULL;
	struct rn_buf out = {0};
	render_ref("{\"now_ms\": 1, \"devices\": []}", RN_EINVAL);
	render_ref("{\"sources\": []}", RN_EINVAL);
	render_ref("{\"now_ms\": 1, \"sources\": {}}", RN_EINVAL);
	render_ref("{\"now_ms\": 1, \"sources\": [", RN_EINVAL);
	assert_int_equal(rn_fleet_cli_refusals("{\"now_ms\": 1}", 13, &out, &why), RN_EINVAL);
	assert_string_equal(why, "no \"sources\" array");
	assert_int_equal(rn_fleet_cli_refusals(NULL, 0, &out, &why), RN_EINVAL);
	assert_string_equal(why, "an empty answer");
	assert_int_equal(out.len, 0);
}

/* ---- the command, with a stubbed GET ---- */

static struct {
	int status, rc;
	const char *body;
	char base[256], target[512], bearer[256];
	int calls;
} stub;

static int stub_get(const char *base, const char *target, const char *bearer, int timeout_ms,
		    int *status, struct rn_buf *body, char *err, size_t cap)
{
	stub.calls++;
	snprintf(stub.base, sizeof(stub.base), "%s", base);
	snprintf(stub.target, sizeof(stub.target), "%s", target);
	snprintf(stub.bearer, sizeof(stub.bearer), "%s", bearer ? bearer : "(none)");
	assert_true(timeout_ms > 0);
	if (stub.rc) {
		snprintf(err, cap, "cannot connect to 127.0.0.1 port 1: Connection refused");
		return stub.rc;
	}
	*status = stub.status;
	return rn_buf_append_str(body, stub.body) ? RN_ENOMEM : 0;
}

static int stub_conf(const char *path, char *url, size_t cap, char *err, size_t errcap)
{
	if (!strcmp(path, "missing.conf")) {
		snprintf(err, errcap, "%s: metrics_listen is not set", path);
		return 1;
	}
	snprintf(url, cap, "http://127.0.0.1:9100");
	return 0;
}

static const struct rn_fleet_cli_env env = {.get = stub_get, .conf_url = stub_conf};

struct io {
	char *out, *err;
	size_t outlen, errlen;
};

static int run(struct io *io, int status, const char *body, ...)
{
	char *argv[32] = {"fleet"};
	int argc = 1, rc;
	va_list ap;
	va_start(ap, body);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	free(io->out);
	free(io->err);
	FILE *o = open_memstream(&io->out, &io->outlen), *e = open_memstream(&io->err, &io->errlen);
	stub.status = status;
	stub.body = body;
	stub.calls = 0;
	rc = rn_fleet_cli_main(argc, argv, o, e, &env);
	fclose(o);
	fclose(e);
	return rc;
}

static void test_main_request(void **state)
{
	(void)state;
	struct io io = {0};
	char dir[256], tokf[400];
	FILE *f;
	assert_int_equal(rn_test_tmpdir(dir, sizeof(dir), "fleet_cli"), 0);
	rn_test_path(tokf, sizeof(tokf), dir, "token");
	assert_non_null(f = fopen(tokf, "w"));
	fputs("s3cret-token \n", f);
	fclose(f);
	assert_int_equal(run(&io, 200, devices_json, "--url", "http://127.0.0.1:9100/", "--state",
			     "silent", "--q", "a b/ü&", "--limit", "5", "--token-file", tokf, NULL),
			 0);
	assert_string_equal(stub.base, "http://127.0.0.1:9100");
	assert_string_equal(stub.target,
			    "/api/v1/devices?state=silent&q=a%20b%2F%C3%BC%26&limit=5");
	assert_string_equal(stub.bearer, "s3cret-token");
	assert_non_null(strstr(io.out, "truck-7"));
	assert_int_equal(io.errlen, 0);
	/* --streams, --sort/--order, -c gives the URL; no token: no Authorization */
	assert_int_equal(run(&io, 200, "{\"now_ms\": 1, \"total\": 0, \"streams\": []}",
			     "--streams", "-c", "x.conf", "--sort", "records", "--order", "asc",
			     NULL),
			 0);
	assert_string_equal(stub.target, "/api/v1/streams?sort=records&order=asc");
	assert_string_equal(stub.bearer, "(none)");
	assert_non_null(strstr(io.out, "0 streams"));
	/* --refused: /api/v1/refusals with q, sort, order and limit passed through */
	assert_int_equal(run(&io, 200, refusals_json, "--url", "http://h:1", "--refused", "--q",
			     "127.0", "--sort", "count", "--order", "desc", "--limit", "20", NULL),
			 0);
	assert_string_equal(stub.target, "/api/v1/refusals?q=127.0&sort=count&order=desc&limit=20");
	assert_non_null(strstr(io.out, "UNAUTHENTICATED 3, http_401 2"));
	assert_non_null(strstr(io.out, "\n2 sources\n"));
	assert_int_equal(io.errlen, 0);
	assert_int_equal(
		run(&io, 200, refusals_json, "--url", "http://h:1", "--refused", "--json", NULL),
		0);
	assert_string_equal(stub.target, "/api/v1/refusals");
	assert_string_equal(io.out, refusals_json);
	/* --json: the answer as received */
	assert_int_equal(run(&io, 200, "{\"now_ms\":1,\"devices\":[]}", "--url", "http://h:1",
			     "--json", NULL),
			 0);
	assert_string_equal(io.out, "{\"now_ms\":1,\"devices\":[]}\n");
	free(io.out);
	free(io.err);
	rn_test_rmtree(dir);
}

static void test_main_errors(void **state)
{
	(void)state;
	struct io io = {0};
	const char *u = "http://127.0.0.1:9100";
	assert_int_equal(run(&io, 401, "{\"error_code\":\"UNAUTHENTICATED\"}", "--url", u, NULL),
			 1);
	assert_non_null(strstr(io.err, "needs a token"));
	assert_int_equal(run(&io, 401, "", "--url", u, "--token", "t", NULL), 1);
	assert_non_null(strstr(io.err, "the token was not accepted"));
	assert_int_equal(run(&io, 403, "{}", "--url", u, "--token", "t", NULL), 1);
	assert_non_null(strstr(io.err, "console = true"));
	assert_int_equal(run(&io, 404, "not found\n", "--url", u, NULL), 1);
	assert_non_null(strstr(io.err, "older than the fleet API"));
	assert_int_equal(run(&io, 404, "not found\n", "--url", u, "--refused", NULL), 1);
	assert_non_null(strstr(io.err, "has no /api/v1/refusals (404): a runnel-server older than "
				       "its refusal sources"));
	assert_int_equal(run(&io, 400,
			     "{\"error_code\":\"INVALID_ARGUMENT\",\"message\":\"bad state "
			     "\\\"x\\u001b\\\"\"}",
			     "--url", u, "--state", "x", NULL),
			 1);
	assert_non_null(strstr(io.err, "answered HTTP 400: bad state \"x?\""));
	assert_int_equal(run(&io, 200, "<html></html>", "--url", u, NULL), 1);
	assert_non_null(strstr(io.err, "not the fleet API's JSON"));
	assert_int_equal(run(&io, 200, "", "--url", u, NULL), 1);
	assert_non_null(strstr(io.err, "an empty answer"));
	/* a devices answer where refusal sources were asked for */
	assert_int_equal(run(&io, 200, devices_json, "--url", u, "--refused", NULL), 1);
	assert_non_null(strstr(io.err, "/api/v1/refusals: the answer is not the fleet API's JSON"));
	assert_non_null(strstr(io.err, "(no \"sources\" array)"));
	assert_int_equal(io.outlen, 0);
	stub.rc = RN_ECONNECT;
	assert_int_equal(run(&io, 0, "", "--url", u, NULL), 1);
	assert_non_null(strstr(io.err, "Connection refused"));
	stub.rc = 0;
	assert_int_equal(run(&io, 0, "", "-c", "missing.conf", NULL), 1);
	assert_non_null(strstr(io.err, "metrics_listen is not set"));
	assert_int_equal(stub.calls, 0);
	assert_int_equal(run(&io, 0, "", "--url", u, "--token-file", "/nonexistent/tok", NULL), 1);
	assert_non_null(strstr(io.err, "--token-file /nonexistent/tok"));
	assert_int_equal(run(&io, 0, "", "--url", u, "--token", "a\r\nX-Evil: 1", NULL), 1);
	assert_non_null(strstr(io.err, "control character"));
	assert_int_equal(stub.calls, 0);
	free(io.out);
	free(io.err);
}

static void test_main_usage(void **state)
{
	(void)state;
	struct io io = {0};
	const char *u = "http://h:1";
	assert_int_equal(run(&io, 0, "", NULL), 2); /* no server, no default config */
	assert_non_null(strstr(io.err, "which server?"));
	assert_int_equal(run(&io, 0, "", "--url", u, "--bogus", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "-c", "x.conf", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--token", "a", "--token-file", "b", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--order", "up", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--limit", "0", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--limit", "10001", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--timeout", "x", NULL), 2);
	assert_int_equal(run(&io, 0, "", "--url", u, "--refused", "--state", "silent", NULL), 2);
	assert_non_null(strstr(io.err, "--state does not apply to --refused"));
	assert_int_equal(run(&io, 0, "", "--url", u, "--streams", "--refused", NULL), 2);
	assert_non_null(strstr(io.err, "--streams or --refused, not both"));
	assert_int_equal(run(&io, 0, "", "--url", u, "--refused", "--order", "up", NULL), 2);
	assert_int_equal(stub.calls, 0);
	assert_int_equal(run(&io, 0, "", "--help", NULL), 0);
	assert_non_null(strstr(io.out, "usage: runnel-server fleet"));
	free(io.out);
	free(io.err);
}

/* The real GET: a port nobody listens on is "connection refused"; https is refused. */
static void test_httpget_refused(void **state)
{
	(void)state;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), st = 0;
	char url[64], err[256];
	struct rn_buf b = {0};
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd); /* bound, never listened, closed: nobody there */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	assert_int_equal(rn_httpget(url, "/api/v1/devices", NULL, 2000, &st, &b, err, sizeof(err)),
			 RN_ECONNECT);
	assert_non_null(strstr(err, "Connection refused"));
	assert_int_equal(
		rn_httpget("https://127.0.0.1:1", "/", NULL, 2000, &st, &b, err, sizeof(err)),
		RN_EINVAL);
	assert_non_null(strstr(err, "https is not supported"));
	assert_int_equal(
		rn_httpget("http://127.0.0.1:1/api", "/", NULL, 2000, &st, &b, err, sizeof(err)),
		RN_EINVAL);
	assert_int_equal(b.len, 0);
}

/* Each allocation in turn fails: RN_ENOMEM (or exit 1), nothing leaked; then it succeeds. */
static void test_alloc_sweeps(void **state)
{
	(void)state;
	static const char raw[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
	long base = rn_mem_live(), steps = 0;
	for (long n = 1;; n++) {
		struct rn_buf b = {0};
		const char *why = NULL;
		int st, rc;
		rn_mem_fail_after(n);
		rc = rn_httpget_parse(raw, sizeof(raw) - 1, &st, &b, &why);
		int hit = rn_mem_fail_disarm();
		rn_buf_free(&b);
		assert_int_equal(rn_mem_live(), base);
		if (!hit) {
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, RN_ENOMEM);
	}
	for (int which = 0; which < 2; which++) {
		for (long n = 1;; n++) {
			struct rn_buf out = {0};
			const char *why = NULL;
			int rc;
			rn_mem_fail_after(n);
			rc = which ? rn_fleet_cli_refusals(refusals_json, sizeof(refusals_json) - 1,
							   &out, &why)
				   : rn_fleet_cli_devices(devices_json, sizeof(devices_json) - 1,
							  &out, &why);
			int hit = rn_mem_fail_disarm();
			rn_buf_free(&out);
			assert_int_equal(rn_mem_live(), base);
			steps++;
			if (!hit) {
				assert_int_equal(rc, 0);
				break;
			}
			assert_int_equal(rc, RN_ENOMEM);
		}
	}
	assert_true(steps > 10); /* the sweep went through many allocations */
	for (long n = 1;; n++) {
		struct io io = {0};
		int rc;
		FILE *o = open_memstream(&io.out, &io.outlen),
		     *e = open_memstream(&io.err, &io.errlen);
		char *argv[] = {"fleet",   "--url",  "http://127.0.0.1:9100",
				"--state", "silent", NULL};
		stub.status = 200;
		stub.body = devices_json;
		stub.rc = 0;
		rn_mem_fail_after(n);
		rc = rn_fleet_cli_main(5, argv, o, e, &env);
		int hit = rn_mem_fail_disarm();
		fclose(o);
		fclose(e);
		assert_int_equal(rn_mem_live(), base);
		if (!hit) {
			assert_int_equal(rc, 0);
			assert_non_null(strstr(io.out, "truck-7"));
			free(io.out);
			free(io.err);
			break;
		}
		assert_int_equal(rc, 1);
		assert_true(io.errlen > 0);
		free(io.out);
		free(io.err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_content_length),
		cmocka_unit_test(test_parse_chunked),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_devices_table),
		cmocka_unit_test(test_devices_hostile_strings),
		cmocka_unit_test(test_devices_limit_footer),
		cmocka_unit_test(test_not_the_api),
		cmocka_unit_test(test_streams_table),
		cmocka_unit_test(test_refusals_table),
		cmocka_unit_test(test_refusals_hostile_and_missing),
		cmocka_unit_test(test_refusals_not_the_api),
		cmocka_unit_test(test_main_request),
		cmocka_unit_test(test_main_errors),
		cmocka_unit_test(test_main_usage),
		cmocka_unit_test(test_httpget_refused),
		cmocka_unit_test(test_alloc_sweeps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
