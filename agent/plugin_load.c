/*
 * Plugin loading from shared objects (see plugin.h): the only code that calls dlopen. The
 * agent binary exports its symbols (ENABLE_EXPORTS), so a plugin resolves rn_buf_append,
 * rn_log_* and friends against the very agent that loads it.
 *
 * A plugin runs as the agent (often root) from the moment dlopen maps it (its constructors
 * run there), so nothing is mapped before it is checked: plugin_dir and each file must be
 * owned by root or by the agent's (effective) user and writable by nobody else, and a file
 * must be a regular file, not a symbolic link. The directory is opened once and every file
 * is opened relative to it with O_NOFOLLOW; the checks are made with fstat on those very
 * descriptors and dlopen maps the checked file through /proc/self/fd/N, so a file renamed or
 * replaced between the check and the load is not the one loaded. Without /proc the path is
 * loaded after the checks (a residual race that only the owner of the directory, who passed
 * the checks, can win). The directory's parents are not checked (as ssh does for
 * authorized_keys, keep plugin_dir under a root-owned tree such as /usr/lib). With
 * RN_PLUGIN_CHECK_ONLY (runnel-agent -n) the checks run and nothing is mapped.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"
#include "rn_err.h"
#include "rn_log.h"

static int is_so(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 3 && !strcmp(d->d_name + n - 3, ".so");
}

int rn_plugin_check_stat(const char *what, const char *path, const struct stat *st, unsigned me,
			 char *err, size_t cap)
{
	if (st->st_uid != 0 && st->st_uid != me) {
		snprintf(err, cap,
			 "%s %s is owned by uid %lu, not by root or the agent's user (uid %lu): "
			 "refused",
			 what, path, (unsigned long)st->st_uid, (unsigned long)me);
		return RN_ECONFIG;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, cap, "%s %s is %s-writable (mode %04o): refused (chmod go-w it)",
			 what, path, st->st_mode & S_IWOTH ? "world" : "group",
			 (unsigned)(st->st_mode & 07777));
		return RN_ECONFIG;
	}
	return 0;
}

/* Maps the checked file open on fd (path only for messages and the fallback). */
static int load_one(int fd, const char *path, char *err, size_t cap)
{
	char proc[64];
	void *h;
	rn_plugin_entry_fn entry;
	const struct rn_source_plugin *p;
	int rc;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	h = dlopen(access(proc, F_OK) == 0 ? proc : path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, cap, "plugin %s: cannot load: %s", path, dlerror());
		return RN_ECONFIG;
	}
	*(void **)&entry = dlsym(h, RN_PLUGIN_ENTRY);
	if (!entry || !(p = entry())) {
		snprintf(err, cap, "plugin %s: no %s() entry point; not a Runnel source plugin",
			 path, RN_PLUGIN_ENTRY);
		dlclose(h);
		return RN_ECONFIG;
	}
	if (!RN_SOURCE_ABI_LOADABLE(p->abi)) {
		snprintf(err, cap,
			 "plugin %s: built for source plugin ABI %u, this agent speaks ABI "
			 "%u; rebuild it against this agent's plugin.h",
			 path, RN_SOURCE_ABI_MAJOR(p->abi),
			 RN_SOURCE_ABI_MAJOR(RN_SOURCE_ABI_CURRENT));
		dlclose(h);
		return RN_ECONFIG;
	}
	if (!p->name || !p->create || !p->poll || !p->snapshot || !p->destroy) {
		snprintf(err, cap,
			 "plugin %s: incomplete table (name, create, poll, snapshot and "
			 "destroy are required)",
			 path);
		dlclose(h);
		return RN_ECONFIG;
	}
	if ((rc = rn_plugin_register(p))) {
		snprintf(err, cap, "plugin %s: %s", path,
			 rc == RN_EEXIST ? "its type name is already taken" : "too many plugins");
		dlclose(h);
		return RN_ECONFIG;
	}
	rn_log_info("agent", "plugin %s: source type \"%s\" loaded", path, p->name);
	return 0;
}

/* Opens and checks one file of the directory open on dfd; loads it unless check_only. */
static int one_file(int dfd, const char *dir, const char *name, int check_only, char *err,
		    size_t cap)
{
	char path[4096];
	struct stat st;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, cap, "plugin %s: %s", path,
			 errno == ELOOP ? "is a symbolic link: refused (plugins must be regular "
					  "files inside plugin_dir)"
					: strerror(errno));
		return RN_ECONFIG;
	}
	if (fstat(fd, &st)) {
		snprintf(err, cap, "plugin %s: %s", path, strerror(errno));
		close(fd);
		return RN_ECONFIG;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, cap, "plugin %s: not a regular file (mode %06o): refused", path,
			 (unsigned)st.st_mode);
		close(fd);
		return RN_ECONFIG;
	}
	rc = rn_plugin_check_stat("plugin", path, &st, geteuid(), err, cap);
	if (!rc && !check_only)
		rc = load_one(fd, path, err, cap);
	close(fd); /* a mapped object stays mapped */
	return rc;
}

int rn_plugin_load_dir(const char *dir, unsigned flags, char *err, size_t cap)
{
	struct dirent **ents = NULL;
	struct stat st;
	int n, rc = 0, dfd;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(err, cap, "plugin_dir %s: cannot read it: %s", dir, strerror(errno));
		return RN_ECONFIG;
	}
	if (fstat(dfd, &st) ||
	    (rc = rn_plugin_check_stat("plugin_dir", dir, &st, geteuid(), err, cap))) {
		if (!rc)
			snprintf(err, cap, "plugin_dir %s: %s", dir, strerror(errno));
		close(dfd);
		return RN_ECONFIG;
	}
	/* the names come from the path, the files from the checked descriptor: a directory
	 * swapped in between only changes which names are tried */
	if ((n = scandir(dir, &ents, is_so, alphasort)) < 0) {
		snprintf(err, cap, "plugin_dir %s: cannot read it: %s", dir, strerror(errno));
		close(dfd);
		return RN_ECONFIG;
	}
	for (int i = 0; i < n; i++) {
		if (!rc)
			rc = one_file(dfd, dir, ents[i]->d_name, flags & RN_PLUGIN_CHECK_ONLY, err,
				      cap);
		free(ents[i]);
	}
	free(ents);
	close(dfd);
	return rc;
}
