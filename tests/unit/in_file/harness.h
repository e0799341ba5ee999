/*
 * The test harness of plugins/in_file's unit tests: a fake host (no agent, no buffer) that
 * keeps every record handed to it, a source built by hand the way the agent's loader builds
 * it, and helpers for the real files in a temp dir (test_dir, made by test_setup and removed
 * by test_teardown, cmocka group fixtures). Captured logs (log_capture_*) let a test check
 * what the plugin said. Used by test_in_file.c and test_in_file_watch.c.
 */
#ifndef RN_TEST_IN_FILE_HARNESS_H
#define RN_TEST_IN_FILE_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

extern const struct rn_source_plugin rn_in_file;

#define MAXREC 1024

struct host {
	char *rec[MAXREC];
	size_t len[MAXREC];
	uint32_t flags[MAXREC];
	char split[MAXREC][16];
	char piece[MAXREC][16]; /* runnel.piece */
	char topic[MAXREC][600];
	size_t n;
	struct rn_buf saved; /* the "committed" position handed back at load */
	int have_saved;
	int pos_changes;
	unsigned refuse_every, calls; /* refuse every n-th emit (RN_EFULL) */
	void *snap_inst;   /* set: every emit commits (snapshots) inside, as a closing chunk does */
	size_t accept_max; /* set: the host stops accepting once it holds this many records */
};

/* Mirrors in_file's private settings struct (the rows' offsets); filled by hand here the way
 * the loader fills it from the plugin's conf table. */
struct in_file_conf {
	struct rn_conf_strlist paths;
	int read_from;
	int64_t max_line_bytes;
	int64_t line_timeout_ms;
	int64_t rotate_wait_ms;
	int64_t rescan_interval_ms;
	char *multiline_start;
	int64_t multiline_timeout_ms;
	int64_t multiline_max_bytes;
	char *rotate_glob;
};

struct src {
	struct rn_source_conf conf;
	struct in_file_conf fc;
	char *paths[2];
	void *inst;
	struct rn_source_host sh;
};

extern char test_dir[512]; /* this run's temp dir */

/* cmocka group fixtures: make and remove test_dir (under $RN_TEST_TMP, else /tmp). */
int test_setup(void **state);
int test_teardown(void **state);

/* Frees the records kept (host_reset) and the saved position too (host_free). */
void host_reset(struct host *h);
void host_free(struct host *h);

/* Settings as src_start uses them, without creating the instance (tests adjust them):
 * one path, 50 ms line and rotate timeouts, a 500 ms rescan. */
void src_init(struct src *s, struct host *h, const char *path, int read_from, int64_t max_line);
/* check() and create() of the source set up by src_init; src_start does both. */
void src_create(struct src *s);
void src_start(struct src *s, struct host *h, const char *path, int read_from, int64_t max_line);
/* Polls at the real time until the plugin has nothing more to do (no jump past the rescan
 * interval). */
void src_poll_now(struct src *s);
/* Polls `times` times, the i-th one i seconds in the future (rescans and timeouts fire). */
void src_poll(struct src *s, int times);
/* Commits the current position into h->saved, as the agent does with a chunk. */
void src_save(struct src *s, struct host *h);
void src_stop(struct src *s);

void path_of(char *out, size_t cap, const char *name);
void write_file(const char *path, const char *mode, const void *p, size_t n);
/* Appends lines "<tag> <i>" for i in [from, to). */
void write_lines(const char *path, const char *tag, int from, int to);
void sleep_ms(int ms);
/* Waits (bounded) until fd is readable; the time it took in *ms. 1 if it is. */
int wait_readable(int fd, int timeout_ms, int64_t *ms);
/* Bounded wait for at least n records, polling the plugin whenever its fd wakes us. 1 if
 * they came. */
int wait_records(struct src *s, struct host *h, size_t n, int timeout_ms);

/* Sends what the process writes on stderr (the logger) to a file until log_capture_end,
 * which returns it (malloc'd, NUL-terminated; the caller frees it) and writes it to the real
 * stderr as well. Not nested. */
void log_capture_begin(void);
char *log_capture_end(void);
/* Occurrences of needle in hay. */
int count_of(const char *hay, const char *needle);

#endif
