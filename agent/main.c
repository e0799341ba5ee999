/*
 * runnel-agent entry point: options, config (table-driven; -n checks it and exits), logging,
 * signals, and the agent's lifetime.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "plugin.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_log.h"
#include "status_cli.h"

static volatile int stop, status_now;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		status_now = 1;
	else
		stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: runnel-agent -c FILE [-n] [-v] [-f] [-H]\n"
		   "       runnel-agent status [-c FILE] [--json]  (ask a running agent)\n"
		   "  -c FILE  config file (libconfig syntax); see etc/runnel-agent.conf\n"
		   "  -n       check the config and exit (0 = valid)\n"
		   "  -v       verbose (debug) logging\n"
		   "  -f       stay in the foreground (the default; for systemd)\n"
		   "  -H       print every config key with its default and exit\n");
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

int main(int argc, char **argv)
{
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
	while ((opt = getopt(argc, argv, "c:nvfhH")) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'n': check = 1; break;
		case 'v': verbose = 1; break;
		case 'f': break;
		case 'H': print_help(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!file) {
		usage(stderr);
		return 2;
	}
	/* plugins from .so files first: their keys are part of the config's grammar */
	char plugin_dir[4096];
	if (rn_conf_peek_string(file, "agent.plugin_dir", plugin_dir, sizeof(plugin_dir)) == 0 &&
	    rn_plugin_load_dir(plugin_dir, err, sizeof(err))) {
		fprintf(stderr, "runnel-agent: %s: %s\n", file, err);
		return 1;
	}
	if ((rc = rn_conf_load_file(file, rn_agent_conf_table, &conf, err, sizeof(err))) ||
	    (rc = rn_agent_conf_check(&conf, file, err, sizeof(err)))) {
		fprintf(stderr, "runnel-agent: %s\n", err);
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	if (check) {
		printf("%s: configuration is valid\n", file);
		rn_conf_free(rn_agent_conf_table, &conf);
		return 0;
	}
	rn_log_set_level(verbose ? RN_LOG_DEBUG : (enum rn_log_level)conf.log_level);
	if (mkdir(conf.data_dir, 0755) && errno != EEXIST) {
		rn_log_error("agent", "data_dir %s: %s", conf.data_dir, strerror(errno));
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Reload is not implemented yet; SIGHUP's default action would kill the agent without
	 * draining, so it is ignored (restart to apply a new config). */
	signal(SIGHUP, SIG_IGN);
	rn_log_info("agent", "runnel-agent %s: config %s, data_dir %s", RN_VERSION, file,
		    conf.data_dir);
	if ((rc = rn_agent_create(&a, &conf))) {
		rn_log_error("agent", "cannot start: %s", rn_strerror(rc));
		rn_conf_free(rn_agent_conf_table, &conf);
		return 1;
	}
	rn_agent_run(a, &stop, &status_now);
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, &conf);
	rn_log_info("agent", "stopped");
	return 0;
}
