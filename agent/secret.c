/*
 * Secret files; see secret.h. The file is opened first and checked with fstat on that very
 * descriptor, so the file read is the file checked. Symbolic links are followed (secrets
 * mounted by an orchestrator are links into a private directory); the mode checked is the
 * target's.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_err.h"

int rn_secret_check_stat(const char *what, const char *path, const struct stat *st, char *err,
			 size_t errcap)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errcap, "%s %s: not a regular file (mode %06o): refused", what, path,
			 (unsigned)st->st_mode);
		return RN_ECONFIG;
	}
	if (st->st_mode & 077) {
		snprintf(err, errcap,
			 "%s %s: mode %04o is too open (%s may read it): refused; chmod 600 it",
			 what, path, (unsigned)(st->st_mode & 07777),
			 st->st_mode & 007 ? "every user" : "the group");
		return RN_ECONFIG;
	}
	return 0;
}

int rn_secret_read(const char *what, const char *path, char *out, size_t cap, char *err,
		   size_t errcap)
{
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc = RN_ECONFIG;

	out[0] = 0;
	/* O_NONBLOCK: a FIFO put in place of the file must not hang the agent at open */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errcap, "%s %s: cannot open it: %s", what, path, strerror(errno));
		return RN_ECONFIG;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errcap, "%s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (rn_secret_check_stat(what, path, &st, err, errcap))
		goto out;
	while ((n = read(fd, out + len, cap - 1 - len)) > 0 && (len += (size_t)n) < cap - 1)
		;
	if (n < 0) {
		snprintf(err, errcap, "%s %s: cannot read it: %s", what, path, strerror(errno));
		goto out;
	}
	if (len == cap - 1) {
		char c;
		if (read(fd, &c, 1) > 0) {
			snprintf(err, errcap, "%s %s: longer than %zu bytes", what, path, cap - 2);
			goto out;
		}
	}
	out[len] = 0;
	if (len && out[len - 1] == '\n')
		out[--len] = 0;
	if (len && out[len - 1] == '\r')
		out[--len] = 0;
	if (!len) {
		snprintf(err, errcap, "%s %s: empty", what, path);
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
			snprintf(err, errcap,
				 "%s %s: a control character at byte %zu (one line expected)", what,
				 path, i);
			goto out;
		}
	rc = 0;
out:
	if (rc)
		memset(out, 0, cap);
	close(fd);
	return rc;
}
