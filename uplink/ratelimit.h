/*
 * Bandwidth cap for metered links, I/O-free: a token bucket in bytes. The uplink owns one
 * bucket shared by all its streams; the read callback takes tokens before it hands request
 * body bytes to libcurl and pauses the upload when there are too few, and the loop resumes
 * it after rn_ratelimit_wait_us(). Time is passed in (monotonic microseconds), so tests
 * need no clock. Not thread-safe: the uplink's loop thread is its only user.
 *
 * What is counted: gRPC message bytes of request bodies (create/resume and chunks). HTTP/2
 * framing, headers, TLS records and TCP/IP headers are not; they add a few percent.
 */
#ifndef RN_RATELIMIT_H
#define RN_RATELIMIT_H

#include <stdint.h>

struct rn_ratelimit {
	int64_t rate;    /* bytes per second; 0 = unlimited */
	int64_t burst;   /* bucket size in bytes: at most this much goes out at once */
	int64_t quantum; /* smallest grant when more is wanted, so the link is not fed in
			    dribbles of a few bytes: min(burst / 2, 16 KiB) */
	int64_t tokens;  /* 0 <= tokens <= burst */
	int64_t last_us; /* time the tokens were last refilled up to (exact, see refill) */
};

/* Sets up a bucket for `rate` bytes/s (<= 0: unlimited) that starts full. The burst is a
 * quarter of a second of rate, at least 1 KiB and at most 4 MiB. */
void rn_ratelimit_init(struct rn_ratelimit *rl, int64_t rate, int64_t now_us);

/* Grants up to `want` bytes: min(want, tokens) if that is at least min(want, quantum),
 * otherwise 0 (the caller pauses). Unlimited buckets grant `want`. */
int64_t rn_ratelimit_take(struct rn_ratelimit *rl, int64_t now_us, int64_t want);

/* Microseconds until rn_ratelimit_take(want) would grant something; 0 if it would now. */
int64_t rn_ratelimit_wait_us(struct rn_ratelimit *rl, int64_t now_us, int64_t want);

#endif
