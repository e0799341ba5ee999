/*
 * Backoff policy; see backoff.h. Pure arithmetic, no clock.
 */
#include "backoff.h"

int64_t rn_backoff_next(struct rn_backoff *b, double rnd, int terminal)
{
	int64_t cap = b->max_ms > 0 ? b->max_ms : 30000;
	int64_t base = b->min_ms > 0 ? b->min_ms : 200;
	int64_t ceil = base;
	if (terminal) {
		b->attempt++;
		return b->slow_ms > 0 ? b->slow_ms : 30000;
	}
	for (int i = 0; i < b->attempt && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	b->attempt++;
	if (rnd < 0)
		rnd = 0;
	if (rnd >= 1)
		rnd = 0.999999;
	return (int64_t)(rnd * (double)ceil);
}

int64_t rn_backoff_pushback(struct rn_backoff *b, double rnd, int64_t pushback_ms)
{
	int64_t d = rn_backoff_next(b, rnd, 0);
	return pushback_ms > d ? pushback_ms : d;
}

void rn_backoff_reset(struct rn_backoff *b)
{
	b->attempt = 0;
}

int rn_backoff_terminal_status(int s)
{
	switch (s) {
	case 3:
	case 5:
	case 7:
	case 9:
	case 11:
	case 12:
	case 16: return 1;
	}
	return 0;
}

int rn_episode_fail(struct rn_episode *e, int key, int64_t now_us)
{
	if (e->key == key && e->failures) {
		e->failures++;
		return 0;
	}
	e->key = key;
	e->failures = 1;
	e->since_us = now_us;
	return 1;
}

uint64_t rn_episode_end(struct rn_episode *e, int64_t now_us, int64_t *dur_us)
{
	uint64_t n = e->failures;
	if (dur_us)
		*dur_us = n ? now_us - e->since_us : 0;
	e->key = 0;
	e->failures = 0;
	return n;
}
