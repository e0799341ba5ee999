/*
 * A minimal HTTP/1.1 GET client for operator commands (`runnel-server fleet`): one request
 * per connection (`Connection: close`), cleartext http:// only (no TLS), an optional bearer
 * token, one deadline for the whole exchange, and a capped body (Content-Length, chunked or
 * until close). It does not follow redirects, keep connections or retry. Blocking; no state
 * kept between calls, so any thread may call it. The answer's parsing, rn_httpget_parse, is
 * pure and unit-tested (tests/unit/server/test_fleet_cli.c); the socket part is the thin
 * adapter around it.
 */
#ifndef RN_SERVER_CLI_HTTPGET_H
#define RN_SERVER_CLI_HTTPGET_H

#include <stddef.h>

#include "rn_buf.h"

/* The most bytes of an answer (head and body) read: past it the call fails. */
#define RN_HTTPGET_MAX_BYTES (64u << 20)

/*
 * GET base + target from the server that base ("http://host[:port]", no path) names, with
 * `Authorization: Bearer <bearer>` when bearer is not NULL, within timeout_ms. On 0, *status
 * is the answer's status and body holds its decoded body (any status: the caller judges).
 * Errors, with a sentence in err (cap bytes): RN_EINVAL (base is not an http:// URL;
 * https:// is refused with its reason), RN_ECONNECT (the name does not resolve, or the
 * connection was refused or timed out: err says which), RN_EIO (sending or reading failed,
 * or the deadline passed), RN_EPROTO (not an HTTP/1.x answer), RN_ENOMEM (the body past
 * RN_HTTPGET_MAX_BYTES, or an allocation).
 */
int rn_httpget(const char *base, const char *target, const char *bearer, int timeout_ms,
	       int *status, struct rn_buf *body, char *err, size_t cap);

/*
 * Parses a whole answer as read until the server closed (raw, len): status line, headers,
 * then the body by Transfer-Encoding: chunked, Content-Length or the rest. Appends the body
 * to body. 0, RN_EPROTO (with *why a static reason: no status line, bad chunk, shorter than
 * Content-Length...) or RN_ENOMEM.
 */
int rn_httpget_parse(const char *raw, size_t len, int *status, struct rn_buf *body,
		     const char **why);

#endif
