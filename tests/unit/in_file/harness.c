/*
 * The in_file tests' harness (see harness.h): the fake host's callbacks, the source set-up,
 * file helpers and the stderr capture.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "testutil.h"

char test_dir[512];

static int h_emit(void *ctx, const struct rn_record *r)
{
	struct host *h = ctx;
	if (h->refuse_every && ++h->calls % h->refuse_every == 0)
		return RN_EFULL; /* the buffer is full: the record is not taken */
	assert_true(h->n < MAXREC);
	h->rec[h->n] = malloc(r->len + 1);
	memcpy(h->rec[h->n], r->payload, r->len);
	h->rec[h->n][r->len] = 0;
	h->len[h->n] = r->len;
	h->flags[h->n] = r->flags;
	h->split[h->n][0] = 0;
	h->piece[h->n][0] = 0;
	snprintf(h->topic[h->n], sizeof(h->topic[0]), "%s", r->topic ? r->topic : "");
	for (size_t i = 0; i < r->nattrs; i++)
		if (!strcmp(r->attrs[i].key, "runnel.split"))
			snprintf(h->split[h->n], sizeof(h->split[0]), "%s", r->attrs[i].value);
		else if (!strcmp(r->attrs[i].key, "runnel.piece"))
			snprintf(h->piece[h->n], sizeof(h->piece[0]), "%s", r->attrs[i].value);
	h->n++;
	if (h->snap_inst) {
		rn_buf_reset(&h->saved);
		assert_int_equal(rn_in_file.snapshot(h->snap_inst, &h->saved), 0);
		h->have_saved = 1;
	}
	return 0;
}

static void h_pos(void *ctx)
{
	((struct host *)ctx)->pos_changes++;
}

static int h_load(void *ctx, struct rn_buf *out)
{
	struct host *h = ctx;
	if (!h->have_saved)
		return RN_ENOTFOUND;
	return rn_buf_append(out, h->saved.data, h->saved.len);
}

static int h_accepting(void *ctx)
{
	struct host *h = ctx;
	return !h->accept_max || h->n < h->accept_max;
}

void host_reset(struct host *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->rec[i]);
	h->n = 0;
}

void host_free(struct host *h)
{
	host_reset(h);
	rn_buf_free(&h->saved);
}

/* Settings as src_start uses them, without creating the instance (tests adjust them). */
void src_init(struct src *s, struct host *h, const char *path, int read_from, int64_t max_line)
{
	memset(s, 0, sizeof(*s));
	s->paths[0] = (char *)path;
	s->conf.type = "file";
	s->conf.name = "t";
	s->conf.table = "x.y.z";
	s->fc.paths.v = s->paths;
	s->fc.paths.n = 1;
	s->fc.read_from = read_from;
	s->fc.max_line_bytes = max_line;
	s->fc.line_timeout_ms = 50;
	s->fc.rotate_wait_ms = 50;
	s->fc.rescan_interval_ms = 500;
	s->fc.multiline_timeout_ms = 1000;
	s->fc.multiline_max_bytes = 256 << 10;
	assert_int_equal(rn_in_file.conf_size, sizeof(s->fc));
	s->conf.plugin.table = rn_in_file.conf;
	s->conf.plugin.data = &s->fc;
	s->sh = (struct rn_source_host){.ctx = h,
					.emit = h_emit,
					.position_changed = h_pos,
					.load_position = h_load,
					.accepting = h_accepting};
}

void src_create(struct src *s)
{
	assert_int_equal(rn_in_file.check(&s->conf, (char[64]){0}, 64), 0);
	assert_int_equal(rn_in_file.create(&s->inst, &s->conf, &s->sh), 0);
}

void src_start(struct src *s, struct host *h, const char *path, int read_from, int64_t max_line)
{
	src_init(s, h, path, read_from, max_line);
	src_create(s);
}

/* One poll at the real time (no jump past the rescan interval). */
void src_poll_now(struct src *s)
{
	int more = 1;
	for (int i = 0; more && i < 100; i++)
		assert_int_equal(rn_in_file.poll(s->inst, rn_mono_us(), &more), 0);
}

void src_poll(struct src *s, int times)
{
	for (int i = 0; i < times; i++) {
		int more = 0;
		assert_int_equal(rn_in_file.poll(s->inst, rn_mono_us() + i * 1000000LL, &more), 0);
	}
}

/* Commits the current position, as the agent does with a chunk. */
void src_save(struct src *s, struct host *h)
{
	rn_buf_reset(&h->saved);
	assert_int_equal(rn_in_file.snapshot(s->inst, &h->saved), 0);
	h->have_saved = 1;
}

void src_stop(struct src *s)
{
	rn_in_file.destroy(s->inst);
	s->inst = NULL;
}

void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_dir, name);
}

void write_file(const char *path, const char *mode, const void *p, size_t n)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

void sleep_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

int test_setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(test_dir, sizeof(test_dir), "in_file");
}

int test_teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(test_dir);
}

/* Waits (bounded) until fd is readable; the time it took in *ms. */
int wait_readable(int fd, int timeout_ms, int64_t *ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	int64_t t0 = rn_mono_us();
	int r = poll(&p, 1, timeout_ms);
	*ms = (rn_mono_us() - t0) / 1000;
	return r == 1 && (p.revents & POLLIN);
}

/* Bounded wait for at least n records, polling the plugin whenever its fd wakes us. */
int wait_records(struct src *s, struct host *h, size_t n, int timeout_ms)
{
	short ev = 0;
	int fd = rn_in_file.wait_fd(s->inst, &ev);
	int64_t end = rn_mono_us() + (int64_t)timeout_ms * 1000, ms;
	while (h->n < n && rn_mono_us() < end) {
		if (fd >= 0)
			wait_readable(fd, 20, &ms);
		src_poll_now(s);
	}
	return h->n >= n;
}

void write_lines(const char *path, const char *tag, int from, int to)
{
	char buf[8192];
	size_t n = 0;
	for (int i = from; i < to; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s %d\n", tag, i);
	write_file(path, "a", buf, n);
}

static int saved_stderr = -1;
static char cap_path[600];

void log_capture_begin(void)
{
	int fd;
	snprintf(cap_path, sizeof(cap_path), "%s.stderr", test_dir);
	fflush(stderr);
	assert_true(saved_stderr < 0);
	saved_stderr = dup(STDERR_FILENO);
	fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved_stderr >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

char *log_capture_end(void)
{
	FILE *fp;
	char *s;
	long n;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	fp = fopen(cap_path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = 0;
	fclose(fp);
	unlink(cap_path);
	(void)!write(STDERR_FILENO, s, (size_t)n);
	return s;
}

int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}
