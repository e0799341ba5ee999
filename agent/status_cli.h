/*
 * `runnel-agent status`: asks a running agent for its status over data_dir/agent.sock and
 * prints it for people (a table per stream) or, with --json, as the agent sent it.
 */
#ifndef RN_STATUS_CLI_H
#define RN_STATUS_CLI_H

#include <stdio.h>

/* argv[0] is "status". Exit code: 0 printed, 1 no agent answering, 2 usage. */
int rn_status_main(int argc, char **argv);

/* Prints the status JSON in [text, text+len) as a table to out. 0 or RN_EINVAL. Pure, for
 * tests. */
int rn_status_print(const char *text, size_t len, FILE *out);

#endif
