/* Topic filter matching; see route.h. */
#include "route.h"

#include <string.h>

int rn_topic_filter_valid(const char *f)
{
	if (!f || !*f)
		return 0;
	for (const char *p = f; *p; p++) {
		int start = p == f || p[-1] == '/';
		int end = p[1] == 0 || p[1] == '/';
		if (*p == '+' && !(start && end))
			return 0;
		if (*p == '#' && !(start && p[1] == 0))
			return 0;
	}
	return 1;
}

int rn_topic_match(const char *f, const char *t)
{
	if (!t)
		return 0;
	if (*t == '$' && (*f == '+' || *f == '#'))
		return 0;
	for (;;) {
		if (*f == '#')
			return 1;
		if (*f == '+') {
			while (*t && *t != '/')
				t++;
			f++;
		} else {
			while (*f && *f != '/' && *f == *t) {
				f++;
				t++;
			}
			if ((*f && *f != '/') || (*t && *t != '/'))
				return 0;
		}
		/* both at a level end */
		if (!*f && !*t)
			return 1;
		if (!*t) /* "a/#" matches "a" */
			return f[0] == '/' && f[1] == '#' && f[2] == 0;
		if (!*f)
			return 0;
		f++;
		t++;
	}
}
