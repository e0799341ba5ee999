/*
 * Refused-call log limiter; see refuselog.h. A fixed table searched linearly: it holds at most
 * RN_REFUSELOG_SLOTS kinds and is only touched on refusals and once per period, so a hash
 * would buy nothing.
 */
#include "refuselog.h"

#include <stdio.h>
#include <string.h>

void rn_refuselog_init(struct rn_refuselog *r, int64_t period_us, int64_t now_us)
{
	memset(r, 0, sizeof(*r));
	r->period_us = period_us > 0 ? period_us : 10 * 1000000LL;
	r->period_end_us = now_us + r->period_us;
}

/* The address part of "addr:port" or "[v6]:port", truncated to fit out. */
static void peer_addr(const char *peer, char *out, size_t cap)
{
	size_t n;
	const char *end;
	if (!peer)
		peer = "?";
	if (peer[0] == '[' && (end = strchr(peer, ']')))
		n = (size_t)(end + 1 - peer);
	else if ((end = strrchr(peer, ':')))
		n = (size_t)(end - peer);
	else
		n = strlen(peer);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, peer, n);
	out[n] = 0;
}

int rn_refuselog_note(struct rn_refuselog *r, const char *peer, int status, const char *reason,
		      int64_t now_us)
{
	struct rn_refuselog_kind *free_slot = NULL;
	char addr[sizeof(r->kind[0].peer)], why[sizeof(r->kind[0].reason)];

	peer_addr(peer, addr, sizeof(addr));
	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	for (size_t i = 0; i < RN_REFUSELOG_SLOTS; i++) {
		struct rn_refuselog_kind *k = &r->kind[i];
		if (!k->used) {
			if (!free_slot)
				free_slot = k;
			continue;
		}
		if (k->status == status && !strcmp(k->peer, addr) && !strcmp(k->reason, why)) {
			k->count++;
			k->last_us = now_us;
			return 0;
		}
	}
	if (!free_slot || r->firsts >= RN_REFUSELOG_FIRSTS) {
		r->other++;
		return 0;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	memcpy(free_slot->peer, addr, sizeof(addr));
	memcpy(free_slot->reason, why, sizeof(why));
	free_slot->status = status;
	free_slot->last_us = now_us;
	free_slot->used = 1;
	r->firsts++;
	return 1;
}

size_t rn_refuselog_tick(struct rn_refuselog *r, int64_t now_us, rn_refuselog_emit_fn emit,
			 void *ctx)
{
	size_t n = 0;
	if (now_us < r->period_end_us)
		return 0;
	for (size_t i = 0; i < RN_REFUSELOG_SLOTS; i++) {
		struct rn_refuselog_kind *k = &r->kind[i];
		if (!k->used)
			continue;
		if (k->count) {
			if (emit)
				emit(ctx, k, k->count);
			k->count = 0;
			n++;
		} else if (now_us - k->last_us >= r->period_us) {
			k->used = 0;
		}
	}
	if (r->other) {
		if (emit)
			emit(ctx, NULL, r->other);
		r->other = 0;
		n++;
	}
	r->firsts = 0;
	r->period_end_us = now_us + r->period_us;
	return n;
}
