/*
 * The table store's local backend (tstore.h): a key is the file root/key. Every write goes
 * through the fault-injectable seam of common/rn_fs.h so the failure sweeps of the Delta
 * code reach it. put writes a dot-prefixed temp file (unique: pid, a counter and random
 * bits), fsyncs it, renames it over the key and fsyncs the directory; put_new fsyncs the temp
 * file and link()s it to the key, which fails with EEXIST when another writer has it: the
 * put-if-absent that orders the commits of several writers on one table. Directories a key
 * needs are created on the way, each new one's parent fsynced, so the entry survives a power
 * cut. Listing walks the directories, hides dot-prefixed names (temp files, ours or a dead
 * writer's) and sorts by key. Reads use plain POSIX calls: only writes are in the seam.
 *
 * Lifetime: the state (the directory) is made by rn_tstore_fs_init and freed by the close
 * op; it holds nothing but the counter, so two store objects on one root are independent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rn_buf.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_mem.h"
#include "tstore_int.h"

/* Longest root directory: a path of root + '/' + key (+ temp suffix) fits PATH_CAP. */
#define DIR_MAX 3000
#define PATH_CAP (DIR_MAX + RN_TSTORE_KEY_MAX + 128)
/* Bodies at least this large are written with rn_write_new_file (O_DIRECT bulk): data files
 * that nobody reads back soon; smaller ones (commits, checkpoints' pointer) plainly. */
#define DIRECT_MIN (64 * 1024)

struct fs_be {
	char *dir;        /* the root, without trailing '/' (but "/" stays "/") */
	unsigned counter; /* per temp name of this object */
};

static struct fs_be *be_of(struct rn_tstore *st)
{
	return st->be;
}

static int errno_rc(int e)
{
	return e == ENOSPC || e == EDQUOT ? RN_ENOSPC : RN_EIO;
}

/* root/key into out (PATH_CAP bytes); keys are checked and short, the root is bounded. */
static void key_path(struct rn_tstore *st, const char *key, char *out)
{
	const char *dir = be_of(st)->dir;
	snprintf(out, PATH_CAP, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", key);
}

/* A unique dot-prefixed name beside path: "<dir>/.<base>.<pid>.<n>.<rand>.tmp". */
static void temp_path(struct rn_tstore *st, const char *path, char *out)
{
	const char *slash = strrchr(path, '/');
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (unsigned)clock() ^ (unsigned)time(NULL);
	snprintf(out, PATH_CAP + 64, "%.*s.%s.%ld.%u.%08x.tmp", (int)(slash - path + 1), path,
		 slash + 1, (long)getpid(), ++be_of(st)->counter, r);
}

/* fsyncs the directory holding path (path's part before its last '/'; "." for a relative
 * name without one). */
static int fsync_parent(const char *path)
{
	char d[PATH_CAP];
	const char *slash = strrchr(path, '/');
	if (!slash)
		return rn_fsync_dir(".");
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	memcpy(d, path, n);
	d[n] = 0;
	return rn_fsync_dir(d);
}

/* Makes the directory of path's parent exist, from the root down; every directory created
 * gets its parent fsynced so the new entry is durable before an object in it is. */
static int make_parents(struct rn_tstore *st, const char *path)
{
	char d[PATH_CAP];
	const char *dir = be_of(st)->dir;
	size_t rootlen = strlen(dir);
	struct stat sb;
	const char *slash = strrchr(path, '/');
	size_t n = (size_t)(slash - path);

	memcpy(d, path, n);
	d[n] = 0;
	if (!stat(d, &sb))
		return S_ISDIR(sb.st_mode) ? 0
					   : rn_tstore_fail(st, RN_EIO, "%s: not a directory", d);
	/* the root itself: made with its missing parents (fsyncing the one above it) */
	if (stat(dir, &sb)) {
		if (rn_mkdir_p(dir))
			return rn_tstore_fail(st, errno_rc(errno), "mkdir %s: %s", dir,
					      strerror(errno));
		if (strcmp(dir, "/") && fsync_parent(dir))
			return rn_tstore_fail(st, errno_rc(errno), "fsync above %s: %s", dir,
					      strerror(errno));
	}
	for (char *p = d + rootlen + 1; p <= d + n; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(d, 0750)) {
			if (errno != EEXIST) {
				int e = errno;
				*p = c;
				return rn_tstore_fail(st, errno_rc(e), "mkdir %s: %s", d,
						      strerror(e));
			}
		} else if (fsync_parent(d)) {
			int e = errno;
			*p = c;
			return rn_tstore_fail(st, errno_rc(e), "fsync parent of %s: %s", d,
					      strerror(e));
		}
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

/* Writes p[0..len) to a new temp file beside path and fsyncs it; tmp receives its name.
 * On failure the temp file is gone. */
static int write_temp(struct rn_tstore *st, const char *path, const void *p, size_t len, char *tmp)
{
	int fd, rc = 0;

	if ((rc = make_parents(st, path)))
		return rc;
	temp_path(st, path, tmp);
	if ((fd = rn_fs_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		return rn_tstore_fail(st, errno_rc(errno), "%s: %s", tmp, strerror(errno));
	if ((len >= DIRECT_MIN ? rn_write_new_file(fd, p, len) : rn_write_all(fd, p, len)))
		rc = rn_tstore_fail(st, errno_rc(errno), "write %s: %s", tmp, strerror(errno));
	if (!rc && rn_fs_fsync(fd))
		rc = rn_tstore_fail(st, errno_rc(errno), "fsync %s: %s", tmp, strerror(errno));
	close(fd);
	if (rc)
		rn_fs_unlink(tmp);
	return rc;
}

static int fs_put(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	char path[PATH_CAP], tmp[PATH_CAP + 64];
	int rc;

	key_path(st, key, path);
	if ((rc = write_temp(st, path, p, len, tmp)))
		return rc;
	if (rn_fs_rename(tmp, path)) {
		rc = rn_tstore_fail(st, errno_rc(errno), "rename %s: %s", path, strerror(errno));
		rn_fs_unlink(tmp);
		return rc;
	}
	if (fsync_parent(path)) {
		/* Not durable: take it back, so a failed put leaves no object a reader could
		 * take for one that survives a crash. */
		rc = rn_tstore_fail(st, errno_rc(errno), "fsync directory of %s: %s", path,
				    strerror(errno));
		rn_fs_unlink(path);
		return rc;
	}
	return 0;
}

static int fs_put_new(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	char path[PATH_CAP], tmp[PATH_CAP + 64];
	int rc;

	key_path(st, key, path);
	if ((rc = write_temp(st, path, p, len, tmp)))
		return rc;
	if (rn_fs_link(tmp, path)) {
		int e = errno;
		rn_fs_unlink(tmp);
		if (e == EEXIST)
			return rn_tstore_fail(st, RN_EEXIST, "%s exists", path);
		return rn_tstore_fail(st, errno_rc(e), "link %s: %s", path, strerror(e));
	}
	/* From here the object is visible: a failure leaves it there (other writers may have
	 * read it already) and the outcome is unknown to the caller: RN_EIO, never success. A
	 * temp file whose unlink failed stays hidden from listings. */
	rn_fs_unlink(tmp);
	if (fsync_parent(path))
		return rn_tstore_fail(st, RN_EIO,
				      "fsync directory of %s: %s (written, not known "
				      "durable)",
				      path, strerror(errno));
	return 0;
}

/* Opens key for reading: the fd and its stat, or RN_ENOTFOUND (also a directory). */
static int open_ro(struct rn_tstore *st, const char *key, struct stat *sb)
{
	char path[PATH_CAP];
	int fd;

	key_path(st, key, path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ENOTDIR
			       ? rn_tstore_fail(st, RN_ENOTFOUND, "%s: no such object", path)
			       : rn_tstore_fail(st, RN_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, sb)) {
		int e = errno;
		close(fd);
		return rn_tstore_fail(st, RN_EIO, "stat %s: %s", path, strerror(e));
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		return rn_tstore_fail(st, RN_ENOTFOUND, "%s: not a file", path);
	}
	return fd;
}

static int64_t mtime_ms(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

static int fs_get(struct rn_tstore *st, const char *key, int64_t off, int64_t len,
		  struct rn_buf *out)
{
	struct stat sb;
	int fd = open_ro(st, key, &sb), rc = 0;

	if (fd < 0)
		return fd;
	int64_t end = sb.st_size;
	if (len >= 0 && off + len < end)
		end = off + len;
	if (off < end && rn_buf_reserve(out, (size_t)(end - off))) {
		close(fd);
		return rn_tstore_fail(st, RN_ENOMEM, "%s: %lld bytes do not fit", key,
				      (long long)(end - off));
	}
	while (off < end) {
		ssize_t n = pread(fd, out->data + out->len, (size_t)(end - off), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) { /* 0: the file shrank under us (only a replaced object can) */
			rc = rn_tstore_fail(st, RN_EIO, "read %s: %s", key,
					    n ? strerror(errno) : "short file");
			break;
		}
		out->len += (size_t)n;
		off += n;
	}
	close(fd);
	return rc;
}

static int fs_stat(struct rn_tstore *st, const char *key, struct rn_tstore_entry *e)
{
	char path[PATH_CAP];
	struct stat sb;

	key_path(st, key, path);
	if (stat(path, &sb))
		return errno == ENOENT || errno == ENOTDIR
			       ? rn_tstore_fail(st, RN_ENOTFOUND, "%s: no such object", path)
			       : rn_tstore_fail(st, RN_EIO, "stat %s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return rn_tstore_fail(st, RN_ENOTFOUND, "%s: not a file", path);
	e->key = key;
	e->size = sb.st_size;
	e->mtime_ms = mtime_ms(&sb);
	return 0;
}

static int fs_del(struct rn_tstore *st, const char *key)
{
	char path[PATH_CAP];
	struct stat sb;

	key_path(st, key, path);
	if (!rn_fs_unlink(path) || errno == ENOENT || errno == ENOTDIR)
		return 0;
	if ((errno == EISDIR || errno == EPERM) && !lstat(path, &sb) && S_ISDIR(sb.st_mode))
		return 0; /* a directory is no object */
	return rn_tstore_fail(st, errno_rc(errno), "unlink %s: %s", path, strerror(errno));
}

/* ---- listing: collect, sort, call ---- */

struct lent {
	char *key;
	int64_t size, mtime_ms;
};

struct lcoll {
	struct lent *v;
	size_t n, cap;
};

static void lcoll_free(struct lcoll *c)
{
	for (size_t i = 0; i < c->n; i++)
		rn_free(c->v[i].key);
	rn_free(c->v);
}

static int cmp_lent(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->key, ((const struct lent *)b)->key);
}

/* Adds the objects under path (the key prefix rel, "" at the root) to c. */
static int walk(struct rn_tstore *st, const char *path, const char *rel, int recursive,
		struct lcoll *c)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	int rc = 0;

	if (!dir)
		return errno == ENOENT || errno == ENOTDIR
			       ? 0
			       : rn_tstore_fail(st, RN_EIO, "%s: %s", path, strerror(errno));
	while (!rc && (errno = 0, de = readdir(dir))) {
		char sub[PATH_CAP], key[RN_TSTORE_KEY_MAX + 2];
		struct stat sb;

		if (de->d_name[0] == '.') /* ".", "..", and temp files */
			continue;
		if (snprintf(key, sizeof(key), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >
		    RN_TSTORE_KEY_MAX)
			continue; /* no key can name it */
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (fstatat(dirfd(dir), de->d_name, &sb, 0))
			continue; /* gone meanwhile */
		if (S_ISDIR(sb.st_mode)) {
			if (recursive)
				rc = walk(st, sub, key, 1, c);
			continue;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		if (c->n == c->cap) {
			size_t ncap = c->cap ? 2 * c->cap : 64;
			struct lent *v = rn_reallocarray(c->v, ncap, sizeof(*v));
			if (!v) {
				rc = rn_tstore_fail(st, RN_ENOMEM, "listing: out of memory");
				break;
			}
			c->v = v;
			c->cap = ncap;
		}
		if (!(c->v[c->n].key = rn_strdup(key))) {
			rc = rn_tstore_fail(st, RN_ENOMEM, "listing: out of memory");
			break;
		}
		c->v[c->n].size = sb.st_size;
		c->v[c->n].mtime_ms = mtime_ms(&sb);
		c->n++;
	}
	if (!rc && errno)
		rc = rn_tstore_fail(st, RN_EIO, "readdir %s: %s", path, strerror(errno));
	closedir(dir);
	return rc;
}

static int fs_list(struct rn_tstore *st, const char *dir, int recursive, rn_tstore_list_fn fn,
		   void *ctx)
{
	char path[PATH_CAP];
	struct lcoll c = {0};
	int rc;

	if (dir)
		key_path(st, dir, path);
	else
		snprintf(path, sizeof(path), "%s", be_of(st)->dir);
	rc = walk(st, path, dir ? dir : "", recursive, &c);
	if (!rc && c.n)
		qsort(c.v, c.n, sizeof(*c.v), cmp_lent);
	for (size_t i = 0; i < c.n && !rc; i++) {
		struct rn_tstore_entry e = {c.v[i].key, c.v[i].size, c.v[i].mtime_ms};
		rc = fn(ctx, &e);
	}
	lcoll_free(&c);
	return rc;
}

static int fs_map(struct rn_tstore *st, const char *key, struct rn_tstore_map *m)
{
	struct stat sb;
	int fd = open_ro(st, key, &sb), rc = 0;

	if (fd < 0)
		return fd;
	if (sb.st_size > 0) {
		/* data files are immutable once written (vacuum only unlinks them, which leaves
		 * a mapping valid) */
		void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			rc = rn_tstore_fail(st, errno == ENOMEM ? RN_ENOMEM : RN_EIO, "mmap %s: %s",
					    key, strerror(errno));
		else
			m->data = p, m->len = m->maplen_ = (size_t)sb.st_size;
	}
	close(fd);
	return rc;
}

static void fs_close(struct rn_tstore *st)
{
	struct fs_be *b = be_of(st);
	if (b)
		rn_free(b->dir);
	rn_free(b);
	st->be = NULL;
	st->local_dir = NULL;
}

static const struct rn_tstore_ops fs_ops = {
	.put = fs_put,
	.put_new = fs_put_new,
	.get = fs_get,
	.stat = fs_stat,
	.del = fs_del,
	.list = fs_list,
	.map = fs_map,
	.close = fs_close,
};

int rn_tstore_fs_init(struct rn_tstore *st, const char *dir, char *err, size_t errcap)
{
	size_t n = strlen(dir);
	struct fs_be *b;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n > DIR_MAX) {
		snprintf(err, errcap, "%.64s...: table directory longer than %d bytes", dir,
			 DIR_MAX);
		return RN_EINVAL;
	}
	if (!(b = rn_calloc(1, sizeof(*b))) || !(b->dir = rn_malloc(n + 1))) {
		rn_free(b);
		snprintf(err, errcap, "out of memory");
		return RN_ENOMEM;
	}
	memcpy(b->dir, dir, n);
	b->dir[n] = 0;
	st->be = b;
	st->local_dir = b->dir;
	st->ops = &fs_ops;
	return 0;
}
