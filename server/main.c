/*
 * runnel-server entry point: options, config (table-driven, -n checks it), logging, and the
 * server's lifetime. Everything else lives in server.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_addr.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "server.h"
#include "table_cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: runnel-server [-c FILE] [-n] [-v] [-l HOST:PORT] [-d DATA_ROOT]\n"
		   "  -c FILE   config file (libconfig syntax); see etc/runnel-server.conf\n"
		   "  -n        check the config and exit (0 = valid)\n"
		   "  -v        verbose (debug) logging\n"
		   "  -l        listen address, overrides the config's listen\n"
		   "  -d        data root, overrides the config's data_root\n"
		   "  -H        print every config key with its default and exit\n"
		   "       runnel-server table describe|history|verify ...  (table --help)\n");
}

int main(int argc, char **argv)
{
	struct rn_server_conf conf = {0};
	const char *file = NULL, *listen = NULL, *root = NULL;
	int check = 0, verbose = 0, opt, rc;
	char err[1024];
	struct rn_server *s;

	rn_log_set_program("runnel-server");
	if (argc >= 2 && !strcmp(argv[1], "table"))
		return rn_table_main(argc - 1, argv + 1, stdout, stderr);
	while ((opt = getopt(argc, argv, "c:nvl:d:hH")) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'n': check = 1; break;
		case 'v': verbose = 1; break;
		case 'l': listen = optarg; break;
		case 'd': root = optarg; break;
		case 'H': rn_conf_print_help(rn_server_conf_table, stdout); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (file)
		rc = rn_conf_load_file(file, rn_server_conf_table, &conf, err, sizeof(err));
	else
		rc = rn_conf_load_string("", "(defaults)", rn_server_conf_table, &conf, err,
					 sizeof(err));
	if (rc) {
		fprintf(stderr, "runnel-server: %s\n", err);
		rn_conf_free(rn_server_conf_table, &conf);
		return 1;
	}
	if (!rc &&
	    (rc = rn_server_conf_check(&conf, file ? file : "(defaults)", err, sizeof(err)))) {
		fprintf(stderr, "runnel-server: %s\n", err);
		rn_conf_free(rn_server_conf_table, &conf);
		return 1;
	}
	if (listen) {
		struct rn_hostport hp;
		const char *why = NULL;
		if (rn_addr_parse_hostport(listen, RN_ADDR_PORT_ZERO | RN_ADDR_NUMERIC, &hp,
					   &why)) {
			fprintf(stderr, "runnel-server: -l %s: %s\n", listen, why);
			rn_conf_free(rn_server_conf_table, &conf);
			return 1;
		}
		rn_free(conf.listen);
		conf.listen = rn_strdup(listen);
	}
	if (root) {
		rn_free(conf.data_root);
		conf.data_root = rn_strdup(root);
	}
	if (check) {
		printf("%s: configuration is valid\n", file ? file : "(defaults)");
		rn_conf_free(rn_server_conf_table, &conf);
		return 0;
	}
	rn_log_set_level(verbose ? RN_LOG_DEBUG : (enum rn_log_level)conf.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* until the loop catches SIGHUP (server.c: reload is not supported), it must not kill */
	signal(SIGHUP, SIG_IGN);
	if ((rc = rn_server_create(&s, &conf))) {
		rn_log_error("server", "cannot start: %s", rn_strerror(rc));
		rn_conf_free(rn_server_conf_table, &conf);
		return 1;
	}
	rn_server_run(s);
	rn_server_destroy(s);
	rn_conf_free(rn_server_conf_table, &conf);
	rn_log_info("server", "stopped");
	return 0;
}
