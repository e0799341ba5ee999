/*
 * Table names, as Unity Catalog has them: catalog.schema.table. One rule for every place a
 * name comes in (the server's calls and config, the table CLI, the agent's sources and
 * routes), checked before any path is built from a name: each part is a directory level
 * under the server's data_root, so a 1- or 2-part name would be a directory holding other
 * tables. Pure.
 */
#ifndef RN_TABLE_NAME_H
#define RN_TABLE_NAME_H

/* The rule in words, for messages. */
#define RN_TABLE_NAME_RULE                                                                         \
	"a table name is catalog.schema.table: 3 non-empty parts of letters, digits, '_' and "     \
	"'-', each at most 128 bytes and not starting with '_' or '-'"

/* 0 if `name` follows the rule, else RN_EINVAL (also for NULL). */
int rn_table_name_check(const char *name);

#endif
