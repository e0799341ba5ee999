/*
 * The uplink over libcurl's multi interface; see uplink.h and DESIGN.md. One easy handle per
 * stream carries one long-lived PersistentStream call. Calls are not multiplexed on one
 * connection: Debian 12's libcurl 7.88 corrupts a long-lived upload when a second one joins
 * its HTTP/2 connection (DESIGN.md), so each stream has its own connection for now. The request body is fed by a read callback
 * from `out` (the create/resume message, then chunk bytes fetched from the buffer as the
 * window allows); when there is nothing to send the callback pauses the upload, and step()
 * unpauses it when data is available again. Responses are deframed in the write callback;
 * trailers (grpc-status) arrive through the header callback.
 */
#include "uplink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <strings.h>
#include <curl/curl.h>

#define POLLIN_COMPAT POLLIN
#define POLLOUT_COMPAT POLLOUT

#include "backoff.h"
#include "response.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"

enum st_state { S_BACKOFF, S_OPENING, S_OPEN };

struct ustream {
	struct rn_uplink *u;
	int id;
	char *table;
	char server_id[64];
	enum st_state state;
	CURL *easy;
	struct curl_slist *hdrs;
	int paused;
	int draining;        /* close_stream_signal seen: no new chunks on this call */
	int64_t drain_until; /* mono us */
	struct rn_buf out;   /* bytes queued for the request body */
	size_t out_pos;
	struct rn_grpc_deframer df;
	int64_t acked;       /* highest offset known durable on the server */
	int64_t next_send;   /* next chunk offset to queue */
	int64_t next_offset; /* one past the newest chunk in the buffer */
	int64_t last_rx_us;  /* mono time of the last response message or of the call start */
	int64_t retry_at;    /* mono us, in S_BACKOFF */
	int grpc_status;     /* from the trailers of the current call, -1 if none */
	char grpc_message[256];
	int fault;           /* the call was aborted for a protocol fault */
	struct rn_backoff bo;
	struct rn_uplink_stream_stats stats;
	char errbuf[CURL_ERROR_SIZE];
};

struct rn_uplink {
	struct rn_uplink_options opt;
	struct rn_uplink_io io;
	CURLM *multi;
	struct ustream **streams;
	size_t n, cap;
	char url[1024];
	char ua[160];
	char err[512];
	unsigned rnd;
};

static void set_err(struct rn_uplink *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct rn_uplink *u, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->err, sizeof(u->err), fmt, ap);
	va_end(ap);
}

static double rnd01(struct rn_uplink *u)
{
	return (double)rand_r(&u->rnd) / ((double)RAND_MAX + 1.0);
}

int rn_uplink_create(struct rn_uplink **out, const struct rn_uplink_options *opt,
		     const struct rn_uplink_io *io)
{
	struct rn_uplink *u;
	size_t ul;

	*out = NULL;
	if (!opt || !opt->url || !*opt->url || !io || !io->chunk_get || !io->acked ||
	    !io->stream_id_set)
		return RN_EINVAL;
	if (!(u = rn_calloc(1, sizeof(*u))))
		return RN_ENOMEM;
	u->opt = *opt;
	u->io = *io;
	u->opt.window = opt->window > 0 ? opt->window : 8;
	u->opt.connect_timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 10000;
	u->opt.ack_timeout_ms = opt->ack_timeout_ms > 0 ? opt->ack_timeout_ms : 60000;
	ul = strlen(opt->url);
	snprintf(u->url, sizeof(u->url), "%.*s/databricks.zerobus.Zerobus/PersistentStream",
		 (int)(opt->url[ul - 1] == '/' ? ul - 1 : ul), opt->url);
	snprintf(u->ua, sizeof(u->ua), "user-agent: %s",
		 opt->user_agent ? opt->user_agent : "runnel-agent/" RN_VERSION);
	u->opt.url = NULL;
	u->opt.user_agent = NULL;
	u->opt.token = NULL;
	u->opt.descriptor = NULL;
	if (opt->token && !(u->opt.token = rn_strdup(opt->token)))
		goto nomem;
	if (opt->descriptor && opt->descriptor_len) {
		uint8_t *d = rn_malloc(opt->descriptor_len);
		if (!d)
			goto nomem;
		memcpy(d, opt->descriptor, opt->descriptor_len);
		u->opt.descriptor = d;
	}
	u->rnd = (unsigned)rn_mono_us() ^ ((unsigned)getpid() << 16);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(u->multi = curl_multi_init()))
		goto nomem;
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	*out = u;
	return 0;
nomem:
	rn_uplink_destroy(u);
	return RN_ENOMEM;
}

static void close_call(struct ustream *s)
{
	if (s->easy) {
		curl_multi_remove_handle(s->u->multi, s->easy);
		curl_easy_cleanup(s->easy);
		s->easy = NULL;
	}
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	rn_buf_reset(&s->out);
	s->out_pos = 0;
	rn_grpc_deframer_reset(&s->df);
	s->paused = 0;
	s->draining = 0;
	s->stats.connected = 0;
	s->stats.sent = -1;
}

void rn_uplink_destroy(struct rn_uplink *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		close_call(s);
		rn_buf_free(&s->out);
		rn_grpc_deframer_free(&s->df);
		rn_free(s->table);
		rn_free(s);
	}
	rn_free(u->streams);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	rn_free((void *)u->opt.token);
	rn_free((void *)u->opt.descriptor);
	rn_free(u);
}

static struct ustream *find(const struct rn_uplink *u, int id)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->streams[i]->id == id)
			return u->streams[i];
	return NULL;
}

int rn_uplink_add_stream(struct rn_uplink *u, const struct rn_uplink_stream_def *def)
{
	struct ustream *s;
	if (find(u, def->stream))
		return RN_EEXIST;
	if (u->n == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 8;
		struct ustream **t = rn_reallocarray(u->streams, nc, sizeof(*t));
		if (!t)
			return RN_ENOMEM;
		u->streams = t;
		u->cap = nc;
	}
	if (!(s = rn_calloc(1, sizeof(*s))) || !(s->table = rn_strdup(def->table))) {
		rn_free(s);
		return RN_ENOMEM;
	}
	s->u = u;
	s->id = def->stream;
	if (def->server_id)
		snprintf(s->server_id, sizeof(s->server_id), "%s", def->server_id);
	s->acked = def->acked;
	s->next_offset = def->next_offset;
	s->next_send = def->acked + 1;
	s->state = S_BACKOFF;
	s->retry_at = 0; /* connect on the next step */
	s->grpc_status = -1;
	s->df.max_msg = 1 << 20;
	s->bo.min_ms = u->opt.backoff_min_ms;
	s->bo.max_ms = u->opt.backoff_max_ms;
	s->bo.slow_ms = 30000;
	s->stats.acked = def->acked;
	s->stats.sent = -1;
	s->stats.last_status = -1;
	u->streams[u->n++] = s;
	return 0;
}

void rn_uplink_chunks_ready(struct rn_uplink *u, int stream, int64_t next_offset)
{
	struct ustream *s = find(u, stream);
	if (s && next_offset > s->next_offset)
		s->next_offset = next_offset;
}

/* Queues the first message of a call: create_stream, or resume_stream with the known id. */
static int queue_open_message(struct ustream *s)
{
	struct rn_uplink *u = s->u;
	struct rn_buf msg = {0}, inner = {0}, create = {0};
	int rc;

	if (s->server_id[0]) {
		rn_pb_put_str(&inner, 1, s->server_id);
		if (u->opt.descriptor)
			rn_pb_put_bytes(&inner, 2, u->opt.descriptor, u->opt.descriptor_len);
		rn_pb_put_uint(&inner, 3, 1); /* PROTO */
		rc = rn_pb_put_bytes(&msg, 2, inner.data, inner.len);
	} else {
		rn_pb_put_str(&create, 1, s->table);
		if (u->opt.descriptor)
			rn_pb_put_bytes(&create, 3, u->opt.descriptor, u->opt.descriptor_len);
		rn_pb_put_uint(&create, 4, 1); /* PROTO */
		rn_pb_put_bytes(&inner, 1, create.data, create.len);
		rc = rn_pb_put_bytes(&msg, 1, inner.data, inner.len);
	}
	rc = rc ? rc : rn_grpc_frame_append(&s->out, 0, msg.data, msg.len);
	rn_buf_free(&msg);
	rn_buf_free(&inner);
	rn_buf_free(&create);
	return rc;
}

/* Moves chunks from the buffer into `out` while the window allows. */
static void refill(struct ustream *s)
{
	struct rn_uplink *u = s->u;
	if (s->state != S_OPEN || s->draining)
		return;
	if (s->out_pos == s->out.len) {
		rn_buf_reset(&s->out);
		s->out_pos = 0;
	}
	while (s->next_send < s->next_offset && s->next_send - s->acked <= u->opt.window &&
	       s->out.len - s->out_pos < (1u << 20)) {
		int rc = u->io.chunk_get(u->io.ctx, s->id, s->next_send, &s->out);
		if (rc) {
			if (rc != RN_ENOTFOUND)
				rn_log_warn("uplink", "stream %d: cannot read chunk %lld: %s", s->id,
					    (long long)s->next_send, rn_strerror(rc));
			break;
		}
		s->stats.sent = s->next_send;
		s->next_send++;
	}
}

static int has_data(struct ustream *s)
{
	refill(s);
	return s->out_pos < s->out.len;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct ustream *s = arg;
	size_t cap = size * nitems, n;
	if (!has_data(s)) {
		s->paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	n = s->out.len - s->out_pos;
	if (n > cap)
		n = cap;
	memcpy(buf, s->out.data + s->out_pos, n);
	s->out_pos += n;
	return n;
}

/* Applies one PersistentStreamResponse. Returns 0, or -1 to abort the call (fault). */
static int on_response(struct ustream *s, const uint8_t *p, size_t len)
{
	struct rn_uplink *u = s->u;
	struct rn_up_event ev[4];
	int n = rn_uplink_decode_response(p, len, ev, 4);

	if (n < 0) {
		set_err(u, "stream %d: malformed response message from the server", s->id);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct rn_up_event *e = &ev[i];
		switch (e->kind) {
		case RN_UP_CREATED:
			if (s->state != S_OPENING || s->server_id[0] ||
			    u->io.stream_id_set(u->io.ctx, s->id, e->stream_id)) {
				set_err(u, "stream %d: unexpected or unusable create_stream_response",
					s->id);
				return -1;
			}
			snprintf(s->server_id, sizeof(s->server_id), "%s", e->stream_id);
			rn_log_info("uplink", "stream %d (%s): created server stream %s", s->id,
				    s->table, e->stream_id);
			s->state = S_OPEN;
			s->stats.connected = 1;
			break;
		case RN_UP_RESUMED:
			if (s->state != S_OPENING) {
				set_err(u, "stream %d: unexpected resume_stream_response", s->id);
				return -1;
			}
			if (e->offset >= s->next_offset) {
				set_err(u, "stream %d: server claims offset %lld, newest chunk is %lld",
					s->id, (long long)e->offset, (long long)s->next_offset - 1);
				return -1;
			}
			if (e->offset > s->acked) {
				s->acked = e->offset;
				s->stats.acked = e->offset;
				u->io.acked(u->io.ctx, s->id, e->offset);
			}
			s->next_send = s->acked + 1;
			rn_log_info("uplink", "stream %d (%s): resumed %s at offset %lld", s->id,
				    s->table, s->server_id, (long long)e->offset);
			s->state = S_OPEN;
			s->stats.connected = 1;
			break;
		case RN_UP_ACK:
			if (e->offset >= s->next_send) {
				set_err(u, "stream %d: ack for offset %lld that was never sent (sent up "
					"to %lld)", s->id, (long long)e->offset,
					(long long)s->next_send - 1);
				return -1;
			}
			if (e->offset > s->acked) {
				s->acked = e->offset;
				s->stats.acked = e->offset;
				rn_backoff_reset(&s->bo);
				u->io.acked(u->io.ctx, s->id, e->offset);
			}
			break;
		case RN_UP_CLOSE:
			rn_log_info("uplink", "stream %d: server asks to close within %llds; draining",
				    s->id, (long long)e->close_secs);
			s->draining = 1;
			s->drain_until = rn_mono_us() + (e->close_secs > 0 ? e->close_secs : 1) * 1000000;
			break;
		}
	}
	s->last_rx_us = rn_mono_us();
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct ustream *s = arg;
	size_t len = size * nmemb, off = 0;
	while (off < len) {
		struct rn_grpc_msg m;
		size_t used;
		int rc = rn_grpc_deframe(&s->df, (const uint8_t *)data + off, len - off, &used, &m);
		off += used;
		if (rc < 0 || (rc == 1 && m.compressed)) {
			set_err(s->u, "stream %d: malformed response from the server", s->id);
			s->fault = 1;
			return 0; /* aborts the transfer */
		}
		if (rc == 0)
			break;
		if (on_response(s, m.data, m.len)) {
			s->fault = 1;
			return 0;
		}
	}
	return len;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct ustream *s = arg;
	size_t len = size * nitems;
	if (len > 12 && !strncasecmp(data, "grpc-status:", 12)) {
		s->grpc_status = atoi(data + 12);
	} else if (len > 13 && !strncasecmp(data, "grpc-message:", 13)) {
		size_t n = len - 13;
		const char *v = data + 13;
		while (n && (*v == ' '))
			v++, n--;
		while (n && (v[n - 1] == '\r' || v[n - 1] == '\n'))
			n--;
		if (n >= sizeof(s->grpc_message))
			n = sizeof(s->grpc_message) - 1;
		memcpy(s->grpc_message, v, n);
		s->grpc_message[n] = 0;
	}
	return len;
}

static int open_call(struct ustream *s)
{
	struct rn_uplink *u = s->u;
	char hdr[512];
	CURL *e;

	close_call(s);
	s->grpc_status = -1;
	s->grpc_message[0] = 0;
	s->fault = 0;
	s->state = S_OPENING;
	if (queue_open_message(s))
		return RN_ENOMEM;
	if (!(e = curl_easy_init()))
		return RN_ENOMEM;
	s->easy = e;
	s->hdrs = curl_slist_append(s->hdrs, "content-type: application/grpc");
	s->hdrs = curl_slist_append(s->hdrs, "te: trailers");
	s->hdrs = curl_slist_append(s->hdrs, "grpc-encoding: zstd");
	s->hdrs = curl_slist_append(s->hdrs, "grpc-accept-encoding: identity");
	s->hdrs = curl_slist_append(s->hdrs, "Expect:");
	s->hdrs = curl_slist_append(s->hdrs, u->ua);
	snprintf(hdr, sizeof(hdr), "x-databricks-zerobus-table-name: %s", s->table);
	s->hdrs = curl_slist_append(s->hdrs, hdr);
	if (u->opt.token) {
		snprintf(hdr, sizeof(hdr), "authorization: Bearer %s", u->opt.token);
		s->hdrs = curl_slist_append(s->hdrs, hdr);
	}
	curl_easy_setopt(e, CURLOPT_URL, u->url);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 strncmp(u->url, "https:", 6) ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
						      : CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opt.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	s->errbuf[0] = 0;
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
		return RN_ENOMEM;
	s->last_rx_us = rn_mono_us();
	return 0;
}

/* The call ended (by the server, the network, or us): schedule the reconnect. */
static void call_ended(struct ustream *s, CURLcode cc)
{
	struct rn_uplink *u = s->u;
	int terminal = rn_backoff_terminal_status(s->grpc_status);
	int64_t delay;

	if (s->fault)
		rn_log_error("uplink", "stream %d: protocol fault, reconnecting: %s", s->id, u->err);
	else if (s->grpc_status > 0)
		set_err(u, "stream %d (%s): server ended the call: %s %s", s->id, s->table,
			rn_grpc_status_name(s->grpc_status), s->grpc_message);
	else if (cc != CURLE_OK)
		set_err(u, "stream %d (%s): %s", s->id, s->table,
			s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
	else
		set_err(u, "stream %d (%s): call ended", s->id, s->table);
	s->stats.last_status = s->grpc_status;
	if (s->grpc_status == 5 && s->server_id[0]) {
		/* the server does not know our stream: it lost its state. Loud, and keep trying:
		 * never drop the buffered chunks. */
		rn_log_error("uplink", "stream %d: server does not know stream %s; data stays "
			     "buffered until an operator resolves it", s->id, s->server_id);
	}
	delay = rn_backoff_next(&s->bo, rnd01(u), terminal);
	if (!s->fault)
		rn_log(terminal ? RN_LOG_ERROR : RN_LOG_WARN, "uplink", "%s; retry in %lld ms",
		       u->err, (long long)delay);
	close_call(s);
	s->state = S_BACKOFF;
	s->retry_at = rn_mono_us() + delay * 1000;
	s->stats.reconnects++;
}

int rn_uplink_step(struct rn_uplink *u)
{
	int64_t now = rn_mono_us();
	int running, again;

	int opening = 0;
	for (size_t i = 0; i < u->n; i++)
		opening |= u->streams[i]->state == S_OPENING;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		/* One call set up at a time, so a burst of reconnects after an outage does not
		 * open every stream's connection in the same instant. */
		if (s->state == S_BACKOFF && now >= s->retry_at && !opening) {
			opening = 1;
			if (open_call(s)) {
				call_ended(s, CURLE_OUT_OF_MEMORY);
				continue;
			}
		}
		if (s->state != S_BACKOFF && s->easy) {
			int inflight = s->next_send - 1 > s->acked;
			if (s->state == S_OPENING || inflight) {
				if (now - s->last_rx_us > (int64_t)u->opt.ack_timeout_ms * 1000) {
					set_err(u, "stream %d: no answer for %d ms", s->id,
						u->opt.ack_timeout_ms);
					s->fault = 1;
					call_ended(s, CURLE_OPERATION_TIMEDOUT);
					continue;
				}
			}
			if (s->draining && (!inflight || now > s->drain_until)) {
				rn_log_info("uplink", "stream %d: drained, reconnecting", s->id);
				close_call(s);
				s->state = S_BACKOFF;
				s->retry_at = now;
			}
		}
	}
	for (int round = 0; round < 3; round++) {
		CURLMsg *m;
		int left;
		curl_multi_perform(u->multi, &running);
		while ((m = curl_multi_info_read(u->multi, &left))) {
			struct ustream *s = NULL;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			if (s)
				call_ended(s, m->data.result);
		}
		again = 0;
		for (size_t i = 0; i < u->n; i++) {
			struct ustream *s = u->streams[i];
			if (s->easy && s->paused && has_data(s)) {
				s->paused = 0;
				curl_easy_pause(s->easy, CURLPAUSE_CONT);
				again = 1;
			}
		}
		if (!again)
			break;
	}
	return 0;
}

int rn_uplink_wait(struct rn_uplink *u, struct rn_uplink_waitfd *fds, int nfds,
		   int timeout_ms)
{
	struct curl_waitfd wfd[16];
	int64_t now = rn_mono_us();
	int n = nfds > 16 ? 16 : nfds;

	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		if (s->state == S_BACKOFF) {
			int64_t ms = (s->retry_at - now) / 1000;
			if (ms < timeout_ms)
				timeout_ms = ms < 0 ? 0 : (int)ms;
		} else if (s->paused && s->state == S_OPEN && s->next_send < s->next_offset &&
			   s->next_send - s->acked <= u->opt.window) {
			timeout_ms = 0; /* data waiting for step() to unpause */
		}
	}
	for (int i = 0; i < n; i++) {
		wfd[i].fd = fds[i].fd;
		wfd[i].events = (short)((fds[i].events & POLLIN_COMPAT ? CURL_WAIT_POLLIN : 0) |
					(fds[i].events & POLLOUT_COMPAT ? CURL_WAIT_POLLOUT : 0));
		wfd[i].revents = 0;
	}
	if (curl_multi_poll(u->multi, wfd, (unsigned)n, timeout_ms, NULL) != CURLM_OK)
		return RN_EIO;
	for (int i = 0; i < n; i++)
		fds[i].revents = (short)((wfd[i].revents & CURL_WAIT_POLLIN ? POLLIN_COMPAT : 0) |
					 (wfd[i].revents & CURL_WAIT_POLLOUT ? POLLOUT_COMPAT : 0));
	return 0;
}

void rn_uplink_wakeup(struct rn_uplink *u)
{
	curl_multi_wakeup(u->multi);
}

int rn_uplink_stream_stats(const struct rn_uplink *u, int stream,
			   struct rn_uplink_stream_stats *st)
{
	const struct ustream *s = find(u, stream);
	if (!s)
		return RN_ENOTFOUND;
	*st = s->stats;
	return 0;
}

int rn_uplink_idle(const struct rn_uplink *u)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->streams[i]->acked < u->streams[i]->next_offset - 1)
			return 0;
	return 1;
}

const char *rn_uplink_errmsg(const struct rn_uplink *u)
{
	return u->err;
}
