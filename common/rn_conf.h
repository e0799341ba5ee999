/*
 * Table-driven configuration over libconfig (the only code that includes libconfig.h). A
 * program describes its settings as rows {key, type, default, offset, min, max, help}; one
 * loader applies defaults, checks types and ranges, rejects unknown keys, and reports every
 * error as "FILE:LINE: <key path> ..." (e.g. "/etc/runnel/agent.conf:12: unknown key
 * 'sources[0].pathz'"). The same rows print the help text. Loaded values land in a caller
 * struct at the rows' offsets; strings, lists and variant blocks are heap copies released by
 * rn_conf_free(). Tables are const program data. Not thread-safe; used at start and reload.
 *
 * A list of groups may be polymorphic (the agent's `sources`, one plugin per element): the
 * row names a tag key (`type`) and a resolver that maps the tag's value to the plugin's own
 * table; each element then accepts the common rows plus the plugin's rows, and the plugin's
 * values land in a separately allocated block (struct rn_conf_variant in the element).
 */
#ifndef RN_CONF_H
#define RN_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum rn_conf_type {
	RN_CONF_INT,      /* int64_t; integer setting (alias: RN_CONF_INT64) */
	RN_CONF_BOOL,     /* int; true/false */
	RN_CONF_STRING,   /* char *; heap copy */
	RN_CONF_SIZE,     /* int64_t bytes; integer or string with K/M/G/T suffix ("64M") */
	RN_CONF_ENUM,     /* int; index into `enums` of the string given (case-insensitive) */
	RN_CONF_STRLIST,  /* struct rn_conf_strlist; a string, or an array/list of strings */
	RN_CONF_GROUP,    /* a group whose keys (`sub`) store into the same struct */
	RN_CONF_LIST,     /* struct rn_conf_list: a list of groups, each an elem_size struct */
	RN_CONF_INT32,    /* int; integer setting that must fit in int */
	RN_CONF_DURATION, /* int64_t milliseconds; integer (ms) or "250ms", "2s", "5m", "1h" */
	RN_CONF_LISTEN,   /* char *; "ip:port" to bind (rn_addr.h: IPv4 or [IPv6], port 0..65535),
			   * or several: a comma-separated string or a list of strings, stored
			   * joined by ", " (rn_addr_parse_listen_list splits it) */
	RN_CONF_URL,      /* char *; "http(s)://host[:port][/path]" (rn_addr_parse_url) */
};
#define RN_CONF_INT64 RN_CONF_INT

/* Row flags. */
#define RN_CONF_F_REQUIRED 1u /* an error if the key is absent (not for GROUP) */
#define RN_CONF_F_RESTART 2u  /* a reload keeps the running value (help says so) */
/* STRING/STRLIST: a value holding a control character (below 0x20, or 0x7f: CR, LF, TAB, ...)
 * or longer than RN_CONF_HDR_MAX bytes is an error naming its line; for values that go into
 * protocol headers (tokens) */
#define RN_CONF_F_NOCTL 4u
/* On the end row ({.key = NULL}) of a variant table: keys that match no row are skipped, not
 * refused (the agent's -n for a plugin type it does not map). */
#define RN_CONF_F_OPEN 8u
/* The longest value an RN_CONF_F_NOCTL row takes (a bearer token), in bytes. */
#define RN_CONF_HDR_MAX 4096

struct rn_conf_strlist {
	char **v; /* n strings, then a NULL */
	size_t n;
};

/* A list of groups: `items` points to n structs of the row's elem_size. */
struct rn_conf_list {
	void *items;
	size_t n;
};

struct rn_conf_key;

/* The plugin part of one element of a polymorphic list: `data` is a block of the size the
 * resolver returned, filled per `table`. Both NULL when the element has no variant. */
struct rn_conf_variant {
	const struct rn_conf_key *table;
	void *data;
};

/* Maps a tag value (e.g. "file") to the variant's rows and the size of its struct. NULL for
 * an unknown tag. Must be a pure function of `tag`. */
typedef const struct rn_conf_key *(*rn_conf_resolve_fn)(const char *tag, size_t *size);

struct rn_conf_key {
	const char *key;
	enum rn_conf_type type;
	const char *def; /* default as text ("10", "true", "64M", "200ms", "normal"); NULL = none */
	size_t offset;
	int64_t min, max; /* INT/INT32/SIZE/DURATION range when min < max */
	const char *help;
	const char *const *enums;      /* ENUM: NULL-terminated names */
	const struct rn_conf_key *sub; /* GROUP/LIST: rows, ended by a row with key NULL */
	size_t elem_size;              /* LIST: size of one element struct */
	unsigned flags;                /* RN_CONF_F_* */
	/* LIST only, polymorphic lists: the tag key inside each element (also a row of `sub`),
	 * the resolver, and the offset of a struct rn_conf_variant inside the element. */
	const char *tag;
	rn_conf_resolve_fn resolve;
	size_t variant_offset;
};

/* Loads `path` into dst (zeroed by the caller) per `table`. 0, RN_ECONFIG with a message
 * "FILE:LINE: ..." in err (also for an unreadable file: "FILE: cannot read ..."), or
 * RN_ENOMEM. On any error dst may hold partial values: call rn_conf_free in every case. */
int rn_conf_load_file(const char *path, const struct rn_conf_key *table, void *dst, char *err,
		      size_t errcap);
/* The same from NUL-terminated text in memory; `name` stands in for the file name in
 * messages. @include directives are not allowed here. */
int rn_conf_load_string(const char *text, const char *name, const struct rn_conf_key *table,
			void *dst, char *err, size_t errcap);

/* Reads one string setting (dotted path, e.g. "agent.plugin_dir") from `path` before the
 * full load, for settings that decide how the rest is read. 0 with the value in out,
 * RN_ENOTFOUND if the file has no such string (or does not parse: the full load reports
 * that), RN_ERANGE if it does not fit in cap. */
int rn_conf_peek_string(const char *path, const char *setting, char *out, size_t cap);

/* Frees the strings, lists and variant blocks rn_conf stored in dst and zeroes them.
 * Safe on a zeroed or partially loaded struct. */
void rn_conf_free(const struct rn_conf_key *table, void *dst);

/*
 * For reload: whether row k holds the same value in two loaded structs a and b (strings,
 * string lists and lists of groups compared deeply, variants included). Pure.
 */
int rn_conf_key_equal(const struct rn_conf_key *k, const void *a, const void *b);
/* Exchanges row k's value (pointers included, nothing copied) between two loaded structs:
 * a setting that cannot change at run time keeps its old value in the new config, and the
 * old struct, freed next, takes the new one. GROUP rows swap every row of the group. */
void rn_conf_key_swap(const struct rn_conf_key *k, void *a, void *b);

/* Parses "64M"-style sizes and "250ms"-style durations, as the loader does. 0 or RN_EINVAL. */
int rn_conf_parse_size(const char *s, int64_t *out);
int rn_conf_parse_duration_ms(const char *s, int64_t *out);

/* Prints every key with its type, default and help, indented by group. */
void rn_conf_print_help(const struct rn_conf_key *table, FILE *out);

#endif
