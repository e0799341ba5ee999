/*
 * in_serial: reads a serial port (or anything that is a tty: a USB adapter, a pty) and turns
 * its bytes into records with the I/O-free framer (framer.h). This file owns the descriptor
 * and termios, and is the only one of the plugin that includes <termios.h>; non-standard
 * rates go through termios2 in baud_other.c. One instance per configured source, created and
 * destroyed by the agent's plugin host and polled on its loop thread only.
 *
 * A serial port has no resume position: bytes sent while the agent is not reading are gone
 * unless the device or the kernel keeps them. So snapshot() appends nothing, and what is
 * exactly-once here is the path from the framer into the buffer. When the device goes away
 * (read returns 0, EIO or ENXIO: a USB unplug, the far end of a pty closing) the port is
 * closed, its partial frame handed over as a dead letter (RAW: as its last frame), one
 * warning logged, and the device — glob re-resolved — reopened with exponential backoff
 * (250 ms doubling to 10 s); one info line says when it is back. While the host refuses
 * records (buffer full under the block policy) the port is not read: the kernel's buffer and
 * the line's flow control hold the data, as far as they can.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "framer.h"
#include "in_serial_int.h"
#include "plugin.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#define LOG "in_serial"
#define RBUF_SIZE ((size_t)64 << 10)
#define POLL_BUDGET ((size_t)256 << 10) /* bytes read per poll before yielding (*more) */
#define BACKOFF_MIN_US 250000
#define BACKOFF_MAX_US 10000000

/* The plugin's own settings (rows below); filled by the agent's config loader. */
struct in_serial_conf {
	char *device;        /* path, glob (first match, sorted) or /dev/serial/by-id/... */
	int64_t baud;        /* any rate; non-standard ones through termios2 */
	int data_bits;       /* 5..8 */
	int parity;          /* index into parity_names */
	int stop_bits;       /* 1 or 2 */
	int flow;            /* index into flow_names */
	int framing;         /* index into framing_names == enum rn_framer_mode */
	int64_t frame_bytes; /* fixed */
	int length_bytes;    /* length: 1, 2 or 4 */
	int64_t idle_gap_ms; /* raw */
	int64_t max_frame;
	int nmea_checksum; /* line */
};

static const char *const parity_names[] = {"none", "even", "odd", NULL};
static const char *const flow_names[] = {"none", "rtscts", "xonxoff", NULL};
/* same order as enum rn_framer_mode */
static const char *const framing_names[] = {"line", "fixed", "length", "cobs", "raw", NULL};

#define C(f) offsetof(struct in_serial_conf, f)
static const struct rn_conf_key serial_conf[] = {
	{.key = "device",
	 .type = RN_CONF_STRING,
	 .offset = C(device),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "tty path, glob (first match in sorted order, re-resolved at every reopen) "
		 "or /dev/serial/by-id/... link"},
	{.key = "baud",
	 .type = RN_CONF_INT,
	 .def = "115200",
	 .min = 50,
	 .max = 20000000,
	 .offset = C(baud),
	 .help = "bits/s; any integer (non-standard rates via termios2)"},
	{.key = "data_bits",
	 .type = RN_CONF_INT32,
	 .def = "8",
	 .min = 5,
	 .max = 8,
	 .offset = C(data_bits),
	 .help = "5..8"},
	{.key = "parity",
	 .type = RN_CONF_ENUM,
	 .def = "none",
	 .enums = parity_names,
	 .offset = C(parity),
	 .help = "none, even or odd"},
	{.key = "stop_bits",
	 .type = RN_CONF_INT32,
	 .def = "1",
	 .min = 1,
	 .max = 2,
	 .offset = C(stop_bits),
	 .help = "1 or 2"},
	{.key = "flow",
	 .type = RN_CONF_ENUM,
	 .def = "none",
	 .enums = flow_names,
	 .offset = C(flow),
	 .help = "none, rtscts (hardware) or xonxoff (0x11/0x13 are eaten)"},
	{.key = "framing",
	 .type = RN_CONF_ENUM,
	 .def = "line",
	 .enums = framing_names,
	 .offset = C(framing),
	 .help = "line, fixed, length, cobs or raw (see README)"},
	{.key = "frame_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "0",
	 .min = 0,
	 .max = (int64_t)4 << 20,
	 .offset = C(frame_bytes),
	 .help = "framing = fixed: bytes per record"},
	{.key = "length_bytes",
	 .type = RN_CONF_INT32,
	 .def = "2",
	 .min = 1,
	 .max = 4,
	 .offset = C(length_bytes),
	 .help = "framing = length: big-endian header of 1, 2 or 4 bytes"},
	{.key = "idle_gap",
	 .type = RN_CONF_DURATION,
	 .def = "20ms",
	 .min = 1,
	 .max = 60000,
	 .offset = C(idle_gap_ms),
	 .help = "framing = raw: a record ends after this long without bytes"},
	/* capped at 4M like in_file's max_line_bytes: one record must fit a request */
	{.key = "max_frame",
	 .type = RN_CONF_SIZE,
	 .def = "64K",
	 .min = 16,
	 .max = (int64_t)4 << 20,
	 .offset = C(max_frame),
	 .help = "longer input is cut into dead-letter pieces"},
	{.key = "nmea_checksum",
	 .type = RN_CONF_BOOL,
	 .def = "false",
	 .offset = C(nmea_checksum),
	 .help = "framing = line: lines must be NMEA 0183 sentences with a good *HH checksum; "
		 "others become dead letters"},
	{0},
};
#undef C

struct in_serial {
	const struct in_serial_conf *conf; /* borrowed from the source's config */
	struct rn_source_host host;
	struct rn_framer *fr;
	uint8_t *rbuf;
	int fd;                /* -1 while closed */
	char *path;            /* the resolved device while open (the records' topic) */
	int64_t next_open_us;  /* monotonic: next open attempt while closed */
	int64_t backoff_us;    /* next wait after a failed attempt */
	int64_t down_since_us; /* when it went away; 0 = never opened yet */
	int down_logged;       /* the outage has been reported (once per outage) */
	unsigned attempts;     /* failed opens in this outage */
	int blocked;           /* the host refused the head frame (RN_EFULL); it is offered again */
	unsigned long long bytes, frames, dead, reconnects;
	char err[256];
};

static const struct {
	unsigned rate;
	speed_t code;
} std_speeds[] = {
	{50, B50},           {75, B75},           {110, B110},         {134, B134},
	{150, B150},         {200, B200},         {300, B300},         {600, B600},
	{1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
	{9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
	{115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
	{576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
	{1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
	{3500000, B3500000}, {4000000, B4000000},
};

/* 0 and the speed code for a standard rate, -1 for a rate that needs termios2. */
static int std_speed(int64_t rate, speed_t *code)
{
	for (size_t i = 0; i < sizeof(std_speeds) / sizeof(std_speeds[0]); i++)
		if (std_speeds[i].rate == rate) {
			*code = std_speeds[i].code;
			return 0;
		}
	return -1;
}

/* Line settings on the open tty. 0, or -1 with s->err set. */
static int configure(struct in_serial *s, int fd)
{
	const struct in_serial_conf *c = s->conf;
	static const tcflag_t csize[] = {CS5, CS6, CS7, CS8};
	struct termios t;
	speed_t code;
	int std = std_speed(c->baud, &code) == 0;

	if (tcgetattr(fd, &t)) {
		snprintf(s->err, sizeof(s->err), "not a terminal: %s", strerror(errno));
		return -1;
	}
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= CLOCAL | CREAD | csize[c->data_bits - 5];
	if (c->parity == 1)
		t.c_cflag |= PARENB;
	else if (c->parity == 2)
		t.c_cflag |= PARENB | PARODD;
	if (c->stop_bits == 2)
		t.c_cflag |= CSTOPB;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK);
	if (c->flow == 1)
		t.c_cflag |= CRTSCTS;
	else if (c->flow == 2)
		t.c_iflag |= IXON | IXOFF;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	/* a non-standard rate: any valid speed here, the real one set through termios2 below */
	if (cfsetspeed(&t, std ? code : B38400) || tcsetattr(fd, TCSANOW, &t)) {
		snprintf(s->err, sizeof(s->err), "cannot apply line settings: %s", strerror(errno));
		return -1;
	}
	if (!std) {
		unsigned got = 0;
		int rc = rn_in_serial__set_baud_other(fd, (unsigned)c->baud, &got);
		if (rc) {
			snprintf(s->err, sizeof(s->err), "cannot set %lld baud (termios2): %s",
				 (long long)c->baud, strerror(-rc));
			return -1;
		}
		/* UARTs divide a clock: a few percent off still works, more does not */
		if ((int64_t)got * 100 < c->baud * 97 || (int64_t)got * 100 > c->baud * 103)
			rn_log_warn(LOG, "%s: asked for %lld baud, the driver set %u", s->path,
				    (long long)c->baud, got);
	}
	return 0;
}

/* The device path now: the configured one, or the first match of its glob. 0 or -1 with
 * s->err set. */
static int resolve(struct in_serial *s, char **out)
{
	const char *dev = s->conf->device;
	glob_t g;
	int rc;
	if (!strpbrk(dev, "*?[")) {
		*out = rn_strdup(dev);
		return *out ? 0 : -1;
	}
	/* glob sorts its matches (no GLOB_NOSORT): "first" is stable across reopens */
	rc = glob(dev, 0, NULL, &g);
	if (rc || !g.gl_pathc) {
		snprintf(s->err, sizeof(s->err), "no device matches %s", dev);
		if (!rc)
			globfree(&g);
		return -1;
	}
	*out = rn_strdup(g.gl_pathv[0]);
	globfree(&g);
	return *out ? 0 : -1;
}

static void schedule_reopen(struct in_serial *s, int64_t now)
{
	s->next_open_us = now + s->backoff_us;
	s->backoff_us = s->backoff_us * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : s->backoff_us * 2;
}

static void port_open(struct in_serial *s, int64_t now)
{
	char *path = NULL;
	int fd = -1;

	s->err[0] = 0;
	if (resolve(s, &path))
		goto fail;
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(s->err, sizeof(s->err), "%s: %s", path, strerror(errno));
		goto fail;
	}
	s->path = path; /* for configure's messages */
	/* another process opening the port would steal bytes from us: keep it exclusive */
	(void)ioctl(fd, TIOCEXCL);
	if (configure(s, fd)) {
		s->path = NULL;
		goto fail;
	}
	s->fd = fd;
	s->backoff_us = BACKOFF_MIN_US;
	if (!s->down_since_us)
		rn_log_info(LOG, "%s open: %lld baud %d%c%d, flow %s, framing %s", path,
			    (long long)s->conf->baud, s->conf->data_bits, "NEO"[s->conf->parity],
			    s -> conf -> stop_bits, flow_names[s->conf->flow],
			    framing_names[s->conf->framing]);
	else
		rn_log_info(LOG, "%s is back after %.1f s (%u failed attempts); reading again",
			    path, (double)(now - s->down_since_us) / 1e6, s->attempts);
	s->down_logged = 0;
	s->attempts = 0;
	return;
fail:
	if (fd >= 0)
		close(fd);
	if (!s->err[0])
		snprintf(s->err, sizeof(s->err), "out of memory");
	if (!s->down_logged) {
		rn_log_warn(LOG, "cannot open %s (%s); retrying with backoff up to %d s",
			    s->conf->device, s->err, BACKOFF_MAX_US / 1000000);
		s->down_logged = 1;
	} else {
		rn_log_debug(LOG, "open %s: %s", s->conf->device, s->err);
	}
	if (!s->down_since_us)
		s->down_since_us = now; /* never opened: "back" counts from the first try */
	s->attempts++;
	rn_free(path);
	schedule_reopen(s, now);
}

/* The device went away: close, let the framer hand out what it holds, reopen later. */
static void port_lost(struct in_serial *s, int64_t now, const char *why)
{
	rn_log_warn(LOG, "%s went away (%s) after %llu bytes; reopening with backoff", s->path, why,
		    s->bytes);
	s->down_logged = 1;
	close(s->fd);
	s->fd = -1;
	s->down_since_us = now;
	s->reconnects++;
	s->backoff_us = BACKOFF_MIN_US;
	schedule_reopen(s, now);
	rn_framer_finish(s->fr);
}

/* Hands one frame to the host. The host copies it; RN_EFULL = not taken. */
static int deliver(struct in_serial *s, const struct rn_frame *fr)
{
	struct rn_record r = {fr->data, fr->len, s->path, 0, 0, NULL, 0};
	int rc;
	if (!fr->dead) {
		if (!(rc = s->host.emit(s->host.ctx, &r)))
			s->frames++;
		return rc;
	}
	if (s->host.dead_letter) {
		rc = s->host.dead_letter(s->host.ctx, &r, fr->reason);
	} else {
		/* a host without dead_letter: the same record, flagged and annotated by hand */
		struct rn_attr a = {"runnel.error", fr->reason};
		r.flags = RN_RECORD_F_DEAD;
		r.attrs = &a;
		r.nattrs = 1;
		rc = s->host.emit(s->host.ctx, &r);
	}
	if (!rc) {
		s->dead++;
		rn_log_debug(LOG, "%s: dead letter (%zu bytes): %s", s->path, fr->len, fr->reason);
	}
	return rc;
}

/* Hands out every complete frame. 0, or the host's refusal (RN_EFULL: try later). */
static int drain(struct in_serial *s, int64_t now)
{
	struct rn_frame fr;
	int rc;
	while (rn_framer_next(s->fr, now, &fr)) {
		if ((rc = deliver(s, &fr))) {
			s->blocked = rc == RN_EFULL;
			return rc;
		}
		rn_framer_pop(s->fr);
	}
	s->blocked = 0;
	return 0;
}

static int serial_poll(void *inst, int64_t now_us, int *more)
{
	struct in_serial *s = inst;
	size_t total = 0;
	int rc;

	*more = 0;
	if ((rc = drain(s, now_us)))
		return rc == RN_EFULL ? 0 : rc;
	if (s->fd < 0) {
		/* frames of the last connection are all out (drain above): its topic may go */
		rn_free(s->path);
		s->path = NULL;
		if (now_us < s->next_open_us)
			return 0;
		port_open(s, now_us);
		if (s->fd < 0)
			return 0;
	}
	while (total < POLL_BUDGET && s->host.accepting(s->host.ctx)) {
		size_t room = rn_framer_room(s->fr);
		ssize_t n;
		if (!room)
			break; /* a frame waits for the host */
		n = read(s->fd, s->rbuf, room < RBUF_SIZE ? room : RBUF_SIZE);
		if (n > 0) {
			/* n <= room: the framer takes all of it */
			rn_framer_feed(s->fr, s->rbuf, (size_t)n, now_us);
			s->bytes += (size_t)n;
			total += (size_t)n;
			if ((rc = drain(s, now_us)))
				return rc == RN_EFULL ? 0 : rc;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* 0 = hang-up; EIO/ENXIO/ENODEV = the device or the pty's far end is gone */
		port_lost(s, now_us, n == 0 ? "hang-up" : strerror(errno));
		if ((rc = drain(s, now_us)))
			return rc == RN_EFULL ? 0 : rc;
		return 0;
	}
	if (total >= POLL_BUDGET)
		*more = 1;
	return 0;
}

/* The port while we would read it. Not while the host refuses records: the port stays
 * readable then, and waiting on it would spin the loop; the loop's 50 ms turn retries. */
static int serial_wait_fd(void *inst, short *events)
{
	struct in_serial *s = inst;
	*events = POLLIN;
	if (s->fd < 0 || s->blocked || !s->host.accepting(s->host.ctx))
		return -1;
	return s->fd;
}

/* No resume position: a serial port cannot be rewound (see the top of the file). */
static int serial_snapshot(void *inst, struct rn_buf *out)
{
	(void)inst;
	(void)out;
	return 0;
}

static int serial_check(const struct rn_source_conf *sc, char *err, size_t cap)
{
	const struct in_serial_conf *c = sc->plugin.data;
	const char *name = sc->name ? sc->name : "?";
	if (!c || !c->device || !c->device[0]) {
		snprintf(err, cap, "source '%s': device must name a tty, a glob or a by-id link",
			 name);
		return RN_ECONFIG;
	}
	if (c->framing == RN_FRAMER_FIXED &&
	    (c->frame_bytes < 1 || c->frame_bytes > c->max_frame)) {
		snprintf(err, cap,
			 "source '%s': framing = \"fixed\" needs frame_bytes in 1..%lld "
			 "(max_frame)",
			 name, (long long)c->max_frame);
		return RN_ECONFIG;
	}
	if (c->length_bytes == 3) {
		snprintf(err, cap, "source '%s': length_bytes must be 1, 2 or 4", name);
		return RN_ECONFIG;
	}
	if (c->nmea_checksum && c->framing != RN_FRAMER_LINE) {
		snprintf(err, cap, "source '%s': nmea_checksum needs framing = \"line\"", name);
		return RN_ECONFIG;
	}
	return 0;
}

static void serial_destroy(void *inst)
{
	struct in_serial *s = inst;
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->fr && rn_framer_pending(s->fr))
		rn_log_warn(LOG, "%s: %zu bytes of an unfinished frame not handed over at stop",
			    s->path ? s->path : s->conf->device, rn_framer_pending(s->fr));
	rn_log_info(LOG, "%s: %llu bytes read, %llu records, %llu dead letters, %llu reconnects",
		    s->conf->device, s->bytes, s->frames, s->dead, s->reconnects);
	rn_framer_destroy(s->fr);
	rn_free(s->rbuf);
	rn_free(s->path);
	rn_free(s);
}

static int serial_create(void **inst, const struct rn_source_conf *conf,
			 const struct rn_source_host *host)
{
	const struct in_serial_conf *c = conf->plugin.data;
	struct rn_framer_opts o = {
		.mode = (enum rn_framer_mode)c->framing,
		.max_frame = (size_t)c->max_frame,
		.frame_bytes = (size_t)c->frame_bytes,
		.length_bytes = (unsigned)c->length_bytes,
		.idle_gap_us = c->idle_gap_ms * 1000,
		.nmea_checksum = c->nmea_checksum,
	};
	struct in_serial *s = rn_calloc(1, sizeof(*s));
	int rc;
	if (!s)
		return RN_ENOMEM;
	s->conf = c;
	s->host = *host;
	s->fd = -1;
	s->backoff_us = BACKOFF_MIN_US;
	if ((rc = rn_framer_create(&s->fr, &o)))
		goto fail;
	if (!(s->rbuf = rn_malloc(RBUF_SIZE))) {
		rc = RN_ENOMEM;
		goto fail;
	}
	*inst = s;
	return 0;
fail:
	serial_destroy(s);
	return rc;
}

const struct rn_source_plugin rn_in_serial = {
	.abi = RN_SOURCE_ABI_1,
	.name = "serial",
	.description = "reads a serial port (termios; line, fixed, length, cobs or raw framing)",
	.conf = serial_conf,
	.conf_size = sizeof(struct in_serial_conf),
	.check = serial_check,
	.create = serial_create,
	.poll = serial_poll,
	.wait_fd = serial_wait_fd,
	.snapshot = serial_snapshot,
	.destroy = serial_destroy,
};
