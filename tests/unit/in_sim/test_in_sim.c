/*
 * Unit tests for plugins/in_sim: the core (sim.c) directly — determinism from the seed,
 * valid JSON with every field, values in plausible ranges and plausible dynamics over hours
 * of simulated driving, undo, save/load continuing the exact sequence, malformed and changed
 * saved state — and the plugin through its table with a fake host (no agent, no buffer):
 * config rows and defaults, pacing (rate x elapsed, bounded per poll, the lag cap), the
 * wait_fd timer, the count limit, RN_EFULL retry, and a crash/restart from a snapshot taken inside
 * emit (as the agent takes it when a record closes a chunk) that must continue the uninterrupted
 * run exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>

#include "plugin.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "sim.h"

extern const struct rn_source_plugin rn_in_sim;

/* ---- helpers ---------------------------------------------------------------------------- */

/* A record's fields, parsed with rn_json's walker. */
struct fields {
	char vehicle[32];
	int64_t seq, ts, rpm;
	double lat, lon, speed, heading, coolant, fuel, odo;
	unsigned seen; /* bit per field found */
};

static double num(struct rn_json_span v)
{
	char t[64];
	char *end;
	assert_true(v.len > 0 && v.len < sizeof(t));
	memcpy(t, v.p, v.len);
	t[v.len] = 0;
	double d = strtod(t, &end);
	assert_true(*end == 0);
	return d;
}

static int on_field(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct fields *f = ctx;
	static const char *const names[] = {"vehicle",   "seq",       "ts",         "lat",
					    "lon",       "speed_kmh", "heading",    "rpm",
					    "coolant_c", "fuel_pct",  "odometer_km"};
	size_t i;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (rn_json_span_eq(k, names[i]))
			break;
	assert_true(i < sizeof(names) / sizeof(names[0])); /* no unknown field */
	assert_false(f->seen & (1u << i));                 /* none twice */
	f->seen |= 1u << i;
	switch (i) {
	case 0: {
		struct rn_buf b = {0};
		assert_int_equal(rn_json_string(v, &b), 0);
		snprintf(f->vehicle, sizeof(f->vehicle), "%s", (char *)b.data);
		rn_buf_free(&b);
		break;
	}
	case 1: assert_int_equal(rn_json_int64(v, &f->seq), 0); break;
	case 2: assert_int_equal(rn_json_int64(v, &f->ts), 0); break;
	case 3: f->lat = num(v); break;
	case 4: f->lon = num(v); break;
	case 5: f->speed = num(v); break;
	case 6: f->heading = num(v); break;
	case 7: assert_int_equal(rn_json_int64(v, &f->rpm), 0); break;
	case 8: f->coolant = num(v); break;
	case 9: f->fuel = num(v); break;
	case 10: f->odo = num(v); break;
	}
	return 0;
}

static void parse(const void *p, size_t len, struct fields *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(rn_json_validate(p, len), 0);
	assert_int_equal(rn_json_object_walk((struct rn_json_span){p, len}, on_field, f), 0);
	assert_int_equal(f->seen, (1u << 11) - 1); /* every field present */
}

/* The record text without its "ts" member (wall-clock time differs between runs). */
static char *strip_ts(const void *p, size_t len)
{
	char *s = malloc(len + 1), *a, *b;
	assert_non_null(s);
	memcpy(s, p, len);
	s[len] = 0;
	a = strstr(s, ",\"ts\":");
	assert_non_null(a);
	b = strchr(a + 1, ',');
	assert_non_null(b);
	memmove(a, b, strlen(b) + 1);
	return s;
}

static struct rn_sim *sim_new(uint32_t vehicles, uint64_t seed, double dt)
{
	struct rn_sim *s;
	struct rn_sim_options o = {vehicles, seed, dt};
	assert_int_equal(rn_sim_create(&s, &o), 0);
	return s;
}

/* ---- the core --------------------------------------------------------------------------- */

static void test_deterministic(void **state)
{
	struct rn_sim *a = sim_new(3, 42, 0.3), *b = sim_new(3, 42, 0.3), *c = sim_new(3, 43, 0.3);
	struct rn_buf ra = {0}, rb = {0}, rc = {0};
	size_t differ = 0;
	(void)state;
	for (int i = 0; i < 20000; i++) {
		rn_buf_reset(&ra);
		rn_buf_reset(&rb);
		rn_buf_reset(&rc);
		assert_int_equal(rn_sim_next(a, 1700000000000 + i, &ra), 0);
		assert_int_equal(rn_sim_next(b, 1700000000000 + i, &rb), 0);
		assert_int_equal(rn_sim_next(c, 1700000000000 + i, &rc), 0);
		assert_int_equal(ra.len, rb.len);
		assert_memory_equal(ra.data, rb.data, ra.len);
		differ += ra.len != rc.len || memcmp(ra.data, rc.data, ra.len);
	}
	assert_int_equal(rn_sim_count(a), 20000);
	/* another seed is another fleet: (almost) every record differs */
	assert_true(differ > 19000);
	rn_buf_free(&ra);
	rn_buf_free(&rb);
	rn_buf_free(&rc);
	rn_sim_destroy(a);
	rn_sim_destroy(b);
	rn_sim_destroy(c);
}

/*
 * 3 vehicles at 0.3 s per tick for 300,000 records: about 8 hours of driving each. Every
 * record is valid JSON with every field; values stay in range; speed changes within the
 * acceleration bounds, odometer never goes back, fuel only goes up at a fill-up, and the
 * fleet really drives (distance, stops, highway speeds, turns) without leaving the area.
 */
static void test_json_and_ranges(void **state)
{
	enum { NV = 3, N = 300000 };
	const double dt = 0.3;
	struct rn_sim *s = sim_new(NV, 7, dt);
	struct rn_buf r = {0};
	struct fields f, prev[NV];
	int have[NV] = {0};
	double odo0[NV] = {0}, maxspeed = 0;
	long stopped = 0, fills = 0, highway = 0;
	(void)state;
	for (int i = 0; i < N; i++) {
		char want[32];
		unsigned v = (unsigned)(i % NV);
		rn_buf_reset(&r);
		assert_int_equal(rn_sim_next(s, 1700000000000 + i * 100, &r), 0);
		assert_true(r.len <= RN_SIM_RECORD_MAX);
		parse(r.data, r.len, &f);
		snprintf(want, sizeof(want), "veh-%03u", v + 1);
		assert_string_equal(f.vehicle, want);
		assert_int_equal(f.seq, i);
		assert_int_equal(f.ts, 1700000000000 + i * 100);
		/* within ~25 km of the depot (48.137, 11.576) */
		assert_true(f.lat > 47.9 && f.lat < 48.4);
		assert_true(f.lon > 11.2 && f.lon < 11.95);
		assert_true(f.speed >= 0 && f.speed <= 130);
		assert_true(f.heading >= 0 && f.heading < 360);
		assert_true(f.rpm >= 700 && f.rpm <= 3100);
		assert_true(f.coolant >= 10 && f.coolant <= 100);
		assert_true(f.fuel > 0 && f.fuel <= 100);
		assert_true(f.odo > 1000 && f.odo < 200000);
		/* idle when standing (below 1 km/h; 1.0 as printed may be either side) */
		if (f.speed < 0.95)
			assert_true(f.rpm < 800);
		else if (f.speed > 1.05)
			assert_true(f.rpm >= 1050);
		if (have[v]) {
			/* 2.5 m/s² up, 5 m/s² down (9 and 18 km/h per s), plus print rounding */
			double dv = f.speed - prev[v].speed;
			assert_true(dv <= 9 * dt + 0.11 && dv >= -18 * dt - 0.11);
			assert_true(f.odo >= prev[v].odo);
			/* at most 130 km/h for dt: 0.0108 km, plus rounding */
			assert_true(f.odo - prev[v].odo <= 0.012);
			if (f.fuel > prev[v].fuel) {
				assert_true(f.fuel >= 95); /* only a fill-up adds fuel */
				fills++;
			}
		} else {
			odo0[v] = f.odo;
		}
		stopped += f.speed < 1;
		highway += f.speed > 80;
		if (f.speed > maxspeed)
			maxspeed = f.speed;
		prev[v] = f;
		have[v] = 1;
	}
	for (int v = 0; v < NV; v++)
		assert_true(prev[v].odo - odo0[v] > 50); /* 8 h: well over 50 km each */
	assert_true(stopped > N / 50);                   /* they stop sometimes */
	assert_true(highway > N / 50);                   /* and take the highway sometimes */
	assert_true(maxspeed > 100);
	assert_true(fills >= 1); /* 8 h of driving empties a tank at least once */
	rn_buf_free(&r);
	rn_sim_destroy(s);
}

static void test_undo(void **state)
{
	struct rn_sim *s = sim_new(2, 1, 1.0);
	struct rn_buf a = {0}, b = {0};
	(void)state;
	assert_int_equal(rn_sim_undo(s), RN_EINVAL); /* nothing yet */
	for (int i = 0; i < 10; i++) {
		rn_buf_reset(&a);
		assert_int_equal(rn_sim_next(s, 5, &a), 0);
	}
	assert_int_equal(rn_sim_undo(s), 0);
	assert_int_equal(rn_sim_count(s), 9);
	assert_int_equal(rn_sim_undo(s), RN_EINVAL); /* one level only */
	assert_int_equal(rn_sim_next(s, 5, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* a full buffer leaves the simulator unchanged */
	struct rn_buf tiny = {.max = 16};
	assert_int_equal(rn_sim_next(s, 5, &tiny), RN_ENOMEM);
	assert_int_equal(rn_sim_count(s), 10);
	rn_buf_free(&a);
	rn_buf_free(&b);
	rn_sim_destroy(s);
}

/* Stop at record 5000, save, load into a new simulator: records 5000.. are byte for byte
 * those of the uninterrupted run. */
static void test_save_load_continues(void **state)
{
	enum { N = 12345, CUT = 5000 };
	struct rn_sim *ref = sim_new(5, 99, 0.05), *a = sim_new(5, 99, 0.05), *b;
	struct rn_buf r = {0}, r2 = {0}, saved = {0};
	int changed = -1;
	(void)state;
	for (int i = 0; i < CUT; i++) {
		rn_buf_reset(&r);
		assert_int_equal(rn_sim_next(a, i, &r), 0);
	}
	assert_int_equal(rn_sim_save(a, &saved), 0);
	rn_sim_destroy(a);
	b = sim_new(5, 99, 0.05);
	assert_int_equal(rn_sim_load(b, saved.data, saved.len, &changed), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(rn_sim_count(b), CUT);
	assert_int_equal(rn_sim_undo(b), RN_EINVAL); /* a loaded state has nothing to undo */
	for (int i = 0; i < N; i++) {
		rn_buf_reset(&r);
		assert_int_equal(rn_sim_next(ref, i, &r), 0);
		if (i < CUT)
			continue;
		rn_buf_reset(&r2);
		assert_int_equal(rn_sim_next(b, i, &r2), 0);
		assert_int_equal(r.len, r2.len);
		assert_memory_equal(r.data, r2.data, r.len);
	}
	/* saving again gives the same text as the uninterrupted simulator's */
	rn_buf_reset(&r);
	rn_buf_reset(&r2);
	assert_int_equal(rn_sim_save(ref, &r), 0);
	assert_int_equal(rn_sim_save(b, &r2), 0);
	assert_int_equal(r.len, r2.len);
	assert_memory_equal(r.data, r2.data, r.len);
	rn_buf_free(&r);
	rn_buf_free(&r2);
	rn_buf_free(&saved);
	rn_sim_destroy(ref);
	rn_sim_destroy(b);
}

static void test_load_bad_and_changed(void **state)
{
	struct rn_sim *a = sim_new(3, 5, 1.0), *b = sim_new(3, 5, 1.0), *other;
	struct rn_buf saved = {0}, t = {0}, r = {0};
	int changed;
	(void)state;
	for (int i = 0; i < 100; i++) {
		rn_buf_reset(&r);
		assert_int_equal(rn_sim_next(a, 0, &r), 0);
	}
	assert_int_equal(rn_sim_save(a, &saved), 0);
	/* malformed: every proper prefix, a flipped header, garbage, a doubled space, a NUL */
	for (size_t cut = 0; cut < saved.len; cut += 7)
		assert_int_equal(rn_sim_load(b, saved.data, cut, &changed), RN_ECORRUPT);
	assert_int_equal(rn_sim_load(b, "sim2 1 5 3\n", 11, &changed), RN_ECORRUPT);
	assert_int_equal(rn_sim_load(b, "hello", 5, &changed), RN_ECORRUPT);
	rn_buf_append(&t, saved.data, saved.len);
	*(char *)memchr(t.data + 20, ' ', t.len - 20) = '\n'; /* a vehicle line broken in two */
	assert_int_equal(rn_sim_load(b, t.data, t.len, &changed), RN_ECORRUPT);
	rn_buf_reset(&t);
	rn_buf_append(&t, saved.data, saved.len);
	t.data[t.len / 2] = 0;
	assert_int_equal(rn_sim_load(b, t.data, t.len, &changed), RN_ECORRUPT);
	rn_buf_reset(&t);
	rn_buf_append(&t, saved.data, saved.len);
	rn_buf_append_str(&t, "extra\n");
	assert_int_equal(rn_sim_load(b, t.data, t.len, &changed), RN_ECORRUPT);
	assert_int_equal(rn_sim_count(b), 0); /* untouched by every failed load */
	/* the intact text loads */
	assert_int_equal(rn_sim_load(b, saved.data, saved.len, &changed), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(rn_sim_count(b), 100);
	/* another seed and vehicle count: the count is kept, *changed says so */
	struct rn_sim_options o = {4, 6, 1.0};
	assert_int_equal(rn_sim_create(&other, &o), 0);
	assert_int_equal(rn_sim_load(other, saved.data, saved.len, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(rn_sim_count(other), 100);
	rn_buf_reset(&r);
	assert_int_equal(rn_sim_next(other, 0, &r), 0);
	struct fields f;
	parse(r.data, r.len, &f);
	assert_int_equal(f.seq, 100);
	assert_string_equal(f.vehicle, "veh-001"); /* 100 % 4 */
	rn_buf_free(&saved);
	rn_buf_free(&t);
	rn_buf_free(&r);
	rn_sim_destroy(a);
	rn_sim_destroy(b);
	rn_sim_destroy(other);
}

/* ---- the plugin with a fake host --------------------------------------------------------- */

/* Mirrors in_sim's private settings struct (the rows' offsets). */
struct in_sim_conf {
	int64_t vehicles;
	int64_t rate;
	int64_t seed;
	int64_t count;
	int format;
};

struct host {
	char **rec; /* accepted payloads, NUL-terminated */
	size_t n, cap;
	int64_t last_ts_ms;
	/* fault schedule */
	unsigned full_every; /* refuse every Nth emit attempt with RN_EFULL (0 = never) */
	unsigned attempts, refused;
	/* chunk emulation: after every Nth accepted record, take the snapshot inside emit and
	 * "commit" it (0 = never) */
	unsigned snap_every;
	void *inst;
	struct rn_buf committed;
	size_t committed_n;
	int have_committed;
	int ts_bad;  /* event_time_us and "ts" disagree, or the topic does not name the vehicle */
	int no_keep; /* count records only (runs of millions) */
};

static uint64_t snap_count(const struct rn_buf *b)
{
	unsigned long long n;
	char t[64];
	size_t l = b->len < sizeof(t) - 1 ? b->len : sizeof(t) - 1;
	memcpy(t, b->data, l);
	t[l] = 0;
	assert_int_equal(sscanf(t, "sim1 %llu", &n), 1);
	return n;
}

static int h_emit(void *ctx, const struct rn_record *r)
{
	struct host *h = ctx;
	struct fields f;
	char topic[48];
	h->attempts++;
	if (h->full_every && h->attempts % h->full_every == 0) {
		h->refused++;
		return RN_EFULL;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->rec = realloc(h->rec, h->cap * sizeof(*h->rec));
		assert_non_null(h->rec);
	}
	parse(r->payload, r->len, &f);
	snprintf(topic, sizeof(topic), "sim/%s", f.vehicle);
	if (f.ts * 1000 != r->event_time_us || !r->topic || strcmp(r->topic, topic))
		h->ts_bad++;
	h->last_ts_ms = f.ts;
	/* exactly once: the next record is the one after the last accepted (or committed,
	 * after a crash) */
	assert_int_equal(f.seq, (int64_t)h->n);
	h->rec[h->n] = h->no_keep ? NULL : strip_ts(r->payload, r->len);
	h->n++;
	if (h->snap_every && h->n % h->snap_every == 0) {
		rn_buf_reset(&h->committed);
		assert_int_equal(rn_in_sim.snapshot(h->inst, &h->committed), 0);
		/* the snapshot taken inside emit already covers the record being emitted */
		assert_int_equal(snap_count(&h->committed), h->n);
		h->committed_n = h->n;
		h->have_committed = 1;
	}
	return 0;
}

static void h_pos(void *ctx)
{
	(void)ctx;
}

static int h_load(void *ctx, struct rn_buf *out)
{
	struct host *h = ctx;
	if (!h->have_committed)
		return RN_ENOTFOUND;
	return rn_buf_append(out, h->committed.data, h->committed.len);
}

static int h_accepting(void *ctx)
{
	(void)ctx;
	return 1;
}

/* The crash: records not covered by the committed snapshot are lost with the open chunk. */
static void host_truncate(struct host *h, size_t n)
{
	while (h->n > n)
		free(h->rec[--h->n]);
}

static void host_free(struct host *h)
{
	host_truncate(h, 0);
	free(h->rec);
	rn_buf_free(&h->committed);
	memset(h, 0, sizeof(*h));
}

struct src {
	struct rn_source_conf conf;
	struct in_sim_conf sc;
	struct rn_source_host sh;
	void *inst;
	int64_t now;
};

static void src_start(struct src *s, struct host *h, int64_t vehicles, int64_t rate, int64_t seed,
		      int64_t count)
{
	memset(s, 0, sizeof(*s));
	s->conf.type = "sim";
	s->conf.name = "t";
	s->conf.table = "x.y.z";
	s->sc = (struct in_sim_conf){vehicles, rate, seed, count, 0};
	assert_int_equal(rn_in_sim.conf_size, sizeof(s->sc));
	s->conf.plugin.table = rn_in_sim.conf;
	s->conf.plugin.data = &s->sc;
	s->sh = (struct rn_source_host){.ctx = h,
					.emit = h_emit,
					.position_changed = h_pos,
					.load_position = h_load,
					.accepting = h_accepting};
	assert_int_equal(rn_in_sim.check(&s->conf, (char[128]){0}, 128), 0);
	assert_int_equal(rn_in_sim.create(&s->inst, &s->conf, &s->sh), 0);
	h->inst = s->inst;
	s->now = 1000000000; /* a monotonic clock of our own */
}

static void src_stop(struct src *s)
{
	rn_in_sim.destroy(s->inst);
	s->inst = NULL;
}

/* One poll at s->now; returns the records accepted by it. */
static size_t poll_at(struct src *s, struct host *h, int64_t now, int *more)
{
	size_t n0 = h->n;
	s->now = now;
	assert_int_equal(rn_in_sim.poll(s->inst, now, more), 0);
	return h->n - n0;
}

/* Polls, advancing the clock by step_us each time, until the host holds `target` records. */
static void drive(struct src *s, struct host *h, size_t target, int64_t step_us)
{
	int more;
	for (int i = 0; h->n < target; i++) {
		assert_true(i < 10000000);
		poll_at(s, h, s->now + step_us, &more);
	}
}

static void test_conf_rows(void **state)
{
	struct in_sim_conf c;
	char err[256];
	(void)state;
	assert_string_equal(rn_in_sim.name, "sim");
	assert_int_equal(rn_in_sim.abi, RN_SOURCE_ABI_1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(rn_conf_load_string("", "t", rn_in_sim.conf, &c, err, sizeof(err)), 0);
	assert_int_equal(c.vehicles, 3);
	assert_int_equal(c.rate, 10);
	assert_int_equal(c.count, 0);
	assert_int_equal(c.format, 0);
	rn_conf_free(rn_in_sim.conf, &c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(rn_conf_load_string("vehicles = 7; rate = 2000000; seed = -3; "
					     "count = 20000; format = \"json\";",
					     "t", rn_in_sim.conf, &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.vehicles, 7);
	assert_int_equal(c.rate, 2000000);
	assert_int_equal(c.seed, -3);
	assert_int_equal(c.count, 20000);
	rn_conf_free(rn_in_sim.conf, &c);
	const char *bad[] = {"vehicles = 0;", "vehicles = 1001;",  "rate = 0;",
			     "count = -1;",   "format = \"csv\";", "speed = 3;"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(
			rn_conf_load_string(bad[i], "t", rn_in_sim.conf, &c, err, sizeof(err)),
			RN_ECONFIG);
		rn_conf_free(rn_in_sim.conf, &c);
	}
}

/* rate x elapsed: record k is due at start + k / rate. */
static void test_pacing(void **state)
{
	struct host h = {0};
	struct src s;
	int more;
	(void)state;
	src_start(&s, &h, 3, 1000, 1, 0);
	int64_t t0 = s.now;
	assert_int_equal(poll_at(&s, &h, t0, &more), 1); /* record 0 is due at once */
	assert_int_equal(more, 0);
	assert_int_equal(poll_at(&s, &h, t0 + 999, &more), 0);
	assert_int_equal(poll_at(&s, &h, t0 + 1000, &more), 1);
	assert_int_equal(poll_at(&s, &h, t0 + 10000, &more), 9); /* 11 due by 10 ms */
	assert_int_equal(poll_at(&s, &h, t0 + 10000, &more), 0);
	/* 2.5 s later: 2490 are due by the schedule, but it never lags more than 1 s */
	assert_int_equal(poll_at(&s, &h, t0 + 2500000, &more), 1001);
	assert_int_equal(poll_at(&s, &h, t0 + 2501000, &more), 1); /* then on schedule again */
	assert_int_equal(h.ts_bad, 0);
	src_stop(&s);
	host_free(&h);
}

/* Far behind at a high rate: each poll is bounded and says there is more; repeated polls at
 * the same moment catch up exactly to what is due. */
static void test_pacing_bounded(void **state)
{
	struct host h = {0};
	struct src s;
	int more = 0;
	size_t got, polls = 0, maxper = 0;
	(void)state;
	h.no_keep = 1;
	src_start(&s, &h, 3, 1000000, 1, 0);
	int64_t t0 = s.now;
	assert_int_equal(poll_at(&s, &h, t0, &more), 1);
	got = poll_at(&s, &h, t0 + 100000, &more); /* 100,000 more due */
	assert_true(got > 0 && got < 100000);
	assert_int_equal(more, 1);
	maxper = got;
	polls = 1;
	while (more) {
		got = poll_at(&s, &h, t0 + 100000, &more);
		if (got > maxper)
			maxper = got;
		assert_true(++polls < 1000);
	}
	assert_int_equal(h.n, 100001);
	assert_true(maxper <= 65536); /* a poll stays a bounded amount of work */
	assert_int_equal(poll_at(&s, &h, t0 + 100000, &more), 0);
	assert_int_equal(poll_at(&s, &h, t0 + 100010, &more), 10);
	/* paused for a minute (say the buffer was full): no burst of 60 M records — the
	 * schedule slips and at most one second's worth is due */
	size_t n0 = h.n;
	do
		poll_at(&s, &h, t0 + 60100010, &more);
	while (more);
	assert_int_equal(h.n - n0, 1000001);
	assert_int_equal(poll_at(&s, &h, t0 + 60100010 + 5, &more), 5); /* back on schedule */
	assert_int_equal(h.ts_bad, 0);
	src_stop(&s);
	host_free(&h);
}

/* wait_fd: a timer that fires when the next record is due (real clock here). */
static void test_wait_fd(void **state)
{
	struct host h = {0};
	struct src s;
	struct pollfd pfd = {.events = 0};
	short ev = 0;
	int more;
	(void)state;
	src_start(&s, &h, 3, 10, 1, 3);
	assert_int_equal(rn_in_sim.wait_fd(s.inst, &ev), -1); /* not started: the loop polls */
	int64_t t0 = rn_mono_us();
	assert_int_equal(poll_at(&s, &h, t0, &more), 1);
	pfd.fd = rn_in_sim.wait_fd(s.inst, &ev);
	assert_true(pfd.fd >= 0);
	assert_int_equal(ev, POLLIN);
	pfd.events = ev;
	/* record 1 is due 100 ms after record 0: the timer fires then, not before */
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_true(rn_mono_us() - t0 >= 99000);
	assert_int_equal(poll_at(&s, &h, rn_mono_us(), &more), 1);
	/* a refused record: no timer (the loop's tick retries), until a poll gets through */
	h.full_every = 1;
	poll_at(&s, &h, t0 + 200000, &more);
	assert_int_equal(rn_in_sim.wait_fd(s.inst, &ev), -1);
	h.full_every = 0;
	assert_int_equal(poll_at(&s, &h, t0 + 200000, &more), 1);
	assert_int_equal(h.n, 3);
	assert_int_equal(rn_in_sim.wait_fd(s.inst, &ev), -1); /* count reached */
	src_stop(&s);
	host_free(&h);
}

/* count: exactly that many, then nothing — also after a restart from the final position. */
static void test_count(void **state)
{
	struct host h = {0};
	struct src s;
	int more;
	(void)state;
	h.snap_every = 10;
	src_start(&s, &h, 3, 1000000, 1, 100);
	drive(&s, &h, 100, 1000000);
	for (int i = 0; i < 5; i++)
		poll_at(&s, &h, s.now + 1000000, &more);
	assert_int_equal(h.n, 100);
	assert_int_equal(more, 0);
	assert_int_equal(h.committed_n, 100);
	src_stop(&s);
	src_start(&s, &h, 3, 1000000, 1, 100);
	for (int i = 0; i < 5; i++)
		assert_int_equal(poll_at(&s, &h, s.now + 1000000 * (i + 1), &more), 0);
	src_stop(&s);
	host_free(&h);
}

/* The uninterrupted reference run: N records of (vehicles 3, seed 11), ts stripped. */
static void reference(struct host *ref, size_t n)
{
	struct src s;
	src_start(&s, ref, 3, 1000000, 11, (int64_t)n);
	drive(&s, ref, n, 1000);
	src_stop(&s);
	assert_int_equal(ref->n, n);
}

static void assert_same_run(const struct host *ref, const struct host *h)
{
	assert_int_equal(h->n, ref->n);
	/* seq was checked contiguous from 0 as each record came in (h_emit) */
	for (size_t i = 0; i < h->n; i++)
		assert_string_equal(h->rec[i], ref->rec[i]);
}

/* The host refuses every 5th emit: the refused record comes again, nothing is skipped. */
static void test_efull_retry(void **state)
{
	enum { N = 20000 };
	struct host ref = {0}, h = {0};
	struct src s;
	int more;
	(void)state;
	reference(&ref, N);
	h.full_every = 5;
	src_start(&s, &h, 3, 1000000, 11, N);
	/* a refusal ends the poll without "more", and the position does not cover the record */
	assert_int_equal(poll_at(&s, &h, s.now, &more), 1);
	assert_int_equal(poll_at(&s, &h, s.now + 1000, &more), 3); /* attempt 5 refused */
	assert_int_equal(more, 0);
	struct rn_buf snap = {0};
	assert_int_equal(rn_in_sim.snapshot(s.inst, &snap), 0);
	assert_int_equal(snap_count(&snap), 4);
	rn_buf_free(&snap);
	drive(&s, &h, N, 1000);
	assert_true(h.refused >= N / 5);
	assert_same_run(&ref, &h);
	assert_int_equal(h.ts_bad, 0);
	src_stop(&s);
	host_free(&h);
	host_free(&ref);
}

/*
 * Two crashes: the plugin is destroyed at arbitrary points without a final snapshot; what
 * the host had not committed is lost; the next instance loads the committed snapshot. The
 * records the host ends up with are the uninterrupted run's, each once.
 */
static void test_crash_resume(void **state)
{
	enum { N = 30000 };
	struct host ref = {0}, h = {0};
	struct src s;
	(void)state;
	reference(&ref, N);
	h.snap_every = 1000; /* a chunk of 1000 records */
	h.full_every = 13;
	src_start(&s, &h, 3, 1000000, 11, N);
	drive(&s, &h, 12345, 1000);
	src_stop(&s); /* crash 1 */
	assert_true(h.committed_n >= 12000 && h.committed_n <= h.n);
	assert_true(h.committed_n < h.n || h.n % 1000 == 0);
	host_truncate(&h, h.committed_n);
	src_start(&s, &h, 3, 1000000, 11, N);
	drive(&s, &h, 23456, 777);
	src_stop(&s); /* crash 2 */
	host_truncate(&h, h.committed_n);
	src_start(&s, &h, 3, 1000000, 11, N);
	drive(&s, &h, N, 1000);
	int more;
	poll_at(&s, &h, s.now + 1000000, &more);
	src_stop(&s);
	assert_same_run(&ref, &h);
	host_free(&h);
	host_free(&ref);
}

/* A checkpoint that does not parse stops the source instead of starting over at seq 0. */
static void test_corrupt_position_refused(void **state)
{
	struct host h = {0};
	struct src s;
	void *inst = NULL;
	(void)state;
	rn_buf_append_str(&h.committed, "sim1 12 1 3\nnot a vehicle\n");
	h.have_committed = 1;
	memset(&s, 0, sizeof(s));
	s.conf.name = "t";
	s.sc = (struct in_sim_conf){3, 10, 1, 0, 0};
	s.conf.plugin.data = &s.sc;
	s.sh = (struct rn_source_host){.ctx = &h,
				       .emit = h_emit,
				       .position_changed = h_pos,
				       .load_position = h_load,
				       .accepting = h_accepting};
	long live = rn_mem_live();
	assert_int_equal(rn_in_sim.create(&inst, &s.conf, &s.sh), RN_ECORRUPT);
	assert_null(inst);
	assert_int_equal(rn_mem_live(), live); /* nothing leaked on the way out */
	host_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_json_and_ranges),
		cmocka_unit_test(test_undo),
		cmocka_unit_test(test_save_load_continues),
		cmocka_unit_test(test_load_bad_and_changed),
		cmocka_unit_test(test_conf_rows),
		cmocka_unit_test(test_pacing),
		cmocka_unit_test(test_pacing_bounded),
		cmocka_unit_test(test_wait_fd),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_efull_retry),
		cmocka_unit_test(test_crash_resume),
		cmocka_unit_test(test_corrupt_position_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
