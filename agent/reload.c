/*
 * Reload (SIGHUP): puts a new config in force without a restart and without losing or
 * repeating a record. Sources are matched by name: one whose settings are all the same
 * keeps running untouched (it keeps its config block, and with it the config that holds
 * it, alive); one that is gone, or whose settings changed, is retired: its open chunks are
 * committed with its snapshot, it is polled no more, and it is freed once the buffer took
 * everything (rn_agent__reap). A changed source's successor, and any new source, is started
 * by sync_sources as soon as no source of its name is left: it resumes from the position
 * stored with the last chunk, exactly as after a restart. Agent settings that a running
 * agent can take (log level is main's; chunk limits, buffer policy, the uplink) apply at
 * once (the uplink is created anew when one of its settings changed; it resumes every
 * stream from the last acknowledged offset); the rest keep their running value with a
 * warning. Configs are owned here (a->gens) and freed when nothing refers to them.
 */
#include <string.h>

#include "agent_int.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

static int same_str(const char *x, const char *y)
{
	return x == y || (x && y && !strcmp(x, y));
}

/* A string setting that applies at start only: the new config gets the running value. */
static int keep_str(const char *key, const char *run, char **next)
{
	if (same_str(run, *next))
		return 0;
	rn_log_warn("agent", "reload: %s changes at restart; keeping \"%s\"", key,
		    run ? run : "(unset)");
	char *v = run ? rn_strdup(run) : NULL;
	if (run && !v)
		return RN_ENOMEM;
	rn_free(*next);
	*next = v;
	return 0;
}

static void keep_int(const char *key, int64_t run, int64_t *next)
{
	if (run == *next)
		return;
	rn_log_warn("agent", "reload: %s changes at restart; keeping %lld", key, (long long)run);
	*next = run;
}

/* Restart-only settings of next take the values of run (warned about). 0 or RN_ENOMEM. */
static int keep_restart_only(const struct rn_agent_conf *run, struct rn_agent_conf *next)
{
	int rc;
	int64_t sync = next->sync;
	if ((rc = keep_str("agent.device_id", run->device_id, &next->device_id)) ||
	    (rc = keep_str("agent.data_dir", run->data_dir, &next->data_dir)) ||
	    (rc = keep_str("agent.plugin_dir", run->plugin_dir, &next->plugin_dir)))
		return rc;
	keep_int("buffer.sync", run->sync, &sync);
	next->sync = (int)sync;
	keep_int("buffer.max_bytes", run->buffer_max_bytes, &next->buffer_max_bytes);
	keep_int("buffer.reserve", run->buffer_reserve, &next->buffer_reserve);
	return 0;
}

static int uplink_same(const struct rn_agent_conf *x, const struct rn_agent_conf *y)
{
	return same_str(x->url, y->url) && same_str(x->token, y->token) &&
	       same_str(x->client_id, y->client_id) && same_str(x->token_url, y->token_url) &&
	       !strcmp(x->client_secret, y->client_secret) && x->window == y->window &&
	       x->backoff_min_ms == y->backoff_min_ms && x->backoff_max_ms == y->backoff_max_ms &&
	       x->ack_timeout_ms == y->ack_timeout_ms &&
	       x->max_bytes_per_sec == y->max_bytes_per_sec && same_str(x->ca_file, y->ca_file) &&
	       same_str(x->cert_file, y->cert_file) && same_str(x->key_file, y->key_file) &&
	       same_str(x->pinned_key, y->pinned_key);
}

static struct source *source_named(struct rn_agent *a, const char *name)
{
	for (size_t i = 0; i < a->nsrc; i++)
		if (!strcmp(a->src[i]->conf->name, name))
			return a->src[i];
	return NULL;
}

/* Stops taking records from s and commits what it read (see the file comment). */
static void retire(struct source *s, const char *why)
{
	rn_log_info("agent", "reload: source %s %s: stopping it once what it read is buffered",
		    s->conf->name, why);
	s->retiring = 1;
	rn_agent__close_chunk(s);
	if (!s->have_pending && s->pos_dirty)
		rn_agent__tick(s->a, rn_mono_us()); /* a position without records */
}

/* Starts a source for every entry of the config in force that has none (by name). */
static void sync_sources(struct rn_agent *a)
{
	const struct rn_agent_conf *c = a->conf;
	for (size_t i = 0; i < c->sources.n; i++) {
		const struct rn_source_conf *sc =
			(const struct rn_source_conf *)c->sources.items + i;
		if (source_named(a, sc->name))
			continue;
		int rc = rn_agent__source_start(a, c, sc);
		if (rc)
			rn_log_error("agent", "reload: source %s cannot start: %s", sc->name,
				     rn_strerror(rc));
		else
			rn_log_info("agent", "reload: source %s started", sc->name);
	}
}

void rn_agent__gc_gens(struct rn_agent *a)
{
	size_t n = 0;
	for (size_t g = 0; g < a->ngens; g++) {
		int used = a->gens[g] == a->conf;
		for (size_t i = 0; i < a->nsrc && !used; i++)
			used = a->src[i]->gen == a->gens[g];
		if (used) {
			a->gens[n++] = a->gens[g];
			continue;
		}
		rn_conf_free(rn_agent_conf_table, a->gens[g]);
		rn_free(a->gens[g]);
	}
	a->ngens = n;
}

void rn_agent__reap(struct rn_agent *a)
{
	size_t n = 0, freed = 0;
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		if (s->retiring && !s->have_pending && !s->pos_dirty) {
			rn_log_info("agent", "source %s stopped; everything it read is buffered",
				    s->conf->name);
			rn_agent__source_free(s);
			freed++;
		} else
			a->src[n++] = s;
	}
	a->nsrc = n;
	if (freed) {
		sync_sources(a);
		rn_agent__gc_gens(a);
	}
}

int rn_agent_reload(struct rn_agent *a, struct rn_agent_conf *next)
{
	const struct rn_agent_conf *run = a->conf;
	struct rn_uplink *u = NULL;
	int rc;

	rn_agent__acks_apply(a); /* a new uplink or source starts from the buffer's acked */
	rn_agent__gc_gens(a);
	if (a->ngens == CONF_GENS_MAX) {
		rn_log_error("agent",
			     "reload refused: %d earlier configs are still in use by sources "
			     "waiting for room in the buffer",
			     CONF_GENS_MAX);
		rc = RN_EAGAIN;
		goto refuse;
	}
	if ((rc = keep_restart_only(run, next)))
		goto refuse;
	a->gens[a->ngens++] = next;
	a->conf = next;
	if (!uplink_same(run, next)) {
		if ((rc = rn_agent__uplink_open(a, 1, &u))) {
			rn_log_error("agent", "reload: the new uplink settings cannot be used: %s",
				     rn_strerror(rc));
			a->conf = run;
			a->ngens--;
			goto refuse;
		}
		rn_log_info("agent", "reload: uplink settings changed; reconnecting to %s",
			    next->url);
		rn_uplink_destroy(a->uplink);
		a->uplink = u;
	}
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		const struct rn_source_conf *sc = NULL;
		if (s->retiring)
			continue;
		for (size_t k = 0; k < next->sources.n && !sc; k++) {
			const struct rn_source_conf *e =
				(const struct rn_source_conf *)next->sources.items + k;
			if (!strcmp(e->name, s->conf->name))
				sc = e;
		}
		if (!sc)
			retire(s, "was removed");
		else if (!rn_agent__source_same(s->conf, sc))
			retire(s, "changed");
	}
	rn_agent__apply_chunk_limits(a);
	a->reloads++;
	rn_agent__reap(a);
	sync_sources(a);
	rn_agent__gc_gens(a);
	/* a new uplink knows the streams registered when it was made; later sources add
	 * theirs as they start */
	return 0;
refuse:
	rn_conf_free(rn_agent_conf_table, next);
	rn_free(next);
	return rc;
}
