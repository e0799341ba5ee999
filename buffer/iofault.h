/*
 * A test-only SQLite VFS for the buffer's I/O-failure tests: it wraps SQLite's default VFS
 * ("unix") and makes the Nth write, sync, truncate, delete or open fail the way a failing
 * disk does (SQLITE_IOERR_* or, for writes, SQLITE_FULL as on ENOSPC). It is built as its
 * own library (rn_buffer_iofault) that only tests link, so the agent never carries it; it
 * lives in buffer/ because only buffer/ includes sqlite3.h.
 *
 * Lifetime: installed once per process, before the buffer is opened, and never removed;
 * armed and read by the test's one thread (the counters are plain integers).
 */
#ifndef RN_BUFFER_IOFAULT_H
#define RN_BUFFER_IOFAULT_H

/* Operations the VFS can fail (a mask for rn_buffer_iofault_arm). */
enum {
	RN_IOFAULT_WRITE = 1 << 0,    /* xWrite: SQLITE_IOERR_WRITE, or SQLITE_FULL */
	RN_IOFAULT_SYNC = 1 << 1,     /* xSync: SQLITE_IOERR_FSYNC */
	RN_IOFAULT_TRUNCATE = 1 << 2, /* xTruncate: SQLITE_IOERR_TRUNCATE */
	RN_IOFAULT_DELETE = 1 << 3,   /* xDelete: SQLITE_IOERR_DELETE */
	RN_IOFAULT_OPEN = 1 << 4,     /* xOpen: SQLITE_CANTOPEN */
	RN_IOFAULT_ALL = (1 << 5) - 1
};

/* Registers the VFS as SQLite's default, wrapping the default there was. Idempotent; call
 * it before any database is opened. 0, or RN_EBUFFER if SQLite refuses. */
int rn_buffer_iofault_install(void);

/*
 * Counts the operations in `ops` from now on; the `nth` of them (1 = the next) fails, and
 * with `persist` every one after it too (a disk that stays broken). `full`: a failing write
 * reports SQLITE_FULL (the disk is full) instead of SQLITE_IOERR_WRITE. nth = 0 disarms.
 */
void rn_buffer_iofault_arm(long nth, unsigned ops, int full, int persist);

/* Operations counted since the last arm, and whether the failure happened. */
long rn_buffer_iofault_count(void);
int rn_buffer_iofault_fired(void);

#endif
