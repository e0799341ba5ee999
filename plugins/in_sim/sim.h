/*
 * The vehicle telemetry simulator core: a fleet of vehicles driving around a base position,
 * one JSON record per vehicle tick. It owns the fleet state and its text form (save/load,
 * which the in_sim plugin uses as its resume position); it does no I/O and reads no clock —
 * the caller passes the record's timestamp, and everything else follows from the seed and
 * the number of records generated, so two simulators with the same options and timestamps
 * produce the same bytes. Record k belongs to vehicle k % vehicles and advances only that
 * vehicle by `dt_s` seconds of simulated time. Created and destroyed by one owner, used from
 * one thread.
 */
#ifndef RN_SIM_H
#define RN_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_SIM_MAX_VEHICLES 1000
#define RN_SIM_RECORD_MAX 320 /* bytes: no record is longer */

struct rn_sim;

/* A zeroed struct is valid: 1 vehicle, seed 0, 1 s per tick. */
struct rn_sim_options {
	uint32_t vehicles; /* 1..RN_SIM_MAX_VEHICLES; 0 = 1 */
	uint64_t seed;
	double dt_s; /* simulated seconds per vehicle tick, (0, 60]; 0 = 1 */
};

/* Creates a fleet in its initial state (a pure function of seed and vehicle index). 0,
 * RN_EINVAL (vehicles or dt_s out of range), RN_ENOMEM. *out is NULL on failure. */
int rn_sim_create(struct rn_sim **out, const struct rn_sim_options *o);
/* NULL is a no-op. */
void rn_sim_destroy(struct rn_sim *s);

/* Records generated so far: the `seq` of the next record. */
uint64_t rn_sim_count(const struct rn_sim *s);

/* The vehicle the next record belongs to (seq % vehicles). */
uint32_t rn_sim_next_vehicle(const struct rn_sim *s);

/* Writes "veh-001" (vehicle index 0) into buf, NUL-terminated; cap >= 16 always fits. */
void rn_sim_vehicle_name(uint32_t vehicle, char *buf, size_t cap);

/* Advances the next vehicle one tick and appends its record (at most RN_SIM_RECORD_MAX
 * bytes, no newline) with "ts" = ts_ms. 0 or RN_ENOMEM (out's cap; the simulator is then
 * unchanged). */
int rn_sim_next(struct rn_sim *s, int64_t ts_ms, struct rn_buf *out);

/* Takes back the last rn_sim_next (one level): the state is as before it, and the next call
 * generates the same record again. RN_EINVAL if there is nothing to take back. */
int rn_sim_undo(struct rn_sim *s);

/* Appends the full state as text ("sim1 <count> <seed> <vehicles>\n", then one line per
 * vehicle; doubles printed so they read back bit-exact). 0 or RN_ENOMEM. */
int rn_sim_save(const struct rn_sim *s, struct rn_buf *out);

/* Restores a state written by rn_sim_save. The record count always comes from the text. If
 * the text was written with another seed or vehicle count (the config changed), *changed is
 * set: vehicles the text holds under the same seed keep their state, the others start anew
 * from the configured seed. 0, RN_ECORRUPT (malformed text; the simulator is unchanged),
 * RN_ENOMEM. */
int rn_sim_load(struct rn_sim *s, const void *text, size_t len, int *changed);

#endif
