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

void rn_backoff_reset(struct rn_backoff *b)
{
	b->attempt = 0;
}

int rn_backoff_terminal_status(int s)
{
	switch (s) {
	case 3: case 5: case 7: case 9: case 11: case 12: case 16:
		return 1;
	}
	return 0;
}
