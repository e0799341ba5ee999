/*
 * Unit tests for the server config's table store (server/core/store_conf.c), no store needed:
 * the keys mapped into struct rn_tstore_config (the spool's default under data_root), the
 * checks rn_server_conf_check runs (a local or s3:// root, malformed roots and unknown
 * schemes, an s3:// root without endpoint or with half a key pair, no credentials anywhere),
 * the warning for a config file others may read that holds s3_secret_key, -n's store check
 * against a store that refuses connections (valid, "not reachable: bucket not checked"), no
 * secret in any message, and every allocation of the checks failing in turn. The bucket
 * listing against a real store is tests/integration/e2e_s3_table.test.mjs.
 */
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

#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "server_int.h"
#include "tstore.h"

#define SECRET "TopSecret-storeconf-91a7"

static char dir[256];

static struct rn_server_conf s3conf(void)
{
	struct rn_server_conf c;
	memset(&c, 0, sizeof(c));
	c.data_root = "/var/lib/runnel-server";
	c.table_root = "s3://lake/runnel";
	c.s3_endpoint = "http://127.0.0.1:1";
	c.s3_region = "eu-west-1";
	c.s3_access_key = "AK";
	c.s3_secret_key = SECRET;
	c.s3_timeout_ms = 30000;
	c.s3_max_attempts = 5;
	return c;
}

static void no_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_PROFILE");
	setenv("HOME", "/nonexistent", 1); /* no ~/.aws/credentials to fall back on */
}

static void test_mapping(void **state)
{
	struct rn_server_conf c = s3conf();
	struct rn_tstore_config tc;
	char spool[64];
	(void)state;
	c.s3_virtual_host = 1;
	c.s3_session_token = "ST";
	c.s3_credentials_file = "/etc/runnel/creds";
	c.s3_profile = "p";
	rn_server_tstore_config(&c, &tc, spool, sizeof(spool));
	assert_string_equal(tc.s3.endpoint, "http://127.0.0.1:1");
	assert_string_equal(tc.s3.region, "eu-west-1");
	assert_int_equal(tc.s3.virtual_host, 1);
	assert_ptr_equal(tc.s3.access_key, c.s3_access_key);
	assert_ptr_equal(tc.s3.secret_key, c.s3_secret_key);
	assert_ptr_equal(tc.s3.session_token, c.s3_session_token);
	assert_ptr_equal(tc.s3.credentials_file, c.s3_credentials_file);
	assert_ptr_equal(tc.s3.profile, c.s3_profile);
	assert_null(tc.s3.bucket); /* the root's */
	assert_int_equal(tc.s3.timeout_ms, 30000);
	assert_int_equal(tc.s3.max_attempts, 5);
	assert_string_equal(tc.spool_dir, "/var/lib/runnel-server/_spool");
	c.s3_spool_dir = "/srv/spool";
	rn_server_tstore_config(&c, &tc, spool, sizeof(spool));
	assert_string_equal(tc.spool_dir, "/srv/spool");
	/* a data_root too long for the buffer: no spool rather than a cut path */
	c.s3_spool_dir = NULL;
	c.data_root = "/a/very/long/data/root/that/does/not/fit/in/sixty/four/bytes/at/all";
	rn_server_tstore_config(&c, &tc, spool, sizeof(spool));
	assert_null(tc.spool_dir);
	/* the table root */
	assert_string_equal(rn_server_table_root(&c), "s3://lake/runnel");
	c.table_root = NULL;
	assert_string_equal(rn_server_table_root(&c), c.data_root);
}

static void refused(const struct rn_server_conf *c, const char *want)
{
	char err[600];
	assert_int_equal(rn_server__conf_check_store(c, "x.conf", err, sizeof(err)), RN_ECONFIG);
	if (!strstr(err, want) || strncmp(err, "x.conf: ", 8))
		fail_msg("\"%s\" lacks \"%s\"", err, want);
	assert_null(strstr(err, SECRET));
}

static void test_checks(void **state)
{
	struct rn_server_conf c = s3conf();
	char err[600];
	(void)state;
	no_env();
	assert_int_equal(rn_server__conf_check_store(&c, "x.conf", err, sizeof(err)), 0);
	/* local roots: nothing to check here (made at start) */
	c.table_root = NULL;
	c.s3_endpoint = NULL;
	assert_int_equal(rn_server__conf_check_store(&c, "x.conf", err, sizeof(err)), 0);
	c.table_root = "/srv/tables";
	assert_int_equal(rn_server__conf_check_store(&c, "x.conf", err, sizeof(err)), 0);
	c.table_root = "";
	refused(&c, "table_root is empty");
	c.table_root = "gs://bucket/p";
	refused(&c, "table_root gs://bucket/p: unknown scheme");
	c = s3conf();
	c.s3_endpoint = NULL;
	refused(&c, "table_root s3://lake/runnel needs s3_endpoint");
	c = s3conf();
	const char *bad[] = {"s3://", "s3:///p", "s3://lake/runnel/", "s3://lake/a/../b",
			     "s3://lake/a//b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.table_root = (char *)bad[i];
		refused(&c, bad[i]);
	}
	c = s3conf();
	c.s3_secret_key = NULL;
	refused(&c, "s3_access_key and s3_secret_key go together");
	c = s3conf();
	c.s3_access_key = NULL;
	refused(&c, "s3_access_key and s3_secret_key go together");
	/* no key anywhere: refused at start and by -n */
	c.s3_secret_key = NULL;
	assert_int_equal(rn_server__conf_check_store(&c, "x.conf", err, sizeof(err)), RN_ECONFIG);
	assert_non_null(strstr(err, "x.conf: table_root s3://lake/runnel: "));
	/* ...but the environment's are taken */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	assert_int_equal(rn_server__conf_check_store(&c, "x.conf", err, sizeof(err)), 0);
	no_env();
}

/* The log's text while fn(c, file) runs. */
static void logged(const struct rn_server_conf *c, const char *file, char *out, size_t cap)
{
	char logf[300], err[600];
	snprintf(logf, sizeof(logf), "%s/log", dir);
	unlink(logf);
	assert_int_equal(rn_log_set_file(logf), 0);
	assert_int_equal(rn_server__conf_check_store(c, file, err, sizeof(err)), 0);
	assert_int_equal(rn_log_set_file(NULL), 0);
	FILE *f = fopen(logf, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	fclose(f);
}

static void test_secret_mode(void **state)
{
	struct rn_server_conf c = s3conf();
	char file[300], text[2000];
	(void)state;
	snprintf(file, sizeof(file), "%s/server.conf", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("s3_secret_key = \"" SECRET "\";\n", f);
	fclose(f);
	assert_int_equal(chmod(file, 0644), 0);
	logged(&c, file, text, sizeof(text));
	assert_non_null(strstr(text, "holds s3_secret_key and is readable"));
	assert_non_null(strstr(text, "(mode 644)"));
	assert_null(strstr(text, SECRET));
	assert_int_equal(chmod(file, 0600), 0);
	logged(&c, file, text, sizeof(text));
	assert_null(strstr(text, "s3_secret_key"));
	/* group-readable: fine when root owns it (0640 root:runnel), warned otherwise */
	assert_int_equal(chmod(file, 0640), 0);
	logged(&c, file, text, sizeof(text));
	if (geteuid() == 0)
		assert_null(strstr(text, "s3_secret_key"));
	else
		assert_non_null(strstr(text, "(mode 640)"));
	/* no secret in the config: no warning whatever the mode */
	assert_int_equal(chmod(file, 0644), 0);
	c.s3_secret_key = NULL;
	c.s3_access_key = NULL;
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	logged(&c, file, text, sizeof(text));
	assert_null(strstr(text, "s3_secret_key"));
	no_env();
	unlink(file);
}

static void test_check_store(void **state)
{
	struct rn_server_conf c = s3conf();
	char msg[600];
	(void)state;
	no_env();
	/* a store that refuses connections: valid, said so, the bucket not checked */
	assert_int_equal(rn_server_check_store(&c, "x.conf", msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "table_root s3://lake/runnel: well formed"));
	assert_non_null(strstr(msg, "http://127.0.0.1:1 is not reachable"));
	assert_non_null(strstr(msg, "bucket not checked"));
	assert_null(strstr(msg, SECRET));
	/* a local root */
	c.table_root = NULL;
	assert_int_equal(rn_server_check_store(&c, "x.conf", msg, sizeof(msg)), 0);
	assert_string_equal(msg, "table_root /var/lib/runnel-server: a local directory (made at "
				 "start)");
	/* no credentials: refused with the file's name */
	c = s3conf();
	c.s3_access_key = c.s3_secret_key = NULL;
	assert_int_equal(rn_server_check_store(&c, "x.conf", msg, sizeof(msg)), RN_ECONFIG);
	assert_non_null(strstr(msg, "x.conf: table_root s3://lake/runnel"));
}

static void test_alloc_failures(void **state)
{
	struct rn_server_conf c = s3conf();
	long live = rn_mem_live();
	int done = 0;
	(void)state;
	no_env();
	for (long nth = 1; !done && nth < 200; nth++) {
		char err[600];
		rn_mem_fail_after(nth);
		int rc = rn_server__conf_check_store(&c, "x.conf", err, sizeof(err));
		done = !rn_mem_fail_disarm();
		assert_int_equal(rc, done ? 0 : RN_ENOMEM);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
	done = 0;
	for (long nth = 1; !done && nth < 200; nth++) {
		char msg[600];
		rn_mem_fail_after(nth);
		int rc = rn_server_check_store(&c, "x.conf", msg, sizeof(msg));
		done = !rn_mem_fail_disarm();
		/* the listing's allocations fail as an unreachable store would not: RN_ECONFIG
		 * (listing failed) is also a clean answer, never a crash or a leak */
		assert_true(rc == 0 || rc == RN_ENOMEM || rc == RN_ECONFIG);
		assert_int_equal(rn_mem_live(), live);
	}
	assert_true(done);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/test_store_conf.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char p[300];
	(void)state;
	snprintf(p, sizeof(p), "%s/log", dir);
	unlink(p);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),        cmocka_unit_test(test_checks),
		cmocka_unit_test(test_secret_mode),    cmocka_unit_test(test_check_store),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
