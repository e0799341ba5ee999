/*
 * The operator's HTTP/1.1 endpoint (libevent's evhttp; the only code that includes it):
 * GET /metrics answers Prometheus text, GET /healthz answers 200 "ok", 200 "degraded: why"
 * (still serving) or 503 with the reason. Every other path is a plain HTTP request handed
 * whole to the server's request callback (httpx.h: the REST routes, answered the same as on
 * the main port), its body capped by rn_metrics_set_limits. It knows nothing of streams,
 * tables or routes: the server hands it the callbacks. Runs on the server's event loop. With
 * rn_metrics_set_tls it speaks HTTPS (the server's TLS context, ALPN http/1.1).
 */
#ifndef RN_METRICS_H
#define RN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "httpx.h"
#include "rn_buf.h"

struct event_base;
struct rn_metrics;
struct rn_hostport;

enum { RN_HEALTH_OK, RN_HEALTH_DOWN, RN_HEALTH_DEGRADED };

struct rn_metrics_handler {
	void *ctx;
	/* Appends the Prometheus text exposition. */
	void (*render)(void *ctx, struct rn_buf *out);
	/* RN_HEALTH_OK; RN_HEALTH_DEGRADED (200 "degraded: why": serving, but something
	 * needs an operator); RN_HEALTH_DOWN (503 with why). */
	int (*health)(void *ctx, char *why, size_t cap);
	/* Any other path (httpx.h); NULL = 404 as before. The exchanges still unanswered when
	 * the port is destroyed get gone() first. */
	void (*request)(void *ctx, struct rn_httpx *x);
	void (*gone)(void *ctx, struct rn_httpx *x);
};

/* Listens on addrs[0..n) (IP literals, rn_addr.h; 1 to RN_ADDR_LIST_MAX; port 0 = one free
 * port shared by all of them, listensock.h; rn_metrics_port tells). 0, RN_EINVAL (n),
 * RN_EIO (cannot listen on one: none is left open), RN_ENOMEM. */
int rn_metrics_create(struct rn_metrics **out, struct event_base *base,
		      const struct rn_hostport *addrs, size_t n,
		      const struct rn_metrics_handler *h);
/* The bound port of the first address. */
int rn_metrics_port(const struct rn_metrics *m);
/* The bound ports of every address, in order, into ports[0..cap); returns how many. */
size_t rn_metrics_ports(const struct rn_metrics *m, int *ports, size_t cap);
/* Serves HTTPS from now on: each connection handshakes on tls (tls.h, not owned; it must
 * outlive m). NULL = plain HTTP again. A handshake that fails (or a client silent for the
 * timeout) is counted by reason (rn_metrics_stats) and logged with the peer, rate-limited. */
struct rn_tls;
void rn_metrics_set_tls(struct rn_metrics *m, struct rn_tls *tls);
/*
 * Limits of the HTTP port (0 = libevent's default for that one): the request line and
 * headers together at most max_header bytes and a body at most max_body (beyond either the
 * connection gets 400/413 and is closed); a connection that does not complete a request, or
 * read a response, within timeout_s seconds is closed. An accept() failure (out of file
 * descriptors) pauses the port's listener for a backoff instead of retrying in a busy loop.
 */
void rn_metrics_set_limits(struct rn_metrics *m, size_t max_header, size_t max_body, int timeout_s);
/*
 * At most max connections open at once (0 = no cap): while that many are, the listeners
 * stop accepting (new connections wait in the kernel's listen backlog, none is closed
 * unread); one log line when it begins, one when it ends.
 */
void rn_metrics_set_max_conns(struct rn_metrics *m, unsigned max);

/* Counters and gauges of the port's connections, for /metrics. */
struct rn_metrics_stats {
	uint64_t conns_open;     /* connections now */
	uint64_t conns_accepted; /* since start */
	uint64_t cap_episodes;   /* times max connections were reached (listeners paused) */
	uint64_t accept_errors;  /* accept() failures (out of file descriptors...) */
	uint64_t accept_paused;  /* 1 while the listeners are paused (cap or accept failure) */
	uint64_t tls_failed[5];  /* TLS handshakes failed, by enum rn_tls_reason */
};
void rn_metrics_stats(const struct rn_metrics *m, struct rn_metrics_stats *st);
void rn_metrics_destroy(struct rn_metrics *m);

/*
 * Helpers for render callbacks, so every family looks the same: rn_metrics_family appends
 * the "# HELP name help" and "# TYPE name type" lines; rn_metrics_sample appends one
 * "name{labels} value" line (labels NULL or "" = none, else e.g. `reason="idle"`).
 * Failures to grow `out` are silent (the exposition is then cut short).
 */
void rn_metrics_family(struct rn_buf *out, const char *name, const char *type, const char *help);
void rn_metrics_sample(struct rn_buf *out, const char *name, const char *labels, double v);

#endif
