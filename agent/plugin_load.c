/*
 * Plugin loading from shared objects (see plugin.h): the only code that calls dlopen. The
 * agent binary exports its symbols (ENABLE_EXPORTS), so a plugin resolves rn_buf_append,
 * rn_log_* and friends against the very agent that loads it.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "rn_err.h"
#include "rn_log.h"

static int is_so(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 3 && !strcmp(d->d_name + n - 3, ".so");
}

static int load_one(const char *path, char *err, size_t cap)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	rn_plugin_entry_fn entry;
	const struct rn_source_plugin *p;
	int rc;

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
	if (p->abi != RN_SOURCE_ABI_1) {
		snprintf(err, cap,
			 "plugin %s: built for source plugin ABI %d, this agent speaks ABI "
			 "%d; rebuild it against this agent's plugin.h",
			 path, p->abi, RN_SOURCE_ABI_1);
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

int rn_plugin_load_dir(const char *dir, char *err, size_t cap)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, is_so, alphasort), rc = 0;
	char path[4096];

	if (n < 0) {
		snprintf(err, cap, "plugin_dir %s: cannot read it", dir);
		return RN_ECONFIG;
	}
	for (int i = 0; i < n; i++) {
		if (!rc) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			rc = load_one(path, err, cap);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}
