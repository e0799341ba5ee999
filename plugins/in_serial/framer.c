/*
 * Serial framer; see framer.h. Held input is in[head, end); the head frame is computed by
 * the per-mode *_frame() functions from that window and the small cut state (piece,
 * skip_left, raw_done, ended), and the state moves on only in rn_framer_pop(), so a frame
 * that was not taken comes out again unchanged. Bytes are copied once, on feed; frames point
 * into the input, decoded COBS frames into `out`.
 */
#include "framer.h"

#include <stdio.h>
#include <string.h>

#include "rn_err.h"
#include "rn_mem.h"

#define DEFAULT_MAX ((size_t)64 << 10)
#define LIMIT_MAX ((size_t)64 << 20)
#define DEFAULT_GAP_US 20000

struct rn_framer {
	struct rn_framer_opts o; /* normalized: max_frame, length_bytes, idle_gap set */
	uint8_t *in;             /* cap bytes; held input is in[head, end) */
	size_t cap, head, end;
	size_t scan;  /* LINE/COBS: bytes from head known to hold no delimiter */
	uint8_t *out; /* COBS: decoded frame, max_frame bytes */
	/* Cut state. piece: dead pieces of the current oversize frame already taken (0: not
	 * inside one). skip_left/skip_len: LENGTH body bytes of an oversize frame still to hand
	 * out, and its announced length. */
	unsigned piece;
	uint64_t skip_left, skip_len;
	int64_t last_us; /* RAW: when the last byte came */
	int raw_done;    /* RAW: the held bytes are a finished frame (its gap was seen) */
	int ended;       /* finish() was called and held input remains */
	/* the head frame as last computed by next(), and what pop() does with it */
	int have;
	struct rn_frame cur;
	size_t consume;      /* input bytes it takes */
	unsigned next_piece; /* piece after pop */
	uint64_t next_skip;  /* skip_left after pop */
	char reason[128];
};

int rn_framer_create(struct rn_framer **out, const struct rn_framer_opts *o)
{
	struct rn_framer *f;
	struct rn_framer_opts n = *o;

	if (!n.max_frame)
		n.max_frame = DEFAULT_MAX;
	if (!n.length_bytes)
		n.length_bytes = 2;
	if (!n.idle_gap_us)
		n.idle_gap_us = DEFAULT_GAP_US;
	if (n.max_frame > LIMIT_MAX || n.mode > RN_FRAMER_RAW || n.idle_gap_us < 0 ||
	    (n.mode == RN_FRAMER_FIXED && (!n.frame_bytes || n.frame_bytes > n.max_frame)) ||
	    (n.length_bytes != 1 && n.length_bytes != 2 && n.length_bytes != 4))
		return RN_EINVAL;
	if (!(f = rn_calloc(1, sizeof(*f))))
		return RN_ENOMEM;
	f->o = n;
	/* room for one whole frame with its header or delimiter, plus as much again so a read
	 * can land while a frame waits to be taken */
	f->cap = 2 * n.max_frame + 16;
	if (!(f->in = rn_malloc(f->cap)) ||
	    (n.mode == RN_FRAMER_COBS && !(f->out = rn_malloc(n.max_frame)))) {
		rn_framer_destroy(f);
		return RN_ENOMEM;
	}
	*out = f;
	return 0;
}

void rn_framer_destroy(struct rn_framer *f)
{
	if (!f)
		return;
	rn_free(f->in);
	rn_free(f->out);
	rn_free(f);
}

static size_t held(const struct rn_framer *f)
{
	return f->end - f->head;
}

size_t rn_framer_room(const struct rn_framer *f)
{
	if (f->ended || (f->o.mode == RN_FRAMER_RAW && f->raw_done))
		return 0;
	return f->cap - held(f);
}

size_t rn_framer_pending(const struct rn_framer *f)
{
	return held(f);
}

size_t rn_framer_feed(struct rn_framer *f, const uint8_t *p, size_t len, int64_t now_us)
{
	size_t take;

	if (f->o.mode == RN_FRAMER_RAW && held(f) && !f->raw_done &&
	    now_us - f->last_us >= f->o.idle_gap_us)
		f->raw_done = 1; /* the gap came before these bytes: the held ones are a frame */
	if (!len || !(take = rn_framer_room(f)))
		return 0;
	if (take > len)
		take = len;
	if (f->end + take > f->cap) {
		memmove(f->in, f->in + f->head, held(f));
		f->end -= f->head;
		f->head = 0;
	}
	memcpy(f->in + f->end, p, take);
	f->end += take;
	f->last_us = now_us;
	f->have = 0; /* recomputed from the same state: the same frame, new pointers */
	return take;
}

int rn_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen, char *err,
		   size_t errcap)
{
	size_t i = 0, o = 0;
	while (i < len) {
		size_t code = in[i++];
		if (code == 0) {
			snprintf(err, errcap, "bad cobs frame: zero byte at %zu", i - 1);
			return RN_EINVAL;
		}
		if (code - 1 > len - i) {
			snprintf(err, errcap,
				 "bad cobs frame: code 0x%02zx at %zu runs %zu bytes past the end",
				 code, i - 1, code - 1 - (len - i));
			return RN_EINVAL;
		}
		for (size_t k = 0; k < code - 1; k++) {
			if (!in[i + k]) {
				snprintf(err, errcap, "bad cobs frame: zero byte at %zu", i + k);
				return RN_EINVAL;
			}
		}
		memcpy(out + o, in + i, code - 1);
		o += code - 1;
		i += code - 1;
		if (code != 0xFF && i < len)
			out[o++] = 0;
	}
	*outlen = o;
	return 0;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* NMEA 0183: "$" or "!", fields, "*HH" at the very end, HH = XOR of the bytes between. NULL
 * when good, else the reason (in f->reason). */
static const char *nmea_check(struct rn_framer *f, const uint8_t *p, size_t len)
{
	unsigned x = 0;
	int hi, lo;
	if (!len || (p[0] != '$' && p[0] != '!'))
		return "not an nmea sentence (no leading $ or !)";
	if (len < 4 || p[len - 3] != '*')
		return "nmea checksum missing";
	hi = hexval(p[len - 2]);
	lo = hexval(p[len - 1]);
	if (hi < 0 || lo < 0)
		return "nmea checksum missing (no two hex digits after *)";
	for (size_t i = 1; i < len - 3; i++)
		x ^= p[i];
	if (x != (unsigned)(hi << 4 | lo)) {
		snprintf(f->reason, sizeof(f->reason), "nmea checksum mismatch: want %02X got %02X",
			 x, (unsigned)(hi << 4 | lo));
		return f->reason;
	}
	return NULL;
}

/* Sets the head frame: `len` bytes at `p`, taking `consume` input bytes. */
static int set(struct rn_framer *f, const uint8_t *p, size_t len, size_t consume,
	       const char *dead_reason, unsigned next_piece, uint64_t next_skip)
{
	f->cur.data = p;
	f->cur.len = len;
	f->cur.dead = dead_reason != NULL;
	f->cur.reason = dead_reason;
	f->consume = consume;
	f->next_piece = next_piece;
	f->next_skip = next_skip;
	f->have = 1;
	return 1;
}

/* A dead piece of an oversize frame: the next `len` bytes. `last` ends the frame. */
static int piece(struct rn_framer *f, size_t len, size_t consume, int last)
{
	snprintf(f->reason, sizeof(f->reason), "frame longer than max_frame %zu: piece %u%s",
		 f->o.max_frame, f->piece + 1, last ? ", last" : "");
	return set(f, f->in + f->head, len, consume, f->reason, last ? 0 : f->piece + 1, 0);
}

/* Input ended inside a frame: the rest is one dead frame (after pieces if it is long). */
static int incomplete(struct rn_framer *f, const uint8_t *p, size_t len)
{
	size_t m = f->o.max_frame;
	if (len > m)
		return piece(f, m, m, 0);
	if (f->piece)
		snprintf(f->reason, sizeof(f->reason),
			 "frame longer than max_frame %zu: piece %u, cut when the input ended", m,
			 f->piece + 1);
	else
		snprintf(f->reason, sizeof(f->reason),
			 "incomplete frame when the input ended (%zu bytes)", len);
	return set(f, p, len, held(f), f->reason, 0, 0);
}

static int line_frame(struct rn_framer *f)
{
	const uint8_t *p = f->in + f->head;
	size_t avail = held(f), m = f->o.max_frame;
	size_t win = avail < m + 2 ? avail : m + 2;
	const uint8_t *lf = f->scan < win ? memchr(p + f->scan, '\n', win - f->scan) : NULL;
	if (lf) {
		size_t i = (size_t)(lf - p);
		size_t c = i && p[i - 1] == '\r' ? i - 1 : i;
		if (c <= m) {
			if (f->piece)
				return piece(f, c, i + 1, 1);
			return set(f, p, c, i + 1, f->o.nmea_checksum ? nmea_check(f, p, c) : NULL,
				   0, 0);
		}
		return piece(f, m, m, 0);
	}
	f->scan = win;
	if (avail >= m + 2)
		return piece(f, m, m, 0);
	if (f->ended && avail)
		return incomplete(f, p, avail);
	return 0;
}

static int cobs_frame(struct rn_framer *f)
{
	const uint8_t *p;
	size_t avail, m = f->o.max_frame, win, i, olen;
	const uint8_t *z;
again:
	p = f->in + f->head;
	avail = held(f);
	win = avail < m + 1 ? avail : m + 1;
	z = f->scan < win ? memchr(p + f->scan, 0, win - f->scan) : NULL;
	if (!z) {
		f->scan = win;
		if (avail >= m + 1)
			return piece(f, m, m, 0);
		if (f->ended && avail)
			return incomplete(f, p, avail);
		return 0;
	}
	i = (size_t)(z - p);
	if (i == 0) {
		/* an empty frame: a delimiter alone (senders often lead with one to resync) */
		f->head++;
		f->scan = 0;
		goto again;
	}
	if (f->piece)
		return piece(f, i, i + 1, 1);
	if (rn_cobs_decode(p, i, f->out, &olen, f->reason, sizeof(f->reason)))
		return set(f, p, i, i + 1, f->reason, 0, 0);
	return set(f, f->out, olen, i + 1, NULL, 0, 0);
}

static int length_frame(struct rn_framer *f)
{
	const uint8_t *p = f->in + f->head;
	size_t avail = held(f), m = f->o.max_frame, h = f->o.length_bytes;
	uint64_t len = 0, take;

	if (f->skip_left) {
		/* the body of an oversize frame, in dead pieces */
		int cut = 0;
		take = f->skip_left < m ? f->skip_left : m;
		if (avail < take) {
			if (!f->ended || !avail)
				return 0;
			take = avail;
			cut = 1;
		}
		snprintf(f->reason, sizeof(f->reason),
			 "length %llu over max_frame %zu: piece %u of %llu%s",
			 (unsigned long long)f->skip_len, m, f->piece + 1,
			 (unsigned long long)((f->skip_len + m - 1) / m),
			 cut ? ", cut when the input ended" : "");
		return set(f, p, (size_t)take, (size_t)take, f->reason, f->piece + 1,
			   cut ? 0 : f->skip_left - take);
	}
	if (avail < h) {
		if (f->ended && avail)
			return incomplete(f, p, avail);
		return 0;
	}
	for (size_t i = 0; i < h; i++)
		len = len << 8 | p[i];
	if (len > m) {
		/* the header goes; the body follows in pieces (next_piece/next_skip) */
		f->skip_len = len;
		take = m;
		if (avail - h < take) {
			if (!f->ended)
				return 0;
			take = avail - h;
		}
		snprintf(f->reason, sizeof(f->reason),
			 "length %llu over max_frame %zu: piece 1 of %llu%s",
			 (unsigned long long)len, m, (unsigned long long)((len + m - 1) / m),
			 take < m ? ", cut when the input ended" : "");
		if (take < m)
			return set(f, p + h, (size_t)take, avail, f->reason, 0, 0);
		return set(f, p + h, (size_t)take, h + (size_t)take, f->reason, 1, len - take);
	}
	if (avail - h >= len)
		return set(f, p + h, (size_t)len, h + (size_t)len, NULL, 0, 0);
	if (f->ended) {
		snprintf(f->reason, sizeof(f->reason),
			 "incomplete frame when the input ended: length %llu, got %zu bytes",
			 (unsigned long long)len, avail - h);
		return set(f, p + h, avail - h, avail, f->reason, 0, 0);
	}
	return 0;
}

static int raw_frame(struct rn_framer *f, int64_t now_us)
{
	const uint8_t *p = f->in + f->head;
	size_t avail = held(f), m = f->o.max_frame;
	if (avail > m) {
		snprintf(f->reason, sizeof(f->reason),
			 "frame longer than max_frame %zu (no idle gap): piece %u", m,
			 f->piece + 1);
		return set(f, p, m, m, f->reason, f->piece + 1, 0);
	}
	if (!avail)
		return 0;
	if (!f->raw_done && !f->ended && now_us - f->last_us >= f->o.idle_gap_us)
		f->raw_done = 1;
	if (!f->raw_done && !f->ended)
		return 0;
	if (f->piece) {
		snprintf(f->reason, sizeof(f->reason),
			 "frame longer than max_frame %zu (no idle gap): piece %u, last", m,
			 f->piece + 1);
		return set(f, p, avail, avail, f->reason, 0, 0);
	}
	return set(f, p, avail, avail, NULL, 0, 0);
}

int rn_framer_next(struct rn_framer *f, int64_t now_us, struct rn_frame *fr)
{
	int r = 0;
	if (!f->have) {
		switch (f->o.mode) {
		case RN_FRAMER_LINE: r = line_frame(f); break;
		case RN_FRAMER_FIXED:
			if (held(f) >= f->o.frame_bytes)
				r = set(f, f->in + f->head, f->o.frame_bytes, f->o.frame_bytes,
					NULL, 0, 0);
			else if (f->ended && held(f))
				r = incomplete(f, f->in + f->head, held(f));
			break;
		case RN_FRAMER_LENGTH: r = length_frame(f); break;
		case RN_FRAMER_COBS: r = cobs_frame(f); break;
		case RN_FRAMER_RAW: r = raw_frame(f, now_us); break;
		}
		if (!r) {
			/* the input ended and all of it is out: feeding may resume */
			if (f->ended && !held(f))
				rn_framer_reset(f);
			return 0;
		}
	}
	*fr = f->cur;
	return 1;
}

void rn_framer_pop(struct rn_framer *f)
{
	if (!f->have)
		return;
	f->head += f->consume;
	f->scan = 0;
	f->piece = f->next_piece;
	f->skip_left = f->next_skip;
	f->have = 0;
	if (!held(f)) {
		f->head = f->end = 0;
		if (f->o.mode == RN_FRAMER_RAW)
			f->raw_done = 0;
		if (f->ended) /* cut state dies with the input */
			rn_framer_reset(f);
	}
}

void rn_framer_finish(struct rn_framer *f)
{
	f->have = 0;
	if (held(f))
		f->ended = 1;
	else
		rn_framer_reset(f);
}

void rn_framer_reset(struct rn_framer *f)
{
	f->head = f->end = f->scan = 0;
	f->piece = 0;
	f->skip_left = f->skip_len = 0;
	f->raw_done = 0;
	f->ended = 0;
	f->have = 0;
}
