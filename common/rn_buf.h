/*
 * A growable byte buffer with a hard cap. Unlike most objects this struct is public: it is a
 * value type embedded in other structs and passed around by pointer, and every field is part
 * of its contract. Invariants: len <= cap <= max (when max != 0); data is NULL iff cap == 0.
 * A zeroed struct is an empty buffer with the default cap (RN_BUF_DEFAULT_MAX).
 */
#ifndef RN_BUF_H
#define RN_BUF_H

#include <stddef.h>
#include <stdint.h>

#define RN_BUF_DEFAULT_MAX ((size_t)256 << 20)

struct rn_buf {
	uint8_t *data;
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
	size_t max; /* hard cap; 0 = RN_BUF_DEFAULT_MAX */
};

/* Ensures room for `extra` more bytes. RN_ENOMEM past the cap or when allocation fails. */
int rn_buf_reserve(struct rn_buf *b, size_t extra);
/* Appends bytes. RN_ENOMEM as for reserve; on failure the buffer is unchanged. */
int rn_buf_append(struct rn_buf *b, const void *p, size_t n);
int rn_buf_append_u8(struct rn_buf *b, uint8_t v);
int rn_buf_append_str(struct rn_buf *b, const char *s);
int rn_buf_printf(struct rn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes (n <= len). */
void rn_buf_consume(struct rn_buf *b, size_t n);
static inline void rn_buf_reset(struct rn_buf *b)
{
	b->len = 0;
}
/* Frees the storage; the buffer is empty and reusable afterwards (max is kept). */
void rn_buf_free(struct rn_buf *b);

#endif
