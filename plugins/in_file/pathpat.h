/*
 * Path patterns of the file source (its `paths`), I/O-free: a path or glob split at its
 * slashes into components, a file name matched against one component as glob(3) would match
 * it (fnmatch(3); a leading dot only by a dot), and the path of a match built with the
 * pattern's own slashes, so a walk yields the names glob(3) would. in_file.c walks the
 * directories one component at a time with these and watches them. Plain values, no object
 * to create; any thread.
 */
#ifndef RN_PATHPAT_H
#define RN_PATHPAT_H

#include <stddef.h>
#include <stdint.h>

#define RN_PATHPAT_COMPS 64 /* components of a pattern at most */
#define RN_PATHPAT_MAX 4096 /* bytes of a pattern, and of a path built from it, at most */

/* A pattern split at its slashes: component i is text[off[i], off[i] + len[i]); the last one
 * names files, the others directories. text is borrowed. */
struct rn_pathpat {
	const char *text;
	uint16_t off[RN_PATHPAT_COMPS], len[RN_PATHPAT_COMPS];
	size_t n;
};

/* Splits `text` (kept as a pointer) into p. 0 (p->n may be 0: "/" or "" name no file), or
 * RN_ERANGE if it is RN_PATHPAT_MAX bytes or longer or has more than RN_PATHPAT_COMPS
 * components. */
int rn_pathpat_split(struct rn_pathpat *p, const char *text);

/* Has component k glob characters (* ? [ or a backslash escape)? Else it names one entry. */
int rn_pathpat_is_glob(const struct rn_pathpat *p, size_t k);

/* Does the file name `name` match component k? */
int rn_pathpat_match(const struct rn_pathpat *p, size_t k, const char *name);

/* The path down to a match of component k: appends to buf (*len bytes in use, NUL-terminated)
 * the slashes before component k as the pattern has them (those before the first component
 * belong in buf already: the pattern's first off[0] bytes) and then name (n bytes), and
 * updates *len. RN_ERANGE (buf unchanged) if the result would be RN_PATHPAT_MAX bytes or
 * longer; buf holds RN_PATHPAT_MAX bytes. */
int rn_pathpat_push(const struct rn_pathpat *p, size_t k, char *buf, size_t *len, const char *name,
		    size_t n);

#endif
