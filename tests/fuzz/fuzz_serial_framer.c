/*
 * Fuzz target for the serial framer (plugins/in_serial/framer.c). Input: byte 0 picks the
 * mode (low 3 bits, mod 5), NMEA checking (bit 3) and the length header size (bits 4-5);
 * byte 1 picks max_frame (1..64, or 4K when 0) and the fixed frame size; byte 2 seeds the
 * read sizes, the time between reads (so RAW idle gaps fall anywhere) and how often a frame
 * is looked at twice before it is taken. The rest is the serial stream; at its end the
 * input is finished and drained. Checks: every frame is at most max_frame bytes; dead frames
 * and only they have a reason; a frame looked at twice is the same frame; feed takes nothing
 * only when there is a frame to take; nothing is left held at the end; and the bytes are
 * accounted for — LINE: frames hold every byte except each LF and the CR before it (no frame
 * holds an LF); FIXED and RAW: frames hold exactly the input; LENGTH: exactly the input less
 * its headers (counted by an independent walk); COBS: good frames re-encode within
 * max_frame and decode back to themselves.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct rn_framer *f;
	struct rn_framer_opts o;
	uint64_t sum; /* bytes in frames handed out */
	unsigned seed;
	uint8_t enc[8192], dec[8192];
};

static unsigned rnd(struct run *r)
{
	r->seed = r->seed * 1103515245u + 12345u;
	return r->seed >> 16;
}

static size_t cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t o = 1, code_at = 0;
	uint8_t code = 1;
	for (size_t i = 0; i < len; i++) {
		if (in[i]) {
			out[o++] = in[i];
			code++;
		}
		if (!in[i] || code == 0xFF) {
			out[code_at] = code;
			code = 1;
			code_at = o++;
		}
	}
	out[code_at] = code;
	return o;
}

static void drain(struct run *r, int64_t now)
{
	struct rn_frame fr, again;
	while (rn_framer_next(r->f, now, &fr)) {
		if (fr.len > r->o.max_frame || (fr.dead != 0) != (fr.reason != NULL) ||
		    (fr.len && !fr.data))
			abort();
		if (rnd(r) % 4 == 0) {
			/* not taken this time: the same frame must come again */
			if (!rn_framer_next(r->f, now, &again) || again.len != fr.len ||
			    again.dead != fr.dead ||
			    (fr.len && memcmp(again.data, fr.data, fr.len)))
				abort();
		}
		if (r->o.mode == RN_FRAMER_LINE && fr.len && memchr(fr.data, '\n', fr.len))
			abort();
		if (r->o.mode == RN_FRAMER_COBS && !fr.dead) {
			size_t e = cobs_encode(fr.data, fr.len, r->enc), d;
			char err[128];
			if (e > r->o.max_frame ||
			    rn_cobs_decode(r->enc, e, r->dec, &d, err, sizeof(err)) ||
			    d != fr.len || memcmp(r->dec, fr.data, d))
				abort();
		}
		r->sum += fr.len;
		rn_framer_pop(r->f);
	}
}

/* Body bytes of LENGTH framing with an h-byte header: the input less its headers. */
static uint64_t length_bodies(const uint8_t *p, size_t n, unsigned h)
{
	uint64_t sum = 0;
	size_t pos = 0;
	while (pos < n) {
		uint64_t len = 0;
		if (n - pos < h)
			return sum + (n - pos); /* a cut header comes out as a dead frame */
		for (unsigned i = 0; i < h; i++)
			len = len << 8 | p[pos + i];
		pos += h;
		if (len > n - pos)
			len = n - pos;
		sum += len;
		pos += len;
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned hdr[] = {1, 2, 4, 2};
	struct run *r;
	size_t pos = 0;
	int64_t now = 0;
	uint64_t want;

	if (size < 3)
		return 0;
	if (!(r = calloc(1, sizeof(*r))))
		abort();
	r->o.mode = (enum rn_framer_mode)((data[0] & 7) % 5);
	r->o.nmea_checksum = (data[0] >> 3) & 1;
	r->o.length_bytes = hdr[(data[0] >> 4) & 3];
	r->o.max_frame = data[1] % 64 ? data[1] % 64 : 4096;
	r->o.frame_bytes = (size_t)(data[1] >> 6) + 1 <= r->o.max_frame ? (data[1] >> 6) + 1u : 1;
	r->o.idle_gap_us = 10000;
	r->seed = data[2];
	data += 3;
	size -= 3;
	if (rn_framer_create(&r->f, &r->o))
		abort();
	while (pos < size) {
		size_t n = rnd(r) % 17 + 1, t;
		if (n > size - pos)
			n = size - pos;
		/* 0..15 ms between reads: gaps of 10 ms and more end RAW frames */
		now += (int64_t)(rnd(r) % 16) * 1000;
		t = rn_framer_feed(r->f, data + pos, n, now);
		if (t > n)
			abort();
		if (!t) {
			struct rn_frame fr;
			if (!rn_framer_next(r->f, now, &fr))
				abort(); /* full with no frame to take: stuck */
		}
		pos += t;
		drain(r, now);
	}
	rn_framer_finish(r->f);
	drain(r, now);
	if (rn_framer_pending(r->f) || rn_framer_room(r->f) == 0)
		abort();
	switch (r->o.mode) {
	case RN_FRAMER_LINE:
		want = size;
		for (size_t i = 0; i < size; i++)
			if (data[i] == '\n')
				want -= i && data[i - 1] == '\r' ? 2 : 1;
		break;
	case RN_FRAMER_LENGTH: want = length_bodies(data, size, r->o.length_bytes); break;
	case RN_FRAMER_COBS:
		want = r->sum; /* decoded sizes differ; checked per frame above */
		break;
	default: want = size; break;
	}
	if (r->sum != want)
		abort();
	rn_framer_destroy(r->f);
	free(r);
	return 0;
}
