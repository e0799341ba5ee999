/*
 * Retry policy for the uplink, I/O-free: exponential backoff with full jitter (AWS
 * architecture blog's "full jitter": delay = random(0, min(cap, base * 2^attempt))), a slow
 * fixed retry for terminal statuses, and the classification of gRPC statuses. Randomness is
 * passed in so tests are deterministic.
 */
#ifndef RN_BACKOFF_H
#define RN_BACKOFF_H

#include <stdint.h>

struct rn_backoff {
	int min_ms;     /* base delay */
	int max_ms;     /* cap */
	int slow_ms;    /* delay after a terminal status (auth, not found, bad request) */
	int attempt;    /* failures since the last success */
};

/* Delay before the next attempt after a failure; `rnd` is uniform in [0, 1). `terminal`
 * selects the slow path. Increments attempt. */
int64_t rn_backoff_next(struct rn_backoff *b, double rnd, int terminal);

/* A success (an ack arrived): the next failure starts from the base again. */
void rn_backoff_reset(struct rn_backoff *b);

/* True for gRPC statuses that retrying quickly cannot fix: INVALID_ARGUMENT, NOT_FOUND,
 * PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED, FAILED_PRECONDITION, OUT_OF_RANGE. */
int rn_backoff_terminal_status(int grpc_status);

#endif
