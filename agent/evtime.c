/* Event time extraction; see evtime.h. */
#include "evtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rn_err.h"
#include "rn_json.h"
#include "rn_time.h"

int rn_evtime_rfc3339(const char *s, size_t n, int64_t *us)
{
	return rn_time_rfc3339(s, n, 0, us);
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
		return rn_time_rfc3339(s, n, 1, us);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return RN_EINVAL;
	return n ? from_number((struct rn_json_span){s, n}, us) : RN_EINVAL;
}
