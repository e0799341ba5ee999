/*
 * Small POSIX file helpers shared by the durable writers (WAL, Delta log, stream registry,
 * status files): write everything or fail, fsync a directory so a new name survives a power
 * cut, create a directory path. Thin wrappers; errno is left as the failing call set it.
 *
 * It is also the I/O seam of the server's durable writers: every open for writing, write,
 * fsync/fdatasync, rename, link, unlink and (f)truncate they do goes through rn_fs_* below,
 * so tests can make the Nth such call fail with EIO or ENOSPC (rn_fs_fail_after), the way
 * rn_mem_fail_after fails allocations. Off, the hook costs one relaxed atomic load per call.
 * Thread-safe: the hook state is atomic; tests arm it before threads start.
 */
#ifndef RN_FS_H
#define RN_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Kinds of call the failure hook can be limited to (a bit mask). */
enum rn_fs_op {
	RN_FS_OPEN = 1u << 0,     /* rn_fs_open */
	RN_FS_WRITE = 1u << 1,    /* rn_fs_write, and the writes of rn_write_all/_new_file */
	RN_FS_FSYNC = 1u << 2,    /* rn_fs_fsync, rn_fs_fdatasync, rn_fsync_dir */
	RN_FS_RENAME = 1u << 3,   /* rn_fs_rename */
	RN_FS_LINK = 1u << 4,     /* rn_fs_link */
	RN_FS_UNLINK = 1u << 5,   /* rn_fs_unlink */
	RN_FS_TRUNCATE = 1u << 6, /* rn_fs_ftruncate, rn_fs_truncate */
	RN_FS_ALL = (1u << 7) - 1,
	/* with this bit, every matching call after the failing one fails too (a dead disk)
	 * until the hook is disarmed; without it only the one call fails */
	RN_FS_PERSIST = 1u << 8,
};

/* Test hook: the `nth` call from now (1 = the next one) among the kinds in `ops` fails with
 * errno `err` (EIO, ENOSPC, ...) without doing anything; nth <= 0 disarms. */
void rn_fs_fail_after(long nth, int err, unsigned ops);
/* Calls made through the seam since the start (all kinds); a sweep's operation count. */
long rn_fs_calls(void);
/* Failures injected since the start: a sweep stops once an armed run injected none. */
long rn_fs_injected(void);

/* The seam: the POSIX call of the same name, or -1 with the injected errno. */
int rn_fs_open(const char *path, int flags, mode_t mode);
ssize_t rn_fs_write(int fd, const void *p, size_t len);
int rn_fs_fsync(int fd);
int rn_fs_fdatasync(int fd);
int rn_fs_rename(const char *from, const char *to);
int rn_fs_link(const char *from, const char *to);
int rn_fs_unlink(const char *path);
int rn_fs_ftruncate(int fd, off_t len);
int rn_fs_truncate(const char *path, off_t len);

/* Writes all len bytes (retrying short writes and EINTR). 0, or -1 with errno set. */
int rn_write_all(int fd, const void *p, size_t len);

/*
 * rn_write_all for a new, empty file that will not be read back soon (Parquet data files):
 * the 4 KiB-aligned bulk is written with O_DIRECT through a 1 MiB bounce buffer (one per
 * thread, kept), the tail with a plain write. Direct I/O skips the page cache: no copy
 * into freshly allocated cache pages (on this project's VMs that copy ran at ~300 MB/s
 * and was a quarter of the server's CPU) and no cache evicted for a file nobody reads.
 * Where the file system refuses O_DIRECT everything is written plainly. The caller still
 * fsyncs. 0, or -1 with errno set.
 */
int rn_write_new_file(int fd, const void *p, size_t len);

/* Frees the calling thread's bounce buffer of rn_write_new_file (the next call makes a new
 * one). A worker thread calls it after a job: a thread-local buffer is not freed when its
 * thread exits. */
void rn_fs_thread_release(void);

/* fsyncs the directory `dir`. 0, or -1 with errno set. */
int rn_fsync_dir(const char *dir);

/* Replaces dir/name durably with the concatenation of the n pieces: writes
 * dir/.name.tmp, fsyncs it, renames it over dir/name and fsyncs dir. A crash leaves either
 * the old file or the new one, never a mix. The file is created 0640 (less the umask). 0, or
 * -1 with errno set (the temp file removed). */
struct rn_fs_piece {
	const void *p;
	size_t len;
};
int rn_write_file_atomic(const char *dir, const char *name, const struct rn_fs_piece *pieces,
			 size_t n);

/* mkdir -p with mode 0750 (less the umask). 0 (also when it exists), or -1 with errno set. */
int rn_mkdir_p(const char *path);

#endif
