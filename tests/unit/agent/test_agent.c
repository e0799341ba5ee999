/*
 * Pipeline tests for agent/agent.c over the real buffer, chunk builder and file plugin, with
 * the uplink replaced by a link seam (uplink_stub.c) that plays the server. Checks exactly
 * once end to end inside the agent: records read while offline are committed as chunks
 * with contiguous offsets and seqs; after a restart with more lines, everything is
 * delivered once, seq 0..N-1 with no gap or repeat; and a stream whose source left the
 * config is still delivered (orphan registration).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "agent_int.h"
#include "buffer.h"
#include "rn_conf.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_json.h"
#include "rn_mem.h"
#include "uplink_stub.h"
#include "testutil.h"

static char dir[512];

static int setup(void **state)
{
	(void)state;
	return rn_test_tmpdir(dir, sizeof(dir), "agent");
}

static int teardown(void **state)
{
	(void)state;
	return rn_test_rmtree(dir);
}

static void append_lines(const char *path, int from, int to)
{
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	for (int i = from; i < to; i++)
		fprintf(f, "line %d\n", i);
	fclose(f);
}

/* Loads a config for one file source `name` over `file`, runs the agent for `loops` loop
 * turns (each wait() of the stub sleeps up to 5 ms), then stops it (drain) and frees all. */
static uint64_t last_ack_commits; /* of the last run_agent */

static void run_agent(const char *data, const char *name, const char *file, int loops)
{
	char text[2048], err[512];
	struct rn_agent_conf conf = {0};
	struct rn_agent *a;
	struct rn_agent_signals sig = {0};
	snprintf(text, sizeof(text),
		 "agent: { device_id = \"dev\"; data_dir = \"%s\"; };\n"
		 "chunk: { max_records = 1000; linger_ms = 20; };\n"
		 "sources = ( { type = \"file\"; name = \"%s\"; table = \"c.s.t\";\n"
		 "  paths = [ \"%s\" ]; read_from = \"beginning\"; } );\n",
		 data, name, file);
	mkdir(data, 0755);
	if (rn_conf_load_string(text, "t.conf", rn_agent_conf_table, &conf, err, sizeof(err)) ||
	    rn_agent_conf_check(&conf, "t.conf", err, sizeof(err)))
		fail_msg("config: %s", err);
	assert_int_equal(rn_agent_create(&a, &conf), 0);
	stub.stop = &sig.stop;
	stub.waits = 0;
	stub.stop_after = loops;
	assert_int_equal(rn_agent_run(a, &sig), RN_AGENT_STOPPED);
	rn_agent_drain(a);
	last_ack_commits = a->ack_commits;
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, &conf);
}

static void buffer_state(const char *data, const char *name, struct rn_buffer_stream *st)
{
	char path[600];
	struct rn_buffer *b;
	int n = snprintf(path, sizeof(path), "%s/buffer.db", data);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	struct rn_buffer_options o = {.path = path};
	assert_int_equal(rn_buffer_open(&b, &o, NULL), 0);
	assert_int_equal(rn_buffer_stream_get(b, name, "c.s.t", st), 0);
	rn_buffer_close(b);
}

static void check_delivered(int stream, uint64_t n)
{
	uint64_t next = 0;
	for (size_t i = 0; i < stub.nrec; i++) {
		if (stub.rec_stream[i] != stream)
			continue;
		if (stub.rec_seq[i] != next)
			fail_msg("stream %d: record %zu has seq %llu, want %llu", stream, i,
				 (unsigned long long)stub.rec_seq[i], (unsigned long long)next);
		next++;
	}
	assert_int_equal(next, n);
}

static void test_offline_then_restart(void **state)
{
	char data[600], file[600];
	struct rn_buffer_stream st;
	(void)state;
	snprintf(data, sizeof(data), "%s/d1", dir);
	snprintf(file, sizeof(file), "%s/app.log", dir);
	memset(&stub, 0, sizeof(stub));
	append_lines(file, 0, 2500);

	/* offline: everything is read and committed, nothing acknowledged */
	run_agent(data, "app", file, 40);
	assert_int_equal(stub.errors, 0);
	assert_int_equal(stub.chunks, 0);
	assert_true(stub.descriptor_len > 0);
	buffer_state(data, "app", &st);
	assert_int_equal(st.next_seq, 2500);
	assert_int_equal(st.next_offset, 3); /* 1000 + 1000 + 500 */
	assert_int_equal(st.acked, -1);
	assert_true(st.bytes > 0);

	/* restart online with 10 more lines: all 2510 delivered once, in order */
	append_lines(file, 2500, 2510);
	stub.online = 1;
	run_agent(data, "app", file, 40);
	assert_int_equal(stub.errors, 0);
	check_delivered(st.id, 2510);
	buffer_state(data, "app", &st);
	assert_int_equal(st.next_seq, 2510);
	assert_int_equal(st.next_offset, 4);
	assert_int_equal(st.acked, 3);
	assert_int_equal(st.bytes, 0);
	assert_string_equal(st.server_id, "srv-1");

	/* and once more with nothing new: nothing is sent again */
	memset(&stub, 0, sizeof(stub));
	stub.online = 1;
	run_agent(data, "app", file, 20);
	assert_int_equal(stub.nrec, 0);
	assert_int_equal(stub.errors, 0);
}

/* The status.json the last run wrote. */
static void read_status(const char *data, char *out, size_t cap)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/status.json", data);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	fclose(f);
}

/* A server with committed acks whose table does not have the stream yet: every chunk is
 * acked (durable there) and none deleted; status says so. A restart resends them (they are
 * what a lost server would have lost), and once the table has them they are deleted. */
static void test_kept_until_committed(void **state)
{
	char data[600], file[600], status[8192];
	struct rn_buffer_stream st;
	(void)state;
	snprintf(data, sizeof(data), "%s/d7", dir);
	snprintf(file, sizeof(file), "%s/kept.log", dir);
	memset(&stub, 0, sizeof(stub));
	append_lines(file, 0, 2500);
	stub.online = 1;
	stub.hold = 1;
	stub.release_upto = -1;
	run_agent(data, "kept", file, 40);
	assert_int_equal(stub.errors, 0);
	assert_int_equal(stub.chunks, 3);
	buffer_state(data, "kept", &st);
	assert_int_equal(st.acked, -1); /* nothing deleted */
	assert_true(st.bytes > 0);
	read_status(data, status, sizeof(status));
	assert_non_null(strstr(status, "\"acked\":2,\"committed\":-1,\"committed_acks\":true"));
	assert_null(strstr(status, "\"retained_bytes\":0,"));

	/* restarted: the kept chunks go again; the table has offset 0 only, then all */
	memset(&stub, 0, sizeof(stub));
	stub.online = 1;
	stub.hold = 1;
	stub.release_upto = 0;
	run_agent(data, "kept", file, 20);
	assert_int_equal(stub.errors, 0);
	assert_int_equal(stub.chunks, 3);
	check_delivered(st.id, 2500);
	buffer_state(data, "kept", &st);
	assert_int_equal(st.acked, 0);
	read_status(data, status, sizeof(status));
	assert_non_null(strstr(status, "\"acked\":2,\"committed\":0,"));
	memset(&stub, 0, sizeof(stub));
	stub.online = 1;
	stub.hold = 1;
	stub.release_upto = 2;
	run_agent(data, "kept", file, 20);
	buffer_state(data, "kept", &st);
	assert_int_equal(st.acked, 2);
	assert_int_equal(st.bytes, 0);
	read_status(data, status, sizeof(status));
	assert_non_null(
		strstr(status, "\"committed\":2,\"committed_acks\":true,\"retained_bytes\":0,"));
}

/* 25 chunks acknowledged one by one within a few loop turns are deleted from the buffer
 * in a few transactions, not 25 (acks wait up to 100 ms for each other), and all of them
 * are deleted by the time the agent stops. */
static void test_acks_coalesce(void **state)
{
	char data[600], file[600];
	struct rn_buffer_stream st;
	(void)state;
	snprintf(data, sizeof(data), "%s/d3", dir);
	snprintf(file, sizeof(file), "%s/many.log", dir);
	memset(&stub, 0, sizeof(stub));
	append_lines(file, 0, 25000);
	stub.online = 1;
	run_agent(data, "many", file, 40);
	assert_int_equal(stub.errors, 0);
	assert_int_equal(stub.chunks, 25);
	buffer_state(data, "many", &st);
	check_delivered(st.id, 25000);
	assert_int_equal(st.acked, 24);
	assert_int_equal(st.bytes, 0);
	assert_true(last_ack_commits >= 1);
	assert_true(last_ack_commits <= 5);
}

static void test_orphan_stream_delivered(void **state)
{
	char data[600], fa[600], fb[600];
	struct rn_buffer_stream st;
	(void)state;
	snprintf(data, sizeof(data), "%s/d2", dir);
	snprintf(fa, sizeof(fa), "%s/a.log", dir);
	snprintf(fb, sizeof(fb), "%s/b.log", dir);
	memset(&stub, 0, sizeof(stub));
	append_lines(fa, 0, 1500);
	append_lines(fb, 0, 3);
	run_agent(data, "a", fa, 30); /* offline: a's chunks stay buffered */
	buffer_state(data, "a", &st);
	assert_int_equal(st.next_seq, 1500);

	/* source "a" is gone from the config; its chunks are still delivered */
	stub.online = 1;
	stub.added = 0;
	run_agent(data, "b", fb, 30);
	assert_int_equal(stub.added, 2);
	assert_int_equal(stub.errors, 0);
	check_delivered(st.id, 1500);
	buffer_state(data, "a", &st);
	assert_int_equal(st.acked, st.next_offset - 1);
}

/* A config of file sources: names[i] over files[i], each with extra text extra[i]. */
static struct rn_agent_conf *load_conf(const char *data, int n, const char *const *names,
				       const char *const *files, const char *const *extra)
{
	char text[4096], err[512];
	size_t len = 0;
	struct rn_agent_conf *c = rn_calloc(1, sizeof(*c));
	assert_non_null(c);
	len += (size_t)snprintf(text + len, sizeof(text) - len,
				"agent: { device_id = \"dev\"; data_dir = \"%s\"; };\n"
				"chunk: { max_records = 100; linger_ms = 600000; };\n"
				"sources = (",
				data);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%s{ type = \"file\"; name = \"%s\"; table = \"c.s.t\"; "
					"paths = [ \"%s\" ]; read_from = \"beginning\"; %s }",
					i ? ", " : "", names[i], files[i], extra[i]);
	snprintf(text + len, sizeof(text) - len, ");\n");
	if (rn_conf_load_string(text, "t.conf", rn_agent_conf_table, c, err, sizeof(err)) ||
	    rn_agent_conf_check(c, "t.conf", err, sizeof(err)))
		fail_msg("config: %s", err);
	return c;
}

/* The retry delays must be ordered; uplink.token must hold no control character. */
static void test_conf_check(void **state)
{
	const char *base = "agent: { device_id = \"dev\"; data_dir = \"/tmp/x\"; };\n"
			   "sources = ( { type = \"file\"; name = \"a\"; table = \"c.s.t\"; "
			   "paths = [ \"/tmp/x.log\" ]; } );\n";
	const char *cases[][2] = {
		{"uplink: { backoff_min_ms = 200; backoff_max_ms = 200; };", ""},
		{"uplink: { backoff_min_ms = 5000; backoff_max_ms = 1000; };",
		 "t.conf: uplink.backoff_min_ms (5000) is larger than uplink.backoff_max_ms "
		 "(1000)"},
		{"uplink: { backoff_min_ms = 40000; };",
		 "t.conf: uplink.backoff_min_ms (40000) is larger than uplink.backoff_max_ms "
		 "(30000)"},
		{"uplink: {\n token = \"abc\\r\\nX-Evil: 1\"; };",
		 "t.conf:4: uplink.token holds a control character (byte 3); CR, LF, TAB and the "
		 "like are not allowed here"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024], err[512] = "";
		struct rn_agent_conf c = {0};
		snprintf(text, sizeof(text), "%s%s\n", base, cases[i][0]);
		if (!rn_conf_load_string(text, "t.conf", rn_agent_conf_table, &c, err, sizeof(err)))
			rn_agent_conf_check(&c, "t.conf", err, sizeof(err));
		rn_conf_free(rn_agent_conf_table, &c);
		if (strcmp(err, cases[i][1]))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i][1]);
	}
}

static void run_loops(struct rn_agent *a, struct rn_agent_signals *sig, int loops)
{
	sig->stop = 0;
	stub.stop = &sig->stop;
	stub.waits = 0;
	stub.stop_after = loops;
	assert_int_equal(rn_agent_run(a, sig), RN_AGENT_STOPPED);
}

static int stream_id(const char *data, const char *name)
{
	struct rn_buffer_stream st;
	buffer_state(data, name, &st);
	return st.id;
}

/*
 * Reload with records flowing: a keeps running through every reload (same settings), b is
 * removed, c is added, then a's settings change (restarted from its stored position), then
 * b comes back. Lines are appended between the reloads. Chunks close at 100 records (linger
 * is long): what a stopping source holds in its open chunk must go in with its position. Every line
 * of every file is delivered exactly once and in order (seq 0..N-1 per stream).
 */
static void test_reload(void **state)
{
	char data[600], fa[600], fb[600], fc[600];
	struct rn_agent_signals sig = {0};
	struct rn_agent *a;
	(void)state;
	snprintf(data, sizeof(data), "%s/d3", dir);
	snprintf(fa, sizeof(fa), "%s/r-a.log", dir);
	snprintf(fb, sizeof(fb), "%s/r-b.log", dir);
	snprintf(fc, sizeof(fc), "%s/r-c.log", dir);
	mkdir(data, 0755);
	memset(&stub, 0, sizeof(stub));
	stub.online = 1;
	append_lines(fa, 0, 250);
	append_lines(fb, 0, 130);
	append_lines(fc, 0, 70);
	const char *names[] = {"a", "b", "c"}, *files[] = {fa, fb, fc};
	const char *plain[] = {"", "", ""}, *changed[] = {"attributes = [ \"site=x\" ];", "", ""};
	struct rn_agent_conf *c1 = load_conf(data, 2, names, files, plain);
	assert_int_equal(rn_agent_create(&a, c1), 0);
	run_loops(a, &sig, 30);

	/* b removed, c added (a unchanged) */
	append_lines(fa, 250, 300);
	append_lines(fb, 130, 140); /* may or may not be read before b stops: never twice */
	const char *ac[] = {"a", "c"}, *fac[] = {fa, fc};
	assert_int_equal(rn_agent_reload(a, load_conf(data, 2, ac, fac, plain)), 0);
	run_loops(a, &sig, 30);
	append_lines(fa, 300, 320);
	append_lines(fc, 70, 90);
	run_loops(a, &sig, 30);

	/* a changed: stopped, started again from its stored position */
	assert_int_equal(rn_agent_reload(a, load_conf(data, 2, ac, fac, changed)), 0);
	append_lines(fa, 320, 400);
	run_loops(a, &sig, 30);

	/* b back: resumes where it stopped */
	assert_int_equal(rn_agent_reload(a, load_conf(data, 3, names, files, changed)), 0);
	append_lines(fb, 140, 150);
	run_loops(a, &sig, 40);
	rn_agent_drain(a);
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, c1);
	rn_free(c1);

	assert_int_equal(stub.errors, 0);
	check_delivered(stream_id(data, "a"), 400);
	check_delivered(stream_id(data, "b"), 150);
	check_delivered(stream_id(data, "c"), 90);
}

/* The idle loop sleeps until its next deadline, at most 1 s: once everything is delivered and
 * nothing is open, every wait is long and none is longer than 1 s. (The stub sleeps at most
 * 5 ms of each, so status.json's next check, 5 s on, is not reached.) */
static void test_idle_sleeps(void **state)
{
	char data[600], file[600];
	struct rn_agent_signals sig = {0};
	struct rn_agent *a;
	const char *n[] = {"idle"}, *f[] = {file}, *plain[] = {""};
	(void)state;
	snprintf(data, sizeof(data), "%s/d4", dir);
	snprintf(file, sizeof(file), "%s/idle.log", dir);
	mkdir(data, 0755);
	memset(&stub, 0, sizeof(stub));
	stub.online = 1;
	append_lines(file, 0, 100); /* one full chunk (max_records = 100): closed at once */
	struct rn_agent_conf *c = load_conf(data, 1, n, f, plain);
	assert_int_equal(rn_agent_create(&a, c), 0);
	run_loops(a, &sig, 20);
	assert_int_equal(stub.nrec, 100);
	stub.max_timeout = 0;
	stub.min_timeout = 1 << 30;
	run_loops(a, &sig, 50);
	assert_int_equal(stub.max_timeout, 1000);
	if (stub.min_timeout < 900)
		fail_msg("an idle wait of %d ms", stub.min_timeout);
	rn_agent_drain(a);
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, c);
	rn_free(c);
}

/* Reload's comparison: the same text is the same source; a difference in a common key, a
 * plugin key or a route is a change. */
/* Waits (loop turns of up to 5 ms each, at most `max`) until `cond` holds. */
#define RUN_UNTIL(a, sig, cond, max)                                                               \
	do {                                                                                       \
		for (int t_ = 0; !(cond) && t_ < (max); t_++)                                      \
			run_loops(a, sig, 5);                                                      \
		assert_true(cond);                                                                 \
	} while (0)

/*
 * Health reports (report.c): the first goes at once on a call that takes them, with the
 * agent's numbers (the same the status socket shows); a call opened later gets its own at
 * once; a server that does not take them gets nothing; health_interval = 0 sends nothing.
 */
static void test_health_reports(void **state)
{
	char data[600], file[600], text[2048], err[512], status[16384];
	struct rn_agent_conf conf = {0};
	struct rn_agent *a;
	struct rn_agent_signals sig = {0};
	(void)state;
	snprintf(data, sizeof(data), "%s/health", dir);
	snprintf(file, sizeof(file), "%s/health.log", dir);
	append_lines(file, 0, 50);
	snprintf(text, sizeof(text),
		 "agent: { device_id = \"dev-\\\"q\\\"\"; data_dir = \"%s\"; };\n"
		 "uplink: { health_interval = 1; };\n"
		 "chunk: { max_records = 1000; linger_ms = 20; };\n"
		 "sources = ( { type = \"file\"; name = \"logs\"; table = \"c.s.t\";\n"
		 "  paths = [ \"%s\" ]; read_from = \"beginning\"; } );\n",
		 data, file);
	mkdir(data, 0755);
	if (rn_conf_load_string(text, "t.conf", rn_agent_conf_table, &conf, err, sizeof(err)) ||
	    rn_agent_conf_check(&conf, "t.conf", err, sizeof(err)))
		fail_msg("config: %s", err);
	memcpy(conf.config_sha256, "ab", 3);
	memset(&stub, 0, sizeof(stub));
	stub.online = 0; /* records stay buffered */
	stub.health_takes = 1;
	stub.health_fresh = 1;
	assert_int_equal(rn_agent_create(&a, &conf), 0);
	RUN_UNTIL(a, &sig, stub.health_reports >= 1, 100);
	assert_int_equal(rn_json_validate(stub.health_last, strlen(stub.health_last)), 0);
	assert_non_null(strstr(stub.health_last, "{\"v\":1,\"device\":\"dev-\\\"q\\\"\""));
	assert_non_null(strstr(stub.health_last, "\"config_sha256\":\"ab\""));
	assert_non_null(strstr(stub.health_last, "\"drops\":{\"buffer_full\":0}"));
	assert_non_null(strstr(stub.health_last, "\"name\":\"logs\",\"type\":\"file\","
						 "\"state\":\"up\",\"error\":null"));

	/* the lines are read and buffered: a new call gets a report at once, with them */
	RUN_UNTIL(a, &sig, a->src[0]->records_in == 50 && rn_buffer_records(a->buffer) == 50, 200);
	int before = stub.health_reports;
	stub.health_fresh = 1;
	RUN_UNTIL(a, &sig, stub.health_reports > before, 100);
	assert_non_null(strstr(stub.health_last, "\"records\":50}]"));
	assert_non_null(strstr(stub.health_last, "\"buffer\":{\"bytes\":"));
	assert_non_null(strstr(stub.health_last, ",\"records\":50,\"max_bytes\":"));
	assert_null(strstr(stub.health_last, "\"oldest_unsent_age_s\":null"));
	/* the status shows the same numbers and the count */
	FILE *f = fmemopen(status, sizeof(status), "w");
	rn_agent__status_json(a, f, 0);
	fclose(f);
	assert_non_null(strstr(status, "\"buffer_records\":50,\"dead_letters\":0,\"sources\":[{"
				       "\"name\":\"logs\",\"type\":\"file\",\"state\":\"up\","
				       "\"error\":null,\"records\":50}]"));
	char want[128];
	snprintf(want, sizeof(want), "\"health\":{\"interval_s\":1,\"reports\":%llu,",
		 (unsigned long long)a->health_reports);
	assert_non_null(strstr(status, want));
	assert_true(a->health_reports >= 2);

	/* every interval (1 s) another one */
	before = stub.health_reports;
	RUN_UNTIL(a, &sig, stub.health_reports > before, 400);

	/* a source's state change goes out within 5 s, not only at the interval: with the
	 * interval at its maximum, a plugin saying "down" is reported on the next check */
	((struct rn_agent_conf *)a->conf)->health_interval = 3600;
	before = stub.health_reports;
	a->health_last_us = rn_mono_us() - 5000000; /* the last one 5 s ago */
	a->src[0]->state = RN_SOURCE_DOWN;
	snprintf(a->src[0]->state_error, sizeof(a->src[0]->state_error), "gone \"away\"");
	RUN_UNTIL(a, &sig, stub.health_reports > before, 400);
	assert_non_null(
		strstr(stub.health_last, "\"state\":\"down\",\"error\":\"gone \\\"away\\\"\""));
	/* a call opening: its report only, while nothing changed... */
	before = stub.health_reports;
	stub.health_fresh = 1;
	RUN_UNTIL(a, &sig, stub.health_reports > before, 100);
	assert_false(stub.health_last_all);
	/* ...but with a change (within 5 s of the last report), every open call gets it */
	a->src[0]->state = RN_SOURCE_UP;
	before = stub.health_reports;
	stub.health_fresh = 1;
	RUN_UNTIL(a, &sig, stub.health_reports > before, 100);
	assert_true(stub.health_last_all);
	assert_non_null(strstr(stub.health_last, "\"state\":\"up\""));
	a->src[0]->state = RN_SOURCE_DOWN;
	a->health_last_us = rn_mono_us() - 5000000;
	before = stub.health_reports;
	RUN_UNTIL(a, &sig, stub.health_reports > before, 400);
	/* and not again while nothing changes (the interval is an hour) */
	before = stub.health_reports;
	a->health_last_us = rn_mono_us() - 5000000;
	run_loops(a, &sig, 300);
	assert_int_equal(stub.health_reports, before);

	/* no memory somewhere in a report (each allocation in turn): it goes out or is skipped
	 * and counted, never both, never an error; the next one goes */
	int reached = 1, skips = 0;
	for (long nth = 1; nth < 200 && reached; nth++) {
		uint64_t skipped = a->health_skipped;
		before = stub.health_reports;
		stub.health_fresh = 1;
		rn_mem_fail_after(nth);
		rn_agent__health_step(a);
		reached = rn_mem_fail_disarm();
		assert_int_equal(
			(stub.health_reports - before) + (int)(a->health_skipped - skipped), 1);
		skips += a->health_skipped > skipped;
	}
	assert_false(reached); /* the sweep went past the last allocation */
	assert_true(skips >= 1);
	before = stub.health_reports;
	stub.health_fresh = 1;
	rn_agent__health_step(a);
	assert_int_equal(stub.health_reports, before + 1);
	before = stub.health_reports;

	/* a server without the feature: nothing is sent, whatever is due */
	stub.health_takes = 0;
	stub.health_fresh = 1;
	a->health_last_us = 0;
	run_loops(a, &sig, 50);
	assert_int_equal(stub.health_reports, before);
	/* health_interval = 0: nothing even to a server that takes them */
	stub.health_takes = 1;
	((struct rn_agent_conf *)a->conf)->health_interval = 0;
	run_loops(a, &sig, 50);
	assert_int_equal(stub.health_reports, before);

	rn_agent_drain(a);
	rn_agent_destroy(a);
	rn_conf_free(rn_agent_conf_table, &conf);
	memset(&stub, 0, sizeof(stub));
}

static void test_source_same(void **state)
{
	const char *n[] = {"s"}, *f[] = {"/x.log"};
	const char *variants[] = {
		"",
		"attributes = [ \"k=v\" ];",
		"max_line_bytes = \"1K\";",
		"ttl = \"5m\";",
		"routes = ( { match = \"a/#\"; table = \"c.s.u\"; stream = \"a\"; } );",
		"routes = ( { match = \"a/+\"; table = \"c.s.u\"; stream = \"a\"; } );",
	};
	const size_t nv = sizeof(variants) / sizeof(variants[0]);
	(void)state;
	for (size_t i = 0; i < nv; i++)
		for (size_t j = 0; j < nv; j++) {
			struct rn_agent_conf *x = load_conf("/tmp", 1, n, f, &variants[i]);
			struct rn_agent_conf *y = load_conf("/tmp", 1, n, f, &variants[j]);
			int same = rn_agent__source_same(x->sources.items, y->sources.items);
			if (same != (i == j))
				fail_msg("'%s' vs '%s': same = %d", variants[i], variants[j], same);
			rn_conf_free(rn_agent_conf_table, x);
			rn_conf_free(rn_agent_conf_table, y);
			rn_free(x);
			rn_free(y);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_then_restart),
		cmocka_unit_test(test_acks_coalesce),
		cmocka_unit_test(test_kept_until_committed),
		cmocka_unit_test(test_orphan_stream_delivered),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_source_same),
		cmocka_unit_test(test_health_reports),
		cmocka_unit_test(test_idle_sleeps),
		cmocka_unit_test(test_conf_check),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
