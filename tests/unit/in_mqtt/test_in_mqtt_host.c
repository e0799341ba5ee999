/*
 * Unit tests for plugins/in_mqtt against host structs of two lengths, without a broker (the
 * source connects to a loopback port nobody listens on): with a whole ABI 1.1 host its state
 * reaches host->set_state ("down, connecting to ..." at create); with a host
 * whose size ends before set_state (an agent that has no set_state) the plugin never calls
 * it, although the member holds a poisoned function, and still runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugin.h"
#include "rn_buf.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"

extern const struct rn_source_plugin rn_in_mqtt;

struct fake {
	int states;      /* set_state calls */
	int first_state; /* the first one's state and error */
	char first_error[256];
};

static int h_emit(void *ctx, const struct rn_record *r)
{
	(void)ctx;
	(void)r;
	return 0;
}
static void h_position_changed(void *ctx)
{
	(void)ctx;
}
static int h_load_position(void *ctx, struct rn_buf *out)
{
	(void)ctx;
	(void)out;
	return RN_ENOTFOUND;
}
static int h_accepting(void *ctx)
{
	(void)ctx;
	return 1;
}
static int h_flush(void *ctx)
{
	(void)ctx;
	return 0;
}
static int h_dead_letter(void *ctx, const struct rn_record *r, const char *reason)
{
	(void)ctx;
	(void)r;
	(void)reason;
	return 0;
}
static void h_set_state(void *ctx, int st, const char *error)
{
	struct fake *f = ctx;
	if (f->states++ == 0) {
		f->first_state = st;
		snprintf(f->first_error, sizeof(f->first_error), "%s", error ? error : "");
	}
}
static void h_poisoned(void *ctx, int st, const char *error)
{
	(void)ctx;
	(void)st;
	(void)error;
	fail_msg("in_mqtt called set_state beyond the host's size");
}

/* Creates an mqtt source on 127.0.0.1:1 with `host`, polls it a few times, destroys it. */
static void run(const struct rn_source_host *host)
{
	char err[256];
	void *c = calloc(1, rn_in_mqtt.conf_size);
	assert_non_null(c);
	assert_int_equal(rn_conf_load_string("host = \"127.0.0.1\"; port = 1; topics = [\"t/#\"];",
					     "t", rn_in_mqtt.conf, c, err, sizeof(err)),
			 0);
	struct rn_source_conf sc = {.type = "mqtt", .name = "m", .table = "a.b.c"};
	sc.plugin.data = c;
	void *inst = NULL;
	assert_int_equal(rn_in_mqtt.create(&inst, &sc, host), 0);
	for (int i = 0; i < 5; i++) {
		int more = 0;
		assert_int_equal(rn_in_mqtt.poll(inst, rn_mono_us(), &more), 0);
	}
	rn_in_mqtt.destroy(inst);
	rn_conf_free(rn_in_mqtt.conf, c);
	free(c);
}

static struct rn_source_host host_for(struct fake *f)
{
	return (struct rn_source_host){.ctx = f,
				       .emit = h_emit,
				       .position_changed = h_position_changed,
				       .load_position = h_load_position,
				       .accepting = h_accepting,
				       .flush = h_flush,
				       .dead_letter = h_dead_letter,
				       .size = sizeof(struct rn_source_host),
				       .set_state = h_set_state};
}

static void test_abi(void **state)
{
	(void)state;
	assert_int_equal(rn_in_mqtt.abi, RN_SOURCE_ABI_1_1); /* it reads host->size */
}

static void test_whole_host(void **state)
{
	(void)state;
	struct fake f = {0};
	struct rn_source_host h = host_for(&f);
	run(&h);
	assert_true(f.states >= 1);
	assert_int_equal(f.first_state, RN_SOURCE_DOWN); /* told at create */
	assert_string_equal(f.first_error, "connecting to 127.0.0.1:1");
}

static void test_short_host(void **state)
{
	(void)state;
	struct fake f = {0};
	/* the agent's struct ends before set_state; the bytes there are not the agent's */
	struct rn_source_host h = host_for(&f);
	h.size = offsetof(struct rn_source_host, set_state);
	h.set_state = h_poisoned;
	run(&h);
	assert_int_equal(f.states, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_whole_host),
		cmocka_unit_test(test_short_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
