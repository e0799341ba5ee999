/*
 * Temporary directories for unit tests; see testutil.h. nftw walks the tree depth first, so a
 * directory is removed after what it holds.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int rn_test_tmpdir(char *dir, size_t cap, const char *name)
{
	const char *base = getenv("RN_TEST_TMP");
	if (base && *base) {
		if (mkdir(base, 0755) && errno != EEXIST)
			return -1;
	} else {
		base = "/tmp";
	}
	int n = snprintf(dir, cap, "%s/rn-test-%s-XXXXXX", base, name);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkdtemp(dir) ? 0 : -1;
}

char *rn_test_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "rn_test_path: %s/%s does not fit in %zu bytes\n", dir, name, cap);
		abort();
	}
	return out;
}

long rn_test_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) ? -1 : 0;
}

int rn_test_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -1;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
