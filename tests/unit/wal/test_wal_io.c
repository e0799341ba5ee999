/*
 * Failure sweeps of the WAL (server/wal/wal.c). The I/O sweep runs one workload — recover a
 * WAL whose last segment has a torn tail, append and sync batches (a client resending each
 * one until its sync succeeds), rotate and delete older segments as a flush does, close —
 * once per injected failure: every open, write, fsync, rename, link, unlink and truncate it
 * makes through the rn_fs seam fails in turn (N = 1, 2, ... until a run reaches none), with
 * EIO and then ENOSPC. After each run: no crash or leak, rn_wal_bytes matches the files,
 * and a replay without faults gives every batch since the last deletion exactly once and
 * in order, with each failed sync's batch only from its resend. The allocation sweep does
 * the same with rn_mem_fail_after over replay, append and sync. A dedicated test checks
 * that a failed fdatasync is never followed by the WAL claiming those bytes durable.
 * A disk whose fsync stays broken after its first error is swept too. The group commit's
 * two halves are checked with the write + fdatasync on another thread while the next group
 * is appended: the groups land in order, and a failed group drops the one behind it.
 * Odd offsets are packed entries (a zstd frame as a client sent it, unpacked by replay and
 * the scans), so every sweep covers both entry formats and the unpacking's allocations.
 * RN_SWEEP_LONG=1
 * (tests/README.md) runs a longer workload.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "rn_zstd.h"
#include "wal.h"
#include "testutil.h"

#define MAXB 256

static char dir[256];
static int long_mode;

static char payload[MAXB][32];
/* odd offsets: the request message holding "batch-N" and its zstd frame, made once before
 * any failure is armed */
static struct rn_buf zframe[MAXB];
static size_t plain_len[MAXB];

static int setup(void **state)
{
	(void)state;
	for (int i = 1; i < MAXB; i += 2) {
		struct rn_buf m = {0};
		snprintf(payload[i], sizeof(payload[i]), "batch-%d", i);
		assert_int_equal(rn_buf_append(&m, "\x0a", 1), 0);
		assert_int_equal(rn_buf_append(&m, payload[i], strlen(payload[i])), 0);
		assert_int_equal(rn_buf_append(&m, "\x10\x01", 2), 0);
		assert_int_equal(rn_zstd_compress(&zframe[i], m.data, m.len, 3), 0);
		plain_len[i] = m.len;
		rn_buf_free(&m);
	}
	assert_int_equal(rn_test_tmpdir(dir, sizeof(dir), "walio"), 0);
	long_mode = getenv("RN_SWEEP_LONG") && *getenv("RN_SWEEP_LONG") == '1';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rn_fs_fail_after(0, 0, 0);
	rn_mem_fail_after(0);
	for (int i = 0; i < MAXB; i++)
		rn_buf_free(&zframe[i]);
	return rn_test_rmtree(dir);
}

static void wipe(void)
{
	assert_int_equal(rn_test_rmtree(dir), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
}

/* Bytes of all segment files in the directory. */
static uint64_t disk_bytes(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;
	assert_non_null(d);
	while ((de = readdir(d))) {
		char p[600];
		struct stat st;
		if (strncmp(de->d_name, "wal-", 4))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (!stat(p, &st))
			n += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

static struct rn_wal_entry entry(int64_t off)
{
	snprintf(payload[off], sizeof(payload[off]), "batch-%lld", (long long)off);
	struct rn_wal_entry e = {.stream_id = "stream-1",
				 .stream_id_len = 8,
				 .table = "main.t",
				 .table_len = 6,
				 .offset = off,
				 .record_type = 1,
				 .batch = (const uint8_t *)payload[off],
				 .batch_len = strlen(payload[off])};
	if (off % 2) {
		e.packed = zframe[off].data;
		e.packed_len = zframe[off].len;
		e.plain_len = plain_len[off];
		e.batch_off = 1;
	}
	return e;
}

struct seen {
	int64_t off[4 * MAXB];
	int n;
};

static int collect(void *ctx, const struct rn_wal_entry *e)
{
	struct seen *s = ctx;
	char want[32];
	snprintf(want, sizeof(want), "batch-%lld", (long long)e->offset);
	assert_int_equal(e->batch_len, strlen(want));
	assert_memory_equal(e->batch, want, e->batch_len);
	assert_true(s->n < 4 * MAXB);
	s->off[s->n++] = e->offset;
	return 0;
}

static int ignore(void *ctx, const struct rn_wal_entry *e)
{
	(void)ctx;
	(void)e;
	return 0;
}

/* A last segment whose tail is torn (a kill mid-write): recovery truncates it. */
static void torn_segment(void)
{
	char p[600];
	static const char torn[] = "RNW1\x40\x00\x00\x00partial";
	snprintf(p, sizeof(p), "%s/wal-%016d.log", dir, 1);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(torn, 1, sizeof(torn) - 1, f), sizeof(torn) - 1);
	fclose(f);
}

static int io_error(int rc)
{
	return rc == RN_EIO || rc == RN_ENOSPC;
}

/*
 * The workload, under whatever failure is armed. Returns the first offset that must be in
 * the WAL afterwards (batches before it were in segments a successful rotation let go,
 * unless an unlink failed: *maybe_from tells from where older ones may still show).
 */
static int64_t workload(int nb, int64_t *maybe_from)
{
	struct rn_wal *w = NULL;
	int64_t keep_from = 0;
	uint64_t seg;
	int rc;

	*maybe_from = 0;
	for (int tries = 0;; tries++) {
		assert_true(tries < 4);
		assert_int_equal(rn_wal_open(&w, dir), 0);
		if (!(rc = rn_wal_replay(w, ignore, NULL)))
			break;
		assert_true(io_error(rc));
		rn_wal_close(w); /* a server that cannot recover exits; the next start retries */
	}
	for (int64_t i = 0; i < nb; i++) {
		for (int tries = 0;; tries++) {
			struct rn_wal_entry e = entry(i);
			assert_true(tries < 4);
			assert_int_equal(rn_wal_append(w, &e), 0);
			if (!(rc = rn_wal_sync(w)))
				break; /* acked */
			assert_true(io_error(rc));
			/* the failed batch is not kept for a later sync to claim */
			assert_false(rn_wal_dirty(w));
			assert_int_equal(rn_wal_sync(w), 0);
		}
		if (i % 3 == 2) { /* a flush committed everything so far */
			if ((rc = rn_wal_rotate(w, &seg))) {
				assert_true(io_error(rc));
			} else {
				assert_int_equal(rn_wal_drop_before(w, seg, NULL, NULL), 0);
				keep_from = i + 1;
			}
		}
	}
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	rn_wal_close(w);
	return keep_from;
}

/* After a run: replay without faults; every batch from keep_from on exactly once, in
 * order; older ones only if a deletion failed. */
static void check_wal(int nb, int64_t keep_from, int unlink_failed)
{
	struct rn_wal *w;
	struct seen s = {{0}, 0};
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	rn_wal_close(w);
	for (int i = 1; i < s.n; i++)
		assert_true(s.off[i] > s.off[i - 1]); /* in order, no duplicates */
	int k = 0;
	while (k < s.n && s.off[k] < keep_from)
		k++;
	if (!unlink_failed)
		assert_int_equal(k, 0);
	assert_int_equal(s.n - k, nb - keep_from);
	for (int64_t i = keep_from; i < nb; i++)
		assert_int_equal(s.off[k + (i - keep_from)], i);
}

static void test_io_sweep(void **state)
{
	static const unsigned kinds[] = {RN_FS_OPEN, RN_FS_WRITE,  RN_FS_FSYNC,   RN_FS_RENAME,
					 RN_FS_LINK, RN_FS_UNLINK, RN_FS_TRUNCATE};
	static const char *const names[] = {"open", "write",  "fsync",   "rename",
					    "link", "unlink", "truncate"};
	static const int errs[] = {EIO, ENOSPC};
	int nb = long_mode ? 40 : 8;
	long runs = 0, ops;
	(void)state;

	wipe();
	torn_segment();
	long c0 = rn_fs_calls();
	int64_t maybe;
	workload(nb, &maybe);
	ops = rn_fs_calls() - c0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (size_t e = 0; e < 2; e++) {
			for (long n = 1;; n++) {
				long live = rn_mem_live(), inj = rn_fs_injected();
				wipe();
				torn_segment();
				rn_fs_fail_after(n, errs[e], kinds[k]);
				int64_t keep = workload(nb, &maybe);
				rn_fs_fail_after(0, 0, 0);
				runs++;
				int fired = rn_fs_injected() > inj;
				check_wal(nb, keep, fired && kinds[k] == RN_FS_UNLINK);
				assert_int_equal(rn_mem_live(), live);
				if (!fired)
					break;
				if (n > 1000)
					fail_msg("%s: no end", names[k]);
			}
		}
	}
	printf("wal I/O sweep: %ld seam calls per run x %zu kinds x 2 errnos = %ld runs\n", ops,
	       sizeof(kinds) / sizeof(kinds[0]), runs);
}

/* A disk whose fsync stays broken after its Nth call (and whose truncation fails with it):
 * every later sync fails and nothing after the last good sync is ever claimed durable. */
static void test_io_sweep_persistent(void **state)
{
	(void)state;
	/* a broken fsync that stays broken: every later sync fails; nothing is claimed */
	for (long n = 1; n < 8; n++) {
		struct rn_wal *w;
		int acked = -1, rc;
		wipe();
		assert_int_equal(rn_wal_open(&w, dir), 0);
		assert_int_equal(rn_wal_replay(w, ignore, NULL), 0);
		rn_fs_fail_after(n, EIO, RN_FS_FSYNC | RN_FS_TRUNCATE | RN_FS_PERSIST);
		for (int64_t i = 0; i < 8; i++) {
			struct rn_wal_entry e = entry(i);
			assert_int_equal(rn_wal_append(w, &e), 0);
			if ((rc = rn_wal_sync(w)))
				break;
			acked = (int)i;
		}
		rn_fs_fail_after(0, 0, 0);
		rn_wal_close(w);
		/* what was acked is there; later batches were never claimed (they may be in
		 * the file: the truncation failed too) */
		struct seen s = {{0}, 0};
		assert_int_equal(rn_wal_open(&w, dir), 0);
		assert_int_equal(rn_wal_replay(w, collect, &s), 0);
		rn_wal_close(w);
		assert_true(s.n >= acked + 1);
		for (int i = 0; i <= acked; i++)
			assert_int_equal(s.off[i], i);
	}
	printf("wal persistent fsync failure: 7 runs\n");
}

/* A failed fdatasync: the sync fails, the batch is not claimed by a later sync, and the
 * segment is never written again (later batches go to a new one). */
static void test_fsync_failure_abandons_segment(void **state)
{
	struct rn_wal *w;
	struct rn_wal_entry e0 = entry(0), e1 = entry(1), e2 = entry(2);
	char p1[600], p2[600];
	struct stat st;
	(void)state;
	wipe();
	snprintf(p1, sizeof(p1), "%s/wal-%016d.log", dir, 1);
	snprintf(p2, sizeof(p2), "%s/wal-%016d.log", dir, 2);
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, ignore, NULL), 0);
	assert_int_equal(rn_wal_append(w, &e0), 0);
	assert_int_equal(rn_wal_sync(w), 0);
	assert_int_equal(stat(p1, &st), 0);
	off_t good = st.st_size;

	/* fsync fails, and so does the truncation after it: the bytes stay in segment 1 */
	rn_fs_fail_after(1, EIO, RN_FS_FSYNC | RN_FS_TRUNCATE | RN_FS_PERSIST);
	assert_int_equal(rn_wal_append(w, &e1), 0);
	assert_int_equal(rn_wal_sync(w), RN_EIO);
	rn_fs_fail_after(0, 0, 0);
	assert_false(rn_wal_dirty(w));
	assert_int_equal(rn_wal_sync(w), 0); /* nothing queued: claims nothing */
	assert_int_equal(stat(p1, &st), 0);
	off_t after_fail = st.st_size;
	assert_true(after_fail > good);

	/* the resend and the next batch go to segment 2; segment 1 is not touched again */
	assert_int_equal(rn_wal_append(w, &e1), 0);
	assert_int_equal(rn_wal_append(w, &e2), 0);
	assert_int_equal(rn_wal_sync(w), 0);
	assert_int_equal(stat(p1, &st), 0);
	assert_int_equal(st.st_size, after_fail);
	assert_int_equal(access(p2, F_OK), 0);
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	rn_wal_close(w);

	/* fsync fails, the truncation works: the failed batch is gone from segment 2 */
	assert_int_equal(rn_wal_open(&w, dir), 0);
	struct seen s = {{0}, 0};
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	/* 0, the never-acked 1 left by the failed truncation, then 1 and 2 */
	assert_int_equal(s.n, 4);
	assert_int_equal(s.off[0], 0);
	assert_int_equal(s.off[1], 1);
	assert_int_equal(s.off[2], 1);
	assert_int_equal(s.off[3], 2);
	struct rn_wal_entry e3 = entry(3);
	rn_fs_fail_after(1, ENOSPC, RN_FS_FSYNC);
	assert_int_equal(rn_wal_append(w, &e3), 0);
	assert_int_equal(rn_wal_sync(w), RN_ENOSPC);
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	rn_wal_close(w);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	rn_wal_close(w);
	assert_int_equal(s.n, 4); /* 3 was never durable, never acked */
}

static void *sync_io_thread(void *arg)
{
	rn_wal_sync_io(arg);
	return NULL;
}

/* rn_wal_sync_io on a thread of its own, joined (as the server's sync thread, whose pool
 * hands the group back under a lock). */
static void sync_io_on_thread(struct rn_wal *w)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, sync_io_thread, w), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* Group N syncs on another thread while group N+1 is appended; the WAL refuses what needs
 * it quiet meanwhile; both groups become durable in order. */
static void test_pipelined_groups(void **state)
{
	struct rn_wal *w;
	struct rn_wal_entry e0 = entry(0), e1 = entry(1), e2 = entry(2);
	uint64_t seg;
	(void)state;
	wipe();
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, ignore, NULL), 0);
	assert_int_equal(rn_wal_sync_begin(w), 0); /* nothing queued */
	assert_false(rn_wal_syncing(w));
	assert_int_equal(rn_wal_append(w, &e0), 0);
	assert_int_equal(rn_wal_sync_begin(w), 1);
	assert_true(rn_wal_syncing(w));
	assert_false(rn_wal_dirty(w));
	assert_int_equal(rn_wal_append(w, &e1), 0); /* the next group, while N is in flight */
	assert_int_equal(rn_wal_append(w, &e2), 0);
	assert_true(rn_wal_dirty(w));
	assert_int_equal(rn_wal_sync_begin(w), RN_EAGAIN);
	assert_int_equal(rn_wal_sync(w), RN_EAGAIN);
	assert_int_equal(rn_wal_rotate(w, &seg), RN_EAGAIN);
	assert_int_equal(rn_wal_scan_all(w, ignore, NULL), RN_EINVAL);
	sync_io_on_thread(w);
	assert_int_equal(rn_wal_sync_end(w), 0);
	assert_false(rn_wal_syncing(w));
	struct seen s = {{0}, 0};
	assert_int_equal(rn_wal_scan_all(w, collect, &s), RN_EINVAL); /* 1, 2 queued */
	assert_int_equal(rn_wal_sync_begin(w), 1);
	sync_io_on_thread(w);
	assert_int_equal(rn_wal_sync_end(w), 0);
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	assert_int_equal(rn_wal_scan_all(w, collect, &s), 0);
	assert_int_equal(s.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(s.off[i], i);
	rn_wal_close(w);
}

/* A group's fdatasync fails on the sync thread while the next group is being appended:
 * neither is durable (the next one follows the failed one in its streams: it is dropped
 * too), the segment is abandoned, and the resends land in a new segment, once each. */
static void test_failed_group_drops_next(void **state)
{
	struct rn_wal *w;
	struct rn_wal_entry e0 = entry(0), e1 = entry(1), e2 = entry(2), e3 = entry(3);
	char p2[600];
	(void)state;
	wipe();
	snprintf(p2, sizeof(p2), "%s/wal-%016d.log", dir, 2);
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, ignore, NULL), 0);
	assert_int_equal(rn_wal_append(w, &e0), 0);
	assert_int_equal(rn_wal_sync(w), 0);
	assert_int_equal(rn_wal_append(w, &e1), 0);
	assert_int_equal(rn_wal_sync_begin(w), 1);
	assert_int_equal(rn_wal_append(w, &e2), 0); /* behind the group in flight */
	rn_fs_fail_after(1, EIO, RN_FS_FSYNC);
	sync_io_on_thread(w);
	rn_fs_fail_after(0, 0, 0);
	assert_int_equal(rn_wal_append(w, &e3), 0); /* after the failure, before end */
	assert_int_equal(rn_wal_sync_end(w), RN_EIO);
	assert_non_null(strstr(rn_wal_errmsg(w), "fdatasync"));
	assert_false(rn_wal_syncing(w));
	assert_false(rn_wal_dirty(w)); /* 2 and 3 dropped with 1 */
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	assert_int_equal(access(p2, F_OK), -1);
	/* the clients resend 1, 2, 3: a new segment */
	for (int64_t i = 1; i <= 3; i++) {
		struct rn_wal_entry e = entry(i);
		assert_int_equal(rn_wal_append(w, &e), 0);
	}
	assert_int_equal(rn_wal_sync_begin(w), 1);
	sync_io_on_thread(w);
	assert_int_equal(rn_wal_sync_end(w), 0);
	assert_int_equal(access(p2, F_OK), 0);
	assert_int_equal(rn_wal_bytes(w), disk_bytes());
	rn_wal_close(w);
	struct seen s = {{0}, 0};
	assert_int_equal(rn_wal_open(&w, dir), 0);
	assert_int_equal(rn_wal_replay(w, collect, &s), 0);
	rn_wal_close(w);
	assert_int_equal(s.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(s.off[i], i);
}

/* Allocation failures in replay, append and sync: each fails cleanly (RN_ENOMEM), leaks
 * nothing, and a retry without the failure leaves every batch exactly once. */
static void test_alloc_sweep(void **state)
{
	int nb = long_mode ? 21 : 7; /* odd: the batch appended under the failure is packed */
	long runs = 0;
	(void)state;
	for (long n = 1;; n++) {
		struct rn_wal *w;
		int rc, failed = 0;
		long live;
		wipe();
		/* a WAL holding batches 0..nb-1 in two segments */
		assert_int_equal(rn_wal_open(&w, dir), 0);
		assert_int_equal(rn_wal_replay(w, ignore, NULL), 0);
		for (int64_t i = 0; i < nb; i++) {
			struct rn_wal_entry e = entry(i);
			uint64_t seg;
			assert_int_equal(rn_wal_append(w, &e), 0);
			assert_int_equal(rn_wal_sync(w), 0);
			if (i == nb / 2)
				assert_int_equal(rn_wal_rotate(w, &seg), 0);
		}
		rn_wal_close(w);
		torn_segment(); /* segment 1 becomes a torn fragment: replay cuts it */

		live = rn_mem_live();
		rn_mem_fail_after(n);
		rc = rn_wal_open(&w, dir);
		if (!rc) {
			struct seen s = {{0}, 0};
			if ((rc = rn_wal_replay(w, collect, &s)) == 0) {
				struct rn_wal_entry e = entry(nb);
				if (!(rc = rn_wal_append(w, &e)))
					rc = rn_wal_sync(w);
			}
			if (rc) {
				assert_int_equal(rc, RN_ENOMEM);
				failed = 1;
			}
			rn_wal_close(w);
		} else {
			assert_int_equal(rc, RN_ENOMEM);
			failed = 1;
		}
		rn_mem_fail_after(0);
		assert_int_equal(rn_mem_live(), live);
		runs++;
		/* the retry: the lost append is resent */
		struct seen s = {{0}, 0};
		assert_int_equal(rn_wal_open(&w, dir), 0);
		assert_int_equal(rn_wal_replay(w, collect, &s), 0);
		if (failed) {
			struct rn_wal_entry e = entry(nb);
			int have = s.n && s.off[s.n - 1] == nb;
			if (!have) {
				assert_int_equal(rn_wal_append(w, &e), 0);
				assert_int_equal(rn_wal_sync(w), 0);
			}
		}
		rn_wal_close(w);
		memset(&s, 0, sizeof(s));
		assert_int_equal(rn_wal_open(&w, dir), 0);
		assert_int_equal(rn_wal_replay(w, collect, &s), 0);
		rn_wal_close(w);
		/* segment 1 was replaced by a torn fragment: 0..nb/2 are gone with it */
		int64_t from = nb / 2 + 1;
		assert_int_equal(s.n, nb + 1 - from);
		for (int i = 0; i < s.n; i++)
			assert_int_equal(s.off[i], from + i);
		if (!failed)
			break;
		if (n > 10000)
			fail_msg("no end");
	}
	printf("wal allocation sweep: open + replay + append + sync, N = 1..%ld\n", runs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fsync_failure_abandons_segment),
		cmocka_unit_test(test_pipelined_groups),
		cmocka_unit_test(test_failed_group_drops_next),
		cmocka_unit_test(test_io_sweep),
		cmocka_unit_test(test_io_sweep_persistent),
		cmocka_unit_test(test_alloc_sweep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
