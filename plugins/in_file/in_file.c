/*
 * in_file: tails files named by paths or globs, one record per line, or per group of lines
 * when `multiline_start` is set (multiline.c groups them; the regex lives here). The resume
 * position per file is (device, inode, bytes consumed) — advanced only as records are
 * emitted, so the host's snapshot always matches the records it has (see plugin.h); lines
 * held in a partial line or a pending multi-line record are not consumed and are read again
 * after a restart. Waking: an inotify descriptor on the globs' directories (wait_fd) wakes
 * the loop at once on new data or names; a file at its end is not read again until an event
 * or the periodic rescan (`rescan_interval`, the fallback for lost events and filesystems
 * without inotify). Rotation by rename: when the path names another inode, the old file
 * stays open and is read on ("rotated", checkpointed as "+path") until it has been quiet
 * for rotate_wait, while the new file is read from its start; before new data of a path is
 * handed out, the files the path named before are read to their end, so one writer's lines
 * keep their order across the switch. After a restart, saved inodes no longer at their path
 * are looked up in the same directory and finished first. A file that shrank (copytruncate)
 * is read again from its start. Compressed rotated files (.gz, .xz, ...) are never read.
 * One instance per source, created and destroyed by the agent, used on the loop thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linesplit.h"
#include "multiline.h"
#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#define READ_CHUNK ((size_t)256 << 10)
#define DRAIN_CHUNK ((size_t)64 << 10)

/* The plugin's own settings (rows below); filled by the agent's config loader. */
struct in_file_conf {
	struct rn_conf_strlist paths;
	int read_from; /* 0 = beginning, 1 = end */
	int64_t max_line_bytes;
	int64_t line_timeout_ms;
	int64_t rotate_wait_ms; /* a rotated file quiet (or a path gone) this long is closed */
	int64_t rescan_interval_ms;
	char *multiline_start; /* NULL or "": one record per line */
	int64_t multiline_timeout_ms;
	int64_t multiline_max_bytes;
};

static const char *const read_from_names[] = {"beginning", "end", NULL};

#define C(f) offsetof(struct in_file_conf, f)
static const struct rn_conf_key file_conf[] = {
	{.key = "paths", .type = RN_CONF_STRLIST, .offset = C(paths), .flags = RN_CONF_F_REQUIRED,
	 .help = "files or globs to tail, one record per line"},
	{.key = "read_from", .type = RN_CONF_ENUM, .def = "end", .enums = read_from_names,
	 .offset = C(read_from),
	 .help = "where to start in files present at the source's very first start (no saved "
		 "position); files appearing later are always read from their start"},
	/* capped at 4M: one piece must fit a request under the server's message limit (10M) */
	{.key = "max_line_bytes", .type = RN_CONF_SIZE, .def = "64K", .min = 16,
	 .max = (int64_t)4 << 20, .offset = C(max_line_bytes),
	 .help = "longer lines become flagged pieces (runnel.split)"},
	{.key = "line_timeout_ms", .type = RN_CONF_DURATION, .def = "1000", .min = 1,
	 .max = 3600000, .offset = C(line_timeout_ms),
	 .help = "a last line without newline is emitted after this long"},
	{.key = "rotate_wait_ms", .type = RN_CONF_DURATION, .def = "5s", .min = 1,
	 .max = 86400000, .offset = C(rotate_wait_ms),
	 .help = "a rotated file is read until quiet this long; a path gone this long is closed"},
	{.key = "rescan_interval", .type = RN_CONF_DURATION, .def = "2s", .min = 10,
	 .max = 86400000, .offset = C(rescan_interval_ms),
	 .help = "globs are expanded and every file read again this often, besides inotify"},
	{.key = "multiline_start", .type = RN_CONF_STRING, .offset = C(multiline_start),
	 .help = "POSIX extended regex: a line matching it starts a record, the lines after it "
		 "that do not are appended (joined by \\n); unset: one record per line"},
	{.key = "multiline_timeout", .type = RN_CONF_DURATION, .def = "1s", .min = 1,
	 .max = 3600000, .offset = C(multiline_timeout_ms),
	 .help = "a pending multi-line record is emitted when no line came for this long"},
	{.key = "multiline_max_bytes", .type = RN_CONF_SIZE, .def = "256K", .min = 16,
	 .max = (int64_t)4 << 20, .offset = C(multiline_max_bytes),
	 .help = "longer multi-line records become flagged pieces (runnel.split)"},
	{0},
};
#undef C
#define DONE_MAX 32   /* finished inodes remembered (ring) */
#define IGNORED_MAX 64 /* compressed files already logged */
#define WATCH_MASK                                                                               \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY | IN_DELETE | IN_CLOSE_WRITE |     \
	 IN_ONLYDIR)
#define EV_ANY 1   /* something happened in a watched directory: read the files */
#define EV_NAMES 2 /* names came or went (or events were lost): expand the globs again */

struct tfile {
	char *path; /* the name it is tailed under: record topic and checkpoint key */
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t read_off; /* bytes fed to the splitter */
	uint64_t pos;      /* bytes consumed by emitted records: the resume position */
	struct rn_linesplit ls;
	struct rn_multiline ml; /* used when the source has multiline_start */
	int64_t last_data_us;
	/* The path names another inode now: this one is read on until quiet for rotate_wait,
	 * then finished. Checkpointed as "+path". */
	int rotated;
	struct tfile *prev; /* what the path named before (rotated, still open): read first */
	int dead;           /* closed; removed from the list at the end of the poll */
	int idle;           /* at its end with nothing timed: skipped until an event or rescan */
	int64_t gone_us;    /* mono time the path was first seen missing, 0 if present */
	unsigned piece;     /* pieces of the current split record handed out so far */
	unsigned lpiece;    /* pieces of the current overlong line fed to multiline */
};

struct in_file {
	const struct in_file_conf *conf; /* borrowed from the source's config */
	struct rn_source_host host;
	struct tfile **files;
	size_t n, cap;
	uint8_t *rbuf, *dbuf; /* read buffers: files, and rotated files drained before them */
	int64_t next_scan_us;
	int first_scan;      /* no checkpoint: this is the source's very first start */
	int initial_scan;    /* the first rescan of this run (restores the checkpoint) */
	struct rn_buf saved; /* checkpoint from the last run; freed after the initial scan */
	struct tfile *cur;   /* file whose lines are being emitted */
	int ino_fd;          /* inotify, -1 if unavailable (then every poll reads every file) */
	int watch_warned;
	int use_re; /* multiline_start set: `re` compiled */
	regex_t re;
	struct rn_buf scratch; /* the line being matched, NUL-terminated (max_line + 1) */
	char *ignored[IGNORED_MAX]; /* compressed files already logged */
	size_t nignored;
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

/* One checkpoint line "dev ino pos name\n" from *p; advances *p. 0 at the end. */
static int next_entry(const char **p, const char *end, unsigned long long *d,
		      unsigned long long *i, unsigned long long *o, const char **name,
		      size_t *nlen)
{
	while (*p && *p < end) {
		const char *l = *p, *nl = memchr(l, '\n', (size_t)(end - l));
		int n = 0;
		if (!nl)
			return 0;
		*p = nl + 1;
		if (sscanf(l, "%llu %llu %llu %n", d, i, o, &n) == 3 && n > 0 && l + n < nl) {
			*name = l + n;
			*nlen = (size_t)(nl - (l + n));
			return 1;
		}
	}
	return 0;
}

/* A saved entry (any name) for inode (dev, ino). */
static int saved_inode(const struct in_file *f, dev_t dev, ino_t ino, uint64_t *pos)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len, *name;
	unsigned long long d, i, o;
	size_t nl;
	while (next_entry(&p, end, &d, &i, &o, &name, &nl))
		if ((dev_t)d == dev && (ino_t)i == ino) {
			*pos = o;
			return 1;
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

/* Opens `name` at byte `off` into t (a fresh tfile): splitter and grouping start there. */
static int tfile_open(struct tfile *t, const char *name, uint64_t off)
{
	struct stat st;
	int fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || lseek(fd, (off_t)off, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	t->fd = fd;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->read_off = t->pos = off;
	t->piece = t->lpiece = 0;
	rn_linesplit_reset(&t->ls);
	rn_multiline_reset(&t->ml, off);
	return 0;
}

static void tfile_free(struct tfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	rn_linesplit_free(&t->ls);
	rn_multiline_free(&t->ml);
	rn_free(t->path);
	rn_free(t);
}

/* Starts tailing file `name` from byte `at`, as `path` (they differ for a rotated file
 * found under its new name). Its predecessor is the last file still open for the same path.
 * NULL if it could not be opened or on ENOMEM (the next rescan tries again). */
static struct tfile *add_file(struct in_file *f, const char *name, const char *path,
			      uint64_t at, int rotated)
{
	struct tfile *t;
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
	if (f->use_re) {
		/* a line must fit one piece of a record */
		if (f->conf->multiline_max_bytes < f->conf->max_line_bytes)
			t->ls.max_line = (size_t)f->conf->multiline_max_bytes;
		t->ml.max_bytes = (size_t)f->conf->multiline_max_bytes;
		t->ml.timeout_us = f->conf->multiline_timeout_ms * 1000;
	}
	if (tfile_open(t, name, at)) {
		tfile_free(t);
		return NULL;
	}
	t->rotated = rotated;
	t->last_data_us = rn_mono_us();
	for (size_t k = f->n; k-- > 0;)
		if (!f->files[k]->dead && !strcmp(f->files[k]->path, path)) {
			t->prev = f->files[k];
			break;
		}
	f->files[f->n++] = t;
	if (rotated)
		rn_log_info("in_file", "finishing %s (rotated from %s) from byte %llu", name, path,
			    (unsigned long long)at);
	else
		rn_log_info("in_file", "tailing %s from byte %llu", path, (unsigned long long)at);
	f->host.position_changed(f->host.ctx);
	return t;
}

/* Looks for inode `ino` among the files beside `path` (a renamed, rotated file), not at
 * `path` itself: a checkpointed inode number found there again belongs to a new file that
 * reused it. */
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
		if ((size_t)snprintf(out, cap, "%s/%s", dir, de->d_name) >= cap ||
		    !strcmp(de->d_name, slash ? slash + 1 : path))
			continue;
		if (!stat(out, &st) && st.st_ino == ino && st.st_dev == dev && S_ISREG(st.st_mode))
			found = 1;
	}
	closedir(d);
	return found;
}

/*
 * The initial scan's first step: every file of the checkpoint resumes at its position. A
 * saved inode still at its path is tailed there; one no longer there (rotated while we were
 * stopped, or a "+path" file that was being finished) is looked for beside the path and
 * finished first. The path's new file is then picked up by the glob scan, from its start.
 * Entries are in list order (older files of a path first), which rebuilds the prev chains.
 */
static void restore(struct in_file *f)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len, *name;
	unsigned long long d, i, o;
	size_t nl;
	while (next_entry(&p, end, &d, &i, &o, &name, &nl)) {
		char path[4096], old[4096];
		struct stat st;
		int plus = name[0] == '+';
		if ((nl == 1 && name[0] == '-') || nl - (size_t)plus >= sizeof(path))
			continue;
		snprintf(path, sizeof(path), "%.*s", (int)(nl - (size_t)plus), name + plus);
		if (tracked_inode(f, (dev_t)d, (ino_t)i))
			continue;
		if (!plus && !stat(path, &st) && st.st_dev == (dev_t)d && st.st_ino == (ino_t)i) {
			uint64_t at = o;
			if ((uint64_t)st.st_size < at) {
				rn_log_warn("in_file", "%s shrank while stopped; reading it again from "
					    "its start", path);
				at = 0;
			}
			add_file(f, path, path, at, 0);
			continue;
		}
		/* a file shorter than the position is not ours (the inode number was reused) */
		if (find_rotated(path, (dev_t)d, (ino_t)i, old, sizeof(old)) && !stat(old, &st) &&
		    (uint64_t)st.st_size >= o) {
			if (!plus)
				rn_log_info("in_file", "%s was rotated while stopped; finishing %s "
					    "first", path, old);
			add_file(f, old, path, o, 1);
		} else if (!plus) {
			rn_log_warn("in_file", "%s changed while stopped and the old file is gone; "
				    "reading the new one from its start", path);
		}
	}
}

static int compressed(const char *path)
{
	static const char *const ext[] = {".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z",
					  NULL};
	size_t l = strlen(path);
	for (size_t i = 0; ext[i]; i++) {
		size_t e = strlen(ext[i]);
		if (l > e && !strcmp(path + l - e, ext[i]))
			return 1;
	}
	return 0;
}

/* Compressed files are not text: skipped, with one debug line per file. */
static void ignore_compressed(struct in_file *f, const char *path)
{
	char *c;
	for (size_t i = 0; i < f->nignored; i++)
		if (!strcmp(f->ignored[i], path))
			return;
	if (f->nignored == IGNORED_MAX || !(c = rn_strdup(path)))
		return; /* the log line is a courtesy: past the cap it is left out */
	f->ignored[f->nignored++] = c;
	rn_log_debug("in_file", "ignoring compressed file %s", path);
}

/* A path the globs matched: tailed from where its inode is known, else from its start (or its
 * end, in the very first scan with read_from = end). */
static void track(struct in_file *f, const char *path)
{
	struct stat st;
	const struct done *dn;
	uint64_t at = 0, spos;

	if (compressed(path)) {
		ignore_compressed(f, path);
		return;
	}
	for (size_t i = 0; i < f->n; i++)
		if (!f->files[i]->dead && !f->files[i]->rotated && !strcmp(f->files[i]->path, path))
			return;
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return;
	/* the same file under another name (being finished after a rotation, a hard link) */
	if (tracked_inode(f, st.st_dev, st.st_ino))
		return;
	if ((dn = done_find(f, st.st_dev, st.st_ino)) && (uint64_t)st.st_size >= dn->pos)
		at = dn->pos; /* read to its end under another name (app.log -> app.log.1) */
	else if (f->initial_scan && saved_inode(f, st.st_dev, st.st_ino, &spos) &&
		 (uint64_t)st.st_size >= spos)
		at = spos; /* renamed here while we were stopped */
	else if (f->first_scan && f->conf->read_from == 1)
		at = (uint64_t)st.st_size;
	add_file(f, path, path, at, 0);
}

static void watch(struct in_file *f, const char *dir)
{
	if (inotify_add_watch(f->ino_fd, dir, WATCH_MASK) >= 0 || errno == ENOENT ||
	    errno == ENOTDIR)
		return; /* a missing directory is watched once a rescan finds it */
	if (!f->watch_warned)
		rn_log_warn("in_file", "cannot watch %s (%s); new data is seen at each rescan", dir,
			    strerror(errno));
	f->watch_warned = 1;
}

/* Watches the directory part of `pat` (every directory it matches, if it is a glob). */
static void watch_dirs(struct in_file *f, const char *pat)
{
	char dir[4096];
	const char *slash = strrchr(pat, '/');
	glob_t g;
	if (f->ino_fd < 0)
		return;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == pat)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - pat) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - pat), pat);
	else
		return;
	if (!strpbrk(dir, "*?[")) {
		watch(f, dir);
		return;
	}
	if (glob(dir, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0)
		for (size_t k = 0; k < g.gl_pathc; k++)
			watch(f, g.gl_pathv[k]);
	globfree(&g);
}

static void rescan(struct in_file *f)
{
	if (f->initial_scan)
		restore(f);
	for (size_t i = 0; i < f->conf->paths.n; i++) {
		glob_t g;
		const char *pat = f->conf->paths.v[i];
		watch_dirs(f, pat);
		if (!strpbrk(pat, "*?[")) {
			track(f, pat);
			continue;
		}
		if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
			for (size_t k = 0; k < g.gl_pathc; k++)
				track(f, g.gl_pathv[k]);
		globfree(&g);
	}
	f->first_scan = 0;
	if (f->initial_scan) {
		/* saved positions are for this run's start only: from now on a path's new file
		 * is new, and an inode we let go is known by done[] */
		f->initial_scan = 0;
		rn_buf_free(&f->saved);
	}
}

/* Reads the pending inotify events. EV_* bits; EV_ANY always without inotify. */
static int watch_events(struct in_file *f)
{
	char buf[4096];
	int ev = 0;
	ssize_t n;
	if (f->ino_fd < 0)
		return EV_ANY;
	while ((n = read(f->ino_fd, buf, sizeof(buf))) > 0) {
		for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
			struct inotify_event e;
			memcpy(&e, buf + off, sizeof(e)); /* buf is not aligned for the struct */
			ev |= EV_ANY;
			if (e.mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
				      IN_Q_OVERFLOW | IN_IGNORED))
				ev |= EV_NAMES;
			off += sizeof(e) + e.len;
		}
	}
	return ev;
}

/*
 * One record or piece. Pieces of an overlong line or multi-line record carry
 * RN_RECORD_F_SPLIT and the attribute "runnel.split": "1", "2", ... on the pieces followed by
 * more, and "n/n" on the last one (so a reader can tell the end and reassemble by seq). A
 * line cut by the partial-line timeout ends without "n/n".
 */
static int emit_rec(void *ctx, const uint8_t *line, size_t len, uint32_t flags,
		    uint64_t consumed)
{
	struct in_file *f = ctx;
	struct tfile *t = f->cur;
	char v[48];
	struct rn_attr a = {"runnel.split", v};
	struct rn_record r = {line ? line : (const uint8_t *)"", len, t->path, 0,
			      flags & RN_RECORD_F_SPLIT, NULL, 0};
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
	t->pos = consumed; /* before emit: a chunk closed inside emit includes this record */
	if ((rc = f->host.emit(f->host.ctx, &r))) {
		t->pos = before; /* not taken */
		return rc;
	}
	t->piece = (flags & RN_RECORD_F_SPLIT) && !(flags & RN_LINESPLIT_EOL) ? t->piece + 1 : 0;
	return 0;
}

/* Does the line match multiline_start? The line is copied to be NUL-terminated (regexec and
 * sanitizers' interceptors of it read up to a NUL); REG_STARTEND (glibc, musl >= 1.2.4, the
 * BSDs) then lets a line holding NUL bytes match past them. If the copy fails (ENOMEM), the
 * line counts as a start: a record boundary too many, nothing lost. */
static int line_starts(struct in_file *f, const uint8_t *line, size_t len)
{
	regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)len}};
	rn_buf_reset(&f->scratch);
	if ((len && rn_buf_append(&f->scratch, line, len)) || rn_buf_append_u8(&f->scratch, 0))
		return 1;
	return regexec(&f->re, (const char *)f->scratch.data, 1, m, REG_STARTEND) == 0;
}

/* The splitter's callback: a record per line, or the line goes to the multi-line grouping. */
static int on_line(void *ctx, const uint8_t *line, size_t len, uint32_t flags, uint64_t consumed)
{
	struct in_file *f = ctx;
	struct tfile *t = f->cur;
	unsigned mf;
	int rc, more;
	if (!f->use_re)
		return emit_rec(ctx, line, len, flags, consumed);
	more = (flags & RN_RECORD_F_SPLIT) && !(flags & RN_LINESPLIT_EOL);
	mf = t->lpiece ? RN_MULTILINE_CONT : line_starts(f, line, len) ? RN_MULTILINE_START : 0;
	rc = rn_multiline_feed(&t->ml, line, len, mf | (more ? RN_MULTILINE_MORE : 0), consumed,
			       rn_mono_us(), emit_rec, f);
	if (!rc)
		t->lpiece = more ? t->lpiece + 1 : 0;
	return rc;
}

/* The splitter gave out its partial line: that line is over (numbering of a split line
 * restarts; a multi-line record's timeout runs again). */
static void line_over(struct in_file *f, struct tfile *t)
{
	t->lpiece = 0;
	if (f->use_re)
		rn_multiline_end_line(&t->ml);
	else
		t->piece = 0;
}

/* Hands out what t holds back: the partial line, then the pending multi-line record. */
static int flush_pending(struct in_file *f, struct tfile *t)
{
	int rc;
	f->cur = t;
	if ((rc = rn_linesplit_flush(&t->ls, t->read_off, on_line, f)))
		return rc;
	line_over(f, t);
	return f->use_re ? rn_multiline_flush(&t->ml, emit_rec, f) : 0;
}

/* The timeouts: a partial line after line_timeout, a multi-line record after its timeout. */
static int tick_pending(struct in_file *f, struct tfile *t, int64_t now)
{
	int rc;
	f->cur = t;
	if (rn_linesplit_pending(&t->ls) && now - t->last_data_us > f->conf->line_timeout_ms * 1000) {
		if ((rc = rn_linesplit_flush(&t->ls, t->read_off, on_line, f)))
			return rc;
		line_over(f, t);
	}
	return f->use_re ? rn_multiline_tick(&t->ml, now, emit_rec, f) : 0;
}

/* Reads are handed to the splitter; bytes it did not take are read again next time. */
static int feed(struct in_file *f, struct tfile *t, const uint8_t *p, size_t n)
{
	size_t used = 0;
	int rc;
	f->cur = t;
	t->last_data_us = rn_mono_us();
	rc = rn_linesplit_feed(&t->ls, p, n, t->read_off, on_line, f, &used);
	t->read_off += used;
	if (rc && used < n)
		lseek(t->fd, (off_t)t->read_off, SEEK_SET);
	return rc;
}

/* Reads p (and the files before it) to the end and hands out all they hold back: called
 * before a path's new file gives out data, so a writer's lines before its switch go first. */
static int drain_prev(struct in_file *f, struct tfile *p)
{
	int rc;
	if (p->dead)
		return 0;
	if (p->prev && (rc = drain_prev(f, p->prev)))
		return rc;
	for (;;) {
		ssize_t n = read(p->fd, f->dbuf, DRAIN_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((rc = feed(f, p, f->dbuf, (size_t)n)))
			return rc;
	}
	return flush_pending(f, p);
}

/* A file is over (rotated and quiet, or deleted): hand out the rest, close, remember it. */
static int finish(struct in_file *f, struct tfile *t)
{
	int rc;
	if ((rc = flush_pending(f, t)))
		return rc;
	rn_log_info("in_file", "%s%s: done after byte %llu", t->path,
		    t->rotated ? " (rotated file)" : "", (unsigned long long)t->read_off);
	done_add(f, t->dev, t->ino, t->read_off);
	t->dead = 1;
	return 0;
}

/* At the end of t: truncation, rotation, a deleted path, timeouts. 0 or the host's refusal. */
static int at_eof(struct in_file *f, struct tfile *t, int *more)
{
	int64_t now = rn_mono_us();
	struct stat st, cur;
	int rc;
	if (t->rotated) {
		if (now - t->last_data_us > f->conf->rotate_wait_ms * 1000)
			return finish(f, t);
		return tick_pending(f, t, now);
	}
	if (!fstat(t->fd, &cur) && (uint64_t)cur.st_size < t->read_off) {
		rn_log_warn("in_file", "%s was truncated; reading it again from the start", t->path);
		if ((rc = flush_pending(f, t)))
			return rc;
		if (lseek(t->fd, 0, SEEK_SET) == 0) {
			t->read_off = t->pos = 0;
			t->piece = t->lpiece = 0;
			rn_linesplit_reset(&t->ls);
			rn_multiline_reset(&t->ml, 0);
			f->host.position_changed(f->host.ctx);
			*more = 1;
		}
		return 0;
	}
	if (stat(t->path, &st)) {
		/* gone: maybe a rotation whose new file is not there yet; after rotate_wait the
		 * file was deleted: hand out what it holds, close it (freeing its disk space) and
		 * forget it */
		if (!t->gone_us)
			t->gone_us = now;
		else if (now - t->gone_us > f->conf->rotate_wait_ms * 1000)
			return finish(f, t);
		return tick_pending(f, t, now);
	}
	t->gone_us = 0;
	if (st.st_ino != t->ino || st.st_dev != t->dev) {
		/* rotated: this file is read on until it is quiet; the path's new file from its
		 * start (or from where we left it, if we know that inode) */
		const struct done *dn = done_find(f, st.st_dev, st.st_ino);
		rn_log_info("in_file", "%s rotated; following the new file", t->path);
		t->rotated = 1;
		t->last_data_us = now;
		if (!tracked_inode(f, st.st_dev, st.st_ino))
			add_file(f, t->path, t->path,
				 dn && (uint64_t)st.st_size >= dn->pos ? dn->pos : 0, 0);
		f->host.position_changed(f->host.ctx);
		*more = 1;
		return 0;
	}
	if ((rc = tick_pending(f, t, now)))
		return rc;
	/* nothing timed is left: wait for inotify (never without it) */
	t->idle = f->ino_fd >= 0 && !rn_linesplit_pending(&t->ls) &&
		  !(f->use_re && rn_multiline_pending(&t->ml));
	return 0;
}

/* One read of t. 0, or the host's refusal (RN_EFULL) or another error. */
static int step(struct in_file *f, struct tfile *t, int *more)
{
	ssize_t n = read(t->fd, f->rbuf, READ_CHUNK);
	int rc;
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			rn_log_warn("in_file", "read %s: %s", t->path, strerror(errno));
		return 0;
	}
	if (n == 0)
		return at_eof(f, t, more);
	if (t->prev && (rc = drain_prev(f, t->prev))) {
		lseek(t->fd, (off_t)t->read_off, SEEK_SET); /* read again once they are out */
		return rc;
	}
	if ((rc = feed(f, t, f->rbuf, (size_t)n)))
		return rc;
	if ((size_t)n == READ_CHUNK)
		*more = 1;
	return 0;
}

/* Drops closed files from the list; the position change is committed with the next chunk
 * or alone. */
static void sweep(struct in_file *f)
{
	size_t k = 0;
	int changed = 0;
	for (size_t i = 0; i < f->n; i++) {
		struct tfile *t = f->files[i];
		while (t->prev && t->prev->dead)
			t->prev = t->prev->prev;
	}
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
	int ev = watch_events(f);
	*more = 0;
	if ((ev & EV_NAMES) || now_us >= f->next_scan_us) {
		rescan(f);
		f->next_scan_us = now_us + f->conf->rescan_interval_ms * 1000;
		ev |= EV_ANY; /* the rescan also reads every file: the fallback for lost events */
	}
	for (size_t i = 0; ev && i < f->n; i++)
		f->files[i]->idle = 0;
	for (size_t i = 0; i < f->n && f->host.accepting(f->host.ctx); i++) {
		struct tfile *t = f->files[i];
		int rc;
		if (t->dead || t->idle)
			continue;
		if ((rc = step(f, t, more))) {
			if (rc == RN_EFULL)
				break; /* the host is full: not an error, try later */
			return rc;
		}
	}
	sweep(f);
	return 0;
}

static int file_wait_fd(void *inst, short *events)
{
	struct in_file *f = inst;
	*events = POLLIN;
	return f->ino_fd;
}

static int file_snapshot(void *inst, struct rn_buf *out)
{
	struct in_file *f = inst;
	int rc = 0;
	for (size_t i = 0; i < f->n && !rc; i++) {
		struct tfile *t = f->files[i];
		if (t->dead)
			continue;
		rc = rn_buf_printf(out, "%llu %llu %llu %s%s\n", (unsigned long long)t->dev,
				   (unsigned long long)t->ino, (unsigned long long)t->pos,
				   t->rotated ? "+" : "", t->path);
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
	regex_t re;
	int e;
	if (!c || !c->paths.n) {
		snprintf(err, cap, "source '%s': paths must name at least one file or glob",
			 sc->name ? sc->name : "?");
		return RN_ECONFIG;
	}
	if (c->multiline_start && *c->multiline_start) {
		if ((e = regcomp(&re, c->multiline_start, REG_EXTENDED | REG_NOSUB))) {
			char m[160];
			regerror(e, &re, m, sizeof(m));
			snprintf(err, cap, "source '%s': multiline_start \"%s\": %s",
				 sc->name ? sc->name : "?", c->multiline_start, m);
			return RN_ECONFIG;
		}
		regfree(&re);
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
	for (size_t i = 0; i < f->nignored; i++)
		rn_free(f->ignored[i]);
	if (f->use_re)
		regfree(&f->re);
	if (f->ino_fd >= 0)
		close(f->ino_fd);
	rn_free(f->files);
	rn_free(f->rbuf);
	rn_free(f->dbuf);
	rn_buf_free(&f->saved);
	rn_buf_free(&f->scratch);
	rn_free(f);
}

/* Takes the "-" lines (finished inodes) of the saved checkpoint into done[]. */
static void load_done(struct in_file *f)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len, *name;
	unsigned long long d, i, o;
	size_t nl;
	while (next_entry(&p, end, &d, &i, &o, &name, &nl))
		if (nl == 1 && name[0] == '-')
			done_add(f, (dev_t)d, (ino_t)i, o);
}

static int file_create(void **inst, const struct rn_source_conf *conf,
		       const struct rn_source_host *host)
{
	struct in_file *f = rn_calloc(1, sizeof(*f));
	if (!f)
		return RN_ENOMEM;
	f->ino_fd = -1;
	f->conf = conf->plugin.data;
	if (!(f->rbuf = rn_malloc(READ_CHUNK)) || !(f->dbuf = rn_malloc(DRAIN_CHUNK))) {
		file_destroy(f);
		return RN_ENOMEM;
	}
	if (f->conf->multiline_start && *f->conf->multiline_start) {
		if (regcomp(&f->re, f->conf->multiline_start, REG_EXTENDED | REG_NOSUB)) {
			file_destroy(f); /* check() accepted it: only memory can fail here */
			return RN_ENOMEM;
		}
		f->use_re = 1;
		f->scratch.max = (size_t)f->conf->max_line_bytes + 1;
	}
	f->host = *host;
	f->first_scan = host->load_position(host->ctx, &f->saved) == RN_ENOTFOUND;
	f->initial_scan = 1;
	load_done(f);
	if ((f->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		rn_log_warn("in_file", "inotify unavailable (%s): reading every file at each poll",
			    strerror(errno));
	*inst = f;
	return 0;
}

const struct rn_source_plugin rn_in_file = {
	.abi = RN_SOURCE_ABI_1,
	.name = "file",
	.description = "tails files (globs, inotify, rotation, resume, multi-line records)",
	.conf = file_conf,
	.conf_size = sizeof(struct in_file_conf),
	.check = file_check,
	.create = file_create,
	.poll = file_poll,
	.wait_fd = file_wait_fd,
	.snapshot = file_snapshot,
	.destroy = file_destroy,
};
