/*
 * UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). Used to
 * decide whether a payload lands in the STRING or the BINARY column. Pure function.
 */
#ifndef RN_UTF8_H
#define RN_UTF8_H

#include <stddef.h>

/* 1 if [p, p+len) is valid UTF-8, else 0. */
int rn_utf8_valid(const void *p, size_t len);

#endif
