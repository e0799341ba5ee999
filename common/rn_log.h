/*
 * The logger: one line per event on stderr, "<time> <level> <component>: <message>". It is
 * the one mutable global besides the frozen config; level and prefix are set once at start.
 * Thread-safe (one write(2) per line).
 */
#ifndef RN_LOG_H
#define RN_LOG_H

enum rn_log_level { RN_LOG_ERROR = 0, RN_LOG_WARN, RN_LOG_INFO, RN_LOG_DEBUG };

void rn_log_set_level(enum rn_log_level lvl);
void rn_log_set_program(const char *name);
enum rn_log_level rn_log_get_level(void);

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
