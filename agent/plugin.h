/*
 * The source plugin API. A plugin is a const table with an ABI version; the agent's host
 * creates one instance per configured source and polls it on the loop thread. A plugin never
 * touches SQLite or curl: it hands records to the host, and it can describe its resume
 * position at any moment with snapshot(). Contract that makes exactly-once possible: the
 * position a snapshot describes is always "just after the last record emitted" — a plugin
 * advances it only as it emits, so a chunk committed with that snapshot holds exactly the
 * records before it. Note that emit() may close a chunk, and so call snapshot(), before it
 * returns: advance the position before calling emit() and step it back if emit() fails.
 */
#ifndef RN_PLUGIN_H
#define RN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rn_buf.h"
#include "rn_conf.h"

/* ABI versions. A plugin's `abi` holds a major (low 16 bits) and a minor (above). The agent
 * loads a plugin whose major is its own, whatever the minor: a minor only ever appends
 * members to struct rn_source_host, and a plugin finds out which ones its agent has with
 * RN_HOST_HAS. Agents of ABI 1.0 compare the whole number and so refuse a 1.1 plugin (a
 * plugin that reads host->size) rather than let it read past their host struct.
 *  1.0  the host ends at dead_letter (the first release);
 *  1.1  host->size, host->set_state. */
#define RN_SOURCE_ABI(major, minor) ((int)(((unsigned)(minor) << 16) | (unsigned)(major)))
#define RN_SOURCE_ABI_MAJOR(abi) ((unsigned)(abi)&0xffffu)
#define RN_SOURCE_ABI_MINOR(abi) ((unsigned)(abi) >> 16)
#define RN_SOURCE_ABI_1 1                     /* 1.0 */
#define RN_SOURCE_ABI_1_1 RN_SOURCE_ABI(1, 1) /* 1.1 */
#define RN_SOURCE_ABI_CURRENT RN_SOURCE_ABI_1_1
/* The plugins this agent loads: major 1, any minor. */
#define RN_SOURCE_ABI_LOADABLE(abi) (RN_SOURCE_ABI_MAJOR(abi) == 1u)

/* Record flags (runnel.v1.Record.flags). */
#define RN_RECORD_F_SPLIT 1u /* a piece of an overlong input record */
#define RN_RECORD_F_DEAD                                                                           \
	2u /* a dead letter: input that did not parse, kept with its reason                        \
	    * in the attribute "runnel.error" (see host->dead_letter) */
#define RN_RECORD_F_DROPPED                                                                        \
	4u /* a tombstone written by the agent in place of records it                              \
	    * had to drop (buffer.policy = drop_oldest, or the source's ttl):                      \
	    * no payload; "runnel.error" says why, "runnel.dropped_records"                        \
	    * how many, "runnel.dropped_seq" their seq range */

struct rn_attr {
	const char *key;
	const char *value;
};

struct rn_record {
	const uint8_t *payload;
	size_t len;
	const char *topic;     /* file path, MQTT topic, serial port; may be NULL */
	int64_t event_time_us; /* 0 = use the receive time */
	uint32_t flags;
	const struct rn_attr *attrs;
	size_t nattrs;
};

/* What the host offers a plugin instance. */
struct rn_source_host {
	void *ctx;
	/* Hands over one record (copied). RN_EFULL: the buffer is full under the block
	 * policy; the record was NOT taken, stop and retry it later. */
	int (*emit)(void *ctx, const struct rn_record *r);
	/* The resume position changed without a record (e.g. after a rotation). */
	void (*position_changed)(void *ctx);
	/* The saved resume position from the last run, appended to out. RN_ENOTFOUND if none. */
	int (*load_position)(void *ctx, struct rn_buf *out);
	/* Is the host accepting records now? (0 while the buffer is full) */
	int (*accepting)(void *ctx);
	/* Commits every record emitted so far, with the current snapshot, before it returns.
	 * 0: they are in the buffer. RN_EFULL: the buffer is full; they wait in memory and go
	 * in as soon as room frees (call again: 0 once they are in). A plugin whose peer
	 * redelivers until acknowledged (MQTT) acknowledges only after a 0. */
	int (*flush)(void *ctx);
	/* Keeps input the plugin could not parse (bad frame or checksum, broken encoding,
	 * oversize): the bytes go into the stream as a record flagged RN_RECORD_F_DEAD with
	 * attribute runnel.error = reason, and the source's dead-letter count goes up. Never
	 * drop input silently; call this instead. Returns like emit(). */
	int (*dead_letter)(void *ctx, const struct rn_record *r, const char *reason);
	/* ---- ABI 1.1: a plugin whose abi has a minor of 1 or more may read `size`; it
	 * checks every member below it with RN_HOST_HAS before use, and copies the struct
	 * with rn_source_host_copy (never `*host`: an older agent's struct may be shorter). */
	/* sizeof(struct rn_source_host) as the agent was built: the members it has. */
	size_t size;
	/* Tells the host the source's state, shown by `runnel-agent status` and sent in health
	 * reports. state is an enum rn_source_state; error says what went wrong (NULL =
	 * nothing; copied, cut at 255 bytes). A source that never calls it is "up" while it
	 * runs. */
	void (*set_state)(void *ctx, int state, const char *error);
};

/* Whether the agent behind `host` has `member` (its struct reaches past it). Only for a
 * plugin of ABI 1.1 or later (one of 1.0 must not read host->size); says nothing of whether
 * the member is set: check it for NULL as well. */
#define RN_HOST_HAS(host, member)                                                                  \
	((host)->size >= offsetof(struct rn_source_host, member) + sizeof((host)->member))

/* Copies the host an ABI 1.1 plugin is given in create() (the agent's struct lives only
 * for the call): the members the agent has, the rest zeroed, dst->size = what was copied. */
static inline void rn_source_host_copy(struct rn_source_host *dst, const struct rn_source_host *src)
{
	size_t n = src->size < sizeof(*dst) ? src->size : sizeof(*dst);
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, n);
	dst->size = n;
}

/* A source's state (host->set_state). */
enum rn_source_state {
	RN_SOURCE_UP = 0, /* running: connected, reading */
	RN_SOURCE_DOWN,   /* its peer is gone (broker unreachable, port missing); retrying */
	RN_SOURCE_ERROR,  /* its peer refused it, or its input failed; retrying */
	RN_SOURCE_IDLE    /* not reading on purpose (the buffer is full) */
};

/* Common per-source settings (one element of the `sources` list). The plugin's own keys are
 * rows of its `conf` table; the loader fills a struct of `conf_size` bytes with them and
 * hangs it on `plugin` (rn_conf's polymorphic list, selected by `type`). So an unknown key in
 * a source is reported with file:line like any other, and `runnel-agent -H` prints each
 * plugin's keys from the same rows. */
/* One entry of a source's `routes`: records whose topic matches `match` (MQTT filter rules,
 * agent/route.h) go to their own stream `stream` and table `table`; the rest go to the
 * source's own stream and table. */
struct rn_route_conf {
	char *match;
	char *table;
	char *stream;
};

struct rn_source_conf {
	char *type;
	char *name;
	char *table;
	struct rn_conf_strlist attributes; /* "key=value": added to every record of the source */
	char *event_time_field;     /* top-level JSON field holding the event time; NULL = none */
	char *event_time_pattern;   /* POSIX ERE; its first group (or match) is the event time */
	struct rn_conf_list routes; /* struct rn_route_conf */
	struct rn_conf_variant plugin; /* .data: the plugin's settings struct */
	/* host settings added after ABI 1 first shipped: kept behind `plugin` so its offset
	 * does not move */
	int64_t ttl_ms; /* buffered records older than this are dropped (tombstoned); 0 = keep */
	int64_t backlog_split_ms; /* a backlog this old moves new records to a new stream; 0 = off
				   */
};

struct rn_source_plugin {
	int abi;                 /* RN_SOURCE_ABI_1, or RN_SOURCE_ABI_1_1 to use host->size */
	const char *name;        /* the `type` of a sources entry */
	const char *description; /* one line for -H */
	const struct rn_conf_key *conf; /* the plugin's keys; NULL = none */
	size_t conf_size;               /* size of the struct they fill */
	/* Validates the source's settings; 0 or RN_ECONFIG with a message in err. */
	int (*check)(const struct rn_source_conf *conf, char *err, size_t errcap);
	int (*create)(void **inst, const struct rn_source_conf *conf,
		      const struct rn_source_host *host);
	/* Does a bounded amount of work; sets *more when it stopped with work left. */
	int (*poll)(void *inst, int64_t now_us, int *more);
	/* Optional (NULL): the descriptor the loop should wait on between polls and its poll(2)
	 * events, or -1 for none now. Without it the loop polls at least every 50 ms. */
	int (*wait_fd)(void *inst, short *events);
	/* Appends the current resume position (see the contract above). */
	int (*snapshot)(void *inst, struct rn_buf *out);
	void (*destroy)(void *inst);
};

/* The built-in plugins, generated from the enabled CMake options (plugins/registry.c). */
extern const struct rn_source_plugin *const rn_builtin_plugins[];

/* The plugin named `type` (built-in, then loaded), or NULL (generated plugins/registry.c). */
const struct rn_source_plugin *rn_plugin_find(const char *type);
/* Adds a loaded plugin. RN_EEXIST if its name is taken, RN_ENOMEM if the table is full. */
int rn_plugin_register(const struct rn_source_plugin *p);

/*
 * Plugins from shared objects. A plugin .so exports
 *     const struct rn_source_plugin *rn_source_plugin_entry(void);
 * and may call the agent's exported functions it includes headers for (rn_buf_*, rn_log_*,
 * rn_mem). Its table's first member is `abi`; a plugin whose major ABI is not 1 is refused
 * before anything else of its table is read.
 */
#define RN_PLUGIN_ENTRY "rn_source_plugin_entry"
#define RN_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef const struct rn_source_plugin *(*rn_plugin_entry_fn)(void);

/* rn_plugin_load_dir flag: check the directory and the files, map nothing (-n). */
#define RN_PLUGIN_CHECK_ONLY 1u
/* Loads every *.so in `dir` (name order) and registers its plugin, after checking (before
 * anything is mapped) that the directory and each file are owned by root or the agent's
 * effective user and neither group- nor world-writable, and that each file is a regular
 * file (no symbolic link); see plugin_load.c. 0, or RN_ECONFIG with a message naming the
 * file in err (refused by the checks, not loadable, no entry point, wrong ABI, name taken).
 * Loaded objects stay loaded for the life of the process. */
int rn_plugin_load_dir(const char *dir, unsigned flags, char *err, size_t cap);
/* The ownership and mode rule above for one stat result (`what` and `path` for the message;
 * `me` is the agent's effective uid). 0 or RN_ECONFIG with the reason in err. Pure. */
struct stat;
int rn_plugin_check_stat(const char *what, const char *path, const struct stat *st, unsigned me,
			 char *err, size_t cap);
/* rn_conf resolver for the sources list: the plugin's rows and struct size by type. After
 * rn_plugin_defer_unknown() (runnel-agent -n, which maps no plugin), a type that is neither
 * built in nor loaded resolves to an open table: its keys are taken unchecked. */
const struct rn_conf_key *rn_plugin_conf_resolve(const char *type, size_t *size);
void rn_plugin_defer_unknown(void);
/* True after rn_plugin_defer_unknown(): rn_agent_conf_check then lets an unknown type pass. */
int rn_plugin_unknown_deferred(void);

#endif
