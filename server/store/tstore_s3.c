/*
 * The table store on S3 (tstore.h): one table's objects under a prefix of one bucket, through
 * one struct rn_s3 (s3.h: signing, connection reuse, retries, the read-back rule of
 * conditional puts). A key maps to "prefix/key" ("key" when the root has no prefix). It owns
 * the mapping of the store's operations onto S3 requests (multipart for big puts, put-if-
 * absent for put_new, ListObjectsV2 pages for listings, a download into an unlinked spool
 * file for map) and of the S3 client's errors onto the store's. It does not retry (s3.c does)
 * and never holds a whole object in memory except what a caller asks for in get or put.
 * Created by rn_tstore_open for an s3:// root, freed by rn_tstore_close; one thread at a time.
 */
/* O_TMPFILE and mkostemp come from _GNU_SOURCE, defined for every target by CMakeLists.txt */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "s3.h"
#include "tstore_int.h"

#define S3_KEY_MAX 1024 /* S3's limit on a whole key, prefix included */

struct s3be {
	struct rn_s3 *s3;
	char *bucket;              /* for messages */
	char *prefix;              /* "" or "a/b" (no trailing '/') */
	char *spool;               /* directory of map's unlinked download files */
	int64_t threshold;         /* put: multipart above this many bytes */
	int64_t part_size;         /* put: bytes per part (the last one fewer) */
	char key[S3_KEY_MAX + 1];  /* scratch: the whole key of the operation at hand */
	char key2[S3_KEY_MAX + 1]; /* scratch: a listing's prefix */
};

static struct s3be *be_of(struct rn_tstore *st)
{
	return st->be;
}

/* Sets be->key to prefix + "/" + key. 0 or RN_EINVAL (longer than S3 allows) with st->err. */
static int full_key(struct rn_tstore *st, const char *key)
{
	struct s3be *be = be_of(st);
	int n = snprintf(be->key, sizeof(be->key), "%s%s%s", be->prefix, *be->prefix ? "/" : "",
			 key);
	if (n < 0 || (size_t)n >= sizeof(be->key))
		return rn_tstore_fail(st, RN_EINVAL,
				      "%s: key \"%.64s\" too long for S3 with the root's prefix "
				      "(%d bytes at most)",
				      st->root, key, S3_KEY_MAX);
	return 0;
}

/* The store's code for the S3 client's rc (key_absent: what 404 means for this operation,
 * RN_ENOTFOUND for a read, else a missing bucket: RN_EIO), with rn_s3_errmsg as the detail. */
static int s3_fail(struct rn_tstore *st, int rc, const char *op, int key_absent)
{
	struct s3be *be = be_of(st);
	const char *msg = rn_s3_errmsg(be->s3);
	int out;

	switch (rc) {
	case RN_ENOTFOUND: out = key_absent; break;
	case RN_ECONNECT:
	case RN_ENOMEM:
	case RN_ENOSPC:
	case RN_EEXIST: out = rc; break;
	default: /* 400, 403, 416 where none is expected, a body that did not parse, ... */
		out = RN_EIO;
		break;
	}
	if (*msg)
		return rn_tstore_fail(st, out, "%s", msg);
	return rn_tstore_fail(st, out, "%s s3://%s/%s: %s", op, be->bucket, be->key,
			      rn_strerror(rc));
}

/* Uploads p[0..len) to be->key in parts (len > 0), aborting the upload on failure. */
static int put_multipart(struct rn_tstore *st, const void *p, size_t len)
{
	struct s3be *be = be_of(st);
	int64_t part = be->part_size, n;
	char id[512], **etags = NULL, saved[sizeof(st->err)];
	int rc;

	/* a bigger part rather than more than S3's 10,000 */
	if ((int64_t)len / part >= RN_S3_MAX_PARTS)
		part = ((int64_t)len + RN_S3_MAX_PARTS - 1) / RN_S3_MAX_PARTS;
	n = ((int64_t)len + part - 1) / part;
	if (!(etags = rn_calloc((size_t)n, sizeof(*etags))))
		return rn_tstore_fail(st, RN_ENOMEM, "%s: out of memory", st->root);
	if ((rc = rn_s3_mpu_create(be->s3, be->key, id, sizeof(id)))) {
		rc = s3_fail(st, rc, "POST", RN_EIO);
		goto out;
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t off = i * part,
			plen = (int64_t)len - off < part ? (int64_t)len - off : part;
		char etag[128];
		if ((rc = rn_s3_mpu_part(be->s3, be->key, id, (int)i + 1, (const char *)p + off,
					 (size_t)plen, etag, sizeof(etag)))) {
			rc = s3_fail(st, rc, "PUT part", RN_EIO);
			goto abort;
		}
		if (!(etags[i] = rn_strdup(etag))) {
			rc = rn_tstore_fail(st, RN_ENOMEM, "%s: out of memory", st->root);
			goto abort;
		}
	}
	if ((rc = rn_s3_mpu_complete(be->s3, be->key, id, etags, (int)n, (int64_t)len)))
		rc = s3_fail(st, rc, "POST", RN_EIO);
	else
		goto out;
abort:
	/* best effort (an orphan upload is removed by the bucket's lifecycle rule); the first
	 * failure's message is the one kept */
	memcpy(saved, st->err, sizeof(saved));
	rn_s3_mpu_abort(be->s3, be->key, id);
	memcpy(st->err, saved, sizeof(saved));
out:
	for (int64_t i = 0; i < n; i++)
		rn_free(etags[i]);
	rn_free(etags);
	return rc;
}

static int s3_put(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	struct s3be *be = be_of(st);
	int rc;

	if ((rc = full_key(st, key)))
		return rc;
	if ((int64_t)len > be->threshold)
		return put_multipart(st, p, len);
	if ((rc = rn_s3_put(be->s3, be->key, p, len)))
		return s3_fail(st, rc, "PUT", RN_EIO);
	return 0;
}

/* One conditional PUT, never multipart: stores ignore If-None-Match on a multipart
 * completion (a commit is small). */
static int s3_put_new(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	struct s3be *be = be_of(st);
	int rc;

	if ((rc = full_key(st, key)))
		return rc;
	rc = rn_s3_put_if_absent(be->s3, be->key, p, len);
	if (rc == 0 || rc == RN_EEXIST)
		return rc;
	if (rn_s3_maybe_applied(be->s3)) { /* the object may be there, ours or not: unknown */
		const char *msg = rn_s3_errmsg(be->s3);
		if (strstr(msg, "outcome unknown")) /* s3.c's read-back failed and said so */
			return rn_tstore_fail(st, RN_EIO, "%s", msg);
		return rn_tstore_fail(st, RN_EIO, "%s (outcome unknown: re-read before deciding)",
				      msg);
	}
	return s3_fail(st, rc, "PUT", RN_EIO);
}

static int s3_stat(struct rn_tstore *st, const char *key, struct rn_tstore_entry *e)
{
	struct s3be *be = be_of(st);
	int64_t size, mtime;
	int rc;

	if ((rc = full_key(st, key)))
		return rc;
	if ((rc = rn_s3_stat(be->s3, be->key, &size, &mtime)))
		return s3_fail(st, rc, "HEAD", RN_ENOTFOUND);
	e->key = key;
	e->size = size;
	e->mtime_ms = mtime;
	return 0;
}

static int s3_get(struct rn_tstore *st, const char *key, int64_t off, int64_t len,
		  struct rn_buf *out)
{
	struct s3be *be = be_of(st);
	struct rn_tstore_entry e;
	int rc;

	if (len == 0) /* no bytes wanted: the key must still exist */
		return s3_stat(st, key, &e);
	if ((rc = full_key(st, key)))
		return rc;
	if (len > 0 && len > INT64_MAX - off)
		len = -1;
	rc = rn_s3_get(be->s3, be->key, off, len, out);
	if (rc == RN_ERANGE) /* 416: the range starts at or past the end; a read there is empty */
		rc = 0;
	return rc ? s3_fail(st, rc, "GET", RN_ENOTFOUND) : 0;
}

static int s3_del(struct rn_tstore *st, const char *key)
{
	struct s3be *be = be_of(st);
	int rc;

	if ((rc = full_key(st, key)))
		return rc;
	if ((rc = rn_s3_delete(be->s3, be->key)))
		return s3_fail(st, rc, "DELETE", RN_EIO);
	return 0;
}

/* Pages through ListObjectsV2 under prefix/dir/, one level (delimiter "/") unless recursive.
 * Checks what the contract promises rather than trusting it: keys ascending in byte order
 * (RN_EIO otherwise) and under the prefix; objects whose names are no valid key (a "dir/"
 * marker some tools create) are skipped. */
static int s3_list(struct rn_tstore *st, const char *dir, int recursive, rn_tstore_list_fn fn,
		   void *ctx)
{
	struct s3be *be = be_of(st);
	size_t root_len = *be->prefix ? strlen(be->prefix) + 1 : 0, plen;
	char *token = NULL, *last = NULL;
	int rc = 0, n;

	n = snprintf(be->key2, sizeof(be->key2), "%s%s%s%s", be->prefix, *be->prefix ? "/" : "",
		     dir ? dir : "", dir ? "/" : "");
	if (n < 0 || (size_t)n >= sizeof(be->key2))
		return rn_tstore_fail(st, RN_EINVAL, "%s: directory \"%.64s\" too long for S3",
				      st->root, dir);
	plen = (size_t)n;
	do {
		struct rn_s3_list l;
		snprintf(be->key, sizeof(be->key), "%s", be->key2); /* for messages */
		rc = rn_s3_list(be->s3, plen ? be->key2 : NULL, recursive ? NULL : "/", token, 0,
				&l);
		rn_free(token);
		token = NULL;
		if (rc) {
			rc = s3_fail(st, rc, "LIST", RN_EIO);
			break;
		}
		for (size_t i = 0; i < l.n && !rc; i++) {
			const char *k = l.items[i].key, *prev = i ? l.items[i - 1].key : last;
			struct rn_tstore_entry e;
			if (prev && strcmp(prev, k) >= 0) {
				rc = rn_tstore_fail(st, RN_EIO,
						    "LIST s3://%s/%s: the store listed \"%.64s\" "
						    "after \"%.64s\" (not in byte order)",
						    be->bucket, be->key2, k, prev);
				break;
			}
			if (strncmp(k, be->key2, plen) != 0 || !rn_tstore_key_ok(k + root_len) ||
			    (!recursive && strchr(k + plen, '/')))
				continue;
			e.key = k + root_len;
			e.size = l.items[i].size;
			e.mtime_ms = l.items[i].mtime_ms;
			rc = fn(ctx, &e);
		}
		if (!rc && l.n) { /* the page's last key, to check the next page's order */
			rn_free(last);
			if (!(last = rn_strdup(l.items[l.n - 1].key)))
				rc = rn_tstore_fail(st, RN_ENOMEM, "%s: out of memory", st->root);
		}
		if (!rc && l.truncated) {
			if (!l.next_token)
				rc = rn_tstore_fail(st, RN_EIO,
						    "LIST s3://%s/%s: a truncated page without a "
						    "continuation token",
						    be->bucket, be->key2);
			else if (!(token = rn_strdup(l.next_token)))
				rc = rn_tstore_fail(st, RN_ENOMEM, "%s: out of memory", st->root);
		}
		rn_s3_list_free(&l);
	} while (!rc && token);
	rn_free(token);
	rn_free(last);
	return rc;
}

/* An unlinked read-write file in the spool directory: O_TMPFILE where the file system has it,
 * else a named temp file unlinked at once. Never fd 0 (s3.c takes fd > 0 as a file). */
static int spool_open(struct rn_tstore *st)
{
	struct s3be *be = be_of(st);
	int fd = rn_fs_open(be->spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char path[4096];
		int n = snprintf(path, sizeof(path), "%s/.rn-tstore-map-XXXXXX", be->spool);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			errno = ENAMETOOLONG;
			fd = -1;
		} else if ((fd = mkostemp(path, O_CLOEXEC)) >= 0 && rn_fs_unlink(path) != 0) {
			int e = errno;
			unlink(path);
			close(fd);
			errno = e;
			fd = -1;
		}
	}
	if (fd == 0) {
		int fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 1);
		int e = errno;
		close(fd);
		errno = e;
		fd = fd2;
	}
	if (fd < 0)
		return rn_tstore_fail(st, errno == ENOSPC ? RN_ENOSPC : RN_EIO,
				      "%s: a spool file in %s: %s", st->root, be->spool,
				      strerror(errno));
	return fd;
}

static int s3_map(struct rn_tstore *st, const char *key, struct rn_tstore_map *m)
{
	struct s3be *be = be_of(st);
	int64_t len = 0;
	void *p;
	int fd, rc;

	if ((rc = full_key(st, key)))
		return rc;
	if ((fd = spool_open(st)) < 0)
		return fd;
	if ((rc = rn_s3_get_fd(be->s3, be->key, fd, &len))) {
		close(fd);
		return s3_fail(st, rc, "GET", RN_ENOTFOUND);
	}
	if (len == 0) { /* an empty object: nothing to map, as fs does */
		close(fd);
		return 0;
	}
	if ((uint64_t)len > SIZE_MAX ||
	    (p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		int e = (uint64_t)len > SIZE_MAX ? ENOMEM : errno;
		close(fd);
		return rn_tstore_fail(st, e == ENOMEM ? RN_ENOMEM : RN_EIO,
				      "%s: mapping %s (%lld bytes): %s", st->root, key,
				      (long long)len, strerror(e));
	}
	close(fd); /* the mapping keeps the file; its space is freed at munmap */
	m->data = p;
	m->len = (size_t)len;
	m->maplen_ = (size_t)len;
	return 0;
}

static void s3_close(struct rn_tstore *st)
{
	struct s3be *be = be_of(st);

	if (!be)
		return;
	rn_s3_destroy(be->s3);
	rn_free(be->bucket);
	rn_free(be->prefix);
	rn_free(be->spool);
	rn_free(be);
	st->be = NULL;
}

static const struct rn_tstore_ops s3_ops = {
	.put = s3_put,
	.put_new = s3_put_new,
	.get = s3_get,
	.stat = s3_stat,
	.del = s3_del,
	.list = s3_list,
	.map = s3_map,
	.close = s3_close,
};

int rn_tstore_s3_init(struct rn_tstore *st, const char *bucket, const char *prefix,
		      const struct rn_tstore_config *cfg, char *err, size_t errcap)
{
	struct rn_s3_config c = cfg->s3;
	const char *spool = cfg->spool_dir;
	struct s3be *be;
	int rc;

	if (!spool || !*spool)
		spool = getenv("TMPDIR");
	if (!spool || !*spool)
		spool = "/tmp";
	if (!(be = rn_calloc(1, sizeof(*be))) || !(be->bucket = rn_strdup(bucket)) ||
	    !(be->prefix = rn_strdup(prefix)) || !(be->spool = rn_strdup(spool))) {
		rc = RN_ENOMEM;
		if (errcap)
			snprintf(err, errcap, "out of memory");
		goto fail;
	}
	c.bucket = bucket;
	if ((rc = rn_s3_create(&c, &be->s3, err, errcap))) {
		/* the root parsed: what is wrong is the S3 settings (endpoint, part size) */
		if (rc == RN_EINVAL)
			rc = RN_ECONFIG;
		goto fail;
	}
	be->threshold = c.multipart_threshold > 0 ? c.multipart_threshold : RN_S3_THRESHOLD_DEFAULT;
	be->part_size = c.part_size > 0 ? c.part_size : RN_S3_PART_DEFAULT;
	st->ops = &s3_ops;
	st->be = be;
	st->local_dir = NULL;
	return 0;
fail:
	st->be = be;
	s3_close(st);
	return rc;
}
