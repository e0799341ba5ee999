/*
 * The token endpoint (POST /oidc/v1/token) on both ports: the token core (oauth.h) decides,
 * the client secret's PBKDF2 check runs on the token pool (pool.h) unless the verified-secret
 * cache knows it, and the answer is sent on the loop. Moved out of server.c; the loop owns
 * everything here except a job's `pend`/`verified` between submit and the end of token_run
 * (server/README.md "Threads and ownership").
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "httpx.h"
#include "pool.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "seccache.h"
#include "server_int.h"

/*
 * The OAuth 2.0 client-credentials endpoint (POST /oidc/v1/token), on both ports. The token
 * core (oauth.h) decides in two steps around the client secret's PBKDF2 check, which takes
 * tens of milliseconds and so never runs on the loop: rn_oauth_token_start (parsing, the
 * principal, scope and tables: on the loop), then the check in s->pool (token_run on a
 * worker) unless the secret cache knows the secret verified already, then
 * rn_oauth_token_finish and the answer on the loop (token_done; signing is one HMAC). The
 * pool is bounded (token_verify_queue): a request finding it full is answered 503 at once.
 * A client that goes away meanwhile only clears job->x (rn_server__rest_gone). A refusal is logged
 * through the REST refusal limiter like any other.
 */
struct token_job {
	/* the worker's between submit and the end of token_run (pool.h): */
	struct rn_oauth_pending pend; /* read by the worker */
	int verified;                 /* written by the worker: rn_crypto_verify_secret's */
	/* the loop's, always: */
	struct rn_server *s;
	struct rn_httpx *x; /* NULL once the client went away */
	char peer[80];      /* x->req.peer, kept for the log (x->req is gone after request()) */
	struct token_job *prev, *next;
};

static const char token_oom[] = "{\"error\":\"server_error\",\"error_description\":\"the "
				"server could not build an answer\"}";

/* The token core's context now: principals, key, clock, lifetime, a fresh token id. */
static int token_ctx(struct rn_server *s, struct rn_oauth_ctx *c, char jti[40])
{
	uint8_t raw[16];
	if (rn_crypto_random(raw, sizeof(raw)))
		return RN_EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(jti + 2 * i, 3, "%02x", raw[i]);
	*c = (struct rn_oauth_ctx){s->principals,
				   s->key,
				   s->klen,
				   (int64_t)time(NULL),
				   s->conf.token_lifetime_ms / 1000,
				   jti};
	return 0;
}

/* Sends the token core's answer (rc its return: not 0, or no body = 500), counted and, for
 * a refusal, logged. */
static void token_answer(struct rn_server *s, struct rn_httpx *x, const char *peer, int rc,
			 const struct rn_oauth_response *out, const char *jti)
{
	struct rn_httpx_response a = {.status = 500,
				      .content_type = REST_JSON,
				      .body = (const uint8_t *)token_oom,
				      .len = sizeof(token_oom) - 1};
	if (!rc && out->body.len) {
		a.status = out->status;
		a.body = out->body.data;
		a.len = out->body.len;
		if (out->www_authenticate) {
			a.hname = "WWW-Authenticate";
			a.hvalue = "Basic realm=\"runnel\"";
		}
	}
	if (a.status == 200) {
		s->stats.tokens_issued++;
		rn_log_info("server", "token %s issued to principal %s for %lld s", jti,
			    out->principal, (long long)(s->conf.token_lifetime_ms / 1000));
	} else {
		s->stats.token_refusals++;
		rn_server__rest_log_refusal_of(s, peer, NULL, NULL, "POST", "/oidc/v1/token",
					       a.status,
					       out->error[0] ? out->error : "token request failed");
	}
	s->stats.rest[RN_REST_TOKEN][rn_rest_status_index(a.status)]++;
	rn_httpx_respond(x, &a);
}

/* A fixed answer that is not the token core's (413, 503). */
static void token_fixed(struct rn_server *s, struct rn_httpx *x, int status, const char *body,
			const char *hname, const char *hvalue)
{
	struct rn_httpx_response a = {.status = status,
				      .content_type = REST_JSON,
				      .hname = hname,
				      .hvalue = hvalue,
				      .body = (const uint8_t *)body,
				      .len = strlen(body)};
	s->stats.token_refusals++;
	s->stats.rest[RN_REST_TOKEN][rn_rest_status_index(status)]++;
	rn_httpx_respond(x, &a);
}

static void token_job_free(struct token_job *j)
{
	explicit_bzero(j->pend.secret, sizeof(j->pend.secret));
	rn_free(j);
}

/* On a worker (pool.h): the PBKDF2 check, touching nothing but the job's pend and verified. */
static void token_run(void *arg)
{
	struct token_job *j = arg;
	j->verified =
		rn_crypto_verify_secret(j->pend.secret_hash, j->pend.secret, j->pend.secret_len);
}

/* On the loop: the check is over (or was cancelled by shutdown). A secret that verified
 * for a principal still holding that hash is cached even if the client went away. */
static void token_done(void *arg, int cancelled)
{
	struct token_job *j = arg;
	struct rn_server *s = j->s;
	struct rn_oauth_response out;
	struct rn_oauth_ctx c;
	char jti[40];
	int rc;

	if (j->prev)
		j->prev->next = j->next;
	else
		s->token_jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	if (!cancelled) {
		const struct rn_principal *p =
			rn_principals_by_client_id(s->principals, j->pend.client_id);
		s->stats.token_verifications++;
		if (j->verified == 1 && p && p->secret_hash &&
		    !strcmp(p->secret_hash, j->pend.secret_hash))
			rn_seccache_put(s->seccache, j->pend.client_id, j->pend.secret_hash,
					j->pend.secret, j->pend.secret_len);
	}
	if (j->x && cancelled) {
		token_fixed(s, j->x, 503,
			    "{\"error\":\"temporarily_unavailable\",\"error_description\":"
			    "\"server is shutting down\"}",
			    NULL, NULL);
	} else if (j->x) {
		memset(&out, 0, sizeof(out));
		rc = token_ctx(s, &c, jti);
		rc = rc ? rc : rn_oauth_token_finish(&c, &j->pend, j->verified, &out);
		token_answer(s, j->x, j->peer, rc, &out, jti);
		rn_buf_free(&out.body);
	}
	token_job_free(j);
}

void rn_server__rest_token(struct rn_server *s, struct rn_httpx *x)
{
	const struct rn_httpx_request *q = &x->req;
	struct rn_oauth_request r = {q->method, q->content_type, q->authorization, q->body,
				     q->body_len};
	struct rn_oauth_response out;
	struct rn_oauth_ctx c;
	struct token_job *j = NULL;
	char jti[40] = "";
	int rc;

	memset(&out, 0, sizeof(out)); /* out.body: an empty rn_buf */
	if (q->body_too_large)
		return token_fixed(s, x, 413,
				   "{\"error\":\"invalid_request\",\"error_description\":"
				   "\"request body too large\"}",
				   NULL, NULL);
	if (s->stopping)
		return token_fixed(s, x, 503,
				   "{\"error\":\"temporarily_unavailable\",\"error_description\":"
				   "\"server is shutting down\"}",
				   NULL, NULL);
	if (!(j = rn_calloc(1, sizeof(*j)))) {
		rc = RN_ENOMEM;
		goto answer;
	}
	if ((rc = token_ctx(s, &c, jti)) ||
	    (rc = rn_oauth_token_start(&c, &r, &out, &j->pend)) != RN_EAGAIN)
		goto answer;
	if (rn_seccache_hit(s->seccache, j->pend.client_id, j->pend.secret_hash, j->pend.secret,
			    j->pend.secret_len)) {
		s->stats.token_cache_hits++;
		rc = rn_oauth_token_finish(&c, &j->pend, 1, &out);
		goto answer;
	}
	j->s = s;
	if ((rc = rn_pool_submit(s->pool, token_run, token_done, j))) {
		s->stats.token_queue_full++;
		/* the server's load, not the client's fault: not counted against its address */
		if (rn_refuselog_note(&s->rest_refusals, q->peer ? q->peer : "", 503,
				      "token_verify_queue full", rn_mono_us()))
			rn_log_info("rest",
				    "%s: POST %s refused: 503 token_verify_queue full (%zu secret "
				    "checks queued; more like it are counted every %lld s)",
				    q->peer ? q->peer : "", q->path, rn_pool_depth(s->pool),
				    (long long)(REST_LOG_PERIOD_US / 1000000));
		token_job_free(j);
		return token_fixed(s, x, 503,
				   "{\"error\":\"temporarily_unavailable\",\"error_description\":"
				   "\"too many token requests being checked; retry\"}",
				   "Retry-After", "1");
	}
	j->x = x;
	x->ctx = j;
	snprintf(j->peer, sizeof(j->peer), "%s", q->peer ? q->peer : "");
	j->next = s->token_jobs;
	if (j->next)
		j->next->prev = j;
	s->token_jobs = j;
	return;
answer:
	if (j)
		token_job_free(j);
	token_answer(s, x, q->peer, rc == RN_EAGAIN ? RN_ENOMEM : rc, &out, jti);
	rn_buf_free(&out.body);
}

/* The client of a token request went away: its check runs on, token_done answers no one. 1
 * when x was a token request. */
int rn_server__token_gone(struct rn_server *s, struct rn_httpx *x)
{
	for (struct token_job *j = s->token_jobs; j; j = j->next)
		if (j->x == x) {
			j->x = NULL;
			return 1;
		}
	return 0;
}
