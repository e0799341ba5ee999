/*
 * Unit tests for the S3 client object (server/store/s3.c) where no store is needed:
 * configuration checks, where credentials come from (config, then AWS_* environment, then a
 * shared credentials file and its profile), that neither a configuration error nor a failed
 * request's error text carries the secret (a refused connection on 127.0.0.1:1, retried),
 * what rn_s3_maybe_applied says after a refused connection and after a request sent and
 * never answered, and every allocation of rn_s3_create failing in turn. The requests themselves are
 * tested against a real store in tests/integration/s3_probe.test.mjs.
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "s3.h"

#define SECRET "TopSecret-9f8e7d"

static char credfile[512];

static int setup(void **state)
{
	const char *base = getenv("RN_TEST_TMP");
	FILE *f;
	(void)state;
	snprintf(credfile, sizeof(credfile), "%s/test_s3_credentials.%d", base ? base : "/tmp",
		 (int)getpid());
	f = fopen(credfile, "w");
	if (!f) {
		/* the test tmp dir may not exist yet */
		snprintf(credfile, sizeof(credfile), "/tmp/test_s3_credentials.%d", (int)getpid());
		f = fopen(credfile, "w");
	}
	assert_non_null(f);
	fputs("# a comment\n[default]\naws_access_key_id = FILEAK\naws_secret_access_key = " SECRET
	      "\n\n"
	      "[other]\naws_access_key_id=OTHERAK\naws_secret_access_key=" SECRET
	      "\naws_session_token = tok\n"
	      "[nosecret]\naws_access_key_id = LONELY\n",
	      f);
	fclose(f);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(credfile);
	return 0;
}

static void test_config_checks(void **state)
{
	struct rn_s3_config c = {.endpoint = "http://127.0.0.1:7480",
				 .bucket = "b",
				 .access_key = "A",
				 .secret_key = SECRET};
	struct rn_s3 *s = (struct rn_s3 *)&c; /* must be cleared on failure */
	char err[256];
	(void)state;
	c.endpoint = NULL;
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_EINVAL);
	assert_null(s);
	c.endpoint = "ftp://127.0.0.1";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_EINVAL);
	assert_non_null(strstr(err, "not http:// or https://"));
	c.endpoint = "http://127.0.0.1:7480/base";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_EINVAL);
	c.endpoint = "http://127.0.0.1:7480/";
	c.bucket = "a/b";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_EINVAL);
	c.bucket = "b";
	c.part_size = 1 << 20;
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_EINVAL);
	assert_non_null(strstr(err, "5 MiB"));
	c.part_size = 0;
	assert_int_equal(rn_s3_create(&c, &s, NULL, 0),
			 0); /* a trailing '/' is fine; no err buffer */
	assert_string_equal(rn_s3_access_key(s), "A");
	assert_string_equal(rn_s3_errmsg(s), "");
	rn_s3_destroy(s);
	rn_s3_destroy(NULL);
}

static void test_credentials_sources(void **state)
{
	struct rn_s3_config c = {
		.endpoint = "https://s3.example.com", .bucket = "b", .virtual_host = 1};
	struct rn_s3 *s;
	char err[512];
	(void)state;
	/* nothing anywhere */
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "no S3 credentials"));
	/* the shared file by AWS_SHARED_CREDENTIALS_FILE, its default profile */
	setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), 0);
	assert_string_equal(rn_s3_access_key(s), "FILEAK");
	rn_s3_destroy(s);
	/* AWS_PROFILE, then the configured profile over it */
	setenv("AWS_PROFILE", "other", 1);
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), 0);
	assert_string_equal(rn_s3_access_key(s), "OTHERAK");
	rn_s3_destroy(s);
	c.profile = "default";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), 0);
	assert_string_equal(rn_s3_access_key(s), "FILEAK");
	rn_s3_destroy(s);
	/* a profile without a secret, a missing profile, a missing file: errors without secrets */
	c.profile = "nosecret";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "[nosecret]"));
	c.profile = "absent";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_ECONFIG);
	assert_null(strstr(err, SECRET));
	c.profile = NULL;
	c.credentials_file = "/nonexistent/credentials";
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/credentials"));
	/* the environment's keys come before any file */
	setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), 0);
	assert_string_equal(rn_s3_access_key(s), "ENVAK");
	rn_s3_destroy(s);
	/* and configured keys before the environment */
	c.access_key = "CFGAK";
	c.secret_key = SECRET;
	assert_int_equal(rn_s3_create(&c, &s, err, sizeof(err)), 0);
	assert_string_equal(rn_s3_access_key(s), "CFGAK");
	rn_s3_destroy(s);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

static void test_failed_request_hides_secret(void **state)
{
	struct rn_s3_config c = {.endpoint = "http://127.0.0.1:1",
				 .bucket = "b",
				 .access_key = "AK",
				 .secret_key = SECRET,
				 .session_token = "SessionTok-1234",
				 .max_attempts = 3,
				 .backoff_ms = 1,
				 .connect_timeout_ms = 2000};
	struct rn_s3 *s;
	struct rn_s3_stats st;
	struct rn_buf b = {0};
	int64_t size;
	(void)state;
	assert_int_equal(rn_s3_create(&c, &s, NULL, 0), 0);
	assert_int_equal(rn_s3_put(s, "k", "v", 1), RN_ECONNECT);
	assert_non_null(strstr(rn_s3_errmsg(s), "PUT b/k: "));
	assert_null(strstr(rn_s3_errmsg(s), SECRET));
	assert_null(strstr(rn_s3_errmsg(s), "SessionTok"));
	rn_s3_stats(s, &st);
	assert_int_equal(st.requests, 3); /* retried: nothing was sent, so safe */
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.failures, 1);
	assert_int_equal(rn_s3_status(s), 0);
	assert_int_equal(rn_s3_get(s, "k", 0, -1, &b), RN_ECONNECT);
	assert_int_equal(rn_s3_head(s, "k", &size), RN_ECONNECT);
	assert_null(strstr(rn_s3_errmsg(s), SECRET));
	/* arguments checked before any request */
	assert_int_equal(rn_s3_put(s, "", "v", 1), RN_EINVAL);
	assert_int_equal(rn_s3_get(s, "k", 0, 0, &b), RN_EINVAL);
	assert_int_equal(rn_s3_mpu_part(s, "k", "id", 0, "v", 1, (char[8]){0}, 8), RN_EINVAL);
	assert_int_equal(rn_s3_put_file(s, "k", "/nonexistent/file"), RN_EIO);
	assert_non_null(strstr(rn_s3_errmsg(s), "/nonexistent/file"));
	assert_int_equal(rn_s3_get_fd(s, "k", 0, NULL), RN_EINVAL); /* fd 0 is no file here */
	assert_int_equal(rn_s3_get_fd(s, NULL, 5, NULL), RN_EINVAL);
	assert_int_equal(rn_s3_stat(s, NULL, &size, NULL), RN_EINVAL);
	rn_buf_free(&b);
	rn_s3_destroy(s);
}

static void test_maybe_applied(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct rn_s3_config c = {.bucket = "b",
				 .access_key = "AK",
				 .secret_key = SECRET,
				 .max_attempts = 2,
				 .backoff_ms = 1,
				 .timeout_ms = 200};
	struct rn_s3 *s;
	char endpoint[64];
	int64_t size;
	/* a port that takes connections (the kernel's backlog) and never answers */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	(void)state;
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 64), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	/* refused: nothing was sent, so nothing was applied */
	c.endpoint = "http://127.0.0.1:1";
	assert_int_equal(rn_s3_create(&c, &s, NULL, 0), 0);
	assert_int_equal(rn_s3_maybe_applied(s), 0);
	assert_int_equal(rn_s3_put_if_absent(s, "k", "v", 1), RN_ECONNECT);
	assert_int_equal(rn_s3_maybe_applied(s), 0);
	rn_s3_destroy(s);
	/* sent, never answered (a timeout): the store may have applied it */
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
	c.endpoint = endpoint;
	assert_int_equal(rn_s3_create(&c, &s, NULL, 0), 0);
	assert_int_equal(rn_s3_put(s, "k", "v", 1), RN_ECONNECT);
	assert_int_equal(rn_s3_maybe_applied(s), 1);
	assert_int_equal(rn_s3_put_if_absent(s, "k", "v", 1), RN_ECONNECT);
	assert_int_equal(rn_s3_maybe_applied(s), 1);
	assert_non_null(strstr(rn_s3_errmsg(s), "PUT b/k: "));
	/* an operation refused before any request clears it */
	assert_int_equal(rn_s3_put(s, "", "v", 1), RN_EINVAL);
	assert_int_equal(rn_s3_maybe_applied(s), 0);
	assert_int_equal(rn_s3_head(s, "k", &size), RN_ECONNECT);
	rn_s3_destroy(s);
	close(lfd);
}

static void test_create_alloc_failures(void **state)
{
	struct rn_s3_config c = {.endpoint = "http://127.0.0.1:7480",
				 .bucket = "b",
				 .access_key = "AK",
				 .secret_key = SECRET,
				 .session_token = "T",
				 .virtual_host = 1};
	long live = rn_mem_live();
	int done = 0;
	(void)state;
	for (long nth = 1; !done && nth < 100; nth++) {
		struct rn_s3 *s = NULL;
		int rc;
		rn_mem_fail_after(nth);
		rc = rn_s3_create(&c, &s, NULL, 0);
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		rn_s3_destroy(s);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_credentials_sources),
		cmocka_unit_test(test_failed_request_hides_secret),
		cmocka_unit_test(test_maybe_applied),
		cmocka_unit_test(test_create_alloc_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
