/*
 * Path patterns (see pathpat.h): splitting at slashes, one component matched by fnmatch(3)
 * as glob(3) does, match paths built with the pattern's own slashes. No I/O.
 */
#include "pathpat.h"

#include <fnmatch.h>
#include <string.h>

#include "rn_err.h"

int rn_pathpat_split(struct rn_pathpat *p, const char *text)
{
	size_t i = 0, len = strlen(text);
	p->text = text;
	p->n = 0;
	if (len >= RN_PATHPAT_MAX)
		return RN_ERANGE;
	while (i < len) {
		size_t j = i;
		if (text[i] == '/') {
			i++;
			continue;
		}
		while (j < len && text[j] != '/')
			j++;
		if (p->n == RN_PATHPAT_COMPS)
			return RN_ERANGE;
		p->off[p->n] = (uint16_t)i;
		p->len[p->n++] = (uint16_t)(j - i);
		i = j;
	}
	return 0;
}

int rn_pathpat_is_glob(const struct rn_pathpat *p, size_t k)
{
	for (size_t i = 0; i < p->len[k]; i++)
		if (strchr("*?[\\", p->text[p->off[k] + i]))
			return 1;
	return 0;
}

int rn_pathpat_match(const struct rn_pathpat *p, size_t k, const char *name)
{
	char c[256];
	if (!rn_pathpat_is_glob(p, k))
		return strlen(name) == p->len[k] && !memcmp(name, p->text + p->off[k], p->len[k]);
	if (p->len[k] >= sizeof(c))
		return 0; /* no file name is that long (NAME_MAX 255) */
	memcpy(c, p->text + p->off[k], p->len[k]);
	c[p->len[k]] = 0;
	return fnmatch(c, name, FNM_PERIOD) == 0;
}

int rn_pathpat_push(const struct rn_pathpat *p, size_t k, char *buf, size_t *len, const char *name,
		    size_t n)
{
	size_t from = k ? (size_t)p->off[k - 1] + p->len[k - 1] : p->off[0], sep = p->off[k] - from;
	if (*len + sep + n >= RN_PATHPAT_MAX)
		return RN_ERANGE;
	memcpy(buf + *len, p->text + from, sep);
	memcpy(buf + *len + sep, name, n);
	*len += sep + n;
	buf[*len] = 0;
	return 0;
}
