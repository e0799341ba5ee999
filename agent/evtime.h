/*
 * Event time from a record's payload, I/O-free: a source may name a top-level JSON field
 * that holds when the event happened. Pure functions; no clocks, no allocation.
 */
#ifndef RN_EVTIME_H
#define RN_EVTIME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Looks up the top-level member `field` of the JSON object in [p, p+len) and converts it to
 * microseconds since the Unix epoch, into *us:
 *  - a number is seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude
 *    (below 1e11 seconds, below 1e14 ms, below 1e17 us, else ns); fractions are allowed;
 *  - a string is RFC 3339: "2026-11-25T10:00:00Z", with optional fraction and a Z or
 *    +hh:mm/-hh:mm offset ('t', 'z' and a space for 'T' accepted).
 * RN_ENOTFOUND: not a JSON object or no such member. RN_EINVAL: the value is neither (or is
 * negative, or out of the years 1..9999).
 */
int rn_evtime_json(const void *p, size_t len, const char *field, int64_t *us);

/* Parses an RFC 3339 timestamp of exactly n bytes. 0 or RN_EINVAL. */
int rn_evtime_rfc3339(const char *s, size_t n, int64_t *us);

/* Parses text cut out of a line by a pattern: RFC 3339, also without a zone (then UTC) and
 * with ',' before the fraction (log4j style), or an epoch number as in rn_evtime_json.
 * 0 or RN_EINVAL. */
int rn_evtime_text(const char *s, size_t n, int64_t *us);

#endif
