/*
 * The I/O-failure VFS; see iofault.h. Every file method is forwarded to the wrapped VFS's
 * file, which lives right after ours in the same allocation (szOsFile covers both); only
 * xWrite, xSync and xTruncate of files and xOpen and xDelete of the VFS can be made to fail.
 * The wrapped VFS's other methods are used as they are, with its pAppData.
 */
#include "iofault.h"

#include <sqlite3.h>
#include <string.h>

#include "buffer_int.h"
#include "rn_err.h"

struct ffile {
	sqlite3_file base;  /* pMethods: ours, or NULL when the wrapped open failed */
	sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
};

static sqlite3_vfs *orig;
static sqlite3_vfs fvfs;

/* What is armed; plain integers: one test thread arms and reads them. */
static struct {
	long nth;     /* the operation that fails, 0 = none */
	long count;   /* operations in `ops` since the last arm */
	unsigned ops; /* RN_IOFAULT_* mask */
	int full;     /* writes fail with SQLITE_FULL */
	int persist;  /* every operation after the nth fails too */
	int fired;
} st;

static int hit(unsigned op)
{
	if (!(st.ops & op))
		return 0;
	st.count++;
	if (st.nth <= 0 || st.count < st.nth || (st.count > st.nth && !st.persist))
		return 0;
	st.fired = 1;
	return 1;
}

static sqlite3_file *real(sqlite3_file *f)
{
	return ((struct ffile *)f)->real;
}

static int f_close(sqlite3_file *f)
{
	return real(f)->pMethods->xClose(real(f));
}

static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return real(f)->pMethods->xRead(real(f), p, n, off);
}

static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (hit(RN_IOFAULT_WRITE))
		return st.full ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	return real(f)->pMethods->xWrite(real(f), p, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	if (hit(RN_IOFAULT_TRUNCATE))
		return SQLITE_IOERR_TRUNCATE;
	return real(f)->pMethods->xTruncate(real(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	if (hit(RN_IOFAULT_SYNC))
		return SQLITE_IOERR_FSYNC;
	return real(f)->pMethods->xSync(real(f), flags);
}

static int f_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return real(f)->pMethods->xFileSize(real(f), size);
}

static int f_lock(sqlite3_file *f, int lock)
{
	return real(f)->pMethods->xLock(real(f), lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
	return real(f)->pMethods->xUnlock(real(f), lock);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
	return real(f)->pMethods->xCheckReservedLock(real(f), out);
}

static int f_control(sqlite3_file *f, int op, void *arg)
{
	return real(f)->pMethods->xFileControl(real(f), op, arg);
}

static int f_sector(sqlite3_file *f)
{
	return real(f)->pMethods->xSectorSize(real(f));
}

static int f_device(sqlite3_file *f)
{
	return real(f)->pMethods->xDeviceCharacteristics(real(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return real(f)->pMethods->xShmMap(real(f), pg, pgsz, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return real(f)->pMethods->xShmLock(real(f), off, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
	real(f)->pMethods->xShmBarrier(real(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
	return real(f)->pMethods->xShmUnmap(real(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return real(f)->pMethods->xFetch(real(f), off, n, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real(f)->pMethods->xUnfetch(real(f), off, p);
}

static const sqlite3_io_methods methods = {
	.iVersion = 3,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_size,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check_reserved,
	.xFileControl = f_control,
	.xSectorSize = f_sector,
	.xDeviceCharacteristics = f_device,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *oflags)
{
	struct ffile *f = (struct ffile *)file;
	int rc;
	(void)vfs;
	f->base.pMethods = NULL;
	f->real = (sqlite3_file *)(f + 1);
	if (hit(RN_IOFAULT_OPEN))
		return SQLITE_CANTOPEN;
	rc = orig->xOpen(orig, name, f->real, flags, oflags);
	/* SQLite closes a file whose pMethods is set, even after a failed open */
	if (f->real->pMethods)
		f->base.pMethods = &methods;
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	if (hit(RN_IOFAULT_DELETE))
		return SQLITE_IOERR_DELETE;
	return orig->xDelete(orig, name, sync_dir);
}

int rn_buffer_iofault_install(void)
{
	if (orig)
		return 0;
	rn_buffer__init(); /* before sqlite3_vfs_find initializes SQLite */
	if (!(orig = sqlite3_vfs_find(NULL)))
		return RN_EBUFFER;
	if (orig->iVersion < 3 || orig->szOsFile < 0) {
		orig = NULL;
		return RN_EBUFFER;
	}
	fvfs = *orig;
	fvfs.szOsFile = (int)sizeof(struct ffile) + orig->szOsFile;
	fvfs.zName = "rn-iofault";
	fvfs.pNext = NULL;
	fvfs.xOpen = v_open;
	fvfs.xDelete = v_delete;
	if (sqlite3_vfs_register(&fvfs, 1) != SQLITE_OK) {
		orig = NULL;
		return RN_EBUFFER;
	}
	return 0;
}

void rn_buffer_iofault_arm(long nth, unsigned ops, int full, int persist)
{
	memset(&st, 0, sizeof(st));
	st.nth = nth;
	st.ops = ops;
	st.full = full;
	st.persist = persist;
}

long rn_buffer_iofault_count(void)
{
	return st.count;
}

int rn_buffer_iofault_fired(void)
{
	return st.fired;
}
