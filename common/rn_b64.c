/* Base64 both ways, strict (see rn_b64.h). */
#include "rn_b64.h"

#include "rn_err.h"

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t rn_b64_encoded_len(size_t len, int alphabet)
{
	if (alphabet == RN_B64_URL)
		return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	return (len + 2) / 3 * 4;
}

int rn_b64_encode(const void *p, size_t len, int alphabet, char *out, size_t cap)
{
	const uint8_t *in = p;
	const char *a = alphabet == RN_B64_URL ? url_chars : std_chars;
	size_t need = rn_b64_encoded_len(len, alphabet), o = 0;
	if (len > ((size_t)-1 - 3) / 4 * 3 || need >= cap) {
		if (cap)
			out[0] = 0;
		return RN_ERANGE;
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t rest = len - i;
		if (rest > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (rest > 2)
			v |= in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (rest > 1)
			out[o++] = a[v >> 6 & 63];
		else if (alphabet != RN_B64_URL)
			out[o++] = '=';
		if (rest > 2)
			out[o++] = a[v & 63];
		else if (alphabet != RN_B64_URL)
			out[o++] = '=';
	}
	out[o] = 0;
	return 0;
}

static int value(char c, int alphabet)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (alphabet == RN_B64_URL ? '-' : '+'))
		return 62;
	if (c == (alphabet == RN_B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

int rn_b64_decode(const char *s, size_t len, int alphabet, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t o = 0, n = len;
	*outlen = 0;
	if (alphabet != RN_B64_URL) {
		if (len % 4)
			return RN_EINVAL;
		if (n && s[n - 1] == '=')
			n--;
		if (n && s[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1)
		return RN_EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		size_t k = n - i < 4 ? n - i : 4;
		for (size_t j = 0; j < 4; j++) {
			int d = 0;
			if (j < k && (d = value(s[i + j], alphabet)) < 0)
				return RN_EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		/* k characters carry k*6 bits: k-1 whole bytes; the rest must be zero */
		if ((k == 2 && (v & 0xffff)) || (k == 3 && (v & 0xff)))
			return RN_EINVAL;
		for (size_t j = 0; j + 1 < k; j++) {
			if (o == cap)
				return RN_ERANGE;
			out[o++] = (uint8_t)(v >> (16 - 8 * j));
		}
	}
	*outlen = o;
	return 0;
}
