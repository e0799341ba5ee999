/*
 * The web console's static files (console/ at the top of the source tree, compiled into the
 * server by console/embed.cmake) and the answer to a request for one: path in, status,
 * headers and bytes out. Pure (no I/O, no allocation: the files are constant data and the
 * answer points into them), so both HTTP ports answer the same and it is unit-tested
 * (tests/unit/server/test_console.c). The console holds no data, so it is public: what it
 * shows comes from /api/v1, with that API's authorization. The REST router (rest.h) sends
 * the paths below here (RN_REST_CONSOLE); the server passes the answer to rn_httpx_respond.
 *
 *   GET|HEAD /                   302 to /console/
 *   GET|HEAD /console            302 to /console/
 *   GET|HEAD /console/           index.html
 *   GET|HEAD /console/<file>     one of the embedded files, else 404
 *   other methods                405 (Allow: GET, HEAD)
 *
 * Every answer carries cache-control, x-content-type-options: nosniff, a strict
 * content-security-policy (only the console's own files and API; no inline script or style)
 * and, for a file, its ETag; If-None-Match naming it (or "*") answers 304 without a body.
 */
#ifndef RN_CONSOLE_H
#define RN_CONSOLE_H

#include <stddef.h>

#include "httpx.h"

/* One embedded file (the generated table, console/embed.cmake). */
struct rn_console_asset {
	const char *name;          /* "app.js" */
	const char *ctype;         /* content-type */
	const char *etag;          /* "\"<16 hex of its SHA-256>\"" */
	const unsigned char *data; /* len bytes (NUL-terminated past len) */
	size_t len;
};
extern const struct rn_console_asset rn_console_assets[];
extern const unsigned rn_console_nassets;

#define RN_CONSOLE_CSP                                                                             \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The embedded file named `name` (len bytes, no '/'), or NULL. */
const struct rn_console_asset *rn_console_find(const char *name, size_t len);

/* An answer: r is ready for rn_httpx_respond and points into hdr and the static data. */
#define RN_CONSOLE_NHDR 6
struct rn_console_answer {
	struct rn_httpx_response r;
	struct rn_httpx_header hdr[RN_CONSOLE_NHDR];
};

/*
 * Answers `method` (NULL = "") for path (plen bytes, without the query) with the request's
 * If-None-Match (NULL = absent). Fills a and returns a->r.status: 200, 304, 302, 404 or 405.
 * HEAD answers as GET with a->r.head set (the adapters send the headers and the length, no
 * body). Paths outside the console (see above) answer 404.
 */
int rn_console_answer(const char *method, const char *path, size_t plen, const char *if_none_match,
		      struct rn_console_answer *a);

#endif
