/*
 * Unit tests for plugins/in_serial/framer.c, on plain buffers: every mode (line with LF/CRLF
 * and binary bytes, fixed, length with 1/2/4 byte headers, COBS, raw) gives the same frames
 * for every way the input is split into two reads and for one byte per read; oversize input
 * comes out as dead pieces of at most max_frame bytes with their reasons, and the framer
 * finds the next good frame after them; bad COBS and NMEA sentences with a bad, missing or
 * malformed checksum are dead letters with the exact reason; raw frames end exactly at the
 * idle gap (times are passed in, no clock); a frame that is not popped comes out again, also
 * after more input; a full framer takes nothing and has a frame; finish() turns a partial
 * frame into a dead letter and feeding resumes after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "framer.h"
#include "rn_err.h"
#include "rn_mem.h"

#define MAXF 512

/* Frames collected from a framer, as copies. */
struct got {
	uint8_t *data[MAXF];
	size_t len[MAXF];
	int dead[MAXF];
	char reason[MAXF][160];
	size_t n;
};

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

static void take(struct got *g, const struct rn_frame *fr, size_t max_frame)
{
	assert_true(g->n < MAXF);
	assert_true(fr->len <= max_frame);
	assert_int_equal(fr->dead, fr->reason != NULL);
	g->data[g->n] = malloc(fr->len + 1);
	if (fr->len)
		memcpy(g->data[g->n], fr->data, fr->len);
	g->len[g->n] = fr->len;
	g->dead[g->n] = fr->dead;
	snprintf(g->reason[g->n], sizeof(g->reason[0]), "%s", fr->reason ? fr->reason : "");
	g->n++;
}

static void drain(struct rn_framer *f, int64_t now, struct got *g, size_t max_frame)
{
	struct rn_frame fr;
	while (rn_framer_next(f, now, &fr)) {
		take(g, &fr, max_frame);
		rn_framer_pop(f);
	}
}

/* Feeds all of p at `now`, taking frames whenever the framer is full. */
static void feed(struct rn_framer *f, const void *p, size_t len, int64_t now, struct got *g,
		 size_t max_frame)
{
	const uint8_t *b = p;
	while (len) {
		size_t t = rn_framer_feed(f, b, len, now);
		b += t;
		len -= t;
		size_t before = g->n;
		drain(f, now, g, max_frame);
		/* taking nothing is allowed only when there was a frame to take */
		assert_true(t > 0 || g->n > before);
	}
}

struct want {
	const char *data;
	size_t len;
	int dead;
	const char *reason; /* exact, for dead frames */
};

static void check(const struct got *g, const struct want *w, size_t n)
{
	assert_int_equal(g->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g->len[i], w[i].len);
		assert_memory_equal(g->data[i], w[i].data, w[i].len);
		assert_int_equal(g->dead[i], w[i].dead);
		if (w[i].dead)
			assert_string_equal(g->reason[i], w[i].reason);
	}
}

/*
 * Runs `in` through a fresh framer with options o: once whole, once split at every byte
 * boundary into two reads, once a byte per read; calls finish() at the end when `fin`.
 * Every run must give exactly `w`.
 */
static void every_split(const struct rn_framer_opts *o, const void *in, size_t len,
			const struct want *w, size_t n, int fin)
{
	size_t max = o->max_frame ? o->max_frame : (size_t)64 << 10;
	for (size_t k = 0; k <= len + 1; k++) {
		struct rn_framer *f;
		struct got g = {0};
		assert_int_equal(rn_framer_create(&f, o), 0);
		if (k <= len) {
			feed(f, in, k, 0, &g, max);
			feed(f, (const uint8_t *)in + k, len - k, 0, &g, max);
		} else {
			for (size_t i = 0; i < len; i++)
				feed(f, (const uint8_t *)in + i, 1, 0, &g, max);
		}
		if (fin)
			rn_framer_finish(f);
		drain(f, 0, &g, max);
		check(&g, w, n);
		if (fin)
			assert_int_equal(rn_framer_pending(f), 0);
		got_free(&g);
		rn_framer_destroy(f);
	}
}

#define W(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1, 0, NULL                                                          \
	}
#define D(s, r)                                                                                    \
	{                                                                                          \
		s, sizeof(s) - 1, 1, r                                                             \
	}
#define N(a) (sizeof(a) / sizeof(a[0]))

static void test_line(void **state)
{
	static const char in[] = "one\ntwo\r\n\n\r\nbin\xff\xfe\x00z\nlast\r";
	static const struct want w[] = {
		W("one"),
		W("two"),
		W(""),
		W(""),
		{"bin\xff\xfe\x00z", 7, 0, NULL},
		D("last\r", "incomplete frame when the input ended (5 bytes)"),
	};
	struct rn_framer_opts o = {.mode = RN_FRAMER_LINE, .max_frame = 32};
	(void)state;
	every_split(&o, in, sizeof(in) - 1, w, N(w), 1);
	/* without finish the partial line stays held */
	every_split(&o, in, sizeof(in) - 1, w, N(w) - 1, 0);
}

static void test_line_oversize(void **state)
{
	/* max 8: a 20-byte line is cut 8+8+4; a line of exactly 8 with CRLF is good; then 9 */
	static const char in[] = "abcdefghijklmnopqrst\r\n12345678\r\nxyz\n123456789\n";
	static const struct want w[] = {
		D("abcdefgh", "frame longer than max_frame 8: piece 1"),
		D("ijklmnop", "frame longer than max_frame 8: piece 2"),
		D("qrst", "frame longer than max_frame 8: piece 3, last"),
		W("12345678"),
		W("xyz"),
		D("12345678", "frame longer than max_frame 8: piece 1"),
		D("9", "frame longer than max_frame 8: piece 2, last"),
	};
	struct rn_framer_opts o = {.mode = RN_FRAMER_LINE, .max_frame = 8};
	(void)state;
	every_split(&o, in, sizeof(in) - 1, w, N(w), 0);
}

static void test_nmea(void **state)
{
	/* $GPGGA,1 -> XOR of "GPGGA,1" = 0x4B */
	static const char in[] = "$GPGGA,1*4B\r\n"
				 "$GPGGA,1*4b\n"
				 "$GPGGA,1*3B\r\n"
				 "$GPGGA,1\r\n"
				 "$GPGGA,1*4\n"
				 "$GPGGA,1*XY\n"
				 "hello\n"
				 "\n"
				 "!AIVDM,1*4B\n"
				 "$GPGGA,1*4B junk\n"
				 "\xff$GPGGA*\n";
	static const struct want w[] = {
		W("$GPGGA,1*4B"),
		W("$GPGGA,1*4b"),
		D("$GPGGA,1*3B", "nmea checksum mismatch: want 4B got 3B"),
		D("$GPGGA,1", "nmea checksum missing"),
		D("$GPGGA,1*4", "nmea checksum missing"),
		D("$GPGGA,1*XY", "nmea checksum missing (no two hex digits after *)"),
		D("hello", "not an nmea sentence (no leading $ or !)"),
		D("", "not an nmea sentence (no leading $ or !)"),
		D("!AIVDM,1*4B", "nmea checksum mismatch: want 4A got 4B"),
		D("$GPGGA,1*4B junk", "nmea checksum missing"),
		D("\xff$GPGGA*", "not an nmea sentence (no leading $ or !)"),
	};
	struct rn_framer_opts o = {.mode = RN_FRAMER_LINE, .max_frame = 64, .nmea_checksum = 1};
	(void)state;
	/* the expected "want" of !AIVDM,1 is computed here, not trusted */
	unsigned x = 0;
	for (const char *c = "AIVDM,1"; *c; c++)
		x ^= (unsigned char)*c;
	assert_int_equal(x, 0x4A);
	every_split(&o, in, sizeof(in) - 1, w, N(w), 0);
}

static void test_fixed(void **state)
{
	static const char in[] = "abcdefghij";
	static const struct want w[] = {
		W("abcd"),
		W("efgh"),
		D("ij", "incomplete frame when the input ended (2 bytes)"),
	};
	struct rn_framer_opts o = {.mode = RN_FRAMER_FIXED, .max_frame = 16, .frame_bytes = 4};
	struct rn_framer *f;
	(void)state;
	every_split(&o, in, sizeof(in) - 1, w, N(w), 1);
	o.frame_bytes = 0;
	assert_int_equal(rn_framer_create(&f, &o), RN_EINVAL);
	o.frame_bytes = 17;
	assert_int_equal(rn_framer_create(&f, &o), RN_EINVAL);
}

static void test_length(void **state)
{
	/* 1-byte headers, max 4: "ab", empty, "wxyz", then 10 bytes over the max, then "ok" */
	static const char in1[] = "\x02"
				  "ab"
				  "\x00"
				  "\x04"
				  "wxyz"
				  "\x0a"
				  "0123456789"
				  "\x02"
				  "ok";
	static const struct want w1[] = {
		W("ab"),
		W(""),
		W("wxyz"),
		D("0123", "length 10 over max_frame 4: piece 1 of 3"),
		D("4567", "length 10 over max_frame 4: piece 2 of 3"),
		D("89", "length 10 over max_frame 4: piece 3 of 3"),
		W("ok"),
	};
	/* 2-byte and 4-byte big-endian headers; a 0x0100 = 256-byte frame */
	uint8_t in2[2 + 256 + 2 + 3], in4[4 + 3 + 4 + 300 + 4 + 2];
	char big[300];
	struct rn_framer_opts o = {.mode = RN_FRAMER_LENGTH, .max_frame = 4, .length_bytes = 1};
	struct rn_framer *f;
	(void)state;
	every_split(&o, in1, sizeof(in1) - 1, w1, N(w1), 0);

	for (int i = 0; i < 300; i++)
		big[i] = (char)('a' + i % 26);
	in2[0] = 1;
	in2[1] = 0;
	memcpy(in2 + 2, big, 256);
	memcpy(in2 + 258, "\x00\x03xyz", 5);
	struct want w2[] = {{big, 256, 0, NULL}, W("xyz")};
	o = (struct rn_framer_opts){.mode = RN_FRAMER_LENGTH, .max_frame = 256, .length_bytes = 2};
	every_split(&o, in2, sizeof(in2), w2, N(w2), 0);

	memcpy(in4,
	       "\x00\x00\x00\x03"
	       "abc"
	       "\x00\x00\x01\x2c",
	       11);
	memcpy(in4 + 11, big, 300);
	memcpy(in4 + 311,
	       "\x00\x00\x00\x02"
	       "hi",
	       6);
	struct want w4[] = {
		W("abc"),
		{big, 128, 1, "length 300 over max_frame 128: piece 1 of 3"},
		{big + 128, 128, 1, "length 300 over max_frame 128: piece 2 of 3"},
		{big + 256, 44, 1, "length 300 over max_frame 128: piece 3 of 3"},
		W("hi"),
	};
	o = (struct rn_framer_opts){.mode = RN_FRAMER_LENGTH, .max_frame = 128, .length_bytes = 4};
	every_split(&o, in4, sizeof(in4), w4, N(w4), 0);

	/* the input ends inside a header, inside a body, inside an oversize body */
	static const struct want wa[] = {
		W("abc"), D("\x00\x00", "incomplete frame when the input ended (2 bytes)")};
	every_split(&o,
		    "\x00\x00\x00\x03"
		    "abc"
		    "\x00\x00",
		    9, wa, N(wa), 1);
	static const struct want wb[] = {
		D("ab", "incomplete frame when the input ended: length 3, got 2 bytes")};
	every_split(&o,
		    "\x00\x00\x00\x03"
		    "ab",
		    6, wb, N(wb), 1);
	struct want wc[] = {
		{big, 128, 1, "length 300 over max_frame 128: piece 1 of 3"},
		{big + 128, 10, 1,
		 "length 300 over max_frame 128: piece 2 of 3, cut when the input ended"},
	};
	uint8_t inc[4 + 138];
	memcpy(inc, "\x00\x00\x01\x2c", 4);
	memcpy(inc + 4, big, 138);
	every_split(&o, inc, sizeof(inc), wc, N(wc), 1);

	o.length_bytes = 3;
	assert_int_equal(rn_framer_create(&f, &o), RN_EINVAL);
}

/* COBS encoder for the tests (the framer only decodes). Returns the encoded length. */
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

static void test_cobs(void **state)
{
	uint8_t in[2048], dec[600], enc[700];
	size_t n = 0, e, dl;
	char err[128];
	struct want w[6];
	uint8_t payloads[4][600];
	size_t plen[4] = {5, 1, 600, 3};
	(void)state;
	/* payloads with zeros, a lone zero, a long one (runs of 254+), and a plain one */
	memcpy(payloads[0], "\x11\x00\x22\x00\x00", 5);
	payloads[1][0] = 0;
	for (int i = 0; i < 600; i++)
		payloads[2][i] = (uint8_t)(i % 300 == 0 ? 0 : i);
	memcpy(payloads[3], "abc", 3);
	in[n++] = 0; /* leading delimiter: empty frame, skipped */
	for (int k = 0; k < 4; k++) {
		e = cobs_encode(payloads[k], plen[k], enc);
		assert_int_equal(rn_cobs_decode(enc, e, dec, &dl, err, sizeof(err)), 0);
		assert_int_equal(dl, plen[k]);
		assert_memory_equal(dec, payloads[k], dl);
		memcpy(in + n, enc, e);
		n += e;
		in[n++] = 0;
		if (k == 1)
			in[n++] = 0; /* two delimiters in a row */
		w[k] = (struct want){(const char *)payloads[k], plen[k], 0, NULL};
	}
	/* a bad frame: code 0x05 with only two bytes after it; then a good one */
	memcpy(in + n, "\x05\x41\x42\x00\x02\x43\x00", 7);
	n += 7;
	w[4] = (struct want)D("\x05\x41\x42", "bad cobs frame: code 0x05 at 0 runs 2 bytes past "
					      "the end");
	w[5] = (struct want)W("C");
	struct rn_framer_opts o = {.mode = RN_FRAMER_COBS, .max_frame = 700};
	every_split(&o, in, n, w, 6, 0);
	assert_int_equal(rn_cobs_decode((const uint8_t *)"\x03\x41", 2, dec, &dl, err, sizeof(err)),
			 RN_EINVAL);
	assert_string_equal(err, "bad cobs frame: code 0x03 at 0 runs 1 bytes past the end");
	assert_int_equal(rn_cobs_decode((const uint8_t *)"\x01", 1, dec, &dl, err, sizeof(err)), 0);
	assert_int_equal(dl, 0);
}

static void test_cobs_oversize(void **state)
{
	/* max 8 encoded bytes: a 12-byte encoded frame is cut 8+4, then a good frame */
	static const char in[] = "\x0c"
				 "abcdefghijk"
				 "\x00"
				 "\x03xy"
				 "\x00"
				 "\x01\x01"
				 "\x00";
	static const struct want w[] = {
		D("\x0c"
		  "abcdefg",
		  "frame longer than max_frame 8: piece 1"),
		D("hijk", "frame longer than max_frame 8: piece 2, last"),
		W("xy"),
		{"\x00", 1, 0, NULL},
	};
	struct rn_framer_opts o = {.mode = RN_FRAMER_COBS, .max_frame = 8};
	(void)state;
	every_split(&o, in, sizeof(in) - 1, w, N(w), 0);
}

static void test_raw_gap(void **state)
{
	struct rn_framer_opts o = {.mode = RN_FRAMER_RAW, .max_frame = 64, .idle_gap_us = 20000};
	struct rn_framer *f;
	struct rn_frame fr;
	struct got g = {0};
	(void)state;
	assert_int_equal(rn_framer_create(&f, &o), 0);
	/* bytes at 0, 5 and 24 ms: gaps under 20 ms keep one frame */
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"ab", 2, 0), 2);
	assert_int_equal(rn_framer_next(f, 19999, &fr), 0);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"cd", 2, 5000), 2);
	assert_int_equal(rn_framer_next(f, 24999, &fr), 0);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"e", 1, 24000), 1);
	/* the gap is measured from the last byte: 20 ms after 24 ms, not a µs earlier */
	assert_int_equal(rn_framer_next(f, 43999, &fr), 0);
	assert_int_equal(rn_framer_next(f, 44000, &fr), 1);
	assert_int_equal(fr.len, 5);
	assert_memory_equal(fr.data, "abcde", 5);
	assert_int_equal(fr.dead, 0);
	/* not popped: the same frame again, and no byte is taken into it */
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"x", 1, 50000), 0);
	assert_int_equal(rn_framer_next(f, 50000, &fr), 1);
	assert_int_equal(fr.len, 5);
	rn_framer_pop(f);
	assert_int_equal(rn_framer_next(f, 90000, &fr), 0);

	/* a gap seen only by the next feed still ends the frame before the new bytes */
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"12", 2, 100000), 2);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"34", 2, 120000), 0);
	drain(f, 120000, &g, 64);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"34", 2, 120000), 2);
	drain(f, 139999, &g, 64);
	assert_int_equal(g.n, 1);
	drain(f, 140000, &g, 64);
	assert_int_equal(g.n, 2);
	static const struct want w[] = {W("12"), W("34")};
	check(&g, w, N(w));
	got_free(&g);

	/* a stream without a gap longer than max_frame: dead pieces, the rest at the gap */
	o.max_frame = 16;
	rn_framer_destroy(f);
	assert_int_equal(rn_framer_create(&f, &o), 0);
	for (int t = 0; t < 40; t++)
		feed(f, &"0123456789"[t % 10], 1, t * 1000, &g, 16);
	drain(f, 39000 + 19999, &g, 16);
	assert_int_equal(g.n, 2);
	drain(f, 39000 + 20000, &g, 16);
	static const struct want wp[] = {
		D("0123456789012345", "frame longer than max_frame 16 (no idle gap): piece 1"),
		D("6789012345678901", "frame longer than max_frame 16 (no idle gap): piece 2"),
		D("23456789", "frame longer than max_frame 16 (no idle gap): piece 3, last"),
	};
	check(&g, wp, N(wp));
	got_free(&g);

	/* finish ends a raw frame as a good one (RAW has no "incomplete") */
	feed(f, "tail", 4, 200000, &g, 16);
	rn_framer_finish(f);
	drain(f, 200001, &g, 16);
	static const struct want wt[] = {W("tail")};
	check(&g, wt, N(wt));
	got_free(&g);
	rn_framer_destroy(f);
}

static void test_raw_every_split(void **state)
{
	/* same-time reads never split a raw frame */
	static const char in[] = "\x00\x01"
				 "binary\xff";
	static const struct want w[] = {{"\x00\x01"
					 "binary\xff",
					 9, 0, NULL}};
	struct rn_framer_opts o = {.mode = RN_FRAMER_RAW, .max_frame = 32, .idle_gap_us = 1000};
	(void)state;
	every_split(&o, in, sizeof(in) - 1, w, N(w), 1);
}

static void test_not_popped_and_full(void **state)
{
	struct rn_framer_opts o = {.mode = RN_FRAMER_LINE, .max_frame = 16};
	struct rn_framer *f;
	struct rn_frame fr, fr2;
	uint8_t big[100];
	size_t fed = 0, t;
	(void)state;
	assert_int_equal(rn_framer_create(&f, &o), 0);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"first\nsec", 9, 0), 9);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_int_equal(rn_framer_next(f, 0, &fr2), 1);
	assert_ptr_equal(fr.data, fr2.data);
	/* more input (which may move the held bytes) keeps the same head frame */
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"ond\n", 4, 0), 4);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_int_equal(fr.len, 5);
	assert_memory_equal(fr.data, "first", 5);
	rn_framer_pop(f);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_memory_equal(fr.data, "second", 6);
	rn_framer_pop(f);
	rn_framer_pop(f); /* no frame: a no-op */
	assert_int_equal(rn_framer_next(f, 0, &fr), 0);

	/* fill it without taking frames: it stops taking bytes, and then has a frame */
	memset(big, 'x', sizeof(big));
	while ((t = rn_framer_feed(f, big, sizeof(big), 0)))
		fed += t;
	assert_int_equal(fed, 2 * 16 + 16);
	assert_int_equal(rn_framer_room(f), 0);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_true(fr.dead);
	rn_framer_pop(f);
	assert_int_equal(rn_framer_room(f), 16);

	/* finish: room 0 until the partial frame is taken, then feeding resumes */
	rn_framer_reset(f);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"part", 4, 0), 4);
	rn_framer_finish(f);
	assert_int_equal(rn_framer_room(f), 0);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"new\n", 4, 0), 0);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_true(fr.dead);
	assert_string_equal(fr.reason, "incomplete frame when the input ended (4 bytes)");
	rn_framer_pop(f);
	assert_int_equal(rn_framer_next(f, 0, &fr), 0);
	assert_int_equal(rn_framer_feed(f, (const uint8_t *)"new\n", 4, 0), 4);
	assert_int_equal(rn_framer_next(f, 0, &fr), 1);
	assert_false(fr.dead);
	assert_memory_equal(fr.data, "new", 3);
	rn_framer_destroy(f);
	rn_framer_destroy(NULL);
}

static void test_alloc_failure(void **state)
{
	struct rn_framer_opts o = {.mode = RN_FRAMER_COBS};
	struct rn_framer *f = NULL;
	long live = rn_mem_live();
	(void)state;
	for (long k = 1; k <= 3; k++) {
		rn_mem_fail_after(k);
		assert_int_equal(rn_framer_create(&f, &o), RN_ENOMEM);
		rn_mem_fail_after(0);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_int_equal(rn_framer_create(&f, &o), 0);
	rn_framer_destroy(f);
	assert_int_equal(rn_mem_live(), live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_line_oversize),
		cmocka_unit_test(test_nmea),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_cobs),
		cmocka_unit_test(test_cobs_oversize),
		cmocka_unit_test(test_raw_gap),
		cmocka_unit_test(test_raw_every_split),
		cmocka_unit_test(test_not_popped_and_full),
		cmocka_unit_test(test_alloc_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
