/*
 * Inside the table store: the backend table every store object dispatches through. tstore.c
 * parses the root, checks keys (rn_tstore_key_ok) and calls the backend; a backend never
 * sees a bad key. Only server/store/ includes this header.
 */
#ifndef RN_STORE_TSTORE_INT_H
#define RN_STORE_TSTORE_INT_H

#include "tstore.h"

struct rn_tstore_ops {
	int (*put)(struct rn_tstore *st, const char *key, const void *p, size_t len);
	int (*put_new)(struct rn_tstore *st, const char *key, const void *p, size_t len);
	int (*get)(struct rn_tstore *st, const char *key, int64_t off, int64_t len,
		   struct rn_buf *out);
	int (*stat)(struct rn_tstore *st, const char *key, struct rn_tstore_entry *e);
	int (*del)(struct rn_tstore *st, const char *key);
	int (*list)(struct rn_tstore *st, const char *dir, int recursive, rn_tstore_list_fn fn,
		    void *ctx);
	int (*map)(struct rn_tstore *st, const char *key, struct rn_tstore_map *m);
	void (*close)(struct rn_tstore *st); /* frees the backend's part (st->be) */
};

struct rn_tstore {
	const struct rn_tstore_ops *ops;
	char *root;      /* as given */
	char *local_dir; /* fs backend: the directory; NULL for S3 */
	void *be;        /* the backend's state */
	char err[512];
};

/* Sets st->err (printf-style) and returns rc. */
int rn_tstore_fail(struct rn_tstore *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* 1 if key obeys the rules in tstore.h. */
int rn_tstore_key_ok(const char *key);

/* Backend constructors, called by rn_tstore_open with st->root set. fs: dir is the local path.
 * s3: bucket and prefix ("" or "a/b", no trailing '/') parsed from the root. They set st->ops,
 * st->be (and st->local_dir for fs); 0 or an error with err filled. */
int rn_tstore_fs_init(struct rn_tstore *st, const char *dir, char *err, size_t errcap);
int rn_tstore_s3_init(struct rn_tstore *st, const char *bucket, const char *prefix,
		      const struct rn_tstore_config *cfg, char *err, size_t errcap);

#endif
