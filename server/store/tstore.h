/*
 * The table store: where one Delta table's files live, as keys relative to the table's root.
 * Two backends behind one interface: a local directory (the embedded default; `tstore_fs.c`)
 * and a prefix of an S3-compatible bucket (`tstore_s3.c`, over s3.h). The Delta code
 * (server/delta/) reads and writes a table only through this interface, so the same log
 * core, checkpoints, compaction and vacuum run on both.
 *
 * Keys: relative to the root, '/'-separated, no leading '/', no "." or ".." component, no
 * empty component, at most RN_TSTORE_KEY_MAX bytes ("_delta_log/00000000000000000007.json",
 * "day=2026-01-02/part-00001-<uuid>.zstd.parquet"). A bad key is RN_EINVAL.
 *
 * Durability: when rn_tstore_put or rn_tstore_put_new returns 0 the object survives a crash
 * or power cut of this machine (fs: temp file, fsync, rename or link, fsync of the directory,
 * new parent directories fsynced too; S3: the store answered 200). A delete need not be
 * durable: a deleted object may come back after a crash (its deleter runs again).
 *
 * Errors: 0 or a negative rn_err code; the detail of the last failure is rn_tstore_errmsg.
 * RN_ENOTFOUND (no such key), RN_EEXIST (put_new: the key exists), RN_EINVAL (bad key or
 * root), RN_ENOSPC, RN_ECONNECT (store unreachable after retries), RN_EIO (anything else,
 * including an outcome that stayed unknown), RN_ENOMEM.
 *
 * Threads: a store object is used by one thread at a time (an S3 store holds one curl
 * handle). Every thread that works on a table opens its own object on the same root.
 */
#ifndef RN_STORE_TSTORE_H
#define RN_STORE_TSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"
#include "s3.h"

#define RN_TSTORE_KEY_MAX 1024

struct rn_tstore;

/* Settings shared by every table of a server. A zeroed struct is valid for local roots. */
struct rn_tstore_config {
	/* For s3:// roots: endpoint, region, path style or virtual host, credentials, timeouts,
	 * retries and multipart sizes. The bucket comes from the root, not from here. */
	struct rn_s3_config s3;
	/* A local directory for scratch files (rn_tstore_map of an S3 object downloads into an
	 * unlinked file here); NULL = $TMPDIR or /tmp. */
	const char *spool_dir;
};

/* One object of a listing. */
struct rn_tstore_entry {
	const char *key;  /* relative to the root; valid during the callback only */
	int64_t size;     /* bytes */
	int64_t mtime_ms; /* last modification, Unix ms (S3: LastModified) */
};

/* Opens the store of the table at `root`: a local directory path ("/var/lib/runnel/tables/
 * a/b/c") or "s3://bucket/prefix/a/b/c" (a prefix without trailing '/'). Opening does no
 * I/O beyond what the backend needs to check its settings (an s3 root finds its
 * credentials); a root whose table does not exist yet is fine. 0, RN_EINVAL (malformed root),
 * RN_ECONFIG (s3: no credentials), RN_ENOMEM; err (errcap bytes) gets the reason. */
int rn_tstore_open(struct rn_tstore **out, const char *root, const struct rn_tstore_config *cfg,
		   char *err, size_t errcap);
void rn_tstore_close(struct rn_tstore *st);

/* The root as given to rn_tstore_open (for messages). */
const char *rn_tstore_root(const struct rn_tstore *st);
/* The local directory of an fs store; NULL for S3. */
const char *rn_tstore_local_dir(const struct rn_tstore *st);
/* The last failure's detail ("" after success); never holds a credential. */
const char *rn_tstore_errmsg(const struct rn_tstore *st);

/* Writes p[0..len) as key durably, replacing an object of that key. */
int rn_tstore_put(struct rn_tstore *st, const char *key, const void *p, size_t len);
/* Writes p[0..len) as key durably only if no object has that key: 0 (ours) or RN_EEXIST
 * (another writer's). A commit must never be taken twice or lost: when the outcome of an
 * attempt is unknown the backend settles it (S3: reads the object back and compares, see
 * s3.h) or returns RN_EIO, after which the caller re-reads the log before deciding. */
int rn_tstore_put_new(struct rn_tstore *st, const char *key, const void *p, size_t len);
/* Appends bytes [off, off+len) of key to out (len < 0: to the end). */
int rn_tstore_get(struct rn_tstore *st, const char *key, int64_t off, int64_t len,
		  struct rn_buf *out);
/* Size and modification time of key (e->key points at the argument). */
int rn_tstore_stat(struct rn_tstore *st, const char *key, struct rn_tstore_entry *e);
/* Deletes key; a key that does not exist is not an error. */
int rn_tstore_delete(struct rn_tstore *st, const char *key);

/* Calls fn for every object whose key starts with dir + "/" (dir NULL or "": the whole
 * table), in ascending byte order of keys; recursive = 0 lists only keys with no further '/'
 * after the prefix. Scratch names of the fs backend (dot-prefixed temp files) are not listed.
 * A nonzero return from fn stops the listing and is returned. */
typedef int (*rn_tstore_list_fn)(void *ctx, const struct rn_tstore_entry *e);
int rn_tstore_list(struct rn_tstore *st, const char *dir, int recursive, rn_tstore_list_fn fn,
		   void *ctx);

/* A read-only view of a whole object, for readers that need random access to big files
 * (compaction, verify): fs mmaps the file; S3 downloads it into an unlinked spool file and
 * mmaps that, so memory stays bounded by the page cache, not the object. */
struct rn_tstore_map {
	const uint8_t *data;
	size_t len;
	void *priv_; /* the backend's */
	size_t maplen_;
};
int rn_tstore_map(struct rn_tstore *st, const char *key, struct rn_tstore_map *m);
void rn_tstore_unmap(struct rn_tstore_map *m);

#endif
