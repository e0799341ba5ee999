/*
 * The table store's front: parses a root into a backend, checks keys, dispatches. See
 * tstore.h for the contract and tstore_int.h for the backend table.
 */
#include "tstore.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "rn_err.h"
#include "rn_mem.h"
#include "tstore_int.h"

int rn_tstore_fail(struct rn_tstore *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return rc;
}

int rn_tstore_key_ok(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (!n || n > RN_TSTORE_KEY_MAX || key[0] == '/' || key[n - 1] == '/')
		return 0;
	for (const char *c = key; *c;) {
		size_t len = strcspn(c, "/");

		if (!len || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += len;
		if (*c)
			c++;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return 0;
	return 1;
}

/* "s3://bucket/a/b" -> bucket "bucket", prefix "a/b". 0 or RN_EINVAL. */
static int parse_s3(const char *root, char *bucket, size_t bcap, char *prefix, size_t pcap)
{
	const char *b = root + 5, *slash = strchr(b, '/');
	size_t blen = slash ? (size_t)(slash - b) : strlen(b);
	const char *p = slash ? slash + 1 : "";
	size_t plen = strlen(p);

	if (!blen || blen >= bcap || plen >= pcap || (plen && p[plen - 1] == '/'))
		return RN_EINVAL;
	memcpy(bucket, b, blen);
	bucket[blen] = 0;
	memcpy(prefix, p, plen + 1);
	if (plen && !rn_tstore_key_ok(prefix))
		return RN_EINVAL;
	return 0;
}

int rn_tstore_open(struct rn_tstore **out, const char *root, const struct rn_tstore_config *cfg,
		   char *err, size_t errcap)
{
	static const struct rn_tstore_config zero;
	struct rn_tstore *st;
	int rc;

	*out = NULL;
	if (errcap)
		err[0] = 0;
	if (!root || !*root) {
		snprintf(err, errcap, "empty table root");
		return RN_EINVAL;
	}
	if (!(st = rn_calloc(1, sizeof(*st))) || !(st->root = rn_strdup(root))) {
		rn_free(st);
		snprintf(err, errcap, "out of memory");
		return RN_ENOMEM;
	}
	if (!strncmp(root, "s3://", 5)) {
		char bucket[256], prefix[RN_TSTORE_KEY_MAX + 1];

		if (parse_s3(root, bucket, sizeof(bucket), prefix, sizeof(prefix))) {
			snprintf(err, errcap,
				 "%s: not s3://bucket[/prefix] (no empty, '.' or '..' "
				 "part, no trailing '/')",
				 root);
			rc = RN_EINVAL;
		} else {
			rc = rn_tstore_s3_init(st, bucket, prefix, cfg ? cfg : &zero, err, errcap);
		}
	} else if (strstr(root, "://")) {
		snprintf(err, errcap, "%s: unknown scheme (a local path or s3://bucket/prefix)",
			 root);
		rc = RN_EINVAL;
	} else {
		rc = rn_tstore_fs_init(st, root, err, errcap);
	}
	if (rc) {
		rn_free(st->root);
		rn_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void rn_tstore_close(struct rn_tstore *st)
{
	if (!st)
		return;
	if (st->ops && st->ops->close)
		st->ops->close(st);
	rn_free(st->root);
	rn_free(st);
}

const char *rn_tstore_root(const struct rn_tstore *st)
{
	return st->root;
}

const char *rn_tstore_local_dir(const struct rn_tstore *st)
{
	return st->local_dir;
}

const char *rn_tstore_errmsg(const struct rn_tstore *st)
{
	return st->err;
}

#define KEY_CHECK(st, key)                                                                         \
	do {                                                                                       \
		if (!rn_tstore_key_ok(key))                                                        \
			return rn_tstore_fail(st, RN_EINVAL, "%s: bad key \"%.64s\"", st->root,    \
					      key ? key : "");                                     \
		st->err[0] = 0;                                                                    \
	} while (0)

int rn_tstore_put(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	KEY_CHECK(st, key);
	return st->ops->put(st, key, p, len);
}

int rn_tstore_put_new(struct rn_tstore *st, const char *key, const void *p, size_t len)
{
	KEY_CHECK(st, key);
	return st->ops->put_new(st, key, p, len);
}

int rn_tstore_get(struct rn_tstore *st, const char *key, int64_t off, int64_t len,
		  struct rn_buf *out)
{
	KEY_CHECK(st, key);
	if (off < 0)
		return rn_tstore_fail(st, RN_EINVAL, "%s: negative offset", key);
	return st->ops->get(st, key, off, len, out);
}

int rn_tstore_stat(struct rn_tstore *st, const char *key, struct rn_tstore_entry *e)
{
	KEY_CHECK(st, key);
	return st->ops->stat(st, key, e);
}

int rn_tstore_delete(struct rn_tstore *st, const char *key)
{
	KEY_CHECK(st, key);
	return st->ops->del(st, key);
}

int rn_tstore_list(struct rn_tstore *st, const char *dir, int recursive, rn_tstore_list_fn fn,
		   void *ctx)
{
	if (dir && *dir)
		KEY_CHECK(st, dir);
	st->err[0] = 0;
	return st->ops->list(st, dir && *dir ? dir : NULL, recursive, fn, ctx);
}

int rn_tstore_map(struct rn_tstore *st, const char *key, struct rn_tstore_map *m)
{
	memset(m, 0, sizeof(*m));
	KEY_CHECK(st, key);
	return st->ops->map(st, key, m);
}

/* Both backends map: fs its file, S3 an unlinked spool file holding the object. */
void rn_tstore_unmap(struct rn_tstore_map *m)
{
	if (m->maplen_)
		munmap((void *)m->data, m->maplen_);
	memset(m, 0, sizeof(*m));
}
