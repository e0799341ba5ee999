/*
 * Internals shared by buffer/'s files: the one-time SQLite setup that must run before SQLite
 * initializes (its heap routed through rn_malloc & co.), used by rn_buffer_open and by the
 * test-only I/O-failure VFS, which makes SQLite initialize when it registers.
 */
#ifndef RN_BUFFER_INT_H
#define RN_BUFFER_INT_H

/* Routes SQLite's allocations through rn_malloc & co., once per process (thread-safe). Does
 * nothing (beyond a debug line) if SQLite was initialized before. */
void rn_buffer__init(void);

#endif
