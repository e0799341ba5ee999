/*
 * WAL entry codec and segment files; see wal.h and DESIGN.md. Entry layout (little endian):
 *   u32 magic "RNW1" | u32 body length | u32 crc32c(body)
 *   body, format 1: u8 format(1) | u8 record_type | u16 stream_id_len | u16 table_len
 *         | i64 offset | stream_id | table | batch
 *   body, format 2 (packed): u8 format(2) | u8 record_type | u16 stream_id_len
 *         | u16 table_len | i64 offset | u32 plain_len | u32 batch_off | u32 batch_len
 *         | stream_id | table | zstd frame (decompresses to plain_len bytes; the batch is
 *         [batch_off, batch_off + batch_len) of them)
 * Both formats are written (format 2 only for batches that came compressed), and both are
 * read: segments written before format 2 existed replay as they are.
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_zstd.h"

#define WAL_MAGIC 0x31574e52u /* "RNW1" */
#define BODY_FIXED 14         /* format 1's fixed fields */
#define BODY_FIXED2 26        /* format 2's: plus plain_len, batch_off, batch_len */
#define MAX_BODY ((uint32_t)64 << 20)

/* CRC-32C (Castagnoli): the SSE4.2 instruction where the CPU has it (8 bytes per step),
 * else slicing-by-8 tables. Both give the same values (tests/unit/wal checks them). */
static uint32_t crc_tab[8][256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] =
				(crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t rn_crc32c_sw(uint32_t crc, const void *vp, size_t len)
{
	const uint8_t *p = vp;
	if (!crc_tab[0][1])
		crc_init(); /* idempotent: racing initializers write the same values */
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			      (uint32_t)p[7] << 24;
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^
		      crc_tab[2][(hi >> 8) & 0xff] ^ crc_tab[1][(hi >> 16) & 0xff] ^
		      crc_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/*
 * The crc32 instruction has a latency of 3 cycles and a throughput of 1: long inputs are
 * done as three interleaved streams over consecutive STRIPE-byte blocks, and the three
 * CRCs joined by "shifting" the first over the bytes after it. The shift is a fixed
 * GF(2) linear map (appending STRIPE zero bytes), applied bytewise through four tables
 * built once (after Mark Adler's crc32c.c).
 */
#define STRIPE 8192
static uint32_t shift_tab[4][256];

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		sq[n] = gf2_times(mat, mat[n]);
}

/* shift_tab = the operator appending `len` (a power of two) zero bytes to a CRC state. */
static void shift_init(size_t len)
{
	uint32_t odd[32], even[32], *op = even;
	odd[0] = 0x82f63b78u; /* one zero bit */
	for (int n = 1; n < 32; n++)
		odd[n] = (uint32_t)1 << (n - 1);
	gf2_square(even, odd); /* two bits */
	gf2_square(odd, even); /* four bits */
	for (;;) {
		gf2_square(even, odd); /* a byte, then 4, 16, ... */
		op = even;
		if (!(len >>= 1))
			break;
		gf2_square(odd, even); /* 2 bytes, then 8, 32, ... */
		op = odd;
		if (!(len >>= 1))
			break;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 0; k < 4; k++)
			shift_tab[k][n] = gf2_times(op, n << (8 * k));
}

static uint32_t shift(uint32_t c)
{
	return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^
	       shift_tab[2][(c >> 16) & 0xff] ^ shift_tab[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;
	while (len >= 3 * STRIPE) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < STRIPE; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + STRIPE + i, 8);
			memcpy(&v2, p + 2 * STRIPE + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c = shift(shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * STRIPE;
		len -= 3 * STRIPE;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

uint32_t rn_crc32c(uint32_t crc, const void *p, size_t len)
{
	static int hw = -1; /* set (atomically) only once shift_tab is complete */
	int h = __atomic_load_n(&hw, __ATOMIC_ACQUIRE);
	if (h < 0) {
		h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		if (h)
			shift_init(STRIPE); /* racing initializers write the same values */
		__atomic_store_n(&hw, h, __ATOMIC_RELEASE);
	}
	return h ? crc_hw(crc, p, len) : rn_crc32c_sw(crc, p, len);
}
#else
uint32_t rn_crc32c(uint32_t crc, const void *p, size_t len)
{
	return rn_crc32c_sw(crc, p, len);
}
#endif

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int rn_wal_entry_encode(struct rn_buf *out, const struct rn_wal_entry *e)
{
	int packed = e->packed != NULL;
	size_t fixed = packed ? BODY_FIXED2 : BODY_FIXED;
	size_t data_len = packed ? e->packed_len : e->batch_len;
	uint8_t h[RN_WAL_HDR_LEN + BODY_FIXED2];
	size_t start = out->len, body;
	int rc;

	if (e->stream_id_len > 0xffff || e->table_len > 0xffff || data_len > MAX_BODY)
		return RN_EINVAL;
	body = fixed + e->stream_id_len + e->table_len + data_len;
	if (body > MAX_BODY)
		return RN_EINVAL;
	/* a packed batch is unpacked into at most MAX_BODY bytes, and must lie inside them */
	if (packed && (e->plain_len > MAX_BODY || e->batch_off > e->plain_len ||
		       e->batch_len > e->plain_len - e->batch_off))
		return RN_EINVAL;
	if ((rc = rn_buf_reserve(out, RN_WAL_HDR_LEN + body)))
		return rc;
	le32(h, WAL_MAGIC);
	le32(h + 4, (uint32_t)body);
	h[12] = packed ? 2 : 1;
	h[13] = (uint8_t)e->record_type;
	h[14] = (uint8_t)e->stream_id_len;
	h[15] = (uint8_t)(e->stream_id_len >> 8);
	h[16] = (uint8_t)e->table_len;
	h[17] = (uint8_t)(e->table_len >> 8);
	for (int i = 0; i < 8; i++)
		h[18 + i] = (uint8_t)((uint64_t)e->offset >> (8 * i));
	if (packed) {
		le32(h + 26, (uint32_t)e->plain_len);
		le32(h + 30, (uint32_t)e->batch_off);
		le32(h + 34, (uint32_t)e->batch_len);
	}
	rn_buf_append(out, h, RN_WAL_HDR_LEN + fixed);
	rn_buf_append(out, e->stream_id, e->stream_id_len);
	rn_buf_append(out, e->table, e->table_len);
	rn_buf_append(out, packed ? e->packed : e->batch, data_len);
	le32(out->data + start + 8, rn_crc32c(0, out->data + start + RN_WAL_HDR_LEN, body));
	return 0;
}

int rn_wal_entry_decode(const uint8_t *p, size_t len, struct rn_wal_entry *e, size_t *used)
{
	uint32_t body;
	uint64_t off = 0;
	size_t fixed, data_len;
	if (len < RN_WAL_HDR_LEN)
		return 0;
	if (rd32(p) != WAL_MAGIC)
		return RN_ECORRUPT;
	body = rd32(p + 4);
	if (body < BODY_FIXED || body > MAX_BODY)
		return RN_ECORRUPT;
	if (len - RN_WAL_HDR_LEN < body)
		return 0;
	if (rn_crc32c(0, p + RN_WAL_HDR_LEN, body) != rd32(p + 8))
		return RN_ECORRUPT;
	const uint8_t *b = p + RN_WAL_HDR_LEN;
	if (b[0] != 1 && b[0] != 2)
		return RN_ECORRUPT;
	fixed = b[0] == 2 ? BODY_FIXED2 : BODY_FIXED;
	if (body < fixed)
		return RN_ECORRUPT;
	e->record_type = b[1];
	e->stream_id_len = (size_t)b[2] | (size_t)b[3] << 8;
	e->table_len = (size_t)b[4] | (size_t)b[5] << 8;
	for (int i = 0; i < 8; i++)
		off |= (uint64_t)b[6 + i] << (8 * i);
	e->offset = (int64_t)off;
	if (fixed + e->stream_id_len + e->table_len > body)
		return RN_ECORRUPT;
	e->stream_id = (const char *)b + fixed;
	e->table = e->stream_id + e->stream_id_len;
	data_len = body - fixed - e->stream_id_len - e->table_len;
	if (b[0] == 1) {
		e->batch = (const uint8_t *)e->table + e->table_len;
		e->batch_len = data_len;
		e->packed = NULL;
		e->packed_len = e->plain_len = e->batch_off = 0;
	} else {
		e->packed = (const uint8_t *)e->table + e->table_len;
		e->packed_len = data_len;
		e->plain_len = rd32(b + 14);
		e->batch_off = rd32(b + 18);
		e->batch_len = rd32(b + 22);
		e->batch = NULL;
		if (e->plain_len > MAX_BODY || e->batch_off > e->plain_len ||
		    e->batch_len > e->plain_len - e->batch_off)
			return RN_ECORRUPT;
	}
	*used = RN_WAL_HDR_LEN + body;
	return 1;
}

int rn_wal_entry_unpack(struct rn_wal_entry *e, struct rn_buf *plain)
{
	int rc;
	if (!e->packed)
		return 0;
	rn_buf_reset(plain);
	rc = rn_zstd_decompress(plain, e->packed, e->packed_len, e->plain_len);
	if (rc == RN_ENOMEM)
		return rc;
	if (rc || plain->len != e->plain_len)
		return RN_ECORRUPT; /* not a frame, too long (RN_ETOOBIG) or too short */
	e->batch = plain->data + e->batch_off;
	return 0;
}

struct rn_wal {
	char *dir;
	int fd;               /* current segment, -1 before replay and after an abandoned one */
	int lock_fd;          /* dir/LOCK, flock()ed for the life of the object */
	uint64_t seg;         /* current segment id (the last one opened) */
	uint64_t durable;     /* bytes of the current segment known durable */
	uint64_t other_bytes; /* bytes of all older segments */
	uint64_t written;     /* bytes made durable by group commits since open */
	uint64_t replaying;   /* the segment rn_wal_replay is reading now */
	int replayed;         /* rn_wal_replay has run: appends may go to a new segment */
	struct rn_buf queue;  /* entries appended since the last rn_wal_sync_begin (loop) */
	/* A group handed to rn_wal_sync_io: from rn_wal_sync_begin to rn_wal_sync_end the sync
	 * thread reads `batch` and writes to `fd`; it writes io_rc and io_msg only. The loop
	 * touches neither batch nor fd meanwhile (no rotate, truncate or close), and reads
	 * io_rc only in rn_wal_sync_end, after the thread handed the group back. */
	struct rn_buf batch;
	int syncing; /* a group is in flight: batch.len bytes at offset durable */
	int io_rc;   /* rn_wal_sync_io's result: 0, RN_EIO, RN_ENOSPC */
	char io_msg[128];
	char err[256];
};

static int fail(struct rn_wal *w, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rn_wal *w, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return rc;
}

static int errno_rc(void)
{
	return errno == ENOSPC || errno == EDQUOT ? RN_ENOSPC : RN_EIO;
}

int rn_wal_open(struct rn_wal **out, const char *dir)
{
	struct rn_wal *w;
	*out = NULL;
	if (mkdir(dir, 0750) && errno != EEXIST)
		return RN_EIO;
	if (!(w = rn_calloc(1, sizeof(*w))) || !(w->dir = rn_strdup(dir))) {
		rn_free(w);
		return RN_ENOMEM;
	}
	w->fd = -1;
	w->queue.max = (size_t)1 << 30;
	/* one process per WAL: a second one would replay, commit and delete the first one's
	 * segments under it */
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s/LOCK", dir);
	if ((w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		rn_wal_close(w);
		return RN_EIO;
	}
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB)) {
		rn_wal_close(w);
		return RN_EEXIST;
	}
	*out = w;
	return 0;
}

void rn_wal_close(struct rn_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->lock_fd > 0)
		close(w->lock_fd);
	rn_buf_free(&w->queue);
	rn_buf_free(&w->batch);
	rn_free(w->dir);
	rn_free(w);
}

static void seg_path(const struct rn_wal *w, uint64_t id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/wal-%016llu.log", w->dir, (unsigned long long)id);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted ids of the segments on disk. */
static int list_segments(const struct rn_wal *w, uint64_t **ids, size_t *n)
{
	DIR *d = opendir(w->dir);
	struct dirent *de;
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	if (!d)
		return RN_EIO;
	while ((de = readdir(d))) {
		unsigned long long id;
		char tail[8];
		if (sscanf(de->d_name, "wal-%16llu.%4s", &id, tail) != 2 || strcmp(tail, "log"))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *t = rn_reallocarray(*ids, cap, sizeof(*t));
			if (!t) {
				closedir(d);
				return RN_ENOMEM;
			}
			*ids = t;
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return 0;
}

static int open_segment(struct rn_wal *w, uint64_t id)
{
	char p[4096];
	seg_path(w, id, p, sizeof(p));
	int fd = rn_fs_open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return fail(w, errno_rc(), "%s: %s", p, strerror(errno));
	/* the name must be durable before anything in the file is acknowledged */
	if (rn_fsync_dir(w->dir)) {
		int rc = fail(w, errno_rc(), "fsync %s: %s", w->dir, strerror(errno));
		close(fd);
		if (rn_fs_unlink(p) && errno != ENOENT)
			rn_log_warn("wal", "unlink %s: %s", p, strerror(errno));
		return rc;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->seg = id;
	w->durable = 0;
	return 0;
}

/* Reads segment `id` whole into data. RN_EIO, RN_ENOMEM (message set). */
static int read_segment(struct rn_wal *w, uint64_t id, struct rn_buf *data)
{
	char p[4096], tmp[1 << 16];
	ssize_t r;
	int fd, rc = 0;

	seg_path(w, id, p, sizeof(p));
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return fail(w, RN_EIO, "%s: %s", p, strerror(errno));
	while ((r = read(fd, tmp, sizeof(tmp))) > 0)
		if ((rc = rn_buf_append(data, tmp, (size_t)r)))
			break;
	close(fd);
	if (rc)
		return fail(w, rc, "read %s: %s", p, rn_strerror(rc));
	if (r < 0)
		return fail(w, RN_EIO, "read %s: %s", p, strerror(errno));
	return 0;
}

/* rn_wal_entry_unpack for the entry at byte off of segment file p, the failure named. */
static int unpack(struct rn_wal *w, struct rn_wal_entry *e, struct rn_buf *plain, const char *p,
		  size_t off)
{
	int rc = rn_wal_entry_unpack(e, plain);
	if (rc == RN_ECORRUPT)
		return fail(
			w, rc,
			"%s: the entry at byte %zu (stream %.*s offset %lld) passes its checksum "
			"but its compressed batch (%zu bytes) does not decompress to %zu bytes; "
			"the segment is left as it is",
			p, off, (int)(e->stream_id_len > 64 ? 64 : e->stream_id_len), e->stream_id,
			(long long)e->offset, e->packed_len, e->plain_len);
	if (rc)
		return fail(w, rc, "%s: the entry at byte %zu: %s", p, off, rn_strerror(rc));
	return 0;
}

int rn_wal_replay(struct rn_wal *w, int (*fn)(void *ctx, const struct rn_wal_entry *e), void *ctx)
{
	struct rn_buf plain = {0}; /* a packed entry's batch, unpacked */
	uint64_t *ids;
	size_t n;
	int rc;

	if ((rc = list_segments(w, &ids, &n)))
		return fail(w, rc, "cannot list %s", w->dir);
	w->other_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		char p[4096];
		struct rn_buf data = {.max = (size_t)8 << 30};
		size_t off = 0;

		seg_path(w, ids[i], p, sizeof(p));
		if ((rc = read_segment(w, ids[i], &data))) {
			rn_buf_free(&data);
			break;
		}
		w->replaying = ids[i];
		while (off < data.len) {
			struct rn_wal_entry e;
			size_t used;
			int d = rn_wal_entry_decode(data.data + off, data.len - off, &e, &used);
			if (d != 1) {
				rn_log_warn("wal",
					    "%s: %s at byte %zu of %zu; cutting the tail off", p,
					    d == 0 ? "torn entry" : "corrupt entry", off, data.len);
				if (rn_fs_truncate(p, (off_t)off))
					rn_log_error("wal", "truncate %s: %s", p, strerror(errno));
				else
					data.len = off; /* else the bytes stay (and count) */
				break;
			}
			/* its checksum held, so this is what was written: a frame that does not
			 * decompress is no torn tail, and the entries after it were acknowledged;
			 * nothing is cut, the replay stops */
			if ((rc = unpack(w, &e, &plain, p, off)))
				break;
			if ((rc = fn(ctx, &e)))
				break;
			off += used;
		}
		w->other_bytes += data.len;
		rn_buf_free(&data);
		if (rc)
			break;
	}
	rn_buf_free(&plain);
	w->replaying = 0;
	w->seg = n ? ids[n - 1] : 0;
	if (!rc && !(rc = open_segment(w, w->seg + 1)))
		w->replayed = 1;
	rn_free(ids);
	return rc;
}

uint64_t rn_wal_replay_segment(const struct rn_wal *w)
{
	return w->replaying;
}

/* Calls fn for each whole entry of data[0, len) of segment seg (rn_wal_scan,
 * rn_wal_scan_all), packed ones unpacked. */
static int scan_entries(struct rn_wal *w, uint64_t seg, const struct rn_buf *data, size_t len,
			int (*fn)(void *ctx, const struct rn_wal_entry *e), void *ctx)
{
	struct rn_buf plain = {0};
	char p[4096];
	size_t off = 0;
	int rc = 0;
	seg_path(w, seg, p, sizeof(p));
	while (off < len) {
		struct rn_wal_entry e;
		size_t used;
		if (rn_wal_entry_decode(data->data + off, len - off, &e, &used) != 1)
			break; /* replay cut the tail; bytes past it were never acknowledged */
		if ((rc = unpack(w, &e, &plain, p, off)) || (rc = fn(ctx, &e)))
			break;
		off += used;
	}
	rn_buf_free(&plain);
	return rc;
}

int rn_wal_scan(struct rn_wal *w, uint64_t seg, int (*fn)(void *ctx, const struct rn_wal_entry *e),
		void *ctx)
{
	struct rn_buf data = {.max = (size_t)8 << 30};
	int rc;

	if (w->fd >= 0 && seg == w->seg)
		return fail(w, RN_EINVAL, "segment %llu is being written", (unsigned long long)seg);
	if (!(rc = read_segment(w, seg, &data)))
		rc = scan_entries(w, seg, &data, data.len, fn, ctx);
	rn_buf_free(&data);
	return rc;
}

int rn_wal_scan_all(struct rn_wal *w, int (*fn)(void *ctx, const struct rn_wal_entry *e), void *ctx)
{
	uint64_t *ids;
	size_t n;
	int rc;

	if (!w->replayed)
		return fail(w, RN_EINVAL, "WAL not open (replay first)");
	if (w->queue.len || w->syncing)
		return fail(w, RN_EINVAL, "WAL has unsynced entries (sync first)");
	if ((rc = list_segments(w, &ids, &n)))
		return fail(w, rc, "cannot list %s", w->dir);
	for (size_t i = 0; i < n && !rc; i++) {
		struct rn_buf data = {.max = (size_t)8 << 30};
		if (!(rc = read_segment(w, ids[i], &data))) {
			/* the segment being written: only what is durable */
			size_t len = w->fd >= 0 && ids[i] == w->seg && data.len > w->durable
					     ? (size_t)w->durable
					     : data.len;
			rc = scan_entries(w, ids[i], &data, len, fn, ctx);
		}
		rn_buf_free(&data);
	}
	rn_free(ids);
	return rc;
}

uint64_t rn_wal_segment_bytes(const struct rn_wal *w, uint64_t seg)
{
	char p[4096];
	struct stat st;
	seg_path(w, seg, p, sizeof(p));
	return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

int rn_wal_append(struct rn_wal *w, const struct rn_wal_entry *e)
{
	return rn_wal_entry_encode(&w->queue, e);
}

int rn_wal_dirty(const struct rn_wal *w)
{
	return w->queue.len != 0;
}

/*
 * After a failed write or fdatasync the segment is abandoned: cut back to its durable
 * length and never written again. Linux reports a writeback error once and may drop the
 * failed pages from the cache, so a later fdatasync of the same file could succeed without
 * those bytes ever reaching the disk; appends go to a new segment instead (opened by the
 * next sync). The abandoned one stays an ordinary older segment: its durable prefix is
 * replayed and deleted like any other. If the truncation fails too, its tail holds entries
 * that were never acknowledged, which a replay may hand on (their offsets are resent by
 * the clients, so the materializer keeps one copy).
 */
static void abandon_segment(struct rn_wal *w)
{
	uint64_t left = w->durable;
	struct stat st;
	if (rn_fs_ftruncate(w->fd, (off_t)w->durable)) {
		rn_log_error("wal", "ftruncate segment %llu after a failed write: %s",
			     (unsigned long long)w->seg, strerror(errno));
		if (!fstat(w->fd, &st))
			left = (uint64_t)st.st_size; /* what stays on disk until it is deleted */
	}
	close(w->fd);
	w->fd = -1;
	w->other_bytes += left;
	w->durable = 0;
}

int rn_wal_sync_begin(struct rn_wal *w)
{
	int rc;
	struct rn_buf t;
	if (w->syncing)
		return fail(w, RN_EAGAIN, "a WAL sync is in flight");
	if (!w->replayed)
		return fail(w, RN_EIO, "WAL not open (replay first)");
	if (!w->queue.len)
		return 0;
	if (w->fd < 0 && (rc = open_segment(w, w->seg + 1))) {
		rn_buf_reset(&w->queue);
		return rc;
	}
	/* the buffers swap: the queue keeps the batch's allocation for the next group */
	t = w->batch;
	w->batch = w->queue;
	w->queue = t;
	w->queue.max = w->batch.max;
	rn_buf_reset(&w->queue);
	w->io_rc = 0;
	w->io_msg[0] = 0;
	w->syncing = 1;
	return 1;
}

void rn_wal_sync_io(struct rn_wal *w)
{
	/* only fd, batch, io_rc and io_msg: the loop is appending to the queue meanwhile */
	const char *what = "write";
	if (rn_write_all(w->fd, w->batch.data, w->batch.len) ||
	    (what = "fdatasync", rn_fs_fdatasync(w->fd))) {
		w->io_rc = errno_rc();
		snprintf(w->io_msg, sizeof(w->io_msg), "%s: %s", what, strerror(errno));
	}
}

int rn_wal_sync_end(struct rn_wal *w)
{
	int rc = w->io_rc;
	if (!w->syncing)
		return 0;
	w->syncing = 0;
	if (rc) {
		/* On failure the group is dropped, and so is everything queued behind it, not kept
		 * for the next sync: their callers are told (nothing was acked, clients resend),
		 * entries kept would fail every later sync and rotation too (so a full disk could
		 * never be drained by a flush), and the queue's entries follow the failed ones:
		 * written to a new segment they would leave a gap in their streams. */
		fail(w, rc, "%s segment %llu: %s",
		     strncmp(w->io_msg, "write", 5) ? "sync" : "write", (unsigned long long)w->seg,
		     w->io_msg);
		abandon_segment(w);
		rn_buf_reset(&w->batch);
		rn_buf_reset(&w->queue);
		return rc;
	}
	w->durable += w->batch.len;
	w->written += w->batch.len;
	rn_buf_reset(&w->batch);
	return 0;
}

int rn_wal_syncing(const struct rn_wal *w)
{
	return w->syncing;
}

int rn_wal_sync(struct rn_wal *w)
{
	int rc = rn_wal_sync_begin(w);
	if (rc <= 0)
		return rc;
	rn_wal_sync_io(w);
	return rn_wal_sync_end(w);
}

int rn_wal_rotate(struct rn_wal *w, uint64_t *seg)
{
	int rc;
	uint64_t was;
	if ((rc = rn_wal_sync(w)))
		return rc;
	was = w->fd >= 0 ? w->durable : 0;
	/* on failure appends stay in the current segment, which is not counted twice */
	if ((rc = open_segment(w, w->seg + 1)))
		return rc;
	w->other_bytes += was;
	*seg = w->seg;
	return 0;
}

int rn_wal_drop_before(struct rn_wal *w, uint64_t seg, int (*keep)(void *ctx, uint64_t seg),
		       void *ctx)
{
	uint64_t *ids;
	size_t n;
	int rc;
	if ((rc = list_segments(w, &ids, &n)))
		return rc;
	for (size_t i = 0; i < n && ids[i] < seg; i++) {
		char p[4096];
		struct stat st;
		if (keep && keep(ctx, ids[i]))
			continue;
		seg_path(w, ids[i], p, sizeof(p));
		if (stat(p, &st))
			st.st_size = 0;
		if (rn_fs_unlink(p)) {
			rn_log_warn("wal", "unlink %s: %s", p, strerror(errno));
			continue;
		}
		if (w->other_bytes >= (uint64_t)st.st_size)
			w->other_bytes -= (uint64_t)st.st_size;
	}
	rn_free(ids);
	return 0;
}

uint64_t rn_wal_bytes(const struct rn_wal *w)
{
	return w->other_bytes + w->durable + w->batch.len + w->queue.len;
}

uint64_t rn_wal_written(const struct rn_wal *w)
{
	return w->written;
}

const char *rn_wal_errmsg(const struct rn_wal *w)
{
	return w->err;
}
