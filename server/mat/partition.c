/* Partition values and paths; see partition.h. */
#include "partition.h"

#include <string.h>
#include <time.h>

#include "rn_err.h"

static const char hex[] = "0123456789ABCDEF";

static int pct(struct rn_buf *out, unsigned char c)
{
	char e[3] = {'%', hex[c >> 4], hex[c & 15]};
	return rn_buf_append(out, e, 3);
}

int rn_part_escape(struct rn_buf *out, const char *s, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || strchr("\"#%'*/:=?\\{[]^", c))
			rc = pct(out, c);
		else
			rc = rn_buf_append_u8(out, c);
	}
	return rc;
}

int rn_part_uri(struct rn_buf *out, const char *p, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=:@/", c))
			rc = rn_buf_append_u8(out, c);
		else
			rc = pct(out, c);
	}
	return rc;
}

static int civil(struct rn_buf *out, int64_t secs, int with_time, int64_t frac_us)
{
	time_t t = (time_t)secs;
	struct tm tm;
	char tmp[48];
	if (!gmtime_r(&t, &tm))
		return RN_EINVAL;
	size_t n = strftime(tmp, sizeof(tmp), with_time ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d", &tm);
	int rc = rn_buf_append(out, tmp, n);
	if (!rc && frac_us)
		rc = rn_buf_printf(out, ".%06lld", (long long)frac_us);
	return rc;
}

int rn_part_date(struct rn_buf *out, int64_t days)
{
	return civil(out, days * 86400, 0, 0);
}

int rn_part_timestamp(struct rn_buf *out, int64_t us)
{
	int64_t s = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	return civil(out, s, 1, us - s * 1000000);
}
