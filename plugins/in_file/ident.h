/*
 * File identity for the file source, I/O-free: the fingerprint of a file's first bytes (so a
 * reused inode number is not taken for the file we knew), the names logrotate gives rotated
 * files and their age order, the checkpoint line that carries a file's identity with its
 * resume position, and the marks of records that are pieces of a line. No file is opened
 * here: in_file.c reads the bytes and stats the names and passes them in. Plain values, no
 * object to create; any thread.
 */
#ifndef RN_IDENT_H
#define RN_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "rn_buf.h"

#define RN_FP_MAX 1024 /* bytes at the start of a file that make its fingerprint */

/* FNV-1a over the first `len` bytes of a file (len <= RN_FP_MAX). Files only grow at their
 * end, so the first bytes of a file we know never change: a file whose first `len` bytes
 * hash to `hash` is that file (or a copy of it). */
struct rn_fp {
	uint32_t len;
	uint64_t hash;
};

/* The fingerprint of no bytes (matches any file). */
void rn_fp_init(struct rn_fp *fp);

/* Extends fp with p[0..n), the bytes at offset `at` of the file: only the part that
 * continues the fingerprinted prefix (at <= fp->len < at + n) and lies below RN_FP_MAX is
 * taken; anything else is ignored. */
void rn_fp_extend(struct rn_fp *fp, const uint8_t *p, size_t n, uint64_t at);

/* Do p[0..n), the first n bytes of a file, match fp? 0 when n < fp->len (shorter file). */
int rn_fp_match(const struct rn_fp *fp, const uint8_t *p, size_t n);

/*
 * Is `name` (a directory entry) a rotated name of `base` (the file name of a tailed path)?
 * base followed by '.', '-' or '_' and a digit: app.log.1, app.log-20261206,
 * app.log.2026-12-06. Compressed names (.gz .bz2 .xz .zst .lz4 .zip .Z) are not: they cannot
 * be followed.
 */
int rn_rotname_is(const char *base, const char *name);

/* Is `name` compressed (by its extension)? */
int rn_name_compressed(const char *name);

/*
 * Age order of two rotated files of `base` that have the same modification time: < 0 when a
 * is older than b, > 0 when newer, 0 when the names do not tell. Numbered names (up to 4
 * digits: app.log.3 is older than app.log.1) count down; other suffixes (dates) and names
 * that are not rotated names of base (a rotate_glob match) compare as strings, older first.
 */
int rn_rotname_cmp(const char *base, const char *a, const char *b);

/* What ended a piece of a line (the record's attribute runnel.piece). */
enum rn_cut {
	RN_CUT_NONE = 0,  /* the line ended here (newline, or the end of a finished file) */
	RN_CUT_SIZE,      /* cut at max_line_bytes (multiline_max_bytes); the rest follows */
	RN_CUT_TIMEOUT,   /* cut at line_timeout_ms; the rest follows if the writer ends it */
	RN_CUT_TRUNCATED, /* the file was truncated under the line: its rest is lost */
};

/* Pieces of the current line handed out so far and why the last one was cut. */
struct rn_piece {
	unsigned n;
	unsigned cut; /* enum rn_cut; RN_CUT_NONE when n == 0 */
};

/* "size", "timeout", "truncated" (NULL for RN_CUT_NONE). */
const char *rn_cut_name(unsigned cut);

/*
 * Marks of the next record of a line that has state *s and ends by `end` (RN_CUT_NONE: the
 * line is complete with it). Returns 1 if the record is a piece: then split holds
 * runnel.split ("i" on a piece followed by more, "i/i" on the last piece of a complete line,
 * "i" on a truncated one) and *cause runnel.piece (the cut that ends this piece; on the last
 * piece of a complete line, the cut before it). Returns 0 for a whole line. *next is the
 * state once the record is taken (the caller keeps *s if it is refused). split >= 24 bytes.
 */
int rn_piece_mark(const struct rn_piece *s, unsigned end, char *split, size_t cap,
		  const char **cause, struct rn_piece *next);

/* One file of the checkpoint. */
struct rn_fentry {
	uint64_t dev, ino, pos;
	struct rn_fp fp;
	int64_t mtime_ns;      /* last seen modification time; 0 = unknown */
	struct rn_piece piece; /* of the line at pos (a timeout cut it) */
	int kind;              /* 0: the file at its path; '+': rotated, being finished; '-':
				* finished (read to its end: pos is where) */
	const char *name;      /* the path (without the '+'); "" for '-' */
	size_t nlen;
};

/*
 * Parses the next checkpoint line from *p (advancing it): "F dev ino pos fplen fphash mtime
 * pieces cut name" or the older "dev ino pos name" (no fingerprint: fp.len = 0, matching any
 * file); name is the path, "+path" or "-". Lines that are neither are skipped. 1 with *e
 * filled (e->name points into the text), 0 at the end.
 */
int rn_fentry_next(const char **p, const char *end, struct rn_fentry *e);

/* Appends e as one checkpoint line (name: e->nlen bytes). 0 or RN_ENOMEM. */
int rn_fentry_put(struct rn_buf *out, const struct rn_fentry *e);

#endif
