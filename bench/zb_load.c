/*
 * zb_load: a Zerobus load generator for the server benchmarks (bench/server_throughput.sh,
 * bench/time_to_table.sh). Plain C over libnghttp2 and a poll() loop, one thread, so its own
 * CPU cost stays small next to the server's and is measured (getrusage) and reported.
 *
 * It opens S PersistentStream calls (one h2c connection each, like runnel-agent), each with
 * a create_stream, then sends IngestRecordBatchRequests of B runnel.v1.Record envelopes
 * (1000-byte JSON-like payload, every record unique) and takes the durability acks.
 *   closed loop (default): each stream keeps W batches unacknowledged, until --bytes of
 *                          record bytes are sent;
 *   open loop (--rate):    batches leave on a fixed schedule of --rate MB/s in total for
 *                          --seconds (moderate load: latency, not capacity).
 * With --delta-log DIR it watches the table's _delta_log with inotify: when a version file
 * appears (the server link()s it into place after writing and fsyncing it) it reads the
 * txn actions (appId = stream id, version = last offset) and marks every batch up to that
 * offset visible. Per batch it records send time (when queued to the connection), ack time
 * and visible time (CLOCK_MONOTONIC) and prints percentiles. With --pid it samples the
 * server's utime+stime (/proc/PID/stat) at start, when everything is acked and when
 * everything is in the table.
 *
 * Output: key=value lines on stdout. Other modes:
 *   --dump FILE          write the record bytes a run would send (for baselines), exit
 *   --fsync-probe FILE   N x (write B bytes + fdatasync) latencies on FILE's disk, exit
 *
 * Build: cc -O2 -o zb_load bench/zb_load.c -lnghttp2
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 1000

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#include <stdarg.h>
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
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

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

/* ---- the record pool ----
 * K batches of B records, built once from a seeded PRNG. Before a batch is queued its
 * records get a fresh 20-digit counter in the payload and the current event/receive time
 * (fixed-width fields, patched in place); K exceeds the batches that can be in flight, so a
 * slot is never patched while the connection may still read it. */
struct rec_layout {
	size_t len;          /* one record's bytes */
	size_t time1, time2; /* offsets of the 8-byte varints */
	size_t counter;      /* offset of the 20 digits */
};

static struct rec_layout L;
static uint8_t **pool;
static size_t pool_k, batch_records, batch_body_len;
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
	n += put_varint(p + n, PAYLOAD);
	/* payload: {"n":"<20 digits>","v":[ddd.ddd,ddd.ddd,...]} exactly PAYLOAD bytes */
	uint8_t *q = p + n;
	memcpy(q, "{\"n\":\"", 6);
	L.counter = n + 6;
	memset(q + 6, '0', 20);
	memcpy(q + 26, "\",\"v\":[", 7);
	for (size_t i = 33; i < PAYLOAD - 2; i++) {
		size_t k = (i - 33) % 8;
		q[i] = k == 3 ? '.' : k == 7 ? ',' : (uint8_t)('0' + xrand() % 10);
	}
	if (q[PAYLOAD - 3] == ',' || q[PAYLOAD - 3] == '.')
		q[PAYLOAD - 3] = '0';
	q[PAYLOAD - 2] = ']';
	q[PAYLOAD - 1] = '}';
	n += PAYLOAD;
	L.len = n;
	return n;
}

static void build_pool(size_t k, size_t b)
{
	uint8_t tmp[2048];
	size_t rl = build_record(tmp), hl;
	uint8_t h[16];
	hl = 1 + put_varint(h, rl);
	pool_k = k;
	batch_records = b;
	batch_body_len = b * (hl + rl);
	pool = calloc(k, sizeof(*pool));
	for (size_t i = 0; i < k; i++) {
		uint8_t *p = pool[i] = malloc(batch_body_len);
		if (!p)
			die("out of memory for the record pool");
		for (size_t j = 0; j < b; j++) {
			p[0] = 0x0a;
			put_varint(p + 1, rl);
			build_record(p + hl);
			p += hl + rl;
		}
	}
	L.time1 += hl;
	L.time2 += hl;
	L.counter += hl;
	L.len += hl; /* stride */
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

static uint8_t *patch_batch(uint64_t gbatch, int64_t now_us)
{
	uint8_t *b = pool[gbatch % pool_k];
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
	return b;
}

/* ---- streams and connections ---- */

struct seg {
	uint8_t hdr[32];
	size_t hlen;
	const uint8_t *body;
	size_t blen, pos;
};

struct bstat {
	int64_t send, ack, vis;
};

struct stream {
	int idx, fd;
	nghttp2_session *ng;
	int32_t sid;
	char id[64];
	int created, deferred, eof, closed, grpc_status;
	char grpc_msg[256];
	struct seg *q;
	size_t qcap, qhead, qlen;
	int64_t next_off, acked, visible, target; /* target: batches to send (closed loop) */
	int64_t next_due;                         /* open loop: ns */
	struct bstat *bs;
	size_t bscap;
	uint8_t *rx;
	size_t rxlen, rxcap;
	uint8_t create_msg[600];
	size_t create_len;
};

static struct stream *streams;
static int nstreams, window = 4;
static uint64_t gbatches;
static int64_t interval_ns;
static int64_t t_end_ns;
static int open_loop;

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct stream *s = ud;
	ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
	(void)ng;
	(void)flags;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? NGHTTP2_ERR_WOULDBLOCK
							       : NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
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
		if (g->pos == tot) {
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

static void enqueue(struct stream *s, const uint8_t *hdr, size_t hlen, const uint8_t *body,
		    size_t blen)
{
	struct seg *g;
	if (s->qlen == s->qcap)
		die("internal: send queue full");
	g = &s->q[(s->qhead + s->qlen) % s->qcap];
	if (hlen)
		memcpy(g->hdr, hdr, hlen);
	g->hlen = hlen;
	g->body = body;
	g->blen = blen;
	g->pos = 0;
	s->qlen++;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->ng, s->sid);
	}
}

static void send_batch(struct stream *s, int64_t now)
{
	int64_t off = s->next_off++;
	uint8_t h[32], inner[24];
	size_t il = 0, n;
	const uint8_t *body = patch_batch(gbatches++, wall_us());
	if ((size_t)off >= s->bscap) {
		s->bscap = s->bscap ? s->bscap * 2 : 1024;
		s->bs = realloc(s->bs, s->bscap * sizeof(*s->bs));
	}
	s->bs[off] = (struct bstat){now, 0, 0};
	inner[il++] = 0x08;
	il += put_varint(inner + il, (uint64_t)off);
	inner[il++] = 0x12;
	il += put_varint(inner + il, batch_body_len);
	size_t l1 = il + batch_body_len;
	n = 5;
	h[n++] = 0x22;
	n += put_varint(h + n, l1);
	memcpy(h + n, inner, il);
	n += il;
	uint32_t mlen = (uint32_t)(n - 5 + batch_body_len);
	h[0] = 0;
	h[1] = (uint8_t)(mlen >> 24);
	h[2] = (uint8_t)(mlen >> 16);
	h[3] = (uint8_t)(mlen >> 8);
	h[4] = (uint8_t)mlen;
	enqueue(s, h, n, body, batch_body_len);
}

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
				if (k2 >> 3 == 1 && l2 < sizeof(s->id)) {
					memcpy(s->id, q, l2);
					s->id[l2] = 0;
				}
				q += l2;
			}
			s->created = 1;
		} else if (key >> 3 == 3) { /* ingest_record_response { 1: offset } */
			uint64_t k2, v;
			while (q < qe) {
				if (get_varint(&q, qe, &k2) || (k2 & 7) != 0 ||
				    get_varint(&q, qe, &v))
					die("bad ack");
				if (k2 >> 3 == 1) {
					int64_t a = (int64_t)v;
					if (a >= s->next_off)
						die("ack %lld beyond sent %lld", (long long)a,
						    (long long)s->next_off);
					for (int64_t o = s->acked + 1; o <= a; o++)
						s->bs[o].ack = now;
					if (a > s->acked)
						s->acked = a;
				}
			}
		} else if (key >> 3 == 4) {
			fprintf(stderr, "zb_load: stream %d: close_stream_signal\n", s->idx);
		}
	}
}

static int data_cb(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
		   void *ud)
{
	struct stream *s = ud;
	(void)ng;
	(void)flags;
	if (sid != s->sid)
		return 0;
	if (s->rxlen + len > s->rxcap) {
		s->rxcap = (s->rxlen + len) * 2;
		s->rx = realloc(s->rx, s->rxcap);
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
	struct stream *s = ud;
	(void)ng;
	(void)f;
	(void)flags;
	if (nl == 11 && !memcmp(name, "grpc-status", 11))
		s->grpc_status = atoi((const char *)value);
	else if (nl == 12 && !memcmp(name, "grpc-message", 12))
		snprintf(s->grpc_msg, sizeof(s->grpc_msg), "%.*s", (int)vl, value);
	return 0;
}

static int close_cb(nghttp2_session *ng, int32_t sid, uint32_t err, void *ud)
{
	struct stream *s = ud;
	(void)ng;
	if (sid != s->sid)
		return 0;
	s->closed = 1;
	if (!s->eof || err || s->grpc_status != 0)
		die("stream %d closed early: h2 error %u, grpc-status %d %s", s->idx, err,
		    s->grpc_status, s->grpc_msg);
	return 0;
}

static void open_stream(struct stream *s, const char *host, int port, const char *table)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	nghttp2_session_callbacks *cb;
	int one = 1;
	char authority[64];
	uint8_t inner[400];
	size_t il = 0, tl = strlen(table), n;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad host %s", host);
	if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect %s:%d: %s", host, port, strerror(errno));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);

	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, close_cb);
	nghttp2_session_client_new(&s->ng, cb, s);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
	nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 1);

	/* create_stream: PersistentStreamRequest{1: CreatePersistentStreamRequest{1:
	 * CreateIngestStreamRequest{1: table_name, 4: record_type = PROTO}}} */
	if (tl > 300)
		die("table name too long");
	inner[il++] = 0x0a;
	il += put_varint(inner + il, tl);
	memcpy(inner + il, table, tl);
	il += tl;
	inner[il++] = 0x20;
	inner[il++] = 1;
	uint8_t *m = s->create_msg + 5;
	n = 0;
	m[n++] = 0x0a;
	n += put_varint(m + n, il + 1 + (il < 128 ? 1 : 2));
	m[n++] = 0x0a;
	n += put_varint(m + n, il);
	memcpy(m + n, inner, il);
	n += il;
	s->create_msg[0] = 0;
	s->create_msg[1] = s->create_msg[2] = 0;
	s->create_msg[3] = (uint8_t)(n >> 8);
	s->create_msg[4] = (uint8_t)n;
	s->create_len = n + 5;

	snprintf(authority, sizeof(authority), "%s:%d", host, port);
#define NV(a, b) {(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
	nghttp2_nv hdrs[] = {NV(":method", "POST"),
			     NV(":scheme", "http"),
			     NV(":path", "/databricks.zerobus.Zerobus/PersistentStream"),
			     NV(":authority", authority),
			     NV("content-type", "application/grpc"),
			     NV("te", "trailers"),
			     NV("x-databricks-zerobus-table-name", table)};
	nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_cb};
	s->qcap = (size_t)window + 4;
	s->q = calloc(s->qcap, sizeof(*s->q));
	s->acked = s->visible = -1;
	s->grpc_status = -1;
	enqueue(s, NULL, 0, s->create_msg, s->create_len);
	if ((s->sid = nghttp2_submit_request(s->ng, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp,
					     s)) < 0)
		die("submit_request: %s", nghttp2_strerror(s->sid));
}

static void pump_io(int infd, int64_t timeout_ns);

/* ---- visibility via inotify ---- */

static int64_t versions_seen, vis_max_version = -1;

static void read_version(const char *dir, const char *name, int64_t now)
{
	char path[4096];
	static char *buf;
	static size_t cap;
	size_t n = 0, r;
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "r")))
		return;
	for (;;) {
		if (n + 65536 > cap) {
			cap = (n + 65536) * 2;
			buf = realloc(buf, cap + 1);
		}
		if (!(r = fread(buf + n, 1, cap - n, f)))
			break;
		n += r;
	}
	fclose(f);
	buf[n] = 0;
	versions_seen++;
	int64_t v = atoll(name);
	if (v > vis_max_version)
		vis_max_version = v;
	for (int i = 0; i < nstreams; i++) {
		struct stream *s = &streams[i];
		char pat[160], *p;
		if (!s->id[0])
			continue;
		snprintf(pat, sizeof(pat), "\"appId\":\"%s\",\"version\":", s->id);
		if (!(p = strstr(buf, pat)))
			continue;
		int64_t ver = atoll(p + strlen(pat));
		for (int64_t o = s->visible + 1; o <= ver && o < s->next_off; o++)
			s->bs[o].vis = now;
		if (ver > s->visible)
			s->visible = ver;
	}
}

static void handle_inotify(int fd, const char *dir)
{
	char buf[8192] __attribute__((aligned(8)));
	ssize_t n;
	int64_t now = mono_ns();
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			size_t nl = e->len ? strlen(e->name) : 0;
			if (nl == 25 && !strcmp(e->name + 20, ".json") && e->name[0] != '.')
				read_version(dir, e->name, now);
			p += sizeof(*e) + e->len;
		}
	}
}

/* ---- the loop ---- */

static int inofd = -1;
static const char *delta_dir;

static void pump_io(int infd, int64_t timeout_ns)
{
	struct pollfd pf[257];
	int np = 0;
	(void)infd;
	for (int i = 0; i < nstreams; i++) {
		struct stream *s = &streams[i];
		int rv;
		if ((rv = nghttp2_session_send(s->ng)))
			die("nghttp2 send: %s", nghttp2_strerror(rv));
		pf[np].fd = s->fd;
		pf[np].events = POLLIN | (nghttp2_session_want_write(s->ng) ? POLLOUT : 0);
		np++;
	}
	if (inofd >= 0) {
		pf[np].fd = inofd;
		pf[np].events = POLLIN;
		np++;
	}
	struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
	if (ppoll(pf, (nfds_t)np, timeout_ns >= 0 ? &ts : NULL, NULL) < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	if (inofd >= 0 && (pf[np - 1].revents & POLLIN))
		handle_inotify(inofd, delta_dir);
	for (int i = 0; i < nstreams; i++) {
		struct stream *s = &streams[i];
		if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t buf[65536];
			ssize_t n;
			while ((n = recv(s->fd, buf, sizeof(buf), 0)) > 0) {
				ssize_t rv = nghttp2_session_mem_recv(s->ng, buf, (size_t)n);
				if (rv < 0)
					die("nghttp2 recv: %s", nghttp2_strerror((int)rv));
			}
			if (n == 0 && !s->closed)
				die("stream %d: server closed the connection", i);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				die("recv: %s", strerror(errno));
		}
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void pct(const char *name, int64_t *v, size_t n)
{
	if (!n) {
		printf("%s_n=0\n", name);
		return;
	}
	qsort(v, n, sizeof(*v), cmp64);
#define P(q) (v[(size_t)((q) * (double)(n - 1) + 0.5)] / 1e6)
	printf("%s_n=%zu\n%s_p50_ms=%.3f\n%s_p90_ms=%.3f\n%s_p99_ms=%.3f\n%s_max_ms=%.3f\n", name,
	       n, name, P(0.50), name, P(0.90), name, P(0.99), name, v[n - 1] / 1e6);
#undef P
}

static void fsync_probe(const char *path, int count, size_t bytes)
{
	uint8_t *buf = malloc(bytes);
	int64_t *lat = malloc(sizeof(*lat) * (size_t)count);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !buf || !lat)
		die("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < bytes; i++)
		buf[i] = (uint8_t)xrand();
	int64_t t0 = mono_ns();
	for (int i = 0; i < count; i++) {
		int64_t t = mono_ns();
		if (write(fd, buf, bytes) != (ssize_t)bytes || fdatasync(fd))
			die("write/fdatasync %s: %s", path, strerror(errno));
		lat[i] = mono_ns() - t;
	}
	double el = (mono_ns() - t0) / 1e9;
	close(fd);
	unlink(path);
	printf("probe_bytes=%zu\nprobe_mbps=%.1f\n", bytes, (double)bytes * count / 1e6 / el);
	pct("fsync", lat, (size_t)count);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: zb_load [options] HOST:PORT TABLE\n"
		"  -s N        streams (connections), default 4\n"
		"  -b N        records per batch, default 1000\n"
		"  -w N        unacknowledged batches per stream (closed loop), default 4\n"
		"  -n BYTES    record bytes to send (closed loop), default 1e9\n"
		"  -r MBPS     open loop: total rate in MB/s of record bytes\n"
		"  -t SEC      open loop: duration, default 10\n"
		"  -d DIR      the table's _delta_log: wait for and time visibility\n"
		"  -p PID      the server's pid: sample its CPU time\n"
		"  --dump FILE            write the record bytes of a closed-loop run, exit\n"
		"  --fsync-probe FILE     -c COUNT x (write -b-batch bytes + fdatasync), exit\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int s_n = 4, pid = 0, probe_count = 200;
	size_t b = 1000;
	double total = 1e9, rate = 0, secs = 10;
	const char *dump = NULL, *probe = NULL;
	static const struct option lo[] = {{"dump", required_argument, 0, 'D'},
					   {"fsync-probe", required_argument, 0, 'F'},
					   {0, 0, 0, 0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "s:b:w:n:r:t:d:p:c:", lo, NULL)) != -1) {
		switch (opt) {
		case 's': s_n = atoi(optarg); break;
		case 'b': b = (size_t)atol(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 'n': total = atof(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'd': delta_dir = optarg; break;
		case 'p': pid = atoi(optarg); break;
		case 'c': probe_count = atoi(optarg); break;
		case 'D': dump = optarg; break;
		case 'F': probe = optarg; break;
		default: usage();
		}
	}
	if (s_n < 1 || s_n > 256 || b < 1 || window < 1)
		usage();
	open_loop = rate > 0;
	if (open_loop)
		window = 1024; /* never the limit at a moderate rate */
	nstreams = s_n;
	build_pool((size_t)(s_n * window + 8 > 64 ? s_n * window + 8 : 64), b);
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
		if (!f)
			die("%s: %s", dump, strerror(errno));
		for (int64_t i = 0; i < nb_total; i++)
			if (fwrite(patch_batch((uint64_t)i, 1760000000000000), 1, batch_body_len,
				   f) != batch_body_len)
				die("write %s", dump);
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

	if (delta_dir) {
		if ((inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
		    inotify_add_watch(inofd, delta_dir, IN_CREATE | IN_MOVED_TO) < 0)
			die("inotify %s: %s", delta_dir, strerror(errno));
	}
	streams = calloc((size_t)s_n, sizeof(*streams));
	for (int i = 0; i < s_n; i++) {
		streams[i].idx = i;
		streams[i].target = nb_total / s_n + (i < nb_total % s_n);
		open_stream(&streams[i], host, port, table);
	}
	/* wait for every create response */
	for (;;) {
		int all = 1;
		for (int i = 0; i < s_n; i++)
			all &= streams[i].created;
		if (all)
			break;
		pump_io(-1, 100000000);
	}

	double scpu0 = proc_cpu(pid), ccpu0 = self_cpu();
	int64_t t0 = mono_ns(), t_ack = 0, t_vis = 0;
	double scpu_ack = 0, ccpu_ack = 0, scpu_vis = 0, ccpu_vis = 0;
	if (open_loop) {
		interval_ns = (int64_t)((double)per_batch * s_n / (rate * 1e6) * 1e9);
		t_end_ns = t0 + (int64_t)(secs * 1e9);
		for (int i = 0; i < s_n; i++)
			streams[i].next_due = t0 + interval_ns * i / s_n;
	}
	for (;;) {
		int64_t now = mono_ns(), wait = 200000000;
		int sending = 0, all_acked = 1, all_vis = 1;
		for (int i = 0; i < s_n; i++) {
			struct stream *s = &streams[i];
			if (open_loop) {
				while (now < t_end_ns && s->next_due <= now) {
					send_batch(s, now);
					s->next_due += interval_ns;
				}
				if (now < t_end_ns) {
					sending = 1;
					if (s->next_due - now < wait)
						wait = s->next_due - now;
				}
			} else {
				while (s->next_off < s->target &&
				       s->next_off - 1 - s->acked < window)
					send_batch(s, now);
				if (s->next_off < s->target)
					sending = 1;
			}
			all_acked &= s->acked == s->next_off - 1;
			all_vis &= s->visible == s->next_off - 1;
		}
		if (!sending && all_acked && !t_ack) {
			t_ack = now;
			scpu_ack = proc_cpu(pid);
			ccpu_ack = self_cpu();
		}
		if (!sending && all_acked && (all_vis || !delta_dir)) {
			t_vis = now;
			scpu_vis = proc_cpu(pid);
			ccpu_vis = self_cpu();
			break;
		}
		pump_io(-1, wait);
	}
	/* half-close every call; the server ends them with OK once all is acked */
	for (int i = 0; i < s_n; i++) {
		streams[i].eof = 1;
		if (streams[i].deferred) {
			streams[i].deferred = 0;
			nghttp2_session_resume_data(streams[i].ng, streams[i].sid);
		}
	}
	for (int64_t until = mono_ns() + 5000000000; mono_ns() < until;) {
		int open = 0;
		for (int i = 0; i < s_n; i++)
			open += !streams[i].closed;
		if (!open)
			break;
		pump_io(-1, 50000000);
	}

	int64_t nb = 0;
	for (int i = 0; i < s_n; i++)
		nb += streams[i].next_off;
	int64_t *ack = malloc(sizeof(int64_t) * (size_t)nb),
		*vis = malloc(sizeof(int64_t) * (size_t)nb);
	size_t na = 0, nv = 0;
	for (int i = 0; i < s_n; i++)
		for (int64_t o = 0; o < streams[i].next_off; o++) {
			struct bstat *x = &streams[i].bs[o];
			ack[na++] = x->ack - x->send;
			if (delta_dir)
				vis[nv++] = x->vis - x->send;
		}
	double rb = (double)nb * (double)per_batch;
	printf("streams=%d\nrecords_per_batch=%zu\nrecord_bytes_each=%zu\nbatches=%lld\n"
	       "records=%lld\nrecord_bytes=%.0f\npayload_bytes=%.0f\n",
	       s_n, b, L.len, (long long)nb, (long long)nb * (long long)b, rb,
	       (double)nb * (double)b * PAYLOAD);
	printf("t_ack_s=%.3f\nt_table_s=%.3f\n", (t_ack - t0) / 1e9, (t_vis - t0) / 1e9);
	printf("client_cpu_ack_s=%.3f\nclient_cpu_table_s=%.3f\n", ccpu_ack - ccpu0,
	       ccpu_vis - ccpu0);
	if (pid)
		printf("server_cpu_ack_s=%.3f\nserver_cpu_table_s=%.3f\n", scpu_ack - scpu0,
		       scpu_vis - scpu0);
	printf("delta_versions=%lld\n", (long long)versions_seen);
	pct("ack", ack, na);
	if (delta_dir)
		pct("vis", vis, nv);
	return 0;
}
