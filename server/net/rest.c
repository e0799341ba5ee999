/* REST routing, names and bodies, pure; see rest.h. */
#include "rest.h"

#include <string.h>
#include <strings.h>

#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_json.h"
#include "rn_pbwire.h"
#include "rn_url.h"

const int rn_rest_statuses[RN_REST_NSTATUS] = {200, 400, 401, 403, 404, 405, 413,
					       414, 415, 429, 500, 501, 503, 0};

static const char *const route_names[RN_REST_NROUTES] = {
	"other",      "insert",      "ingest_record", "token",        "console",   "api_overview",
	"api_tables", "api_streams", "api_devices",   "api_refusals", "api_device"};

#define INSERT_PREFIX "/zerobus/v1/tables/"
#define INSERT_SUFFIX "/insert"
#define INGEST_PATH "/ingest-record"
#define TOKEN_PATH "/oidc/v1/token"
#define CONSOLE_PREFIX "/console/"
#define API_PREFIX "/api/v1/"
#define DEVICE_PREFIX "/api/v1/devices/"

const char *rn_rest_route_name(enum rn_rest_route r)
{
	return (unsigned)r < RN_REST_NROUTES ? route_names[r] : "other";
}

static int has_prefix(const char *p, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len >= n && !memcmp(p, lit, n);
}

static int equals(const char *p, size_t len, const char *lit)
{
	return len == strlen(lit) && !memcmp(p, lit, len);
}

/* The web console (console.h): "/" and "/console" redirect, "/console/..." are its files. */
static int is_console(const char *p, size_t len)
{
	return equals(p, len, "/") || equals(p, len, "/console") ||
	       has_prefix(p, len, CONSOLE_PREFIX);
}

int rn_rest_is_rest_path(const char *path, size_t len)
{
	return has_prefix(path, len, "/zerobus/") || equals(path, len, INGEST_PATH) ||
	       has_prefix(path, len, "/oidc/") || has_prefix(path, len, "/api/");
}

long rn_rest_param(const char *q, size_t len, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && q[end] != '&')
			end++;
		const char *eq = memchr(q + i, '=', end - i);
		size_t klen = eq ? (size_t)(eq - (q + i)) : end - i;
		if (klen == nlen && !memcmp(q + i, name, nlen)) {
			const char *v = eq ? eq + 1 : q + end;
			return rn_url_unescape(v, (size_t)(q + end - v), 1, out, cap);
		}
		i = end + 1;
	}
	return -3;
}

static int refuse(struct rn_rest_target *t, int http, const char *code, const char *why)
{
	t->http = http;
	t->code = code;
	t->why = why;
	return http;
}

/* The decoded table name of a route into t->table; 0 or the refusal. */
static int take_table(struct rn_rest_target *t, long n)
{
	if (n == -2)
		return refuse(t, 400, "INVALID_PARAMETER_VALUE",
			      "table name is longer than 255 bytes");
	if (n == -3 || n == 0)
		return refuse(t, 400, "INVALID_PARAMETER_VALUE", "no table name");
	if (n < 0)
		return refuse(t, 400, "INVALID_PARAMETER_VALUE", "bad %-escape in the table name");
	/* a NUL would cut the name short, to what may be another valid table */
	if (memchr(t->table, 0, (size_t)n))
		return refuse(t, 400, "INVALID_PARAMETER_VALUE", "table name contains a NUL byte");
	return 0;
}

/* application/json, any case, optionally with parameters; absent is taken as JSON. */
static int is_json(const char *ctype)
{
	size_t n = strlen("application/json");
	if (!ctype)
		return 1;
	while (*ctype == ' ')
		ctype++;
	return !strncasecmp(ctype, "application/json", n) &&
	       (ctype[n] == 0 || ctype[n] == ';' || ctype[n] == ' ');
}

/* The fleet API: GET only; a device name decoded from its path segment. */
static int route_api(const char *method, const char *path, size_t plen, struct rn_rest_target *t)
{
	size_t pre = strlen(DEVICE_PREFIX);
	if (equals(path, plen, API_PREFIX "overview"))
		t->route = RN_REST_API_OVERVIEW;
	else if (equals(path, plen, API_PREFIX "tables"))
		t->route = RN_REST_API_TABLES;
	else if (equals(path, plen, API_PREFIX "streams"))
		t->route = RN_REST_API_STREAMS;
	else if (equals(path, plen, API_PREFIX "devices"))
		t->route = RN_REST_API_DEVICES;
	else if (equals(path, plen, API_PREFIX "refusals"))
		t->route = RN_REST_API_REFUSALS;
	else if (plen > pre && has_prefix(path, plen, DEVICE_PREFIX) &&
		 !memchr(path + pre, '/', plen - pre))
		t->route = RN_REST_API_DEVICE;
	else
		return refuse(t, 404, "NOT_FOUND", "no such endpoint");
	if (!method || strcmp(method, "GET")) {
		t->allow = "GET";
		return refuse(t, 405, "METHOD_NOT_ALLOWED", "only GET is allowed here");
	}
	if (t->route == RN_REST_API_DEVICE) {
		/* 256 bytes at most decoded: a longer name is no device's */
		long n = rn_url_unescape(path + pre, plen - pre, 0, t->device, 257);
		if (n <= 0 || memchr(t->device, 0, (size_t)n))
			return refuse(t, 404, "NOT_FOUND", "no such device");
		t->device[n] = 0;
	}
	return 0;
}

int rn_rest_route(const char *method, const char *path, size_t plen, const char *query,
		  const char *ctype, struct rn_rest_target *t)
{
	size_t pre = strlen(INSERT_PREFIX), suf = strlen(INSERT_SUFFIX);
	long n;
	memset(t, 0, sizeof(*t));
	if (plen > RN_REST_PATH_MAX)
		return refuse(t, 414, "INVALID_PARAMETER_VALUE", "request path too long");
	if (plen > pre + suf && has_prefix(path, plen, INSERT_PREFIX) &&
	    !memcmp(path + plen - suf, INSERT_SUFFIX, suf) &&
	    !memchr(path + pre, '/', plen - pre - suf))
		t->route = RN_REST_INSERT;
	else if (equals(path, plen, INGEST_PATH))
		t->route = RN_REST_INGEST_RECORD;
	else if (equals(path, plen, TOKEN_PATH))
		t->route = RN_REST_TOKEN;
	else if (has_prefix(path, plen, API_PREFIX))
		return route_api(method, path, plen, t);
	else if (is_console(path, plen)) {
		t->route = RN_REST_CONSOLE; /* its files, methods and 404s: rn_console_answer */
		return 0;
	} else
		return refuse(t, 404, "NOT_FOUND", "no such endpoint");
	if (!method || strcmp(method, "POST")) {
		t->allow = "POST";
		return refuse(t, 405, "METHOD_NOT_ALLOWED", "only POST is allowed here");
	}
	if (t->route == RN_REST_TOKEN)
		return 0;
	if (t->route == RN_REST_INSERT)
		n = rn_url_unescape(path + pre, plen - pre - suf, 0, t->table, sizeof(t->table));
	else
		n = rn_rest_param(query ? query : "", query ? strlen(query) : 0, "table_name",
				  t->table, sizeof(t->table));
	if (take_table(t, n))
		return t->http;
	if (!is_json(ctype))
		return refuse(t, 501, "NOT_IMPLEMENTED",
			      "only Content-Type: application/json is supported");
	return 0;
}

struct split {
	struct rn_buf *out;
	size_t n;
	int rc;
	char *why;
	size_t cap;
};

static void put_why(char *why, size_t cap, const char *what, size_t i, int indexed)
{
	size_t k = 0;
	char num[24];
	int d = 0;
	if (!cap)
		return;
	if (indexed) {
		size_t v = i;
		do
			num[d++] = (char)('0' + v % 10), v /= 10;
		while (v && d < (int)sizeof(num));
	}
	for (const char *p = indexed ? "row " : ""; *p && k + 1 < cap; p++)
		why[k++] = *p;
	while (d && k + 1 < cap)
		why[k++] = num[--d];
	for (const char *p = what; *p && k + 1 < cap; p++)
		why[k++] = *p;
	why[k] = 0;
}

static int first_char(struct rn_json_span v)
{
	return v.len ? (unsigned char)v.p[0] : -1;
}

static int split_one(void *ctx, size_t i, struct rn_json_span v)
{
	struct split *s = ctx;
	if (first_char(v) != '{') {
		put_why(s->why, s->cap, ": not a JSON object", i, 1);
		return s->rc = RN_EINVAL;
	}
	if ((s->rc = rn_pb_put_bytes(s->out, 1, v.p, v.len))) {
		put_why(s->why, s->cap, ": cannot be buffered", i, 1);
		return s->rc;
	}
	s->n++;
	return 0;
}

int rn_rest_batch(const uint8_t *body, size_t len, int single, struct rn_buf *out, size_t *nrows,
		  char *why, size_t cap)
{
	struct rn_json_span all = {(const char *)body, len};
	size_t was = out->len;
	struct split s = {out, 0, 0, why, cap};
	size_t i = 0;
	*nrows = 0;
	if (!body || rn_json_validate(all.p, all.len)) {
		put_why(why, cap, "body is not valid JSON", 0, 0);
		return RN_EINVAL;
	}
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	all.p += i;
	all.len -= i;
	while (all.len && (all.p[all.len - 1] == ' ' || all.p[all.len - 1] == '\t' ||
			   all.p[all.len - 1] == '\r' || all.p[all.len - 1] == '\n'))
		all.len--;
	if (single) {
		if (first_char(all) != '{') {
			put_why(why, cap, "body is not a JSON object", 0, 0);
			return RN_EINVAL;
		}
		if ((s.rc = rn_pb_put_bytes(out, 1, all.p, all.len))) {
			out->len = was;
			put_why(why, cap, "body cannot be buffered", 0, 0);
			return s.rc;
		}
		*nrows = 1;
		return 0;
	}
	if (first_char(all) != '[') {
		put_why(why, cap, "body is not a JSON array", 0, 0);
		return RN_EINVAL;
	}
	if (rn_json_array_walk(all, split_one, &s) || s.rc) {
		out->len = was;
		if (!s.rc) {
			put_why(why, cap, "body is not a valid JSON array", 0, 0);
			return RN_EINVAL;
		}
		return s.rc;
	}
	*nrows = s.n;
	return 0;
}

int rn_rest_error_body(struct rn_buf *b, const char *code, const char *msg)
{
	if (rn_buf_append_str(b, "{\"error_code\":") || rn_json_put_str(b, code, strlen(code)) ||
	    rn_buf_append_str(b, ",\"message\":") ||
	    rn_json_put_str(b, msg ? msg : "", msg ? strlen(msg) : 0) || rn_buf_append_str(b, "}"))
		return RN_ENOMEM;
	return 0;
}

int rn_rest_http_of_grpc(int st, const char **code)
{
	switch (st) {
	case RN_GRPC_OK: *code = ""; return 200;
	case RN_GRPC_INVALID_ARGUMENT: *code = "INVALID_PARAMETER_VALUE"; return 400;
	case RN_GRPC_UNAUTHENTICATED: *code = "UNAUTHENTICATED"; return 401;
	case RN_GRPC_PERMISSION_DENIED: *code = "PERMISSION_DENIED"; return 403;
	case RN_GRPC_NOT_FOUND: *code = "NOT_FOUND"; return 404;
	case RN_GRPC_RESOURCE_EXHAUSTED: *code = "RESOURCE_EXHAUSTED"; return 429;
	case RN_GRPC_UNIMPLEMENTED: *code = "NOT_IMPLEMENTED"; return 501;
	case RN_GRPC_UNAVAILABLE: *code = "TEMPORARILY_UNAVAILABLE"; return 503;
	default: *code = "INTERNAL_ERROR"; return 500;
	}
}

size_t rn_rest_status_index(int http)
{
	for (size_t i = 0; i + 1 < RN_REST_NSTATUS; i++)
		if (rn_rest_statuses[i] == http)
			return i;
	return RN_REST_NSTATUS - 1;
}
