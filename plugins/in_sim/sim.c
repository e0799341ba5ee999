/*
 * The simulator core; see sim.h. The model per vehicle tick of dt seconds: the driver keeps
 * a target speed for a while (city, highway, or a stop) and approaches it with bounded
 * acceleration and braking; the heading wanders while moving and is pulled back towards the
 * base once the vehicle is more than HOME_KM away; position, odometer and fuel follow the
 * distance driven (fuel also burns at idle; at the reserve the tank is filled); the coolant
 * settles towards a load-dependent temperature; rpm follows speed through a gearbox, with a
 * little noise. Each vehicle has its own random stream, so a vehicle's records depend only
 * on the seed, its index and how many ticks it has had. Numbers are printed with a small
 * fixed-point formatter (no printf on the hot path: the plugin runs this at millions of
 * records per second).
 */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"

#define BASE_LAT 48.137154 /* the fleet's depot (Munich) */
#define BASE_LON 11.576124
#define KM_PER_DEG_LAT 111.32
#define HOME_KM 8.0 /* beyond this the heading turns back towards the base */
#define HOME_TURN_DEG_S 15.0
#define WANDER_DEG 30.0         /* heading random walk: degrees per sqrt(second) */
#define ACCEL_KMH_S 9.0         /* 2.5 m/s² */
#define BRAKE_KMH_S 18.0        /* 5 m/s² */
#define FUEL_PCT_PER_KM 0.16    /* 8 l/100 km from a 50 l tank */
#define FUEL_PCT_IDLE_S 0.00045 /* 0.8 l/h */
#define FUEL_RESERVE 5.0
#define COOLANT_TAU_S 120.0

struct vehicle {
	uint64_t rng;   /* splitmix64 state: the vehicle's own random stream */
	double lat;     /* degrees */
	double lon;     /* degrees */
	double heading; /* degrees, [0, 360) */
	double speed;   /* km/h, >= 0 */
	double target;  /* km/h the driver is heading for */
	double hold;    /* s until a new target is picked */
	double coolant; /* °C */
	double fuel;    /* percent of the tank, (0, 100] */
	double odo;     /* km */
};

struct rn_sim {
	uint64_t seed;
	uint32_t nveh;
	double dt;           /* simulated seconds per vehicle tick */
	uint64_t n;          /* records generated; record n goes to vehicle n % nveh */
	struct vehicle *veh; /* nveh vehicles */
	/* one level of undo: the vehicle record n-1 changed, as it was before */
	int can_undo;
	struct vehicle undo;
};

static uint64_t rnd_u64(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rnd(uint64_t *st)
{
	return (double)(rnd_u64(st) >> 11) * 0x1.0p-53;
}

/* Triangular in (-1, 1), mean 0: cheap, bounded noise. */
static double rnd_tri(uint64_t *st)
{
	return rnd(st) + rnd(st) - 1.0;
}

static double clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* Degrees into [0, 360). */
static double wrap360(double d)
{
	d = fmod(d, 360.0);
	return d < 0 ? d + 360.0 : d;
}

static void pick_target(struct vehicle *v)
{
	double u = rnd(&v->rng);
	if (u < 0.15) { /* a stop: lights, a delivery */
		v->target = 0;
		v->hold = 5 + rnd(&v->rng) * 40;
	} else if (u < 0.75) { /* town */
		v->target = 25 + rnd(&v->rng) * 35;
		v->hold = 15 + rnd(&v->rng) * 90;
	} else { /* ring road, highway */
		v->target = 70 + rnd(&v->rng) * 55;
		v->hold = 30 + rnd(&v->rng) * 240;
	}
}

/* The initial state of vehicle i: a pure function of (seed, i). */
static void vehicle_init(struct vehicle *v, uint64_t seed, uint32_t i)
{
	uint64_t st = seed ^ (0xd1b54a32d192ed03ull * ((uint64_t)i + 1));
	memset(v, 0, sizeof(*v));
	v->rng = rnd_u64(&st);
	v->lat = BASE_LAT + (rnd(&v->rng) - 0.5) * 0.04;
	v->lon = BASE_LON + (rnd(&v->rng) - 0.5) * 0.06;
	v->heading = rnd(&v->rng) * 360.0;
	v->coolant = rnd(&v->rng) < 0.5 ? 15 + rnd(&v->rng) * 15 : 84 + rnd(&v->rng) * 6;
	v->fuel = 30 + rnd(&v->rng) * 70;
	v->odo = 2000 + rnd(&v->rng) * 180000;
	pick_target(v);
	v->hold *= rnd(&v->rng); /* not all drivers decide at once */
	v->speed = v->target;    /* mid-shift: already at its pace */
}

static void vehicle_step(struct vehicle *v, double dt)
{
	double diff, dist, coslat, dx, dy;

	if ((v->hold -= dt) <= 0)
		pick_target(v);
	diff = v->target - v->speed;
	v->speed = clamp(v->speed + clamp(diff, -BRAKE_KMH_S * dt, ACCEL_KMH_S * dt), 0, 160);

	if (v->speed > 1) {
		v->heading += rnd_tri(&v->rng) * WANDER_DEG * sqrt(dt);
		/* far from the base: turn towards it */
		coslat = cos(BASE_LAT * M_PI / 180);
		dx = (BASE_LON - v->lon) * KM_PER_DEG_LAT * coslat;
		dy = (BASE_LAT - v->lat) * KM_PER_DEG_LAT;
		if (dx * dx + dy * dy > HOME_KM * HOME_KM) {
			double want = atan2(dx, dy) * 180 / M_PI;
			double turn = wrap360(want - v->heading + 180) - 180;
			v->heading += clamp(turn, -HOME_TURN_DEG_S * dt, HOME_TURN_DEG_S * dt);
		}
		v->heading = wrap360(v->heading);
	}

	dist = v->speed * dt / 3600; /* km */
	v->lat += dist * cos(v->heading * M_PI / 180) / KM_PER_DEG_LAT;
	v->lon += dist * sin(v->heading * M_PI / 180) / (KM_PER_DEG_LAT * cos(v->lat * M_PI / 180));
	v->odo += dist;
	v->fuel -= dist * FUEL_PCT_PER_KM + dt * FUEL_PCT_IDLE_S;
	if (v->fuel < FUEL_RESERVE)
		v->fuel = 95 + rnd(&v->rng) * 5; /* filled up */

	double want_c = 86 + 8 * v->speed / 130;
	v->coolant += (want_c - v->coolant) * (dt < COOLANT_TAU_S ? dt / COOLANT_TAU_S : 1.0);
}

/* rpm through a six-speed gearbox, idle when standing; rnd noise of +-25. */
static long vehicle_rpm(struct vehicle *v)
{
	static const double up[] = {15, 30, 50, 70, 95, 160};
	double lo = 0, rpm;
	size_t g = 0;
	if (v->speed < 1)
		return 750 + lround(rnd_tri(&v->rng) * 20);
	while (g < 5 && v->speed > up[g])
		lo = up[g++];
	rpm = 1100 + (v->speed - lo) / (up[g] - lo) * 1900;
	return lround(rpm + rnd_tri(&v->rng) * 25);
}

/* Decimal digits of u at p; returns the end. */
static char *put_u64(char *p, uint64_t u)
{
	char t[20];
	int n = 0;
	do
		t[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	while (n)
		*p++ = t[--n];
	return p;
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* x rounded to `dec` decimals (1..6), always with all of them ("12.50"). |x| < 1e12. */
static char *put_fixed(char *p, double x, int dec)
{
	static const int64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	int64_t scale = pow10[dec], v = llround(x * (double)scale);
	if (v < 0) {
		*p++ = '-';
		v = -v;
	}
	p = put_u64(p, (uint64_t)(v / scale));
	*p++ = '.';
	int64_t f = v % scale;
	for (int64_t d = scale / 10; d; d /= 10) {
		*p++ = (char)('0' + f / d);
		f %= d;
	}
	return p;
}

static char *put_lit(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

void rn_sim_vehicle_name(uint32_t vehicle, char *buf, size_t cap)
{
	snprintf(buf, cap, "veh-%03u", (unsigned)vehicle + 1);
}

int rn_sim_create(struct rn_sim **out, const struct rn_sim_options *o)
{
	struct rn_sim *s;
	uint32_t nveh = o->vehicles ? o->vehicles : 1;
	double dt = o->dt_s ? o->dt_s : 1.0;

	*out = NULL;
	if (nveh > RN_SIM_MAX_VEHICLES || !(dt > 0 && dt <= 60))
		return RN_EINVAL;
	if (!(s = rn_calloc(1, sizeof(*s))) || !(s->veh = rn_calloc(nveh, sizeof(*s->veh)))) {
		rn_free(s);
		return RN_ENOMEM;
	}
	s->seed = o->seed;
	s->nveh = nveh;
	s->dt = dt;
	for (uint32_t i = 0; i < nveh; i++)
		vehicle_init(&s->veh[i], s->seed, i);
	*out = s;
	return 0;
}

void rn_sim_destroy(struct rn_sim *s)
{
	if (!s)
		return;
	rn_free(s->veh);
	rn_free(s);
}

uint64_t rn_sim_count(const struct rn_sim *s)
{
	return s->n;
}

uint32_t rn_sim_next_vehicle(const struct rn_sim *s)
{
	return (uint32_t)(s->n % s->nveh);
}

int rn_sim_next(struct rn_sim *s, int64_t ts_ms, struct rn_buf *out)
{
	uint32_t i = rn_sim_next_vehicle(s);
	struct vehicle *v = &s->veh[i];
	char line[RN_SIM_RECORD_MAX], *p = line;
	int rc;

	if ((rc = rn_buf_reserve(out, sizeof(line))))
		return rc;
	s->undo = *v;
	s->can_undo = 1;
	vehicle_step(v, s->dt);

	p = put_lit(p, "{\"vehicle\":\"veh-");
	if (i + 1 < 100)
		*p++ = '0';
	if (i + 1 < 10)
		*p++ = '0';
	p = put_u64(p, (uint64_t)i + 1);
	p = put_lit(p, "\",\"seq\":");
	p = put_u64(p, s->n);
	p = put_lit(p, ",\"ts\":");
	p = put_i64(p, ts_ms);
	p = put_lit(p, ",\"lat\":");
	p = put_fixed(p, v->lat, 6);
	p = put_lit(p, ",\"lon\":");
	p = put_fixed(p, v->lon, 6);
	p = put_lit(p, ",\"speed_kmh\":");
	p = put_fixed(p, v->speed, 1);
	p = put_lit(p, ",\"heading\":");
	/* in tenths, so 359.96 prints as 0.0, not 360.0 */
	p = put_fixed(p, (double)(llround(v->heading * 10) % 3600) / 10, 1);
	p = put_lit(p, ",\"rpm\":");
	p = put_i64(p, vehicle_rpm(v));
	p = put_lit(p, ",\"coolant_c\":");
	p = put_fixed(p, v->coolant, 1);
	p = put_lit(p, ",\"fuel_pct\":");
	p = put_fixed(p, v->fuel, 2);
	p = put_lit(p, ",\"odometer_km\":");
	p = put_fixed(p, v->odo, 3);
	*p++ = '}';

	s->n++;
	return rn_buf_append(out, line, (size_t)(p - line)); /* cannot fail: reserved */
}

int rn_sim_undo(struct rn_sim *s)
{
	if (!s->can_undo || !s->n)
		return RN_EINVAL;
	s->n--;
	s->veh[s->n % s->nveh] = s->undo;
	s->can_undo = 0;
	return 0;
}

int rn_sim_save(const struct rn_sim *s, struct rn_buf *out)
{
	size_t len0 = out->len;
	int rc = rn_buf_printf(out, "sim1 %llu %llu %u\n", (unsigned long long)s->n,
			       (unsigned long long)s->seed, (unsigned)s->nveh);
	for (uint32_t i = 0; i < s->nveh && !rc; i++) {
		const struct vehicle *v = &s->veh[i];
		rc = rn_buf_printf(out,
				   "%016llx %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g "
				   "%.17g\n",
				   (unsigned long long)v->rng, v->lat, v->lon, v->heading, v->speed,
				   v->target, v->hold, v->coolant, v->fuel, v->odo);
	}
	if (rc)
		out->len = len0;
	return rc;
}

/* One vehicle line "rng lat lon heading speed target hold coolant fuel odo"; returns the
 * position after its newline, or NULL if malformed. */
static const char *parse_vehicle(const char *p, struct vehicle *v)
{
	double *f[] = {&v->lat,  &v->lon,     &v->heading, &v->speed, &v->target,
		       &v->hold, &v->coolant, &v->fuel,    &v->odo};
	char *end;
	if (*p == ' ' || *p == '-')
		return NULL;
	v->rng = strtoull(p, &end, 16);
	if (end == p || *end != ' ')
		return NULL;
	p = end;
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		/* exactly one space: strtod would skip a newline and read the next line */
		if (*p != ' ' || p[1] == ' ' || p[1] == '\n')
			return NULL;
		*f[k] = strtod(++p, &end);
		if (end == p || !isfinite(*f[k]))
			return NULL;
		p = end;
	}
	if (v->speed < 0 || v->fuel <= 0 || v->fuel > 100 || v->heading < 0 || v->heading >= 360)
		return NULL;
	return *p == '\n' ? p + 1 : NULL;
}

int rn_sim_load(struct rn_sim *s, const void *text, size_t len, int *changed)
{
	char *t, *p;
	unsigned long long n, seed;
	unsigned nveh;
	int off = 0, rc = RN_ECORRUPT;
	struct vehicle *saved = NULL;

	*changed = 0;
	if (!(t = rn_malloc(len + 1)))
		return RN_ENOMEM;
	memcpy(t, text, len);
	t[len] = 0;
	if (strlen(t) != len || sscanf(t, "sim1 %llu %llu %u\n%n", &n, &seed, &nveh, &off) != 3 ||
	    !off || t[off - 1] != '\n' || nveh == 0 || nveh > RN_SIM_MAX_VEHICLES)
		goto out;
	if (!(saved = rn_calloc(nveh, sizeof(*saved)))) {
		rc = RN_ENOMEM;
		goto out;
	}
	p = t + off;
	for (unsigned i = 0; i < nveh; i++)
		if (!(p = (char *)parse_vehicle(p, &saved[i])))
			goto out;
	if (*p)
		goto out;
	/* all parsed: now change the simulator */
	*changed = seed != s->seed || nveh != s->nveh;
	s->n = n;
	s->can_undo = 0;
	for (uint32_t i = 0; i < s->nveh; i++) {
		if (seed == s->seed && i < nveh)
			s->veh[i] = saved[i];
		else
			vehicle_init(&s->veh[i], s->seed, i);
	}
	rc = 0;
out:
	rn_free(saved);
	rn_free(t);
	return rc;
}
