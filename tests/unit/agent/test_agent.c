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
#include "buffer.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_mem.h"
#include "uplink_stub.h"

static char dir[512];

static int setup(void **state)
{
	const char *base = getenv("RN_TEST_TMP");
	(void)state;
	if (!base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(dir, sizeof(dir), "%s/agent-XXXXXX", base);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
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
static void run_agent(const char *data, const char *name, const char *file, int loops)
{
	char text[2048], err[512];
	struct rn_agent_conf conf = {0};
	struct rn_agent *a;
	volatile int stop = 0;
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
	stub.stop = &stop;
	stub.waits = 0;
	stub.stop_after = loops;
	assert_int_equal(rn_agent_run(a, &stop, NULL), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_then_restart),
		cmocka_unit_test(test_orphan_stream_delivered),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
