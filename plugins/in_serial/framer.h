/*
 * The serial framer, I/O-free: bytes go in (with the time they were read), frames come out.
 * It owns no descriptor and reads no clock — the caller passes "now" — so every mode is
 * unit-tested and fuzzed on plain buffers (tests/unit/in_serial, tests/fuzz/
 * fuzz_serial_framer.c). Modes: LINE (LF ends a frame, a CR before it is stripped),
 * FIXED (N bytes), LENGTH (a 1, 2 or 4 byte big-endian length, then that many bytes),
 * COBS (0x00-delimited, decoded) and RAW (a frame ends after an idle gap with no bytes).
 * Nothing is dropped: input that does not make a good frame — an oversize frame, a bad COBS
 * frame, an NMEA sentence with a bad or missing checksum, the partial frame left when the
 * port closes — comes out as a frame marked `dead` with a reason, for host->dead_letter.
 * Oversize input is cut into dead pieces of at most max_frame bytes, so every frame handed
 * out, good or dead, is at most max_frame bytes.
 *
 * Memory is fixed at creation (2 * max_frame + 16 bytes of input, plus max_frame for COBS
 * output), so feeding never allocates: when the framer is full the caller stops reading —
 * there is always a frame to take then. The framer is pull-style: rn_framer_next() shows
 * the head frame without taking it; rn_framer_pop() takes it. A caller whose consumer
 * refuses a frame (the agent's buffer is full) simply does not pop, and gets the same frame
 * again later. One framer per port, created and destroyed by the plugin, used on the
 * agent's loop thread only.
 */
#ifndef RN_SERIAL_FRAMER_H
#define RN_SERIAL_FRAMER_H

#include <stddef.h>
#include <stdint.h>

enum rn_framer_mode {
	RN_FRAMER_LINE = 0,
	RN_FRAMER_FIXED,
	RN_FRAMER_LENGTH,
	RN_FRAMER_COBS,
	RN_FRAMER_RAW,
};

/* A zeroed struct is valid: LINE mode, max_frame 64 KiB. */
struct rn_framer_opts {
	enum rn_framer_mode mode;
	size_t max_frame;      /* largest frame handed out (for COBS: encoded bytes); 0 = 64 KiB */
	size_t frame_bytes;    /* FIXED: bytes per frame, 1..max_frame */
	unsigned length_bytes; /* LENGTH: header size, 1, 2 or 4 (0 = 2) */
	int64_t idle_gap_us;   /* RAW: a frame ends after this long without bytes (0 = 20 ms) */
	int nmea_checksum;     /* LINE: every line must be an NMEA 0183 sentence "$...*HH" (or
				* "!...*HH") with a correct checksum; others are dead */
};

/*
 * One frame, valid until the next rn_framer_feed/pop/finish/destroy. Good frames have
 * dead = 0 and reason NULL. Dead frames carry the input bytes as received (for COBS: the
 * encoded bytes; for LENGTH: the body without its header) and a reason such as
 * "nmea checksum mismatch: want 4A got 3B" (want = computed from the sentence, got = the
 * sentence's own *HH), "bad cobs frame: ...", "frame longer than max_frame 256: piece 2" or
 * "incomplete frame when the input ended".
 */
struct rn_frame {
	const uint8_t *data;
	size_t len;
	int dead;
	const char *reason;
};

struct rn_framer;

/* Creates a framer. RN_EINVAL for inconsistent options (frame_bytes 0 or over max_frame in
 * FIXED mode, length_bytes not 1/2/4, max_frame over 64 MiB), RN_ENOMEM. */
int rn_framer_create(struct rn_framer **out, const struct rn_framer_opts *o);
void rn_framer_destroy(struct rn_framer *f);

/* Bytes rn_framer_feed would take now. 0 when the framer holds a frame it cannot grow past
 * (take it first) or the input has ended (rn_framer_finish) and is not yet drained. */
size_t rn_framer_room(const struct rn_framer *f);

/* Takes up to `len` bytes read at `now_us` (any monotonic microsecond clock; only RAW uses
 * it, and it must not go backwards). Returns the count taken, less than len only when the
 * framer is full: call rn_framer_next/pop, then feed the rest. In RAW mode a gap of at least
 * idle_gap since the last byte ends the frame before these bytes. */
size_t rn_framer_feed(struct rn_framer *f, const uint8_t *p, size_t len, int64_t now_us);

/* The head frame, without taking it: 1 and *fr filled, or 0 when no frame is complete yet.
 * Calling it again before pop gives the same frame. In RAW mode `now_us` ends the pending
 * frame once idle_gap has passed since its last byte. */
int rn_framer_next(struct rn_framer *f, int64_t now_us, struct rn_frame *fr);

/* Takes the frame rn_framer_next returned. A no-op without one. */
void rn_framer_pop(struct rn_framer *f);

/* The input ended (the port closed): whatever is held becomes frames — in RAW mode a normal
 * last frame, in the other modes a dead "incomplete frame" — handed out by next/pop as
 * usual. Feeding resumes once they are all taken. */
void rn_framer_finish(struct rn_framer *f);

/* Bytes held that belong to no frame handed out yet. */
size_t rn_framer_pending(const struct rn_framer *f);

/* Drops all held input and state (tests; the plugin uses finish). */
void rn_framer_reset(struct rn_framer *f);

/* COBS-decodes `in` (no 0x00 inside, no trailing delimiter) into out (room for len bytes
 * suffices). 0 and *outlen, or RN_EINVAL with a reason in err for a malformed frame. */
int rn_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen, char *err,
		   size_t errcap);

#endif
