/* Calendar arithmetic and RFC 3339 parsing; see rn_time.h. */
#include "rn_time.h"

#include "rn_err.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's method). */
int64_t rn_days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
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

int rn_time_rfc3339(const char *s, size_t n, int lax, int64_t *us)
{
	int64_t y, mo, d, h, mi, sec, frac = 0, off = 0;
	size_t i = 19;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (digits(s, n, 0, 4, &y) || n < (lax ? 19u : 20u) || s[4] != '-' ||
	    digits(s, n, 5, 2, &mo) || s[7] != '-' || digits(s, n, 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s, n, 11, 2, &h) ||
	    s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' || digits(s, n, 17, 2, &sec))
		return RN_EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 60 || (mo == 2 && d == 29 && !leap(y)))
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
	int64_t t = rn_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	*us = t * 1000000 + frac;
	return 0;
}

int rn_time_date(const char *s, size_t n, int32_t *days)
{
	int64_t y, m, d;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (n != 10 || digits(s, n, 0, 4, &y) || s[4] != '-' || digits(s, n, 5, 2, &m) ||
	    s[7] != '-' || digits(s, n, 8, 2, &d) || y < 1 || m < 1 || m > 12 || d < 1 ||
	    d > mdays[m - 1] || (m == 2 && d == 29 && !leap(y)))
		return RN_EINVAL;
	*days = (int32_t)rn_days_from_civil(y, m, d);
	return 0;
}
