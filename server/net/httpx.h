/*
 * One plain HTTP request (not a gRPC call) handed whole to the server, and its answer, the
 * same on both ports: the HTTP/2 main port (front.c, nghttp2) and the HTTP/1.1 port
 * (metrics.c, evhttp) each create an exchange when a request has arrived with its body,
 * call the handler's request(), and send what the server passes to rn_httpx_respond, then
 * or later (e.g. once the WAL is durable). The server routes and answers (rest.h, server.c);
 * the adapters know nothing of routes or JSON.
 *
 * Lifetime: the adapter owns the exchange. The request fields are valid during request()
 * only. The server must call rn_httpx_respond exactly once, unless gone() is called first:
 * a client that went away (connection closed, stream reset, the port shutting down) makes
 * the adapter call gone(), after which the exchange must not be touched. After
 * rn_httpx_respond neither happens and the exchange is not touched either. Loop thread only.
 */
#ifndef RN_HTTPX_H
#define RN_HTTPX_H

#include <stddef.h>
#include <stdint.h>

struct rn_httpx;

struct rn_httpx_request {
	const char *method;        /* "POST", ... */
	const char *path;          /* as sent, without the query (not decoded) */
	size_t path_len;           /* as sent: longer than RN_REST_PATH_MAX means cut */
	const char *query;         /* after '?', or NULL */
	const char *authorization; /* or NULL (absent, or too long to hold) */
	const char *content_type;  /* or NULL */
	const uint8_t *body;       /* the whole body (NULL when empty or too large) */
	size_t body_len;
	int body_too_large;        /* the body passed the port's cap and was not kept */
	const char *peer;          /* "address:port" for logs */
	const char *peer_identity; /* from a verified client certificate, or NULL */
	int tls;                   /* the request came over TLS */
	int http2;                 /* the main port (else the HTTP/1.1 port) */
};

struct rn_httpx_response {
	int status;
	const char *content_type; /* NULL = none */
	const char *hname; /* one extra header (WWW-Authenticate, Retry-After, Allow), or NULL */
	const char *hvalue;
	const uint8_t *body;
	size_t len;
	int no_store; /* adds `cache-control: no-store` (answers holding live data) */
};

struct rn_httpx_ops {
	void (*respond)(struct rn_httpx *x, const struct rn_httpx_response *r);
};

struct rn_httpx {
	const struct rn_httpx_ops *ops; /* the adapter's */
	struct rn_httpx_request req;
	void *ctx; /* the server's, for the exchange's lifetime */
};

struct rn_httpx_handler {
	void *ctx;
	/* A request arrived whole (body included). */
	void (*request)(void *ctx, struct rn_httpx *x);
	/* The client went away before the answer; forget x. */
	void (*gone)(void *ctx, struct rn_httpx *x);
};

/* Sends the answer (copied: r and its strings may go after the call). */
static inline void rn_httpx_respond(struct rn_httpx *x, const struct rn_httpx_response *r)
{
	x->ops->respond(x, r);
}

#endif
