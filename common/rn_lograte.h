/*
 * Rate limit for repeated warnings about one named thing (a table whose batches carry records
 * that do not fit, an agent source whose input does not parse). A flood of bad input must stay
 * visible without writing a line per record: this decides, as a pure function of its state and
 * the time, which events get a line. The first event of a name in a period is logged at once;
 * later ones of the same name are counted (events and the items they carried, e.g. records)
 * and reported as one summary line per name per period; a name that saw nothing for a whole
 * period is forgotten (its next event is a first again). At most RN_LOGRATE_FIRSTS first lines
 * are written per period (more names than that, or than there are slots, go into one "other"
 * count), so the lines per period are bounded by RN_LOGRATE_FIRSTS + RN_LOGRATE_SLOTS + 1
 * whatever the input is. Names longer than the slot's are compared truncated.
 *
 * No I/O, no allocation: the caller owns the struct and writes the lines. Not thread-safe;
 * each owner calls it from one thread (the server's loop, the agent's loop).
 */
#ifndef RN_LOGRATE_H
#define RN_LOGRATE_H

#include <stddef.h>
#include <stdint.h>

#define RN_LOGRATE_SLOTS 32  /* names tracked at once */
#define RN_LOGRATE_FIRSTS 16 /* first lines per period */

/* One name's counts since its last line. */
struct rn_lograte_key {
	char name[256];
	uint64_t events; /* events not logged since the name's last line */
	uint64_t items;  /* items those events carried */
	int64_t last_us; /* time of its latest event */
	int used;
};

struct rn_lograte {
	int64_t period_us;     /* summary period (> 0) */
	int64_t period_end_us; /* when the current period ends */
	unsigned firsts;       /* first lines written in this period */
	uint64_t other_events; /* events counted outside the slots since the last summary */
	uint64_t other_items;
	uint64_t suppressed; /* events that got no line of their own, ever (a metric) */
	struct rn_lograte_key key[RN_LOGRATE_SLOTS];
};

/* Starts an empty limiter whose periods last period_us (<= 0: 10 s), the first ending at
 * now_us + period. */
void rn_lograte_init(struct rn_lograte *r, int64_t period_us, int64_t now_us);

/*
 * Notes one event of `name` (NULL = "") carrying `items` items. Returns 1 if it gets its own
 * line now (the caller writes it), 0 if it was counted for a summary (and r->suppressed grew).
 */
int rn_lograte_note(struct rn_lograte *r, const char *name, uint64_t items, int64_t now_us);

/* Called with each summary: `events` events carrying `items` items of `name` (NULL: names not
 * tracked) in the period that ended. */
typedef void (*rn_lograte_emit_fn)(void *ctx, const char *name, uint64_t events, uint64_t items);

/*
 * Ends the period if now_us has reached its end: emits a summary for each name with a count
 * (and one for the untracked ones), forgets names quiet for the whole period, and starts the
 * next period. Returns the number of summaries emitted (0 before the period's end). emit may
 * be NULL (the counts are dropped).
 */
size_t rn_lograte_tick(struct rn_lograte *r, int64_t now_us, rn_lograte_emit_fn emit, void *ctx);

#endif
