/*
 * REST inserts (docs/protocol.md "REST"): the requests of both ports (front.c's HTTP/2 main
 * port, metrics.c's HTTP/1.1 port) that are not gRPC calls arrive here through httpx.h
 * (rn_server__rest_request); rest.h routes them and splits their bodies. An insert is written
 * as a gRPC JSON batch is: each (table, principal) has one REST stream per server run
 * (ephemeral, record type JSON, made on first use), each request is one batch at that
 * stream's next offset, through the same materializer and WAL, and it is answered 200 {} by
 * rest_settle (server.c, the group commit) once sync_wal has made that offset durable. A
 * failed sync answers its requests 503 and retires the stream (the next request starts a new
 * one), so an offset is never reused for other rows; rows that do not fit a typed table go to
 * its dead letters, as gRPC JSON records do. The token endpoint is token_ep.c. Moved out of
 * server.c; loop thread only.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "console.h"
#include "front.h"
#include "httpx.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "server_int.h"
#include "wal.h"

/* Sends a JSON answer: `{}` for 200, else {"error_code","message"}; counted per route. */
void rn_server__rest_reply(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route,
			   int http, const char *code, const char *msg, const char *hname,
			   const char *hvalue)
{
	struct rn_buf *b = &s->rest_body;
	rn_buf_reset(b);
	if (http == 200 ? rn_buf_append_str(b, "{}") : rn_rest_error_body(b, code, msg))
		rn_buf_reset(b); /* out of memory: the status alone says it */
	s->stats.rest[route][rn_rest_status_index(http)]++;
	struct rn_httpx_response r = {.status = http,
				      .content_type = REST_JSON,
				      .hname = hname,
				      .hvalue = hvalue,
				      .body = b->data,
				      .len = b->len};
	rn_httpx_respond(x, &r);
}

/* A refusal while the request is being handled: logged like refused gRPC calls (first of a
 * kind at once, the rest summed up per period), then answered. */
/* The address of a peer "address:port" or "[address]:port", without the port. */
static void peer_addr(const char *peer, char *out, size_t cap)
{
	const char *end = peer[0] == '[' ? strchr(peer, ']') : strrchr(peer, ':');
	size_t n = end ? (size_t)(end - peer) : strlen(peer);
	if (peer[0] == '[' && end)
		peer++, n--;
	snprintf(out, cap, "%.*s", (int)n, peer);
}

/* peer, method and path as the request had them (copies, for an answer given later: the
 * request's own fields are gone after request()) */
void rn_server__rest_log_refusal_of(struct rn_server *s, const char *peer, const char *principal,
				    const char *table, const char *method, const char *path,
				    int http, const char *msg)
{
	char addr[64];
	rn_server__refusal(s, peer, principal, 0, http, msg, table);
	/* counted against the address as refused gRPC calls are (not the server's own 429) */
	if (http != 429 && peer) {
		peer_addr(peer, addr, sizeof(addr));
		rn_front_note_refusal(s->front, addr);
	}
	/* refusals under pressure come in bursts; the server logs the episode */
	if (http == 429)
		rn_log_debug("rest", "%s: %s %s refused: %d %s", peer, method, path, http, msg);
	else if (rn_refuselog_note(&s->rest_refusals, peer, http, msg, rn_mono_us()))
		rn_log_info("rest",
			    "%s: %s %s refused: %d %s (more like it from this address are "
			    "counted every %lld s)",
			    peer, method, path, http, msg,
			    (long long)(REST_LOG_PERIOD_US / 1000000));
}

/* A refusal of a request by principal (NULL unknown) naming table (NULL none). */
static void rest_refuse_as(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route,
			   const char *principal, const char *table, int http, const char *code,
			   const char *msg, const char *hname, const char *hvalue)
{
	rn_server__rest_log_refusal_of(s, x->req.peer, principal, table, x->req.method, x->req.path,
				       http, msg);
	rn_server__rest_reply(s, x, route, http, code, msg, hname, hvalue);
}

static void rest_refuse(struct rn_server *s, struct rn_httpx *x, enum rn_rest_route route, int http,
			const char *code, const char *msg, const char *hname, const char *hvalue)
{
	rest_refuse_as(s, x, route, NULL, NULL, http, code, msg, hname, hvalue);
}

void rn_server__rest_refusal_summary(void *ctx, const struct rn_refuselog_kind *k, uint64_t n)
{
	(void)ctx;
	if (k)
		rn_log_info("rest", "%s: %llu more requests refused in the last %lld s: %d %s",
			    k->peer, (unsigned long long)n,
			    (long long)(REST_LOG_PERIOD_US / 1000000), k->status, k->reason);
	else
		rn_log_info("rest",
			    "%llu more requests refused in the last %lld s (of kinds past the "
			    "per-period limit of lines)",
			    (unsigned long long)n, (long long)(REST_LOG_PERIOD_US / 1000000));
}

/* The client of a waiting request went away: its rows stay (they are in the WAL). */
void rn_server__rest_gone(void *ctx, struct rn_httpx *x)
{
	struct rn_server *s = ctx;
	if (rn_server__token_gone(s, x))
		return;
	for (struct rest_pending **pp = &s->rest_pending; *pp; pp = &(*pp)->next) {
		struct rest_pending *p = *pp;
		if (p->x != x)
			continue;
		*pp = p->next;
		p->st->rest_waiting--;
		rn_free(p);
		return;
	}
}

/*
 * The REST stream of this run for (table, principal), made on first use, its principal kept
 * durably (save_owner) before any of its batches is; NULL when out of memory or that file
 * cannot be written (*why says which). One per pair, so a stream has one writer whose name every
 * row of it gets; bounded: principals come from the config.
 */
static struct srv_stream *rest_stream(struct rn_server *s, const char *table, const char *principal,
				      const char **why)
{
	struct srv_stream *st;
	uuid_t u;
	char id[37];
	for (struct rn_list *n = s->rest_streams.next; n != &s->rest_streams; n = n->next) {
		st = RN_LIST_ENTRY(n, struct srv_stream, rest_link);
		if (!strcmp(st->table, table) && !strcmp(st->owner, principal))
			return st;
	}
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	*why = "out of memory";
	if (!(st = rn_server__add_stream(s, id, strlen(id), table, strlen(table), RN_MAT_JSON)))
		return NULL;
	snprintf(st->owner, sizeof(st->owner), "%s", principal);
	if (rn_registry_save_owner(s->reg, st->id, st->owner)) {
		*why = "cannot keep the stream's principal durably";
		rn_server__abandon_stream(s, st, *why);
		return NULL;
	}
	st->rest = 1;
	rn_list_push(&s->rest_streams, &st->rest_link);
	if (st->fl)
		rn_fleet_stream_open(st->fl, RN_FLEET_REST, NULL, principal, rn_server__now_ms());
	rn_log_info("server", "stream %s created for REST inserts into table %s by principal %s",
		    id, table, principal);
	return st;
}

static void rest_insert(struct rn_server *s, struct rn_httpx *x, const struct rn_rest_target *t)
{
	const struct rn_httpx_request *q = &x->req;
	enum rn_rest_route route = t->route;
	const char *msg = NULL, *code, *principal;
	char why[400], ra[24];
	struct rest_pending *p;
	struct srv_stream *st;
	int64_t pushback, offset;
	size_t nrows;
	int rc, ex;

#define REFUSE(http, code, msg) return rest_refuse(s, x, route, http, code, msg, NULL, NULL)
	if (s->stopping || s->draining)
		REFUSE(503, "TEMPORARILY_UNAVAILABLE",
		       s->stopping ? "server is shutting down" : "server is draining");
	if ((rc = rn_server_authorize(s, q->authorization, q->peer_identity, t->table, &principal,
				      &msg))) {
		int http = rn_rest_http_of_grpc(rc, &code);
		return rest_refuse_as(s, x, route, principal, t->table, http, code, msg,
				      http == 401 ? "WWW-Authenticate" : NULL,
				      "Bearer realm=\"runnel\"");
	}
	/* from here on the refusals are this principal's, of this table */
#undef REFUSE
#define REFUSE(http, code, msg)                                                                    \
	return rest_refuse_as(s, x, route, principal, t->table, http, code, msg, NULL, NULL)
	if (rn_table_name_check(t->table))
		REFUSE(400, "INVALID_PARAMETER_VALUE", "invalid table name");
	if (q->body_too_large) {
		snprintf(why, sizeof(why),
			 "request body larger than max_message_bytes (%lld bytes)",
			 (long long)s->conf.max_message_bytes);
		REFUSE(413, "RESOURCE_EXHAUSTED", why);
	}
	rn_buf_reset(&s->rest_batch);
	/* a record list adds at most 2 bytes per byte of body ("{}," is 3 bytes, 5 as a record) */
	s->rest_batch.max = 2 * (size_t)s->conf.max_message_bytes + 64;
	rc = rn_rest_batch(q->body, q->body_len, route == RN_REST_INGEST_RECORD, &s->rest_batch,
			   &nrows, why, sizeof(why));
	if (rc == RN_EINVAL)
		REFUSE(400, "INVALID_PARAMETER_VALUE", why);
	if (rc)
		REFUSE(503, "TEMPORARILY_UNAVAILABLE", "out of memory");
	if (rn_server__table_failing(s, t->table, why, sizeof(why)))
		REFUSE(503, "TEMPORARILY_UNAVAILABLE", why);
	/* as a gRPC create: an unknown table is made only with auto_create (an envelope table) */
	ex = rn_mat_table_exists(s->mat, t->table);
	if (ex == 0 && s->conf.auto_create) {
		if ((rc = rn_mat_ensure_table(s->mat, t->table)) == RN_EINVAL)
			REFUSE(400, "INVALID_PARAMETER_VALUE", rn_mat_errmsg(s->mat));
		if (rc == 0)
			ex = 1;
	}
	if (ex != 1)
		REFUSE(404, "NOT_FOUND", "table does not exist");
	if (!nrows)
		return rn_server__rest_reply(s, x, route, 200, NULL, NULL, NULL, NULL);
	if ((msg = rn_server__admit(s, t->table, principal, &pushback))) {
		snprintf(ra, sizeof(ra), "%lld",
			 (long long)(pushback > 0 ? (pushback + 999) / 1000 : 1));
		return rest_refuse(s, x, route, 429, "RESOURCE_EXHAUSTED", msg, "Retry-After", ra);
	}
	msg = "out of memory";
	if (!(p = rn_calloc(1, sizeof(*p))) ||
	    !(st = rest_stream(s, t->table, principal ? principal : "", &msg))) {
		rn_free(p);
		REFUSE(503, "TEMPORARILY_UNAVAILABLE", msg);
	}
	offset = st->last_received + 1;
	switch (rn_server__append_batch(s, st, offset, RN_MAT_JSON, s->rest_batch.data,
					s->rest_batch.len, rn_server__owner_of(st), &rc)) {
	case SRV_APPEND_MAT:
		rn_free(p);
		REFUSE(rc == RN_EINVAL ? 400 : 503,
		       rc == RN_EINVAL ? "INVALID_PARAMETER_VALUE" : "TEMPORARILY_UNAVAILABLE",
		       rn_mat_errmsg(s->mat));
	case SRV_APPEND_WAL:
		/* the batch was taken back (rn_server__append_batch): a new stream takes the next
		 */
		rn_free(p);
		rn_server__end_rest(s, st);
		rest_refuse(s, x, route, 429, "RESOURCE_EXHAUSTED", "WAL queue full", "Retry-After",
			    "1");
		return;
	case SRV_APPEND_OK: break;
	}
#undef REFUSE
	s->stats.batches++;
	s->stats.bytes += s->rest_batch.len;
	s->stats.records += nrows;
	if (st->fl) {
		st->fl->batches++;
		st->fl->bytes += s->rest_batch.len;
		st->fl->records += nrows;
		st->fl->last_batch_ms = rn_server__now_ms();
		if (q->peer)
			snprintf(st->fl->peer, sizeof(st->fl->peer), "%s", q->peer);
	}
	*p = (struct rest_pending){x, st, offset, route, s->rest_pending};
	s->rest_pending = p;
	st->rest_waiting++;
	x->ctx = p;
}

void rn_server__rest_request(void *ctx, struct rn_httpx *x)
{
	struct rn_server *s = ctx;
	const struct rn_httpx_request *q = &x->req;
	struct rn_rest_target t;
	char addr[64], ra[24];
	int http = rn_rest_route(q->method, q->path, q->path_len, q->query, q->content_type, &t);
	if (q->peer) {
		/* a throttled address costs nothing more: no credentials checked, no body read */
		peer_addr(q->peer, addr, sizeof(addr));
		if (rn_front_throttled(s->front, addr)) {
			snprintf(ra, sizeof(ra), "%lld",
				 (long long)(s->conf.refuse_cooldown_ms + 999) / 1000);
			s->stats.rest_throttled++;
			return rn_server__rest_reply(
				s, x, t.route, 429, "TOO_MANY_REQUESTS",
				"this address is throttled for too many refused requests "
				"(refuse_throttle)",
				"Retry-After", ra);
		}
	}
	/* the operator's drain: the HTTP/1.1 (metrics) port only; refusals count against the
	 * address and are logged as other REST refusals (rate-limited) */
	if (!q->http2 && q->path_len == 12 && !memcmp(q->path, "/admin/drain", 12)) {
		const char *principal = NULL, *msg = NULL, *code = NULL;
		int rc;
		if (strcmp(q->method, "POST"))
			return rest_refuse(s, x, RN_REST_OTHER, 405, "METHOD_NOT_ALLOWED",
					   "only POST is allowed here", "Allow", "POST");
		if ((rc = rn_server_authorize(s, q->authorization, q->peer_identity, NULL,
					      &principal, &msg))) {
			int status = rn_rest_http_of_grpc(rc, &code);
			return rest_refuse(s, x, RN_REST_OTHER, status, code, msg,
					   status == 401 ? "WWW-Authenticate" : NULL,
					   "Bearer realm=\"runnel\"");
		}
		return rn_server__admin_drain(s, x, principal);
	}
	if (http)
		return rest_refuse(s, x, t.route, http, t.code, t.why, t.allow ? "Allow" : NULL,
				   t.allow);
	if (t.route == RN_REST_TOKEN)
		return rn_server__rest_token(s, x);
	if (t.route == RN_REST_CONSOLE) {
		/* the web console's files: public, no data (console.h) */
		struct rn_console_answer a;
		int st = rn_console_answer(q->method, q->path, q->path_len, q->if_none_match, &a);
		s->stats.rest[t.route][rn_rest_status_index(st)]++;
		return rn_httpx_respond(x, &a.r);
	}
	if (t.route >= RN_REST_API_OVERVIEW)
		return rn_server__api_request(s, x, &t);
	rest_insert(s, x, &t);
}
