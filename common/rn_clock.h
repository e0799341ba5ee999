/*
 * Time helpers: wall clock and monotonic clock in microseconds. Header-only, no state.
 */
#ifndef RN_CLOCK_H
#define RN_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t rn_clock_ts_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds since the Unix epoch (may jump). */
static inline int64_t rn_now_us(void)
{
	return rn_clock_ts_us(CLOCK_REALTIME);
}

/* Monotonic microseconds, for timeouts and durations. */
static inline int64_t rn_mono_us(void)
{
	return rn_clock_ts_us(CLOCK_MONOTONIC);
}

#endif
