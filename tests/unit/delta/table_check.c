/*
 * The sweeps' table reader; see table_check.h. Uses only the read side of the project
 * (log.c, pqread.c) and plain stdio, so that what it accepts is what a reader would accept.
 */
#include "table_check.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "pqread.h"
#include "rn_buf.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"

static int bad(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int slurp(const char *path, struct rn_buf *out)
{
	char tmp[65536];
	size_t n;
	FILE *f = fopen(path, "rb");
	rn_buf_reset(out);
	if (!f)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (rn_buf_append(out, tmp, n)) {
			fclose(f);
			return -1;
		}
	fclose(f);
	return 0;
}

/* One version file: whole lines, a commitInfo first, adds as many as it announces. */
static int check_version_text(const char *path, const struct rn_buf *t, char *why, size_t cap)
{
	const char *s = (const char *)t->data;
	size_t adds = 0;
	if (!t->len || s[t->len - 1] != '\n')
		return bad(why, cap, "%s: empty or without its final newline%s", path, "");
	if (strncmp(s, "{\"commitInfo\":{", 15))
		return bad(why, cap, "%s: does not start with commitInfo%s", path, "");
	for (size_t off = 0; off < t->len;) {
		const char *nl = memchr(s + off, '\n', t->len - off);
		if (!strncmp(s + off, "{\"add\":{", 8))
			adds++;
		off = (size_t)(nl - s) + 1;
	}
	const char *nf = strstr(s, "\"numFiles\":\"");
	if (nf && strtoull(nf + 12, NULL, 10) != adds)
		return bad(why, cap, "%s: commitInfo announces other than its adds%s", path, "");
	return 0;
}

struct rowctx {
	rn_tc_row_fn fn;
	void *ctx;
	const struct rn_pqr_node *nodes;
	const char *stream;
	size_t slen;
	int64_t seq;
	int64_t rows;
	int bad_attrs; /* an attributes value that is not a JSON object */
};

static int top_is(const struct rowctx *c, const struct rn_pqr_node *n, const char *name)
{
	return n->parent == 0 && n != &c->nodes[0] && !strcmp(n->name, name);
}

static int r_value(void *ctx, const struct rn_pqr_node *n, const struct rn_pqr_value *v)
{
	struct rowctx *c = ctx;
	if (top_is(c, n, "stream_id")) {
		c->stream = (const char *)v->p;
		c->slen = v->len;
	} else if (top_is(c, n, "seq")) {
		c->seq = v->i;
	} else if (top_is(c, n, "attributes") &&
		   (!v->len || v->p[0] != '{' || rn_json_validate((const char *)v->p, v->len))) {
		c->bad_attrs = 1;
	}
	return 0;
}

static int r_row_end(void *ctx)
{
	struct rowctx *c = ctx;
	if (c->fn)
		c->fn(c->ctx, c->stream, c->slen, c->seq);
	c->stream = NULL;
	c->slen = 0;
	c->seq = -1;
	c->rows++;
	return 0;
}

/* Reads one data file whole; its rows go to fn. */
static int check_data_file(const char *dir, const struct rn_dlog_file *f, rn_tc_row_fn fn,
			   void *ctx, char *why, size_t cap)
{
	char rel[4096], path[8192];
	struct rn_buf data = {0};
	struct rn_pqr *r = NULL;
	int rc = -1;

	if (f->num_records < 0)
		return bad(why, cap, "add %s has no stats", f->path);
	if (rn_dlog_uri_decode(f->path, rel, sizeof(rel)))
		return bad(why, cap, "add path %s%s does not decode", f->path, "");
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (slurp(path, &data)) {
		bad(why, cap, "%s%s: an add points at a missing file", path, "");
		goto out;
	}
	if ((int64_t)data.len != f->size) {
		bad(why, cap, "%s%s: size differs from its add", path, "");
		goto out;
	}
	if (rn_pqr_open(&r, data.data, data.len, 0)) {
		bad(why, cap, "%s: not a complete Parquet file: %s", path,
		    r ? rn_pqr_errmsg(r) : "");
		goto out;
	}
	size_t nn;
	struct rowctx c = {fn, ctx, rn_pqr_nodes(r, &nn), NULL, 0, -1, 0, 0};
	struct rn_pqr_sink sink = {NULL, NULL, NULL, r_value, r_row_end};
	if (rn_pqr_read(r, &sink, &c)) {
		bad(why, cap, "%s: unreadable Parquet: %s", path, rn_pqr_errmsg(r));
		goto out;
	}
	if (c.bad_attrs) {
		bad(why, cap, "%s: an attributes value is not a JSON object", path);
		goto out;
	}
	if (c.rows != rn_pqr_num_rows(r) || (f->num_records >= 0 && c.rows != f->num_records)) {
		bad(why, cap, "%s%s: row count differs from its footer or stats", path, "");
		goto out;
	}
	rc = 0;
out:
	rn_pqr_close(r);
	rn_buf_free(&data);
	return rc;
}

int rn_tc_check(const char *dir, rn_tc_row_fn row, void *ctx, int64_t *version, char *why,
		size_t cap)
{
	char logdir[4096], path[8192];
	struct rn_dlog *l = NULL, *lc = NULL;
	struct rn_buf text = {0};
	int rc = -1, has_ckpt = 0;
	DIR *d;

	*version = -1;
	why[0] = 0;
	snprintf(logdir, sizeof(logdir), "%s/_delta_log", dir);
	snprintf(path, sizeof(path), "%s/%020d.json", logdir, 0);
	if (!(d = opendir(logdir)))
		return 0;
	struct dirent *de;
	int has_v0 = 0;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (strlen(n) == 25 && !strcmp(n + 20, ".json"))
			has_v0 |= !strcmp(n, "00000000000000000000.json");
		has_ckpt |= strstr(n, ".checkpoint.parquet") != NULL && n[0] != '.';
	}
	closedir(d);
	if (!has_v0 && !has_ckpt)
		return 0; /* nothing committed yet: no table */
	if (rn_dlog_create(&l) || rn_dlog_load(l, dir)) {
		bad(why, cap, "log of %s does not replay: %s", dir, l ? rn_dlog_errmsg(l) : "");
		goto out;
	}
	*version = rn_dlog_version(l);
	/* what readers survive but a healthy log never holds (unreadable stats, duplicate
	 * adds, a txn going backwards, a missing final newline) */
	size_t nw, total;
	const char *const *w = rn_dlog_warnings(l, &nw, &total);
	if (total) {
		bad(why, cap, "log of %s: %s", dir, nw ? w[0] : "warnings");
		goto out;
	}
	/* every version file, whole and consistent; none past the replayed version */
	if (!(d = opendir(logdir))) {
		bad(why, cap, "%s%s: cannot list", logdir, "");
		goto out;
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (strlen(n) != 25 || strcmp(n + 20, ".json") || n[0] == '.')
			continue;
		if (strtoll(n, NULL, 10) > *version) {
			closedir(d);
			bad(why, cap, "%s/%s: a version past the replayed one", logdir, n);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", logdir, n);
		if (slurp(path, &text) || check_version_text(path, &text, why, cap)) {
			closedir(d);
			if (!why[0])
				bad(why, cap, "%s%s: unreadable", path, "");
			goto out;
		}
	}
	closedir(d);
	/* a checkpoint must say the same as the JSON replay it stands for (when it is the
	 * newest version; an older one is checked by the replay that starts from it) */
	if (has_ckpt) {
		int64_t start, last, lsize, newest;
		size_t na, nb;
		if (rn_dlog_create(&lc) || rn_dlog_load_mode(lc, dir, 1)) {
			bad(why, cap, "checkpoint of %s does not load: %s", dir,
			    lc ? rn_dlog_errmsg(lc) : "");
			goto out;
		}
		rn_dlog_checkpoint_info(lc, &start, &last, &lsize, &newest);
		rn_dlog_files(l, &na);
		rn_dlog_files(lc, &nb);
		if (rn_dlog_version(lc) != *version || na != nb) {
			bad(why, cap, "%s%s: replay from the checkpoint differs", dir, "");
			goto out;
		}
	}
	size_t nf;
	const struct rn_dlog_file *files = rn_dlog_files(l, &nf);
	for (size_t i = 0; i < nf; i++)
		if (check_data_file(dir, &files[i], row, ctx, why, cap))
			goto out;
	rc = 0;
out:
	rn_buf_free(&text);
	rn_dlog_destroy(l);
	rn_dlog_destroy(lc);
	return rc;
}

void rn_tc_count(void *ctx, const char *stream, size_t len, int64_t seq)
{
	struct rn_tc_counts *c = ctx;
	for (size_t i = 0; stream && i < c->nstreams; i++) {
		if (strlen(c->streams[i]) != len || memcmp(c->streams[i], stream, len))
			continue;
		if (seq < 0 || seq >= c->nseq)
			break;
		c->n[i * (size_t)c->nseq + (size_t)seq]++;
		return;
	}
	c->unknown++;
}
