/* Bearer-token check, constant time in the token's content (see auth.h). */
#include "auth.h"

#include <string.h>
#include <strings.h>

int rn_auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* compare over the longer length; indexes past an end read a 0 through a mask, not a
	 * branch, and any length difference is folded into the same accumulator */
	size_t n = alen > blen ? alen : blen;
	unsigned diff = (unsigned)((alen ^ blen) != 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		unsigned char y = i < blen ? (unsigned char)b[i] : 0;
		diff |= (unsigned)(x ^ y);
	}
	return diff == 0;
}

int rn_auth_check(char *const *tokens, size_t n, const char *header)
{
	const char *t;
	size_t tlen;
	int ok = 0;
	if (!n)
		return 1;
	if (!header || strncasecmp(header, "Bearer", 6) || header[6] != ' ')
		return 0;
	for (t = header + 6; *t == ' '; t++)
		;
	if (!(tlen = strlen(t)))
		return 0; /* an empty token never matches, even an empty one in the config */
	/* every token is compared (no early exit), so the time does not tell which matched */
	for (size_t i = 0; i < n; i++)
		ok |= rn_auth_equal(t, tlen, tokens[i], strlen(tokens[i]));
	return ok;
}
