/*
 * The HTTP/2 + gRPC front: accepts h2c connections (prior knowledge) with libevent, runs one
 * nghttp2 server session per connection, turns each HTTP/2 stream into a gRPC call, deframes
 * (and zstd-decompresses) request messages and hands them to the server logic through the
 * callbacks below; a request that is not a gRPC call (REST) is collected whole and handed to
 * the request callback, which answers through httpx.h. It is the only code that includes
 * nghttp2.h. Responses are queued
 * per call and sent as DATA frames; a call ends with grpc-status trailers (or a
 * trailers-only response before any message). With a struct rn_tls in the options (tls.h) every
 * connection is TLS (libevent's bufferevent_openssl): the handshake, with ALPN h2, comes before
 * the HTTP/2 preface; a client that fails it (plain h2c, no h2, a bad client certificate) is
 * closed at once, counted by reason and logged through the refused-call log limiter.
 *
 * Limits it enforces per connection: SETTINGS_MAX_CONCURRENT_STREAMS (a peer that ignores it
 * gets REFUSED_STREAM, or GOAWAY once it has acknowledged the setting), closing connections
 * idle (no call, no request frame: PINGs and SETTINGS do not count) for idle_timeout,
 * closing connections whose preface or a header block (HEADERS + CONTINUATIONs) is not
 * complete within header_timeout, and closing clients that leave more
 * than slow_bytes of responses unread for slow_timeout (reading from such a client stops
 * meanwhile). HTTP/2 flow-control window is granted by hand (no automatic WINDOW_UPDATE):
 * DATA bytes are handed back once processed, except while the server says it is under
 * pressure (no window at all) or holds one call (that stream's window only).
 *
 * Limits over all connections: at most max_conns at once (a new one beyond is closed at
 * once, counted, logged once per episode); an accept() failure (out of file descriptors,
 * buffers) pauses the listener for a backoff (rn_limits_accept_backoff_ms) instead of
 * retrying in a busy loop, with one log line when the episode starts and one when it ends.
 * An address with more than refuse_throttle refusals in a second (throttle.h) has its
 * connections ended and new ones closed at once for refuse_cooldown. The memory of unfinished
 * request messages, summed over all calls, is capped by partial_budget (partial_account).
 *
 * It listens on one address or several (IPv4 and IPv6 at once); a failed accept() pauses
 * all of them, and max_conns counts connections from any.
 *
 * Lifetime: created by the server on its event base; all calls on the loop thread.
 */
#ifndef RN_FRONT_H
#define RN_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "httpx.h"

struct event_base;
struct rn_front;
struct rn_call;
struct rn_tls;
struct rn_hostport;

/* What the front knows about a call when its headers arrive. */
struct rn_call_info {
	const char *path;
	const char *table; /* x-databricks-zerobus-table-name, or NULL */
	size_t table_len;  /* the header's length as sent; table holds at most 255 bytes of it */
	const char *authorization; /* or NULL */
	const char *boot_id;       /* x-runnel-clock "<boot_id> <boot_us>" well formed, or NULL */
	int64_t boot_us;           /* the agent's CLOCK_BOOTTIME when it opened the call */
	/* identity from the connection's verified client certificate: its first URI
	 * subjectAltName, else its first DNS one; NULL on cleartext or without a certificate */
	const char *peer_identity;
	int tls;            /* the call came over TLS */
	int committed_acks; /* the request sent `runnel-committed-acks: 1` (docs/protocol.md) */
	int health;         /* the request sent `runnel-health: 1` (fleet health reports) */
	const char *peer;   /* "address:port" of the client */
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
	/*
	 * A plain HTTP request (httpx.h): one whose content-type is not application/grpc* (on a
	 * path outside /databricks.zerobus.Zerobus/, where such a request keeps its 405/415
	 * with a gRPC status), or whose path is a REST route (rest.h rn_rest_is_rest_path),
	 * collected whole (the body
	 * capped at max_message: past it, handed at once with body_too_large). NULL = such
	 * requests are refused as before (405/415 with a gRPC status).
	 */
	void (*request)(void *ctx, struct rn_httpx *x);
	/* The client of a request not answered yet went away (httpx.h). */
	void (*request_gone)(void *ctx, struct rn_httpx *x);
	/*
	 * A gRPC call was refused (NULL = not told): before it was opened (call_ctx NULL: not
	 * gRPC, an unknown method, or open returned a status: then right after open), or ended
	 * with a non-zero status and no pushback (rn_call_finish; call_ctx is rn_call_ctx). addr is
	 * the client's address without its port. Once per call; never for what is not a call
	 * (a refused stream, a closed connection, a failed TLS handshake, a throttled address).
	 */
	void (*refused)(void *ctx, void *call_ctx, const char *addr, int status, const char *msg);
};

/* A zeroed struct is valid: any free port on 127.0.0.1, the defaults noted. */
struct rn_front_options {
	const char *host; /* bind address: an IPv4 or IPv6 literal (no brackets)... */
	int port;         /* ...and port, 0 = any free one; both unused with naddrs */
	/* several addresses (rn_addr.h IP literals, at most RN_ADDR_LIST_MAX; not owned, read by
	 * rn_front_create only): one listener each, sharing max_conns, the accept backoff and
	 * everything else; port 0 on several = one free port for all (listensock.h) */
	const struct rn_hostport *addrs;
	size_t naddrs;
	size_t max_message;      /* request message cap after decompression; 0 = 10 MiB */
	uint32_t max_streams;    /* concurrent calls per connection; 0 = 100 */
	int64_t idle_timeout_ms; /* close a connection without calls or traffic; 0 = never */
	size_t slow_bytes;       /* unsent responses a connection may have; 0 = 4 MiB... */
	int64_t slow_timeout_ms; /* ...for longer than this before it is closed */
	struct rn_tls *tls;      /* NULL = cleartext h2c; else TLS with it (not owned; used by
				    rn_front_create only, it must outlive the front) */
	uint32_t max_conns;      /* connections at once; beyond, new ones are closed; 0 = no cap */
	int64_t header_timeout_ms;  /* preface, and each header block, complete within; 0 = never */
	uint32_t refuse_throttle;   /* refusals per second that throttle an address; 0 = off... */
	int64_t refuse_cooldown_ms; /* ...for this long (throttle.h) */
	size_t partial_budget;      /* bytes of unfinished messages over all calls; 0 = no cap */
};

/* Counters and gauges of the front, for /metrics. */
struct rn_front_stats {
	uint64_t conns_open;            /* connections now */
	uint64_t conns_accepted;        /* since start */
	uint64_t closed_idle;           /* closed after idle_timeout */
	uint64_t closed_header_timeout; /* closed: preface or header block late (header_timeout) */
	uint64_t closed_slow;           /* closed as slow clients */
	uint64_t closed_streams;        /* closed for opening streams beyond the limit */
	uint64_t streams_refused;       /* streams refused (REFUSED_STREAM) beyond the limit */
	uint64_t resource_exhausted;    /* calls answered with RESOURCE_EXHAUSTED */
	uint64_t window_withheld;       /* DATA bytes received whose window is not granted back */
	uint64_t stream_holds;          /* times a call's stream window was held */
	uint64_t rejected_max_conns;    /* connections closed at once: max_conns reached */
	uint64_t accept_errors;         /* accept() failures (EMFILE, ENFILE, ENOBUFS...) */
	uint64_t accept_paused;         /* 1 while the listener is paused after accept failures */
	uint64_t rejected_throttled;    /* connections closed at once: their address is throttled */
	uint64_t closed_throttled;      /* open connections ended as their address got throttled */
	uint64_t throttle_episodes;     /* times an address got throttled */
	uint64_t peers_throttled;       /* addresses throttled now */
	uint64_t partial_bytes;         /* memory held for unfinished request messages now */
	uint64_t partial_refused;       /* calls refused for partial_budget */
	uint64_t tls_failed[5];         /* TLS handshakes failed, by enum rn_tls_reason */
	uint64_t malformed;             /* requests reset as malformed (PROTOCOL_ERROR) */
	uint64_t flush_visits;   /* connections visited by rn_front_flush (those with work only) */
	uint64_t yields;         /* loop passes ended early by rn_front_yield */
	uint64_t conns_deferred; /* connections whose input waited for the next pass */
};

/*
 * The per-address refusal throttle (refuse_throttle, refuse_cooldown) for refusals the server
 * decides outside a gRPC call (REST requests on either port): rn_front_note_refusal counts one
 * against addr (the client address without its port) as a refused call is counted, and
 * returns 1 when that throttles addr (its connections to this port are then closed, as for
 * calls); rn_front_throttled says whether addr is throttled now.
 */
int rn_front_note_refusal(struct rn_front *f, const char *addr);
int rn_front_throttled(struct rn_front *f, const char *addr);

/* Listens on opt's addresses (or host:port) and serves on base; opt and h are copied. 0,
 * RN_EINVAL (not an IPv4 or IPv6 literal, too many addresses), RN_EIO (cannot listen on one:
 * none is left open), RN_ENOMEM. */
int rn_front_create(struct rn_front **out, struct event_base *base,
		    const struct rn_front_options *opt, const struct rn_front_handler *h);
/*
 * A reload: takes opt's limits (host and port are ignored: the listener stays). max_message applies
 * to calls opened from now on; max_streams to connections accepted from now on (each connection
 * keeps the SETTINGS it was sent); idle, header, slow_bytes and slow_timeout to every connection
 * at once.
 * 0 or RN_ENOMEM (the tick could not be rescheduled).
 */
int rn_front_set_limits(struct rn_front *f, const struct rn_front_options *opt);
/* Stops accepting and closes every connection (calls get closed()). */
void rn_front_destroy(struct rn_front *f);
/* The bound port of the first address (useful with port 0). */
int rn_front_port(const struct rn_front *f);
/* The bound ports of every address, in order, into ports[0..cap); returns how many there
 * are. */
size_t rn_front_ports(const struct rn_front *f, int *ports, size_t cap);
/* Stops accepting new connections; existing ones go on. */
void rn_front_stop_listening(struct rn_front *f);

/*
 * Server pressure on (non-zero) or off. While on, no connection gets flow-control window back
 * for what it sends (bytes are counted as withheld); switching off grants everything withheld
 * (except streams still held by rn_call_hold_window) and sends the WINDOW_UPDATEs from the
 * loop shortly after. Safe inside the handler callbacks.
 */
void rn_front_set_pressure(struct rn_front *f, int on);
/* Fills st. */
void rn_front_stats(const struct rn_front *f, struct rn_front_stats *st);

/* Queues one response message (framed here) on the call. 0, RN_ENOMEM, RN_EINVAL (finished). */
int rn_call_send(struct rn_call *c, const uint8_t *msg, size_t len);
/* Ends the call with a gRPC status after the queued messages. Idempotent. If the client is
 * still sending when the status goes out, the stream is then reset with NO_ERROR. */
void rn_call_finish(struct rn_call *c, int status, const char *msg);
/*
 * Adds `grpc-retry-pushback-ms: ms` to the call's status (trailers, or the trailers-only
 * response of a call refused by open()); call it before rn_call_finish or before open()
 * returns. ms <= 0 = no such trailer.
 */
void rn_call_set_pushback(struct rn_call *c, int64_t ms);
/*
 * Holds (on) or releases (off) the stream-level flow-control window of one call: while held,
 * DATA bytes it receives are not granted back on its stream (the connection window is), so
 * the peer can send at most one stream window more on it. Safe inside the handler callbacks;
 * the WINDOW_UPDATE of a release goes out with the next send.
 */
void rn_call_hold_window(struct rn_call *c, int on);
void rn_call_set_ctx(struct rn_call *c, void *p);
/* From the open handler only (before the response headers go out): they then carry
 * `runnel-committed-acks: 1`, telling the client its acks will carry the table's watermark. */
void rn_call_answer_committed_acks(struct rn_call *c);
/* From the open handler only: the response headers carry `runnel-health: 1`, telling the
 * client the server takes its health reports (field 1001, docs/protocol.md). */
void rn_call_answer_health(struct rn_call *c);
void *rn_call_ctx(const struct rn_call *c);
int rn_call_persistent(const struct rn_call *c);
/* Inside the message handler only: 1 when the message being handled came compressed
 * (grpc-encoding zstd), with *p / *len set to its bytes as received, a zstd frame that
 * decompresses to the message handed to the handler (valid until the handler returns; the
 * WAL stores it instead of the larger plain form); 0 for a message that came uncompressed. */
int rn_call_wire(const struct rn_call *c, const uint8_t **p, size_t *len);

/* Sends everything calls have queued outside nghttp2 callbacks (e.g. acks after a WAL
 * sync). It visits only connections that have something queued since they were last sent
 * (a pending list kept by rn_call_send, rn_call_finish, window releases and answers):
 * idle connections cost it nothing. */
void rn_front_flush(struct rn_front *f);

/*
 * Ends this loop pass's reading, so that what the pass produced (e.g. the answers of one
 * registry group commit) is flushed before more input is taken: the connection being read
 * stops after the DATA chunk being handled (a message or, rarely, the few that share its
 * chunk), and no connection is read again until the next loop pass. Input a connection has
 * already read is kept (its socket is not read meanwhile) and handled first in the next
 * pass, connections in the order they stopped: one that stopped because of the yield goes
 * after those already waiting, so a connection sending many requests cannot keep the others
 * waiting (round robin by pass). Loop thread; safe inside the handler's callbacks;
 * idempotent within a pass.
 */
void rn_front_yield(struct rn_front *f);
/* Connections whose input already read waits for the next pass (rn_front_yield). */
size_t rn_front_waiting(const struct rn_front *f);

#endif
