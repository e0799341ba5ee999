/*
 * Line logger to stderr. Formats into a stack buffer and writes it with one write(2) so lines
 * from threads never interleave. Long messages are cut at 1 KiB with a marker.
 */
#include "rn_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum rn_log_level level = RN_LOG_INFO;
static const char *program = "runnel";

void rn_log_set_level(enum rn_log_level lvl)
{
	level = lvl;
}

enum rn_log_level rn_log_get_level(void)
{
	return level;
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

	if (lvl > level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
			      ".%03ldZ %s %s %s: ", ts.tv_nsec / 1000000, program, names[lvl],
			      component);
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
	(void)!write(STDERR_FILENO, line, n);
}
