/* /metrics and /healthz over HTTP/1.1; see metrics.h. */
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
#include "limits.h"
#include "listensock.h"
#include "rn_addr.h"
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
};

static void enable_listeners(struct rn_metrics *m, int on)
{
	for (size_t i = 0; i < m->nlisteners; i++)
		(on ? evconnlistener_enable : evconnlistener_disable)(m->listeners[i]);
}

/* accept() failed (EMFILE...): pause the listeners for a backoff; one line per episode. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct rn_metrics *m = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (!m->accept_fails++)
		rn_log_warn("metrics",
			    "accept failed: %s; pausing the HTTP listener between retries",
			    evutil_socket_error_to_string(err));
	(void)l;
	enable_listeners(m, 0);
	if (rn_ev_add_ms(m->resume_ev, rn_limits_accept_backoff_ms(m->accept_fails)))
		enable_listeners(m, 1);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_metrics *m = arg;
	(void)fd;
	(void)what;
	enable_listeners(m, 1);
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
	if (!(m->http = evhttp_new(base)) ||
	    !(m->resume_ev = event_new(base, -1, 0, resume_cb, m))) {
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
	/* every method reaches a callback: the REST routes answer 405 themselves */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	rn_metrics_set_limits(m, 0, 0, 0);
	*out = m;
	return 0;
}

/* evhttp's bufferevent for each accepted connection: TLS on the server's context (ALPN
 * http/1.1). NULL (out of memory) makes evhttp drop the connection. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct rn_metrics *m = arg;
	struct ssl_st *ssl = rn_tls_ssl_new(m->tls);
	struct bufferevent *bev;
	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void rn_metrics_set_tls(struct rn_metrics *m, struct rn_tls *tls)
{
	m->tls = tls;
	evhttp_set_bevcb(m->http, tls ? tls_bev : NULL, tls ? m : NULL);
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
	evhttp_set_timeout(m->http, timeout_s > 0 ? timeout_s : 10);
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
	if (m->resume_ev)
		event_free(m->resume_ev);
	if (m->http)
		evhttp_free(m->http);
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
