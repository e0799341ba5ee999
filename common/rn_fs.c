/*
 * File helpers and the durable writers' I/O seam with its failure hook; see rn_fs.h. The
 * only global state is the hook's atomics below.
 */
#include "rn_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int armed;      /* 0: the fast path, nothing else is read */
static atomic_long countdown; /* matching calls until the failure (1 = the next) */
static atomic_int fail_errno;
static atomic_uint fail_ops;
static atomic_int failing; /* RN_FS_PERSIST: the failure fired, later calls fail too */
static atomic_long calls, injected;

void rn_fs_fail_after(long nth, int err, unsigned ops)
{
	atomic_store(&armed, 0);
	atomic_store(&failing, 0);
	atomic_store(&countdown, nth);
	atomic_store(&fail_errno, err);
	atomic_store(&fail_ops, ops);
	atomic_store(&armed, nth > 0);
}

long rn_fs_calls(void)
{
	return atomic_load(&calls);
}

long rn_fs_injected(void)
{
	return atomic_load(&injected);
}

/* 1 (errno set) when this call of kind `op` is to fail. */
static int inject(unsigned op)
{
	atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
	if (__builtin_expect(!atomic_load_explicit(&armed, memory_order_relaxed), 1))
		return 0;
	unsigned ops = atomic_load(&fail_ops);
	if (!(ops & op))
		return 0;
	if (!atomic_load(&failing) && atomic_fetch_sub(&countdown, 1) != 1)
		return 0;
	if (ops & RN_FS_PERSIST)
		atomic_store(&failing, 1);
	else
		atomic_store(&armed, 0);
	atomic_fetch_add(&injected, 1);
	errno = atomic_load(&fail_errno);
	return 1;
}

int rn_fs_open(const char *path, int flags, mode_t mode)
{
	return inject(RN_FS_OPEN) ? -1 : open(path, flags, mode);
}

ssize_t rn_fs_write(int fd, const void *p, size_t len)
{
	return inject(RN_FS_WRITE) ? -1 : write(fd, p, len);
}

int rn_fs_fsync(int fd)
{
	return inject(RN_FS_FSYNC) ? -1 : fsync(fd);
}

int rn_fs_fdatasync(int fd)
{
	return inject(RN_FS_FSYNC) ? -1 : fdatasync(fd);
}

int rn_fs_rename(const char *from, const char *to)
{
	return inject(RN_FS_RENAME) ? -1 : rename(from, to);
}

int rn_fs_link(const char *from, const char *to)
{
	return inject(RN_FS_LINK) ? -1 : link(from, to);
}

int rn_fs_unlink(const char *path)
{
	return inject(RN_FS_UNLINK) ? -1 : unlink(path);
}

int rn_fs_ftruncate(int fd, off_t len)
{
	return inject(RN_FS_TRUNCATE) ? -1 : ftruncate(fd, len);
}

int rn_fs_truncate(const char *path, off_t len)
{
	return inject(RN_FS_TRUNCATE) ? -1 : truncate(path, len);
}

int rn_write_all(int fd, const void *vp, size_t len)
{
	const char *p = vp;
	while (len) {
		ssize_t n = rn_fs_write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#define DIRECT_ALIGN 4096u /* covers 512- and 4096-byte logical blocks */
#define BOUNCE_BYTES ((size_t)1 << 20)

/* reachable until exit on the main thread; other threads free it (rn_fs_thread_release) */
static _Thread_local uint8_t *bounce;

void rn_fs_thread_release(void)
{
	free(bounce);
	bounce = NULL;
}

static int set_direct(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT);
}

int rn_write_new_file(int fd, const void *vp, size_t len)
{
	const uint8_t *p = vp;
	size_t bulk = len & ~(size_t)(DIRECT_ALIGN - 1);

	if (bulk && !bounce) {
		void *b = NULL;
		if (posix_memalign(&b, DIRECT_ALIGN, BOUNCE_BYTES) == 0)
			bounce = b;
	}
	if (bulk && bounce && set_direct(fd, 1) == 0) {
		while (bulk) {
			size_t n = bulk < BOUNCE_BYTES ? bulk : BOUNCE_BYTES;
			ssize_t w;
			memcpy(bounce, p, n);
			do
				w = rn_fs_write(fd, bounce, n);
			while (w < 0 && errno == EINTR);
			if (w < 0 && errno == EINVAL)
				break; /* accepted the flag, refuses the I/O: the rest goes plainly
					*/
			if (w < 0)
				return -1;
			/* a short direct write stops at a block boundary or at the end of space;
			 * what is left goes through the plain path below */
			p += w;
			len -= (size_t)w;
			bulk -= (size_t)w;
			if ((size_t)w < n)
				break;
		}
		if (set_direct(fd, 0))
			return -1;
	}
	return rn_write_all(fd, p, len);
}

int rn_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = rn_fs_fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int rn_write_file_atomic(const char *dir, const char *name, const struct rn_fs_piece *pieces,
			 size_t n)
{
	char path[4096], tmp[4200];
	int fd, rc = 0, e;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	if ((fd = rn_fs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		return -1;
	for (size_t i = 0; i < n && !rc; i++)
		rc = rn_write_all(fd, pieces[i].p, pieces[i].len);
	if (!rc)
		rc = rn_fs_fsync(fd);
	e = errno;
	close(fd);
	if (!rc && (rn_fs_rename(tmp, path) || rn_fsync_dir(dir)))
		rc = -1, e = errno;
	if (rc) {
		rn_fs_unlink(tmp);
		errno = e;
	}
	return rc;
}

int rn_mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0750) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) && errno != EEXIST ? -1 : 0;
}
