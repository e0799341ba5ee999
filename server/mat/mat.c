/*
 * The materializer; see mat.h for its contract and mat_int.h for how its files divide the
 * work. This file holds the object itself: rn_mat_create/rn_mat_destroy, the error text
 * (rn_mat__fail, filled once at the failure site), and the read-only queries of its
 * counters and pending bytes. It decodes nothing and writes nothing; the loop thread owns
 * the object (jobs get only what flush.c and maintain.c hand them).
 */
#include "mat_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "checkpoint.h"
#include "delta.h"
#include "tstore.h"

int rn_mat__fail(struct rn_mat *m, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* Deep-copies the store settings into m (m->store, strings in m->store_strs). 0 or
 * RN_ENOMEM. */
static int copy_store(struct rn_mat *m, const struct rn_tstore_config *src)
{
	struct rn_tstore_config *c;
	const char **fields[8];
	size_t n = 0;
	if (!(c = m->store = rn_calloc(1, sizeof(*c))))
		return RN_ENOMEM;
	if (!src)
		return 0;
	*c = *src;
	fields[n++] = &c->s3.endpoint;
	fields[n++] = &c->s3.region;
	fields[n++] = &c->s3.bucket;
	fields[n++] = &c->s3.access_key;
	fields[n++] = &c->s3.secret_key;
	fields[n++] = &c->s3.session_token;
	fields[n++] = &c->s3.credentials_file;
	fields[n++] = &c->s3.profile;
	_Static_assert(sizeof(m->store_strs) / sizeof(m->store_strs[0]) == 8, "store_strs");
	for (size_t i = 0; i < n; i++) {
		if (*fields[i] && !(*fields[i] = m->store_strs[i] = rn_strdup(*fields[i])))
			return RN_ENOMEM;
	}
	if (c->spool_dir && !(c->spool_dir = m->spool_dir = rn_strdup(c->spool_dir)))
		return RN_ENOMEM;
	return 0;
}

int rn_mat_create(struct rn_mat **out, const struct rn_mat_options *opt)
{
	struct rn_mat *m;
	*out = NULL;
	if (!opt || !opt->data_root)
		return RN_EINVAL;
	if (!(m = rn_calloc(1, sizeof(*m))))
		return RN_ENOMEM;
	m->root = rn_strdup(opt->table_root ? opt->table_root : opt->data_root);
	if (copy_store(m, opt->store)) {
		rn_mat_destroy(m);
		return RN_ENOMEM;
	}
	m->zstd_level = opt->zstd_level ? opt->zstd_level : 1;
	m->retry_max_age_ms = opt->retry_file_max_age_ms > 0 ? opt->retry_file_max_age_ms
							     : RN_DELTA_ORPHAN_MIN_AGE_MS / 2;
	m->refill = opt->refill;
	m->refill_ctx = opt->refill_ctx;
	m->maint_submit = opt->maint_submit;
	m->maint_ctx = opt->maint_ctx;
	m->maint_cfg = opt->maint ? *opt->maint : rn_maint_defaults;
	m->flush_submit = opt->flush_submit;
	m->flush_ctx = opt->flush_ctx;
	m->page_submit = opt->page_submit;
	m->page_ctx = opt->page_ctx;
	rn_lograte_init(&m->warn, RN_MAT_WARN_PERIOD_US, rn_mono_us());
	if (opt->created_by)
		m->created_by = rn_strdup(opt->created_by);
	if (!m->root || (opt->created_by && !m->created_by) || rn_ledger_create(&m->ledger)) {
		rn_mat_destroy(m);
		return RN_ENOMEM;
	}
	*out = m;
	return 0;
}

void rn_mat_destroy(struct rn_mat *m)
{
	if (!m)
		return;
	if (m->round_jobs)
		rn_log_error("mat", "destroyed with %zu flush jobs in flight", m->round_jobs);
	if (m->ms.maint_inflight) /* a worker would write into freed memory: leak instead */
		rn_log_error("mat", "destroyed with %llu maintenance jobs in flight",
			     (unsigned long long)m->ms.maint_inflight);
	for (size_t i = 0; i < m->ntables; i++) {
		rn_ledger_debts_free(m->ledger, &m->tables[i]->debts);
		rn_ledger_debts_free(m->ledger, &m->tables[i]->fdebts);
		rn_mat__table_free(m->tables[i]);
	}
	rn_free(m->tables);
	rn_ledger_destroy(m->ledger);
	for (size_t i = 0; i < m->ndefs; i++)
		rn_mat__def_free(&m->defs[i]);
	rn_free(m->defs);
	rn_buf_free(&m->scratch);
	rn_buf_free(&m->file);
	rn_buf_free(&m->tape);
	rn_buf_free(&m->keybuf);
	rn_buf_free(&m->pdir);
	rn_buf_free(&m->ppv);
	rn_free(m->root);
	for (size_t i = 0; i < sizeof(m->store_strs) / sizeof(m->store_strs[0]); i++) {
		if (m->store_strs[i]) /* credentials among them: not left in freed memory */
			explicit_bzero(m->store_strs[i], strlen(m->store_strs[i]));
		rn_free(m->store_strs[i]);
	}
	rn_free(m->spool_dir);
	rn_free(m->store);
	rn_free(m->created_by);
	rn_free(m);
}

/* Files, bytes, rows, partitions and newest file time of a table's live files. */
static int table_files(const struct mat_table *t, struct rn_mat_table_info *in, int64_t *rows)
{
	size_t n = 0, nkeys = 0;
	const struct rn_ckpt_file *const *f = t->delta ? rn_delta_files(t->delta, &n) : NULL;
	char **keys = NULL;
	struct rn_buf k = {0};
	int rc = RN_ENOMEM;
	*rows = 0;
	if (n && !(keys = rn_calloc(n, sizeof(*keys))))
		return RN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct rn_ckpt_file *x = f[i];
		if (x->is_remove)
			continue;
		if (in) {
			in->files++;
			in->bytes += x->size > 0 ? x->size : 0;
		}
		const char *nr = x->stats ? strstr(x->stats, "\"numRecords\":") : NULL;
		if (nr && *rows >= 0)
			*rows += strtoll(nr + 13, NULL, 10);
		else
			*rows = -1;
		if (in && x->npv) {
			/* its partition values joined: counted once per distinct value set */
			rn_buf_reset(&k);
			for (size_t j = 0; j < x->npv; j++)
				if (rn_buf_printf(&k, "%s=%s/", x->pv[j].key,
						  x->pv[j].value ? x->pv[j].value : "\x01null"))
					goto out;
			if (rn_buf_append_u8(&k, 0))
				goto out;
			size_t j = 0;
			while (j < nkeys && strcmp(keys[j], (const char *)k.data))
				j++;
			if (j == nkeys && !(keys[nkeys++] = rn_strdup((const char *)k.data)))
				goto out;
		}
	}
	if (in)
		in->partitions = nkeys;
	rc = 0;
out:
	for (size_t i = 0; i < nkeys; i++)
		rn_free(keys[i]);
	rn_free(keys);
	rn_buf_free(&k);
	return rc;
}

int rn_mat_table_info(const struct rn_mat *m, size_t *i, struct rn_mat_table_info *in)
{
	const struct mat_table *t = NULL;
	while (*i < m->ntables && (t = m->tables[*i])->is_dlq)
		++*i;
	if (*i >= m->ntables)
		return RN_ENOTFOUND;
	++*i;
	memset(in, 0, sizeof(*in));
	in->name = t->name;
	in->version = t->delta ? rn_delta_version(t->delta) : -1;
	in->last_commit_ms = t->commit_ms;
	if (table_files(t, in, &in->rows))
		return RN_ENOMEM;
	if (t->dlq) {
		const struct mat_table *d = t->dlq;
		in->has_dlq = 1;
		in->dlq_name = d->name;
		if (table_files(d, NULL, &in->dlq_rows))
			return RN_ENOMEM;
		for (size_t k = 0; k < d->dead_n; k++)
			in->latest[in->nlatest++] =
				&d->dead_latest[(d->dead_head + RN_MAT_DEAD_LATEST - 1 - k) %
						RN_MAT_DEAD_LATEST];
	}
	return 0;
}

uint64_t rn_mat_clock_corrected(const struct rn_mat *m)
{
	return m->clock_corrected;
}

void rn_mat_stats(const struct rn_mat *m, struct rn_mat_stats *st)
{
	*st = m->ms;
	st->dead_records = m->dead_records;
	st->undecodable = m->undecodable;
	st->clock_corrected = m->clock_corrected;
	st->warnings_suppressed = m->warn.suppressed;
	st->maint_running = (uint64_t)atomic_load(&m->maint_running);
}

void rn_mat_memory(const struct rn_mat *m, size_t *builders, size_t *flush)
{
	if (builders)
		*builders = m->mem_builders;
	if (flush)
		*flush = m->mem_flush;
}

size_t rn_mat_pending_bytes(const struct rn_mat *m)
{
	return m->pending_bytes;
}

size_t rn_mat_principal_pending_bytes(const struct rn_mat *m, const char *principal, size_t *active)
{
	return rn_ledger_held(m->ledger, principal, active);
}

size_t rn_mat_table_pending_bytes(const struct rn_mat *m, const char *table, size_t *active,
				  size_t *largest)
{
	size_t mine = 0, n = 0, top = 0;
	for (size_t i = 0; i < m->ntables; i++) {
		const struct mat_table *t = m->tables[i];
		size_t b = t->pending_bytes + t->fbytes; /* a flush in flight still holds them */
		if (!b)
			continue;
		n++;
		if (b > top)
			top = b;
		if (table && !strcmp(t->name, table))
			mine = b;
	}
	if (active)
		*active = n;
	if (largest)
		*largest = top;
	return mine;
}

const char *rn_mat_errmsg(const struct rn_mat *m)
{
	return m->err;
}
