/*
 * in_sim: simulated vehicle telemetry (sim.c) paced to `rate` records per second, for demos,
 * tests and benchmarks. This file is the thin shell around the I/O-free core: it reads the
 * monotonic time the host passes to poll, emits what is due since the last poll (at most
 * POLL_MAX per call; *more while behind), offers the loop a timerfd set for the next due
 * record (wait_fd), stops after `count` records, and keeps the resume position. The position is the
 * simulator's whole state (sim.h's text form), advanced only as records are emitted: a record is
 * generated, then emitted; if the host does not take it (RN_EFULL) the generation is undone, so the
 * snapshot — which the host may take inside emit, when the record closes a chunk — always describes
 * "just after the last record emitted", and the same record is generated again on a later poll.
 * After a restart the fleet continues from the saved state: the next record has the next seq,
 * nothing repeats, nothing is skipped. Created and destroyed by the agent; used on its loop thread
 * only.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "sim.h"

/* Records per poll at most: keeps one poll around a few milliseconds even when far behind,
 * so the loop still serves the uplink and the other sources. */
#define POLL_MAX 8192
/* The schedule never runs more than this far behind the clock: when the host is slower
 * than `rate` (or was paused by a full buffer), the simulator goes as fast as records are
 * taken rather than building an unbounded backlog of due records. */
#define MAX_LAG_US 1000000
/* Between polls the loop sleeps on a timer set for the next due record, but at least this
 * long: above 1000 records/s they are emitted in bursts of a millisecond's worth. */
#define GRAIN_US 1000

/* The plugin's own settings (rows below); filled by the agent's config loader. */
struct in_sim_conf {
	int64_t vehicles;
	int64_t rate; /* records per second, all vehicles together */
	int64_t seed;
	int64_t count; /* records in total, across restarts; 0 = no end */
	int format;    /* 0 = json */
};

static const char *const format_names[] = {"json", NULL};

#define C(f) offsetof(struct in_sim_conf, f)
static const struct rn_conf_key sim_conf[] = {
	{.key = "vehicles",
	 .type = RN_CONF_INT,
	 .def = "3",
	 .min = 1,
	 .max = RN_SIM_MAX_VEHICLES,
	 .offset = C(vehicles),
	 .help = "simulated vehicles (topic sim/veh-001, ...)"},
	{.key = "rate",
	 .type = RN_CONF_INT,
	 .def = "10",
	 .min = 1,
	 .max = 100000000,
	 .offset = C(rate),
	 .help = "records per second, all vehicles together"},
	{.key = "seed",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .offset = C(seed),
	 .help = "random seed: the same seed gives the same fleet and the same records"},
	{.key = "count",
	 .type = RN_CONF_INT,
	 .def = "0",
	 .min = 0,
	 .max = INT64_MAX,
	 .offset = C(count),
	 .help = "stop after this many records in total (0 = never)"},
	{.key = "format",
	 .type = RN_CONF_ENUM,
	 .def = "json",
	 .enums = format_names,
	 .offset = C(format),
	 .help = "record format (json: one object per record)"},
	{0},
};
#undef C

#define TOPIC_CAP 24 /* "sim/veh-1000" */

struct in_sim {
	const struct in_sim_conf *conf; /* borrowed from the source's config */
	const char *name;               /* the source's name, for log lines */
	struct rn_source_host host;
	struct rn_sim *sim;
	char (*topics)[TOPIC_CAP]; /* per vehicle: "sim/veh-001" */
	struct rn_buf rec;         /* the record being emitted */
	/* Pacing: record k of the schedule is due at base_us + k * 1e6 / rate (monotonic).
	 * sched_n counts the records of the schedule handed out since base_us (negative after
	 * a rebase while behind); base_us moves by whole seconds so the arithmetic stays exact
	 * and small. Not part of the resume position: a restart starts a new schedule at its
	 * first poll. */
	int64_t base_us;
	int64_t sched_n;
	int started;
	int64_t last_poll_us;
	int blocked;  /* the last poll stopped at a refused record or a host not accepting */
	int timer_fd; /* CLOCK_MONOTONIC timerfd for wait_fd, -1 if none could be made */
	int done_logged;
};

static int done(const struct in_sim *s)
{
	return s->conf->count && rn_sim_count(s->sim) >= (uint64_t)s->conf->count;
}

/* Records of the schedule due at now_us and not yet handed out, at most MAX_LAG_US worth. */
static int64_t due(struct in_sim *s, int64_t now_us)
{
	int64_t rate = s->conf->rate, lag_max = rate * MAX_LAG_US / 1000000 + 1, secs, n;
	if (!s->started) {
		s->base_us = now_us;
		s->sched_n = 0;
		s->started = 1;
	}
	if (now_us < s->base_us)
		return 0;
	/* rebase by whole seconds, so (now - base) * rate stays small (< 1e14) */
	if ((secs = (now_us - s->base_us) / 1000000) > 0) {
		s->base_us += secs * 1000000;
		s->sched_n -= secs * rate;
	}
	n = (now_us - s->base_us) * rate / 1000000 + 1 - s->sched_n;
	if (n > lag_max) {
		/* too far behind: let the schedule slip instead of bursting */
		s->sched_n += n - lag_max;
		n = lag_max;
	}
	return n > 0 ? n : 0;
}

static int sim_poll(void *inst, int64_t now_us, int *more)
{
	struct in_sim *s = inst;
	int64_t n, wall_off;
	int rc = 0;

	*more = 0;
	s->last_poll_us = now_us;
	s->blocked = 0;
	if (done(s)) {
		if (!s->done_logged) {
			rn_log_info("in_sim", "source %s: all %lld records generated", s->name,
				    (long long)s->conf->count);
			s->done_logged = 1;
		}
		return 0;
	}
	if (!s->host.accepting(s->host.ctx)) {
		s->blocked = 1;
		return 0;
	}
	if ((n = due(s, now_us)) == 0)
		return 0;
	if (n > POLL_MAX) {
		n = POLL_MAX;
		*more = 1;
	}
	if (s->conf->count) {
		uint64_t left = (uint64_t)s->conf->count - rn_sim_count(s->sim);
		if ((uint64_t)n >= left) {
			n = (int64_t)left;
			*more = 1; /* one more poll logs the end */
		}
	}
	/* the record's time: when it was due, on the wall clock */
	wall_off = rn_now_us() - now_us;
	for (int64_t k = 0; k < n; k++) {
		int64_t at = s->base_us + s->sched_n * 1000000 / s->conf->rate + wall_off;
		int64_t ts_ms = at / 1000;
		uint32_t v = rn_sim_next_vehicle(s->sim);
		rn_buf_reset(&s->rec);
		if ((rc = rn_sim_next(s->sim, ts_ms, &s->rec)))
			return rc;
		/* the envelope's event time is the record's "ts", to the microsecond */
		struct rn_record r = {s->rec.data, s->rec.len, s->topics[v], ts_ms * 1000, 0,
				      NULL,        0};
		/* the simulator has advanced: a chunk closed inside emit carries this record */
		if ((rc = s->host.emit(s->host.ctx, &r))) {
			rn_sim_undo(s->sim); /* not taken: the same record again next time */
			*more = 0;
			s->blocked = 1;
			return rc == RN_EFULL ? 0 : rc;
		}
		s->sched_n++;
	}
	return 0;
}

/* The timer, set for when the next record is due (but at least GRAIN_US after the last
 * poll); -1 (the loop's own 50 ms tick) before the first poll, when blocked or finished. */
static int sim_wait_fd(void *inst, short *events)
{
	struct in_sim *s = inst;
	struct itimerspec it = {0};
	int64_t at;
	if (s->timer_fd < 0 || !s->started || s->blocked || done(s))
		return -1;
	at = s->base_us + s->sched_n * 1000000 / s->conf->rate;
	if (at < s->last_poll_us + GRAIN_US)
		at = s->last_poll_us + GRAIN_US;
	it.it_value.tv_sec = (time_t)(at / 1000000);
	it.it_value.tv_nsec = (long)(at % 1000000) * 1000;
	if (timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &it, NULL))
		return -1;
	*events = POLLIN;
	return s->timer_fd;
}

static int sim_snapshot(void *inst, struct rn_buf *out)
{
	struct in_sim *s = inst;
	return rn_sim_save(s->sim, out);
}

static int sim_check(const struct rn_source_conf *sc, char *err, size_t cap)
{
	const struct in_sim_conf *c = sc->plugin.data;
	if (!c || c->vehicles < 1 || c->vehicles > RN_SIM_MAX_VEHICLES || c->rate < 1 ||
	    c->count < 0) {
		snprintf(err, cap, "source '%s': vehicles must be 1..%d, rate >= 1, count >= 0",
			 sc->name ? sc->name : "?", RN_SIM_MAX_VEHICLES);
		return RN_ECONFIG;
	}
	return 0;
}

static void sim_destroy(void *inst)
{
	struct in_sim *s = inst;
	if (!s)
		return;
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	rn_sim_destroy(s->sim);
	rn_free(s->topics);
	rn_buf_free(&s->rec);
	rn_free(s);
}

static int sim_create(void **inst, const struct rn_source_conf *conf,
		      const struct rn_source_host *host)
{
	struct in_sim *s;
	struct rn_buf saved = {0};
	int rc, changed = 0;

	*inst = NULL;
	if (!(s = rn_calloc(1, sizeof(*s))))
		return RN_ENOMEM;
	s->conf = conf->plugin.data;
	s->name = conf->name ? conf->name : "sim";
	s->host = *host;
	/* without a timer the loop's 50 ms tick paces the source (coarser bursts) */
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	uint32_t nveh = (uint32_t)s->conf->vehicles;
	/* a vehicle's ticks come at rate / vehicles per second: that much simulated time
	 * passes per tick, so the fleet moves in step with the records' timestamps (up to a
	 * second per tick for slow rates) */
	double dt = (double)nveh / (double)s->conf->rate;
	struct rn_sim_options o = {nveh, (uint64_t)s->conf->seed, dt < 1.0 ? dt : 1.0};
	if ((rc = rn_sim_create(&s->sim, &o)))
		goto fail;
	if (!(s->topics = rn_calloc(nveh, sizeof(*s->topics)))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < nveh; i++) {
		char name[16];
		rn_sim_vehicle_name(i, name, sizeof(name));
		snprintf(s->topics[i], TOPIC_CAP, "sim/%s", name);
	}
	rc = host->load_position(host->ctx, &saved);
	if (rc == 0) {
		if ((rc = rn_sim_load(s->sim, saved.data, saved.len, &changed))) {
			/* starting over would repeat records already delivered: refuse */
			rn_log_error("in_sim",
				     "source %s: the saved position is unreadable (%s); "
				     "remove the source's checkpoint to start over",
				     s->name, rn_strerror(rc));
			goto fail;
		}
		if (changed)
			rn_log_warn("in_sim",
				    "source %s: seed or vehicles changed since the last "
				    "run; seq continues, changed vehicles start anew",
				    s->name);
		rn_log_info("in_sim", "source %s: resuming at record %llu", s->name,
			    (unsigned long long)rn_sim_count(s->sim));
	} else if (rc != RN_ENOTFOUND) {
		goto fail;
	}
	rn_buf_free(&saved);
	*inst = s;
	return 0;
fail:
	rn_buf_free(&saved);
	sim_destroy(s);
	return rc;
}

const struct rn_source_plugin rn_in_sim = {
	.abi = RN_SOURCE_ABI_1,
	.name = "sim",
	.description = "simulated vehicle telemetry (JSON), paced, deterministic, resumable",
	.conf = sim_conf,
	.conf_size = sizeof(struct in_sim_conf),
	.check = sim_check,
	.create = sim_create,
	.poll = sim_poll,
	.wait_fd = sim_wait_fd,
	.snapshot = sim_snapshot,
	.destroy = sim_destroy,
};
