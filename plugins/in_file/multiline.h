/*
 * Multi-line grouping, I/O-free: turns lines (from the line splitter) into records, where a
 * line flagged RN_MULTILINE_START begins a new record and every other line is appended to
 * the pending one after a '\n' (a Java stack trace under its log line). No regex and no
 * clock inside: the caller says which lines start a record and passes the time. A pending
 * record goes out when the next start line arrives, when rn_multiline_tick() finds it older
 * than timeout_us, or on rn_multiline_flush(). A record longer than max_bytes comes out in
 * pieces of max_bytes flagged RN_RECORD_F_SPLIT (the last piece also RN_LINESPLIT_EOL), which
 * concatenated give the record: nothing is dropped. Positions: every record or piece carries
 * `consumed`, the input position just after its last byte — for a whole record the end of
 * its last line — so a resume from it re-reads exactly what was not handed out; lines held
 * in the pending record are not consumed yet. The caller owns the struct (zeroed, then
 * rn_multiline_reset) and frees it with rn_multiline_free; one thread. Fuzzed by
 * tests/fuzz/fuzz_multiline.c.
 */
#ifndef RN_MULTILINE_H
#define RN_MULTILINE_H

#include <stddef.h>
#include <stdint.h>

#include "linesplit.h"
#include "rn_buf.h"

/* Feed flags. */
#define RN_MULTILINE_START 1u /* the line starts a record (it matched multiline_start) */
#define RN_MULTILINE_CONT                                                                          \
	2u                   /* a later piece of an overlong line: glued on without '\n',          \
			      * never a start */
#define RN_MULTILINE_MORE 4u /* more pieces of this line follow: no timeout before them */

struct rn_multiline {
	size_t max_bytes;   /* piece size; 0 = 64 KiB. Lines fed must not be longer. */
	int64_t timeout_us; /* a pending record older than this goes out at tick(); 0 = never */
	struct rn_buf rec;  /* pending record bytes not yet handed out; longer than max_bytes
			     * only while pieces are due (an emit failed after a line was taken) */
	int open;           /* a record is pending (possibly empty: an empty start line) */
	int in_split;       /* the pending record already produced pieces */
	int mid_line;       /* the last feed had RN_MULTILINE_MORE: the timeout waits */
	uint64_t end;       /* input position after the last line fed */
	/* Where the bytes appended last (a separator, then a line's bytes) came from, so a piece
	 * cut inside them gets its exact input position. Cuts never fall before tail_idx. */
	size_t tail_idx;     /* index in rec where they begin */
	uint64_t tail_start; /* input position of the first line byte */
	int tail_sep;        /* they begin with the '\n' separator */
	int64_t last_us;     /* when the last line was fed */
};

/* Drops any pending record; the next line fed starts at input position `pos`. */
void rn_multiline_reset(struct rn_multiline *m, uint64_t pos);

/*
 * Feeds one line (or piece of an overlong line, with RN_MULTILINE_CONT) of `len` bytes that
 * ends at input position `consumed` (its newline included), at time now_us. Records and
 * pieces that become complete go to fn (RN_RECORD_F_SPLIT on pieces, RN_LINESPLIT_EOL on
 * the end of a record; fn returns non-zero to refuse one). Returns 0 when the line was taken
 * (pieces it completed may still be due if fn refused them: they go out first on the next
 * call), fn's non-zero value when the line was NOT taken (feed it again later), RN_ETOOBIG if
 * len > max_bytes, RN_ENOMEM.
 */
int rn_multiline_feed(struct rn_multiline *m, const uint8_t *line, size_t len, unsigned flags,
		      uint64_t consumed, int64_t now_us, rn_line_fn fn, void *ctx);

/* Hands out due pieces, then the pending record if no line came for timeout_us (and its
 * last line is complete: no RN_MULTILINE_MORE). 0 or fn's non-zero value (retry later). */
int rn_multiline_tick(struct rn_multiline *m, int64_t now_us, rn_line_fn fn, void *ctx);

/* Hands out due pieces and the pending record now (end of file, rotation). 0 or fn's value. */
int rn_multiline_flush(struct rn_multiline *m, rn_line_fn fn, void *ctx);

/* The line last fed with RN_MULTILINE_MORE is over after all (the splitter gave out a
 * partial line on its timeout): the record's timeout runs again. */
static inline void rn_multiline_end_line(struct rn_multiline *m)
{
	m->mid_line = 0;
}

/* A record is pending (not yet handed out in full). */
static inline int rn_multiline_pending(const struct rn_multiline *m)
{
	return m->open;
}

void rn_multiline_free(struct rn_multiline *m);

#endif
