/*
 * Helpers every unit test shares for the files it makes: a fresh temporary directory (under
 * $RN_TEST_TMP, which ctest sets to the build's test-tmp, else /tmp), a path joined into a
 * caller's buffer, a directory's entries counted, and the removal of a whole tree. Plain libc (no
 * shell, no cmocka): a test asserts on the results. Not for the server's own code: it has
 * common/rn_fs.h.
 */
#ifndef RN_TESTUTIL_H
#define RN_TESTUTIL_H

#include <stddef.h>

/* Makes a new directory <$RN_TEST_TMP or /tmp>/rn-test-<name>-XXXXXX (making $RN_TEST_TMP
 * first if missing) and writes its path into dir (cap bytes). 0, or -1 with errno (ENAMETOOLONG
 * when the path does not fit). */
int rn_test_tmpdir(char *dir, size_t cap, const char *name);

/* dir/name into out (cap bytes); returns out. A path that does not fit aborts the test
 * program (a test's buffers are sized for its paths: a cut one would test something else). */
char *rn_test_path(char *out, size_t cap, const char *dir, const char *name);

/* Entries in directory dir, "." and ".." not counted; -1 with errno when it cannot be read. */
long rn_test_entries(const char *dir);

/* Removes path and everything below it, links not followed. 0 (also when path does not
 * exist), or -1 with errno from the first removal that failed. */
int rn_test_rmtree(const char *path);

#endif
