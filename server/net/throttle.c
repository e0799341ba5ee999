/*
 * Refused-call throttle per client address; see throttle.h. A fixed table searched linearly:
 * 64 entries, looked up once per accepted connection and per refusal, which is cheaper than
 * any of the work it saves.
 */
#include "throttle.h"

#include <string.h>

void rn_throttle_config(struct rn_throttle *t, uint32_t max_per_s, int64_t cooldown_us)
{
	t->max_per_s = max_per_s;
	t->cooldown_us = cooldown_us > 0 ? cooldown_us : 0;
}

static struct rn_throttle_peer *find(struct rn_throttle *t, const char *addr)
{
	for (size_t i = 0; i < RN_THROTTLE_SLOTS; i++)
		if (t->peer[i].used && !strcmp(t->peer[i].addr, addr))
			return &t->peer[i];
	return NULL;
}

/* A free entry, else the one seen least recently that is not throttled; NULL if every entry
 * is throttled. */
static struct rn_throttle_peer *make_room(struct rn_throttle *t, int64_t now_us)
{
	struct rn_throttle_peer *best = NULL;
	for (size_t i = 0; i < RN_THROTTLE_SLOTS; i++) {
		struct rn_throttle_peer *p = &t->peer[i];
		if (!p->used)
			return p;
		if (p->until_us > now_us)
			continue;
		if (!best || p->last_us < best->last_us)
			best = p;
	}
	return best;
}

int rn_throttle_note(struct rn_throttle *t, const char *addr, int64_t now_us)
{
	struct rn_throttle_peer *p;
	if (!t->max_per_s || !addr)
		return 0;
	if (!(p = find(t, addr))) {
		if (!(p = make_room(t, now_us)))
			return 0;
		size_t n = strlen(addr);
		memset(p, 0, sizeof(*p));
		memcpy(p->addr, addr, n < sizeof(p->addr) ? n : sizeof(p->addr) - 1);
		p->used = 1;
		p->second_us = now_us;
	}
	p->last_us = now_us;
	if (p->until_us > now_us)
		return 0; /* already throttled (a refusal from a connection it still had) */
	if (now_us - p->second_us >= 1000000) {
		p->second_us = now_us;
		p->count = 0;
	}
	if (++p->count <= t->max_per_s)
		return 0;
	p->until_us = now_us + (t->cooldown_us ? t->cooldown_us : 1);
	p->count = 0;
	p->blocked = 0;
	return 1;
}

int rn_throttle_blocked(struct rn_throttle *t, const char *addr, int64_t now_us)
{
	struct rn_throttle_peer *p = addr ? find(t, addr) : NULL;
	if (!p || p->until_us <= now_us)
		return 0;
	p->blocked++;
	p->last_us = now_us;
	return 1;
}

size_t rn_throttle_active(const struct rn_throttle *t, int64_t now_us)
{
	size_t n = 0;
	for (size_t i = 0; i < RN_THROTTLE_SLOTS; i++)
		n += t->peer[i].used && t->peer[i].until_us > now_us;
	return n;
}

size_t rn_throttle_tick(struct rn_throttle *t, int64_t now_us, rn_throttle_end_fn end, void *ctx)
{
	size_t n = 0;
	for (size_t i = 0; i < RN_THROTTLE_SLOTS; i++) {
		struct rn_throttle_peer *p = &t->peer[i];
		if (!p->used || !p->until_us || p->until_us > now_us)
			continue;
		if (end)
			end(ctx, p->addr, p->blocked);
		p->until_us = 0;
		p->blocked = 0;
		p->count = 0;
		p->second_us = now_us;
		n++;
	}
	return n;
}
