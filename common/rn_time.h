/*
 * Calendar arithmetic and timestamp text, I/O-free and allocation-free: what the agent (event
 * times in payloads) and the server (DATE and TIMESTAMP columns from JSON) both parse.
 */
#ifndef RN_TIME_H
#define RN_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (negative before). */
int64_t rn_days_from_civil(int64_t y, int64_t m, int64_t d);

/*
 * Parses an RFC 3339 timestamp of exactly n bytes into microseconds since the epoch:
 * "2026-11-25T10:00:00Z", optional fraction (extra digits beyond microseconds ignored), a Z
 * or +hh:mm/-hh:mm offset; 't', 'z' and a space for 'T' accepted. With lax, a missing zone
 * means UTC and ',' may start the fraction (log4j style). 0 or RN_EINVAL (also for impossible
 * dates such as February 30th).
 */
int rn_time_rfc3339(const char *s, size_t n, int lax, int64_t *us);

/* Parses "YYYY-MM-DD" (exactly 10 bytes) into days since the epoch. 0 or RN_EINVAL. */
int rn_time_date(const char *s, size_t n, int32_t *days);

#endif
