/*
 * Line splitter; see linesplit.h. The only copies are of a line that spans two feeds.
 */
#include "linesplit.h"

#include <string.h>

#include "plugin.h"
#include "rn_err.h"

#define DEFAULT_MAX ((size_t)64 << 10)

static size_t maxl(const struct rn_linesplit *s)
{
	return s->max_line ? s->max_line : DEFAULT_MAX;
}

/* Emits pieces of `part` while it holds more than max_line bytes. */
static int emit_pieces(struct rn_linesplit *s, uint64_t end_of_part, rn_line_fn fn, void *ctx)
{
	size_t m = maxl(s);
	while (s->part.len > m) {
		uint64_t consumed = end_of_part - (s->part.len - m);
		int rc = fn(ctx, s->part.data, m, RN_RECORD_F_SPLIT, consumed);
		if (rc)
			return rc;
		rn_buf_consume(&s->part, m);
		s->in_split = 1;
	}
	return 0;
}

/* Appends up to the bytes that make `part` hold max_line + 1 (one byte more than a piece,
 * so a CR or LF right after a full piece is seen before the piece goes out). */
static size_t take_size(const struct rn_linesplit *s, size_t avail)
{
	size_t m = maxl(s);
	if (s->part.len + avail <= m + 1)
		return avail;
	return m + 1 > s->part.len ? m + 1 - s->part.len : 1;
}

/*
 * `off` always counts the input bytes taken: handed out, or held in `part`. When the
 * callback stops us, *used = off, so the caller feeds exactly the untaken rest again and no
 * byte is seen twice; pieces still due in `part` go out first on the next feed or flush.
 */
int rn_linesplit_feed(struct rn_linesplit *s, const uint8_t *p, size_t len, uint64_t base,
		      rn_line_fn fn, void *ctx, size_t *used)
{
	size_t off = 0, m = maxl(s);
	int rc = 0;

	if (!s->part.max)
		s->part.max = m * 2 + 16;
	/* pieces left over from a feed the callback stopped; part is the tail of what was fed */
	if ((rc = emit_pieces(s, base, fn, ctx)))
		goto out;
	while (off < len) {
		const uint8_t *nl = memchr(p + off, '\n', len - off);
		if (!nl) {
			/* keep the tail; emit pieces if it grew past max_line */
			while (off < len) {
				size_t take = take_size(s, len - off);
				if ((rc = rn_buf_append(&s->part, p + off, take)))
					goto out;
				off += take;
				if ((rc = emit_pieces(s, base + off, fn, ctx)))
					goto out;
			}
			break;
		}
		size_t llen = (size_t)(nl - (p + off)), line_end = off + llen;
		uint64_t consumed = base + line_end + 1;
		if (s->part.len == 0 && llen <= m) {
			/* fast path: the whole line is in the input */
			size_t l = llen && p[line_end - 1] == '\r' ? llen - 1 : llen;
			if ((rc = fn(ctx, p + off, l,
				     (s->in_split ? RN_RECORD_F_SPLIT : 0) | RN_LINESPLIT_EOL,
				     consumed)))
				goto out;
			off = line_end + 1;
			s->in_split = 0;
			continue;
		}
		/* the line continues a partial one or is long: go through `part` */
		while (off < line_end) {
			size_t take = take_size(s, line_end - off);
			if ((rc = rn_buf_append(&s->part, p + off, take)))
				goto out;
			off += take;
			if (off < line_end && (rc = emit_pieces(s, base + off, fn, ctx)))
				goto out;
		}
		size_t l = s->part.len;
		if (l && s->part.data[l - 1] == '\r')
			l--;
		if (l > m) { /* one more piece before the end of the line */
			if ((rc = emit_pieces(s, consumed - 1, fn, ctx)))
				goto out;
			l = s->part.len && s->part.data[s->part.len - 1] == '\r' ? s->part.len - 1
										 : s->part.len;
		}
		if ((rc = fn(ctx, s->part.data, l,
			     (s->in_split ? RN_RECORD_F_SPLIT : 0) | RN_LINESPLIT_EOL, consumed)))
			goto out;
		rn_buf_reset(&s->part);
		s->in_split = 0;
		off = line_end + 1;
	}
out:
	*used = off;
	return rc;
}

int rn_linesplit_flush(struct rn_linesplit *s, uint64_t end, rn_line_fn fn, void *ctx)
{
	int rc;
	if (!s->part.len)
		return 0;
	if ((rc = emit_pieces(s, end, fn, ctx)))
		return rc;
	rc = fn(ctx, s->part.data, s->part.len, s->in_split ? RN_RECORD_F_SPLIT : 0, end);
	if (!rc) {
		rn_buf_reset(&s->part);
		s->in_split = 0;
	}
	return rc;
}

void rn_linesplit_reset(struct rn_linesplit *s)
{
	rn_buf_reset(&s->part);
	s->in_split = 0;
}

void rn_linesplit_free(struct rn_linesplit *s)
{
	rn_buf_free(&s->part);
	s->in_split = 0;
}
