/*
 * Percent-encoding as URLs, query strings and form bodies use it (RFC 3986 2.1; '+' for a
 * space in application/x-www-form-urlencoded). Pure: no I/O, no allocation.
 */
#ifndef RN_URL_H
#define RN_URL_H

#include <stddef.h>

/* The value of hex digit c (either case), or -1. */
int rn_hexval(int c);

/*
 * Percent-decodes src (len bytes) into out (cap bytes, NUL-terminated); `plus` also turns '+'
 * into a space (form and query encoding). Returns the decoded length, or -1 for a bad escape,
 * -2 if it does not fit in cap - 1 bytes (never a truncated result). A decoded NUL is kept:
 * callers that hold the result as a C string check the length against strlen(out).
 */
long rn_url_unescape(const char *src, size_t len, int plus, char *out, size_t cap);

#endif
