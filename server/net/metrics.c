/*
 * /metrics, /healthz and plain requests over HTTP/1.1 (evhttp); see metrics.h.
 *
 * Connections: libevent 2.1 evhttp has no connection cap and tells nothing of a connection
 * until its first request. Every accepted connection passes through new_bev (evhttp's
 * bufferevent callback), where it is counted; evhttp then sets its connection object as the
 * bufferevent's callback argument, which adopt_cb reads (in the same loop iteration, before
 * any I/O on it) to set a close callback, where it is counted out. While
 * http_max_connections are open the listeners are disabled (nginx's way): new connections
 * wait in the kernel's backlog, none is closed unread. The close callback also sees a TLS
 * connection whose handshake never finished: counted by reason and logged, rate-limited
 * (refuselog.h), with the peer.
 */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_time.h"
#include "../limits.h"
#include "listensock.h"
#include "refuselog.h"
#include "rn_addr.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "tls.h"

/* A plain HTTP request handed to the server and not answered yet. */
struct pending {
	struct rn_httpx x; /* first: the exchange the server holds */
	struct evhttp_request *req;
	struct rn_metrics *m;
	struct pending *next, *prev;
};

/* One connection, from new_bev to conn_closed (evhttp's close callback). */
struct hconn {
	struct rn_metrics *m;
	struct bufferevent *bev; /* until adopted: evhttp's, with a reference of ours */
	struct ssl_st *ssl;      /* its SSL on the TLS port, else NULL */
	int64_t since_us;        /* accepted at (monotonic) */
	struct hconn *next;      /* in m->fresh until adopted */
};

_Static_assert(RN_TLS_FAIL_N <=
		       sizeof(((struct rn_metrics_stats *)0)->tls_failed) / sizeof(uint64_t),
	       "rn_metrics_stats.tls_failed holds every enum rn_tls_reason");

#define REFUSAL_LOG_PERIOD_US (10 * 1000000LL)

struct rn_metrics {
	struct evhttp *http;
	struct rn_metrics_handler h;
	int ports[RN_ADDR_LIST_MAX]; /* the bound port of each address */
	size_t nlisteners;
	struct rn_buf out;
	struct pending *pending;                            /* handed, not answered */
	struct rn_tls *tls;                                 /* NULL = plain HTTP/1.1 */
	struct evconnlistener *listeners[RN_ADDR_LIST_MAX]; /* evhttp's, for the accept backoff */
	struct event *resume_ev;                            /* re-enables it */
	uint64_t accept_fails;                              /* in a row; 0 = accepting */
	int backoff;           /* 1 while paused after an accept failure */
	int listening;         /* the listeners are enabled */
	unsigned max_conns;    /* http_max_connections; 0 = no cap */
	int capped;            /* 1 while paused for max_conns */
	int64_t capped_since;  /* when that began */
	uint64_t capped_waits; /* connections accepted from the backlog since */
	int timeout_s;         /* http_timeout */
	int destroying;        /* in rn_metrics_destroy: close callbacks only free */
	struct hconn *fresh;   /* counted, not adopted yet */
	struct event *adopt_ev;
	struct event *tick_ev;        /* the refusal log's summaries */
	struct rn_refuselog refusals; /* which TLS failures get a line */
	struct rn_metrics_stats st;
};

/* The listeners accept unless an accept failure's backoff or the connection cap says not. */
static void update_listeners(struct rn_metrics *m)
{
	int on = !m->backoff && !m->capped;
	if (on == m->listening)
		return;
	m->listening = on;
	for (size_t i = 0; i < m->nlisteners; i++)
		(on ? evconnlistener_enable : evconnlistener_disable)(m->listeners[i]);
}

/* The cap reached or left: one line each way per episode. */
static void check_cap(struct rn_metrics *m)
{
	int over = m->max_conns && m->st.conns_open >= m->max_conns;
	if (over && !m->capped) {
		m->capped = 1;
		m->capped_since = rn_mono_us();
		m->capped_waits = 0;
		m->st.cap_episodes++;
		rn_log_warn("metrics",
			    "%u connections open on the HTTP port (http_max_connections): new ones "
			    "wait in the listen backlog until some close",
			    m->max_conns);
	} else if (!over && m->capped && m->st.conns_open < m->max_conns) {
		m->capped = 0;
		rn_log_info("metrics",
			    "HTTP port below http_max_connections again after %lld ms; accepting",
			    (long long)((rn_mono_us() - m->capped_since) / 1000));
	}
	update_listeners(m);
}

/* accept() failed (EMFILE...): pause the listeners for a backoff; one line per episode. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct rn_metrics *m = arg;
	int err = EVUTIL_SOCKET_ERROR();
	m->st.accept_errors++;
	if (!m->accept_fails++)
		rn_log_warn("metrics",
			    "accept failed: %s; pausing the HTTP listener between retries",
			    evutil_socket_error_to_string(err));
	(void)l;
	m->backoff = 1;
	update_listeners(m);
	if (rn_ev_add_ms(m->resume_ev, rn_limits_accept_backoff_ms(m->accept_fails))) {
		m->backoff = 0; /* no timer: better a busy listener than a dead one */
		update_listeners(m);
	}
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_metrics *m = arg;
	(void)fd;
	(void)what;
	m->backoff = 0;
	update_listeners(m);
}

static void refusal_summary(void *ctx, const struct rn_refuselog_kind *k, uint64_t n)
{
	(void)ctx;
	if (k)
		rn_log_info("metrics", "%s: %llu more TLS handshakes failed in the last %lld s: %s",
			    k->peer, (unsigned long long)n,
			    (long long)(REFUSAL_LOG_PERIOD_US / 1000000), k->reason);
	else
		rn_log_info("metrics",
			    "%llu more TLS handshakes failed in the last %lld s (of kinds past the "
			    "per-period limit of lines)",
			    (unsigned long long)n, (long long)(REFUSAL_LOG_PERIOD_US / 1000000));
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_metrics *m = arg;
	(void)fd;
	(void)what;
	rn_refuselog_tick(&m->refusals, rn_mono_us(), refusal_summary, m);
}

/* "address:port" of an evhttp connection into buf. */
static void conn_peer(struct evhttp_connection *evcon, char *buf, size_t cap)
{
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evcon, &addr, &port);
	if (addr)
		snprintf(buf, cap, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, (unsigned)port);
	else
		snprintf(buf, cap, "?");
}

/*
 * A TLS connection closed before its handshake finished: the client spoke plain HTTP, sent a
 * bad certificate, closed, or said nothing for http_timeout (evhttp's timeout ends it with no
 * error of its own: told by the time it lasted).
 */
static void tls_failed(struct rn_metrics *m, struct hconn *h, struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0, next;
	char detail[256], peer[64], msg[320];
	enum rn_tls_reason why;
	int64_t now = rn_mono_us();
	/* the first error is the cause; drain the rest */
	while (bev && (next = bufferevent_get_openssl_error(bev)))
		;
	why = rn_tls_classify(h->ssl, e, detail, sizeof(detail));
	if (!e && why == RN_TLS_FAIL_OTHER && m->timeout_s > 0 &&
	    now - h->since_us >= (int64_t)m->timeout_s * 1000000 - 100000) {
		why = RN_TLS_FAIL_TIMEOUT;
		snprintf(detail, sizeof(detail), "no handshake within http_timeout (%d s)",
			 m->timeout_s);
	}
	m->st.tls_failed[why]++;
	conn_peer(evcon, peer, sizeof(peer));
	snprintf(msg, sizeof(msg), "%s: %s", rn_tls_reason_name(why), detail);
	if (rn_refuselog_note(&m->refusals, peer, -1, msg, now))
		rn_log_info(
			"metrics",
			"%s: HTTPS connection refused: TLS handshake %s (more like it from this "
			"address are counted every %lld s)",
			peer, msg, (long long)(REFUSAL_LOG_PERIOD_US / 1000000));
}

/* evhttp's close callback: the connection is gone (its fd closes right after). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct hconn *h = arg;
	struct rn_metrics *m = h->m;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (!m->destroying) {
		if (h->ssl && !rn_tls_handshake_done(h->ssl))
			tls_failed(m, h, evcon);
		m->st.conns_open--;
		check_cap(m);
	}
	rn_free(h);
}

/*
 * evhttp's bufferevent for each accepted connection (before its fd is set): TLS on the
 * server's context (ALPN http/1.1) or plain, counted, and queued for adopt_cb. evhttp falls
 * back to a plain bufferevent of its own when this returns NULL (out of memory): on the TLS
 * port such a connection is refused by tls_missing before any request is answered.
 */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	struct rn_metrics *m = arg;
	struct ssl_st *ssl = NULL;
	struct bufferevent *bev;
	struct hconn *h;
	if (m->accept_fails) {
		rn_log_info("metrics", "accepting connections again after %llu failed accepts",
			    (unsigned long long)m->accept_fails);
		m->accept_fails = 0;
	}
	if (m->tls) {
		if (!(ssl = rn_tls_ssl_new(m->tls)))
			return NULL;
		/* on failure libevent (>= 2.1.10) has freed ssl (BEV_OPT_CLOSE_ON_FREE) */
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev)
			return NULL;
		/* a client that closes without close_notify is no error here */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		/* as evhttp makes its own: it closes the fd itself */
		if (!(bev = bufferevent_socket_new(base, -1, 0)))
			return NULL;
	}
	m->st.conns_accepted++;
	if (m->capped)
		m->capped_waits++;
	if (!(h = rn_calloc(1, sizeof(*h))))
		return bev; /* served, not counted */
	h->m = m;
	h->bev = bev;
	h->ssl = ssl;
	h->since_us = rn_mono_us();
	/* held until adopted, so a connection evhttp gives up at once (out of memory) cannot
	 * leave us a freed bufferevent */
	bufferevent_incref(bev);
	h->next = m->fresh;
	m->fresh = h;
	event_active(m->adopt_ev, 0, 0);
	m->st.conns_open++;
	check_cap(m); /* the listener's accept loop stops after this one when capped */
	return bev;
}

/* Runs after the accepts of this loop iteration: evhttp has made each fresh bufferevent's
 * callback argument its connection, where the close callback goes. */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_metrics *m = arg;
	(void)fd;
	(void)what;
	while (m->fresh) {
		struct hconn *h = m->fresh;
		bufferevent_event_cb ecb = NULL;
		void *evcon = NULL;
		m->fresh = h->next;
		h->next = NULL;
		bufferevent_getcb(h->bev, NULL, NULL, &ecb, &evcon);
		if (ecb && evcon) {
			evhttp_connection_set_closecb(evcon, conn_closed, h);
			bufferevent_decref(h->bev);
			h->bev = NULL;
			continue;
		}
		/* evhttp freed it (callbacks cleared) or never took it: only our reference
		 * is left */
		bufferevent_decref(h->bev);
		m->st.conns_open--;
		rn_free(h);
		check_cap(m);
	}
}

/* 1 (and a 400 sent) when a request arrived on the TLS port over a connection without TLS
 * (new_bev failed and evhttp made a plain one): nothing is served in clear text there. */
static int tls_missing(struct rn_metrics *m, struct evhttp_request *req)
{
	struct bufferevent *bev;
	if (!m->tls)
		return 0;
	bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
	if (bev && bufferevent_openssl_get_ssl(bev))
		return 0;
	evhttp_send_error(req, 400, NULL);
	return 1;
}

void rn_metrics_set_tls(struct rn_metrics *m, struct rn_tls *tls)
{
	m->tls = tls;
}

void rn_metrics_set_max_conns(struct rn_metrics *m, unsigned max)
{
	m->max_conns = max;
	check_cap(m);
}

void rn_metrics_stats(const struct rn_metrics *m, struct rn_metrics_stats *st)
{
	*st = m->st;
	st->accept_paused = !m->listening;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
		  const void *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(b, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct rn_metrics *m = arg;
	if (tls_missing(m, req))
		return;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	rn_buf_reset(&m->out);
	m->h.render(m->h.ctx, &m->out);
	reply(req, 200, "OK", "text/plain; version=0.0.4", m->out.data, m->out.len);
}

static void on_health(struct evhttp_request *req, void *arg)
{
	struct rn_metrics *m = arg;
	char why[512] = "";
	int h;
	if (tls_missing(m, req))
		return;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	h = m->h.health(m->h.ctx, why, sizeof(why) - 16);
	if (h == RN_HEALTH_DEGRADED) {
		char body[600];
		int n = snprintf(body, sizeof(body), "degraded: %s\n", why);
		reply(req, 200, "OK", "text/plain", body, (size_t)n);
	} else if (h) {
		size_t n = strlen(why);
		why[n] = '\n';
		why[n + 1] = 0;
		reply(req, 503, "Service Unavailable", "text/plain", why, strlen(why));
	} else {
		reply(req, 200, "OK", "text/plain", "ok\n", 3);
	}
}

static void unlink_pending(struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		p->m->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

/*
 * The answer to a plain request. evhttp keeps a request whose connection failed before the
 * reply (timeout, client gone) detached from it, for the reply, which then frees it: so a late
 * answer is always safe here, and the only time requests vanish under us is evhttp_free
 * (rn_metrics_destroy tells the server first).
 */
static void other_respond(struct rn_httpx *x, const struct rn_httpx_response *r)
{
	struct pending *p = (struct pending *)(void *)x;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(p->req);
	struct evbuffer *b = evbuffer_new();
	unlink_pending(p);
	if (!b || (r->len && evbuffer_add(b, r->body, r->len))) {
		evhttp_send_error(p->req, 500, NULL);
	} else {
		if (r->content_type)
			evhttp_add_header(oh, "Content-Type", r->content_type);
		if (r->hname && r->hvalue)
			evhttp_add_header(oh, r->hname, r->hvalue);
		if (r->no_store)
			evhttp_add_header(oh, "Cache-Control", "no-store");
		evhttp_send_reply(p->req, r->status, NULL, b);
	}
	if (b)
		evbuffer_free(b);
	rn_free(p);
}

static const struct rn_httpx_ops other_ops = {.respond = other_respond};

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

/* Every path other than /metrics and /healthz: handed whole to the server. */
static void on_other(struct evhttp_request *req, void *arg)
{
	struct rn_metrics *m = arg;
	struct pending *p;
	const char *uri = evhttp_request_get_uri(req);
	struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t blen = evbuffer_get_length(in);
	char peer[64] = "?", identity[256] = "";
	char *addr = NULL;
	ev_uint16_t port = 0;
	if (tls_missing(m, req))
		return;
	if (!m->h.request) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	if (!(p = rn_calloc(1, sizeof(*p)))) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	/* over TLS, the identity of a verified client certificate: a principal may be one */
	if (m->tls) {
		struct bufferevent *bev =
			evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
		struct ssl_st *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
		if (ssl)
			rn_tls_peer_identity(ssl, identity, sizeof(identity));
	}
	if (addr)
		snprintf(peer, sizeof(peer), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr,
			 (unsigned)port);
	/* the request line's target, split at '?' (not decoded: the server's router does) */
	size_t plen = strcspn(uri, "?");
	char *path = rn_strndup(uri, plen);
	if (!path) {
		rn_free(p);
		evhttp_send_error(req, 503, NULL);
		return;
	}
	p->req = req;
	p->m = m;
	p->x.ops = &other_ops;
	p->x.req = (struct rn_httpx_request){
		.method = method_name(evhttp_request_get_command(req)),
		.path = path,
		.path_len = plen,
		.query = uri[plen] ? uri + plen + 1 : NULL,
		.authorization = evhttp_find_header(ih, "Authorization"),
		.content_type = evhttp_find_header(ih, "Content-Type"),
		.body = blen ? evbuffer_pullup(in, -1) : NULL,
		.body_len = blen,
		.peer = peer,
		.peer_identity = identity[0] ? identity : NULL,
		.tls = m->tls != NULL,
	};
	p->next = m->pending;
	if (m->pending)
		m->pending->prev = p;
	m->pending = p;
	m->h.request(m->h.ctx, &p->x); /* may answer (and free p) at once */
	rn_free(path);
}

int rn_metrics_create(struct rn_metrics **out, struct event_base *base,
		      const struct rn_hostport *addrs, size_t n, const struct rn_metrics_handler *h)
{
	struct rn_metrics *m;
	int fds[RN_ADDR_LIST_MAX];
	char err[400];
	*out = NULL;
	if (!n || n > RN_ADDR_LIST_MAX)
		return RN_EINVAL;
	if (!(m = rn_calloc(1, sizeof(*m))))
		return RN_ENOMEM;
	m->h = *h;
	m->listening = 1;
	rn_refuselog_init(&m->refusals, REFUSAL_LOG_PERIOD_US, rn_mono_us());
	if (!(m->http = evhttp_new(base)) ||
	    !(m->resume_ev = event_new(base, -1, 0, resume_cb, m)) ||
	    !(m->adopt_ev = event_new(base, -1, 0, adopt_cb, m)) ||
	    !(m->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, m)) ||
	    rn_ev_add_ms(m->tick_ev, 1000)) {
		rn_metrics_destroy(m);
		return RN_ENOMEM;
	}
	/* the sockets by hand, not evhttp_bind_socket: an IPv6 one gets IPV6_V6ONLY */
	if (rn_listensock_open(addrs, n, 128, fds, m->ports, err, sizeof(err))) {
		rn_log_error("metrics", "%s", err);
		rn_metrics_destroy(m);
		return RN_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		struct evhttp_bound_socket *bs = evhttp_accept_socket_with_handle(m->http, fds[i]);
		if (!bs) {
			for (size_t j = i; j < n; j++)
				close(fds[j]);
			rn_metrics_destroy(m);
			return RN_ENOMEM;
		}
		m->listeners[i] = evhttp_bound_socket_get_listener(bs);
		m->nlisteners = i + 1;
		evconnlistener_set_error_cb(m->listeners[i], accept_error_cb);
	}
	evhttp_set_cb(m->http, "/metrics", on_metrics, m);
	evhttp_set_cb(m->http, "/healthz", on_health, m);
	evhttp_set_gencb(m->http, on_other, m);
	evhttp_set_bevcb(m->http, new_bev, m);
	/* every method reaches a callback: the REST routes answer 405 themselves */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	rn_metrics_set_limits(m, 0, 0, 0);
	*out = m;
	return 0;
}

int rn_metrics_port(const struct rn_metrics *m)
{
	return m->ports[0];
}

size_t rn_metrics_ports(const struct rn_metrics *m, int *ports, size_t cap)
{
	for (size_t i = 0; i < m->nlisteners && i < cap; i++)
		ports[i] = m->ports[i];
	return m->nlisteners;
}

void rn_metrics_set_limits(struct rn_metrics *m, size_t max_header, size_t max_body, int timeout_s)
{
	/* without them evhttp buffers any header stream and body (an endless header grew
	 * the server by gigabytes) and keeps a silent connection for ever */
	evhttp_set_max_headers_size(m->http, (ev_ssize_t)(max_header ? max_header : 8192));
	evhttp_set_max_body_size(m->http, (ev_ssize_t)(max_body ? max_body : (size_t)1 << 20));
	m->timeout_s = timeout_s > 0 ? timeout_s : 10;
	evhttp_set_timeout(m->http, m->timeout_s);
}

void rn_metrics_destroy(struct rn_metrics *m)
{
	if (!m)
		return;
	while (m->pending) {
		struct pending *p = m->pending;
		unlink_pending(p);
		if (m->h.gone)
			m->h.gone(m->h.ctx, &p->x);
		rn_free(p); /* its evhttp request goes with evhttp_free */
	}
	m->destroying = 1;
	if (m->http)
		evhttp_free(m->http); /* runs the close callbacks: they free their hconn */
	while (m->fresh) {
		struct hconn *h = m->fresh;
		m->fresh = h->next;
		bufferevent_decref(h->bev);
		rn_free(h);
	}
	if (m->resume_ev)
		event_free(m->resume_ev);
	if (m->adopt_ev)
		event_free(m->adopt_ev);
	if (m->tick_ev)
		event_free(m->tick_ev);
	rn_buf_free(&m->out);
	rn_free(m);
}

void rn_metrics_family(struct rn_buf *out, const char *name, const char *type, const char *help)
{
	rn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void rn_metrics_sample(struct rn_buf *out, const char *name, const char *labels, double v)
{
	int has = labels && *labels;
	/* integers print as integers (counters and byte gauges stay exact up to 2^53) */
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
		rn_buf_printf(out, "%s%s%s%s %.0f\n", name, has ? "{" : "", has ? labels : "",
			      has ? "}" : "", v);
	else
		rn_buf_printf(out, "%s%s%s%s %.15g\n", name, has ? "{" : "", has ? labels : "",
			      has ? "}" : "", v);
}
