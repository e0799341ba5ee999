/*
 * Token bucket; see ratelimit.h. Integer arithmetic only: refills add whole bytes and move
 * last_us forward by exactly the time those bytes took, so no fraction is ever lost and the
 * long-run rate is exact whatever the call pattern.
 */
#include "ratelimit.h"

#define MAX_BURST ((int64_t)4 << 20)
#define MIN_BURST ((int64_t)1024)
#define QUANTUM ((int64_t)16 << 10)
#define MAX_RATE ((int64_t)1 << 40) /* keeps dt * rate in range, see refill() */

void rn_ratelimit_init(struct rn_ratelimit *rl, int64_t rate, int64_t now_us)
{
	rl->rate = rate > 0 ? rate : 0;
	if (rl->rate > MAX_RATE)
		rl->rate = MAX_RATE;
	rl->burst = rl->rate / 4;
	if (rl->burst < MIN_BURST)
		rl->burst = MIN_BURST;
	if (rl->burst > MAX_BURST)
		rl->burst = MAX_BURST;
	/* at most half the bucket, so a grant never waits for a full bucket (time spent full
	 * earns nothing) */
	rl->quantum = rl->burst / 2 < QUANTUM ? rl->burst / 2 : QUANTUM;
	rl->tokens = rl->burst;
	rl->last_us = now_us;
}

static void refill(struct rn_ratelimit *rl, int64_t now_us)
{
	int64_t dt = now_us - rl->last_us, add;
	if (dt <= 0)
		return; /* the clock is monotonic; equal times add nothing */
	if (rl->tokens >= rl->burst) {
		rl->last_us = now_us; /* full: time spent full earns nothing */
		return;
	}
	/* Past the time needed to fill up, the bucket is full; checking this first also keeps
	 * dt * rate below 2^63 (dt * rate < 1e6 * (burst + rate) with burst <= 4 MiB and
	 * rate <= 2^40). */
	if (dt / 1000000 > (rl->burst - rl->tokens) / rl->rate) {
		rl->tokens = rl->burst;
		rl->last_us = now_us;
		return;
	}
	add = dt * rl->rate / 1000000;
	if (add <= 0)
		return; /* less than a byte so far: keep last_us, the time still counts */
	rl->tokens += add;
	/* rounded up: a partial microsecond is not credited twice */
	rl->last_us += (add * 1000000 + rl->rate - 1) / rl->rate;
	if (rl->tokens >= rl->burst) {
		rl->tokens = rl->burst;
		rl->last_us = now_us;
	}
}

static int64_t need(const struct rn_ratelimit *rl, int64_t want)
{
	return want < rl->quantum ? want : rl->quantum;
}

int64_t rn_ratelimit_take(struct rn_ratelimit *rl, int64_t now_us, int64_t want)
{
	int64_t got;
	if (want <= 0)
		return 0;
	if (!rl->rate)
		return want;
	refill(rl, now_us);
	if (rl->tokens < need(rl, want))
		return 0;
	got = want < rl->tokens ? want : rl->tokens;
	rl->tokens -= got;
	return got;
}

int64_t rn_ratelimit_wait_us(struct rn_ratelimit *rl, int64_t now_us, int64_t want)
{
	int64_t missing, us;
	if (!rl->rate || want <= 0)
		return 0;
	refill(rl, now_us);
	missing = need(rl, want) - rl->tokens;
	if (missing <= 0)
		return 0;
	/* time for `missing` more bytes, counted from last_us (which may lie a little before
	 * now: the fraction of a byte already earned) */
	us = (missing * 1000000 + rl->rate - 1) / rl->rate - (now_us - rl->last_us);
	return us > 0 ? us : 1;
}
