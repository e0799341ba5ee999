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

/* Wall-clock times before this (2025-01-01T00:00:00Z) are taken as "not set yet": a device
 * without a real-time clock boots in 1970 and jumps forward when NTP or GPS sets it. */
#define RN_CLOCK_TRUSTED_US (INT64_C(1735689600) * 1000000)

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

/* Microseconds since boot, suspend included (CLOCK_BOOTTIME): with the boot id it places a
 * record in time on a device whose wall clock is not set (see RN_CLOCK_TRUSTED_US). */
static inline int64_t rn_boot_us(void)
{
	return rn_clock_ts_us(CLOCK_BOOTTIME);
}

#endif
