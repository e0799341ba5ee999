/*
 * Delta table writer and incremental log reader; see delta.h. Durability order for a commit:
 * data files are fsynced (and their directory) before the commit that names them; the commit
 * file is written under a dot-prefixed temp name (ignored by readers), fsynced, then
 * link()ed to its final name, which fails with EEXIST if another writer won that version.
 * The _delta_log directory is fsynced after the link.
 */
#include "delta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_fs.h"
#include "rn_json.h"
#include "rn_log.h"
#include "rn_mem.h"

struct txn_entry {
	char *app_id;
	int64_t version;
};

struct rn_delta {
	char *dir;
	char *log_dir;
	char *engine;
	int64_t version; /* latest version read or committed; -1 = none */
	struct txn_entry *txns;
	size_t ntxn, captxn;
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

static int errno_rc(void)
{
	return errno == ENOSPC || errno == EDQUOT ? RN_ENOSPC : RN_EIO;
}

static void commit_name(char *out, size_t cap, const char *log_dir, int64_t v)
{
	snprintf(out, cap, "%s/%020lld.json", log_dir, (long long)v);
}

int rn_delta_exists(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/_delta_log/%020d.json", dir, 0);
	return access(p, F_OK) == 0;
}

static int set_txn(struct rn_delta *d, const char *app, size_t len, int64_t v)
{
	for (size_t i = 0; i < d->ntxn; i++) {
		if (strlen(d->txns[i].app_id) == len && !memcmp(d->txns[i].app_id, app, len)) {
			if (v > d->txns[i].version)
				d->txns[i].version = v;
			return 0;
		}
	}
	if (d->ntxn == d->captxn) {
		size_t nc = d->captxn ? d->captxn * 2 : 16;
		struct txn_entry *t = rn_reallocarray(d->txns, nc, sizeof(*t));
		if (!t)
			return RN_ENOMEM;
		d->txns = t;
		d->captxn = nc;
	}
	if (!(d->txns[d->ntxn].app_id = rn_strndup(app, len)))
		return RN_ENOMEM;
	d->txns[d->ntxn++].version = v;
	return 0;
}

int64_t rn_delta_txn(const struct rn_delta *d, const char *app_id)
{
	for (size_t i = 0; i < d->ntxn; i++)
		if (!strcmp(d->txns[i].app_id, app_id))
			return d->txns[i].version;
	return -1;
}

/* What one log line holds, as far as the writer cares. */
struct line_info {
	int meta_or_protocol;
	int has_txn;
	struct rn_buf app;
	int64_t version;
};

static int txn_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_info *li = ctx;
	if (rn_json_span_eq(k, "appId")) {
		rn_buf_reset(&li->app);
		return rn_json_string(v, &li->app) ? RN_EINVAL : 0;
	}
	if (rn_json_span_eq(k, "version"))
		return rn_json_int64(v, &li->version) ? RN_EINVAL : 0;
	return 0;
}

static int action_member(void *ctx, struct rn_json_span k, struct rn_json_span v)
{
	struct line_info *li = ctx;
	if (rn_json_span_eq(k, "metaData") || rn_json_span_eq(k, "protocol"))
		li->meta_or_protocol = 1;
	if (rn_json_span_eq(k, "txn")) {
		li->has_txn = 1;
		return rn_json_object_walk(v, txn_member, li);
	}
	return 0;
}

/* Reads one commit file, applying its txn actions. *conflict_meta is set if it changes the
 * protocol or metadata. */
static int read_commit(struct rn_delta *d, int64_t v, int *meta_changed)
{
	char path[4096];
	struct rn_buf text = {0};
	struct line_info li = {0};
	char tmp[65536];
	ssize_t n;
	int fd, rc = 0;

	commit_name(path, sizeof(path), d->log_dir, v);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? RN_ENOTFOUND : fail(d, RN_EIO, "%s: %s", path, strerror(errno));
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		if ((rc = rn_buf_append(&text, tmp, (size_t)n)))
			break;
	close(fd);
	if (n < 0)
		rc = fail(d, RN_EIO, "%s: %s", path, strerror(errno));
	for (size_t off = 0; !rc && off < text.len;) {
		const char *line = (const char *)text.data + off;
		const char *nl = memchr(line, '\n', text.len - off);
		size_t len = nl ? (size_t)(nl - line) : text.len - off;
		off += len + 1;
		if (len == 0)
			continue;
		li.has_txn = 0;
		li.version = -1;
		struct rn_json_span s = {line, len};
		if (rn_json_object_walk(s, action_member, &li)) {
			rc = fail(d, RN_EDELTA, "%s: malformed action line", path);
			break;
		}
		if (li.has_txn && li.app.len)
			rc = set_txn(d, (const char *)li.app.data, li.app.len, li.version);
	}
	if (meta_changed)
		*meta_changed = li.meta_or_protocol;
	rn_buf_free(&li.app);
	rn_buf_free(&text);
	return rc;
}

int rn_delta_refresh(struct rn_delta *d)
{
	for (;;) {
		int rc = read_commit(d, d->version + 1, NULL);
		if (rc == RN_ENOTFOUND)
			return 0;
		if (rc)
			return rc;
		d->version++;
	}
}

int64_t rn_delta_version(const struct rn_delta *d)
{
	return d->version;
}

static void put_commit_info(struct rn_buf *b, const struct rn_delta *d, const char *op,
			    int64_t now_ms, size_t nadd)
{
	uuid_t u;
	char us[37];
	uuid_generate_random(u);
	uuid_unparse_lower(u, us);
	rn_buf_printf(b,
		      "{\"commitInfo\":{\"timestamp\":%lld,\"operation\":\"%s\","
		      "\"operationParameters\":{\"mode\":\"Append\",\"partitionBy\":\"[]\"},"
		      "\"isolationLevel\":\"Serializable\",\"isBlindAppend\":true,"
		      "\"operationMetrics\":{\"numFiles\":\"%zu\"},\"engineInfo\":",
		      (long long)now_ms, op, nadd);
	rn_json_put_str(b, d->engine, strlen(d->engine));
	rn_buf_printf(b, ",\"txnId\":\"%s\"}}\n", us);
}

/* Writes `text` as version v with put-if-absent. RN_EEXIST if v is taken. */
static int put_if_absent(struct rn_delta *d, int64_t v, const struct rn_buf *text)
{
	char final[4096], tmp[4200];
	uuid_t u;
	char us[37];
	int fd, rc = 0;

	uuid_generate_random(u);
	uuid_unparse_lower(u, us);
	commit_name(final, sizeof(final), d->log_dir, v);
	snprintf(tmp, sizeof(tmp), "%s/.%020lld.json.%s.tmp", d->log_dir, (long long)v, us);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return fail(d, errno_rc(), "%s: %s", tmp, strerror(errno));
	if (rn_write_all(fd, text->data, text->len))
		rc = fail(d, errno_rc(), "write %s: %s", tmp, strerror(errno));
	if (!rc && fsync(fd))
		rc = fail(d, errno_rc(), "fsync %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && link(tmp, final)) {
		if (errno == EEXIST)
			rc = RN_EEXIST;
		else
			rc = fail(d, errno_rc(), "link %s: %s", final, strerror(errno));
	}
	unlink(tmp);
	if (!rc && rn_fsync_dir(d->log_dir))
		rc = fail(d, errno_rc(), "fsync %s: %s", d->log_dir, strerror(errno));
	return rc;
}

int rn_delta_open(struct rn_delta **out, const char *dir, const char *schema_json,
		  const char *engine_info)
{
	struct rn_delta *d;
	char buf[4096];
	int rc;

	*out = NULL;
	if (!(d = rn_calloc(1, sizeof(*d))))
		return RN_ENOMEM;
	snprintf(buf, sizeof(buf), "%s/_delta_log", dir);
	d->dir = rn_strdup(dir);
	d->log_dir = rn_strdup(buf);
	d->engine = rn_strdup(engine_info ? engine_info : "runnel-server/" RN_VERSION);
	d->version = -1;
	if (!d->dir || !d->log_dir || !d->engine) {
		rn_delta_close(d);
		return RN_ENOMEM;
	}
	if (!rn_delta_exists(dir)) {
		if (!schema_json) {
			rn_delta_close(d);
			return RN_ENOTFOUND;
		}
		if (rn_mkdir_p(d->log_dir)) {
			rc = errno_rc();
			rn_log_error("delta", "cannot create %s: %s", d->log_dir, strerror(errno));
			rn_delta_close(d);
			return rc;
		}
		struct rn_buf t = {0};
		uuid_t u;
		char us[37];
		int64_t now = rn_now_us() / 1000;
		uuid_generate_random(u);
		uuid_unparse_lower(u, us);
		put_commit_info(&t, d, "CREATE TABLE", now, 0);
		rn_buf_append_str(&t, "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n");
		rn_buf_printf(&t, "{\"metaData\":{\"id\":\"%s\",\"format\":{\"provider\":\"parquet\","
			      "\"options\":{}},\"schemaString\":", us);
		rn_json_put_str(&t, schema_json, strlen(schema_json));
		rc = rn_buf_printf(&t, ",\"partitionColumns\":[],\"configuration\":{},"
				   "\"createdTime\":%lld}}\n", (long long)now);
		if (!rc)
			rc = put_if_absent(d, 0, &t);
		rn_buf_free(&t);
		if (rc && rc != RN_EEXIST) { /* EEXIST: another writer created it first */
			rn_log_error("delta", "cannot create table %s: %s", dir, d->err);
			rn_delta_close(d);
			return rc;
		}
	}
	if ((rc = rn_delta_refresh(d))) {
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
	for (size_t i = 0; i < d->ntxn; i++)
		rn_free(d->txns[i].app_id);
	rn_free(d->txns);
	rn_free(d->dir);
	rn_free(d->log_dir);
	rn_free(d->engine);
	rn_free(d);
}

int rn_delta_write_file(struct rn_delta *d, const void *data, size_t len, char *name,
			size_t cap, int64_t *mtime_ms)
{
	char tmp[4200], final[4200];
	uuid_t u;
	char us[37];
	struct stat st;
	int fd, rc = 0;

	uuid_generate_random(u);
	uuid_unparse_lower(u, us);
	snprintf(name, cap, "part-00000-%s-c000.zstd.parquet", us);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", d->dir, name);
	snprintf(final, sizeof(final), "%s/%s", d->dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return fail(d, errno_rc(), "%s: %s", tmp, strerror(errno));
	if (rn_write_all(fd, data, len))
		rc = fail(d, errno_rc(), "write %s: %s", tmp, strerror(errno));
	if (!rc && fsync(fd))
		rc = fail(d, errno_rc(), "fsync %s: %s", tmp, strerror(errno));
	if (!rc && fstat(fd, &st))
		rc = fail(d, RN_EIO, "stat %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && rename(tmp, final))
		rc = fail(d, errno_rc(), "rename %s: %s", final, strerror(errno));
	if (!rc && rn_fsync_dir(d->dir))
		rc = fail(d, errno_rc(), "fsync %s: %s", d->dir, strerror(errno));
	if (rc) {
		unlink(tmp);
		return rc;
	}
	*mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	return 0;
}

int rn_delta_commit(struct rn_delta *d, const struct rn_delta_add *adds, size_t nadd,
		    const struct rn_delta_txn *txns, size_t ntxn, int64_t *version)
{
	struct rn_buf t = {0};
	int64_t now = rn_now_us() / 1000;
	int rc = 0;

	put_commit_info(&t, d, "STREAMING UPDATE", now, nadd);
	for (size_t i = 0; i < nadd; i++) {
		rn_buf_append_str(&t, "{\"add\":{\"path\":");
		rn_json_put_str(&t, adds[i].path, strlen(adds[i].path));
		rn_buf_printf(&t, ",\"partitionValues\":{},\"size\":%lld,\"modificationTime\":%lld,"
			      "\"dataChange\":true", (long long)adds[i].size,
			      (long long)adds[i].mtime_ms);
		if (adds[i].stats) {
			rn_buf_append_str(&t, ",\"stats\":");
			rn_json_put_str(&t, adds[i].stats, strlen(adds[i].stats));
		}
		rn_buf_append_str(&t, "}}\n");
	}
	for (size_t i = 0; i < ntxn; i++) {
		rn_buf_append_str(&t, "{\"txn\":{\"appId\":");
		rn_json_put_str(&t, txns[i].app_id, strlen(txns[i].app_id));
		rc = rn_buf_printf(&t, ",\"version\":%lld,\"lastUpdated\":%lld}}\n",
				   (long long)txns[i].version, (long long)now);
	}
	if (rc)
		goto out;
	int already = 0;
	for (int attempt = 0; attempt < 1000; attempt++) {
		int64_t v = d->version + 1;
		rc = put_if_absent(d, v, &t);
		if (rc != RN_EEXIST)
			break;
		/* Lost the race for v: read what won, then decide. */
		int meta = 0;
		size_t covered = 0;
		if ((rc = read_commit(d, v, &meta)))
			break;
		d->version = v;
		if (meta) {
			rc = fail(d, RN_ECONFLICT, "version %lld changed protocol or metadata",
				  (long long)v);
			break;
		}
		for (size_t i = 0; i < ntxn; i++)
			if (rn_delta_txn(d, txns[i].app_id) >= txns[i].version)
				covered++;
		if (ntxn && covered == ntxn) {
			rc = RN_EEXIST;
			already = 1;
			break;
		}
		if (covered) {
			rc = fail(d, RN_ECONFLICT, "another writer committed part of this batch");
			break;
		}
	}
	if (rc == RN_EEXIST && !already) /* lost every race: retry later, never "done" */
		rc = fail(d, RN_EAGAIN, "lost 1000 races for the next version; try again");
	if (!rc) {
		d->version++;
		for (size_t i = 0; i < ntxn && !rc; i++)
			rc = set_txn(d, txns[i].app_id, strlen(txns[i].app_id), txns[i].version);
		if (!rc)
			*version = d->version;
	}
out:
	rn_buf_free(&t);
	return rc;
}

const char *rn_delta_errmsg(const struct rn_delta *d)
{
	return d->err;
}
