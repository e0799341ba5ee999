/*
 * HTTP/2 + gRPC front over libevent and nghttp2; see front.h. One struct conn per TCP
 * connection, one struct rn_call per HTTP/2 stream. Response bodies are produced by a
 * deferred data provider reading the call's `out` buffer; when the call is finished and
 * `out` is drained, the provider ends DATA without END_STREAM and submits the trailers.
 *
 * Flow control is by hand (nghttp2_option_set_no_auto_window_update): every DATA byte is
 * counted as held on its connection and its call, and handed back with
 * nghttp2_session_consume_{connection,stream} once the chunk is processed, unless the
 * server is under pressure or holds the call (server/limits.h decides). A periodic tick
 * closes idle connections and slow clients.
 */
#include "front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_time.h"
#include "../limits.h"
#include "listensock.h"
#include "refuselog.h"
#include "rest.h"
#include "throttle.h"
#include "rn_addr.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_list.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "tls.h"
#include "zbwire.h"

struct conn;

struct rn_call {
	struct conn *conn;
	int32_t sid;
	struct rn_call *next, *prev; /* the connection's calls */
	/* :path, cut at RN_REST_PATH_MAX (path_len as sent), and the authorization value: on
	 * the heap at their sent length, not inline at their caps (6 KB a call; at 50,000 idle
	 * streams 300 MB), "" / NULL until their header came (hdr_dup) */
	char *path;
	size_t path_len;
	char method[8]; /* :method (truncated; only POST matters) */
	size_t method_len;
	char ctype[64]; /* content-type (truncated; its first 17 bytes decide) */
	size_t ctype_len;
	int have_method, have_ctype;
	char table[256];
	size_t table_len; /* as sent: longer than table holds means truncated (the server refuses)
			   */
	char *auth;       /* "Bearer " and a token of up to RN_CONF_HDR_MAX, or NULL */
	char *inm;        /* if-none-match (REST: the console's ETags), or NULL */
	int have_table, have_auth; /* have_auth: present and not longer than AUTH_CAP - 1 */
	char boot_id[64];          /* x-runnel-clock, when it parsed (have_clock) */
	int committed_acks;        /* request: runnel-committed-acks: 1 */
	int committed_acks_answer; /* response headers say runnel-committed-acks: 1 */
	int health;                /* request: runnel-health: 1 */
	int health_answer;         /* response headers say runnel-health: 1 */
	int64_t boot_us;
	int have_clock;
	int zstd; /* grpc-encoding: zstd */
	/* while h.message runs for a message that came compressed: its bytes as received (a
	 * slice of the deframer's input), else NULL (rn_call_wire) */
	const uint8_t *wire;
	size_t wire_len;
	int persistent;
	int opened;    /* open() accepted it */
	int responded; /* response headers submitted */
	int finished;  /* status decided; trailers follow the queued data */
	int trailers_sent;
	int64_t reset_at_us; /* a trailers-only answer left the client's side open: tick_cb
				sends RST_STREAM(NO_ERROR) then, unless the client closed it */
	int status;
	char msg[512];       /* grpc-message of the status (a create refusal explains itself) */
	int64_t pushback_ms; /* > 0: grpc-retry-pushback-ms in the status */
	uint64_t held;       /* DATA bytes whose stream window is not granted back yet */
	size_t partial;      /* bytes its deframer holds, as counted in the front's partial */
	int hold;            /* the server holds this stream's window (rn_call_hold_window) */
	struct rn_grpc_deframer df;
	struct rn_buf out;   /* framed response messages not yet sent */
	struct rn_buf plain; /* decompression scratch */
	void *ctx;
	/* a plain HTTP request (httpx.h) instead of a gRPC call */
	int rest;           /* collected whole and handed to h.request */
	int handed;         /* h.request called */
	int answered;       /* respond called: h.request_gone no longer */
	int too_large;      /* its body passed max_message (discarded) */
	struct rn_buf body; /* the body so far (max: max_message) */
	struct rn_httpx x;
};

struct conn {
	struct rn_front *front;
	struct bufferevent *bev;
	nghttp2_session *ng;
	struct rn_call *calls;
	size_t ncalls;         /* calls in `calls` (= streams nghttp2 counts as open) */
	uint64_t held;         /* DATA bytes whose connection window is not granted back yet */
	int64_t last_req_us;   /* last request frame (HEADERS, DATA) or call end (monotonic);
				* PING, SETTINGS and WINDOW_UPDATE do not count, so they cannot
				* keep an idle connection open */
	int64_t hdr_since_us;  /* awaiting the preface (since accept) or the end of a header
				* block (since its HEADERS frame began); 0 = neither */
	int64_t slow_since_us; /* since when unsent responses exceed slow_bytes; 0 = they don't */
	int read_paused;       /* reading stopped: the output buffer is over slow_bytes */
	int got_frame;         /* a frame arrived (so the preface did) */
	int64_t closing_us;    /* idle GOAWAY submitted at; freed once written (or 1 idle later) */
	char peer[64];         /* "address:port" of the client, for logs */
	char addr[48];         /* the client address alone (the throttle's key) */
	uint32_t max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS as sent to this client */
	int tls;               /* a TLS connection... */
	int handshaken;        /* ...whose handshake is done (calls only come after) */
	char identity[256];    /* peer identity of its verified client certificate, or "" */
	char bad_header[96];   /* why nghttp2 found a header field invalid (error_cb), for the
				  invalid_frame_cb that follows; "" = not known */
	struct conn *next, *prev;
	/* on rn_front.pending while something was queued for it outside its own read/write
	 * callbacks and it has not been sent since (want_flush; flush_conn takes it off) */
	struct rn_list pending;
	size_t queued;  /* sum of its calls' out.len (out_moved): conn_out_bytes without a walk */
	unsigned nlate; /* its calls with reset_at_us set (late_resets walks only if any) */
	/* on rn_front.deferred while input it has read is kept unhandled for the next pass
	 * (rn_front_yield); its socket is not read meanwhile */
	struct rn_list deferred;
};

struct rn_front {
	struct event_base *base;
	struct evconnlistener *listeners[RN_ADDR_LIST_MAX]; /* one per address; NULL = stopped */
	int ports[RN_ADDR_LIST_MAX];                        /* their bound ports */
	size_t nlisteners;
	struct rn_front_handler h;
	struct rn_front_options opt; /* defaults applied */
	struct conn *conns;
	struct event *tick_ev; /* idle and slow-client checks */
	struct event *kick_ev; /* sends what a window release queued, from the loop */
	int pressure;          /* rn_front_set_pressure */
	struct rn_tls *tls;    /* NULL = cleartext */
	size_t nconns;         /* connections in `conns` */
	size_t partial;        /* sum of the calls' `partial`: memory of unfinished messages */
	uint64_t partial_refused_episode; /* calls refused since partial went over budget */
	int partial_over;                 /* partial over budget (until it is below half) */
	/* accept() failing (rn_limits_accept_backoff_ms): the listeners are paused meanwhile (the
	 * failure, out of descriptors or buffers, is the process's, not one socket's) */
	struct event *accept_ev;      /* re-enables the listener after the backoff */
	uint64_t accept_fails;        /* failures in the current episode; 0 = accepting fine */
	int64_t accept_fail_since;    /* when the episode began */
	uint64_t conns_capped;        /* connections closed for max_conns in the current episode */
	struct rn_front_stats st;     /* counters; gauges are computed in rn_front_stats */
	struct rn_refuselog refusals; /* which refused calls get a log line (refuselog.h) */
	struct rn_throttle throttle;  /* addresses refused too often (throttle.h) */
	/* connections with something to send: rn_front_flush's work (want_flush) */
	struct rn_list pending;
	/* rn_front_yield: no input is handled until resume_ev (a zero timeout, so it runs in
	 * the next loop pass, after the answers flushed in this one are written); then the
	 * deferred connections are handled in the order they stopped */
	int yielding;
	struct rn_list deferred;
	size_t ndeferred; /* connections on `deferred` */
	struct event *resume_ev;
};

_Static_assert(RN_TLS_FAIL_N <= sizeof(((struct rn_front_stats *)0)->tls_failed) / sizeof(uint64_t),
	       "rn_front_stats.tls_failed holds every enum rn_tls_reason");
/* bufferevent_openssl_socket_new frees the SSL it fails with from 2.1.10 on (before, it
 * leaked or freed it depending on where it failed) */
#if LIBEVENT_VERSION_NUMBER < 0x02010a00
#error "libevent 2.1.10 or later is needed (bufferevent_openssl_socket_new's ownership of the SSL)"
#endif

#define REFUSAL_LOG_PERIOD_US (10 * 1000000LL)

/* Pseudo statuses of note_refusal: not a gRPC call's status but what the front did. */
#define ST_REFUSED_STREAM -1 /* RST_STREAM(REFUSED_STREAM) */
#define ST_CONN_CLOSED -2    /* the connection was closed */
#define ST_REFUSED_TLS -3    /* the TLS handshake failed */
#define ST_MALFORMED -4      /* RST_STREAM(PROTOCOL_ERROR): a malformed request */

static const char *status_name(int status)
{
	if (status == ST_CONN_CLOSED)
		return "connection closed:";
	if (status == ST_REFUSED_TLS)
		return "TLS_HANDSHAKE";
	if (status == ST_MALFORMED)
		return "PROTOCOL_ERROR";
	return status < 0 ? "REFUSED_STREAM" : rn_grpc_status_name(status);
}

/*
 * Every refused call is logged, but not every one gets a line: the first of its kind (client
 * address, status, reason) does, the rest are counted and summed up once per period by
 * tick_cb (refuselog.h), so 200,000 refusals from a misconfigured client are a few lines.
 */
static void throttle_start(struct rn_front *f, const char *addr);

static void note_refusal(struct conn *c, int status, const char *what, const char *msg)
{
	struct rn_front *f = c->front;
	int64_t now = rn_mono_us();
	if (rn_refuselog_note(&f->refusals, c->peer, status, msg, now))
		rn_log_info("front",
			    "%s: %s refused: %s %s (more like it from this address are "
			    "counted every %lld s)",
			    c->peer, what, status_name(status), msg ? msg : "",
			    (long long)(REFUSAL_LOG_PERIOD_US / 1000000));
	if (rn_throttle_note(&f->throttle, c->addr, now))
		throttle_start(f, c->addr);
}

static void refusal_summary(void *ctx, const struct rn_refuselog_kind *k, uint64_t n)
{
	(void)ctx;
	if (k)
		rn_log_info("front", "%s: %llu more calls refused in the last %lld s: %s %s",
			    k->peer, (unsigned long long)n,
			    (long long)(REFUSAL_LOG_PERIOD_US / 1000000), status_name(k->status),
			    k->reason);
	else
		rn_log_info("front",
			    "%llu more calls refused in the last %lld s (of kinds past the "
			    "per-period limit of lines)",
			    (unsigned long long)n, (long long)(REFUSAL_LOG_PERIOD_US / 1000000));
}

static void conn_free(struct conn *c);

int rn_front_note_refusal(struct rn_front *f, const char *addr)
{
	if (!rn_throttle_note(&f->throttle, addr, rn_mono_us()))
		return 0;
	throttle_start(f, addr);
	return 1;
}

int rn_front_throttled(struct rn_front *f, const char *addr)
{
	return rn_throttle_blocked(&f->throttle, addr, rn_mono_us());
}

/* Unfinished messages smaller than this are never refused below twice the budget: the
 * messages of well-behaved clients are small and finish within a few DATA frames. */
#define PARTIAL_SMALL ((size_t)64 << 10)
/* A deframer buffer larger than this is freed once its message is complete, not kept. */
#define PARTIAL_KEEP ((size_t)64 << 10)
/* The pushback asked of a call refused for the budget: other calls' messages finish by then */
#define PARTIAL_PUSHBACK_MS 1000

/* Puts c on the pending list: the next rn_front_flush sends what was queued for it. */
static void want_flush(struct conn *c)
{
	if (!rn_list_linked(&c->pending))
		rn_list_push(&c->front->pending, &c->pending);
}

/* k->out changed from `before` bytes: keeps the connection's sum of them. */
static void out_moved(struct rn_call *k, size_t before)
{
	k->conn->queued = k->conn->queued + k->out.len - before;
}

static void flush_conn(struct conn *c)
{
	size_t out;
	int rv;
	rn_list_unlink(&c->pending); /* everything queued so far goes now */
	rv = nghttp2_session_send(c->ng);
	if (rv != 0) {
		rn_log_warn("front", "nghttp2 send to %s: %s", c->peer, nghttp2_strerror(rv));
		conn_free(c);
		return;
	}
	out = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) && out == 0) {
		conn_free(c);
		return;
	}
	/* A client that does not read what we send stops being read: whatever it sends next
	 * (PINGs, requests) would only queue more answers. writecb resumes below half. */
	if (out > c->front->opt.slow_bytes && !c->read_paused) {
		bufferevent_disable(c->bev, EV_READ);
		c->read_paused = 1;
	}
}

/* Bytes of responses queued for the peer and not yet taken by the kernel. */
static size_t conn_out_bytes(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) + c->queued;
}

/* Hands back the window of processed DATA that limits.h allows now (k may be NULL). */
static void grant(struct conn *c, struct rn_call *k)
{
	struct rn_limits_grant g = rn_limits_window_grant(&c->held, k ? &k->held : NULL,
							  c->front->pressure, k && k->hold);
	if (g.conn)
		nghttp2_session_consume_connection(c->ng, g.conn);
	if (g.stream)
		nghttp2_session_consume_stream(c->ng, k->sid, g.stream);
}

static void count_status(struct rn_call *k, int status)
{
	if (status == RN_GRPC_RESOURCE_EXHAUSTED)
		k->conn->front->st.resource_exhausted++;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	struct conn *c = user;
	(void)s;
	(void)flags;
	if (bufferevent_write(c->bev, data, len))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static char no_path[1]; /* a call's path until its :path header (never written to) */

static void call_unlink_free(struct rn_call *k)
{
	struct conn *c = k->conn;
	if (k->opened && c->front->h.closed)
		c->front->h.closed(c->front->h.ctx, k);
	if (k->handed && !k->answered && c->front->h.request_gone)
		c->front->h.request_gone(c->front->h.ctx, &k->x);
	c->ncalls--;
	c->last_req_us = rn_mono_us(); /* idle counts from the end of the last call */
	c->front->partial -= k->partial;
	c->queued -= k->out.len;
	c->nlate -= k->reset_at_us != 0;
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	rn_grpc_deframer_free(&k->df);
	rn_buf_free(&k->out);
	rn_buf_free(&k->plain);
	rn_buf_free(&k->body);
	if (k->path != no_path)
		rn_free(k->path);
	rn_free(k->auth);
	rn_free(k->inm);
	rn_free(k);
}

static ssize_t data_read_cb(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
			    uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct rn_call *k = src->ptr;
	(void)user;
	(void)sid;
	if (k->out.len) {
		size_t n = k->out.len < len ? k->out.len : len;
		memcpy(buf, k->out.data, n);
		rn_buf_consume(&k->out, n);
		k->conn->queued -= n;
		return (ssize_t)n;
	}
	if (!k->finished)
		return NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	if (!k->trailers_sent) {
		char status[16], pb[24];
		struct rn_buf m = {0};
		size_t n = 1;
		snprintf(status, sizeof(status), "%d", k->status);
		snprintf(pb, sizeof(pb), "%lld", (long long)k->pushback_ms);
		rn_grpc_message_encode(&m, k->msg);
		nghttp2_nv tr[3] = {
			{(uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status),
			 NGHTTP2_NV_FLAG_NONE},
		};
		if (k->msg[0])
			tr[n++] = (nghttp2_nv){(uint8_t *)"grpc-message",
					       m.data ? m.data : (uint8_t *)"", 12, m.len,
					       NGHTTP2_NV_FLAG_NONE};
		if (k->pushback_ms > 0)
			tr[n++] = (nghttp2_nv){(uint8_t *)"grpc-retry-pushback-ms", (uint8_t *)pb,
					       22, strlen(pb), NGHTTP2_NV_FLAG_NONE};
		nghttp2_submit_trailer(s, k->sid, tr, n);
		rn_buf_free(&m);
		k->trailers_sent = 1;
	}
	return 0;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE     \
	}

static void respond_headers(struct rn_call *k)
{
	nghttp2_nv hdrs[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		NV("grpc-encoding", "identity"),
		NV("grpc-accept-encoding", "identity,zstd"),
		NV("runnel-committed-acks", "1"),
		NV("runnel-health", "1"),
	};
	size_t n = 4;
	if (k->committed_acks_answer)
		hdrs[n++] = (nghttp2_nv)NV("runnel-committed-acks", "1");
	if (k->health_answer)
		hdrs[n++] = (nghttp2_nv)NV("runnel-health", "1");
	nghttp2_data_provider dp = {.source.ptr = k, .read_callback = data_read_cb};
	nghttp2_submit_response(k->conn->ng, k->sid, hdrs, n, &dp);
	k->responded = 1;
}

/* A response with only headers: for calls refused before any message. `http` is the HTTP
 * status (200 for a gRPC call; 405/415 for a request that is not one, as gRPC servers do). */
static void respond_headers_only(struct rn_call *k, int http, int status, const char *msg)
{
	char hs[8], st[16], pb[24];
	struct rn_buf m = {0};
	snprintf(hs, sizeof(hs), "%d", http);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(pb, sizeof(pb), "%lld", (long long)k->pushback_ms);
	rn_grpc_message_encode(&m, msg ? msg : "");
	nghttp2_nv hdrs[] = {
		NV(":status", hs),
		NV("content-type", "application/grpc"),
		{(uint8_t *)"grpc-status", (uint8_t *)st, 11, strlen(st), NGHTTP2_NV_FLAG_NONE},
		{(uint8_t *)"grpc-message", m.data ? m.data : (uint8_t *)"", 12, m.len,
		 NGHTTP2_NV_FLAG_NONE},
		{(uint8_t *)"grpc-retry-pushback-ms", (uint8_t *)pb, 22, strlen(pb),
		 NGHTTP2_NV_FLAG_NONE},
	};
	count_status(k, status);
	nghttp2_submit_response(k->conn->ng, k->sid, hdrs, k->pushback_ms > 0 ? 5 : 4, NULL);
	k->responded = k->finished = k->trailers_sent = 1;
	rn_buf_free(&m);
}

static void respond_trailers_only(struct rn_call *k, int status, const char *msg)
{
	respond_headers_only(k, 200, status, msg);
}

/* Refuses a call before it is opened: logged (rate-limited), then answered. */
static void refuse(struct rn_call *k, int http, int status, const char *msg)
{
	struct rn_front *f = k->conn->front;
	note_refusal(k->conn, status, "call", msg);
	if (f->h.refused)
		f->h.refused(f->h.ctx, NULL, k->conn->addr, status, msg);
	respond_headers_only(k, http, status, msg);
}

/*
 * Plain HTTP requests (REST; httpx.h). The request is collected whole in k->body and handed
 * to the server at END_STREAM (or at once when the body passes max_message: the server then
 * answers 413 and the rest of the upload is discarded); the answer is one HEADERS frame and
 * the body as DATA ending the stream (a client still uploading then gets RST_STREAM
 * NO_ERROR a second later: frame_send_cb). A stream that closes before the answer tells
 * the server through request_gone (call_unlink_free).
 */
static ssize_t rest_read_cb(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
			    uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct rn_call *k = src->ptr;
	size_t n = k->out.len < len ? k->out.len : len;
	(void)s;
	(void)sid;
	(void)user;
	if (n) {
		memcpy(buf, k->out.data, n);
		rn_buf_consume(&k->out, n);
		k->conn->queued -= n;
	}
	if (!k->out.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void rest_respond(struct rn_httpx *x, const struct rn_httpx_response *r)
{
	struct rn_call *k = (struct rn_call *)(void *)((char *)x - offsetof(struct rn_call, x));
	char st[8], cl[24], hn[1 + RN_HTTPX_MAX_HEADERS][64];
	nghttp2_nv h[5 + RN_HTTPX_MAX_HEADERS];
	size_t n = 0, len = r->len;
	int status = r->status;
	nghttp2_data_provider dp = {.source.ptr = k, .read_callback = rest_read_cb};
	size_t before = k->out.len;
	if (k->answered)
		return;
	k->answered = k->responded = k->finished = k->trailers_sent = 1;
	rn_buf_reset(&k->out);
	if (len && !r->head && rn_buf_append(&k->out, r->body, len)) {
		status = 500; /* out of memory: the status alone */
		len = 0;
	}
	out_moved(k, before);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(cl, sizeof(cl), "%zu", len);
	h[n++] = (nghttp2_nv)NV(":status", st);
	if (r->content_type && len)
		h[n++] = (nghttp2_nv)NV("content-type", r->content_type);
	if (status != 304)
		h[n++] = (nghttp2_nv)NV("content-length", cl);
	if (r->no_store)
		h[n++] = (nghttp2_nv)NV("cache-control", "no-store");
	for (size_t j = 0; j <= r->nheaders && j <= RN_HTTPX_MAX_HEADERS; j++) {
		/* the one extra header first, then the list */
		const char *name = j ? r->headers[j - 1].name : r->hname;
		const char *value = j ? r->headers[j - 1].value : r->hvalue;
		size_t i = 0;
		if (!name || !value || strlen(name) >= sizeof(hn[j]))
			continue;
		/* HTTP/2 header names are lower case (RFC 9113 8.2.1) */
		for (; name[i]; i++)
			hn[j][i] =
				(char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
		h[n++] = (nghttp2_nv){(uint8_t *)hn[j], (uint8_t *)value, i, strlen(value),
				      NGHTTP2_NV_FLAG_NONE};
	}
	nghttp2_submit_response(k->conn->ng, k->sid, h, n, len && !r->head ? &dp : NULL);
	/* sent from the loop: the answer may come from outside any callback of this conn */
	want_flush(k->conn);
	event_active(k->conn->front->kick_ev, 0, 0);
}

static const struct rn_httpx_ops rest_ops = {.respond = rest_respond};

static void rest_hand(struct rn_call *k)
{
	struct rn_front *f = k->conn->front;
	char *q = strchr(k->path, '?');
	if (k->handed)
		return;
	k->handed = 1;
	if (q)
		*q++ = 0;
	k->x.ops = &rest_ops;
	k->x.req = (struct rn_httpx_request){
		.method = k->have_method ? k->method : "",
		.path = k->path,
		/* a path cut short keeps its length as sent, which the router refuses */
		.path_len = k->path_len > RN_REST_PATH_MAX ? k->path_len : strlen(k->path),
		.query = q,
		.authorization = k->have_auth ? k->auth : NULL,
		.content_type = k->have_ctype ? k->ctype : NULL,
		.if_none_match = k->inm,
		.body = k->too_large ? NULL : k->body.data,
		.body_len = k->too_large ? 0 : k->body.len,
		.body_too_large = k->too_large,
		.peer = k->conn->peer,
		/* a principal may be its certificate (docs/security.md), for REST as for gRPC */
		.peer_identity = k->conn->identity[0] ? k->conn->identity : NULL,
		.tls = k->conn->tls,
		.http2 = 1,
	};
	f->h.request(f->h.ctx, &k->x);
}

int rn_call_send(struct rn_call *k, const uint8_t *msg, size_t len)
{
	int rc;
	size_t before = k->out.len;
	if (k->finished)
		return RN_EINVAL;
	rc = rn_grpc_frame_append(&k->out, 0, msg, len);
	out_moved(k, before);
	if (rc)
		return rc;
	nghttp2_session_resume_data(k->conn->ng, k->sid);
	want_flush(k->conn);
	return 0;
}

void rn_call_finish(struct rn_call *k, int status, const char *msg)
{
	if (k->finished)
		return;
	want_flush(k->conn);
	/* refusals with a pushback come in bursts under pressure; the server logs the episode */
	if (status != 0 && k->pushback_ms > 0)
		rn_log_debug("front", "call %d on %s ends: %s %s", k->sid, k->path,
			     rn_grpc_status_name(status), msg ? msg : "");
	else if (status != 0) {
		note_refusal(k->conn, status, "call", msg);
		if (k->conn->front->h.refused)
			k->conn->front->h.refused(k->conn->front->h.ctx, k->ctx, k->conn->addr,
						  status, msg);
	}
	if (!k->responded) {
		respond_trailers_only(k, status, msg);
		return;
	}
	count_status(k, status);
	k->finished = 1;
	k->status = status;
	snprintf(k->msg, sizeof(k->msg), "%s", msg ? msg : "");
	nghttp2_session_resume_data(k->conn->ng, k->sid);
}

void rn_call_set_ctx(struct rn_call *k, void *p)
{
	k->ctx = p;
}

void rn_call_answer_committed_acks(struct rn_call *k)
{
	k->committed_acks_answer = 1;
}

void rn_call_answer_health(struct rn_call *k)
{
	k->health_answer = 1;
}

void *rn_call_ctx(const struct rn_call *k)
{
	return k->ctx;
}

int rn_call_persistent(const struct rn_call *k)
{
	return k->persistent;
}

int rn_call_wire(const struct rn_call *k, const uint8_t **p, size_t *len)
{
	if (!k->wire)
		return 0;
	*p = k->wire;
	*len = k->wire_len;
	return 1;
}

void rn_call_set_pushback(struct rn_call *k, int64_t ms)
{
	k->pushback_ms = ms;
}

void rn_call_hold_window(struct rn_call *k, int on)
{
	struct rn_front *f = k->conn->front;
	if (on && !k->hold)
		f->st.stream_holds++;
	k->hold = on != 0;
	if (!on && k->held) {
		grant(k->conn, k);
		want_flush(k->conn);
		event_active(f->kick_ev, 0, 0);
	}
}

/*
 * Every frame header, before its payload: the header timeout's clock. A HEADERS frame opens
 * a header block (closed by frame_recv_cb or invalid_frame_cb once the block, CONTINUATIONs
 * included, is in); any other frame but CONTINUATION means no block is open (HTTP/2 allows
 * nothing between the frames of a block), which also covers a block nghttp2 ignored
 * without a callback. The first frame of all means the preface arrived.
 */
static int begin_frame_cb(nghttp2_session *s, const nghttp2_frame_hd *hd, void *user)
{
	struct conn *c = user;
	(void)s;
	c->got_frame = 1;
	if (hd->type == NGHTTP2_HEADERS)
		c->hdr_since_us = rn_mono_us();
	else if (hd->type != NGHTTP2_CONTINUATION)
		c->hdr_since_us = 0;
	return 0;
}

static int begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct rn_call *k;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (!(k = rn_calloc(1, sizeof(*k))))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	k->conn = c;
	k->path = no_path;
	c->ncalls++;
	k->sid = f->hd.stream_id;
	k->df.max_msg = c->front->opt.max_message;
	k->out.max = (size_t)64 << 20;
	k->next = c->calls;
	if (c->calls)
		c->calls->prev = k;
	c->calls = k;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, k);
	return 0;
}

static void copy_hdr(char *dst, size_t cap, const uint8_t *v, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

#define AUTH_CAP (RN_CONF_HDR_MAX + 64) /* authorization values this long or longer: absent */
#define INM_CAP 256                     /* if-none-match values this long or longer: absent */

/* *dst = a copy of v cut at cap - 1 bytes, on the heap (the old copy freed unless `keep`).
 * 0, or -1 when out of memory (*dst unchanged). */
static int hdr_dup(char **dst, const char *keep, const uint8_t *v, size_t len, size_t cap)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	char *p = rn_malloc(n + 1);
	if (!p)
		return -1;
	memcpy(p, v, n);
	p[n] = 0;
	if (*dst != keep)
		rn_free(*dst);
	*dst = p;
	return 0;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct rn_call *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	(void)flags;
	(void)user;
	if (!k || f->hd.type != NGHTTP2_HEADERS)
		return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && !memcmp(name, lit, namelen))
	if (IS(":path")) {
		if (hdr_dup(&k->path, no_path, value, valuelen, RN_REST_PATH_MAX + 1))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* out of memory: reset */
		k->path_len = valuelen;
	} else if (IS(":method")) {
		copy_hdr(k->method, sizeof(k->method), value, valuelen);
		k->method_len = strlen(k->method);
		k->have_method = 1;
	} else if (IS("content-type")) {
		copy_hdr(k->ctype, sizeof(k->ctype), value, valuelen);
		k->ctype_len = strlen(k->ctype);
		k->have_ctype = 1;
	} else if (IS("x-databricks-zerobus-table-name")) {
		copy_hdr(k->table, sizeof(k->table), value, valuelen);
		k->table_len = valuelen;
		k->have_table = 1;
	} else if (IS("authorization")) {
		/* a value too long for auth is taken as missing, never truncated (a prefix
		 * could be a valid token) */
		k->have_auth = 0;
		if (valuelen < AUTH_CAP) {
			if (hdr_dup(&k->auth, NULL, value, valuelen, AUTH_CAP))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			k->have_auth = 1;
		}
	} else if (IS("if-none-match")) {
		/* a list too long to hold is taken as missing: the file is sent */
		if (valuelen < INM_CAP && hdr_dup(&k->inm, NULL, value, valuelen, INM_CAP))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (IS("x-runnel-clock")) {
		k->have_clock = rn_zb_parse_clock(value, valuelen, k->boot_id, sizeof(k->boot_id),
						  &k->boot_us) == 0;
	} else if (IS("runnel-committed-acks")) {
		k->committed_acks = valuelen == 1 && value[0] == '1';
	} else if (IS("runnel-health")) {
		k->health = valuelen == 1 && value[0] == '1';
	} else if (IS("grpc-encoding")) {
		k->zstd = valuelen == 4 && !memcmp(value, "zstd", 4);
		if (!k->zstd && !(valuelen == 8 && !memcmp(value, "identity", 8)))
			k->zstd = -1; /* an encoding we do not support */
	}
#undef IS
	return 0;
}

#define ZB_SERVICE "/databricks.zerobus.Zerobus/"

static void open_call(struct rn_call *k)
{
	struct rn_front *fr = k->conn->front;
	const char *msg = NULL;
	int st, http;

	/* not gRPC at all (a REST client, a browser): the server's plain HTTP handler, except on
	 * the Zerobus service's paths, where a misconfigured gRPC client gets the HTTP error
	 * with a grpc-status, as gRPC servers answer (never 200) */
	http = rn_zb_http_check(k->have_method ? (const uint8_t *)k->method : NULL, k->method_len,
				k->have_ctype ? (const uint8_t *)k->ctype : NULL, k->ctype_len, &st,
				&msg);
	if (fr->h.request && (rn_rest_is_rest_path(k->path, strcspn(k->path, "?")) ||
			      (http && strncmp(k->path, ZB_SERVICE, sizeof(ZB_SERVICE) - 1)))) {
		k->rest = 1;
		k->body.max = fr->opt.max_message;
		return;
	}
	if (http) {
		refuse(k, http, st, msg);
		return;
	}
	if (!strcmp(k->path, "/databricks.zerobus.Zerobus/PersistentStream")) {
		k->persistent = 1;
	} else if (strcmp(k->path, "/databricks.zerobus.Zerobus/EphemeralStream") &&
		   strcmp(k->path, "/databricks.zerobus.Zerobus/RetireStream")) {
		/* RetireStream is unary: one request, one status; the server tells it by path */
		refuse(k, 200, RN_GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (k->zstd < 0) {
		refuse(k, 200, RN_GRPC_UNIMPLEMENTED,
		       "unsupported grpc-encoding (use identity or zstd)");
		return;
	}
	struct rn_call_info info = {k->path,
				    k->have_table ? k->table : NULL,
				    k->table_len,
				    k->have_auth ? k->auth : NULL,
				    k->have_clock ? k->boot_id : NULL,
				    k->boot_us,
				    k->conn->identity[0] ? k->conn->identity : NULL,
				    k->conn->tls,
				    k->committed_acks,
				    k->health,
				    k->conn->peer};
	if ((st = fr->h.open(fr->h.ctx, k, &info, &msg)) != 0) {
		refuse(k, 200, st, msg);
		return;
	}
	k->opened = 1;
	respond_headers(k);
}

static int frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct rn_call *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	struct conn *c = user;
	struct rn_front *fr = c->front;
	if (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)
		c->last_req_us = rn_mono_us();
	if (f->hd.type == NGHTTP2_HEADERS)
		c->hdr_since_us = 0; /* the whole block, CONTINUATIONs included */
	if (!k)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		open_call(k);
	if (k->rest) {
		if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
		    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			rest_hand(k);
		return 0;
	}
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !k->finished) {
		if (rn_grpc_deframer_partial(&k->df))
			rn_call_finish(k, RN_GRPC_INVALID_ARGUMENT,
				       "stream ended inside a gRPC message");
		else if (k->opened && fr->h.half_close)
			fr->h.half_close(fr->h.ctx, k);
		else
			rn_call_finish(k, RN_GRPC_OK, NULL);
	}
	return 0;
}

/* Deframes the DATA bytes of one call and hands the whole messages to the server. */
static void data_chunk(struct rn_front *fr, struct rn_call *k, const uint8_t *data, size_t len,
		       char *why, size_t cap)
{
	while (k && len && !k->finished && k->opened) {
		struct rn_grpc_msg m;
		size_t used;
		int rc = rn_grpc_deframe(&k->df, data, len, &used, &m);
		data += used;
		len -= used;
		if (rc < 0) {
			rn_log_debug("front", "bad frame bytes: %02x %02x %02x %02x %02x (len %zu)",
				     len ? data[0] : 0, len > 1 ? data[1] : 0,
				     len > 2 ? data[2] : 0, len > 3 ? data[3] : 0,
				     len > 4 ? data[4] : 0, len);
			if (rc == RN_ETOOBIG) {
				snprintf(
					why, cap,
					"request message larger than max_message_bytes (%zu bytes)",
					fr->opt.max_message);
				rn_call_finish(k, RN_GRPC_RESOURCE_EXHAUSTED, why);
			} else {
				rn_call_finish(k, RN_GRPC_INVALID_ARGUMENT, "malformed gRPC frame");
			}
			return;
		}
		if (rc == 0)
			break;
		if (m.compressed) {
			if (k->zstd != 1) {
				rn_call_finish(k, RN_GRPC_INVALID_ARGUMENT,
					       "compressed message without grpc-encoding");
				return;
			}
			rn_buf_reset(&k->plain);
			rc = rn_zstd_decompress(&k->plain, m.data, m.len, fr->opt.max_message);
			if (rc == RN_ETOOBIG) {
				snprintf(why, cap,
					 "decompressed request message larger than "
					 "max_message_bytes "
					 "(%zu bytes)",
					 fr->opt.max_message);
				rn_call_finish(k, RN_GRPC_RESOURCE_EXHAUSTED, why);
				return;
			}
			if (rc) {
				rn_call_finish(k, RN_GRPC_INVALID_ARGUMENT,
					       "cannot decompress message");
				return;
			}
			k->wire = m.data;
			k->wire_len = m.len;
			fr->h.message(fr->h.ctx, k, k->plain.data, k->plain.len);
			k->wire = NULL;
		} else {
			fr->h.message(fr->h.ctx, k, m.data, m.len);
		}
	}
}

/*
 * The global budget of unfinished request messages (partial_budget): the memory each call's
 * deframer holds is summed in f->partial after every DATA chunk. Over the budget, a call
 * adding to an unfinished message larger than PARTIAL_SMALL (and over twice the budget, any
 * call adding to one) ends with RESOURCE_EXHAUSTED and a pushback, its buffer freed: whoever
 * holds large unfinished messages pays, not the small messages of everyone else. Withholding
 * window instead would not bound memory (each stream has its initial window anyway) and
 * would stall the same clients with no status to tell them why.
 */
static void partial_account(struct rn_front *f, struct rn_call *k)
{
	struct rn_buf *p = &k->df.pending;
	if (!p->len && p->cap > PARTIAL_KEEP)
		rn_grpc_deframer_free(&k->df);
	f->partial = f->partial - k->partial + p->cap;
	k->partial = p->cap;
	if (!f->opt.partial_budget || f->partial <= f->opt.partial_budget || k->finished || !p->len)
		return;
	if (!f->partial_over) {
		f->partial_over = 1;
		f->partial_refused_episode = 0;
		rn_log_warn(
			"front",
			"unfinished request messages hold %zu bytes (partial_budget_bytes %zu): "
			"calls adding to large ones get RESOURCE_EXHAUSTED",
			f->partial, f->opt.partial_budget);
	}
	if (p->len <= PARTIAL_SMALL && f->partial <= 2 * f->opt.partial_budget)
		return;
	f->st.partial_refused++;
	f->partial_refused_episode++;
	rn_call_set_pushback(k, PARTIAL_PUSHBACK_MS);
	rn_call_finish(k, RN_GRPC_RESOURCE_EXHAUSTED,
		       "server's budget for unfinished messages (partial_budget_bytes) is used up; "
		       "retry later");
	rn_grpc_deframer_free(&k->df);
	f->partial -= k->partial;
	k->partial = 0;
}

static int data_chunk_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
			 size_t len, void *user)
{
	struct conn *c = user;
	struct rn_call *k = nghttp2_session_get_stream_user_data(s, sid);
	struct rn_front *fr = c->front;
	char why[160];
	(void)flags;
	/* Counted before processing, granted after: the server may turn pressure or this
	 * call's hold on while it handles the messages in this chunk. */
	c->held += len;
	if (k)
		k->held += len;
	if (k && k->rest) {
		/* past max_message (or out of memory) the body is dropped and the server told
		 * at once (it answers 413); what comes after is discarded */
		if (!k->too_large && !k->handed && rn_buf_append(&k->body, data, len)) {
			k->too_large = 1;
			rn_buf_free(&k->body);
			rest_hand(k);
		}
	} else {
		data_chunk(fr, k, data, len, why, sizeof(why));
		partial_account(fr, k);
	}
	grant(c, k);
	/* the server ended the pass (rn_front_yield): the rest of the input waits for the next */
	return fr->yielding ? NGHTTP2_ERR_PAUSE : 0;
}

/*
 * After a call's trailers while the client is still sending: RST_STREAM(NO_ERROR), as gRPC servers
 * do (RFC 9113 8.1), so the client stops uploading into a finished call and sees it end now
 * (libcurl 7.88 holds the trailers of a stream whose upload is open until the stream is closed).
 * Data already on the way is discarded by nghttp2.
 *
 * Not after a trailers-only answer (a refusal: one HEADERS frame with END_STREAM), nor after
 * a plain HTTP answer (REST, which may come before the whole body, as 413 does): libcurl
 * 7.88 drops the response headers of a stream whose HEADERS and RST_STREAM it reads in one
 * go, so the client would never see the status, and with its upload paused would never see
 * the end either (uplink.c end_unread_calls). END_STREAM on that one frame already tells
 * every client the call is over. A client that keeps its side open after it anyway (it may
 * never close it, holding a stream slot and keeping the connection from being idle) is
 * reset LATE_RESET_US later by tick_cb, long after any client has read the answer.
 */
#define LATE_RESET_US ((int64_t)1000000)

static int frame_send_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct rn_call *k;
	(void)user;
	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) != 0)
		return 0;
	k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if ((f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) ||
	    (f->hd.type == NGHTTP2_DATA && k && k->rest)) {
		/* late: the answer first (a REST answer before the whole body, e.g. 413, is
		 * read by libcurl 7.88 only without a reset in the same read; the rest of the
		 * upload is granted window and discarded meanwhile) */
		if (k) {
			k->conn->nlate += !k->reset_at_us;
			k->reset_at_us = rn_mono_us() + LATE_RESET_US;
		}
		return 0;
	}
	if (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int stream_close_cb(nghttp2_session *s, int32_t sid, uint32_t code, void *user)
{
	struct rn_call *k = nghttp2_session_get_stream_user_data(s, sid);
	(void)code;
	(void)user;
	if (k) {
		nghttp2_session_set_stream_user_data(s, sid, NULL);
		call_unlink_free(k);
	}
	return 0;
}

static void conn_free(struct conn *c)
{
	struct rn_front *f = c->front;
	while (c->calls)
		call_unlink_free(c->calls);
	rn_list_unlink(&c->pending);
	if (rn_list_linked(&c->deferred)) {
		rn_list_unlink(&c->deferred);
		f->ndeferred--;
	}
	nghttp2_session_del(c->ng);
	bufferevent_free(c->bev);
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	f->nconns--;
	rn_free(c);
}

/*
 * nghttp2 describes an invalid header field here ("... name: [n], value: [v]") just before
 * it resets the stream (invalid_frame_cb). Only the name is kept, and only to say why: the
 * value may be a credential and never reaches a log.
 */
static int error_cb(nghttp2_session *s, int lib_err, const char *msg, size_t len, void *user)
{
	struct conn *c = user;
	const char *n = lib_err == NGHTTP2_ERR_HTTP_HEADER ? strstr(msg, "name: [") : NULL;
	const char *e = n ? strstr(n, "], value: [") : NULL;
	char name[40];
	size_t nl = 0;
	int upper = 0;
	(void)s;
	(void)len;
	if (!e)
		return 0;
	for (n += 7; n < e && nl < sizeof(name) - 1; n++) {
		upper |= *n >= 'A' && *n <= 'Z';
		name[nl++] = *n > 0x20 && *n < 0x7f ? *n : '?';
	}
	name[nl] = 0;
	if (upper)
		snprintf(c->bad_header, sizeof(c->bad_header),
			 "header names must be lower case in HTTP/2 (got \"%s\")", name);
	else
		snprintf(c->bad_header, sizeof(c->bad_header), "invalid header field \"%s\"", name);
	return 0;
}

/*
 * nghttp2 refuses a request HEADERS beyond SETTINGS_MAX_CONCURRENT_STREAMS itself: with
 * REFUSED_STREAM while the peer has not acknowledged the setting, and as a connection error
 * (GOAWAY PROTOCOL_ERROR, "max concurrent streams exceeded") once it has. Both come through
 * here first, which is where they are counted and logged.
 */
static int invalid_frame_cb(nghttp2_session *s, const nghttp2_frame *f, int err, void *user)
{
	struct conn *c = user;
	struct rn_front *fr = c->front;
	(void)s;
	if (f->hd.type == NGHTTP2_HEADERS)
		c->hdr_since_us = 0; /* the block arrived, refused */
	if (err == NGHTTP2_ERR_HTTP_HEADER || err == NGHTTP2_ERR_HTTP_MESSAGING) {
		/* a malformed request (RFC 9113 8.1.1): nghttp2 resets its stream with
		 * PROTOCOL_ERROR before any header reaches header_cb; the connection's other
		 * streams go on */
		char why[160];
		fr->st.malformed++;
		snprintf(why, sizeof(why), "malformed request: %s",
			 c->bad_header[0] ? c->bad_header : nghttp2_strerror(err));
		c->bad_header[0] = 0;
		note_refusal(c, ST_MALFORMED, "stream", why);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    c->ncalls < c->max_streams)
		return 0;
	if (err == NGHTTP2_ERR_REFUSED_STREAM) {
		char why[96];
		fr->st.streams_refused++;
		snprintf(why, sizeof(why), "streams already open: max_streams_per_connection %u",
			 c->max_streams);
		note_refusal(c, ST_REFUSED_STREAM, "stream", why);
	} else {
		fr->st.closed_streams++;
		rn_log_warn("front",
			    "closing connection from %s: it opened stream %d beyond the "
			    "%u concurrent streams it acknowledged (max_streams_per_connection)",
			    c->peer, f->hd.stream_id, c->max_streams);
	}
	return 0;
}

/* The pass is over (rn_front_yield): c keeps its unhandled input for the next one, at the
 * end of the queue, and its socket is not read meanwhile (its memory stays bounded). */
static void defer_conn(struct conn *c)
{
	struct rn_front *f = c->front;
	bufferevent_disable(c->bev, EV_READ);
	if (!rn_list_linked(&c->deferred)) {
		rn_list_push(&f->deferred, &c->deferred);
		f->ndeferred++;
		f->st.conns_deferred++;
	}
}

/* Hands c's input to nghttp2, up to the end or until the server ends the pass; what is left
 * waits on f->deferred. */
static void conn_input(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in);
	ssize_t rv;
	if (c->front->yielding) {
		if (len)
			defer_conn(c);
		return;
	}
	/* data_chunk_cb returns NGHTTP2_ERR_PAUSE once the server yields: rv is then what
	 * nghttp2 took, the rest stays in `in` */
	rv = nghttp2_session_mem_recv(c->ng, evbuffer_pullup(in, -1), len);
	if (rv < 0) {
		rn_log_warn("front", "h2 protocol error from %s: %s", c->peer,
			    nghttp2_strerror((int)rv));
		conn_free(c);
		return;
	}
	evbuffer_drain(in, (size_t)rv);
	if (evbuffer_get_length(in))
		defer_conn(c);
	flush_conn(c);
}

static void readcb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_input(arg);
}

/* The next pass after rn_front_yield: the deferred connections' input, oldest first, until
 * the server yields again (resume_ev is then due once more). */
static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_front *f = arg;
	struct rn_list *n;
	(void)fd;
	(void)what;
	f->yielding = 0;
	while (!f->yielding && (n = rn_list_first(&f->deferred))) {
		struct conn *c = RN_LIST_ENTRY(n, struct conn, deferred);
		rn_list_unlink(n);
		f->ndeferred--;
		if (!c->read_paused)
			bufferevent_enable(c->bev, EV_READ);
		conn_input(c);
	}
}

size_t rn_front_waiting(const struct rn_front *f)
{
	return f->ndeferred;
}

void rn_front_yield(struct rn_front *f)
{
	static const struct timeval now = {0, 0};
	if (f->yielding)
		return;
	f->yielding = 1;
	f->st.yields++;
	event_add(f->resume_ev, &now);
}

/* Runs when the output buffer drops to its low watermark (half of slow_bytes). */
static void writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->read_paused) {
		c->read_paused = 0;
		if (!rn_list_linked(&c->deferred)) /* else resume_cb reads it, in its turn */
			bufferevent_enable(c->bev, EV_READ);
	}
	if (nghttp2_session_want_write(c->ng)) {
		flush_conn(c);
		return;
	}
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

/* A TLS handshake that failed (or chose no h2): counted, logged (rate-limited), closed. */
static void tls_refuse(struct conn *c, enum rn_tls_reason why, const char *detail)
{
	struct rn_front *f = c->front;
	char msg[320];
	f->st.tls_failed[why]++;
	snprintf(msg, sizeof(msg), "%s: %s", rn_tls_reason_name(why), detail);
	note_refusal(c, ST_REFUSED_TLS, "TLS connection", msg);
	conn_free(c);
}

static void tls_connected(struct conn *c)
{
	struct ssl_st *ssl = bufferevent_openssl_get_ssl(c->bev);
	c->handshaken = 1;
	if (!rn_tls_alpn_ok(c->front->tls, ssl)) {
		tls_refuse(c, RN_TLS_FAIL_NO_H2,
			   "the client did not negotiate HTTP/2 (ALPN h2); gRPC needs it");
		return;
	}
	if (rn_tls_peer_identity(ssl, c->identity, sizeof(c->identity)))
		rn_log_info("front", "%s: TLS client certificate identity %s", c->peer,
			    c->identity);
}

static void eventcb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;
	if (c->tls && (events & BEV_EVENT_CONNECTED)) {
		tls_connected(c);
		return;
	}
	if (c->tls && !c->handshaken && (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		char detail[256];
		unsigned long e = bufferevent_get_openssl_error(bev), next;
		/* the first error is the cause; drain the rest */
		while ((next = bufferevent_get_openssl_error(bev)))
			;
		enum rn_tls_reason why = rn_tls_classify(bufferevent_openssl_get_ssl(bev), e,
							 detail, sizeof(detail));
		tls_refuse(c, why, detail);
		return;
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(c);
}

/*
 * addr was refused too often: every connection it has is ended with GOAWAY
 * (ENHANCE_YOUR_CALM) and freed once that is written (or by the tick's closing rule), and
 * accept_cb closes its new ones until the cool-down is over. Safe inside nghttp2 callbacks:
 * only the kick event sends.
 */
static void throttle_start(struct rn_front *f, const char *addr)
{
	size_t n = 0;
	int64_t now = rn_mono_us();
	f->st.throttle_episodes++;
	for (struct conn *c = f->conns; c; c = c->next) {
		if (c->closing_us || strcmp(c->addr, addr))
			continue;
		nghttp2_session_terminate_session(c->ng, NGHTTP2_ENHANCE_YOUR_CALM);
		want_flush(c);
		c->closing_us = now;
		f->st.closed_throttled++;
		n++;
	}
	rn_log_warn("front",
		    "%s: more than %u refused calls in a second (refuse_throttle): its %zu "
		    "connection(s) closed, new ones refused for %lld ms",
		    addr, f->throttle.max_per_s, n, (long long)(f->throttle.cooldown_us / 1000));
	event_active(f->kick_ev, 0, 0);
}

static void throttle_end(void *ctx, const char *addr, uint64_t blocked)
{
	(void)ctx;
	rn_log_info("front", "%s: no longer throttled; %llu connection(s) refused meanwhile", addr,
		    (unsigned long long)blocked);
}

/*
 * accept() failed with an error that is not "try again" (libevent handles EAGAIN and
 * ECONNABORTED itself): typically EMFILE/ENFILE (out of file descriptors) or ENOBUFS. The
 * pending connection stays in the backlog, so the listener would wake up and fail again at
 * once; it is paused for a backoff instead. One line when the episode begins, one when an
 * accept works again (accept_cb).
 */
static void enable_listeners(struct rn_front *f, int on)
{
	for (size_t i = 0; i < f->nlisteners; i++)
		if (f->listeners[i])
			(on ? evconnlistener_enable : evconnlistener_disable)(f->listeners[i]);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct rn_front *f = arg;
	int err = EVUTIL_SOCKET_ERROR();
	f->st.accept_errors++;
	if (!f->accept_fails++) {
		f->accept_fail_since = rn_mono_us();
		rn_log_warn("front",
			    "accept failed: %s (%zu connections open); pausing the listener "
			    "between retries until it works again",
			    evutil_socket_error_to_string(err), f->nconns);
	}
	(void)l;
	enable_listeners(f, 0);
	f->st.accept_paused = 1;
	if (rn_ev_add_ms(f->accept_ev, rn_limits_accept_backoff_ms(f->accept_fails)))
		enable_listeners(f, 1); /* no timer: better a busy listener than a dead one */
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_front *f = arg;
	(void)fd;
	(void)what;
	f->st.accept_paused = 0;
	enable_listeners(f, 1);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct rn_front *f = arg;
	struct conn *c;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *o;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, f->opt.max_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4 << 20}};
	int one = 1, rv;
	(void)l;

	if (f->accept_fails) {
		rn_log_warn("front",
			    "accepting connections again after %llu failed accepts in %lld ms",
			    (unsigned long long)f->accept_fails,
			    (long long)((rn_mono_us() - f->accept_fail_since) / 1000));
		f->accept_fails = 0;
	}
	char addr[sizeof(c->addr)] = "?";
	if (sa && sa->sa_family == AF_INET && (size_t)salen >= sizeof(struct sockaddr_in))
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa && sa->sa_family == AF_INET6 && (size_t)salen >= sizeof(struct sockaddr_in6))
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
			  sizeof(addr));
	if (rn_throttle_blocked(&f->throttle, addr, rn_mono_us())) {
		evutil_closesocket(fd); /* counted per address for the end-of-throttle line */
		f->st.rejected_throttled++;
		return;
	}
	if (f->opt.max_conns && f->nconns >= f->opt.max_conns) {
		/* closed before anything is read: the cheapest answer, and no state kept */
		evutil_closesocket(fd);
		f->st.rejected_max_conns++;
		if (!f->conns_capped++)
			rn_log_warn("front",
				    "%u connections open (max_connections): closing new ones at "
				    "once until some end",
				    f->opt.max_conns);
		return;
	}
	if (f->conns_capped) {
		rn_log_info("front",
			    "below max_connections again: %llu connections were closed at once",
			    (unsigned long long)f->conns_capped);
		f->conns_capped = 0;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(c = rn_calloc(1, sizeof(*c)))) {
		evutil_closesocket(fd);
		return;
	}
	c->front = f;
	memcpy(c->addr, addr, sizeof(addr));
	c->max_streams = f->opt.max_streams;
	c->last_req_us = c->hdr_since_us = rn_mono_us();
	snprintf(c->peer, sizeof(c->peer), "?");
	if (sa && sa->sa_family == AF_INET && (size_t)salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		char a[INET_ADDRSTRLEN];
		if (inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a)))
			snprintf(c->peer, sizeof(c->peer), "%s:%u", a, ntohs(in->sin_port));
	} else if (sa && sa->sa_family == AF_INET6 &&
		   (size_t)salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		char a[INET6_ADDRSTRLEN];
		if (inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a)))
			snprintf(c->peer, sizeof(c->peer), "[%s]:%u", a, ntohs(in6->sin6_port));
	}
	if (f->tls) {
		struct ssl_st *ssl = rn_tls_ssl_new(f->tls);
		c->tls = 1;
		c->bev = ssl ? bufferevent_openssl_socket_new(f->base, fd, ssl,
							      BUFFEREVENT_SSL_ACCEPTING,
							      BEV_OPT_CLOSE_ON_FREE)
			     : NULL;
		/* when it fails, libevent (>= 2.1.10, with BEV_OPT_CLOSE_ON_FREE) has freed ssl
		 * already on every path: freeing it here would be a double free */
		if (c->bev) /* a client that closes without close_notify is no error here */
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev || nghttp2_session_callbacks_new(&cbs)) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		rn_free(c);
		return;
	}
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, begin_frame_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, invalid_frame_cb);
	nghttp2_session_callbacks_set_error_callback2(cbs, error_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frame_send_cb);
	rv = nghttp2_option_new(&o);
	if (!rv) {
		/* window is granted by grant() once data is processed, and not under pressure */
		nghttp2_option_set_no_auto_window_update(o, 1);
		/* "authorization: Bearer " (an empty token) has trailing whitespace, which RFC
		 * 9113 lets nghttp2 answer with RST_STREAM(PROTOCOL_ERROR), a gRPC INTERNAL
		 * error; such values are taken as sent and refused by their meaning instead
		 * (UNAUTHENTICATED), as gRPC servers do */
		nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(o, 1);
		rv = nghttp2_session_server_new2(&c->ng, cbs, c, o);
		nghttp2_option_del(o);
	}
	nghttp2_session_callbacks_del(cbs);
	if (rv) {
		rn_log_warn("front", "cannot set up an HTTP/2 session: %s", nghttp2_strerror(rv));
		bufferevent_free(c->bev);
		rn_free(c);
		return;
	}
	f->st.conns_accepted++;
	f->nconns++;
	nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2);
	/* a larger connection window than the 64 KiB default, so one stream cannot stall */
	nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	bufferevent_setcb(c->bev, readcb, writecb, eventcb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, f->opt.slow_bytes / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	flush_conn(c);
}

/* Idle connections and slow clients; runs every tick (a fraction of the shorter timeout). */
/* Resets the streams whose trailers-only answer is LATE_RESET_US old and whose client side
 * is still open (frame_send_cb). 1 if any was reset: the connection was flushed and may be
 * gone. */
static int late_resets(struct conn *c, int64_t now)
{
	int any = 0;
	if (!c->nlate)
		return 0; /* the usual case: no walk of its calls */
	for (struct rn_call *k = c->calls; k; k = k->next) {
		if (!k->reset_at_us || now < k->reset_at_us)
			continue;
		k->reset_at_us = 0;
		c->nlate--;
		if (nghttp2_session_get_stream_remote_close(c->ng, k->sid) == 0 &&
		    !nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, k->sid, NGHTTP2_NO_ERROR))
			any = 1;
	}
	if (any)
		flush_conn(c);
	return any;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_front *f = arg;
	struct conn *c, *next;
	int64_t now = rn_mono_us();
	(void)fd;
	(void)what;
	rn_refuselog_tick(&f->refusals, now, refusal_summary, f);
	rn_throttle_tick(&f->throttle, now, throttle_end, f);
	if (f->partial_over && f->partial <= f->opt.partial_budget / 2) {
		f->partial_over = 0;
		rn_log_info("front",
			    "unfinished request messages down to %zu bytes; %llu call(s) were "
			    "refused for partial_budget_bytes",
			    f->partial, (unsigned long long)f->partial_refused_episode);
	}
	for (c = f->conns; c; c = next) {
		size_t out = conn_out_bytes(c);
		next = c->next;
		if (rn_limits_slow(&c->slow_since_us, out, f->opt.slow_bytes,
				   f->opt.slow_timeout_ms * 1000, now)) {
			f->st.closed_slow++;
			rn_log_warn("front",
				    "disconnecting slow client %s: %zu bytes of responses "
				    "unread for more than %lld ms (slow_client_bytes %zu)",
				    c->peer, out, (long long)f->opt.slow_timeout_ms,
				    f->opt.slow_bytes);
			conn_free(c);
			continue;
		}
		/* a deferred connection's preface or header block is in its input, read but not
		 * handled yet (rn_front_yield): the wait is ours, not the client's */
		if (!rn_list_linked(&c->deferred) &&
		    rn_limits_header_late(c->hdr_since_us, f->opt.header_timeout_ms * 1000, now)) {
			char why[96];
			f->st.closed_header_timeout++;
			if (c->tls && !c->handshaken)
				f->st.tls_failed[RN_TLS_FAIL_TIMEOUT]++;
			snprintf(why, sizeof(why),
				 "%s not complete within header_timeout (%lld ms)",
				 c->got_frame ? "header block" : "HTTP/2 preface",
				 (long long)f->opt.header_timeout_ms);
			note_refusal(c, ST_CONN_CLOSED, "connection", why);
			conn_free(c);
			continue;
		}
		if (late_resets(c, now))
			continue; /* flushed (c may be gone); the idle rule looks next tick */
		if (c->closing_us) {
			/* a peer that takes no GOAWAY within another idle period loses the socket
			 */
			if (now - c->closing_us >= f->opt.idle_timeout_ms * 1000)
				conn_free(c);
			continue;
		}
		/* a connection we stopped reading is the slow-client rule's, not idle; one whose
		 * input waits for the next pass is not idle either */
		if (!c->read_paused && !rn_list_linked(&c->deferred) &&
		    rn_limits_idle(c->ncalls, c->last_req_us, f->opt.idle_timeout_ms * 1000, now)) {
			f->st.closed_idle++;
			rn_log_info("front",
				    "closing idle connection from %s (no stream, no request "
				    "received for %lld ms)",
				    c->peer, (long long)f->opt.idle_timeout_ms);
			c->closing_us = now;
			nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
			flush_conn(c); /* frees it once the GOAWAY is written */
		}
	}
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rn_front_flush(arg);
}

void rn_front_set_pressure(struct rn_front *f, int on)
{
	on = on != 0;
	if (f->pressure == on)
		return;
	f->pressure = on;
	if (on)
		return;
	/* a walk of every call, but once per pressure episode, not per loop iteration */
	for (struct conn *c = f->conns; c; c = c->next) {
		grant(c, NULL);
		for (struct rn_call *k = c->calls; k; k = k->next)
			grant(c, k);
		want_flush(c);
	}
	event_active(f->kick_ev, 0, 0);
}

void rn_front_stats(const struct rn_front *f, struct rn_front_stats *st)
{
	*st = f->st;
	st->conns_open = 0;
	st->window_withheld = 0;
	st->peers_throttled = rn_throttle_active(&f->throttle, rn_mono_us());
	st->partial_bytes = f->partial;
	for (const struct conn *c = f->conns; c; c = c->next) {
		st->conns_open++;
		st->window_withheld += c->held;
	}
}

int rn_front_set_limits(struct rn_front *f, const struct rn_front_options *opt)
{
	f->opt = *opt; /* host and port are used by rn_front_create only */
	if (!f->opt.max_message)
		f->opt.max_message = RN_GRPC_DEFAULT_MAX_MSG;
	if (!f->opt.max_streams)
		f->opt.max_streams = 100;
	if (!f->opt.slow_bytes)
		f->opt.slow_bytes = (size_t)4 << 20;
	if (f->opt.slow_timeout_ms < 0)
		f->opt.slow_timeout_ms = 0;
	rn_throttle_config(&f->throttle, f->opt.refuse_throttle, f->opt.refuse_cooldown_ms * 1000);
	/* a tick of a quarter of the shorter timeout, between 10 ms and 1 s */
	int64_t tick = 1000;
	if (f->opt.idle_timeout_ms > 0 && f->opt.idle_timeout_ms / 4 < tick)
		tick = f->opt.idle_timeout_ms / 4;
	if (f->opt.slow_timeout_ms / 4 < tick)
		tick = f->opt.slow_timeout_ms / 4;
	if (f->opt.header_timeout_ms > 0 && f->opt.header_timeout_ms / 4 < tick)
		tick = f->opt.header_timeout_ms / 4;
	if (tick < 10)
		tick = 10;
	for (struct conn *c = f->conns; c; c = c->next)
		bufferevent_setwatermark(c->bev, EV_WRITE, f->opt.slow_bytes / 2, 0);
	return rn_ev_add_ms(f->tick_ev, tick) ? RN_ENOMEM : 0;
}

int rn_front_create(struct rn_front **out, struct event_base *base,
		    const struct rn_front_options *opt, const struct rn_front_handler *h)
{
	struct rn_front *f;
	struct rn_hostport one;
	const struct rn_hostport *addrs = opt->addrs;
	size_t n = opt->naddrs;
	int fds[RN_ADDR_LIST_MAX];
	char err[400];

	*out = NULL;
	if (!n) {
		/* the single host/port form (a zeroed struct: 127.0.0.1, any port) */
		memset(&one, 0, sizeof(one));
		snprintf(one.host, sizeof(one.host), "%s", opt->host ? opt->host : "127.0.0.1");
		one.port = opt->port;
		one.family = strchr(one.host, ':') ? 6 : 4;
		addrs = &one;
		n = 1;
	}
	if (n > RN_ADDR_LIST_MAX)
		return RN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char b[16];
		if (inet_pton(AF_INET, addrs[i].host, b) != 1 &&
		    inet_pton(AF_INET6, addrs[i].host, b) != 1)
			return RN_EINVAL;
	}
	if (!(f = rn_calloc(1, sizeof(*f))))
		return RN_ENOMEM;
	rn_list_init(&f->pending);
	rn_list_init(&f->deferred);
	f->base = base;
	f->h = *h;
	f->tls = opt->tls;
	rn_refuselog_init(&f->refusals, REFUSAL_LOG_PERIOD_US, rn_mono_us());
	if (!(f->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, f)) ||
	    !(f->kick_ev = event_new(base, -1, 0, kick_cb, f)) ||
	    !(f->resume_ev = evtimer_new(base, resume_cb, f)) ||
	    !(f->accept_ev = event_new(base, -1, 0, accept_resume_cb, f)) ||
	    rn_front_set_limits(f, opt)) {
		rn_front_destroy(f);
		return RN_ENOMEM;
	}
	/* the sockets by hand (listensock.h): IPv6 ones get IPV6_V6ONLY before bind */
	if (rn_listensock_open(addrs, n, 512, fds, f->ports, err, sizeof(err))) {
		rn_log_error("front", "%s", err);
		rn_front_destroy(f);
		return RN_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		/* backlog 0: listen() is done */
		f->listeners[i] =
			evconnlistener_new(base, accept_cb, f, LEV_OPT_CLOSE_ON_FREE, 0, fds[i]);
		if (!f->listeners[i]) {
			for (size_t j = i; j < n; j++)
				close(fds[j]);
			rn_front_destroy(f);
			return RN_ENOMEM;
		}
		f->nlisteners = i + 1;
		evconnlistener_set_error_cb(f->listeners[i], accept_error_cb);
	}
	*out = f;
	return 0;
}

void rn_front_stop_listening(struct rn_front *f)
{
	for (size_t i = 0; i < f->nlisteners; i++)
		if (f->listeners[i]) {
			evconnlistener_free(f->listeners[i]);
			f->listeners[i] = NULL;
		}
}

void rn_front_destroy(struct rn_front *f)
{
	if (!f)
		return;
	rn_front_stop_listening(f);
	while (f->conns)
		conn_free(f->conns);
	if (f->tick_ev)
		event_free(f->tick_ev);
	if (f->kick_ev)
		event_free(f->kick_ev);
	if (f->resume_ev)
		event_free(f->resume_ev);
	if (f->accept_ev)
		event_free(f->accept_ev);
	rn_free(f);
}

int rn_front_port(const struct rn_front *f)
{
	return f->ports[0];
}

size_t rn_front_ports(const struct rn_front *f, int *ports, size_t cap)
{
	for (size_t i = 0; i < f->nlisteners && i < cap; i++)
		ports[i] = f->ports[i];
	return f->nlisteners;
}

void rn_front_flush(struct rn_front *f)
{
	struct rn_list *n;
	/* flush_conn takes each off the list first (and conn_free too), so this ends even
	 * when a flush frees its connection */
	while ((n = rn_list_first(&f->pending))) {
		f->st.flush_visits++;
		flush_conn(RN_LIST_ENTRY(n, struct conn, pending));
	}
}
