/*
 * Delta table writer and incremental log reader; see delta.h. Every byte goes through the
 * table store (server/store/tstore.h), so the same code runs on a local directory and on an
 * S3 prefix. Durability order for a commit: data files are durable (rn_tstore_put) before
 * the commit that names them; the commit is created with rn_tstore_put_new, which fails with
 * RN_EEXIST if another writer won that version (fs: link() of an fsynced temp file, then the
 * directory fsynced; S3: a conditional PUT). An attempt whose outcome is unknown (RN_EIO) is
 * settled by reading the version back: ours (the same bytes, commitInfo carries a random
 * txnId), another writer's (a lost race), or absent (nothing was taken).
 *
 * The replay keeps the whole snapshot a checkpoint needs (protocol, metaData, live adds,
 * remove tombstones, txns); a path map makes each add/remove O(1). Checkpoints are written
 * under a temp name and renamed into place (classic checkpoints may be replaced: "the latest
 * writer wins"), then _last_checkpoint the same way, never moving it backwards. Opening
 * starts from _last_checkpoint when it names a readable checkpoint, else from the newest
 * readable checkpoint file, else from version 0.
 */
#include "delta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "checkpoint.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_strmap.h"
#include "tstore.h"

struct pslot {
	char *key; /* == files[idx]->path; NULL = empty */
	uint32_t hash;
	size_t idx;
};

/* The log's keys in the store. */
#define LOG_DIR "_delta_log"

struct rn_delta {
	char *dir;            /* the store's root, for messages */
	struct rn_tstore *st; /* owned: closed with the handle */
	char *engine;
	int64_t version; /* latest version read or committed; -1 = none */
	struct rn_ckpt_txn *txns;
	size_t ntxn, captxn;
	/* app_id -> index + 1 into txns (keys are txns[i].app_id): a table written by 50,000
	 * streams has 50,000 txns, and a commit looks up each of its own (a scan was O(txns)
	 * per look-up, most of the server's CPU at 50,000 streams) */
	struct rn_strmap txn_ids;
	int min_reader, min_writer, has_features;
	struct rn_ckpt_meta meta;
	int has_meta;
	struct rn_ckpt_file **files; /* adds and tombstones; the newest action per path */
	size_t nfiles, capfiles;
	struct pslot *slots; /* path -> files index; power-of-two cap */
	size_t capslots;
	int64_t ckpt_version; /* newest checkpoint we know of, -1 none */
	/* commitInfo.timestamp of `version` when it was read from (or written to) the log as a
	 * commit, -1 otherwise (a checkpoint, a commit without one) */
	int64_t commit_ts;
	/* a commit was applied only in part (out of memory mid-way): the snapshot is rebuilt
	 * from the log before it is used again (rn_delta_refresh, rn_delta_commit) */
	int stale;
	char err[256];
};

static int fail(struct rn_delta *d, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rn_delta *d, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* A store failure: its rc with the store's detail. */
static int store_fail(struct rn_delta *d, int rc)
{
	return fail(d, rc, "%s: %s", d->dir, rn_tstore_errmsg(d->st));
}

static void commit_key(char *out, size_t cap, int64_t v)
{
	snprintf(out, cap, LOG_DIR "/%020lld.json", (long long)v);
}

int rn_delta_exists(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", dir, 0);
	if (access(p, F_OK) == 0)
		return 1;
	/* version 0 may have been cleaned up behind a checkpoint */
	snprintf(p, sizeof(p), "%s/_delta_log/_last_checkpoint", dir);
	return access(p, F_OK) == 0;
}

int rn_delta_exists_store(struct rn_tstore *st)
{
	struct rn_tstore_entry e;
	char k[64];
	int rc;

	commit_key(k, sizeof(k), 0);
	if ((rc = rn_tstore_stat(st, k, &e)) != RN_ENOTFOUND)
		return rc ? rc : 1;
	/* version 0 may have been cleaned up behind a checkpoint */
	rc = rn_tstore_stat(st, LOG_DIR "/_last_checkpoint", &e);
	return rc == RN_ENOTFOUND ? 0 : rc ? rc : 1;
}

/* ---- snapshot state ---- */

static void free_kv(struct rn_ckpt_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rn_free(kv[i].key);
		rn_free(kv[i].value);
	}
	rn_free(kv);
}

static void free_file(struct rn_ckpt_file *f)
{
	if (!f)
		return;
	rn_free(f->path);
	free_kv(f->pv, f->npv);
	rn_free(f->stats);
	rn_free(f);
}

static void free_meta(struct rn_ckpt_meta *m)
{
	rn_free(m->id);
	rn_free(m->name);
	rn_free(m->description);
	rn_free(m->provider);
	free_kv(m->options, m->noptions);
	rn_free(m->schema);
	for (size_t i = 0; i < m->nparts; i++)
		rn_free(m->part_cols[i]);
	rn_free(m->part_cols);
	free_kv(m->config, m->nconfig);
	memset(m, 0, sizeof(*m));
	m->created_ms = -1;
}

static void reset_state(struct rn_delta *d)
{
	for (size_t i = 0; i < d->ntxn; i++)
		rn_free(d->txns[i].app_id);
	d->ntxn = 0;
	rn_strmap_free(&d->txn_ids);
	for (size_t i = 0; i < d->nfiles; i++)
		free_file(d->files[i]);
	d->nfiles = 0;
	rn_free(d->slots);
	d->slots = NULL;
	d->capslots = 0;
	free_meta(&d->meta);
	d->has_meta = 0;
	d->min_reader = d->min_writer = -1;
	d->has_features = 0;
	d->version = -1;
	d->commit_ts = -1;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct pslot *slot_find(struct pslot *slots, size_t cap, const char *key, uint32_t h)
{
	for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!slots[i].key || (slots[i].hash == h && !strcmp(slots[i].key, key)))
			return &slots[i];
}

/* Index of path in files, or -1. */
static ssize_t file_index(const struct rn_delta *d, const char *path)
{
	if (!d->capslots)
		return -1;
	struct pslot *s = slot_find(d->slots, d->capslots, path, fnv1a(path));
	return s->key ? (ssize_t)s->idx : -1;
}

/* Puts f (owned from now on) as the newest action for its path. */
static int put_file(struct rn_delta *d, struct rn_ckpt_file *f)
{
	ssize_t i = file_index(d, f->path);
	if (i >= 0) {
		struct pslot *s = slot_find(d->slots, d->capslots, f->path, fnv1a(f->path));
		free_file(d->files[i]);
		d->files[i] = f;
		s->key = f->path;
		return 0;
	}
	if (d->nfiles + 1 > d->capslots / 2) {
		size_t nc = d->capslots ? d->capslots * 2 : 64;
		struct pslot *ns = rn_calloc(nc, sizeof(*ns));
		if (!ns)
			return RN_ENOMEM;
		for (size_t k = 0; k < d->nfiles; k++) {
			uint32_t h = fnv1a(d->files[k]->path);
			struct pslot *s = slot_find(ns, nc, d->files[k]->path, h);
			s->key = d->files[k]->path;
			s->hash = h;
			s->idx = k;
		}
		rn_free(d->slots);
		d->slots = ns;
		d->capslots = nc;
	}
	if (rn_grow(&d->files, &d->capfiles, d->nfiles, sizeof(*d->files), 64, SIZE_MAX))
		return RN_ENOMEM;
	uint32_t h = fnv1a(f->path);
	struct pslot *s = slot_find(d->slots, d->capslots, f->path, h);
	s->key = f->path;
	s->hash = h;
	s->idx = d->nfiles;
	d->files[d->nfiles++] = f;
	return 0;
}

static int set_txn(struct rn_delta *d, const char *app, size_t len, int64_t v, int64_t updated,
		   int latest_wins)
{
	uintptr_t at = (uintptr_t)rn_strmap_get(&d->txn_ids, app, len);
	if (at) {
		struct rn_ckpt_txn *t = &d->txns[at - 1];
		/* a replay applies actions in order: the latest wins [P §Action
		 * Reconciliation]; our own commits only ever move forward */
		if (latest_wins || v > t->version) {
			t->version = v;
			t->last_updated = updated;
		}
		return 0;
	}
	if (rn_grow(&d->txns, &d->captxn, d->ntxn, sizeof(*d->txns), 16, SIZE_MAX))
		return RN_ENOMEM;
	if (!(d->txns[d->ntxn].app_id = rn_strndup(app, len)))
		return RN_ENOMEM;
	if (rn_strmap_put(&d->txn_ids, d->txns[d->ntxn].app_id, len,
			  (void *)(uintptr_t)(d->ntxn + 1))) {
		rn_free(d->txns[d->ntxn].app_id);
		return RN_ENOMEM;
	}
	d->txns[d->ntxn].last_updated = updated;
	d->txns[d->ntxn++].version = v;
	return 0;
}

int64_t rn_delta_txn(const struct rn_delta *d, const char *app_id)
{
	uintptr_t at = (uintptr_t)rn_strmap_get(&d->txn_ids, app_id, strlen(app_id));
	return at ? d->txns[at - 1].version : -1;
}

/* ---- action parsing ---- */

static int dup_str(struct rn_json_span v, char **out)
{
	struct rn_buf b = {.max = (size_t)64 << 20};
	if (rn_json_span_eq(v, "null")) {
		rn_free(*out);
		*out = NULL;
		return 0;
	}
	int rc = rn_json_string(v, &b);
	if (!rc && !b.data)
		rc = rn_buf_append_u8(&b, 0);
	if (rc) {
		rn_buf_free(&b);
		return rc == RN_ENOMEM ? rc : RN_EINVAL;
	}
	rn_free(*out);
	*out = (char *)b.data;
	return 0;
}

struct kv_ctx {
	struct rn_ckpt_kv *kv;
	size_t n;
};

static int kv_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct kv_ctx *kc = c;
	struct rn_ckpt_kv *t = rn_reallocarray(kc->kv, kc->n + 1, sizeof(*t));
	int rc;
	if (!t)
		return RN_ENOMEM;
	kc->kv = t;
	memset(&t[kc->n], 0, sizeof(*t));
	kc->n++;
	/* the walk hands keys without their quotes (rn_json.h); decode them with the quotes,
	 * which surround the span in the text */
	struct rn_json_span qk = {k.p - 1, k.len + 2};
	if ((rc = dup_str(qk, &t[kc->n - 1].key)))
		return rc;
	if (!t[kc->n - 1].key)
		return RN_EINVAL;
	if (v.len && v.p[0] != '"' && !rn_json_span_eq(v, "null"))
		return RN_EINVAL; /* Delta string maps hold strings */
	return dup_str(v, &t[kc->n - 1].value);
}

static int parse_kv(struct rn_json_span v, struct rn_ckpt_kv **kv, size_t *n)
{
	struct kv_ctx kc = {0};
	free_kv(*kv, *n);
	*kv = NULL;
	*n = 0;
	if (rn_json_span_eq(v, "null"))
		return 0;
	int rc = rn_json_object_walk(v, kv_member, &kc);
	*kv = kc.kv;
	*n = kc.n;
	return rc;
}

static int get_bool(struct rn_json_span v, int *out)
{
	if (rn_json_span_eq(v, "true"))
		*out = 1;
	else if (rn_json_span_eq(v, "false"))
		*out = 0;
	else
		return RN_EINVAL;
	return 0;
}

static int get_i64(struct rn_json_span v, int64_t *out)
{
	if (rn_json_span_eq(v, "null")) {
		*out = -1;
		return 0;
	}
	return rn_json_int64(v, out) ? RN_EINVAL : 0;
}

/* commitInfo.timestamp into *(int64_t *)c; other members, or a timestamp of another type,
 * are ignored (commitInfo is free-form). */
static int ci_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	int64_t x;
	if (rn_json_span_eq(k, "timestamp") && !rn_json_int64(v, &x) && x > 0)
		*(int64_t *)c = x;
	return 0;
}

static int file_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct rn_ckpt_file *f = c;
	if (rn_json_span_eq(k, "path"))
		return dup_str(v, &f->path);
	if (rn_json_span_eq(k, "partitionValues"))
		return parse_kv(v, &f->pv, &f->npv);
	if (rn_json_span_eq(k, "size"))
		return get_i64(v, &f->size);
	if (rn_json_span_eq(k, "modificationTime"))
		return get_i64(v, &f->mtime_ms);
	if (rn_json_span_eq(k, "deletionTimestamp"))
		return get_i64(v, &f->deletion_ms);
	if (rn_json_span_eq(k, "dataChange"))
		return get_bool(v, &f->data_change);
	if (rn_json_span_eq(k, "stats"))
		return dup_str(v, &f->stats);
	return 0;
}

struct txn_fields {
	struct rn_buf app;
	int64_t version, updated;
	int has_app, has_version;
};

static int txn_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct txn_fields *t = c;
	if (rn_json_span_eq(k, "appId")) {
		t->has_app = 1;
		rn_buf_reset(&t->app);
		return rn_json_string(v, &t->app) ? RN_EINVAL : 0;
	}
	if (rn_json_span_eq(k, "version")) {
		t->has_version = 1;
		return rn_json_int64(v, &t->version) ? RN_EINVAL : 0;
	}
	if (rn_json_span_eq(k, "lastUpdated"))
		return get_i64(v, &t->updated);
	return 0;
}

struct proto_fields {
	int64_t r, w;
	int features;
};

static int proto_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct proto_fields *p = c;
	if (rn_json_span_eq(k, "minReaderVersion"))
		return rn_json_int64(v, &p->r) ? RN_EINVAL : 0;
	if (rn_json_span_eq(k, "minWriterVersion"))
		return rn_json_int64(v, &p->w) ? RN_EINVAL : 0;
	if ((rn_json_span_eq(k, "readerFeatures") || rn_json_span_eq(k, "writerFeatures")) &&
	    !rn_json_span_eq(v, "null"))
		p->features = 1;
	return 0;
}

static int format_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct rn_ckpt_meta *m = c;
	if (rn_json_span_eq(k, "provider"))
		return dup_str(v, &m->provider);
	if (rn_json_span_eq(k, "options"))
		return parse_kv(v, &m->options, &m->noptions);
	return 0;
}

static int part_elem(void *c, size_t i, struct rn_json_span v)
{
	(void)i;
	struct rn_ckpt_meta *m = c;
	char **t = rn_reallocarray(m->part_cols, m->nparts + 1, sizeof(*t));
	if (!t)
		return RN_ENOMEM;
	m->part_cols = t;
	t[m->nparts] = NULL;
	int rc = dup_str(v, &t[m->nparts]);
	if (!rc && !t[m->nparts])
		rc = RN_EINVAL;
	if (!rc)
		m->nparts++;
	return rc;
}

static int meta_member(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct rn_ckpt_meta *m = c;
	if (rn_json_span_eq(k, "id"))
		return dup_str(v, &m->id);
	if (rn_json_span_eq(k, "name"))
		return dup_str(v, &m->name);
	if (rn_json_span_eq(k, "description"))
		return dup_str(v, &m->description);
	if (rn_json_span_eq(k, "format"))
		return rn_json_span_eq(v, "null") ? 0 : rn_json_object_walk(v, format_member, m);
	if (rn_json_span_eq(k, "schemaString"))
		return dup_str(v, &m->schema);
	if (rn_json_span_eq(k, "partitionColumns"))
		return rn_json_span_eq(v, "null") ? 0 : rn_json_array_walk(v, part_elem, m);
	if (rn_json_span_eq(k, "configuration"))
		return parse_kv(v, &m->config, &m->nconfig);
	if (rn_json_span_eq(k, "createdTime"))
		return get_i64(v, &m->created_ms);
	return 0;
}

/* What applying one commit found, for the conflict checks. */
struct commit_info {
	int meta_changed;
	char **removed; /* paths removed by it (only collected when want_removed) */
	size_t nremoved;
	int want_removed;
};

struct line_ctx {
	struct rn_delta *d;
	struct commit_info *ci;
	int nactions;
};

static int apply_action(void *c, struct rn_json_span k, struct rn_json_span v)
{
	struct line_ctx *lc = c;
	struct rn_delta *d = lc->d;
	int rc = 0;
	lc->nactions++;
	if (rn_json_span_eq(v, "null"))
		return 0;
	if (rn_json_span_eq(k, "add") || rn_json_span_eq(k, "remove")) {
		struct rn_ckpt_file *f = rn_calloc(1, sizeof(*f));
		if (!f)
			return RN_ENOMEM;
		f->size = f->mtime_ms = f->deletion_ms = -1;
		f->data_change = 1;
		f->is_remove = rn_json_span_eq(k, "remove");
		rc = rn_json_object_walk(v, file_member, f);
		if (!rc && !f->path)
			rc = RN_EINVAL;
		if (!rc && f->is_remove) {
			ssize_t i = file_index(d, f->path);
			if (f->size < 0 && i >= 0) /* keep what the add said */
				f->size = d->files[i]->size;
			rn_free(f->stats);
			f->stats = NULL;
			if (lc->ci && lc->ci->want_removed) {
				char **t = rn_reallocarray(lc->ci->removed, lc->ci->nremoved + 1,
							   sizeof(*t));
				if (!t || !(t[lc->ci->nremoved] = rn_strdup(f->path))) {
					if (t)
						lc->ci->removed = t;
					rc = RN_ENOMEM;
				} else {
					lc->ci->removed = t;
					lc->ci->nremoved++;
				}
			}
		}
		if (!rc)
			rc = put_file(d, f);
		if (rc)
			free_file(f);
		return rc;
	}
	if (rn_json_span_eq(k, "txn")) {
		struct txn_fields t = {.updated = -1};
		rc = rn_json_object_walk(v, txn_member, &t);
		if (!rc && t.has_app && t.has_version && t.app.len)
			rc = set_txn(d, (const char *)t.app.data, t.app.len, t.version, t.updated,
				     1);
		rn_buf_free(&t.app);
		return rc;
	}
	if (rn_json_span_eq(k, "protocol")) {
		struct proto_fields p = {-1, -1, 0};
		if ((rc = rn_json_object_walk(v, proto_member, &p)))
			return rc;
		d->min_reader = (int)p.r;
		d->min_writer = (int)p.w;
		d->has_features = p.features;
		if (lc->ci)
			lc->ci->meta_changed = 1;
		return 0;
	}
	if (rn_json_span_eq(k, "metaData")) {
		free_meta(&d->meta);
		d->has_meta = 1;
		if (lc->ci)
			lc->ci->meta_changed = 1;
		return rn_json_object_walk(v, meta_member, &d->meta);
	}
	if (rn_json_span_eq(k, "commitInfo")) { /* free-form: only its timestamp is kept */
		rn_json_object_walk(v, ci_member, &d->commit_ts);
		return 0;
	}
	return 0; /* cdc, domainMetadata, ...: not part of our snapshot */
}

/* Applies newline-delimited actions (a commit, or a decoded checkpoint). */
static int apply_text(struct rn_delta *d, const char *what, const uint8_t *text, size_t len,
		      struct commit_info *ci)
{
	for (size_t off = 0; off < len;) {
		const char *line = (const char *)text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;
		off += n + 1;
		if (n == 0)
			continue;
		struct line_ctx lc = {d, ci, 0};
		struct rn_json_span s = {line, n};
		int rc = rn_json_object_walk(s, apply_action, &lc);
		if (rc == RN_ENOMEM)
			return fail(d, rc, "%s: out of memory", what);
		if (rc)
			return fail(d, RN_EDELTA, "%s: malformed action line", what);
	}
	return 0;
}

/* Appends the whole object key to out: 0, RN_ENOTFOUND (no message), or a failure. */
static int read_file(struct rn_delta *d, const char *key, struct rn_buf *out)
{
	int rc = rn_tstore_get(d->st, key, 0, -1, out);
	if (rc == RN_ENOTFOUND)
		return rc;
	if (rc == RN_ENOMEM)
		return fail(d, rc, "%s/%s: too large or out of memory", d->dir, key);
	return rc ? store_fail(d, rc == RN_ENOSPC ? RN_EIO : rc) : 0;
}

/* Reads one commit file and applies it. */
static int read_commit(struct rn_delta *d, int64_t v, struct commit_info *ci)
{
	char path[64];
	struct rn_buf text = {0};
	int rc;

	commit_key(path, sizeof(path), v);
	if ((rc = read_file(d, path, &text)) == 0) {
		d->commit_ts = -1; /* until its commitInfo says */
		if ((rc = apply_text(d, path, text.data, text.len, ci)))
			d->stale = 1; /* part of version v may be in the snapshot */
	}
	rn_buf_free(&text);
	return rc;
}

static void free_ci(struct commit_info *ci)
{
	for (size_t i = 0; i < ci->nremoved; i++)
		rn_free(ci->removed[i]);
	rn_free(ci->removed);
}

/* ---- checkpoints: reading ---- */

static int ckpt_path(char *out, size_t cap, int64_t v)
{
	int n = snprintf(out, cap, LOG_DIR "/%020lld.checkpoint.parquet", (long long)v);
	return n < 0 || (size_t)n >= cap ? RN_EINVAL : 0;
}

/* _last_checkpoint's version, or -1 (missing or unreadable). */
static int64_t last_checkpoint(struct rn_delta *d)
{
	struct rn_buf b = {.max = 1 << 20};
	int64_t v = -1;
	if (read_file(d, LOG_DIR "/_last_checkpoint", &b) == 0 && b.len) {
		struct rn_json_span s = {(const char *)b.data, b.len};
		while (s.len && (s.p[s.len - 1] == '\n' || s.p[s.len - 1] == ' '))
			s.len--;
		struct txn_fields t = {.updated = -1};
		if (!rn_json_validate(s.p, s.len) && !rn_json_object_walk(s, txn_member, &t) &&
		    t.has_version && t.version >= 0)
			v = t.version;
		rn_buf_free(&t.app);
	}
	rn_buf_free(&b);
	return v;
}

/* Loads the checkpoint of version v as the whole state. */
static int load_checkpoint(struct rn_delta *d, int64_t v)
{
	char path[4096], why[256];
	struct rn_buf file = {.max = (size_t)1 << 30}, lines = {.max = (size_t)1 << 30};
	int rc;
	if (ckpt_path(path, sizeof(path), v))
		return RN_EINVAL;
	reset_state(d);
	if ((rc = read_file(d, path, &file)))
		goto out;
	if ((rc = rn_ckpt_decode(file.data, file.len, &lines, why, sizeof(why)))) {
		rc = fail(d, RN_EDELTA, "%s: %s", path, why);
		goto out;
	}
	if ((rc = apply_text(d, path, lines.data, lines.len, NULL)))
		goto out;
	if (!d->has_meta || d->min_reader < 0) {
		rc = fail(d, RN_EDELTA, "%s: no protocol or metaData", path);
		goto out;
	}
	d->version = v;
	d->ckpt_version = v;
out:
	rn_buf_free(&file);
	rn_buf_free(&lines);
	if (rc)
		reset_state(d);
	return rc;
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x > y ? -1 : x < y;
}

/* 1 if name is 20 digits + suffix (exactly), with the number in *v. */
static int versioned(const char *name, const char *suffix, int64_t *v)
{
	int64_t x = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		x = x * 10 + (name[i] - '0');
	}
	if (strcmp(name + 20, suffix))
		return 0;
	*v = x;
	return 1;
}

/* The name part of a key under _delta_log/. */
static const char *log_name(const char *key)
{
	return key + sizeof(LOG_DIR);
}

struct ckpt_list {
	int64_t *vers;
	size_t n;
};

static int add_ckpt(void *ctx, const struct rn_tstore_entry *e)
{
	struct ckpt_list *l = ctx;
	int64_t v;
	if (!versioned(log_name(e->key), ".checkpoint.parquet", &v))
		return 0;
	int64_t *t = rn_reallocarray(l->vers, l->n + 1, sizeof(*t));
	if (!t)
		return RN_ENOMEM; /* the ones found so far are tried */
	l->vers = t;
	l->vers[l->n++] = v;
	return 0;
}

/* Rebuilds the state from scratch: the newest readable checkpoint, else version 0. */
static int load_base(struct rn_delta *d)
{
	int64_t lc = last_checkpoint(d);
	struct ckpt_list l = {0};
	int64_t *vers;
	size_t n;
	int rc;
	if (lc >= 0 && load_checkpoint(d, lc) == 0)
		return 0;
	if (lc >= 0)
		rn_log_warn("delta", "%s: _last_checkpoint names version %lld: %s; looking further",
			    d->dir, (long long)lc, d->err);
	rn_tstore_list(d->st, LOG_DIR, 0, add_ckpt, &l);
	vers = l.vers;
	n = l.n;
	if (n)
		qsort(vers, n, sizeof(*vers), cmp_desc);
	for (size_t i = 0; i < n; i++) {
		if (vers[i] == lc)
			continue;
		if ((rc = load_checkpoint(d, vers[i])) == 0) {
			rn_free(vers);
			return 0;
		}
		rn_log_warn("delta", "%s: checkpoint %lld unreadable: %s", d->dir,
			    (long long)vers[i], d->err);
	}
	rn_free(vers);
	reset_state(d);
	d->ckpt_version = -1;
	return 0; /* replay from version 0 */
}

int rn_delta_refresh(struct rn_delta *d)
{
	int reloaded = 0;
	if (d->stale) {
		int rc;
		reset_state(d);
		d->ckpt_version = -1;
		if ((rc = load_base(d)))
			return rc;
		d->stale = 0;
	}
	for (;;) {
		int rc = read_commit(d, d->version + 1, NULL);
		if (rc == RN_ENOTFOUND) {
			/* another writer may have cleaned the next commits up behind a newer
			 * checkpoint (only after log_retention): start again from it */
			if (!reloaded && last_checkpoint(d) > d->version) {
				reloaded = 1;
				if ((rc = load_base(d)))
					return rc;
				continue;
			}
			if (d->version >= 0)
				return 0;
			return fail(d, RN_EDELTA,
				    "%s/" LOG_DIR ": version 0 is missing and no checkpoint "
				    "is readable",
				    d->dir);
		}
		if (rc)
			return rc;
		d->version++;
	}
}

int64_t rn_delta_version(const struct rn_delta *d)
{
	return d->version;
}

int64_t rn_delta_commit_time(const struct rn_delta *d)
{
	return d->commit_ts;
}

int64_t rn_delta_checkpoint_version(const struct rn_delta *d)
{
	return d->ckpt_version;
}

const char *rn_delta_dir(const struct rn_delta *d)
{
	return d->dir;
}

const struct rn_ckpt_file *const *rn_delta_files(const struct rn_delta *d, size_t *n)
{
	*n = d->nfiles;
	return (const struct rn_ckpt_file *const *)d->files;
}

/* Appends the commitInfo line. Every append is checked: a commit is written only whole, so
 * the first failure is returned (RN_ENOMEM) and the caller writes nothing. */
static int put_commit_info(struct rn_buf *b, const struct rn_delta *d, const char *op,
			   int64_t now_ms, size_t nadd)
{
	uuid_t u;
	char us[37];
	int rc;

	uuid_generate_random(u);
	uuid_unparse_lower(u, us);
	if (!strcmp(op, "OPTIMIZE")) /* a rewrite: not a blind append */
		rc = rn_buf_printf(
			b,
			"{\"commitInfo\":{\"timestamp\":%lld,\"operation\":\"OPTIMIZE\","
			"\"operationParameters\":{\"predicate\":\"[]\",\"auto\":true},"
			"\"isolationLevel\":\"SnapshotIsolation\",\"isBlindAppend\":false,"
			"\"operationMetrics\":{\"numAddedFiles\":\"1\","
			"\"numRemovedFiles\":\"%zu\"},\"engineInfo\":",
			(long long)now_ms, nadd);
	else
		rc = rn_buf_printf(
			b,
			"{\"commitInfo\":{\"timestamp\":%lld,\"operation\":\"%s\","
			"\"operationParameters\":{\"mode\":\"Append\",\"partitionBy\":\"[]\"},"
			"\"isolationLevel\":\"Serializable\",\"isBlindAppend\":true,"
			"\"operationMetrics\":{\"numFiles\":\"%zu\"},\"engineInfo\":",
			(long long)now_ms, op, nadd);
	rc = rc ? rc : rn_json_put_str(b, d->engine, strlen(d->engine));
	return rc ? rc : rn_buf_printf(b, ",\"txnId\":\"%s\"}}\n", us);
}

/*
 * Writes `text` as version v with put-if-absent: 0, RN_EEXIST if v is taken, or a failure.
 * When the store cannot tell whether the object was written (RN_EIO, RN_ECONNECT), version
 * v is read back: our bytes there set *ours (the version is ours, the failure is still
 * returned: its durability is not known), another writer's make it RN_EEXIST (a lost race),
 * none leaves the failure (nothing was taken). The text is never written at a second version
 * while the first attempt's outcome is open.
 */
static int put_if_absent(struct rn_delta *d, int64_t v, const struct rn_buf *text, int *ours)
{
	char key[64];
	int rc;

	*ours = 0;
	commit_key(key, sizeof(key), v);
	rc = rn_tstore_put_new(d->st, key, text->data, text->len);
	if (rc == 0 || rc == RN_EEXIST)
		return rc;
	rc = store_fail(d, rc);
	if (rc == RN_EIO || rc == RN_ECONNECT) {
		struct rn_buf b = {0};
		int r2 = rn_tstore_get(d->st, key, 0, -1, &b);
		if (r2 == 0 && b.len == text->len && !memcmp(b.data, text->data, b.len))
			*ours = 1;
		else if (r2 == 0) /* another writer's */
			rc = RN_EEXIST;
		rn_buf_free(&b);
	}
	return rc;
}

int rn_delta_open(struct rn_delta **out, const char *dir, const char *schema_json,
		  const char *engine_info)
{
	return rn_delta_open_part(out, dir, schema_json, NULL, 0, engine_info);
}

int rn_delta_open_part(struct rn_delta **out, const char *dir, const char *schema_json,
		       const char *const *parts, size_t nparts, const char *engine_info)
{
	struct rn_tstore *st;
	char err[256];
	int rc;

	*out = NULL;
	if ((rc = rn_tstore_open(&st, dir, NULL, err, sizeof(err)))) {
		if (rc != RN_ENOMEM)
			rn_log_error("delta", "cannot open table store %s: %s", dir, err);
		return rc;
	}
	return rn_delta_open_store_part(out, st, schema_json, parts, nparts, engine_info);
}

int rn_delta_open_store(struct rn_delta **out, struct rn_tstore *st, const char *schema_json,
			const char *engine_info)
{
	return rn_delta_open_store_part(out, st, schema_json, NULL, 0, engine_info);
}

int rn_delta_open_store_part(struct rn_delta **out, struct rn_tstore *st, const char *schema_json,
			     const char *const *parts, size_t nparts, const char *engine_info)
{
	const char *dir = rn_tstore_root(st);
	struct rn_delta *d;
	int rc, ok = 0;

	*out = NULL;
	if (!(d = rn_calloc(1, sizeof(*d)))) {
		rn_tstore_close(st);
		return RN_ENOMEM;
	}
	d->st = st;
	d->dir = rn_strdup(dir);
	d->engine = rn_strdup(engine_info ? engine_info : "runnel-server/" RN_VERSION);
	d->version = -1;
	d->ckpt_version = -1;
	d->commit_ts = -1;
	d->min_reader = d->min_writer = -1;
	d->meta.created_ms = -1;
	if (!d->dir || !d->engine) {
		rn_delta_close(d);
		return RN_ENOMEM;
	}
	if ((rc = rn_delta_exists_store(st)) < 0) {
		rn_log_error("delta", "cannot read table %s: %s", dir, rn_tstore_errmsg(st));
		rn_delta_close(d);
		return rc;
	}
	if (!rc) {
		if (!schema_json) {
			rn_delta_close(d);
			return RN_ENOTFOUND;
		}
		struct rn_buf t = {0};
		uuid_t u;
		char us[37];
		int64_t now = rn_now_us() / 1000;
		uuid_generate_random(u);
		uuid_unparse_lower(u, us);
		/* every append checked: version 0 is written whole or not at all */
		rc = put_commit_info(&t, d, "CREATE TABLE", now, 0);
		rc = rc ? rc
			: rn_buf_append_str(&t, "{\"protocol\":{\"minReaderVersion\":1,"
						"\"minWriterVersion\":2}}\n");
		rc = rc ? rc
			: rn_buf_printf(&t,
					"{\"metaData\":{\"id\":\"%s\",\"format\":{\"provider\":"
					"\"parquet\",\"options\":{}},\"schemaString\":",
					us);
		rc = rc ? rc : rn_json_put_str(&t, schema_json, strlen(schema_json));
		rc = rc ? rc : rn_buf_append_str(&t, ",\"partitionColumns\":[");
		for (size_t i = 0; i < nparts && !rc; i++) {
			if (i)
				rc = rn_buf_append_u8(&t, ',');
			rc = rc ? rc : rn_json_put_str(&t, parts[i], strlen(parts[i]));
		}
		rc = rc ? rc
			: rn_buf_printf(&t, "],\"configuration\":{},\"createdTime\":%lld}}\n",
					(long long)now);
		/* an unknown outcome fails the open even when version 0 turned out to be ours
		 * (its durability is not known); the next open finds the table */
		if (!rc)
			rc = put_if_absent(d, 0, &t, &ok);
		rn_buf_free(&t);
		if (rc && rc != RN_EEXIST) { /* EEXIST: another writer created it first */
			rn_log_error("delta", "cannot create table %s: %s", dir, d->err);
			rn_delta_close(d);
			return rc;
		}
	}
	if ((rc = load_base(d)) || (rc = rn_delta_refresh(d))) {
		rn_log_error("delta", "cannot read log of %s: %s", dir, d->err);
		rn_delta_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

void rn_delta_close(struct rn_delta *d)
{
	if (!d)
		return;
	reset_state(d);
	rn_free(d->txns);
	rn_strmap_free(&d->txn_ids);
	rn_free(d->files);
	rn_free(d->dir);
	rn_free(d->engine);
	rn_tstore_close(d->st);
	rn_free(d);
}

struct rn_tstore *rn_delta_store(const struct rn_delta *d)
{
	return d->st;
}

int rn_delta_write_file(struct rn_delta *d, const void *data, size_t len, char *name, size_t cap,
			int64_t *mtime_ms)
{
	return rn_delta_write_file_in(d, NULL, data, len, name, cap, mtime_ms);
}

int rn_delta_write_file_in(struct rn_delta *d, const char *subdir, const void *data, size_t len,
			   char *name, size_t cap, int64_t *mtime_ms)
{
	char base[128];
	uuid_t u;
	char us[37];
	struct rn_tstore_entry e;
	int rc = 0;

	if (subdir && !*subdir)
		subdir = NULL;
	if (subdir && (subdir[0] == '/' || !strcmp(subdir, "..") || !strncmp(subdir, "../", 3) ||
		       strstr(subdir, "/../") || strlen(subdir) > 3000))
		return fail(d, RN_EINVAL, "bad data file subdirectory");
	uuid_generate_random(u);
	uuid_unparse_lower(u, us);
	snprintf(base, sizeof(base), "part-00000-%s-c000.zstd.parquet", us);
	rc = snprintf(name, cap, "%s%s%s", subdir ? subdir : "", subdir ? "/" : "", base);
	if (rc < 0 || (size_t)rc >= cap)
		return fail(d, RN_EINVAL, "data file name does not fit");
	/* the store makes the partition directories (fs: each new one's parent fsynced) and
	 * refuses a name that is no key (RN_EINVAL) */
	if ((rc = rn_tstore_put(d->st, name, data, len)))
		return store_fail(d, rc);
	/* the store's own time when it has one (the object's mtime), else the clock's */
	if (rn_tstore_stat(d->st, name, &e) == 0)
		*mtime_ms = e.mtime_ms;
	else
		*mtime_ms = rn_now_us() / 1000;
	return 0;
}

/* Appends one add line; the first failed append is returned (see put_commit_info). */
static int put_add(struct rn_buf *t, const struct rn_delta_add *a, int data_change)
{
	int rc = rn_buf_append_str(t, "{\"add\":{\"path\":");
	rc = rc ? rc : rn_json_put_str(t, a->path, strlen(a->path));
	rc = rc ? rc
		: rn_buf_printf(t,
				",\"partitionValues\":%s,\"size\":%lld,"
				"\"modificationTime\":%lld,\"dataChange\":%s",
				a->partition_values ? a->partition_values : "{}",
				(long long)a->size, (long long)a->mtime_ms,
				data_change ? "true" : "false");
	if (a->stats) {
		rc = rc ? rc : rn_buf_append_str(t, ",\"stats\":");
		rc = rc ? rc : rn_json_put_str(t, a->stats, strlen(a->stats));
	}
	return rc ? rc : rn_buf_append_str(t, "}}\n");
}

/* Applies our own just-committed text to the snapshot (it is exactly what a replay of that
 * version would apply). */
static int apply_own(struct rn_delta *d, const struct rn_buf *t)
{
	d->commit_ts = -1;
	return apply_text(d, "own commit", t->data, t->len, NULL);
}

/* How the snapshot's txns meet ours: the number of our app ids it has at or past our
 * version in *covered; 1 when some of our rows are in the table and others not (an app id
 * covered while another is not, or another writer's txn inside first[i] .. version). */
static int txn_overlap(const struct rn_delta *d, const struct rn_delta_txn *txns,
		       const int64_t *first, size_t ntxn, size_t *covered)
{
	int inside = 0;
	*covered = 0;
	for (size_t i = 0; i < ntxn; i++) {
		int64_t v = rn_delta_txn(d, txns[i].app_id);
		if (v >= txns[i].version)
			(*covered)++;
		else if (first && v >= first[i])
			inside = 1;
	}
	return inside || (*covered && *covered < ntxn);
}

int rn_delta_commit(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
		    const struct rn_delta_txn *txns, size_t ntxn, int64_t *version)
{
	return rn_delta_commit_from(d, adds, nadd, txns, NULL, ntxn, version);
}

int rn_delta_commit_from(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
			 const struct rn_delta_txn *txns, const int64_t *first, size_t ntxn,
			 int64_t *version)
{
	struct rn_buf t = {0};
	int64_t now = rn_now_us() / 1000;
	size_t have = 0;
	int rc = 0;

	if (d->stale && (rc = rn_delta_refresh(d)))
		return rc;
	int part = txn_overlap(d, txns, first, ntxn, &have);
	if (ntxn && have == ntxn)
		return RN_EEXIST; /* already in the table (e.g. committed before a failure) */
	if (part && first)
		return fail(d, RN_EOVERLAP, "another writer committed part of these rows");
	/* The whole text is built before anything is written; the first failed append ends
	 * the call, so no version is taken by a partial or malformed commit. */
	rc = put_commit_info(&t, d, "STREAMING UPDATE", now, nadd);
	for (size_t i = 0; i < nadd && !rc; i++)
		rc = put_add(&t, &adds[i], 1);
	for (size_t i = 0; i < ntxn && !rc; i++) {
		rc = rn_buf_append_str(&t, "{\"txn\":{\"appId\":");
		rc = rc ? rc : rn_json_put_str(&t, txns[i].app_id, strlen(txns[i].app_id));
		rc = rc ? rc
			: rn_buf_printf(&t, ",\"version\":%lld,\"lastUpdated\":%lld}}\n",
					(long long)txns[i].version, (long long)now);
	}
	if (rc) {
		rc = fail(d, rc, "commit text: %s", rn_strerror(rc));
		goto out;
	}
	int already = 0, ours = 0;
	for (int attempt = 0; attempt < 1000; attempt++) {
		int64_t v = d->version + 1;
		rc = put_if_absent(d, v, &t, &ours);
		if (rc != RN_EEXIST)
			break;
		/* Lost the race for v: read what won, then decide. */
		struct commit_info ci = {0};
		size_t covered = 0;
		if ((rc = read_commit(d, v, &ci)))
			break;
		d->version = v;
		if (ci.meta_changed) {
			rc = fail(d, RN_ECONFLICT, "version %lld changed protocol or metadata",
				  (long long)v);
			break;
		}
		part = txn_overlap(d, txns, first, ntxn, &covered);
		if (ntxn && covered == ntxn) {
			rc = RN_EEXIST;
			already = 1;
			break;
		}
		if (part) {
			rc = fail(d, RN_EOVERLAP, "another writer committed part of these rows");
			break;
		}
		/* v was another writer's and nothing of ours is written: the last turn of the
		 * loop must not leave read_commit's 0 behind, which would report a commit that
		 * never happened at the version after v */
		rc = RN_EEXIST;
	}
	if (rc == RN_EEXIST && !already) /* lost every race: retry later, never "done" */
		rc = fail(d, RN_EAGAIN, "lost 1000 races for the next version; try again");
	if (rc && ours) {
		/* The version is ours, its durability unknown: the failure is reported, and the
		 * snapshot takes the version in, so a retry of these txns finds them committed
		 * (RN_EEXIST) instead of committing them again. */
		d->version++;
		if (apply_own(d, &t))
			d->stale = 1;
	}
	if (!rc) {
		/* The version is durable: it is ours whatever happens next. A snapshot that
		 * cannot take it in is rebuilt from the log before its next use. */
		d->version++;
		if (apply_own(d, &t))
			d->stale = 1;
		*version = d->version;
	}
out:
	rn_buf_free(&t);
	return rc;
}

int rn_delta_commit_rewrite(struct rn_delta *d, const char *const *removed, size_t nremoved,
			    const struct rn_delta_add *add, int64_t *version)
{
	struct rn_buf t = {0};
	int64_t now = rn_now_us() / 1000;
	int rc = 0;

	if (d->stale && (rc = rn_delta_refresh(d)))
		return rc;
	for (size_t i = 0; i < nremoved; i++) {
		ssize_t k = file_index(d, removed[i]);
		if (k < 0 || d->files[k]->is_remove)
			return fail(d, RN_ECONFLICT, "%s is no longer live", removed[i]);
	}
	rc = put_commit_info(&t, d, "OPTIMIZE", now, nremoved);
	for (size_t i = 0; i < nremoved && !rc; i++) {
		const struct rn_ckpt_file *f = d->files[file_index(d, removed[i])];
		rc = rn_buf_append_str(&t, "{\"remove\":{\"path\":");
		rc = rc ? rc : rn_json_put_str(&t, f->path, strlen(f->path));
		rc = rc ? rc
			: rn_buf_printf(&t,
					",\"deletionTimestamp\":%lld,\"dataChange\":false,"
					"\"extendedFileMetadata\":true,\"partitionValues\":{},"
					"\"size\":%lld}}\n",
					(long long)now, (long long)f->size);
	}
	rc = rc ? rc : put_add(&t, add, 0);
	if (rc) {
		rn_buf_free(&t);
		return fail(d, rc, "commit text: %s", rn_strerror(rc));
	}
	int ours = 0;
	for (int attempt = 0; attempt < 1000; attempt++) {
		int64_t v = d->version + 1;
		rc = put_if_absent(d, v, &t, &ours);
		if (rc != RN_EEXIST)
			break;
		struct commit_info ci = {.want_removed = 1};
		if ((rc = read_commit(d, v, &ci))) {
			free_ci(&ci);
			break;
		}
		d->version = v;
		int lost = ci.meta_changed;
		for (size_t i = 0; i < ci.nremoved && !lost; i++)
			for (size_t j = 0; j < nremoved && !lost; j++)
				lost = !strcmp(ci.removed[i], removed[j]);
		free_ci(&ci);
		if (lost) {
			rc = fail(d, RN_ECONFLICT,
				  "version %lld removed an input or changed the "
				  "metadata; compaction abandoned",
				  (long long)v);
			break;
		}
		rc = RN_EAGAIN;
	}
	if (rc == RN_EEXIST || rc == RN_EAGAIN)
		rc = fail(d, RN_EAGAIN, "lost 1000 races for the next version; try again");
	if (rc && ours) {
		/* The rewrite is in the log (its durability unknown): it is ours, and its new
		 * file is referenced, so the caller must keep it. Success, with a log line. */
		rn_log_warn("delta", "%s: compaction commit written, durability unknown: %s",
			    d->dir, d->err);
		rc = 0;
	}
	if (!rc) {
		/* The version is durable: it is ours whatever happens next. A snapshot that
		 * cannot take it in is rebuilt from the log before its next use. */
		d->version++;
		if (apply_own(d, &t))
			d->stale = 1;
		*version = d->version;
	}
	rn_buf_free(&t);
	return rc;
}

/* ---- checkpoints: writing ---- */

/* Replaces _delta_log/name durably with data (checkpoints and _last_checkpoint). */
static int write_replace(struct rn_delta *d, const char *name, const void *data, size_t len)
{
	char key[128];
	int rc;
	snprintf(key, sizeof(key), LOG_DIR "/%s", name);
	return (rc = rn_tstore_put(d->st, key, data, len)) ? store_fail(d, rc) : 0;
}

/* Decodes a relative add/remove path into its key in the store; RN_EINVAL for escapes,
 * absolute paths, URIs or "..". */
static int data_path(const char *rel, char *out, size_t cap)
{
	char dec[4096];
	size_t o = 0;
	for (const char *p = rel; *p; p++) {
		int c = (uint8_t)*p;
		if (c == '%') {
			unsigned x;
			if (!p[1] || !p[2] || sscanf(p + 1, "%2x", &x) != 1 || x == 0)
				return RN_EINVAL;
			c = (int)x;
			p += 2;
		}
		if (o + 1 >= sizeof(dec))
			return RN_EINVAL;
		dec[o++] = (char)c;
	}
	dec[o] = 0;
	if (!o || dec[0] == '/' || strstr(dec, "://") || !strcmp(dec, "..") ||
	    !strncmp(dec, "../", 3) || strstr(dec, "/../") ||
	    (o >= 3 && !strcmp(dec + o - 3, "/..")))
		return RN_EINVAL;
	int n = snprintf(out, cap, "%s", dec);
	return n < 0 || (size_t)n >= cap ? RN_EINVAL : 0;
}

int rn_delta_checkpoint(struct rn_delta *d, int64_t tombstone_retention_ms, int64_t *version)
{
	struct rn_buf out = {.max = (size_t)1 << 30};
	const struct rn_ckpt_file **keep = NULL;
	size_t nkeep = 0, rows, nadd = 0;
	int64_t now = rn_now_us() / 1000;
	char name[64], text[256], path[4400];
	struct rn_tstore_entry e;
	int rc;

	if ((rc = rn_delta_refresh(d)))
		return rc;
	if (!d->has_meta || d->min_reader < 0)
		return fail(d, RN_EDELTA, "no protocol or metaData to checkpoint");
	if (d->has_features || d->min_reader > 1 || d->min_writer > 2)
		return fail(d, RN_ENOTSUP, "protocol (%d,%d) with features: not checkpointed",
			    d->min_reader, d->min_writer);
	if (!(keep = rn_calloc(d->nfiles ? d->nfiles : 1, sizeof(*keep))))
		return RN_ENOMEM;
	for (size_t i = 0; i < d->nfiles; i++) {
		const struct rn_ckpt_file *f = d->files[i];
		/* An expired tombstone is dropped only once vacuum has deleted its file, so a
		 * checkpoint never makes a removed file invisible to vacuum. */
		if (f->is_remove && f->deletion_ms >= 0 &&
		    f->deletion_ms < now - tombstone_retention_ms &&
		    (data_path(f->path, path, sizeof(path)) ||
		     rn_tstore_stat(d->st, path, &e) == RN_ENOTFOUND))
			continue;
		nadd += !f->is_remove;
		keep[nkeep++] = f;
	}
	struct rn_ckpt_snapshot s = {d->min_reader, d->min_writer, &d->meta, keep,
				     nkeep,         d->txns,       d->ntxn};
	rc = rn_ckpt_encode(&s, NULL, &out, &rows);
	rn_free(keep);
	if (rc) {
		rn_buf_free(&out);
		return fail(d, rc, "checkpoint encoding: %s", rn_strerror(rc));
	}
	snprintf(name, sizeof(name), "%020lld.checkpoint.parquet", (long long)d->version);
	rc = write_replace(d, name, out.data, out.len);
	if (!rc && last_checkpoint(d) <= d->version) { /* never move it backwards */
		snprintf(text, sizeof(text),
			 "{\"version\":%lld,\"size\":%zu,\"sizeInBytes\":%zu,\"numOfAddFiles\":%zu}"
			 "\n",
			 (long long)d->version, rows, out.len, nadd);
		rc = write_replace(d, "_last_checkpoint", text, strlen(text));
	}
	rn_buf_free(&out);
	if (!rc) {
		d->ckpt_version = d->version;
		if (version)
			*version = d->version;
	}
	return rc;
}

int rn_delta_cleanup(struct rn_delta *d, int64_t retention_ms, size_t *deleted)
{
	return rn_delta_cleanup_below(d, retention_ms, INT64_MAX, deleted);
}

struct cleanup {
	struct rn_delta *d;
	int64_t ck, below, cutoff, retention_ms;
	size_t deleted;
};

static int cleanup_one(void *ctx, const struct rn_tstore_entry *e)
{
	struct cleanup *c = ctx;
	const char *name = log_name(e->key);
	int64_t v;
	int is_json = versioned(name, ".json", &v);
	if (!is_json && !versioned(name, ".checkpoint.parquet", &v))
		return 0;
	/* keep the newest checkpoint and its JSON commit, and everything after; and what
	 * another writer may still need (below) */
	if (v >= c->ck || v >= c->below)
		return 0;
	if (e->mtime_ms >= c->cutoff && c->retention_ms >= 0)
		return 0;
	if (rn_tstore_delete(c->d->st, e->key) == 0) /* a failed one goes next time */
		c->deleted++;
	return 0;
}

int rn_delta_cleanup_below(struct rn_delta *d, int64_t retention_ms, int64_t below, size_t *deleted)
{
	struct cleanup c = {
		d, last_checkpoint(d), below, rn_now_us() / 1000 - retention_ms, retention_ms, 0};
	int rc;

	*deleted = 0;
	if (c.ck < 0)
		return 0; /* nothing may go without a checkpoint */
	/* deletes need not be durable: one that comes back after a crash goes next time */
	rc = rn_tstore_list(d->st, LOG_DIR, 0, cleanup_one, &c);
	*deleted = c.deleted;
	return rc ? store_fail(d, rc == RN_ENOMEM ? rc : RN_EIO) : 0;
}

int rn_delta_vacuum(struct rn_delta *d, int64_t retention_ms, int dry_run,
		    void (*cb)(void *ctx, const char *path, int64_t size), void *ctx,
		    size_t *nfiles, int64_t *bytes)
{
	int64_t cutoff = rn_now_us() / 1000 - retention_ms;
	char path[4400];
	struct rn_tstore_entry st;
	int rc;

	*nfiles = 0;
	*bytes = 0;
	if ((rc = rn_delta_refresh(d)))
		return rc;
	for (size_t i = 0; i < d->nfiles; i++) {
		const struct rn_ckpt_file *f = d->files[i];
		/* only tombstones: the newest action for the path is a remove, so no live add
		 * references it (the path map holds one entry per path) */
		if (!f->is_remove || f->deletion_ms < 0 || f->deletion_ms > cutoff)
			continue;
		if (data_path(f->path, path, sizeof(path))) {
			rn_log_warn("delta", "%s: vacuum skips odd path %s", d->dir, f->path);
			continue;
		}
		if (rn_tstore_stat(d->st, path, &st))
			continue; /* already gone (or unreadable now: next time) */
		if (!dry_run && (rc = rn_tstore_delete(d->st, path))) {
			rc = store_fail(d, rc == RN_ENOSPC ? RN_EIO : rc);
			break;
		}
		(*nfiles)++;
		*bytes += st.size;
		if (cb)
			cb(ctx, f->path, st.size);
	}
	/* deletes need not be durable: a file that comes back after a crash is still a
	 * tombstone's and goes at the next vacuum */
	return rc;
}

/* ---- vacuum of orphans ---- */

struct orphans {
	int64_t cutoff;
	const struct rn_strmap *named; /* keys the snapshot names: never candidates */
	char **keys;                   /* candidates: data files older than cutoff */
	int64_t *sizes;
	size_t n, cap, kcap; /* cap: of sizes; kcap: of keys (they grow apart on failure) */
	char **nested;       /* roots of nested tables ("x/y" for "x/y/_delta_log/...") */
	size_t nn, capn;
	int full; /* RN_DELTA_ORPHAN_MAX candidates: the rest next time */
};

/* 1 if a component of key starts with '.' or '_' (Delta's hidden files: the log, temp
 * files, change data, ...). */
static int hidden_key(const char *key)
{
	for (const char *p = key; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (*p == '.' || *p == '_')
			return 1;
	}
	return 0;
}

static int orphan_entry(void *ctx, const struct rn_tstore_entry *e)
{
	struct orphans *o = ctx;
	const char *log = strstr(e->key, "/" LOG_DIR "/");
	char *k;

	if (log) { /* a nested table's log: nothing of that table is ours */
		size_t len = (size_t)(log - e->key);
		if (o->nn && strlen(o->nested[o->nn - 1]) == len &&
		    !memcmp(o->nested[o->nn - 1], e->key, len))
			return 0;
		if (rn_grow(&o->nested, &o->capn, o->nn, sizeof(char *), 8, SIZE_MAX) ||
		    !(k = rn_strndup(e->key, len)))
			return RN_ENOMEM;
		o->nested[o->nn++] = k;
		return 0;
	}
	/* younger than the retention: maybe a flush or compaction about to commit it */
	if (hidden_key(e->key) || e->mtime_ms < 0 || e->mtime_ms >= o->cutoff ||
	    rn_strmap_get(o->named, e->key, strlen(e->key)))
		return 0;
	if (o->n >= RN_DELTA_ORPHAN_MAX) {
		o->full = 1;
		return 1;
	}
	if (rn_grow(&o->keys, &o->kcap, o->n, sizeof(char *), 64, SIZE_MAX) ||
	    rn_grow(&o->sizes, &o->cap, o->n, sizeof(int64_t), 64, SIZE_MAX))
		return RN_ENOMEM;
	if (!(k = rn_strdup(e->key)))
		return RN_ENOMEM;
	o->sizes[o->n] = e->size;
	o->keys[o->n++] = k;
	return 0;
}

static int under_nested(const struct orphans *o, const char *key)
{
	for (size_t i = 0; i < o->nn; i++) {
		size_t len = strlen(o->nested[i]);
		if (!strncmp(key, o->nested[i], len) && key[len] == '/')
			return 1;
	}
	return 0;
}

/* The snapshot's paths (live adds and tombstones) as store keys, in n->map; n->keys owns
 * them. RN_EDELTA for a path outside the table, RN_ENOMEM. */
struct named {
	struct rn_strmap map;
	char **keys;
	size_t n;
};

static void named_free(struct named *n)
{
	rn_strmap_free(&n->map);
	for (size_t i = 0; i < n->n; i++)
		rn_free(n->keys[i]);
	rn_free(n->keys);
	*n = (struct named){0};
}

static int named_build(struct rn_delta *d, struct named *n)
{
	named_free(n);
	if (!(n->keys = rn_calloc(d->nfiles ? d->nfiles : 1, sizeof(*n->keys))))
		return fail(d, RN_ENOMEM, "vacuum: out of memory");
	for (size_t i = 0; i < d->nfiles; i++) {
		char path[4400];
		if (data_path(d->files[i]->path, path, sizeof(path)))
			return fail(d, RN_EDELTA,
				    "vacuum: the log names %s, which is not a path inside the "
				    "table: unreferenced files are not deleted",
				    d->files[i]->path);
		if (!(n->keys[n->n] = rn_strdup(path)))
			return fail(d, RN_ENOMEM, "vacuum: out of memory");
		n->n++;
		if (rn_strmap_put(&n->map, n->keys[n->n - 1], strlen(path), n->keys[n->n - 1]))
			return fail(d, RN_ENOMEM, "vacuum: out of memory");
	}
	return 0;
}

int rn_delta_vacuum_orphans(struct rn_delta *d, int64_t retention_ms, int dry_run,
			    void (*cb)(void *ctx, const char *path, int64_t size), void *ctx,
			    size_t *nfiles, int64_t *bytes)
{
	struct named named = {0};
	struct orphans o = {.cutoff = rn_now_us() / 1000 - (retention_ms > 0 ? retention_ms : 0),
			    .named = &named.map};
	int rc;

	*nfiles = 0;
	*bytes = 0;
	/* The snapshot before the listing filters it (memory stays bounded by the orphans, not
	 * the table): a path it names stays named in any later snapshot, as a live add or a
	 * tombstone (a checkpoint drops a tombstone only once its file is gone). */
	if ((rc = rn_delta_refresh(d)) || (rc = named_build(d, &named)))
		goto out;
	rc = rn_tstore_list(d->st, NULL, 1, orphan_entry, &o);
	if (rc == 1 && o.full) {
		rn_log_info("delta",
			    "%s: vacuum: more than %zu unreferenced files; the rest next time",
			    d->dir, RN_DELTA_ORPHAN_MAX);
		rc = 0;
	}
	if (rc) {
		rc = rc == RN_ENOMEM ? fail(d, rc, "vacuum: out of memory listing the table")
				     : store_fail(d, RN_EIO);
		goto out;
	}
	if (!o.n)
		goto out;
	/* and the snapshot after the listing decides: a file committed while the listing ran
	 * is named there */
	if ((rc = rn_delta_refresh(d)) || (rc = named_build(d, &named)))
		goto out;
	for (size_t i = 0; i < o.n; i++) {
		const char *k = o.keys[i];
		if (rn_strmap_get(&named.map, k, strlen(k)) || under_nested(&o, k))
			continue;
		if (!dry_run && (rc = rn_tstore_delete(d->st, k))) {
			rc = store_fail(d, rc == RN_ENOSPC ? RN_EIO : rc);
			break;
		}
		(*nfiles)++;
		*bytes += o.sizes[i];
		if (cb)
			cb(ctx, k, o.sizes[i]);
	}
	/* deletes need not be durable: one that comes back is still unreferenced */
out:
	named_free(&named);
	for (size_t i = 0; i < o.n; i++)
		rn_free(o.keys[i]);
	for (size_t i = 0; i < o.nn; i++)
		rn_free(o.nested[i]);
	rn_free(o.keys);
	rn_free(o.sizes);
	rn_free(o.nested);
	return rc;
}

const char *rn_delta_errmsg(const struct rn_delta *d)
{
	return d->err;
}

const char *rn_delta_schema(const struct rn_delta *d)
{
	return d->has_meta ? d->meta.schema : NULL;
}

char *const *rn_delta_partition_columns(const struct rn_delta *d, size_t *n)
{
	*n = d->has_meta ? d->meta.nparts : 0;
	return *n ? d->meta.part_cols : NULL;
}
