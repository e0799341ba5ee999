/*
 * The line splitter, I/O-free: turns a byte stream into lines (LF, with a CR before it
 * stripped), in any split of the input. Lines longer than max_line come out in pieces of
 * max_line bytes, each flagged RN_RECORD_F_SPLIT (the last piece too), so nothing is
 * dropped. A partial last line is held until its newline arrives or flush() is called (the
 * caller's timeout). Lines lying whole in the input are handed out without copying.
 * Fuzzed by tests/fuzz/fuzz_linesplit.c (which checks that the pieces rebuild the input).
 */
#ifndef RN_LINESPLIT_H
#define RN_LINESPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

struct rn_linesplit {
	size_t max_line;    /* piece size for overlong lines; 0 = 64 KiB */
	struct rn_buf part; /* bytes of the current unfinished line */
	int in_split;       /* the current line already produced pieces */
};

/* Set in a callback's flags (beside RN_RECORD_F_SPLIT) when the line or piece ends at a
 * newline: an unsplit line, or the last piece of a split one. Absent on intermediate pieces
 * and on a partial line given out by flush(). Not a record flag: callers mask it off. */
#define RN_LINESPLIT_EOL 0x80000000u

/* Called per line or piece. `consumed` counts input bytes (since the splitter's creation)
 * up to the end of this line, newline included: the resume position after it. A non-zero
 * return stops feeding and is returned by rn_linesplit_feed. */
typedef int (*rn_line_fn)(void *ctx, const uint8_t *line, size_t len, uint32_t flags,
			  uint64_t consumed);

/* Feeds bytes; `base` is the count of bytes fed before this call. Returns 0, the callback's
 * non-zero value (then *used tells how many bytes were taken; the rest must be fed again),
 * or RN_ENOMEM. */
int rn_linesplit_feed(struct rn_linesplit *s, const uint8_t *p, size_t len, uint64_t base,
		      rn_line_fn fn, void *ctx, size_t *used);

/* Emits the held partial line, if any, as a record. `end` = bytes fed so far. */
int rn_linesplit_flush(struct rn_linesplit *s, uint64_t end, rn_line_fn fn, void *ctx);

/* Bytes held in the partial line. */
static inline size_t rn_linesplit_pending(const struct rn_linesplit *s)
{
	return s->part.len;
}

void rn_linesplit_reset(struct rn_linesplit *s);
void rn_linesplit_free(struct rn_linesplit *s);

#endif
