/*
 * The REST front's core: which route an HTTP request that is not a gRPC call takes, the
 * table it names (percent-decoded from the path or the query, checked for length and NUL,
 * never truncated), its JSON body split into a record list (the JsonRecordBatch wire form
 * the WAL and the materializer take from gRPC JSON streams), and the JSON error bodies and
 * HTTP statuses it answers with. Pure (no I/O, allocation only through rn_buf), so both HTTP
 * ports (the HTTP/2 main port in front.c, the HTTP/1.1 port in metrics.c) route the same,
 * and it is unit-tested (tests/unit/server/test_rest.c) and fuzzed (tests/fuzz/fuzz_rest.c).
 * What to do with a routed request (authorization, the table, the WAL) is the server's.
 *
 * Routes (docs/protocol.md "REST"):
 *   POST /zerobus/v1/tables/{table}/insert   JSON array of row objects
 *   POST /ingest-record?table_name={table}   one JSON object (the older Zerobus form)
 *   POST /oidc/v1/token                      the OAuth token endpoint
 *   GET  /, /console, /console/...           the web console's files (console.h)
 *   GET  /api/v1/overview, /api/v1/tables, /api/v1/streams, /api/v1/devices,
 *        /api/v1/devices/{device}, /api/v1/refusals   the fleet API (read-only, JSON)
 */
#ifndef RN_REST_H
#define RN_REST_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

enum rn_rest_route {
	RN_REST_OTHER = 0,     /* no such endpoint (404) */
	RN_REST_INSERT,        /* /zerobus/v1/tables/{table}/insert */
	RN_REST_INGEST_RECORD, /* /ingest-record?table_name= */
	RN_REST_TOKEN,         /* /oidc/v1/token */
	RN_REST_CONSOLE,       /* /, /console, /console/...: any method (console.h answers) */
	RN_REST_API_OVERVIEW,  /* GET /api/v1/overview */
	RN_REST_API_TABLES,    /* GET /api/v1/tables */
	RN_REST_API_STREAMS,   /* GET /api/v1/streams */
	RN_REST_API_DEVICES,   /* GET /api/v1/devices */
	RN_REST_API_REFUSALS,  /* GET /api/v1/refusals */
	RN_REST_API_DEVICE,    /* GET /api/v1/devices/{device}; the API routes come last */
	RN_REST_NROUTES
};

/* The route's name for metrics labels ("insert", "ingest_record", "token", "console",
 * "api_overview", "api_tables", "api_streams", "api_devices", "api_refusals", "api_device",
 * "other"). */
const char *rn_rest_route_name(enum rn_rest_route r);

/*
 * Whether the main port should treat a request to `path` as REST whatever its content-type
 * (a path of one of the routes above but the console's, query excluded: a browser's request
 * is not gRPC and comes as REST anyway, a gRPC call to "/" keeps its gRPC answer). 1 or 0.
 */
int rn_rest_is_rest_path(const char *path, size_t len);

/* Where a request goes, or why it goes nowhere. */
struct rn_rest_target {
	enum rn_rest_route route;
	char table[256];   /* INSERT, INGEST_RECORD: decoded, NUL-terminated, no NUL inside */
	char device[260];  /* API_DEVICE: decoded (up to 256 bytes), no NUL inside */
	int http;          /* when refused: the HTTP status */
	const char *code;  /* ... the error_code (static) */
	const char *why;   /* ... the message (static) */
	const char *allow; /* 405: the Allow header value */
};

/*
 * Routes one request: method and path as sent (path without the query; plen its length),
 * query (after '?', NULL or "" = none) and content-type (NULL = absent). Returns 0 with
 * t->route (and t->table) set, or the HTTP status of the refusal with t->code and t->why:
 * 404 (no such endpoint), 405 (not POST; t->allow; the console route takes any method and
 * leaves it to rn_console_answer), 400 (a table name missing, longer than
 * 255 bytes once decoded, holding a NUL, or with a bad %-escape), 414 (path too long to
 * route: plen over RN_REST_PATH_MAX), 501 (a body type other than JSON on an insert route;
 * no content-type is taken as JSON). The token route's body type is the token code's.
 * The /api/v1/ routes take GET only (405 with t->allow "GET" otherwise); a device name longer
 * than 256 bytes decoded, with a NUL or a bad %-escape is 404 (no device has it).
 * t->route is set also on a refusal, for the metrics.
 */
#define RN_REST_PATH_MAX 2048
int rn_rest_route(const char *method, const char *path, size_t plen, const char *query,
		  const char *ctype, struct rn_rest_target *t);

/*
 * Finds parameter `name` in a query or form body ("a=1&b=2"; len bytes) and decodes its value
 * into out as rn_url_unescape (rn_url.h) does (with plus). The first occurrence wins. Returns the
 * decoded length, -1 bad escape, -2 too long, -3 absent.
 */
long rn_rest_param(const char *query, size_t len, const char *name, char *out, size_t cap);

/*
 * Splits a request body into a record list (field 1 repeated, each a JSON object's text as
 * sent) appended to out. `single`: the body is one JSON object (/ingest-record); else a JSON
 * array of objects (an empty array gives no records). *nrows = records appended. 0, RN_EINVAL
 * with why (up to cap bytes) saying what is wrong and, for an element, which one (counted
 * from 0), or RN_ENOMEM (out of memory or out's cap reached). out is left as it was on an
 * error.
 */
int rn_rest_batch(const uint8_t *body, size_t len, int single, struct rn_buf *out, size_t *nrows,
		  char *why, size_t cap);

/* Appends {"error_code":code,"message":msg} (msg escaped; NULL = ""). 0 or RN_ENOMEM. */
int rn_rest_error_body(struct rn_buf *b, const char *code, const char *msg);

/*
 * The HTTP status and error_code answering a gRPC status, as Zerobus maps them:
 * INVALID_ARGUMENT 400 INVALID_PARAMETER_VALUE, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
 * NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501 NOT_IMPLEMENTED, UNAVAILABLE 503
 * TEMPORARILY_UNAVAILABLE, anything else 500 INTERNAL_ERROR.
 */
int rn_rest_http_of_grpc(int grpc_status, const char **code);

/* HTTP statuses counted per route in /metrics; the index of `http` in rn_rest_statuses, or
 * the last one ("other") for a status not listed. */
#define RN_REST_NSTATUS 14
extern const int rn_rest_statuses[RN_REST_NSTATUS];
size_t rn_rest_status_index(int http);

#endif
