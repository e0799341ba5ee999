/* rn_version: see rn_version.h. */
#include "rn_version.h"

#ifndef RN_GIT_REV
#define RN_GIT_REV "unknown"
#endif

void rn_version_print(FILE *f, const char *program, const char *features)
{
	fprintf(f, "%s %s (git %s)\n", program, RN_VERSION, RN_GIT_REV);
	if (features && *features)
		fprintf(f, "%s\n", features);
}
