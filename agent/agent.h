/*
 * runnel-agent's core: the pipeline (sources -> chunk builders -> buffer), the uplink glue
 * and the single-threaded main loop. One struct rn_agent per process, created by main()
 * from the frozen config, run until SIGTERM/SIGINT, then drained and destroyed.
 */
#ifndef RN_AGENT_H
#define RN_AGENT_H

#include <stdint.h>

#include "rn_conf.h"

enum { RN_POLICY_BLOCK = 0, RN_POLICY_DROP_OLDEST = 1 };

struct rn_agent_conf {
	char *device_id;
	char *data_dir;
	int log_level;
	char *plugin_dir;
	int sync; /* 0 = normal, 1 = full */
	int64_t buffer_max_bytes;
	int buffer_policy; /* RN_POLICY_BLOCK or RN_POLICY_DROP_OLDEST */
	int64_t buffer_reserve;
	char *url;
	char *token;
	int64_t window;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	int64_t ack_timeout_ms;
	int64_t max_bytes_per_sec; /* uplink bandwidth cap, 0 = none */
	int64_t chunk_max_bytes;
	int64_t chunk_max_records;
	int64_t linger_ms;
	int64_t zstd_level;
	struct rn_conf_list sources; /* struct rn_source_conf */
};

extern const struct rn_conf_key rn_agent_conf_table[];

/* Checks what the table cannot: sources have names, tables and a known type; names are
 * unique. 0 or RN_ECONFIG with a message naming the source. */
int rn_agent_conf_check(const struct rn_agent_conf *c, const char *file, char *err, size_t cap);

struct rn_agent;

int rn_agent_create(struct rn_agent **out, const struct rn_agent_conf *conf);
/* Runs until *stop becomes non-zero (set from a signal handler), then commits open chunks and
 * drains for up to 2 s. When *status_now (may be NULL) becomes non-zero (SIGUSR1), status.json
 * is written at once and the flag cleared. Returns 0. */
int rn_agent_run(struct rn_agent *a, volatile int *stop, volatile int *status_now);
void rn_agent_destroy(struct rn_agent *a);

#endif
