/*
 * in_file: tails files named by paths or globs, one record per line, or per group of lines
 * when `multiline_start` is set (multiline.c groups them; the regex lives here). The resume
 * position per file is its identity (device, inode and a fingerprint of its first bytes,
 * ident.h) with the bytes consumed — advanced only as records are emitted, so the host's
 * snapshot always matches the records it has (see plugin.h); lines held in a partial line
 * or a pending multi-line record are not consumed and are read again after a restart.
 * Waking: one inotify descriptor (wait_fd) watches each tailed file for data and, for
 * names, the directories its paths' globs walk through: the directory of the files, or,
 * while a directory of the path does not exist yet, the deepest one that does (walking down
 * as the missing ones appear, back up when they go; a directory is watched before it is
 * looked into, so a change racing the walk still raises an event or is seen). Events are filtered
 * by name, so a name that no glob can match costs one wakeup and nothing else; a file at its end is
 * not read again until an event or the periodic rescan (`rescan_interval`, the fallback for lost
 * events and filesystems whose changes raise no event). A matched path that cannot be
 * stat'ed, opened or read (other than not existing) is logged once per path and error, and
 * tried again at each rescan. Offsets are 64-bit everywhere (off_t, uint64_t). Rotation by
 * rename: when the path names another inode, the old file stays open and is read on
 * ("rotated", checkpointed as "+path") until it has been quiet for rotate_wait, while the
 * new file is read from its start; before new data of a path is handed out, the files the
 * path named before are read to their end, so one writer's lines keep their order across
 * the switch; files rotated after the old one (several rotations between two looks) are
 * found beside the path under rotated names and read in between, oldest first (catch_up).
 * After a restart, saved files no longer at their path are looked up in the same directory
 * by identity and finished first, then those rotated after them. A truncated file
 * (copytruncate) is finished from its copy when one is found, then read again from its
 * start. Records that are pieces of a line are marked (emit_rec). Compressed rotated files
 * (.gz, .xz, ...) are never read. One instance per source, created and destroyed by the
 * agent, used on the loop thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "ident.h"
#include "linesplit.h"
#include "multiline.h"
#include "pathpat.h"
#include "plugin.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#define READ_CHUNK ((size_t)256 << 10)
#define READS_PER_POLL 4 /* reads of one file per poll while it has more */
#define DRAIN_CHUNK ((size_t)64 << 10)

/* Files past 2 GiB, 64-bit inode numbers and times after 2038: with a 32-bit off_t, ino_t or
 * time_t, stat() and open() fail with EOVERFLOW on them and lseek() cannot reach a position
 * past 2 GiB. 32-bit targets build with -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64. */
_Static_assert(sizeof(off_t) == 8, "in_file needs a 64-bit off_t: -D_FILE_OFFSET_BITS=64");
_Static_assert(sizeof(ino_t) == 8, "in_file needs a 64-bit ino_t: -D_FILE_OFFSET_BITS=64");
_Static_assert(sizeof(time_t) == 8, "in_file needs a 64-bit time_t: -D_TIME_BITS=64");

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
	char *rotate_glob; /* NULL or "": only the usual rotated names (ident.h) */
};

static const char *const read_from_names[] = {"beginning", "end", NULL};

#define C(f) offsetof(struct in_file_conf, f)
static const struct rn_conf_key file_conf[] = {
	{.key = "paths",
	 .type = RN_CONF_STRLIST,
	 .offset = C(paths),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "files or globs to tail, one record per line"},
	{.key = "read_from",
	 .type = RN_CONF_ENUM,
	 .def = "end",
	 .enums = read_from_names,
	 .offset = C(read_from),
	 .help = "where to start in files present at the source's very first start (no saved "
		 "position); files appearing later are always read from their start"},
	/* capped at 4M: one piece must fit a request under the server's message limit (10M) */
	{.key = "max_line_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "64K",
	 .min = 16,
	 .max = (int64_t)4 << 20,
	 .offset = C(max_line_bytes),
	 .help = "longer lines become flagged pieces (runnel.split)"},
	{.key = "line_timeout_ms",
	 .type = RN_CONF_DURATION,
	 .def = "1000",
	 .min = 1,
	 .max = 3600000,
	 .offset = C(line_timeout_ms),
	 .help = "a last line without newline is emitted after this long"},
	{.key = "rotate_wait_ms",
	 .type = RN_CONF_DURATION,
	 .def = "5s",
	 .min = 1,
	 .max = 86400000,
	 .offset = C(rotate_wait_ms),
	 .help = "a rotated file is read until quiet this long; a path gone this long is closed"},
	{.key = "rescan_interval",
	 .type = RN_CONF_DURATION,
	 .def = "60s",
	 .min = 10,
	 .max = 86400000,
	 .offset = C(rescan_interval_ms),
	 .help = "globs are expanded and every file read again this often, besides inotify (at "
		 "most 2s where a directory cannot be watched or inotify is unavailable)"},
	{.key = "multiline_start",
	 .type = RN_CONF_STRING,
	 .offset = C(multiline_start),
	 .help = "POSIX extended regex: a line matching it starts a record, the lines after it "
		 "that do not are appended (joined by \\n); unset: one record per line"},
	{.key = "multiline_timeout",
	 .type = RN_CONF_DURATION,
	 .def = "1s",
	 .min = 1,
	 .max = 3600000,
	 .offset = C(multiline_timeout_ms),
	 .help = "a pending multi-line record is emitted when no line came for this long"},
	{.key = "multiline_max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "256K",
	 .min = 16,
	 .max = (int64_t)4 << 20,
	 .offset = C(multiline_max_bytes),
	 .help = "longer multi-line records become flagged pieces (runnel.split)"},
	{.key = "rotate_glob",
	 .type = RN_CONF_STRING,
	 .offset = C(rotate_glob),
	 .help = "glob of rotated files beside a path besides the usual names (path.1, "
		 "path-YYYYMMDD): a path with '/' is matched against the whole path, else the "
		 "file name"},
	{0},
};
#undef C
#define DONE_MAX 32             /* finished inodes remembered (ring) */
#define CAND_MAX 64             /* rotated files beside a path looked at in one scan */
#define IGNORED_MAX 64          /* compressed files already logged */
#define PROBLEM_MAX 256         /* paths with an error already logged (ring) */
#define DW_MAX 256              /* directory watches per source */
#define WALK_TRIES 3            /* walks of one pattern in a rescan while directories change */
#define FALLBACK_RESCAN_MS 2000 /* rescan_interval at most, where inotify cannot see all */
/* A directory: names (a matching file or directory comes or goes), itself (deleted or moved:
 * the walk goes back up), attributes (a permission fixed: tried again at once). */
#define DIR_MASK                                                                                   \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ATTRIB | IN_ONLYDIR)
/* A tailed file: data (or a truncation), renamed or deleted (a symlinked path's target). */
#define FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)
#define WARN_REMOTE 1u /* a network filesystem */
#define WARN_FWATCH 2u /* a file could not be watched */
#define WARN_DWMAX 4u  /* more directories than DW_MAX */
#define EV_ANY 1       /* read every file (no inotify, or a rescan) */
#define EV_NAMES 2     /* names came or went (or events were lost): expand the globs again */

/* A watched directory: it matches the first `depth` components of pattern `pat`, and the
 * names in it that matter are those matching component `depth`. One directory can be
 * several entries (several patterns) with the same wd. */
struct dwatch {
	int wd;
	uint16_t pat, depth;
};

/* A path whose error was logged: not logged again until it clears. */
struct problem {
	char *path;
	int code; /* errno, or -(file type bits) for a path that is not a regular file */
};

struct tfile {
	char *path; /* the name it is tailed under: record topic and checkpoint key */
	int fd;
	dev_t dev;
	ino_t ino;
	struct rn_fp fp;   /* of its first bytes: with (dev, ino), its identity */
	int64_t mtime_ns;  /* modification time when last looked at */
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
	int wd;             /* inotify watch of the file, -1 if none (then it is never idle); may be
			     * shared with a dead file of the same inode */
	int64_t gone_us;    /* mono time the path was first seen missing, 0 if present */
	struct rn_piece pc; /* pieces of the current line (record) handed out so far */
	unsigned lpiece;    /* pieces of the current overlong line fed to multiline */
};

struct in_file {
	const struct in_file_conf *conf; /* borrowed from the source's config */
	struct rn_source_host host;
	struct tfile **files;
	size_t n, cap;
	uint8_t *rbuf, *dbuf; /* read buffers: files, and rotated files drained before them */
	int64_t next_scan_us;
	int first_scan;          /* no checkpoint: this is the source's very first start */
	int initial_scan;        /* the first rescan of this run (restores the checkpoint) */
	struct rn_buf saved;     /* checkpoint from the last run; freed after the initial scan */
	struct tfile *cur;       /* file whose lines are being emitted */
	int ino_fd;              /* inotify, -1 if unavailable (then every poll reads every file) */
	unsigned warned;         /* WARN_* said already (once per source) */
	struct rn_pathpat *pats; /* conf->paths split, one per path */
	struct dwatch *dw, *dw_old; /* directory watches (DW_MAX each; the old set at a rescan) */
	size_t ndw;
	int holes; /* some directory is not watched: rescan often */
	int raced; /* a directory the walk saw went before it was watched: walk again */
	struct problem problems[PROBLEM_MAX]; /* errors logged; cleared when the path works */
	size_t nproblems, problem_next;
	int use_re; /* multiline_start set: `re` compiled */
	regex_t re;
	struct rn_buf scratch; /* the line being matched, NUL-terminated (max_line + 1) */
	int flushing;          /* a held line is being given out by a flush... */
	unsigned flush_cut;    /* ...for this reason (RN_CUT_NONE: its file ended) */
	uint8_t fpbuf[RN_FP_MAX];
	char *ignored[IGNORED_MAX]; /* compressed files already logged */
	size_t nignored;
	/* Inodes read to their end and let go (rotated away, deleted): if one shows up under a
	 * name the globs match (app.log.1), it resumes where it was finished instead of being
	 * read again. Kept in the checkpoint as lines with the path "-". */
	struct done {
		dev_t dev;
		ino_t ino;
		uint64_t pos;
		struct rn_fp fp;
	} done[DONE_MAX];
	size_t ndone, done_next;
};

/* Modification time in ns. */
static int64_t mtime_of(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Is (path, code) new? Then it is remembered (the oldest forgotten past PROBLEM_MAX, so a
 * source with more failing paths than that logs each again now and then, never silently). */
static int problem_new(struct in_file *f, const char *path, int code)
{
	struct problem *p;
	char *c;
	for (size_t i = 0; i < f->nproblems; i++)
		if (f->problems[i].code == code && !strcmp(f->problems[i].path, path))
			return 0;
	if (!(c = rn_strdup(path)))
		return 1; /* logged again next time: better than not at all */
	if (f->nproblems < PROBLEM_MAX) {
		p = &f->problems[f->nproblems++];
	} else {
		p = &f->problems[f->problem_next];
		f->problem_next = (f->problem_next + 1) % PROBLEM_MAX;
		rn_free(p->path);
	}
	p->path = c;
	p->code = code;
	return 1;
}

/* `what` (a verb: "open", "stat", "read") failed on a matched path with errno err: logged
 * once per path and error; the rescans try again. ENOENT is not an error here (a name that
 * went between the glob and the look). */
static void problem(struct in_file *f, const char *path, int err, const char *what)
{
	if (err == ENOENT || !problem_new(f, path, err))
		return;
	rn_log_warn("in_file", "%s: cannot %s: %s; not read, will retry", path, what,
		    strerror(err));
}

/* A matched path that is not a regular file (a FIFO, a socket, a device, a directory named
 * as a file) is not read: said once. A directory that a glob happens to match is not a file
 * and is passed over quietly, as glob(3) users expect. */
static void not_regular(struct in_file *f, const char *path, mode_t mode, int from_glob)
{
	const char *kind = S_ISDIR(mode)    ? "a directory"
			   : S_ISFIFO(mode) ? "a FIFO"
			   : S_ISSOCK(mode) ? "a socket"
			   : S_ISCHR(mode)  ? "a character device"
			   : S_ISBLK(mode)  ? "a block device"
					    : "not a regular file";
	if ((from_glob && S_ISDIR(mode)) || !problem_new(f, path, -(int)(mode & S_IFMT)))
		return;
	rn_log_warn("in_file", "%s is %s, not a regular file: not read", path, kind);
}

/* path works now: its logged errors are forgotten (and would be logged again). */
static void problem_clear(struct in_file *f, const char *path)
{
	int had = 0;
	for (size_t i = 0; i < f->nproblems;) {
		if (strcmp(f->problems[i].path, path)) {
			i++;
			continue;
		}
		rn_free(f->problems[i].path);
		f->problems[i] = f->problems[--f->nproblems];
		had = 1;
	}
	if (f->problem_next >= f->nproblems)
		f->problem_next = 0;
	if (had)
		rn_log_info("in_file", "%s: readable now", path);
}

/* Does the file open on fd begin with the bytes fingerprinted in fp? */
static int fp_same(struct in_file *f, int fd, const struct rn_fp *fp)
{
	ssize_t n;
	if (!fp->len)
		return 1;
	while ((n = pread(fd, f->fpbuf, fp->len, 0)) < 0 && errno == EINTR)
		;
	return n >= 0 && rn_fp_match(fp, f->fpbuf, (size_t)n);
}

/* Does the file called `name` begin with the bytes fingerprinted in fp? */
static int fp_same_name(struct in_file *f, const char *name, const struct rn_fp *fp)
{
	int fd, same;
	if (!fp->len)
		return 1;
	if ((fd = open(name, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	same = fp_same(f, fd, fp);
	close(fd);
	return same;
}

/* A saved entry (any name) for the file (dev, ino) whose first bytes are fp's. */
static int saved_file(struct in_file *f, const char *name, dev_t dev, ino_t ino, uint64_t *pos)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	struct rn_fentry e;
	while (rn_fentry_next(&p, end, &e))
		if (e.kind != '-' && (dev_t)e.dev == dev && (ino_t)e.ino == ino &&
		    fp_same_name(f, name, &e.fp)) {
			*pos = e.pos;
			return 1;
		}
	return 0;
}

static void done_add(struct in_file *f, dev_t dev, ino_t ino, uint64_t pos, const struct rn_fp *fp)
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
	f->done[i].fp = *fp;
}

/* The finished file that `name` (dev, ino) is, if its first bytes are still the same (the
 * inode number may have been reused by a new file). */
static const struct done *done_find(struct in_file *f, const char *name, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < f->ndone; i++)
		if (f->done[i].dev == dev && f->done[i].ino == ino)
			return fp_same_name(f, name, &f->done[i].fp) ? &f->done[i] : NULL;
	return NULL;
}

static struct tfile *tracked_inode(const struct in_file *f, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->files[i]->dead && f->files[i]->dev == dev && f->files[i]->ino == ino)
			return f->files[i];
	return NULL;
}

/* Opens `name` at byte `off` into t (a fresh tfile): splitter and grouping start there; the
 * fingerprint is taken of the bytes there now. */
static int tfile_open(struct in_file *f, struct tfile *t, const char *name, uint64_t off)
{
	struct stat st;
	ssize_t n;
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK), e;
	if (fd < 0) {
		problem(f, name, errno, "open");
		return -1;
	}
	if (fstat(fd, &st)) {
		problem(f, name, errno, "stat");
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		not_regular(f, name, st.st_mode, 0); /* replaced between stat and open */
		goto fail;
	}
	if (off > (uint64_t)INT64_MAX || lseek(fd, (off_t)off, SEEK_SET) < 0) {
		char what[64];
		e = off > (uint64_t)INT64_MAX ? EOVERFLOW : errno;
		snprintf(what, sizeof(what), "seek to byte %llu", (unsigned long long)off);
		problem(f, name, e, what);
		goto fail;
	}
	if (f->nproblems)
		problem_clear(f, name);
	t->fd = fd;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->mtime_ns = mtime_of(&st);
	rn_fp_init(&t->fp);
	while ((n = pread(fd, f->fpbuf, RN_FP_MAX, 0)) < 0 && errno == EINTR)
		;
	if (n > 0)
		rn_fp_extend(&t->fp, f->fpbuf, (size_t)n, 0);
	t->read_off = t->pos = off;
	t->pc = (struct rn_piece){0, RN_CUT_NONE};
	t->lpiece = 0;
	rn_linesplit_reset(&t->ls);
	rn_multiline_reset(&t->ml, off);
	return 0;
fail:
	close(fd);
	return -1;
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

/* Filesystems where a change made by another machine raises no inotify event (NFS, SMB,
 * 9p, FUSE, Ceph, AFS, Coda): their files are read at every poll, their directories looked
 * at every FALLBACK_RESCAN_MS. */
static int remote_fs(const struct statfs *sf)
{
	static const unsigned long magic[] = {0x6969,     0x517b,     0xff534d42,
					      0xfe534d42, 0x01021997, 0x65735546,
					      0x00c36400, 0x5346414f, 0x73757245};
	for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++)
		if ((unsigned long)sf->f_type == magic[i])
			return 1;
	return 0;
}

/* The network filesystem note, once per source. */
static void remote_note(struct in_file *f, const char *path)
{
	if (f->warned & WARN_REMOTE)
		return;
	f->warned |= WARN_REMOTE;
	rn_log_info("in_file",
		    "%s is on a network filesystem: changes made elsewhere raise no event; its "
		    "files are read at every poll and their directories rescanned every %d s",
		    path, FALLBACK_RESCAN_MS / 1000);
}

/* A watch on the file open on fd (through /proc, so it is this inode even if its name has
 * been taken by another file since). -1 if there is none: the file is then read at every
 * poll. */
static int watch_file(struct in_file *f, int fd, const char *name)
{
	char proc[48];
	struct statfs sf;
	int wd;
	if (f->ino_fd < 0)
		return -1;
	if (!fstatfs(fd, &sf) && remote_fs(&sf)) {
		remote_note(f, name);
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((wd = inotify_add_watch(f->ino_fd, proc, FILE_MASK)) >= 0)
		return wd;
	if (!(f->warned & WARN_FWATCH))
		rn_log_warn("in_file",
			    "cannot watch %s (%s): it is read at every poll, like every file that "
			    "cannot be watched (said once)",
			    name, strerror(errno));
	f->warned |= WARN_FWATCH;
	return -1;
}

/* Drops t's watch unless another file (of the same inode) still uses it. */
static void unwatch_file(struct in_file *f, struct tfile *t)
{
	if (t->wd < 0 || f->ino_fd < 0)
		return;
	for (size_t i = 0; i < f->n; i++)
		if (f->files[i] != t && f->files[i]->wd == t->wd)
			return;
	inotify_rm_watch(f->ino_fd, t->wd);
	t->wd = -1;
}

/* Starts tailing file `name` from byte `at`, as `path` (they differ for a rotated file
 * found under its new name). Its predecessor is the last file still open for the same path.
 * NULL if it could not be opened or on ENOMEM (the next rescan tries again). */
static struct tfile *add_file(struct in_file *f, const char *name, const char *path, uint64_t at,
			      int rotated)
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
	t->wd = -1;
	t->ls.max_line = (size_t)f->conf->max_line_bytes;
	if (f->use_re) {
		/* a line must fit one piece of a record */
		if (f->conf->multiline_max_bytes < f->conf->max_line_bytes)
			t->ls.max_line = (size_t)f->conf->multiline_max_bytes;
		t->ml.max_bytes = (size_t)f->conf->multiline_max_bytes;
		t->ml.timeout_us = f->conf->multiline_timeout_ms * 1000;
	}
	if (tfile_open(f, t, name, at)) {
		tfile_free(t);
		return NULL;
	}
	t->rotated = rotated;
	if (!rotated) /* a rotated file is read at every poll until it is finished */
		t->wd = watch_file(f, t->fd, name);
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

/* A file beside a path that may be one of its rotated files. */
struct cand {
	char *name;       /* full name */
	const char *base; /* its file name (inside name) */
	dev_t dev;
	ino_t ino;
	uint64_t size;
	int64_t mtime_ns;
	int gz; /* compressed: it cannot be read */
};

/* The directory of `path` into dir (cap bytes) and its file name. */
static const char *split_path(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, cap, ".");
		return path;
	}
	snprintf(dir, cap, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return slash + 1;
}

/* Is `name` (base: its file name) a rotated file of the path whose file name is pbase? */
static int rotated_name(const struct in_file *f, const char *pbase, const char *name,
			const char *base)
{
	const char *g = f->conf->rotate_glob;
	if (rn_rotname_is(pbase, base))
		return 1;
	if (!g || !*g)
		return 0;
	return fnmatch(g, strchr(g, '/') ? name : base, strchr(g, '/') ? FNM_PATHNAME : 0) == 0;
}

/* Fills c with the files beside `path` that have a rotated name of it (compressed ones
 * flagged), and with the file (dev, ino) whatever its name, if it is there. Returns the
 * count (at most CAND_MAX); free with cands_free. */
static size_t scan_beside(struct in_file *f, const char *path, dev_t dev, ino_t ino, struct cand *c)
{
	char dir[4096], full[4096 + 256];
	const char *pbase = split_path(path, dir, sizeof(dir));
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return 0;
	while (n < CAND_MAX && (de = readdir(d))) {
		struct stat st;
		int rot;
		if (!strcmp(de->d_name, pbase) || de->d_name[0] == '.' ||
		    (size_t)snprintf(full, sizeof(full), "%s/%s", dir, de->d_name) >= sizeof(full))
			continue;
		rot = rotated_name(f, pbase, full, de->d_name) ||
		      (rn_name_compressed(de->d_name) &&
		       !strncmp(de->d_name, pbase, strlen(pbase)));
		if (stat(full, &st) || !S_ISREG(st.st_mode))
			continue;
		if (!rot && !(st.st_dev == dev && st.st_ino == ino))
			continue;
		if (!(c[n].name = rn_strdup(full)))
			break;
		c[n].base = c[n].name + strlen(dir) + 1;
		c[n].dev = st.st_dev;
		c[n].ino = st.st_ino;
		c[n].size = (uint64_t)st.st_size;
		c[n].mtime_ns = mtime_of(&st);
		c[n].gz = rn_name_compressed(de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void cands_free(struct cand *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rn_free(c[i].name);
}

/* Age order of two files beside the path with file name pbase: modification time, then the
 * names (app.log.2 before app.log.1). */
static int cand_cmp(const char *pbase, const struct cand *a, const struct cand *b)
{
	if (a->mtime_ns != b->mtime_ns)
		return a->mtime_ns < b->mtime_ns ? -1 : 1;
	return rn_rotname_cmp(pbase, a->base, b->base);
}

/*
 * Rename rotations between two looks at `path`: the file we knew there (dev, ino, last seen
 * modification time mt) is now a rotated file, or gone, and the files renamed away after it
 * are still beside the path under rotated names (app.log.1 and app.log.2 after two
 * rotations). Every such file newer than ours — by modification time, then by name — that is
 * not already tracked or finished is added (rotated, as `path`), oldest first, so each is
 * read to its end, in order, before the path's new file. Compressed ones newer than ours
 * cannot be read: a warning names them.
 */
static void catch_up(struct in_file *f, const char *path, dev_t dev, ino_t ino, int64_t mt)
{
	struct cand *c = rn_calloc(CAND_MAX, sizeof(*c)), ours = {0}, tmp;
	char dir[4096];
	const char *pbase = split_path(path, dir, sizeof(dir));
	size_t n, k = 0;
	int have = 0;
	if (!c)
		return;
	n = scan_beside(f, path, dev, ino, c);
	for (size_t i = 0; i < n; i++)
		if (c[i].dev == dev && c[i].ino == ino) {
			ours = c[i];
			ours.mtime_ns = mt > c[i].mtime_ns ? mt : c[i].mtime_ns;
			have = 1;
		}
	if (!have)
		ours.mtime_ns = mt;
	for (size_t i = 0; i < n; i++) {
		struct cand *x = &c[i];
		int newer = have ? cand_cmp(pbase, x, &ours) > 0 : x->mtime_ns >= mt;
		if ((x->dev == dev && x->ino == ino) || !newer ||
		    tracked_inode(f, x->dev, x->ino) || done_find(f, x->name, x->dev, x->ino)) {
			continue;
		}
		if (x->gz) {
			rn_log_warn("in_file",
				    "%s: %s was rotated and compressed before it was read: its "
				    "lines are lost (compressed files cannot be followed)",
				    path, x->name);
			continue;
		}
		tmp = c[k];
		c[k++] = *x;
		*x = tmp;
	}
	/* oldest first (insertion sort: a handful of files) */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && cand_cmp(pbase, &c[j - 1], &c[j]) > 0; j--) {
			tmp = c[j];
			c[j] = c[j - 1];
			c[j - 1] = tmp;
		}
	for (size_t i = 0; i < k; i++) {
		rn_log_info("in_file", "%s: %s was rotated in between; reading it first", path,
			    c[i].name);
		add_file(f, c[i].name, path, 0, 1);
	}
	cands_free(c, n);
	rn_free(c);
}

/*
 * copytruncate: the file of t was truncated. Its copy is a rotated name beside the path
 * whose first bytes are t's: the newest such file is returned in out (cap bytes) with its
 * size. 0 if there is none (a compressed copy, no copy, or t's first bytes unknown).
 */
static int find_copy(struct in_file *f, const struct tfile *t, char *out, size_t cap,
		     uint64_t *size)
{
	struct cand *c = rn_calloc(CAND_MAX, sizeof(*c));
	const struct cand *best = NULL;
	size_t n;
	int found = 0;
	if (!c || !t->fp.len) {
		rn_free(c);
		return 0;
	}
	n = scan_beside(f, t->path, t->dev, t->ino, c);
	for (size_t i = 0; i < n; i++) {
		if (c[i].gz || (c[i].dev == t->dev && c[i].ino == t->ino) ||
		    tracked_inode(f, c[i].dev, c[i].ino) || !fp_same_name(f, c[i].name, &t->fp))
			continue;
		if (!best || c[i].mtime_ns > best->mtime_ns)
			best = &c[i];
	}
	if (best && strlen(best->name) < cap) {
		snprintf(out, cap, "%s", best->name);
		*size = best->size;
		found = 1;
	}
	cands_free(c, n);
	rn_free(c);
	return found;
}

/* Looks for the file (dev, ino) with first bytes fp among the files beside `path`: the name
 * it was renamed to. 0 if it is not there. */
static int find_rotated(struct in_file *f, const char *path, dev_t dev, ino_t ino,
			const struct rn_fp *fp, char *out, size_t cap, int64_t *mt)
{
	struct cand *c = rn_calloc(CAND_MAX, sizeof(*c));
	size_t n;
	int found = 0;
	if (!c)
		return 0;
	n = scan_beside(f, path, dev, ino, c);
	for (size_t i = 0; i < n && !found; i++)
		if (c[i].dev == dev && c[i].ino == ino && !c[i].gz &&
		    fp_same_name(f, c[i].name, fp) && strlen(c[i].name) < cap) {
			snprintf(out, cap, "%s", c[i].name);
			*mt = c[i].mtime_ns;
			found = 1;
		}
	cands_free(c, n);
	rn_free(c);
	return found;
}

/*
 * The initial scan's first step: every file of the checkpoint resumes at its position. A
 * saved file still at its path (same inode, same first bytes) is tailed there; one no
 * longer there (rotated while we were stopped, or a "+path" file that was being finished) is
 * looked for beside the path by its identity and finished first, and the files rotated after
 * it (catch_up) after it. A file gone altogether is reported: lines in it after our position
 * may be lost. The path's new file is then picked up by the glob scan, from its start.
 * Entries are in list order (older files of a path first), which rebuilds the prev chains.
 */
static void restore(struct in_file *f)
{
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	struct rn_fentry e;
	while (rn_fentry_next(&p, end, &e)) {
		char path[4096], old[4096];
		struct stat st;
		struct tfile *t = NULL;
		int64_t mt = e.mtime_ns;
		if (e.kind == '-' || e.nlen >= sizeof(path))
			continue;
		snprintf(path, sizeof(path), "%.*s", (int)e.nlen, e.name);
		if (tracked_inode(f, (dev_t)e.dev, (ino_t)e.ino))
			continue;
		if (!e.kind && !stat(path, &st) && st.st_dev == (dev_t)e.dev &&
		    st.st_ino == (ino_t)e.ino && fp_same_name(f, path, &e.fp)) {
			uint64_t at = e.pos, csize;
			if ((uint64_t)st.st_size < at) {
				if (find_copy(f,
					      &(struct tfile){.path = path,
							      .dev = st.st_dev,
							      .ino = st.st_ino,
							      .fp = e.fp},
					      old, sizeof(old), &csize) &&
				    csize >= at) {
					rn_log_warn("in_file",
						    "%s was truncated while stopped; "
						    "finishing its copy %s first",
						    path, old);
					if ((t = add_file(f, old, path, at, 1)))
						t->pc = e.piece;
				} else {
					rn_log_warn("in_file",
						    "%s was truncated while stopped and no copy of "
						    "it was found: lines after byte %llu may be "
						    "lost; reading it again from its start",
						    path, (unsigned long long)at);
				}
				add_file(f, path, path, 0, 0);
				continue;
			}
			if ((t = add_file(f, path, path, at, 0)))
				t->pc = e.piece;
			continue;
		}
		if (find_rotated(f, path, (dev_t)e.dev, (ino_t)e.ino, &e.fp, old, sizeof(old),
				 &mt)) {
			if (!e.kind)
				rn_log_info("in_file",
					    "%s was rotated while stopped; finishing %s "
					    "first",
					    path, old);
			if ((t = add_file(f, old, path, e.pos, 1)))
				t->pc = e.piece;
		} else {
			rn_log_warn("in_file",
				    "%s: the file we read to byte %llu is gone (deleted, or "
				    "compressed by a rotation: compressed files cannot be "
				    "followed); any lines it had after that byte are lost",
				    path, (unsigned long long)e.pos);
		}
		if (!e.kind)
			catch_up(f, path, (dev_t)e.dev, (ino_t)e.ino, mt);
	}
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

/* A path the globs matched (from_glob: a glob's match, else a path named as it is): tailed
 * from where its inode is known, else from its start (or its end, in the very first scan
 * with read_from = end). */
static void track(struct in_file *f, const char *path, int from_glob)
{
	struct stat st;
	const struct done *dn;
	uint64_t at = 0, spos;

	if (rn_name_compressed(path)) {
		ignore_compressed(f, path);
		return;
	}
	for (size_t i = 0; i < f->n; i++)
		if (!f->files[i]->dead && !f->files[i]->rotated && !strcmp(f->files[i]->path, path))
			return;
	if (stat(path, &st)) {
		problem(f, path, errno, "stat");
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		not_regular(f, path, st.st_mode, from_glob);
		return;
	}
	/* the same file under another name (being finished after a rotation, a hard link) */
	if (tracked_inode(f, st.st_dev, st.st_ino))
		return;
	if ((dn = done_find(f, path, st.st_dev, st.st_ino)) && (uint64_t)st.st_size >= dn->pos)
		at = dn->pos; /* read to its end under another name (app.log -> app.log.1) */
	else if (f->initial_scan && saved_file(f, path, st.st_dev, st.st_ino, &spos) &&
		 (uint64_t)st.st_size >= spos)
		at = spos; /* renamed here while we were stopped */
	else if (f->first_scan && f->conf->read_from == 1)
		at = (uint64_t)st.st_size;
	add_file(f, path, path, at, 0);
}

/* Watches directory `dir` for the names of component `depth` of pattern `pi`. A directory
 * that cannot be watched (the watch limit, a network filesystem) leaves a hole: the rescan
 * then runs every FALLBACK_RESCAN_MS. */
static void dir_watch(struct in_file *f, const char *dir, size_t pi, size_t depth)
{
	struct statfs sf;
	int wd;
	if (f->ino_fd < 0)
		return;
	if (f->ndw == DW_MAX) {
		if (!(f->warned & WARN_DWMAX))
			rn_log_warn("in_file",
				    "more than %d directories to watch; the others are rescanned "
				    "every %d s",
				    DW_MAX, FALLBACK_RESCAN_MS / 1000);
		f->warned |= WARN_DWMAX;
		f->holes = 1;
		return;
	}
	if (!statfs(dir, &sf) && remote_fs(&sf)) {
		remote_note(f, dir);
		f->holes = 1; /* watched all the same: this machine's changes are seen at once */
	}
	if ((wd = inotify_add_watch(f->ino_fd, dir, DIR_MASK)) < 0) {
		/* gone since the walk saw it (ENOENT, ENOTDIR): nothing may ever tell us what
		 * comes there, so the rescan walks the pattern again; not watchable: the next
		 * rescan comes soon */
		if (errno == ENOENT || errno == ENOTDIR) {
			f->raced = 1;
			return;
		}
		problem(f, dir, errno, "watch directory");
		f->holes = 1;
		return;
	}
	for (size_t i = 0; i < f->ndw; i++)
		if (f->dw[i].wd == wd && f->dw[i].pat == pi && f->dw[i].depth == depth)
			return;
	f->dw[f->ndw++] = (struct dwatch){wd, (uint16_t)pi, (uint16_t)depth};
}

#ifdef RN_IN_FILE_HOOKS
/* Unit-test builds only (the rn_in_file_hooks library; the agent has none of this): called by
 * the walk right after its first look at a directory of a path (found or not), before it
 * watches anything for it: the window in which a test changes the tree under the walk. */
void (*rn_in_file__look_hook)(const char *path, int found);
#define LOOK_HOOK(path, found)                                                                     \
	do {                                                                                       \
		if (rn_in_file__look_hook)                                                         \
			rn_in_file__look_hook(path, found);                                        \
	} while (0)
#else
#define LOOK_HOOK(path, found) ((void)0)
#endif

/* Is `path` a directory? With `say`, why not is logged once (problem; not for ENOENT). */
static int look_dir(struct in_file *f, const char *path, int say)
{
	struct stat st;
	if (stat(path, &st)) {
		if (say)
			problem(f, path, errno, "stat");
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (say)
			problem(f, path, ENOTDIR, "enter directory");
		return 0;
	}
	return 1;
}

/*
 * The walk of pattern pi from directory buf (matching its first `depth` components; "" is
 * the current directory): the last component's matches are tracked; a directory component
 * is followed into every existing directory matching it. Watched: the files' directory, a
 * directory whose child component is a glob (a new match can come), and the deepest existing
 * directory of a path whose next directory does not exist yet. Each directory is watched
 * before it is read or looked into, so whatever changes after the look raises an event; a
 * missing directory is looked for again once its parent is watched (made in between, it
 * raised no event there). A directory gone before its watch sets f->raced. Errors other
 * than ENOENT are logged once (problem).
 */
static void walk(struct in_file *f, size_t pi, char *buf, size_t len, size_t depth)
{
	const struct rn_pathpat *p = &f->pats[pi];
	const char *dir = len ? buf : ".";
	int leaf = depth + 1 == p->n, glob = rn_pathpat_is_glob(p, depth), found;
	size_t l = len;
	struct stat st;
	struct dirent *de;
	DIR *d;
	char c;
	if (leaf || glob)
		dir_watch(f, dir, pi, depth);
	if (!glob) {
		if (rn_pathpat_push(p, depth, buf, &l, p->text + p->off[depth], p->len[depth]))
			return;
		if (leaf) {
			track(f, buf, 0);
			buf[len] = 0;
			return;
		}
		found = look_dir(f, buf, 0);
		LOOK_HOOK(buf, found);
		if (!found) {
			/* not there (yet): wait for it in the deepest directory that is, then look
			 * again (made between the look and the watch, it raised no event) */
			c = buf[len];
			buf[len] = 0;
			dir_watch(f, dir, pi, depth);
			buf[len] = c;
			found = look_dir(f, buf, 1);
		}
		if (found)
			walk(f, pi, buf, l, depth + 1);
		buf[len] = 0;
		return;
	}
	if (!(d = opendir(dir))) {
		problem(f, dir, errno, "open directory");
		return;
	}
	if (f->nproblems)
		problem_clear(f, dir);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !rn_pathpat_match(p, depth, de->d_name))
			continue;
		l = len;
		if (rn_pathpat_push(p, depth, buf, &l, de->d_name, strlen(de->d_name)))
			continue;
		if (leaf)
			track(f, buf, 1);
		else if (!stat(buf, &st) && S_ISDIR(st.st_mode))
			walk(f, pi, buf, l, depth + 1);
		buf[len] = 0;
	}
	closedir(d);
}

/* Expands every glob again (tracking new files, watching the directories as they are now) and,
 * in the first one, restores the checkpoint. */
static void rescan(struct in_file *f)
{
	char buf[RN_PATHPAT_MAX];
	struct dwatch *old = f->dw;
	size_t nold = f->ndw;
	if (f->initial_scan)
		restore(f);
	f->dw = f->dw_old;
	f->dw_old = old;
	f->ndw = 0;
	f->holes = 0;
	for (size_t i = 0; i < f->conf->paths.n; i++) {
		const struct rn_pathpat *p = &f->pats[i];
		size_t len;
		if (!p->n)
			continue;
		len = p->off[0];
		/* a directory gone between the look and its watch: the walk again from the top
		 * (what replaced it, if anything, raised no event we hear); past WALK_TRIES the
		 * tree keeps changing under us and the short rescan period takes over */
		f->raced = 1;
		for (int k = 0; k < WALK_TRIES && f->raced; k++) {
			memcpy(buf, p->text, len);
			buf[len] = 0;
			f->raced = 0;
			walk(f, i, buf, len, 0);
		}
		if (f->raced)
			f->holes = 1;
	}
	/* directories no longer on a walk are not watched any more (gone, or a missing
	 * directory came and the walk goes on below it). A wd the kernel has let go (-1 since
	 * its IN_IGNORED) may be another watch's number by now: it is left alone. */
	for (size_t i = 0; i < nold; i++) {
		int keep = old[i].wd < 0;
		for (size_t k = 0; k < f->ndw && !keep; k++)
			keep = f->dw[k].wd == old[i].wd;
		for (size_t k = 0; k < i && !keep; k++)
			keep = old[k].wd == old[i].wd; /* removed already */
		for (size_t k = 0; k < f->n && !keep; k++)
			keep = f->files[k]->wd == old[i].wd; /* a number reused for a file */
		if (!keep)
			inotify_rm_watch(f->ino_fd, old[i].wd);
	}
	rn_log_debug("in_file", "rescan: %zu files, %zu directories watched", f->n, f->ndw);
	f->first_scan = 0;
	if (f->initial_scan) {
		/* saved positions are for this run's start only: from now on a path's new file
		 * is new, and an inode we let go is known by done[] */
		f->initial_scan = 0;
		rn_buf_free(&f->saved);
	}
}

/* The rescan's period: rescan_interval, at most FALLBACK_RESCAN_MS where inotify cannot see
 * everything (unavailable, a directory not watched, a network filesystem). */
static int64_t rescan_every_ms(const struct in_file *f)
{
	int64_t ms = f->conf->rescan_interval_ms;
	if ((f->ino_fd < 0 || f->holes) && ms > FALLBACK_RESCAN_MS)
		ms = FALLBACK_RESCAN_MS;
	return ms;
}

/* An event on a directory: EV_NAMES if it can change what the globs match (a name matching
 * the component the directory waits for, or the directory itself deleted or moved), else 0.
 * A changed attribute matters only while an error is outstanding (a permission fixed). */
static int dir_event(struct in_file *f, int wd, uint32_t mask, const char *name)
{
	int ev = 0;
	if (mask & IN_IGNORED) {
		/* the watch is gone (its directory deleted, unmounted, or removed by us): its
		 * number may be given to a new watch, so no entry keeps it; the rescan this
		 * asks for watches what is there now */
		for (size_t i = 0; i < f->ndw; i++)
			if (f->dw[i].wd == wd) {
				f->dw[i].wd = -1;
				ev = EV_NAMES;
			}
		return ev;
	}
	for (size_t i = 0; i < f->ndw; i++) {
		const struct dwatch *w = &f->dw[i];
		if (w->wd != wd)
			continue;
		if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT))
			return EV_NAMES;
		if ((mask & IN_ATTRIB) && !f->nproblems)
			return 0;
		if (!*name || rn_pathpat_match(&f->pats[w->pat], w->depth, name))
			return EV_NAMES;
	}
	return 0;
}

/* Reads the pending inotify events: a file's event makes that file read again; EV_* bits for
 * the rest. EV_ANY always without inotify. */
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
			const char *name = "";
			int file = 0;
			memcpy(&e, buf + off, sizeof(e)); /* buf is not aligned for the struct */
			if (e.len && off + sizeof(e) + e.len <= (size_t)n)
				name = buf + off + sizeof(e); /* NUL-padded by the kernel */
			off += sizeof(e) + e.len;
			if (e.mask & IN_Q_OVERFLOW) {
				ev |= EV_NAMES; /* events lost: look at everything */
				continue;
			}
			for (size_t i = 0; i < f->n; i++)
				if (f->files[i]->wd == e.wd) {
					f->files[i]->idle = 0;
					if (e.mask & IN_IGNORED)
						f->files[i]->wd = -1;
					file = 1;
				}
			if (!file)
				ev |= dir_event(f, e.wd, e.mask, name);
		}
	}
	return ev;
}

/*
 * One record or piece. A piece of a line or multi-line record carries RN_RECORD_F_SPLIT and
 * the attributes "runnel.split" ("1", "2", ... on pieces followed by more, "n/n" on the
 * last one, so a reader can tell the end and reassemble by seq) and "runnel.piece", why it
 * was cut: "size" (max_line_bytes), "timeout" (line_timeout_ms) or "truncated" (the file
 * was truncated under it; nothing follows); the last piece carries the cut before it (see
 * ident.h). What ended the record: its newline, else a flush of a held line (f->flushing:
 * f->flush_cut), else the size limit.
 */
static int emit_rec(void *ctx, const uint8_t *line, size_t len, uint32_t flags, uint64_t consumed)
{
	struct in_file *f = ctx;
	struct tfile *t = f->cur;
	char v[48];
	const char *why;
	struct rn_attr a[2] = {{"runnel.split", v}, {"runnel.piece", NULL}};
	struct rn_record r = {line ? line : (const uint8_t *)"", len, t->path, 0, 0, NULL, 0};
	struct rn_piece next;
	unsigned end = RN_CUT_SIZE;
	int rc;
	if (flags & RN_LINESPLIT_EOL)
		end = RN_CUT_NONE;
	else if (!f->use_re && f->flushing && consumed == t->read_off)
		end = f->flush_cut; /* the held line itself, not a size piece before it */
	if (rn_piece_mark(&t->pc, end, v, sizeof(v), &why, &next)) {
		r.flags = RN_RECORD_F_SPLIT;
		a[1].value = why;
		r.attrs = a;
		r.nattrs = why ? 2 : 1;
	}
	uint64_t before = t->pos;
	struct rn_piece pc = t->pc;
	/* before emit: a chunk closed inside emit includes this record, and its snapshot the
	 * position and piece count after it */
	t->pos = consumed;
	t->pc = next;
	if ((rc = f->host.emit(f->host.ctx, &r))) {
		t->pos = before; /* not taken */
		t->pc = pc;
		return rc;
	}
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

/* The splitter gave out its partial line: a multi-line record's timeout runs again. (A
 * line's piece numbering goes on: the rest of a line cut by the timeout is its next piece.) */
static void line_over(struct in_file *f, struct tfile *t)
{
	t->lpiece = 0;
	if (f->use_re)
		rn_multiline_end_line(&t->ml);
}

/* Gives out the splitter's held partial line; `cut` says why (RN_CUT_NONE: its file ended,
 * the line is whole). */
static int flush_line(struct in_file *f, struct tfile *t, unsigned cut)
{
	int rc;
	f->cur = t;
	f->flushing = 1;
	f->flush_cut = cut;
	rc = rn_linesplit_flush(&t->ls, t->read_off, on_line, f);
	f->flushing = 0;
	if (!rc)
		line_over(f, t);
	return rc;
}

/* Hands out what t holds back: the partial line (cut as said), then the pending multi-line
 * record. */
static int flush_pending(struct in_file *f, struct tfile *t, unsigned cut)
{
	int rc;
	if ((rc = flush_line(f, t, cut)))
		return rc;
	return f->use_re ? rn_multiline_flush(&t->ml, emit_rec, f) : 0;
}

/* The timeouts: a partial line after line_timeout, a multi-line record after its timeout. */
static int tick_pending(struct in_file *f, struct tfile *t, int64_t now)
{
	int rc;
	f->cur = t;
	if (rn_linesplit_pending(&t->ls) &&
	    now - t->last_data_us > f->conf->line_timeout_ms * 1000 &&
	    (rc = flush_line(f, t, RN_CUT_TIMEOUT)))
		return rc;
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
	rn_fp_extend(&t->fp, p, used, t->read_off);
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
	return flush_pending(f, p, RN_CUT_NONE);
}

/* A file is over (rotated and quiet, or deleted): hand out the rest, close, remember it. */
static int finish(struct in_file *f, struct tfile *t)
{
	int rc;
	if ((rc = flush_pending(f, t, RN_CUT_NONE)))
		return rc;
	rn_log_info("in_file", "%s%s: done after byte %llu", t->path,
		    t->rotated ? " (rotated file)" : "", (unsigned long long)t->read_off);
	done_add(f, t->dev, t->ino, t->read_off, &t->fp);
	t->dead = 1;
	return 0;
}

/*
 * t's file was truncated (copytruncate), seen by its size or by its first bytes. If its copy
 * is found beside the path (find_copy) holding bytes we have not read, t goes on in the copy
 * from where it was — a held partial line continues there, whole — as a rotated file, and
 * the truncated file is tailed again from its start after it. Otherwise the held line goes
 * out as a piece cut by truncation and the file is read again from its start. 0 or the
 * host's refusal.
 */
static int truncated(struct in_file *f, struct tfile *t, int *more)
{
	char copy[4096];
	uint64_t csize = 0;
	struct stat st;
	int fd = -1, rc, have = find_copy(f, t, copy, sizeof(copy), &csize);
	if (have && csize > t->read_off) {
		if ((fd = open(copy, O_RDONLY | O_CLOEXEC)) >= 0 && !fstat(fd, &st) &&
		    lseek(fd, (off_t)t->read_off, SEEK_SET) >= 0) {
			rn_log_warn("in_file",
				    "%s was truncated; finishing its copy %s from byte %llu first",
				    t->path, copy, (unsigned long long)t->read_off);
			close(t->fd);
			t->fd = fd;
			t->wd = -1; /* the watch is the truncated file's: its new tfile takes it */
			t->dev = st.st_dev;
			t->ino = st.st_ino;
			t->mtime_ns = mtime_of(&st);
			t->rotated = 1;
			t->last_data_us = rn_mono_us();
			t->gone_us = 0;
			add_file(f, t->path, t->path, 0, 0); /* else the next rescan adds it */
			f->host.position_changed(f->host.ctx);
			*more = 1;
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	if (have)
		rn_log_warn("in_file",
			    "%s was truncated; its copy %s holds nothing we did not read; "
			    "reading it again from the start",
			    t->path, copy);
	else
		rn_log_warn("in_file",
			    "%s was truncated and no copy of it was found beside it "
			    "(compressed, or none): lines after byte %llu may be lost; reading it "
			    "again from the start",
			    t->path, (unsigned long long)t->read_off);
	if ((rc = flush_pending(f, t, RN_CUT_TRUNCATED)))
		return rc;
	if (lseek(t->fd, 0, SEEK_SET) == 0) {
		t->read_off = t->pos = 0;
		t->pc = (struct rn_piece){0, RN_CUT_NONE};
		t->lpiece = 0;
		rn_fp_init(&t->fp);
		rn_linesplit_reset(&t->ls);
		rn_multiline_reset(&t->ml, 0);
		f->host.position_changed(f->host.ctx);
		*more = 1;
	}
	return 0;
}

/* At the end of t: truncation, rotation, a deleted path, timeouts. 0 or the host's refusal. */
static int at_eof(struct in_file *f, struct tfile *t, int *more)
{
	int64_t now = rn_mono_us();
	struct stat st, cur;
	int rc, e;
	if (t->rotated) {
		if (now - t->last_data_us > f->conf->rotate_wait_ms * 1000)
			return finish(f, t);
		return tick_pending(f, t, now);
	}
	if (!fstat(t->fd, &cur)) {
		t->mtime_ns = mtime_of(&cur);
		if ((uint64_t)cur.st_size < t->read_off)
			return truncated(f, t, more);
	}
	if ((e = stat(t->path, &st) ? errno : 0) && e != ENOENT && e != ENOTDIR) {
		/* not gone, only out of sight (a directory's permissions): read on what is
		 * open, and look again at every poll */
		problem(f, t->path, e, "stat");
		return tick_pending(f, t, now);
	}
	if (!e && f->nproblems)
		problem_clear(f, t->path);
	if (e) {
		/* gone: maybe a rotation whose new file is not there yet; after rotate_wait the
		 * file was deleted: hand out what it holds, close it (freeing its disk space) and
		 * forget it */
		if (!t->gone_us) {
			t->gone_us = now;
		} else if (now - t->gone_us > f->conf->rotate_wait_ms * 1000) {
			/* renamed away with no new file: files renamed after it come first */
			catch_up(f, t->path, t->dev, t->ino, t->mtime_ns);
			return finish(f, t);
		}
		return tick_pending(f, t, now);
	}
	t->gone_us = 0;
	if (st.st_ino != t->ino || st.st_dev != t->dev) {
		/* rotated: this file is read on until it is quiet, then the files rotated after it
		 * (two rotations or more since we looked), then the path's new file from its start
		 * (or from where we left it, if we know that file) */
		const struct done *dn = done_find(f, t->path, st.st_dev, st.st_ino);
		rn_log_info("in_file", "%s rotated; following the new file", t->path);
		t->rotated = 1;
		t->last_data_us = now;
		catch_up(f, t->path, t->dev, t->ino, t->mtime_ns);
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
	t->idle = t->wd >= 0 && !rn_linesplit_pending(&t->ls) &&
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
			problem(f, t->path, errno, "read");
		t->idle = 0; /* tried again at the next poll */
		return 0;
	}
	if (n == 0)
		return at_eof(f, t, more);
	if (f->nproblems)
		problem_clear(f, t->path);
	/* truncated and written again past our position: the first bytes tell (the bytes just
	 * read are the new file's, not ours) */
	if (!t->rotated && t->fp.len && !fp_same(f, t->fd, &t->fp))
		return truncated(f, t, more);
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
			unwatch_file(f, f->files[i]);
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
		f->next_scan_us = now_us + rescan_every_ms(f) * 1000;
		ev |= EV_ANY; /* the rescan also reads every file: the fallback for lost events */
	}
	for (size_t i = 0; (ev & EV_ANY) && i < f->n; i++)
		f->files[i]->idle = 0;
	for (size_t i = 0; i < f->n && f->host.accepting(f->host.ctx); i++) {
		struct tfile *t = f->files[i];
		int rc;
		if (t->dead || t->idle)
			continue;
		/* a file with more to read gets up to READS_PER_POLL reads in one turn: each turn
		 * of the agent's loop costs poll()s and the uplink's step (docs/benchmarks.md) */
		for (int k = 0; k < READS_PER_POLL; k++) {
			int m = 0;
			rc = step(f, t, &m);
			if (rc || !m)
				break;
			if (k == READS_PER_POLL - 1 || t->dead || t->idle ||
			    !f->host.accepting(f->host.ctx)) {
				*more = 1;
				break;
			}
		}
		if (rc) {
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
		rc = rn_fentry_put(out, &(struct rn_fentry){.dev = t->dev,
							    .ino = t->ino,
							    .pos = t->pos,
							    .fp = t->fp,
							    .mtime_ns = t->mtime_ns,
							    .piece = t->pc,
							    .kind = t->rotated ? '+' : 0,
							    .name = t->path,
							    .nlen = strlen(t->path)});
	}
	for (size_t i = 0; i < f->ndone && !rc; i++)
		rc = rn_fentry_put(out, &(struct rn_fentry){.dev = f->done[i].dev,
							    .ino = f->done[i].ino,
							    .pos = f->done[i].pos,
							    .fp = f->done[i].fp,
							    .kind = '-'});
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
	for (size_t i = 0; i < c->paths.n; i++) {
		struct rn_pathpat p;
		int bad = rn_pathpat_split(&p, c->paths.v[i]);
		if (bad || !p.n) {
			snprintf(err, cap, "source '%s': paths entry \"%s\" %s",
				 sc->name ? sc->name : "?", c->paths.v[i],
				 bad ? "is too long (4095 bytes, 64 components at most)"
				     : "names no file");
			return RN_ECONFIG;
		}
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
	for (size_t i = 0; i < f->nproblems; i++)
		rn_free(f->problems[i].path);
	rn_free(f->pats);
	rn_free(f->dw);
	rn_free(f->dw_old);
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
	const char *p = (const char *)f->saved.data, *end = p + f->saved.len;
	struct rn_fentry e;
	while (rn_fentry_next(&p, end, &e))
		if (e.kind == '-')
			done_add(f, (dev_t)e.dev, (ino_t)e.ino, e.pos, &e.fp);
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
	if (!(f->pats = rn_calloc(f->conf->paths.n, sizeof(*f->pats))) ||
	    !(f->dw = rn_calloc(DW_MAX, sizeof(*f->dw))) ||
	    !(f->dw_old = rn_calloc(DW_MAX, sizeof(*f->dw_old)))) {
		file_destroy(f);
		return RN_ENOMEM;
	}
	for (size_t i = 0; i < f->conf->paths.n; i++)
		rn_pathpat_split(&f->pats[i], f->conf->paths.v[i]); /* check() accepted them */
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
