/* /metrics and /healthz over HTTP/1.1; see metrics.h. */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "tls.h"

struct rn_metrics {
	struct evhttp *http;
	struct rn_metrics_handler h;
	int port;
	struct rn_buf out;
	struct rn_tls *tls; /* NULL = plain HTTP/1.1 */
};

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
	return m->port;
}

void rn_metrics_destroy(struct rn_metrics *m)
{
	if (!m)
		return;
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
