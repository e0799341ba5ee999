/*
 * tstore_probe: the table store (server/store/tstore.h) on an s3:// root against a real
 * endpoint, for tests/integration/tstore_s3.test.mjs. Each run does one operation or one
 * battery of checks and prints its result as one JSON line. Not installed.
 *
 *   tstore_probe ENDPOINT ROOT OP ARGS...     (credentials from AWS_*)
 *
 * Single operations (the node test drives faults around them):
 *   put KEY TEXT | put_new KEY TEXT | get KEY [OFF LEN] | stat KEY | delete KEY
 *   putgen KEY BYTES SEED      put BYTES pseudo-random bytes of SEED: {"sha256"}
 *   put_newgen KEY BYTES SEED  the same with put_new
 *   hash KEY                   get the whole object: {"len","sha256"}
 *   upload DIR                 every file under the local directory DIR put at its relative
 *                              path, _delta_log/ last and in name order (a table written
 *                              locally becomes the same table on the store): {"objects"}
 * Batteries ({"ok":true,"checks":N} or {"ok":false,"failed":"line: check","msg":...}):
 *   contract     put/replace, ranges, stat sizes and mtimes, list order, one level and
 *                recursion, prefix isolation, delete, put_new, map, bad keys; then the
 *                backend-neutral contract every store passes (tests/unit/store/
 *                tstore_contract.h, rn_tstore_contract_run_pair) on the same two objects,
 *                its put_new race in two threads included (its failures on stderr)
 *   race ROUNDS  two store objects put_new one key per round from two threads at once:
 *                exactly one wins, the other gets RN_EEXIST, the winner's bytes stay
 *   many N       N keys (more than a ListObjectsV2 page) listed in order, whole and one level
 *   big MB       an object over the multipart threshold: multipart (its ETag says so),
 *                stat, a range across a part boundary, map
 *   unreachable  every operation against ENDPOINT (nothing listening): RN_ECONNECT
 *   mapfault     map with the spool file's open, write and truncate failing (rn_fs hooks) and
 *                a spool directory that does not exist: the error, no object mapped, no fd
 *                left open; map works after
 *   allocsweep   every allocation of open and each operation failing in turn: RN_ENOMEM
 *                or success, nothing leaked, a put_new that failed left no object
 * Settings: TSTORE_PROBE_ATTEMPTS, _TIMEOUT_MS, _PART_MB, _THRESHOLD_MB, _SPOOL.
 * Exit status 0 when the probe ran (whatever its result), 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "s3.h"
#include "sigv4.h"
#include "tstore.h"
#include "tstore_contract.h"
#include "probe_util.h"

static struct rn_tstore_config cfg;
static const char *root;
static char bucket[256], prefix[1100];
static int checks;
static char failed[2048];

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Open fds on regular files (a spool file left open would be one; the client's sockets come
 * and go with its connections and are not counted). */
static int fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	struct stat sb;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d) &&
		    fstat(atoi(de->d_name), &sb) == 0 && S_ISREG(sb.st_mode))
			n++;
	closedir(d);
	return n;
}

/* A check of a battery: on failure the line, the expression and the store's last message are
 * kept and the battery goes to its cleanup (label out, rc still -1). */
#define CHECK(st, c)                                                                               \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(c)) {                                                                        \
			snprintf(failed, sizeof(failed), "line %d: %s (store: %s)", __LINE__, #c,  \
				 (st) ? rn_tstore_errmsg(st) : "");                                \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static int open_store(struct rn_tstore **st)
{
	char err[512];
	int rc = rn_tstore_open(st, root, &cfg, err, sizeof(err));
	if (rc)
		snprintf(failed, sizeof(failed), "open %s: %s", root, err);
	return rc;
}

/* A client on the bucket itself, to look behind the store (markers, siblings, ETags). */
static struct rn_s3 *raw_client(void)
{
	struct rn_s3_config c = cfg.s3;
	struct rn_s3 *s = NULL;
	c.bucket = bucket;
	if (rn_s3_create(&c, &s, NULL, 0))
		return NULL;
	return s;
}

/* prefix + "/" + key (key alone for a root without prefix) */
static const char *whole(const char *key)
{
	static char k[2200];
	snprintf(k, sizeof(k), "%s%s%s", prefix, *prefix ? "/" : "", key);
	return k;
}

/* get into a fresh buffer; *len = bytes. Keeps the buffer in *b (caller frees). */
static int get_eq(struct rn_tstore *st, const char *key, int64_t off, int64_t len, const void *want,
		  size_t wlen)
{
	struct rn_buf b = {0};
	int ok;
	rn_buf_append(&b, "X", 1); /* get appends: what was there stays */
	ok = rn_tstore_get(st, key, off, len, &b) == 0 && b.len == wlen + 1 && b.data[0] == 'X' &&
	     (!wlen || memcmp(b.data + 1, want, wlen) == 0);
	rn_buf_free(&b);
	return ok;
}

struct listed {
	char keys[64][128];
	int64_t sizes[64], mtimes[64];
	int n, stop_after, calls;
};

static int collect(void *ctx, const struct rn_tstore_entry *e)
{
	struct listed *l = ctx;
	l->calls++;
	if (l->n < 64) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", e->key);
		l->sizes[l->n] = e->size;
		l->mtimes[l->n] = e->mtime_ms;
		l->n++;
	}
	return l->stop_after && l->calls == l->stop_after ? 7 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* list(dir, recursive) gives exactly the keys of want that pass filter, in byte order. */
static int list_is(struct rn_tstore *st, const char *dir, int recursive, const char **want,
		   size_t n)
{
	struct listed l;
	memset(&l, 0, sizeof(l));
	if (rn_tstore_list(st, dir, recursive, collect, &l) != 0 || (size_t)l.n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l.keys[i], want[i]) != 0)
			return 0;
	return 1;
}

static int contract(void)
{
	struct rn_tstore *st = NULL, *st2 = NULL;
	struct rn_tstore_entry e, e2;
	struct rn_tstore_map m = {0};
	struct rn_s3 *raw = NULL;
	struct rn_buf buf = {0};
	uint8_t bytes[256];
	int64_t t0, t1;
	int rc = -1, fds;

	if (open_store(&st) || open_store(&st2) || !(raw = raw_client())) {
		if (!failed[0])
			snprintf(failed, sizeof(failed), "raw client");
		goto out;
	}
	for (int i = 0; i < 256; i++)
		bytes[i] = (uint8_t)i;
	{ /* put, replace, get whole */
		CHECK(st, rn_tstore_put(st, "a.txt", "hello world", 11) == 0);
		CHECK(st, strcmp(rn_tstore_errmsg(st), "") == 0);
		CHECK(st, get_eq(st, "a.txt", 0, -1, "hello world", 11));
		CHECK(st, rn_tstore_put(st, "a.txt", "bye", 3) == 0);
		CHECK(st, get_eq(st, "a.txt", 0, -1, "bye", 3));
		CHECK(st, get_eq(st2, "a.txt", 0, -1, "bye", 3)); /* another object sees it */
		CHECK(st, rn_tstore_put(st, "empty", "", 0) == 0);
		CHECK(st, get_eq(st, "empty", 0, -1, "", 0));
	}
	{ /* ranges */
		CHECK(st, rn_tstore_put(st, "r.bin", bytes, sizeof(bytes)) == 0);
		CHECK(st, get_eq(st, "r.bin", 10, 5, bytes + 10, 5));
		CHECK(st, get_eq(st, "r.bin", 250, -1, bytes + 250, 6));
		CHECK(st, get_eq(st, "r.bin", 250, 100, bytes + 250, 6)); /* short at the end */
		CHECK(st, get_eq(st, "r.bin", 0, 256, bytes, 256));
		CHECK(st, get_eq(st, "r.bin", 255, 1, bytes + 255, 1));
		CHECK(st, get_eq(st, "r.bin", 256, -1, "", 0)); /* at the end: empty */
		CHECK(st, get_eq(st, "r.bin", 1000, 10, "", 0));
		CHECK(st, get_eq(st, "r.bin", 7, 0, "", 0));
		CHECK(st, get_eq(st, "r.bin", 0, INT64_MAX, bytes, 256));
		CHECK(st, get_eq(st, "empty", 0, 10, "", 0));
		CHECK(st, rn_tstore_get(st, "missing", 0, -1, &buf) == RN_ENOTFOUND);
		CHECK(st, rn_tstore_get(st, "missing", 5, 0, &buf) == RN_ENOTFOUND);
		CHECK(st, rn_tstore_get(st, "r.bin", -1, 1, &buf) == RN_EINVAL);
		CHECK(st, buf.len == 0);
		CHECK(st, rn_tstore_errmsg(st)[0] != 0);
	}
	{ /* stat: sizes, mtimes as the clock of this machine says (the store is local) */
		t0 = now_ms();
		CHECK(st, rn_tstore_put(st, "s/t.json", "12345", 5) == 0);
		t1 = now_ms();
		memset(&e, 0, sizeof(e));
		CHECK(st, rn_tstore_stat(st, "s/t.json", &e) == 0);
		CHECK(st, e.size == 5 && strcmp(e.key, "s/t.json") == 0);
		/* Last-Modified has whole seconds */
		CHECK(st, e.mtime_ms >= t0 - 1000 && e.mtime_ms <= t1 && e.mtime_ms % 1000 == 0);
		CHECK(st, rn_tstore_stat(st, "empty", &e) == 0 && e.size == 0);
		CHECK(st, rn_tstore_stat(st, "r.bin", &e) == 0 && e.size == 256);
		CHECK(st, rn_tstore_stat(st, "missing", &e) == RN_ENOTFOUND);
		CHECK(st, rn_tstore_stat(st, "s", &e) == RN_ENOTFOUND); /* a "directory" */
	}
	{ /* listing: byte order, one level or all, sizes and mtimes, prefix isolation */
		static const char *keys[] = {
			"d/a-b", "d/a/b", "d/a0", "d/Z", "d/\xc3\xa9", "d/a/c/d", "d/~", "d/a b",
		};
		const char *sorted[16], *level[16];
		size_t n = sizeof(keys) / sizeof(keys[0]), nl = 0;
		struct listed l;
		t0 = now_ms();
		for (size_t i = 0; i < n; i++)
			CHECK(st, rn_tstore_put(st, keys[i], keys[i], strlen(keys[i])) == 0);
		t1 = now_ms();
		/* what the store must not list: a directory marker ("d/m/", no valid key), and
		 * keys of a sibling root sharing the prefix's first bytes (when there is one) */
		CHECK(st, rn_s3_put(raw, whole("d/m/"), "", 0) == 0);
		if (*prefix) {
			char sib[1200];
			snprintf(sib, sizeof(sib), "%sx/d/zz", prefix);
			CHECK(st, rn_s3_put(raw, sib, "x", 1) == 0);
			snprintf(sib, sizeof(sib), "%sd/zz", prefix);
			CHECK(st, rn_s3_put(raw, sib, "x", 1) == 0);
		}
		memcpy(sorted, keys, sizeof(keys));
		qsort(sorted, n, sizeof(sorted[0]), cmp_str);
		CHECK(st, list_is(st, "d", 1, sorted, n));
		for (size_t i = 0; i < n; i++)
			if (!strchr(sorted[i] + 2, '/'))
				level[nl++] = sorted[i];
		CHECK(st, nl == 6);
		CHECK(st, list_is(st, "d", 0, level, nl));
		{
			static const char *ab[] = {"d/a/b", "d/a/c/d"}, *abl[] = {"d/a/b"};
			CHECK(st, list_is(st, "d/a", 1, ab, 2));
			CHECK(st, list_is(st, "d/a", 0, abl, 1));
			CHECK(st, list_is(st, "nothing", 1, NULL, 0));
			CHECK(st, list_is(st, "a.txt", 1, NULL, 0)); /* an object, not a dir */
		}
		{ /* the whole table, one level: the top keys only */
			static const char *top[] = {"a.txt", "empty", "r.bin"};
			CHECK(st, list_is(st, NULL, 0, top, 3));
			CHECK(st, list_is(st, "", 0, top, 3));
		}
		memset(&l, 0, sizeof(l));
		CHECK(st, rn_tstore_list(st, "d", 1, collect, &l) == 0 && (size_t)l.n == n);
		for (size_t i = 0; i < n; i++) {
			CHECK(st, l.sizes[i] == (int64_t)strlen(l.keys[i]));
			/* LastModified in a listing has milliseconds */
			CHECK(st, l.mtimes[i] >= t0 - 1000 && l.mtimes[i] <= t1 + 1000);
			CHECK(st, rn_tstore_stat(st, l.keys[i], &e2) == 0);
			CHECK(st, e2.mtime_ms == l.mtimes[i] / 1000 * 1000);
		}
		/* the whole table, recursively: everything above, in order */
		memset(&l, 0, sizeof(l));
		CHECK(st, rn_tstore_list(st, NULL, 1, collect, &l) == 0);
		CHECK(st, l.n == (int)n + 4); /* a.txt empty r.bin s/t.json + d/ */
		for (int i = 1; i < l.n; i++)
			CHECK(st, strcmp(l.keys[i - 1], l.keys[i]) < 0);
		/* a nonzero return stops the listing and is returned */
		memset(&l, 0, sizeof(l));
		l.stop_after = 2;
		CHECK(st, rn_tstore_list(st, "d", 1, collect, &l) == 7 && l.calls == 2);
	}
	{ /* delete: idempotent */
		CHECK(st, rn_tstore_delete(st, "a.txt") == 0);
		CHECK(st, rn_tstore_stat(st, "a.txt", &e) == RN_ENOTFOUND);
		CHECK(st, rn_tstore_delete(st, "a.txt") == 0);
		CHECK(st, rn_tstore_delete(st, "never/was") == 0);
		CHECK(st, rn_tstore_put(st, "a.txt", "again", 5) == 0); /* and back */
		CHECK(st, get_eq(st, "a.txt", 0, -1, "again", 5));
	}
	{ /* put_new: the first wins, from any object on the root */
		const char *k = "_delta_log/00000000000000000000.json";
		CHECK(st, rn_tstore_put_new(st, k, "commit A", 8) == 0);
		CHECK(st, rn_tstore_put_new(st2, k, "commit B", 8) == RN_EEXIST);
		CHECK(st, rn_tstore_put_new(st, k, "commit A", 8) == RN_EEXIST);
		CHECK(st, get_eq(st2, k, 0, -1, "commit A", 8));
		CHECK(st, rn_tstore_put_new(st, "a.txt", "x", 1) == RN_EEXIST); /* made by put */
		CHECK(st,
		      rn_tstore_put_new(st, "_delta_log/00000000000000000001.json", "", 0) == 0);
	}
	{ /* map: a small object, an empty one, a missing one; no fd stays open */
		fds = fds_open();
		CHECK(st, rn_tstore_map(st, "r.bin", &m) == 0);
		CHECK(st, m.len == 256 && memcmp(m.data, bytes, 256) == 0);
		rn_tstore_unmap(&m);
		CHECK(st, m.data == NULL && m.len == 0);
		CHECK(st, rn_tstore_map(st, "empty", &m) == 0 && m.data == NULL && m.len == 0);
		rn_tstore_unmap(&m);
		CHECK(st, rn_tstore_map(st, "missing", &m) == RN_ENOTFOUND && m.data == NULL);
		CHECK(st, fds_open() == fds);
	}
	{ /* bad keys: refused before any request, by every operation */
		static const char *bad[] = {"",     "/a", "a/",     "a//b", "./a",  "a/./b",
					    "a/..", "..", "a\001b", "a\nb", "a\177"};
		char longkey[RN_TSTORE_KEY_MAX + 2];
		struct listed l;
		memset(longkey, 'k', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = 0;
		for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
			const char *k = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : longkey;
			CHECK(st, rn_tstore_put(st, k, "x", 1) == RN_EINVAL);
			CHECK(st, rn_tstore_put_new(st, k, "x", 1) == RN_EINVAL);
			CHECK(st, rn_tstore_get(st, k, 0, -1, &buf) == RN_EINVAL);
			CHECK(st, rn_tstore_stat(st, k, &e) == RN_EINVAL);
			CHECK(st, rn_tstore_delete(st, k) == RN_EINVAL);
			CHECK(st, rn_tstore_map(st, k, &m) == RN_EINVAL);
			memset(&l, 0, sizeof(l));
			CHECK(st, !*k || rn_tstore_list(st, k, 1, collect, &l) == RN_EINVAL);
			CHECK(st, strstr(rn_tstore_errmsg(st), "bad key") || !*k);
		}
		CHECK(st, rn_tstore_put(st, NULL, "x", 1) == RN_EINVAL);
		/* a key the rules allow but that S3 cannot hold behind this root's prefix */
		if (*prefix) {
			size_t room = 1024 - strlen(prefix) - 1; /* S3: 1,024 bytes a key */
			CHECK(st, room < RN_TSTORE_KEY_MAX);
			longkey[room + 1] = 0;
			CHECK(st, rn_tstore_put(st, longkey, "x", 1) == RN_EINVAL);
			CHECK(st, strstr(rn_tstore_errmsg(st), "too long"));
			longkey[room] = 0;
			CHECK(st, rn_tstore_put(st, longkey, "x", 1) == 0);
			CHECK(st, get_eq(st, longkey, 0, -1, "x", 1));
			CHECK(st, rn_tstore_delete(st, longkey) == 0);
		}
	}
	CHECK(st, strcmp(rn_tstore_root(st), root) == 0 && rn_tstore_local_dir(st) == NULL);
	{ /* the contract of every backend, under a fresh prefix of this root; it prints each
	   * failed check to stderr and leaves nothing behind */
		int fails = rn_tstore_contract_run_pair(st, st2);
		checks++;
		if (fails) {
			snprintf(failed, sizeof(failed),
				 "the shared contract (tstore_contract.c): %d checks failed (on "
				 "stderr)",
				 fails);
			goto out;
		}
	}
	rc = 0;
out:
	rn_tstore_unmap(&m);
	rn_buf_free(&buf);
	rn_tstore_close(st);
	rn_tstore_close(st2);
	rn_s3_destroy(raw);
	return rc;
}

struct racer {
	struct rn_tstore *st;
	pthread_barrier_t *bar;
	int who, rounds, *rcs; /* rcs[round] */
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		char key[64], body[64];
		snprintf(key, sizeof(key), "_delta_log/%020d.json", i);
		snprintf(body, sizeof(body), "{\"commitInfo\":{\"writer\":%d,\"round\":%d}}",
			 r->who, i);
		pthread_barrier_wait(r->bar);
		r->rcs[i] = rn_tstore_put_new(r->st, key, body, strlen(body));
	}
	return NULL;
}

static int race(int rounds, int *wins)
{
	struct rn_tstore *st[2] = {NULL, NULL};
	struct racer r[2];
	pthread_barrier_t bar;
	pthread_t t[2];
	int rcs[2][256], rc = -1;

	if (rounds < 1 || rounds > 256) {
		snprintf(failed, sizeof(failed), "rounds: 1..256");
		return -1;
	}
	/* opened here, not in the threads: curl's global init is not for two threads at once */
	if (open_store(&st[0]) || open_store(&st[1]))
		goto out;
	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct racer){.st = st[i], .bar = &bar, .who = i, .rounds = rounds};
		r[i].rcs = rcs[i];
		pthread_create(&t[i], NULL, race_thread, &r[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < rounds; i++) {
		char key[64], want[64];
		int w = rcs[0][i] == 0 ? 0 : 1;
		snprintf(key, sizeof(key), "_delta_log/%020d.json", i);
		snprintf(want, sizeof(want), "{\"commitInfo\":{\"writer\":%d,\"round\":%d}}", w, i);
		CHECK(st[0], (rcs[0][i] == 0 && rcs[1][i] == RN_EEXIST) ||
				     (rcs[1][i] == 0 && rcs[0][i] == RN_EEXIST));
		CHECK(st[0], get_eq(st[0], key, 0, -1, want, strlen(want)));
		wins[w]++;
	}
	rc = 0;
out:
	rn_tstore_close(st[0]);
	rn_tstore_close(st[1]);
	return rc;
}

struct order {
	char last[256];
	long n, bad, outside;
	const char *dir;
};

static int count_ordered(void *ctx, const struct rn_tstore_entry *e)
{
	struct order *o = ctx;
	if (o->n && strcmp(o->last, e->key) >= 0)
		o->bad++;
	if (strncmp(e->key, o->dir, strlen(o->dir)) != 0)
		o->outside++;
	snprintf(o->last, sizeof(o->last), "%s", e->key);
	o->n++;
	return 0;
}

static int many(int n)
{
	struct rn_tstore *st = NULL;
	struct order o;
	int rc = -1;
	if (open_store(&st))
		goto out;
	for (int i = 0; i < n; i++) {
		char key[64];
		/* names whose byte order differs from a numeric or case-blind order */
		snprintf(key, sizeof(key), "many/%c%05d.parquet", i % 3 == 0 ? 'B' : 'a', n - i);
		CHECK(st, rn_tstore_put(st, key, key, strlen(key)) == 0);
	}
	CHECK(st, rn_tstore_put(st, "many/sub/x", "x", 1) == 0);
	CHECK(st, rn_tstore_put(st, "many.txt", "x", 1) == 0);
	memset(&o, 0, sizeof(o));
	o.dir = "many/";
	CHECK(st, rn_tstore_list(st, "many", 1, count_ordered, &o) == 0);
	CHECK(st, o.n == n + 1 && o.bad == 0 && o.outside == 0);
	CHECK(st, strcmp(o.last, "many/sub/x") == 0);
	memset(&o, 0, sizeof(o));
	o.dir = "many/";
	CHECK(st, rn_tstore_list(st, "many", 0, count_ordered, &o) == 0);
	CHECK(st, o.n == n && o.bad == 0 && o.outside == 0);
	memset(&o, 0, sizeof(o));
	o.dir = "";
	CHECK(st, rn_tstore_list(st, NULL, 1, count_ordered, &o) == 0);
	CHECK(st, o.n == n + 2 && o.bad == 0);
	rc = 0;
out:
	rn_tstore_close(st);
	return rc;
}

/* BYTES pseudo-random bytes of seed (xorshift), so the node test can make the same. */
static uint8_t *gen(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; p && i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
	return p;
}

static int big(int mb, int64_t *parts_seen)
{
	struct rn_tstore *st = NULL;
	struct rn_s3 *raw = NULL;
	struct rn_tstore_map m = {0};
	struct rn_tstore_entry e;
	struct rn_s3_list l = {0};
	size_t len = ((size_t)mb << 20) + 12345;
	int64_t part = cfg.s3.part_size ? cfg.s3.part_size : RN_S3_PART_DEFAULT;
	uint8_t *p = gen(len, 7);
	const char *dash;
	int rc = -1, fds = fds_open(); /* regular files only: the store's sockets are not counted */

	if (!p || open_store(&st) || !(raw = raw_client()))
		goto out;
	CHECK(st, (int64_t)len > (cfg.s3.multipart_threshold ? cfg.s3.multipart_threshold
							     : RN_S3_THRESHOLD_DEFAULT));
	CHECK(st, rn_tstore_put(st, "big/part-00000.parquet", p, len) == 0);
	/* a multipart object's ETag ends in "-<parts>" */
	CHECK(st, rn_s3_list(raw, whole("big/part-00000.parquet"), NULL, NULL, 0, &l) == 0);
	CHECK(st, l.n == 1 && (dash = strrchr(l.items[0].etag, '-')) != NULL);
	*parts_seen = atoll(dash + 1);
	CHECK(st, *parts_seen == ((int64_t)len + part - 1) / part);
	CHECK(st, rn_tstore_stat(st, "big/part-00000.parquet", &e) == 0 && e.size == (int64_t)len);
	CHECK(st, get_eq(st, "big/part-00000.parquet", part - 100, 200, p + part - 100, 200));
	CHECK(st, rn_tstore_map(st, "big/part-00000.parquet", &m) == 0);
	CHECK(st, m.len == len && memcmp(m.data, p, len) == 0);
	rn_tstore_unmap(&m);
	CHECK(st, fds < 0 || fds_open() == fds);
	/* replaced by a small one: a single PUT */
	CHECK(st, rn_tstore_put(st, "big/part-00000.parquet", p, 1000) == 0);
	rn_s3_list_free(&l);
	CHECK(st, rn_s3_list(raw, whole("big/part-00000.parquet"), NULL, NULL, 0, &l) == 0);
	CHECK(st, l.n == 1 && l.items[0].size == 1000 && !strchr(l.items[0].etag, '-'));
	rc = 0;
out:
	rn_tstore_unmap(&m);
	rn_s3_list_free(&l);
	rn_tstore_close(st);
	rn_s3_destroy(raw);
	free(p);
	return rc;
}

/* Puts the files under dir/rel (rel "" = dir) at their relative paths; the log last. */
static int upload(struct rn_tstore *st, const char *dir, const char *rel, int logpass, int *n)
{
	char path[4096], key[2048];
	struct dirent **ents;
	int rc = 0, cnt;

	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	if ((cnt = scandir(path, &ents, NULL, alphasort)) < 0)
		return RN_EIO;
	for (int i = 0; i < cnt; i++) {
		const char *name = ents[i]->d_name;
		struct stat sb;
		if (rc || name[0] == '.')
			continue;
		snprintf(key, sizeof(key), "%s%s%s", rel, *rel ? "/" : "", name);
		snprintf(path, sizeof(path), "%s/%s", dir, key);
		if (stat(path, &sb))
			rc = RN_EIO;
		else if (S_ISDIR(sb.st_mode))
			rc = upload(st, dir, key, logpass, n);
		else if (S_ISREG(sb.st_mode) && logpass == !strncmp(key, "_delta_log/", 11)) {
			struct rn_buf b = {0};
			FILE *f = fopen(path, "rb");
			char tmp[65536];
			size_t k;
			if (!f) {
				rc = RN_EIO;
				continue;
			}
			while (!rc && (k = fread(tmp, 1, sizeof(tmp), f)) > 0)
				rc = rn_buf_append(&b, tmp, k);
			fclose(f);
			if (!rc && !(rc = rn_tstore_put(st, key, b.data ? (const void *)b.data : "",
							b.len)))
				(*n)++;
			rn_buf_free(&b);
		}
	}
	for (int i = 0; i < cnt; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

static int noop(void *ctx, const struct rn_tstore_entry *e)
{
	(void)ctx, (void)e;
	return 0;
}

static int unreachable(void)
{
	struct rn_tstore *st = NULL;
	struct rn_tstore_entry e;
	struct rn_tstore_map m = {0};
	struct rn_buf b = {0};
	const char *secret =
		cfg.s3.secret_key ? cfg.s3.secret_key : getenv("AWS_SECRET_ACCESS_KEY");
	int rc = -1;
	if (open_store(&st))
		goto out;
#define DOWN(call)                                                                                 \
	CHECK(st, (call) == RN_ECONNECT);                                                          \
	CHECK(st, rn_tstore_errmsg(st)[0] && (!secret || !strstr(rn_tstore_errmsg(st), secret)))
	DOWN(rn_tstore_put(st, "k", "v", 1));
	DOWN(rn_tstore_put_new(st, "_delta_log/0.json", "v", 1)); /* nothing sent: not unknown */
	DOWN(rn_tstore_get(st, "k", 0, -1, &b));
	DOWN(rn_tstore_get(st, "k", 0, 0, &b));
	DOWN(rn_tstore_stat(st, "k", &e));
	DOWN(rn_tstore_delete(st, "k"));
	DOWN(rn_tstore_list(st, NULL, 1, noop, NULL));
	DOWN(rn_tstore_map(st, "k", &m));
#undef DOWN
	CHECK(st, m.data == NULL && b.len == 0);
	rc = 0;
out:
	rn_buf_free(&b);
	rn_tstore_close(st);
	return rc;
}

static int mapfault(void)
{
	struct rn_tstore *st = NULL, *nospool = NULL;
	struct rn_tstore_config c2 = cfg;
	struct rn_tstore_map m = {0};
	size_t len = 300000;
	uint8_t *p = gen(len, 3);
	char err[512];
	int rc = -1, fds;
	static const struct {
		unsigned ops;
		int err, want;
	} faults[] = {
		{RN_FS_OPEN, EIO, RN_EIO},        {RN_FS_OPEN, ENOSPC, RN_ENOSPC},
		{RN_FS_WRITE, ENOSPC, RN_ENOSPC}, {RN_FS_WRITE, EIO, RN_EIO},
		{RN_FS_TRUNCATE, EIO, RN_EIO},
	};
	if (!p || open_store(&st))
		goto out;
	CHECK(st, rn_tstore_put(st, "f/data.parquet", p, len) == 0);
	fds = fds_open();
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		rn_fs_fail_after(1, faults[i].err, faults[i].ops);
		CHECK(st, rn_tstore_map(st, "f/data.parquet", &m) == faults[i].want);
		CHECK(st, rn_fs_injected() == (long)i + 1);
		CHECK(st, m.data == NULL && m.len == 0);
		CHECK(st, strstr(rn_tstore_errmsg(st), strerror(faults[i].err)));
		CHECK(st, fds_open() == fds);
	}
	rn_fs_fail_after(0, 0, 0);
	CHECK(st, rn_tstore_map(st, "f/data.parquet", &m) == 0);
	CHECK(st, m.len == len && memcmp(m.data, p, len) == 0);
	rn_tstore_unmap(&m);
	c2.spool_dir = "/nonexistent/spool";
	CHECK(st, rn_tstore_open(&nospool, root, &c2, err, sizeof(err)) == 0);
	CHECK(nospool, rn_tstore_map(nospool, "f/data.parquet", &m) == RN_EIO);
	CHECK(nospool, strstr(rn_tstore_errmsg(nospool), "/nonexistent/spool"));
	CHECK(st, fds_open() == fds);
	rc = 0;
out:
	rn_tstore_unmap(&m);
	rn_fs_fail_after(0, 0, 0);
	rn_tstore_close(st);
	rn_tstore_close(nospool);
	free(p);
	return rc;
}

/* One operation of the sweep on an open store; n numbers the step (fresh keys). */
typedef int (*sweep_fn)(struct rn_tstore *st, long n);

static int sw_put(struct rn_tstore *st, long n)
{
	(void)n;
	return rn_tstore_put(st, "sw/put", "value", 5);
}
static int sw_put_new(struct rn_tstore *st, long n)
{
	char key[64], body[64];
	struct rn_tstore_entry e;
	struct rn_buf b = {0};
	int rc;
	snprintf(key, sizeof(key), "sw/_delta_log/%020ld.json", n);
	snprintf(body, sizeof(body), "commit %ld", n);
	rc = rn_tstore_put_new(st, key, body, strlen(body));
	/* never success without our object, never an object after an RN_ENOMEM (the request
	 * was not sent: no "unknown"); checked with allocations working again (the sweep's
	 * disarm after this one still tells whether the failure was reached) */
	rn_mem_fail_disarm();
	if (rc == 0 && rn_tstore_get(st, key, 0, -1, &b) == 0 &&
	    (b.len != strlen(body) || memcmp(b.data, body, b.len) != 0))
		rc = -9999;
	else if (rc == RN_ENOMEM && rn_tstore_stat(st, key, &e) != RN_ENOTFOUND)
		rc = -9998;
	rn_buf_free(&b);
	return rc;
}
static int sw_get(struct rn_tstore *st, long n)
{
	struct rn_buf b = {0};
	int rc = rn_tstore_get(st, "sw/put", n & 1, -1, &b);
	rn_buf_free(&b);
	return rc;
}
static int sw_stat(struct rn_tstore *st, long n)
{
	struct rn_tstore_entry e;
	(void)n;
	return rn_tstore_stat(st, "sw/put", &e);
}
static int sw_list(struct rn_tstore *st, long n)
{
	return rn_tstore_list(st, n & 1 ? "sw" : NULL, (int)(n & 2), noop, NULL);
}
static int sw_map(struct rn_tstore *st, long n)
{
	struct rn_tstore_map m;
	int rc;
	(void)n;
	rc = rn_tstore_map(st, "sw/put", &m);
	rn_tstore_unmap(&m);
	return rc;
}
static int sw_delete(struct rn_tstore *st, long n)
{
	(void)n;
	return rn_tstore_delete(st, "sw/gone");
}
static int sw_multipart(struct rn_tstore *st, long n)
{
	static uint8_t *p;
	struct rn_tstore_entry e;
	size_t len = (size_t)cfg.s3.multipart_threshold + 1;
	int rc;
	if (!p && !(p = gen(len, 5)))
		return RN_ENOMEM;
	rc = rn_tstore_put(st, "sw/mp", p, len);
	rn_mem_fail_disarm();
	/* a failed multipart put leaves no object or (a completion applied whose answer could
	 * not be read) the whole one, never a part: the key was deleted before each step */
	if (rc == RN_ENOMEM && rn_tstore_stat(st, "sw/mp", &e) != RN_ENOTFOUND &&
	    e.size != (int64_t)len)
		rc = -9997;
	if (rc == 0 && (rn_tstore_stat(st, "sw/mp", &e) != 0 || e.size != (int64_t)len))
		rc = -9996;
	rn_tstore_delete(st, "sw/mp");
	(void)n;
	return rc;
}

static int allocsweep(long *steps)
{
	static const struct {
		const char *name;
		sweep_fn fn;
	} ops[] = {{"put", sw_put},       {"put_new", sw_put_new},    {"get", sw_get},
		   {"stat", sw_stat},     {"list", sw_list},          {"map", sw_map},
		   {"delete", sw_delete}, {"multipart", sw_multipart}};
	struct rn_tstore *st = NULL;
	long live = rn_mem_live();
	char err[512];
	int done = 0, rc = -1;

	/* open: every allocation, nothing left behind */
	for (long nth = 1; !done && nth < 1000; nth++) {
		int orc;
		rn_mem_fail_after(nth);
		orc = rn_tstore_open(&st, root, &cfg, err, sizeof(err));
		done = !rn_mem_fail_disarm();
		CHECK(NULL, orc == (done ? 0 : RN_ENOMEM));
		CHECK(NULL, done || st == NULL);
		rn_tstore_close(st);
		st = NULL;
		CHECK(NULL, rn_mem_live() == live);
		(*steps)++;
	}
	CHECK(NULL, done);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (open_store(&st))
			goto out;
		CHECK(st, rn_tstore_put(st, "sw/put", "value", 5) == 0);
		live = rn_mem_live();
		done = 0;
		for (long nth = 1; !done && nth < 5000; nth++) {
			int orc;
			rn_mem_fail_after(nth);
			orc = ops[i].fn(st, nth);
			done = !rn_mem_fail_disarm();
			if (!(orc == 0 || (!done && orc == RN_ENOMEM))) {
				snprintf(failed, sizeof(failed),
					 "%s, allocation %ld failing: rc %d (%s)", ops[i].name, nth,
					 orc, rn_tstore_errmsg(st));
				goto out;
			}
			if (rn_mem_live() != live) {
				snprintf(failed, sizeof(failed),
					 "%s, allocation %ld failing: %ld leaked", ops[i].name, nth,
					 rn_mem_live() - live);
				goto out;
			}
			(*steps)++;
		}
		rn_tstore_close(st);
		st = NULL;
		CHECK(NULL, done);
	}
	rc = 0;
out:
	rn_mem_fail_disarm();
	rn_tstore_close(st);
	return rc;
}

static void result(const char *op, int rc, const struct rn_tstore *st)
{
	printf("\"rc\":%d,\"error\":", rc);
	probe_json_str(rc ? rn_strerror(rc) : "");
	printf(",\"msg\":");
	probe_json_str(st ? rn_tstore_errmsg(st) : "");
	printf(",\"op\":");
	probe_json_str(op);
	printf("}\n");
}

static void battery(const char *op, int rc, const char *extra)
{
	printf("{\"ok\":%s,\"checks\":%d,\"failed\":", rc ? "false" : "true", checks);
	probe_json_str(failed);
	printf("%s,\"op\":", extra);
	probe_json_str(op);
	printf("}\n");
}

int main(int argc, char **argv)
{
	struct rn_tstore *st = NULL;
	const char *op, *b, *slash;
	char err[512], extra[256] = "";
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: tstore_probe ENDPOINT s3://BUCKET[/PREFIX] OP ARGS...\n");
		return 2;
	}
	cfg.s3.endpoint = argv[1];
	cfg.s3.region = getenv("AWS_REGION");
	cfg.s3.max_attempts = probe_envint("TSTORE_PROBE_ATTEMPTS", 0);
	cfg.s3.timeout_ms = probe_envint("TSTORE_PROBE_TIMEOUT_MS", 0);
	cfg.s3.backoff_ms = 50;
	cfg.s3.part_size = (int64_t)probe_envint("TSTORE_PROBE_PART_MB", 0) << 20;
	cfg.s3.multipart_threshold = (int64_t)probe_envint("TSTORE_PROBE_THRESHOLD_MB", 0) << 20;
	cfg.spool_dir = getenv("TSTORE_PROBE_SPOOL");
	root = argv[2];
	op = argv[3];
	if (strncmp(root, "s3://", 5) != 0) {
		fprintf(stderr, "tstore_probe: an s3:// root is expected\n");
		return 2;
	}
	b = root + 5;
	slash = strchr(b, '/');
	snprintf(bucket, sizeof(bucket), "%.*s", slash ? (int)(slash - b) : (int)strlen(b), b);
	snprintf(prefix, sizeof(prefix), "%s", slash ? slash + 1 : "");

	if (strcmp(op, "contract") == 0 && argc == 4) {
		battery(op, contract(), "");
		return 0;
	} else if (strcmp(op, "race") == 0 && argc == 5) {
		int wins[2] = {0, 0};
		rc = race(atoi(argv[4]), wins);
		snprintf(extra, sizeof(extra), ",\"wins\":[%d,%d]", wins[0], wins[1]);
		battery(op, rc, extra);
		return 0;
	} else if (strcmp(op, "many") == 0 && argc == 5) {
		battery(op, many(atoi(argv[4])), "");
		return 0;
	} else if (strcmp(op, "big") == 0 && argc == 5) {
		int64_t parts = 0;
		rc = big(atoi(argv[4]), &parts);
		snprintf(extra, sizeof(extra), ",\"parts\":%lld", (long long)parts);
		battery(op, rc, extra);
		return 0;
	} else if (strcmp(op, "unreachable") == 0 && argc == 4) {
		battery(op, unreachable(), "");
		return 0;
	} else if (strcmp(op, "mapfault") == 0 && argc == 4) {
		battery(op, mapfault(), "");
		return 0;
	} else if (strcmp(op, "allocsweep") == 0 && argc == 4) {
		long steps = 0;
		rc = allocsweep(&steps);
		snprintf(extra, sizeof(extra), ",\"steps\":%ld", steps);
		battery(op, rc, extra);
		return 0;
	}

	if ((rc = rn_tstore_open(&st, root, &cfg, err, sizeof(err)))) {
		printf("{\"rc\":%d,\"error\":", rc);
		probe_json_str(rn_strerror(rc));
		printf(",\"msg\":");
		probe_json_str(err);
		printf("}\n");
		return 0;
	}
	printf("{");
	if (strcmp(op, "put") == 0 && argc == 6) {
		rc = rn_tstore_put(st, argv[4], argv[5], strlen(argv[5]));
	} else if (strcmp(op, "put_new") == 0 && argc == 6) {
		rc = rn_tstore_put_new(st, argv[4], argv[5], strlen(argv[5]));
	} else if ((strcmp(op, "putgen") == 0 || strcmp(op, "put_newgen") == 0) && argc == 7) {
		size_t len = (size_t)atoll(argv[5]);
		uint8_t *p = gen(len, (uint64_t)atoll(argv[6]));
		char hex[65];
		rc = !p             ? RN_ENOMEM
		     : op[3] == '_' ? rn_tstore_put_new(st, argv[4], p, len)
				    : rn_tstore_put(st, argv[4], p, len);
		if (p) {
			rn_sigv4_sha256_hex(p, len, hex);
			printf("\"sha256\":\"%s\",", hex);
		}
		free(p);
	} else if ((strcmp(op, "get") == 0 && (argc == 5 || argc == 7)) ||
		   (strcmp(op, "hash") == 0 && argc == 5)) {
		struct rn_buf buf = {0};
		char hex[65];
		rc = rn_tstore_get(st, argv[4], argc == 7 ? atoll(argv[5]) : 0,
				   argc == 7 ? atoll(argv[6]) : -1, &buf);
		if (!rc) {
			rn_sigv4_sha256_hex(buf.data ? (const char *)buf.data : "", buf.len, hex);
			printf("\"len\":%zu,\"sha256\":\"%s\",", buf.len, hex);
			if (strcmp(op, "get") == 0 && buf.len <= 4096 &&
			    !memchr(buf.data ? (const char *)buf.data : "", 0, buf.len)) {
				rn_buf_append_u8(&buf, 0);
				printf("\"text\":");
				probe_json_str(buf.data ? (const char *)buf.data : "");
				putchar(',');
			}
		}
		rn_buf_free(&buf);
	} else if (strcmp(op, "stat") == 0 && argc == 5) {
		struct rn_tstore_entry e = {0};
		rc = rn_tstore_stat(st, argv[4], &e);
		printf("\"size\":%lld,\"mtime_ms\":%lld,", (long long)e.size,
		       (long long)e.mtime_ms);
	} else if (strcmp(op, "delete") == 0 && argc == 5) {
		rc = rn_tstore_delete(st, argv[4]);
	} else if (strcmp(op, "upload") == 0 && argc == 5) {
		int n = 0;
		/* data files first, then the log: a commit never names a file not there yet */
		if (!(rc = upload(st, argv[4], "", 0, &n)))
			rc = upload(st, argv[4], "", 1, &n);
		printf("\"objects\":%d,", n);
	} else {
		fprintf(stderr, "tstore_probe: unknown op or wrong arguments: %s\n", op);
		rn_tstore_close(st);
		return 2;
	}
	result(op, rc, st);
	rn_tstore_close(st);
	return 0;
}
