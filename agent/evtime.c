/* Event time extraction; see evtime.h. */
#include "evtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_json.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's method). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t n, size_t at, size_t k, int64_t *v)
{
	*v = 0;
	if (at + k > n)
		return -1;
	for (size_t i = at; i < at + k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

static int rfc3339(const char *s, size_t n, int lax, int64_t *us);

int rn_evtime_rfc3339(const char *s, size_t n, int64_t *us)
{
	return rfc3339(s, n, 0, us);
}

/* lax: a missing zone means UTC, and ',' may start the fraction */
static int rfc3339(const char *s, size_t n, int lax, int64_t *us)
{
	int64_t y, mo, d, h, mi, sec, frac = 0, off = 0;
	size_t i = 19;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (digits(s, n, 0, 4, &y) || n < (lax ? 19u : 20u) || s[4] != '-' || digits(s, n, 5, 2, &mo) ||
	    s[7] != '-' || digits(s, n, 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s, n, 11, 2, &h) ||
	    s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' || digits(s, n, 17, 2, &sec))
		return RN_EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 60)
		return RN_EINVAL;
	if (i < n && (s[i] == '.' || (lax && s[i] == ','))) {
		int64_t scale = 100000;
		size_t start = ++i;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			frac += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (i == start)
			return RN_EINVAL;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		int64_t oh, om;
		if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
		    digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
			return RN_EINVAL;
		off = (oh * 60 + om) * 60 * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else if (!lax || i != n) {
		return RN_EINVAL;
	}
	if (i != n)
		return RN_EINVAL;
	if (sec == 60)
		sec = 59; /* a leap second lands on the second before it */
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	*us = t * 1000000 + frac;
	return 0;
}

struct find {
	const char *field;
	struct rn_json_span val;
	int found;
};

static int find_member(void *ctx, struct rn_json_span key, struct rn_json_span val)
{
	struct find *f = ctx;
	size_t n = strlen(f->field);
	if (key.len == n && !memcmp(key.p, f->field, n)) {
		f->val = val;
		f->found = 1;
		return 1;
	}
	return 0;
}

static int from_number(struct rn_json_span v, int64_t *us)
{
	char tmp[64];
	int64_t i;
	double x;
	char *end;

	if (rn_json_int64(v, &i) == 0) {
		if (i < 0)
			return RN_EINVAL;
		if (i < 100000000000LL)
			*us = i * 1000000;
		else if (i < 100000000000000LL)
			*us = i * 1000;
		else if (i < 100000000000000000LL)
			*us = i;
		else
			*us = i / 1000;
		return 0;
	}
	if (v.len >= sizeof(tmp))
		return RN_EINVAL;
	memcpy(tmp, v.p, v.len);
	tmp[v.len] = 0;
	x = strtod(tmp, &end);
	if (end != tmp + v.len || !isfinite(x) || x < 0 || x >= 9.2e18)
		return RN_EINVAL;
	if (x < 1e11)
		x *= 1e6;
	else if (x < 1e14)
		x *= 1e3;
	else if (x >= 1e17)
		x /= 1e3;
	*us = (int64_t)llround(x);
	return 0;
}

int rn_evtime_json(const void *p, size_t len, const char *field, int64_t *us)
{
	struct find f = {field, {0}, 0};
	const char *s = p;
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i == len || s[i] != '{')
		return RN_ENOTFOUND;
	if (rn_json_object_walk((struct rn_json_span){s, len}, find_member, &f) < 0 && !f.found)
		return RN_ENOTFOUND;
	if (!f.found)
		return RN_ENOTFOUND;
	if (f.val.len && f.val.p[0] == '"') {
		if (f.val.len < 2)
			return RN_EINVAL;
		return rn_evtime_rfc3339(f.val.p + 1, f.val.len - 2, us);
	}
	return from_number(f.val, us);
}

int rn_evtime_text(const char *s, size_t n, int64_t *us)
{
	if (n > 4 && s[4] == '-')
		return rfc3339(s, n, 1, us);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return RN_EINVAL;
	return n ? from_number((struct rn_json_span){s, n}, us) : RN_EINVAL;
}
