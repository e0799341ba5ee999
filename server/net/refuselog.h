/*
 * Rate limit for the log lines about refused calls (a wrong token, a call that is not gRPC, an
 * unknown method or table, a stream beyond the connection's limit). Each refusal should be
 * visible, yet a misconfigured fleet or a scanner can send hundreds of thousands: this decides,
 * as a pure function of its state and the time, which ones get a line. The first refusal of a
 * kind (client address without its port, status, reason) is logged at once; later ones of the
 * same kind are counted and reported as one summary line per kind per period; a kind that
 * saw nothing for a whole period is forgotten (its next refusal is a first again). At most
 * RN_REFUSELOG_FIRSTS first lines are written per period (more kinds than that, or than there
 * are slots, go into one "other" count), so the lines per period are bounded by
 * RN_REFUSELOG_FIRSTS + RN_REFUSELOG_SLOTS + 1 whatever the clients do.
 *
 * No I/O, no allocation: the caller owns the struct (the front keeps one) and writes the
 * lines. Not thread-safe; the front calls it from its loop.
 */
#ifndef RN_REFUSELOG_H
#define RN_REFUSELOG_H

#include <stddef.h>
#include <stdint.h>

#define RN_REFUSELOG_SLOTS 32  /* kinds tracked at once */
#define RN_REFUSELOG_FIRSTS 16 /* first lines per period */

/* One kind of refusal. */
struct rn_refuselog_kind {
	char peer[64];    /* client address without its port */
	int status;       /* gRPC status, or HTTP status for a request that was not gRPC */
	char reason[120]; /* the message of the first one (truncated) */
	uint64_t count;   /* refusals since the kind's last line (first or summary) */
	int64_t last_us;  /* time of its latest refusal */
	int used;
};

struct rn_refuselog {
	int64_t period_us;     /* summary period (> 0) */
	int64_t period_end_us; /* when the current period ends */
	unsigned firsts;       /* first lines written in this period */
	uint64_t other;        /* refusals counted outside the slots since the last summary */
	struct rn_refuselog_kind kind[RN_REFUSELOG_SLOTS];
};

/* Starts an empty log whose periods last period_us (<= 0: 10 s), the first ending at
 * now_us + period. */
void rn_refuselog_init(struct rn_refuselog *r, int64_t period_us, int64_t now_us);

/*
 * Notes one refusal from `peer` ("addr:port" or "[v6]:port"; the port is ignored) with
 * `status` and `reason` (NULL = ""). Returns 1 if it is the first of its kind and gets its own
 * line now, 0 if it was counted for a summary.
 */
int rn_refuselog_note(struct rn_refuselog *r, const char *peer, int status, const char *reason,
		      int64_t now_us);

/* Called with each summary: `count` refusals of kind k (k NULL: of kinds not tracked) in the
 * period that ended. */
typedef void (*rn_refuselog_emit_fn)(void *ctx, const struct rn_refuselog_kind *k, uint64_t count);

/*
 * Ends the period if now_us has reached its end: emits a summary for each kind with a count
 * (and one for the untracked ones), forgets kinds quiet for the whole period, and starts the
 * next period. Returns the number of summaries emitted (0 before the period's end).
 */
size_t rn_refuselog_tick(struct rn_refuselog *r, int64_t now_us, rn_refuselog_emit_fn emit,
			 void *ctx);

#endif
