/*
 * Warning rate limiter; see rn_lograte.h. A fixed table searched linearly: it holds at most
 * RN_LOGRATE_SLOTS names and is only touched on warnings and once per period, so a hash would
 * buy nothing.
 */
#include "rn_lograte.h"

#include <stdio.h>
#include <string.h>

void rn_lograte_init(struct rn_lograte *r, int64_t period_us, int64_t now_us)
{
	memset(r, 0, sizeof(*r));
	r->period_us = period_us > 0 ? period_us : 10 * 1000000LL;
	r->period_end_us = now_us + r->period_us;
}

int rn_lograte_note(struct rn_lograte *r, const char *name, uint64_t items, int64_t now_us)
{
	struct rn_lograte_key *free_slot = NULL;
	char key[sizeof(r->key[0].name)];

	snprintf(key, sizeof(key), "%s", name ? name : "");
	for (size_t i = 0; i < RN_LOGRATE_SLOTS; i++) {
		struct rn_lograte_key *k = &r->key[i];
		if (!k->used) {
			if (!free_slot)
				free_slot = k;
			continue;
		}
		if (!strcmp(k->name, key)) {
			k->last_us = now_us;
			/* a known name is counted, not logged: a steady flood costs one
			 * summary a period, not a first line and a summary */
			k->events++;
			k->items += items;
			r->suppressed++;
			return 0;
		}
	}
	if (!free_slot || r->firsts >= RN_LOGRATE_FIRSTS) {
		r->other_events++;
		r->other_items += items;
		r->suppressed++;
		return 0;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	memcpy(free_slot->name, key, sizeof(key));
	free_slot->last_us = now_us;
	free_slot->used = 1;
	r->firsts++;
	return 1;
}

size_t rn_lograte_tick(struct rn_lograte *r, int64_t now_us, rn_lograte_emit_fn emit, void *ctx)
{
	size_t n = 0;
	if (now_us < r->period_end_us)
		return 0;
	for (size_t i = 0; i < RN_LOGRATE_SLOTS; i++) {
		struct rn_lograte_key *k = &r->key[i];
		if (!k->used)
			continue;
		if (k->events) {
			if (emit)
				emit(ctx, k->name, k->events, k->items);
			k->events = k->items = 0;
			n++;
		} else if (now_us - k->last_us >= r->period_us) {
			k->used = 0;
		}
	}
	if (r->other_events) {
		if (emit)
			emit(ctx, NULL, r->other_events, r->other_items);
		r->other_events = r->other_items = 0;
		n++;
	}
	r->firsts = 0;
	r->period_end_us = now_us + r->period_us;
	return n;
}
