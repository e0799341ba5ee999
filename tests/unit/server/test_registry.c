/*
 * Unit tests for the stream registry (server/core/registry.h) in a temp directory: entries
 * registered as a group commit, read back, touched, retired; temp files never read as
 * entries; per-stream files (descriptor, clock, owner) kept, read back, forgotten and swept;
 * failures of a file's fsync (only that entry refused), of the directory fsync (every entry
 * of the group refused, nothing left on disk) through rn_fs_fail_after, and the
 * RN_FAULT_REG_DIR hook of test builds (this test links rn_core_faults). The registry on
 * the table store (its objects' encoding, put/get/delete on the store's local backend with
 * its write failures, adopting a store entry into the directory, and a retire whose delete
 * on the store fails: the retired mark) too.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"
#include "rn_err.h"
#include "rn_buf.h"
#include "rn_fs.h"
#include "testutil.h"
#include "tstore.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(dir, sizeof(dir), "registry");
}

static int teardown(void **state)
{
	(void)state;
	rn_fs_fail_after(0, 0, 0);
	unsetenv("RN_FAULT_REG_DIR");
	return rn_test_rmtree(dir);
}

static int exists(const char *name)
{
	char path[512];
	struct stat sb;
	return stat(rn_test_path(path, sizeof(path), dir, name), &sb) == 0;
}

static long files(void)
{
	return rn_test_entries(dir);
}

/* Writes name in dir with the given text (an entry, or a temp file, made by hand). */
static void put_file(const char *name, const char *text)
{
	char path[512];
	FILE *f = fopen(rn_test_path(path, sizeof(path), dir, name), "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* What a commit reported, in order. */
struct report {
	const char *id[8];
	int err[8];
	size_t n;
};

static void done(void *ctx, struct rn_reg_pending *p, int err)
{
	struct report *r = ctx;
	assert_false(rn_registry_queued(p)); /* off the queue before it is reported */
	r->id[r->n] = p->id;
	r->err[r->n++] = err;
}

/* A registry on dir with a create of each of ids (main.s.t, owner alice) queued in p. */
static struct rn_registry *open_queued(struct rn_reg_pending *p, const char *const *ids, size_t n)
{
	struct rn_registry *r;
	assert_int_equal(rn_registry_create(&r, dir), 0);
	for (size_t i = 0; i < n; i++) {
		rn_registry_pending_init(&p[i], ids[i]);
		assert_int_equal(rn_registry_begin(r, &p[i], "main.s.t", 1, "alice"), 0);
	}
	return r;
}

/* Queues a create of id alone and commits it: what the commit reported for it. */
static int commit_one(struct rn_registry *r, struct rn_reg_pending *p, const char *id,
		      struct report *rep)
{
	rn_registry_pending_init(p, id);
	assert_int_equal(rn_registry_begin(r, p, "main.s.t", 1, "alice"), 0);
	assert_int_equal(rn_registry_commit(r, done, rep), 1);
	assert_string_equal(rep->id[rep->n - 1], id);
	return rep->err[rep->n - 1];
}

struct loaded {
	char id[8][40], table[8][64], owner[8][70];
	int rtype[8];
	int64_t used[8];
	size_t n;
	int refuse; /* entry() answers this for ids starting with 'x' */
};

static int entry(void *ctx, const struct rn_reg_record *rec)
{
	struct loaded *l = ctx;
	if (rec->id[0] == 'x')
		return l->refuse;
	snprintf(l->id[l->n], sizeof(l->id[0]), "%s", rec->id);
	snprintf(l->table[l->n], sizeof(l->table[0]), "%s", rec->table);
	snprintf(l->owner[l->n], sizeof(l->owner[0]), "%s", rec->owner);
	l->rtype[l->n] = rec->record_type;
	l->used[l->n++] = rec->used_s;
	return 0;
}

static const struct loaded *find(const struct loaded *l, const char *id, size_t *at)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->id[i], id)) {
			*at = i;
			return l;
		}
	return NULL;
}

static void test_group_commit_and_reload(void **state)
{
	struct rn_registry *r;
	struct rn_reg_pending a, b, c;
	struct report rep = {0};
	struct loaded l = {0};
	size_t at = 0;
	(void)state;

	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_string_equal(rn_registry_dir(r), dir);
	assert_int_equal(rn_registry_commit(r, done, &rep), 0); /* nothing queued: no commit */
	rn_registry_pending_init(&a, "aaa");
	rn_registry_pending_init(&b, "bbb");
	rn_registry_pending_init(&c, "ccc");
	assert_false(rn_registry_queued(&a));
	assert_int_equal(rn_registry_begin(r, &a, "main.s.t", 1, "alice"), 0);
	assert_int_equal(rn_registry_begin(r, &b, "main.s.u", 2, "bob"), 0);
	assert_int_equal(rn_registry_begin(r, &c, "main.s.t", 1, ""), 0);
	assert_int_equal(rn_registry_waiting(r), 3);
	assert_true(rn_registry_queued(&a));
	/* written as temp files, not yet entries */
	assert_true(exists(".aaa.tmp"));
	assert_false(exists("aaa"));
	/* a queued create dropped (its client went away before the commit): temp file gone */
	rn_registry_drop(r, &c);
	rn_registry_drop(r, &c); /* twice: a no-op */
	assert_false(exists(".ccc.tmp"));
	assert_int_equal(rn_registry_waiting(r), 2);

	assert_int_equal(rn_registry_commit(r, done, &rep), 2);
	assert_int_equal(rep.n, 2);
	assert_int_equal(rep.err[0] | rep.err[1], 0);
	assert_int_equal(rn_registry_waiting(r), 0);
	assert_true(exists("aaa"));
	assert_true(exists("bbb"));
	assert_false(exists(".aaa.tmp"));
	assert_false(exists("ccc"));
	rn_registry_destroy(r);

	/* a restart reads them back; temp files and per-stream files are not entries */
	put_file(".ddd.tmp", "main.s.t\n1\ncarol\n");
	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_int_equal(rn_registry_save_owner(r, "eee", "dave"), 0);
	assert_int_equal(rn_registry_load(r, entry, &l), 0);
	assert_int_equal(l.n, 2);
	assert_non_null(find(&l, "aaa", &at));
	assert_string_equal(l.table[at], "main.s.t");
	assert_string_equal(l.owner[at], "alice");
	assert_int_equal(l.rtype[at], 1);
	assert_true(l.used[at] > 1600000000);
	assert_non_null(find(&l, "bbb", &at));
	assert_string_equal(l.table[at], "main.s.u");
	assert_int_equal(l.rtype[at], 2);
	assert_string_equal(l.owner[at], "bob");

	/* retire: the entry goes durably; a second retire of a gone entry is fine */
	assert_int_equal(rn_registry_retire(r, "aaa"), 0);
	assert_false(exists("aaa"));
	assert_int_equal(rn_registry_retire(r, "aaa"), 0);
	rn_registry_touch(r, "bbb");
	rn_registry_touch(r, "gone"); /* a missing entry: nothing to do */
	rn_registry_destroy(r);
	rn_registry_destroy(NULL);
}

static void test_unreadable_and_refused_entries(void **state)
{
	struct rn_registry *r;
	struct loaded l = {0};
	(void)state;

	/* no owner line (made before owners were kept), a bad table name, no record type */
	put_file("old", "main.s.t\n1\n");
	put_file("badname", "../etc\n1\n");
	put_file("notype", "main.s.t\n");
	put_file("xrefused", "main.s.t\n1\nz\n");
	assert_int_equal(rn_registry_create(&r, dir), 0);
	l.refuse = 1; /* not taken: skipped (logged) */
	assert_int_equal(rn_registry_load(r, entry, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.id[0], "old");
	assert_string_equal(l.owner[0], "");
	/* an error from the callback stops the load and is returned */
	memset(&l, 0, sizeof(l));
	l.refuse = RN_ENOMEM;
	assert_int_equal(rn_registry_load(r, entry, &l), RN_ENOMEM);
	rn_registry_destroy(r);
	/* a registry on a directory that is not there cannot load */
	assert_int_equal(rn_registry_create(&r, "/nonexistent/_streams"), 0);
	assert_int_equal(rn_registry_load(r, entry, &l), RN_EIO);
	rn_registry_destroy(r);
}

static void test_file_fsync_fails_alone(void **state)
{
	static const char *const ids[] = {"aaa", "bbb"};
	struct rn_reg_pending p[2];
	struct report rep = {0};
	(void)state;

	struct rn_registry *r = open_queued(p, ids, 2);
	rn_fs_fail_after(1, EIO, RN_FS_FSYNC); /* the first entry's fsync */
	assert_int_equal(rn_registry_commit(r, done, &rep), 2);
	assert_int_equal(rep.n, 2);
	assert_string_equal(rep.id[0], "aaa");
	assert_int_equal(rep.err[0], EIO);
	assert_string_equal(rep.id[1], "bbb");
	assert_int_equal(rep.err[1], 0);
	assert_false(exists("aaa"));
	assert_false(exists(".aaa.tmp"));
	assert_true(exists("bbb"));
	rn_registry_destroy(r);
}

static void test_directory_fsync_fails_the_group(void **state)
{
	static const char *const ids[] = {"aaa", "bbb"};
	struct rn_reg_pending p[2];
	struct report rep = {0};
	(void)state;

	struct rn_registry *r = open_queued(p, ids, 2);
	rn_fs_fail_after(3, EIO, RN_FS_FSYNC); /* two file fsyncs, then the directory's */
	assert_int_equal(rn_registry_commit(r, done, &rep), 2);
	assert_int_equal(rep.n, 2);
	assert_int_equal(rep.err[0], EIO);
	assert_int_equal(rep.err[1], EIO);
	assert_int_equal(files(), 0); /* neither entry nor temp file left */
	assert_int_equal(rn_registry_waiting(r), 0);
	rn_registry_destroy(r);
}

static void test_fault_hook_fails_the_nth_commit(void **state)
{
	struct rn_registry *r;
	struct rn_reg_pending a, b, c;
	struct report rep = {0};
	(void)state;

	setenv("RN_FAULT_REG_DIR", "2", 1);
	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_int_equal(commit_one(r, &a, "aaa", &rep), 0);
	assert_int_equal(commit_one(r, &b, "bbb", &rep), EIO); /* the 2nd: its directory fsync */
	assert_int_equal(commit_one(r, &c, "ccc", &rep), 0);
	assert_true(exists("aaa"));
	assert_false(exists("bbb"));
	assert_true(exists("ccc"));
	rn_registry_destroy(r);
}

static void test_begin_fails_cleanly(void **state)
{
	struct rn_registry *r;
	struct rn_reg_pending a;
	(void)state;

	assert_int_equal(rn_registry_create(&r, dir), 0);
	rn_registry_pending_init(&a, "aaa");
	rn_fs_fail_after(1, ENOSPC, RN_FS_WRITE);
	assert_int_equal(rn_registry_begin(r, &a, "main.s.t", 1, "alice"), RN_EIO);
	assert_int_equal(errno, ENOSPC);
	assert_false(rn_registry_queued(&a));
	assert_int_equal(files(), 0);
	rn_fs_fail_after(1, EIO, RN_FS_OPEN);
	assert_int_equal(rn_registry_begin(r, &a, "main.s.t", 1, "alice"), RN_EIO);
	assert_int_equal(files(), 0);
	/* destroy drops what is still queued, temp files removed */
	assert_int_equal(rn_registry_begin(r, &a, "main.s.t", 1, "alice"), 0);
	assert_true(exists(".aaa.tmp"));
	rn_registry_destroy(r);
	assert_int_equal(files(), 0);
}

struct descs {
	char id[4][40], table[4][64], bytes[4][16];
	size_t n;
};

static int desc(void *ctx, const char *id, const char *table, const uint8_t *bytes, size_t len)
{
	struct descs *d = ctx;
	snprintf(d->id[d->n], sizeof(d->id[0]), "%s", id);
	snprintf(d->table[d->n], sizeof(d->table[0]), "%s", table);
	snprintf(d->bytes[d->n++], sizeof(d->bytes[0]), "%.*s", (int)len, (const char *)bytes);
	return !strcmp(id, "bad");
}

static int keep_p(void *ctx, const char *id, const char *ext)
{
	(void)ctx;
	(void)ext;
	return id[0] == 'p';
}

static void test_stream_files(void **state)
{
	struct rn_registry *r;
	struct descs d = {0};
	char boot[64], owner[RN_REGISTRY_OWNER_MAX + 1] = "junk";
	int64_t delta = 0;
	(void)state;

	assert_int_equal(rn_registry_create(&r, dir), 0);
	/* descriptors: bytes after the table line, any bytes (a newline inside too) */
	assert_int_equal(
		rn_registry_save_descriptor(r, "s1", "main.s.t", (const uint8_t *)"d\n1", 3), 0);
	assert_int_equal(rn_registry_save_descriptor(r, "bad", "main.s.u", (const uint8_t *)"x", 1),
			 0);
	assert_int_equal(rn_registry_load_descriptors(r, "main.s.t", desc, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.id[0], "s1");
	assert_string_equal(d.bytes[0], "d\n1");
	memset(&d, 0, sizeof(d));
	assert_int_equal(rn_registry_load_descriptors(r, NULL, desc, &d), 1); /* "bad" refused */
	assert_int_equal(d.n, 2);
	/* clock */
	assert_int_equal(rn_registry_load_clock(r, "s1", boot, sizeof(boot), &delta), 0);
	assert_int_equal(rn_registry_save_clock(r, "s1", "boot-1", -1234567), 0);
	assert_int_equal(rn_registry_load_clock(r, "s1", boot, sizeof(boot), &delta), 1);
	assert_string_equal(boot, "boot-1");
	assert_int_equal(delta, -1234567);
	/* owner */
	rn_registry_load_owner(r, "s1", owner);
	assert_string_equal(owner, ""); /* none kept */
	assert_int_equal(rn_registry_save_owner(r, "s1", "alice"), 0);
	rn_registry_load_owner(r, "s1", owner);
	assert_string_equal(owner, "alice");
	/* a failed write is an error, not a half file */
	rn_fs_fail_after(1, ENOSPC, RN_FS_WRITE);
	assert_int_equal(rn_registry_save_owner(r, "s2", "bob"), RN_EIO);
	assert_false(exists("s2.owner"));
	/* forget: every file of the id */
	rn_registry_forget_files(r, "s1");
	assert_false(exists("s1.desc"));
	assert_false(exists("s1.clock"));
	assert_false(exists("s1.owner"));
	/* sweep: what keep() says 0 for goes */
	assert_int_equal(rn_registry_save_owner(r, "p1", "alice"), 0);
	assert_int_equal(rn_registry_save_clock(r, "e1", "b", 1), 0);
	assert_int_equal(rn_registry_save_owner(r, "e1", "bob"), 0);
	assert_int_equal(rn_registry_sweep(r, keep_p, NULL), 3); /* e1.clock, e1.owner, bad.desc */
	assert_true(exists("p1.owner"));
	assert_false(exists("e1.owner"));
	assert_false(exists("bad.desc"));
	rn_registry_destroy(r);
}

/* rn_registry_find: one entry by id, as another server sharing the directory registered it
 * after this registry was loaded; ids that cannot name an entry are never looked up. */
static void test_find(void **state)
{
	struct rn_registry *r, *other;
	struct rn_reg_pending p;
	struct report rep = {0};
	struct loaded l = {0};
	struct descs d = {0};
	(void)state;

	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_int_equal(rn_registry_create(&other, dir), 0);
	assert_int_equal(rn_registry_find(r, "s1", 2, entry, &l), 1); /* none yet */
	assert_int_equal(l.n, 0);
	/* the other registry (another server) registers s1 and its descriptor */
	assert_int_equal(commit_one(other, &p, "s1", &rep), 0);
	assert_int_equal(
		rn_registry_save_descriptor(other, "s1", "main.s.t", (const uint8_t *)"d1", 2), 0);
	/* found by its id as it came off the wire (not NUL-terminated) */
	assert_int_equal(rn_registry_find(r, "s1xyz", 2, entry, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.id[0], "s1");
	assert_string_equal(l.table[0], "main.s.t");
	assert_string_equal(l.owner[0], "alice");
	assert_int_equal(l.rtype[0], 1);
	assert_int_equal(rn_registry_load_descriptor(r, "s1", desc, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.bytes[0], "d1");
	assert_int_equal(rn_registry_load_descriptor(r, "s9", desc, &d), 0); /* none */
	assert_int_equal(d.n, 1);
	/* the callback's answer is returned: refused (1) or an error */
	commit_one(other, &p, "x1", &rep);
	l.refuse = 1;
	assert_int_equal(rn_registry_find(r, "x1", 2, entry, &l), 1);
	l.refuse = RN_ENOMEM;
	assert_int_equal(rn_registry_find(r, "x1", 2, entry, &l), RN_ENOMEM);
	/* ids that are not one plain file name: never looked up */
	put_file("s2.desc", "main.s.t\n1\n");
	assert_int_equal(rn_registry_id_check("s2.desc", 7), RN_EINVAL);
	assert_int_equal(rn_registry_find(r, "s2.desc", 7, entry, &l), 1);
	assert_int_equal(rn_registry_find(r, ".s1.tmp", 7, entry, &l), 1);
	assert_int_equal(rn_registry_find(r, "../s1", 5, entry, &l), 1);
	assert_int_equal(rn_registry_find(r, "s1\0", 3, entry, &l), 1);
	assert_int_equal(rn_registry_find(r, "", 0, entry, &l), 1);
	char longid[RN_REGISTRY_ID_MAX + 1];
	memset(longid, 'a', sizeof(longid));
	assert_int_equal(rn_registry_id_check(longid, RN_REGISTRY_ID_MAX), RN_EINVAL);
	assert_int_equal(rn_registry_id_check(longid, RN_REGISTRY_ID_MAX - 1), 0);
	assert_int_equal(l.n, 1);
	/* an entry that cannot be parsed is not found */
	put_file("s3", "not a table\n");
	assert_int_equal(rn_registry_find(r, "s3", 2, entry, &l), 1);
	/* retired by the other: gone */
	assert_int_equal(rn_registry_retire(other, "s1"), 0);
	assert_int_equal(rn_registry_find(r, "s1", 2, entry, &l), 1);
	assert_int_equal(l.n, 1);
	rn_registry_destroy(other);
	rn_registry_destroy(r);
}

/* rn_registry_join: the first registry on a directory is alone and may sweep; one joining
 * while another holds the directory is not and sweeps nothing; alone again once every
 * other has gone. */
static void test_join(void **state)
{
	struct rn_registry *a, *b, *c;
	int alone = -1;
	(void)state;
	assert_int_equal(rn_registry_create(&a, dir), 0);
	assert_int_equal(rn_registry_create(&b, dir), 0);
	assert_int_equal(rn_registry_join(a, &alone), 0);
	assert_int_equal(alone, 1);
	assert_int_equal(rn_registry_join(a, &alone), 0); /* again: a no-op */
	assert_int_equal(alone, 0);
	assert_int_equal(rn_registry_join(b, &alone), 0);
	assert_int_equal(alone, 0);
	assert_true(exists(".live"));
	/* b is not alone: another server's ephemeral stream files stay */
	assert_int_equal(rn_registry_save_owner(a, "e1", "bob"), 0);
	assert_int_equal(rn_registry_sweep(b, keep_p, NULL), 0);
	assert_true(exists("e1.owner"));
	/* a joined alone: it sweeps */
	assert_int_equal(rn_registry_sweep(a, keep_p, NULL), 1);
	assert_false(exists("e1.owner"));
	/* a gone, b still there: a newcomer is not alone */
	rn_registry_destroy(a);
	assert_int_equal(rn_registry_create(&c, dir), 0);
	assert_int_equal(rn_registry_join(c, &alone), 0);
	assert_int_equal(alone, 0);
	rn_registry_destroy(c);
	rn_registry_destroy(b);
	/* every one gone: alone */
	assert_int_equal(rn_registry_create(&c, dir), 0);
	assert_int_equal(rn_registry_join(c, &alone), 0);
	assert_int_equal(alone, 1);
	/* .live is never read as an entry */
	struct loaded l = {0};
	assert_int_equal(rn_registry_load(c, entry, &l), 0);
	assert_int_equal(l.n, 0);
	rn_registry_destroy(c);
	/* a directory that cannot hold .live: RN_EIO, not joined */
	assert_int_equal(rn_registry_create(&c, "/nonexistent-dir-of-test-registry"), 0);
	assert_int_equal(rn_registry_join(c, &alone), RN_EIO);
	assert_int_equal(alone, 0);
	rn_registry_destroy(c);
}

/* A stream's entry as the store keeps it: encoded and decoded back, field for field; what
 * cannot be an entry is refused both ways. */
static void test_entry_encoding(void **state)
{
	static const uint8_t descb[] = {0x0a, 0x03, 'M', 's', 'g', 0x00, '\n', 0xff};
	struct rn_reg_entry e = {"main.s.t", 1, "alice", "b00t-1d", -42, descb, sizeof(descb)}, d;
	struct rn_reg_entry_text t;
	struct rn_buf b = {0};
	(void)state;

	assert_int_equal(rn_registry_entry_encode(&b, &e), 0);
	assert_int_equal(rn_registry_entry_decode(b.data, b.len, &d, &t), 0);
	assert_string_equal(d.table, "main.s.t");
	assert_int_equal(d.record_type, 1);
	assert_string_equal(d.owner, "alice");
	assert_string_equal(d.boot_id, "b00t-1d");
	assert_int_equal(d.delta_us, -42);
	assert_int_equal(d.desc_len, sizeof(descb));
	assert_memory_equal(d.desc, descb, sizeof(descb));
	/* no clock, no owner, no descriptor */
	struct rn_reg_entry bare = {"c.s.json", 2, "", NULL, 0, NULL, 0};
	rn_buf_reset(&b);
	assert_int_equal(rn_registry_entry_encode(&b, &bare), 0);
	assert_int_equal(b.len, strlen("runnel-stream 1\nc.s.json\n2\n\n-\n"));
	assert_int_equal(rn_registry_entry_decode(b.data, b.len, &d, &t), 0);
	assert_string_equal(d.table, "c.s.json");
	assert_int_equal(d.record_type, 2);
	assert_string_equal(d.owner, "");
	assert_null(d.boot_id);
	assert_int_equal(d.desc_len, 0);
	/* refused: what a line cannot hold */
	struct rn_reg_entry bad = e;
	bad.table = "not a table";
	assert_int_equal(rn_registry_entry_encode(&b, &bad), RN_EINVAL);
	bad = e;
	bad.owner = "al ice";
	assert_int_equal(rn_registry_entry_encode(&b, &bad), RN_EINVAL);
	bad = e;
	bad.boot_id = "a\nb";
	assert_int_equal(rn_registry_entry_encode(&b, &bad), RN_EINVAL);
	/* refused: bytes that are not an entry, or an entry cut short */
	static const char *const junk[] = {"",
					   "runnel-stream 2\nmain.s.t\n1\n\n-\n",
					   "runnel-stream 1\nmain.s\n1\n\n-\n",
					   "runnel-stream 1\nmain.s.t\nx\n\n-\n",
					   "runnel-stream 1\nmain.s.t\n1\n\nb 1 2\n",
					   "runnel-stream 1\nmain.s.t\n1\n\nb\n",
					   "runnel-stream 1\nmain.s.t\n1\n"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(
			rn_registry_entry_decode((const uint8_t *)junk[i], strlen(junk[i]), &d, &t),
			RN_EINVAL);
	rn_buf_reset(&b);
	assert_int_equal(rn_registry_entry_encode(&b, &e), 0);
	for (size_t cut = 0; cut < strlen("runnel-stream 1\nmain.s.t\n1\nalice\nb00t-1d -42\n");
	     cut++)
		assert_int_equal(rn_registry_entry_decode(b.data, cut, &d, &t), RN_EINVAL);
	rn_buf_free(&b);
}

/* The store half on the table store's local backend: put_new semantics (ours again is 0,
 * another's is RN_EEXIST), get, delete; a write that fails (each of its file system steps
 * in turn) leaves no object, and the id rules hold. */
static void test_store_entries(void **state)
{
	char root[512], err[256];
	struct rn_tstore *st;
	struct rn_tstore_config cfg = {0};
	struct rn_buf b = {0};
	const uint8_t one[] = "entry one", two[] = "entry two";
	(void)state;

	rn_test_path(root, sizeof(root), dir, RN_REGISTRY_STORE_ROOT);
	assert_int_equal(rn_tstore_open(&st, root, &cfg, err, sizeof(err)), 0);
	assert_int_equal(rn_registry_store_get(st, "s1", 2, &b), RN_ENOTFOUND);
	assert_int_equal(rn_registry_store_put(st, "s1", one, sizeof(one), NULL, 0), 0);
	assert_int_equal(rn_registry_store_get(st, "s1xyz", 2, &b), 0); /* as off the wire */
	assert_int_equal(b.len, sizeof(one));
	assert_memory_equal(b.data, one, sizeof(one));
	/* the layout: streams/<id> under the store root */
	char path[600];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/streams/s1", root);
	assert_int_equal(stat(path, &sb), 0);
	/* an attempt of ours that landed (its answer lost): ours; another entry: refused */
	assert_int_equal(rn_registry_store_put(st, "s1", one, sizeof(one), NULL, 0), 0);
	assert_int_equal(rn_registry_store_put(st, "s1", two, sizeof(two), NULL, 0), RN_EEXIST);
	/* ids that cannot name an entry */
	assert_int_equal(rn_registry_store_put(st, "../s1", one, sizeof(one), NULL, 0), RN_EINVAL);
	assert_int_equal(rn_registry_store_get(st, "s1/x", 4, &b), RN_ENOTFOUND);
	assert_int_equal(rn_registry_store_get(st, "", 0, &b), RN_ENOTFOUND);
	/* deleted; deleting again is fine */
	assert_int_equal(rn_registry_store_delete(st, "s1"), 0);
	assert_int_equal(rn_registry_store_get(st, "s1", 2, &b), RN_ENOTFOUND);
	assert_int_equal(rn_registry_store_delete(st, "s1"), 0);
	/* every failing step of a put: an error, and no object (the create is refused and the
	 * client makes a new one) */
	static const unsigned ops[] = {RN_FS_OPEN, RN_FS_WRITE, RN_FS_FSYNC, RN_FS_LINK,
				       RN_FS_RENAME};
	int failed = 0;
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		for (long nth = 1; nth < 6; nth++) {
			rn_fs_fail_after(nth, EIO, ops[k]);
			int rc = rn_registry_store_put(st, "s2", two, sizeof(two), NULL, 0);
			rn_fs_fail_after(0, 0, 0);
			if (!rc) { /* the fault came after the last such step: a whole object */
				rn_buf_reset(&b);
				assert_int_equal(rn_registry_store_get(st, "s2", 2, &b), 0);
				assert_memory_equal(b.data, two, sizeof(two));
				assert_int_equal(rn_registry_store_delete(st, "s2"), 0);
				break;
			}
			failed++;
			assert_true(rc == RN_EIO || rc == RN_ENOSPC);
			assert_int_equal(rn_registry_store_get(st, "s2", 2, &b), RN_ENOTFOUND);
		}
	assert_true(failed >= 3); /* open, write and fsync at least took part */
	rn_buf_free(&b);
	rn_tstore_close(st);
}

/* An entry read from the store is adopted into the directory and then found like one
 * registered here, with its descriptor and clock; a failing write adopts nothing. */
static void test_adopt(void **state)
{
	static const uint8_t descb[] = {1, 2, 3};
	struct rn_reg_entry e = {"main.s.t", 1, "bob", "boot9", 7, descb, sizeof(descb)};
	struct rn_registry *r;
	struct loaded l = {0};
	struct descs d = {0};
	char boot[64];
	int64_t delta = 0;
	(void)state;

	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_int_equal(rn_registry_adopt(r, "s1", &e), 0);
	assert_int_equal(rn_registry_find(r, "s1", 2, entry, &l), 0);
	assert_string_equal(l.table[0], "main.s.t");
	assert_string_equal(l.owner[0], "bob");
	assert_int_equal(rn_registry_load_descriptor(r, "s1", desc, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(rn_registry_load_clock(r, "s1", boot, sizeof(boot), &delta), 1);
	assert_string_equal(boot, "boot9");
	assert_int_equal(delta, 7);
	/* each write of the adoption failing in turn: no entry, no files left */
	int failed = 0;
	for (long nth = 1; nth < 40; nth++) {
		rn_fs_fail_after(nth, EIO, RN_FS_ALL);
		int rc = rn_registry_adopt(r, "s2", &e);
		rn_fs_fail_after(0, 0, 0);
		if (!rc)
			break;
		failed++;
		assert_int_equal(rc, RN_EIO);
		assert_false(exists("s2"));
		assert_false(exists("s2.desc"));
		assert_false(exists("s2.clock"));
	}
	assert_true(failed >= 3);
	assert_true(exists("s2"));
	/* refused without a write */
	assert_int_equal(rn_registry_adopt(r, "../x", &e), RN_EINVAL);
	struct rn_reg_entry bad = e;
	bad.table = "nope";
	assert_int_equal(rn_registry_adopt(r, "s3", &bad), RN_EINVAL);
	assert_false(exists("s3"));
	rn_registry_destroy(r);
}

struct marked {
	int n;
	char id[8][RN_REGISTRY_ID_MAX];
};

static void on_marked(void *ctx, const char *id)
{
	struct marked *m = ctx;
	assert_true(m->n < 8);
	snprintf(m->id[m->n++], sizeof(m->id[0]), "%s", id);
}

static int keep_none(void *ctx, const char *id, const char *ext)
{
	(void)ctx;
	(void)id;
	(void)ext;
	return 0;
}

/* A retire with tables on S3, as the server runs it: marked retired, the local entry gone,
 * then the store's delete, which fails here (the local backend's unlink, rn_fs_fail_after):
 * the store's object stays, and the local state says retired — no entry to find or load, the
 * mark that makes a resume NOT_FOUND instead of reading the object back, listed for the
 * next start's retry. A delete that then succeeds lifts the mark. A mark that cannot be
 * written marks nothing (the retire is refused and retried); a mark beside an entry that
 * stands is dropped at start, never handed out for a delete. */
static void test_store_delete_fails(void **state)
{
	char root[512], err[256];
	struct rn_tstore *st;
	struct rn_tstore_config cfg = {0};
	struct rn_registry *r;
	struct rn_buf b = {0};
	struct loaded l = {0};
	struct marked m = {0};
	const uint8_t one[] = "entry one";
	struct rn_reg_entry e = {"main.s.t", 1, "bob", NULL, 0, NULL, 0};
	(void)state;

	rn_test_path(root, sizeof(root), dir, "store.d"); /* a dot: no entry name */
	assert_int_equal(rn_tstore_open(&st, root, &cfg, err, sizeof(err)), 0);
	assert_int_equal(rn_registry_create(&r, dir), 0);
	assert_int_equal(rn_registry_store_put(st, "s1", one, sizeof(one), NULL, 0), 0);
	assert_int_equal(rn_registry_adopt(r, "s1", &e), 0);
	assert_int_equal(rn_registry_marked_retired(r, "s1", 2), 0);

	/* the mark cannot be written: nothing marked, the entry stands */
	for (unsigned op = RN_FS_OPEN; op <= RN_FS_RENAME; op <<= 1) {
		rn_fs_fail_after(1, EIO, op);
		int rc = rn_registry_mark_retired(r, "s1");
		rn_fs_fail_after(0, 0, 0);
		if (rc) {
			assert_int_equal(rc, RN_EIO);
			assert_int_equal(rn_registry_marked_retired(r, "s1", 2), 0);
			assert_false(exists("s1.retired"));
		} else { /* the op took no part in it */
			rn_registry_unmark_retired(r, "s1");
		}
	}
	assert_int_equal(rn_registry_mark_retired(r, "../s1"), RN_EINVAL);

	/* the retire: marked, the local entry gone, the store's delete fails */
	assert_int_equal(rn_registry_mark_retired(r, "s1"), 0);
	assert_int_equal(rn_registry_retire(r, "s1"), 0);
	rn_fs_fail_after(1, EIO, RN_FS_UNLINK);
	assert_int_equal(rn_registry_store_delete(st, "s1"), RN_EIO);
	assert_true(rn_fs_injected() > 0);
	rn_fs_fail_after(0, 0, 0);
	assert_non_null(strstr(rn_tstore_errmsg(st), "s1"));
	/* the store still has it ... */
	assert_int_equal(rn_registry_store_get(st, "s1", 2, &b), 0);
	assert_memory_equal(b.data, one, sizeof(one));
	/* ... and here it is retired: not found, not loaded, marked (as off the wire too) */
	assert_int_equal(rn_registry_find(r, "s1", 2, entry, &l), 1);
	assert_int_equal(rn_registry_marked_retired(r, "s1xyz", 2), 1);
	assert_int_equal(rn_registry_marked_retired(r, "s1/", 3), 0);
	rn_registry_destroy(r);
	assert_int_equal(rn_registry_create(&r, dir), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(rn_registry_load(r, entry, &l), 0);
	assert_int_equal(l.n, 0);
	/* kept by the sweep of per-stream files; handed to the start's retry */
	rn_registry_sweep(r, keep_none, NULL);
	assert_true(exists("s1.retired"));
	assert_int_equal(rn_registry_each_marked(r, on_marked, &m), 1);
	assert_string_equal(m.id[0], "s1");

	/* the retry deletes it: the mark goes */
	assert_int_equal(rn_registry_store_delete(st, "s1"), 0);
	rn_registry_unmark_retired(r, "s1");
	rn_registry_unmark_retired(r, "s1"); /* twice is fine */
	assert_int_equal(rn_registry_marked_retired(r, "s1", 2), 0);
	assert_int_equal(rn_registry_store_get(st, "s1", 2, &b), RN_ENOTFOUND);
	m.n = 0;
	assert_int_equal(rn_registry_each_marked(r, on_marked, &m), 0);

	/* a mark beside an entry that stands (its retire never completed): dropped */
	assert_int_equal(rn_registry_adopt(r, "s2", &e), 0);
	assert_int_equal(rn_registry_mark_retired(r, "s2"), 0);
	assert_int_equal(rn_registry_each_marked(r, on_marked, &m), 0);
	assert_int_equal(m.n, 0);
	assert_false(exists("s2.retired"));
	assert_true(exists("s2"));

	rn_buf_free(&b);
	rn_registry_destroy(r);
	rn_tstore_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_commit_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_and_refused_entries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_fsync_fails_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_fsync_fails_the_group, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_hook_fails_the_nth_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_begin_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_encoding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_delete_fails, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
