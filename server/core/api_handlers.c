/*
 * The fleet API (docs/protocol.md "HTTP API"): GET /api/v1/overview, /tables, /streams,
 * /devices and /devices/{device} on both HTTP ports, routed by rest.c and handed here by
 * rn_server__rest_request; its authorization (a principal with `console = true`, or the
 * top-level token; open when the server has no principal at all); the overview's history
 * (a ring of 10 s buckets filled by a timer from the /metrics counters) and its error list
 * (the last warnings and errors, from rn_log's sink: the only state here another thread
 * touches, under its mutex); and the agents' health reports (field 1001) into the fleet
 * model (server/fleet/); and the refusal sources (refusals.h, /api/v1/refusals), fed by
 * rn_server__refusal from the front's refused calls (server.c on_refused) and the REST
 * refusals (rn_server__rest_log_refusal_of). The fleet system tables are fleet_tables.c.
 * Loop thread only, except the log sink.
 */
#include <stdio.h>
#include <string.h>

#include "httpx.h"
#include "metrics.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_grpc.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "server_int.h"

/* ---- errors: rn_log's sink (any thread) ---- */

static void log_sink(void *ctx, enum rn_log_level lvl, int64_t t_ms, const char *msg, size_t len)
{
	struct srv_errors *e = ctx;
	pthread_mutex_lock(&e->lock);
	size_t i = e->head;
	e->e[i].t_ms = t_ms;
	e->e[i].level = (int)lvl;
	if (len >= sizeof(e->e[i].text))
		len = sizeof(e->e[i].text) - 1;
	memcpy(e->e[i].text, msg, len);
	e->e[i].text[len] = 0;
	e->head = (i + 1) % SRV_ERRORS;
	if (e->n < SRV_ERRORS)
		e->n++;
	pthread_mutex_unlock(&e->lock);
}

/* ---- refusal sources ---- */

void rn_server__refusal(struct rn_server *s, const char *peer, const char *principal, int grpc,
			int http, const char *reason, const char *table)
{
	char kind[24];
	if (!s->refusals)
		return;
	/* the server's own state, not the client's fault (as per-stream refused_calls) */
	if (http ? http == 429 || http >= 500
		 : grpc == RN_GRPC_OK || grpc == RN_GRPC_UNAVAILABLE || grpc == RN_GRPC_INTERNAL ||
			    grpc == RN_GRPC_DATA_LOSS)
		return;
	if (http)
		snprintf(kind, sizeof(kind), "http_%d", http);
	else
		snprintf(kind, sizeof(kind), "%s", rn_grpc_status_name(grpc));
	s->stats.refusals++;
	/* out of memory: still in its totals, as unattributed */
	(void)rn_refusals_note(s->refusals, peer ? peer : "", principal, kind, reason, table,
			       rn_server__now_ms());
}

int rn_server__api_init(struct rn_server *s)
{
	if (!s->refusals && rn_refusals_create(&s->refusals, 0))
		return RN_ENOMEM;
	if (!(s->errors = rn_calloc(1, sizeof(*s->errors))))
		return RN_ENOMEM;
	if (pthread_mutex_init(&s->errors->lock, NULL)) {
		rn_free(s->errors);
		s->errors = NULL;
		return RN_ENOMEM;
	}
	rn_log_set_sink(log_sink, s->errors);
	return 0;
}

void rn_server__api_fini(struct rn_server *s)
{
	rn_refusals_destroy(s->refusals);
	s->refusals = NULL;
	if (!s->errors)
		return;
	rn_log_set_sink(NULL, NULL);
	pthread_mutex_destroy(&s->errors->lock);
	rn_free(s->errors);
	s->errors = NULL;
}

/* ---- history ---- */

void rn_server__hist_tick(struct rn_server *s, int64_t now_ms)
{
	struct srv_hist *h = &s->hist[s->hist_head];
	h->t_ms = s->hist_t_ms;
	h->records = s->stats.records - s->hist_records;
	h->bytes = s->stats.bytes - s->hist_bytes;
	s->hist_head = (s->hist_head + 1) % SRV_HIST_SLOTS;
	if (s->hist_n < SRV_HIST_SLOTS)
		s->hist_n++;
	s->hist_records = s->stats.records;
	s->hist_bytes = s->stats.bytes;
	s->hist_t_ms = now_ms;
}

/* ---- answers ---- */

static void api_reply(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route,
		      struct rn_buf *b)
{
	s->stats.rest[route][rn_rest_status_index(200)]++;
	struct rn_httpx_response r = {.status = 200,
				      .content_type = REST_JSON,
				      .body = b->data,
				      .len = b->len,
				      .no_store = 1};
	rn_httpx_respond(x, &r);
}

static void api_error(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route, int http,
		      const char *code, const char *msg)
{
	/* 401: no valid credentials; 403: the principal just decided (api_allowed) */
	if (http == 401 || http == 403)
		rn_server__rest_log_refusal_of(
			s, x->req.peer,
			http == 403 && s->authz.principal ? s->authz.principal->name : NULL, NULL,
			x->req.method, x->req.path, http, msg);
	rn_server__rest_reply(s, x, route, http, code, msg, http == 401 ? "WWW-Authenticate" : NULL,
			      "Bearer realm=\"runnel\"");
}

/*
 * Who may read: everyone when the server has no principal (as ingest), else the top-level
 * token or a principal with console = true (401 without valid credentials, 403 for a
 * principal without console). 0 when allowed; else the request was answered.
 */
static int api_allowed(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route)
{
	const struct rn_httpx_request *q = &x->req;
	const char *principal = NULL, *msg = NULL, *code = NULL;
	char why[160];
	if (!rn_principals_required(s->principals))
		return 0;
	int rc = rn_server_authorize(s, q->authorization, q->peer_identity, NULL, &principal, &msg);
	if (rc) {
		int http = rn_rest_http_of_grpc(rc, &code);
		api_error(s, x, route, http, code, msg);
		return -1;
	}
	const struct rn_principal *p =
		principal ? rn_principals_find(s->principals, principal) : NULL;
	if (!p || !p->console) {
		s->stats.calls_denied++;
		snprintf(why, sizeof(why),
			 "principal %s may not read the fleet API (console = false)",
			 principal ? principal : "?");
		api_error(s, x, route, 403, "PERMISSION_DENIED", why);
		return -1;
	}
	return 0;
}

static int render_overview(struct rn_server *s, int64_t now, struct rn_buf *b)
{
	struct srv_numbers n;
	char why[512];
	int h = rn_server__health(s, why, sizeof(why));
	rn_server__numbers(s, &n);
	if (rn_buf_printf(b, "{\"now_ms\":%lld,\"version\":\"%s\",\"uptime_s\":%.3f,\"health\":",
			  (long long)now, RN_VERSION, n.uptime_s))
		return RN_ENOMEM;
	if (h == RN_HEALTH_OK) {
		if (rn_buf_append_str(b, "\"ok\""))
			return RN_ENOMEM;
	} else {
		char text[600];
		snprintf(text, sizeof(text), "%s: %s", h == RN_HEALTH_DOWN ? "down" : "degraded",
			 why);
		if (rn_json_put_str(b, text, strlen(text)))
			return RN_ENOMEM;
	}
	if (rn_buf_printf(b,
			  ",\"pressure\":\"%s\",\"wal_bytes\":%llu,\"mat_lag_s\":%.3f,\"totals\":{"
			  "\"records\":%llu,\"bytes\":%llu,\"batches\":%llu,\"calls_refused\":%llu,"
			  "\"flush_errors\":%llu,\"dead_letters\":%llu,\"streams_open\":%zu,"
			  "\"connections\":%llu},\"history\":[",
			  n.pressure, (unsigned long long)n.wal_bytes, n.mat_lag_s,
			  (unsigned long long)n.records, (unsigned long long)n.bytes,
			  (unsigned long long)n.batches, (unsigned long long)n.calls_refused,
			  (unsigned long long)n.flush_errors, (unsigned long long)n.dead_letters,
			  n.streams_open, (unsigned long long)n.connections))
		return RN_ENOMEM;
	for (size_t i = 0; i < s->hist_n; i++) {
		const struct srv_hist *e =
			&s->hist[(s->hist_head + SRV_HIST_SLOTS - s->hist_n + i) % SRV_HIST_SLOTS];
		if (rn_buf_printf(b, "%s{\"t_ms\":%lld,\"records\":%llu,\"bytes\":%llu}",
				  i ? "," : "", (long long)e->t_ms, (unsigned long long)e->records,
				  (unsigned long long)e->bytes))
			return RN_ENOMEM;
	}
	if (rn_buf_append_str(b, "],\"errors\":["))
		return RN_ENOMEM;
	/* a copy under the lock: the JSON is built without it */
	struct srv_errors copy;
	pthread_mutex_lock(&s->errors->lock);
	memcpy(copy.e, s->errors->e, sizeof(copy.e));
	copy.head = s->errors->head;
	copy.n = s->errors->n;
	pthread_mutex_unlock(&s->errors->lock);
	for (size_t i = 0; i < copy.n; i++) {
		const size_t k = (copy.head + SRV_ERRORS - copy.n + i) % SRV_ERRORS;
		if (rn_buf_printf(b, "%s{\"t_ms\":%lld,\"level\":\"%s\",\"text\":", i ? "," : "",
				  (long long)copy.e[k].t_ms,
				  copy.e[k].level == RN_LOG_ERROR ? "error" : "warn") ||
		    rn_json_put_str(b, copy.e[k].text, strlen(copy.e[k].text)) ||
		    rn_buf_append_str(b, "}"))
			return RN_ENOMEM;
	}
	if (rn_buf_append_str(b, "],\"refusals\":") || rn_refusals_summary(s->refusals, now, b))
		return RN_ENOMEM;
	return rn_buf_append_str(b, "}");
}

/* A table's time to table (fleet/ttt.h) in ms, 3 decimals: p50 and p99, null without a
 * sample. */
static int put_ttt(struct rn_buf *b, const struct rn_ttt *t)
{
	static const struct {
		const char *key;
		double q;
	} qs[] = {{"time_to_table_p50_ms", 0.5}, {"time_to_table_p99_ms", 0.99}};
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		int64_t us;
		if (rn_buf_printf(b, ",\"%s\":", qs[k].key) ||
		    (rn_ttt_quantile(t, qs[k].q, &us) ? rn_buf_append_str(b, "null")
						      : rn_buf_printf(b, "%.3f", (double)us / 1e3)))
			return RN_ENOMEM;
	}
	return 0;
}

static int render_tables(struct rn_server *s, int64_t now, struct rn_buf *b)
{
	struct rn_mat_table_info in;
	size_t i = 0, n = 0;
	int rc;
	if (rn_buf_printf(b, "{\"now_ms\":%lld,\"tables\":[", (long long)now))
		return RN_ENOMEM;
	while ((rc = rn_mat_table_info(s->mat, &i, &in)) == 0) {
		if ((n++ && rn_buf_append_str(b, ",")) || rn_buf_append_str(b, "{\"name\":") ||
		    rn_json_put_str(b, in.name, strlen(in.name)) ||
		    rn_buf_printf(b, ",\"version\":%lld,\"rows\":", (long long)in.version) ||
		    (in.rows < 0 ? rn_buf_append_str(b, "null")
				 : rn_buf_printf(b, "%lld", (long long)in.rows)) ||
		    rn_buf_printf(b, ",\"files\":%zu,\"bytes\":%lld,\"partitions\":%zu", in.files,
				  (long long)in.bytes, in.partitions) ||
		    rn_buf_append_str(b, ",\"last_commit_ms\":") ||
		    (in.last_commit_ms > 0 ? rn_buf_printf(b, "%lld", (long long)in.last_commit_ms)
					   : rn_buf_append_str(b, "null")) ||
		    put_ttt(b, rn_server__ttt_of(s, in.name)) ||
		    rn_buf_append_str(b, ",\"dead_letters\":"))
			return RN_ENOMEM;
		if (!in.has_dlq) {
			if (rn_buf_append_str(b, "null}"))
				return RN_ENOMEM;
			continue;
		}
		if (rn_buf_append_str(b, "{\"table\":") ||
		    rn_json_put_str(b, in.dlq_name, strlen(in.dlq_name)) ||
		    rn_buf_append_str(b, ",\"rows\":") ||
		    (in.dlq_rows < 0 ? rn_buf_append_str(b, "null")
				     : rn_buf_printf(b, "%lld", (long long)in.dlq_rows)) ||
		    rn_buf_append_str(b, ",\"latest\":["))
			return RN_ENOMEM;
		for (size_t k = 0; k < in.nlatest; k++) {
			const struct rn_mat_dead_sample *d = in.latest[k];
			if (rn_buf_printf(b, "%s{\"t_ms\":%lld,\"reason\":", k ? "," : "",
					  (long long)d->t_ms) ||
			    rn_json_put_str(b, d->reason, strlen(d->reason)) ||
			    rn_buf_append_str(b, ",\"sample\":") ||
			    rn_json_put_str(b, d->sample, d->sample_len) ||
			    rn_buf_append_str(b, "}"))
				return RN_ENOMEM;
		}
		if (rn_buf_append_str(b, "]}}"))
			return RN_ENOMEM;
	}
	if (rc != RN_ENOTFOUND)
		return rc;
	return rn_buf_append_str(b, "]}");
}

/* The committed offsets of every stream, read from the loop's Delta handles: per request
 * (the server tracks them only for calls that asked for committed acks). */
void rn_server__fleet_refresh(struct rn_server *s)
{
	for (struct srv_stream *st = s->streams; st; st = st->next)
		if (st->fl)
			st->fl->committed_offset = rn_mat_committed_read(s->mat, st->table, st->id);
}

void rn_server__api_request(struct rn_server *s, struct rn_httpx *x, const struct rn_rest_target *t)
{
	struct rn_buf *b = &s->rest_body;
	struct rn_fleet_query q;
	const char *why = NULL;
	int64_t now = rn_server__now_ms();
	int rc = 0;
	if (api_allowed(s, x, t->route))
		return;
	rn_buf_reset(b);
	switch (t->route) {
	case RN_REST_API_OVERVIEW: rc = render_overview(s, now, b); break;
	case RN_REST_API_TABLES: rc = render_tables(s, now, b); break;
	case RN_REST_API_STREAMS:
	case RN_REST_API_DEVICES:
		if (rn_fleet_query_parse(x->req.query, t->route == RN_REST_API_DEVICES, &q, &why))
			return api_error(s, x, t->route, 400, "INVALID_PARAMETER_VALUE", why);
		rn_server__fleet_refresh(s);
		rc = t->route == RN_REST_API_STREAMS
			     ? rn_fleet_render_streams(s->fleet, &q, now, b)
			     : rn_fleet_render_devices(s->fleet, &q, now, b);
		break;
	case RN_REST_API_REFUSALS:
		if (rn_fleet_query_parse(x->req.query, RN_FLEET_QUERY_REFUSALS, &q, &why))
			return api_error(s, x, t->route, 400, "INVALID_PARAMETER_VALUE", why);
		rc = rn_refusals_render(s->refusals, &q, now, b);
		break;
	case RN_REST_API_DEVICE:
		rn_server__fleet_refresh(s);
		rc = rn_fleet_render_device(s->fleet, t->device, strlen(t->device), now, b);
		if (rc == RN_ENOTFOUND)
			return api_error(s, x, t->route, 404, "NOT_FOUND", "no such device");
		break;
	default: return api_error(s, x, t->route, 404, "NOT_FOUND", "no such endpoint");
	}
	if (rc)
		return api_error(s, x, t->route, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
	api_reply(s, x, t->route, b);
}

/* ---- health reports ---- */

void rn_server__fleet_report(struct rn_server *s, struct srv_stream *st, const uint8_t *p,
			     size_t len)
{
	struct rn_fleet_stream *fl = rn_server__fleet_of(s, st);
	int64_t now = rn_server__now_ms();
	s->health_reports++;
	if (rn_fleet_health_parse(&s->fh, p, len)) {
		rn_log_warn("fleet", "stream %s: health report dropped: out of memory", st->id);
		return;
	}
	if (s->fh.reject != RN_FLEET_OK) {
		s->health_rejected[s->fh.reject]++;
		const char *peer = fl && fl->peer[0] ? fl->peer : st->id;
		if (rn_lograte_note(&s->health_log, peer, 1, rn_mono_us()))
			rn_log_info("fleet",
				    "%s: stream %s: health report refused (%s); more from this "
				    "peer are counted (agent_health_rejected_total)",
				    peer, st->id, s->fh.invalid);
	}
	if (fl && rn_fleet_report(s->fleet, fl, &s->fh, now))
		rn_log_warn("fleet", "stream %s: health report kept in part: out of memory",
			    st->id);
	rn_server__fleet_agents_row(s, fl, now);
}
