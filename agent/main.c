/*
 * runnel-agent entry point: options, config (table-driven; -n checks it and exits), logging,
 * signals (TERM/INT drain and exit, HUP reloads the config, USR1 writes status.json now),
 * systemd notifications (READY, RELOADING, STOPPING; the loop pings the watchdog), and the
 * agent's lifetime.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "plugin.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_sd.h"
#include "rn_version.h"
#include "status_cli.h"

static struct rn_agent_signals sigs;
static int wake_w = -1; /* the write end of sigs.wake_fd's pipe */

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGUSR1)
		sigs.status_now = 1;
	else if (sig == SIGHUP)
		sigs.reload = 1;
	else
		sigs.stop = 1;
	if (wake_w >= 0 && write(wake_w, "", 1) < 0) {
		/* full (the loop has a wake-up pending anyway) */
	}
	errno = saved;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: runnel-agent -c FILE [-n] [-v] [-f] [-H] [-V|--version]\n"
		   "       runnel-agent status [-c FILE] [--json]  (ask a running agent)\n"
		   "  -c FILE  config file (libconfig syntax); see etc/runnel-agent.conf\n"
		   "  -n       check the config and exit (0 = valid)\n"
		   "  -v       verbose (debug) logging\n"
		   "  -f       stay in the foreground (the default; for systemd)\n"
		   "  -H       print every config key with its default and exit\n"
		   "  -V, --version  print the version, git revision and built-in plugins\n"
		   "signals: TERM/INT drain and exit, HUP reloads the config, USR1 writes "
		   "status.json now\n");
}

/* Every key of the agent and of each built-in plugin, from the same rows the loader uses. */
static void print_help(void)
{
	rn_conf_print_help(rn_agent_conf_table, stdout);
	for (int i = 0; rn_builtin_plugins[i]; i++) {
		const struct rn_source_plugin *p = rn_builtin_plugins[i];
		printf("\nsources entry with type = \"%s\": %s\n", p->name,
		       p->description ? p->description : "");
		rn_conf_print_help(p->conf, stdout);
	}
}

/* "plugins: file mqtt ..." from the built-in registry (plugin_dir ones are not loaded yet). */
static void print_version(void)
{
	char feat[512] = "plugins:";
	size_t n = strlen(feat);
	for (int i = 0; rn_builtin_plugins[i] && n < sizeof(feat); i++)
		n += (size_t)snprintf(feat + n, sizeof(feat) - n, " %s",
				      rn_builtin_plugins[i]->name);
	rn_version_print(stdout, "runnel-agent", feat);
}

/* SIGHUP: the same file through the same loader and check as at start. A config with an
 * error is refused (logged with file:line, as -n prints it) and the running one stays. */
static void reload(struct rn_agent *a, const char *file, int verbose)
{
	char err[1024];
	struct rn_agent_conf *next = rn_calloc(1, sizeof(*next));
	int rc;

	rn_log_info("agent", "SIGHUP: reloading %s", file);
	if (!next) {
		rn_log_error("agent", "reload refused: out of memory; keeping the running config");
		return;
	}
	if ((rc = rn_conf_load_file(file, rn_agent_conf_table, next, err, sizeof(err))) ||
	    (rc = rn_agent_conf_check(next, file, err, sizeof(err))) ||
	    (rc = rn_agent_conf_secrets(next, file, err, sizeof(err)))) {
		rn_log_error("agent", "reload refused: %s; keeping the running config", err);
		rn_conf_free(rn_agent_conf_table, next);
		rn_free(next);
		return;
	}
	rn_agent_conf_digest(next, file);
	int level = next->log_level;
	if (rn_agent_reload(a, next) == 0) {
		rn_log_set_level(verbose ? RN_LOG_DEBUG : (enum rn_log_level)level);
		rn_log_info("agent", "reloaded %s", file);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{.name = "version", .val = 'V'}, {.name = NULL}};
	struct rn_agent_conf conf = {0};
	const char *file = NULL;
	int check = 0, verbose = 0, opt, rc;
	char err[1024];
	struct rn_agent *a;
	struct sigaction sa;

	/* A small device's memory: one malloc arena (the loop is the only busy thread). The
	 * mmap threshold stays dynamic: fixing it made every chunk-sized buffer a fresh mmap,
	 * page faults on each (measured: a fifth of the agent's CPU while buffering). */
	mallopt(M_ARENA_MAX, 1);

	rn_log_set_program("runnel-agent");
	if (argc > 1 && !strcmp(argv[1], "status"))
		return rn_status_main(argc - 1, argv + 1);
	while ((opt = getopt_long(argc, argv, "c:nvfhHV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'n': check = 1; break;
		case 'v': verbose = 1; break;
		case 'f': break;
		case 'H': print_help(); return 0;
		case 'V': print_version(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	/* plugins from .so files first: their keys are part of the config's grammar. -n maps
	 * none (a plugin's constructor would run as the agent's user): it checks the files'
	 * owners and modes, and the keys of the types they would add are checked at start. */
	char plugin_dir[4096];
	if (rn_conf_peek_string(file, "agent.plugin_dir", plugin_dir, sizeof(plugin_dir)) == 0) {
		if (rn_plugin_load_dir(plugin_dir, check ? RN_PLUGIN_CHECK_ONLY : 0, err,
				       sizeof(err))) {
			fprintf(stderr, "runnel-agent: %s: %s\n", file, err);
			return 1;
		}
		if (check)
			rn_plugin_defer_unknown();
	}
	if ((rc = rn_conf_load_file(file, rn_agent_conf_table, &conf, err, sizeof(err))) ||
	    (rc = rn_agent_conf_check(&conf, file, err, sizeof(err))) ||
	    (rc = rn_agent_conf_secrets(&conf, file, err, sizeof(err)))) {
		fprintf(stderr, "runnel-agent: %s\n", err);
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	if (check) {
		const struct rn_source_conf *src = conf.sources.items;
		for (size_t i = 0; i < conf.sources.n; i++)
			if (!rn_plugin_find(src[i].type))
				printf("%s: sources[%zu] (%s): type \"%s\" is not built in; -n "
				       "loads "
				       "no plugin from plugin_dir, so its keys are checked at "
				       "start\n",
				       file, i, src[i].name, src[i].type);
		printf("%s: configuration is valid\n", file);
		rn_conf_free(rn_agent_conf_table, &conf);
		return 0;
	}
	rn_agent_conf_digest(&conf, file);
	rn_log_set_level(verbose ? RN_LOG_DEBUG : (enum rn_log_level)conf.log_level);
	/* 0750: the group (runnel) may read status.json and use the status socket */
	if (mkdir(conf.data_dir, 0750) && errno != EEXIST) {
		rn_log_error("agent", "data_dir %s: %s", conf.data_dir, strerror(errno));
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	int wake[2];
	if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) == 0 && wake[0] > 0) {
		sigs.wake_fd = wake[0];
		wake_w = wake[1];
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rn_log_info("agent", "runnel-agent %s: config %s, data_dir %s", RN_VERSION, file,
		    conf.data_dir);
	if ((rc = rn_agent_create(&a, &conf))) {
		rn_log_error("agent", "cannot start: %s", rn_strerror(rc));
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	/* notifications are best effort: a lost one is systemd's to time out on */
	rn_sd_notify("READY=1\nSTATUS=running");
	while (rn_agent_run(a, &sigs) == RN_AGENT_RELOAD) {
		rn_sd_notify_reloading();
		reload(a, file, verbose);
		rn_sd_notify("READY=1");
	}
	rn_sd_notify("STOPPING=1");
	rn_agent_drain(a);
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, &conf);
	rn_log_info("agent", "stopped");
	return 0;
}
