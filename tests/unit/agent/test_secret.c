/*
 * Unit tests for secret files (agent/secret.c) and the plugin file rule
 * (rn_plugin_check_stat in agent/plugin_load.c): what is refused (modes, file types, empty,
 * multi-line, too long) and that a refused secret leaves nothing behind in the buffer.
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

#include "plugin.h"
#include "rn_err.h"
#include "secret.h"
#include "testutil.h"

static char dir[256];
static char path[300], err[600], out[64];

static void put(const char *content, size_t len, mode_t mode)
{
	FILE *f;
	unlink(path);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int rd(void)
{
	return rn_secret_read("uplink.client_secret_file", path, out, sizeof(out), err,
			      sizeof(err));
}

static void test_read(void **state)
{
	(void)state;
	put("s3cret\n", 7, 0600);
	assert_int_equal(rd(), 0);
	assert_string_equal(out, "s3cret");
	put("s3cret\r\n", 8, 0400);
	assert_int_equal(rd(), 0);
	assert_string_equal(out, "s3cret");
	put("s3cret", 6, 0600);
	assert_int_equal(rd(), 0);
	assert_string_equal(out, "s3cret");
	/* exactly cap - 1 bytes fit, one more does not */
	char big[80];
	memset(big, 'x', sizeof(big));
	put(big, sizeof(out) - 1, 0600);
	assert_int_equal(rd(), 0);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	put(big, sizeof(out), 0600);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, "longer than"));
	assert_string_equal(out, "");
}

static void test_refused(void **state)
{
	(void)state;
	char want[400];
	put("s3cret\n", 7, 0640);
	assert_int_equal(rd(), RN_ECONFIG);
	snprintf(want, sizeof(want),
		 "uplink.client_secret_file %s: mode 0640 is too open (the group may read "
		 "it): refused; chmod 600 it",
		 path);
	assert_string_equal(err, want);
	assert_null(strstr(err, "s3cret"));
	assert_string_equal(out, "");
	put("s3cret\n", 7, 0604);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, "mode 0604 is too open (every user may read it)"));
	put("s3cret\n", 7, 0620); /* group-writable: as bad */
	assert_int_equal(rd(), RN_ECONFIG);
	put("", 0, 0600);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, ": empty"));
	put("\n", 1, 0600);
	assert_int_equal(rd(), RN_ECONFIG);
	put("two\nlines\n", 10, 0600);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, "a control character at byte 3"));
	assert_string_equal(out, "");
	/* not a regular file: a directory, a FIFO (must not hang), a missing file */
	assert_int_equal(
		rn_secret_read("uplink.token_file", dir, out, sizeof(out), err, sizeof(err)),
		RN_ECONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
	assert_int_equal(rd(), RN_ECONFIG);
	assert_non_null(strstr(err, "cannot open it"));
}

static void test_plugin_rule(void **state)
{
	(void)state;
	struct stat st = {.st_mode = S_IFREG | 0755, .st_uid = 0};
	assert_int_equal(rn_plugin_check_stat("plugin", "/p/x.so", &st, 1000, err, sizeof(err)), 0);
	st.st_uid = 1000; /* the agent's own user */
	assert_int_equal(rn_plugin_check_stat("plugin", "/p/x.so", &st, 1000, err, sizeof(err)), 0);
	st.st_uid = 1001;
	assert_int_equal(rn_plugin_check_stat("plugin", "/p/x.so", &st, 1000, err, sizeof(err)),
			 RN_ECONFIG);
	assert_string_equal(err, "plugin /p/x.so is owned by uid 1001, not by root or the "
				 "agent's user (uid 1000): refused");
	st.st_uid = 0;
	st.st_mode = S_IFDIR | 0775;
	assert_int_equal(rn_plugin_check_stat("plugin_dir", "/p", &st, 0, err, sizeof(err)),
			 RN_ECONFIG);
	assert_string_equal(err, "plugin_dir /p is group-writable (mode 0775): refused (chmod "
				 "go-w it)");
	st.st_mode = S_IFDIR | 01777;
	assert_int_equal(rn_plugin_check_stat("plugin_dir", "/p", &st, 0, err, sizeof(err)),
			 RN_ECONFIG);
	assert_non_null(strstr(err, "world-writable (mode 1777)"));
}

static int setup(void **state)
{
	(void)state;
	if (rn_test_tmpdir(dir, sizeof(dir), "secret"))
		return -1;
	rn_test_path(path, sizeof(path), dir, "secret");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_plugin_rule),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
