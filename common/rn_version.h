/*
 * What `--version` prints, the same for both programs: the release, the source revision it
 * was built from (RN_GIT_REV, set at configure time; "unknown" outside a git checkout unless
 * the packager passes -DRN_GIT_REV=...), and a program-specific line such as the plugins
 * compiled in.
 */
#ifndef RN_VERSION_H
#define RN_VERSION_H

#include <stdio.h>

/* "runnel-agent 0.1.0 (git 1a2b3c4d5e6f)\n<features>\n" on f; features may be NULL. */
void rn_version_print(FILE *f, const char *program, const char *features);

#endif
