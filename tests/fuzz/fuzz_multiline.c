/*
 * Fuzz target for the in_file multi-line grouping (plugins/in_file/multiline.c), fed by the
 * real line splitter as in in_file.c. Input: byte 0 picks the record piece size max_bytes
 * (1..64), byte 1 the splitter's max_line (1..max_bytes), byte 2 the feed sizes, how often
 * the record callback refuses and when the timeout fires; byte 3 the start rule (a line
 * starts a record if its first byte is not a blank, or if it is 'S'); the rest is the file.
 * Checks: no piece is longer than max_bytes and pieces are flagged; `consumed` never goes
 * backwards or past what was fed, and at every record or piece it points exactly at the
 * input that the output so far represents (the resume position is exact: after a crash
 * nothing is repeated or lost); the output rebuilds the input (CRLF as LF, lines joined by
 * '\n'); within a record no line but the first is a start line, and a record whose first line
 * is not one follows a timeout or is the first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linesplit.h"
#include "multiline.h"
#include "plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	struct rn_multiline ml;
	size_t max_bytes;
	const uint8_t *in;
	size_t in_len;
	size_t *nmap; /* nmap[i]: length of input[0:i] with each CR before an LF removed */
	uint64_t fed, last;
	uint8_t *out; /* accepted records, each whole record followed by '\n' */
	size_t out_len;
	size_t rec_start; /* out index where the current record begins */
	unsigned calls, refuse_every;
	unsigned lpiece;
	int rule;
	int64_t now;
	int in_tick;       /* a tick or flush is running: records it ends end "by timeout" */
	int after_timeout; /* the last record was ended by a tick or flush */
	int first_record;
};

static int is_start(const struct ctx *c, const uint8_t *l, size_t len)
{
	if (!len)
		return 0;
	return c->rule ? l[0] == 'S' : l[0] != ' ' && l[0] != '\t';
}

/* The record just completed is out[rec_start, out_len - 1) ('\n' excluded). */
static void check_record(struct ctx *c)
{
	const uint8_t *r = c->out + c->rec_start, *end = c->out + c->out_len - 1, *nl;
	int first = 1;
	for (;;) {
		nl = memchr(r, '\n', (size_t)(end - r));
		size_t l = nl ? (size_t)(nl - r) : (size_t)(end - r);
		if (first && !is_start(c, r, l) && !c->after_timeout && !c->first_record)
			abort(); /* an orphan line began a record although one was open */
		if (!first && is_start(c, r, l))
			abort(); /* a start line was appended to the record before it */
		first = 0;
		if (!nl)
			break;
		r = nl + 1;
	}
	c->first_record = 0;
	c->after_timeout = c->in_tick;
	c->rec_start = c->out_len;
}

static int on_rec(void *vc, const uint8_t *p, size_t len, uint32_t flags, uint64_t consumed)
{
	struct ctx *c = vc;
	size_t want;
	if (len > c->max_bytes || consumed < c->last || consumed > c->fed)
		abort();
	if (!(flags & RN_LINESPLIT_EOL) && !(flags & RN_RECORD_F_SPLIT))
		abort(); /* a piece that does not end the record must be flagged */
	if (c->refuse_every && ++c->calls % c->refuse_every == 0)
		return 1; /* refused: must come again, unchanged in effect */
	c->last = consumed;
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
	if (flags & RN_LINESPLIT_EOL)
		c->out[c->out_len++] = '\n';
	/* the position is exact: the output so far is the input up to `consumed`, except that a
	 * piece cut just before a line separator has not given out that '\n' yet, and that the
	 * last line without a newline gets one as the end of its record */
	want = c->nmap[consumed];
	if (c->out_len != want &&
	    !(c->out_len + 1 == want && consumed && c->in[consumed - 1] == '\n' &&
	      !(flags & RN_LINESPLIT_EOL)) &&
	    !(c->out_len == want + 1 && consumed == c->in_len && (flags & RN_LINESPLIT_EOL) &&
	      c->in[c->in_len - 1] != '\n'))
		abort();
	if (flags & RN_LINESPLIT_EOL)
		check_record(c);
	return 0;
}

static int on_line(void *vc, const uint8_t *line, size_t len, uint32_t flags, uint64_t consumed)
{
	struct ctx *c = vc;
	unsigned mf = c->lpiece                ? RN_MULTILINE_CONT
		      : is_start(c, line, len) ? RN_MULTILINE_START
					       : 0;
	int more = (flags & RN_RECORD_F_SPLIT) && !(flags & RN_LINESPLIT_EOL);
	int rc = rn_multiline_feed(&c->ml, line, len, mf | (more ? RN_MULTILINE_MORE : 0), consumed,
				   c->now, on_rec, c);
	if (rc < 0)
		abort(); /* no ENOMEM or ETOOBIG with these caps */
	if (!rc)
		c->lpiece = more ? c->lpiece + 1 : 0;
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_linesplit s = {0};
	struct ctx c;
	size_t pos = 0, n, norm = 0;
	unsigned seed;
	int rc;

	if (size < 4)
		return 0;
	memset(&c, 0, sizeof(c));
	c.max_bytes = (size_t)(data[0] % 64) + 1;
	s.max_line = (size_t)(data[1] % c.max_bytes) + 1;
	seed = data[2];
	c.refuse_every = seed & 0x80 ? (seed & 7) + 2 : 0;
	c.rule = data[3] & 1;
	data += 4;
	size -= 4;
	c.in = data;
	c.in_len = size;
	c.ml.max_bytes = c.max_bytes;
	c.ml.timeout_us = 1000;
	c.first_record = 1;
	rn_multiline_reset(&c.ml, 0);
	c.out = malloc(size * 2 + 2);
	c.nmap = malloc((size + 1) * sizeof(*c.nmap));
	if (!c.out || !c.nmap)
		abort();
	for (size_t i = 0; i <= size; i++) {
		c.nmap[i] = norm;
		if (i < size && !(data[i] == '\r' && i + 1 < size && data[i + 1] == '\n'))
			norm++;
	}
	while (pos < size) {
		size_t used = 0;
		n = (seed % 13) + 1;
		seed = seed * 1103515245u + 12345u;
		if (n > size - pos)
			n = size - pos;
		c.fed = pos + n;
		c.now += 10;
		rc = rn_linesplit_feed(&s, data + pos, n, pos, on_line, &c, &used);
		if (rc < 0 || used > n || (rc == 0 && used != n))
			abort();
		pos += used;
		if ((seed >> 16) % 7 == 0) {
			/* no line for longer than the timeout: the pending record goes out */
			c.now += 2000;
			c.in_tick = 1;
			while (rn_multiline_tick(&c.ml, c.now, on_rec, &c) > 0)
				;
			c.in_tick = 0;
		}
	}
	c.fed = size;
	while (rn_linesplit_flush(&s, size, on_line, &c) > 0)
		;
	c.lpiece = 0; /* the partial line given out is over */
	rn_multiline_end_line(&c.ml);
	c.in_tick = 1;
	while (rn_multiline_flush(&c.ml, on_rec, &c) > 0)
		;
	if (rn_multiline_pending(&c.ml))
		abort();
	/* everything came out: the input with CRLF as LF, plus a newline ending a last line */
	if (size) {
		size_t want = norm + (data[size - 1] != '\n');
		if (c.out_len != want)
			abort();
		for (size_t i = 0, k = 0; i < size; i++) {
			if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
				continue;
			if (c.out[k++] != data[i])
				abort();
		}
	} else if (c.out_len) {
		abort();
	}
	rn_linesplit_free(&s);
	rn_multiline_free(&c.ml);
	free(c.out);
	free(c.nmap);
	return 0;
}
