/*
 * The logger: one line per event, "<time> <level> <component>: <message>", on stderr or in a
 * log file (rn_log_set_file). It is the one mutable global besides the frozen config; level,
 * prefix and file are set by the main thread (at start and on reload). Thread-safe: one
 * write(2) per line, and a file is switched or reopened with dup2(2) onto the descriptor the
 * writers use, so a line goes wholly to the old file or wholly to the new one.
 */
#ifndef RN_LOG_H
#define RN_LOG_H

#include <stddef.h>
#include <stdint.h>

enum rn_log_level { RN_LOG_ERROR = 0, RN_LOG_WARN, RN_LOG_INFO, RN_LOG_DEBUG };

void rn_log_set_level(enum rn_log_level lvl);
void rn_log_set_program(const char *name);
enum rn_log_level rn_log_get_level(void);

/*
 * Logs to `path` (opened O_APPEND|O_CREAT, mode 0640) from now on; NULL or "" = back to
 * stderr. Calling it again with the same path reopens the file: what logrotate's postrotate
 * wants after it renamed the old one. From one thread at a time (the main loop). 0, or
 * RN_EIO (errno set) when the file cannot be opened, RN_EINVAL for a path over 4095 bytes:
 * logging then goes on where it went.
 */
int rn_log_set_file(const char *path);
/* Reopens the current log file (rn_log_set_file with its path); 0 when logging to stderr. */
int rn_log_reopen(void);

/*
 * A sink that also gets every warning and error line (lvl RN_LOG_WARN or RN_LOG_ERROR) once
 * it is written: the time (unix ms), the level and the message with its component
 * ("<component>: <message>", no newline, len bytes). Called on the thread that logged, so
 * fn must be thread-safe and must not log. Set before threads that log start and cleared
 * (NULL) after they are gone: the pair is not swapped atomically.
 */
typedef void (*rn_log_sink_fn)(void *ctx, enum rn_log_level lvl, int64_t t_ms, const char *msg,
			       size_t len);
void rn_log_set_sink(rn_log_sink_fn fn, void *ctx);

void rn_log(enum rn_log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define rn_log_error(c, ...) rn_log(RN_LOG_ERROR, c, __VA_ARGS__)
#define rn_log_warn(c, ...) rn_log(RN_LOG_WARN, c, __VA_ARGS__)
#define rn_log_info(c, ...) rn_log(RN_LOG_INFO, c, __VA_ARGS__)
#define rn_log_debug(c, ...)                                                                       \
	do {                                                                                       \
		if (rn_log_get_level() >= RN_LOG_DEBUG)                                            \
			rn_log(RN_LOG_DEBUG, c, __VA_ARGS__);                                      \
	} while (0)

#endif
