/*
 * Unit tests for plugins/in_file's watches, errors and large offsets, on real files with the
 * harness's fake host: a glob whose directories do not exist yet is found by inotify alone
 * (the rescan an hour away) as they appear, and again after they are removed and made anew,
 * while names that cannot match cost no rescan; paths that cannot be read (a FIFO, a
 * directory named as a file, a file its reader may not open) are logged once however many
 * rescans see them, and read as soon as they can be; a symlinked path is woken by its
 * target's data; files past 2 GiB and 4 GiB (sparse) are read from a position near their
 * end, also after a restart from the checkpoint. The rescans are counted from the plugin's
 * own debug lines ("rescan: ..."), captured from stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rn_log.h"
#include "testutil.h"

#define NEVER_MS 3600000 /* a rescan interval no test lives to see */

/* Polls now with the log captured: the rescans done. */
static int poll_rescans(struct src *s)
{
	char *log;
	int n;
	log_capture_begin();
	src_poll_now(s);
	log = log_capture_end();
	n = count_of(log, "in_file: rescan:");
	free(log);
	return n;
}

/* Waits (bounded) for the plugin's descriptor to wake, then polls: the rescans done, -1 if it
 * did not wake. */
static int wake_rescans(struct src *s, int fd)
{
	int64_t ms;
	if (!wait_readable(fd, 2000, &ms))
		return -1;
	return poll_rescans(s);
}

static void mkdir_ok(const char *p)
{
	assert_int_equal(mkdir(p, 0755), 0);
}

/* A source on `path` (read_from as given) whose rescan is an hour away: only inotify finds
 * anything. */
static void src_start_watched(struct src *s, struct host *h, const char *path, int read_from)
{
	src_init(s, h, path, read_from, 65536);
	s->fc.rescan_interval_ms = NEVER_MS;
	src_create(s);
}

/* A test's own directory `name` in test_dir, its path in base; the plugin's debug lines on
 * (the rescans are counted from them). */
static void test_base(char *base, size_t cap, const char *name)
{
	rn_log_set_level(RN_LOG_DEBUG);
	path_of(base, cap, name);
	mkdir_ok(base);
}

/*
 * The glob walk/a/b/<star>.log while a and b do not exist: the deepest existing directory is
 * watched, a name there that the glob cannot take (zzz) wakes the descriptor once and costs
 * no rescan, a then a/b are followed down as they appear and a/b/x.log is read at once. Data
 * written to an unrelated file beside it raises no event at all. b removed (with its files)
 * sends the walk back up to a; b made again is followed down again; a and b removed and made
 * again between two polls too. The periodic rescan is an hour away: only inotify finds
 * anything.
 */
static void test_missing_dirs_walk(void **state)
{
	struct host h = {0};
	struct src s;
	char base[600], a[700], b[700], pat[700], name[800];
	short ev = 0;
	int fd;
	int64_t ms;
	(void)state;
	test_base(base, sizeof(base), "walk");
	snprintf(a, sizeof(a), "%s/a", base);
	snprintf(b, sizeof(b), "%s/a/b", base);
	snprintf(pat, sizeof(pat), "%s/a/b/*.log", base);
	src_start_watched(&s, &h, pat, 1);
	assert_int_equal(poll_rescans(&s), 1); /* the first scan */
	fd = rn_in_file.wait_fd(s.inst, &ev);
	assert_true(fd >= 0);
	assert_false(wait_readable(fd, 0, &ms));

	/* a name the glob cannot take: one wakeup, nothing else */
	snprintf(name, sizeof(name), "%s/zzz", base);
	mkdir_ok(name);
	assert_int_equal(wake_rescans(&s, fd), 0);
	assert_false(wait_readable(fd, 0, &ms));

	/* down: a, then a/b, then a/b/x.log (read from its start: it came after the start) */
	mkdir_ok(a);
	assert_int_equal(wake_rescans(&s, fd), 1);
	mkdir_ok(b);
	assert_int_equal(wake_rescans(&s, fd), 1);
	snprintf(name, sizeof(name), "%s/x.log", b);
	write_file(name, "w", "x1\nx2\n", 6);
	assert_true(wait_records(&s, &h, 2, 2000));
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[0], "x1");
	assert_string_equal(h.rec[1], "x2");
	assert_string_equal(h.topic[0], name);
	poll_rescans(&s); /* the old watches' removal notices */
	assert_false(wait_readable(fd, 0, &ms));
	/* the ancestor is not watched any more */
	snprintf(name, sizeof(name), "%s/zzz2", base);
	mkdir_ok(name);
	assert_false(wait_readable(fd, 0, &ms));

	/* an unrelated file beside x.log: its creation wakes once, its data never */
	snprintf(name, sizeof(name), "%s/notes.txt", b);
	write_file(name, "w", "n\n", 2);
	assert_int_equal(wake_rescans(&s, fd), 0);
	write_file(name, "a", "more\n", 5);
	assert_false(wait_readable(fd, 0, &ms));
	assert_int_equal(unlink(name), 0);
	assert_int_equal(wake_rescans(&s, fd), 0);

	/* data of the tailed file wakes it, without a rescan */
	snprintf(name, sizeof(name), "%s/x.log", b);
	write_file(name, "a", "x3\n", 3);
	assert_int_equal(wake_rescans(&s, fd), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.rec[2], "x3");

	/* back up: b goes with its file; made again, it is followed down again */
	assert_int_equal(unlink(name), 0);
	assert_int_equal(rmdir(b), 0);
	assert_true(wake_rescans(&s, fd) >= 1);
	src_poll(&s, 1); /* x.log, gone, is let go after rotate_wait */
	mkdir_ok(b);
	assert_int_equal(wake_rescans(&s, fd), 1);
	snprintf(name, sizeof(name), "%s/y.log", b);
	write_file(name, "w", "y1\n", 3);
	assert_true(wait_records(&s, &h, 4, 2000));
	assert_string_equal(h.rec[3], "y1");
	assert_string_equal(h.topic[3], name);

	/* a and b removed and made again between two polls */
	assert_int_equal(unlink(name), 0);
	assert_int_equal(rmdir(b), 0);
	assert_int_equal(rmdir(a), 0);
	mkdir_ok(a);
	mkdir_ok(b);
	snprintf(name, sizeof(name), "%s/z.log", b);
	write_file(name, "w", "z1\n", 3);
	assert_true(wait_records(&s, &h, 5, 2000));
	assert_string_equal(h.rec[4], "z1");
	assert_string_equal(h.topic[4], name);
	assert_int_equal(h.n, 5);
	src_stop(&s);
	host_free(&h);
	rn_log_set_level(RN_LOG_INFO);
}

/*
 * Matched paths that are not regular files: a FIFO matching the glob and a directory named
 * as a path are each logged once over five rescans (the FIFO never opened: that would block);
 * a directory that the glob happens to match is passed over quietly. The FIFO replaced by a
 * file is read, and that is said too.
 */
static void test_not_regular_logged(void **state)
{
	struct host h = {0};
	struct src s;
	char base[600], pat[700], adir[700], name[800];
	char *log;
	(void)state;
	test_base(base, sizeof(base), "odd");
	snprintf(pat, sizeof(pat), "%s/*.log", base);
	snprintf(adir, sizeof(adir), "%s/adir", base);
	mkdir_ok(adir);
	snprintf(name, sizeof(name), "%s/d.log", base);
	mkdir_ok(name);
	snprintf(name, sizeof(name), "%s/good.log", base);
	write_file(name, "w", "g1\n", 3);
	snprintf(name, sizeof(name), "%s/p.log", base);
	assert_int_equal(mkfifo(name, 0644), 0);
	src_init(&s, &h, pat, 0, 65536);
	s.paths[1] = adir;
	s.fc.paths.n = 2;
	s.fc.rescan_interval_ms = 10;
	src_create(&s);
	log_capture_begin();
	src_poll(&s, 5);
	log = log_capture_end();
	assert_int_equal(count_of(log, "in_file: rescan:"), 5);
	assert_int_equal(count_of(log, "p.log is a FIFO, not a regular file: not read"), 1);
	assert_int_equal(count_of(log, "adir is a directory, not a regular file: not read"), 1);
	assert_int_equal(count_of(log, "/d.log"), 0);
	free(log);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.rec[0], "g1");

	assert_int_equal(unlink(name), 0);
	write_file(name, "w", "p1\n", 3);
	log_capture_begin();
	src_poll(&s, 2);
	log = log_capture_end();
	assert_int_equal(count_of(log, "p.log: readable now"), 1);
	free(log);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "p1");
	src_stop(&s);
	host_free(&h);
	rn_log_set_level(RN_LOG_INFO);
}

/* The child of test_permission_denied_logged, as an unprivileged user: 0 if all went as
 * expected, else the number of the step that did not. */
static int eacces_child(const char *base, int drop)
{
	struct host h = {0};
	struct src s;
	char pat[700], secret[700], name[800];
	int fd, rc = 0;
	short ev = 0;
	/* dumpable again after the uid change, as a process started as that user is: its
	 * /proc/self/fd is its own */
	if (drop && (setgroups(0, NULL) || setgid(65534) || setuid(65534) ||
		     prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)))
		return 1;
	snprintf(pat, sizeof(pat), "%s/*.log", base);
	snprintf(secret, sizeof(secret), "%s/secret.log", base);
	if ((fd = open(secret, O_RDONLY)) >= 0 || errno != EACCES)
		return 2; /* still privileged: the test would prove nothing */
	src_start_watched(&s, &h, pat, 0);
	src_poll_now(&s);
	if (h.n != 1 || strcmp(h.rec[0], "o1"))
		rc = 3;
	/* two more rescans, made by new files, while secret.log stays unreadable */
	fd = rn_in_file.wait_fd(s.inst, &ev);
	for (int i = 2; !rc && i <= 3; i++) {
		char line[8];
		snprintf(name, sizeof(name), "%s/ok%d.log", base, i);
		snprintf(line, sizeof(line), "o%d\n", i);
		write_file(name, "w", line, strlen(line));
		if (!wait_records(&s, &h, (size_t)i, 2000))
			rc = 4;
	}
	/* the permission fixed: seen by inotify (the rescan is an hour away) */
	if (!rc && (fd < 0 || chmod(secret, 0644)))
		rc = 5;
	if (!rc &&
	    (!wait_records(&s, &h, 5, 2000) || strcmp(h.rec[3], "s1") || strcmp(h.rec[4], "s2")))
		rc = 6;
	src_stop(&s);
	host_free(&h);
	return rc;
}

/*
 * A file its reader may not open (mode 000, read by an unprivileged user: a forked child
 * drops to nobody when the test runs as root, since root bypasses permissions): "permission
 * denied, will retry" is logged once although three rescans meet it, and once its mode is
 * fixed it is read at once (the attribute change is an event) and "readable now" is said.
 */
static void test_permission_denied_logged(void **state)
{
	char base[600], name[800];
	char *log;
	int status, drop = geteuid() == 0;
	pid_t pid;
	(void)state;
	if (drop) {
		/* nobody must reach base: under /tmp (1777), not under the test directory, whose
		 * ancestors (a checkout in a 0700 directory) may not let others through */
		rn_log_set_level(RN_LOG_DEBUG);
		snprintf(base, sizeof(base), "/tmp/rn-in_file-perm-XXXXXX");
		assert_non_null(mkdtemp(base));
	} else {
		test_base(base, sizeof(base), "perm");
	}
	snprintf(name, sizeof(name), "%s/ok.log", base);
	write_file(name, "w", "o1\n", 3);
	if (drop)
		assert_int_equal(chown(name, 65534, 65534), 0);
	snprintf(name, sizeof(name), "%s/secret.log", base);
	write_file(name, "w", "s1\ns2\n", 6);
	assert_int_equal(chmod(name, 0), 0);
	if (drop) {
		assert_int_equal(chown(name, 65534, 65534), 0);
		assert_int_equal(chown(base, 65534, 65534), 0);
	}
	log_capture_begin();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(eacces_child(base, drop));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	log = log_capture_end();
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_of(log, "in_file: rescan:"), 4);
	assert_int_equal(count_of(log, "secret.log: cannot open: Permission denied; not read, "
				       "will retry"),
			 1);
	assert_int_equal(count_of(log, "secret.log: readable now"), 1);
	free(log);
	if (drop) {
		assert_int_equal(rn_test_rmtree(base), 0);
	}
	rn_log_set_level(RN_LOG_INFO);
}

/*
 * A path that is a symlink to a file in a directory nobody watches: the file's own watch
 * (through the open descriptor) wakes the source on its data, the rescan an hour away.
 */
static void test_symlinked_path_wakes(void **state)
{
	struct host h = {0};
	struct src s;
	char base[600], target[700], link[700];
	short ev = 0;
	int fd;
	int64_t ms;
	(void)state;
	test_base(base, sizeof(base), "sym");
	snprintf(target, sizeof(target), "%s/elsewhere", base);
	mkdir_ok(target);
	snprintf(target, sizeof(target), "%s/elsewhere/real.log", base);
	snprintf(link, sizeof(link), "%s/app.log", base);
	write_file(target, "w", "r1\n", 3);
	assert_int_equal(symlink(target, link), 0);
	src_start_watched(&s, &h, link, 0);
	src_poll_now(&s);
	assert_int_equal(h.n, 1);
	fd = rn_in_file.wait_fd(s.inst, &ev);
	assert_false(wait_readable(fd, 0, &ms));
	write_file(target, "a", "r2\n", 3);
	assert_int_equal(wake_rescans(&s, fd), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.rec[1], "r2");
	assert_string_equal(h.topic[1], link);
	src_stop(&s);
	host_free(&h);
	rn_log_set_level(RN_LOG_INFO);
}

/* A sparse file of `size` bytes (a hole: nothing is written). */
static void sparse(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct stat st;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size == size);
	close(fd);
}

/* The record whose topic is `topic`, from h->rec[from..]; NULL if none. */
static const char *rec_of(const struct host *h, size_t from, const char *topic)
{
	for (size_t i = from; i < h->n; i++)
		if (!strcmp(h->topic[i], topic))
			return h->rec[i];
	return NULL;
}

/*
 * Offsets past 2 GiB and 4 GiB (the limits of a 32-bit off_t and of a 32-bit unsigned): two
 * sparse files, present at the first start with read_from = end, are read from just before
 * those limits — lines written across them and after come out whole — and after a restart
 * from the checkpoint (positions past the limits) only the lines written since are read. No
 * zeros are read: nothing before the start position is touched.
 */
static void test_offsets_past_2g(void **state)
{
	struct host h = {0};
	struct src s;
	char p2[600], p4[600], pat[600];
	const off_t g2 = (off_t)1 << 31, g4 = (off_t)1 << 32;
	struct stat st;
	(void)state;
	path_of(p2, sizeof(p2), "big2.log");
	path_of(p4, sizeof(p4), "big4.log");
	path_of(pat, sizeof(pat), "big*.log");
	sparse(p2, g2 - 10);
	sparse(p4, g4 - 6);
	src_start_watched(&s, &h, pat, 1);
	src_poll_now(&s);
	assert_int_equal(h.n, 0);
	write_file(p2, "a", "across 2 GiB: 0123456789\nafter 2 GiB\n", 37);
	write_file(p4, "a", "across 4 GiB: 0123456789\nafter 4 GiB\n", 37);
	assert_int_equal(stat(p4, &st), 0);
	assert_true(st.st_size > g4);
	assert_true(wait_records(&s, &h, 4, 2000));
	assert_int_equal(h.n, 4);
	assert_string_equal(rec_of(&h, 0, p2), "across 2 GiB: 0123456789");
	assert_string_equal(rec_of(&h, 0, p4), "across 4 GiB: 0123456789");
	for (size_t i = 0; i < h.n; i++)
		if (strstr(h.rec[i], "after"))
			assert_string_equal(h.rec[i], !strcmp(h.topic[i], p2) ? "after 2 GiB"
									      : "after 4 GiB");

	/* restart from the checkpoint: only what came since */
	src_save(&s, &h);
	src_stop(&s);
	write_file(p2, "a", "more 2\n", 7);
	write_file(p4, "a", "more 4\n", 7);
	host_reset(&h);
	src_create(&s);
	assert_true(wait_records(&s, &h, 2, 2000));
	src_poll(&s, 2);
	assert_int_equal(h.n, 2);
	assert_string_equal(rec_of(&h, 0, p2), "more 2");
	assert_string_equal(rec_of(&h, 0, p4), "more 4");
	src_stop(&s);
	host_free(&h);
	unlink(p2);
	unlink(p4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_dirs_walk),
		cmocka_unit_test(test_not_regular_logged),
		cmocka_unit_test(test_permission_denied_logged),
		cmocka_unit_test(test_symlinked_path_wakes),
		cmocka_unit_test(test_offsets_past_2g),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
