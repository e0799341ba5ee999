/*
 * runnel-table: the table CLI as a program (table_cli.h). `runnel-server table ...` execs
 * it (server/main.c), so both spellings take the same arguments and exit codes.
 */
#include "rn_log.h"
#include "table_cli.h"

int main(int argc, char **argv)
{
	rn_log_set_program("runnel-table");
	return rn_table_main(argc, argv, stdout, stderr);
}
