/*
 * Secret files (uplink.client_secret_file, uplink.token_file): read once at start, by -n and
 * on each reload, refused like ssh refuses a private key when anyone but the owner could read
 * them or when they are not regular files (a FIFO, a device, a directory). The content is
 * one line; a final newline is dropped; control characters inside are refused (the value goes
 * into a protocol header). The caller owns the output buffer and must never log it.
 * Messages name the file and its mode, never its content.
 */
#ifndef RN_AGENT_SECRET_H
#define RN_AGENT_SECRET_H

#include <stddef.h>

struct stat;

/* The rule on one stat result: a regular file with no group or other permission bits. 0 or
 * RN_ECONFIG with "<what> <path>: ..." in err. Pure. */
int rn_secret_check_stat(const char *what, const char *path, const struct stat *st, char *err,
			 size_t errcap);

/* Reads the secret in `path` into out (NUL-terminated, at most cap - 1 bytes). 0, or
 * RN_ECONFIG with "<what> <path>: ..." in err: cannot open or read it, the check above
 * fails, empty, too long, or a control character inside. */
int rn_secret_read(const char *what, const char *path, char *out, size_t cap, char *err,
		   size_t errcap);

#endif
