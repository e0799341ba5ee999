/*
 * runnel-server entry point: options, config (table-driven, -n checks it; the same loader
 * runs again on SIGHUP), logging, and the server's lifetime. Everything else lives in
 * server.c. `runnel-server table ...` runs the table CLI, a program of its own
 * (runnel-table, server/cli/): the daemon does not link it. `runnel-server fleet ...` is
 * server/cli/fleet_cli.h, run in-process (small: HTTP and JSON only); this file gives it
 * the config's metrics_listen.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_addr.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_version.h"
#include "server.h"
#include "identity_cli.h"
#include "fleet_cli.h"
#include "httpget.h"

/* What --version says is built in; keep it true when a front door or format is added. */
#define FEATURES                                                                                   \
	"front doors: gRPC (Zerobus ingest over h2c); REST: none; metrics: Prometheus /metrics, "  \
	"/healthz\n"                                                                               \
	"tables: Delta Lake with Parquet (zstd); systemd: notify, watchdog, reload"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: runnel-server [-c FILE] [-n] [-v] [-l HOST:PORT] [-d DATA_ROOT]\n"
		"  -c FILE   config file (libconfig syntax); see etc/runnel-server.conf\n"
		"  -n        check the config and exit (0 = valid)\n"
		"  -v        verbose (debug) logging\n"
		"  -l        listen address(es, comma-separated), overrides the config's listen\n"
		"  -d        data root, overrides the config's data_root\n"
		"  -H        print every config key with its default and exit\n"
		"  -V, --version  print the version and what is built in, and exit\n"
		"       runnel-server table describe|history|verify ...  (runs runnel-table)\n"
		"       runnel-server fleet [-c FILE | --url URL] [--token T] [--streams] [--json] "
		"...  (devices)\n"
		"       runnel-server hash-secret [--token] < SECRET\n"
		"       runnel-server token issue --principal NAME [--tables T,...] [--ttl S] "
		"[-c FILE]\n");
}

/*
 * `runnel-server table ARGS...` = `runnel-table ARGS...`: the runnel-table next to this
 * program (/proc/self/exe's directory: an installed pair, or the build tree), else the one
 * on PATH. Returns only when neither can be run: 127, with the reason on stderr.
 */
static int exec_table(char **argv)
{
	char self[4096], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - sizeof("/runnel-table"));
	static char name[] = "runnel-table";
	argv[0] = name;
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			strcpy(slash, "/runnel-table");
			execv(self, argv);
		}
	}
	execvp("runnel-table", argv);
	fprintf(stderr,
		"runnel-server table: cannot run runnel-table (next to runnel-server or on "
		"PATH): %s\n",
		strerror(errno));
	return 127;
}

/*
 * rn_fleet_cli_env.conf_url: "http://HOST:PORT" of the config's metrics_listen (its first
 * address; a wildcard address becomes the loopback address of its family).
 */
static int fleet_conf_url(const char *path, char *url, size_t cap, char *err, size_t errcap)
{
	struct rn_server_conf c = {0};
	struct rn_hostport hp[RN_ADDR_LIST_MAX];
	const char *why = NULL;
	size_t n = 0, at;
	int rc = 1;
	if (rn_conf_load_file(path, rn_server_conf_table, &c, err, errcap))
		goto out;
	if (!c.metrics_listen || !c.metrics_listen[0]) {
		snprintf(err, errcap,
			 "%s: metrics_listen is not set (the fleet API is served there); give "
			 "--url",
			 path);
		goto out;
	}
	if (c.metrics_tls && c.tls_cert) {
		snprintf(err, errcap,
			 "%s: metrics_listen is HTTPS (metrics_tls), which this command does not "
			 "speak; use curl",
			 path);
		goto out;
	}
	if (rn_addr_parse_listen_list(c.metrics_listen, hp, RN_ADDR_LIST_MAX, &n, &at, &why) ||
	    !n) {
		snprintf(err, errcap, "%s: metrics_listen %s: %s", path, c.metrics_listen,
			 why ? why : "no address");
		goto out;
	}
	if (!hp[0].port) {
		snprintf(err, errcap,
			 "%s: metrics_listen %s has port 0 (the system picks one at start); give "
			 "--url with the port the server logged",
			 path, c.metrics_listen);
		goto out;
	}
	if (!strcmp(hp[0].host, "0.0.0.0"))
		strcpy(hp[0].host, "127.0.0.1");
	else if (!strcmp(hp[0].host, "::"))
		strcpy(hp[0].host, "::1");
	snprintf(url, cap, "http://%s%s%s:%d", hp[0].family == 6 ? "[" : "", hp[0].host,
		 hp[0].family == 6 ? "]" : "", hp[0].port);
	rc = 0;
out:
	rn_conf_free(rn_server_conf_table, &c);
	return rc;
}

/* The command line's part of the config: what the loader applies at start and on reload. */
struct load_args {
	const char *file;   /* NULL = the defaults */
	const char *listen; /* -l, or NULL */
	const char *root;   /* -d, or NULL */
	int verbose;        /* -v: log_level debug whatever the file says */
};

/* FNV-1a 64 of the file, so /metrics tells which version of it is in force. */
static void checksum(const char *path, char *out, size_t cap)
{
	uint64_t h = 14695981039346656037ULL;
	unsigned char buf[4096];
	size_t n;
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
	fclose(f);
	snprintf(out, cap, "%016llx", (unsigned long long)h);
}

/* rn_server_load_fn: the file (or the defaults), its checks, then the overrides. */
static int load_conf(void *ctx, struct rn_server_conf *c, char *err, size_t cap)
{
	const struct load_args *a = ctx;
	const char *name = a->file ? a->file : "(defaults)";
	int rc;
	if (a->file)
		rc = rn_conf_load_file(a->file, rn_server_conf_table, c, err, cap);
	else
		rc = rn_conf_load_string("", name, rn_server_conf_table, c, err, cap);
	if (rc || (rc = rn_server_conf_check(c, name, err, cap)))
		return rc;
	if (a->listen) {
		struct rn_hostport hp[RN_ADDR_LIST_MAX];
		const char *why = NULL;
		size_t n, at;
		if (rn_addr_parse_listen_list(a->listen, hp, RN_ADDR_LIST_MAX, &n, &at, &why)) {
			snprintf(err, cap, "-l %s: %s", a->listen, why);
			return RN_ECONFIG;
		}
		rn_free(c->listen);
		if (!(c->listen = rn_strdup(a->listen)))
			return RN_ENOMEM;
	}
	if (a->root) {
		rn_free(c->data_root);
		if (!(c->data_root = rn_strdup(a->root)))
			return RN_ENOMEM;
	}
	if (a->verbose)
		c->log_level = RN_LOG_DEBUG;
	if ((rc = rn_server_conf_check_exposure(c, name, err, cap)))
		return rc;
	if (a->file)
		checksum(a->file, c->checksum, sizeof(c->checksum));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"version", no_argument, NULL, 'V'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	static struct load_args args; /* the reload reads it for as long as the server runs */
	struct rn_server_conf conf = {0};
	int check = 0, opt, rc;
	char err[1024];
	struct rn_server *s;

	rn_log_set_program("runnel-server");
	if (argc >= 2 && !strcmp(argv[1], "table"))
		return exec_table(argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "hash-secret"))
		return rn_hash_secret_main(argc - 1, argv + 1, stdin, stdout, stderr);
	if (argc >= 2 && !strcmp(argv[1], "token"))
		return rn_token_main(argc - 1, argv + 1, stdout, stderr);
	if (argc >= 2 && !strcmp(argv[1], "fleet")) {
		static const struct rn_fleet_cli_env env = {
			.get = rn_httpget,
			.conf_url = fleet_conf_url,
			.default_conf = "/etc/runnel/runnel-server.conf"};
		return rn_fleet_cli_main(argc - 1, argv + 1, stdout, stderr, &env);
	}
	while ((opt = getopt_long(argc, argv, "c:nvl:d:hHV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': args.file = optarg; break;
		case 'n': check = 1; break;
		case 'v': args.verbose = 1; break;
		case 'l': args.listen = optarg; break;
		case 'd': args.root = optarg; break;
		case 'H': rn_conf_print_help(rn_server_conf_table, stdout); return 0;
		case 'V': rn_version_print(stdout, "runnel-server", FEATURES); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((rc = load_conf(&args, &conf, err, sizeof(err)))) {
		fprintf(stderr, "runnel-server: %s\n", rc == RN_ENOMEM ? "out of memory" : err);
		rn_conf_free(rn_server_conf_table, &conf);
		return 1;
	}
	if (check) {
		/* the table store: an s3:// root's bucket is listed when the store answers */
		if ((rc = rn_server_check_store(&conf, args.file ? args.file : "(defaults)", err,
						sizeof(err)))) {
			fprintf(stderr, "runnel-server: %s\n",
				rc == RN_ENOMEM ? "out of memory" : err);
			rn_conf_free(rn_server_conf_table, &conf);
			return 1;
		}
		printf("%s\n", err);
		printf("%s: configuration is valid\n", args.file ? args.file : "(defaults)");
		rn_conf_free(rn_server_conf_table, &conf);
		return 0;
	}
	rn_log_set_level((enum rn_log_level)conf.log_level);
	if (conf.log_file && rn_log_set_file(conf.log_file)) {
		fprintf(stderr, "runnel-server: log_file %s: cannot open it\n", conf.log_file);
		rn_conf_free(rn_server_conf_table, &conf);
		return 1;
	}
	/* a backstop for the explicit modes where files (0640) and directories (0750) are
	 * created: nothing the server writes is readable by others */
	umask(027);
	signal(SIGPIPE, SIG_IGN);
	/* until the loop catches SIGHUP (server.c reloads on it), it must not kill */
	signal(SIGHUP, SIG_IGN);
	if ((rc = rn_server_create(&s, &conf))) {
		rn_log_error("server", "cannot start: %s", rn_strerror(rc));
		return 1;
	}
	rn_server_set_reload(s, load_conf, &args);
	rn_server_run(s);
	rn_server_destroy(s);
	rn_log_info("server", "stopped");
	return 0;
}
