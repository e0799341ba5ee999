/*
 * Unit tests for common/rn_sd: notifications reach a real AF_UNIX datagram socket named by
 * NOTIFY_SOCKET (a path and the abstract namespace), nothing is sent and 0 is returned
 * without one, a bad NOTIFY_SOCKET is refused, and WATCHDOG_USEC is honoured only for this
 * process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "rn_err.h"
#include "rn_sd.h"

/* Binds a datagram socket at name (a path, or "@x" abstract) and returns its fd. */
static int listener(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	if (name[0] == '/')
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
			 0);
	return fd;
}

static void expect_message(int fd, const char *prefix)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	if (strncmp(buf, prefix, strlen(prefix)))
		fail_msg("got \"%s\", want it to start with \"%s\"", buf, prefix);
}

static void test_path_socket(void **state)
{
	char path[108];
	const char *tmp = getenv("RN_TEST_TMP");
	int fd;

	snprintf(path, sizeof(path), "%s/sd-%d.sock", tmp ? tmp : "/tmp", (int)getpid());
	if (tmp)
		mkdir(tmp, 0700);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(rn_sd_notify("READY=1"), 0);
	expect_message(fd, "READY=1");
	assert_int_equal(rn_sd_notify_reloading(), 0);
	expect_message(fd, "RELOADING=1\nMONOTONIC_USEC=");
	close(fd);
	unlink(path);
	/* the socket is gone: the send fails, the caller hears RN_EIO */
	assert_int_equal(rn_sd_notify("WATCHDOG=1"), RN_EIO);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@rn-sd-test-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(rn_sd_notify("STOPPING=1"), 0);
	expect_message(fd, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_no_socket(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(rn_sd_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(rn_sd_notify("READY=1"), RN_EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(void **state)
{
	char pid[32];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(rn_sd_watchdog_us(), 0);
	setenv("WATCHDOG_USEC", "20000000", 1);
	assert_int_equal(rn_sd_watchdog_us(), 20000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(rn_sd_watchdog_us(), 20000000);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	assert_int_equal(rn_sd_watchdog_us(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "20s", 1);
	assert_int_equal(rn_sd_watchdog_us(), 0);
	unsetenv("WATCHDOG_USEC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_watchdog),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
