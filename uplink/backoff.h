/*
 * Retry policy for the uplink, I/O-free: exponential backoff with full jitter (AWS
 * architecture blog's "full jitter": delay = random(0, min(cap, base * 2^attempt))), a slow
 * fixed retry for terminal statuses, server pushback (grpc-retry-pushback-ms) as a floor,
 * the classification of gRPC statuses, and fault episodes (so a fault that repeats on every
 * retry is logged once, not once per retry). Randomness and time are passed in so tests are
 * deterministic. The structs live inside the uplink's per-stream state.
 */
#ifndef RN_BACKOFF_H
#define RN_BACKOFF_H

#include <stdint.h>

struct rn_backoff {
	int min_ms;  /* base delay */
	int max_ms;  /* cap */
	int slow_ms; /* delay after a terminal status (auth, not found, bad request) */
	int attempt; /* failures since the last success */
};

/* Delay before the next attempt after a failure; `rnd` is uniform in [0, 1). `terminal`
 * selects the slow path. Increments attempt. */
int64_t rn_backoff_next(struct rn_backoff *b, double rnd, int terminal);

/* Delay after a failure the server answered with a pushback of `pushback_ms` (>= 0): the
 * server's wait is a floor, the jittered backoff still applies above it, so a fleet that
 * was pushed back together does not return together: max(pushback_ms, rn_backoff_next()).
 * Increments attempt. */
int64_t rn_backoff_pushback(struct rn_backoff *b, double rnd, int64_t pushback_ms);

/* A success (a call stayed healthy): the next failure starts from the base again. */
void rn_backoff_reset(struct rn_backoff *b);

/* True for gRPC statuses that retrying quickly cannot fix: INVALID_ARGUMENT, NOT_FOUND,
 * PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED, FAILED_PRECONDITION, OUT_OF_RANGE. */
int rn_backoff_terminal_status(int grpc_status);

/* A run of failures of one kind. The kind is a non-zero key the caller derives from what
 * went wrong (a gRPC status, a transport error class, a protocol fault). */
struct rn_episode {
	int key;           /* kind of the open episode; 0 = none open */
	uint64_t failures; /* failures in the open episode */
	int64_t since_us;  /* when it opened */
};

/* Records a failure of kind `key`. Returns 1 when it opens an episode or changes its kind
 * (log it at warn or error), 0 when it repeats the open episode's kind (log at debug). */
int rn_episode_fail(struct rn_episode *e, int key, int64_t now_us);

/* Closes the open episode (the connection has been healthy for a while). Returns how many
 * failures it had, 0 if none was open; *dur_us (may be NULL) gets its length. */
uint64_t rn_episode_end(struct rn_episode *e, int64_t now_us, int64_t *dur_us);

#endif
