/*
 * Line logger to stderr or a file. Formats into a stack buffer and writes it with one
 * write(2) so lines from threads never interleave. Long messages are cut at 1 KiB with a
 * marker. The descriptor written to is `log_fd`: stderr, or the log file's own descriptor,
 * which is never closed once opened; switching files (or back to stderr) dup2s the new target
 * onto it, atomically for concurrent writers.
 */
#include "rn_log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_err.h"

static atomic_int level = RN_LOG_INFO; /* set on the loop (reload), read by every thread */
static const char *program = "runnel";
static atomic_int log_fd = STDERR_FILENO;
static char log_path[4096]; /* the file logged to; "" = stderr (main thread only) */
static rn_log_sink_fn sink; /* warnings and errors also go here (rn_log_set_sink) */
static void *sink_ctx;

void rn_log_set_sink(rn_log_sink_fn fn, void *ctx)
{
	sink_ctx = ctx;
	sink = fn;
}

void rn_log_set_level(enum rn_log_level lvl)
{
	atomic_store_explicit(&level, (int)lvl, memory_order_relaxed);
}

enum rn_log_level rn_log_get_level(void)
{
	return (enum rn_log_level)atomic_load_explicit(&level, memory_order_relaxed);
}

void rn_log_set_program(const char *name)
{
	program = name;
}

void rn_log(enum rn_log_level lvl, const char *component, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[1100];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if ((int)lvl > atomic_load_explicit(&level, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000,
			      program, names[lvl]);
	size_t msg_off = n < 1024 ? n : 1023; /* "<component>: <message>" starts here */
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", component);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, 1024 - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n >= 1024) {
		n = 1023;
		memcpy(line + n - 3, "...", 3);
	}
	line[n++] = '\n';
	(void)!write(atomic_load(&log_fd), line, n);
	if (sink && lvl <= RN_LOG_WARN && msg_off < n - 1)
		sink(sink_ctx, lvl, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		     line + msg_off, n - 1 - msg_off);
}

int rn_log_set_file(const char *path)
{
	int fd = atomic_load(&log_fd), nfd;
	if (!path || !*path) {
		if (fd != STDERR_FILENO)
			(void)!dup3(STDERR_FILENO, fd,
				    O_CLOEXEC); /* it stays: a writer may hold it */
		log_path[0] = 0;
		return 0;
	}
	if (strlen(path) >= sizeof(log_path))
		return RN_EINVAL;
	nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (nfd < 0)
		return RN_EIO;
	if (fd == STDERR_FILENO) {
		atomic_store(&log_fd, nfd);
	} else {
		if (dup3(nfd, fd, O_CLOEXEC) < 0) {
			close(nfd);
			return RN_EIO;
		}
		close(nfd);
	}
	if (log_path != path)
		snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

int rn_log_reopen(void)
{
	return log_path[0] ? rn_log_set_file(log_path) : 0;
}
