/* /metrics and /healthz over HTTP/1.1; see metrics.h. */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "ev_time.h"
#include "limits.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

struct rn_metrics {
	struct evhttp *http;
	struct rn_metrics_handler h;
	int port;
	struct rn_buf out;
	struct evconnlistener *listener; /* evhttp's, for the accept backoff */
	struct event *resume_ev;         /* re-enables it */
	uint64_t accept_fails;           /* in a row; 0 = accepting */
};

/* accept() failed (EMFILE...): pause the listener for a backoff; one line per episode. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct rn_metrics *m = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (!m->accept_fails++)
		rn_log_warn("metrics",
			    "accept failed: %s; pausing the HTTP listener between retries",
			    evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	if (rn_ev_add_ms(m->resume_ev, rn_limits_accept_backoff_ms(m->accept_fails)))
		evconnlistener_enable(l);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rn_metrics *m = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(m->listener);
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
	int h = m->h.health(m->h.ctx, why, sizeof(why) - 16);
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

int rn_metrics_create(struct rn_metrics **out, struct event_base *base, const char *host, int port,
		      const struct rn_metrics_handler *h)
{
	struct rn_metrics *m = rn_calloc(1, sizeof(*m));
	struct evhttp_bound_socket *bs;
	*out = NULL;
	if (!m)
		return RN_ENOMEM;
	m->h = *h;
	if (!(m->http = evhttp_new(base)) ||
	    !(bs = evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port))) {
		rn_metrics_destroy(m);
		return RN_EIO;
	}
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
		m->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	evhttp_set_cb(m->http, "/metrics", on_metrics, m);
	evhttp_set_cb(m->http, "/healthz", on_health, m);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	if (!(m->resume_ev = event_new(base, -1, 0, resume_cb, m))) {
		rn_metrics_destroy(m);
		return RN_ENOMEM;
	}
	m->listener = evhttp_bound_socket_get_listener(bs);
	evconnlistener_set_error_cb(m->listener, accept_error_cb);
	rn_metrics_set_limits(m, 0, 0, 0);
	*out = m;
	return 0;
}

int rn_metrics_port(const struct rn_metrics *m)
{
	return m->port;
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
