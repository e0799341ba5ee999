/*
 * Response header and trailer lines of a gRPC call, I/O-free: libcurl hands the uplink one
 * line at a time ("HTTP/2 200", "content-type: application/grpc", later the trailers
 * "grpc-status: 8", "grpc-retry-pushback-ms: 1500"), and this parser keeps what the retry
 * decision needs. Everything here comes from the network, so every value is bounded and
 * checked, and a malformed value is recorded as such, never guessed. The struct lives inside
 * the uplink's per-stream state and is reset for every call. Fuzzed by
 * tests/fuzz/fuzz_uplink_headers.c.
 */
#ifndef RN_UPLINK_HEADERS_H
#define RN_UPLINK_HEADERS_H

#include <stddef.h>
#include <stdint.h>

/* Longest pushback honoured (1 hour): a larger value is taken as this, so a broken or
 * hostile server cannot park a stream for days. */
#define RN_UP_PUSHBACK_MAX_MS ((int64_t)3600 * 1000)

struct rn_up_headers {
	int http_major;         /* 1 or 2 from the status line, 0 until seen */
	int http_status;        /* :status, 0 until seen */
	int grpc_ct;            /* content-type is application/grpc or application/grpc+... */
	char content_type[64];  /* as received (truncated, unprintables as '?'), "" if none */
	int grpc_status;        /* from grpc-status, -1 until seen; a malformed value is UNKNOWN */
	int64_t pushback_ms;    /* grpc-retry-pushback-ms clamped to RN_UP_PUSHBACK_MAX_MS; -1
				   if absent or malformed */
	int pushback_bad;       /* the pushback header was there but not a decimal number */
	char grpc_message[256]; /* percent-decoded, unprintables as '?', truncated */
	int committed_acks;     /* runnel-committed-acks: 1 (acks carry the table's offset) */
	int health;             /* runnel-health: 1 (the server takes the agent's health reports) */
};

void rn_up_headers_reset(struct rn_up_headers *h);

/* Applies one header line as libcurl delivers it (CRLF or LF terminated or not). A status
 * line ("HTTP/<v> <code> ...") starts a new header block and clears what came before it. */
void rn_up_headers_line(struct rn_up_headers *h, const char *line, size_t len);

/* gRPC status for an HTTP status that is not 200, per gRPC's "HTTP to gRPC status code
 * mapping": 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
 * 429/502/503/504 UNAVAILABLE, anything else UNKNOWN. */
int rn_up_http_to_grpc(int http_status);

#endif
