/*
 * zb_load: a Zerobus load generator for the server benchmarks (bench/server_throughput.sh,
 * bench/time_to_table.sh, bench/fleet.sh). Plain C over libnghttp2 and one epoll loop in
 * one thread, so its own CPU cost stays small next to the server's; it is measured
 * (getrusage) and reported.
 *
 * It opens S PersistentStream (or, with --ephemeral, EphemeralStream) calls spread over
 * ceil(S / C) h2c connections (C streams per connection, default 1 like runnel-agent), each
 * with a create_stream, then sends IngestRecordBatchRequests of B runnel.v1.Record envelopes
 * (a JSON-like payload of --record-bytes bytes, every record unique) and takes the
 * durability acks.
 *   closed loop (default): each stream keeps W batches unacknowledged, until -n bytes of
 *                          record bytes are sent;
 *   open loop (-R or -r):  each stream sends a batch on its own schedule (-R batches/s per
 *                          stream, or -r MB/s in total), first send jittered over one
 *                          interval, for --warmup + -t seconds, whatever the acks do: a slow
 *                          server shows as latency, not as less offered load. Latency is
 *                          measured from the scheduled send time (no coordinated omission).
 * Work per wakeup is proportional to what is ready: epoll reports the connections with
 * input or room to write, a min-heap of due times yields the streams whose batch is due, and
 * only connections with something queued are flushed. Idle streams cost memory only.
 *
 * With -d DIR it watches the table's _delta_log with inotify: when a version file appears
 * (the server link()s it into place after writing and fsyncing it) it reads its txn actions
 * (appId = stream id, version = last offset) and marks every batch up to that offset
 * visible. With --committed it asks the server for committed acks instead (request header
 * runnel-committed-acks: 1; docs/protocol.md "Committed acks"): an ack's
 * table_committed_up_to_offset (field 1000) marks every batch up to it visible, which works
 * wherever the table lives (a local directory or S3). Latencies go into log-bucket
 * histograms (HDR-style, 64 sub-buckets per power of two: under 1.6 % error, 30 KB each,
 * whatever the sample count). With -p PID it reads the server's utime+stime
 * (/proc/PID/stat) over the measured window and its RSS and VmHWM.
 *
 * Output: one summary line; --kv: key=value lines (what the scripts eval); --json: one JSON
 * object. Errors are counted by the gRPC status that ended a stream (plus h2 resets,
 * connections lost and batches never acked) and never stop the run. Other modes:
 *   --dump FILE          write the record bytes a closed-loop run would send (baselines), exit
 *   --fsync-probe FILE   -c COUNT x (write one batch's bytes + fdatasync) latencies, exit
 *
 * Build: cc -O2 -o zb_load bench/zb_load.c -lnghttp2 (CMake builds it as bench/zb_load).
 */
#ifndef _GNU_SOURCE /* the CMake build defines it */
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "zb_load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t size)
{
	if (!(p = realloc(p, size)))
		die("out of memory");
	return p;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* PID's utime+stime in seconds, 0 without a pid, -1 if unreadable. */
static double proc_cpu(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (!(p = strrchr(buf, ')')))
		return -1;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* PID's VmRSS and VmHWM in MB (-1 each if unreadable). */
static void proc_rss(int pid, double *rss, double *hwm)
{
	char path[64], line[256];
	FILE *f;
	long kb;
	*rss = *hwm = -1;
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			*rss = (double)kb / 1024;
		else if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			*hwm = (double)kb / 1024;
	}
	fclose(f);
}

/* ---- log-bucket histogram of nanoseconds ----
 * Values below 64 have a bucket each; above, every power of two [2^k, 2^(k+1)) is split in 64
 * equal buckets, so a bucket's width is under 1/64 of its values. */
#define H_SUB 64
#define H_N (59 * H_SUB)

struct hist {
	uint64_t n, max;
	uint64_t c[H_N];
};

static size_t h_index(uint64_t v)
{
	if (v < H_SUB)
		return (size_t)v;
	int e = 63 - __builtin_clzll(v) - 6; /* v >> e in [64, 128) */
	return (size_t)e * H_SUB + (size_t)(v >> e);
}

static void h_add(struct hist *h, int64_t v)
{
	uint64_t u = v < 0 ? 0 : (uint64_t)v;
	h->c[h_index(u)]++;
	h->n++;
	if (u > h->max)
		h->max = u;
}

/* The value at quantile q (0..1) in ms: the middle of its bucket, never above the max. */
static double h_pct(const struct hist *h, double q)
{
	uint64_t rank, cum = 0;
	if (!h->n)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < H_N; i++) {
		if ((cum += h->c[i]) < rank)
			continue;
		uint64_t lo, w = 1;
		if (i < H_SUB) {
			lo = i;
		} else {
			size_t e = i / H_SUB - 1;
			lo = (uint64_t)(i - e * H_SUB) << e;
			w = (uint64_t)1 << e;
		}
		uint64_t v = lo + (w - 1) / 2;
		return (double)(v > h->max ? h->max : v) / 1e6;
	}
	return (double)h->max / 1e6;
}

/* ---- protobuf bits ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int sh = 0; sh < 64 && *p < end; sh += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* ---- record batches ----
 * A batch body is B records, built once per slot from a PRNG. Before a slot is queued its
 * records get a fresh 20-digit counter in the payload and the current event/receive time
 * (fixed-width fields, patched in place). A slot goes back to the free list when nghttp2 has
 * copied all of it into frames, so the slots in use are the batches queued but not yet
 * written, whatever the stream count. */
struct rec_layout {
	size_t len;          /* one record's bytes including its field key and length (stride) */
	size_t time1, time2; /* offsets of the 8-byte varints */
	size_t counter;      /* offset of the 20 digits */
};

struct slot {
	struct slot *next; /* free list */
	uint8_t body[];
};

static struct rec_layout L;
static size_t payload_len = 1000, batch_records, batch_body_len;
static struct slot *free_slots;
static size_t slots_made;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t build_record(uint8_t *p)
{
	static const char dev[] = "bench-device", src[] = "zb_load", topic[] = "bench/telemetry";
	size_t n = 0;
	p[n++] = 0x0a;
	p[n++] = sizeof(dev) - 1;
	memcpy(p + n, dev, sizeof(dev) - 1);
	n += sizeof(dev) - 1;
	p[n++] = 0x12;
	p[n++] = sizeof(src) - 1;
	memcpy(p + n, src, sizeof(src) - 1);
	n += sizeof(src) - 1;
	p[n++] = 0x1a;
	p[n++] = sizeof(topic) - 1;
	memcpy(p + n, topic, sizeof(topic) - 1);
	n += sizeof(topic) - 1;
	p[n++] = 0x20;
	L.time1 = n;
	n += put_varint(p + n, (uint64_t)1 << 50);
	p[n++] = 0x28;
	L.time2 = n;
	n += put_varint(p + n, (uint64_t)1 << 50);
	p[n++] = 0x3a;
	n += put_varint(p + n, payload_len);
	/* payload: {"n":"<20 digits>","v":[ddd.ddd,ddd.ddd,...]} exactly payload_len bytes */
	uint8_t *q = p + n;
	size_t pl = payload_len;
	memcpy(q, "{\"n\":\"", 6);
	L.counter = n + 6;
	memset(q + 6, '0', 20);
	memcpy(q + 26, "\",\"v\":[", 7);
	for (size_t i = 33; i < pl - 2; i++) {
		size_t k = (i - 33) % 8;
		q[i] = k == 3 ? '.' : k == 7 ? ',' : (uint8_t)('0' + xrand() % 10);
	}
	if (q[pl - 3] == ',' || q[pl - 3] == '.' || q[pl - 3] == '[')
		q[pl - 3] = '0';
	q[pl - 2] = ']';
	q[pl - 1] = '}';
	n += pl;
	L.len = n;
	return n;
}

static void build_layout(size_t b)
{
	uint8_t *tmp = xcalloc(1, payload_len + 128), h[16];
	size_t rl = build_record(tmp), hl = 1 + put_varint(h, rl);
	free(tmp);
	batch_records = b;
	batch_body_len = b * (hl + rl);
	L.time1 += hl;
	L.time2 += hl;
	L.counter += hl;
	L.len += hl;
}

static struct slot *slot_new(void)
{
	static uint8_t *tmp;
	struct slot *s = malloc(sizeof(*s) + batch_body_len);
	struct rec_layout keep = L; /* build_record rewrites it */
	uint8_t *p;
	if (!s)
		die("out of memory for record batches");
	if (!tmp)
		tmp = xcalloc(1, payload_len + 128);
	p = s->body;
	for (size_t j = 0; j < batch_records; j++) {
		size_t rl = build_record(tmp), hl;
		p[0] = 0x0a;
		hl = 1 + put_varint(p + 1, rl);
		memcpy(p + hl, tmp, rl);
		p += hl + rl;
	}
	L = keep;
	slots_made++;
	return s;
}

static uint64_t rec_counter;

static void put_time8(uint8_t *p, uint64_t v) /* v in [2^49, 2^56): always 8 bytes */
{
	for (int i = 0; i < 7; i++) {
		p[i] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[7] = (uint8_t)v;
}

static void patch_batch(uint8_t *b, int64_t now_us)
{
	for (size_t j = 0; j < batch_records; j++) {
		uint8_t *r = b + j * L.len;
		uint64_t c = rec_counter++;
		put_time8(r + L.time1, (uint64_t)now_us);
		put_time8(r + L.time2, (uint64_t)now_us);
		for (int d = 19; d >= 0; d--) {
			r[L.counter + d] = (uint8_t)('0' + c % 10);
			c /= 10;
		}
	}
}

static struct slot *slot_get(void)
{
	struct slot *s = free_slots;
	if (s)
		free_slots = s->next;
	else
		s = slot_new();
	return s;
}

static void slot_put(struct slot *s)
{
	s->next = free_slots;
	free_slots = s;
}

/* ---- streams and connections ---- */

/* Field numbers of the two calls: PersistentStream{Request,Response} and the Ephemeral ones. */
struct wire {
	const char *path;
	int batch_field, ack_field, close_field;
};
static const struct wire W_PERSISTENT = {"/databricks.zerobus.Zerobus/PersistentStream", 4, 3, 4},
			 W_EPHEMERAL = {"/databricks.zerobus.Zerobus/EphemeralStream", 3, 2, 3};
static const struct wire *wire = &W_PERSISTENT;

struct seg {
	struct slot *slot; /* returned to the free list once sent; NULL for the create message */
	uint8_t hdr[32];
	size_t hlen;
	const uint8_t *body;
	size_t blen, pos;
};

struct conn;

struct stream {
	struct conn *c;
	int idx;
	int32_t sid;
	uint8_t created, deferred, eof, closed, failed;
	uint8_t settled; /* created or closed: counted in settled_n */
	int grpc_status; /* -1 until a grpc-status header arrives */
	struct seg *q;   /* ring of segments queued to nghttp2: q[(qhead + i) % qcap], i < qlen */
	size_t qcap, qhead, qlen;
	int64_t next_off, acked, visible, target; /* target: batches to send (closed loop) */
	int64_t next_due;                         /* open loop: scheduled time of the next batch */
	int64_t t_open; /* when its call was submitted (the create's latency starts here) */
	int64_t *sched; /* scheduled send time of offset o at sched[o & (scap - 1)], for every o in
			   (min(acked, visible), next_off) */
	size_t scap;    /* a power of two */
	uint8_t *rx;    /* received gRPC bytes not yet a whole message */
	size_t rxlen, rxcap;
	char *id;             /* the server's stream id (for -d), malloc'd */
	struct stream *hnext; /* chain in the id hash (for -d) */
};

struct conn {
	int fd, idx;
	nghttp2_session *ng;
	struct stream *first; /* its streams are first[0 .. n) */
	int n;
	uint8_t dirty, want_out, dead;
	struct conn *next_dirty;
	uint8_t *out; /* frames nghttp2 produced, not yet taken by the socket: one send() for
			 many frames, not one per frame (20,000 batches/s are 20,000 frames) */
	size_t outlen, outcap;
};

static struct stream *streams;
static struct conn *conns;
static int nstreams, nconns, window = 4, epfd = -1;
static struct conn *dirty_head;
static uint8_t create_msg[600];
static size_t create_len;
static size_t queued_bytes, max_queued_bytes = (size_t)1 << 30;

/* measurement */
static int open_loop, measuring;
static int64_t t_measure = 0, t_end_ns = INT64_MAX;
static struct hist h_ack, h_vis;
/* create latency: call submitted -> CreateIngestStreamResponse read; the first and last
 * answers after the first call was submitted (t_open0) */
static struct hist h_create;
static int64_t t_open0, t_first_create, t_last_create;
/* Milliseconds from the first call's submission to t (0 when t never happened). */
static double since_open_ms(int64_t t)
{
	return t ? (double)(t - t_open0) / 1e6 : 0;
}
static uint64_t offered_n, achieved_n, skipped_n, close_signals, created_n;
/* streams whose create was answered or whose call ended: the opening phase waits on this
 * count, not on a walk of every stream per wakeup (O(streams) per turn at 50,000 streams) */
static uint64_t settled_n;

static void settle(struct stream *s)
{
	if (!s->settled) {
		s->settled = 1;
		settled_n++;
	}
}
static uint64_t err_status[17], err_h2, err_conn, err_other_status;
static int have_delta;
static int committed_acks; /* --committed: visibility from field 1000 of the acks */

static void mark_dirty(struct conn *c)
{
	if (!c->dirty && !c->dead) {
		c->dirty = 1;
		c->next_dirty = dirty_head;
		dirty_head = c;
	}
}

static void stream_failed(struct stream *s, int h2err)
{
	if (s->failed)
		return;
	s->failed = 1;
	if (h2err < 0)
		err_conn++;
	else if (s->grpc_status > 0 && s->grpc_status <= 16)
		err_status[s->grpc_status]++;
	else if (s->grpc_status > 16)
		err_other_status++;
	else if (s->grpc_status == 0 && !h2err)
		err_status[0]++; /* OK before the client ended the call: the server dropped it */
	else
		err_h2++;
}

static ssize_t read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct stream *s = src->ptr;
	size_t n = 0;
	(void)ng;
	(void)sid;
	(void)ud;
	while (n < length && s->qlen) {
		struct seg *g = &s->q[s->qhead];
		size_t tot = g->hlen + g->blen, k;
		if (g->pos < g->hlen) {
			k = g->hlen - g->pos;
			if (k > length - n)
				k = length - n;
			memcpy(buf + n, g->hdr + g->pos, k);
		} else {
			k = tot - g->pos;
			if (k > length - n)
				k = length - n;
			memcpy(buf + n, g->body + (g->pos - g->hlen), k);
		}
		n += k;
		g->pos += k;
		queued_bytes -= k;
		if (g->pos == tot) {
			if (g->slot)
				slot_put(g->slot);
			s->qhead = (s->qhead + 1) % s->qcap;
			s->qlen--;
		}
	}
	if (n)
		return (ssize_t)n;
	if (s->eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	s->deferred = 1;
	return NGHTTP2_ERR_DEFERRED;
}

static void resume(struct stream *s)
{
	if (s->deferred && !s->closed) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->c->ng, s->sid);
	}
	mark_dirty(s->c);
}

static void enqueue(struct stream *s, struct slot *slot, const uint8_t *hdr, size_t hlen,
		    const uint8_t *body, size_t blen)
{
	struct seg *g;
	if (s->qlen == s->qcap) { /* grow the ring, unwrapping it */
		size_t cap = s->qcap ? s->qcap * 2 : 4;
		struct seg *q = xcalloc(cap, sizeof(*q));
		for (size_t i = 0; i < s->qlen; i++)
			q[i] = s->q[(s->qhead + i) % s->qcap];
		free(s->q);
		s->q = q;
		s->qcap = cap;
		s->qhead = 0;
	}
	g = &s->q[(s->qhead + s->qlen) % s->qcap];
	if (hlen)
		memcpy(g->hdr, hdr, hlen);
	g->slot = slot;
	g->hlen = hlen;
	g->body = body;
	g->blen = blen;
	g->pos = 0;
	s->qlen++;
	queued_bytes += hlen + blen;
	resume(s);
}

static int64_t sched_tail(const struct stream *s)
{
	int64_t t = s->acked;
	if (have_delta && s->visible < t)
		t = s->visible;
	return t + 1;
}

static void sched_put(struct stream *s, int64_t off, int64_t when)
{
	int64_t tail = sched_tail(s);
	if ((size_t)(off - tail) >= s->scap) { /* grow: rehash the live range */
		size_t cap = s->scap ? s->scap * 2 : 4;
		while ((size_t)(off - tail) >= cap)
			cap *= 2;
		int64_t *n = xcalloc(cap, sizeof(*n));
		for (int64_t o = tail; o < off; o++)
			n[(size_t)o & (cap - 1)] = s->sched[(size_t)o & (s->scap - 1)];
		free(s->sched);
		s->sched = n;
		s->scap = cap;
	}
	s->sched[(size_t)off & (s->scap - 1)] = when;
}

/* Queues the stream's next batch, scheduled at `when` (latency is measured from it). */
static void send_batch(struct stream *s, int64_t when)
{
	if (queued_bytes > max_queued_bytes) { /* the client cannot keep up: say so, do not grow */
		skipped_n++;
		return;
	}
	int64_t off = s->next_off++;
	uint8_t h[32], inner[24];
	size_t il = 0, n;
	struct slot *slot = slot_get();
	patch_batch(slot->body, wall_us());
	sched_put(s, off, when);
	if (measuring && when >= t_measure && when < t_end_ns)
		offered_n++;
	inner[il++] = 0x08;
	il += put_varint(inner + il, (uint64_t)off);
	inner[il++] = 0x12;
	il += put_varint(inner + il, batch_body_len);
	size_t l1 = il + batch_body_len;
	n = 5;
	h[n++] = (uint8_t)(wire->batch_field << 3 | 2);
	n += put_varint(h + n, l1);
	memcpy(h + n, inner, il);
	n += il;
	uint32_t mlen = (uint32_t)(n - 5 + batch_body_len);
	h[0] = 0;
	h[1] = (uint8_t)(mlen >> 24);
	h[2] = (uint8_t)(mlen >> 16);
	h[3] = (uint8_t)(mlen >> 8);
	h[4] = (uint8_t)mlen;
	enqueue(s, slot, h, n, slot->body, batch_body_len);
}

static void fill_window(struct stream *s, int64_t now)
{
	if (open_loop || s->closed || s->eof || !s->created)
		return;
	while (s->next_off < s->target && s->next_off - 1 - s->acked < window)
		send_batch(s, now);
}

static void on_ack(struct stream *s, int64_t a, int64_t now)
{
	if (a >= s->next_off)
		die("stream %d: ack %lld beyond sent %lld", s->idx, (long long)a,
		    (long long)s->next_off);
	for (int64_t o = s->acked + 1; o <= a; o++) {
		int64_t when = s->sched[(size_t)o & (s->scap - 1)];
		if (measuring && when >= t_measure && when < t_end_ns)
			h_add(&h_ack, now - when);
		if (measuring && now >= t_measure && now <= t_end_ns)
			achieved_n++;
	}
	if (a > s->acked)
		s->acked = a;
	fill_window(s, now);
}

static void mark_visible(struct stream *s, int64_t v, int64_t now);

static void on_response(struct stream *s, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	int64_t now = mono_ns();
	while (p < end) {
		uint64_t key, l;
		if (get_varint(&p, end, &key))
			die("bad response");
		if ((key & 7) != 2 || get_varint(&p, end, &l) || l > (uint64_t)(end - p))
			die("bad response field");
		const uint8_t *q = p, *qe = p + l;
		p += l;
		if (key >> 3 == 1) { /* create_stream_response { 1: stream_id } */
			uint64_t k2, l2;
			while (q < qe) {
				if (get_varint(&q, qe, &k2) || get_varint(&q, qe, &l2) ||
				    l2 > (uint64_t)(qe - q))
					die("bad create response");
				if (k2 >> 3 == 1 && !s->id) {
					s->id = xcalloc(1, l2 + 1);
					memcpy(s->id, q, l2);
				}
				q += l2;
			}
			if (!s->created) {
				s->created = 1;
				created_n++;
				h_add(&h_create, now - s->t_open);
				if (!t_first_create)
					t_first_create = now;
				t_last_create = now;
				settle(s);
			}
		} else if (key >> 3 == (uint64_t)wire->ack_field) { /* { 1: ack up to offset } */
			/* 1: durability ack; 1000: table_committed_up_to_offset (never above
			 * the ack of the same message), applied after the ack */
			uint64_t k2, v;
			int64_t committed = -1;
			while (q < qe) {
				if (get_varint(&q, qe, &k2) || (k2 & 7) != 0 ||
				    get_varint(&q, qe, &v))
					die("bad ack");
				if (k2 >> 3 == 1)
					on_ack(s, (int64_t)v, now);
				else if (k2 >> 3 == 1000)
					committed = (int64_t)v;
			}
			if (committed_acks && committed >= 0)
				mark_visible(s, committed, now);
		} else if (key >> 3 == (uint64_t)wire->close_field) {
			close_signals++;
		}
	}
}

static int data_cb(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
		   void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(ng, sid);
	(void)flags;
	(void)ud;
	if (!s)
		return 0;
	if (s->rxlen + len > s->rxcap) {
		s->rxcap = (s->rxlen + len) * 2;
		s->rx = xrealloc(s->rx, s->rxcap);
	}
	memcpy(s->rx + s->rxlen, data, len);
	s->rxlen += len;
	size_t pos = 0;
	while (s->rxlen - pos >= 5) {
		uint32_t ml = (uint32_t)s->rx[pos + 1] << 24 | (uint32_t)s->rx[pos + 2] << 16 |
			      (uint32_t)s->rx[pos + 3] << 8 | s->rx[pos + 4];
		if (s->rxlen - pos - 5 < ml)
			break;
		on_response(s, s->rx + pos + 5, ml);
		pos += 5 + ml;
	}
	memmove(s->rx, s->rx + pos, s->rxlen - pos);
	s->rxlen -= pos;
	return 0;
}

static int header_cb(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	(void)flags;
	(void)ud;
	(void)vl;
	if (s && nl == 11 && !memcmp(name, "grpc-status", 11))
		s->grpc_status = atoi((const char *)value);
	return 0;
}

static int close_cb(nghttp2_session *ng, int32_t sid, uint32_t err, void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(ng, sid);
	(void)ud;
	if (!s)
		return 0;
	s->closed = 1;
	settle(s);
	if (!s->eof || err || s->grpc_status != 0)
		stream_failed(s, (int)err);
	while (s->qlen) { /* what was never sent goes back to the pool */
		struct seg *g = &s->q[s->qhead];
		queued_bytes -= g->hlen + g->blen - g->pos;
		if (g->slot)
			slot_put(g->slot);
		s->qhead = (s->qhead + 1) % s->qcap;
		s->qlen--;
	}
	return 0;
}

static void build_create(const char *table)
{
	/* PersistentStreamRequest{1: CreatePersistentStreamRequest{1: CreateIngestStreamRequest{
	 * 1: table_name, 4: record_type = PROTO}}}, or EphemeralStreamRequest{1: Create...} */
	uint8_t inner[400], *m = create_msg + 5;
	size_t il = 0, tl = strlen(table), n = 0;
	if (tl > 300)
		die("table name too long");
	inner[il++] = 0x0a;
	il += put_varint(inner + il, tl);
	memcpy(inner + il, table, tl);
	il += tl;
	inner[il++] = 0x20;
	inner[il++] = 1;
	if (wire == &W_PERSISTENT) {
		m[n++] = 0x0a;
		n += put_varint(m + n, il + 1 + (il < 128 ? 1 : 2));
	}
	m[n++] = 0x0a;
	n += put_varint(m + n, il);
	memcpy(m + n, inner, il);
	n += il;
	create_msg[0] = 0;
	create_msg[1] = create_msg[2] = 0;
	create_msg[3] = (uint8_t)(n >> 8);
	create_msg[4] = (uint8_t)n;
	create_len = n + 5;
}

static void open_conn(struct conn *c, const char *host, int port, const char *table)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	nghttp2_session_callbacks *cb;
	int one = 1;
	char authority[96];

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad host %s", host);
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s (raise ulimit -n?)", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect %s:%d: %s", host, port, strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));

	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, close_cb);
	nghttp2_session_client_new(&c->ng, cb, c);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
	nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 1);

	snprintf(authority, sizeof(authority), "%s:%d", host, port);
#define NV(a, b) {(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
	nghttp2_nv hdrs[] = {NV(":method", "POST"),
			     NV(":scheme", "http"),
			     NV(":path", wire->path),
			     NV(":authority", authority),
			     NV("content-type", "application/grpc"),
			     NV("te", "trailers"),
			     NV("x-databricks-zerobus-table-name", table),
			     NV("runnel-committed-acks", "1")};
#undef NV
	for (int i = 0; i < c->n; i++) {
		struct stream *s = &c->first[i];
		nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_cb};
		s->c = c;
		s->acked = s->visible = -1;
		s->grpc_status = -1;
		s->t_open = mono_ns();
		enqueue(s, NULL, NULL, 0, create_msg, create_len);
		s->deferred = 0;
		/* the last header only with --committed */
		size_t nh = sizeof(hdrs) / sizeof(hdrs[0]) - (committed_acks ? 0 : 1);
		if ((s->sid = nghttp2_submit_request(c->ng, NULL, hdrs, nh, &dp, s)) < 0)
			die("submit_request: %s", nghttp2_strerror(s->sid));
	}
	mark_dirty(c);
}

/* The connection is gone: every call on it that has not ended counts as lost. */
static void conn_lost(struct conn *c, const char *why)
{
	int lost = 0;
	if (c->dead)
		return;
	c->dead = 1;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	for (int i = 0; i < c->n; i++) {
		struct stream *s = &c->first[i];
		if (!s->closed) {
			s->closed = 1;
			settle(s);
			stream_failed(s, -1);
			lost++;
		}
	}
	if (lost)
		fprintf(stderr, "zb_load: connection %d: %s (%d calls lost)\n", c->idx, why, lost);
}

/* ---- open-loop schedule: a min-heap of streams by next_due ---- */

static struct stream **heap;
static size_t heap_n;

static void heap_push(struct stream *s)
{
	size_t i = heap_n++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (heap[p]->next_due <= s->next_due)
			break;
		heap[i] = heap[p];
		i = p;
	}
	heap[i] = s;
}

static struct stream *heap_pop(void)
{
	struct stream *top = heap[0], *last = heap[--heap_n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= heap_n)
			break;
		if (l + 1 < heap_n && heap[l + 1]->next_due < heap[l]->next_due)
			m = l + 1;
		if (heap[m]->next_due >= last->next_due)
			break;
		heap[i] = heap[m];
		i = m;
	}
	if (heap_n)
		heap[i] = last;
	return top;
}

/* ---- visibility via inotify ---- */

static int inofd = -1;
static const char *delta_dir;
static int64_t versions_seen;
static struct stream **idmap;
static size_t idmap_cap;

static size_t id_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return (size_t)h & (idmap_cap - 1);
}

static void idmap_build(void)
{
	idmap_cap = 16;
	while (idmap_cap < (size_t)nstreams * 2)
		idmap_cap *= 2;
	idmap = xcalloc(idmap_cap, sizeof(*idmap));
	for (int i = 0; i < nstreams; i++) {
		struct stream *s = &streams[i];
		if (!s->id)
			continue;
		size_t h = id_hash(s->id, strlen(s->id));
		s->hnext = idmap[h];
		idmap[h] = s;
	}
}

static struct stream *idmap_find(const char *p, size_t n)
{
	if (!idmap)
		return NULL;
	for (struct stream *s = idmap[id_hash(p, n)]; s; s = s->hnext)
		if (strlen(s->id) == n && !memcmp(s->id, p, n))
			return s;
	return NULL;
}

/* Every batch of s up to offset v is in the table (seen at now): times the ones not yet seen. */
static void mark_visible(struct stream *s, int64_t v, int64_t now)
{
	for (int64_t o = s->visible + 1; o <= v && o < s->next_off; o++) {
		int64_t when = s->sched[(size_t)o & (s->scap - 1)];
		if (when >= t_measure && when < t_end_ns)
			h_add(&h_vis, now - when);
	}
	if (v > s->visible)
		s->visible = v < s->next_off ? v : s->next_off - 1;
}

static void read_version(const char *dir, const char *name, int64_t now)
{
	char path[4096];
	static char *buf;
	static size_t cap;
	static const char key[] = "\"appId\":\"", ver[] = "\",\"version\":";
	size_t n = 0, r;
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "r")))
		return;
	for (;;) {
		if (n + 65536 > cap) {
			cap = (n + 65536) * 2;
			buf = xrealloc(buf, cap + 1);
		}
		if (!(r = fread(buf + n, 1, cap - n, f)))
			break;
		n += r;
	}
	fclose(f);
	buf[n] = 0;
	versions_seen++;
	for (char *p = buf; (p = strstr(p, key));) {
		char *id = p + sizeof(key) - 1, *q = strchr(id, '"');
		if (!q)
			break;
		p = q;
		struct stream *s = idmap_find(id, (size_t)(q - id));
		if (!s || strncmp(q, ver, sizeof(ver) - 1))
			continue;
		mark_visible(s, atoll(q + sizeof(ver) - 1), now);
	}
}

static void handle_inotify(void)
{
	char buf[8192] __attribute__((aligned(8)));
	ssize_t n;
	int64_t now = mono_ns();
	while ((n = read(inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			size_t nl = e->len ? strlen(e->name) : 0;
			if (nl == 25 && !strcmp(e->name + 20, ".json") && e->name[0] != '.')
				read_version(delta_dir, e->name, now);
			p += sizeof(*e) + e->len;
		}
	}
}

/* ---- the loop ---- */

/* Moves the connection's pending frames to its socket, 64 KB at a time, until nghttp2 has
 * nothing more or the socket is full (then EPOLLOUT says when to go on). */
static void conn_flush(struct conn *c)
{
	for (;;) {
		while (c->outlen < 65536) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(c->ng, &d);
			if (n < 0) {
				conn_lost(c, nghttp2_strerror((int)n));
				return;
			}
			if (!n)
				break;
			if (c->outlen + (size_t)n > c->outcap) {
				c->outcap = (c->outlen + (size_t)n) * 2;
				c->out = xrealloc(c->out, c->outcap);
			}
			memcpy(c->out + c->outlen, d, (size_t)n);
			c->outlen += (size_t)n;
		}
		if (!c->outlen)
			break;
		ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_lost(c, strerror(errno));
			return;
		}
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
		if (c->outlen)
			break; /* the socket took part: it is full */
	}
	int want = c->outlen > 0;
	if (want != c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
		c->want_out = (uint8_t)want;
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void flush_dirty(void)
{
	while (dirty_head) {
		struct conn *c = dirty_head;
		dirty_head = c->next_dirty;
		c->dirty = 0;
		if (!c->dead)
			conn_flush(c);
	}
}

static void conn_read(struct conn *c)
{
	uint8_t buf[65536];
	ssize_t n;
	while ((n = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
		ssize_t rv = nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
		if (rv < 0) {
			conn_lost(c, nghttp2_strerror((int)rv));
			return;
		}
	}
	if (n == 0)
		conn_lost(c, "closed by the server");
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		conn_lost(c, strerror(errno));
	else
		mark_dirty(c); /* WINDOW_UPDATEs, SETTINGS acks, or sends an ack allowed */
}

/* One turn: due batches, flush, wait at most until `deadline` (or the next due batch). */
static void turn(int64_t deadline)
{
	static struct epoll_event evs[256];
	int64_t now = mono_ns();
	while (heap_n && heap[0]->next_due <= now) {
		struct stream *s = heap_pop();
		if (s->closed || s->eof || s->next_due >= t_end_ns)
			continue;
		send_batch(s, s->next_due);
		s->next_due += s->target; /* open loop: target holds the interval in ns */
		heap_push(s);
	}
	flush_dirty();
	if (heap_n && heap[0]->next_due < deadline)
		deadline = heap[0]->next_due;
	int64_t wait = deadline - mono_ns();
	int ms = wait <= 0 ? 0 : wait > 1000000000 ? 1000 : (int)((wait + 999999) / 1000000);
	int n = epoll_wait(epfd, evs, 256, ms);
	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (!c) {
			handle_inotify();
			continue;
		}
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_read(c);
		if (!c->dead && (evs[i].events & EPOLLOUT))
			mark_dirty(c);
	}
	flush_dirty();
}

static void fsync_probe(const char *path, int count, size_t bytes)
{
	uint8_t *buf = malloc(bytes);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct hist h = {0};
	if (fd < 0 || !buf)
		die("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < bytes; i++)
		buf[i] = (uint8_t)xrand();
	int64_t t0 = mono_ns();
	for (int i = 0; i < count; i++) {
		int64_t t = mono_ns();
		if (write(fd, buf, bytes) != (ssize_t)bytes || fdatasync(fd))
			die("write/fdatasync %s: %s", path, strerror(errno));
		h_add(&h, mono_ns() - t);
	}
	double el = (double)(mono_ns() - t0) / 1e9;
	close(fd);
	unlink(path);
	printf("probe_bytes=%zu\nprobe_mbps=%.1f\n", bytes, (double)bytes * count / 1e6 / el);
	printf("fsync_n=%llu\nfsync_p50_ms=%.3f\nfsync_p90_ms=%.3f\nfsync_p99_ms=%.3f\n"
	       "fsync_max_ms=%.3f\n",
	       (unsigned long long)h.n, h_pct(&h, 0.5), h_pct(&h, 0.9), h_pct(&h, 0.99),
	       (double)h.max / 1e6);
}

static const char *const status_names[17] = {"OK",
					     "CANCELLED",
					     "UNKNOWN",
					     "INVALID_ARGUMENT",
					     "DEADLINE_EXCEEDED",
					     "NOT_FOUND",
					     "ALREADY_EXISTS",
					     "PERMISSION_DENIED",
					     "RESOURCE_EXHAUSTED",
					     "FAILED_PRECONDITION",
					     "ABORTED",
					     "OUT_OF_RANGE",
					     "UNIMPLEMENTED",
					     "INTERNAL",
					     "UNAVAILABLE",
					     "DATA_LOSS",
					     "UNAUTHENTICATED"};

static void usage(void)
{
	fprintf(stderr,
		"usage: zb_load [options] HOST:PORT TABLE\n"
		"  -s N            streams (calls), default 4; any number (raise ulimit -n)\n"
		"  -C N            streams per HTTP/2 connection, default 1\n"
		"  -b N            records per batch, default 1000\n"
		"  --record-bytes N  payload bytes per record, default 1000 (record = +64 B)\n"
		"  -w N            unacknowledged batches per stream (closed loop), default 4\n"
		"  -n BYTES        record bytes to send (closed loop), default 1e9\n"
		"  -R N            open loop: batches/s per stream\n"
		"  -r MBPS         open loop: total rate in MB/s of record bytes\n"
		"  -t SEC          open loop: measured duration, default 10\n"
		"  --warmup SEC    open loop: seconds sent before the measured window, default 0\n"
		"  --drain SEC     wait at most this for the last acks (and -d), default 30\n"
		"  --ephemeral     EphemeralStream calls instead of PersistentStream\n"
		"  -d DIR          the table's _delta_log: wait for and time visibility\n"
		"  --committed     wait for and time visibility by committed acks (any store)\n"
		"  -p PID          the server's pid: its CPU over the window, RSS, VmHWM\n"
		"  --kv | --json   key=value lines | one JSON object instead of the summary line\n"
		"  --dump FILE            write the record bytes of a closed-loop run, exit\n"
		"  --fsync-probe FILE     -c COUNT x (write one batch + fdatasync), exit\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int s_n = 4, per_conn = 1, pid = 0, probe_count = 200, out_kv = 0, out_json = 0;
	size_t b = 1000;
	double total = 1e9, rate = 0, rate_ps = 0, secs = 10, warmup = 0, drain = 30;
	const char *dump = NULL, *probe = NULL;
	enum { O_DUMP = 256, O_PROBE, O_RECB, O_WARM, O_DRAIN, O_EPH, O_KV, O_JSON, O_COMMITTED };
	static const struct option lo[] = {{"dump", required_argument, 0, O_DUMP},
					   {"fsync-probe", required_argument, 0, O_PROBE},
					   {"record-bytes", required_argument, 0, O_RECB},
					   {"warmup", required_argument, 0, O_WARM},
					   {"drain", required_argument, 0, O_DRAIN},
					   {"ephemeral", no_argument, 0, O_EPH},
					   {"committed", no_argument, 0, O_COMMITTED},
					   {"kv", no_argument, 0, O_KV},
					   {"json", no_argument, 0, O_JSON},
					   {0, 0, 0, 0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "s:C:b:w:n:r:R:t:d:p:c:", lo, NULL)) != -1) {
		switch (opt) {
		case 's': s_n = atoi(optarg); break;
		case 'C': per_conn = atoi(optarg); break;
		case 'b': b = (size_t)atol(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 'n': total = atof(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'R': rate_ps = atof(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'd': delta_dir = optarg; break;
		case 'p': pid = atoi(optarg); break;
		case 'c': probe_count = atoi(optarg); break;
		case O_DUMP: dump = optarg; break;
		case O_PROBE: probe = optarg; break;
		case O_RECB: payload_len = (size_t)atol(optarg); break;
		case O_WARM: warmup = atof(optarg); break;
		case O_DRAIN: drain = atof(optarg); break;
		case O_EPH: wire = &W_EPHEMERAL; break;
		case O_COMMITTED: committed_acks = have_delta = 1; break;
		case O_KV: out_kv = 1; break;
		case O_JSON: out_json = 1; break;
		default: usage();
		}
	}
	if (s_n < 1 || per_conn < 1 || b < 1 || window < 1 || payload_len < 40 ||
	    payload_len > (1 << 20) || secs <= 0 || warmup < 0 || drain < 0 || probe_count < 1 ||
	    (rate > 0 && rate_ps > 0))
		usage();
	open_loop = rate > 0 || rate_ps > 0;
	nstreams = s_n;
	build_layout(b);
	size_t per_batch = b * L.len;
	if (probe) {
		fsync_probe(probe, probe_count, per_batch);
		return 0;
	}
	int64_t nb_total = (int64_t)(total / (double)per_batch + 0.5);
	if (nb_total < s_n)
		nb_total = s_n;
	if (dump) {
		FILE *f = fopen(dump, "w");
		struct slot *ring[64];
		if (!f)
			die("%s: %s", dump, strerror(errno));
		for (int i = 0; i < 64; i++)
			ring[i] = slot_new();
		for (int64_t i = 0; i < nb_total; i++) {
			uint8_t *body = ring[i % 64]->body;
			patch_batch(body, 1760000000000000);
			if (fwrite(body, 1, batch_body_len, f) != batch_body_len)
				die("write %s", dump);
		}
		if (fclose(f))
			die("write %s", dump);
		printf("dump_bytes=%lld\nbatch_bytes=%zu\n",
		       (long long)(nb_total * (int64_t)per_batch), per_batch);
		return 0;
	}
	if (optind + 2 != argc)
		usage();
	char host[64];
	const char *colon = strrchr(argv[optind], ':');
	if (!colon || colon - argv[optind] >= (long)sizeof(host))
		usage();
	memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
	host[colon - argv[optind]] = 0;
	int port = atoi(colon + 1);
	const char *table = argv[optind + 1];

	/* as many descriptors as the hard limit allows (root can raise it with ulimit -Hn) */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	if (delta_dir) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if ((inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
		    inotify_add_watch(inofd, delta_dir, IN_CREATE | IN_MOVED_TO) < 0 ||
		    epoll_ctl(epfd, EPOLL_CTL_ADD, inofd, &ev))
			die("inotify %s: %s", delta_dir, strerror(errno));
		have_delta = 1;
	}
	build_create(table);
	streams = xcalloc((size_t)s_n, sizeof(*streams));
	nconns = (s_n + per_conn - 1) / per_conn;
	conns = xcalloc((size_t)nconns, sizeof(*conns));
	heap = xcalloc((size_t)s_n, sizeof(*heap));
	for (int i = 0; i < s_n; i++) {
		streams[i].idx = i;
		streams[i].target = nb_total / s_n + (i < nb_total % s_n);
	}
	int64_t t_open = t_open0 = mono_ns();
	for (int i = 0; i < nconns; i++) {
		conns[i].idx = i;
		conns[i].first = &streams[i * per_conn];
		conns[i].n = i == nconns - 1 ? s_n - i * per_conn : per_conn;
		open_conn(&conns[i], host, port, table);
		if (i % 16 == 15)
			turn(0); /* take the answers as they come, not all at the end */
	}
	/* wait for every create response (or the call's end), as long as some keep coming:
	 * a server registering streams one fsync at a time takes minutes for 50,000 */
	uint64_t ended_before = 0;
	int64_t report = mono_ns() + 5000000000;
	for (int64_t stall = mono_ns() + 30000000000; mono_ns() < stall;) {
		uint64_t ended = settled_n;
		if (ended == (uint64_t)s_n)
			break;
		if (mono_ns() >= report) { /* a long opening shows its progress */
			fprintf(stderr, "zb_load: %.0f s: %llu of %d creates answered\n",
				(double)(mono_ns() - t_open) / 1e9, (unsigned long long)ended, s_n);
			report += 5000000000;
		}
		if (ended != ended_before)
			stall = mono_ns() + 30000000000;
		ended_before = ended;
		turn(mono_ns() + 100000000);
	}
	double t_created = (double)(mono_ns() - t_open) / 1e9;
	if (have_delta)
		idmap_build();

	int64_t t0 = mono_ns(), t_ack = 0, t_vis = 0;
	double scpu0 = proc_cpu(pid), ccpu0 = self_cpu(), scpu_m0 = scpu0, ccpu_m0 = ccpu0;
	double scpu_m1 = 0, ccpu_m1 = 0, scpu_ack = 0, ccpu_ack = 0, scpu_vis = 0, ccpu_vis = 0;
	double srss = -1, shwm = -1;
	int64_t interval_ns = 0;
	measuring = 1;
	if (open_loop) {
		double per_s = rate_ps > 0 ? rate_ps : rate * 1e6 / (double)per_batch / s_n;
		interval_ns = (int64_t)(1e9 / per_s);
		if (interval_ns < 1)
			interval_ns = 1;
		t_measure = t0 + (int64_t)(warmup * 1e9);
		t_end_ns = t_measure + (int64_t)(secs * 1e9);
		for (int i = 0; i < s_n; i++) {
			struct stream *s = &streams[i];
			if (!s->created || s->closed)
				continue;
			s->target = interval_ns;
			s->next_due = t0 + (int64_t)(xrand() % (uint64_t)interval_ns);
			heap_push(s);
		}
		/* the warm-up, then the measured window */
		while (mono_ns() < t_measure)
			turn(t_measure);
		scpu_m0 = proc_cpu(pid);
		ccpu_m0 = self_cpu();
		while (mono_ns() < t_end_ns)
			turn(t_end_ns);
		scpu_m1 = proc_cpu(pid);
		ccpu_m1 = self_cpu();
		proc_rss(pid, &srss, &shwm);
	} else {
		for (int i = 0; i < s_n; i++)
			fill_window(&streams[i], t0);
	}
	/* until everything sent is acked (and in the table with -d), or the drain time is up */
	int64_t drain_until = 0;
	for (;;) {
		int64_t now = mono_ns();
		int sending = 0, all_acked = 1, all_vis = 1;
		for (int i = 0; i < s_n; i++) { /* O(streams), but only every 50 ms */
			struct stream *s = &streams[i];
			if (s->closed)
				continue;
			sending |= !open_loop && s->next_off < s->target;
			all_acked &= s->acked == s->next_off - 1;
			all_vis &= s->visible == s->next_off - 1;
		}
		if (!sending && !drain_until)
			drain_until = now + (int64_t)(drain * 1e9);
		if (!sending && all_acked && !t_ack) {
			t_ack = now;
			scpu_ack = proc_cpu(pid);
			ccpu_ack = self_cpu();
		}
		if (!sending && all_acked && (all_vis || !have_delta)) {
			t_vis = now;
			scpu_vis = proc_cpu(pid);
			ccpu_vis = self_cpu();
			break;
		}
		if (drain_until && now >= drain_until) {
			fprintf(stderr, "zb_load: drain time up with batches %s\n",
				all_acked ? "not yet in the table" : "unacknowledged");
			t_vis = now;
			if (!t_ack)
				t_ack = now;
			break;
		}
		int64_t until = now + 50000000;
		while (mono_ns() < until)
			turn(until);
	}
	if (!open_loop) {
		scpu_m1 = scpu_ack;
		ccpu_m1 = ccpu_ack;
		proc_rss(pid, &srss, &shwm);
	}
	/* half-close every call; the server ends them with OK once all is acked */
	for (int i = 0; i < s_n; i++) {
		streams[i].eof = 1;
		if (!streams[i].closed && streams[i].c && !streams[i].c->dead)
			resume(&streams[i]);
	}
	for (int64_t until = mono_ns() + 10000000000; mono_ns() < until;) {
		int open = 0;
		for (int i = 0; i < s_n; i++)
			open += !streams[i].closed;
		if (!open)
			break;
		turn(mono_ns() + 50000000);
	}
	double shwm_end, srss_end;
	proc_rss(pid, &srss_end, &shwm_end);
	if (shwm_end > shwm)
		shwm = shwm_end;

	int64_t nb = 0, unacked = 0, unclosed = 0;
	uint64_t errors = err_h2 + err_conn + err_other_status;
	for (int i = 0; i < s_n; i++) {
		struct stream *s = &streams[i];
		nb += s->next_off;
		unacked += s->next_off - 1 - s->acked;
		unclosed += !s->closed;
		if (!s->created && !s->failed)
			errors++; /* never answered the create */
	}
	for (int i = 0; i <= 16; i++)
		errors += err_status[i];
	double win = open_loop ? secs : (double)(t_ack - t0) / 1e9;
	double offered = open_loop ? (double)offered_n / win : (double)nb / win;
	double achieved = open_loop ? (double)achieved_n / win : (double)(nb - unacked) / win;
	double mbps_f = (double)per_batch / 1e6;
	double scpu_pct = pid ? 100 * (scpu_m1 - scpu_m0) / win : 0;
	double ccpu_pct = 100 * (ccpu_m1 - ccpu_m0) / win;
	double rb = (double)nb * (double)per_batch;

	if (out_kv) {
		printf("streams=%d\nconnections=%d\nstreams_created=%llu\nt_create_s=%.3f\n"
		       "records_per_batch=%zu\nrecord_bytes_each=%zu\nbatches=%lld\n"
		       "records=%lld\nrecord_bytes=%.0f\npayload_bytes=%.0f\n",
		       s_n, nconns, (unsigned long long)created_n, t_created, b, L.len,
		       (long long)nb, (long long)nb * (long long)b, rb,
		       (double)nb * (double)b * (double)payload_len);
		printf("window_s=%.3f\noffered_bps=%.1f\nachieved_bps=%.1f\noffered_mbps=%.3f\n"
		       "achieved_mbps=%.3f\n",
		       win, offered, achieved, offered * mbps_f, achieved * mbps_f);
		printf("t_ack_s=%.3f\nt_table_s=%.3f\n", (double)(t_ack - t0) / 1e9,
		       (double)(t_vis - t0) / 1e9);
		printf("client_cpu_ack_s=%.3f\nclient_cpu_table_s=%.3f\nclient_cpu_pct=%.1f\n",
		       ccpu_ack - ccpu0, ccpu_vis - ccpu0, ccpu_pct);
		if (pid)
			printf("server_cpu_ack_s=%.3f\nserver_cpu_table_s=%.3f\nserver_cpu_pct=%."
			       "1f\n"
			       "server_rss_mb=%.1f\nserver_hwm_mb=%.1f\n",
			       scpu_ack - scpu0, scpu_vis - scpu0, scpu_pct, srss, shwm);
		printf("delta_versions=%lld\n", (long long)versions_seen);
		printf("create_n=%llu\ncreate_first_ms=%.3f\ncreate_last_ms=%.3f\n"
		       "create_p50_ms=%.3f\ncreate_p99_ms=%.3f\ncreate_max_ms=%.3f\n",
		       (unsigned long long)h_create.n, since_open_ms(t_first_create),
		       since_open_ms(t_last_create), h_pct(&h_create, 0.5), h_pct(&h_create, 0.99),
		       (double)h_create.max / 1e6);
		printf("errors=%llu\nunacked=%lld\nunclosed=%lld\nskipped=%llu\nclose_signals=%"
		       "llu\n",
		       (unsigned long long)errors, (long long)unacked, (long long)unclosed,
		       (unsigned long long)skipped_n, (unsigned long long)close_signals);
		for (int i = 0; i <= 16; i++)
			if (err_status[i])
				printf("errors_%s=%llu\n", status_names[i],
				       (unsigned long long)err_status[i]);
		if (err_h2)
			printf("errors_h2_reset=%llu\n", (unsigned long long)err_h2);
		if (err_conn)
			printf("errors_connection_lost=%llu\n", (unsigned long long)err_conn);
		printf("ack_n=%llu\nack_p50_ms=%.3f\nack_p90_ms=%.3f\nack_p99_ms=%.3f\n"
		       "ack_p999_ms=%.3f\nack_max_ms=%.3f\n",
		       (unsigned long long)h_ack.n, h_pct(&h_ack, 0.5), h_pct(&h_ack, 0.9),
		       h_pct(&h_ack, 0.99), h_pct(&h_ack, 0.999), (double)h_ack.max / 1e6);
		if (have_delta)
			printf("vis_n=%llu\nvis_p50_ms=%.3f\nvis_p90_ms=%.3f\nvis_p99_ms=%.3f\n"
			       "vis_p999_ms=%.3f\nvis_max_ms=%.3f\n",
			       (unsigned long long)h_vis.n, h_pct(&h_vis, 0.5), h_pct(&h_vis, 0.9),
			       h_pct(&h_vis, 0.99), h_pct(&h_vis, 0.999), (double)h_vis.max / 1e6);
	} else if (out_json) {
		printf("{\"streams\":%d,\"connections\":%d,\"streams_created\":%llu,"
		       "\"mode\":\"%s\",\"loop\":\"%s\",\"rate_per_stream\":%.6g,"
		       "\"records_per_batch\":%zu,\"record_bytes_each\":%zu,\"window_s\":%.3f,"
		       "\"batches\":%lld,\"records\":%lld,"
		       "\"offered_bps\":%.1f,\"achieved_bps\":%.1f,\"offered_mbps\":%.3f,"
		       "\"achieved_mbps\":%.3f,",
		       s_n, nconns, (unsigned long long)created_n,
		       wire == &W_PERSISTENT ? "persistent" : "ephemeral",
		       open_loop ? "open" : "closed", open_loop ? 1e9 / (double)interval_ns : 0.0,
		       b, L.len, win, (long long)nb, (long long)nb * (long long)b, offered,
		       achieved, offered * mbps_f, achieved * mbps_f);
		printf("\"ack_ms\":{\"n\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
		       "\"p999\":%.3f,\"max\":%.3f},",
		       (unsigned long long)h_ack.n, h_pct(&h_ack, 0.5), h_pct(&h_ack, 0.9),
		       h_pct(&h_ack, 0.99), h_pct(&h_ack, 0.999), (double)h_ack.max / 1e6);
		if (have_delta)
			printf("\"vis_ms\":{\"n\":%llu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
			       (unsigned long long)h_vis.n, h_pct(&h_vis, 0.5), h_pct(&h_vis, 0.99),
			       (double)h_vis.max / 1e6);
		printf("\"create_ms\":{\"n\":%llu,\"first\":%.3f,\"last\":%.3f,\"p50\":%.3f,"
		       "\"p99\":%.3f,\"max\":%.3f},",
		       (unsigned long long)h_create.n, since_open_ms(t_first_create),
		       since_open_ms(t_last_create), h_pct(&h_create, 0.5), h_pct(&h_create, 0.99),
		       (double)h_create.max / 1e6);
		printf("\"errors\":{");
		const char *sep = "";
		for (int i = 0; i <= 16; i++)
			if (err_status[i]) {
				printf("%s\"%s\":%llu", sep, status_names[i],
				       (unsigned long long)err_status[i]);
				sep = ",";
			}
		if (err_h2)
			printf("%s\"h2_reset\":%llu", sep, (unsigned long long)err_h2), sep = ",";
		if (err_conn)
			printf("%s\"connection_lost\":%llu", sep, (unsigned long long)err_conn);
		printf("},\"errors_total\":%llu,\"unacked\":%lld,\"unclosed\":%lld,\"skipped\":%"
		       "llu,"
		       "\"close_signals\":%llu,\"client_cpu_pct\":%.1f",
		       (unsigned long long)errors, (long long)unacked, (long long)unclosed,
		       (unsigned long long)skipped_n, (unsigned long long)close_signals, ccpu_pct);
		if (pid)
			printf(",\"server\":{\"pid\":%d,\"cpu_pct\":%.1f,\"rss_mb\":%.1f,"
			       "\"hwm_mb\":%.1f}",
			       pid, scpu_pct, srss, shwm);
		printf("}\n");
	} else {
		printf("zb_load: %d streams / %d conns, %s loop", s_n, nconns,
		       open_loop ? "open" : "closed");
		if (open_loop)
			printf(" %.3g batch/s each", 1e9 / (double)interval_ns);
		printf("; creates %llu, first answered %.0f ms, all %.0f ms, ms p50 %.0f p99 %.0f "
		       "max %.0f",
		       (unsigned long long)h_create.n, since_open_ms(t_first_create),
		       since_open_ms(t_last_create), h_pct(&h_create, 0.5), h_pct(&h_create, 0.99),
		       (double)h_create.max / 1e6);
		printf(", %zu x %zu B records/batch, %.1f s: offered %.1f batch/s %.2f MB/s, "
		       "achieved %.1f batch/s %.2f MB/s; ack ms p50 %.2f p90 %.2f p99 %.2f "
		       "p99.9 %.2f max %.2f (n %llu); errors %llu",
		       b, L.len, win, offered, offered * mbps_f, achieved, achieved * mbps_f,
		       h_pct(&h_ack, 0.5), h_pct(&h_ack, 0.9), h_pct(&h_ack, 0.99),
		       h_pct(&h_ack, 0.999), (double)h_ack.max / 1e6, (unsigned long long)h_ack.n,
		       (unsigned long long)errors);
		for (int i = 0; i <= 16; i++)
			if (err_status[i])
				printf(" %s=%llu", status_names[i],
				       (unsigned long long)err_status[i]);
		if (err_h2)
			printf(" h2_reset=%llu", (unsigned long long)err_h2);
		if (err_conn)
			printf(" connection_lost=%llu", (unsigned long long)err_conn);
		printf(", unacked %lld", (long long)unacked);
		if (pid)
			printf("; server CPU %.1f%% of a core, RSS %.1f MB, peak %.1f MB", scpu_pct,
			       srss, shwm);
		printf("; client CPU %.1f%%\n", ccpu_pct);
	}
	return 0;
}
