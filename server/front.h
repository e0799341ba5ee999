/*
 * The HTTP/2 + gRPC front: accepts h2c connections (prior knowledge) with libevent, runs one
 * nghttp2 server session per connection, turns each HTTP/2 stream into a gRPC call, deframes
 * (and zstd-decompresses) request messages and hands them to the server logic through the
 * callbacks below. It is the only code that includes nghttp2.h. Responses are queued
 * per call and sent as DATA frames; a call ends with grpc-status trailers (or a
 * trailers-only response before any message). TLS slots in at the bufferevent.
 *
 * Lifetime: created by the server on its event base; all calls on the loop thread.
 */
#ifndef RN_FRONT_H
#define RN_FRONT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct rn_front;
struct rn_call;

/* What the front knows about a call when its headers arrive. */
struct rn_call_info {
	const char *path;
	const char *table;         /* x-databricks-zerobus-table-name, or NULL */
	const char *authorization; /* or NULL */
};

struct rn_front_handler {
	void *ctx;
	/* Headers arrived. Return 0 to accept, or a gRPC status to refuse (with msg). */
	int (*open)(void *ctx, struct rn_call *call, const struct rn_call_info *info,
		    const char **msg);
	/* One whole (decompressed) request message; valid during the call only. */
	void (*message)(void *ctx, struct rn_call *call, const uint8_t *msg, size_t len);
	/* The client finished sending (END_STREAM). */
	void (*half_close)(void *ctx, struct rn_call *call);
	/* The call is gone (finished, reset or connection lost); drop references to it. */
	void (*closed)(void *ctx, struct rn_call *call);
};

struct rn_front_options {
	const char *host;   /* bind address */
	int port;           /* 0 = any free port */
	size_t max_message; /* request message cap after decompression */
};

int rn_front_create(struct rn_front **out, struct event_base *base,
		    const struct rn_front_options *opt, const struct rn_front_handler *h);
/* Stops accepting and closes every connection (calls get closed()). */
void rn_front_destroy(struct rn_front *f);
/* The bound port (useful with port 0). */
int rn_front_port(const struct rn_front *f);
/* Stops accepting new connections; existing ones go on. */
void rn_front_stop_listening(struct rn_front *f);

/* Queues one response message (framed here) on the call. 0, RN_ENOMEM, RN_EINVAL (finished). */
int rn_call_send(struct rn_call *c, const uint8_t *msg, size_t len);
/* Ends the call with a gRPC status after the queued messages. Idempotent. */
void rn_call_finish(struct rn_call *c, int status, const char *msg);
void rn_call_set_ctx(struct rn_call *c, void *p);
void *rn_call_ctx(const struct rn_call *c);
int rn_call_persistent(const struct rn_call *c);

/* Sends everything calls have queued outside nghttp2 callbacks (e.g. acks after a WAL
 * sync). */
void rn_front_flush(struct rn_front *f);

#endif
