/*
 * The agent's health reports (docs/protocol.md, "Health reports"): a snapshot of the numbers
 * the agent already keeps (buffer, drops, expiries, dead letters, each source's state) in
 * the shape of health.h, and the loop step that sends one when it is due: at once on a
 * call that just opened and takes reports, every uplink.health_interval seconds, and sooner
 * (at most every 5 s) when a state value changed. The JSON is built by health.c (pure) and
 * queued by the uplink on the calls whose server answered `runnel-health: 1`; against any
 * other server nothing is sent. A report that cannot be built is skipped and counted, never
 * an error. Loop thread only; the state lives in struct rn_agent (health_*).
 */
#include <stdio.h>
#include <string.h>

#include "agent_int.h"
#include "health.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_version.h"

_Static_assert((int)RN_SOURCE_UP == (int)RN_HEALTH_UP &&
		       (int)RN_SOURCE_DOWN == (int)RN_HEALTH_DOWN &&
		       (int)RN_SOURCE_ERROR == (int)RN_HEALTH_ERROR &&
		       (int)RN_SOURCE_IDLE == (int)RN_HEALTH_IDLE,
	       "plugin.h and health.h name the same states");

/* A change of state is looked for at most this often (the snapshot walks every source). */
#define CHECK_US 1000000

/* The report's type of a source: the built-in types by name, anything else "plugin". */
static const char *source_type(const char *type)
{
	static const char *const known[] = {"mqtt", "serial", "file"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(type, known[i]))
			return known[i];
	return "plugin";
}

void rn_agent__snap_mem_free(struct rn_agent_snap_mem *m)
{
	rn_free(m->src);
	*m = (struct rn_agent_snap_mem){0};
}

/* Fills everything but what needs the buffer's file (records, oldest age): the state values
 * and the counters kept in memory. */
static int snapshot_cheap(struct rn_agent *a, struct rn_health_snap *hs,
			  struct rn_agent_snap_mem *m)
{
	if (m->cap < a->nsrc) {
		struct rn_health_source *v = rn_reallocarray(m->src, a->nsrc, sizeof(*v));
		if (!v)
			return RN_ENOMEM;
		m->src = v;
		m->cap = a->nsrc;
	}
	m->nsrc = 0;
	*hs = (struct rn_health_snap){
		.device = a->device_id,
		.version = RN_VERSION,
		.config_sha256 = a->conf->config_sha256[0] ? a->conf->config_sha256 : NULL,
		.boot_id = a->boot_id,
		.clock_synced = rn_now_us() >= RN_CLOCK_TRUSTED_US,
		.buffer_max_bytes = a->conf->buffer_max_bytes,
		.buffer_records = 0,
		.oldest_unsent_age_s = -1,
		.expired = a->expired_records};
	/* the one drop reason the agent has: buffer.policy drop_oldest on a full buffer */
	m->drops[0] = (struct rn_health_drop){"buffer_full", a->dropped_records};
	hs->drops = m->drops;
	hs->ndrops = 1;
	for (size_t i = 0; i < a->nsrc; i++) {
		struct source *s = a->src[i];
		struct rn_health_source *o = &m->src[m->nsrc++];
		*o = (struct rn_health_source){.name = s->conf->name,
					       .type = source_type(s->conf->type),
					       .state = s->state,
					       .error = s->state_error[0] ? s->state_error : NULL,
					       .records = s->records_in};
		if (s->poll_failed) {
			o->state = RN_HEALTH_ERROR;
			o->error = rn_strerror(s->poll_failed);
		} else if (o->state == RN_HEALTH_UP && (s->have_pending || s->retiring)) {
			o->state = RN_HEALTH_IDLE; /* waiting for room, or being removed */
			o->error = NULL;
		}
		hs->dead_letters += s->dead_letters;
	}
	hs->sources = m->src;
	hs->nsources = m->nsrc;
	return 0;
}

int rn_agent__health_snapshot(struct rn_agent *a, struct rn_health_snap *hs,
			      struct rn_agent_snap_mem *m)
{
	int rc = snapshot_cheap(a, hs, m);
	if (rc)
		return rc;
	int64_t now = rn_now_us(), oldest = 0;
	hs->uptime_s = (rn_mono_us() - a->started_us) / 1000000;
	hs->sent_at_ms = now / 1000;
	hs->buffer_bytes = rn_buffer_bytes(a->buffer);
	hs->buffer_records = rn_buffer_records(a->buffer);
	if (hs->buffer_records < 0)
		hs->buffer_records = 0;
	for (size_t i = 0; i < a->nsrc; i++)
		for (size_t k = 0; k < a->src[i]->nroutes; k++) {
			int64_t t = rn_buffer_oldest_us(a->buffer, a->src[i]->routes[k].st.id);
			if (t > 0 && (!oldest || t < oldest))
				oldest = t;
		}
	if (oldest)
		hs->oldest_unsent_age_s = now > oldest ? (now - oldest) / 1000000 : 0;
	return 0;
}

void rn_agent__health_step(struct rn_agent *a)
{
	int interval = (int)a->conf->health_interval;
	int64_t now = rn_mono_us();
	struct rn_agent_snap_mem m = {0};
	struct rn_health_snap hs;
	struct rn_buf json = {0};

	if (interval <= 0)
		return;
	int fresh = rn_uplink_health_wanted(a->uplink);
	if (!fresh && a->health_last_us && now - a->health_check_us < CHECK_US &&
	    now - a->health_last_us < (int64_t)interval * 1000000)
		return;
	a->health_check_us = now;
	if (snapshot_cheap(a, &hs, &m)) {
		a->health_skipped++;
		goto out;
	}
	uint64_t key = rn_health_state_key(&hs);
	int changed = key != a->health_key;
	int all = rn_health_due(now, a->health_last_us, interval, changed);
	if (!all && !fresh)
		goto out;
	/* a call just opened gets a report at once; if the state changed since the last one,
	 * the calls already open get it too (else they would miss the change) */
	all |= changed;
	/* what the servers were last told, sent or not (a failure waits for the next interval
	 * or change) */
	a->health_key = key;
	if (all)
		a->health_last_us = now;
	int rc = rn_agent__health_snapshot(a, &hs, &m);
	rc = rc ? rc : rn_health_render(&hs, &json);
	if (rc) {
		a->health_skipped++;
		rn_log_debug("agent", "health report skipped: %s", rn_strerror(rc));
		goto out;
	}
	rc = rn_uplink_health_send(a->uplink, (const char *)json.data, json.len, all);
	if (rc > 0) {
		a->health_reports++;
		a->health_last_ms = hs.sent_at_ms;
	} else if (rc < 0) {
		a->health_skipped++;
	}
out:
	rn_buf_free(&json);
	rn_agent__snap_mem_free(&m);
}
