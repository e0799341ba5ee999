/* Table names; see rn_table_name.h. */
#include "rn_table_name.h"

#include <stddef.h>

#include "rn_err.h"

int rn_table_name_check(const char *name)
{
	int parts = 0;
	const char *p = name;

	if (!name || !*name)
		return RN_EINVAL;
	for (;;) {
		const char *s = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			p++;
		if (p == s || p - s > 128 || *s == '-' || *s == '_')
			return RN_EINVAL;
		parts++;
		if (*p == 0)
			break;
		if (*p != '.' || parts == 3)
			return RN_EINVAL;
		p++;
	}
	return parts == 3 ? 0 : RN_EINVAL;
}
