/*
 * Small POSIX file helpers shared by the durable writers (WAL, Delta log, stream registry,
 * status files): write everything or fail, fsync a directory so a new name survives a power
 * cut, create a directory path. Thin wrappers; errno is left as the failing call set it.
 */
#ifndef RN_FS_H
#define RN_FS_H

#include <stddef.h>

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

/* fsyncs the directory `dir`. 0, or -1 with errno set. */
int rn_fsync_dir(const char *dir);

/* Replaces dir/name durably with the concatenation of the n pieces: writes
 * dir/.name.tmp, fsyncs it, renames it over dir/name and fsyncs dir. A crash leaves either
 * the old file or the new one, never a mix. 0, or -1 with errno set (the temp file removed). */
struct rn_fs_piece {
	const void *p;
	size_t len;
};
int rn_write_file_atomic(const char *dir, const char *name, const struct rn_fs_piece *pieces,
			 size_t n);

/* mkdir -p with mode 0755. 0 (also when it exists), or -1 with errno set. */
int rn_mkdir_p(const char *path);

#endif
