/*
 * An out-of-tree source plugin: the smallest complete example of the plugin API (see
 * runnel/plugin.h). It emits "<message> <n>" for n = 0 .. count-1, a bounded number per
 * poll, and resumes exactly: its position is the next n, and it advances only as records
 * are taken. Built as hello.so and loaded from the agent's `plugin_dir`:
 *
 *   agent: { plugin_dir = "/usr/lib/runnel/plugins"; };
 *   sources = ( { type = "hello"; name = "hi"; table = "main.default.hello"; count = 10; } );
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

#ifndef HELLO_ABI
#define HELLO_ABI RN_SOURCE_ABI_1 /* the test suite also builds one with a wrong ABI */
#endif

#ifdef HELLO_CTOR_MARKER
/* The test suite's copy that proves when its code runs: a constructor (run by dlopen, before
 * the agent can check anything) that creates the file named by $HELLO_CTOR_MARKER. */
__attribute__((constructor)) static void hello_ctor(void)
{
	const char *p = getenv("HELLO_CTOR_MARKER");
	FILE *f = p ? fopen(p, "w") : NULL;
	if (f)
		fclose(f);
}
#endif

struct hello_conf {
	int64_t count;
	char *message;
};

static const struct rn_conf_key hello_keys[] = {
	{.key = "count",
	 .type = RN_CONF_INT,
	 .def = "100",
	 .min = 0,
	 .max = 1000000000,
	 .offset = offsetof(struct hello_conf, count),
	 .help = "records to emit in all"},
	{.key = "message",
	 .type = RN_CONF_STRING,
	 .def = "hello",
	 .offset = offsetof(struct hello_conf, message),
	 .help = "text before the number"},
	{0},
};

struct hello {
	const struct hello_conf *conf;
	struct rn_source_host host;
	int64_t next; /* the next number to emit = the resume position */
};

static int hello_create(void **inst, const struct rn_source_conf *sc,
			const struct rn_source_host *host)
{
	struct hello *h = rn_calloc(1, sizeof(*h));
	struct rn_buf pos = {0};
	if (!h)
		return RN_ENOMEM;
	h->conf = sc->plugin.data;
	h->host = *host;
	if (host->load_position(host->ctx, &pos) == 0 && pos.len && pos.len < 32) {
		char tmp[32];
		memcpy(tmp, pos.data, pos.len);
		tmp[pos.len] = 0;
		h->next = strtoll(tmp, NULL, 10);
	}
	rn_buf_free(&pos);
	rn_log_info("hello", "%s: starting at %lld of %lld", sc->name, (long long)h->next,
		    (long long)h->conf->count);
	*inst = h;
	return 0;
}

static int hello_poll(void *inst, int64_t now_us, int *more)
{
	struct hello *h = inst;
	char line[512];
	(void)now_us;
	for (int i = 0; i < 1000 && h->next < h->conf->count; i++) {
		int n = snprintf(line, sizeof(line), "%s %lld", h->conf->message,
				 (long long)h->next);
		struct rn_record r = {
			.payload = (const uint8_t *)line, .len = (size_t)n, .topic = "hello"};
		/* The host may close a chunk, and take a snapshot, inside emit(): the position
		 * must already be past this record then. */
		h->next++;
		if (h->host.emit(h->host.ctx, &r)) {
			h->next--; /* not taken (buffer full): the same number next time */
			break;
		}
	}
	*more = h->next < h->conf->count && h->host.accepting(h->host.ctx);
	return 0;
}

static int hello_snapshot(void *inst, struct rn_buf *out)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)((struct hello *)inst)->next);
	return rn_buf_append(out, tmp, (size_t)n);
}

static void hello_destroy(void *inst)
{
	rn_free(inst);
}

static const struct rn_source_plugin hello_plugin = {
	.abi = HELLO_ABI,
	.name = "hello",
	.description = "example out-of-tree plugin: numbered greetings",
	.conf = hello_keys,
	.conf_size = sizeof(struct hello_conf),
	.create = hello_create,
	.poll = hello_poll,
	.snapshot = hello_snapshot,
	.destroy = hello_destroy,
};

RN_PLUGIN_EXPORT const struct rn_source_plugin *rn_source_plugin_entry(void)
{
	return &hello_plugin;
}
