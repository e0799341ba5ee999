/*
 * File identity, rotated names, checkpoint lines and piece marks; see ident.h. Pure
 * functions of their arguments.
 */
#include "ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

void rn_fp_init(struct rn_fp *fp)
{
	fp->len = 0;
	fp->hash = FNV_OFFSET;
}

void rn_fp_extend(struct rn_fp *fp, const uint8_t *p, size_t n, uint64_t at)
{
	uint64_t h = fp->hash;
	if (fp->len >= RN_FP_MAX || at > fp->len || at + n <= fp->len)
		return;
	size_t i = (size_t)(fp->len - at), stop = n;
	if (at + stop > RN_FP_MAX)
		stop = (size_t)(RN_FP_MAX - at);
	for (; i < stop; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	fp->hash = h;
	fp->len = (uint32_t)(at + stop);
}

int rn_fp_match(const struct rn_fp *fp, const uint8_t *p, size_t n)
{
	struct rn_fp g;
	if (n < fp->len)
		return 0;
	rn_fp_init(&g);
	rn_fp_extend(&g, p, fp->len, 0);
	return g.hash == fp->hash;
}

int rn_name_compressed(const char *name)
{
	static const char *const ext[] = {".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z", NULL};
	size_t l = strlen(name);
	for (size_t i = 0; ext[i]; i++) {
		size_t e = strlen(ext[i]);
		if (l > e && !strcmp(name + l - e, ext[i]))
			return 1;
	}
	return 0;
}

/* The suffix after base and its separator, or NULL if name is not a rotated name of base. */
static const char *suffix(const char *base, const char *name)
{
	size_t b = strlen(base);
	if (strncmp(name, base, b) || !strchr(".-_", name[b]) || !name[b] || name[b + 1] < '0' ||
	    name[b + 1] > '9')
		return NULL;
	return name + b + 1;
}

int rn_rotname_is(const char *base, const char *name)
{
	return *base && suffix(base, name) && !rn_name_compressed(name);
}

/* A numbered suffix (1 to 4 digits only): its number, else -1. */
static long numbered(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n && n <= 4 && !s[n] ? strtol(s, NULL, 10) : -1;
}

int rn_rotname_cmp(const char *base, const char *a, const char *b)
{
	const char *sa = suffix(base, a), *sb = suffix(base, b);
	long na, nb;
	int c;
	if (!sa || !sb)
		return (c = strcmp(a, b)) < 0 ? -1 : c > 0;
	na = numbered(sa);
	nb = numbered(sb);
	if (na >= 0 && nb >= 0)
		return na > nb ? -1 : na < nb;
	if (na >= 0 || nb >= 0)
		return na >= 0 ? 1 : -1; /* app.log.1 is newer than app.log-20261206 */
	return (c = strcmp(sa, sb)) < 0 ? -1 : c > 0;
}

const char *rn_cut_name(unsigned cut)
{
	switch (cut) {
	case RN_CUT_SIZE: return "size";
	case RN_CUT_TIMEOUT: return "timeout";
	case RN_CUT_TRUNCATED: return "truncated";
	default: return NULL;
	}
}

int rn_piece_mark(const struct rn_piece *s, unsigned end, char *split, size_t cap,
		  const char **cause, struct rn_piece *next)
{
	unsigned i = s->n + 1;
	*next = (struct rn_piece){0, RN_CUT_NONE};
	*cause = NULL;
	split[0] = 0;
	if (end == RN_CUT_NONE) {
		if (!s->n)
			return 0;
		snprintf(split, cap, "%u/%u", i, i);
		*cause = rn_cut_name(s->cut);
		return 1;
	}
	snprintf(split, cap, "%u", i);
	*cause = rn_cut_name(end);
	if (end != RN_CUT_TRUNCATED)
		*next = (struct rn_piece){i, end};
	return 1;
}

int rn_fentry_next(const char **p, const char *end, struct rn_fentry *e)
{
	while (*p && *p < end) {
		const char *l = *p, *nl = memchr(l, '\n', (size_t)(end - l));
		unsigned long long d, i, o, fl, fh;
		long long mt;
		unsigned pn, pc;
		int n = 0;
		if (!nl)
			return 0;
		*p = nl + 1;
		memset(e, 0, sizeof(*e));
		rn_fp_init(&e->fp);
		if (l[0] == 'F') {
			if (sscanf(l, "F %llu %llu %llu %llu %llx %lld %u %u %n", &d, &i, &o, &fl,
				   &fh, &mt, &pn, &pc, &n) != 8 ||
			    n <= 0 || l + n >= nl || fl > RN_FP_MAX || pc > RN_CUT_TRUNCATED)
				continue;
			e->fp.len = (uint32_t)fl;
			e->fp.hash = fh;
			e->mtime_ns = mt;
			e->piece.n = pc ? pn : 0;
			e->piece.cut = pn ? pc : RN_CUT_NONE;
		} else if (sscanf(l, "%llu %llu %llu %n", &d, &i, &o, &n) != 3 || n <= 0 ||
			   l + n >= nl) {
			continue;
		}
		e->dev = d;
		e->ino = i;
		e->pos = o;
		e->name = l + n;
		e->nlen = (size_t)(nl - (l + n));
		if (e->nlen == 1 && e->name[0] == '-') {
			e->kind = '-';
			e->name = "";
			e->nlen = 0;
		} else if (e->name[0] == '+') {
			if (e->nlen == 1)
				continue;
			e->kind = '+';
			e->name++;
			e->nlen--;
		}
		return 1;
	}
	return 0;
}

int rn_fentry_put(struct rn_buf *out, const struct rn_fentry *e)
{
	return rn_buf_printf(out, "F %llu %llu %llu %u %llx %lld %u %u %s%.*s\n",
			     (unsigned long long)e->dev, (unsigned long long)e->ino,
			     (unsigned long long)e->pos, e->fp.len, (unsigned long long)e->fp.hash,
			     (long long)e->mtime_ns, e->piece.n, e->piece.cut,
			     e->kind == '-'   ? "-"
			     : e->kind == '+' ? "+"
					      : "",
			     e->kind == '-' ? 0 : (int)e->nlen, e->name ? e->name : "");
}
