/*
 * HTTP/2 + gRPC front over libevent and nghttp2; see front.h. One struct conn per TCP
 * connection, one struct rn_call per HTTP/2 stream. Response bodies are produced by a
 * deferred data provider reading the call's `out` buffer; when the call is finished and
 * `out` is drained, the provider ends DATA without END_STREAM and submits the trailers.
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

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"

struct conn;

struct rn_call {
	struct conn *conn;
	int32_t sid;
	struct rn_call *next, *prev; /* the connection's calls */
	char path[128];
	char table[256];
	char auth[512];
	int have_table, have_auth;
	int zstd; /* grpc-encoding: zstd */
	int persistent;
	int opened;      /* open() accepted it */
	int responded;   /* response headers submitted */
	int finished;    /* status decided; trailers follow the queued data */
	int trailers_sent;
	int status;
	char msg[256];
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
	struct conn *next, *prev;
};

struct rn_front {
	struct event_base *base;
	struct evconnlistener *listener;
	struct rn_front_handler h;
	struct rn_front_options opt;
	struct conn *conns;
	int port;
};

static void conn_free(struct conn *c);

static void flush_conn(struct conn *c)
{
	int rv = nghttp2_session_send(c->ng);
	if (rv != 0) {
		rn_log_warn("front", "nghttp2 send: %s", nghttp2_strerror(rv));
		conn_free(c);
		return;
	}
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
		       void *user)
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
		char status[16];
		struct rn_buf m = {0};
		snprintf(status, sizeof(status), "%d", k->status);
		rn_grpc_message_encode(&m, k->msg);
		nghttp2_nv tr[2] = {
			{(uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status),
			 NGHTTP2_NV_FLAG_NONE},
			{(uint8_t *)"grpc-message", m.data ? m.data : (uint8_t *)"", 12, m.len,
			 NGHTTP2_NV_FLAG_NONE},
		};
		nghttp2_submit_trailer(s, k->sid, tr, k->msg[0] ? 2 : 1);
		rn_buf_free(&m);
		k->trailers_sent = 1;
	}
	return 0;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

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

/* A response with only headers: for calls refused before any message. */
static void respond_trailers_only(struct rn_call *k, int status, const char *msg)
{
	char st[16];
	struct rn_buf m = {0};
	snprintf(st, sizeof(st), "%d", status);
	rn_grpc_message_encode(&m, msg ? msg : "");
	nghttp2_nv hdrs[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		{(uint8_t *)"grpc-status", (uint8_t *)st, 11, strlen(st), NGHTTP2_NV_FLAG_NONE},
		{(uint8_t *)"grpc-message", m.data ? m.data : (uint8_t *)"", 12, m.len,
		 NGHTTP2_NV_FLAG_NONE},
	};
	nghttp2_submit_response(k->conn->ng, k->sid, hdrs, 4, NULL);
	k->responded = k->finished = k->trailers_sent = 1;
	rn_buf_free(&m);
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
	if (status != 0)
		rn_log_info("front", "call %d on %s ends: %s %s", k->sid, k->path,
			    rn_grpc_status_name(status), msg ? msg : "");
	if (!k->responded) {
		respond_trailers_only(k, status, msg);
		return;
	}
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

static int begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct rn_call *k;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (!(k = rn_calloc(1, sizeof(*k))))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	k->conn = c;
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
	if (IS(":path"))
		copy_hdr(k->path, sizeof(k->path), value, valuelen);
	else if (IS("x-databricks-zerobus-table-name")) {
		copy_hdr(k->table, sizeof(k->table), value, valuelen);
		k->have_table = 1;
	} else if (IS("authorization")) {
		copy_hdr(k->auth, sizeof(k->auth), value, valuelen);
		k->have_auth = 1;
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
	int st;

	if (!strcmp(k->path, "/databricks.zerobus.Zerobus/PersistentStream")) {
		k->persistent = 1;
	} else if (strcmp(k->path, "/databricks.zerobus.Zerobus/EphemeralStream")) {
		respond_trailers_only(k, RN_GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (k->zstd < 0) {
		respond_trailers_only(k, RN_GRPC_UNIMPLEMENTED,
				      "unsupported grpc-encoding (use identity or zstd)");
		return;
	}
	struct rn_call_info info = {k->path, k->have_table ? k->table : NULL,
				    k->have_auth ? k->auth : NULL};
	if ((st = fr->h.open(fr->h.ctx, k, &info, &msg)) != 0) {
		respond_trailers_only(k, st, msg);
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

static int data_chunk_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
			 size_t len, void *user)
{
	struct rn_call *k = nghttp2_session_get_stream_user_data(s, sid);
	struct rn_front *fr = ((struct conn *)user)->front;
	(void)flags;
	while (k && len && !k->finished && k->opened) {
		struct rn_grpc_msg m;
		size_t used;
		int rc = rn_grpc_deframe(&k->df, data, len, &used, &m);
		data += used;
		len -= used;
		if (rc < 0) {
			rn_log_debug("front", "bad frame bytes: %02x %02x %02x %02x %02x (len %zu)",
				     data[0], len > 1 ? data[1] : 0, len > 2 ? data[2] : 0,
				     len > 3 ? data[3] : 0, len > 4 ? data[4] : 0, len);
			rn_call_finish(k, rc == RN_ETOOBIG ? RN_GRPC_RESOURCE_EXHAUSTED
							   : RN_GRPC_INVALID_ARGUMENT,
				       rc == RN_ETOOBIG ? "message larger than the server's limit"
							: "malformed gRPC frame");
			return 0;
		}
		if (rc == 0)
			break;
		if (m.compressed) {
			if (k->zstd != 1) {
				rn_call_finish(k, RN_GRPC_INVALID_ARGUMENT,
					       "compressed message without grpc-encoding");
				return 0;
			}
			rn_buf_reset(&k->plain);
			rc = rn_zstd_decompress(&k->plain, m.data, m.len,
						fr->opt.max_message ? fr->opt.max_message
								    : RN_GRPC_DEFAULT_MAX_MSG);
			if (rc) {
				rn_call_finish(k, rc == RN_ETOOBIG ? RN_GRPC_RESOURCE_EXHAUSTED
								   : RN_GRPC_INVALID_ARGUMENT,
					       "cannot decompress message");
				return 0;
			}
			fr->h.message(fr->h.ctx, k, k->plain.data, k->plain.len);
		} else {
			fr->h.message(fr->h.ctx, k, m.data, m.len);
		}
	}
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

static void readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	uint8_t *data = evbuffer_pullup(in, -1);
	ssize_t rv = nghttp2_session_mem_recv(c->ng, data, len);
	if (rv < 0) {
		rn_log_warn("front", "h2 protocol error: %s", nghttp2_strerror((int)rv));
		conn_free(c);
		return;
	}
	evbuffer_drain(in, (size_t)rv);
	flush_conn(c);
}

static void writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
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

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct rn_front *f = arg;
	struct conn *c;
	nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
				       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4 << 20}};
	int one = 1;
	(void)l;
	(void)sa;
	(void)salen;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(c = rn_calloc(1, sizeof(*c)))) {
		evutil_closesocket(fd);
		return;
	}
	c->front = f;
	c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
	nghttp2_session_server_new(&c->ng, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2);
	/* a larger connection window than the 64 KiB default, so one stream cannot stall */
	nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	bufferevent_setcb(c->bev, readcb, writecb, eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	flush_conn(c);
}

int rn_front_create(struct rn_front **out, struct event_base *base,
		    const struct rn_front_options *opt, const struct rn_front_handler *h)
{
	struct rn_front *f;
	struct sockaddr_in sin = {0};
	socklen_t slen = sizeof(sin);

	*out = NULL;
	if (!(f = rn_calloc(1, sizeof(*f))))
		return RN_ENOMEM;
	f->base = base;
	f->h = *h;
	f->opt = *opt;
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)opt->port);
	if (inet_pton(AF_INET, opt->host ? opt->host : "127.0.0.1", &sin.sin_addr) != 1) {
		rn_free(f);
		return RN_EINVAL;
	}
	f->listener = evconnlistener_new_bind(base, accept_cb, f,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
					      (struct sockaddr *)&sin, sizeof(sin));
	if (!f->listener) {
		rn_log_error("front", "cannot listen on %s:%d: %s", opt->host, opt->port,
			     strerror(errno));
		rn_free(f);
		return RN_EIO;
	}
	getsockname(evconnlistener_get_fd(f->listener), (struct sockaddr *)&sin, &slen);
	f->port = ntohs(sin.sin_port);
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
