/*
 * Fuzz target for the in_file line splitter (plugins/in_file/linesplit.c). Input: byte 0
 * picks max_line (1..64), byte 1 the feed sizes and how often the callback asks to stop;
 * the rest is the file content. Checks, for every split of the input: no piece is longer
 * than max_line; `consumed` never goes backwards, never passes what was fed, and after a
 * line end it points just past its newline; and the pieces, with a newline after each
 * line end, rebuild the input with every CRLF turned into LF (nothing lost, nothing added).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linesplit.h"
#include "plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	size_t max_line;
	const uint8_t *in;
	uint64_t fed;
	uint64_t last;
	uint8_t *out;
	size_t out_len;
	unsigned calls, stop_every;
};

static int on_line(void *vc, const uint8_t *line, size_t len, uint32_t flags, uint64_t consumed)
{
	struct ctx *c = vc;
	if (len > c->max_line || consumed < c->last || consumed > c->fed)
		abort();
	if ((flags & RN_LINESPLIT_EOL) && (consumed == 0 || c->in[consumed - 1] != '\n'))
		abort();
	if (c->stop_every && ++c->calls % c->stop_every == 0)
		return 1; /* not taken: the splitter must hand it out again */
	c->last = consumed;
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
	if (flags & RN_LINESPLIT_EOL)
		c->out[c->out_len++] = '\n';
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rn_linesplit s = {0};
	struct ctx c = {0};
	size_t pos = 0, n, exp_len = 0;
	uint8_t *exp;
	unsigned seed;

	if (size < 2)
		return 0;
	c.max_line = (size_t)(data[0] % 64) + 1;
	seed = data[1];
	c.stop_every = seed & 0x80 ? (seed & 7) + 2 : 0;
	data += 2;
	size -= 2;
	c.in = data;
	s.max_line = c.max_line;
	c.out = malloc(size * 2 + 2);
	exp = malloc(size + 1);
	if (!c.out || !exp)
		abort();
	while (pos < size) {
		size_t used = 0;
		n = (seed % 13) + 1;
		seed = seed * 1103515245u + 12345u;
		if (n > size - pos)
			n = size - pos;
		c.fed = pos + n;
		int rc = rn_linesplit_feed(&s, data + pos, n, pos, on_line, &c, &used);
		if (rc < 0)
			abort(); /* ENOMEM cannot happen with caps this small */
		if (used > n || (rc == 0 && used != n))
			abort();
		pos += used;
	}
	while (rn_linesplit_flush(&s, size, on_line, &c) > 0)
		;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
			continue;
		exp[exp_len++] = data[i];
	}
	if (exp_len != c.out_len || memcmp(exp, c.out, exp_len))
		abort();
	rn_linesplit_free(&s);
	free(c.out);
	free(exp);
	return 0;
}
