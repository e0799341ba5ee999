/*
 * What the probe programs of the e2e tests (s3_probe.c, tstore_probe.c, delta_race.c) share:
 * printing a JSON string to stdout for their one-line verdicts, and reading an integer knob
 * from the environment. Header-only: each probe is one file linked against the libraries it
 * probes, nothing else.
 */
#ifndef RN_TESTS_PROBE_UTIL_H
#define RN_TESTS_PROBE_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* Prints s (NULL = "") as a JSON string: quotes, backslashes and control bytes escaped. */
static inline void probe_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* The environment variable `name` as an int, or def when unset or empty. */
static inline int probe_envint(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

#endif
