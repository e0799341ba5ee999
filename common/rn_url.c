#include "rn_url.h"

int rn_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long rn_url_unescape(const char *src, size_t len, int plus, char *out, size_t cap)
{
	size_t n = 0;
	if (!cap)
		return -2;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= len || (h = rn_hexval(src[i + 1])) < 0 ||
			    (l = rn_hexval(src[i + 2])) < 0)
				return -1;
			c = (char)(h << 4 | l);
			i += 2;
		} else if (plus && c == '+') {
			c = ' ';
		}
		if (n + 1 >= cap)
			return -2;
		out[n++] = c;
	}
	out[n] = 0;
	return (long)n;
}
