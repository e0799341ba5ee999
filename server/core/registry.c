/*
 * The durable stream registry (registry.h): the files of data_root/_streams/. Moved out of
 * server.c (reg_begin, reg_drop, reg_commit, save_ and load_ functions, load_registry,
 * unlink_stream_files, sweep_stream_files); the server keeps the streams, this file keeps
 * their files.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_fs.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_buf.h"
#include "rn_table_name.h"
#include "tstore.h"

struct rn_registry {
	char *dir;
	struct rn_list queue; /* rn_reg_pending.link, in rn_registry_begin order */
	size_t queued;
	uint64_t commits; /* group commits run (the fault hook counts them) */
	int live_fd;      /* <dir>/.live, share-locked while joined (rn_registry_join), or -1 */
	int shared;       /* joined while another server held .live: rn_registry_sweep is off */
};

int rn_registry_create(struct rn_registry **out, const char *dir)
{
	struct rn_registry *r = rn_calloc(1, sizeof(*r));
	*out = NULL;
	if (!r || !(r->dir = rn_strdup(dir))) {
		rn_free(r);
		return RN_ENOMEM;
	}
	rn_list_init(&r->queue);
	r->live_fd = -1;
	*out = r;
	return 0;
}

void rn_registry_destroy(struct rn_registry *r)
{
	struct rn_list *n;
	if (!r)
		return;
	while ((n = rn_list_first(&r->queue)))
		rn_registry_drop(r, RN_LIST_ENTRY(n, struct rn_reg_pending, link));
	if (r->live_fd >= 0)
		close(r->live_fd); /* the lock goes with it */
	rn_free(r->dir);
	rn_free(r);
}

int rn_registry_join(struct rn_registry *r, int *alone)
{
	char path[4200];
	int fd, e;
	*alone = 0;
	if (r->live_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/.live", r->dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return RN_EIO;
	/* exclusive only if no other server holds it shared; then shared like them (a
	 * conversion: another starter may take it exclusively in between, and finds nothing
	 * of ours to sweep yet) */
	if (!flock(fd, LOCK_EX | LOCK_NB))
		*alone = 1;
	else if (errno != EWOULDBLOCK)
		goto fail;
	if (flock(fd, LOCK_SH))
		goto fail;
	r->live_fd = fd;
	r->shared = !*alone;
	return 0;
fail:
	e = errno;
	close(fd);
	*alone = 0;
	errno = e;
	return RN_EIO;
}

const char *rn_registry_dir(const struct rn_registry *r)
{
	return r->dir;
}

size_t rn_registry_waiting(const struct rn_registry *r)
{
	return r->queued;
}

static void reg_path(const struct rn_registry *r, const char *id, int tmp, char *out, size_t cap)
{
	snprintf(out, cap, tmp ? "%s/.%s.tmp" : "%s/%s", r->dir, id);
}

int rn_registry_begin(struct rn_registry *r, struct rn_reg_pending *p, const char *table,
		      int record_type, const char *owner)
{
	char text[512], tmp[4200];
	int n = snprintf(text, sizeof(text), "%s\n%d\n%s\n", table, record_type, owner);
	int fd, e;
	if (n < 0 || (size_t)n >= sizeof(text)) {
		errno = ENAMETOOLONG;
		return RN_EIO;
	}
	reg_path(r, p->id, 1, tmp, sizeof(tmp));
	if ((fd = rn_fs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		return RN_EIO;
	if (rn_write_all(fd, text, (size_t)n)) {
		e = errno;
		close(fd);
		rn_fs_unlink(tmp);
		errno = e;
		return RN_EIO;
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/* start writing the entry back now, while the rest of the group arrives: the group
	 * commit's fsyncs then find their data written (only a hint; errors show there) */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	p->fd = fd;
	rn_list_push(&r->queue, &p->link);
	r->queued++;
	return 0;
}

void rn_registry_drop(struct rn_registry *r, struct rn_reg_pending *p)
{
	char tmp[4200];
	if (!rn_list_linked(&p->link))
		return;
	rn_list_unlink(&p->link);
	r->queued--;
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
		reg_path(r, p->id, 1, tmp, sizeof(tmp));
		rn_fs_unlink(tmp);
	}
}

size_t rn_registry_commit(struct rn_registry *r,
			  void (*done)(void *ctx, struct rn_reg_pending *p, int err), void *ctx)
{
	char tmp[4200], path[4200];
	struct rn_list *n, *next;
	size_t count = r->queued;
	int e = 0;
	if (!r->queued)
		return 0;
	r->commits++;
	/* every entry's bytes durable, and its name in place (not yet durable) */
	for (n = r->queue.next; n != &r->queue; n = next) {
		struct rn_reg_pending *p = RN_LIST_ENTRY(n, struct rn_reg_pending, link);
		int rc = rn_fs_fsync(p->fd);
		next = n->next;
		close(p->fd);
		p->fd = -1;
		reg_path(r, p->id, 1, tmp, sizeof(tmp));
		reg_path(r, p->id, 0, path, sizeof(path));
		if (rc || rn_fs_rename(tmp, path)) {
			e = errno;
			rn_fs_unlink(tmp);
			rn_list_unlink(n);
			r->queued--;
			done(ctx, p, e);
		}
	}
	/* one directory fsync makes every new name durable */
#ifdef RN_FAULT_HOOKS
	/* test builds: RN_FAULT_REG_DIR=N fails the Nth group commit's directory fsync (EIO) */
	const char *fv = getenv("RN_FAULT_REG_DIR");
	if (fv && (uint64_t)atol(fv) == r->commits)
		rn_fs_fail_after(1, EIO, RN_FS_FSYNC);
#endif
	if (rn_fsync_dir(r->dir))
		e = errno ? errno : EIO;
	else
		e = 0;
	while ((n = rn_list_first(&r->queue))) {
		struct rn_reg_pending *p = RN_LIST_ENTRY(n, struct rn_reg_pending, link);
		rn_list_unlink(n);
		r->queued--;
		if (e) {
			/* renamed already: the name may or may not survive a crash; remove it */
			reg_path(r, p->id, 0, path, sizeof(path));
			rn_fs_unlink(path);
		}
		done(ctx, p, e);
	}
	return count;
}

/* Reads the entry file `name` (an id) and hands it to entry(ctx, rec): entry's answer, or 1
 * when the file is missing or cannot be parsed (nothing handed). */
static int read_entry(struct rn_registry *r, const char *name,
		      int (*entry)(void *ctx, const struct rn_reg_record *rec), void *ctx)
{
	char path[4096], table[300], owner[RN_REGISTRY_OWNER_MAX + 1] = "";
	int rtype = 1, took = 1;
	struct stat sb;
	FILE *f;
	_Static_assert(RN_REGISTRY_OWNER_MAX == 64, "the width below");
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	if (!(f = fopen(path, "r")))
		return 1;
	if (fscanf(f, "%299s %d", table, &rtype) == 2 && !rn_table_name_check(table)) {
		if (fscanf(f, "%64s", owner) != 1)
			owner[0] = 0; /* registered before owners were kept */
		/* the registry entry is touched on every use (stream_expiry) */
		struct rn_reg_record rec = {name, table, rtype, owner,
					    fstat(fileno(f), &sb) ? (int64_t)time(NULL)
								  : (int64_t)sb.st_mtime};
		took = entry(ctx, &rec);
	}
	if (took > 0)
		rn_log_warn("server", "ignoring unreadable stream registry entry %s", path);
	fclose(f);
	return took;
}

int rn_registry_load(struct rn_registry *r,
		     int (*entry)(void *ctx, const struct rn_reg_record *rec), void *ctx)
{
	DIR *d = opendir(r->dir);
	struct dirent *de;
	int rc = 0;
	if (!d)
		return RN_EIO;
	while (!rc && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
			continue; /* temp files, descriptors */
		int took = read_entry(r, de->d_name, entry, ctx);
		if (took < 0)
			rc = took;
	}
	closedir(d);
	return rc;
}

int rn_registry_id_check(const char *id, size_t len)
{
	if (!len || len >= RN_REGISTRY_ID_MAX || id[0] == '.')
		return RN_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (id[i] == '/' || id[i] == '.' || id[i] == 0 || (unsigned char)id[i] <= ' ')
			return RN_EINVAL;
	return 0;
}

int rn_registry_find(struct rn_registry *r, const char *id, size_t len,
		     int (*entry)(void *ctx, const struct rn_reg_record *rec), void *ctx)
{
	char name[RN_REGISTRY_ID_MAX];
	char path[4200];
	if (rn_registry_id_check(id, len))
		return 1;
	memcpy(name, id, len);
	name[len] = 0;
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	if (access(path, F_OK))
		return 1; /* not registered (or retired): no warning, an unknown id is common */
	return read_entry(r, name, entry, ctx);
}

int rn_registry_retire(struct rn_registry *r, const char *id)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", r->dir, id);
	if (rn_fs_unlink(path) && errno != ENOENT) {
		rn_log_warn("server", "retire stream %s: unlink %s: %s", id, path, strerror(errno));
		return RN_EIO;
	}
	rn_fsync_dir(r->dir);
	return 0;
}

#define RETIRED_EXT ".retired"

int rn_registry_mark_retired(struct rn_registry *r, const char *id)
{
	char name[RN_REGISTRY_ID_MAX + sizeof(RETIRED_EXT)];
	struct rn_fs_piece piece = {"", 0};
	if (rn_registry_id_check(id, strlen(id)))
		return RN_EINVAL;
	snprintf(name, sizeof(name), "%s" RETIRED_EXT, id);
	if (rn_write_file_atomic(r->dir, name, &piece, 1)) {
		rn_log_warn("server", "retire stream %s: cannot write %s/%s: %s", id, r->dir, name,
			    strerror(errno));
		return RN_EIO;
	}
	return 0;
}

int rn_registry_marked_retired(struct rn_registry *r, const char *id, size_t len)
{
	char path[4200];
	if (rn_registry_id_check(id, len))
		return 0;
	snprintf(path, sizeof(path), "%s/%.*s" RETIRED_EXT, r->dir, (int)len, id);
	return access(path, F_OK) == 0;
}

void rn_registry_unmark_retired(struct rn_registry *r, const char *id)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s" RETIRED_EXT, r->dir, id);
	if (rn_fs_unlink(path) && errno != ENOENT)
		rn_log_warn("server", "unlink %s: %s", path, strerror(errno));
}

size_t rn_registry_each_marked(struct rn_registry *r, void (*fn)(void *ctx, const char *id),
			       void *ctx)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;
	if (!(d = opendir(r->dir)))
		return 0;
	while ((de = readdir(d))) {
		char id[RN_REGISTRY_ID_MAX];
		const char *dot = strrchr(de->d_name, '.');
		size_t len = dot ? (size_t)(dot - de->d_name) : 0;
		if (de->d_name[0] == '.' || !dot || strcmp(dot, RETIRED_EXT) ||
		    rn_registry_id_check(de->d_name, len))
			continue;
		memcpy(id, de->d_name, len);
		id[len] = 0;
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", r->dir, id);
		if (access(path, F_OK) == 0) {
			/* its entry is here: the retire that marked it never completed (and is
			 * asked again by its client); the stream stands */
			rn_registry_unmark_retired(r, id);
			continue;
		}
		fn(ctx, id);
		n++;
	}
	closedir(d);
	return n;
}

void rn_registry_touch(struct rn_registry *r, const char *id)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", r->dir, id);
	if (utimensat(AT_FDCWD, path, NULL, 0) && errno != ENOENT)
		rn_log_warn("server", "touch %s: %s", path, strerror(errno));
}

int rn_registry_save_descriptor(struct rn_registry *r, const char *id, const char *table,
				const uint8_t *desc, size_t len)
{
	char name[128];
	struct rn_fs_piece p[3] = {{table, strlen(table)}, {"\n", 1}, {desc, len}};
	snprintf(name, sizeof(name), "%s.desc", id);
	return rn_write_file_atomic(r->dir, name, p, 3) ? RN_EIO : 0;
}

/* Reads the descriptor file of `id` into b and hands it to desc unless its table is not
 * `table` (NULL: any). 1 when desc refused it, else 0 (unreadable files logged, skipped). */
static int read_desc(struct rn_registry *r, const char *id, const char *table, struct rn_buf *b,
		     int (*desc)(void *ctx, const char *id, const char *table, const uint8_t *bytes,
				 size_t len),
		     void *ctx)
{
	char path[4200], chunk[4096];
	size_t got;
	snprintf(path, sizeof(path), "%s/%s.desc", r->dir, id);
	rn_buf_reset(b);
	FILE *f = fopen(path, "rb");
	if (!f && errno == ENOENT)
		return 0;
	while (f && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rn_buf_append(b, chunk, got);
	if (f)
		fclose(f);
	uint8_t *nl = b->len ? memchr(b->data, '\n', b->len) : NULL;
	if (!nl) {
		rn_log_warn("server", "ignoring unreadable stream descriptor %s", path);
		return 0;
	}
	*nl = 0;
	if (table && strcmp((const char *)b->data, table))
		return 0;
	return !!desc(ctx, id, (const char *)b->data, nl + 1, b->len - (size_t)(nl + 1 - b->data));
}

int rn_registry_load_descriptors(struct rn_registry *r, const char *table,
				 int (*desc)(void *ctx, const char *id, const char *table,
					     const uint8_t *bytes, size_t len),
				 void *ctx)
{
	DIR *d = opendir(r->dir);
	struct dirent *de;
	struct rn_buf b = {0};
	int bad = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char id[64];
		if (de->d_name[0] == '.' || n < 6 || n - 5 >= sizeof(id) ||
		    strcmp(de->d_name + n - 5, ".desc"))
			continue;
		memcpy(id, de->d_name, n - 5);
		id[n - 5] = 0;
		bad += read_desc(r, id, table, &b, desc, ctx);
	}
	rn_buf_free(&b);
	closedir(d);
	return bad;
}

int rn_registry_load_descriptor(struct rn_registry *r, const char *id,
				int (*desc)(void *ctx, const char *id, const char *table,
					    const uint8_t *bytes, size_t len),
				void *ctx)
{
	struct rn_buf b = {0};
	int bad = read_desc(r, id, NULL, &b, desc, ctx);
	rn_buf_free(&b);
	return bad;
}

int rn_registry_save_clock(struct rn_registry *r, const char *id, const char *boot_id,
			   int64_t delta_us)
{
	char name[128], text[128];
	int n = snprintf(text, sizeof(text), "%s %lld\n", boot_id, (long long)delta_us);
	struct rn_fs_piece p = {text, (size_t)n};
	snprintf(name, sizeof(name), "%s.clock", id);
	return rn_write_file_atomic(r->dir, name, &p, 1) ? RN_EIO : 0;
}

int rn_registry_load_clock(struct rn_registry *r, const char *id, char *boot_id, size_t cap,
			   int64_t *delta_us)
{
	char path[4096], bid[64];
	long long d;
	int found = 0;
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s.clock", r->dir, id);
	if (!(f = fopen(path, "r")))
		return 0;
	if (cap >= sizeof(bid) && fscanf(f, "%63s %lld", bid, &d) == 2) {
		memcpy(boot_id, bid, sizeof(bid));
		*delta_us = d;
		found = 1;
	} else {
		rn_log_warn("server", "ignoring unreadable stream clock %s", path);
	}
	fclose(f);
	return found;
}

int rn_registry_save_owner(struct rn_registry *r, const char *id, const char *owner)
{
	char name[128], text[RN_REGISTRY_OWNER_MAX + 2];
	int n = snprintf(text, sizeof(text), "%s\n", owner);
	struct rn_fs_piece p = {text, (size_t)n};
	snprintf(name, sizeof(name), "%s.owner", id);
	return rn_write_file_atomic(r->dir, name, &p, 1) ? RN_EIO : 0;
}

void rn_registry_load_owner(struct rn_registry *r, const char *id, char *owner)
{
	char path[4096];
	FILE *f;
	_Static_assert(RN_REGISTRY_OWNER_MAX == 64, "the width below");
	snprintf(path, sizeof(path), "%s/%s.owner", r->dir, id);
	owner[0] = 0;
	if (!(f = fopen(path, "r")))
		return; /* made before owners were kept: unknown */
	if (fscanf(f, "%64s", owner) != 1) {
		owner[0] = 0;
		rn_log_warn("server", "ignoring unreadable stream owner %s", path);
	}
	fclose(f);
}

void rn_registry_forget_files(struct rn_registry *r, const char *id)
{
	static const char *const ext[] = {".desc", ".clock", ".owner"};
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s%s", r->dir, id, ext[i]);
		if (rn_fs_unlink(path) && errno != ENOENT)
			rn_log_warn("server", "unlink %s: %s", path, strerror(errno));
	}
}

size_t rn_registry_sweep(struct rn_registry *r,
			 int (*keep)(void *ctx, const char *id, const char *ext), void *ctx)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;
	if (r->shared || !(d = opendir(r->dir)))
		return 0;
	while ((de = readdir(d))) {
		char id[64];
		const char *dot = strrchr(de->d_name, '.');
		size_t len = dot ? (size_t)(dot - de->d_name) : 0;
		if (de->d_name[0] == '.' || !dot || len >= sizeof(id) ||
		    (strcmp(dot, ".desc") && strcmp(dot, ".clock") && strcmp(dot, ".owner")))
			continue;
		memcpy(id, de->d_name, len);
		id[len] = 0;
		if (keep(ctx, id, dot))
			continue;
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", r->dir, de->d_name);
		if (rn_fs_unlink(path))
			rn_log_warn("server", "unlink %s: %s", path, strerror(errno));
		else
			n++;
	}
	closedir(d);
	if (n)
		rn_log_info("server", "removed %zu files of ended ephemeral streams", n);
	return n;
}

/* --- the registry on the table store (registry.h) --- */

#define ENTRY_MAGIC "runnel-stream 1\n"

/* A string an entry line can hold: no newline, space or control byte, at most max bytes. */
static int line_ok(const char *v, size_t max)
{
	size_t n = strlen(v);
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ')
			return 0;
	return 1;
}

int rn_registry_entry_encode(struct rn_buf *out, const struct rn_reg_entry *e)
{
	if (!e->table || rn_table_name_check(e->table) ||
	    !line_ok(e->table, RN_REGISTRY_TABLE_MAX) ||
	    !line_ok(e->owner ? e->owner : "", RN_REGISTRY_OWNER_MAX) ||
	    (e->boot_id && (!*e->boot_id || !line_ok(e->boot_id, 63))) || (e->desc_len && !e->desc))
		return RN_EINVAL;
	if (rn_buf_printf(out, ENTRY_MAGIC "%s\n%d\n%s\n", e->table, e->record_type,
			  e->owner ? e->owner : ""))
		return RN_ENOMEM;
	if (e->boot_id ? rn_buf_printf(out, "%s %lld\n", e->boot_id, (long long)e->delta_us)
		       : rn_buf_append_str(out, "-\n"))
		return RN_ENOMEM;
	if (e->desc_len && rn_buf_append(out, e->desc, e->desc_len))
		return RN_ENOMEM;
	return 0;
}

/* The next line of p[*at..len) copied into dst (cap bytes with its NUL). 0 or RN_EINVAL. */
static int next_line(const uint8_t *p, size_t len, size_t *at, char *dst, size_t cap)
{
	const uint8_t *nl = *at < len ? memchr(p + *at, '\n', len - *at) : NULL;
	size_t n;
	if (!nl || (n = (size_t)(nl - (p + *at))) >= cap || memchr(p + *at, 0, n))
		return RN_EINVAL;
	memcpy(dst, p + *at, n);
	dst[n] = 0;
	*at += n + 1;
	return 0;
}

int rn_registry_entry_decode(const uint8_t *p, size_t len, struct rn_reg_entry *e,
			     struct rn_reg_entry_text *t)
{
	size_t at = sizeof(ENTRY_MAGIC) - 1;
	char num[32], clk[128];
	char *end;
	long rtype;
	memset(e, 0, sizeof(*e));
	if (len < at || memcmp(p, ENTRY_MAGIC, at) ||
	    next_line(p, len, &at, t->table, sizeof(t->table)) || rn_table_name_check(t->table) ||
	    next_line(p, len, &at, num, sizeof(num)) ||
	    next_line(p, len, &at, t->owner, sizeof(t->owner)) ||
	    next_line(p, len, &at, clk, sizeof(clk)))
		return RN_EINVAL;
	errno = 0;
	rtype = strtol(num, &end, 10);
	if (!num[0] || *end || errno || rtype < 0 || rtype > 1000)
		return RN_EINVAL;
	e->table = t->table;
	e->record_type = (int)rtype;
	e->owner = t->owner;
	if (strcmp(clk, "-")) {
		long long d;
		char extra;
		if (sscanf(clk, "%63s %lld %c", t->boot_id, &d, &extra) != 2)
			return RN_EINVAL;
		e->boot_id = t->boot_id;
		e->delta_us = d;
	}
	e->desc = at < len ? p + at : NULL;
	e->desc_len = len - at;
	return 0;
}

static void store_key(char *out, size_t cap, const char *id)
{
	snprintf(out, cap, "streams/%s", id);
}

/* 1 when id's object holds exactly p[0..len), 0 when it holds something else, or the
 * store's error (RN_ENOTFOUND when there is none). */
static int store_same(struct rn_tstore *st, const char *key, const uint8_t *p, size_t len)
{
	struct rn_buf b = {0};
	int rc = rn_tstore_get(st, key, 0, -1, &b);
	if (!rc)
		rc = b.len == len && (!len || !memcmp(b.data, p, len));
	rn_buf_free(&b);
	return rc;
}

int rn_registry_store_put(struct rn_tstore *st, const char *id, const uint8_t *p, size_t len,
			  char *err, size_t errcap)
{
	char key[RN_REGISTRY_ID_MAX + 16];
	int rc, same;
	if (rn_registry_id_check(id, strlen(id)))
		return RN_EINVAL;
	store_key(key, sizeof(key), id);
	rc = rn_tstore_put_new(st, key, p, len);
	if (rc && errcap)
		snprintf(err, errcap, "%s", rn_tstore_errmsg(st));
	if (rc && rc != RN_EEXIST) {
		/* refused: an object that may have landed anyway (an outcome the backend could
		 * not settle, a write not known durable) is taken back, so that nothing stays
		 * half-registered (if this delete fails too, the entry is an orphan nobody
		 * resumes: its id was never answered) */
		rn_tstore_delete(st, key);
		return rc;
	}
	if (!rc)
		return 0;
	/* taken already: ours if it holds our bytes (an attempt whose answer was lost; ids are
	 * random UUIDs, so another create's entry under this id would be a bug) */
	same = store_same(st, key, p, len);
	return same == 1 ? 0 : same == 0 || same == RN_ENOTFOUND ? RN_EEXIST : same;
}

int rn_registry_store_get(struct rn_tstore *st, const char *id, size_t len, struct rn_buf *out)
{
	char key[RN_REGISTRY_ID_MAX + 16], name[RN_REGISTRY_ID_MAX];
	if (rn_registry_id_check(id, len))
		return RN_ENOTFOUND;
	memcpy(name, id, len);
	name[len] = 0;
	store_key(key, sizeof(key), name);
	return rn_tstore_get(st, key, 0, -1, out);
}

int rn_registry_store_delete(struct rn_tstore *st, const char *id)
{
	char key[RN_REGISTRY_ID_MAX + 16];
	if (rn_registry_id_check(id, strlen(id)))
		return 0; /* no such object can exist */
	store_key(key, sizeof(key), id);
	return rn_tstore_delete(st, key);
}

int rn_registry_adopt(struct rn_registry *r, const char *id, const struct rn_reg_entry *e)
{
	char text[512];
	int n, e2;
	if (rn_registry_id_check(id, strlen(id)) || rn_table_name_check(e->table))
		return RN_EINVAL;
	n = snprintf(text, sizeof(text), "%s\n%d\n%s\n", e->table, e->record_type,
		     e->owner ? e->owner : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		return RN_EINVAL;
	if (e->desc_len && rn_registry_save_descriptor(r, id, e->table, e->desc, e->desc_len))
		goto fail;
	if (e->boot_id && rn_registry_save_clock(r, id, e->boot_id, e->delta_us))
		goto fail;
	struct rn_fs_piece piece = {text, (size_t)n};
	if (rn_write_file_atomic(r->dir, id, &piece, 1)) {
		/* renamed but not known durable: taken back (the resume is refused) */
		char path[4200];
		e2 = errno;
		reg_path(r, id, 0, path, sizeof(path));
		rn_fs_unlink(path);
		errno = e2;
		goto fail;
	}
	return 0;
fail:
	e2 = errno;
	rn_registry_forget_files(r, id);
	errno = e2;
	return RN_EIO;
}
