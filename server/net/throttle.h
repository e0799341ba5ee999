/*
 * Per-address throttle for refused calls: a client address (without its port) that has more
 * than `max_per_s` refusals (a wrong token, not gRPC, a late header block...) within one
 * second is throttled for `cooldown_us`: the front then closes its new connections at once and
 * ends the ones it has, so a scanner or a misconfigured fleet costs the server a table lookup
 * per connection instead of a TLS/HTTP/2 session and a refusal per call. It decides only, as a
 * pure function of its state and the time: no I/O, no allocation, no clock of its own.
 *
 * A fixed table of RN_THROTTLE_SLOTS addresses; when it is full, the entry seen least recently
 * that is not throttled makes room (so a flood from many addresses cannot evict a throttled
 * one, and a throttled one stays so for its whole cool-down). The caller owns the struct (the
 * front keeps one) and calls it from one thread (its loop).
 */
#ifndef RN_THROTTLE_H
#define RN_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define RN_THROTTLE_SLOTS 64

struct rn_throttle_peer {
	char addr[64];     /* the client address, without port */
	int64_t second_us; /* start of the one-second window being counted */
	uint32_t count;    /* refusals in that window */
	int64_t until_us;  /* throttled until then; 0 = not throttled */
	uint64_t blocked;  /* connections refused while throttled (for the end-of-throttle line) */
	int64_t last_us;   /* last time seen (eviction order) */
	int used;
};

struct rn_throttle {
	uint32_t max_per_s;  /* refusals per second that throttle an address; 0 = off */
	int64_t cooldown_us; /* how long */
	struct rn_throttle_peer peer[RN_THROTTLE_SLOTS];
};

/* Starts an empty table; max_per_s 0 turns throttling off. Also for a reload: it keeps the
 * addresses already tracked and applies the new numbers from now on. */
void rn_throttle_config(struct rn_throttle *t, uint32_t max_per_s, int64_t cooldown_us);

/* Notes one refusal from addr at now_us. Returns 1 when addr becomes throttled by it (the
 * caller logs that and ends its connections), else 0. */
int rn_throttle_note(struct rn_throttle *t, const char *addr, int64_t now_us);

/* 1 while addr is throttled (and counts one blocked connection for it), else 0. */
int rn_throttle_blocked(struct rn_throttle *t, const char *addr, int64_t now_us);

/* Addresses throttled now. */
size_t rn_throttle_active(const struct rn_throttle *t, int64_t now_us);

/* Called for each address whose throttle ended, with what it was refused meanwhile. */
typedef void (*rn_throttle_end_fn)(void *ctx, const char *addr, uint64_t blocked);

/* Ends the throttles that are over (emitting each); call it from a periodic tick. Returns how
 * many ended. */
size_t rn_throttle_tick(struct rn_throttle *t, int64_t now_us, rn_throttle_end_fn end, void *ctx);

#endif
