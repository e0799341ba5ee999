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
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ev_time.h"
#include "limits.h"
#include "refuselog.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "zbwire.h"

struct conn;

struct rn_call {
	struct conn *conn;
	int32_t sid;
	struct rn_call *next, *prev; /* the connection's calls */
	char path[128];
	char method[8]; /* :method (truncated; only POST matters) */
	size_t method_len;
	char ctype[64]; /* content-type (truncated; its first 17 bytes decide) */
	size_t ctype_len;
	int have_method, have_ctype;
	char table[256];
	size_t table_len; /* as sent: longer than table holds means truncated (the server refuses)
			   */
	char auth[RN_CONF_HDR_MAX + 64]; /* "Bearer " and a token of up to RN_CONF_HDR_MAX */
	int have_table, have_auth;       /* have_auth: present and not longer than auth holds */
	char boot_id[64];                /* x-runnel-clock, when it parsed (have_clock) */
	int64_t boot_us;
	int have_clock;
	int zstd; /* grpc-encoding: zstd */
	int persistent;
	int opened;    /* open() accepted it */
	int responded; /* response headers submitted */
	int finished;  /* status decided; trailers follow the queued data */
	int trailers_sent;
	int status;
	char msg[512];       /* grpc-message of the status (a create refusal explains itself) */
	int64_t pushback_ms; /* > 0: grpc-retry-pushback-ms in the status */
	uint64_t held;       /* DATA bytes whose stream window is not granted back yet */
	int hold;            /* the server holds this stream's window (rn_call_hold_window) */
	struct rn_grpc_deframer df;
	struct rn_buf out;   /* framed response messages not yet sent */
	struct rn_buf plain; /* decompression scratch */
	void *ctx;
};

struct conn {
	struct rn_front *front;
	struct bufferevent *bev;
	nghttp2_session *ng;
	struct rn_call *calls;
	size_t ncalls;         /* calls in `calls` (= streams nghttp2 counts as open) */
	uint64_t held;         /* DATA bytes whose connection window is not granted back yet */
	int64_t last_rx_us;    /* when bytes last arrived (monotonic) */
	int64_t slow_since_us; /* since when unsent responses exceed slow_bytes; 0 = they don't */
	int read_paused;       /* reading stopped: the output buffer is over slow_bytes */
	int64_t closing_us;    /* idle GOAWAY submitted at; freed once written (or 1 idle later) */
	char peer[64];         /* "address:port" of the client, for logs */
	uint32_t max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS as sent to this client */
	struct conn *next, *prev;
};

struct rn_front {
	struct event_base *base;
	struct evconnlistener *listener;
	struct rn_front_handler h;
	struct rn_front_options opt; /* defaults applied */
	struct conn *conns;
	struct event *tick_ev; /* idle and slow-client checks */
	struct event *kick_ev; /* sends what a window release queued, from the loop */
	int pressure;          /* rn_front_set_pressure */
	int port;
	struct rn_front_stats st;     /* counters; gauges are computed in rn_front_stats */
	struct rn_refuselog refusals; /* which refused calls get a log line (refuselog.h) */
};

#define REFUSAL_LOG_PERIOD_US (10 * 1000000LL)

static const char *status_name(int status)
{
	return status < 0 ? "REFUSED_STREAM" : rn_grpc_status_name(status);
}

/*
 * Every refused call is logged, but not every one gets a line: the first of its kind (client
 * address, status, reason) does, the rest are counted and summed up once per period by
 * tick_cb (refuselog.h), so 200,000 refusals from a misconfigured client are a few lines.
 */
static void note_refusal(struct rn_front *f, const char *peer, int status, const char *what,
			 const char *msg)
{
	if (rn_refuselog_note(&f->refusals, peer, status, msg, rn_mono_us()))
		rn_log_info("front",
			    "%s: %s refused: %s %s (more like it from this address are "
			    "counted every %lld s)",
			    peer, what, status_name(status), msg ? msg : "",
			    (long long)(REFUSAL_LOG_PERIOD_US / 1000000));
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

static void flush_conn(struct conn *c)
{
	size_t out;
	int rv = nghttp2_session_send(c->ng);
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
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	for (const struct rn_call *k = c->calls; k; k = k->next)
		n += k->out.len;
	return n;
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

static void call_unlink_free(struct rn_call *k)
{
	struct conn *c = k->conn;
	if (k->opened && c->front->h.closed)
		c->front->h.closed(c->front->h.ctx, k);
	c->ncalls--;
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	rn_grpc_deframer_free(&k->df);
	rn_buf_free(&k->out);
	rn_buf_free(&k->plain);
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
	};
	nghttp2_data_provider dp = {.source.ptr = k, .read_callback = data_read_cb};
	nghttp2_submit_response(k->conn->ng, k->sid, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp);
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
	note_refusal(k->conn->front, k->conn->peer, status, "call", msg);
	respond_headers_only(k, http, status, msg);
}

int rn_call_send(struct rn_call *k, const uint8_t *msg, size_t len)
{
	int rc;
	if (k->finished)
		return RN_EINVAL;
	if ((rc = rn_grpc_frame_append(&k->out, 0, msg, len)))
		return rc;
	nghttp2_session_resume_data(k->conn->ng, k->sid);
	return 0;
}

void rn_call_finish(struct rn_call *k, int status, const char *msg)
{
	if (k->finished)
		return;
	/* refusals with a pushback come in bursts under pressure; the server logs the episode */
	if (status != 0 && k->pushback_ms > 0)
		rn_log_debug("front", "call %d on %s ends: %s %s", k->sid, k->path,
			     rn_grpc_status_name(status), msg ? msg : "");
	else if (status != 0)
		note_refusal(k->conn->front, k->conn->peer, status, "call", msg);
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

void *rn_call_ctx(const struct rn_call *k)
{
	return k->ctx;
}

int rn_call_persistent(const struct rn_call *k)
{
	return k->persistent;
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
		event_active(f->kick_ev, 0, 0);
	}
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
		copy_hdr(k->path, sizeof(k->path), value, valuelen);
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
		copy_hdr(k->auth, sizeof(k->auth), value, valuelen);
		k->have_auth = valuelen < sizeof(k->auth);
	} else if (IS("x-runnel-clock")) {
		k->have_clock = rn_zb_parse_clock(value, valuelen, k->boot_id, sizeof(k->boot_id),
						  &k->boot_us) == 0;
	} else if (IS("grpc-encoding")) {
		k->zstd = valuelen == 4 && !memcmp(value, "zstd", 4);
		if (!k->zstd && !(valuelen == 8 && !memcmp(value, "identity", 8)))
			k->zstd = -1; /* an encoding we do not support */
	}
#undef IS
	return 0;
}

static void open_call(struct rn_call *k)
{
	struct rn_front *fr = k->conn->front;
	const char *msg = NULL;
	int st, http;

	/* not gRPC at all (a REST client, a browser): an HTTP error, never 200 */
	if ((http = rn_zb_http_check(
		     k->have_method ? (const uint8_t *)k->method : NULL, k->method_len,
		     k->have_ctype ? (const uint8_t *)k->ctype : NULL, k->ctype_len, &st, &msg))) {
		refuse(k, http, st, msg);
		return;
	}
	if (!strcmp(k->path, "/databricks.zerobus.Zerobus/PersistentStream")) {
		k->persistent = 1;
	} else if (strcmp(k->path, "/databricks.zerobus.Zerobus/EphemeralStream")) {
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
				    NULL,
				    0};
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
	struct rn_front *fr = ((struct conn *)user)->front;
	if (!k)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		open_call(k);
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
			fr->h.message(fr->h.ctx, k, k->plain.data, k->plain.len);
		} else {
			fr->h.message(fr->h.ctx, k, m.data, m.len);
		}
	}
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
	data_chunk(fr, k, data, len, why, sizeof(why));
	grant(c, k);
	return 0;
}

/*
 * After a call's final HEADERS (trailers, or a trailers-only refusal) while the client is
 * still sending: RST_STREAM(NO_ERROR), as gRPC servers do (RFC 9113 8.1), so the client
 * stops uploading into a finished call and sees it end now (libcurl otherwise waits for its
 * own upload to end). Data already on the way is discarded by nghttp2.
 */
static int frame_send_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	(void)user;
	if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) == 0)
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
	nghttp2_session_del(c->ng);
	bufferevent_free(c->bev);
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	rn_free(c);
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
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    c->ncalls < c->max_streams)
		return 0;
	if (err == NGHTTP2_ERR_REFUSED_STREAM) {
		char why[96];
		fr->st.streams_refused++;
		snprintf(why, sizeof(why), "streams already open: max_streams_per_connection %u",
			 c->max_streams);
		note_refusal(fr, c->peer, -1, "stream", why);
	} else {
		fr->st.closed_streams++;
		rn_log_warn("front",
			    "closing connection from %s: it opened stream %d beyond the "
			    "%u concurrent streams it acknowledged (max_streams_per_connection)",
			    c->peer, f->hd.stream_id, c->max_streams);
	}
	return 0;
}

static void readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	uint8_t *data = evbuffer_pullup(in, -1);
	ssize_t rv;
	c->last_rx_us = rn_mono_us();
	rv = nghttp2_session_mem_recv(c->ng, data, len);
	if (rv < 0) {
		rn_log_warn("front", "h2 protocol error from %s: %s", c->peer,
			    nghttp2_strerror((int)rv));
		conn_free(c);
		return;
	}
	evbuffer_drain(in, (size_t)rv);
	flush_conn(c);
}

/* Runs when the output buffer drops to its low watermark (half of slow_bytes). */
static void writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->read_paused) {
		c->read_paused = 0;
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

static void eventcb(struct bufferevent *bev, short events, void *arg)
{
	(void)bev;
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(arg);
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

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(c = rn_calloc(1, sizeof(*c)))) {
		evutil_closesocket(fd);
		return;
	}
	c->front = f;
	c->max_streams = f->opt.max_streams;
	c->last_rx_us = rn_mono_us();
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
	c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
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
	nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, invalid_frame_cb);
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
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_front *f = arg;
	struct conn *c, *next;
	int64_t now = rn_mono_us();
	(void)fd;
	(void)what;
	rn_refuselog_tick(&f->refusals, now, refusal_summary, f);
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
		if (c->closing_us) {
			/* a peer that takes no GOAWAY within another idle period loses the socket
			 */
			if (now - c->closing_us >= f->opt.idle_timeout_ms * 1000)
				conn_free(c);
			continue;
		}
		/* a connection we stopped reading is the slow-client rule's, not idle */
		if (!c->read_paused &&
		    rn_limits_idle(c->ncalls, c->last_rx_us, f->opt.idle_timeout_ms * 1000, now)) {
			f->st.closed_idle++;
			rn_log_info("front",
				    "closing idle connection from %s (no stream, nothing "
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
	for (struct conn *c = f->conns; c; c = c->next) {
		grant(c, NULL);
		for (struct rn_call *k = c->calls; k; k = k->next)
			grant(c, k);
	}
	event_active(f->kick_ev, 0, 0);
}

void rn_front_stats(const struct rn_front *f, struct rn_front_stats *st)
{
	*st = f->st;
	st->conns_open = 0;
	st->window_withheld = 0;
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
	/* a tick of a quarter of the shorter timeout, between 10 ms and 1 s */
	int64_t tick = 1000;
	if (f->opt.idle_timeout_ms > 0 && f->opt.idle_timeout_ms / 4 < tick)
		tick = f->opt.idle_timeout_ms / 4;
	if (f->opt.slow_timeout_ms / 4 < tick)
		tick = f->opt.slow_timeout_ms / 4;
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
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;

	*out = NULL;
	if (!(f = rn_calloc(1, sizeof(*f))))
		return RN_ENOMEM;
	f->base = base;
	f->h = *h;
	rn_refuselog_init(&f->refusals, REFUSAL_LOG_PERIOD_US, rn_mono_us());
	if (!(f->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, f)) ||
	    !(f->kick_ev = event_new(base, -1, 0, kick_cb, f)) || rn_front_set_limits(f, opt)) {
		rn_front_destroy(f);
		return RN_ENOMEM;
	}
	/* an IPv4 literal, else an IPv6 one (the config loader has checked which) */
	const char *host = opt->host ? opt->host : "127.0.0.1";
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)opt->port);
		slen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)opt->port);
		slen = sizeof(*sin6);
	} else {
		rn_front_destroy(f);
		return RN_EINVAL;
	}
	f->listener = evconnlistener_new_bind(base, accept_cb, f,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
					      (struct sockaddr *)&ss, (int)slen);
	if (!f->listener) {
		rn_log_error("front", "cannot listen on %s port %d: %s", host, opt->port,
			     strerror(errno));
		rn_front_destroy(f);
		return RN_EIO;
	}
	slen = sizeof(ss);
	getsockname(evconnlistener_get_fd(f->listener), (struct sockaddr *)&ss, &slen);
	f->port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port);
	*out = f;
	return 0;
}

void rn_front_stop_listening(struct rn_front *f)
{
	if (f->listener) {
		evconnlistener_free(f->listener);
		f->listener = NULL;
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
	rn_free(f);
}

int rn_front_port(const struct rn_front *f)
{
	return f->port;
}

void rn_front_flush(struct rn_front *f)
{
	struct conn *c = f->conns, *next;
	for (; c; c = next) {
		next = c->next;
		flush_conn(c);
	}
}
