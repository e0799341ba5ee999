/*
 * in_file: tails files named by paths or globs, one record per line. Resume position per file
 * is (device, inode, bytes consumed) — advanced only as lines are emitted, so the host's
 * snapshot always matches the records it has (see plugin.h). Rotation by rename is followed:
 * at EOF, if the path now names another inode, the old file is finished (its last partial
 * line emitted) and the new one read from its start; after a restart, a checkpointed inode
 * that is no longer at its path is looked up in the same directory (a.log -> a.log.1) and
 * finished first. A file that shrank (copytruncate) is read again from its start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linesplit.h"
#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#define READ_CHUNK ((size_t)256 << 10)

/* The plugin's own settings (rows below); filled by the agent's config loader. */
struct in_file_conf {
	struct rn_conf_strlist paths;
	int read_from; /* 0 = beginning, 1 = end */
	int64_t max_line_bytes;
	int64_t line_timeout_ms;
	int64_t rotate_wait_ms; /* a path gone this long: its file is closed and forgotten */
};

static const char *const read_from_names[] = {"beginning", "end", NULL};

#define C(f) offsetof(struct in_file_conf, f)
static const struct rn_conf_key file_conf[] = {
	{.key = "paths", .type = RN_CONF_STRLIST, .offset = C(paths), .flags = RN_CONF_F_REQUIRED,
	 .help = "files or globs to tail, one record per line"},
	{.key = "read_from", .type = RN_CONF_ENUM, .def = "beginning", .enums = read_from_names,
	 .offset = C(read_from),
	 .help = "where to start in files present at the first start (new files: beginning)"},
	/* capped at 4M: one piece must fit a request under the server's message limit (10M) */
	{.key = "max_line_bytes", .type = RN_CONF_SIZE, .def = "64K", .min = 16,
	 .max = (int64_t)4 << 20, .offset = C(max_line_bytes),
	 .help = "longer lines become flagged pieces (runnel.split)"},
	{.key = "line_timeout_ms", .type = RN_CONF_DURATION, .def = "1000", .min = 1,
	 .max = 3600000, .offset = C(line_timeout_ms),
	 .help = "a last line without newline is emitted after this long"},
	{.key = "rotate_wait_ms", .type = RN_CONF_DURATION, .def = "5s", .min = 1,
	 .max = 86400000, .offset = C(rotate_wait_ms),
	 .help = "a file whose path is gone this long is closed (its space freed)"},
	{0},
};
#undef C
#define RESCAN_US 500000
#define DONE_MAX 32            /* finished inodes remembered (ring) */

struct tfile {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t read_off; /* bytes fed to the splitter */
	uint64_t pos;      /* bytes consumed by emitted records: the resume position */
	struct rn_linesplit ls;
	int64_t last_data_us;
	int old; /* reading a rotated-away inode to its end; then switch to the path */
	int dead;         /* closed; removed from the list at the end of the poll */
	int64_t gone_us;  /* mono time the path was first seen missing, 0 if present */
	unsigned piece; /* pieces of the current overlong line handed out so far */
};

struct in_file {
	const struct in_file_conf *conf; /* borrowed from the source's config */
	struct rn_source_host host;
	struct tfile **files;
	size_t n, cap;
	uint8_t *rbuf;
	int64_t next_scan_us;
	int first_scan;
	struct rn_buf saved; /* checkpoint from the last run */
	struct tfile *cur;   /* file whose lines are being emitted */
	int initial_scan;    /* the first rescan of this run (saved inodes may be renamed) */
	/* Inodes read to their end and let go (rotated away, deleted): if one shows up under a
	 * name the globs match (app.log.1), it resumes where it was finished instead of being
	 * read again. Kept in the checkpoint as lines with the path "-". */
	struct done {
		dev_t dev;
		ino_t ino;
		uint64_t pos;
	} done[DONE_MAX];
	size_t ndone, done_next;
};

/* Saved position of `path`, from the checkpoint text "dev ino pos path\n"... */
static int saved_pos(const struct in_file *f, const char *path, dev_t *dev, ino_t *ino,
		     uint64_t *pos)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		unsigned long long d, i, o;
		int n = 0;
		if (!nl)
			break;
		if (sscanf(p, "%llu %llu %llu %n", &d, &i, &o, &n) == 3 && n > 0 &&
		    (size_t)(nl - (p + n)) == strlen(path) && !memcmp(p + n, path, strlen(path))) {
			*dev = (dev_t)d;
			*ino = (ino_t)i;
			*pos = o;
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

/* A saved entry (any path, "-" included) for inode (dev, ino). */
static int saved_inode(const struct in_file *f, dev_t dev, ino_t ino, uint64_t *pos)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		unsigned long long d, i, o;
		if (!nl)
			break;
		if (sscanf(p, "%llu %llu %llu", &d, &i, &o) == 3 && (dev_t)d == dev &&
		    (ino_t)i == ino) {
			*pos = o;
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

static void done_add(struct in_file *f, dev_t dev, ino_t ino, uint64_t pos)
{
	size_t i;
	for (i = 0; i < f->ndone; i++)
		if (f->done[i].dev == dev && f->done[i].ino == ino)
			break;
	if (i == f->ndone) {
		if (f->ndone < DONE_MAX) {
			i = f->ndone++;
		} else {
			i = f->done_next;
			f->done_next = (f->done_next + 1) % DONE_MAX;
		}
	}
	f->done[i].dev = dev;
	f->done[i].ino = ino;
	f->done[i].pos = pos;
}

static const struct done *done_find(const struct in_file *f, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < f->ndone; i++)
		if (f->done[i].dev == dev && f->done[i].ino == ino)
			return &f->done[i];
	return NULL;
}

static struct tfile *tracked_inode(const struct in_file *f, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->files[i]->dead && f->files[i]->dev == dev && f->files[i]->ino == ino)
			return f->files[i];
	return NULL;
}

static int open_at(struct tfile *t, const char *path, uint64_t off)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || lseek(fd, (off_t)off, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	if (t->fd >= 0)
		close(t->fd);
	t->fd = fd;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->read_off = t->pos = off;
	t->piece = 0;
	rn_linesplit_reset(&t->ls);
	return 0;
}

/* Looks for inode `ino` among the files beside `path` (a renamed, rotated file). */
static int find_rotated(const char *path, dev_t dev, ino_t ino, char *out, size_t cap)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	DIR *d;
	struct dirent *de;
	int found = 0;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (!(d = opendir(dir)))
		return 0;
	while (!found && (de = readdir(d))) {
		struct stat st;
		if ((size_t)snprintf(out, cap, "%s/%s", dir, de->d_name) >= cap)
			continue;
		if (!stat(out, &st) && st.st_ino == ino && st.st_dev == dev && S_ISREG(st.st_mode))
			found = 1;
	}
	closedir(d);
	return found;
}

static struct tfile *track(struct in_file *f, const char *path)
{
	struct tfile *t;
	struct stat st;
	dev_t dev;
	ino_t ino;
	uint64_t pos;

	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->files[i]->path, path))
			return f->files[i];
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return NULL;
	/* the same file under another name (being finished after a rotation, a hard link) */
	if (tracked_inode(f, st.st_dev, st.st_ino))
		return NULL;
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 8;
		struct tfile **a = rn_reallocarray(f->files, nc, sizeof(*a));
		if (!a)
			return NULL;
		f->files = a;
		f->cap = nc;
	}
	if (!(t = rn_calloc(1, sizeof(*t))) || !(t->path = rn_strdup(path))) {
		rn_free(t);
		return NULL;
	}
	t->fd = -1;
	t->ls.max_line = (size_t)f->conf->max_line_bytes;
	t->last_data_us = rn_mono_us();
	const struct done *dn = done_find(f, st.st_dev, st.st_ino);
	uint64_t spos;
	if (dn && (uint64_t)st.st_size >= dn->pos) {
		/* an inode we already read to its end under another name (app.log -> app.log.1) */
		open_at(t, path, dn->pos);
	} else if (saved_pos(f, path, &dev, &ino, &pos)) {
		char old[4096];
		if (st.st_dev == dev && st.st_ino == ino && (uint64_t)st.st_size >= pos) {
			open_at(t, path, pos);
		} else if (tracked_inode(f, dev, ino)) {
			/* the old inode is already being finished under its new name (a glob matched
			 * app.log.1 first): take the new file from its start */
			open_at(t, path, 0);
		} else if (find_rotated(path, dev, ino, old, sizeof(old)) && !open_at(t, old, pos)) {
			rn_log_info("in_file", "%s was rotated while stopped; finishing %s first",
				    path, old);
			t->old = 1;
		} else if (f->initial_scan && saved_inode(f, st.st_dev, st.st_ino, &spos) &&
			   (uint64_t)st.st_size >= spos) {
			open_at(t, path, spos); /* renamed here from another tailed path */
		} else {
			rn_log_warn("in_file", "%s changed while stopped and the old file is gone; "
				    "reading the new one from its start", path);
			open_at(t, path, 0);
		}
	} else {
		/* new file: from the start, unless it existed at the first start and the source
		 * reads from the end */
		uint64_t at = f->first_scan && f->conf->read_from == 1 ? (uint64_t)st.st_size : 0;
		if (f->initial_scan && saved_inode(f, st.st_dev, st.st_ino, &spos) &&
			 (uint64_t)st.st_size >= spos)
			at = spos; /* renamed while we were stopped */
		open_at(t, path, at);
	}
	if (t->fd < 0) {
		rn_free(t->path);
		rn_free(t);
		return NULL;
	}
	rn_log_info("in_file", "tailing %s from byte %llu", t->old ? "(rotated file)" : path,
		    (unsigned long long)t->pos);
	f->files[f->n++] = t;
	f->host.position_changed(f->host.ctx);
	return t;
}

static void rescan(struct in_file *f)
{
	for (size_t i = 0; i < f->conf->paths.n; i++) {
		glob_t g;
		const char *pat = f->conf->paths.v[i];
		if (!strpbrk(pat, "*?[")) {
			track(f, pat);
			continue;
		}
		if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
			for (size_t k = 0; k < g.gl_pathc; k++) {
				size_t l = strlen(g.gl_pathv[k]);
				/* compressed rotated files are not text */
				if (l > 3 && (!strcmp(g.gl_pathv[k] + l - 3, ".gz") ||
					      !strcmp(g.gl_pathv[k] + l - 4, ".zst")))
					continue;
				track(f, g.gl_pathv[k]);
			}
		}
		globfree(&g);
	}
	f->first_scan = 0;
	f->initial_scan = 0;
}

/*
 * One line or piece. Pieces of an overlong line carry RN_RECORD_F_SPLIT and the attribute
 * "runnel.split": "1", "2", ... on the pieces followed by more, and "n/n" on the last one
 * (so a reader can tell the end of a line and reassemble by seq). A line cut by the
 * partial-line timeout ends without "n/n".
 */
static int on_line(void *ctx, const uint8_t *line, size_t len, uint32_t flags, uint64_t consumed)
{
	struct in_file *f = ctx;
	struct tfile *t = f->cur;
	char v[48];
	struct rn_attr a = {"runnel.split", v};
	struct rn_record r = {line, len, t->path, 0, flags & RN_RECORD_F_SPLIT, NULL, 0};
	int rc;
	if (flags & RN_RECORD_F_SPLIT) {
		unsigned i = t->piece + 1;
		if (flags & RN_LINESPLIT_EOL)
			snprintf(v, sizeof(v), "%u/%u", i, i);
		else
			snprintf(v, sizeof(v), "%u", i);
		r.attrs = &a;
		r.nattrs = 1;
	}
	uint64_t before = t->pos;
	t->pos = consumed; /* before emit: a chunk closed inside emit includes this line */
	if ((rc = f->host.emit(f->host.ctx, &r))) {
		t->pos = before; /* not taken */
		return rc;
	}
	t->piece = (flags & RN_RECORD_F_SPLIT) && !(flags & RN_LINESPLIT_EOL) ? t->piece + 1 : 0;
	return 0;
}

/* Hands out the held partial line (timeout or rotation): that line is over. */
static int flush_partial(struct in_file *f, struct tfile *t)
{
	int rc;
	f->cur = t;
	rc = rn_linesplit_flush(&t->ls, t->read_off, on_line, f);
	if (!rc)
		t->piece = 0;
	return rc;
}

/* At EOF: a rename rotation or a truncation? Returns 1 if the file was switched. */
static int check_rotation(struct in_file *f, struct tfile *t)
{
	struct stat st, cur;
	int rc;
	if (fstat(t->fd, &cur))
		return 0;
	if (!t->old && (uint64_t)cur.st_size < t->read_off) {
		rn_log_warn("in_file", "%s was truncated; reading it again from the start", t->path);
		open_at(t, t->path, 0);
		f->host.position_changed(f->host.ctx);
		return 1;
	}
	if (!t->old && stat(t->path, &st)) {
		/* gone: maybe a rotation whose new file is not there yet; after rotate_wait the
		 * file was deleted: emit its partial line, close it (freeing its disk space) and
		 * forget it */
		int64_t now = rn_mono_us();
		if (!t->gone_us) {
			t->gone_us = now;
		} else if (now - t->gone_us > f->conf->rotate_wait_ms * 1000) {
			if ((rc = flush_partial(f, t)))
				return rc;
			rn_log_info("in_file", "%s is gone; closing it after reading it to its end",
				    t->path);
			done_add(f, t->dev, t->ino, t->read_off);
			t->dead = 1;
		}
		return 0;
	}
	t->gone_us = 0;
	if (!t->old && st.st_ino == t->ino && st.st_dev == t->dev)
		return 0; /* same file: wait for more data */
	/* rotated: finish the old file's partial line, then take the new one from byte 0 */
	if ((rc = flush_partial(f, t)))
		return rc;
	if (stat(t->path, &st))
		return 0;
	rn_log_info("in_file", "%s rotated; following the new file", t->path);
	done_add(f, t->dev, t->ino, t->read_off);
	t->old = 0;
	open_at(t, t->path, 0);
	f->host.position_changed(f->host.ctx);
	return 1;
}

static void tfile_free(struct tfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	rn_linesplit_free(&t->ls);
	rn_free(t->path);
	rn_free(t);
}

/* Drops closed files from the list; the position change is committed with the next chunk
 * or alone. */
static void sweep(struct in_file *f)
{
	size_t k = 0;
	int changed = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (f->files[i]->dead) {
			tfile_free(f->files[i]);
			changed = 1;
		} else {
			f->files[k++] = f->files[i];
		}
	}
	f->n = k;
	if (changed)
		f->host.position_changed(f->host.ctx);
}

static int file_poll(void *inst, int64_t now_us, int *more)
{
	struct in_file *f = inst;
	int rc = 0;
	*more = 0;
	if (now_us >= f->next_scan_us) {
		rescan(f);
		f->next_scan_us = now_us + RESCAN_US;
	}
	for (size_t i = 0; i < f->n && f->host.accepting(f->host.ctx); i++) {
		struct tfile *t = f->files[i];
		ssize_t n;
		size_t used;
		if (t->dead)
			continue;
		n = read(t->fd, f->rbuf, READ_CHUNK);
		f->cur = t;
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN)
				rn_log_warn("in_file", "read %s: %s", t->path, strerror(errno));
			continue;
		}
		if (n == 0) {
			int sw = check_rotation(f, t);
			if (sw < 0)
				return sw == RN_EFULL ? 0 : sw; /* host full: try again later */
			if (sw) {
				*more = 1;
			} else if (rn_linesplit_pending(&t->ls) &&
				   rn_mono_us() - t->last_data_us > f->conf->line_timeout_ms * 1000) {
				if ((rc = flush_partial(f, t)))
					return rc == RN_EFULL ? 0 : rc;
			}
			continue;
		}
		t->last_data_us = rn_mono_us();
		rc = rn_linesplit_feed(&t->ls, f->rbuf, (size_t)n, t->read_off, on_line, f, &used);
		t->read_off += used;
		if (rc) {
			/* the bytes not taken are read again next time */
			if (used < (size_t)n)
				lseek(t->fd, (off_t)t->read_off, SEEK_SET);
			if (rc == RN_EFULL) /* the host is full: not an error, try later */
				break;
			return rc;
		}
		if ((size_t)n == READ_CHUNK)
			*more = 1;
	}
	sweep(f);
	return 0;
}

static int file_snapshot(void *inst, struct rn_buf *out)
{
	struct in_file *f = inst;
	int rc = 0;
	for (size_t i = 0; i < f->n && !rc; i++) {
		struct tfile *t = f->files[i];
		if (t->dead)
			continue;
		rc = rn_buf_printf(out, "%llu %llu %llu %s\n", (unsigned long long)t->dev,
				   (unsigned long long)t->ino, (unsigned long long)t->pos, t->path);
	}
	for (size_t i = 0; i < f->ndone && !rc; i++)
		rc = rn_buf_printf(out, "%llu %llu %llu -\n", (unsigned long long)f->done[i].dev,
				   (unsigned long long)f->done[i].ino,
				   (unsigned long long)f->done[i].pos);
	return rc;
}

static int file_check(const struct rn_source_conf *sc, char *err, size_t cap)
{
	const struct in_file_conf *c = sc->plugin.data;
	if (!c || !c->paths.n) {
		snprintf(err, cap, "source '%s': paths must name at least one file or glob",
			 sc->name ? sc->name : "?");
		return RN_ECONFIG;
	}
	return 0;
}

static void file_destroy(void *inst)
{
	struct in_file *f = inst;
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		tfile_free(f->files[i]);
	rn_free(f->files);
	rn_free(f->rbuf);
	rn_buf_free(&f->saved);
	rn_free(f);
}

/* Takes the "-" lines (finished inodes) of the saved checkpoint into done[]. */
static void load_done(struct in_file *f)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		unsigned long long d, i, o;
		int n = 0;
		if (!nl)
			break;
		if (sscanf(p, "%llu %llu %llu %n", &d, &i, &o, &n) == 3 && n > 0 &&
		    nl - (p + n) == 1 && p[n] == '-')
			done_add(f, (dev_t)d, (ino_t)i, o);
		p = nl + 1;
	}
}

static int file_create(void **inst, const struct rn_source_conf *conf,
		       const struct rn_source_host *host)
{
	struct in_file *f = rn_calloc(1, sizeof(*f));
	if (!f || !(f->rbuf = rn_malloc(READ_CHUNK))) {
		rn_free(f);
		return RN_ENOMEM;
	}
	f->conf = conf->plugin.data;
	f->host = *host;
	f->first_scan = host->load_position(host->ctx, &f->saved) == RN_ENOTFOUND;
	f->initial_scan = 1;
	load_done(f);
	*inst = f;
	return 0;
}

const struct rn_source_plugin rn_in_file = {
	.abi = RN_SOURCE_ABI_1,
	.name = "file",
	.description = "tails files (globs, rotation, resume), one record per line",
	.conf = file_conf,
	.conf_size = sizeof(struct in_file_conf),
	.check = file_check,
	.create = file_create,
	.poll = file_poll,
	.snapshot = file_snapshot,
	.destroy = file_destroy,
};
