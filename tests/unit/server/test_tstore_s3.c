/*
 * Unit tests for the table store's S3 backend (server/store/tstore_s3.c) where no store is
 * needed: how an s3:// root's settings are refused (RN_ECONFIG), every allocation of opening
 * one failing in turn, bad keys and keys too long for S3 behind the root's prefix refused
 * before any request, a store that refuses connections (RN_ECONNECT from every operation,
 * and from put_new too: nothing was sent), a store that takes the request and never answers
 * (put: RN_ECONNECT; put_new: RN_EIO, its outcome unknown), and map's spool file failing
 * before any request. Everything against a real store is tests/integration/
 * tstore_s3.test.mjs.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "tstore.h"

#define SECRET "TopSecret-tstore-4e3d"

static struct rn_tstore_config base_cfg(const char *endpoint)
{
	struct rn_tstore_config c;
	memset(&c, 0, sizeof(c));
	c.s3.endpoint = endpoint;
	c.s3.access_key = "AK";
	c.s3.secret_key = SECRET;
	c.s3.max_attempts = 2;
	c.s3.backoff_ms = 1;
	c.s3.connect_timeout_ms = 2000;
	return c;
}

static int noop(void *ctx, const struct rn_tstore_entry *e)
{
	(void)ctx, (void)e;
	return 0;
}

static void test_open_settings(void **state)
{
	struct rn_tstore_config c = base_cfg("http://127.0.0.1:7480");
	struct rn_tstore *st = (struct rn_tstore *)&c; /* cleared on failure */
	char err[512];
	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	/* the root's form is tstore.c's: RN_EINVAL */
	assert_int_equal(rn_tstore_open(&st, "s3://", &c, err, sizeof(err)), RN_EINVAL);
	assert_null(st);
	assert_int_equal(rn_tstore_open(&st, "s3://b/p/", &c, err, sizeof(err)), RN_EINVAL);
	/* the settings' faults: RN_ECONFIG, with the reason */
	c.s3.endpoint = NULL;
	assert_int_equal(rn_tstore_open(&st, "s3://b/p", &c, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "endpoint"));
	assert_null(st);
	c.s3.endpoint = "ftp://127.0.0.1";
	assert_int_equal(rn_tstore_open(&st, "s3://b/p", &c, err, sizeof(err)), RN_ECONFIG);
	c.s3.endpoint = "http://127.0.0.1:7480";
	c.s3.part_size = 1 << 20;
	assert_int_equal(rn_tstore_open(&st, "s3://b/p", &c, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "5 MiB"));
	c.s3.part_size = 0;
	c.s3.secret_key = NULL;
	assert_int_equal(rn_tstore_open(&st, "s3://b/p", &c, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "credentials"));
	/* a bucket name in the config is overridden by the root's */
	c.s3.secret_key = SECRET;
	c.s3.bucket = "other";
	assert_int_equal(rn_tstore_open(&st, "s3://b/a/b/c", &c, err, sizeof(err)), 0);
	assert_string_equal(rn_tstore_root(st), "s3://b/a/b/c");
	assert_null(rn_tstore_local_dir(st));
	assert_string_equal(rn_tstore_errmsg(st), "");
	rn_tstore_close(st);
	/* no prefix: the whole bucket; a NULL config is zeroed (no endpoint) */
	c.s3.bucket = NULL;
	assert_int_equal(rn_tstore_open(&st, "s3://b", &c, err, sizeof(err)), 0);
	rn_tstore_close(st);
	assert_int_equal(rn_tstore_open(&st, "s3://b", NULL, err, sizeof(err)), RN_ECONFIG);
	rn_tstore_close(NULL);
}

static void test_open_alloc_failures(void **state)
{
	struct rn_tstore_config c = base_cfg("http://127.0.0.1:7480");
	long live = rn_mem_live();
	int done = 0;
	(void)state;
	for (long nth = 1; !done && nth < 200; nth++) {
		struct rn_tstore *st = NULL;
		char err[256];
		int rc;
		rn_mem_fail_after(nth);
		rc = rn_tstore_open(&st, "s3://bucket/tables/t", &c, err, sizeof(err));
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		assert_true(done || st == NULL);
		rn_tstore_close(st);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
}

/* Every operation of st returns want; the message is set and holds no secret. */
static void all_ops(struct rn_tstore *st, int want, int want_put_new)
{
	struct rn_tstore_entry e;
	struct rn_tstore_map m;
	struct rn_buf b = {0};
	assert_int_equal(rn_tstore_put(st, "k", "v", 1), want);
	assert_non_null(strstr(rn_tstore_errmsg(st), "PUT b/pre/k"));
	assert_null(strstr(rn_tstore_errmsg(st), SECRET));
	assert_int_equal(rn_tstore_put_new(st, "_delta_log/0.json", "v", 1), want_put_new);
	assert_null(strstr(rn_tstore_errmsg(st), SECRET));
	assert_int_equal(rn_tstore_get(st, "k", 0, -1, &b), want);
	assert_int_equal(rn_tstore_get(st, "k", 3, 0, &b), want); /* no bytes: still asks */
	assert_int_equal(b.len, 0);
	assert_int_equal(rn_tstore_stat(st, "k", &e), want);
	assert_int_equal(rn_tstore_delete(st, "k"), want);
	assert_int_equal(rn_tstore_list(st, NULL, 1, noop, NULL), want);
	assert_int_equal(rn_tstore_list(st, "_delta_log", 0, noop, NULL), want);
	assert_int_equal(rn_tstore_map(st, "k", &m), want);
	assert_null(m.data);
	assert_int_equal(m.len, 0);
	assert_true(rn_tstore_errmsg(st)[0] != 0);
	rn_buf_free(&b);
}

static void test_refused(void **state)
{
	struct rn_tstore_config c = base_cfg("http://127.0.0.1:1");
	struct rn_tstore *st;
	(void)state;
	assert_int_equal(rn_tstore_open(&st, "s3://b/pre", &c, NULL, 0), 0);
	/* nothing was sent: put_new's outcome is known (not applied), RN_ECONNECT as for all */
	all_ops(st, RN_ECONNECT, RN_ECONNECT);
	rn_tstore_close(st);
}

/* A port that takes connections (the kernel's backlog) and never reads or answers. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_never_answers(void **state)
{
	struct rn_tstore_config c;
	struct rn_tstore *st;
	char endpoint[64];
	int port, lfd = silent_listener(&port);
	(void)state;
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	c = base_cfg(endpoint);
	c.s3.timeout_ms = 200;
	assert_int_equal(rn_tstore_open(&st, "s3://b/pre", &c, NULL, 0), 0);
	/* sent and never answered: a put may be repeated (RN_ECONNECT), a put_new may have been
	 * applied, so its outcome is unknown: RN_EIO, never 0 or RN_EEXIST */
	all_ops(st, RN_ECONNECT, RN_EIO);
	assert_int_equal(rn_tstore_put_new(st, "_delta_log/1.json", "v", 1), RN_EIO);
	assert_non_null(strstr(rn_tstore_errmsg(st), "outcome unknown"));
	rn_tstore_close(st);
	close(lfd);
}

static void test_keys(void **state)
{
	struct rn_tstore_config c = base_cfg("http://127.0.0.1:1");
	struct rn_tstore *st;
	struct rn_tstore_entry e;
	char key[RN_TSTORE_KEY_MAX + 1];
	const char *prefix = "a-prefix/of/some/length";
	char root[128];
	size_t room = 1024 - strlen(prefix) - 1;
	(void)state;
	snprintf(root, sizeof(root), "s3://b/%s", prefix);
	assert_int_equal(rn_tstore_open(&st, root, &c, NULL, 0), 0);
	/* refused by the front, before the backend */
	assert_int_equal(rn_tstore_put(st, "a//b", "v", 1), RN_EINVAL);
	assert_non_null(strstr(rn_tstore_errmsg(st), "bad key"));
	assert_int_equal(rn_tstore_list(st, "d/", 1, noop, NULL), RN_EINVAL);
	/* allowed by the rules, too long for S3 behind this prefix: refused with no request
	 * (an unreachable store would say RN_ECONNECT) */
	memset(key, 'k', room + 1);
	key[room + 1] = 0;
	assert_int_equal(rn_tstore_put(st, key, "v", 1), RN_EINVAL);
	assert_non_null(strstr(rn_tstore_errmsg(st), "too long for S3"));
	assert_int_equal(rn_tstore_put_new(st, key, "v", 1), RN_EINVAL);
	assert_int_equal(rn_tstore_stat(st, key, &e), RN_EINVAL);
	assert_int_equal(rn_tstore_delete(st, key), RN_EINVAL);
	assert_int_equal(rn_tstore_list(st, key, 1, noop, NULL), RN_EINVAL); /* dir + "/" */
	key[room] = 0; /* fits exactly: goes to the store */
	assert_int_equal(rn_tstore_stat(st, key, &e), RN_ECONNECT);
	key[room - 1] = 0; /* a directory that fits with its '/' */
	assert_int_equal(rn_tstore_list(st, key, 1, noop, NULL), RN_ECONNECT);
	rn_tstore_close(st);
}

static void test_spool_failures(void **state)
{
	struct rn_tstore_config c = base_cfg("http://127.0.0.1:1");
	struct rn_tstore *st;
	struct rn_tstore_map m;
	(void)state;
	c.spool_dir = "/nonexistent/spool";
	assert_int_equal(rn_tstore_open(&st, "s3://b/pre", &c, NULL, 0), 0);
	/* the spool file comes first: its failure is seen before the unreachable store */
	assert_int_equal(rn_tstore_map(st, "k", &m), RN_EIO);
	assert_non_null(strstr(rn_tstore_errmsg(st), "/nonexistent/spool"));
	assert_null(m.data);
	rn_tstore_close(st);
	c.spool_dir = NULL; /* $TMPDIR or /tmp */
	assert_int_equal(rn_tstore_open(&st, "s3://b/pre", &c, NULL, 0), 0);
	rn_fs_fail_after(1, ENOSPC, RN_FS_OPEN);
	assert_int_equal(rn_tstore_map(st, "k", &m), RN_ENOSPC);
	assert_int_equal(rn_fs_injected(), 1);
	rn_fs_fail_after(1, EIO, RN_FS_OPEN);
	assert_int_equal(rn_tstore_map(st, "k", &m), RN_EIO);
	rn_fs_fail_after(0, 0, 0);
	assert_int_equal(rn_tstore_map(st, "k", &m), RN_ECONNECT); /* the spool was fine */
	rn_tstore_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_settings), cmocka_unit_test(test_open_alloc_failures),
		cmocka_unit_test(test_refused),       cmocka_unit_test(test_never_answers),
		cmocka_unit_test(test_keys),          cmocka_unit_test(test_spool_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
