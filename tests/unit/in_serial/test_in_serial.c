/*
 * Unit tests for plugins/in_serial/in_serial.c through its plugin table, with a fake host and
 * real pseudo-terminals (posix_openpt) standing in for serial ports: the device named by a
 * glob is opened at a non-standard rate (read back with termios2), lines become records with
 * the device as topic and bad sentences dead letters (through host->dead_letter, and flagged
 * by hand for a host without it), a refused record is offered again with nothing lost, the
 * far end closing is a hang-up (the partial line becomes a dead letter, wait_fd -1), and the
 * reopen follows the backoff schedule (250 ms, 500 ms, 1 s ... measured on the poll's clock,
 * which the test drives) and re-resolves the glob; while the host refuses records the port is
 * not offered to the loop's wait (it would spin). Also: check() rejects bad settings and
 * snapshot() appends nothing. This file includes <asm/termbits.h> for TCGETS2, so it must
 * not include <termios.h>.
 */
#include <asm/termbits.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "testutil.h"

extern const struct rn_source_plugin rn_in_serial;

#define MAXREC 64

struct host {
	char *rec[MAXREC];
	size_t len[MAXREC];
	uint32_t flags[MAXREC];
	char error[MAXREC][160];
	char topic[MAXREC][600];
	size_t n;
	int refuse;  /* emit answers RN_EFULL this many times */
	int refused; /* times it did */
};

static char dir[512];

static int h_emit(void *ctx, const struct rn_record *r)
{
	struct host *h = ctx;
	if (h->refuse) {
		h->refuse--;
		h->refused++;
		return RN_EFULL;
	}
	assert_true(h->n < MAXREC);
	h->rec[h->n] = malloc(r->len + 1);
	memcpy(h->rec[h->n], r->payload, r->len);
	h->rec[h->n][r->len] = 0;
	h->len[h->n] = r->len;
	h->flags[h->n] = r->flags;
	h->error[h->n][0] = 0;
	for (size_t i = 0; i < r->nattrs; i++)
		if (!strcmp(r->attrs[i].key, "runnel.error"))
			snprintf(h->error[h->n], sizeof(h->error[0]), "%s", r->attrs[i].value);
	snprintf(h->topic[h->n], sizeof(h->topic[0]), "%s", r->topic ? r->topic : "");
	h->n++;
	return 0;
}

/* What the agent's host does: the record flagged, the reason as an attribute. */
static int h_dead(void *ctx, const struct rn_record *r, const char *reason)
{
	struct rn_attr a = {"runnel.error", reason};
	struct rn_record d = *r;
	d.flags |= RN_RECORD_F_DEAD;
	d.attrs = &a;
	d.nattrs = 1;
	return h_emit(ctx, &d);
}

static void h_pos(void *ctx)
{
	(void)ctx;
}

static int h_load(void *ctx, struct rn_buf *out)
{
	(void)ctx;
	(void)out;
	return RN_ENOTFOUND;
}

static int h_accepting(void *ctx)
{
	(void)ctx;
	return 1;
}

static int h_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static void host_free(struct host *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->rec[i]);
	h->n = 0;
}

/* Mirrors in_serial's private settings struct (the rows' offsets), filled by hand here the
 * way the loader fills it from the plugin's conf table. */
struct in_serial_conf {
	char *device;
	int64_t baud;
	int data_bits;
	int parity;
	int stop_bits;
	int flow;
	int framing;
	int64_t frame_bytes;
	int length_bytes;
	int64_t idle_gap_ms;
	int64_t max_frame;
	int nmea_checksum;
};

struct src {
	struct rn_source_conf conf;
	struct in_serial_conf sc;
	void *inst;
	struct rn_source_host sh;
};

static void src_conf(struct src *s, const char *device)
{
	memset(s, 0, sizeof(*s));
	s->conf.type = "serial";
	s->conf.name = "t";
	s->conf.table = "x.y.z";
	s->sc.device = (char *)device;
	s->sc.baud = 250000; /* not a Bxxx constant: termios2 */
	s->sc.data_bits = 8;
	s->sc.stop_bits = 1;
	s->sc.length_bytes = 2;
	s->sc.idle_gap_ms = 20;
	s->sc.max_frame = 256;
	s->sc.nmea_checksum = 1;
	assert_int_equal(rn_in_serial.conf_size, sizeof(s->sc));
	s->conf.plugin.table = rn_in_serial.conf;
	s->conf.plugin.data = &s->sc;
}

static void src_start(struct src *s, struct host *h, int with_dead_letter)
{
	char err[256] = "";
	s->sh = (struct rn_source_host){.ctx = h,
					.emit = h_emit,
					.position_changed = h_pos,
					.load_position = h_load,
					.accepting = h_accepting,
					.flush = h_flush,
					.dead_letter = with_dead_letter ? h_dead : NULL};
	assert_int_equal(rn_in_serial.check(&s->conf, err, sizeof(err)), 0);
	assert_int_equal(rn_in_serial.create(&s->inst, &s->conf, &s->sh), 0);
}

static int src_fd(struct src *s)
{
	short ev = 0;
	int fd = rn_in_serial.wait_fd(s->inst, &ev);
	if (fd >= 0)
		assert_int_equal(ev, POLLIN);
	return fd;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Polls the plugin at time `now` until `cond` holds, waiting on its descriptor between
 * polls (as the agent's loop does); fails after 5 s of real time. */
#define POLL_UNTIL(s, now, cond)                                                                   \
	do {                                                                                       \
		int64_t end_ = mono_us() + 5000000;                                                \
		for (;;) {                                                                         \
			int more_ = 0;                                                             \
			assert_int_equal(rn_in_serial.poll((s)->inst, (now), &more_), 0);          \
			if (cond)                                                                  \
				break;                                                             \
			assert_true(mono_us() < end_);                                             \
			int fd_ = src_fd(s);                                                       \
			if (fd_ >= 0) {                                                            \
				struct pollfd p_ = {fd_, POLLIN, 0};                               \
				poll(&p_, 1, 50);                                                  \
			} else {                                                                   \
				usleep(10000);                                                     \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* A new pty whose slave is linked at dir/name; returns the master. */
static int pty_at(const char *name)
{
	char link[600];
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	snprintf(link, sizeof(link), "%s/%s", dir, name);
	unlink(link);
	assert_int_equal(symlink(ptsname(m), link), 0);
	return m;
}

static void unlink_in_dir(const char *name)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

static void put(int m, const char *s)
{
	assert_int_equal(write(m, s, strlen(s)), (ssize_t)strlen(s));
}

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(dir, sizeof(dir), "in_serial");
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(dir);
}

static void test_read_unplug_reopen(void **state)
{
	struct host h = {0};
	struct src s;
	char glob[600], a[600], b[600];
	struct termios2 t;
	int m, fd;
	int64_t t0 = 1000000000, lost;
	(void)state;

	snprintf(glob, sizeof(glob), "%s/tty*", dir);
	snprintf(a, sizeof(a), "%s/ttyA", dir);
	snprintf(b, sizeof(b), "%s/ttyB", dir);
	m = pty_at("ttyA");
	src_conf(&s, glob);
	src_start(&s, &h, 1);
	assert_int_equal(src_fd(&s), -1); /* opened by the first poll, not by create */
	POLL_UNTIL(&s, t0, src_fd(&s) >= 0);
	fd = src_fd(&s);
	assert_int_equal(ioctl(fd, TCGETS2, &t), 0);
	assert_int_equal(t.c_ospeed, 250000);
	assert_int_equal(t.c_ispeed, 250000);
	assert_int_equal(t.c_cflag & CSIZE, CS8);
	assert_int_equal(t.c_lflag & (ICANON | ECHO), 0);

	/* XOR("GPGGA,1") = 0x4B */
	put(m, "$GPGGA,1*4B\r\n$GPGGA,2*4B\r\n$GPGGA,3*4B\r\npart");
	POLL_UNTIL(&s, t0, h.n == 3);
	assert_string_equal(h.rec[0], "$GPGGA,1*4B");
	assert_int_equal(h.flags[0], 0);
	assert_string_equal(h.topic[0], a);
	assert_string_equal(h.rec[1], "$GPGGA,2*4B");
	assert_int_equal(h.flags[1], RN_RECORD_F_DEAD);
	assert_string_equal(h.error[1], "nmea checksum mismatch: want 48 got 4B");
	assert_string_equal(h.rec[2], "$GPGGA,3*4B");
	assert_int_equal(h.flags[2], RN_RECORD_F_DEAD);

	/* the host refuses twice: the same line is offered again, nothing lost or repeated */
	h.refuse = 2;
	put(m, "al\n$GPGGA,1*4B\n");
	POLL_UNTIL(&s, t0, h.refused == 1);
	assert_int_equal(src_fd(&s), -1); /* refused: not waited on (it would spin the loop) */
	POLL_UNTIL(&s, t0, h.n == 5);
	assert_true(src_fd(&s) >= 0);
	assert_int_equal(h.refused, 2);
	assert_string_equal(h.rec[3], "partal");
	assert_string_equal(h.error[3], "not an nmea sentence (no leading $ or !)");
	assert_string_equal(h.rec[4], "$GPGGA,1*4B");

	/* unplug: the far end closes; the partial line comes out as a dead letter. A hang-up
	 * flushes unread input (so does a real one), so the bytes are read first: they go in
	 * one write, and the complete line before them shows they were read. */
	put(m, "$GPGGA,1*4B\n$GPGGA,1*");
	POLL_UNTIL(&s, t0, h.n == 6);
	close(m);
	unlink_in_dir("ttyA");
	lost = t0 + 1000;
	POLL_UNTIL(&s, lost, src_fd(&s) < 0);
	POLL_UNTIL(&s, lost, h.n == 7);
	assert_string_equal(h.rec[6], "$GPGGA,1*");
	assert_int_equal(h.flags[6], RN_RECORD_F_DEAD);
	assert_string_equal(h.error[6], "incomplete frame when the input ended (9 bytes)");
	assert_string_equal(h.topic[6], a);

	/* backoff: attempts at +250 ms (fails, none there), +750 ms (fails), then +1750 ms */
	int more = 0;
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 250000, &more), 0);
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 749999, &more), 0);
	m = pty_at("ttyB"); /* replugged under another name the glob matches */
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 749999, &more), 0);
	assert_int_equal(src_fd(&s), -1); /* not due yet */
	unlink_in_dir("ttyB");
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 750000, &more), 0);
	assert_int_equal(src_fd(&s), -1); /* due, but gone again: next at +1750 ms */
	m = (close(m), pty_at("ttyB"));
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 1749999, &more), 0);
	assert_int_equal(src_fd(&s), -1);
	assert_int_equal(rn_in_serial.poll(s.inst, lost + 1750000, &more), 0);
	assert_true(src_fd(&s) >= 0);
	put(m, "$GPGGA,1*4B\n");
	POLL_UNTIL(&s, lost + 1750000, h.n == 8);
	assert_string_equal(h.rec[7], "$GPGGA,1*4B");
	assert_int_equal(h.flags[7], 0);
	assert_string_equal(h.topic[7], b);

	/* no resume position */
	struct rn_buf snap = {0};
	assert_int_equal(rn_in_serial.snapshot(s.inst, &snap), 0);
	assert_int_equal(snap.len, 0);
	rn_in_serial.destroy(s.inst);
	close(m);
	unlink_in_dir("ttyB");
	host_free(&h);
}

static void test_raw_and_no_dead_letter_host(void **state)
{
	struct host h = {0};
	struct src s;
	char dev[600];
	int m;
	int64_t now = 5000000;
	(void)state;
	snprintf(dev, sizeof(dev), "%s/ttyR", dir);
	m = pty_at("ttyR");
	src_conf(&s, dev);
	s.sc.baud = 921600;
	s.sc.nmea_checksum = 0;
	s.sc.framing = 4; /* raw */
	s.sc.max_frame = 16;
	src_start(&s, &h, 0);
	POLL_UNTIL(&s, now, src_fd(&s) >= 0);
	put(m, "0123456789abcdefXYZ");
	/* time stands still: the 16-byte piece goes (dead, flagged by the plugin itself, the host
	 * has no dead_letter), the rest waits for its gap */
	POLL_UNTIL(&s, now, h.n == 1);
	assert_int_equal(h.len[0], 16);
	assert_int_equal(h.flags[0], RN_RECORD_F_DEAD);
	assert_string_equal(h.error[0], "frame longer than max_frame 16 (no idle gap): piece 1");
	int more = 0;
	assert_int_equal(rn_in_serial.poll(s.inst, now + 19999, &more), 0);
	assert_int_equal(h.n, 1);
	assert_int_equal(rn_in_serial.poll(s.inst, now + 20000, &more), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "XYZ");
	assert_int_equal(h.flags[1], RN_RECORD_F_DEAD);
	assert_string_equal(h.error[1],
			    "frame longer than max_frame 16 (no idle gap): piece 2, last");
	/* now on the real clock, as in the agent: "ok" ends 20 ms after it was read */
	put(m, "ok");
	POLL_UNTIL(&s, mono_us(), h.n == 3);
	assert_string_equal(h.rec[2], "ok");
	assert_int_equal(h.flags[2], 0);
	rn_in_serial.destroy(s.inst);
	close(m);
	host_free(&h);
}

static void test_check(void **state)
{
	struct src s;
	char err[256];
	(void)state;
	src_conf(&s, "/dev/ttyUSB0");
	s.sc.framing = 0;
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), 0);
	s.sc.framing = 1; /* fixed without frame_bytes */
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "frame_bytes"));
	s.sc.nmea_checksum = 0;
	s.sc.frame_bytes = 300; /* over max_frame */
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	s.sc.frame_bytes = 8;
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), 0);
	s.sc.framing = 2;
	s.sc.length_bytes = 3;
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "length_bytes"));
	s.sc.length_bytes = 4;
	s.sc.nmea_checksum = 1;
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "nmea_checksum"));
	s.sc.device = "";
	assert_int_equal(rn_in_serial.check(&s.conf, err, sizeof(err)), RN_ECONFIG);
	assert_string_equal(rn_in_serial.name, "serial");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_unplug_reopen),
		cmocka_unit_test(test_raw_and_no_dead_letter_host),
		cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
