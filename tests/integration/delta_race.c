/*
 * delta_race: several writers on one Delta table (server/delta/delta.h) in one table store
 * (a local directory or an s3:// prefix), as several runnel-servers sharing a table are. It
 * forks K writer processes; each opens its own store object and rn_delta handle on ROOT
 * (racing version 0 when the table is new), waits until all are ready, then commits: one
 * small Parquet data file (ROWS rows whose ids name the writer and the commit) and one txn
 * (appId "writer-<k>", version = the commit's number 1, 2, ...) per version, retrying a
 * failed commit with the same file and txn as the server's materializer does
 * (server/mat/flush.c: RN_EEXIST after a failed attempt means that attempt is in the table).
 * Then the parent reads the table back on a fresh handle and through the log itself:
 * versions 0..N contiguous and nothing else in _delta_log, every writer's commits present
 * once each with its txn watermark at its last, no data file referenced twice, every row of
 * every committed file in the table once, in the file its txn's commit added.
 * For tests/integration/delta_race.test.mjs (label s3) and bench/s3_commit.sh. Not installed.
 *
 *   delta_race [-k K] [-m M | -t SECS] [-b N] [-r ROWS] [-e ENDPOINT] [-v ENDPOINT]
 *              [-a ATTEMPTS] [-T MS] ROOT
 *   delta_race -V [-k K] [-m M] [-r ROWS] [-e ENDPOINT] ROOT
 *
 * -V: no writers, only the verdict on a table K writers of M commits left (the test damages
 * one to see the verdict catch it). -b N: writer 0, after its first commit, waits until the
 * others have committed N versions: its next commit starts N versions behind (a server
 * paused, or idle on this table while the others wrote), more than one commit call races
 * through (1,000): it must fail (RN_EAGAIN) and be retried, never report another's version.
 * -k writers (default 3, at most 64); -m commits per writer (default 30); -t commit for SECS
 * seconds instead (bench); -r rows per file (default 4); for s3:// roots -e the endpoint
 * (default $AWS_ENDPOINT_URL) and -v the one the verdict reads through (default -e's: the
 * writers may go through a faulty proxy, the read-back not), credentials and region from
 * AWS_*, -a attempts per request and -T one attempt's timeout in ms (the store's defaults
 * otherwise). Prints one JSON line:
 * ok, checks, failed (the first failed check), per-writer commits, commits, versions, races
 * (versions a writer found taken and walked past: put-if-absent conflicts), retries_per_commit,
 * unknown (commits whose first outcome was unknown, found in the table by a retry),
 * failed_tries, secs, commits_per_s, lat_ms (p50, p99, max of one commit call until it was
 * known in the table, retries included), orphans (data files in the store no commit names),
 * open_s (until every writer had its handle) and verify_s (the read-back).
 * Exit 0 when it ran (whatever the verdict), 2 on bad usage.
 *
 * Processes, not threads: closer to several servers (no shared curl state, allocator or
 * clock), and a writer that crashes cannot take the others with it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "delta.h"
#include "parquet.h"
#include "pqread.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_json.h"
#include "rn_zstd.h"
#include "tstore.h"
#include "probe_util.h"

#define MAX_WRITERS 64
#define LAT_CAP 100000 /* latencies kept per writer (a bench of more commits keeps the first) */
#define ID_WRITER 1000000000LL
#define ID_COMMIT 1000LL

#define SCHEMA                                                                                     \
	"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","                     \
	"\"nullable\":false,\"metadata\":{}}]}"

/* One writer's results, in memory shared with the parent (written by the writer only). */
struct wstat {
	int64_t done;         /* commits known in the table: txns 1..done */
	int64_t races;        /* versions found taken by another writer and walked past */
	int64_t unknown;      /* commits whose failed attempt turned out to be in the table */
	int64_t failed_tries; /* commit calls that failed and were retried */
	int64_t file_tries;   /* data file writes that failed and were retried */
	int64_t open_tries;   /* opens that failed and were retried */
	int rc;               /* 0, or the error that stopped the writer */
	int ready, ended;
	char err[512];
	int64_t nlat;
	uint32_t lat_us[LAT_CAP];
	/* per commit m < LAT_CAP, for the verdict's messages: the version the commit call
	 * reported (-1: found in the table by a retry), and its first failure (0: none) */
	int64_t ver[LAT_CAP];
	int first_rc[LAT_CAP];
};

static struct rn_tstore_config cfg;
static const char *root, *verify_endpoint;
static int K = 3, M = 30, ROWS = 4, SECS, VERIFY_ONLY, BEHIND;
static int checks, nfails;
static char failed[1024];

/* A check of the verdict: counted; the first failure is kept (the rest go to stderr). */
#define CHECK(c, ...)                                                                              \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(c))                                                                          \
			check_failed(__LINE__, #c, __VA_ARGS__);                                   \
	} while (0)

__attribute__((format(printf, 3, 4))) static void check_failed(int line, const char *what,
							       const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!nfails++)
		snprintf(failed, sizeof(failed), "line %d: %s: %s", line, what, msg);
	fprintf(stderr, "delta_race: line %d: %s: %s\n", line, what, msg);
}

static void backoff(int attempt)
{
	int ms = attempt < 10 ? 20 * attempt : 200;
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL); /* a retry's pause, not a wait for another writer */
}

static int open_table(struct rn_delta **d, const char *schema, const char *engine, char *err,
		      size_t cap)
{
	struct rn_tstore *st;
	int rc = rn_tstore_open(&st, root, &cfg, err, cap);
	if (rc)
		return rc;
	rc = rn_delta_open_store(d, st, schema, engine); /* closes st when it fails */
	if (rc)
		snprintf(err, cap, "opening the table: %s", rn_strerror(rc));
	return rc;
}

/* The Parquet file of writer k's commit m: ids k*ID_WRITER + m*ID_COMMIT + i, i < ROWS. */
static int make_file(int k, int64_t m, struct rn_buf *out)
{
	static const struct rn_pq_col cols[1] = {{.name = "id", .type = RN_PQ_INT64}};
	struct rn_pq_writer *w;
	int rc = rn_pq_writer_create(&w, cols, 1, NULL);
	for (int i = 0; !rc && i < ROWS; i++) {
		rc = rn_pq_put_i64(w, 0, k * ID_WRITER + m * ID_COMMIT + i);
		rc = rc ? rc : rn_pq_row_end(w);
	}
	rc = rc ? rc : rn_pq_finish(w, out);
	rn_pq_writer_destroy(w);
	return rc;
}

/* Writer k's commit m: the data file written once (retried until it is), then committed
 * with txn (writer-k, m) until the table has it. 0, or the error that stops the writer. */
static int commit_one(struct rn_delta *d, int k, int64_t m, struct wstat *ws)
{
	char app[32], name[256], stats[64];
	struct rn_buf file = {0};
	int64_t mtime = 0, version, v0, t0;
	int rc, attempt;

	snprintf(app, sizeof(app), "writer-%d", k);
	if ((rc = make_file(k, m, &file))) {
		snprintf(ws->err, sizeof(ws->err), "commit %" PRId64 ": parquet: %s", m,
			 rn_strerror(rc));
		return rc;
	}
	for (attempt = 0;; attempt++) {
		rc = rn_delta_write_file(d, file.data, file.len, name, sizeof(name), &mtime);
		if (!rc || attempt == 50 || rc == RN_ENOMEM || rc == RN_EINVAL)
			break;
		ws->file_tries++;
		backoff(attempt + 1);
	}
	if (rc) {
		snprintf(ws->err, sizeof(ws->err), "commit %" PRId64 ": data file: %s", m,
			 rn_delta_errmsg(d));
		goto out;
	}
	snprintf(stats, sizeof(stats), "{\"numRecords\":%d}", ROWS);
	struct rn_delta_add add = {
		.path = name, .size = (int64_t)file.len, .mtime_ms = mtime, .stats = stats};
	struct rn_delta_txn txn = {.app_id = app, .version = m};
	t0 = rn_mono_us();
	v0 = rn_delta_version(d);
	for (attempt = 0;; attempt++) {
		version = -1;
		rc = rn_delta_commit(d, &add, 1, &txn, 1, &version);
		if (rc && !attempt && m < LAT_CAP)
			ws->first_rc[m] = rc;
		if (rc == RN_EEXIST && attempt > 0) {
			/* a failed attempt of ours is in the table (its outcome was unknown) */
			ws->unknown++;
			rc = 0;
		} else if (rc == RN_EEXIST) {
			snprintf(ws->err, sizeof(ws->err),
				 "commit %" PRId64 ": txn already in the table before any attempt",
				 m);
		}
		if (!rc || rc == RN_EEXIST || rc == RN_EOVERLAP || rc == RN_ENOMEM ||
		    rc == RN_EINVAL)
			break;
		if (attempt == 100) {
			snprintf(ws->err, sizeof(ws->err), "commit %" PRId64 ": %d attempts: %s", m,
				 attempt + 1, rn_delta_errmsg(d));
			break;
		}
		ws->failed_tries++; /* RN_EIO, RN_ECONNECT, RN_EAGAIN, RN_ECONFLICT...: again */
		backoff(attempt + 1);
	}
	if (!rc) {
		int64_t us = rn_mono_us() - t0;
		/* every version the handle moved past, but our own one, was another writer's */
		ws->races += rn_delta_version(d) - v0 - 1;
		if (ws->nlat < LAT_CAP)
			ws->lat_us[ws->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		if (m < LAT_CAP)
			ws->ver[m] = version;
		__atomic_store_n(&ws->done, m, __ATOMIC_RELAXED); /* fall_behind reads it */
	} else if (!ws->err[0]) {
		snprintf(ws->err, sizeof(ws->err), "commit %" PRId64 ": %s", m, rn_delta_errmsg(d));
	}
out:
	rn_buf_free(&file);
	return rc;
}

/* A writer process: opens (retrying: the table's creation is raced too), says it is ready,
 * waits for the start (the go pipe closed), commits M versions or for SECS seconds. */
/* Writer 0 with -b: after its first commit, waits until the other writers have committed
 * BEHIND versions (or have all ended), so its next commit starts that far behind. */
static void fall_behind(const struct wstat *all)
{
	/* a writer that died without saying so: give up waiting after two minutes */
	for (int64_t give_up = rn_mono_us() + 120 * 1000000LL; rn_mono_us() < give_up;) {
		int64_t n = 0;
		int running = 0;
		for (int j = 1; j < K; j++) {
			n += __atomic_load_n(&all[j].done, __ATOMIC_RELAXED);
			running += !__atomic_load_n(&all[j].ended, __ATOMIC_RELAXED);
		}
		if (n >= BEHIND || !running)
			return;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL); /* polling the others' progress: the state waited for */
	}
}

static int writer(int k, struct wstat *all, int ready_fd, int go_fd)
{
	struct wstat *ws = &all[k];
	struct rn_delta *d = NULL;
	char engine[64], c;
	int rc;

	snprintf(engine, sizeof(engine), "delta_race/writer-%d", k);
	for (int attempt = 0;; attempt++) {
		rc = open_table(&d, SCHEMA, engine, ws->err, sizeof(ws->err));
		if (!rc || attempt == 50 || rc == RN_EINVAL || rc == RN_ECONFIG)
			break;
		ws->open_tries++;
		backoff(attempt + 1);
	}
	ws->ready = !rc;
	if (write(ready_fd, rc ? "f" : "r", 1) != 1)
		rc = rc ? rc : RN_EIO;
	close(ready_fd);
	if (rc)
		goto out;
	ws->err[0] = 0;
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		; /* EOF: every writer is ready */
	int64_t end = rn_mono_us() + (int64_t)SECS * 1000000;
	for (int64_t m = 1; SECS ? rn_mono_us() < end && m < ID_WRITER / ID_COMMIT : m <= M; m++) {
		if ((rc = commit_one(d, k, m, ws)))
			break;
		if (k == 0 && m == 1 && BEHIND)
			fall_behind(all);
	}
out:
	ws->rc = rc;
	__atomic_store_n(&ws->ended, 1, __ATOMIC_RELAXED);
	close(go_fd);
	rn_delta_close(d);
	rn_zstd_release();
	rn_fs_thread_release();
	return rc ? 1 : 0;
}

/* ---- the verdict ---- */

struct seen {
	int64_t *n;    /* n[k * (max + 1) + m]: commits holding txn (writer-k, m) */
	char **path;   /* the data file of that commit */
	int64_t *rows; /* rows of (k, m) found in the table */
	int64_t max;   /* the highest m a writer committed */
	char **paths;  /* every add's path, for duplicates */
	size_t npaths, capp;
	int *vk; /* vk[v], vm[v]: the writer and commit version v holds (-1: none) */
	int64_t *vm;
};

static int64_t slot(const struct seen *s, int k, int64_t m)
{
	return (int64_t)k * (s->max + 1) + m;
}

struct line {
	int add, txn, other;
	struct rn_buf path, app;
	int64_t txn_version;
};

static int txn_member(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct line *l = ctx;
	if (rn_json_span_eq(key, "appId"))
		return rn_json_string(val, &l->app);
	if (rn_json_span_eq(key, "version"))
		return rn_json_int64(val, &l->txn_version);
	return 0;
}

static int add_member(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct line *l = ctx;
	return rn_json_span_eq(key, "path") ? rn_json_string(val, &l->path) : 0;
}

static int action(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct line *l = ctx;
	if (rn_json_span_eq(key, "add")) {
		l->add++;
		return rn_json_object_walk(val, add_member, l);
	}
	if (rn_json_span_eq(key, "txn")) {
		l->txn++;
		return rn_json_object_walk(val, txn_member, l);
	}
	if (!rn_json_span_eq(key, "commitInfo"))
		l->other++; /* protocol, metaData, remove... */
	return 0;
}

/* Checks commit v's text: version 0 creates the table; every other holds one add and one
 * txn of a writer, never seen before. */
static void check_commit(struct seen *s, int64_t v, const struct rn_buf *text)
{
	struct line all = {0};
	const char *p = (const char *)text->data, *end = p + text->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct line l = {0};
		if (len) {
			int rc = rn_json_object_walk((struct rn_json_span){p, len}, action, &l);
			CHECK(rc == 0, "version %" PRId64 ": a line that does not parse (%s)", v,
			      rn_strerror(rc));
		}
		all.add += l.add, all.txn += l.txn, all.other += l.other;
		if (l.add && l.path.data && !all.path.data) {
			all.path = l.path;
			l.path = (struct rn_buf){0};
		}
		if (l.txn && l.app.data && !all.app.data) {
			all.app = l.app;
			l.app = (struct rn_buf){0};
			all.txn_version = l.txn_version;
		}
		rn_buf_free(&l.path);
		rn_buf_free(&l.app);
		p += len + 1;
	}
	if (v == 0) {
		CHECK(all.add == 0 && all.txn == 0 && all.other == 2,
		      "version 0: %d adds, %d txns, %d other actions", all.add, all.txn, all.other);
		goto out;
	}
	CHECK(all.add == 1 && all.txn == 1 && all.other == 0 && all.path.data && all.app.data,
	      "version %" PRId64 ": %d adds, %d txns, %d other actions", v, all.add, all.txn,
	      all.other);
	if (!all.path.data || !all.app.data)
		goto out;
	int k = -1;
	if (sscanf((const char *)all.app.data, "writer-%d", &k) != 1 || k < 0 || k >= K ||
	    all.txn_version < 1 || all.txn_version > s->max) {
		CHECK(0, "version %" PRId64 ": txn %s %" PRId64 " of no writer's commit", v,
		      (const char *)all.app.data, all.txn_version);
		goto out;
	}
	s->vk[v] = k;
	s->vm[v] = all.txn_version;
	int64_t i = slot(s, k, all.txn_version);
	CHECK(++s->n[i] == 1, "version %" PRId64 ": txn %s %" PRId64 " committed again", v,
	      (const char *)all.app.data, all.txn_version);
	if (!s->path[i])
		s->path[i] = strdup((const char *)all.path.data);
	if (s->npaths == s->capp) {
		size_t cap = s->capp ? 2 * s->capp : 256;
		char **np = realloc(s->paths, cap * sizeof(*np));
		if (!np) {
			CHECK(0, "%s", "out of memory");
			goto out;
		}
		s->paths = np, s->capp = cap;
	}
	s->paths[s->npaths++] = strdup((const char *)all.path.data);
out:
	rn_buf_free(&all.path);
	rn_buf_free(&all.app);
}

struct logdir {
	int64_t next;
	int ok;
	char bad[256];
};

/* _delta_log holds 00..0.json to N.json, in order, and nothing else. */
static int log_entry(void *ctx, const struct rn_tstore_entry *e)
{
	struct logdir *l = ctx;
	char want[64];
	snprintf(want, sizeof(want), "_delta_log/%020" PRId64 ".json", l->next);
	if (l->ok && strcmp(e->key, want) != 0) {
		l->ok = 0;
		snprintf(l->bad, sizeof(l->bad), "%s where %s was due", e->key, want);
	}
	l->next++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct rowctx {
	struct seen *s;
	const char *path;
	int64_t rows, bad;
	int64_t first_bad;
};

static int row_value(void *ctx, const struct rn_pqr_node *n, const struct rn_pqr_value *v)
{
	struct rowctx *r = ctx;
	int64_t id = v->i, k = id / ID_WRITER, m = (id % ID_WRITER) / ID_COMMIT, i = id % ID_COMMIT;
	(void)n;
	r->rows++;
	if (id < 0 || k >= K || m < 1 || m > r->s->max || i >= ROWS) {
		if (!r->bad++)
			r->first_bad = id;
		return 0;
	}
	int64_t at = slot(r->s, (int)k, m);
	/* a row belongs to the file its commit's txn added */
	if (!r->s->path[at] || strcmp(r->s->path[at], r->path) != 0) {
		if (!r->bad++)
			r->first_bad = id;
		return 0;
	}
	r->s->rows[at]++;
	return 0;
}

struct orphans {
	struct seen *s;
	int64_t n;
};

static int orphan_entry(void *ctx, const struct rn_tstore_entry *e)
{
	struct orphans *o = ctx;
	const char *key = e->key;
	if (strncmp(key, "_delta_log/", 11) == 0)
		return 0;
	if (!bsearch(&key, o->s->paths, o->s->npaths, sizeof(char *), cmp_str))
		o->n++;
	return 0;
}

/* The table read back on a fresh handle and through its log. *orphans: data files no commit
 * names (a write retried after an unknown outcome leaves one; not an error). */
static void verdict(const struct wstat *ws, int64_t *versions, int64_t *orphans)
{
	struct rn_delta *d = NULL;
	struct seen s = {0};
	struct logdir ld = {.ok = 1};
	int64_t total = 0;
	char err[512];
	int rc;

	*versions = -1;
	*orphans = 0;
	for (int k = 0; k < K; k++) {
		total += ws[k].done;
		if (ws[k].done > s.max)
			s.max = ws[k].done;
	}
	rc = open_table(&d, NULL, "delta_race/reader", err, sizeof(err));
	CHECK(rc == 0, "a fresh handle: %s", err);
	if (rc)
		return;
	struct rn_tstore *st = rn_delta_store(d);
	*versions = rn_delta_version(d);
	/* versions 0 .. sum of commits, one per commit: none lost, none doubled */
	CHECK(*versions == total, "latest version %" PRId64 ", %" PRId64 " commits", *versions,
	      total);
	for (int k = 0; k < K; k++) {
		char app[32];
		snprintf(app, sizeof(app), "writer-%d", k);
		int64_t t = rn_delta_txn(d, app);
		CHECK(t == (ws[k].done ? ws[k].done : -1),
		      "%s: txn watermark %" PRId64 ", its last commit %" PRId64, app, t,
		      ws[k].done);
	}
	rc = rn_tstore_list(st, "_delta_log", 0, log_entry, &ld);
	CHECK(rc == 0, "listing _delta_log: %s", rn_tstore_errmsg(st));
	CHECK(ld.ok, "_delta_log: %s", ld.bad);
	CHECK(ld.next == *versions + 1,
	      "_delta_log: %" PRId64 " commit files, latest version %" PRId64, ld.next, *versions);

	size_t slots = (size_t)K * (size_t)(s.max + 1);
	s.n = calloc(slots, sizeof(*s.n));
	s.rows = calloc(slots, sizeof(*s.rows));
	s.path = calloc(slots, sizeof(*s.path));
	s.vk = calloc((size_t)*versions + 1, sizeof(*s.vk));
	s.vm = calloc((size_t)*versions + 1, sizeof(*s.vm));
	if (!s.n || !s.rows || !s.path || !s.vk || !s.vm) {
		CHECK(0, "%s", "out of memory");
		goto out;
	}
	for (int64_t v = 0; v <= *versions; v++)
		s.vk[v] = -1;
	for (int64_t v = 0; v <= *versions; v++) {
		char key[64];
		struct rn_buf text = {0};
		snprintf(key, sizeof(key), "_delta_log/%020" PRId64 ".json", v);
		rc = rn_tstore_get(st, key, 0, -1, &text);
		CHECK(rc == 0, "reading version %" PRId64 ": %s", v, rn_tstore_errmsg(st));
		if (!rc)
			check_commit(&s, v, &text);
		rn_buf_free(&text);
	}
	for (int k = 0; k < K; k++)
		for (int64_t m = 1; m <= ws[k].done; m++) {
			int64_t wv = m < LAT_CAP ? ws[k].ver[m] : -2;
			int fr = m < LAT_CAP ? ws[k].first_rc[m] : 0;
			CHECK(s.n[slot(&s, k, m)] == 1,
			      "writer-%d's commit %" PRId64 " is in the log %" PRId64
			      " times (the writer's call: version %" PRId64 ", first failure %s; "
			      "that version holds writer-%d's commit %" PRId64 ")",
			      k, m, s.n[slot(&s, k, m)], wv, fr ? rn_strerror(fr) : "none",
			      wv >= 0 && wv <= *versions ? s.vk[wv] : -1,
			      wv >= 0 && wv <= *versions ? s.vm[wv] : (int64_t)-1);
		}
	/* no data file added twice */
	qsort(s.paths, s.npaths, sizeof(char *), cmp_str);
	for (size_t i = 1; i < s.npaths; i++)
		CHECK(strcmp(s.paths[i - 1], s.paths[i]) != 0, "%s is added twice", s.paths[i]);

	/* every row of every live file, once, in the file of its commit */
	size_t nf, live = 0;
	const struct rn_ckpt_file *const *files = rn_delta_files(d, &nf);
	for (size_t i = 0; i < nf; i++) {
		struct rn_buf b = {0};
		struct rn_pqr *r = NULL;
		struct rowctx rc2 = {.s = &s, .path = files[i]->path};
		static const struct rn_pqr_sink sink = {.value = row_value};
		if (files[i]->is_remove)
			continue;
		live++;
		rc = rn_tstore_get(st, files[i]->path, 0, -1, &b);
		CHECK(rc == 0, "reading %s: %s", files[i]->path, rn_tstore_errmsg(st));
		if (!rc) {
			rc = rn_pqr_open(&r, b.data, b.len, 0);
			rc = rc ? rc : rn_pqr_read(r, &sink, &rc2);
			CHECK(rc == 0, "%s: %s", files[i]->path, r ? rn_pqr_errmsg(r) : "");
			CHECK(rc2.rows == ROWS && rc2.bad == 0,
			      "%s: %" PRId64 " rows, %" PRId64 " not of its commit (id %" PRId64
			      ")",
			      files[i]->path, rc2.rows, rc2.bad, rc2.first_bad);
		}
		rn_pqr_close(r);
		rn_buf_free(&b);
	}
	CHECK((int64_t)live == total, "%zu live files, %" PRId64 " commits", live, total);
	for (int k = 0; k < K; k++)
		for (int64_t m = 1; m <= ws[k].done; m++)
			CHECK(s.rows[slot(&s, k, m)] == ROWS,
			      "writer-%d's commit %" PRId64 ": %" PRId64 " of its %d rows", k, m,
			      s.rows[slot(&s, k, m)], ROWS);
	{
		struct orphans o = {.s = &s};
		rc = rn_tstore_list(st, NULL, 1, orphan_entry, &o);
		CHECK(rc == 0, "listing the table: %s", rn_tstore_errmsg(st));
		*orphans = o.n;
	}
out:
	for (size_t i = 0; s.path && i < slots; i++)
		free(s.path[i]);
	for (size_t i = 0; i < s.npaths; i++)
		free(s.paths[i]);
	free(s.paths);
	free(s.path);
	free(s.vk);
	free(s.vm);
	free(s.n);
	free(s.rows);
	rn_delta_close(d);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: delta_race [-V] [-k K] [-m M | -t SECS] [-b N] [-r ROWS] [-e ENDPOINT] "
		"[-v ENDPOINT] [-a ATTEMPTS] [-T TIMEOUT_MS] ROOT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct wstat *ws;
	int ready[2], go[2], opt, nready = 0;
	pid_t pids[MAX_WRITERS];
	int64_t tstart = rn_mono_us(), t0, t1, t2, versions = -1, orphans = 0;

	cfg.s3.endpoint = getenv("AWS_ENDPOINT_URL");
	cfg.s3.region = getenv("AWS_REGION");
	cfg.s3.backoff_ms = 50;
	while ((opt = getopt(argc, argv, "k:m:t:r:e:v:a:T:Vb:")) != -1) {
		switch (opt) {
		case 'b': BEHIND = atoi(optarg); break;
		case 'V': VERIFY_ONLY = 1; break;
		case 'k': K = atoi(optarg); break;
		case 'm': M = atoi(optarg); break;
		case 't': SECS = atoi(optarg); break;
		case 'r': ROWS = atoi(optarg); break;
		case 'e': cfg.s3.endpoint = optarg; break;
		case 'v': verify_endpoint = optarg; break;
		case 'a': cfg.s3.max_attempts = atoi(optarg); break;
		case 'T': cfg.s3.timeout_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || K < 1 || K > MAX_WRITERS || M < 1 || M >= LAT_CAP || SECS < 0 ||
	    ROWS < 1 || ROWS > ID_COMMIT)
		usage();
	root = argv[optind];

	ws = mmap(NULL, sizeof(*ws) * (size_t)K, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	if (ws == MAP_FAILED || pipe(ready) || pipe(go)) {
		perror("delta_race");
		return 1;
	}
	memset(ws, 0, sizeof(*ws) * (size_t)K);
	fflush(NULL);
	for (int k = 0; VERIFY_ONLY && k < K; k++)
		ws[k].ready = 1, ws[k].done = M;
	for (int k = 0; !VERIFY_ONLY && k < K; k++) {
		if ((pids[k] = fork()) < 0) {
			perror("delta_race: fork");
			return 1;
		}
		if (pids[k] == 0) {
			close(ready[0]);
			close(go[1]);
			exit(writer(k, ws, ready[1], go[0]));
		}
	}
	close(ready[1]);
	close(go[0]);
	/* every writer opened (or failed, or died: its end of the pipe closes), then go */
	for (char c; nready < K;) {
		ssize_t n = read(ready[0], &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		nready++;
	}
	close(ready[0]);
	t0 = rn_mono_us();
	close(go[1]);
	for (int k = 0; !VERIFY_ONLY && k < K; k++) {
		int status;
		while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || (WEXITSTATUS(status) && !ws[k].rc))
			snprintf(ws[k].err, sizeof(ws[k].err), "writer-%d ended with status %d", k,
				 status);
	}
	t1 = rn_mono_us();

	for (int k = 0; k < K; k++)
		CHECK(ws[k].ready && ws[k].rc == 0 && !ws[k].err[0], "writer-%d: %s", k,
		      ws[k].err[0] ? ws[k].err : rn_strerror(ws[k].rc));
	if (!SECS)
		for (int k = 0; k < K; k++)
			CHECK(ws[k].done == M, "writer-%d committed %" PRId64 " of %d", k,
			      ws[k].done, M);
	if (verify_endpoint) /* the writers are gone: their settings are no one's now */
		cfg.s3.endpoint = verify_endpoint;
	verdict(ws, &versions, &orphans);
	t2 = rn_mono_us();
	t2 = rn_mono_us();

	/* the figures */
	int64_t commits = 0, races = 0, unknown = 0, ftries = 0, nlat = 0;
	for (int k = 0; k < K; k++) {
		commits += ws[k].done, races += ws[k].races, unknown += ws[k].unknown;
		ftries += ws[k].failed_tries + ws[k].file_tries;
		nlat += ws[k].nlat;
	}
	uint32_t *lat = malloc(sizeof(*lat) * (size_t)(nlat ? nlat : 1));
	for (int k = 0, at = 0; lat && k < K; k++) {
		memcpy(lat + at, ws[k].lat_us, sizeof(*lat) * (size_t)ws[k].nlat);
		at += (int)ws[k].nlat;
	}
	if (lat)
		qsort(lat, (size_t)nlat, sizeof(*lat), cmp_u32);
#define PCT(p) (lat && nlat ? lat[(nlat - 1) * (p) / 100] / 1000.0 : 0.0)
	double secs = (double)(t1 - t0) / 1e6;
	printf("{\"ok\":%s,\"checks\":%d,\"failed\":", nfails ? "false" : "true", checks);
	probe_json_str(failed);
	printf(",\"root\":");
	probe_json_str(root);
	printf(",\"writers\":%d,\"per_writer\":[", K);
	for (int k = 0; k < K; k++)
		printf("%s%" PRId64, k ? "," : "", ws[k].done);
	printf("],\"commits\":%" PRId64 ",\"versions\":%" PRId64 ",\"races\":%" PRId64
	       ",\"retries_per_commit\":%.3f,\"unknown\":%" PRId64 ",\"failed_tries\":%" PRId64
	       ",\"secs\":%.3f,\"commits_per_s\":%.1f,\"lat_ms\":{\"p50\":%.1f,\"p99\":%.1f,"
	       "\"max\":%.1f},\"orphans\":%" PRId64 ",\"open_s\":%.3f,\"verify_s\":%.3f}\n",
	       commits, versions, races, commits ? (double)races / (double)commits : 0.0, unknown,
	       ftries, secs, secs > 0 && !VERIFY_ONLY ? (double)commits / secs : 0.0, PCT(50),
	       PCT(99), PCT(100), orphans, (double)(t0 - tstart) / 1e6, (double)(t2 - t1) / 1e6);
	free(lat);
	munmap(ws, sizeof(*ws) * (size_t)K);
	return 0;
}
