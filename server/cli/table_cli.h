/*
 * runnel-table (also run as `runnel-server table ...`): operator tooling for Delta tables
 * without Spark, a program of its own (table_main.c) that the daemon does not link. It owns
 * the command line of the describe, history, verify, checkpoint, compact and vacuum subcommands
 * and their human and --json output; the read-only replay is rn_dlog (server/delta/log.h)
 * and its only table I/O here is verify's stat and ranged reads of data file heads and
 * footers, all through the table store (server/store/tstore.h: a directory or an s3:// root
 * with the --s3-* options, RUNNEL_S3_ENDPOINT and AWS_* credentials). The writing
 * subcommands go through the table writer (server/delta/delta.h, compact.h) with the
 * default maintenance settings (maint.h rn_maint_defaults) unless an option says otherwise.
 *
 * Lifetime: one call per process, from main(), on the main thread; nothing outlives it.
 */
#ifndef RN_TABLE_CLI_H
#define RN_TABLE_CLI_H

#include <stdio.h>

/* Exit codes of rn_table_main. */
enum {
	RN_TABLE_EXIT_OK = 0,       /* answered; verify: the table is healthy */
	RN_TABLE_EXIT_PROBLEMS = 1, /* verify found problems, the log is unreadable/missing, or a
				       writing subcommand failed */
	RN_TABLE_EXIT_NOANSWER = 2  /* usage error */
};

/*
 * Runs `<subcommand> ...`; argv[0] is the program's name (ignored). Writes results to out
 * and diagnostics to err. Returns one of the exit codes above; never exits the process.
 */
int rn_table_main(int argc, char **argv, FILE *out, FILE *err);

#endif
