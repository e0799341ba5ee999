/*
 * The uplink over libcurl's multi interface; see uplink.h and DESIGN.md. One easy handle per
 * stream carries one long-lived PersistentStream call. Calls are not multiplexed on one
 * connection: Debian 12's libcurl 7.88 corrupts a long-lived upload when a second one joins
 * its HTTP/2 connection (DESIGN.md), so each call has its own connection, opened and closed
 * with it (that and the other 7.88 workarounds: DESIGN.md). The
 * request body is fed by a read callback from `out` (the create/resume message, then chunk
 * bytes fetched from the buffer as the window allows); when there is nothing to send, or the
 * bandwidth cap has no tokens, the callback pauses the upload, and step() unpauses it when
 * data (and tokens) are available again. Responses are deframed in the write callback, only
 * after the headers said this is a gRPC answer; headers and trailers (grpc-status,
 * grpc-retry-pushback-ms) go through headers.c. When a call ends, call_ended() names what
 * went wrong, logs it once per episode (backoff.c) and schedules the reconnect.
 */
#include "uplink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/select.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#define POLLIN_COMPAT POLLIN
#define POLLOUT_COMPAT POLLOUT

#include "backoff.h"
#include "body.h"
#include "headers.h"
#include "ratelimit.h"
#include "response.h"
#include "retain.h"
#include "rn_addr.h"
#include "token.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_pbwire.h"
#include "rn_zstd.h"

#define RN_UPLINK_HEALTH_MAX 16384  /* bytes of one report's JSON (docs/protocol.md) */
#define RN_UPLINK_HEALTH_FIELD 1001 /* PersistentStreamRequest.runnel_agent_health */

enum st_state { S_BACKOFF, S_OPENING, S_OPEN };

/* A call that has been open this long without failing ends a fault episode: the next
 * failure is logged loudly again and backs off from the base. */
#define EPISODE_QUIET_US ((int64_t)10 * 1000000)

/* A paused upload is unpaused this often even with nothing to send: libcurl 7.88 finishes a
 * transfer whose connection the server closed (or whose both directions are done) only when
 * the upload is not paused; the read callback pauses it again at once. */
#define POKE_US ((int64_t)1000000)

/* Kinds of failure, for episodes: a repeat of the same kind is logged at debug level. */
enum { K_FAULT = 1000, K_HTTP = 2000, K_GRPC = 3000, K_CURL = 4000 };

/* Protocol faults: the server (or whatever answers in its place) said something that is not
 * a valid answer. The call is aborted and retried; nothing is taken as acked. */
enum fault {
	F_NONE = 0,
	F_FRAMING,   /* response body is not gRPC length-prefixed messages */
	F_MESSAGE,   /* a message is not a PersistentStreamResponse */
	F_SEQUENCE,  /* a response that does not fit the call's state */
	F_ACK,       /* ack for an offset never sent */
	F_RESUME,    /* resume offset beyond every chunk we have */
	F_NOT_GRPC,  /* HTTP/1.x, non-200 status or wrong content-type */
	F_NO_STATUS, /* the call ended without a grpc-status */
	F_SILENT,    /* no answer within ack_timeout_ms */
	F_LOCAL      /* our side failed (out of memory), not the server */
};

#define SOCKS_MAX 4

struct ustream {
	struct rn_uplink *u;
	int id;
	char *table;
	char server_id[64];
	enum st_state state;
	CURL *easy;
	struct curl_slist *hdrs;
	int paused;
	int draining;           /* close_stream_signal seen: no new chunks on this call */
	int64_t drain_until;    /* mono us */
	struct rn_up_body body; /* the request body: queued messages, a health report (body.h) */
	int health_fresh;       /* the call takes reports and has had none yet */
	struct rn_grpc_deframer df;
	int64_t acked;            /* highest offset known durable on the server (= rt.acked) */
	struct rn_retain rt;      /* what the agent may delete (retain.h) */
	int64_t next_send;        /* next chunk offset to queue */
	int64_t next_offset;      /* one past the newest chunk in the buffer */
	int64_t last_rx_us;       /* mono time of the last response message or of the call start */
	int64_t last_tx_us;       /* mono time body bytes were last handed to libcurl */
	int64_t poke_us;          /* mono time of the last unpause (see POKE_US) */
	int64_t open_us;          /* mono time create/resume was answered on this call */
	int64_t retry_at;         /* mono us, in S_BACKOFF */
	struct rn_up_headers hdr; /* response headers and trailers of the current call */
	enum fault fault;         /* the call was aborted for this protocol fault */
	char fault_msg[224];
	struct rn_backoff bo;
	struct rn_episode ep;
	struct rn_uplink_stream_stats stats;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t tok_gen; /* the OAuth token generation the current call carries */
	int auth_retried; /* UNAUTHENTICATED already led to a fresh token; reset by a good open */
	/* the sockets libcurl opened for this stream's calls and has not closed yet (several
	 * while happy eyeballs races addresses; one once connected): end_unread_calls() */
	curl_socket_t socks[SOCKS_MAX];
	int nsocks;
	int unread; /* libcurl stopped reading this paused call: unpaused once to let it end */
};

/* The OAuth client-credentials state (token.h has the pure parts). One token for all
 * streams; at most one request to the token endpoint at a time. */
struct tokenst {
	int on;
	int h2pk; /* speak HTTP/2 prior knowledge (the token URL is the uplink's) */
	int own;  /* the token URL is on the uplink's server (pinned_key applies) */
	char url[1024];
	char *basic;         /* "authorization: Basic ..." (holds the secret: wiped at the end) */
	char *token;         /* RN_TOKEN_MAX + 1 bytes; "" = none usable */
	uint64_t gen;        /* incremented by each token received */
	int64_t expires_us;  /* mono time the token expires */
	int64_t refresh_us;  /* mono time to fetch the next one */
	int64_t next_try_us; /* mono time the next fetch may start (backoff after failures) */
	int64_t valid_until; /* unix seconds, for status */
	CURL *easy;          /* the request under way, or NULL */
	struct curl_slist *hdrs;
	struct rn_buf body; /* its answer, capped at RN_TOKEN_BODY_MAX */
	int toobig;
	struct rn_backoff bo;
	struct rn_episode ep;
	uint64_t fetches, failures;
	char last_error[256];
	char errbuf[CURL_ERROR_SIZE];
};

struct rn_uplink {
	struct rn_uplink_options opt;
	struct rn_uplink_io io;
	CURLM *multi;
	struct ustream **streams;
	size_t n, cap;
	size_t rr;              /* first stream the next unpause round looks at (fairness) */
	struct rn_ratelimit rl; /* the bandwidth cap, shared by all streams */
	char url[1024];
	char ua[160];
	char err[512];
	unsigned rnd;
	struct tokenst tok;
	/* Busy-loop guard (rn_uplink_wait): body bytes given to curl plus response bytes taken
	 * from it, the count at the last wait, and how many waits in a row returned at once
	 * with nothing moved. */
	uint64_t moved, moved_seen;
	int quick;
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
	struct rn_url parsed;
	const char *why;
	size_t ul;

	*out = NULL;
	if (!opt || !io || !io->chunk_get || !io->acked || !io->stream_id_set)
		return RN_EINVAL;
	/* the config loader checks the URL with its line; this catches options made by hand,
	 * before curl would guess at them (a missing host, port 99999) */
	if (rn_addr_parse_url(opt->url, &parsed, &why)) {
		rn_log_error("uplink", "url \"%s\": %s", opt->url ? opt->url : "", why);
		return RN_EINVAL;
	}
	if (!(u = rn_calloc(1, sizeof(*u))))
		return RN_ENOMEM;
	u->opt = *opt;
	u->io = *io;
	u->opt.window = opt->window > 0 ? opt->window : 32; /* DESIGN.md: window */
	u->opt.connect_timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 10000;
	u->opt.ack_timeout_ms = opt->ack_timeout_ms > 0 ? opt->ack_timeout_ms : 60000;
	u->opt.backoff_max_ms = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : 30000;
	u->opt.slow_retry_ms = opt->slow_retry_ms > 0 ? opt->slow_retry_ms : u->opt.backoff_max_ms;
	rn_ratelimit_init(&u->rl, opt->max_bytes_per_sec, rn_mono_us());
	ul = strlen(opt->url);
	snprintf(u->url, sizeof(u->url), "%.*s/databricks.zerobus.Zerobus/PersistentStream",
		 (int)(opt->url[ul - 1] == '/' ? ul - 1 : ul), opt->url);
	snprintf(u->ua, sizeof(u->ua), "user-agent: %s",
		 opt->user_agent ? opt->user_agent : "runnel-agent/" RN_VERSION);
	u->opt.url = NULL;
	u->opt.user_agent = NULL;
	u->opt.token = NULL;
	u->opt.descriptor = NULL;
	u->opt.ca_file = u->opt.cert_file = u->opt.key_file = u->opt.pinned_key = NULL;
	if (opt->token && !(u->opt.token = rn_strdup(opt->token)))
		goto nomem;
	if ((opt->ca_file && !(u->opt.ca_file = rn_strdup(opt->ca_file))) ||
	    (opt->cert_file && !(u->opt.cert_file = rn_strdup(opt->cert_file))) ||
	    (opt->key_file && !(u->opt.key_file = rn_strdup(opt->key_file))) ||
	    (opt->pinned_key && !(u->opt.pinned_key = rn_strdup(opt->pinned_key))))
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
	if (opt->client_id && opt->client_secret) {
		struct tokenst *t = &u->tok;
		size_t bl = 32 + (strlen(opt->client_id) + strlen(opt->client_secret) + 3) / 3 * 4;
		size_t base = opt->url[ul - 1] == '/' ? ul - 1 : ul;
		t->on = 1;
		if (opt->token_url)
			snprintf(t->url, sizeof(t->url), "%s", opt->token_url);
		else
			snprintf(t->url, sizeof(t->url), "%.*s/oidc/v1/token", (int)base, opt->url);
		/* the uplink's own server speaks HTTP/2 only on an http:// URL (h2c); another
		 * http:// endpoint is taken for an HTTP/1.1 one */
		t->own = !strncmp(t->url, opt->url, base) && t->url[base] == '/';
		t->h2pk = !strncmp(t->url, "http:", 5) && t->own;
		if (!(t->basic = rn_malloc(bl)) || !(t->token = rn_calloc(1, RN_TOKEN_MAX + 1)) ||
		    rn_token_basic_header(opt->client_id, opt->client_secret, t->basic, bl))
			goto nomem;
		t->bo.min_ms = opt->backoff_min_ms > 0 ? opt->backoff_min_ms : 200;
		t->bo.max_ms = u->opt.backoff_max_ms;
		t->bo.slow_ms = u->opt.slow_retry_ms;
	}
	u->opt.client_id = u->opt.client_secret = u->opt.token_url = NULL;
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
	if (s->nsocks > SOCKS_MAX)
		s->nsocks = 0; /* lost count: start again with the next call's sockets */
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	rn_up_body_reset(&s->body);
	s->health_fresh = 0;
	s->stats.health = 0;
	rn_grpc_deframer_reset(&s->df);
	s->paused = 0;
	s->unread = 0;
	s->draining = 0;
	s->stats.connected = 0;
	s->stats.sent = -1;
}

/* Marks the call as failed for `f` with a description; write and read callbacks then abort
 * the transfer and call_ended() reports it. The first fault of a call wins. */
static void set_fault(struct ustream *s, enum fault f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_fault(struct ustream *s, enum fault f, const char *fmt, ...)
{
	va_list ap;
	if (s->fault)
		return;
	s->fault = f;
	va_start(ap, fmt);
	vsnprintf(s->fault_msg, sizeof(s->fault_msg), fmt, ap);
	va_end(ap);
}

void rn_uplink_destroy(struct rn_uplink *u)
{
	if (!u)
		return;
	/* every call first: closing one may close sockets that closesocket_cb looks up in
	 * every stream, so none may be freed before all are closed */
	for (size_t i = 0; i < u->n; i++)
		close_call(u->streams[i]);
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		rn_up_body_free(&s->body);
		rn_grpc_deframer_free(&s->df);
		rn_free(s->table);
		rn_free(s);
	}
	rn_free(u->streams);
	u->streams = NULL; /* closesocket_cb may still run in curl_multi_cleanup() */
	u->n = 0;
	if (u->tok.easy) {
		curl_multi_remove_handle(u->multi, u->tok.easy);
		curl_easy_cleanup(u->tok.easy);
	}
	curl_slist_free_all(u->tok.hdrs);
	if (u->tok.basic) {
		memset(u->tok.basic, 0, strlen(u->tok.basic));
		rn_free(u->tok.basic);
	}
	if (u->tok.token) {
		memset(u->tok.token, 0, RN_TOKEN_MAX + 1);
		rn_free(u->tok.token);
	}
	rn_buf_free(&u->tok.body);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	rn_free((void *)u->opt.token);
	rn_free((void *)u->opt.ca_file);
	rn_free((void *)u->opt.cert_file);
	rn_free((void *)u->opt.key_file);
	rn_free((void *)u->opt.pinned_key);
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
	rn_retain_init(&s->rt, def->acked);
	s->next_offset = def->next_offset;
	s->next_send = def->acked + 1;
	s->state = S_BACKOFF;
	s->retry_at = 0; /* connect on the next step */
	s->df.max_msg = 1 << 20;
	s->bo.min_ms = u->opt.backoff_min_ms;
	s->bo.max_ms = u->opt.backoff_max_ms;
	s->bo.slow_ms = u->opt.slow_retry_ms;
	rn_up_headers_reset(&s->hdr);
	s->stats.acked = def->acked;
	s->stats.committed = def->acked;
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
	rc = rc ? rc : rn_grpc_frame_append(&s->body.out, 0, msg.data, msg.len);
	rn_buf_free(&msg);
	rn_buf_free(&inner);
	rn_buf_free(&create);
	return rc;
}

/* Body bytes read ahead from the buffer for curl: more is not faster (curl takes at most
 * its upload buffer per call) and costs resident memory on a long backlog. */
#define OUT_AHEAD (64u << 10)

/* A chunk may be sent now: there is one, and the window has room for it. */
static int can_send(const struct ustream *s)
{
	return s->next_send < s->next_offset && s->next_send - s->acked <= s->u->opt.window;
}

/* Moves chunks from the buffer into `out` while the window allows. */
static void refill(struct ustream *s)
{
	struct rn_uplink *u = s->u;
	if (s->state != S_OPEN || s->draining)
		return;
	/* curl takes the body in pieces and more is appended before it has it all: drop what
	 * was sent, or the buffer grows by every byte of a long backlog. Only before an
	 * append, when less than OUT_AHEAD is left to move: compacting each time curl had taken
	 * a piece moved the rest of a 1 MB chunk up to four times (the agent's largest copy
	 * while a backlog drained, docs/benchmarks.md). A body sent whole is reset at once. */
	rn_up_body_compact(&s->body, rn_up_body_out_pending(&s->body) < OUT_AHEAD && can_send(s)
					     ? 1
					     : SIZE_MAX);
	while (can_send(s) && rn_up_body_out_pending(&s->body) < OUT_AHEAD) {
		int rc = u->io.chunk_get(u->io.ctx, s->id, s->next_send, &s->body.out);
		if (rc) {
			if (rc != RN_ENOTFOUND)
				rn_log_warn("uplink", "stream %d: cannot read chunk %lld: %s",
					    s->id, (long long)s->next_send, rn_strerror(rc));
			break;
		}
		s->stats.sent = s->next_send;
		s->next_send++;
	}
}

/* Body bytes ready to go (after refilling from the buffer), a health report's included. */
static size_t pending(struct ustream *s)
{
	refill(s);
	return rn_up_body_pending(&s->body);
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct ustream *s = arg;
	struct rn_uplink *u = s->u;
	size_t cap = size * nitems, n;
	if (s->fault)
		return CURL_READFUNC_ABORT;
	if (!(n = pending(s))) {
		s->paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	if (n > cap)
		n = cap;
	if (u->rl.rate) {
		int64_t now = rn_mono_us(), got = rn_ratelimit_take(&u->rl, now, (int64_t)n);
		if (!got) {
			/* out of tokens: step() resumes when rn_ratelimit_wait_us() has passed */
			s->paused = 1;
			s->stats.rate_waits++;
			return CURL_READFUNC_PAUSE;
		}
		n = (size_t)got;
	}
	/* a health report goes between two chunk messages, and once begun, to its end */
	int data;
	n = rn_up_body_read(&s->body, (uint8_t *)buf, n, &data);
	/* a report is not answered: its bytes must not hold off the ack timeout of chunks in
	 * flight */
	if (data)
		s->last_tx_us = rn_mono_us();
	u->moved += n;
	s->stats.bytes_sent += n;
	return n;
}

/* Tells the agent it may delete the stream's chunks up to rt.released. */
static void release_chunks(struct ustream *s)
{
	s->stats.committed = s->rt.released;
	s->u->io.acked(s->u->io.ctx, s->id, s->rt.released);
}

/* Applies the events of one PersistentStreamResponse (rn_up_msg_fn). Returns 0, or -1 to
 * abort the call (fault). */
static int on_response(void *ctx, const struct rn_up_event *ev, int n)
{
	struct ustream *s = ctx;
	struct rn_uplink *u = s->u;

	for (int i = 0; i < n; i++) {
		const struct rn_up_event *e = &ev[i];
		switch (e->kind) {
		case RN_UP_CREATED:
			if (s->state != S_OPENING || s->server_id[0]) {
				set_fault(s, F_SEQUENCE, "unexpected create_stream_response (%s)",
					  s->server_id[0] ? "the call resumed a stream"
							  : "the stream is already open");
				return -1;
			}
			if (u->io.stream_id_set(u->io.ctx, s->id, e->stream_id)) {
				set_fault(s, F_LOCAL, "cannot persist the new server stream id %s",
					  e->stream_id);
				return -1;
			}
			snprintf(s->server_id, sizeof(s->server_id), "%s", e->stream_id);
			s->health_fresh = s->stats.health = s->hdr.health;
			rn_retain_call(&s->rt, s->hdr.committed_acks);
			s->stats.committed_acks = s->rt.keep;
			s->auth_retried = 0;
			rn_log_info("uplink", "stream %d (%s): created server stream %s", s->id,
				    s->table, e->stream_id);
			s->state = S_OPEN;
			s->open_us = rn_mono_us();
			s->stats.connected = 1;
			break;
		case RN_UP_RESUMED:
			if (s->state != S_OPENING) {
				set_fault(s, F_SEQUENCE,
					  "unexpected resume_stream_response on an open "
					  "call");
				return -1;
			}
			if (e->offset >= s->next_offset) {
				set_fault(
					s, F_RESUME,
					"resume answer claims offset %lld is committed, "
					"but the newest chunk this agent has is %lld (never sent); "
					"nothing is taken as acked",
					(long long)e->offset, (long long)s->next_offset - 1);
				return -1;
			}
			int release;
			s->health_fresh = s->stats.health = s->hdr.health;
			rn_retain_call(&s->rt, s->hdr.committed_acks);
			s->stats.committed_acks = s->rt.keep;
			/* the window restarts from the answer (retain.h): a server that does not
			 * have what another one acked (lost with its disk) answers less */
			s->acked = rn_retain_resumed(&s->rt, e->offset, &release);
			s->stats.acked = s->acked;
			if (release)
				release_chunks(s);
			s->next_send = s->acked + 1;
			s->auth_retried = 0;
			/* quiet while a fault episode is open: it would repeat on every retry */
			rn_log(s->ep.failures ? RN_LOG_DEBUG : RN_LOG_INFO, "uplink",
			       "stream %d (%s): resumed %s at offset %lld", s->id, s->table,
			       s->server_id, (long long)e->offset);
			s->state = S_OPEN;
			s->open_us = rn_mono_us();
			s->stats.connected = 1;
			break;
		case RN_UP_ACK:
			if (s->state != S_OPEN) {
				set_fault(s, F_SEQUENCE, "ack before the create/resume answer");
				return -1;
			}
			if (e->offset >= s->next_send) {
				set_fault(s, F_ACK,
					  "ack for offset %lld that was never sent (sent up "
					  "to %lld); nothing is taken as acked",
					  (long long)e->offset, (long long)s->next_send - 1);
				return -1;
			}
			if (rn_retain_ack(&s->rt, e->offset, e->committed))
				release_chunks(s);
			s->acked = s->rt.acked;
			s->stats.acked = s->acked;
			break;
		case RN_UP_CLOSE:
			if (!s->draining)
				rn_log_info("uplink",
					    "stream %d: server asks to close within %llds; "
					    "draining",
					    s->id, (long long)e->close_secs);
			s->draining = 1;
			s->drain_until =
				rn_mono_us() + (e->close_secs > 0 ? e->close_secs : 1) * 1000000;
			break;
		}
	}
	s->last_rx_us = rn_mono_us();
	return 0;
}

/* 0 if the response headers announce a gRPC answer over HTTP/2; otherwise a fault with
 * what they announce instead. */
static int check_grpc_headers(struct ustream *s)
{
	const struct rn_up_headers *h = &s->hdr;
	if (h->http_major == 1) {
		set_fault(s, F_NOT_GRPC,
			  "the server answered over HTTP/1.x (status %d); gRPC "
			  "needs HTTP/2",
			  h->http_status);
		return -1;
	}
	if (h->http_status != 200) {
		set_fault(s, F_NOT_GRPC,
			  "HTTP status %d%s%s, not a gRPC answer (a proxy, a "
			  "web server, or the wrong URL?)",
			  h->http_status, h->content_type[0] ? ", content-type " : "",
			  h->content_type);
		return -1;
	}
	if (!h->grpc_ct) {
		set_fault(s, F_NOT_GRPC,
			  "content-type \"%s\" is not application/grpc, not a "
			  "gRPC answer",
			  h->content_type);
		return -1;
	}
	return 0;
}

/* The first bytes of `p` for a log line, unprintables as '.'. */
static void snippet(char *out, size_t cap, const char *p, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.';
	out[n] = 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct ustream *s = arg;
	size_t len = size * nmemb, mlen;
	char head[24];
	s->u->moved += len;
	if (s->fault || check_grpc_headers(s))
		return 0; /* aborts the transfer */
	switch (rn_uplink_feed(&s->df, (const uint8_t *)data, len, on_response, s, &mlen)) {
	case RN_UP_FEED_OK: return len;
	case RN_UP_FEED_STOPPED: return 0; /* on_response set the fault */
	case RN_UP_FEED_NOMEM:
		set_fault(s, F_LOCAL, "out of memory while reading the response");
		return 0;
	case RN_UP_FEED_TOOBIG:
		snippet(head, sizeof(head), data, len);
		set_fault(s, F_FRAMING,
			  "response body is not gRPC framing (a length prefix over "
			  "1 MiB; the body starts \"%s\")",
			  head);
		return 0;
	case RN_UP_FEED_BADFLAG:
		snippet(head, sizeof(head), data, len);
		set_fault(s, F_FRAMING,
			  "response body is not gRPC framing (a compressed-flag byte "
			  "other than 0 or 1; the body starts \"%s\")",
			  head);
		return 0;
	case RN_UP_FEED_COMPRESSED:
		set_fault(s, F_FRAMING,
			  "a compressed response message, but the call accepts "
			  "only identity");
		return 0;
	case RN_UP_FEED_BADMSG:
		set_fault(s, F_MESSAGE,
			  "a %zu-byte response message is not a valid "
			  "PersistentStreamResponse (bad protobuf)",
			  mlen);
		return 0;
	}
	return 0;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct ustream *s = arg;
	size_t len = size * nitems;
	rn_up_headers_line(&s->hdr, data, len);
	return len;
}

/* Notes each socket libcurl opens for a call (CURLOPT_SOCKOPTFUNCTION; clientp = the
 * stream, alive while its transfer connects). Past SOCKS_MAX the stream's sockets are not
 * known and end_unread_calls() leaves it alone. */
static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct ustream *s = clientp;
	(void)purpose;
	if (s->nsocks < SOCKS_MAX)
		s->socks[s->nsocks] = fd;
	s->nsocks++;
	return CURL_SOCKOPT_OK;
}

/* Closes a socket for libcurl (CURLOPT_CLOSESOCKETFUNCTION) and forgets it. clientp is the
 * uplink, not the stream: libcurl may close a connection after its easy handle is gone. */
static int closesocket_cb(void *clientp, curl_socket_t fd)
{
	struct rn_uplink *u = clientp;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		int n = s->nsocks < SOCKS_MAX ? s->nsocks : SOCKS_MAX;
		for (int k = 0; k < n; k++) {
			if (s->socks[k] != fd)
				continue;
			s->socks[k] = s->socks[n - 1];
			if (s->nsocks <= SOCKS_MAX)
				s->nsocks--;
			break;
		}
	}
	return close(fd);
}

/*
 * TLS of a request: verification stays on (libcurl's default); these narrow whom the agent
 * trusts and say who it is. The calls and the token request share them (the token endpoint
 * is the same server by default, and a private CA or mTLS applies to it too); the pin names
 * the ingest server's key, so it is applied to the token request only when that goes to the
 * uplink's own server (pin = 0 otherwise).
 */
static void tls_setopts(CURL *e, const struct rn_uplink_options *o, int pin)
{
	if (o->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	if (o->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, o->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (o->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, o->key_file);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (pin && o->pinned_key)
		curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, o->pinned_key);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
}

static int open_call(struct ustream *s)
{
	struct rn_uplink *u = s->u;
	char hdr[RN_CONF_HDR_MAX + 64]; /* the longest header: a token of up to RN_CONF_HDR_MAX */
	CURL *e;

	close_call(s);
	rn_up_headers_reset(&s->hdr);
	s->fault = F_NONE;
	s->fault_msg[0] = 0;
	s->state = S_OPENING;
	s->next_send = s->acked + 1;
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
	/* keep chunks until the table has them (retain.h) */
	s->hdrs = curl_slist_append(s->hdrs, "runnel-committed-acks: 1");
	/* offer health reports; sent only if the server answers the same (docs/protocol.md) */
	s->hdrs = curl_slist_append(s->hdrs, "runnel-health: 1");
	s->hdrs = curl_slist_append(s->hdrs, u->ua);
	snprintf(hdr, sizeof(hdr), "x-databricks-zerobus-table-name: %s", s->table);
	s->hdrs = curl_slist_append(s->hdrs, hdr);
	if (u->opt.boot_id) { /* lets the server place records made before the clock was set */
		snprintf(hdr, sizeof(hdr), "x-runnel-clock: %s %lld", u->opt.boot_id,
			 (long long)rn_boot_us());
		s->hdrs = curl_slist_append(s->hdrs, hdr);
	}
	if (u->tok.on) {
		snprintf(hdr, sizeof(hdr), "authorization: Bearer %s", u->tok.token);
		s->hdrs = curl_slist_append(s->hdrs, hdr);
		s->tok_gen = u->tok.gen;
	} else if (u->opt.token) {
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
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, s);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
	/* A fresh connection per call, closed with it: libcurl 7.88 fails the next call on a
	 * connection whose previous stream was reset or aborted ("Error in the HTTP2 framing
	 * layer"), and a reused connection may be one the server is about to drop. */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opt.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* the agent speaks HTTP/2 and nothing else: no other scheme, even by mistake */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	tls_setopts(e, &u->opt, 1);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 64L * 1024); /* acks are small */
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	s->errbuf[0] = 0;
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
		return RN_ENOMEM;
	s->last_rx_us = rn_mono_us();
	s->last_tx_us = 0;
	return 0;
}

/* Kinds of transport failure. A fault episode is one kind, not one curl code: a flapping
 * link alternates between several codes that all mean "connection lost". */
enum tclass {
	T_DNS = 1,
	T_CONNECT,
	T_TIMEOUT,
	T_TLS,
	T_H2,
	T_H2_STREAM,
	T_LOST,
	T_NOTHING,
	T_NOT_H2,
	T_OTHER
};

/* What kind of transport failure a curl code is, in words; *cls gets the kind. */
static const char *curl_class(CURLcode cc, enum tclass *cls)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		*cls = T_DNS;
		return "DNS: cannot resolve the server's host name";
	case CURLE_COULDNT_CONNECT: *cls = T_CONNECT; return "connect: cannot reach the server";
	case CURLE_OPERATION_TIMEDOUT: *cls = T_TIMEOUT; return "timeout";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED: *cls = T_TLS; return "TLS: handshake failed";
	case CURLE_HTTP2: *cls = T_H2; return "HTTP/2: connection-level protocol error";
	case CURLE_HTTP2_STREAM: *cls = T_H2_STREAM; return "HTTP/2: the call's stream was reset";
	case CURLE_GOT_NOTHING:
		*cls = T_NOTHING;
		return "no HTTP/2 answer: the server closed the connection";
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_FAIL_REWIND: /* libcurl wanted to resend the call itself (no seek
					 callback on purpose: the uplink reopens calls) */
		*cls = T_LOST;
		return "connection lost";
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL: *cls = T_NOT_H2; return "not an HTTP/2 answer";
	default: *cls = T_OTHER; return "transfer failed";
	}
}

/* The call ended (by the server, the network, or us): say why, once per episode, and
 * schedule the reconnect. Never acks or drops anything. */
static void call_ended(struct ustream *s, CURLcode cc)
{
	struct rn_uplink *u = s->u;
	const struct rn_up_headers *h = &s->hdr;
	int64_t now = rn_mono_us(), delay, pushback = -1;
	int key, status = -1, terminal = 0, drained = 0;
	enum rn_log_level lvl = RN_LOG_WARN;
	char why[480];

	/* The server's own verdict counts only on a real gRPC answer. A trailers-only answer
	 * without content-type is taken at its word: its grpc-status is all there is. */
	if (!s->fault && h->http_status &&
	    !(h->http_major == 2 && h->http_status == 200 && !h->content_type[0] &&
	      h->grpc_status >= 0))
		check_grpc_headers(s);
	if (s->fault) {
		key = K_FAULT + (int)s->fault;
		lvl = s->fault == F_SILENT ? RN_LOG_WARN : RN_LOG_ERROR;
		if (s->fault == F_NOT_GRPC && h->http_major != 1 && h->http_status != 200) {
			/* gRPC's HTTP-to-status mapping decides fast or slow retry (401, 403 and
			 * 404 are terminal) */
			status = rn_up_http_to_grpc(h->http_status);
			key = K_HTTP +
			      (h->http_status > 0 && h->http_status < 1000 ? h->http_status : 0);
		}
		snprintf(why, sizeof(why), "%s: %s",
			 s->fault == F_SILENT  ? "timeout"
			 : s->fault == F_LOCAL ? "local failure"
					       : "bad answer from the server",
			 s->fault_msg);
		if (s->fault != F_LOCAL)
			s->stats.faults++;
	} else if (h->grpc_status >= 0) {
		status = h->grpc_status;
		key = K_GRPC + status;
		snprintf(why, sizeof(why), "server ended the call: %s%s%s",
			 rn_grpc_status_name(status), h->grpc_message[0] ? ": " : "",
			 h->grpc_message);
		if (status == RN_GRPC_RESOURCE_EXHAUSTED) {
			s->stats.pushbacks++;
			size_t l = strlen(why);
			if (h->pushback_ms >= 0)
				snprintf(why + l, sizeof(why) - l, " (server asks to wait %lld ms)",
					 (long long)h->pushback_ms);
			else if (h->pushback_bad)
				snprintf(why + l, sizeof(why) - l,
					 " (unreadable grpc-retry-pushback-ms "
					 "ignored)");
		}
		if (status == RN_GRPC_OK || (s->draining && status == RN_GRPC_UNAVAILABLE))
			lvl = RN_LOG_INFO;
		drained = s->draining;
	} else if (cc != CURLE_OK) {
		enum tclass tc;
		const char *cls = curl_class(cc, &tc);
		key = K_CURL + (int)tc;
		snprintf(
			why, sizeof(why), "%s (%s)%s", cls,
			s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc),
			(cc == CURLE_HTTP2 || cc == CURLE_GOT_NOTHING) && !h->http_status
				? "; is the URL's server an HTTP/2 server (http:// means h2c prior "
				  "knowledge)?"
			: cc == CURLE_SSL_CONNECT_ERROR && strstr(s->errbuf, "wrong version")
				? "; the server does not speak TLS: use http:// for a plain-text "
				  "server"
				: "");
		if (tc == T_TLS)
			lvl = RN_LOG_ERROR; /* rarely fixes itself: an operator must look */
	} else {
		set_fault(s, F_NO_STATUS, "the call ended without a grpc-status trailer");
		key = K_FAULT + F_NO_STATUS;
		lvl = RN_LOG_ERROR;
		s->stats.faults++;
		snprintf(why, sizeof(why), "bad answer from the server: %s", s->fault_msg);
	}
	terminal = status >= 0 && rn_backoff_terminal_status(status);
	if (status == RN_GRPC_UNAUTHENTICATED && u->tok.on && !s->auth_retried) {
		/* the token may have been revoked or the server restarted with a new key: one
		 * fresh token before the slow retry (the call waits for it) */
		s->auth_retried = 1;
		s->stats.last_status = status;
		s->stats.failures++;
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%s", why);
		set_err(u, "stream %d (%s): %s", s->id, s->table, why);
		if (s->tok_gen == u->tok.gen && u->tok.token[0]) {
			memset(u->tok.token, 0, RN_TOKEN_MAX + 1);
			u->tok.refresh_us = now;
			u->tok.next_try_us = now;
		}
		rn_log_warn("uplink",
			    "stream %d (%s): %s; fetching a fresh access token, then retrying",
			    s->id, s->table, why);
		close_call(s);
		s->state = S_BACKOFF;
		s->retry_at = now;
		s->stats.reconnects++;
		return;
	}
	if (!terminal && status >= 0 && h->pushback_ms >= 0)
		pushback = h->pushback_ms;
	if (status == 5 && s->server_id[0])
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "; the server does not know "
			 "stream %s (it lost its state?): data stays buffered until an operator "
			 "resolves it",
			 s->server_id);

	s->stats.last_status = status;
	if (!(drained && lvl == RN_LOG_INFO)) {
		s->stats.failures++;
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%s", why);
		set_err(u, "stream %d (%s): %s", s->id, s->table, why);
	}

	if (drained && lvl == RN_LOG_INFO) {
		/* the server closed the call it had asked us to drain: no fault */
		delay = 0;
		rn_log_info("uplink", "stream %d: %s after close_stream_signal; reconnecting",
			    s->id, why);
	} else {
		if (terminal)
			delay = rn_backoff_next(&s->bo, rnd01(u), 1);
		else if (pushback >= 0)
			delay = rn_backoff_pushback(&s->bo, rnd01(u), pushback);
		else
			delay = rn_backoff_next(&s->bo, rnd01(u), 0);
		if (terminal) {
			/* every time: a stream that cannot deliver until someone acts must be loud
			 */
			rn_log_error("uplink",
				     "stream %d (%s): %s; retry in %lld ms (slow: this needs "
				     "an operator); nothing is dropped",
				     s->id, s->table, why, (long long)delay);
			rn_episode_fail(&s->ep, key, now);
		} else if (rn_episode_fail(&s->ep, key, now)) {
			rn_log(lvl, "uplink",
			       "stream %d (%s): %s; retry in %lld ms with backoff "
			       "(repeats are logged at debug level until it recovers); nothing is "
			       "dropped",
			       s->id, s->table, why, (long long)delay);
		} else {
			rn_log_debug("uplink", "stream %d: again (#%llu): %s; retry in %lld ms",
				     s->id, (unsigned long long)s->ep.failures, why,
				     (long long)delay);
		}
	}
	close_call(s);
	s->state = S_BACKOFF;
	s->retry_at = now + delay * 1000;
	s->stats.reconnects++;
}

/* ---- the OAuth token (client credentials) ---- */

static size_t token_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct tokenst *t = arg;
	size_t len = size * nmemb;
	if (t->body.len + len > RN_TOKEN_BODY_MAX) {
		t->toobig = 1;
		return 0; /* aborts the transfer */
	}
	return rn_buf_append(&t->body, data, len) ? 0 : len;
}

/* Starts a request to the token endpoint. 0 or RN_ENOMEM. */
static int token_start(struct rn_uplink *u, int64_t now)
{
	struct tokenst *t = &u->tok;
	static const char *const fixed[] = {"content-type: application/x-www-form-urlencoded",
					    "accept: application/json", "Expect:"};
	struct curl_slist *l;
	CURL *e;

	rn_buf_reset(&t->body);
	t->toobig = 0;
	t->errbuf[0] = 0;
	if (!(t->hdrs = curl_slist_append(NULL, t->basic)))
		return RN_ENOMEM;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (!(l = curl_slist_append(t->hdrs, fixed[i])))
			return RN_ENOMEM;
		t->hdrs = l;
	}
	if (!(l = curl_slist_append(t->hdrs, u->ua)))
		return RN_ENOMEM;
	t->hdrs = l;
	if (!(e = curl_easy_init()))
		return RN_ENOMEM;
	t->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 t->h2pk                        ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
			 : strncmp(t->url, "https:", 6) ? CURL_HTTP_VERSION_1_1
							: CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, RN_TOKEN_FORM);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(RN_TOKEN_FORM));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, token_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opt.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)u->opt.ack_timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* its own connection: the calls' connections are never shared (DESIGN.md) */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	tls_setopts(e, &u->opt, t->own);
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
		return RN_ENOMEM;
	(void)now;
	return 0;
}

static void token_close(struct tokenst *t, struct rn_uplink *u)
{
	if (t->easy) {
		curl_multi_remove_handle(u->multi, t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	curl_slist_free_all(t->hdrs);
	t->hdrs = NULL;
	if (t->body.data)
		memset(t->body.data, 0, t->body.len);
	rn_buf_reset(&t->body);
}

/* The token request ended with cc: keep the token, or say why not and schedule a retry. */
static void token_done(struct rn_uplink *u, CURLcode cc)
{
	struct tokenst *t = &u->tok;
	struct rn_token_resp *r = NULL;
	int64_t now = rn_mono_us(), delay;
	long code = 0;
	int terminal = 0, key;
	char why[400];

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	if (t->toobig) {
		snprintf(why, sizeof(why), "the answer is longer than %u bytes", RN_TOKEN_BODY_MAX);
		key = 1;
	} else if (cc != CURLE_OK) {
		enum tclass tc;
		const char *cls = curl_class(cc, &tc);
		snprintf(why, sizeof(why), "%s (%s)", cls,
			 t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
		key = 10 + (int)tc;
	} else if (!(r = rn_malloc(sizeof(*r)))) {
		snprintf(why, sizeof(why), "out of memory");
		key = 2;
	} else if (rn_token_parse((int)code, (const char *)t->body.data, t->body.len, r)) {
		snprintf(why, sizeof(why), "%s", r->why);
		/* a refused client or request does not fix itself: an operator must act */
		terminal = code == 400 || code == 401 || code == 403;
		key = 100 + (code > 0 && code < 1000 ? (int)code : 0);
	} else {
		int64_t after = rn_token_refresh_after_ms(r->expires_in);
		memcpy(t->token, r->access_token, strlen(r->access_token) + 1);
		t->gen++;
		t->fetches++;
		t->expires_us = now + r->expires_in * 1000000;
		t->refresh_us = now + after * 1000;
		t->next_try_us = t->refresh_us;
		t->valid_until = (int64_t)time(NULL) + r->expires_in;
		rn_backoff_reset(&t->bo);
		if (t->ep.failures) {
			int64_t dur;
			uint64_t nf = rn_episode_end(&t->ep, now, &dur);
			rn_log_info("uplink",
				    "token endpoint %s: recovered after %llu failed attempt%s over "
				    "%.1f s",
				    t->url, (unsigned long long)nf, nf == 1 ? "" : "s",
				    (double)dur / 1e6);
		}
		rn_log(t->fetches == 1 ? RN_LOG_INFO : RN_LOG_DEBUG, "uplink",
		       "got an access token valid for %lld s; next one in %lld s",
		       (long long)r->expires_in, (long long)after / 1000);
		memset(r, 0, sizeof(*r));
		rn_free(r);
		token_close(t, u);
		return;
	}
	if (r) {
		memset(r, 0, sizeof(*r));
		rn_free(r);
	}
	t->failures++;
	snprintf(t->last_error, sizeof(t->last_error), "%.250s", why);
	delay = rn_backoff_next(&t->bo, rnd01(u), terminal);
	t->next_try_us = now + delay * 1000;
	if (terminal)
		rn_log_error("uplink",
			     "token endpoint %s: %s; retry in %lld ms (slow: check client_id and "
			     "the secret); nothing is dropped",
			     t->url, why, (long long)delay);
	else if (rn_episode_fail(&t->ep, key, now))
		rn_log_error("uplink",
			     "token endpoint %s: %s; retry in %lld ms with backoff (repeats are "
			     "logged at debug level until it recovers); nothing is dropped",
			     t->url, why, (long long)delay);
	else
		rn_log_debug("uplink", "token endpoint: again (#%llu): %s; retry in %lld ms",
			     (unsigned long long)t->ep.failures, why, (long long)delay);
	set_err(u, "token endpoint %s: %s", t->url, why);
	token_close(t, u);
}

/* Whether calls may open: without OAuth always; with it while a token is held. */
static int token_ready(struct rn_uplink *u, int64_t now)
{
	struct tokenst *t = &u->tok;
	if (!t->on)
		return 1;
	if (t->token[0] && now >= t->expires_us)
		memset(t->token, 0, RN_TOKEN_MAX + 1); /* never send an expired token */
	return t->token[0] != 0;
}

/* Starts a token request when one is due. */
static void token_step(struct rn_uplink *u, int64_t now)
{
	struct tokenst *t = &u->tok;
	if (!t->on || t->easy)
		return;
	token_ready(u, now);
	if (now < t->next_try_us || (t->token[0] && now < t->refresh_us))
		return;
	if (token_start(u, now)) {
		token_close(t, u);
		t->failures++;
		snprintf(t->last_error, sizeof(t->last_error), "out of memory");
		t->next_try_us = now + rn_backoff_next(&t->bo, rnd01(u), 0) * 1000;
	}
}

/* Milliseconds until the token needs the loop (a fetch is due), or -1. */
static int64_t token_wait_ms(const struct rn_uplink *u, int64_t now)
{
	const struct tokenst *t = &u->tok;
	int64_t at;
	if (!t->on || t->easy)
		return -1;
	at = t->next_try_us;
	if (t->token[0] && t->refresh_us > at)
		at = t->refresh_us;
	if (t->token[0] && t->expires_us < at)
		at = t->expires_us;
	return at <= now ? 0 : (at - now + 999) / 1000;
}

int rn_uplink_token_stats(const struct rn_uplink *u, struct rn_uplink_token_stats *st)
{
	const struct tokenst *t = &u->tok;
	int64_t now = rn_mono_us(), w;
	memset(st, 0, sizeof(*st));
	if (!t->on)
		return RN_ENOTFOUND;
	st->enabled = 1;
	st->valid = t->token[0] && now < t->expires_us;
	st->fetching = t->easy != NULL;
	st->valid_until = st->valid ? t->valid_until : 0;
	w = token_wait_ms(u, now);
	st->refresh_in_ms = w > 0 ? w : 0;
	st->fetches = t->fetches;
	st->failures = t->failures;
	snprintf(st->last_error, sizeof(st->last_error), "%s", t->last_error);
	return 0;
}

/*
 * Ends the calls whose answer is over although libcurl has not finished them. libcurl 7.88
 * loses the response headers of a stream when its HEADERS (END_STREAM) and a RST_STREAM
 * arrive in one read: the stream is taken as closed and reset, the buffered header bytes
 * are dropped, the receive side is marked done, and a transfer whose upload is paused then
 * never completes (it is not done until both directions are). A trailers-only refusal
 * followed at once by RST_STREAM(NO_ERROR), as grpc-go and other servers send it, does
 * exactly that: no header callback, no end, until ack_timeout_ms. The one outside sign is
 * that libcurl no longer wants to read the call's socket: a transfer still receiving always
 * does, and each call has its own connection (DESIGN.md).
 *
 * Such a call is first unpaused once (`unread`), so that libcurl can finish it with its own
 * verdict where it has one (a connection the server closed, an HTTP/1.x answer); if it is
 * still unread on the next look, it is ended as a call without a status (a fault, retried
 * with backoff), never taken as acked. Returns 1 when a call was unpaused (step() runs
 * libcurl again at once).
 */
static int end_unread_calls(struct rn_uplink *u)
{
	fd_set rd, wr, ex;
	int maxfd = -1, any = 0, poked = 0;

	for (size_t i = 0; i < u->n; i++)
		any |= u->streams[i]->easy && u->streams[i]->paused;
	if (!any)
		return 0;
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_ZERO(&ex);
	if (curl_multi_fdset(u->multi, &rd, &wr, &ex, &maxfd) != CURLM_OK)
		return 0;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		curl_socket_t fd = s->socks[0];
		/* paused is set by the read callback only, so the transfer is past its
		 * request headers (libcurl's PERFORMING state) and connected: one socket */
		if (!s->easy || !s->paused || s->nsocks != 1 || fd < 0 || fd >= FD_SETSIZE)
			continue; /* not knowable (several sockets, fd_set too small) */
		if (FD_ISSET(fd, &rd)) {
			s->unread = 0; /* still receiving */
			continue;
		}
		if (!s->unread) {
			s->unread = 1;
			s->paused = 0;
			s->poke_us = rn_mono_us();
			curl_easy_pause(s->easy, CURLPAUSE_CONT);
			poked = 1;
			continue;
		}
		set_fault(s, F_NO_STATUS,
			  "the server ended the call%s without a status libcurl could read "
			  "(a trailers-only answer followed at once by RST_STREAM?)",
			  s->hdr.http_status ? "" : " before any response header");
		call_ended(s, CURLE_OK);
	}
	return poked;
}

int rn_uplink_step(struct rn_uplink *u)
{
	int64_t now = rn_mono_us();
	int running, again;

	int opening = 0, tok_ok;
	token_step(u, now);
	tok_ok = token_ready(u, now);
	for (size_t i = 0; i < u->n; i++)
		opening |= u->streams[i]->state == S_OPENING;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		/* One call set up at a time, so a burst of reconnects after an outage does not
		 * open every stream's connection in the same instant. */
		if (s->state == S_BACKOFF && now >= s->retry_at && !opening && tok_ok) {
			opening = 1;
			if (open_call(s)) {
				set_fault(s, F_LOCAL, "cannot set up a call (out of memory)");
				call_ended(s, CURLE_OUT_OF_MEMORY);
				continue;
			}
		}
		if (s->state != S_BACKOFF && s->easy) {
			int inflight = s->next_send - 1 > s->acked;
			int64_t since =
				s->last_rx_us > s->last_tx_us ? s->last_rx_us : s->last_tx_us;
			if ((s->state == S_OPENING || inflight) &&
			    now - since > (int64_t)u->opt.ack_timeout_ms * 1000) {
				set_fault(s, F_SILENT,
					  "no answer from the server for %d ms with "
					  "%s",
					  u->opt.ack_timeout_ms,
					  s->state == S_OPENING ? "the create/resume pending"
								: "chunks in flight");
				call_ended(s, CURLE_OPERATION_TIMEDOUT);
				continue;
			}
			if (s->draining && (!inflight || now > s->drain_until)) {
				rn_log_info("uplink", "stream %d: drained, reconnecting", s->id);
				close_call(s);
				s->state = S_BACKOFF;
				s->retry_at = now;
				continue;
			}
			if (s->state == S_OPEN && s->ep.failures &&
			    now - s->open_us >= EPISODE_QUIET_US) {
				int64_t dur;
				uint64_t nf = rn_episode_end(&s->ep, now, &dur);
				rn_backoff_reset(&s->bo);
				rn_log_info("uplink",
					    "stream %d (%s): recovered after %llu failed "
					    "attempt%s over %.1f s",
					    s->id, s->table, (unsigned long long)nf,
					    nf == 1 ? "" : "s", (double)dur / 1e6);
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
			if (m->easy_handle == u->tok.easy) {
				token_done(u, m->data.result);
				continue;
			}
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			if (s)
				call_ended(s, m->data.result);
		}
		/* A grpc-status means the server has ended the call (trailers, or a trailers-only
		 * answer). libcurl 7.88 does not finish a transfer whose upload is paused when
		 * the server closes its side, so the uplink ends the call itself. */
		for (size_t i = 0; i < u->n; i++) {
			struct ustream *s = u->streams[i];
			if (s->easy && s->hdr.grpc_status >= 0)
				call_ended(s, CURLE_OK);
		}
		again = end_unread_calls(u);
		now = rn_mono_us();
		for (size_t k = 0; k < u->n; k++) {
			struct ustream *s = u->streams[(u->rr + k) % u->n];
			size_t p;
			if (!s->easy || !s->paused)
				continue;
			if (!(p = pending(s))) {
				if (now - s->poke_us >= POKE_US) {
					s->poke_us = now;
					s->paused = 0;
					curl_easy_pause(s->easy, CURLPAUSE_CONT);
					again = 1;
				}
				continue;
			}
			if (u->rl.rate && rn_ratelimit_wait_us(&u->rl, now, (int64_t)p) > 0)
				continue; /* rn_uplink_wait() wakes us when tokens are there */
			s->paused = 0;
			s->poke_us = now;
			curl_easy_pause(s->easy, CURLPAUSE_CONT);
			again = 1;
		}
		if (u->n)
			u->rr = (u->rr + 1) % u->n;
		if (!again)
			break;
	}
	return 0;
}

/*
 * libcurl 7.88 (Debian 12's) busy-loops on an HTTP/2 upload whose stream window the server
 * has not yet replenished: it asks for POLLOUT, the socket is writable, curl_multi_poll()
 * returns at once and curl_multi_perform() sends nothing (curl issue 10618, fixed in 8.0).
 * While a backlog drained faster than the server took it, that was ~300,000 empty loop
 * iterations a second: a core taken from the server on a small device. After SPIN_ROUNDS
 * waits in a row that returned within SPIN_QUICK_US with no byte moved either way, the uplink
 * waits instead for its connections to become readable (the WINDOW_UPDATE that unblocks
 * the upload is incoming data) or the extra fds, at most SPIN_WAIT_MS, so curl's own timers
 * still run; the first byte moved ends it. rn_uplink_wakeup() is then late by that much.
 */
#define SPIN_ROUNDS 4
#define SPIN_QUICK_US 1000
#define SPIN_WAIT_MS 10

static int stall_wait(struct rn_uplink *u, struct rn_uplink_waitfd *fds, int n, int timeout_ms)
{
	struct pollfd p[16 + 64];
	int np = 0;
	for (int i = 0; i < n; i++)
		p[np++] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events};
	/* the connections' sockets, as the streams that opened them noted them (sockopt_cb) */
	for (size_t i = 0; i < u->n; i++) {
		const struct ustream *st = u->streams[i];
		int ns = st->nsocks < SOCKS_MAX ? st->nsocks : SOCKS_MAX;
		for (int j = 0; j < ns && np < (int)(sizeof(p) / sizeof(p[0])); j++) {
			int seen = 0;
			for (int k = n; k < np && !seen; k++)
				seen = p[k].fd == st->socks[j];
			if (!seen)
				p[np++] = (struct pollfd){.fd = st->socks[j], .events = POLLIN};
		}
	}
	if (np == n) {
		u->quick = 0; /* no connection to watch: not the stall above */
		return rn_uplink_wait(u, fds, n, timeout_ms);
	}
	if (poll(p, (nfds_t)np, timeout_ms) < 0)
		return RN_EIO;
	for (int i = 0; i < n; i++)
		fds[i].revents = p[i].revents;
	return 0;
}

int rn_uplink_wait(struct rn_uplink *u, struct rn_uplink_waitfd *fds, int nfds, int timeout_ms)
{
	struct curl_waitfd wfd[16];
	int64_t now = rn_mono_us();
	int n = nfds > 16 ? 16 : nfds;

	int tok_ok = token_ready(u, now);
	int64_t tw = token_wait_ms(u, now);
	if (tw >= 0 && tw < timeout_ms)
		timeout_ms = (int)tw;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		int64_t ms = -1;
		size_t p;
		if (s->state == S_BACKOFF && !tok_ok) {
			/* waits for the token, whose timer or transfer wakes the loop */
		} else if (s->state == S_BACKOFF) {
			ms = (s->retry_at - now + 999) / 1000;
		} else if (s->easy && s->paused && (p = pending(s))) {
			/* data waiting for step() to unpause, now or when the cap allows */
			ms = u->rl.rate
				     ? (rn_ratelimit_wait_us(&u->rl, now, (int64_t)p) + 999) / 1000
				     : 0;
		} else if (s->easy && s->paused && s->unread) {
			ms = 0; /* step() looks again whether libcurl ended it */
		} else if (s->easy && s->paused) {
			ms = (s->poke_us + POKE_US - now + 999) / 1000;
		}
		if (ms >= 0 && ms < timeout_ms)
			timeout_ms = ms < 0 ? 0 : (int)ms;
	}
	for (int i = 0; i < n; i++) {
		wfd[i].fd = fds[i].fd;
		wfd[i].events = (short)((fds[i].events & POLLIN_COMPAT ? CURL_WAIT_POLLIN : 0) |
					(fds[i].events & POLLOUT_COMPAT ? CURL_WAIT_POLLOUT : 0));
		wfd[i].revents = 0;
	}
	int idle = u->moved == u->moved_seen;
	u->moved_seen = u->moved;
	if (!idle)
		u->quick = 0;
	if (u->quick >= SPIN_ROUNDS && timeout_ms > 0)
		return stall_wait(u, fds, n, timeout_ms < SPIN_WAIT_MS ? timeout_ms : SPIN_WAIT_MS);
	int64_t t0 = rn_mono_us();
	if (curl_multi_poll(u->multi, wfd, (unsigned)n, timeout_ms, NULL) != CURLM_OK)
		return RN_EIO;
	if (idle && timeout_ms > 0 && rn_mono_us() - t0 < SPIN_QUICK_US)
		u->quick++;
	else
		u->quick = 0;
	for (int i = 0; i < n; i++)
		fds[i].revents = (short)((wfd[i].revents & CURL_WAIT_POLLIN ? POLLIN_COMPAT : 0) |
					 (wfd[i].revents & CURL_WAIT_POLLOUT ? POLLOUT_COMPAT : 0));
	return 0;
}

void rn_uplink_wakeup(struct rn_uplink *u)
{
	curl_multi_wakeup(u->multi);
}

int rn_uplink_stream_stats(const struct rn_uplink *u, int stream, struct rn_uplink_stream_stats *st)
{
	const struct ustream *s = find(u, stream);
	if (!s)
		return RN_ENOTFOUND;
	*st = s->stats;
	st->retry_in_ms = 0;
	switch (s->state) {
	case S_BACKOFF: {
		int64_t left = (s->retry_at - rn_mono_us()) / 1000;
		st->state = RN_UPLINK_WAITING;
		st->retry_in_ms = left > 0 ? left : 0;
		break;
	}
	case S_OPENING: st->state = RN_UPLINK_CONNECTING; break;
	case S_OPEN: st->state = s->draining ? RN_UPLINK_DRAINING : RN_UPLINK_OPEN; break;
	}
	return 0;
}

/* Whether stream s takes a report now: the call is open (create/resume answered), its
 * server answered runnel-health: 1, and it is not draining. */
static int takes_health(const struct ustream *s)
{
	return s->easy && s->state == S_OPEN && s->stats.health && !s->draining;
}

int rn_uplink_health_wanted(const struct rn_uplink *u)
{
	for (size_t i = 0; i < u->n; i++)
		if (takes_health(u->streams[i]) && u->streams[i]->health_fresh)
			return 1;
	return 0;
}

int rn_uplink_health_send(struct rn_uplink *u, const char *json, size_t len, int all)
{
	struct rn_buf msg = {0}, z = {0};
	int queued = 0, rc = 0, ready = 0;

	if (len > RN_UPLINK_HEALTH_MAX)
		return RN_EINVAL;
	for (size_t i = 0; i < u->n; i++) {
		struct ustream *s = u->streams[i];
		if (!takes_health(s) || (!all && !s->health_fresh))
			continue;
		if (s->body.side_pos) { /* the last one is still going out: this one is skipped */
			s->stats.health_skipped++;
			continue;
		}
		/* PersistentStreamRequest{runnel_agent_health (1001): json}, compressed like
		 * the chunks (the call says grpc-encoding: zstd); built once for all calls */
		if (!ready && !rc) {
			rc = rn_pb_put_bytes(&msg, RN_UPLINK_HEALTH_FIELD, json, len);
			rc = rc ? rc : rn_zstd_compress(&z, msg.data, msg.len, 1);
			ready = !rc;
		}
		/* a report not begun yet is replaced by the newer one */
		if (rc || rn_up_body_side_set(&s->body, 1, z.data, z.len)) {
			/* the call's first report too: the next one (interval, change) goes */
			s->health_fresh = 0;
			s->stats.health_skipped++;
			continue;
		}
		s->health_fresh = 0;
		s->stats.health_sent++;
		queued++;
	}
	rn_buf_free(&msg);
	rn_buf_free(&z);
	return queued;
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
